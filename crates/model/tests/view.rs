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

fn fleet(ssh: &str, users: &str, host: &str) -> model::Fleet {
    let text = format!(
        "[fleet]\nstate_version = \"26.05\"\n\n[ssh]\n{ssh}\n\n{users}\n\n[hosts.box]\nboard = \"rpi4\"\naddress = \"10.0.0.2\"\n{host}\n"
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
