//! Secrets and host identity end to end, with real parts: keys from `ssh-keygen`, the real `age`
//! CLI decrypting what pifleet encrypted (with the host key pifleet wrote onto a real ext4 card,
//! read back with `debugfs`), image files and loop devices, and real `sshd` on loopback for
//! `hostkey scan` and pinned deploys.
//!
//! Stand-ins: `nix` (for `flash HOST`) is a script that "builds" by copying a prepared card image,
//! because real Nix cannot build a NixOS image here; `nixos-rebuild` in the deploy test is the
//! deploy lab's recording stand-in (see `deploy_support`). Loop devices need root: these tests
//! fail rather than skip under `PIFLEET_REQUIRE_LOOP=1` (scripts/test).

mod card_support;
mod deploy_support;

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use card_support::support::Loop;
use card_support::{Layout, ROOT_START, debugfs, partitioned_image, stat};

const PASSPHRASE: &str = "correct horse battery staple";

fn run(cmd: &mut Command, input: Option<&str>) -> (i32, String, String) {
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .env("NO_COLOR", "1")
    .env("PIFLEET_CACHE_DIR", "")
    .env_remove("PIFLEET_IDENTITY");
    let mut child = cmd.spawn().expect("run pifleet");
    if let Some(input) = input {
        // A command that refuses before reading (a bad secret name) closes the pipe first.
        match child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
        {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
            other => other.expect("write stdin"),
        }
    }
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().expect("wait");
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

fn ok(output: Output) -> Vec<u8> {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// A fleet repository: an admin key made by ssh-keygen, and a Wi-Fi-only Zero 2 W.
struct Repo {
    dir: tempfile::TempDir,
}

impl Repo {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("keys")).expect("keys");
        let repo = Repo { dir };
        repo.keygen("admin");
        let admin = repo.public("admin");
        repo.write(
            "fleet.toml",
            &format!(
                r#"# The kitchen fleet.
[fleet]
state_version = "26.05"
admins = ["ops"]   # they hold every secret

[users.ops]
ssh_keys = ["{admin}"]
sudo = "no-password"

[hosts.zero]  # a Zero 2 W with no Ethernet
board = "zero2w"
address = "10.0.0.7"
deploy = {{ user = "ops" }}
users = ["ops"]
wifi = {{ ssid = "home", psk_secret = "home-wifi" }}
"#
            ),
        );
        repo
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn write(&self, rel: &str, text: &str) {
        std::fs::write(self.path(rel), text).expect("write");
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    /// `keys/<name>` and `.pub`, by ssh-keygen.
    fn keygen(&self, name: &str) -> PathBuf {
        let path = self.path(&format!("keys/{name}"));
        ok(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
            .arg(&path)
            .output()
            .expect("ssh-keygen"));
        path
    }

    fn public(&self, name: &str) -> String {
        self.read(&format!("keys/{name}.pub")).trim().to_owned()
    }

    fn pifleet(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pifleet"));
        cmd.current_dir(self.dir.path());
        cmd
    }

    /// pifleet with the admin's key as identity.
    fn as_admin(&self, args: &[&str], input: Option<&str>) -> (i32, String, String) {
        let mut cmd = self.pifleet();
        cmd.args(args)
            .arg("--identity")
            .arg(self.path("keys/admin"));
        run(&mut cmd, input)
    }

    /// Decrypts `file` with the real age CLI and the private key `identity`.
    fn age_decrypt(&self, identity: &Path, file: &str) -> Output {
        Command::new("age")
            .arg("-d")
            .arg("-i")
            .arg(identity)
            .arg(self.path(file))
            .output()
            .expect("age (apt-get install age)")
    }

    /// hostkey new, then secrets set: the state before any card is written.
    fn enrolled(&self) -> String {
        let (code, _, stderr) = self.as_admin(&["hostkey", "new", "zero"], None);
        assert_eq!(code, 0, "{stderr}");
        let (code, _, stderr) = run(
            self.pifleet().args(["secrets", "set", "home-wifi"]),
            Some(&format!("{PASSPHRASE}\n")),
        );
        assert_eq!(code, 0, "{stderr}");
        assert!(
            stderr.contains("encrypted secrets/home-wifi.age to admin `ops`, host `zero`"),
            "{stderr}"
        );
        let fleet = self.read("fleet.toml");
        let line = fleet
            .lines()
            .find(|l| l.starts_with("host_key = "))
            .expect("host_key recorded");
        line.trim_start_matches("host_key = ")
            .trim_matches('"')
            .to_owned()
    }

    /// The host key on the card at `spec` is root's, 0600 (and .pub 0644); it is the recorded key,
    /// and the age CLI decrypts the Wi-Fi secret with it.
    fn assert_card_holds_the_key(&self, spec: &str, recorded: &str) {
        assert_eq!(
            stat(spec, "/etc/ssh"),
            Some(("directory".into(), "0755".into(), 0, 0))
        );
        assert_eq!(
            stat(spec, "/etc/ssh/ssh_host_ed25519_key"),
            Some(("regular".into(), "0600".into(), 0, 0))
        );
        assert_eq!(
            stat(spec, "/etc/ssh/ssh_host_ed25519_key.pub"),
            Some(("regular".into(), "0644".into(), 0, 0))
        );
        let private = debugfs(spec, "cat /etc/ssh/ssh_host_ed25519_key");
        assert!(private.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"));
        let key_file = self.path("card-key");
        std::fs::write(&key_file, &private).expect("key");
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let derived = String::from_utf8(ok(Command::new("ssh-keygen")
            .arg("-y")
            .arg("-f")
            .arg(&key_file)
            .output()
            .expect("ssh-keygen -y")))
        .expect("utf-8");
        let words = |s: &str| s.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
        assert_eq!(words(&derived), words(recorded));
        let public = debugfs(spec, "cat /etc/ssh/ssh_host_ed25519_key.pub");
        assert_eq!(words(&public), words(recorded));
        let wifi = ok(self.age_decrypt(&key_file, "secrets/home-wifi.age"));
        assert_eq!(wifi, format!("psk={PASSPHRASE}\n").as_bytes());
        std::fs::remove_file(&key_file).expect("rm");
        let fsck = Command::new("e2fsck")
            .args(["-fn", spec])
            .output()
            .expect("e2fsck");
        assert!(
            fsck.status.success(),
            "{}",
            String::from_utf8_lossy(&fsck.stdout)
        );
    }

    /// A stand-in `nix` on PATH whose `build` copies `image` to `<out>/sd-image/` and prints `<out>`.
    fn fake_nix(&self, image: &Path) -> String {
        let bin = self.path("bin");
        std::fs::create_dir_all(&bin).expect("bin");
        let script = bin.join("nix");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'nix (Nix) 2.24.14'; exit 0; fi\nprintf '%s\\n' \"$@\" >> {log}\nout={out}\nmkdir -p \"$out/sd-image\"\ncp {image} \"$out/sd-image/zero.img\"\necho \"$out\"\n",
                log = self.path("nix-argv").display(),
                out = self.path("out").display(),
                image = image.display()
            ),
        )
        .expect("script");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        )
    }
}

