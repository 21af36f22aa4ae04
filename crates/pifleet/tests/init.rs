//! `pifleet init` end to end: the real binary in a temporary directory, with a key pair from
//! `ssh-keygen`, its own HOME and no ssh agent, so nothing outside the temporary directory is read
//! or written. What it creates must pass `pifleet check` as written, validate against the schema it
//! copied (with a JSON-schema validator, as an editor would), be tracked by Git, and evaluate as a
//! flake with the stub inputs of `tests/flake.rs` (Nix 2.8; skipped loudly without Nix unless
//! `PIFLEET_REQUIRE_NIX=1`).

mod tree_support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A temporary HOME with a fresh ed25519 key pair, and a place for fleet repositories.
struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        for sub in ["home/.ssh", "cache", "config", "data", "state"] {
            fs::create_dir_all(dir.path().join(sub)).expect("create dir");
        }
        let out = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "me@desk", "-f"])
            .arg(dir.path().join("me"))
            .output()
            .expect("run ssh-keygen (openssh-client)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self { dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The public key file, `me.pub`; the private half is `me`.
    fn public_key(&self) -> PathBuf {
        self.path("me.pub")
    }

    fn pifleet(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_pifleet"))
            .args(args)
            .current_dir(self.dir.path())
            .env("HOME", self.path("home"))
            .env("XDG_CACHE_HOME", self.path("cache"))
            .env("XDG_CONFIG_HOME", self.path("config"))
            .env("XDG_DATA_HOME", self.path("data"))
            .env("XDG_STATE_HOME", self.path("state"))
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("PIFLEET_CACHE_DIR", "")
            .env("NO_COLOR", "1")
            .env_remove("SSH_AUTH_SOCK")
            .env_remove("PIFLEET_IDENTITY")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run pifleet")
    }

    /// `pifleet init DIR --key me.pub --host … --board … --address …` plus `extra`.
    fn init(&self, dir: &str, host: &str, board: &str, extra: &[&str]) -> Output {
        let key = self.public_key();
        let mut args = vec![
            "init",
            dir,
            "--key",
            key.to_str().expect("utf-8 path"),
            "--host",
            host,
            "--board",
            board,
            "--address",
            "192.168.1.50",
            "--pifleet-url",
            "git+https://example.org/pifleet",
        ];
        args.extend_from_slice(extra);
        self.pifleet(&args)
    }
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn have_git() -> bool {
    Command::new("git")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn tracked(dir: &Path) -> Vec<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["ls-files"])
        .output()
        .expect("git ls-files");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

const FILES: [&str; 5] = [
    "flake.nix",
    "fleet.toml",
    "schema/fleet.schema.json",
    ".gitignore",
    "README.md",
];

#[test]
fn a_new_repository_passes_check_validates_and_is_tracked() {
    let sandbox = Sandbox::new();
    let out = sandbox.init("fleet", "pi-01", "rpi4", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let repo = sandbox.path("fleet");
    for file in FILES {
        assert!(repo.join(file).is_file(), "no {file}:\n{}", text(&out));
    }
    assert!(
        repo.join("hosts/pi-01/default.nix").is_file(),
        "gen did not run:\n{}",
        text(&out)
    );
    assert!(repo.join("hosts/default.nix").is_file());

    // The inventory: the schema line first, the user's key, hardened settings.
    let toml_text = fs::read_to_string(repo.join("fleet.toml")).expect("fleet.toml");
    assert_eq!(
        toml_text.lines().next(),
        Some("#:schema ./schema/fleet.schema.json")
    );
    let key = fs::read_to_string(sandbox.public_key()).expect("key");
    assert!(toml_text.contains(key.trim()), "{toml_text}");
    let doc: toml::Table = toml_text.parse().expect("TOML");
    assert_eq!(
        doc["fleet"]["admins"],
        toml::Value::Array(vec!["deploy".into()])
    );
    assert_eq!(doc["ssh"]["permit_root_login"].as_str(), Some("no"));
    assert_eq!(doc["ssh"]["password_authentication"].as_bool(), Some(false));
    assert_eq!(doc["users"]["deploy"]["sudo"].as_str(), Some("no-password"));
    assert_eq!(
        doc["hosts"]["pi-01"]["deploy"]["user"].as_str(),
        Some("deploy")
    );
    assert_eq!(
        doc["hosts"]["pi-01"]["firewall"]["enable"].as_bool(),
        Some(true)
    );
    assert!(
        !toml_text.contains("PRIVATE"),
        "a private key reached the inventory"
    );

    // `pifleet check` accepts it as written, without a warning.
    let check = sandbox.pifleet(&["check", "-f", "fleet/fleet.toml"]);
    assert_eq!(check.status.code(), Some(0), "{}", text(&check));
    assert!(!stderr(&check).contains("warning"), "{}", text(&check));
    assert!(
        !String::from_utf8_lossy(&check.stdout).contains("warning"),
        "{}",
        text(&check)
    );

    // The copied schema is pifleet's, and a JSON-schema validator accepts the inventory.
    let schema_text = fs::read_to_string(repo.join("schema/fleet.schema.json")).expect("schema");
    let committed =
        fs::read_to_string(repo_root().join("schema/fleet.schema.json")).expect("repo schema");
    assert_eq!(schema_text, committed);
    let schema: Value = serde_json::from_str(&schema_text).expect("schema JSON");
    let instance: Value = serde_json::to_value(&doc).expect("TOML as JSON");
    let validator = jsonschema::validator_for(&schema).expect("a valid schema");
    let errors: Vec<String> = validator
        .iter_errors(&instance)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");

    // The flake fetches pifleet from where it was told.
    let flake = fs::read_to_string(repo.join("flake.nix")).expect("flake.nix");
    assert!(
        flake.contains(r#"url = "git+https://example.org/pifleet";"#),
        "{flake}"
    );
    assert!(!flake.contains("example.invalid"), "{flake}");

    // The README and .gitignore came from the templates, filled in.
    let readme = fs::read_to_string(repo.join("README.md")).expect("README.md");
    assert!(
        readme.contains("nix run .#flash -- pi-01 /dev/sdX"),
        "{readme}"
    );
    assert!(readme.contains("ssh deploy@192.168.1.50"), "{readme}");
    assert!(!readme.contains("{{"), "{readme}");
    let ignore = fs::read_to_string(repo.join(".gitignore")).expect(".gitignore");
    assert!(ignore.lines().any(|l| l == "result"), "{ignore}");
    assert!(ignore.lines().any(|l| l == "result-*"), "{ignore}");

    // Next steps are printed.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Next steps:"), "{}", text(&out));
    assert!(
        stdout.contains("nix run .#deploy -- pi-01"),
        "{}",
        text(&out)
    );

    if have_git() {
        let files = tracked(&repo);
        for file in FILES {
            assert!(
                files.iter().any(|f| f == file),
                "{file} untracked: {files:?}"
            );
        }
        assert!(
            files.iter().any(|f| f == "hosts/pi-01/default.nix"),
            "{files:?}"
        );
    } else {
        assert!(
            stderr(&out).contains("git is not installed"),
            "{}",
            text(&out)
        );
    }

    // A second gen changes nothing: init wrote what gen writes.
    let gen_check = sandbox.pifleet(&["gen", "--check", "-f", "fleet/fleet.toml"]);
    assert_eq!(gen_check.status.code(), Some(0), "{}", text(&gen_check));
}

#[test]
fn the_default_key_is_the_users_own_pub_file() {
    let sandbox = Sandbox::new();
    fs::copy(
        sandbox.public_key(),
        sandbox.path("home/.ssh/id_ed25519.pub"),
    )
    .expect("copy key");
    let out = sandbox.pifleet(&[
        "init",
        "fleet",
        "--host",
        "vps-01",
        "--board",
        "x86_64",
        "--address",
        "vps.example.org",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let toml_text = fs::read_to_string(sandbox.path("fleet/fleet.toml")).expect("fleet.toml");
    let key = fs::read_to_string(sandbox.public_key()).expect("key");
    assert!(toml_text.contains(key.trim()), "{toml_text}");
    assert!(stderr(&out).contains("id_ed25519.pub"), "{}", text(&out));
    // No Pi: no SD card step, adopt instead.
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("adopt vps-01"),
        "{}",
        text(&out)
    );
}

#[test]
fn no_key_anywhere_is_an_error_that_says_where_it_looked() {
    let sandbox = Sandbox::new();
    let out = sandbox.pifleet(&[
        "init",
        "fleet",
        "--host",
        "pi-01",
        "--board",
        "rpi4",
        "--address",
        "10.0.0.2",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(stderr(&out).contains("--key"), "{}", text(&out));
    assert!(!sandbox.path("fleet").exists());
}

#[test]
fn a_private_key_is_refused_and_nothing_is_written() {
    let sandbox = Sandbox::new();
    let private = sandbox.path("me");
    let out = sandbox.pifleet(&[
        "init",
        "fleet",
        "--key",
        private.to_str().expect("utf-8"),
        "--host",
        "pi-01",
        "--board",
        "rpi4",
        "--address",
        "10.0.0.2",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = stderr(&out);
    assert!(err.contains("PRIVATE key"), "{err}");
    assert!(err.contains("me.pub"), "{err}");
    assert!(!err.contains("BEGIN OPENSSH"), "{err}");
    assert!(!sandbox.path("fleet").exists());
}

#[test]
fn bad_host_board_or_address_is_refused_before_writing() {
    let sandbox = Sandbox::new();
    for (host, board, address, says) in [
        ("Pi_01!", "rpi4", "10.0.0.2", "host name"),
        ("pi-01", "rpi5", "10.0.0.2", "board `rpi5`"),
        ("pi-01", "rpi4", "192.168.1.300", "address"),
    ] {
        let key = sandbox.public_key();
        let out = sandbox.pifleet(&[
            "init",
            "fleet",
            "--key",
            key.to_str().expect("utf-8"),
            "--host",
            host,
            "--board",
            board,
            "--address",
            address,
        ]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(stderr(&out).contains(says), "{says}: {}", text(&out));
        assert!(!sandbox.path("fleet").exists());
    }
    // Without a terminal, a missing flag is named rather than asked for.
    let key = sandbox.public_key();
    let out = sandbox.pifleet(&["init", "fleet", "--key", key.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(stderr(&out).contains("--host NAME"), "{}", text(&out));
}

#[test]
fn a_non_empty_directory_is_refused_without_force() {
    let sandbox = Sandbox::new();
    let repo = sandbox.path("fleet");
    fs::create_dir_all(&repo).expect("mkdir");
    fs::write(repo.join("notes.txt"), "mine\n").expect("write");
    let out = sandbox.init("fleet", "pi-01", "rpi4", &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(stderr(&out).contains("not empty"), "{}", text(&out));
    assert!(stderr(&out).contains("notes.txt"), "{}", text(&out));
    assert!(!repo.join("fleet.toml").exists());
    assert!(!repo.join(".git").exists());
}

#[test]
fn force_adds_missing_files_and_never_overwrites() {
    let sandbox = Sandbox::new();
    let repo = sandbox.path("fleet");
    fs::create_dir_all(&repo).expect("mkdir");
    fs::write(repo.join("README.md"), "my own readme\n").expect("write");
    fs::write(repo.join("notes.txt"), "mine\n").expect("write");
    let out = sandbox.init("fleet", "pi-01", "rpi4", &["--force"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        fs::read_to_string(repo.join("README.md")).expect("README"),
        "my own readme\n"
    );
    assert!(stderr(&out).contains("kept as they were"), "{}", text(&out));
    assert!(stderr(&out).contains("README.md"), "{}", text(&out));
    assert!(repo.join("fleet.toml").is_file());

    // A second run with --force changes nothing it wrote the first time.
    let before = fs::read(repo.join("fleet.toml")).expect("fleet.toml");
    fs::write(
        repo.join("fleet.toml"),
        [before.as_slice(), b"# edited\n"].concat(),
    )
    .expect("edit");
    let again = sandbox.init("fleet", "pi-02", "rpi3", &["--force"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    let after = fs::read_to_string(repo.join("fleet.toml")).expect("fleet.toml");
    assert!(after.ends_with("# edited\n"), "{after}");
    assert!(!after.contains("pi-02"), "{after}");
    if have_git() {
        // The user's own files are not added for them.
        let files = tracked(&repo);
        assert!(!files.iter().any(|f| f == "notes.txt"), "{files:?}");
        assert!(!files.iter().any(|f| f == "README.md"), "{files:?}");
    }
}

#[test]
fn a_zero2w_gets_a_host_key_and_its_wifi_passphrase_as_a_secret() {
    let sandbox = Sandbox::new();
    let passphrase = sandbox.path("psk.txt");
    fs::write(&passphrase, "correct horse battery\n").expect("write");
    let out = sandbox.init(
        "fleet",
        "zero-01",
        "zero2w",
        &[
            "--wifi-ssid",
            "home net",
            "--wifi-passphrase-file",
            passphrase.to_str().expect("utf-8"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!text(&out).contains("correct horse"), "{}", text(&out));
    let repo = sandbox.path("fleet");
    let doc: toml::Table = fs::read_to_string(repo.join("fleet.toml"))
        .expect("fleet.toml")
        .parse()
        .expect("TOML");
    let host = &doc["hosts"]["zero-01"];
    assert_eq!(host["wifi"]["ssid"].as_str(), Some("home net"));
    assert_eq!(host["wifi"]["psk_secret"].as_str(), Some("wifi"));
    assert!(
        host["host_key"]
            .as_str()
            .is_some_and(|k| k.starts_with("ssh-ed25519 ")),
        "{host:?}"
    );
    for file in ["secrets/wifi.age", "secrets/host-keys/zero-01.age"] {
        let bytes = fs::read(repo.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(
            bytes.starts_with(b"age-encryption.org/v1") || bytes.starts_with(b"-----BEGIN AGE"),
            "{file} is not age"
        );
        assert!(!String::from_utf8_lossy(&bytes).contains("correct horse"));
    }
    assert!(
        repo.join("hosts/zero-01/default.nix").is_file(),
        "{}",
        text(&out)
    );

    let check = sandbox.pifleet(&["check", "-f", "fleet/fleet.toml"]);
    assert_eq!(check.status.code(), Some(0), "{}", text(&check));

    // The admin's key decrypts the passphrase, in the form the host reads it.
    let identity = sandbox.path("me");
    let show = sandbox.pifleet(&[
        "secrets",
        "show",
        "wifi",
        "-f",
        "fleet/fleet.toml",
        "--identity",
        identity.to_str().expect("utf-8"),
    ]);
    assert_eq!(show.status.code(), Some(0), "{}", text(&show));
    assert!(
        String::from_utf8_lossy(&show.stdout).contains("correct horse battery"),
        "{}",
        text(&show)
    );

    if have_git() {
        let files = tracked(&repo);
        for file in [
            "secrets/wifi.age",
            "secrets/host-keys/zero-01.age",
            "fleet.toml",
        ] {
            assert!(
                files.iter().any(|f| f == file),
                "{file} untracked: {files:?}"
            );
        }
    }
}

#[test]
fn a_zero2w_without_its_passphrase_says_the_one_command_left() {
    let sandbox = Sandbox::new();
    let out = sandbox.init("fleet", "zero-01", "zero2w", &["--wifi-ssid", "home"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let all = text(&out);
    assert!(all.contains("pifleet secrets set wifi"), "{all}");
    assert!(all.contains("gen did not run"), "{all}");
    let repo = sandbox.path("fleet");
    assert!(repo.join("fleet.toml").is_file());
    assert!(repo.join("secrets/host-keys/zero-01.age").is_file());
    assert!(!repo.join("hosts").exists());

    // A passphrase WPA cannot use is not stored; the repository is kept and the step is named.
    let short = sandbox.path("short.txt");
    fs::write(&short, "tiny").expect("write");
    let out = sandbox.init(
        "third",
        "zero-03",
        "zero2w",
        &[
            "--wifi-ssid",
            "home",
            "--wifi-passphrase-file",
            short.to_str().expect("utf-8"),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let all = text(&out);
    assert!(all.contains("8 to 63"), "{all}");
    assert!(all.contains("pifleet secrets set wifi"), "{all}");
    assert!(!all.contains("tiny"), "{all}");
    assert!(!sandbox.path("third/secrets/wifi.age").exists());

    // A zero2w without an SSID at all is refused: it could never join a network.
    let out = sandbox.init("other", "zero-02", "zero2w", &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(stderr(&out).contains("--wifi-ssid"), "{}", text(&out));
}

#[test]
fn without_a_url_a_checkout_build_points_at_its_checkout() {
    let sandbox = Sandbox::new();
    let key = sandbox.public_key();
    let out = sandbox.pifleet(&[
        "init",
        "fleet",
        "--key",
        key.to_str().expect("utf-8"),
        "--host",
        "pi-01",
        "--board",
        "rpi4",
        "--address",
        "10.0.0.2",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let flake = fs::read_to_string(sandbox.path("fleet/flake.nix")).expect("flake.nix");
    // This test binary was built in a checkout of pifleet, which is still here.
    let root = repo_root().canonicalize().expect("root");
    if root.join(".git").exists() {
        let want = format!("url = \"git+file://{}\";", root.display());
        assert!(flake.contains(&want), "want {want} in:\n{flake}");
    } else {
        assert!(flake.contains("example.invalid"), "{flake}");
        assert!(stderr(&out).contains("placeholder"), "{}", text(&out));
    }
}

/// The new repository's flake, evaluated with Nix and stub inputs as `tests/flake.rs` does with the
/// template: its hosts become NixOS configurations and SD images, and the apps exist.
#[test]
fn the_new_flake_evaluates_with_stub_inputs() {
    let found = Command::new("nix")
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success());
    if !found {
        assert!(
            std::env::var("PIFLEET_REQUIRE_NIX").as_deref() != Ok("1"),
            "`nix` is not installed, and PIFLEET_REQUIRE_NIX=1 says the flake tests must run"
        );
        eprintln!("\n*** SKIPPED init flake test: `nix` not found ***\n");
        return;
    }
    let sandbox = Sandbox::new();
    let out = sandbox.init("fleet", "pi-01", "rpi4", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // pifleet's own flake, staged without building anything (as in tests/flake.rs).
    let root = repo_root();
    let staged = sandbox.path("pifleet");
    fs::create_dir_all(staged.join("crates")).expect("mkdir");
    for file in ["flake.nix", "flake.lock", "Cargo.toml", "Cargo.lock"] {
        fs::copy(root.join(file), staged.join(file)).expect("copy");
    }
    copy_dir(&root.join("nix"), &staged.join("nix"));
    copy_dir(&root.join("templates"), &staged.join("templates"));
    fs::write(staged.join("fleet.toml"), "# placeholder\n").expect("write");
    fs::create_dir_all(staged.join("hosts")).expect("mkdir");
    fs::write(staged.join("hosts/default.nix"), "{ }\n").expect("write");
    let stubs = root.join("crates/pifleet/tests/fixtures/stubs");

    let mut cmd = Command::new("nix");
    cmd.args(["--extra-experimental-features", "nix-command flakes"])
        .args(["flake", "show", "--json"])
        .arg(format!("path:{}", sandbox.path("fleet").display()))
        .env("HOME", sandbox.path("home"))
        .env("XDG_CACHE_HOME", sandbox.path("cache"))
        .env("XDG_CONFIG_HOME", sandbox.path("config"))
        .env("XDG_DATA_HOME", sandbox.path("data"))
        .env("XDG_STATE_HOME", sandbox.path("state"))
        .env_remove("NIX_CONFIG");
    for (input, path) in [
        ("nixpkgs", stubs.join("nixpkgs")),
        ("nixos-hardware", stubs.join("nixos-hardware")),
        ("agenix", stubs.join("agenix")),
        ("pifleet", staged.clone()),
    ] {
        cmd.arg("--override-input")
            .arg(input)
            .arg(format!("path:{}", path.display()));
    }
    cmd.arg("--no-write-lock-file");
    let show = cmd.output().expect("run nix");
    assert!(
        show.status.success(),
        "{}",
        String::from_utf8_lossy(&show.stderr)
    );
    let show: Value = serde_json::from_slice(&show.stdout).expect("JSON");
    let names: Vec<&String> = show["nixosConfigurations"]
        .as_object()
        .expect("nixosConfigurations")
        .keys()
        .collect();
    assert_eq!(names, ["pi-01", "pi-01-sd"]);
    for system in ["x86_64-linux", "aarch64-linux"] {
        let apps: Vec<&String> = show["apps"][system]
            .as_object()
            .expect("apps")
            .keys()
            .collect();
        assert_eq!(
            apps,
            ["check", "default", "deploy", "flash", "gen"],
            "{system}"
        );
        assert!(show["packages"][system]["pi-01-sd"].is_object(), "{system}");
    }
}

use tree_support::copy_dir;
