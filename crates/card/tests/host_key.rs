//! The SSH host key writer on real ext4 file systems made with `mkfs.ext4 -d` from a NixOS-like
//! tree: in an image file, in a partition of one, on a loop device, and mounted (the fallback);
//! owner, mode and content read back with `debugfs`, the file system checked with `e2fsck`.
//!
//! Loop devices and mounts need root; where `losetup` or `mount` are not permitted those tests
//! skip, unless `PIFLEET_REQUIRE_LOOP=1` (set by `scripts/test`), where they fail. `mkfs.ext4`,
//! `debugfs`, `e2fsck` (e2fsprogs) and `sfdisk` (fdisk) are required: scripts/test installs them.

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use card::{Debugfs, Editor, Found, HostKey, HostKeyError, Mounted, Root, Zeroizing};

// Two ed25519 key pairs made with `ssh-keygen -t ed25519 -N ''` for these tests only.
const PRIVATE_A: &str = "-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
QyNTUxOQAAACAsehBLEk67g1bqPdmaDss57ewe63fFhBS3qT+AKueYUgAAAJiRBSuskQUr
rAAAAAtzc2gtZWQyNTUxOQAAACAsehBLEk67g1bqPdmaDss57ewe63fFhBS3qT+AKueYUg
AAAEAErUYuxA3VRb1F1PZNuKxjxgX2MBsf2L7iFYQ3FIsnOSx6EEsSTruDVuo92ZoOyznt
7B7rd8WEFLepP4Aq55hSAAAAD3Jvb3RAcnBpLWJveC0wMQECAwQFBg==
-----END OPENSSH PRIVATE KEY-----
";
const PUBLIC_A: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICx6EEsSTruDVuo92ZoOyznt7B7rd8WEFLepP4Aq55hS root@rpi-box-01";
const FP_A: &str = "SHA256:rSaXJGpvhUD2EMyLtWL4Mjz2M0d2HLdATDP9/PLnCRU";
/// A line found only in A's private key: the secret half.
const SECRET_A: &str = "AAAEAErUYuxA3VRb1F1PZNuKxjxgX2MBsf2L7iFYQ3FIsnOSx6EEsSTruDVuo92ZoOyznt";

const PRIVATE_B: &str = "-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
QyNTUxOQAAACB9uYJbKcz4GjNo8J71LdMZgMXkLbmvQcb/yS63X0CmugAAAJAKMa6rCjGu
qwAAAAtzc2gtZWQyNTUxOQAAACB9uYJbKcz4GjNo8J71LdMZgMXkLbmvQcb/yS63X0Cmug
AAAEBMSTKbga0vc6imPAW8Z147sSSbLCPw5KoG0f95IYDVXH25glspzPgaM2jwnvUt0xmA
xeQtua9Bxv/JLrdfQKa6AAAACHJvb3RAb2xkAQIDBAU=
-----END OPENSSH PRIVATE KEY-----
";
const PUBLIC_B: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH25glspzPgaM2jwnvUt0xmAxeQtua9Bxv/JLrdfQKa6 root@old";
const FP_B: &str = "SHA256:PW4kn9UpHvRwYaxRX+oGdJ74h28TR7lyMVx7V8Wb0o8";

const KEY_FILE: &str = "/etc/ssh/ssh_host_ed25519_key";
const PUB_FILE: &str = "/etc/ssh/ssh_host_ed25519_key.pub";

fn key_a() -> HostKey {
    HostKey::from_private(Zeroizing::new(PRIVATE_A.to_owned())).expect("key A")
}