#[test]
fn hostkey_new_keeps_the_private_key_only_encrypted_and_records_the_public_one() {
    let repo = Repo::new();
    let before = repo.read("fleet.toml");
    let recorded = repo.enrolled();
    let after = repo.read("fleet.toml");
    // Comments and layout kept: the only change is the added line.
    let added: Vec<&str> = after.lines().filter(|l| !before.contains(l)).collect();
    assert_eq!(added, [format!("host_key = \"{recorded}\"")]);
    assert!(recorded.ends_with(" root@zero"), "{recorded}");
    // The private key exists only as age ciphertext, which the admin's key opens.
    let sealed = std::fs::read(repo.path("secrets/host-keys/zero.age")).expect("sealed");
    assert!(sealed.starts_with(b"age-encryption.org/v1\n"));
    let private = ok(repo.age_decrypt(&repo.path("keys/admin"), "secrets/host-keys/zero.age"));
    assert!(private.starts_with(b"-----BEGIN OPENSSH PRIVATE KEY-----"));
    // `show` prints it as one line, and check is clean.
    let (code, stdout, _) = run(repo.pifleet().args(["hostkey", "show", "zero"]), None);
    assert_eq!((code, stdout.trim()), (0, recorded.as_str()));
    let (code, _, stderr) = run(repo.pifleet().arg("check"), None);
    assert_eq!(code, 0, "{stderr}");
    // A second `new` refuses rather than pinning a key the host would not hold.
    let (code, _, stderr) = repo.as_admin(&["hostkey", "new", "zero"], None);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("already has a host key"), "{stderr}");
    // gen writes the key into known_hosts under the host's name and the module reads the secret.
    let (code, _, stderr) = run(repo.pifleet().arg("gen"), None);
    assert_eq!(code, 0, "{stderr}");
    let known = repo.read("hosts/known_hosts");
    let words: Vec<&str> = recorded.split_whitespace().take(2).collect();
    assert!(
        known.contains(&format!("zero {}", words.join(" "))),
        "{known}"
    );
    let module = repo.read("hosts/zero/default.nix");
    assert!(module.contains("../../secrets/home-wifi.age"), "{module}");
    assert!(
        module.contains("config.age.secrets.home-wifi.path"),
        "{module}"
    );
}

