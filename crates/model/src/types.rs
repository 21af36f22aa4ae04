//! The inventory types: one struct per table of `fleet.toml`.
//!
//! Field names are a contract shared with users' files, the JSON schema and the renderer, so they follow
//! shared/DESIGN.md. Every doc comment here becomes the tooltip an editor shows while completing the field, so
//! write them for the person editing `fleet.toml`, not for Rust readers. Every table rejects unknown fields:
//! a typo must be an error, never a silently ignored setting.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::names::{
    Address, Cidr, ContainerName, HostName, ImageRef, Ip, Port, PortMapping, SshPublicKey,
    StateVersion, Tag, UserName, Volume,
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
}

impl Default for NixSettings {
    fn default() -> Self {
        Self {
            flakes: true,
            trusted_users: Vec::new(),
            gc: GarbageCollection::default(),
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

fn yes() -> bool {
    true
}

fn default_gc_dates() -> String {
    "weekly".into()
}

fn default_gc_age() -> String {
    "30d".into()
}

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

/// One value of an extra sshd setting: sshd's freeform settings take single values only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum SshdValue {
    /// A boolean, rendered as a Nix boolean (NixOS maps it to yes/no).
    Bool(bool),
    /// A number.
    Int(i64),
    /// A string, passed through as written.
    String(String),
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
    pub allow_users: Option<Vec<UserName>>,
    /// Users refused over SSH (`DenyUsers`), checked before `allow_users`. Must never name a host's deploy user.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny_users: Vec<UserName>,
    /// Open the SSH port in the host firewall (`services.openssh.openFirewall`). With false and the firewall on, list the port in `firewall.allowed_tcp_ports` yourself, or deploy cannot connect.
    #[serde(default = "yes")]
    pub open_firewall: bool,
    /// Also read `~/.ssh/authorized_keys` files. Hardened setups keep this false so only the keys in this inventory work.
    #[serde(default)]
    pub authorized_keys_in_homedir: bool,
    /// Extra sshd settings (`services.openssh.settings`), e.g. `{ MaxAuthTries = 3 }`. Single values only.
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
    pub allow_users: Option<Vec<UserName>>,
    /// `DenyUsers` for this host, replacing the fleet's list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deny_users: Option<Vec<UserName>>,
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
    /// Sudo rights: "password" or "no-password". Left out, the user has none (beyond what its groups give).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sudo: Option<Sudo>,
}

/// The hardware a host runs on; decides the system type and the board profile in `nix/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Board {
    /// Raspberry Pi 3 (aarch64, 1 GiB RAM).
    #[serde(rename = "rpi3")]
    Rpi3,
    /// Raspberry Pi 4 (aarch64).
    #[serde(rename = "rpi4")]
    Rpi4,
    /// Raspberry Pi Zero 2 W (aarch64, 512 MiB RAM, Wi-Fi only).
    #[serde(rename = "zero2w")]
    Zero2w,
    /// Any other aarch64 machine: gets the generic (Hydra-style) aarch64 SD image, which also boots many SBCs.
    #[serde(rename = "generic-aarch64")]
    GenericAarch64,
    /// An x86_64 machine (VPS, mini PC).
    #[serde(rename = "x86_64")]
    X86_64,
}

impl Board {
    /// The Nix system string: "aarch64-linux" or "x86_64-linux".
    pub fn system(self) -> &'static str {
        match self {
            Board::X86_64 => "x86_64-linux",
            _ => "aarch64-linux",
        }
    }

    /// Whether the host is a Raspberry Pi (boots from an SD image built by the flake).
    pub fn is_raspberry_pi(self) -> bool {
        matches!(self, Board::Rpi3 | Board::Rpi4 | Board::Zero2w)
    }

