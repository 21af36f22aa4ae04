//! What people see: the human rendering of a few diagnostics, pinned with insta (`snapshots/check__*.snap`), and
//! the JSON shape tools rely on.

use std::path::PathBuf;

fn case(name: &str) -> (String, String) {
    let file = format!("{name}.toml");
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/cases")
        .join(&file);
    (std::fs::read_to_string(path).expect("read case"), file)
}

fn settings() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("../../../snapshots");
    settings.set_prepend_module_to_snapshot(false);
    settings
}

#[test]
fn human_output() {
    for name in [
        "unknown_host_field_typo",
        "duplicate_host_port",
        "ssh_key_truncated",
        "toml_unclosed_string",
        "permit_root_login_yes",
        "wifi_plaintext_psk",
        "unknown_user",
        "lockout_root_login_off",
        "container_secret_in_environment",
    ] {
        let (text, file) = case(name);
        let report = check::check_str(&text, &file);
        let rendered = check::render_human(&report, false);
        settings().bind(|| insta::assert_snapshot!(format!("check__{name}"), rendered));
    }
}

#[test]
fn json_output() {
    let (text, file) = case("duplicate_host_port");
    let report = check::check_str(&text, &file);
    let json = serde_json::to_string_pretty(&check::render_json(&report)).expect("json");
    settings().bind(|| insta::assert_snapshot!("check__json_duplicate_host_port", json));
}

const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIN/AROyqCRnG7LR8F2+d+V4hkfckmsMtRuC0uRqBKwjf admin@workstation";

#[test]
fn warnings_render_as_warnings_and_allow_silences_them_with_the_reason_kept() {
    let base = format!(
        "[fleet]\nstate_version = \"26.05\"\n\n[ssh]\npermit_root_login = \"no\"\n\n[users.deploy]\nssh_keys = [\"{KEY}\"]\nsudo = \"no-password\"\n\n[hosts.a]\nboard = \"rpi4\"\naddress = \"10.0.0.2\"\nusers = [\"deploy\"]\ndeploy = {{ user = \"deploy\" }}\n\n[hosts.a.containers.web]\nimage = \"nginx:latest\"\n"
    );
    let report = check::check_str(&base, "w.toml");
    assert_eq!(report.error_count(), 0, "{:?}", report.diagnostics);
    assert_eq!(report.warning_count(), 1);
    assert_eq!(report.diagnostics[0].code, check::Code::UnpinnedImage);
    assert!(check::render_human(&report, false).contains("unpinned_image"));

    let allowed = base.replace(
        "address = \"10.0.0.2\"\n",
        "address = \"10.0.0.2\"\nallow = [{ code = \"unpinned_image\", reason = \"lab box, follows upstream on purpose\" }]\n",
    );
    let report = check::check_str(&allowed, "w.toml");
    assert!(report.diagnostics.is_empty(), "{:?}", report.diagnostics);
    assert_eq!(report.suppressed.len(), 1);
    assert_eq!(
        report.suppressed[0].diagnostic.code,
        check::Code::UnpinnedImage
    );
    assert_eq!(
        report.suppressed[0].reason,
        "lab box, follows upstream on purpose"
    );
    let human = check::render_human(&report, false);
    assert!(
        human.contains("w.toml: no problems found (1 warning silenced by allow)"),
        "{human}"
    );
    let json = check::render_json(&report);
    assert_eq!(json[0]["code"], "unpinned_image");
    assert_eq!(json[0]["severity"], "warning");
    assert_eq!(
        json[0]["suppressed"]["reason"],
        "lab box, follows upstream on purpose"
    );
}

#[test]
fn errors_cannot_be_silenced() {
    let text = "[fleet]\nstate_version = \"26.05\"\n\n[hosts.a]\nboard = \"rpi4\"\naddress = \"10.0.0.2\"\nallow = [{ code = \"deploy_user_without_key\", reason = \"I know\" }]\n";
    let report = check::check_str(text, "e.toml");
    let codes: Vec<&str> = report.diagnostics.iter().map(|d| d.code.name()).collect();
    assert!(codes.contains(&"no_login_method"), "{codes:?}");
    assert!(codes.contains(&"allow_has_no_effect"), "{codes:?}");
    assert!(report.suppressed.is_empty());
}

