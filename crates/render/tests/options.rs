//! What a host gets, rule by rule: small inventories rendered, evaluated by real Nix, and compared
//! with literal option values written out here. Nothing is recomputed from the model, so a rule
//! that changes in the code and in its test at once cannot hide.

mod support;

use serde_json::{Value, json};

const KEY_A: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBqeFyT5oHWhCY/SKllnU80NkJK46f+SBkowTwVuJjhq a@ws";
const KEY_D: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIJtPll8LZfFkY+7Pe4jvSqlS/m6qdMos/rZ/8KtD5+1 d@ws";
const KEY_R: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIN/AROyqCRnG7LR8F2+d+V4hkfckmsMtRuC0uRqBKwjf r@ws";

/// A fleet with a deploy user and an admin, plus `rest` (more tables, or lines of `[hosts.box]`
/// when it does not start with `[`).
fn fleet(ssh: &str, host: &str, rest: &str) -> String {
    format!(
        "[fleet]\nstate_version = \"26.05\"\n\n[ssh]\n{ssh}\n\n\
         [users.admin]\nssh_keys = [\"{KEY_A}\"]\ngroups = [\"docker\"]\nsudo = \"password\"\nhashed_password_file = \"/run/admin.hash\"\n\n\
         [users.deploy]\nssh_keys = [\"{KEY_D}\"]\nsudo = \"no-password\"\n\n\
         [hosts.box]\nboard = \"rpi4\"\naddress = \"10.0.0.2\"\nusers = [\"admin\", \"deploy\"]\ndeploy = {{ user = \"deploy\" }}\n{host}\n\n{rest}\n"
    )
}

/// The evaluated module of `box`, or `None` (skip) without Nix.
fn eval_box(text: &str) -> Option<Value> {
    let nix = support::nix()?;
    let mut all = support::eval_fleet(&nix, text);
    Some(all["hosts"]["box"].take())
}

#[test]
fn firewall_merges_host_ports_published_container_ports_and_the_exporter() {
    let text = fleet(
        "",
        "firewall = { allowed_tcp_ports = [8123, 80], allowed_udp_ports = [5353] }\n\
         monitoring = { node_exporter = true, open_firewall = true }",
        "[hosts.box.containers.dns]\nimage = \"pihole/pihole:2024.07.0\"\nports = [\"53:53/udp\", \"127.0.0.1:8080:80\", \"80:80\"]\nopen_firewall = true\n\n\
         [hosts.box.containers.quiet]\nimage = \"redis:7.4.1\"\nports = [\"6380:6379\"]\n",
    );
    let Some(m) = eval_box(&text) else { return };
    // 8080 is bound to loopback and `quiet` does not open its port; 80 is listed once.
    assert_eq!(
        m["networking"]["firewall"],
        json!({ "enable": true, "allowedTCPPorts": [80, 8123, 9100], "allowedUDPPorts": [53, 5353] })
    );
}

#[test]
fn sshd_settings_are_the_managed_ones_then_defaults_then_extras() {
    let text = fleet(
        "permit_root_login = \"no\"\nextra_settings = { MaxAuthTries = 3, ClientAliveInterval = 60 }",
        "ssh = { deny_users = [\"guest\"] }",
        "",
    );
    let Some(m) = eval_box(&text) else { return };
    assert_eq!(
        m["services"]["openssh"],
        json!({
            "enable": true,
            "ports": [22],
            "openFirewall": true,
            "authorizedKeysInHomedir": false,
            "settings": {
                "PasswordAuthentication": false,
                "KbdInteractiveAuthentication": false,
                "PermitRootLogin": "no",
                "AllowUsers": ["admin", "deploy"],
                "DenyUsers": ["guest"],
                "X11Forwarding": false,
                "ClientAliveInterval": 60,
                "MaxAuthTries": 3,
            }
        })
    );
}

#[test]
fn allow_users_is_derived_with_root_when_root_may_log_in() {
    let text = fleet(
        &format!("permit_root_login = \"prohibit-password\"\nroot_keys = [\"{KEY_R}\"]"),
        "",
        "",
    );
    let Some(m) = eval_box(&text) else { return };
    assert_eq!(
        m["services"]["openssh"]["settings"]["AllowUsers"],
        json!(["admin", "deploy", "root"])
    );
    assert_eq!(
        m["users"]["users"]["root"],
        json!({ "openssh": { "authorizedKeys": { "keys": [KEY_R] } } })
    );
}

