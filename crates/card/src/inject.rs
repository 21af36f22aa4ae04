//! Adding SSH public keys to a user's `~/.ssh/authorized_keys` on a NixOS root file system.
//!
//! Split in two so a person can see what will happen before it does: [`plan`] only reads (is it a
//! NixOS root, does the home exist, which keys are already there) and [`apply`] writes, then reads
//! everything back to prove it.

use std::str::FromStr;

use model::SshPublicKey;

use crate::edit::{Attrs, EditError, Editor, Kind};

/// What to add, for whom.
#[derive(Debug, Clone)]
pub struct Request {
    /// The login name (`nixos` on the stock image).
    pub user: String,
    /// Owner uid of `~/.ssh` and `authorized_keys` (1000 for the stock image's `nixos`).
    pub uid: u32,
    /// Their group (100, `users`, on NixOS).
    pub gid: u32,
    /// Create `/home/<user>` when it does not exist, instead of stopping with an explanation.
    pub create_home: bool,
    /// The keys to add.
    pub keys: Vec<SshPublicKey>,
}

/// What [`apply`] will do, as found by [`plan`].
#[derive(Debug, Clone)]
pub struct Plan {
    /// The user.
    pub user: String,
    /// `/home/<user>`.
    pub home: String,
    /// `/home/<user>/.ssh`.
    pub ssh_dir: String,
    /// `/home/<user>/.ssh/authorized_keys`.
    pub file: String,
    /// `/home` must be created first (a never-booted image with `--create-home`).
    pub create_home_parent: bool,
    /// The home directory must be created.
    pub create_home: bool,
    /// The home's owner when it exists and is not the requested one (worth a warning).
    pub home_owner_differs: Option<Attrs>,
    /// `~/.ssh`'s current owner and mode; `None` when it must be created.
    pub ssh_dir_now: Option<Attrs>,
    /// `authorized_keys`'s current owner and mode; `None` when it must be created.
    pub file_now: Option<Attrs>,
    /// Owner and mode for `~/.ssh` (700).
    pub dir_attrs: Attrs,
    /// Owner and mode for `authorized_keys` (600).
    pub file_attrs: Attrs,
    /// Keys that will be appended.
    pub added: Vec<SshPublicKey>,
    /// Keys already in the file (same key material, whatever the comment).
    pub present: Vec<SshPublicKey>,
    /// The new contents of `authorized_keys`.
    pub content: String,
}

impl Plan {
    /// Whether [`apply`] would change anything.
    pub fn changes_anything(&self) -> bool {
        self.create_home
            || self.ssh_dir_now != Some(self.dir_attrs)
            || self.file_now != Some(self.file_attrs)
            || !self.added.is_empty()
    }
}

/// Why keys could not be added.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InjectError {
    /// Reading or writing the file system failed.
    #[error(transparent)]
    Edit(#[from] EditError),
    /// The file system is not a NixOS root.
    #[error("{shown} does not look like a NixOS root file system: {why}")]
    NotNixos {
        /// The file system.
        shown: String,
        /// What is missing.
        why: String,
    },
    /// The home directory does not exist yet.
    #[error(
        "{home} does not exist on {shown} yet.\n\
         The stock NixOS SD image creates the `{user}` user's home when it boots for the first time:\n\
         put the card in the Pi, power it on and wait for the login prompt (a minute or two), shut it\n\
         down, put the card back in this machine and run this command again.\n\
         Or pass --create-home to create {home} now, owned by {uid}:{gid} with mode 700."
    )]
    NoHome {
        /// The file system.
        shown: String,
        /// The user.
        user: String,
        /// Their home.
        home: String,
        /// The owner it would get.
        uid: u32,
        /// The group it would get.
        gid: u32,
    },
    /// A path that must be a directory (or a regular file) is something else.
    #[error("{path} on {shown} is a {found}, not a {expected}; refusing to touch it")]
    WrongKind {
        /// The file system.
        shown: String,
        /// The path.
        path: String,
        /// What it is.
        found: &'static str,
        /// What it should be.
        expected: &'static str,
    },
    /// The user name can't be a NixOS login name.
    #[error(
        "`{0}` is not a valid user name (lower-case letters, digits, `_` and `-`, starting with a letter or `_`)"
    )]
    BadUser(String),
    /// Nothing to add.
    #[error("no keys given")]
    NoKeys,
    /// The file read back differs from what was written.
    #[error("{path} on {shown} does not read back as written ({what})")]
    Verify {
        /// The file system.
        shown: String,
        /// The path.
        path: String,
        /// What differs.
        what: String,
    },
}