#[test]
fn a_fleet_container_warning_is_silenced_only_when_every_host_allows_it() {
    let hosts = |allow_b: bool| {
        let allow = "allow = [{ code = \"privileged_container\", reason = \"needs /dev/mem\" }]\n";
        format!(
            "[fleet]\nstate_version = \"26.05\"\n\n[ssh]\npermit_root_login = \"no\"\n\n[users.deploy]\nssh_keys = [\"{KEY}\"]\nsudo = \"no-password\"\n\n[hosts.a]\nboard = \"rpi4\"\naddress = \"10.0.0.2\"\nusers = [\"deploy\"]\ndeploy = {{ user = \"deploy\" }}\ntags = [\"io\"]\n{allow}\n[hosts.b]\nboard = \"rpi4\"\naddress = \"10.0.0.3\"\nusers = [\"deploy\"]\ndeploy = {{ user = \"deploy\" }}\ntags = [\"io\"]\n{}\n[containers.gpio]\nimage = \"example/gpio:1.0\"\nprivileged = true\nplacement = {{ tags = [\"io\"] }}\n",
            if allow_b { allow } else { "" }
        )
    };
    let report = check::check_str(&hosts(false), "f.toml");
    assert_eq!(report.warning_count(), 1, "{:?}", report.diagnostics);
    let report = check::check_str(&hosts(true), "f.toml");
    assert!(report.diagnostics.is_empty(), "{:?}", report.diagnostics);
    assert_eq!(report.suppressed.len(), 1);
}

#[test]
fn load_and_check_returns_the_fleet_with_its_report() {
    let (report, loaded) = check::load_and_check(&case("unknown_user").0, "unknown_user.toml");
    assert!(report.has_errors(), "the rules ran");
    assert!(loaded.is_some_and(|l| l.fleet.hosts.contains_key("pi-one")));
    let (report, loaded) = check::load_and_check(&case("toml_unclosed_string").0, "x.toml");
    assert_eq!(report.diagnostics[0].code, check::Code::TomlSyntax);
    assert!(loaded.is_none());
}

/// Seven hosts inherit a fleet-wide `[ssh]` that accepts passwords and root keys; `h7` sets its own
/// `password_authentication`, so its warning points elsewhere.
fn fleet_wide_warnings() -> String {
    let mut text = format!(
        "[fleet]\nstate_version = \"26.05\"\n\n[ssh]\npermit_root_login = \"prohibit-password\"\npassword_authentication = true\nroot_keys = [\"{KEY}\"]\n\n[users.deploy]\nssh_keys = [\"{KEY}\"]\nsudo = \"no-password\"\n"
    );
    for h in 1..=7 {
        text.push_str(&format!(
            "\n[hosts.h{h}]\nboard = \"rpi4\"\naddress = \"10.0.0.{h}\"\nusers = [\"deploy\"]\ndeploy = {{ user = \"deploy\" }}\n"
        ));
    }
    text.push_str("ssh = { password_authentication = true }\n");
    text
}

#[test]
fn a_warning_every_host_inherits_is_shown_once_with_the_hosts_it_applies_to() {
    let report = check::check_str(&fleet_wide_warnings(), "fleet.toml");
    let codes: Vec<&str> = report.diagnostics.iter().map(|d| d.code.name()).collect();
    assert_eq!(
        codes.iter().filter(|c| **c == "root_login_allowed").count(),
        7,
        "{codes:?}"
    );
    assert_eq!(
        codes
            .iter()
            .filter(|c| **c == "password_authentication_enabled")
            .count(),
        7,
        "{codes:?}"
    );
    assert_eq!(report.warning_count(), 14, "{codes:?}");

    let human = check::render_human(&report, false);
    settings().bind(|| insta::assert_snapshot!("check__fleet_wide_warnings_grouped", human));
    // One snippet for the fleet-wide root login, one for the fleet-wide passwords (six hosts),
    // one for h7's own setting.
    assert_eq!(human.matches("warning[root_login_allowed]").count(), 1);
    assert_eq!(
        human
            .matches("warning[password_authentication_enabled]")
            .count(),
        2
    );
    assert!(
        human.contains(
            "  on 7 hosts: h1, h2, h3, h4, h5 and 2 more (`pifleet check --verbose` names them all)\n"
        ),
        "{human}"
    );
    assert!(
        human.contains("  on 6 hosts: h1, h2, h3, h4, h5 and 1 more"),
        "{human}"
    );
    assert!(human.ends_with("fleet.toml: 14 warnings\n"), "{human}");

    let every = check::render::render_human_with(
        &report,
        check::render::Human {
            color: false,
            every_host: true,
        },
    );
    assert!(
        every.contains("  on 7 hosts: h1, h2, h3, h4, h5, h6, h7\n"),
        "{every}"
    );

    // Tools still get one record per host.
    let json = check::render_json(&report);
    let records = json.as_array().expect("array");
    assert_eq!(records.len(), 14);
    let lines: Vec<_> = records
        .iter()
        .filter(|r| r["code"] == "root_login_allowed")
        .map(|r| (r["path"].as_str().unwrap().to_owned(), r["line"].clone()))
        .collect();
    assert_eq!(lines.len(), 7);
    assert!(
        lines.iter().all(|(_, line)| *line == 5),
        "all point at line 5: {lines:?}"
    );
    assert_eq!(lines[0].0, "hosts.h1.ssh.permit_root_login");
}
