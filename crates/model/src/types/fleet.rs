//! The whole inventory and the settings every host shares: NixOS release, time zone, locale, Nix.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::*;
use crate::names::{
    CacheKey, ContainerName, HostName, Keymap, PackageName, StateVersion, Substituter, UserName,
};

/// A whole inventory: fleet-wide settings, SSH policy, users, hosts and fleet-wide containers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "pifleet inventory",
    description = "A fleet of NixOS hosts managed by pifleet (fleet.toml)."
)]
pub struct Fleet {
    /// Path or URL of the JSON schema, for editors (JSON inventories; TOML uses a `#:schema` comment instead).
    #[serde(rename = "$schema", default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// Settings shared by every host: NixOS release, time zone, locale, Nix settings.
    pub fleet: FleetSettings,
    /// The fleet-wide SSH server policy. A host can override single fields in `hosts.<name>.ssh`.
    #[serde(default)]
    pub ssh: SshPolicy,
    /// People and service accounts that may exist on hosts. A host lists the ones it gets in `hosts.<name>.users`.
    #[serde(default)]
    pub users: BTreeMap<UserName, User>,
    /// The machines of the fleet, by host name (also used as `networking.hostName`).
    #[serde(default)]
    pub hosts: BTreeMap<HostName, Host>,
    /// Containers written once and placed on every host matching `placement` (by tag or by name).
    #[serde(default)]
    pub containers: BTreeMap<ContainerName, FleetContainer>,
}

/// Settings shared by every host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FleetSettings {
    /// A name for the fleet, shown in reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// NixOS release whose defaults the hosts keep (`system.stateVersion`), e.g. "26.05". Set once, never bump on upgrades.
    pub state_version: StateVersion,
    /// Time zone of every host (`time.timeZone`), e.g. "Europe/Amsterdam". Hosts may override it.
    #[serde(default = "default_time_zone")]
    pub time_zone: String,
    /// Default locale (`i18n.defaultLocale`).
    #[serde(default = "default_locale")]
    pub locale: String,
    /// Nix daemon settings on every host.
    #[serde(default)]
    pub nix: NixSettings,
    /// Build aarch64 hosts by cross-compiling from x86_64 (`nixpkgs.buildPlatform`) instead of under emulation.
    /// Native speed, but almost nothing comes from the binary cache. Hosts may override it.
    #[serde(default)]
    pub cross_compile: bool,
    /// Users (from `[users]`) whose SSH keys may read and re-encrypt every secret under `secrets/`, and the
    /// hosts' private keys. Their ssh-ed25519 or ssh-rsa keys are age recipients of every secret.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub admins: Vec<UserName>,
    /// Unfree packages every host may install, by name as `lib.getName` gives it, e.g. ["unrar", "vscode"]
    /// (`nixpkgs.config.allowUnfreePredicate`). Names only: `true` (every unfree package) is not accepted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_unfree: Vec<PackageName>,
    /// Console keymap of every host (`console.keyMap`), e.g. "de-latin1". Hosts may override it. Left out, "us".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keymap: Option<Keymap>,
    /// The engine that runs containers: "docker" (default) or "podman". Hosts may override it.
    #[serde(default)]
    pub container_backend: ContainerBackend,
}

fn default_time_zone() -> String {
    "UTC".into()
}

fn default_locale() -> String {
    "en_US.UTF-8".into()
}

/// Nix daemon settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NixSettings {
    /// Enable the `nix-command` and `flakes` experimental features.
    #[serde(default = "yes")]
    pub flakes: bool,
    /// Extra `nix.settings.trusted-users`. The deploy user of each host is added automatically.
    #[serde(default)]
    pub trusted_users: Vec<String>,
    /// Automatic garbage collection of old generations (`nix.gc`).
    #[serde(default)]
    pub gc: GarbageCollection,
    /// Deduplicate the Nix store on a timer (`nix.optimise.automatic`), batched at night rather than on every
    /// write as `auto-optimise-store` does: kinder to SD cards. Default false.
    #[serde(default)]
    pub optimise: bool,
    /// Extra binary caches (`nix.settings.substituters`), e.g. ["https://nix-community.cachix.org"];
    /// cache.nixos.org stays. Each needs its key in `trusted_public_keys`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub substituters: Vec<Substituter>,
    /// Public keys of the binary caches (`nix.settings.trusted-public-keys`), `name:base64` as each cache
    /// publishes it; cache.nixos.org's stays.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trusted_public_keys: Vec<CacheKey>,
}

impl Default for NixSettings {
    fn default() -> Self {
        Self {
            flakes: true,
            trusted_users: Vec::new(),
            gc: GarbageCollection::default(),
            optimise: false,
            substituters: Vec::new(),
            trusted_public_keys: Vec::new(),
        }
    }
}

/// Automatic garbage collection (`nix.gc`): keeps small SD cards from filling up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GarbageCollection {
    /// Run garbage collection automatically.
    #[serde(default = "yes")]
    pub enable: bool,
    /// When to run it, a systemd calendar expression (`nix.gc.dates`), e.g. "weekly".
    #[serde(default = "default_gc_dates")]
    pub dates: String,
    /// Delete generations older than this (`--delete-older-than`), e.g. "30d".
    #[serde(default = "default_gc_age")]
    pub delete_older_than: String,
}

impl Default for GarbageCollection {
    fn default() -> Self {
        Self {
            enable: true,
            dates: default_gc_dates(),
            delete_older_than: default_gc_age(),
        }
    }
}

pub(crate) fn yes() -> bool {
    true
}

fn default_gc_dates() -> String {
    "weekly".into()
}

fn default_gc_age() -> String {
    "30d".into()
}
