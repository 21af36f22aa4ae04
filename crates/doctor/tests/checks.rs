//! Every check against prepared fake machines, passing and failing: nix.conf contents, binfmt_misc
//! entries under a root directory, `nix --version` outputs, SSH key directories, PATHs.

use std::fs;
use std::path::Path;

use doctor::{Inputs, NixConf, Status};

/// A fake `/`: nix.conf and binfmt_misc entries written where the kernel and Nix put them.
struct Root(tempfile::TempDir);

impl Root {
    fn new() -> Self {
        Self(tempfile::tempdir().expect("tempdir"))
    }

    fn path(&self) -> &Path {
        self.0.path()
    }

    fn file(&self, rel: &str, text: &str) -> &Self {
        let path = self.path().join(rel);
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(path, text).expect("write");
        self
    }

    fn nix_conf(&self, text: &str) -> &Self {
        self.file("etc/nix/nix.conf", text)
    }

    fn conf(&self) -> NixConf {
        NixConf::load(self.path(), None)
    }

    /// binfmt_misc as Debian's qemu-user-static registers it.
    fn qemu(&self, enabled: bool, flags: &str) -> &Self {
        self.file("proc/sys/fs/binfmt_misc/status", "enabled\n");
        self.file(
            "proc/sys/fs/binfmt_misc/qemu-aarch64",
            &format!(
                "{}\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: {flags}\noffset 0\nmagic 7f454c460201010000000000000000000200b700\nmask ffffffffffffff00fffffffffffffffffeffffff\n",
                if enabled { "enabled" } else { "disabled" }
            ),
        )
    }
}

const DEBIAN_READY: &str = "\
build-users-group = nixbld
experimental-features = nix-command flakes
extra-platforms = aarch64-linux
";

#[test]
fn nix_version_passes_new_and_fails_old_or_missing() {
    let installed = std::path::Path::new("/nix/store/abc-nix-2.8.0/bin/nix");
    let ok = doctor::nix_version(Some("nix (Nix) 2.31.2\n"), Some(installed));
    assert_eq!(ok.status, Status::Ok, "{ok:?}");
    assert_eq!(ok.summary, "Nix 2.31.2");

    // An installer-made Nix upgrades itself.
    let old = doctor::nix_version(Some("nix (Nix) 2.8.0\n"), Some(installed));
    assert_eq!(old.status, Status::Fail);
    assert!(old.summary.contains("too old"), "{}", old.summary);
    let fix = old.fix.expect("fix");
    assert!(fix.ubuntu.contains("upgrade-nix"), "{}", fix.ubuntu);
    assert!(fix.nixos.contains("nix.package"), "{}", fix.nixos);

    // Debian's nix-bin cannot: the fix replaces it.
    let packaged = doctor::nix_version(
        Some("nix (Nix) 2.8.0\n"),
        Some(std::path::Path::new("/usr/bin/nix")),
    );
    let fix = packaged.fix.expect("fix");
    assert!(!fix.ubuntu.contains("upgrade-nix &&"), "{}", fix.ubuntu);
    assert!(fix.ubuntu.contains("apt remove nix-bin"), "{}", fix.ubuntu);
    assert!(
        fix.ubuntu.contains("nixos.org/nix/install"),
        "{}",
        fix.ubuntu
    );

    let missing = doctor::nix_version(None, None);
    assert_eq!(missing.status, Status::Fail);
    assert!(
        missing
            .fix
            .expect("fix")
            .ubuntu
            .contains("nixos.org/nix/install")
    );
}

#[test]
fn flakes_pass_in_either_spelling_and_fail_otherwise() {
    let root = Root::new();
    root.nix_conf(DEBIAN_READY);
    assert_eq!(doctor::flakes(&root.conf()).status, Status::Ok);

    root.nix_conf("experimental-features = nix-command\nextra-experimental-features = flakes\n");
    assert_eq!(doctor::flakes(&root.conf()).status, Status::Ok);

    // A later plain assignment replaces what came before.
    root.nix_conf(
        "experimental-features = nix-command flakes\nexperimental-features = ca-derivations\n",
    );
    let check = doctor::flakes(&root.conf());
    assert_eq!(check.status, Status::Fail);
    assert!(
        check.summary.contains("nix-command and flakes"),
        "{}",
        check.summary
    );

    let empty = Root::new();
    let check = doctor::flakes(&empty.conf());
    assert_eq!(check.status, Status::Fail);
    let fix = check.fix.expect("fix");
    assert!(fix.ubuntu.contains("/etc/nix/nix.conf") && fix.ubuntu.contains("restart nix-daemon"));
    assert!(fix.nixos.contains("nix.settings.experimental-features"));
}

