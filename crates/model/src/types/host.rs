//! One machine of the fleet: its board, address, deploy settings, and the tables that hang off it.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::*;
use crate::names::{
    Address, ContainerName, HealthUrl, KernelParam, Keymap, Port, SshPublicKey, StateVersion, Tag,
    UnitName, UserName,
};

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

/// The boot loader a host boots with: `pifleet deploy --reboot` boots a new generation once only where the loader can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum BootLoader {
    /// U-Boot reading `/boot/extlinux/extlinux.conf` (the Pis and the generic aarch64 SD image): no
    /// one-shot boot, so `--reboot` must commit first.
    Extlinux,
    /// GRUB (NixOS's default on x86_64): one-shot with `grub-reboot`; needs `boot.loader.grub.default = "saved"`.
    Grub,
    /// systemd-boot (UEFI): one-shot with `bootctl set-oneshot`.
    SystemdBoot,
}

impl BootLoader {
    /// The name as written in the inventory.
    pub fn as_str(self) -> &'static str {
        match self {
            BootLoader::Extlinux => "extlinux",
            BootLoader::Grub => "grub",
            BootLoader::SystemdBoot => "systemd-boot",
        }
    }

    /// Whether it can boot an entry once and fall back to the default on the next boot.
    pub fn has_one_shot(self) -> bool {
        !matches!(self, BootLoader::Extlinux)
    }
}

/// One check that must pass on the host before deploy confirms a new system. Each runs on the host
/// itself, over the confirmation's SSH connection, so none needs an open firewall port.
///
/// Written as a table with exactly one key (`{ tcp = 8123 }`); see [`HealthCheckTable`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "HealthCheckTable", into = "HealthCheckTable")]
pub enum HealthCheck {
    /// A TCP port on the host accepts connections (on 127.0.0.1 or ::1).
    Tcp(Port),
    /// A systemd unit is active.
    Unit(UnitName),
    /// An http(s) URL answers with a 2xx status when fetched with curl on the host.
    Http(HealthUrl),
    /// A container of this host is running.
    Container(ContainerName),
}

/// A health check as written: a table with exactly one of its keys. The schema says "exactly one"
/// with `minProperties`/`maxProperties`, so a bad value is reported at the key that holds it (a
/// tagged enum's `oneOf` could only say "none of the variants matched").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("minProperties" = 1, "maxProperties" = 1))]
pub struct HealthCheckTable {
    /// A TCP port on the host accepts connections (checked on the host at 127.0.0.1 and ::1), e.g. `{ tcp = 8123 }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<Port>,
    /// A systemd unit is active (`systemctl is-active` on the host), e.g. `{ unit = "nginx.service" }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<UnitName>,
    /// An http(s) URL answers with a 2xx status when curl fetches it on the host, e.g. `{ http = "http://127.0.0.1:8123/" }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HealthUrl>,
    /// A container of this host (its own or a placed fleet container) is running, e.g. `{ container = "homeassistant" }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerName>,
}

impl TryFrom<HealthCheckTable> for HealthCheck {
    type Error = String;
    fn try_from(t: HealthCheckTable) -> Result<Self, String> {
        match (t.tcp, t.unit, t.http, t.container) {
            (Some(port), None, None, None) => Ok(HealthCheck::Tcp(port)),
            (None, Some(unit), None, None) => Ok(HealthCheck::Unit(unit)),
            (None, None, Some(url), None) => Ok(HealthCheck::Http(url)),
            (None, None, None, Some(name)) => Ok(HealthCheck::Container(name)),
            _ => Err(
                "a health check is a table with exactly one of `tcp`, `unit`, `http`, `container`"
                    .into(),
            ),
        }
    }
}

impl From<HealthCheck> for HealthCheckTable {
    fn from(check: HealthCheck) -> Self {
        let mut t = HealthCheckTable::default();
        match check {
            HealthCheck::Tcp(port) => t.tcp = Some(port),
            HealthCheck::Unit(unit) => t.unit = Some(unit),
            HealthCheck::Http(url) => t.http = Some(url),
            HealthCheck::Container(name) => t.container = Some(name),
        }
        t
    }
}

impl JsonSchema for HealthCheck {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "HealthCheck".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        HealthCheckTable::json_schema(generator)
    }
}

impl std::fmt::Display for HealthCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HealthCheck::Tcp(port) => write!(f, "tcp port {port}"),
            HealthCheck::Unit(unit) => write!(f, "unit {}", unit.with_suffix()),
            HealthCheck::Http(url) => write!(f, "http {url}"),
            HealthCheck::Container(name) => write!(f, "container {name}"),
        }
    }
}

/// How long a host waits for pifleet to confirm a new system, when neither the inventory nor the
/// command line says: 3 minutes after activation ends (activation itself is not counted, however
/// slow the SD card), for sshd and the services to come up and the confirmation to get in.
pub const DEFAULT_CONFIRM_TIMEOUT: u32 = 180;

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
    /// Seconds the host waits, after activating a new system, for pifleet to confirm it before it goes back to the previous system by itself; counted from the end of activation. Default 180; `pifleet deploy --confirm-timeout` overrides it for one run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 10, max = 86400))]
    pub confirm_timeout: Option<u32>,
    /// Checks that must pass on the host before a new system is confirmed, besides the login and the system state, e.g. `[{ tcp = 8123 }, { unit = "nginx.service" }, { http = "http://127.0.0.1/" }, { container = "web" }]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub health: Vec<HealthCheck>,
    /// The boot loader, for `pifleet deploy --reboot`: "extlinux", "grub" or "systemd-boot". Left out, extlinux on the aarch64 boards (their SD images) and grub on x86_64 (NixOS's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_loader: Option<BootLoader>,
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
            confirm_timeout: None,
            health: Vec::new(),
            boot_loader: None,
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
    /// Compression of the zram device (`zramSwap.algorithm`): "zstd" (NixOS's default), "lz4" (lighter on a
    /// Pi 3 or Zero 2 W), "lz4hc", "lzo", "lzo-rle", "842" or "deflate".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zram_algorithm: Option<ZramAlgorithm>,
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
    /// The host's SSH host key (`ssh-ed25519 AAAA…`), recorded by `pifleet hostkey new` (before flashing) or
    /// `pifleet hostkey scan` (a running host): deploy pins it, and secrets are encrypted to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_key: Option<SshPublicKey>,
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
    /// Containers run on this host (`virtualisation.oci-containers`), by Docker or Podman (`container_backend`).
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
    /// Kernel command-line parameters (`boot.kernelParams`), one token each, e.g. ["cma=256M", "quiet"]. Pi
    /// firmware settings (`gpu_mem=…`, `dtoverlay=…`) belong in config.txt, not here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kernel_params: Vec<KernelParam>,
    /// Console keymap of this host, overriding `fleet.keymap`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keymap: Option<Keymap>,
    /// The container engine of this host, overriding `fleet.container_backend`: "docker" or "podman".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_backend: Option<ContainerBackend>,
    /// Spare the SD card: journal in RAM, `noatime`, /tmp in RAM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<Storage>,
    /// Tailscale: join the tailnet, advertise routes or an exit node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tailscale: Option<Tailscale>,
    /// mDNS (avahi): answer to `<host>.local`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mdns: Option<Mdns>,
    /// Pull-mode upgrades: the host rebuilds itself from the fleet's flake on a timer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_upgrade: Option<AutoUpgrade>,
    /// Time synchronisation: NTP servers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<TimeSettings>,
    /// fail2ban: ban addresses that keep failing to log in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail2ban: Option<Fail2ban>,
}