fn tool(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {program} (scripts/test installs it): {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What `/etc` holds in the test tree.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Etc {
    /// Booted once: `/etc/NIXOS`, `/etc/ssh` with `sshd_config` but no host key yet.
    Booted,
    /// A never-booted SD image with an `/etc` but no `/etc/ssh`.
    NoSsh,
    /// A never-booted image with no `/etc` at all.
    None,
}

/// A NixOS-like root tree under `dir/root`, owned by root as mkfs copies it.
fn tree(dir: &Path, etc: Etc) -> PathBuf {
    let root = dir.join("root");
    let mk = |p: &str| std::fs::create_dir_all(root.join(p)).expect("mkdir");
    mk("nix/store/0000000000000000000000000000000-openssh-10.0");
    match etc {
        Etc::Booted => {
            mk("nix/var/nix/db");
            mk("etc/ssh");
            std::fs::write(root.join("etc/NIXOS"), "").expect("marker");
            symlink(
                "/etc/static/ssh/sshd_config",
                root.join("etc/ssh/sshd_config"),
            )
            .expect("symlink");
        }
        Etc::NoSsh => {
            mk("etc");
            std::fs::write(root.join("nix-path-registration"), "/nix/store/…\n").expect("reg");
        }
        Etc::None => {
            std::fs::write(root.join("nix-path-registration"), "/nix/store/…\n").expect("reg");
        }
    }
    root
}

/// Puts `private` and the line `public` in the tree's `/etc/ssh` with modes 600 and 644.
fn put_key(root: &Path, private: &str, public: &str) {
    let public = format!("{public}\n");
    let ssh = root.join("etc/ssh");
    std::fs::create_dir_all(&ssh).expect("mkdir");
    for (name, text, mode) in [
        ("ssh_host_ed25519_key", private, 0o600),
        ("ssh_host_ed25519_key.pub", public.as_str(), 0o644),
    ] {
        std::fs::write(ssh.join(name), text).expect("write");
        std::fs::set_permissions(ssh.join(name), std::fs::Permissions::from_mode(mode))
            .expect("chmod");
    }
}

/// A bare ext4 image of `root`.
fn ext4_image(dir: &Path, root: &Path) -> PathBuf {
    let image = dir.join("root.img");
    tool(
        "mkfs.ext4",
        &[
            "-q",
            "-F",
            "-L",
            "NIXOS_SD",
            "-d",
            &root.to_string_lossy(),
            &image.to_string_lossy(),
            "16M",
        ],
    );
    image
}

/// Where the root partition of [`partitioned_image`] starts.
const ROOT_START: u64 = 2048 * 512;

/// An MBR image with one Linux partition at 1 MiB holding an ext4 of `root`.
fn partitioned_image(dir: &Path, root: &Path) -> PathBuf {
    let image = dir.join("sd.img");
    std::fs::File::create(&image)
        .and_then(|f| f.set_len(24 << 20))
        .expect("image");
    let mut sfdisk = Command::new("sfdisk")
        .args(["-q"])
        .arg(&image)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("run sfdisk (scripts/test installs fdisk)");
    {
        use std::io::Write;
        let mut stdin = sfdisk.stdin.take().expect("stdin");
        stdin
            .write_all(b"label: dos\nstart=2048, type=83\n")
            .expect("table");
    }
    assert!(sfdisk.wait().expect("sfdisk").success());
    tool(
        "mkfs.ext4",
        &[
            "-q",
            "-F",
            "-E",
            &format!("offset={ROOT_START}"),
            "-d",
            &root.to_string_lossy(),
            &image.to_string_lossy(),
            "16M",
        ],
    );
    image
}

fn locate(path: &Path) -> Root {
    card::locate(&flash::SystemView::live(), path).expect("locate the root")
}

/// `debugfs -R request spec`'s standard output.
fn debugfs(spec: &str, request: &str) -> String {
    let out = Command::new("debugfs")
        .args(["-R", request, spec])
        .env("DEBUGFS_PAGER", "__none__")
        .output()
        .expect("run debugfs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `(type, mode, uid, gid, inode)` of `path`, from debugfs `stat`.
fn stat(spec: &str, path: &str) -> Option<(String, String, u32, u32, u64)> {
    let text = debugfs(spec, &format!("stat {path}"));
    let after = |key: &str| -> Option<String> {
        let at = text.find(key)? + key.len();
        text[at..].split_whitespace().next().map(str::to_owned)
    };
    Some((
        after("Type:")?,
        after("Mode:")?,
        after("User:")?.parse().ok()?,
        after("Group:")?.parse().ok()?,
        after("Inode:")?.parse().ok()?,
    ))
}

/// Type, mode and owner of `path`, without the inode number.
fn kind_mode_owner(spec: &str, path: &str) -> Option<(String, String, u32, u32)> {
    stat(spec, path).map(|(t, m, u, g, _)| (t, m, u, g))
}

fn inode(spec: &str, path: &str) -> u64 {
    stat(spec, path).expect("exists").4
}

fn fsck_clean(spec: &str) {
    let fsck = Command::new("e2fsck")
        .args(["-fn", spec])
        .output()
        .expect("run e2fsck");
    assert!(
        fsck.status.success(),
        "e2fsck finds the file system clean: {}",
        String::from_utf8_lossy(&fsck.stdout)
    );
}

/// Key pair `private`/`public` in `/etc/ssh` with owner 0:0 and modes 600/644, `/etc/ssh` a
/// directory 0:0 755, no temporary file left, the file system clean.
fn assert_host_key(spec: &str, private: &str, public: &str) {
    let own = |kind: &str, mode: &str| Some((kind.to_owned(), mode.to_owned(), 0, 0));
    assert_eq!(kind_mode_owner(spec, "/etc"), own("directory", "0755"));
    assert_eq!(kind_mode_owner(spec, "/etc/ssh"), own("directory", "0755"));
    assert_eq!(kind_mode_owner(spec, KEY_FILE), own("regular", "0600"));
    assert_eq!(kind_mode_owner(spec, PUB_FILE), own("regular", "0644"));
    assert_eq!(debugfs(spec, &format!("cat {KEY_FILE}")), private);
    assert_eq!(
        debugfs(spec, &format!("cat {PUB_FILE}")),
        format!("{public}\n")
    );
    for leftover in [
        "/etc/ssh/.ssh_host_ed25519_key.pifleet-new",
        "/etc/ssh/.ssh_host_ed25519_key.pub.pifleet-new",
    ] {
        assert_eq!(stat(spec, leftover), None, "{leftover} is not left behind");
    }
    fsck_clean(spec);
}

/// Mounts need root; `None` (skip, or fail under `PIFLEET_REQUIRE_LOOP=1`) when not permitted.
fn mounted(root: &Root) -> Option<Mounted> {
    match Mounted::new(root) {
        Ok(m) => Some(m),
        Err(e) => {
            unavailable(&format!("mount failed: {e}"));
            None
        }
    }
}

fn unavailable(why: &str) {
    if std::env::var_os("PIFLEET_REQUIRE_LOOP").is_some_and(|v| v == "1") {
        panic!("{why}, and PIFLEET_REQUIRE_LOOP=1 requires loop devices and mounts");
    }
    eprintln!("skipping: {why} (set PIFLEET_REQUIRE_LOOP=1 to make this fail)");
}

#[test]
fn booted_image_gets_the_key_with_owner_and_modes_and_twice_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let image = ext4_image(dir.path(), &tree(dir.path(), Etc::Booted));
    let spec = image.to_string_lossy().into_owned();
    let root = locate(&image);
    let mut editor = Debugfs::new(&root).expect("debugfs");
    let key = key_a();

    let plan = card::plan_host_key(&mut editor, &root.shown, &key, false).expect("plan");
    assert_eq!(
        plan.describe(false),
        [
            format!("host key {FP_A} (ED25519)"),
            "kept /etc/ssh (owner 0:0, mode 755)".to_owned(),
            "write /etc/ssh/ssh_host_ed25519_key (owner 0:0, mode 600)".to_owned(),
            "write /etc/ssh/ssh_host_ed25519_key.pub (owner 0:0, mode 644)".to_owned(),
        ]
    );
    assert_eq!(plan.replaces(), None);
    card::apply_host_key(&mut editor, &root.shown, &key, &plan).expect("apply");
    assert_host_key(&spec, PRIVATE_A, PUBLIC_A);
    assert_eq!(
        kind_mode_owner(&spec, "/etc/ssh/sshd_config"),
        Some(("symlink".to_owned(), "0777".to_owned(), 0, 0)),
        "the rest of /etc/ssh is untouched"
    );

    // Twice: the same key is found, nothing is written (the inodes stay the same).
    let inodes = (inode(&spec, KEY_FILE), inode(&spec, PUB_FILE));
    let again = card::write_host_key(&mut editor, &root.shown, &key, false).expect("again");
    assert!(!again.changes_anything(), "{again:?}");
    assert_eq!(
        again.describe(true)[2..],
        [
            "kept /etc/ssh/ssh_host_ed25519_key (owner 0:0, mode 600)",
            "kept /etc/ssh/ssh_host_ed25519_key.pub (owner 0:0, mode 644)",
        ]
    );
    assert_eq!((inode(&spec, KEY_FILE), inode(&spec, PUB_FILE)), inodes);
    assert_host_key(&spec, PRIVATE_A, PUBLIC_A);
}

#[test]
fn never_booted_card_gets_etc_ssh_and_etc() {
    for (etc, created) in [
        (Etc::NoSsh, vec!["create /etc/ssh (owner 0:0, mode 755)"]),
        (
            Etc::None,
            vec![
                "create /etc (owner 0:0, mode 755)",
                "create /etc/ssh (owner 0:0, mode 755)",
            ],
        ),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let image = ext4_image(dir.path(), &tree(dir.path(), etc));
        let spec = image.to_string_lossy().into_owned();
        assert_eq!(stat(&spec, "/etc/ssh"), None);
        let root = locate(&image);
        let mut editor = Debugfs::new(&root).expect("debugfs");
        let plan = card::write_host_key(&mut editor, &root.shown, &key_a(), false).expect("write");
        assert_eq!(plan.describe(false)[1..=created.len()], created);
        assert_eq!(
            plan.describe(true)[1..=created.len()],
            created
                .iter()
                .map(|l| l.replace("create", "created"))
                .collect::<Vec<_>>()
        );
        assert_host_key(&spec, PRIVATE_A, PUBLIC_A);
    }
}

#[test]
fn another_key_is_refused_and_untouched_then_replaced_when_asked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root_tree = tree(dir.path(), Etc::Booted);
    put_key(&root_tree, PRIVATE_B, PUBLIC_B);
    let image = ext4_image(dir.path(), &root_tree);
    let spec = image.to_string_lossy().into_owned();
    let root = locate(&image);
    let mut editor = Debugfs::new(&root).expect("debugfs");
    let key = key_a();
    let inodes = (inode(&spec, KEY_FILE), inode(&spec, PUB_FILE));

    let err = card::write_host_key(&mut editor, &root.shown, &key, false).expect_err("refused");
    assert!(matches!(err, HostKeyError::OtherKey { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "{} already has another SSH host key: /etc/ssh/ssh_host_ed25519_key holds {FP_B}, not {FP_A}; it is replaced only when asked to",
            image.display()
        )
    );
    assert!(!err.to_string().contains(SECRET_A));
    assert_host_key(&spec, PRIVATE_B, PUBLIC_B);
    assert_eq!((inode(&spec, KEY_FILE), inode(&spec, PUB_FILE)), inodes);

    let plan = card::plan_host_key(&mut editor, &root.shown, &key, true).expect("plan");
    assert_eq!(plan.replaces().as_deref(), Some(FP_B));
    assert_eq!(
        plan.describe(false)[2..],
        [
            format!("replace /etc/ssh/ssh_host_ed25519_key (owner 0:0, mode 600; was {FP_B})"),
            format!("replace /etc/ssh/ssh_host_ed25519_key.pub (owner 0:0, mode 644; was {FP_B})"),
        ]
    );
    card::apply_host_key(&mut editor, &root.shown, &key, &plan).expect("apply");
    assert_host_key(&spec, PRIVATE_A, PUBLIC_A);
}

#[test]
fn a_private_key_that_is_not_a_key_or_a_lone_public_key_count_as_another_key() {
    for (private, public, path, existing) in [
        (
            Some("garbage\n"),
            None,
            KEY_FILE,
            "something that is not an OpenSSH key",
        ),
        (None, Some(PUBLIC_B), PUB_FILE, FP_B),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let root_tree = tree(dir.path(), Etc::Booted);
        let ssh = root_tree.join("etc/ssh");
        if let Some(text) = private {
            std::fs::write(ssh.join("ssh_host_ed25519_key"), text).expect("write");
        }
        if let Some(line) = public {
            std::fs::write(ssh.join("ssh_host_ed25519_key.pub"), line).expect("write");
        }
        let image = ext4_image(dir.path(), &root_tree);
        let root = locate(&image);
        let mut editor = Debugfs::new(&root).expect("debugfs");
        let err =
            card::write_host_key(&mut editor, &root.shown, &key_a(), false).expect_err("refused");
        match &err {
            HostKeyError::OtherKey {
                path: p,
                existing: e,
                ..
            } => assert_eq!((p.as_str(), e.as_str()), (path, existing)),
            other => panic!("{other:?}"),
        }
        if let Some(text) = private {
            assert_eq!(
                debugfs(&image.to_string_lossy(), &format!("cat {KEY_FILE}")),
                text
            );
        }
    }
}

#[test]
fn same_key_in_other_text_is_rewritten_and_modes_are_fixed_without_replace() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root_tree = tree(dir.path(), Etc::Booted);
    // The right private key, readable by everyone; the public key with another comment.
    put_key(
        &root_tree,
        PRIVATE_A,
        &PUBLIC_A.replace("root@rpi-box-01", "root@nixos"),
    );
    std::fs::set_permissions(
        root_tree.join("etc/ssh/ssh_host_ed25519_key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .expect("chmod");
    let image = ext4_image(dir.path(), &root_tree);
    let spec = image.to_string_lossy().into_owned();
    let root = locate(&image);
    let mut editor = Debugfs::new(&root).expect("debugfs");
    let key_inode = inode(&spec, KEY_FILE);

    let plan = card::write_host_key(&mut editor, &root.shown, &key_a(), false).expect("write");
    assert_eq!(plan.replaces(), None);
    assert!(matches!(plan.public_now, Found::SameKey(_)), "{plan:?}");
    assert_eq!(
        plan.describe(true)[2..],
        [
            "fixed /etc/ssh/ssh_host_ed25519_key (owner 0:0, mode 600, was owner 0:0, mode 644)",
            "rewrote /etc/ssh/ssh_host_ed25519_key.pub (owner 0:0, mode 644; same key, other text)",
        ]
    );
    assert_host_key(&spec, PRIVATE_A, PUBLIC_A);
    assert_eq!(
        inode(&spec, KEY_FILE),
        key_inode,
        "only the mode was changed"
    );
}

#[test]
fn a_symbolic_link_in_place_of_the_key_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root_tree = tree(dir.path(), Etc::Booted);
    symlink(
        "/run/keys/host",
        root_tree.join("etc/ssh/ssh_host_ed25519_key"),
    )
    .expect("symlink");
    let image = ext4_image(dir.path(), &root_tree);
    let root = locate(&image);
    let mut editor = Debugfs::new(&root).expect("debugfs");
    let err = card::write_host_key(&mut editor, &root.shown, &key_a(), true).expect_err("refused");
    assert_eq!(
        err.to_string(),
        format!(
            "/etc/ssh/ssh_host_ed25519_key on {} is a symbolic link, not a regular file; refusing to touch it",
            image.display()
        )
    );
}

#[test]
fn an_ext4_that_is_not_nixos_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plain = dir.path().join("plain");
    std::fs::create_dir_all(plain.join("etc/ssh")).expect("mkdir");
    let image = ext4_image(dir.path(), &plain);
    let root = locate(&image);
    let mut editor = Debugfs::new(&root).expect("debugfs");
    let err = card::write_host_key(&mut editor, &root.shown, &key_a(), false).expect_err("refused");
    assert!(matches!(err, HostKeyError::NotNixos { .. }), "{err:?}");
    assert_eq!(stat(&image.to_string_lossy(), KEY_FILE), None);
}

#[test]
fn partition_of_an_image() {
    let dir = tempfile::tempdir().expect("tempdir");
    let image = partitioned_image(dir.path(), &tree(dir.path(), Etc::NoSsh));
    let root = locate(&image);
    assert_eq!(root.offset, ROOT_START);
    let mut editor = card::open(&root).expect("open");
    card::write_host_key(editor.as_mut(), &root.shown, &key_a(), false).expect("write");
    drop(editor);
    assert_host_key(
        &format!("{}?offset={ROOT_START}", image.display()),
        PRIVATE_A,
        PUBLIC_A,
    );
}

/// A loop device over a file; detached on drop.
struct Loop(PathBuf);

impl Loop {
    fn attach(file: &Path) -> Option<Self> {
        match Command::new("losetup")
            .args(["--find", "--show"])
            .arg(file)
            .output()
        {
            Ok(out) if out.status.success() => {
                Some(Self(String::from_utf8_lossy(&out.stdout).trim().into()))
            }
            other => {
                unavailable(&format!("losetup failed: {other:?}"));
                None
            }
        }
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.0).status();
    }
}

#[test]
fn loop_device() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root_tree = tree(dir.path(), Etc::Booted);
    put_key(&root_tree, PRIVATE_B, PUBLIC_B);
    let image = ext4_image(dir.path(), &root_tree);
    let Some(lo) = Loop::attach(&image) else {
        return;
    };
    let root = locate(&lo.0);
    assert!(root.device.is_some(), "{root:?}");
    let mut editor = Debugfs::new(&root).expect("debugfs");
    let key = key_a();
    let err = card::write_host_key(&mut editor, &root.shown, &key, false).expect_err("refused");
    assert!(matches!(err, HostKeyError::OtherKey { .. }), "{err:?}");
    let spec = lo.0.to_string_lossy().into_owned();
    assert_host_key(&spec, PRIVATE_B, PUBLIC_B);
    card::write_host_key(&mut editor, &root.shown, &key, true).expect("replace");
    assert_host_key(&spec, PRIVATE_A, PUBLIC_A);
}

