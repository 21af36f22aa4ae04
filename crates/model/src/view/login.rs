//! Who can log in to a host after the switch, and why not.
//!
//! The generated module sets `users.mutableUsers = false`, so accounts, their keys and password
//! hashes come only from the inventory: an account the inventory does not list disappears with the
//! switch, and only the inventory's keys (plus `~/.ssh/authorized_keys` when
//! `authorized_keys_in_homedir` is on) let anyone in. pifleet deploys non-interactively, so a login
//! here means a login with a key. The lockout analysis in `check`, `adopt`'s analysis across the
//! switch and `keys inject --from-inventory` all ask this module.

use std::fmt;

use crate::names::{SshPublicKey, wildcard_match};
use crate::sshd::SettingValue;
use crate::types::PermitRootLogin;

use super::HostView;

/// One reason a user cannot log in with a key after the switch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginBlock {
    /// sshd does not run (`ssh.enable = false`).
    SshdOff,
    /// The user is root and `permit_root_login = "no"`.
    RootLoginOff,
    /// The user is not root and the inventory does not create the account on this host.
    NoAccount,
    /// The inventory gives the user no key, and keys in `~/.ssh` do not count (not read, or the
    /// account is new).
    NoKey {
        /// `authorized_keys_in_homedir` is on (but the account is new, so there can be none yet).
        homedir_read: bool,
    },
    /// `AllowUsers` does not list the user.
    NotAllowed {
        /// `AllowUsers` as written or derived.
        allow_users: Vec<String>,
        /// Whether `allow_users` was written in the inventory rather than derived.
        explicit: bool,
    },
    /// `DenyUsers` lists the user.
    Denied,
    /// `PubkeyAuthentication = false` in `extra_settings`: no key works.
    PubkeyAuthOff,
    /// `AuthenticationMethods` asks for more than a key in every list (a password, a second factor).
    AuthMethods {
        /// The setting as written.
        value: String,
    },
    /// `AllowGroups` lists none of the user's groups, or `DenyGroups` lists one of them.
    Groups {
        /// `AllowGroups` or `DenyGroups`.
        keyword: &'static str,
        /// The user's groups, primary group first.
        groups: Vec<String>,
    },
    /// `ForceCommand` or `ChrootDirectory` applies to every login: deploy's commands never run.
    Restricted {
        /// The keyword.
        keyword: &'static str,
    },
    /// A limit set to zero admits nobody (`MaxAuthTries`, `MaxSessions`, `MaxStartups`).
    ZeroLimit {
        /// The keyword.
        keyword: &'static str,
    },
    /// `PubkeyAcceptedAlgorithms` accepts none of the user's keys.
    KeyTypes {
        /// The setting as written.
        accepted: String,
    },
    /// Every inventory key of the user is bound to a forced command or has expired.
    KeysUnusable {
        /// Why, for the first key.
        why: String,
    },
    /// `UsePAM = false`: sshd itself refuses accounts whose password is locked, and this one has none.
    LockedWithoutPam,
    /// `AddressFamily` excludes the family of the address deploy connects to.
    AddressFamily {
        /// `inet` or `inet6`.
        family: String,
    },
}