    /// The name as written in the inventory, e.g. "zero2w"; also the board profile's name under `nix/`.
    pub fn as_str(self) -> &'static str {
        match self {
            Board::Rpi3 => "rpi3",
            Board::Rpi4 => "rpi4",
            Board::Zero2w => "zero2w",
            Board::GenericAarch64 => "generic-aarch64",
            Board::X86_64 => "x86_64",
        }
    }

    /// Memory is tight (≤ 1 GiB): building on the board itself is a bad idea and zram helps.
    pub fn is_low_memory(self) -> bool {
        matches!(self, Board::Rpi3 | Board::Zero2w)
    }

    /// The interface a static address goes on when `network.interface` is left out. NixOS names
    /// interfaces predictably: the Pi 4's on-board Ethernet is `end0` on the mainline kernel, and
    /// the Zero 2 W has only Wi-Fi. The Pi 3's USB Ethernet is named after its MAC address, so
    /// such hosts should name it; `eth0` is the guess for them and for other boards.
    pub fn default_interface(self) -> &'static str {
        match self {
            Board::Rpi4 => "end0",
            Board::Zero2w => "wlan0",
            _ => "eth0",
        }
    }
}

/// Where a host's system closure is built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum BuildOn {
    /// On the workstation running pifleet, then copied over (the default: Pis have little memory).
    #[default]
    Workstation,
    /// On the target host itself (`--build-host` = the target).
    Target,
}

/// How pifleet reaches a host to deploy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Deploy {
    /// The SSH user deploy logs in as. Anything but "root" must be one of the host's `users`, with sudo and Nix trust (added automatically).
    #[serde(default = "default_deploy_user")]
    pub user: UserName,
    /// SSH port to connect to; left out, the host's effective `ssh.port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<Port>,
    /// Where to build the system: "workstation" (default) or "target".
    #[serde(default)]
    pub build_on: BuildOn,
}

fn default_deploy_user() -> UserName {
    UserName::root()
}

impl Default for Deploy {
    fn default() -> Self {
        Self {
            user: default_deploy_user(),
            port: None,
            build_on: BuildOn::Workstation,
        }
    }
}

/// How a host gets its IPv4 address.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AddressMode {
    /// Ask the network's DHCP server (the default).
    #[default]
    Dhcp,
    /// Use `address`, `gateway` and `dns` from this table.
    Static,
}

/// Which network stack configures the interfaces.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum NetworkManagerKind {
    /// systemd-networkd (`networking.useNetworkd`): small and declarative, the default for servers.
    #[default]
    Networkd,
    /// NetworkManager: for hosts that roam between networks; `wifi` becomes a NetworkManager profile.
    NetworkManager,
}

/// Network configuration of a host.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Network {
    /// "dhcp" (default) or "static".
    #[serde(default)]
    pub mode: AddressMode,
    /// "networkd" (default) or "network-manager".
    #[serde(default)]
    pub manager: NetworkManagerKind,
    /// The interface to configure, as NixOS names it (`ip link` on the host); left out, "end0" on a Pi 4,
    /// "wlan0" on a Zero 2 W, else "eth0".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// Static address with prefix length, e.g. "192.168.1.41/24". Required when `mode = "static"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Cidr>,
    /// Default gateway, e.g. "192.168.1.1". Required when `mode = "static"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<Ip>,
    /// DNS servers, e.g. ["192.168.1.1", "9.9.9.9"].
    #[serde(default)]
    pub dns: Vec<Ip>,
}

/// Wi-Fi: wpa_supplicant (`networking.wireless`) with networkd, a profile with NetworkManager. The passphrase never
/// enters the inventory or the Nix store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Wifi {
    /// The network name.
    pub ssid: String,
    /// Path on the host of a file with `NAME=passphrase` lines (`networking.wireless.secretsFile`). Copy it there yourself; it never goes through the Nix store.
    pub secrets_file: String,
    /// The NAME in `secrets_file` whose value is the passphrase (rendered as `pskRaw = "ext:NAME"`).
    #[serde(default = "default_psk_name")]
    pub psk_name: String,
}

fn default_psk_name() -> String {
    "psk".into()
}

/// The host firewall (`networking.firewall`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Firewall {
    /// Turn the firewall on (default). The SSH port is always opened.
    #[serde(default = "yes")]
    pub enable: bool,
    /// TCP ports open to the network.
    #[serde(default)]
    pub allowed_tcp_ports: Vec<Port>,
    /// UDP ports open to the network.
    #[serde(default)]
    pub allowed_udp_ports: Vec<Port>,
}

