//! What a host runs besides SSH and its containers: Tailscale, mDNS, pull-mode upgrades, time
//! servers, fail2ban, the container engine, and how it spares its SD card.
//!
//! These are the areas real Pi and home-server configurations set again and again in hand-written
//! modules. Tables that turn a service on (`tailscale`, `mdns`, `auto_upgrade`, `fail2ban`) are
//! on as soon as they are written; `enable = false` keeps their settings while turning them off.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::*;
use crate::names::{
    BanTime, Calendar, FlakeRef, IpOrCidr, NtpServer, Route, SecretName, TailscaleTag,
};

/// The engine that runs `virtualisation.oci-containers`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ContainerBackend {
    /// Docker (the default): units `docker-<name>.service`, socket `/run/docker.sock`.
    #[default]
    Docker,
    /// Podman, daemonless: units `podman-<name>.service`, socket `/run/podman/podman.sock`.
    Podman,
}

impl ContainerBackend {
    /// The name as written in the inventory and as `virtualisation.oci-containers.backend` takes it.
    pub fn as_str(self) -> &'static str {
        match self {
            ContainerBackend::Docker => "docker",
            ContainerBackend::Podman => "podman",
        }
    }

    /// Paths of the engine's API socket on the host: whoever can reach it can start a privileged
    /// container, which is root on the host.
    pub fn socket_paths(self) -> &'static [&'static str] {
        match self {
            ContainerBackend::Docker => &["/run/docker.sock", "/var/run/docker.sock"],
            ContainerBackend::Podman => &[
                "/run/podman/podman.sock",
                "/var/run/podman/podman.sock",
                // With `dockerSocket.enable` Podman answers on Docker's path too.
                "/run/docker.sock",
                "/var/run/docker.sock",
            ],
        }
    }

    /// The systemd unit oci-containers makes for container `name` (`<backend>-<name>`).
    pub fn unit(self, name: &str) -> String {
        format!("{}-{name}", self.as_str())
    }
}

/// Where journald keeps the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum JournalStorage {
    /// In memory only (`Storage=volatile`): no log writes to the card, the log is lost at reboot.
    Volatile,
    /// On disk under /var/log/journal (`Storage=persistent`, NixOS's default).
    Persistent,
}

/// Where /tmp lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TmpStorage {
    /// A tmpfs in RAM (`boot.tmp.useTmpfs = true`, at most half the memory): no writes to the card.
    Tmpfs,
    /// On the root file system (NixOS's default).
    Disk,
}

/// Settings that spare an SD card (or any flash storage) from writes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Storage {
    /// Where journald keeps the log (`services.journald.storage`): "volatile" (RAM) or "persistent" (disk).
    /// Left out, NixOS's default (persistent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub journal: Option<JournalStorage>,
    /// Mount the root file system with `noatime` (`fileSystems."/".options`): reading a file no longer writes.
    #[serde(default)]
    pub noatime: bool,
    /// Where /tmp lives: "tmpfs" (RAM) or "disk". Left out, NixOS's default (disk).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmp: Option<TmpStorage>,
}

/// Tailscale (`services.tailscale`): the host joins your tailnet, headless, with an auth key from a secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Tailscale {
    /// Run tailscaled (default true: writing the table turns it on).
    #[serde(default = "yes")]
    pub enable: bool,
    /// The secret (`pifleet secrets set NAME`) holding a Tailscale auth key (`tskey-auth-…`): the host logs in
    /// with it on first boot (`services.tailscale.authKeyFile`). Never write the key itself into the inventory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_key_secret: Option<SecretName>,
    /// Subnets this host routes into the tailnet (`--advertise-routes`), e.g. ["192.168.1.0/24"]; approve them in
    /// the admin console.
    #[serde(default)]
    pub advertise_routes: Vec<Route>,
    /// Offer this host as an exit node (`--advertise-exit-node`).
    #[serde(default)]
    pub exit_node: bool,
    /// Use routes other nodes advertise (`--accept-routes`).
    #[serde(default)]
    pub accept_routes: bool,
    /// Trust everything arriving over the tailnet (`networking.firewall.trustedInterfaces` gets `tailscale0`):
    /// every port, SSH included, is open to the tailnet. Tailscale's ACLs then decide who reaches the host.
    #[serde(default)]
    pub trust_interface: bool,
    /// ACL tags the host asks for when it logs in (`--advertise-tags`), e.g. ["tag:server"]. An auth key
    /// created with tags needs them here; the policy file's `tagOwners` must allow them. `tailscale set`
    /// cannot change tags, so they apply at the first login only: retag a logged-in host in the admin
    /// console.
    #[serde(default)]
    pub advertise_tags: Vec<TailscaleTag>,
    /// Tailscale SSH (`--ssh`): tailscaled answers SSH on the host's tailnet addresses itself, and the
    /// policy file's `ssh` rules, not sshd or `[ssh]`, decide who logs in as whom. `false` turns it off
    /// on a host that has it; left out, the host keeps what it has (off on a new host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh: Option<bool>,
    /// Use the tailnet's DNS settings, MagicDNS included (`--accept-dns`). `false` keeps the host's own
    /// resolvers (a host that is itself the LAN's DNS server, e.g. AdGuard or Pi-hole); left out,
    /// Tailscale's default (true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accept_dns: Option<bool>,
}