impl fmt::Display for LoginBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoginBlock::SshdOff => f.write_str("the SSH server is turned off (`ssh.enable = false`)"),
            LoginBlock::RootLoginOff => f.write_str("`permit_root_login = \"no\"`"),
            LoginBlock::NoAccount => f.write_str(
                "the account is not in the host's `users`: the new system declares its users only \
                 (users.mutableUsers = false), so the switch deletes it",
            ),
            LoginBlock::NoKey { homedir_read: true } => f.write_str(
                "the inventory gives it no SSH key (keys in its ~/.ssh are read, but pifleet cannot know there are any)",
            ),
            LoginBlock::NoKey { homedir_read: false } => f.write_str(
                "the inventory gives it no SSH key, and keys in ~/.ssh are not read (`authorized_keys_in_homedir = false`)",
            ),
            LoginBlock::NotAllowed { allow_users, .. } => write!(
                f,
                "sshd's AllowUsers ({}) does not list it",
                allow_users.join(", ")
            ),
            LoginBlock::Denied => f.write_str("`deny_users` lists it"),
            LoginBlock::PubkeyAuthOff => f.write_str("`PubkeyAuthentication = false` turns key logins off"),
            LoginBlock::AuthMethods { value } => write!(
                f,
                "`AuthenticationMethods = \"{value}\"` asks for more than a key, which a deploy cannot give"
            ),
            LoginBlock::Groups { keyword, groups } => write!(
                f,
                "`{keyword}` shuts it out (its groups: {})",
                groups.join(", ")
            ),
            LoginBlock::Restricted { keyword } => write!(
                f,
                "`{keyword}` applies to every login, so deploy's commands would never run"
            ),
            LoginBlock::ZeroLimit { keyword } => write!(f, "`{keyword} = 0` admits nobody"),
            LoginBlock::KeyTypes { accepted } => write!(
                f,
                "`PubkeyAcceptedAlgorithms = \"{accepted}\"` accepts none of its keys"
            ),
            LoginBlock::KeysUnusable { why } => write!(f, "none of its keys can run deploy's commands: {why}"),
            LoginBlock::LockedWithoutPam => f.write_str(
                "`UsePAM = false` makes sshd refuse accounts whose password is locked, and it has none",
            ),
            LoginBlock::AddressFamily { family } => write!(
                f,
                "`AddressFamily = \"{family}\"` excludes the address deploy connects to"
            ),
        }
    }
}

/// A working key login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyLogin<'a> {
    /// The inventory's keys for this login (root's keys for root).
    pub keys: &'a [SshPublicKey],
    /// Keys in the account's `~/.ssh/authorized_keys` count too.
    pub homedir: bool,
}