impl Default for Firewall {
    fn default() -> Self {
        Self {
            enable: true,
            allowed_tcp_ports: Vec::new(),
            allowed_udp_ports: Vec::new(),
        }
    }
}

/// Swap for small boards.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Swap {
    /// Compressed swap in RAM (`zramSwap.enable`); cheap and kind to SD cards.
    #[serde(default)]
    pub zram: bool,
    /// Size of the zram device in percent of RAM (`zramSwap.memoryPercent`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 200))]
    pub zram_percent: Option<u8>,
    /// Size in MiB of a swap file at /var/lib/swapfile; left out, none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub file_size_mb: Option<u32>,
}

/// Monitoring exporters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Monitoring {
    /// Run the Prometheus node exporter (`services.prometheus.exporters.node`).
    #[serde(default)]
    pub node_exporter: bool,
    /// Port of the node exporter.
    #[serde(default = "default_node_exporter_port")]
    pub node_exporter_port: Port,
    /// Open the exporter's port in the firewall.
    #[serde(default)]
    pub open_firewall: bool,
}

fn default_node_exporter_port() -> Port {
    Port::NODE_EXPORTER
}

impl Default for Monitoring {
    fn default() -> Self {
        Self {
            node_exporter: false,
            node_exporter_port: default_node_exporter_port(),
            open_firewall: false,
        }
    }
}

/// Silences one lint for one host, with the reason on record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Allow {
    /// The diagnostic code to silence, e.g. "unpinned_image". Errors cannot be silenced.
    pub code: String,
    /// Why this is fine here: reviewers read it.
    pub reason: String,
}

/// One machine of the fleet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Host {
    /// The hardware: "rpi3", "rpi4", "zero2w", "generic-aarch64" or "x86_64".
    pub board: Board,
    /// Where deploy connects: an IP address or DNS name, e.g. "192.168.1.41".
    pub address: Address,
    /// How deploy logs in and where it builds.
    #[serde(default)]
    pub deploy: Deploy,
    /// Users (from the top-level `users` table) created on this host.
    #[serde(default)]
    pub users: Vec<UserName>,
    /// Tags for selecting hosts (`pifleet deploy @edge`) and placing fleet containers.
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// Packages from nixpkgs to install, by attribute name, e.g. ["git", "vim", "python3Packages.requests"].
    #[serde(default)]
    pub packages: Vec<String>,
    /// Time zone of this host, overriding `fleet.time_zone`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// NixOS release of this host's defaults, overriding `fleet.state_version` (keep the one it was installed with).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_version: Option<StateVersion>,
    /// Network configuration: DHCP by default.
    #[serde(default)]
    pub network: Network,
    /// Wi-Fi network to join.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wifi: Option<Wifi>,
    /// Firewall: on by default, only SSH open.
    #[serde(default)]
    pub firewall: Firewall,
    /// Docker containers run on this host (`virtualisation.oci-containers`).
    #[serde(default)]
    pub containers: BTreeMap<ContainerName, Container>,
    /// Hand-written NixOS modules to import, relative to the inventory file, e.g. ["modules/media.nix"].
    #[serde(default)]
    pub modules: Vec<String>,
    /// Import `hosts/<name>/hardware.nix` next to the entry module: the machine's own hardware configuration
    /// (file systems, kernel modules), written by `pifleet adopt` from its `nixos-generate-config
    /// --show-hardware-config` and hand-maintained from then on (`gen` never touches it). Default false.
    #[serde(default)]
    pub hardware_config: bool,
    /// Changes to the fleet SSH policy for this host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh: Option<SshOverride>,
    /// Swap: zram and/or a swap file.
    #[serde(default)]
    pub swap: Swap,
    /// Monitoring exporters.
    #[serde(default)]
    pub monitoring: Monitoring,
    /// Lints silenced on this host, each with a reason: [{ code = "…", reason = "…" }].
    #[serde(default)]
    pub allow: Vec<Allow>,
    /// Use nixos-hardware's Raspberry Pi profile (rpi3, rpi4): the vendor kernel, built from source (not in the
    /// binary cache; hours under emulation). Off by default: the mainline kernel from the cache boots these boards.
    #[serde(default)]
    pub nixos_hardware: bool,
    /// Cross-compile this host from x86_64 instead of building under emulation; overrides `fleet.cross_compile`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cross_compile: Option<bool>,
}

