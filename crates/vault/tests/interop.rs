//! The crate against the real tools: files it writes decrypt with the `age` CLI (Debian's Go
//! age 1.1), files the CLI writes decrypt with the crate, and keys come from `ssh-keygen`.
//! Fingerprints and tags are checked against what those tools print, or against literals.
#![allow(clippy::unwrap_used, reason = "tests: a failure is the test failing")]

use std::cell::Cell;
use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use vault::{
    DecryptError, FileRecipient, Identity, IdentityError, IdentitySearch, KeyKind, Recipient,
    RecipientError, SecretString, WriteError,
};

const SECRET: &[u8] = b"psk=correct horse battery staple\n";

/// Public halves of two keys made once with ssh-keygen (the private halves were thrown away).
/// `age -R` of both printed `-> ssh-ed25519 jKldFA …` and `-> ssh-rsa iAt1oQ`.
const FIXED_ED25519: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDoH4QyhmycxTUpTHVsns+id/mJw2V0RjTAl7Z92Jiq5 fixed-ed25519@pifleet.invalid";
const FIXED_RSA: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCd0cPUo1E+1IZo4vTYRsCfn+3LwyuNZjLbZeUsz/0QXwusu40bHggR+wx3FxEsKnT6VLtzBn26xtHx43NGa54fyPl+dUhxIWXDKg6bzMHg0t4+5sg2eRtwTP8RWjYTL/27x/OBIrpqAs6lF+5gfqAKpr5dxsveKsEVZzWdQey32Zk4Ee2PRfSY6p8m6yGZ2XfZd/elA7OAUZVwNyEUD84wTWnr3FirI6wrlBYWKc3TWakaaTamwzvsunZlqUbkcHVqJdYPRizDNQvJP0Jt8FPNV+Pl12HGcZPAyWMBSUTCZHRuYWj4T66E5KFXCKFoprX4r8UVywBtM7/QRf9Fr5yr fixed-rsa@pifleet.invalid";

fn run(program: &str, args: &[&str], stdin: Option<&[u8]>) -> Output {
    use std::io::Write as _;
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run {program} ({e}): install it (apt-get install age openssh-client)")
        });
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input).unwrap();
    }
    child.wait_with_output().unwrap()
}

fn ok(output: Output) -> Vec<u8> {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// A throwaway key pair made by ssh-keygen: `dir/name` and `dir/name.pub`.
fn keygen(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let path = dir.join(name);
    let path_str = path.to_str().unwrap();
    let mut all = vec!["-q", "-C", name, "-f", path_str];
    all.extend_from_slice(args);
    if !args.contains(&"-N") {
        all.extend_from_slice(&["-N", ""]);
    }
    ok(run("ssh-keygen", &all, None));
    path
}

fn ed25519(dir: &Path, name: &str) -> PathBuf {
    keygen(dir, name, &["-t", "ed25519"])
}

fn rsa(dir: &Path, name: &str) -> PathBuf {
    keygen(dir, name, &["-t", "rsa", "-b", "2048"])
}

fn pub_path(key: &Path) -> PathBuf {
    PathBuf::from(format!("{}.pub", key.display()))
}

fn recipient(key: &Path) -> Recipient {
    Recipient::from_openssh(&fs::read_to_string(pub_path(key)).unwrap()).unwrap()
}

fn identity(key: &Path) -> Identity {
    Identity::from_file(key).unwrap()
}

/// `SHA256:…` as `ssh-keygen -l` prints it.
fn keygen_fingerprint(key: &Path) -> String {
    let out = ok(run(
        "ssh-keygen",
        &["-l", "-f", pub_path(key).to_str().unwrap()],
        None,
    ));
    String::from_utf8(out)
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .to_owned()
}

/// `age -d -i key file`.
fn age_decrypt(key: &Path, file: &Path) -> Output {
    run(
        "age",
        &["-d", "-i", key.to_str().unwrap(), file.to_str().unwrap()],
        None,
    )
}

fn no_passphrase(_: &Path) -> Option<SecretString> {
    None
}

/// The stanza lines of a binary age file, as text (`-> ssh-ed25519 TAG SHARE`).
fn stanza_lines(file: &[u8]) -> Vec<String> {
    let end = file.windows(4).position(|w| w == b"\n---").unwrap();
    String::from_utf8(file[..end].to_vec())
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("-> "))
        .map(str::to_owned)
        .collect()
}

