//! The network: addresses, static settings, Wi-Fi, and whether deploy can still reach sshd through
//! the host firewall and at the address it connects to.

use std::collections::BTreeMap;

use model::{AddressMode, Board, Host, HostName, SshField};

use crate::codes::Code;
use crate::context::{Context, host_path};
use crate::diagnostic::Diagnostic;
use crate::rules::{Family, rules};

/// The network family.
pub(crate) const FAMILY: Family = Family {
    name: "network",
    rules: rules![
        duplicate_addresses,
        network,
        network_names,
        ssh_firewall,
        wifi_secret,
        static_address,
        static_routes,
        interface_names,
        firewall_disabled,
    ],
};

/// Two hosts with the same address would receive each other's deploys.
fn duplicate_addresses(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let mut seen: BTreeMap<String, &HostName> = BTreeMap::new();
    let mut out = Vec::new();
    for (name, host) in &ctx.fleet.hosts {
        let addr = host
            .address
            .as_str()
            .trim_end_matches('.')
            .to_ascii_lowercase();
        let path = host_path(name).key("address");
        if let Some(first) = seen.get(&addr) {
            let first_path = host_path(first).key("address");
            out.push(
                ctx.at_value(
                    Code::DuplicateAddress,
                    path,
                    format!(
                        "hosts `{first}` and `{name}` have the same address {}",
                        host.address
                    ),
                )
                .help("give each host its own address; a deploy to one would reach the other")
                .related(
                    first_path.clone(),
                    ctx.value_span(&first_path),
                    "also used here",
                ),
            );
        } else {
            seen.insert(addr, name);
        }
    }
    out
}

/// Network settings that contradict each other or NixOS.
fn network(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (name, host) in &ctx.fleet.hosts {
        let net = &host.network;
        let base = host_path(name).key("network");
        match net.mode {
            AddressMode::Static => {
                for (field, missing) in [
                    ("address", net.address.is_none()),
                    ("gateway", net.gateway.is_none()),
                ] {
                    if missing {
                        out.push(
                            ctx.at_key(
                                Code::IncompleteStaticNetwork,
                                base.key("mode"),
                                format!("host `{name}` uses a static address but sets no `network.{field}`"),
                            )
                            .help(format!("add `{field} = …` to `[hosts.{name}.network]`, or use `mode = \"dhcp\"`")),
                        );
                    }
                }
            }
            AddressMode::Dhcp => {
                for (field, set) in [
                    ("address", net.address.is_some()),
                    ("gateway", net.gateway.is_some()),
                ] {
                    if set {
                        out.push(
                            ctx.at_key(
                                Code::StaticSettingsWithDhcp,
                                base.key(field),
                                format!(
                                    "host `{name}` uses DHCP, so `network.{field}` would be ignored"
                                ),
                            )
                            .help("set `mode = \"static\"`, or remove the setting"),
                        );
                    }
                }
            }
        }
    }
    out
}

/// With the firewall on and `open_firewall = false`, the SSH port must be opened another way.
fn ssh_firewall(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for view in &ctx.hosts {
        if view.ssh_port_open() {
            continue;
        }
        let (name, port) = (view.name, view.ssh.port);
        if view.deploy_via_tailnet() && view.tailscale.is_some() {
            out.push(
                ctx.at_ssh(
                    view,
                    SshField::OpenFirewall,
                    Code::SshPortClosed,
                    format!("host `{name}`: deploy connects over the tailnet ({}), SSH port {port} is closed in the firewall (`open_firewall = false`), and `tailscale0` is not trusted: deploy could not connect after this switch", view.deploy.address),
                )
                .help(format!("set `trust_interface = true` in `[hosts.{name}.tailscale]` (Tailscale's ACLs then guard SSH), or remove `open_firewall = false`")),
            );
            continue;
        }
        out.push(
            ctx.at_ssh(
                view,
                SshField::OpenFirewall,
                Code::SshPortClosed,
                format!("host `{name}`: the firewall is on and SSH port {port} is not open (`open_firewall = false`, and it is not in `firewall.allowed_tcp_ports`): deploy could not connect after this switch"),
            )
            .help(format!("remove `open_firewall = false`, or add {port} to `hosts.{name}.firewall.allowed_tcp_ports`")),
        );
    }
    out
}

