//! The flake's plumbing (`flake.nix`, `nix/`, `templates/`), checked with the Nix on this machine.
//!
//! Nix 2.8 can't evaluate the real nixpkgs and there is no network, so every input is replaced with
//! a stub from `tests/fixtures/stubs/` (`--override-input`). The stub `lib.nixosSystem` records the
//! modules it is given, which lets the tests see what each NixOS configuration is made of. The flake
//! is staged in a temporary directory with a `hosts/` tree from `tests/fixtures/` (see the README
//! there) and read through `path:` refs, so untracked files and the real repo's state don't matter.
//!
//! Without `nix` the tests skip loudly, unless `PIFLEET_REQUIRE_NIX=1` (CI) makes that a failure.

mod tree_support;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

const SYSTEMS: [&str; 2] = ["x86_64-linux", "aarch64-linux"];
const SD_MODULE: &str = "/nixos/modules/installer/sd-card/sd-image-aarch64.nix";

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn repo_root() -> PathBuf {
    manifest_dir().join("../..")
}

fn fixture(name: &str) -> PathBuf {
    manifest_dir().join("tests/fixtures").join(name)
}

/// Whether `nix` can run here. Missing Nix fails the test under `PIFLEET_REQUIRE_NIX=1`.
fn have_nix() -> bool {
    let found = Command::new("nix")
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success());
    if !found {
        assert!(
            std::env::var("PIFLEET_REQUIRE_NIX").as_deref() != Ok("1"),
            "`nix` is not installed, and PIFLEET_REQUIRE_NIX=1 says the flake tests must run"
        );
        eprintln!(
            "\n*** SKIPPED flake test: `nix` not found (install nix-bin; PIFLEET_REQUIRE_NIX=1 makes this fail) ***\n"
        );
    }
    found
}

macro_rules! require_nix {
    () => {
        if !have_nix() {
            return;
        }
    };
}

use tree_support::copy_dir;