#[test]
fn mounted_fallback_writes_the_same_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root_tree = tree(dir.path(), Etc::NoSsh);
    let image = ext4_image(dir.path(), &root_tree);
    let root = locate(&image);
    let Some(mut editor) = mounted(&root) else {
        return;
    };
    assert!(editor.method().starts_with("mounted at"));
    card::write_host_key(&mut editor, &root.shown, &key_a(), false).expect("write");
    let again = card::write_host_key(&mut editor, &root.shown, &key_a(), false).expect("again");
    assert!(!again.changes_anything(), "{again:?}");
    drop(editor);
    assert_host_key(&image.to_string_lossy(), PRIVATE_A, PUBLIC_A);
}

/// Every file under `dir` (not following symbolic links) whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(ft) = entry.file_type() else { continue };
        if ft.is_dir() {
            found.extend(files_containing(&path, needle));
        } else if ft.is_file()
            && std::fs::read(&path).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle))
        {
            found.push(path);
        }
    }
    found
}

/// Runs in a child process (see [`the_private_key_never_lands_in_tmpdir`]), whose `TMPDIR` and
/// `PIFLEET_DEBUGFS` the parent sets: the environment can't be changed in a running test binary.
#[test]
#[ignore = "run by the_private_key_never_lands_in_tmpdir in a child process"]
fn tmpdir_child() {
    let Some(images) = std::env::var_os("PIFLEET_TEST_HOST_KEY_IMAGES") else {
        return;
    };
    let images: Vec<PathBuf> = std::env::split_paths(&images).collect();
    let key = key_a();
    // With debugfs (the wrapper), then the same again replacing key B: both write paths.
    let root = locate(&images[0]);
    let mut editor = card::open(&root).expect("open");
    assert!(
        editor.method().starts_with("debugfs"),
        "{}",
        editor.method()
    );
    card::write_host_key(editor.as_mut(), &root.shown, &key, false).expect("write");
    let root = locate(&images[1]);
    let mut editor = Debugfs::new(&root).expect("debugfs");
    card::write_host_key(&mut editor, &root.shown, &key, true).expect("replace");
    // Mounted, when mounts are permitted: the mount point is in TMPDIR while it lasts.
    let root = locate(&images[2]);
    if let Some(mut editor) = mounted(&root) {
        card::write_host_key(&mut editor, &root.shown, &key, false).expect("mounted write");
    }
}