#[test]
fn keys_inject_writes_the_host_key_that_decrypts_the_wifi_secret() {
    let repo = Repo::new();
    let recorded = repo.enrolled();
    let card = partitioned_image(repo.dir.path(), Some(Layout::Booted));
    // No --key: the host key alone.
    let (code, _, stderr) = repo.as_admin(
        &[
            "keys",
            "inject",
            card.to_str().expect("utf-8"),
            "--host-key",
            "zero",
        ],
        None,
    );
    assert_eq!(code, 0, "{stderr}");
    let spec = format!("{}?offset={ROOT_START}", card.display());
    repo.assert_card_holds_the_key(&spec, &recorded);
    assert!(!stderr.contains("PRIVATE KEY"), "{stderr}");
    // Once more: nothing changes.
    let (code, _, stderr) = repo.as_admin(
        &[
            "keys",
            "inject",
            card.to_str().expect("utf-8"),
            "--host-key",
            "zero",
        ],
        None,
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("kept /etc/ssh/ssh_host_ed25519_key"),
        "{stderr}"
    );
}

#[test]
fn flash_builds_writes_and_puts_the_host_key_on_an_image_file_and_a_loop_device() {
    let repo = Repo::new();
    let recorded = repo.enrolled();
    // The "built" image: a card that never booted (no /etc/ssh).
    let built_dir = repo.path("built");
    std::fs::create_dir(&built_dir).expect("dir");
    let built = partitioned_image(&built_dir, Some(Layout::Fresh));
    let path = repo.fake_nix(&built);

    let card = repo.path("card.img");
    let (code, _, stderr) = run(
        repo.pifleet()
            .args(["flash", "zero"])
            .arg(&card)
            .args(["--yes", "--identity"])
            .arg(repo.path("keys/admin"))
            .env("PATH", &path),
        None,
    );
    assert_eq!(code, 0, "{stderr}");
    let argv = repo.read("nix-argv");
    assert!(argv.lines().any(|l| l == ".#zero-sd"), "{argv}");
    repo.assert_card_holds_the_key(
        &format!("{}?offset={ROOT_START}", card.display()),
        &recorded,
    );

    // A loop device over a blank file, as a card reader would present one.
    let backing = repo.path("loop-backing");
    let file = std::fs::File::create(&backing).expect("backing");
    file.set_len(64 << 20).expect("size");
    drop(file);
    let Some(lo) = Loop::attach(&backing, false) else {
        return;
    };
    let (code, _, stderr) = run(
        repo.pifleet()
            .args(["flash", "zero"])
            .arg(&lo.device)
            .args(["--yes", "--force", "--identity"])
            .arg(repo.path("keys/admin"))
            .env("PATH", &path),
        None,
    );
    assert_eq!(code, 0, "{stderr}");
    repo.assert_card_holds_the_key(
        &format!("{}?offset={ROOT_START}", lo.device.display()),
        &recorded,
    );
}