/// A tag is 4 bytes of the hash whose 32 bytes the fingerprint shows in base64, so its first 5
/// characters (30 bits) are the fingerprint's first 5.
fn assert_tag_starts_like_fingerprint(tag: &str, key: &Path) {
    let fingerprint = keygen_fingerprint(key);
    assert_eq!(tag.len(), 6);
    let hash = fingerprint.strip_prefix("SHA256:").unwrap();
    assert_eq!(tag[..5], hash[..5], "{tag} {fingerprint}");
}

fn sorted(mut list: Vec<FileRecipient>) -> Vec<String> {
    list.sort();
    list.iter().map(ToString::to_string).collect()
}

#[test]
fn files_the_crate_encrypts_decrypt_with_the_age_cli() {
    let dir = tempfile::tempdir().unwrap();
    let (ed, rsa) = (ed25519(dir.path(), "ed"), rsa(dir.path(), "rsa"));
    for armor in [false, true] {
        let file = dir.path().join(if armor { "s.age.asc" } else { "s.age" });
        let ct = vault::encrypt(SECRET, &[recipient(&ed), recipient(&rsa)], armor).unwrap();
        let start: &[u8] = if armor {
            b"-----BEGIN AGE ENCRYPTED FILE-----\n"
        } else {
            b"age-encryption.org/v1\n"
        };
        assert!(ct.starts_with(start));
        fs::write(&file, &ct).unwrap();
        assert_eq!(ok(age_decrypt(&ed, &file)), SECRET);
        assert_eq!(ok(age_decrypt(&rsa, &file)), SECRET);
    }
}

#[test]
fn files_the_age_cli_encrypts_decrypt_with_the_crate() {
    let dir = tempfile::tempdir().unwrap();
    let (ed, rsa) = (ed25519(dir.path(), "ed"), rsa(dir.path(), "rsa"));
    let keys = dir.path().join("keys.pub");
    let both = [pub_path(&ed), pub_path(&rsa)].map(|p| fs::read_to_string(p).unwrap());
    fs::write(&keys, both.concat()).unwrap();
    let keys = keys.to_str().unwrap();
    let binary = ok(run("age", &["-R", keys], Some(SECRET)));
    let armored = ok(run("age", &["-a", "-R", keys], Some(SECRET)));
    assert!(armored.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----\n"));
    for ct in [&binary, &armored] {
        for key in [&ed, &rsa] {
            let plaintext = vault::decrypt(ct, &[identity(key)], &no_passphrase).unwrap();
            assert_eq!(plaintext.expose(), SECRET);
        }
    }
}

#[test]
fn header_tags_match_the_keys_and_grease_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let (ed, rsa) = (ed25519(dir.path(), "ed"), rsa(dir.path(), "rsa"));
    let recipients = [recipient(&ed), recipient(&rsa)];
    assert_tag_starts_like_fingerprint(&recipients[0].tag().to_string(), &ed);
    assert_tag_starts_like_fingerprint(&recipients[1].tag().to_string(), &rsa);
    let expected = vec![
        format!("ssh-ed25519 key with tag {}", recipients[0].tag()),
        format!("ssh-rsa key with tag {}", recipients[1].tag()),
    ];

    // The crate's file: rage adds a grease stanza of a made-up type, which is not listed.
    let ours = vault::encrypt(SECRET, &recipients, false).unwrap();
    let lines = stanza_lines(&ours);
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(
        lines[2].split(' ').nth(1).unwrap().ends_with("-grease"),
        "{lines:?}"
    );
    assert_eq!(sorted(vault::recipients(&ours).unwrap()), expected);
    let ours_armored = vault::encrypt(SECRET, &recipients, true).unwrap();
    assert_eq!(sorted(vault::recipients(&ours_armored).unwrap()), expected);

    // The CLI's files: the tags it wrote as text are the tags the crate computes.
    let keys = dir.path().join("keys.pub");
    let both = [pub_path(&ed), pub_path(&rsa)].map(|p| fs::read_to_string(p).unwrap());
    fs::write(&keys, both.concat()).unwrap();
    let theirs = ok(run("age", &["-R", keys.to_str().unwrap()], Some(SECRET)));
    let lines = stanza_lines(&theirs);
    assert_eq!(
        lines[0].split(' ').take(3).collect::<Vec<_>>(),
        ["->", "ssh-ed25519", &recipients[0].tag().to_string()]
    );
    assert_eq!(lines[1], format!("-> ssh-rsa {}", recipients[1].tag()));
    assert_eq!(sorted(vault::recipients(&theirs).unwrap()), expected);
    let theirs_armored = ok(run(
        "age",
        &["-a", "-R", keys.to_str().unwrap()],
        Some(SECRET),
    ));
    assert_eq!(
        sorted(vault::recipients(&theirs_armored).unwrap()),
        expected
    );
}