#[test]
fn flakes_from_an_included_file_and_the_user_conf() {
    let root = Root::new();
    root.nix_conf("!include nix.custom.conf\n").file(
        "etc/nix/nix.custom.conf",
        "experimental-features = nix-command flakes\n",
    );
    assert_eq!(doctor::flakes(&root.conf()).status, Status::Ok);

    let root = Root::new();
    root.nix_conf("experimental-features = nix-command\n")
        .file("home/nix.conf", "extra-experimental-features = flakes\n");
    let conf = NixConf::load(root.path(), Some(&root.path().join("home/nix.conf")));
    assert_eq!(doctor::flakes(&conf).status, Status::Ok);
}

#[test]
fn nix_config_in_the_environment_counts() {
    let root = Root::new();
    root.nix_conf("experimental-features = nix-command\n");
    let checks = doctor::run_all(&Inputs {
        root: root.path().to_path_buf(),
        user_conf: None,
        env_conf: Some("extra-experimental-features = flakes".into()),
        arch: "aarch64".into(),
        nix_version: None,
        path_var: "".into(),
        ssh_dir: root.path().join("none"),
        inventory_keys: None,
        store: None,
    });
    let flakes = checks.iter().find(|c| c.name == "flakes").expect("flakes");
    assert_eq!(flakes.status, Status::Ok, "{flakes:?}");
}

#[test]
fn aarch64_natively() {
    let root = Root::new();
    assert_eq!(
        doctor::aarch64(root.path(), "aarch64", &root.conf()).status,
        Status::Ok
    );
}

#[test]
fn aarch64_through_qemu_with_the_f_flag_and_extra_platforms() {
    let root = Root::new();
    root.nix_conf(DEBIAN_READY).qemu(true, "POCF");
    let check = doctor::aarch64(root.path(), "x86_64", &root.conf());
    assert_eq!(check.status, Status::Ok, "{check:?}");
    assert!(check.summary.contains("qemu-aarch64"), "{}", check.summary);
}

#[test]
fn aarch64_as_nixos_boot_binfmt_registers_it() {
    // NixOS names the entry after the system and puts the interpreter in the sandbox paths.
    let root = Root::new();
    root.nix_conf(
        "extra-platforms = aarch64-linux i686-linux\nextra-sandbox-paths = /run/binfmt /nix/store/abc-qemu-aarch64\n",
    )
    .file("proc/sys/fs/binfmt_misc/status", "enabled\n")
    .file(
        "proc/sys/fs/binfmt_misc/aarch64-linux",
        "enabled\ninterpreter /run/binfmt/aarch64-linux\nflags: P\noffset 0\nmagic 7f454c460201010000000000000000000200b700\n",
    );
    let check = doctor::aarch64(root.path(), "x86_64", &root.conf());
    assert_eq!(check.status, Status::Ok, "{check:?}");
}