#[test]
fn the_private_key_never_lands_in_tmpdir() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut images = Vec::new();
    for (name, etc, other) in [
        ("new", Etc::NoSsh, false),
        ("replace", Etc::Booted, true),
        ("mounted", Etc::NoSsh, false),
    ] {
        let sub = dir.path().join(name);
        std::fs::create_dir(&sub).expect("mkdir");
        let root_tree = tree(&sub, etc);
        if other {
            put_key(&root_tree, PRIVATE_B, PUBLIC_B);
        }
        images.push(ext4_image(&sub, &root_tree));
    }
    // An empty TMPDIR for the child, and a debugfs wrapper that looks for the key, while debugfs
    // runs, in TMPDIR and /dev/shm (a temporary file would be removed by the time the run ends),
    // and lists what it looked at.
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).expect("mkdir");
    let log = dir.path().join("wrapper.log");
    let wrapper = dir.path().join("debugfs-wrapper");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\n\
             echo \"run $*\" >> '{log}'\n\
             grep -rlF -e '{SECRET_A}' \"$TMPDIR\" /dev/shm 2>/dev/null | sed 's/^/FOUND /' >> '{log}'\n\
             exec debugfs \"$@\"\n",
            log = log.display()
        ),
    )
    .expect("wrapper");
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).expect("chmod");

    let out = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--ignored", "--exact", "tmpdir_child", "--nocapture"])
        .env("TMPDIR", &tmp)
        .env("PIFLEET_DEBUGFS", &wrapper)
        .env(
            "PIFLEET_TEST_HOST_KEY_IMAGES",
            std::env::join_paths(&images).expect("paths"),
        )
        .stdin(Stdio::null())
        .output()
        .expect("run the child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("test tmpdir_child ... ok"), "{stdout}");

    let log = std::fs::read_to_string(&log).expect("the wrapper ran");
    assert!(
        log.contains("run -w -f"),
        "debugfs wrote through the wrapper: {log}"
    );
    assert!(!log.contains("FOUND"), "the key was in a file: {log}");
    assert_eq!(
        std::fs::read_dir(&tmp).expect("tmp").count(),
        0,
        "TMPDIR is empty afterwards"
    );
    assert_eq!(
        files_containing(&tmp, SECRET_A.as_bytes()),
        Vec::<PathBuf>::new()
    );
    assert_eq!(
        files_containing(Path::new("/dev/shm"), SECRET_A.as_bytes()),
        Vec::<PathBuf>::new()
    );
    assert_host_key(&images[0].to_string_lossy(), PRIVATE_A, PUBLIC_A);
    assert_host_key(&images[1].to_string_lossy(), PRIVATE_A, PUBLIC_A);
}

