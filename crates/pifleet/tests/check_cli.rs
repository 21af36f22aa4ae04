//! `pifleet check` and `pifleet schema` end to end: output, formats and exit codes.

mod tree_support;

use std::path::PathBuf;
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Copies the example's `secrets/` (the ciphertext its hosts read) into `to`, as a clone has it.
fn copy_secrets(to: &std::path::Path) {
    tree_support::copy_example_secrets(to);
}

fn pifleet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pifleet"))
        .args(args)
        .current_dir(repo())
        .env("NO_COLOR", "1")
        .output()
        .expect("run pifleet")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn the_example_fleet_checks_clean_by_default() {
    let out = pifleet(&["check"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("fleet.toml: no problems found"));
}

#[test]
fn errors_exit_1_with_snippet_code_and_help() {
    let out = pifleet(&["check", "-f", "crates/check/tests/cases/unknown_user.toml"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("error[unknown_user]"), "{text}");
    assert!(text.contains("unknown_user.toml:12:16"), "{text}");
    assert!(text.contains("help:"), "{text}");
    assert!(text.contains("1 error"), "{text}");
}

#[test]
fn json_format_lists_diagnostics() {
    let out = pifleet(&[
        "check",
        "--format",
        "json",
        "-f",
        "crates/check/tests/cases/duplicate_host_port.toml",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    let d = &json[0];
    assert_eq!(d["code"], "duplicate_host_port");
    assert_eq!(d["severity"], "error");
    assert_eq!(d["line"], 20);
    assert_eq!(d["column"], 10);
    assert_eq!(d["path"], "hosts.pi-one.containers.b.ports[0]");
    assert!(
        d["file"]
            .as_str()
            .is_some_and(|f| f.ends_with("duplicate_host_port.toml"))
    );
    assert!(d["message"].is_string() && d["help"].is_string());

    let clean = pifleet(&["check", "--format", "json"]);
    assert_eq!(clean.status.code(), Some(0));
    assert_eq!(stdout(&clean).trim(), "[]");
}

#[test]
fn warnings_alone_exit_0() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("fleet.toml");
    std::fs::write(
        &path,
        "[fleet]\nstate_version = \"26.05\"\n\n[ssh]\nroot_keys = [\"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBqeFyT5oHWhCY/SKllnU80NkJK46f+SBkowTwVuJjhq eduardo@hhlab\"]\n\n[hosts.a]\nboard = \"rpi4\"\naddress = \"10.0.0.2\"\n\n[hosts.a.containers.web]\nimage = \"nginx:latest\"\n",
    )
    .expect("write");
    let out = pifleet(&["check", "-f", path.to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("warning[unpinned_image]"));
    assert!(stdout(&out).contains("warning[root_login_allowed]"));
}

#[test]
fn unreadable_inventory_and_bad_usage_exit_2() {
    let out = pifleet(&["check", "-f", "/nonexistent/fleet.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("cannot read the inventory /nonexistent/fleet.toml")
    );
    let out = pifleet(&["check", "--format", "yaml"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn help_documents_exit_codes() {
    let out = pifleet(&["check", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(
        text.contains("Exit codes:") && text.contains("1  the inventory has errors"),
        "{text}"
    );
    assert!(text.contains("[default: fleet.toml]"), "{text}");
}

#[test]
fn schema_prints_the_committed_schema() {
    let out = pifleet(&["schema"]);
    assert_eq!(out.status.code(), Some(0));
    let committed =
        std::fs::read_to_string(repo().join("schema/fleet.schema.json")).expect("committed schema");
    assert!(
        stdout(&out) == committed,
        "run `pifleet schema > schema/fleet.schema.json`"
    );
}

#[test]
fn dash_reads_the_inventory_from_stdin() {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_pifleet"))
        .args(["check", "-f", "-"])
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"[fleet]\nstate_version = \"26.05\"\nlocal = \"C\"\n")
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("<stdin>:3:1") && text.contains("did you mean `locale`?"),
        "{text}"
    );
}

/// A value that would move the cursor or retitle the terminal is shown escaped, never raw: in a
/// semantic diagnostic (the description) and in a load error quoting a key (an unknown field).
#[test]
fn control_characters_in_values_are_escaped_in_the_output() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (inventory, code, shown) in [
        (
            "[fleet]\nstate_version = \"26.05\"\n\n[users.pi]\ndescription = \"x\\u001b]0;pwned\\u0007\\u001b[2J\"\n",
            "error[control_character]",
            "'\\u{1b}'",
        ),
        (
            "[fleet]\nstate_version = \"26.05\"\n\"b\\u001b[2Jd\" = 1\n",
            "error[unknown_field]",
            "b\\u{1b}[2Jd",
        ),
    ] {
        let file = dir.path().join("fleet.toml");
        std::fs::write(&file, inventory).expect("write");
        let out = pifleet(&["check", "-f", file.to_str().expect("utf-8 path")]);
        assert_eq!(out.status.code(), Some(1));
        let text = stdout(&out);
        assert!(text.contains(code), "{text}");
        assert!(text.contains(shown), "{text}");
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{7}'),
            "raw escapes: {text:?}"
        );
    }
}

/// Devices and FIFOs are refused before anything is read (exit 2), so `-f /dev/sda` cannot hang or
/// read a disk.
#[test]
fn devices_are_not_inventories() {
    let out = pifleet(&["check", "-f", "/dev/zero"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/dev/zero is a character device, not a file"),
        "{err}"
    );
}

/// `gen -f -` reads the inventory from stdin like `check -f -`, and writes next to the current directory.
#[test]
fn gen_reads_the_inventory_from_stdin() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().expect("temp dir");
    copy_secrets(dir.path());
    let mut child = Command::new(env!("CARGO_BIN_EXE_pifleet"))
        .args(["gen", "-f", "-"])
        .current_dir(dir.path())
        .env("PIFLEET_CACHE_DIR", "")
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run pifleet");
    let text = std::fs::read(repo().join("fleet.toml")).expect("example fleet");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&text)
        .expect("feed");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for file in [
        "default.nix",
        "rpi-box-01/default.nix",
        "rpi-box-03/default.nix",
    ] {
        let written = std::fs::read_to_string(dir.path().join("hosts").join(file)).expect(file);
        let committed = std::fs::read_to_string(repo().join("hosts").join(file)).expect(file);
        assert_eq!(
            written, committed,
            "{file} is what gen writes from fleet.toml"
        );
    }
}