#[test]
fn root_keys_are_not_installed_when_root_may_not_log_in() {
    let text = fleet(
        &format!("permit_root_login = \"no\"\nroot_keys = [\"{KEY_R}\"]"),
        "",
        "",
    );
    let Some(m) = eval_box(&text) else { return };
    assert_eq!(m["users"]["users"].get("root"), None);
    assert_eq!(
        m["services"]["openssh"]["settings"]["AllowUsers"],
        json!(["admin", "deploy"])
    );
}

/// sshd compares keywords without case, and so does pifleet: `x11forwarding = true` replaces the
/// default `X11Forwarding = false` instead of sitting next to it (sshd would take whichever sorts
/// first), a host's `maxauthtries` replaces the fleet's `MaxAuthTries`, and both are written in the
/// spelling NixOS declares.
#[test]
fn extra_settings_keywords_are_compared_without_case() {
    let text = fleet(
        "extra_settings = { x11forwarding = true, MaxAuthTries = 3 }",
        "ssh = { extra_settings = { maxauthtries = 5 } }",
        "",
    );
    let Some(m) = eval_box(&text) else { return };
    let settings = &m["services"]["openssh"]["settings"];
    assert_eq!(settings["X11Forwarding"], json!(true), "{settings}");
    assert_eq!(settings.get("x11forwarding"), None, "{settings}");
    assert_eq!(settings["MaxAuthTries"], json!(5), "{settings}");
    assert_eq!(settings.get("maxauthtries"), None, "{settings}");
}

/// Keywords NixOS declares as lists get Nix lists (a string would fail evaluation); other
/// multi-value keywords get one string joined the way sshd reads it.
#[test]
fn list_keywords_are_lists_where_nixos_declares_them() {
    let text = fleet(
        "extra_settings = { Ciphers = \"aes256-gcm@openssh.com,chacha20-poly1305@openssh.com\", AllowGroups = \"wheel ssh\", SetEnv = [\"A=1\", \"B=2\"] }",
        "",
        "",
    );
    let Some(m) = eval_box(&text) else { return };
    let settings = &m["services"]["openssh"]["settings"];
    assert_eq!(
        settings["Ciphers"],
        json!(["aes256-gcm@openssh.com", "chacha20-poly1305@openssh.com"])
    );
    assert_eq!(settings["AllowGroups"], json!(["wheel", "ssh"]));
    assert_eq!(settings["SetEnv"], json!("A=1 B=2"));
}

#[test]
fn sudo_users_get_wheel_first_and_no_password_users_a_nopasswd_rule() {
    let text = fleet("", "", "");
    let Some(m) = eval_box(&text) else { return };
    let users = &m["users"]["users"];
    assert_eq!(users["admin"]["extraGroups"], json!(["wheel", "docker"]));
    assert_eq!(
        users["admin"]["hashedPasswordFile"],
        json!("/run/admin.hash")
    );
    assert_eq!(users["deploy"]["extraGroups"], json!(["wheel"]));
    assert_eq!(users["deploy"]["isNormalUser"], json!(true));
    assert_eq!(m["users"]["mutableUsers"], json!(false));
    assert_eq!(
        m["security"]["sudo"],
        json!({
            "wheelNeedsPassword": true,
            "extraRules": [{ "users": ["deploy"], "commands": [{ "command": "ALL", "options": ["NOPASSWD"] }] }],
        })
    );
}

#[test]
fn nix_trusts_root_the_deploy_user_and_the_extras_once() {
    let text = fleet("", "", "").replace(
        "[ssh]\n",
        "[fleet.nix]\ntrusted_users = [\"deploy\", \"@wheel\"]\n\n[ssh]\n",
    );
    let Some(m) = eval_box(&text) else { return };
    assert_eq!(
        m["nix"]["settings"],
        json!({ "experimental-features": ["nix-command", "flakes"], "trusted-users": ["root", "deploy", "@wheel"] })
    );
}

#[test]
fn flakes_false_leaves_the_experimental_features_unset() {
    let text = fleet("", "", "").replace("[ssh]\n", "[fleet.nix]\nflakes = false\n\n[ssh]\n");
    let Some(m) = eval_box(&text) else { return };
    assert_eq!(m["nix"]["settings"].get("experimental-features"), None);
}