/// mDNS (avahi): the host answers to `<name>.local` and resolves other `.local` names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Mdns {
    /// Run avahi with `nssmdns4`, publish the host's addresses and open UDP 5353 (default true: writing the table
    /// turns it on).
    #[serde(default = "yes")]
    pub enable: bool,
}

/// Pull-mode upgrades (`system.autoUpgrade`): the host rebuilds itself from the fleet's flake on a timer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AutoUpgrade {
    /// Run the upgrade timer (default true: writing the table turns it on).
    #[serde(default = "yes")]
    pub enable: bool,
    /// Where the host fetches the fleet from, e.g. "github:me/fleet"; pifleet adds `#<host>`. If you write the
    /// `#…` part, it must be this host's name.
    pub flake: FlakeRef,
    /// When to upgrade, a systemd calendar event (`system.autoUpgrade.dates`); default "04:40".
    #[serde(default = "default_upgrade_dates")]
    pub dates: Calendar,
    /// Reboot after an upgrade that changed the kernel, initrd or kernel modules (`allowReboot`). A Pi's boot
    /// loader has no one-shot boot, and the upgrade boots the new default without confirming it, so a bad
    /// generation stays the boot default: see `reboot_without_fallback`.
    #[serde(default)]
    pub allow_reboot: bool,
}

fn default_upgrade_dates() -> Calendar {
    Calendar::new("04:40").unwrap_or_else(|_| unreachable!("a valid calendar event"))
}

/// Time synchronisation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TimeSettings {
    /// NTP servers (`networking.timeServers`, which systemd-timesyncd uses), e.g. ["192.168.1.1"]. Left out,
    /// the NixOS pool.
    #[serde(default)]
    pub ntp_servers: Vec<NtpServer>,
}

/// fail2ban (`services.fail2ban`): bans addresses that keep failing to log in (sshd's jail is on with it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Fail2ban {
    /// Run fail2ban (default true: writing the table turns it on).
    #[serde(default = "yes")]
    pub enable: bool,
    /// Failures before a ban (`services.fail2ban.maxretry`); left out, 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_retry: Option<u32>,
    /// How long a ban lasts (`services.fail2ban.bantime`), e.g. "1h"; left out, "10m".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ban_time: Option<BanTime>,
    /// Addresses and networks never banned (`services.fail2ban.ignoreIP`), e.g. ["192.168.1.0/24",
    /// "10.0.0.5"]: your LAN, so a mistyped password at home does not lock you out. Loopback is always
    /// ignored.
    #[serde(default)]
    pub ignore_ip: Vec<IpOrCidr>,
    /// Ban addresses that come back for longer each time (`services.fail2ban.bantime-increment.enable`):
    /// `ban_time`, then twice that, four times, and so on.
    #[serde(default)]
    pub bantime_increment: bool,
}

/// A compression algorithm the kernel's zram supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ZramAlgorithm {
    /// zstd: the best ratio, NixOS's default.
    #[serde(rename = "zstd")]
    Zstd,
    /// lz4: faster and lighter on the CPU (Pi 3, Zero 2 W).
    #[serde(rename = "lz4")]
    Lz4,
    /// lz4hc: lz4 with a better ratio, slower to compress.
    #[serde(rename = "lz4hc")]
    Lz4hc,
    /// lzo.
    #[serde(rename = "lzo")]
    Lzo,
    /// lzo-rle: lzo with run-length encoding, the kernel's own default.
    #[serde(rename = "lzo-rle")]
    LzoRle,
    /// 842.
    #[serde(rename = "842")]
    N842,
    /// deflate.
    #[serde(rename = "deflate")]
    Deflate,
}

impl ZramAlgorithm {
    /// The name the kernel and `zramSwap.algorithm` use.
    pub fn as_str(self) -> &'static str {
        match self {
            ZramAlgorithm::Zstd => "zstd",
            ZramAlgorithm::Lz4 => "lz4",
            ZramAlgorithm::Lz4hc => "lz4hc",
            ZramAlgorithm::Lzo => "lzo",
            ZramAlgorithm::LzoRle => "lzo-rle",
            ZramAlgorithm::N842 => "842",
            ZramAlgorithm::Deflate => "deflate",
        }
    }
}