#[test]
fn a_fixed_key_has_the_tag_the_age_cli_writes() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.pub");
    fs::write(&keys, format!("{FIXED_ED25519}\n{FIXED_RSA}\n")).unwrap();
    let file = ok(run("age", &["-R", keys.to_str().unwrap()], Some(SECRET)));
    let lines = stanza_lines(&file);
    assert!(lines[0].starts_with("-> ssh-ed25519 jKldFA "), "{lines:?}");
    assert_eq!(lines[1], "-> ssh-rsa iAt1oQ");

    let ed = Recipient::from_openssh(FIXED_ED25519).unwrap();
    let rsa = Recipient::from_openssh(FIXED_RSA).unwrap();
    assert_eq!(vault::tag_of(ed.public_key()).to_string(), "jKldFA");
    assert_eq!(rsa.tag().to_string(), "iAt1oQ");
    assert_eq!((ed.kind(), rsa.kind()), (KeyKind::Ed25519, KeyKind::Rsa));
    assert_eq!(
        sorted(vault::recipients(&file).unwrap()),
        [
            "ssh-ed25519 key with tag jKldFA",
            "ssh-rsa key with tag iAt1oQ"
        ]
    );
}

#[test]
fn a_passphrase_protected_key_decrypts_through_the_callback() {
    let dir = tempfile::tempdir().unwrap();
    let locked = keygen(
        dir.path(),
        "locked",
        &["-t", "ed25519", "-N", "correct horse"],
    );
    let other = ed25519(dir.path(), "other");
    let id = identity(&locked);
    assert!(id.is_encrypted());
    assert_eq!(
        id.fingerprint().unwrap().to_string(),
        keygen_fingerprint(&locked)
    );
    let ct = vault::encrypt(SECRET, &[recipient(&other), recipient(&locked)], false).unwrap();

    let asked = Cell::new(0);
    let answer = |with: &'static str| {
        let asked = &asked;
        let locked = locked.clone();
        move |path: &Path| {
            assert_eq!(path, locked);
            asked.set(asked.get() + 1);
            Some(SecretString::from(with.to_owned()))
        }
    };
    let plaintext =
        vault::decrypt(&ct, std::slice::from_ref(&id), &answer("correct horse")).unwrap();
    assert_eq!(plaintext.expose(), SECRET);
    assert_eq!(asked.get(), 1);

    let err = vault::decrypt(&ct, std::slice::from_ref(&id), &answer("wrong horse")).unwrap_err();
    assert!(matches!(&err, DecryptError::WrongPassphrase { path } if *path == locked));
    assert_eq!(
        err.to_string(),
        format!(
            "the passphrase for {} is wrong: try again, or use another key",
            locked.display()
        )
    );
    assert_eq!(asked.get(), 2);

    let err = vault::decrypt(&ct, std::slice::from_ref(&id), &no_passphrase).unwrap_err();
    assert!(matches!(&err, DecryptError::PassphraseNeeded { path } if *path == locked));

    // A file that is not for this key never asks for its passphrase.
    let not_for_it = vault::encrypt(SECRET, &[recipient(&other)], false).unwrap();
    let err = vault::decrypt(&not_for_it, &[id], &answer("correct horse")).unwrap_err();
    assert!(matches!(err, DecryptError::NoMatchingKey { .. }), "{err:?}");
    assert_eq!(asked.get(), 2);
}