/// Flash writes the host key right after the image, before the kernel re-reads the partition
/// table: its partition nodes still describe the card's old table (here a 4 MiB partition at the
/// same start). `locate_fresh` reaches the new file system by its offset into the whole card.
#[test]
fn a_card_whose_new_table_is_not_yet_read_is_reached_by_offset() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The card as the kernel saw it: one small partition.
    let card_file = dir.path().join("card.img");
    std::fs::File::create(&card_file)
        .and_then(|f| f.set_len(24 << 20))
        .expect("card");
    let mut sfdisk = Command::new("sfdisk")
        .args(["-q"])
        .arg(&card_file)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("run sfdisk (scripts/test installs fdisk)");
    {
        use std::io::Write;
        let mut stdin = sfdisk.stdin.take().expect("stdin");
        stdin
            .write_all(b"label: dos\nstart=2048, size=8192, type=83\n")
            .expect("table");
    }
    assert!(sfdisk.wait().expect("sfdisk").success());
    let lo = match Command::new("losetup")
        .args(["--find", "--show", "--partscan"])
        .arg(&card_file)
        .output()
    {
        Ok(out) if out.status.success() => Loop(String::from_utf8_lossy(&out.stdout).trim().into()),
        other => return unavailable(&format!("losetup failed: {other:?}")),
    };
    // The new image is written through the loop device; nobody re-reads the table.
    let root_tree = tree(dir.path(), Etc::NoSsh);
    let image = partitioned_image(dir.path(), &root_tree);
    let bytes = std::fs::read(&image).expect("image");
    {
        use std::io::Write;
        let mut device = std::fs::OpenOptions::new()
            .write(true)
            .open(&lo.0)
            .expect("open the loop device");
        device.write_all(&bytes).expect("write the image");
        device.sync_all().expect("sync");
    }
    let root = card::locate_fresh(&flash::SystemView::live(), &lo.0).expect("locate");
    assert_eq!(root.path, lo.0);
    assert_eq!(root.offset, ROOT_START);
    let mut editor = Debugfs::new(&root).expect("debugfs");
    card::write_host_key(&mut editor, &root.shown, &key_a(), false).expect("write");
    drop(editor);
    let spec = format!("{}?offset={ROOT_START}", lo.0.display());
    assert_host_key(&spec, PRIVATE_A, PUBLIC_A);
    fsck_clean(&spec);
}
