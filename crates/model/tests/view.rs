//! The resolved host view, fact by fact, with literal expectations: what sshd is told, who can log in
//! and why not, what an account's sudo and password amount to, which ports the firewall opens, and
//! where each effective setting came from.

use model::{
    Elevation, LoginBlock, Origin, PasswordState, SettingValue, SshField, SudoRight, view::KeyLogin,
};

const KEY_A: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBqeFyT5oHWhCY/SKllnU80NkJK46f+SBkowTwVuJjhq a@ws";
const KEY_D: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIJtPll8LZfFkY+7Pe4jvSqlS/m6qdMos/rZ/8KtD5+1 d@ws";

/// One host `box` at 10.0.0.2, unless `host` gives its own `address`.
fn fleet(ssh: &str, users: &str, host: &str) -> model::Fleet {
    let address = if host.contains("address =") {
        ""
    } else {
        "address = \"10.0.0.2\"\n"
    };
    let text = format!(
        "[fleet]\nstate_version = \"26.05\"\n\n[ssh]\n{ssh}\n\n{users}\n\n[hosts.box]\nboard = \"rpi4\"\n{address}{host}\n"
    );
    match model::load_str(&text, "fleet.toml") {
        Ok(loaded) => loaded.fleet,
        Err(e) => panic!("{e}\n{text}"),
    }
}

fn users() -> String {
    format!(
        "[users.admin]\nssh_keys = [\"{KEY_A}\"]\ngroups = [\"wheel\", \"docker\"]\nhashed_password_file = \"/run/h\"\n\n\
         [users.deploy]\nssh_keys = [\"{KEY_D}\"]\nsudo = \"no-password\"\n\n\
         [users.guest]\nhashed_password = \"!\"\n"
    )
}

#[test]
fn accounts_resolve_sudo_passwords_and_groups() {
    let f = fleet(
        "",
        &users(),
        "users = [\"admin\", \"deploy\", \"guest\", \"nobody\"]\ndeploy = { user = \"deploy\" }",
    );
    let view = f.view("box").expect("box");
    let got: Vec<(&str, SudoRight, PasswordState, Vec<&str>)> = view
        .accounts
        .iter()
        .map(|a| (a.name.as_str(), a.sudo, a.password, a.groups.clone()))
        .collect();
    assert_eq!(
        got,
        [
            (
                "admin",
                SudoRight::WithPassword,
                PasswordState::File,
                vec!["wheel", "docker"]
            ),
            (
                "deploy",
                SudoRight::NoPassword,
                PasswordState::None,
                vec!["wheel"]
            ),
            ("guest", SudoRight::None, PasswordState::Locked, vec![]),
        ]
    );
    let unknown: Vec<&str> = view.unknown_users.iter().map(|u| u.as_str()).collect();
    assert_eq!(unknown, ["nobody"]);
    assert_eq!(view.deploy.elevation, Elevation::Sudo);
    assert_eq!(view.nix.trusted_users, ["root", "deploy"]);
}

#[test]
fn the_deploy_user_logs_in_with_its_keys() {
    let f = fleet(
        "permit_root_login = \"no\"",
        &users(),
        "users = [\"admin\", \"deploy\"]\ndeploy = { user = \"deploy\" }",
    );
    let view = f.view("box").expect("box");
    let login = view.deploy_login().expect("deploy can log in");
    assert_eq!(login.keys.len(), 1);
    assert_eq!(login.keys[0].comment(), "d@ws");
    assert!(!login.homedir);
}

#[test]
fn every_reason_a_login_fails_is_listed() {
    let f = fleet(
        "enable = false\nallow_users = [\"admin\"]\ndeny_users = [\"deploy\"]",
        &users().replace(&format!("ssh_keys = [\"{KEY_D}\"]\n"), ""),
        "users = [\"admin\", \"deploy\"]\ndeploy = { user = \"deploy\" }",
    );
    let view = f.view("box").expect("box");
    assert_eq!(
        view.deploy_login(),
        Err(vec![
            LoginBlock::SshdOff,
            LoginBlock::NoKey {
                homedir_read: false
            },
            LoginBlock::NotAllowed {
                allow_users: vec!["admin".into()],
                explicit: true
            },
            LoginBlock::Denied,
        ])
    );
    // An account the host does not declare is deleted by the switch; root needs root logins.
    assert_eq!(
        view.key_login("nixos", true),
        Err(vec![
            LoginBlock::SshdOff,
            LoginBlock::NoAccount,
            LoginBlock::NotAllowed {
                allow_users: vec!["admin".into()],
                explicit: true
            },
        ])
    );
}