/// Whether the host's only way onto the network is Wi-Fi: the configured interface is a wireless one, or it is a
/// Zero 2 W (no Ethernet) with no other interface named.
fn wifi_only(host: &Host) -> bool {
    match host.network.interface.as_deref() {
        Some(interface) => interface.starts_with("wl"),
        None => host.board == Board::Zero2w,
    }
}

/// A Wi-Fi-only host without its Wi-Fi secret never joins the network after the switch (or on first boot).
fn wifi_secret(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (name, host) in &ctx.fleet.hosts {
        if !wifi_only(host) {
            continue;
        }
        let why = if host.board == Board::Zero2w && host.network.interface.is_none() {
            "is a Zero 2 W, which has no Ethernet".to_owned()
        } else {
            format!(
                "reaches the network only through `{}`",
                host.network.interface.as_deref().unwrap_or("wlan0")
            )
        };
        match &host.wifi {
            None => out.push(
                Diagnostic::new(
                    Code::WifiSecretMissing,
                    host_path(name).key("wifi"),
                    format!("host `{name}` {why}, but sets no `wifi`: it would never join a network, and deploy could not reach it"),
                )
                .at(ctx.key_span(&host_path(name)))
                .help(format!("add `[hosts.{name}.wifi]` with `ssid` and `psk_secret` (then `pifleet secrets set <name>`); with a USB Ethernet adapter, set `network.interface` to it")),
            ),
            Some(wifi)
                if wifi.psk_secret.is_none()
                    && wifi.secrets_file.as_deref().is_none_or(|f| f.trim().is_empty()) =>
            {
                let path = host_path(name).key("wifi");
                out.push(
                    ctx.at_key(
                        Code::WifiSecretMissing,
                        path,
                        format!("host `{name}` {why}, but its Wi-Fi has no passphrase (neither `psk_secret` nor `secrets_file`): wpa_supplicant could not join, and deploy could not reach the host"),
                    )
                    .help(format!("set `psk_secret = \"{name}-wifi\"` and write it with `pifleet secrets set {name}-wifi`")),
                );
            }
            Some(_) => {}
        }
    }
    out
}

/// A static address that differs from the deploy address: after the switch the host answers on its new static
/// address while deploy (and its post-switch confirmation) keeps connecting to the old one.
///
/// pifleet cannot compare with the previously deployed configuration here (checks read only the inventory), so
/// the inventory itself must agree: `address` is where deploy connects, `network.address` is where the host will
/// be. The one legitimate difference, a NAT port forward (deploy to a public address that the router forwards to
/// a private static address), is not reported.
fn static_address(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (name, host) in &ctx.fleet.hosts {
        let net = &host.network;
        if net.mode != AddressMode::Static {
            continue;
        }
        let (Some(cidr), Ok(ip)) = (
            net.address,
            host.address.as_str().parse::<std::net::IpAddr>(),
        ) else {
            continue;
        };
        if cidr.address == ip || (is_private(cidr.address) && !is_private(ip)) {
            continue;
        }
        out.push(
            ctx.at_value(
                Code::AddressMismatch,
                host_path(name).key("address"),
                format!(
                    "host `{name}` is deployed to {ip}, but its static address is {}: after this switch the host moves to {} and deploy, still connecting to {ip}, cannot confirm or reach it again",
                    cidr.address, cidr.address
                ),
            )
            .help(format!("make `address` and `network.address` agree: to move the host, set `address = \"{}\"` too, so deploy never reports success on an address the host is leaving", cidr.address))
            .related(
                host_path(name).key("network").key("address"),
                ctx.value_span(&host_path(name).key("network").key("address")),
                "the host's new address",
            ),
        );
    }
    out
}

