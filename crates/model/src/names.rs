//! Checked newtypes for every string in the inventory that has a grammar: names, keys, images, ports, addresses.
//!
//! They are validated twice on purpose, by the same Rust code: the schema carries a `pattern` or a custom
//! `format` that the loader's jsonschema validator checks (so every error has a path and a span), and the serde
//! `try_from` conversion runs the same parser (so a value built in Rust can never hold an invalid name).
//! The renderer can rely on these invariants: a `HostName` is a valid `networking.hostName`, a `UserName` a valid
//! Linux user name, and so on.

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

/// Why a string is not a valid value of one of the newtypes in this module.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct NameError {
    /// Stable diagnostic code, such as `invalid_host_name`.
    pub code: &'static str,
    /// What is wrong and how to fix it, in one sentence or two.
    pub message: String,
}

fn err(code: &'static str, message: impl Into<String>) -> NameError {
    NameError {
        code,
        message: message.into(),
    }
}

/// Describes one checked string type to the loader: how the schema refers to it and how to validate it.
#[derive(Debug, Clone, Copy)]
pub struct StringKind {
    /// The diagnostic code used when a value does not parse.
    pub code: &'static str,
    /// The schema `pattern`, if the grammar fits a regular expression.
    pub pattern: Option<&'static str>,
    /// The schema `format`, checked by the loader with `validate`.
    pub format: Option<&'static str>,
    /// The parser, returning the same error the serde conversion returns.
    pub validate: fn(&str) -> Result<(), NameError>,
}

