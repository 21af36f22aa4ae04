//! The SSH server policy, fleet-wide and per host.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::*;
use crate::names::{Port, SshPublicKey, UserPattern};

/// `PermitRootLogin` values pifleet accepts. `yes` is deliberately missing: root logins with a password are
/// never what a fleet wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum PermitRootLogin {
    /// Root cannot log in over SSH at all; deploy as a non-root user with sudo.
    No,
    /// Root may log in with a key only (the keys in `ssh.root_keys`).
    ProhibitPassword,
}

impl PermitRootLogin {
    /// The sshd_config value (`services.openssh.settings.PermitRootLogin`).
    pub fn as_sshd(self) -> &'static str {
        match self {
            PermitRootLogin::No => "no",
            PermitRootLogin::ProhibitPassword => "prohibit-password",
        }
    }
}

/// One value of an extra sshd setting: a boolean for yes/no keywords, a number, a string, or a list of
/// words for keywords that take several (`AllowGroups = ["wheel", "admins"]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum SshdValue {
    /// A boolean, rendered as a Nix boolean (NixOS maps it to yes/no).
    Bool(bool),
    /// A number.
    Int(i64),
    /// A string, written as one line: control characters are refused.
    String(String),
    /// Several words, for keywords that take a list (`AcceptEnv`, `AllowGroups`, `Ciphers`, …).
    List(Vec<String>),
}

/// The SSH server policy of the fleet (`services.openssh`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SshPolicy {
    /// Run the SSH server (`services.openssh.enable`). pifleet deploys over SSH, so `pifleet check` refuses false: the host could never be deployed again.
    #[serde(default = "yes")]
    pub enable: bool,
    /// Port sshd listens on; deploy connects here unless `deploy.port` says otherwise.
    #[serde(default = "default_ssh_port")]
    pub port: Port,
    /// Whether root may log in: "prohibit-password" (keys only) or "no". "yes" is not accepted.
    #[serde(default = "default_permit_root_login")]
    pub permit_root_login: PermitRootLogin,
    /// Allow password logins. Keep this false: keys only.
    #[serde(default)]
    pub password_authentication: bool,
    /// Allow keyboard-interactive logins (PAM prompts). Keep this false: keys only.
    #[serde(default)]
    pub kbd_interactive_authentication: bool,
    /// Public keys that may log in as root (`users.users.root.openssh.authorizedKeys.keys`).
    #[serde(default)]
    pub root_keys: Vec<SshPublicKey>,
    /// Users allowed to log in over SSH (`AllowUsers`). Left out, it is derived: the host's users, its deploy user, and root when `permit_root_login` allows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_users: Option<Vec<UserPattern>>,
    /// Users refused over SSH (`DenyUsers`), checked before `allow_users`. Must never name a host's deploy user.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny_users: Vec<UserPattern>,
    /// Open the SSH port in the host firewall (`services.openssh.openFirewall`). With false and the firewall on, list the port in `firewall.allowed_tcp_ports` yourself, or deploy cannot connect.
    #[serde(default = "yes")]
    pub open_firewall: bool,
    /// Also read `~/.ssh/authorized_keys` files. Hardened setups keep this false so only the keys in this inventory work.
    #[serde(default)]
    pub authorized_keys_in_homedir: bool,
    /// Extra sshd settings (`services.openssh.settings`), e.g. `{ MaxAuthTries = 3, AllowGroups = ["ssh"] }`. Keywords
    /// from sshd_config(5); values typed per keyword (true/false for yes/no); settings pifleet manages have fields.
    #[serde(default)]
    pub extra_settings: BTreeMap<String, SshdValue>,
}

fn default_ssh_port() -> Port {
    Port::SSH
}

fn default_permit_root_login() -> PermitRootLogin {
    PermitRootLogin::ProhibitPassword
}

impl Default for SshPolicy {
    fn default() -> Self {
        Self {
            enable: true,
            port: default_ssh_port(),
            permit_root_login: default_permit_root_login(),
            password_authentication: false,
            kbd_interactive_authentication: false,
            root_keys: Vec::new(),
            allow_users: None,
            deny_users: Vec::new(),
            open_firewall: true,
            authorized_keys_in_homedir: false,
            extra_settings: BTreeMap::new(),
        }
    }
}

/// A host's changes to the fleet SSH policy: every field left out keeps the fleet value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SshOverride {
    /// Run the SSH server on this host. `pifleet check` refuses false: deploy needs SSH.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable: Option<bool>,
    /// Port sshd listens on for this host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<Port>,
    /// Whether root may log in on this host: "prohibit-password" or "no".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permit_root_login: Option<PermitRootLogin>,
    /// Allow password logins on this host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_authentication: Option<bool>,
    /// Allow keyboard-interactive logins on this host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kbd_interactive_authentication: Option<bool>,
    /// Root keys for this host, replacing the fleet's `ssh.root_keys`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_keys: Option<Vec<SshPublicKey>>,
    /// `AllowUsers` for this host, replacing the fleet's (or the derived) list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_users: Option<Vec<UserPattern>>,
    /// `DenyUsers` for this host, replacing the fleet's list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deny_users: Option<Vec<UserPattern>>,
    /// Open the SSH port in this host's firewall (`services.openssh.openFirewall`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_firewall: Option<bool>,
    /// Read `~/.ssh/authorized_keys` on this host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorized_keys_in_homedir: Option<bool>,
    /// Extra sshd settings for this host, merged over the fleet's (same key: the host wins).
    #[serde(default)]
    pub extra_settings: BTreeMap<String, SshdValue>,
}