pub(crate) fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Dir => "directory",
        Kind::File => "regular file",
        Kind::Symlink => "symbolic link",
        Kind::Other => "special file",
    }
}

fn valid_user(user: &str) -> bool {
    let mut chars = user.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && user.len() <= 32
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// Whether the file system is a NixOS root: `/nix/store`, and `/nix/var/nix` (a booted system),
/// `/etc/NIXOS` (NixOS's marker) or `/nix-path-registration` (an SD image never booted).
pub fn check_nixos(editor: &mut dyn Editor, shown: &str) -> Result<(), InjectError> {
    match not_nixos(editor)? {
        Some(why) => Err(InjectError::NotNixos {
            shown: shown.to_owned(),
            why: why.to_owned(),
        }),
        None => Ok(()),
    }
}

/// Why the file system is not a NixOS root ([`check_nixos`]), or `None` when it is one.
pub(crate) fn not_nixos(editor: &mut dyn Editor) -> Result<Option<&'static str>, EditError> {
    let is_dir = |e: &mut dyn Editor, p: &str| -> Result<bool, EditError> {
        Ok(e.stat(p)?.is_some_and(|s| s.kind == Kind::Dir))
    };
    if !is_dir(editor, "/nix/store")? {
        return Ok(Some("it has no /nix/store"));
    }
    let marked = is_dir(editor, "/nix/var/nix")?
        || editor.stat("/etc/NIXOS")?.is_some()
        || editor.stat("/nix-path-registration")?.is_some();
    if !marked {
        return Ok(Some(
            "it has a /nix/store but none of /nix/var/nix, /etc/NIXOS or /nix-path-registration",
        ));
    }
    Ok(None)
}

/// Reads the file system and works out what adding `request.keys` takes.
pub fn plan(editor: &mut dyn Editor, shown: &str, request: &Request) -> Result<Plan, InjectError> {
    if !valid_user(&request.user) {
        return Err(InjectError::BadUser(request.user.clone()));
    }
    if request.keys.is_empty() {
        return Err(InjectError::NoKeys);
    }
    check_nixos(editor, shown)?;
    let home = format!("/home/{}", request.user);
    let ssh_dir = format!("{home}/.ssh");
    let file = format!("{ssh_dir}/authorized_keys");
    let dir_attrs = Attrs {
        uid: request.uid,
        gid: request.gid,
        mode: 0o700,
    };
    let file_attrs = Attrs {
        mode: 0o600,
        ..dir_attrs
    };
    let expect =
        |editor: &mut dyn Editor, path: &str, kind: Kind| -> Result<Option<Attrs>, InjectError> {
            match editor.stat(path)? {
                None => Ok(None),
                Some(s) if s.kind == kind => Ok(Some(s.attrs)),
                Some(s) => Err(InjectError::WrongKind {
                    shown: shown.to_owned(),
                    path: path.to_owned(),
                    found: kind_name(s.kind),
                    expected: kind_name(kind),
                }),
            }
        };

    let home_parent = expect(editor, "/home", Kind::Dir)?;
    let home_now = if home_parent.is_some() {
        expect(editor, &home, Kind::Dir)?
    } else {
        None
    };
    if home_now.is_none() && !request.create_home {
        return Err(InjectError::NoHome {
            shown: shown.to_owned(),
            user: request.user.clone(),
            home,
            uid: request.uid,
            gid: request.gid,
        });
    }
    let home_owner_differs = home_now.filter(|a| (a.uid, a.gid) != (request.uid, request.gid));
    let (ssh_dir_now, file_now) = if home_now.is_some() {
        let dir = expect(editor, &ssh_dir, Kind::Dir)?;
        let file_now = if dir.is_some() {
            expect(editor, &file, Kind::File)?
        } else {
            None
        };
        (dir, file_now)
    } else {
        (None, None)
    };
    let existing = if file_now.is_some() {
        String::from_utf8_lossy(&editor.read(&file)?).into_owned()
    } else {
        String::new()
    };
    let merged = merge(&existing, &request.keys);
    Ok(Plan {
        user: request.user.clone(),
        home,
        ssh_dir,
        file,
        create_home_parent: home_parent.is_none(),
        create_home: home_now.is_none(),
        home_owner_differs,
        ssh_dir_now,
        file_now,
        dir_attrs,
        file_attrs,
        added: merged.added,
        present: merged.present,
        content: merged.content,
    })
}

