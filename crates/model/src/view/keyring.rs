//! Who each file under `secrets/` is encrypted to, and where it lives.
//!
//! A secret is useful only if the hosts that read it can decrypt it (agenix uses the host's SSH
//! key) and the admins can still change it (their own SSH keys). Two parts of pifleet need that
//! list: `pifleet secrets` encrypts to it, and `check` compares each file's header with it. Both
//! read it from here, so they never disagree about who may read a secret; the file names live here
//! too, for the same reason (the renderer points agenix at them).

use std::collections::BTreeMap;

use crate::names::{HostName, SecretName, SshPublicKey, UserName};
use crate::types::Fleet;

/// The directory of encrypted files, relative to the repository root.
pub const SECRETS_DIR: &str = "secrets";

/// A file under `secrets/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Sealed<'a> {
    /// `secrets/<name>.age`: a secret hosts decrypt during activation.
    Secret(&'a SecretName),
    /// `secrets/host-keys/<host>.age`: a host's private SSH host key, kept for re-flashing a
    /// card; only admins read it (the host has its own copy in `/etc/ssh`).
    HostKey(&'a HostName),
}

impl Sealed<'_> {
    /// The file, relative to the repository root (`secrets/home-wifi.age`).
    pub fn file(&self) -> String {
        match self {
            Sealed::Secret(name) => format!("{SECRETS_DIR}/{name}.age"),
            Sealed::HostKey(host) => format!("{SECRETS_DIR}/host-keys/{host}.age"),
        }
    }
}

impl std::fmt::Display for Sealed<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Sealed::Secret(name) => write!(f, "secret `{name}`"),
            Sealed::HostKey(host) => write!(f, "host key of `{host}`"),
        }
    }
}

/// Someone a file is encrypted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Holder<'a> {
    /// A user listed in `[fleet] admins`.
    Admin(&'a UserName),
    /// A host that reads the secret.
    Host(&'a HostName),
}

impl std::fmt::Display for Holder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Holder::Admin(user) => write!(f, "admin `{user}`"),
            Holder::Host(host) => write!(f, "host `{host}`"),
        }
    }
}

/// One key a file must be encrypted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyOf<'a> {
    /// Whose key it is.
    pub holder: Holder<'a>,
    /// An `ssh-ed25519` or `ssh-rsa` key (the kinds age encrypts to).
    pub key: &'a SshPublicKey,
}

/// The keys a file must be encrypted to, and those who should read it but have no usable key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recipients<'a> {
    /// Every key, admins first, then hosts in name order.
    pub keys: Vec<KeyOf<'a>>,
    /// Admins without an ed25519 or RSA key, and reading hosts without a recorded `host_key`
    /// (or one age cannot use): `check` reports them; the file cannot include them yet.
    pub keyless: Vec<Holder<'a>>,
}

/// Who reads which secret, computed once for the whole fleet.
#[derive(Debug, Clone)]
pub struct Keyring<'a> {
    fleet: &'a Fleet,
    readers: BTreeMap<&'a SecretName, Vec<&'a HostName>>,
}

impl<'a> Keyring<'a> {
    /// Reads the fleet's views once.
    pub fn of(fleet: &'a Fleet) -> Self {
        Keyring {
            fleet,
            readers: fleet.secret_readers(),
        }
    }

    /// The secrets hosts read, in name order, with their readers.
    pub fn secrets(&self) -> impl Iterator<Item = (&'a SecretName, &[&'a HostName])> + '_ {
        self.readers.iter().map(|(name, hosts)| (*name, &hosts[..]))
    }

    /// The hosts that read `name` (none for a secret only admins hold so far).
    pub fn readers(&self, name: &SecretName) -> &[&'a HostName] {
        self.readers.get(name).map_or(&[], |hosts| &hosts[..])
    }

    /// Who `sealed` must be encrypted to: every admin's age-capable keys, and for a secret each
    /// reading host's key.
    pub fn recipients(&self, sealed: Sealed<'_>) -> Recipients<'a> {
        let mut out = Recipients::default();
        for admin in &self.fleet.fleet.admins {
            let Some((name, user)) = self.fleet.users.get_key_value(admin) else {
                continue;
            };
            let before = out.keys.len();
            out.keys.extend(
                user.ssh_keys
                    .iter()
                    .filter(|k| k.is_age_recipient())
                    .map(|key| KeyOf {
                        holder: Holder::Admin(name),
                        key,
                    }),
            );
            if out.keys.len() == before {
                out.keyless.push(Holder::Admin(name));
            }
        }
        if let Sealed::Secret(secret) = sealed {
            for host in self.readers(secret) {
                let key = self
                    .fleet
                    .hosts
                    .get(*host)
                    .and_then(|h| h.host_key.as_ref())
                    .filter(|k| k.is_age_recipient());
                match key {
                    Some(key) => out.keys.push(KeyOf {
                        holder: Holder::Host(host),
                        key,
                    }),
                    None => out.keyless.push(Holder::Host(host)),
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
    const ECDSA: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBEmKSENjQEezOmxkZMy7opKgwFB9nkt5YRrYMjNuG5N87uRgg6CLrbo5wAdT/y6v0mKV0U2w0WZ2YB/++Tpockg=";

    fn fleet(text: &str) -> Fleet {
        match crate::load_str(text, "fleet.toml") {
            Ok(l) => l.fleet,
            Err(e) => panic!("{e:?}"),
        }
    }

    #[test]
    fn secrets_go_to_admins_and_the_hosts_that_read_them() {
        let f = fleet(&format!(
            r#"
[fleet]
state_version = "26.05"
admins = ["ada", "bob"]
[users.ada]
ssh_keys = ["{ED} ada"]
[users.bob]
ssh_keys = ["{ECDSA} bob"]
[hosts.a]
board = "rpi4"
address = "10.0.0.1"
host_key = "{ED} root@a"
wifi = {{ ssid = "home", psk_secret = "wifi" }}
[hosts.b]
board = "rpi4"
address = "10.0.0.2"
wifi = {{ ssid = "home", psk_secret = "wifi" }}
[hosts.c]
board = "rpi4"
address = "10.0.0.3"
host_key = "{ED} root@c"
"#
        ));
        let ring = Keyring::of(&f);
        let wifi = SecretName::new("wifi").unwrap();
        let r = ring.recipients(Sealed::Secret(&wifi));
        let holders: Vec<String> = r.keys.iter().map(|k| k.holder.to_string()).collect();
        assert_eq!(holders, ["admin `ada`", "host `a`"]);
        let keyless: Vec<String> = r.keyless.iter().map(|h| h.to_string()).collect();
        assert_eq!(keyless, ["admin `bob`", "host `b`"]);

        let c = HostName::new("c").unwrap();
        let r = ring.recipients(Sealed::HostKey(&c));
        let holders: Vec<String> = r.keys.iter().map(|k| k.holder.to_string()).collect();
        assert_eq!(holders, ["admin `ada`"], "only admins hold host keys");
        assert_eq!(Sealed::HostKey(&c).file(), "secrets/host-keys/c.age");
        assert_eq!(Sealed::Secret(&wifi).file(), "secrets/wifi.age");

        let unused = SecretName::new("later").unwrap();
        assert!(ring.readers(&unused).is_empty());
        assert_eq!(ring.recipients(Sealed::Secret(&unused)).keys.len(), 1);
    }
}