impl<'a> HostView<'a> {
    /// Whether `user` can log in with a key after the switch, and every reason it cannot.
    /// `account_exists_now` says the account already exists on the machine, so keys in its home
    /// directory count when `authorized_keys_in_homedir` is on; a fresh account has none.
    pub fn key_login(
        &self,
        user: &str,
        account_exists_now: bool,
    ) -> Result<KeyLogin<'a>, Vec<LoginBlock>> {
        let ssh = &self.ssh;
        let mut blocks = Vec::new();
        if !ssh.enable {
            blocks.push(LoginBlock::SshdOff);
        }
        let homedir = account_exists_now && ssh.authorized_keys_in_homedir;
        let keys: &'a [SshPublicKey] = if user == "root" {
            if ssh.permit_root_login == PermitRootLogin::No {
                blocks.push(LoginBlock::RootLoginOff);
            }
            ssh.root_keys
        } else {
            match self.account(user) {
                Some(account) => account.keys(),
                None => {
                    blocks.push(LoginBlock::NoAccount);
                    &[]
                }
            }
        };
        let no_account = blocks.contains(&LoginBlock::NoAccount);
        if keys.is_empty() && !homedir && !no_account {
            blocks.push(LoginBlock::NoKey {
                homedir_read: ssh.authorized_keys_in_homedir,
            });
        }
        if !ssh.allows(user) {
            blocks.push(LoginBlock::NotAllowed {
                allow_users: ssh
                    .allow_users
                    .iter()
                    .map(|u| u.as_str().to_owned())
                    .collect(),
                explicit: ssh.allow_users_explicit,
            });
        }
        if ssh.denies(user) {
            blocks.push(LoginBlock::Denied);
        }
        self.sshd_blocks(user, &mut blocks);
        if !homedir && !keys.is_empty() {
            keys_blocks(ssh, keys, &mut blocks);
        }
        if blocks.is_empty() {
            Ok(KeyLogin { keys, homedir })
        } else {
            Err(blocks)
        }
    }

    /// What the extra sshd settings do to a key login of `user`.
    fn sshd_blocks(&self, user: &str, blocks: &mut Vec<LoginBlock>) {
        let ssh = &self.ssh;
        if ssh.extra_value("PubkeyAuthentication") == Some(&SettingValue::Bool(false)) {
            blocks.push(LoginBlock::PubkeyAuthOff);
        }
        if let Some(SettingValue::Str(value)) = ssh.extra_value("AuthenticationMethods")
            && !key_satisfies(value)
        {
            blocks.push(LoginBlock::AuthMethods {
                value: value.to_string(),
            });
        }
        let groups = self.groups_of(user);
        if let Some(allowed) = ssh.extra_value("AllowGroups")
            && !words(allowed).any(|p| groups.iter().any(|g| wildcard_match(p, g)))
        {
            blocks.push(LoginBlock::Groups {
                keyword: "AllowGroups",
                groups: groups.clone(),
            });
        }
        if let Some(denied) = ssh.extra_value("DenyGroups")
            && words(denied).any(|p| groups.iter().any(|g| wildcard_match(p, g)))
        {
            blocks.push(LoginBlock::Groups {
                keyword: "DenyGroups",
                groups,
            });
        }
        for keyword in ["ForceCommand", "ChrootDirectory"] {
            if let Some(SettingValue::Str(v)) = ssh.extra_value(keyword)
                && !v.eq_ignore_ascii_case("none")
            {
                blocks.push(LoginBlock::Restricted { keyword });
            }
        }
        for keyword in ["MaxAuthTries", "MaxSessions"] {
            if ssh.extra_value(keyword) == Some(&SettingValue::Int(0)) {
                blocks.push(LoginBlock::ZeroLimit { keyword });
            }
        }
        let no_startups = match ssh.extra_value("MaxStartups") {
            Some(SettingValue::Int(n)) => *n == 0,
            Some(SettingValue::Str(s)) => s.split(':').next().is_some_and(|n| n.trim() == "0"),
            _ => false,
        };
        if no_startups {
            blocks.push(LoginBlock::ZeroLimit {
                keyword: "MaxStartups",
            });
        }
        if ssh.extra_value("UsePAM") == Some(&SettingValue::Bool(false)) {
            let password = match self.account(user) {
                Some(account) => account.password.can_type(),
                // Root's password is never set by the inventory: locked.
                None => false,
            };
            if !password {
                blocks.push(LoginBlock::LockedWithoutPam);
            }
        }
        if let Some(SettingValue::Str(family)) = ssh.extra_value("AddressFamily")
            && let Ok(ip) = self.deploy.address.as_str().parse::<std::net::IpAddr>()
        {
            let excluded = match family.to_ascii_lowercase().as_str() {
                "inet" => ip.is_ipv6(),
                "inet6" => ip.is_ipv4(),
                _ => false,
            };
            if excluded {
                blocks.push(LoginBlock::AddressFamily {
                    family: family.to_string(),
                });
            }
        }
    }

    /// The groups of `user` on the host: its primary group (`root`, or `users` for the inventory's
    /// normal users), then its extra groups.
    pub fn groups_of(&self, user: &str) -> Vec<String> {
        if user == "root" {
            return vec!["root".into()];
        }
        let mut groups = vec!["users".to_owned()];
        if let Some(account) = self.account(user) {
            groups.extend(account.groups.iter().map(|g| (*g).to_owned()));
        }
        groups
    }

    /// The deploy user's key login after the switch, for a machine where the account already exists.
    pub fn deploy_login(&self) -> Result<KeyLogin<'a>, Vec<LoginBlock>> {
        self.key_login(self.deploy.user.as_str(), true)
    }

    /// Whether anyone at all has a way to log in: password logins on, homedir keys read, root's keys
    /// installed, or a key for one of the host's accounts. `AllowUsers` is not consulted: this is about
    /// the methods the inventory provides.
    pub fn has_any_login_method(&self) -> bool {
        let ssh = &self.ssh;
        ssh.accepts_passwords()
            || ssh.authorized_keys_in_homedir
            || ssh.root_keys_installed()
            || self.accounts.iter().any(|a| !a.keys().is_empty())
    }
}

