//! Ports, published port mappings, addresses with prefixes and plain IP addresses.

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

use super::{NameError, StringKind, err};
use crate::ProblemCode;

/// A transport protocol of a published port or firewall rule.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        })
    }
}

/// A published container port: `[host-ip:]host-port:container-port[/tcp|/udp]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PortMapping {
    /// The host address to bind, all addresses when `None`.
    pub host_ip: Option<IpAddr>,
    /// The port on the host, 1-65535.
    pub host_port: u16,
    /// The port inside the container, 1-65535.
    pub container_port: u16,
    /// TCP unless `/udp` was written.
    pub protocol: Protocol,
}

impl fmt::Display for PortMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.host_ip {
            Some(IpAddr::V6(ip)) => write!(f, "[{ip}]:")?,
            Some(ip) => write!(f, "{ip}:")?,
            None => {}
        }
        write!(f, "{}:{}", self.host_port, self.container_port)?;
        if self.protocol == Protocol::Udp {
            f.write_str("/udp")?;
        }
        Ok(())
    }
}

fn parse_port(s: &str, whole: &str, which: &str) -> Result<u16, NameError> {
    let code = ProblemCode::InvalidPort;
    match s.parse::<u32>() {
        Ok(p) if (1..=65535).contains(&p) => Ok(p as u16),
        Ok(p) => Err(err(
            code,
            format!("port mapping `{whole}`: the {which} port {p} is outside 1-65535"),
        )),
        Err(_) => Err(err(
            code,
            format!(
                "port mapping `{whole}`: the {which} port `{s}` is not a number; write \"8080:80\", \"127.0.0.1:8080:80\" or \"53:53/udp\""
            ),
        )),
    }
}

impl FromStr for PortMapping {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, NameError> {
        let code = ProblemCode::InvalidPort;
        let (body, protocol) = match s.rsplit_once('/') {
            Some((body, "tcp")) => (body, Protocol::Tcp),
            Some((body, "udp")) => (body, Protocol::Udp),
            Some((_, other)) => {
                return Err(err(
                    code,
                    format!("port mapping `{s}`: unknown protocol `{other}`, use /tcp or /udp"),
                ));
            }
            None => (s, Protocol::Tcp),
        };
        let (host_ip, ports) = if let Some(rest) = body.strip_prefix('[') {
            let Some((ip, ports)) = rest.split_once("]:") else {
                return Err(err(
                    code,
                    format!("port mapping `{s}`: write an IPv6 host address as [::1]:8080:80"),
                ));
            };
            let ip = ip.parse::<IpAddr>().map_err(|_| {
                err(
                    code,
                    format!("port mapping `{s}`: `{ip}` is not an IP address"),
                )
            })?;
            (Some(ip), ports)
        } else {
            match body.matches(':').count() {
                1 => (None, body),
                2 => {
                    let (ip, ports) = body.split_once(':').unwrap_or((body, ""));
                    let ip = ip.parse::<IpAddr>().map_err(|_| {
                        err(
                            code,
                            format!("port mapping `{s}`: `{ip}` is not an IP address"),
                        )
                    })?;
                    (Some(ip), ports)
                }
                0 => {
                    return Err(err(
                        code,
                        format!(
                            "port mapping `{s}` has no host port: write \"HOST:CONTAINER\", e.g. \"{body}:{body}\""
                        ),
                    ));
                }
                _ => {
                    return Err(err(
                        code,
                        format!(
                            "port mapping `{s}` has too many ':'; write \"8080:80\" or \"127.0.0.1:8080:80\""
                        ),
                    ));
                }
            }
        };
        let Some((host, container)) = ports.split_once(':') else {
            return Err(err(
                code,
                format!("port mapping `{s}`: write \"HOST:CONTAINER\""),
            ));
        };
        Ok(Self {
            host_ip,
            host_port: parse_port(host, s, "host")?,
            container_port: parse_port(container, s, "container")?,
            protocol,
        })
    }
}

/// Schema pattern: `[IP:]HOST:CONTAINER[/tcp|/udp]` with ports 1-65535 as the parser reads them
/// (leading zeros and `+` included).
const PORT_MAPPING_PATTERN: &str = concat!(
    r"^((\[[0-9A-Fa-f:.]+\]|[0-9.]+):)?",
    r"[+]?0*([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])",
    ":",
    r"[+]?0*([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])",
    r"(/tcp|/udp)?$"
);

parsed_string_schema!(
    PortMapping,
    ProblemCode::InvalidPort,
    "pifleet-port-mapping",
    Some(PORT_MAPPING_PATTERN),
    "Published port: \"HOST:CONTAINER\", optionally with a host address and protocol: \"127.0.0.1:8080:80\", \"53:53/udp\". Ports are 1-65535."
);

/// An address with its prefix length (`192.168.1.41/24`), as for a static network configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Cidr {
    /// The address.
    pub address: IpAddr,
    /// The prefix length: 0-32 for IPv4, 0-128 for IPv6.
    pub prefix: u8,
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
    }
}