#[test]
fn aarch64_fails_with_the_fix_for_each_missing_piece() {
    // Nothing registered.
    let root = Root::new();
    root.nix_conf(DEBIAN_READY);
    let check = doctor::aarch64(root.path(), "x86_64", &root.conf());
    assert_eq!(check.status, Status::Fail);
    let fix = check.fix.expect("fix");
    assert!(fix.ubuntu.contains("qemu-user-static"), "{}", fix.ubuntu);
    assert!(
        fix.nixos.contains("boot.binfmt.emulatedSystems"),
        "{}",
        fix.nixos
    );

    // Registered but disabled.
    let root = Root::new();
    root.nix_conf(DEBIAN_READY).qemu(false, "OCF");
    let check = doctor::aarch64(root.path(), "x86_64", &root.conf());
    assert_eq!(check.status, Status::Fail);
    assert!(check.summary.contains("disabled"), "{}", check.summary);

    // Without F the interpreter can't be found inside the sandbox.
    let root = Root::new();
    root.nix_conf(DEBIAN_READY).qemu(true, "OC");
    let check = doctor::aarch64(root.path(), "x86_64", &root.conf());
    assert_eq!(check.status, Status::Fail);
    assert!(check.summary.contains("without F"), "{}", check.summary);

    // binfmt is fine, but Nix isn't told to use it.
    let root = Root::new();
    root.nix_conf("experimental-features = nix-command flakes\n")
        .qemu(true, "OCF");
    let check = doctor::aarch64(root.path(), "x86_64", &root.conf());
    assert_eq!(check.status, Status::Fail);
    assert!(
        check.summary.contains("extra-platforms"),
        "{}",
        check.summary
    );
    assert!(
        check
            .fix
            .expect("fix")
            .ubuntu
            .contains("extra-platforms = aarch64-linux")
    );
}

const KEY_A: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
const KEY_B: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOtherKeyBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB";

#[test]
fn ssh_keys_found_in_the_inventory_or_not() {
    let root = Root::new();
    root.file("ssh/id_ed25519.pub", &format!("{KEY_A} me@laptop\n"))
        .file("ssh/id_ed25519", "PRIVATE, never read\n")
        .file("ssh/known_hosts", "");
    let ssh = root.path().join("ssh");

    let inventory = vec![format!("{KEY_A} eduardo@workstation")];
    let check = doctor::ssh_keys(&ssh, Some(&inventory));
    assert_eq!(check.status, Status::Ok, "{check:?}");
    assert!(check.summary.contains("id_ed25519.pub"));

    let inventory = vec![format!("{KEY_B} someone@else")];
    let check = doctor::ssh_keys(&ssh, Some(&inventory));
    assert_eq!(check.status, Status::Fail);
    assert!(
        check.summary.contains("could not log in"),
        "{}",
        check.summary
    );
    assert!(check.fix.expect("fix").ubuntu.contains("fleet.toml"));

    let check = doctor::ssh_keys(&ssh, None);
    assert_eq!(check.status, Status::Warn);

    let check = doctor::ssh_keys(&root.path().join("nowhere"), Some(&inventory));
    assert_eq!(check.status, Status::Fail);
    assert!(check.fix.expect("fix").ubuntu.contains("ssh-keygen"));
}

#[test]
fn disk_space_thresholds() {
    let store = Path::new("/nix/store");
    assert_eq!(doctor::disk_space(store, 50 << 30).status, Status::Ok);
    assert_eq!(doctor::disk_space(store, 12 << 30).status, Status::Warn);
    let low = doctor::disk_space(store, 2 << 30);
    assert_eq!(low.status, Status::Fail);
    assert!(low.fix.expect("fix").ubuntu.contains("nix-collect-garbage"));
    assert!(doctor::available_space(Path::new("/")).expect("statvfs") > 0);
}

#[test]
fn a_ready_ubuntu_workstation_passes_everything() {
    let root = Root::new();
    root.nix_conf(DEBIAN_READY)
        .qemu(true, "OCF")
        .file("home/.ssh/id_ed25519.pub", &format!("{KEY_A} me@laptop\n"));
    let checks = doctor::run_all(&Inputs {
        root: root.path().to_path_buf(),
        user_conf: None,
        env_conf: None,
        arch: "x86_64".into(),
        nix_version: Some("nix (Nix) 2.28.3".into()),
        path_var: root.path().join("bin").into_os_string(),
        ssh_dir: root.path().join("home/.ssh"),
        inventory_keys: Some(vec![KEY_A.to_owned()]),
        store: Some(("/nix/store".into(), 100 << 30)),
    });
    let names: Vec<&str> = checks.iter().map(|c| c.name).collect();
    assert_eq!(names, ["nix", "flakes", "aarch64", "ssh-keys", "disk"]);
    for check in &checks {
        assert_eq!(check.status, Status::Ok, "{check:?}");
        assert_eq!(check.fix, None);
    }
}