/// Defines a string newtype with serde/schemars glue; `$check` returns `Result<(), NameError>`.
macro_rules! string_newtype {
    (
        $(#[$meta:meta])*
        $name:ident, kind = $kind:expr, pattern = $pattern:expr, format = $format:expr,
        description = $description:expr, check = $check:expr
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// How the loader validates this type.
            pub const KIND: StringKind = StringKind {
                code: $kind,
                pattern: $pattern,
                format: $format,
                validate: |s| ($check)(s),
            };

            /// Checks `value` and wraps it.
            pub fn new(value: impl Into<String>) -> Result<Self, NameError> {
                let value = value.into();
                ($check)(value.as_str())?;
                Ok(Self(value))
            }

            /// The name as written in the inventory.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = NameError;
            fn try_from(value: String) -> Result<Self, NameError> {
                Self::new(value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl FromStr for $name {
            type Err = NameError;
            fn from_str(s: &str) -> Result<Self, NameError> {
                Self::new(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                let mut schema = json_schema!({ "type": "string", "description": $description });
                if let Some(pattern) = $pattern {
                    schema.insert("pattern".into(), pattern.into());
                }
                if let Some(format) = $format {
                    schema.insert("format".into(), format.into());
                }
                schema
            }
        }
    };
}

const NO_PATTERN: Option<&str> = None;
const NO_FORMAT: Option<&str> = None;

/// RFC 1123 label, lower case: what `networking.hostName` accepts.
const LABEL_PATTERN: &str = "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$";
const USER_PATTERN: &str = "^[a-z_][a-z0-9_-]{0,31}$";
const CONTAINER_PATTERN: &str = "^[a-z0-9][a-z0-9_-]{0,62}$";
/// The same language as container names, written differently: the loader finds a type by its pattern.
const TAG_PATTERN: &str = "^[a-z0-9][-a-z0-9_]{0,62}$";

fn check_label(s: &str, code: &'static str, what: &str) -> Result<(), NameError> {
    let fix = "use 1 to 63 lower-case letters, digits and '-', starting and ending with a letter or digit";
    if s.is_empty() {
        return Err(err(code, format!("{what} is empty: {fix}")));
    }
    if s.len() > 63 {
        return Err(err(
            code,
            format!("{what} `{s}` is longer than 63 characters: {fix}"),
        ));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        let hint = if c == '.' {
            " (a host name is a single DNS label; put the domain elsewhere)"
        } else if c.is_ascii_uppercase() {
            " (upper case is not allowed)"
        } else {
            ""
        };
        return Err(err(
            code,
            format!("{what} `{s}` contains {c:?}{hint}: {fix}"),
        ));
    }
    if s.starts_with('-') || s.ends_with('-') {
        return Err(err(
            code,
            format!("{what} `{s}` starts or ends with '-': {fix}"),
        ));
    }
    Ok(())
}

fn check_host_name(s: &str) -> Result<(), NameError> {
    check_label(s, "invalid_host_name", "host name")
}

fn check_user_name(s: &str) -> Result<(), NameError> {
    let code = "invalid_user_name";
    let fix = "use up to 32 lower-case letters, digits, '_' and '-', starting with a letter or '_'";
    let mut chars = s.chars();
    match chars.next() {
        None => return Err(err(code, format!("user name is empty: {fix}"))),
        Some(c) if !(c.is_ascii_lowercase() || c == '_') => {
            return Err(err(
                code,
                format!("user name `{s}` starts with {c:?}: {fix}"),
            ));
        }
        Some(_) => {}
    }
    if let Some(c) =
        chars.find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-'))
    {
        return Err(err(code, format!("user name `{s}` contains {c:?}: {fix}")));
    }
    if s.len() > 32 {
        return Err(err(
            code,
            format!("user name `{s}` is longer than 32 characters: {fix}"),
        ));
    }
    Ok(())
}

fn check_short_name(s: &str, code: &'static str, what: &str) -> Result<(), NameError> {
    let fix =
        "use 1 to 63 lower-case letters, digits, '_' and '-', starting with a letter or digit";
    let mut chars = s.chars();
    match chars.next() {
        None => return Err(err(code, format!("{what} is empty: {fix}"))),
        Some(c) if !(c.is_ascii_lowercase() || c.is_ascii_digit()) => {
            return Err(err(code, format!("{what} `{s}` starts with {c:?}: {fix}")));
        }
        Some(_) => {}
    }
    if let Some(c) =
        chars.find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-'))
    {
        return Err(err(code, format!("{what} `{s}` contains {c:?}: {fix}")));
    }
    if s.len() > 63 {
        return Err(err(
            code,
            format!("{what} `{s}` is longer than 63 characters: {fix}"),
        ));
    }
    Ok(())
}

string_newtype! {
    /// A host name: an RFC 1123 label in lower case (`rpi-box-01`), used as `networking.hostName`, the flake
    /// attribute and the directory under `hosts/`.
    HostName, kind = "invalid_host_name", pattern = Some(LABEL_PATTERN), format = NO_FORMAT,
    description = "Host name: one lower-case DNS label (RFC 1123), 1-63 characters of a-z, 0-9 and '-'.",
    check = check_host_name
}

string_newtype! {
    /// A Linux user name (`pi`, `deploy`): lower case, at most 32 characters.
    UserName, kind = "invalid_user_name", pattern = Some(USER_PATTERN), format = NO_FORMAT,
    description = "Linux user name: up to 32 characters of a-z, 0-9, '_' and '-', starting with a letter or '_'.",
    check = check_user_name
}

impl UserName {
    /// The `root` user (also the default deploy user).
    pub fn root() -> Self {
        Self("root".to_owned())
    }

    /// Whether this is `root`.
    pub fn is_root(&self) -> bool {
        self.0 == "root"
    }
}

string_newtype! {
    /// A container name: becomes the Docker container name and the systemd unit `docker-<name>.service`.
    ContainerName, kind = "invalid_container_name", pattern = Some(CONTAINER_PATTERN), format = NO_FORMAT,
    description = "Container name: 1-63 characters of a-z, 0-9, '_' and '-', starting with a letter or digit.",
    check = |s| check_short_name(s, "invalid_container_name", "container name")
}

string_newtype! {
    /// A host tag (`edge`, `living-room`), used to select hosts for deploys and container placement.
    Tag, kind = "invalid_tag", pattern = Some(TAG_PATTERN), format = NO_FORMAT,
    description = "Tag: 1-63 characters of a-z, 0-9, '_' and '-', starting with a letter or digit.",
    check = |s| check_short_name(s, "invalid_tag", "tag")
}

string_newtype! {
    /// Where deploy connects: an IPv4/IPv6 address or a DNS name.
    Address, kind = "invalid_address", pattern = NO_PATTERN, format = Some("pifleet-address"),
    description = "IPv4 or IPv6 address, or DNS name, that the workstation connects to over SSH.",
    check = check_address
}

string_newtype! {
    /// A NixOS release used as `system.stateVersion`, such as `26.05`.
    StateVersion, kind = "invalid_state_version", pattern = Some("^[0-9]{2}\\.(05|11)$"), format = NO_FORMAT,
    description = "NixOS release whose defaults this system keeps (system.stateVersion), e.g. \"26.05\". Set it once at install time and do not change it on upgrades.",
    check = check_state_version
}

string_newtype! {
    /// A Docker volume: `host-path-or-volume:/container/path[:options]`.
    Volume, kind = "invalid_volume", pattern = NO_PATTERN, format = Some("pifleet-volume"),
    description = "Volume: \"/host/path:/container/path\" or \"name:/container/path\", optionally followed by \":ro\" or other options.",
    check = check_volume
}

fn check_state_version(s: &str) -> Result<(), NameError> {
    let ok = s.len() == 5
        && s.as_bytes()[..2].iter().all(u8::is_ascii_digit)
        && (s.ends_with(".05") || s.ends_with(".11"));
    if ok {
        Ok(())
    } else {
        Err(err(
            "invalid_state_version",
            format!("`{s}` is not a NixOS release: write it as YY.05 or YY.11, e.g. \"26.05\""),
        ))
    }
}

fn check_address(s: &str) -> Result<(), NameError> {
    if s.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    let code = "invalid_address";
    if s.contains('/') {
        return Err(err(
            code,
            format!(
                "`{s}` is a network, not an address: write the bare address deploy connects to, e.g. \"192.168.1.41\""
            ),
        ));
    }
    if s.contains(':') {
        return Err(err(
            code,
            format!(
                "`{s}` is not an IP address or DNS name (set an SSH port with `deploy.port`, not in the address)"
            ),
        ));
    }
    let looks_numeric = s.chars().all(|c| c.is_ascii_digit() || c == '.');
    if looks_numeric {
        return Err(err(
            code,
            format!("`{s}` is not a valid IPv4 address: four numbers 0-255 separated by dots"),
        ));
    }
    if s.is_empty() || s.len() > 253 {
        return Err(err(code, format!("`{s}` is not an IP address or DNS name")));
    }
    for label in s.strip_suffix('.').unwrap_or(s).split('.') {
        let lower = label.to_ascii_lowercase();
        if check_label(&lower, code, "DNS label").is_err() {
            return Err(err(
                code,
                format!("`{s}` is not an IP address or DNS name: the label `{label}` is not valid"),
            ));
        }
    }
    Ok(())
}

fn check_volume(s: &str) -> Result<(), NameError> {
    let code = "invalid_volume";
    let fix = "write \"/host/path:/container/path\" or \"volume-name:/container/path\", optionally with \":ro\"";
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() < 2 || parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
        return Err(err(
            code,
            format!("volume `{s}` is not of the form source:target: {fix}"),
        ));
    }
    if !parts[1].starts_with('/') {
        return Err(err(
            code,
            format!(
                "volume `{s}`: the container path `{}` must be absolute: {fix}",
                parts[1]
            ),
        ));
    }
    let source = parts[0];
    if !source.starts_with('/')
        && !source
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
    {
        return Err(err(
            code,
            format!(
                "volume `{s}`: the source `{source}` is neither an absolute path nor a volume name: {fix}"
            ),
        ));
    }
    Ok(())
}

/// Defines a parsed newtype whose serde form is a string and whose parsed parts are public.
macro_rules! parsed_string_schema {
    ($name:ident, $code:expr, $format:expr, $description:expr) => {
        impl $name {
            /// How the loader validates this type.
            pub const KIND: StringKind = StringKind {
                code: $code,
                pattern: None,
                format: Some($format),
                validate: |s| s.parse::<$name>().map(|_| ()),
            };
        }

        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({ "type": "string", "format": $format, "description": $description })
            }
        }

        impl TryFrom<String> for $name {
            type Error = NameError;
            fn try_from(value: String) -> Result<Self, NameError> {
                value.parse()
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.to_string()
            }
        }
    };
}

/// An OpenSSH public key line (`ssh-ed25519 AAAA… eduardo@hhlab`), parsed by the `ssh-key` crate.
///
/// The original text is kept verbatim so the generated `authorized_keys` entry is exactly what the user wrote.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SshPublicKey {
    text: String,
    key: ssh_key::PublicKey,
}