#[test]
fn flash_creates_a_missing_host_key_and_refuses_before_building_when_a_secret_is_missing() {
    let repo = Repo::new();
    let built_dir = repo.path("built");
    std::fs::create_dir(&built_dir).expect("dir");
    let built = partitioned_image(&built_dir, Some(Layout::Fresh));
    let path = repo.fake_nix(&built);
    let card = repo.path("card.img");
    let flash = |repo: &Repo| {
        run(
            repo.pifleet()
                .args(["flash", "zero"])
                .arg(&card)
                .args(["--yes", "--identity"])
                .arg(repo.path("keys/admin"))
                .env("PATH", &path),
            None,
        )
    };
    // No secret yet: the key is made, then the build is refused, nothing written.
    let (code, _, stderr) = flash(&repo);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("has no host key yet: making one"),
        "{stderr}"
    );
    assert!(
        stderr.contains("secrets/home-wifi.age does not exist: `pifleet secrets set home-wifi`"),
        "{stderr}"
    );
    assert!(!repo.path("nix-argv").exists(), "nothing was built");
    assert!(!card.exists(), "nothing was written");
    assert!(repo.read("fleet.toml").contains("host_key = "));

    let (code, _, stderr) = run(
        repo.pifleet().args(["secrets", "set", "home-wifi"]),
        Some(PASSPHRASE),
    );
    assert_eq!(code, 0, "{stderr}");
    let (code, _, stderr) = flash(&repo);
    assert_eq!(code, 0, "{stderr}");
    let recorded = repo
        .read("fleet.toml")
        .lines()
        .find_map(|l| l.strip_prefix("host_key = "))
        .expect("host_key")
        .trim_matches('"')
        .to_owned();
    repo.assert_card_holds_the_key(
        &format!("{}?offset={ROOT_START}", card.display()),
        &recorded,
    );
}

#[test]
fn a_new_reader_fails_check_until_rekey() {
    let repo = Repo::new();
    repo.enrolled();
    // A second board reads the same Wi-Fi; its key was made elsewhere.
    let other = repo.keygen("other-host");
    let other_pub = repo.public("other-host");
    let mut fleet = repo.read("fleet.toml");
    fleet.push_str(&format!(
        "\n[hosts.zero-two]\nboard = \"zero2w\"\naddress = \"10.0.0.8\"\ndeploy = {{ user = \"ops\" }}\nusers = [\"ops\"]\nhost_key = \"{other_pub}\"\nwifi = {{ ssid = \"home\", psk_secret = \"home-wifi\" }}\n"
    ));
    repo.write("fleet.toml", &fleet);
    let (code, stdout, _) = run(repo.pifleet().arg("check"), None);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("error[secret_not_encrypted_for_host]"),
        "{stdout}"
    );
    assert!(
        stdout.contains("pifleet secrets rekey home-wifi"),
        "{stdout}"
    );
    assert!(
        !repo
            .age_decrypt(&other, "secrets/home-wifi.age")
            .status
            .success()
    );

    let (code, _, stderr) = run(repo.pifleet().args(["secrets", "list"]), None);
    assert_eq!(code, 1, "{stderr}");
    let (code, _, stderr) = repo.as_admin(&["secrets", "rekey"], None);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains(
            "encrypted secrets/home-wifi.age to admin `ops`, host `zero`, host `zero-two`"
        ),
        "{stderr}"
    );
    let (code, _, stderr) = run(repo.pifleet().arg("check"), None);
    assert_eq!(code, 0, "{stderr}");
    let wifi = ok(repo.age_decrypt(&other, "secrets/home-wifi.age"));
    assert_eq!(wifi, format!("psk={PASSPHRASE}\n").as_bytes());
    let (code, stdout, _) = run(
        repo.pifleet().args(["secrets", "list", "--format", "json"]),
        None,
    );
    assert_eq!(code, 0);
    let list: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    let wifi = list
        .as_array()
        .expect("array")
        .iter()
        .find(|e| e["name"] == "home-wifi")
        .expect("listed");
    assert_eq!(wifi["status"], "current");
    assert_eq!(wifi["readers"], serde_json::json!(["zero", "zero-two"]));
}