#[test]
fn homedir_keys_count_only_for_accounts_that_exist() {
    let f = fleet(
        "authorized_keys_in_homedir = true\npermit_root_login = \"prohibit-password\"",
        "",
        "",
    );
    let view = f.view("box").expect("box");
    assert_eq!(
        view.key_login("root", true),
        Ok(KeyLogin {
            keys: &[],
            homedir: true
        })
    );
    assert_eq!(
        view.key_login("root", false),
        Err(vec![LoginBlock::NoKey { homedir_read: true }])
    );
}

#[test]
fn sshd_settings_in_the_order_the_module_writes_them() {
    let f = fleet(
        "permit_root_login = \"no\"\nextra_settings = { MaxAuthTries = 3, PermitRootLogin = \"yes\", x11forwarding = true }",
        &users(),
        "users = [\"admin\", \"deploy\"]\ndeploy = { user = \"deploy\" }\nssh = { deny_users = [\"guest\"], extra_settings = { maxauthtries = 5 } }",
    );
    let view = f.view("box").expect("box");
    let settings: Vec<(String, SettingValue<'_>)> = view
        .ssh
        .settings()
        .into_iter()
        .map(|(k, v)| (k.into_owned(), v))
        .collect();
    let s = |v: &'static str| SettingValue::Str(v.into());
    let list = |v: &[&'static str]| SettingValue::List(v.iter().map(|s| (*s).into()).collect());
    assert_eq!(
        settings,
        [
            (
                "PasswordAuthentication".to_owned(),
                SettingValue::Bool(false)
            ),
            (
                "KbdInteractiveAuthentication".to_owned(),
                SettingValue::Bool(false)
            ),
            ("PermitRootLogin".to_owned(), s("no")),
            ("AllowUsers".to_owned(), list(&["admin", "deploy"])),
            ("DenyUsers".to_owned(), list(&["guest"])),
            // PermitRootLogin in extra_settings is managed (refused by check, never written);
            // the host's maxauthtries replaced the fleet's MaxAuthTries; x11forwarding replaced the
            // default; both in NixOS's spelling.
            ("MaxAuthTries".to_owned(), SettingValue::Int(5)),
            ("X11Forwarding".to_owned(), SettingValue::Bool(true)),
        ]
    );
    assert_eq!(view.ssh.origin(SshField::DenyUsers), Origin::Host);
    assert_eq!(view.ssh.origin(SshField::PermitRootLogin), Origin::Fleet);
    assert!(!view.ssh.allow_users_explicit);
}

#[test]
fn the_firewall_opens_published_ports_except_on_loopback() {
    let f = fleet(
        "",
        "",
        "firewall = { allowed_tcp_ports = [443] }\nmonitoring = { node_exporter = true, node_exporter_port = 9101, open_firewall = true }\n\
         [hosts.box.containers.web]\nimage = \"nginx:1.27\"\nports = [\"80:80\", \"127.0.0.1:8080:80\", \"5353:5353/udp\"]\nopen_firewall = true\n\
         [hosts.box.containers.db]\nimage = \"postgres:17\"\nports = [\"5432:5432\"]\n",
    );
    let view = f.view("box").expect("box");
    assert_eq!(
        view.firewall.tcp.iter().copied().collect::<Vec<_>>(),
        [80, 443, 9101]
    );
    assert_eq!(
        view.firewall.udp.iter().copied().collect::<Vec<_>>(),
        [5353]
    );
    assert!(view.ssh_port_open());
}

/// The services' facts every analysis reads: the ports they open, the interfaces the firewall
/// trusts, the secrets the host reads, the container engine, and whether SSH is reachable the way
/// deploy comes.
#[test]
fn services_add_ports_trusted_interfaces_secrets_and_the_engine() {
    let f = fleet(
        "open_firewall = false",
        "",
        "address = \"100.101.0.7\"\ncontainer_backend = \"podman\"\n\
         firewall = { trusted_interfaces = [\"wg0\", \"wg0\"] }\n\
         tailscale = { auth_key_secret = \"ts-key\", advertise_routes = [\"192.168.1.0/24\"], trust_interface = true }\n\
         mdns = {}\n\
         auto_upgrade = { flake = \"github:me/fleet\" }\n",
    );
    let view = f.view("box").expect("box");
    assert_eq!(
        view.firewall.udp.iter().copied().collect::<Vec<_>>(),
        [5353, 41641]
    );
    assert_eq!(view.firewall.trusted_interfaces, ["wg0", "tailscale0"]);
    let secrets: Vec<(&str, model::view::SecretPurpose<'_>)> = view
        .secrets
        .iter()
        .map(|s| (s.name.as_str(), s.purpose))
        .collect();
    assert_eq!(
        secrets,
        [("ts-key", model::view::SecretPurpose::TailscaleAuthKey)]
    );
    let files = view.secret_files();
    assert_eq!((files[0].owner, files[0].mode), ("root", "0400"));
    assert_eq!(view.container_backend, model::ContainerBackend::Podman);
    let ts = view.tailscale.as_ref().expect("tailscale runs");
    assert_eq!(ts.routing, model::RoutingFeatures::Server);
    assert_eq!(ts.set_flags(), ["--advertise-routes=192.168.1.0/24"]);
    assert_eq!(ts.up_flags(), ["--advertise-routes=192.168.1.0/24"]);
    assert_eq!(
        view.auto_upgrade.as_ref().map(|u| u.flake.as_str()),
        Some("github:me/fleet#box")
    );
    assert!(view.deploy_via_tailnet());
    assert!(view.ssh_port_open(), "tailscale0 is trusted");

    let untrusted = fleet(
        "open_firewall = false",
        "",
        "address = \"100.101.0.7\"\ntailscale = { auth_key_secret = \"ts-key\" }\n",
    );
    let view = untrusted.view("box").expect("box");
    assert_eq!(view.firewall.trusted_interfaces, Vec::<String>::new());
    assert!(
        !view.ssh_port_open(),
        "SSH closed and the tailnet not trusted"
    );
}

/// Tags are asked for at login only (`tailscale set` does not take them); Tailscale SSH and DNS
/// are flags of both, written only when the inventory says something.
#[test]
fn tailscale_tags_go_to_the_login_and_ssh_and_dns_to_both() {
    let f = fleet(
        "",
        "",
        "tailscale = { advertise_tags = [\"tag:server\", \"tag:pi\"], ssh = true, accept_dns = false, exit_node = true }",
    );
    let view = f.view("box").expect("box");
    let ts = view.tailscale.as_ref().expect("tailscale runs");
    assert_eq!(
        ts.set_flags(),
        ["--advertise-exit-node", "--ssh", "--accept-dns=false"]
    );
    assert_eq!(
        ts.up_flags(),
        [
            "--advertise-exit-node",
            "--ssh",
            "--accept-dns=false",
            "--advertise-tags=tag:server,tag:pi"
        ]
    );

    let f = fleet("", "", "tailscale = { ssh = false, accept_dns = true }");
    let view = f.view("box").expect("box");
    let ts = view.tailscale.as_ref().expect("tailscale runs");
    assert_eq!(ts.set_flags(), ["--ssh=false", "--accept-dns=true"]);
    assert_eq!(ts.up_flags(), ts.set_flags());

    let f = fleet("", "", "tailscale = {}");
    let view = f.view("box").expect("box");
    let ts = view.tailscale.as_ref().expect("tailscale runs");
    assert!(ts.up_flags().is_empty() && ts.set_flags().is_empty());
}

/// fail2ban is in the view only while it runs.
#[test]
fn fail2ban_is_seen_only_when_it_runs() {
    let f = fleet(
        "",
        "",
        "fail2ban = { ignore_ip = [\"192.168.1.0/24\", \"10.0.0.5\"], bantime_increment = true }",
    );
    let view = f.view("box").expect("box");
    let f2b = view.fail2ban.expect("fail2ban runs");
    let ignored: Vec<String> = f2b.ignore_ip.iter().map(ToString::to_string).collect();
    assert_eq!(ignored, ["192.168.1.0/24", "10.0.0.5"]);
    assert!(f2b.bantime_increment);

    let f = fleet(
        "",
        "",
        "fail2ban = { enable = false, bantime_increment = true }",
    );
    assert!(f.view("box").expect("box").fail2ban.is_none());
}