#[test]
fn restart_policies_are_forced_on_the_systemd_unit_and_privileged_is_a_flag() {
    let text = fleet(
        "",
        "tags = [\"edge\"]",
        "[hosts.box.containers.once]\nimage = \"busybox:1.37\"\nrestart = \"no\"\nprivileged = true\n\n\
         [hosts.box.containers.steady]\nimage = \"redis:7.4.1\"\nrestart = \"unless-stopped\"\n\n\
         [containers.agent]\nimage = \"grafana/alloy:v1.5.0\"\nrestart = \"on-failure\"\nplacement = { tags = [\"edge\"] }\n",
    );
    let Some(m) = eval_box(&text) else { return };
    assert_eq!(
        m["systemd"]["services"],
        json!({
            "docker-agent": { "serviceConfig": { "Restart": { "_type": "override", "priority": 50, "content": "on-failure" } } },
            "docker-once": { "serviceConfig": { "Restart": { "_type": "override", "priority": 50, "content": "no" } } },
        })
    );
    // unless-stopped is systemd's Restart=always, which oci-containers already sets: no override.
    let containers = &m["virtualisation"]["oci-containers"];
    assert_eq!(
        containers["containers"]["steady"],
        json!({ "image": "redis:7.4.1", "autoStart": true })
    );
    assert_eq!(containers["backend"], json!("docker"));
    assert_eq!(
        containers["containers"]["once"],
        json!({ "image": "busybox:1.37", "extraOptions": ["--privileged"], "autoStart": true })
    );
    assert_eq!(
        containers["containers"]["agent"],
        json!({ "image": "grafana/alloy:v1.5.0", "autoStart": true })
    );
}

#[test]
fn a_static_address_with_network_manager_leaves_the_interface_unmanaged() {
    let text = fleet(
        "",
        "network = { mode = \"static\", manager = \"network-manager\", address = \"10.0.0.2/24\", gateway = \"10.0.0.1\" }",
        "",
    );
    let Some(m) = eval_box(&text) else { return };
    let net = &m["networking"];
    assert_eq!(
        net.get("useDHCP"),
        None,
        "NetworkManager sets useDHCP itself"
    );
    assert_eq!(
        net["networkmanager"],
        json!({ "enable": true, "unmanaged": ["end0"] })
    );
    assert_eq!(
        net["interfaces"],
        json!({ "end0": { "ipv4": { "addresses": [{ "address": "10.0.0.2", "prefixLength": 24 }] } } })
    );
    assert_eq!(
        net["defaultGateway"],
        json!({ "address": "10.0.0.1", "interface": "end0" })
    );
}

#[test]
fn wifi_with_wpa_supplicant_reads_the_passphrase_from_the_secrets_file() {
    let text = fleet(
        "",
        "board = \"zero2w\"\nwifi = { ssid = \"home net\", secrets_file = \"/var/lib/wifi.env\" }",
        "",
    )
    .replace("board = \"rpi4\"\n", "");
    let Some(m) = eval_box(&text) else { return };
    assert_eq!(
        m["networking"]["wireless"],
        json!({ "enable": true, "secretsFile": "/var/lib/wifi.env", "networks": { "home net": { "pskRaw": "ext:psk" } } })
    );
    assert_eq!(m["networking"]["useDHCP"], json!(true));
}

/// A Wi-Fi passphrase in a secret: agenix decrypts it for wpa_supplicant, which reads it as its own
/// user; the generated module points wpa_supplicant at the decrypted file.
#[test]
fn a_wifi_secret_is_decrypted_for_wpa_supplicant() {
    let text = fleet(
        "",
        "board = \"zero2w\"\nhost_key = \"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIN/AROyqCRnG7LR8F2+d+V4hkfckmsMtRuC0uRqBKwjf root@box\"\nwifi = { ssid = \"home\", psk_secret = \"home-wifi\" }",
        "",
    )
    .replace("board = \"rpi4\"\n", "");
    let Some(m) = eval_box(&text) else { return };
    assert_eq!(
        m["age"],
        json!({ "secrets": { "home-wifi": {
            "file": "secrets/home-wifi.age", "owner": "wpa_supplicant", "group": "wpa_supplicant", "mode": "0400"
        } } })
    );
    assert_eq!(
        m["networking"]["wireless"],
        json!({ "enable": true, "secretsFile": "/run/agenix/home-wifi", "networks": { "home": { "pskRaw": "ext:psk" } } })
    );
}