impl SshPublicKey {
    /// The key as written, trimmed of surrounding white space.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The comment after the key material (often `user@machine`), empty when there is none.
    pub fn comment(&self) -> &str {
        self.key.comment()
    }

    /// The algorithm name, such as `ssh-ed25519`.
    pub fn algorithm(&self) -> String {
        self.key.algorithm().as_str().to_owned()
    }

    /// The parsed key.
    pub fn key(&self) -> &ssh_key::PublicKey {
        &self.key
    }

    /// The SHA-256 fingerprint as OpenSSH prints it (`SHA256:…`).
    pub fn fingerprint(&self) -> String {
        self.key.fingerprint(ssh_key::HashAlg::Sha256).to_string()
    }

    /// Whether two entries hold the same key material, whatever their comments.
    pub fn same_key(&self, other: &SshPublicKey) -> bool {
        self.key.key_data() == other.key.key_data()
    }
}

impl PartialEq for SshPublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for SshPublicKey {}

impl fmt::Display for SshPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for SshPublicKey {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, NameError> {
        let code = "invalid_ssh_key";
        let text = s.trim();
        let fix = "paste one line of a `.pub` file, e.g. the output of `cat ~/.ssh/id_ed25519.pub`";
        if text.contains("PRIVATE KEY") {
            return Err(err(
                code,
                "this is a PRIVATE key: remove it from the inventory now, treat it as leaked, and paste the matching `.pub` line instead",
            ));
        }
        if text.is_empty() {
            return Err(err(code, format!("the SSH key is empty: {fix}")));
        }
        if text.contains('\n') {
            return Err(err(code, format!("an SSH key must be one line: {fix}")));
        }
        match ssh_key::PublicKey::from_openssh(text) {
            Ok(key) => Ok(Self {
                text: text.to_owned(),
                key,
            }),
            Err(e) => {
                let shown: String = text.chars().take(40).collect();
                let ellipsis = if text.chars().count() > 40 { "…" } else { "" };
                Err(err(
                    code,
                    format!("`{shown}{ellipsis}` is not a valid OpenSSH public key ({e}): {fix}"),
                ))
            }
        }
    }
}