#[test]
fn files_the_age_cli_encrypts_open_with_pifleet_and_a_wrong_key_says_whose_keys_fit() {
    let repo = Repo::new();
    repo.enrolled();
    // Written by the age CLI to the admin alone.
    let recipients = repo.path("keys/admin.pub");
    let mut age = Command::new("age")
        .arg("-R")
        .arg(&recipients)
        .arg("-a")
        .arg("-o")
        .arg(repo.path("secrets/token.age"))
        .stdin(Stdio::piped())
        .spawn()
        .expect("age");
    age.stdin
        .take()
        .expect("stdin")
        .write_all(b"TOKEN=from-the-cli\n")
        .expect("write");
    assert!(age.wait().expect("age").success());
    let (code, stdout, stderr) = repo.as_admin(&["secrets", "show", "token"], None);
    assert_eq!(
        (code, stdout.as_str()),
        (0, "TOKEN=from-the-cli\n"),
        "{stderr}"
    );

    let stranger = repo.keygen("stranger");
    let (code, stdout, stderr) = run(
        repo.pifleet()
            .args(["secrets", "show", "home-wifi", "--identity"])
            .arg(&stranger),
        None,
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stdout.is_empty());
    assert!(
        stderr.contains("its keys belong to admin `ops` and the host key of `zero`"),
        "{stderr}"
    );
    assert!(stderr.contains("tried "), "{stderr}");
    assert!(stderr.contains("stranger"), "{stderr}");
    assert!(!stderr.contains(PASSPHRASE), "{stderr}");
}

#[test]
fn bad_values_are_refused_without_being_repeated_and_nothing_is_written() {
    let repo = Repo::new();
    repo.enrolled();
    let before = std::fs::read(repo.path("secrets/home-wifi.age")).expect("file");
    for (input, says) in [
        ("hunter2", "7 characters"),
        ("psk=hunter2-long-enough", "give the passphrase alone"),
    ] {
        let (code, _, stderr) = run(
            repo.pifleet().args(["secrets", "set", "home-wifi"]),
            Some(input),
        );
        assert_eq!(code, 2, "{stderr}");
        assert!(stderr.contains(says), "{stderr}");
        assert!(!stderr.contains("hunter2"), "{stderr}");
    }
    assert_eq!(
        std::fs::read(repo.path("secrets/home-wifi.age")).expect("file"),
        before
    );
    let (code, _, stderr) = run(
        repo.pifleet().args(["secrets", "set", "../escape"]),
        Some(PASSPHRASE),
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("secret name"), "{stderr}");
}