/// A temporary directory with its own HOME and XDG dirs, the stub inputs and staged flakes.
struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        for sub in ["home", "cache", "config", "data", "state"] {
            fs::create_dir_all(dir.path().join(sub)).expect("create dir");
        }
        copy_dir(&fixture("stubs"), &dir.path().join("stubs"));
        Self { dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The pifleet repo's flake with `hosts` as its generated tree. Point `hosts` at the repo's own
    /// `hosts/` once `pifleet gen` writes it: `sandbox.stage_repo(&repo_root().join("hosts"))`.
    fn stage_repo(&self, hosts: &Path) -> PathBuf {
        let root = repo_root();
        let repo = self.path("repo");
        fs::create_dir_all(&repo).expect("create repo dir");
        for file in ["flake.nix", "flake.lock", "Cargo.toml", "Cargo.lock"] {
            fs::copy(root.join(file), repo.join(file))
                .unwrap_or_else(|e| panic!("copy {file}: {e}"));
        }
        copy_dir(&root.join("nix"), &repo.join("nix"));
        copy_dir(&root.join("templates"), &repo.join("templates"));
        // package.nix's source filter needs the workspace's crates/ to exist; nothing builds here.
        fs::create_dir_all(repo.join("crates")).expect("create crates dir");
        // `checks.<system>.generated` exists when the repo has a fleet.toml.
        match fs::read(root.join("fleet.toml")) {
            Ok(text) => fs::write(repo.join("fleet.toml"), text),
            Err(_) => fs::write(
                repo.join("fleet.toml"),
                "# placeholder for the flake tests\n",
            ),
        }
        .expect("write fleet.toml");
        copy_dir(hosts, &repo.join("hosts"));
        repo
    }

    /// `nix` with flakes on, and HOME/XDG pointing into the sandbox.
    fn nix(&self) -> Command {
        let mut cmd = Command::new("nix");
        cmd.args(["--extra-experimental-features", "nix-command flakes"])
            .env("HOME", self.path("home"))
            .env("XDG_CACHE_HOME", self.path("cache"))
            .env("XDG_CONFIG_HOME", self.path("config"))
            .env("XDG_DATA_HOME", self.path("data"))
            .env("XDG_STATE_HOME", self.path("state"))
            .env_remove("NIX_CONFIG")
            .current_dir(self.dir.path());
        cmd
    }

    /// Overrides for every input of a flake: the stubs, plus `extra` (e.g. `pifleet`).
    fn overrides(&self, extra: &[(&str, &Path)]) -> Vec<String> {
        let mut args = Vec::new();
        let stubs = [
            ("nixpkgs", self.path("stubs/nixpkgs")),
            ("nixos-hardware", self.path("stubs/nixos-hardware")),
            ("agenix", self.path("stubs/agenix")),
        ];
        let extra = extra.iter().map(|(name, path)| (*name, path.to_path_buf()));
        for (name, path) in stubs.into_iter().chain(extra) {
            args.push("--override-input".to_owned());
            args.push(name.to_owned());
            args.push(format!("path:{}", path.display()));
        }
        args.push("--no-write-lock-file".to_owned());
        args
    }

    fn run_json(&self, args: &[String]) -> Value {
        let out = self.nix().args(args).output().expect("run nix");
        assert!(
            out.status.success(),
            "nix {} failed:\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "nix {} printed no JSON ({e}):\n{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    fn show(&self, flake: &Path, extra: &[(&str, &Path)]) -> Value {
        let mut args = vec!["flake".to_owned(), "show".to_owned(), "--json".to_owned()];
        args.push(format!("path:{}", flake.display()));
        args.extend(self.overrides(extra));
        self.run_json(&args)
    }

    fn eval(&self, flake: &Path, attr: &str) -> Value {
        let mut args = vec!["eval".to_owned(), "--json".to_owned()];
        args.push(format!("path:{}#{attr}", flake.display()));
        args.extend(self.overrides(&[]));
        self.run_json(&args)
    }

    /// `nix eval --json --apply FN`: for attributes a derivation would print as its path.
    fn eval_apply(&self, flake: &Path, attr: &str, apply: &str) -> Value {
        let mut args = vec![
            "eval".to_owned(),
            "--json".to_owned(),
            "--apply".to_owned(),
            apply.to_owned(),
        ];
        args.push(format!("path:{}#{attr}", flake.display()));
        args.extend(self.overrides(&[]));
        self.run_json(&args)
    }

    /// What the stub `lib.nixosSystem` recorded for `nixosConfigurations.<name>`.
    fn recorded(&self, flake: &Path, name: &str) -> Recorded {
        Recorded(self.eval(flake, &format!("nixosConfigurations.\"{name}\".recorded")))
    }
}

/// The arguments one `lib.nixosSystem` call got.
struct Recorded(Value);

impl Recorded {
    fn modules(&self) -> &Vec<Value> {
        self.0["modules"].as_array().expect("recorded modules")
    }

    /// Modules given as paths (files, directories, nixpkgs module paths).
    fn paths(&self) -> Vec<&str> {
        self.modules()
            .iter()
            .filter_map(|m| m["path"].as_str())
            .collect()
    }

    fn has_path_ending(&self, suffix: &str) -> bool {
        self.paths().iter().any(|p| p.ends_with(suffix))
    }

    /// Inline attribute-set modules.
    fn attrs(&self) -> Vec<&Value> {
        self.modules()
            .iter()
            .filter_map(|m| m.get("attrs"))
            .collect()
    }

    /// The value an inline module sets at `path`, if one does.
    fn setting(&self, path: &[&str]) -> Option<&Value> {
        self.attrs()
            .into_iter()
            .find_map(|m| path.iter().try_fold(m, |v, key| v.get(key)))
    }
}

fn keys(value: &Value) -> BTreeSet<String> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("not an attribute set: {value}"))
        .keys()
        .cloned()
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn repo_flake_shows_exactly_the_expected_outputs() {
    require_nix!();
    let sandbox = Sandbox::new();
    let repo = sandbox.stage_repo(&fixture("hosts"));
    let show = sandbox.show(&repo, &[]);

    assert_eq!(
        keys(&show),
        set(&[
            "apps",
            "checks",
            "devShells",
            "formatter",
            "lib",
            "nixosConfigurations",
            "packages",
            "templates"
        ])
    );
    assert_eq!(
        keys(&show["nixosConfigurations"]),
        set(&["rpi-box-01", "rpi-box-01-sd", "rpi-box-03", "rpi-box-03-sd"])
    );
    for system in SYSTEMS {
        let packages = &show["packages"][system];
        assert_eq!(
            keys(packages),
            set(&["default", "rpi-box-01-sd", "rpi-box-03-sd"]),
            "{system}"
        );
        assert_eq!(
            packages["default"]["name"],
            format!("pifleet-{}", workspace_version())
        );
        // The image is named after the host: result/sd-image/rpi-box-03.img.zst.
        assert_eq!(packages["rpi-box-03-sd"]["name"], "rpi-box-03.img.zst");

        let apps = &show["apps"][system];
        assert_eq!(
            keys(apps),
            set(&["check", "default", "deploy", "flash", "gen"]),
            "{system}"
        );
        for app in ["check", "default", "deploy", "flash", "gen"] {
            assert_eq!(apps[app]["type"], "app", "{system} {app}");
        }
        assert_eq!(
            keys(&show["checks"][system]),
            set(&["generated", "pifleet"]),
            "{system}"
        );
        assert_eq!(show["formatter"][system]["name"], "nixpkgs-fmt", "{system}");
        assert_eq!(
            keys(&show["devShells"][system]),
            set(&["default"]),
            "{system}"
        );
    }
    assert_eq!(keys(&show["packages"]), set(&SYSTEMS));
    assert_eq!(keys(&show["apps"]), set(&SYSTEMS));
    assert_eq!(keys(&show["templates"]), set(&["default"]));
    assert_eq!(show["templates"]["default"]["type"], "template");
}

/// The same check on the repo's own `hosts/`, as `pifleet gen` wrote it from fleet.toml (the
/// render crate's drift test keeps it current): the example fleet's flake has exactly the issue's
/// configurations.
#[test]
fn generated_hosts_give_the_example_fleets_outputs() {
    require_nix!();
    let hosts = repo_root().join("hosts");
    assert!(
        hosts.join("default.nix").is_file(),
        "hosts/ is committed: run `cargo run -p pifleet -- gen`"
    );
    let sandbox = Sandbox::new();
    let repo = sandbox.stage_repo(&hosts);
    let show = sandbox.show(&repo, &[]);
    assert_eq!(
        keys(&show["nixosConfigurations"]),
        set(&["rpi-box-01", "rpi-box-01-sd", "rpi-box-03", "rpi-box-03-sd"])
    );
    for system in SYSTEMS {
        assert_eq!(
            keys(&show["packages"][system]),
            set(&["default", "rpi-box-01-sd", "rpi-box-03-sd"])
        );
    }
    let sd = sandbox.recorded(&repo, "rpi-box-03-sd");
    assert!(sd.has_path_ending(SD_MODULE), "{:?}", sd.paths());
    assert!(
        sd.has_path_ending("/nix/boards/rpi3.nix"),
        "{:?}",
        sd.paths()
    );
    assert!(sd.has_path_ending("/hosts/rpi-box-03"), "{:?}", sd.paths());
}

#[test]
fn sd_configuration_is_the_host_plus_the_sd_image_module() {
    require_nix!();
    let sandbox = Sandbox::new();
    let repo = sandbox.stage_repo(&fixture("hosts"));

    for (host, board) in [("rpi-box-01", "rpi4"), ("rpi-box-03", "rpi3")] {
        let sd = sandbox.recorded(&repo, &format!("{host}-sd"));
        assert!(
            sd.has_path_ending(SD_MODULE),
            "{host}-sd lacks the SD image module: {:?}",
            sd.paths()
        );
        assert!(
            sd.has_path_ending(&format!("/nix/boards/{board}.nix")),
            "{host}-sd: {:?}",
            sd.paths()
        );
        assert!(
            sd.has_path_ending(&format!("/hosts/{host}")),
            "{host}-sd: {:?}",
            sd.paths()
        );
        assert!(
            sd.has_path_ending("/nix/modules/common.nix"),
            "{host}-sd: {:?}",
            sd.paths()
        );
        assert_eq!(sd.setting(&["image", "baseName"]), Some(&json!(host)));
        assert_eq!(
            sd.setting(&["nixpkgs", "hostPlatform"]),
            Some(&json!("aarch64-linux"))
        );
        // Emulation by default: no build platform, so the binary cache serves aarch64 paths.
        assert_eq!(sd.setting(&["nixpkgs", "buildPlatform"]), None);
        assert_eq!(sd.0["specialArgs"]["pifleetHost"]["name"], host);
        // The mainline kernel by default: nixos-hardware only for hosts that opt in.
        assert!(
            !sd.paths().iter().any(|p| p.contains("/raspberry-pi/")),
            "{host}-sd: {:?}",
            sd.paths()
        );
        assert_eq!(
            sd.setting(&["hardware", "raspberry-pi", "firmware", "uboot", "enable"]),
            None
        );
        // The mainline kernel builds every all-hardware module: the SD image's setting stands.
        assert_eq!(sd.setting(&["hardware", "enableAllHardware"]), None);

        // The deploy target is the same system without the image builder.
        let system = sandbox.recorded(&repo, host);
        assert!(
            !system.has_path_ending(SD_MODULE),
            "{host} has the SD image module: {:?}",
            system.paths()
        );
        assert_eq!(system.setting(&["image", "baseName"]), None);
        let sd_rest: Vec<&Value> = sd.modules().iter().take(system.modules().len()).collect();
        assert_eq!(
            system.modules().iter().collect::<Vec<_>>(),
            sd_rest,
            "{host}-sd doesn't start with {host}'s modules"
        );
    }
}

#[test]
fn edge_hosts_x86_nixos_hardware_and_cross_compilation() {
    require_nix!();
    let sandbox = Sandbox::new();
    let repo = sandbox.stage_repo(&fixture("hosts-edge"));
    let show = sandbox.show(&repo, &[]);

    // x86_64 hosts get no SD image.
    assert_eq!(
        keys(&show["nixosConfigurations"]),
        set(&[
            "pi-vendor",
            "pi-vendor-sd",
            "vps-01",
            "zero-cross",
            "zero-cross-sd"
        ])
    );
    for system in SYSTEMS {
        assert_eq!(
            keys(&show["packages"][system]),
            set(&["default", "pi-vendor-sd", "zero-cross-sd"])
        );
    }
    let vps = sandbox.recorded(&repo, "vps-01");
    assert!(
        vps.has_path_ending("/nix/boards/x86_64.nix"),
        "{:?}",
        vps.paths()
    );
    assert!(vps.has_path_ending("/hosts/vps-01"), "{:?}", vps.paths());
    assert_eq!(
        vps.setting(&["nixpkgs", "hostPlatform"]),
        Some(&json!("x86_64-linux"))
    );
    assert_eq!(vps.setting(&["nixpkgs", "buildPlatform"]), None);

    // Opting in to nixos-hardware adds its Pi profile, with U-Boot on the firmware partition.
    for name in ["pi-vendor", "pi-vendor-sd"] {
        let pi = sandbox.recorded(&repo, name);
        assert!(
            pi.has_path_ending("/raspberry-pi/4"),
            "{name}: {:?}",
            pi.paths()
        );
        assert!(
            pi.has_path_ending("/nix/boards/rpi4.nix"),
            "{name}: {:?}",
            pi.paths()
        );
        assert_eq!(
            pi.setting(&["hardware", "raspberry-pi", "firmware", "uboot", "enable"]),
            Some(&json!(true))
        );
        // The vendor kernel cannot build all-hardware's initrd modules: the profile is forced off
        // over sd-image.nix's normal-priority `true`, and the firmware it brought stays.
        assert_eq!(
            pi.setting(&["hardware", "enableAllHardware"]),
            Some(&json!({ "_type": "override", "priority": 50, "content": false }))
        );
        assert_eq!(
            pi.setting(&["hardware", "enableRedistributableFirmware"]),
            Some(&json!({ "_type": "override", "priority": 1000, "content": true }))
        );
    }

    // A host that reads secrets gets agenix's module; the others do not.
    assert!(
        !vps.has_path_ending("/modules/age.nix"),
        "{:?}",
        vps.paths()
    );

    // Cross-compilation: built on x86_64 for aarch64.
    for name in ["zero-cross", "zero-cross-sd"] {
        let zero = sandbox.recorded(&repo, name);
        assert!(
            zero.has_path_ending("/stubs/agenix/modules/age.nix")
                || zero.has_path_ending("/modules/age.nix"),
            "{name} reads secrets: {:?}",
            zero.paths()
        );
        assert!(
            zero.has_path_ending("/nix/boards/zero2w.nix"),
            "{name}: {:?}",
            zero.paths()
        );
        assert_eq!(
            zero.setting(&["nixpkgs", "hostPlatform"]),
            Some(&json!("aarch64-linux"))
        );
        assert_eq!(
            zero.setting(&["nixpkgs", "buildPlatform"]),
            Some(&json!("x86_64-linux"))
        );
    }
}

#[test]
fn template_instantiates_and_its_flake_shows_its_hosts() {
    require_nix!();
    let sandbox = Sandbox::new();
    let repo = sandbox.stage_repo(&fixture("hosts"));
    let fleet = sandbox.path("my-fleet");
    fs::create_dir_all(&fleet).expect("create fleet dir");

    let out = sandbox
        .nix()
        .args(["flake", "init", "-t"])
        .arg(format!("path:{}#default", repo.display()))
        .current_dir(&fleet)
        .output()
        .expect("run nix flake init");
    assert!(
        out.status.success(),
        "nix flake init failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for file in [
        "flake.nix",
        "fleet.toml",
        "README.md",
        "schema/fleet.schema.json",
    ] {
        assert!(fleet.join(file).is_file(), "the template has no {file}");
    }
    // Editors find the schema from the inventory's first line.
    let inventory = fs::read_to_string(fleet.join("fleet.toml")).expect("read fleet.toml");
    assert_eq!(
        inventory.lines().next(),
        Some("#:schema ./schema/fleet.schema.json")
    );

    // The template's inventory passes check as it is, and gen writes its hosts.
    for command in ["check", "gen"] {
        let out = Command::new(env!("CARGO_BIN_EXE_pifleet"))
            .arg(command)
            .current_dir(&fleet)
            .env("PIFLEET_CACHE_DIR", sandbox.path("gen-cache"))
            .env("NO_COLOR", "1")
            .output()
            .expect("run pifleet");
        assert!(
            out.status.success(),
            "pifleet {command} on the template:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(fleet.join("hosts/pi-01/default.nix").is_file());
    let show = sandbox.show(&fleet, &[("pifleet", &repo)]);
    assert_eq!(
        keys(&show["nixosConfigurations"]),
        set(&["pi-01", "pi-01-sd"])
    );
    for system in SYSTEMS {
        assert_eq!(
            keys(&show["packages"][system]),
            set(&["default", "pi-01-sd"])
        );
        assert_eq!(
            keys(&show["apps"][system]),
            set(&["check", "default", "deploy", "flash", "gen"])
        );
    }
}

#[test]
fn package_is_pifleet_from_the_workspace() {
    require_nix!();
    let sandbox = Sandbox::new();
    let repo = sandbox.stage_repo(&fixture("hosts"));
    // The stub buildRustPackage keeps what it was given.
    let attrs = sandbox.eval_apply(
        &repo,
        "packages.x86_64-linux.default",
        "p: { inherit (p) pname version cargoLock cargoBuildFlags; }",
    );
    assert_eq!(attrs["pname"], "pifleet");
    assert_eq!(attrs["version"], workspace_version());
    assert!(
        attrs["cargoLock"]
            .as_str()
            .is_some_and(|p| p.ends_with("/Cargo.lock")),
        "{attrs}"
    );
    assert_eq!(attrs["cargoBuildFlags"], json!(["--package", "pifleet"]));
}

#[test]
fn nix_files_parse() {
    require_nix!();
    let root = repo_root();
    let mut files = vec![
        root.join("flake.nix"),
        root.join("templates/default/flake.nix"),
    ];
    let mut dirs = vec![root.join("nix")];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).expect("read nix/") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "nix") {
                files.push(path);
            }
        }
    }
    for file in files {
        let out = Command::new("nix-instantiate")
            .arg("--parse")
            .arg(&file)
            .output()
            .expect("run nix-instantiate");
        assert!(
            out.status.success(),
            "{}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The board profiles, each called as a module with `lib.mkDefault` as the identity: Pis boot the
/// card's layout with extlinux (generation menu at boot) and grub off, small boards get zram.
#[test]
fn board_profiles_set_the_boot_defaults() {
    require_nix!();
    let boards = repo_root().join("nix/boards");
    let expr = format!(
        r#"
        let
          lib = {{ mkDefault = x: x; }};
          load = name:
            let m = import ({boards}/. + "/${{name}}") {{ inherit lib; config = {{ }}; pkgs = {{ }}; }};
            in m // {{ imports = map baseNameOf (m.imports or [ ]); }};
        in
        builtins.mapAttrs (name: _: load name) (builtins.readDir {boards})
        "#,
        boards = boards.display()
    );
    let out = Command::new("nix-instantiate")
        .args(["--eval", "--strict", "--json", "-E", &expr])
        .output()
        .expect("run nix-instantiate");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let boards: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(
        keys(&boards),
        set(&[
            "generic-aarch64.nix",
            "rpi3.nix",
            "rpi4.nix",
            "x86_64.nix",
            "zero2w.nix"
        ])
    );

    let generic = &boards["generic-aarch64.nix"];
    assert_eq!(generic["boot"]["loader"]["grub"]["enable"], false);
    assert_eq!(
        generic["boot"]["loader"]["generic-extlinux-compatible"]["enable"],
        true
    );
    assert_eq!(
        generic["fileSystems"]["/"]["device"],
        "/dev/disk/by-label/NIXOS_SD"
    );
    // No kernel pinned: NixOS's default mainline kernel, from the binary cache.
    assert!(generic["boot"].get("kernelPackages").is_none());
    for pi in ["rpi3.nix", "rpi4.nix", "zero2w.nix"] {
        assert_eq!(
            boards[pi]["imports"],
            json!(["generic-aarch64.nix"]),
            "{pi}"
        );
    }
    for small in ["rpi3.nix", "zero2w.nix"] {
        assert_eq!(boards[small]["zramSwap"]["enable"], true, "{small}");
    }
    // x86_64 leaves disks and boot loader to the user.
    assert!(boards["x86_64.nix"].get("fileSystems").is_none());
    assert!(boards["x86_64.nix"].get("boot").is_none());
}

/// The hand-written library leaves every option the inventory decides to the generated host
/// module: a default set here would win over the inventory's silence (`[fleet.nix] flakes = false`
/// used to leave flakes on because `common.nix` turned them on for every host).
#[test]
fn library_modules_leave_inventory_options_to_the_host_module() {
    require_nix!();
    let nix_dir = repo_root().join("nix");
    let expr = format!(
        r#"
        let
          lib = {{ mkDefault = x: x; mkForce = x: x; }};
          paths = prefix: v:
            if builtins.isAttrs v
            then builtins.concatLists (map (k: paths (prefix ++ [ k ]) v.${{k}}) (builtins.attrNames v))
            else [ (builtins.concatStringsSep "." prefix) ];
          load = file: paths [ ] (removeAttrs (import file {{ inherit lib; config = {{ }}; pkgs = {{ }}; }}) [ "imports" ]);
          boards = builtins.attrNames (builtins.readDir {dir}/boards);
        in
        {{ "modules/common.nix" = load {dir}/modules/common.nix; }}
        // builtins.listToAttrs (map (b: {{ name = "boards/${{b}}"; value = load ({dir}/boards + "/${{b}}"); }}) boards)
        "#,
        dir = nix_dir.display()
    );
    let out = Command::new("nix-instantiate")
        .args(["--eval", "--strict", "--json", "-E", &expr])
        .output()
        .expect("run nix-instantiate");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let set: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    // Options the generated host module writes from the inventory.
    const OWNED: &[&str] = &[
        "nix.settings.experimental-features",
        "nix.settings.trusted-users",
        "nix.gc",
        "services.openssh",
        "users.",
        "security.sudo",
        "networking.firewall",
        "networking.hostName",
        "networking.wireless",
        "time.timeZone",
        "i18n.defaultLocale",
        "system.stateVersion",
        "virtualisation.oci-containers",
    ];
    let files = set.as_object().expect("a set per file");
    assert!(files.contains_key("modules/common.nix") && files.contains_key("boards/rpi4.nix"));
    for (file, paths) in files {
        for path in paths.as_array().expect("paths") {
            let path = path.as_str().expect("a path");
            assert!(
                !OWNED.iter().any(|owned| path.starts_with(owned)),
                "nix/{file} sets `{path}`, which the inventory decides through the host module"
            );
        }
    }
}

#[test]
fn lock_file_has_the_real_nodes() {
    let text = fs::read_to_string(repo_root().join("flake.lock")).expect("read flake.lock");
    let lock: Value = serde_json::from_str(&text).expect("flake.lock is JSON");
    // Verbatim from the public lock nodes; Nix 2.8 reads version 7 and rejects 8.
    let expected = json!({
        "nodes": {
            "nixos-hardware": {
                "inputs": { "nixpkgs": ["nixpkgs"] },
                "locked": {
                    "lastModified": 1786717298u64,
                    "narHash": "sha256-asdPlqtM0AweQ5YNLad6eY4tSYW55YNr1uyayf7mOMQ=",
                    "owner": "NixOS",
                    "repo": "nixos-hardware",
                    "rev": "2dda192987ab6815e44df0130f03d6c907b79134",
                    "type": "github"
                },
                "original": { "owner": "NixOS", "repo": "nixos-hardware", "type": "github" }
            },
            "nixpkgs": {
                "locked": {
                    "lastModified": 1782116945u64,
                    "narHash": "sha256-G3tw/IXmaH6IQ2upZvhuN9sG8CkuX+BLuJDpE8hz0Ds=",
                    "owner": "NixOS",
                    "repo": "nixpkgs",
                    "rev": "34268251cf5547d39063f2c5ea9a196246f7f3a6",
                    "type": "github"
                },
                "original": { "owner": "NixOS", "ref": "nixos-26.05", "repo": "nixpkgs", "type": "github" }
            },
            "agenix": {
                "inputs": { "darwin": [], "home-manager": [], "nixpkgs": ["nixpkgs"], "systems": "systems" },
                "locked": {
                    "lastModified": 1770165109u64,
                    "narHash": "sha256-9VnK6Oqai65puVJ4WYtCTvlJeXxMzAp/69HhQuTdl/I=",
                    "owner": "ryantm",
                    "repo": "agenix",
                    "rev": "b027ee29d959fda4b60b57566d64c98a202e0feb",
                    "type": "github"
                },
                "original": { "owner": "ryantm", "repo": "agenix", "type": "github" }
            },
            "systems": {
                "locked": {
                    "lastModified": 1681028828u64,
                    "narHash": "sha256-Vy1rq5AaRuLzOxct8nz4T6wlgyUR7zLU309k9mBC768=",
                    "owner": "nix-systems",
                    "repo": "default",
                    "rev": "da67096a3b9bf56a91d16901293e51ba5b49a27e",
                    "type": "github"
                },
                "original": { "owner": "nix-systems", "repo": "default", "type": "github" }
            },
            "root": { "inputs": { "agenix": "agenix", "nixos-hardware": "nixos-hardware", "nixpkgs": "nixpkgs" } }
        },
        "root": "root",
        "version": 7
    });
    assert_eq!(lock, expected);
}

/// `[workspace.package] version` from the root Cargo.toml, which package.nix reads too.
fn workspace_version() -> String {
    let text = fs::read_to_string(repo_root().join("Cargo.toml")).expect("read Cargo.toml");
    let section = text
        .split("[workspace.package]")
        .nth(1)
        .expect("[workspace.package]");
    section
        .lines()
        .find_map(|line| line.trim().strip_prefix("version = \"")?.strip_suffix('"'))
        .expect("workspace version")
        .to_owned()
}
