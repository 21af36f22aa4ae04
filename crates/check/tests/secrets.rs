//! The secrets family against real files: keys come from `ssh-keygen`, and every age file is
//! written by the real `age` CLI (`age -R`), so what `check` reads from the headers is what another
//! tool wrote, not what our own encryption produced.
#![allow(clippy::unwrap_used, reason = "tests: a failure is the test failing")]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

struct Repo {
    dir: tempfile::TempDir,
    admin: String,
    other_user: String,
    a: String,
    b: String,
    c: String,
}

fn keygen(dir: &Path, name: &str) -> String {
    let path = dir.join(name);
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&path)
        .output()
        .expect("ssh-keygen (apt-get install openssh-client)");
    assert!(out.status.success(), "{out:?}");
    fs::read_to_string(path.with_extension("pub"))
        .unwrap()
        .trim()
        .to_owned()
}

impl Repo {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        fs::create_dir(&keys).unwrap();
        fs::create_dir(dir.path().join("secrets")).unwrap();
        Repo {
            admin: keygen(&keys, "admin"),
            other_user: keygen(&keys, "other"),
            a: keygen(&keys, "a"),
            b: keygen(&keys, "b"),
            c: keygen(&keys, "c"),
            dir,
        }
    }

    /// Hosts `a` and `c` exist; `a` reads the Wi-Fi secret; `b_reads` adds host `b`, reading it too.
    fn inventory(&self, b_reads: bool) -> String {
        let mut text = format!(
            r#"[fleet]
state_version = "26.05"
admins = ["admin"]

[users.admin]
ssh_keys = ["{admin}"]
sudo = "no-password"

[users.other]
ssh_keys = ["{other}"]

[hosts.a]
board = "zero2w"
address = "10.0.0.2"
host_key = "{a}"
users = ["admin"]
deploy = {{ user = "admin" }}
wifi = {{ ssid = "home", psk_secret = "wifi" }}

[hosts.c]
board = "rpi4"
address = "10.0.0.3"
host_key = "{c}"
users = ["admin"]
deploy = {{ user = "admin" }}
"#,
            admin = self.admin,
            other = self.other_user,
            a = self.a,
            c = self.c,
        );
        if b_reads {
            text.push_str(&format!(
                r#"
[hosts.b]
board = "zero2w"
address = "10.0.0.4"
host_key = "{b}"
users = ["admin"]
deploy = {{ user = "admin" }}
wifi = {{ ssid = "home", psk_secret = "wifi" }}
"#,
                b = self.b
            ));
        }
        text
    }

    /// Encrypts `plaintext` with the age CLI to `recipients` (public key lines) into `secrets/<rel>`.
    fn age(&self, rel: &str, recipients: &[&str]) -> PathBuf {
        let list = self.dir.path().join("recipients.txt");
        fs::write(&list, recipients.join("\n") + "\n").unwrap();
        let out_path = self.dir.path().join("secrets").join(rel);
        fs::create_dir_all(out_path.parent().unwrap()).unwrap();
        let mut child = Command::new("age")
            .arg("-R")
            .arg(&list)
            .arg("-o")
            .arg(&out_path)
            .stdin(Stdio::piped())
            .spawn()
            .expect("age (apt-get install age)");
        use std::io::Write as _;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"psk=correct horse battery\n")
            .unwrap();
        assert!(child.wait().unwrap().success());
        out_path
    }

    /// `(code, line, message)` of the secrets-related diagnostics.
    fn check(&self, inventory: &str) -> Vec<(String, usize, String)> {
        let report = check::check_bytes(inventory.as_bytes(), "fleet.toml", Some(self.dir.path()));
        report
            .diagnostics
            .iter()
            .filter(|d| {
                matches!(
                    d.code.name(),
                    "not_an_age_file"
                        | "secret_not_encrypted_for_host"
                        | "secret_needs_rekey"
                        | "secret_file_missing"
                        | "host_key_missing"
                )
            })
            .map(|d| {
                let line = d.span.map_or(0, |s| report.source.line_col(s.start).0);
                (d.code.name().to_owned(), line, d.message.clone())
            })
            .collect()
    }
}