#[test]
fn edit_runs_the_editor_on_a_private_file_that_is_gone_afterwards() {
    let repo = Repo::new();
    repo.enrolled();
    // The editor: records where the file is and its mode, then replaces the passphrase.
    let editor = repo.path("editor.sh");
    std::fs::write(
        &editor,
        format!(
            "#!/bin/sh\necho \"$1\" > {log}\nstat -c '%a' \"$1\" >> {log}\nstat -c '%a' \"$(dirname \"$1\")\" >> {log}\ncat \"$1\" >> {log}\nprintf 'a brand new passphrase\\n' > \"$1\"\n",
            log = repo.path("editor.log").display()
        ),
    )
    .expect("editor");
    std::fs::set_permissions(&editor, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let runtime = repo.path("runtime");
    std::fs::create_dir(&runtime).expect("runtime");
    let mut cmd = repo.pifleet();
    cmd.args(["secrets", "edit", "home-wifi", "--identity"])
        .arg(repo.path("keys/admin"))
        .env("EDITOR", &editor)
        .env_remove("VISUAL")
        .env("XDG_RUNTIME_DIR", &runtime);
    let (code, _, stderr) = run(&mut cmd, None);
    assert_eq!(code, 0, "{stderr}");
    let log = repo.read("editor.log");
    let lines: Vec<&str> = log.lines().collect();
    let file = PathBuf::from(lines[0]);
    assert!(file.starts_with(&runtime), "{log}");
    assert_eq!(
        &lines[1..4],
        ["600", "700", PASSPHRASE],
        "the editor saw the passphrase alone"
    );
    assert!(!file.exists(), "the file is removed");
    assert_eq!(
        std::fs::read_dir(&runtime).expect("dir").count(),
        0,
        "and its directory"
    );
    let (code, stdout, _) = repo.as_admin(&["secrets", "show", "home-wifi"], None);
    assert_eq!((code, stdout.as_str()), (0, "psk=a brand new passphrase\n"));
}

#[test]
fn hostkey_scan_records_what_sshd_presents_and_deploys_are_pinned_to_a_generated_key() {
    use deploy_support::{Lab, ssh_available, text};
    if !ssh_available() {
        return;
    }
    let mut lab = Lab::new();
    // The admin key is also the lab's client key (made before sshd starts).
    let keygen = |path: &Path| {
        ok(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(path)
            .output()
            .expect("ssh-keygen"));
    };
    keygen(&lab.path("ssh/id_ed25519"));
    let admin = std::fs::read_to_string(lab.path("ssh/id_ed25519.pub")).expect("pub");
    let inventory = |port: u16| {
        format!(
            r#"[fleet]
state_version = "26.05"
admins = ["ops"]

[users.ops]
ssh_keys = ["{admin}"]

[ssh]
port = {port}
permit_root_login = "prohibit-password"
root_keys = ["{admin}"]

[hosts.alpha]
board = "x86_64"
address = "127.0.0.2"
"#,
            admin = admin.trim()
        )
    };
    // Before sshd exists: pifleet makes alpha's key; sshd then serves exactly that key.
    std::fs::write(lab.path("fleet.toml"), inventory(22)).expect("fleet");
    let out = lab.pifleet(
        &[
            "hostkey",
            "new",
            "alpha",
            "--identity",
            lab.path("ssh/id_ed25519").to_str().expect("utf-8"),
        ],
        &[],
    );
    let (_, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let private = ok(Command::new("age")
        .args(["-d", "-i"])
        .arg(lab.path("ssh/id_ed25519"))
        .arg(lab.path("secrets/host-keys/alpha.age"))
        .output()
        .expect("age"));
    let host_key = lab.path("ssh/host_ed25519");
    std::fs::write(&host_key, &private).expect("key");
    std::fs::set_permissions(&host_key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let recorded = std::fs::read_to_string(lab.path("fleet.toml"))
        .expect("fleet")
        .lines()
        .find_map(|l| {
            l.strip_prefix("host_key = ")
                .map(|k| k.trim_matches('"').to_owned())
        })
        .expect("recorded");
    std::fs::write(lab.path("ssh/host_ed25519.pub"), format!("{recorded}\n")).expect("pub");
    lab.start_sshd(&["127.0.0.2"], &[]);
    std::fs::write(lab.path("ssh/known_hosts"), "").expect("empty known_hosts");
    // The port is known now; the recorded key stays.
    let fleet = std::fs::read_to_string(lab.path("fleet.toml"))
        .expect("fleet")
        .replace("port = 22", &format!("port = {}", lab.port));
    lab.fleet(&fleet);

    let out = lab.pifleet(&["deploy", "--yes", "--connect-timeout", "5"], &[]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(
        lab.calls().len(),
        1,
        "alpha was deployed over the pinned key"
    );

    // Scanning finds the same key: nothing to do.
    let out = lab.pifleet(&["hostkey", "scan", "alpha"], &[]);
    let (_, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("presents the recorded key"), "{stderr}");

    // Another key recorded (a replaced card that never got it): deploy refuses.
    let out = lab.pifleet(
        &[
            "hostkey",
            "new",
            "alpha",
            "--force",
            "--identity",
            lab.path("ssh/id_ed25519").to_str().expect("utf-8"),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out).1);
    lab.fleet(&std::fs::read_to_string(lab.path("fleet.toml")).expect("fleet"));
    let out = lab.pifleet(&["deploy", "--yes", "--connect-timeout", "5"], &[]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("different host key"), "{stderr}");
    assert_eq!(lab.calls().len(), 1, "nothing more was deployed");

    // scan sees the key sshd presents; a wrong expected fingerprint records nothing, the right
    // one records it.
    let out = lab.pifleet(
        &[
            "hostkey",
            "scan",
            "alpha",
            "--force",
            "--fingerprint",
            "SHA256:nope",
        ],
        &[],
    );
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("nothing recorded"), "{stderr}");
    let fingerprint = String::from_utf8(ok(Command::new("ssh-keygen")
        .arg("-lf")
        .arg(lab.path("ssh/host_ed25519.pub"))
        .output()
        .expect("ssh-keygen -l")))
    .expect("utf-8");
    let fingerprint = fingerprint
        .split_whitespace()
        .nth(1)
        .expect("fp")
        .to_owned();
    let out = lab.pifleet(
        &[
            "hostkey",
            "scan",
            "alpha",
            "--force",
            "--fingerprint",
            &fingerprint,
        ],
        &[],
    );
    let (_, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let fleet = std::fs::read_to_string(lab.path("fleet.toml")).expect("fleet");
    let words: Vec<&str> = recorded.split_whitespace().take(2).collect();
    assert!(
        fleet.contains(&format!("host_key = \"{}\"", words.join(" "))),
        "{fleet}"
    );
    lab.fleet(&fleet);
    let out = lab.pifleet(&["deploy", "--yes", "--connect-timeout", "5"], &[]);
    assert!(out.status.success(), "{}", text(&out).1);
}

#[test]
fn rekey_puts_a_passphrase_stored_before_it_was_named_into_the_form_hosts_read() {
    let repo = Repo::new();
    repo.enrolled();
    let host_key = repo.keygen("zero-host");
    // Stored while no host names it: kept as given (a bare passphrase, and a short one).
    for (name, value) in [("garage-wifi", PASSPHRASE), ("short-wifi", "tiny")] {
        let (code, _, stderr) = run(
            repo.pifleet().args(["secrets", "set", name]),
            Some(&format!("{value}\n")),
        );
        assert_eq!(code, 0, "{stderr}");
        assert!(stderr.contains("no host reads"), "{stderr}");
    }
    // Two boards start reading them as Wi-Fi passphrases (one with a key made elsewhere).
    let host_pub = repo.public("zero-host");
    let mut fleet = repo.read("fleet.toml");
    fleet.push_str(&format!(
        "\n[hosts.garage]\nboard = \"zero2w\"\naddress = \"10.0.0.9\"\ndeploy = {{ user = \"ops\" }}\nusers = [\"ops\"]\nhost_key = \"{host_pub}\"\nwifi = {{ ssid = \"garage\", psk_secret = \"garage-wifi\" }}\n\
         \n[hosts.shed]\nboard = \"zero2w\"\naddress = \"10.0.0.10\"\ndeploy = {{ user = \"ops\" }}\nusers = [\"ops\"]\nhost_key = \"{host_pub}\"\nwifi = {{ ssid = \"shed\", psk_secret = \"short-wifi\" }}\n"
    ));
    repo.write("fleet.toml", &fleet);
    let (code, _, stderr) = repo.as_admin(&["secrets", "rekey"], None);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains(
            "secrets/garage-wifi.age: the value was rewritten in the form its hosts read it"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("warning: secrets/short-wifi.age does not hold a value its hosts can use: the Wi-Fi passphrase is 4 characters long"),
        "{stderr}"
    );
    assert!(
        stderr.contains("pifleet secrets edit short-wifi"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("tiny"),
        "the value is never shown: {stderr}"
    );
    let garage = ok(repo.age_decrypt(&host_key, "secrets/garage-wifi.age"));
    assert_eq!(garage, format!("psk={PASSPHRASE}\n").as_bytes());
    // The unfit value is encrypted to its new reader unchanged, for the admin to fix.
    let short = ok(repo.age_decrypt(&host_key, "secrets/short-wifi.age"));
    assert_eq!(short, b"tiny\n");
}

#[test]
fn keys_inject_with_a_login_key_and_another_host_key_on_the_card_writes_neither() {
    let repo = Repo::new();
    let first = repo.enrolled();
    let card = partitioned_image(repo.dir.path(), Some(Layout::Booted));
    let card_arg = card.to_str().expect("utf-8");
    let (code, _, stderr) =
        repo.as_admin(&["keys", "inject", card_arg, "--host-key", "zero"], None);
    assert_eq!(code, 0, "{stderr}");
    // The host gets a new identity in the repository; the card still holds the first one.
    let (code, _, stderr) = repo.as_admin(&["hostkey", "new", "zero", "--force"], None);
    assert_eq!(code, 0, "{stderr}");
    let admin = repo.public("admin");
    let admin_file = repo.path("keys/admin.pub");
    let args = [
        "keys",
        "inject",
        card_arg,
        "--key",
        admin_file.to_str().expect("utf-8"),
        "--host-key",
        "zero",
    ];
    let (code, stdout, stderr) = repo.as_admin(&args, None);
    assert_ne!(code, 0, "{stdout}{stderr}");
    assert!(stderr.contains("--replace-host-key"), "{stderr}");
    assert!(stderr.contains("nothing was written"), "{stderr}");
    let spec = format!("{}?offset={ROOT_START}", card.display());
    assert_eq!(stat(&spec, "/home/nixos/.ssh/authorized_keys"), None);
    let on_card = debugfs(&spec, "cat /etc/ssh/ssh_host_ed25519_key.pub");
    let words = |s: &str| s.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
    assert_eq!(words(&on_card), words(&first));

    // Asked to replace it: both are written, in one go.
    let mut replace = args.to_vec();
    replace.push("--replace-host-key");
    let (code, stdout, stderr) = repo.as_admin(&replace, None);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("replaced /etc/ssh/ssh_host_ed25519_key"),
        "{stdout}"
    );
    let fleet = repo.read("fleet.toml");
    let second = fleet
        .lines()
        .find_map(|l| l.strip_prefix("host_key = "))
        .expect("host_key")
        .trim_matches('"')
        .to_owned();
    assert_ne!(second, first);
    repo.assert_card_holds_the_key(&spec, &second);
    assert!(
        debugfs(&spec, "cat /home/nixos/.ssh/authorized_keys").contains(&admin),
        "authorized_keys"
    );
}