/// Carries out `plan`, then reads the directory and file back and checks owner, mode and content.
pub fn apply(editor: &mut dyn Editor, shown: &str, plan: &Plan) -> Result<(), InjectError> {
    if plan.create_home_parent {
        editor.mkdir(
            "/home",
            Attrs {
                uid: 0,
                gid: 0,
                mode: 0o755,
            },
        )?;
    }
    if plan.create_home {
        editor.mkdir(&plan.home, plan.dir_attrs)?;
    }
    match plan.ssh_dir_now {
        None => editor.mkdir(&plan.ssh_dir, plan.dir_attrs)?,
        Some(now) if now != plan.dir_attrs => editor.set_attrs(&plan.ssh_dir, plan.dir_attrs)?,
        Some(_) => {}
    }
    if plan.file_now.is_none() || !plan.added.is_empty() {
        editor.replace(
            &plan.ssh_dir,
            "authorized_keys",
            plan.content.as_bytes(),
            plan.file_attrs,
        )?;
    } else if plan.file_now != Some(plan.file_attrs) {
        editor.set_attrs(&plan.file, plan.file_attrs)?;
    }

    let verify = |what: String, path: &str| InjectError::Verify {
        shown: shown.to_owned(),
        path: path.to_owned(),
        what,
    };
    for (path, kind, attrs) in [
        (&plan.ssh_dir, Kind::Dir, plan.dir_attrs),
        (&plan.file, Kind::File, plan.file_attrs),
    ] {
        match editor.stat(path)? {
            Some(s) if s.kind == kind && s.attrs == attrs => {}
            Some(s) => {
                return Err(verify(
                    format!("{} with {}", kind_name(s.kind), s.attrs),
                    path,
                ));
            }
            None => return Err(verify("missing".to_owned(), path)),
        }
    }
    if editor.read(&plan.file)? != plan.content.as_bytes() {
        return Err(verify("different content".to_owned(), &plan.file));
    }
    Ok(())
}

/// The result of merging keys into an `authorized_keys` text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merged {
    /// The new text: the old one untouched, then one line per added key.
    pub content: String,
    /// The keys appended.
    pub added: Vec<SshPublicKey>,
    /// The keys that were there already.
    pub present: Vec<SshPublicKey>,
}

/// Appends each of `keys` whose key material is not in `existing` yet (comments and options don't
/// count), keeping every existing line as it is.
pub fn merge(existing: &str, keys: &[SshPublicKey]) -> Merged {
    let mut known: Vec<ssh_key::public::KeyData> = existing
        .lines()
        .filter_map(|line| {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                return None;
            }
            ssh_key::authorized_keys::Entry::from_str(line)
                .ok()
                .map(|e| e.public_key().key_data().clone())
        })
        .collect();
    let mut content = existing.to_owned();
    if !content.is_empty() && !content.ends_with('\n') {
        content.push('\n');
    }
    let mut added = Vec::new();
    let mut present = Vec::new();
    for key in keys {
        let data = key.key().key_data();
        if known.contains(data) {
            if !added.iter().any(|a: &SshPublicKey| a.same_key(key))
                && !present.iter().any(|p: &SshPublicKey| p.same_key(key))
            {
                present.push(key.clone());
            }
            continue;
        }
        known.push(data.clone());
        content.push_str(key.as_str());
        content.push('\n');
        added.push(key.clone());
    }
    Merged {
        content,
        added,
        present,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHBEv3Vx5vMKgQGBQrB4MP8xYtrkZ6lL0DC5ecS0kGVH alice@laptop";
    const B: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl bob@desk";

    fn key(s: &str) -> SshPublicKey {
        s.parse().expect("valid key")
    }

    #[test]
    fn appends_only_new_key_material() {
        let existing = format!(
            "# managed by hand\ncommand=\"/bin/true\",no-pty {} old-comment",
            A.rsplit_once(' ').expect("comment").0
        );
        let m = merge(&existing, &[key(A), key(B), key(B)]);
        assert_eq!(m.content, format!("{existing}\n{B}\n"));
        assert_eq!(m.added, vec![key(B)]);
        assert_eq!(m.present, vec![key(A)]);

        let again = merge(&m.content, &[key(A), key(B)]);
        assert_eq!(again.content, m.content);
        assert!(again.added.is_empty());
    }

    #[test]
    fn empty_file_and_garbage_lines() {
        let m = merge("", &[key(A)]);
        assert_eq!(m.content, format!("{A}\n"));
        let m = merge("not a key\n", &[key(A)]);
        assert_eq!(m.content, format!("not a key\n{A}\n"));
    }

    #[test]
    fn user_names() {
        for ok in ["nixos", "pi", "_svc", "a-b_1"] {
            assert!(valid_user(ok), "{ok}");
        }
        for bad in ["", "Root", "1pi", "a b", "../etc", "a/b", "x?y"] {
            assert!(!valid_user(bad), "{bad}");
        }
    }
}