parsed_string_schema!(
    SshPublicKey,
    "invalid_ssh_key",
    "pifleet-ssh-public-key",
    "OpenSSH public key, one line as in a .pub file: \"ssh-ed25519 AAAA… user@machine\"."
);

/// A container image reference, parsed: `[registry/]repository[:tag][@digest]`, with a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ImageRef {
    /// The registry host (`ghcr.io`, `localhost:5000`), `None` for Docker Hub.
    pub registry: Option<String>,
    /// The repository path (`home-assistant/home-assistant`, `eclipse-mosquitto`).
    pub repository: String,
    /// The tag (`2026.11.1`), if any.
    pub tag: Option<String>,
    /// The digest (`sha256:…`), if any.
    pub digest: Option<String>,
}

impl ImageRef {
    /// Whether the image can change under the same reference: a moving tag (`latest`, `stable`, `edge`, `main`)
    /// and no digest pinning it.
    pub fn is_floating(&self) -> bool {
        self.digest.is_none()
            && matches!(
                self.tag.as_deref(),
                Some("latest" | "stable" | "edge" | "main")
            )
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(registry) = &self.registry {
            write!(f, "{registry}/")?;
        }
        f.write_str(&self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl FromStr for ImageRef {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, NameError> {
        let code = "invalid_image";
        let bad = |why: String| err(code, format!("image `{s}`: {why}"));
        if s.is_empty() {
            return Err(err(
                code,
                "the image is empty: write e.g. \"ghcr.io/owner/name:1.2.3\"",
            ));
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("contains white space".into()));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((rest, digest)) => {
                let Some((alg, hex)) = digest.split_once(':') else {
                    return Err(bad(format!(
                        "the digest `{digest}` must look like sha256:<64 hex digits>"
                    )));
                };
                let want = match alg {
                    "sha256" => 64,
                    "sha512" => 128,
                    _ => return Err(bad(format!("unknown digest algorithm `{alg}`: use sha256"))),
                };
                if hex.len() != want
                    || !hex
                        .chars()
                        .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
                {
                    return Err(bad(format!(
                        "the digest must be {alg}: followed by {want} lower-case hex digits"
                    )));
                }
                (rest, Some(digest.to_owned()))
            }
            None => (s, None),
        };
        let (name, tag) = match rest.rfind(':') {
            Some(i) if !rest[i..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
            _ => (rest, None),
        };
        if let Some(tag) = tag {
            let valid = !tag.is_empty()
                && tag.len() <= 128
                && tag
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
                && !tag.starts_with(['.', '-']);
            if !valid {
                return Err(bad(format!(
                    "the tag `{tag}` is not valid: up to 128 letters, digits, '_', '.' and '-'"
                )));
            }
        }
        let mut components: Vec<&str> = name.split('/').collect();
        let registry = match components.first() {
            Some(first)
                if components.len() > 1
                    && (first.contains(['.', ':']) || *first == "localhost") =>
            {
                let host = *first;
                if !host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'))
                {
                    return Err(bad(format!("the registry `{host}` is not a host name")));
                }
                components.remove(0);
                Some(host.to_owned())
            }
            _ => None,
        };
        for component in &components {
            let valid = !component.is_empty()
                && component.chars().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
                })
                && component.starts_with(|c: char| c.is_ascii_alphanumeric())
                && component.ends_with(|c: char| c.is_ascii_alphanumeric());
            if !valid {
                return Err(bad(format!(
                    "the repository part `{component}` is not valid: use lower-case letters, digits and '.', '_', '-' between them"
                )));
            }
        }
        if tag.is_none() && digest.is_none() {
            return Err(bad(
                "has no tag or digest: pin it, e.g. `name:1.2.3` or `name@sha256:…`, so every deploy runs the same image"
                    .into(),
            ));
        }
        Ok(Self {
            registry,
            repository: components.join("/"),
            tag: tag.map(str::to_owned),
            digest,
        })
    }
}

parsed_string_schema!(
    ImageRef,
    "invalid_image",
    "pifleet-image",
    "Container image with a tag or digest: \"ghcr.io/owner/name:1.2.3\", \"eclipse-mosquitto:2.0.20\" or \"name@sha256:…\"."
);

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
    let code = "invalid_port";
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
        let code = "invalid_port";
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

parsed_string_schema!(
    PortMapping,
    "invalid_port",
    "pifleet-port-mapping",
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
        let code = "invalid_cidr";
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

parsed_string_schema!(
    Cidr,
    "invalid_cidr",
    "pifleet-cidr",
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
                "invalid_ip",
                format!("`{s}` is not an IPv4 or IPv6 address"),
            )
        })
    }
}