/// Private, loopback or link-local: an address only reachable inside the LAN.
fn is_private(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => v4.is_private() || v4.is_loopback() || v4.is_link_local(),
        std::net::IpAddr::V6(v6) => {
            v6.is_loopback()
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}

/// The firewall is off: every listening service is reachable from the network.
fn firewall_disabled(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (name, host) in &ctx.fleet.hosts {
        if !host.firewall.enable {
            out.push(
                ctx.at_value(
                    Code::FirewallDisabled,
                    host_path(name).key("firewall").key("enable"),
                    format!("host `{name}` runs without a firewall: every service listening on it is reachable from the network"),
                )
                .help("remove `enable = false` and open the ports you need in `firewall.allowed_tcp_ports` / `allowed_udp_ports` (SSH is opened for you)"),
            );
        }
    }
    out
}

/// A name for the wifi secrets file (wpa_supplicant `ext:NAME`): an identifier.
fn is_secret_name(s: &str) -> bool {
    s.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_interface(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 15
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Names NixOS and wpa_supplicant give a grammar: interfaces, SSIDs, the passphrase's name in the
/// secrets file, and that file's path. Caught here, they get a line number; caught by Nix, a stack trace.
fn network_names(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (name, host) in &ctx.fleet.hosts {
        let base = host_path(name);
        if let Some(interface) = &host.network.interface
            && !is_interface(interface)
        {
            out.push(
                ctx.at_value(
                    Code::InvalidInterface,
                    base.key("network").key("interface"),
                    format!("`{interface}` is not a network interface name"),
                )
                .help("use the name `ip link` shows, e.g. \"eth0\", \"end0\" or \"wlan0\" (at most 15 characters)"),
            );
        }
        for (i, interface) in host.firewall.trusted_interfaces.iter().enumerate() {
            if !is_interface(interface) {
                out.push(
                    ctx.at_value(
                        Code::InvalidInterface,
                        base.key("firewall").key("trusted_interfaces").index(i),
                        format!("`{interface}` is not a network interface name"),
                    )
                    .help("use the name `ip link` shows, e.g. \"wg0\" or \"tailscale0\" (at most 15 characters)"),
                );
            }
        }
        let Some(wifi) = &host.wifi else {
            continue;
        };
        let wifi_path = base.key("wifi");
        if wifi.ssid.is_empty() || wifi.ssid.len() > 32 {
            out.push(
                ctx.at_value(
                    Code::InvalidSsid,
                    wifi_path.key("ssid"),
                    format!(
                        "an SSID has 1 to 32 bytes; `{}` has {}",
                        wifi.ssid,
                        wifi.ssid.len()
                    ),
                )
                .help("write the network name exactly as it is broadcast"),
            );
        }
        if !is_secret_name(&wifi.psk_name) {
            out.push(
                ctx.at_value(
                    Code::InvalidPskName,
                    wifi_path.key("psk_name"),
                    format!("`{}` cannot be a name in the secrets file", wifi.psk_name),
                )
                .help("use letters, digits and '_', e.g. \"psk\" or \"HOME_WIFI\""),
            );
        }
        if let Some(file) = &wifi.secrets_file
            && !file.trim().is_empty()
            && !file.starts_with('/')
        {
            out.push(
                ctx.at_value(
                    Code::InvalidSecretsFile,
                    wifi_path.key("secrets_file"),
                    format!("`{file}` is not an absolute path on the host"),
                )
                .help("use an absolute path such as \"/var/lib/secrets/wifi\", or `psk_secret`"),
            );
        }
        if wifi.psk_secret.is_some() && wifi.secrets_file.is_some() {
            out.push(
                ctx.at_key(
                    Code::WifiSecretConflict,
                    wifi_path.key("secrets_file"),
                    format!("host `{name}` gives its Wi-Fi passphrase twice, as `psk_secret` and as `secrets_file`"),
                )
                .help("keep `psk_secret` (encrypted in the repository, on the card from the first boot) or `secrets_file` (placed on the host by you)"),
            );
        }
    }
    out
}

/// A static network whose gateway the host cannot reach leaves it without a route after the
/// switch: the gateway must lie inside the host's subnet, not be the host itself, and a /32 (or
/// /128) has no neighbours at all.
fn static_routes(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (name, host) in &ctx.fleet.hosts {
        let net = &host.network;
        let (AddressMode::Static, Some(cidr), Some(gateway)) = (net.mode, net.address, net.gateway)
        else {
            continue;
        };
        let gateway = gateway.0;
        let why = if gateway == cidr.address {
            Some(format!("the gateway {gateway} is the host's own address"))
        } else if gateway.is_ipv4() != cidr.address.is_ipv4() {
            // A v6 gateway next to a v4 address (or the reverse) is routed by its own family.
            None
        } else if cidr.prefix == if cidr.address.is_ipv4() { 32 } else { 128 } {
            Some(format!(
                "a /{} has no neighbours, so no gateway is reachable",
                cidr.prefix
            ))
        } else if !same_subnet(cidr.address, gateway, cidr.prefix) {
            Some(format!(
                "the gateway {gateway} is outside {}/{}",
                cidr.address, cidr.prefix
            ))
        } else {
            None
        };
        if let Some(why) = why {
            let path = host_path(name).key("network").key("gateway");
            out.push(
                ctx.at_value(
                    Code::UnroutableStaticNetwork,
                    path,
                    format!("host `{name}` could not route after this switch: {why}; deploy could not reach it again"),
                )
                .help("put the gateway inside the host's subnet (not on its own address), or correct the prefix length")
                .related(
                    host_path(name).key("network").key("address"),
                    ctx.value_span(&host_path(name).key("network").key("address")),
                    "the host's address",
                ),
            );
        }
    }
    out
}

/// Whether `a` and `b` share their first `prefix` bits.
fn same_subnet(a: std::net::IpAddr, b: std::net::IpAddr, prefix: u8) -> bool {
    let bits = |ip: std::net::IpAddr| -> (u128, u32) {
        match ip {
            std::net::IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
            std::net::IpAddr::V6(v6) => (u128::from(v6), 128),
        }
    };
    let ((a, width), (b, _)) = (bits(a), bits(b));
    let shift = width.saturating_sub(u32::from(prefix));
    shift >= width || (a >> shift) == (b >> shift)
}

/// An interface name other than the board's own is probably a typo (or the kernel's old name):
/// the static address would go nowhere. Only for boards whose name is known: a Pi 3's USB Ethernet
/// is named after its MAC, and generic or x86_64 machines vary.
fn interface_names(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (name, host) in &ctx.fleet.hosts {
        // A name that is no interface name at all is `invalid_interface`.
        let Some(interface) = host
            .network
            .interface
            .as_deref()
            .filter(|i| is_interface(i))
        else {
            continue;
        };
        let Some(expected) = known_interfaces(host.board) else {
            continue;
        };
        if expected.contains(&interface) {
            continue;
        }
        out.push(
            ctx.at_value(
                Code::UnusualInterface,
                host_path(name).key("network").key("interface"),
                format!(
                    "host `{name}` is a {} whose interface is {}, not `{interface}`: a static address on a missing interface leaves the host unreachable",
                    host.board.as_str(),
                    expected.iter().map(|i| format!("`{i}`")).collect::<Vec<_>>().join(" or ")
                ),
            )
            .help(format!(
                "use `{}` (check with `ip link` on the host), or `allow` this code if `{interface}` is a USB adapter",
                expected[0]
            )),
        );
    }
    out
}

/// The interfaces a board has on the mainline kernel, when they are known.
fn known_interfaces(board: Board) -> Option<&'static [&'static str]> {
    match board {
        Board::Rpi4 => Some(&["end0", "wlan0"]),
        Board::Zero2w => Some(&["wlan0"]),
        _ => None,
    }
}
