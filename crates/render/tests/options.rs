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
