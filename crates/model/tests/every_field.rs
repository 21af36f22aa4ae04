//! An inventory that sets every field: it must load, and what serde writes back must load again to the same
//! fleet, as JSON and as TOML. This keeps the schema and the serde types in agreement field by field.

const FULL: &str = r#"
[fleet]
name = "full"
state_version = "25.11"
time_zone = "Europe/Lisbon"
locale = "pt_PT.UTF-8"
allow_unfree = ["unrar", "vscode"]
keymap = "pt-latin1"
container_backend = "podman"

[fleet.nix]
flakes = false
trusted_users = ["alice"]
gc = { enable = false, dates = "daily", delete_older_than = "7d" }
optimise = true
substituters = ["https://nix-community.cachix.org"]
trusted_public_keys = ["nix-community.cachix.org-1:mB9FSh9qf2dCimDSUo8Zy7bkq5CX+/rkCWyvRCYg3Fs="]

[ssh]
port = 2222
permit_root_login = "no"
password_authentication = true
kbd_interactive_authentication = true
root_keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIN/AROyqCRnG7LR8F2+d+V4hkfckmsMtRuC0uRqBKwjf admin@workstation"]
allow_users = ["alice", "root"]
authorized_keys_in_homedir = true
extra_settings = { MaxAuthTries = 3, X11Forwarding = false, LogLevel = "VERBOSE" }

[users.alice]
ssh_keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBqeFyT5oHWhCY/SKllnU80NkJK46f+SBkowTwVuJjhq eduardo@hhlab"]
groups = ["wheel", "docker"]
uid = 1001
description = "Alice"
shell = "zsh"
hashed_password = "$y$j9T$abcdefgh$ijklmnop"
sudo = "no-password"

[users.bob]
hashed_password_file = "/run/secrets/bob"
shell = "fish"
sudo = "password"

[hosts.full-host]
board = "generic-aarch64"
address = "2001:db8::10"
deploy = { user = "alice", port = 2200, build_on = "target" }
users = ["alice", "bob"]
tags = ["edge", "lab_1"]
packages = ["git", "python3Packages.requests"]
time_zone = "UTC"
state_version = "24.05"
modules = ["modules/extra.nix"]
hardware_config = true
allow = [{ code = "unpinned_image", reason = "test" }]
kernel_params = ["cma=256M", "console=ttyS0,115200"]
keymap = "us"
container_backend = "docker"
storage = { journal = "volatile", noatime = true, tmp = "tmpfs" }
tailscale = { enable = true, auth_key_secret = "ts-key", advertise_routes = ["192.168.1.0/24"], exit_node = true, accept_routes = true, trust_interface = true, advertise_tags = ["tag:server"], ssh = false, accept_dns = false }
mdns = { enable = true }
auto_upgrade = { enable = true, flake = "github:me/fleet#full-host", dates = "Sat 03:00", allow_reboot = true }
time = { ntp_servers = ["192.168.1.1", "pool.ntp.org"] }
fail2ban = { enable = true, max_retry = 5, ban_time = "1h", ignore_ip = ["192.168.1.0/24", "fd00::1"], bantime_increment = true }

[hosts.full-host.network]
mode = "static"
manager = "network-manager"
interface = "end0"
address = "2001:db8::10/64"
gateway = "2001:db8::1"
dns = ["2001:db8::53", "9.9.9.9"]

[hosts.full-host.wifi]
ssid = "lab"
secrets_file = "/run/secrets/wifi"
psk_name = "LAB_PSK"

[hosts.full-host.firewall]
enable = false
allowed_tcp_ports = [80, 443]
allowed_udp_ports = [53]
trusted_interfaces = ["wg0"]
allow_ping = false

[hosts.full-host.ssh]
port = 22
permit_root_login = "prohibit-password"
password_authentication = false
kbd_interactive_authentication = false
root_keys = []
allow_users = ["alice"]
authorized_keys_in_homedir = false
extra_settings = { MaxSessions = 2 }

[hosts.full-host.swap]
zram = true
zram_percent = 25
file_size_mb = 2048
zram_algorithm = "lz4"

[hosts.full-host.monitoring]
node_exporter = true
node_exporter_port = 9101
open_firewall = true

[hosts.full-host.containers.app]
image = "localhost:5000/team/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
ports = ["127.0.0.1:8080:80", "[::1]:8443:443/tcp", "5353:53/udp"]
volumes = ["/srv/app:/data", "cache:/cache:ro"]
environment = { MODE = "prod", PUID = "1000" }
environment_files = ["/run/secrets/app.env"]
command = ["serve", "--port", "80"]
entrypoint = "/bin/app"
user = "1000:1000"
auto_start = false
restart = "on-failure"
depends_on = ["db"]
extra_options = ["--network=host"]
labels = { "com.example.team" = "lab" }
privileged = true
open_firewall = true

[hosts.full-host.containers.db]
image = "postgres:16.4"
restart = "no"

[containers.agent]
image = "grafana/alloy:v1.4.2"
ports = ["12345:12345"]
placement = { tags = ["edge"], hosts = ["full-host"] }
"#;

#[test]
fn every_field_loads_and_round_trips() {
    let fleet = model::load_str(FULL, "full.toml")
        .expect("the full inventory is valid")
        .fleet;
    assert_eq!(fleet.hosts["full-host"].containers.len(), 2);
    assert!(!fleet.fleet.nix.flakes);
    let host = &fleet.hosts["full-host"];
    assert_eq!(host.kernel_params.len(), 2);
    assert!(host.tailscale.as_ref().is_some_and(|t| t.trust_interface));
    assert!(
        host.tailscale
            .as_ref()
            .is_some_and(|t| t.accept_dns == Some(false) && t.advertise_tags.len() == 1)
    );
    assert!(
        host.fail2ban
            .as_ref()
            .is_some_and(|f| f.bantime_increment && f.ignore_ip.len() == 2)
    );
    assert_eq!(
        fleet.fleet.container_backend,
        model::ContainerBackend::Podman
    );

    let json = serde_json::to_string(&fleet).expect("to JSON");
    let from_json = model::load_str(&json, "full.json")
        .expect("serialised JSON loads")
        .fleet;
    assert_eq!(from_json, fleet);

    let toml = toml::to_string(&fleet).expect("to TOML");
    let from_toml = model::load_str(&toml, "full.toml")
        .expect("serialised TOML loads")
        .fleet;
    assert_eq!(from_toml, fleet);
}

#[test]
fn every_optional_field_is_optional() {
    let minimal = "[fleet]\nstate_version = \"26.05\"\n\n[hosts.a]\nboard = \"x86_64\"\naddress = \"a.lan\"\n\n[hosts.a.containers.c]\nimage = \"busybox:1.36\"\n\n[users.u]\n";
    let fleet = model::load_str(minimal, "min.toml")
        .expect("minimal inventory")
        .fleet;
    let host = &fleet.hosts["a"];
    assert!(host.deploy.user.is_root());
    assert!(host.firewall.enable);
    assert_eq!(fleet.fleet.time_zone, "UTC");
    assert_eq!(fleet.ssh.port.get(), 22);
    let c = &host.containers["c"];
    assert!(c.auto_start);
    assert_eq!(c.restart, model::Restart::Always);
}