impl FromStr for Cidr {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, NameError> {
        let code = ProblemCode::InvalidCidr;
        let Some((addr, prefix)) = s.split_once('/') else {
            return Err(err(
                code,
                format!(
                    "`{s}` has no prefix length: write the address in CIDR form, e.g. \"{s}/24\""
                ),
            ));
        };
        let address = addr
            .parse::<IpAddr>()
            .map_err(|_| err(code, format!("`{s}`: `{addr}` is not an IP address")))?;
        let max = if address.is_ipv4() { 32 } else { 128 };
        let prefix = prefix
            .parse::<u8>()
            .ok()
            .filter(|p| *p <= max)
            .ok_or_else(|| {
                err(
                    code,
                    format!("`{s}`: the prefix length must be a number from 0 to {max}"),
                )
            })?;
        Ok(Self { address, prefix })
    }
}

/// What an editor accepts as a CIDR: a superset of what [`Cidr`] parses (and so of [`Route`]'s).
///
/// [`Route`]: super::Route
pub(super) const CIDR_PATTERN: &str = concat!(
    r"^([0-9.]+/[+]?0*(3[0-2]|[12]?[0-9])",
    r"|[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*/[+]?0*(12[0-8]|1[01][0-9]|[1-9]?[0-9]))$"
);

parsed_string_schema!(
    Cidr,
    ProblemCode::InvalidCidr,
    "pifleet-cidr",
    Some(CIDR_PATTERN),
    "Address with prefix length (CIDR), e.g. \"192.168.1.41/24\"."
);

/// An IP address without prefix (gateway, DNS server).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Ip(pub IpAddr);

impl fmt::Display for Ip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for Ip {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, NameError> {
        s.parse::<IpAddr>().map(Ip).map_err(|_| {
            err(
                ProblemCode::InvalidIp,
                format!("`{s}` is not an IPv4 or IPv6 address"),
            )
        })
    }
}

parsed_string_schema!(
    Ip,
    ProblemCode::InvalidIp,
    "pifleet-ip",
    Some("^[0-9A-Fa-f:.]+$"),
    "IPv4 or IPv6 address, e.g. \"192.168.1.1\"."
);

/// An IP address or a network in CIDR form, as fail2ban's `ignoreip` takes them: `10.0.0.5`,
/// `192.168.1.0/24`, `fd00::/8`. Host bits may be set (`127.0.0.1/8`, fail2ban's own default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum IpOrCidr {
    /// One address.
    Ip(IpAddr),
    /// A network.
    Cidr(Cidr),
}

impl IpOrCidr {
    /// The address, or the network's address as written.
    pub fn address(&self) -> IpAddr {
        match self {
            IpOrCidr::Ip(ip) => *ip,
            IpOrCidr::Cidr(cidr) => cidr.address,
        }
    }

    /// Whether this is a prefix of length 0 (`0.0.0.0/0`, `::/0`): every address of its family.
    pub fn covers_everything(&self) -> bool {
        matches!(self, IpOrCidr::Cidr(c) if c.prefix == 0)
    }
}

impl fmt::Display for IpOrCidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IpOrCidr::Ip(ip) => ip.fmt(f),
            IpOrCidr::Cidr(cidr) => cidr.fmt(f),
        }
    }
}

impl FromStr for IpOrCidr {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, NameError> {
        let code = ProblemCode::InvalidIp;
        if s.contains('/') {
            return s
                .parse::<Cidr>()
                .map(IpOrCidr::Cidr)
                .map_err(|e| err(code, e.message));
        }
        s.parse::<IpAddr>().map(IpOrCidr::Ip).map_err(|_| {
            err(
                code,
                format!(
                    "`{s}` is not an IP address or a network in CIDR form, e.g. \"192.168.1.10\" or \"192.168.1.0/24\" (no DNS names, no ports)"
                ),
            )
        })
    }
}

parsed_string_schema!(
    IpOrCidr,
    ProblemCode::InvalidIp,
    "pifleet-ip-or-cidr",
    Some(r"^[0-9A-Fa-f:.]+(/[+]?[0-9]+)?$"),
    "IPv4 or IPv6 address, or a network in CIDR form, e.g. \"10.0.0.5\" or \"192.168.1.0/24\"."
);

/// A TCP or UDP port number, 1-65535.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u16")]
pub struct Port(u16);

impl Port {
    /// 22, the SSH port.
    pub const SSH: Port = Port(22);
    /// 9100, the Prometheus node exporter's port.
    pub const NODE_EXPORTER: Port = Port(9100);

    /// Wraps a port number; 0 is not a port you can listen on.
    pub fn new(port: u16) -> Option<Self> {
        (port != 0).then_some(Self(port))
    }

    /// The number.
    pub fn get(self) -> u16 {
        self.0
    }
}

impl TryFrom<u32> for Port {
    type Error = NameError;
    fn try_from(value: u32) -> Result<Self, NameError> {
        u16::try_from(value)
            .ok()
            .and_then(Port::new)
            .ok_or_else(|| {
                err(
                    ProblemCode::OutOfRange,
                    format!("port {value} is outside 1-65535"),
                )
            })
    }
}

impl From<Port> for u16 {
    fn from(value: Port) -> u16 {
        value.0
    }
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl JsonSchema for Port {
    fn schema_name() -> Cow<'static, str> {
        "Port".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "integer", "minimum": 1, "maximum": 65535, "description": "TCP or UDP port number, 1-65535." })
    }
}