#[test]
fn a_wrong_or_missing_identity_names_the_files_keys_and_the_key_tried() {
    let dir = tempfile::tempdir().unwrap();
    let stranger = ed25519(dir.path(), "stranger");
    let keys = dir.path().join("keys.pub");
    fs::write(&keys, format!("{FIXED_ED25519}\n{FIXED_RSA}\n")).unwrap();
    let ct = ok(run("age", &["-R", keys.to_str().unwrap()], Some(SECRET)));

    let err = vault::decrypt(&ct, &[identity(&stranger)], &no_passphrase).unwrap_err();
    let tried = identity(&stranger).tag().unwrap();
    assert_tag_starts_like_fingerprint(&tried.to_string(), &stranger);
    assert_eq!(
        err.to_string(),
        format!(
            "none of the keys tried can decrypt this file: it is encrypted to ssh-ed25519 key with tag \
             jKldFA and ssh-rsa key with tag iAt1oQ; tried {} ({}, tag {tried}); decrypt with one of \
             the file's keys (--identity PATH), or have someone who holds one re-encrypt the file to \
             your key",
            stranger.display(),
            keygen_fingerprint(&stranger),
        )
    );
    assert!(!err.to_string().contains("correct horse"));

    let err = vault::decrypt(&ct, &[], &no_passphrase).unwrap_err();
    assert_eq!(
        err.to_string(),
        "no SSH private key to decrypt with; the file is encrypted to ssh-ed25519 key with tag jKldFA \
         and ssh-rsa key with tag iAt1oQ: pass --identity PATH or set PIFLEET_IDENTITY"
    );
}

#[test]
fn rekey_adds_a_key_and_drops_one() {
    let dir = tempfile::tempdir().unwrap();
    let (alice, bob, carol) = (
        ed25519(dir.path(), "alice"),
        rsa(dir.path(), "bob"),
        ed25519(dir.path(), "carol"),
    );
    for armor in [false, true] {
        let old = vault::encrypt(SECRET, &[recipient(&alice), recipient(&bob)], armor).unwrap();
        let new = vault::rekey(
            &old,
            &[identity(&alice)],
            &no_passphrase,
            &[recipient(&alice), recipient(&carol)],
        )
        .unwrap();
        assert_eq!(
            new.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----\n"),
            armor
        );
        assert_eq!(
            sorted(vault::recipients(&new).unwrap()),
            sorted(vec![
                FileRecipient {
                    kind: KeyKind::Ed25519,
                    tag: recipient(&alice).tag()
                },
                FileRecipient {
                    kind: KeyKind::Ed25519,
                    tag: recipient(&carol).tag()
                },
            ])
        );
        let file = dir.path().join("rekeyed.age");
        fs::write(&file, &new).unwrap();
        assert_eq!(ok(age_decrypt(&carol, &file)), SECRET);
        assert_eq!(ok(age_decrypt(&alice, &file)), SECRET);
        let dropped = age_decrypt(&bob, &file);
        assert!(!dropped.status.success());
        assert!(
            String::from_utf8_lossy(&dropped.stderr)
                .contains("no identity matched any of the recipients"),
            "{}",
            String::from_utf8_lossy(&dropped.stderr)
        );
    }
}

