//! Addresses, network managers, Wi-Fi and the firewall of a host.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::*;
use crate::names::{Cidr, Ip, Port, SecretName};

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
    /// The secret (in `secrets/<name>.age`, written with `pifleet secrets set`) holding the passphrase, decrypted on the
    /// host by agenix with its host key: the way a headless board joins the network on first boot. Set this or
    /// `secrets_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub psk_secret: Option<SecretName>,
    /// Path on the host of a file with `NAME=passphrase` lines (`networking.wireless.secretsFile`), placed there by
    /// you; it never goes through the Nix store. Set this or `psk_secret`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets_file: Option<String>,
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
    /// Interfaces whose traffic is accepted on every port (`networking.firewall.trustedInterfaces`), e.g.
    /// ["wg0"]. `tailscale.trust_interface` adds `tailscale0`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trusted_interfaces: Vec<String>,
    /// Answer ICMP echo requests (`networking.firewall.allowPing`); left out, NixOS's default (true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_ping: Option<bool>,
}

impl Default for Firewall {
    fn default() -> Self {
        Self {
            enable: true,
            allowed_tcp_ports: Vec::new(),
            allowed_udp_ports: Vec::new(),
            trusted_interfaces: Vec::new(),
            allow_ping: None,
        }
    }
}