/// The words of a list setting (a list, or one string joined by spaces or commas).
fn words<'v>(value: &'v SettingValue<'_>) -> Box<dyn Iterator<Item = &'v str> + 'v> {
    match value {
        SettingValue::List(items) => Box::new(items.iter().map(AsRef::as_ref)),
        SettingValue::Str(s) => Box::new(s.split([' ', ',']).filter(|w| !w.is_empty())),
        _ => Box::new(std::iter::empty()),
    }
}

/// Whether a key alone satisfies `AuthenticationMethods`: `any`, or one of its space-separated
/// lists is exactly `publickey` (possibly repeated, for several keys).
fn key_satisfies(value: &str) -> bool {
    value.split_whitespace().any(|list| {
        list.eq_ignore_ascii_case("any")
            || list
                .split(',')
                .all(|method| method.eq_ignore_ascii_case("publickey"))
    })
}

/// The signature algorithms sshd accepts by default (OpenSSH 10, sshd_config(5)
/// `PubkeyAcceptedAlgorithms`), without the certificate variants.
const DEFAULT_PUBKEY_ALGORITHMS: &[&str] = &[
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "rsa-sha2-512",
    "rsa-sha2-256",
];

/// Whether `PubkeyAcceptedAlgorithms = value` accepts `algorithm`: a list of patterns replaces the
/// defaults; a leading `+` adds to them, `-` removes from them, `^` puts patterns first.
fn algorithm_accepted(value: &str, algorithm: &str) -> bool {
    let matches = |list: &str| list.split(',').any(|p| wildcard_match(p, algorithm));
    let default = DEFAULT_PUBKEY_ALGORITHMS.contains(&algorithm);
    if let Some(added) = value.strip_prefix('+').or_else(|| value.strip_prefix('^')) {
        default || matches(added)
    } else if let Some(removed) = value.strip_prefix('-') {
        default && !matches(removed)
    } else {
        matches(value)
    }
}

/// What key options and `PubkeyAcceptedAlgorithms` leave of `keys`.
fn keys_blocks(ssh: &super::SshView<'_>, keys: &[SshPublicKey], blocks: &mut Vec<LoginBlock>) {
    if let Some(SettingValue::Str(accepted)) = ssh.extra_value("PubkeyAcceptedAlgorithms")
        && !keys.iter().any(|k| {
            k.signature_algorithms()
                .iter()
                .any(|a| algorithm_accepted(accepted, a))
        })
    {
        blocks.push(LoginBlock::KeyTypes {
            accepted: accepted.to_string(),
        });
    }
    let unusable: Vec<String> = keys.iter().filter_map(unusable_key).collect();
    if unusable.len() == keys.len()
        && let Some(why) = unusable.into_iter().next()
    {
        blocks.push(LoginBlock::KeysUnusable { why });
    }
}

/// Why deploy could not use `key`, if it could not: a forced command (nixos-rebuild and
/// nix-copy-closure run their own), or an `expiry-time` in the past.
fn unusable_key(key: &SshPublicKey) -> Option<String> {
    if let Some(command) = key.option("command") {
        return Some(format!(
            "{} is bound to the forced command `{command}`",
            key.fingerprint()
        ));
    }
    let expiry = key.option("expiry-time")?;
    let digits: String = expiry.chars().take_while(char::is_ascii_digit).collect();
    // YYYYMMDD[HHMM[SS]] compares as text once padded to seconds.
    let padded = format!("{digits:0<14}");
    let now = jiff::Timestamp::now().strftime("%Y%m%d%H%M%S").to_string();
    (padded <= now).then(|| format!("{} expired on {expiry}", key.fingerprint()))
}
