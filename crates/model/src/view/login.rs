//! Who can log in to a host after the switch, and why not.
//!
//! The generated module sets `users.mutableUsers = false`, so accounts, their keys and password
//! hashes come only from the inventory: an account the inventory does not list disappears with the
//! switch, and only the inventory's keys (plus `~/.ssh/authorized_keys` when
//! `authorized_keys_in_homedir` is on) let anyone in. pifleet deploys non-interactively, so a login
//! here means a login with a key. The lockout analysis in `check`, `adopt`'s analysis across the
//! switch and `keys inject --from-inventory` all ask this module.

use std::fmt;

use crate::names::SshPublicKey;
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
        if !ssh.allow_users.iter().any(|u| u.as_str() == user) {
            blocks.push(LoginBlock::NotAllowed {
                allow_users: ssh
                    .allow_users
                    .iter()
                    .map(|u| u.as_str().to_owned())
                    .collect(),
                explicit: ssh.allow_users_explicit,
            });
        }
        if ssh.deny_users.iter().any(|u| u.as_str() == user) {
            blocks.push(LoginBlock::Denied);
        }
        if blocks.is_empty() {
            Ok(KeyLogin { keys, homedir })
        } else {
            Err(blocks)
        }
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