/// Tailscale with routes, an exit node and accepted routes: the auth key from its secret (root's,
/// read by tailscaled-autoconnect), both routing features, the flags at login and at every
/// activation, tailscale0 trusted, and its UDP port opened by the firewall section.
#[test]
fn tailscale_routes_an_exit_node_and_a_trusted_interface() {
    let text = fleet(
        "",
        "host_key = \"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIN/AROyqCRnG7LR8F2+d+V4hkfckmsMtRuC0uRqBKwjf root@box\"\n\
         tailscale = { auth_key_secret = \"ts-key\", advertise_routes = [\"192.168.1.0/24\", \"10.8.0.0/16\"], exit_node = true, accept_routes = true, trust_interface = true }",
        "",
    );
    let Some(m) = eval_box(&text) else { return };
    assert_eq!(
        m["services"]["tailscale"],
        json!({
            "enable": true,
            "openFirewall": false,
            "authKeyFile": "/run/agenix/ts-key",
            "useRoutingFeatures": "both",
            "extraUpFlags": ["--advertise-routes=192.168.1.0/24,10.8.0.0/16", "--advertise-exit-node", "--accept-routes"],
            "extraSetFlags": ["--advertise-routes=192.168.1.0/24,10.8.0.0/16", "--advertise-exit-node", "--accept-routes"],
        })
    );
    assert_eq!(
        m["age"]["secrets"]["ts-key"],
        json!({ "file": "secrets/ts-key.age", "owner": "root", "group": "root", "mode": "0400" })
    );
    assert_eq!(
        m["networking"]["firewall"],
        json!({ "enable": true, "allowedUDPPorts": [41641], "trustedInterfaces": ["tailscale0"] })
    );
}

/// A client of other routers: loose reverse-path filtering only, and no key (logged in by hand).
#[test]
fn tailscale_accepting_routes_is_a_client() {
    let text = fleet("", "tailscale = { accept_routes = true }", "");
    let Some(m) = eval_box(&text) else { return };
    assert_eq!(
        m["services"]["tailscale"],
        json!({
            "enable": true,
            "openFirewall": false,
            "useRoutingFeatures": "client",
            "extraUpFlags": ["--accept-routes"],
            "extraSetFlags": ["--accept-routes"],
        })
    );
    assert_eq!(m.get("age"), None, "no secret to decrypt");
    let off = fleet(
        "",
        "tailscale = { enable = false, accept_routes = true }",
        "",
    );
    let Some(m) = eval_box(&off) else { return };
    assert_eq!(m["services"].get("tailscale"), None);
}

/// Tags go to the first login only (`tailscale set` refuses `--advertise-tags`); Tailscale SSH
/// and DNS go to both, `false` written out so it turns the setting off on a logged-in node.
#[test]
fn tailscale_tags_at_login_ssh_and_dns_at_every_activation() {
    let text = fleet(
        "",
        "host_key = \"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIN/AROyqCRnG7LR8F2+d+V4hkfckmsMtRuC0uRqBKwjf root@box\"\n\
         tailscale = { auth_key_secret = \"ts-key\", advertise_tags = [\"tag:server\", \"tag:home-lab\"], ssh = true, accept_dns = false }",
        "",
    );
    let Some(m) = eval_box(&text) else { return };
    assert_eq!(
        m["services"]["tailscale"],
        json!({
            "enable": true,
            "openFirewall": false,
            "authKeyFile": "/run/agenix/ts-key",
            "extraUpFlags": ["--ssh", "--accept-dns=false", "--advertise-tags=tag:server,tag:home-lab"],
            "extraSetFlags": ["--ssh", "--accept-dns=false"],
        })
    );

    let text = fleet(
        "",
        "tailscale = { advertise_tags = [\"tag:server\"], ssh = false, accept_dns = true }",
        "",
    );
    let Some(m) = eval_box(&text) else { return };
    assert_eq!(
        m["services"]["tailscale"],
        json!({
            "enable": true,
            "openFirewall": false,
            "extraUpFlags": ["--ssh=false", "--accept-dns=true", "--advertise-tags=tag:server"],
            "extraSetFlags": ["--ssh=false", "--accept-dns=true"],
        })
    );

    let text = fleet("", "tailscale = { advertise_tags = [\"tag:server\"] }", "");
    let Some(m) = eval_box(&text) else { return };
    assert_eq!(
        m["services"]["tailscale"],
        json!({
            "enable": true,
            "openFirewall": false,
            "extraUpFlags": ["--advertise-tags=tag:server"],
        }),
        "no set flags: no tailscaled-set unit"
    );
}