#[test]
fn a_file_that_is_not_age_is_refused() {
    let err = vault::decrypt(SECRET, &[], &no_passphrase).unwrap_err();
    assert!(err.to_string().starts_with("not an age file: "), "{err}");
    assert!(!err.to_string().contains("correct horse"), "{err}");
    let err = vault::recipients(SECRET).unwrap_err();
    assert!(err.to_string().starts_with("not an age file: "), "{err}");
}

#[test]
fn writes_replace_the_file_whole_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let key = ed25519(dir.path(), "ed");
    let secrets = dir.path().join("secrets");
    fs::create_dir(&secrets).unwrap();
    let target = secrets.join("wifi.age");
    let entries = || {
        let mut names: Vec<String> = fs::read_dir(&secrets)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    };

    let first = vault::encrypt(b"psk=one\n", &[recipient(&key)], false).unwrap();
    let second = vault::encrypt(b"psk=two\n", &[recipient(&key)], true).unwrap();
    vault::write_ciphertext(&target, &first).unwrap();
    vault::write_ciphertext(&target, &second).unwrap();
    assert_eq!(fs::read(&target).unwrap(), second);
    assert_eq!(
        fs::metadata(&target).unwrap().permissions().mode() & 0o777,
        0o644
    );
    assert_eq!(entries(), ["wifi.age"]);
    assert_eq!(ok(age_decrypt(&key, &target)), b"psk=two\n");

    // A directory sits where the file should go: the rename fails after the temporary file
    // was written and synced. What was there stays, and the temporary file is gone.
    let blocked = secrets.join("router.age");
    fs::create_dir(&blocked).unwrap();
    fs::write(blocked.join("keep"), "old").unwrap();
    let err = vault::write_ciphertext(&blocked, &first).unwrap_err();
    assert!(matches!(err, WriteError::Io { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "cannot write {} (the previous file, if any, is unchanged)",
            blocked.display()
        )
    );
    assert!(blocked.is_dir());
    assert_eq!(fs::read_to_string(blocked.join("keep")).unwrap(), "old");
    assert_eq!(entries(), ["router.age", "wifi.age"]);
    assert_eq!(fs::read(&target).unwrap(), second);

    // No directory to write into: nothing is created.
    let err = vault::write_ciphertext(&dir.path().join("missing/x.age"), &first).unwrap_err();
    assert!(matches!(err, WriteError::Io { .. }), "{err:?}");
    assert!(!dir.path().join("missing").exists());
}