/// What systemd does when a container stops.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Restart {
    /// Always restart (default).
    #[default]
    Always,
    /// Restart only after a failure.
    OnFailure,
    /// Never restart.
    No,
}

/// Generates the container structs: host containers and fleet containers share every field, and serde's
/// `flatten` cannot be combined with `deny_unknown_fields`, so the list is written once here.
macro_rules! container_struct {
    ($(#[$meta:meta])* $name:ident { $($(#[$fmeta:meta])* pub $field:ident : $ty:ty,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $($(#[$fmeta])* pub $field: $ty,)*
            /// Image with a tag or digest, e.g. "ghcr.io/home-assistant/home-assistant:2026.11.1".
            pub image: ImageRef,
            /// Published ports: "HOST:CONTAINER", "127.0.0.1:8080:80" or "53:53/udp".
            #[serde(default)]
            pub ports: Vec<PortMapping>,
            /// Volumes: "/host/path:/container/path[:ro]" or "name:/container/path".
            #[serde(default)]
            pub volumes: Vec<Volume>,
            /// Environment variables. Values are strings: quote numbers ("1000").
            #[serde(default)]
            pub environment: BTreeMap<String, String>,
            /// Files on the host with KEY=value lines, for secrets that must stay out of the Nix store.
            #[serde(default)]
            pub environment_files: Vec<String>,
            /// Command and arguments passed to the image, replacing its CMD.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub command: Option<Vec<String>>,
            /// Entrypoint replacing the image's.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub entrypoint: Option<String>,
            /// User (and group) inside the container, e.g. "1000:1000".
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub user: Option<String>,
            /// Start at boot (`autoStart`).
            #[serde(default = "yes")]
            pub auto_start: bool,
            /// When systemd restarts the container: "always" (default), "on-failure" or "no".
            #[serde(default)]
            pub restart: Restart,
            /// Containers on the same host that must start first.
            #[serde(default)]
            pub depends_on: Vec<ContainerName>,
            /// Extra `docker run` options, e.g. ["--network=host", "--device=/dev/ttyUSB0"].
            #[serde(default)]
            pub extra_options: Vec<String>,
            /// Container labels.
            #[serde(default)]
            pub labels: BTreeMap<String, String>,
            /// Run with `--privileged`: full access to the host. Avoid unless the image really needs it.
            #[serde(default)]
            pub privileged: bool,
            /// Open the published host ports in the host firewall.
            #[serde(default)]
            pub open_firewall: bool,
        }
    };
}

container_struct! {
    /// A Docker container on a host, run through `virtualisation.oci-containers` with `backend = "docker"`.
    Container {}
}

container_struct! {
    /// A container written once for the fleet and placed on hosts by tag or by name.
    FleetContainer {
        /// Which hosts run this container.
        pub placement: Placement,
    }
}

impl FleetContainer {
    /// The container as it runs on a host, without the placement.
    pub fn to_container(&self) -> Container {
        Container {
            image: self.image.clone(),
            ports: self.ports.clone(),
            volumes: self.volumes.clone(),
            environment: self.environment.clone(),
            environment_files: self.environment_files.clone(),
            command: self.command.clone(),
            entrypoint: self.entrypoint.clone(),
            user: self.user.clone(),
            auto_start: self.auto_start,
            restart: self.restart,
            depends_on: self.depends_on.clone(),
            extra_options: self.extra_options.clone(),
            labels: self.labels.clone(),
            privileged: self.privileged,
            open_firewall: self.open_firewall,
        }
    }
}

/// Which hosts run a fleet container: every host with one of `tags`, plus every host in `hosts`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Placement {
    /// Run on every host that has at least one of these tags.
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// Run on these hosts, by name.
    #[serde(default)]
    pub hosts: Vec<HostName>,
}