/// mDNS: avahi resolving and publishing, UDP 5353 opened once by the firewall section.
#[test]
fn mdns_runs_avahi_and_opens_5353() {
    let text = fleet(
        "",
        "mdns = {}\nfirewall = { allowed_udp_ports = [5353, 53] }",
        "",
    );
    let Some(m) = eval_box(&text) else { return };
    assert_eq!(
        m["services"]["avahi"],
        json!({ "enable": true, "nssmdns4": true, "openFirewall": false, "publish": { "enable": true, "addresses": true } })
    );
    assert_eq!(
        m["networking"]["firewall"]["allowedUDPPorts"],
        json!([53, 5353])
    );
}

/// The SD card: journal in RAM, noatime on `/` as a list that merges, /tmp in RAM; kernel
/// parameters as written; the keymap; zram's algorithm.
#[test]
fn storage_kernel_params_keymap_and_zram_algorithm() {
    let text = fleet(
        "",
        "storage = { journal = \"volatile\", noatime = true, tmp = \"tmpfs\" }\n\
         kernel_params = [\"cma=256M\", \"dyndbg=\\\"file x.c +p\\\"\"]\n\
         keymap = \"uk\"\n\
         swap = { zram_algorithm = \"lz4\" }",
        "",
    )
    .replace(
        "state_version = \"26.05\"\n",
        "state_version = \"26.05\"\nkeymap = \"de\"\n",
    );
    let Some(m) = eval_box(&text) else { return };
    assert_eq!(m["services"]["journald"], json!({ "storage": "volatile" }));
    assert_eq!(m["fileSystems"], json!({ "/": { "options": ["noatime"] } }));
    assert_eq!(
        m["boot"],
        json!({ "tmp": { "useTmpfs": true }, "kernelParams": ["cma=256M", "dyndbg=\"file x.c +p\""] })
    );
    assert_eq!(
        m["console"],
        json!({ "keyMap": "uk" }),
        "the host's keymap wins"
    );
    assert_eq!(m["zramSwap"], json!({ "algorithm": "lz4" }));

    let text = fleet(
        "",
        "storage = { journal = \"persistent\", tmp = \"disk\" }",
        "",
    )
    .replace(
        "state_version = \"26.05\"\n",
        "state_version = \"26.05\"\nkeymap = \"de\"\n",
    );
    let Some(m) = eval_box(&text) else { return };
    assert_eq!(
        m["services"]["journald"],
        json!({ "storage": "persistent" })
    );
    assert_eq!(m["boot"], json!({ "tmp": { "useTmpfs": false } }));
    assert_eq!(m.get("fileSystems"), None);
    assert_eq!(
        m["console"],
        json!({ "keyMap": "de" }),
        "the fleet's keymap"
    );
}

/// Pull mode: the flake gets `#<host>`, or keeps the host's own name when written.
#[test]
fn auto_upgrade_builds_this_host_from_the_flake() {
    let text = fleet(
        "",
        "auto_upgrade = { flake = \"git+https://git.example.org/fleet?ref=main\", dates = \"Sat 03:00\", allow_reboot = true }",
        "",
    );
    let Some(m) = eval_box(&text) else { return };
    assert_eq!(
        m["system"]["autoUpgrade"],
        json!({ "enable": true, "flake": "git+https://git.example.org/fleet?ref=main#box", "dates": "Sat 03:00", "allowReboot": true })
    );
    let text = fleet("", "auto_upgrade = { flake = \"github:me/fleet#box\" }", "");
    let Some(m) = eval_box(&text) else { return };
    assert_eq!(
        m["system"]["autoUpgrade"],
        json!({ "enable": true, "flake": "github:me/fleet#box", "dates": "04:40", "allowReboot": false })
    );
}