fn codes(found: &[(String, usize, String)]) -> Vec<(&str, usize)> {
    found.iter().map(|(c, l, _)| (c.as_str(), *l)).collect()
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

#[test]
fn a_secret_encrypted_to_its_readers_and_admins_is_clean() {
    let repo = Repo::new();
    repo.age("wifi.age", &[&repo.admin, &repo.a]);
    let found = repo.check(&repo.inventory(false));
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn a_missing_secret_file_is_an_error_at_its_first_use() {
    let repo = Repo::new();
    let text = repo.inventory(false);
    let found = repo.check(&text);
    assert_eq!(
        codes(&found),
        [("secret_file_missing", line_of(&text, "psk_secret"))]
    );
    assert!(found[0].2.contains("secrets/wifi.age"), "{found:?}");
}

#[test]
fn a_new_reader_the_file_predates_cannot_decrypt_it() {
    let repo = Repo::new();
    repo.age("wifi.age", &[&repo.admin, &repo.a]);
    let text = repo.inventory(true);
    let found = repo.check(&text);
    // Host b's host_key line: the key the file lacks.
    let b_key_line = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.starts_with("host_key"))
        .nth(2)
        .unwrap()
        .0
        + 1;
    assert_eq!(
        codes(&found),
        [("secret_not_encrypted_for_host", b_key_line)],
        "{found:#?}"
    );
    assert!(found[0].2.contains("host key of `b`"), "{}", found[0].2);
    // Once encrypted to b as well, it is clean.
    repo.age("wifi.age", &[&repo.admin, &repo.a, &repo.b]);
    assert!(repo.check(&text).is_empty());
}

#[test]
fn keys_that_no_longer_need_a_secret_are_named() {
    let repo = Repo::new();
    let stranger = keygen(repo.dir.path(), "stranger");
    repo.age("wifi.age", &[&repo.admin, &repo.a, &repo.c, &stranger]);
    let text = repo.inventory(false);
    let found = repo.check(&text);
    assert_eq!(
        codes(&found),
        [("secret_needs_rekey", line_of(&text, "psk_secret"))],
        "{found:#?}"
    );
    let message = &found[0].2;
    assert!(message.contains("the host key of `c`"), "{message}");
    assert!(
        message.contains("an unknown ssh-ed25519 key with tag"),
        "{message}"
    );
}

#[test]
fn a_file_an_admin_cannot_read_needs_a_rekey() {
    let repo = Repo::new();
    repo.age("wifi.age", &[&repo.a, &repo.other_user]);
    let text = repo.inventory(false);
    let found = repo.check(&text);
    let mut got: Vec<&str> = found.iter().map(|f| f.2.as_str()).collect();
    got.sort();
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(
        got.iter()
            .any(|m| m.contains("not encrypted to admin `admin`")),
        "{got:?}"
    );
    assert!(
        got.iter().any(|m| m.contains("a key of user `other`")),
        "{got:?}"
    );
}

#[test]
fn plain_text_under_secrets_is_an_error_and_never_repeated() {
    let repo = Repo::new();
    let secrets = repo.dir.path().join("secrets");
    fs::write(secrets.join("wifi.age"), "psk=hunter2-plain\n").unwrap();
    fs::write(
        secrets.join("notes.txt"),
        "router admin password: hunter3\n",
    )
    .unwrap();
    fs::write(secrets.join("README.md"), "# Encrypted secrets\n").unwrap();
    fs::write(secrets.join(".gitattributes"), "*.age binary\n").unwrap();
    let found = repo.check(&repo.inventory(false));
    let mut files: Vec<&str> = found
        .iter()
        .map(|(code, _, message)| {
            assert_eq!(code, "not_an_age_file", "{found:#?}");
            assert!(
                !message.contains("hunter"),
                "the secret is repeated: {message}"
            );
            message.split(' ').next().unwrap()
        })
        .collect();
    files.sort();
    assert_eq!(files, ["secrets/notes.txt", "secrets/wifi.age"]);
}

#[test]
fn host_key_backups_are_for_admins_only() {
    let repo = Repo::new();
    repo.age("wifi.age", &[&repo.admin, &repo.a]);
    repo.age("host-keys/a.age", &[&repo.admin]);
    assert!(repo.check(&repo.inventory(false)).is_empty());

    repo.age("host-keys/a.age", &[&repo.admin, &repo.a]);
    let found = repo.check(&repo.inventory(false));
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].0, "secret_needs_rekey");
    assert!(
        found[0]
            .2
            .starts_with("secrets/host-keys/a.age is still encrypted to the host key of `a`"),
        "{}",
        found[0].2
    );
}

#[test]
fn a_secret_no_host_reads_yet_needs_only_the_admins() {
    let repo = Repo::new();
    repo.age("wifi.age", &[&repo.admin, &repo.a]);
    repo.age("later.age", &[&repo.admin]);
    assert!(repo.check(&repo.inventory(false)).is_empty());
}
