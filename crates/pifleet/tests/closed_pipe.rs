//! A reader that closes the pipe early (`pifleet completions bash | head`) ends pifleet quietly:
//! no panic message, no error line, the status a shell shows for SIGPIPE (141). The pipe's read
//! end is closed before pifleet starts, so its first write fails with EPIPE.

mod tree_support;

use std::io::Read as _;
use std::process::{Command, Stdio};

fn with_closed_stdout(args: &[&str], dir: &std::path::Path) -> (Option<i32>, String) {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let mut child = Command::new(env!("CARGO_BIN_EXE_pifleet"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("PIFLEET_CACHE_DIR", "")
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .spawn()
        .expect("run pifleet");
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    (child.wait().expect("wait").code(), stderr)
}

#[test]
fn every_stdout_writer_ends_quietly_on_a_closed_pipe() {
    let dir = tempfile::tempdir().expect("tempdir");
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fleet.toml");
    std::fs::copy(example, dir.path().join("fleet.toml")).expect("fleet.toml");
    // The example's secrets: check refuses a secret a host reads without its file.
    tree_support::copy_example_secrets(dir.path());
    // println!-based writers, write_all-based writers, and a generator that panicked on them.
    for args in [
        &["completions", "bash"][..],
        &["schema"],
        &["check"],
        &["check", "--format", "json"],
        &["gen"],
        &["deploy", "--dry-run"],
    ] {
        let (code, stderr) = with_closed_stdout(args, dir.path());
        assert!(
            !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
            "pifleet {args:?}: {stderr}"
        );
        assert_eq!(code, Some(141), "pifleet {args:?}: {stderr}");
    }
}