/// fail2ban's top-level options (the module writes them into its DEFAULT jail), time servers, and
/// the firewall's trusted interfaces and ping.
#[test]
fn fail2ban_time_servers_and_firewall_extras() {
    let text = fleet(
        "",
        "fail2ban = { max_retry = 5, ban_time = \"1h\" }\n\
         time = { ntp_servers = [\"192.168.1.1\", \"0.de.pool.ntp.org\"] }\n\
         firewall = { trusted_interfaces = [\"wg0\"], allow_ping = false }",
        "",
    );
    let Some(m) = eval_box(&text) else { return };
    assert_eq!(
        m["services"]["fail2ban"],
        json!({ "enable": true, "maxretry": 5, "bantime": "1h" })
    );
    assert_eq!(
        m["networking"]["timeServers"],
        json!(["192.168.1.1", "0.de.pool.ntp.org"])
    );
    assert_eq!(
        m["networking"]["firewall"],
        json!({ "enable": true, "trustedInterfaces": ["wg0"], "allowPing": false })
    );
    let text = fleet("", "fail2ban = {}", "");
    let Some(m) = eval_box(&text) else { return };
    assert_eq!(m["services"]["fail2ban"], json!({ "enable": true }));
}

/// Addresses fail2ban never bans, as written (a prefix normalised), and growing bans.
#[test]
fn fail2ban_ignores_the_lan_and_increments_bans() {
    let text = fleet(
        "",
        "fail2ban = { ignore_ip = [\"192.168.1.0/24\", \"10.0.0.5\", \"fd00::/08\"], bantime_increment = true }",
        "",
    );
    let Some(m) = eval_box(&text) else { return };
    assert_eq!(
        m["services"]["fail2ban"],
        json!({
            "enable": true,
            "ignoreIP": ["192.168.1.0/24", "10.0.0.5", "fd00::/8"],
            "bantime-increment": { "enable": true },
        })
    );
    let text = fleet(
        "",
        "fail2ban = { ignore_ip = [], bantime_increment = false }",
        "",
    );
    let Some(m) = eval_box(&text) else { return };
    assert_eq!(m["services"]["fail2ban"], json!({ "enable": true }));
}

/// Binary caches, store optimisation and unfree packages: the predicate, applied by real Nix to
/// packages as nixpkgs builds them, allows the listed names and nothing near them.
#[test]
fn nix_caches_optimise_and_the_unfree_predicate() {
    let text = fleet("", "", "").replace(
        "[ssh]\n",
        "[fleet.nix]\noptimise = true\nsubstituters = [\"https://nix-community.cachix.org\"]\n\
         trusted_public_keys = [\"nix-community.cachix.org-1:mB9FSh9qf2dCimDSUo8Zy7bkq5CX+/rkCWyvRCYg3Fs=\"]\n\n[ssh]\n",
    )
    .replace("state_version = \"26.05\"\n", "state_version = \"26.05\"\nallow_unfree = [\"unrar\"]\n");
    let Some(m) = eval_box(&text) else { return };
    assert_eq!(m["nix"]["optimise"], json!({ "automatic": true }));
    assert_eq!(
        m["nix"]["settings"]["substituters"],
        json!(["https://nix-community.cachix.org"])
    );
    assert_eq!(
        m["nix"]["settings"]["trusted-public-keys"],
        json!(["nix-community.cachix.org-1:mB9FSh9qf2dCimDSUo8Zy7bkq5CX+/rkCWyvRCYg3Fs="])
    );
    // Probes: unrar (listed), unrar-free and steam (not), each with pname and as a bare name.
    assert_eq!(
        m["nixpkgs"]["config"]["allowUnfreePredicate"],
        json!({ "accepts": ["unrar-1.0", "unrar-2.0"] })
    );
}

/// Podman: its own engine and prune timer, the backend named, restart policies on `podman-<name>`.
#[test]
fn podman_runs_containers_in_podman_units() {
    let text = fleet(
        "",
        "container_backend = \"podman\"",
        "[hosts.box.containers.once]\nimage = \"busybox:1.37\"\nrestart = \"no\"\n",
    );
    let Some(m) = eval_box(&text) else { return };
    let v = &m["virtualisation"];
    assert_eq!(
        v["podman"],
        json!({ "enable": true, "autoPrune": { "enable": true } })
    );
    assert_eq!(v.get("docker"), None);
    assert_eq!(v["oci-containers"]["backend"], json!("podman"));
    assert_eq!(
        m["systemd"]["services"],
        json!({ "podman-once": { "serviceConfig": { "Restart": { "_type": "override", "priority": 50, "content": "no" } } } })
    );
}
