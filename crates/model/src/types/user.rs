//! User accounts, their keys, shells, passwords and sudo rights.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::names::{SecretName, SshPublicKey};

/// A login shell.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Shell {
    /// bash, the NixOS default.
    #[default]
    Bash,
    /// zsh (the renderer also sets `programs.zsh.enable`).
    Zsh,
    /// fish (the renderer also sets `programs.fish.enable`).
    Fish,
}

/// What `sudo` asks of a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Sudo {
    /// May use sudo after typing their password (needs `hashed_password` or `hashed_password_file`).
    Password,
    /// May use sudo without a password (what a deploy user needs for unattended `nixos-rebuild --sudo`).
    NoPassword,
}

/// A user account (`users.users.<name>`), created on the hosts that list it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// Public keys that may log in as this user, one `.pub` line each.
    #[serde(default)]
    pub ssh_keys: Vec<SshPublicKey>,
    /// Extra groups, e.g. ["wheel", "docker"].
    #[serde(default)]
    pub groups: Vec<String>,
    /// Fixed numeric user id; left out, NixOS picks one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// Full name or purpose of the account (`description`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Login shell: "bash", "zsh" or "fish".
    #[serde(default)]
    pub shell: Shell,
    /// A crypt(3) password hash (`mkpasswd -m yescrypt`), never the password itself. Ends up world-readable in the Nix store: prefer `hashed_password_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hashed_password: Option<String>,
    /// Path on the host of a file holding the password hash (`hashedPasswordFile`); stays out of the Nix store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hashed_password_file: Option<String>,
    /// The secret (in `secrets/<name>.age`) holding the password hash, decrypted on the host by agenix before
    /// users are created (`hashedPasswordFile`). Write it with `pifleet secrets set`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hashed_password_secret: Option<SecretName>,
    /// Sudo rights: "password" or "no-password". Left out, the user has none (beyond what its groups give).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sudo: Option<Sudo>,
}