#[test]
fn ecdsa_keys_are_refused_as_recipients_and_as_identities() {
    let dir = tempfile::tempdir().unwrap();
    let key = keygen(dir.path(), "ec", &["-t", "ecdsa", "-b", "256"]);
    let err = Recipient::from_openssh(&fs::read_to_string(pub_path(&key)).unwrap()).unwrap_err();
    assert!(
        matches!(&err, RecipientError::UnsupportedType { algorithm } if algorithm == "ecdsa-sha2-nistp256")
    );
    assert_eq!(
        err.to_string(),
        "the key is of type ecdsa-sha2-nistp256, which cannot be an age recipient: only ssh-ed25519 and \
         ssh-rsa keys can be age recipients; give a public key file of a supported type (make one with \
         `ssh-keygen -t ed25519`)"
    );

    let err = Identity::from_file(&key).unwrap_err();
    assert!(matches!(err, IdentityError::Unsupported { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "{} cannot decrypt age files: it is a key of type ecdsa-sha2-nistp256, and only ed25519 and \
             rsa keys can decrypt age files; use an ed25519 key file (`ssh-keygen -t ed25519`)",
            key.display()
        )
    );

    // A private key where a public one belongs is refused without echoing it.
    let private = fs::read_to_string(dir.path().join("ec")).unwrap();
    let err = Recipient::from_openssh(&private).unwrap_err();
    assert!(matches!(err, RecipientError::NotAKey { .. }), "{err:?}");
    assert!(!err.to_string().contains("PRIVATE"), "{err}");
}

#[test]
fn a_generated_host_key_works_with_ssh_keygen_and_age() {
    let dir = tempfile::tempdir().unwrap();
    let host = vault::generate_host_key("pi-kitchen").unwrap();
    let key = dir.path().join("ssh_host_ed25519_key");
    fs::write(&key, host.private_openssh.as_bytes()).unwrap();
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(pub_path(&key), format!("{}\n", host.public_line)).unwrap();

    // ssh-keygen derives the same public key from the private one.
    let derived = String::from_utf8(ok(run(
        "ssh-keygen",
        &["-y", "-f", key.to_str().unwrap()],
        None,
    )))
    .unwrap();
    let fields = |s: &str| {
        s.split_whitespace()
            .take(2)
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(fields(&derived), fields(&host.public_line));
    assert!(host.public_line.ends_with(" root@pi-kitchen"));
    assert_eq!(
        host.recipient.fingerprint().to_string(),
        keygen_fingerprint(&key)
    );

    let file = dir.path().join("s.age");
    fs::write(
        &file,
        vault::encrypt(SECRET, std::slice::from_ref(&host.recipient), false).unwrap(),
    )
    .unwrap();
    assert_eq!(ok(age_decrypt(&key, &file)), SECRET);
}

#[test]
fn the_identity_search_order() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let ssh = home.join(".ssh");
    fs::create_dir_all(&ssh).unwrap();
    let paths = |ids: Vec<Identity>| ids.iter().map(|i| i.path().to_owned()).collect::<Vec<_>>();
    let search = |explicit: Option<&Path>, env: Option<&Path>| IdentitySearch {
        explicit: explicit.map(Path::to_owned),
        env: env.map(Path::to_owned),
        home: Some(home.clone()),
    };

    let err = search(None, None).load().unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "no SSH private key found (looked for {}/.ssh/id_ed25519 and {}/.ssh/id_rsa): pass \
             --identity PATH or set PIFLEET_IDENTITY",
            home.display(),
            home.display()
        )
    );

    rsa(&ssh, "id_rsa");
    assert_eq!(
        paths(search(None, None).load().unwrap()),
        [ssh.join("id_rsa")]
    );
    ed25519(&ssh, "id_ed25519");
    assert_eq!(
        paths(search(None, None).load().unwrap()),
        [ssh.join("id_ed25519"), ssh.join("id_rsa")]
    );

    let env_key = ed25519(dir.path(), "from-env");
    let cli_key = ed25519(dir.path(), "from-cli");
    assert_eq!(
        paths(search(None, Some(&env_key)).load().unwrap()),
        std::slice::from_ref(&env_key)
    );
    assert_eq!(
        paths(search(Some(&cli_key), Some(&env_key)).load().unwrap()),
        std::slice::from_ref(&cli_key)
    );

    // A path that was asked for must exist; the defaults are not tried instead.
    let missing = dir.path().join("nope");
    let err = search(Some(&missing), None).load().unwrap_err();
    assert!(
        matches!(&err, IdentityError::Read { path, .. } if *path == missing),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "cannot read the identity file {}: check the path given with --identity or PIFLEET_IDENTITY",
            missing.display()
        )
    );

    let no_home = IdentitySearch::default();
    assert_eq!(
        no_home.load().unwrap_err().to_string(),
        "no SSH private key found (looked for a home directory, and there is none): pass --identity \
         PATH or set PIFLEET_IDENTITY"
    );
}