parsed_string_schema!(
    Ip,
    "invalid_ip",
    "pifleet-ip",
    "IPv4 or IPv6 address, e.g. \"192.168.1.1\"."
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
            .ok_or_else(|| err("out_of_range", format!("port {value} is outside 1-65535")))
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

/// Every checked string type, for the loader: it maps schema `pattern`/`format` failures back to a code and
/// to the parser's own message.
///
/// Patterns and formats are unique across the list (a test checks), so an error names its type.
pub const STRING_KINDS: &[StringKind] = &[
    HostName::KIND,
    UserName::KIND,
    ContainerName::KIND,
    Tag::KIND,
    Address::KIND,
    StateVersion::KIND,
    Volume::KIND,
    SshPublicKey::KIND,
    ImageRef::KIND,
    PortMapping::KIND,
    Cidr::KIND,
    Ip::KIND,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names() {
        assert!(HostName::new("rpi-box-01").is_ok());
        assert!(HostName::new("a").is_ok());
        for bad in ["", "-a", "a-", "Rpi", "rpi.lan", "a_b", &"a".repeat(64)] {
            let e = HostName::new(bad).unwrap_err();
            assert_eq!(e.code, "invalid_host_name", "{bad}");
        }
    }

    #[test]
    fn patterns_agree_with_parsers() {
        // The schema pattern and the Rust check must accept the same names; spot-check the edges.
        let cases = [
            "a",
            "a-b",
            "-a",
            "a-",
            "A",
            "_a",
            "a_b",
            "0",
            "a.b",
            "ab-",
            &"a".repeat(63),
            &"a".repeat(64),
        ];
        for kind in [
            HostName::KIND,
            UserName::KIND,
            ContainerName::KIND,
            Tag::KIND,
        ] {
            let pattern = kind.pattern.unwrap();
            for case in cases {
                let by_regex = simple_regex_match(pattern, case);
                let by_rust = (kind.validate)(case).is_ok();
                assert_eq!(by_regex, by_rust, "{pattern} vs {} on {case:?}", kind.code);
            }
        }
    }

    /// Runs the pattern through jsonschema itself, the engine that enforces it.
    fn simple_regex_match(pattern: &str, s: &str) -> bool {
        let schema = serde_json::json!({ "type": "string", "pattern": pattern });
        jsonschema::is_valid(&schema, &serde_json::json!(s))
    }

    #[test]
    fn kinds_are_distinguishable() {
        for (i, a) in STRING_KINDS.iter().enumerate() {
            for b in &STRING_KINDS[i + 1..] {
                assert!(
                    a.pattern.is_none() || a.pattern != b.pattern,
                    "{} and {}",
                    a.code,
                    b.code
                );
                assert!(
                    a.format.is_none() || a.format != b.format,
                    "{} and {}",
                    a.code,
                    b.code
                );
            }
        }
    }

    #[test]
    fn ports() {
        let p: PortMapping = "127.0.0.1:8080:80/udp".parse().unwrap();
        assert_eq!(p.host_port, 8080);
        assert_eq!(p.container_port, 80);
        assert_eq!(p.protocol, Protocol::Udp);
        assert_eq!(p.to_string(), "127.0.0.1:8080:80/udp");
        let p: PortMapping = "[::1]:53:53".parse().unwrap();
        assert_eq!(p.to_string(), "[::1]:53:53");
        for bad in [
            "8123",
            "0:80",
            "80:70000",
            "a:b",
            "1:2:3:4",
            "80:80/sctp",
            "300.1.1.1:80:80",
        ] {
            assert!(bad.parse::<PortMapping>().is_err(), "{bad}");
        }
    }

    #[test]
    fn images() {
        let i: ImageRef = "ghcr.io/home-assistant/home-assistant:2026.11.1"
            .parse()
            .unwrap();
        assert_eq!(i.registry.as_deref(), Some("ghcr.io"));
        assert_eq!(i.repository, "home-assistant/home-assistant");
        assert_eq!(i.tag.as_deref(), Some("2026.11.1"));
        let i: ImageRef = "localhost:5000/app:1".parse().unwrap();
        assert_eq!(i.registry.as_deref(), Some("localhost:5000"));
        let digest = format!("eclipse-mosquitto@sha256:{}", "a".repeat(64));
        let i: ImageRef = digest.parse().unwrap();
        assert_eq!(i.to_string(), digest);
        for bad in [
            "nginx",
            "Nginx:1",
            "nginx:",
            "nginx@sha256:abc",
            "a b:1",
            "nginx:-x",
            "ghcr.io/:1",
        ] {
            assert!(bad.parse::<ImageRef>().is_err(), "{bad}");
        }
    }

    #[test]
    fn cidrs_and_addresses() {
        assert!("192.168.1.41/24".parse::<Cidr>().is_ok());
        assert!("fd00::1/64".parse::<Cidr>().is_ok());
        for bad in ["192.168.1.41", "192.168.1.41/33", "300.1.1.1/24", "x/24"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
        for good in ["192.168.1.41", "::1", "pi.lan", "box-1.example.org."] {
            assert!(Address::new(good).is_ok(), "{good}");
        }
        for bad in [
            "192.168.1.300",
            "pi_box.lan",
            "1.2.3.4:22",
            "10.0.0.0/8",
            "",
        ] {
            assert!(Address::new(bad).is_err(), "{bad}");
        }
    }
}
