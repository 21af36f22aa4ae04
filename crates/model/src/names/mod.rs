//! Checked newtypes for every string in the inventory that has a grammar: names, keys, images, ports, addresses.
//!
//! They are validated twice on purpose, by the same Rust code: the schema carries a `pattern` or a custom
//! `format` that the loader's jsonschema validator checks (so every error has a path and a span), and the serde
//! `try_from` conversion runs the same parser (so a value built in Rust can never hold an invalid name).
//! The renderer can rely on these invariants: a `HostName` is a valid `networking.hostName`, a `UserName` a valid
//! Linux user name, and so on.

//!
//! One file per family of grammars: [`labels`] (host, user, container names, tags, releases,
//! addresses, volumes), [`ssh_key`], [`image`], [`network`] (ports, CIDRs, IPs), [`health`]
//! (what deploy checks on a host before confirming it) and [`system`] (kernel parameters, keymaps,
//! caches, time servers, calendars, flake references, Tailscale routes and tags).

use crate::ProblemCode;

/// Why a string is not a valid value of one of the newtypes in this module.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct NameError {
    /// Stable diagnostic code, such as `invalid_host_name`.
    pub code: ProblemCode,
    /// What is wrong and how to fix it, in one sentence or two.
    pub message: String,
}

pub(crate) fn err(code: ProblemCode, message: impl Into<String>) -> NameError {
    NameError {
        code,
        message: message.into(),
    }
}

/// Describes one checked string type to the loader: how the schema refers to it and how to validate it.
#[derive(Debug, Clone, Copy)]
pub struct StringKind {
    /// The diagnostic code used when a value does not parse.
    pub code: ProblemCode,
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

pub(crate) const NO_PATTERN: Option<&str> = None;
pub(crate) const NO_FORMAT: Option<&str> = None;

/// Defines a parsed newtype whose serde form is a string and whose parsed parts are public.
///
/// `$pattern` is a regular expression that accepts every value the parser accepts and refuses
/// the common mistakes: draft 2020-12 makes `format` an annotation that editors' validators do
/// not enforce, so without it an editor would accept what pifleet refuses. The parser stays the
/// judge; a test checks the pattern never refuses a value the parser accepts.
macro_rules! parsed_string_schema {
    ($name:ident, $code:expr, $format:expr, $pattern:expr, $description:expr) => {
        impl $name {
            /// How the loader validates this type.
            pub const KIND: StringKind = StringKind {
                code: $code,
                pattern: $pattern,
                format: Some($format),
                validate: |s| s.parse::<$name>().map(|_| ()),
            };
        }

        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                let mut schema =
                    json_schema!({ "type": "string", "format": $format, "description": $description });
                if let Some(pattern) = $pattern {
                    schema.insert("pattern".into(), pattern.into());
                }
                schema
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

// The families, declared after the macros they use.
mod health;
mod image;
mod labels;
mod network;
mod ssh_key;
mod system;

pub use health::{HealthUrl, UnitName};
pub use image::ImageRef;
pub use labels::{
    Address, ContainerName, HostName, SecretName, StateVersion, Tag, UserName, UserPattern, Volume,
    wildcard_match,
};
pub use network::{Cidr, Ip, IpOrCidr, Port, PortMapping, Protocol};
pub use ssh_key::{KeyOption, SshPublicKey, from_allows};
pub use system::{
    BanTime, CacheKey, Calendar, FlakeRef, KernelParam, Keymap, NtpServer, PackageName, Route,
    Substituter, TailscaleTag,
};

/// Every checked string type, for the loader: it maps schema `pattern`/`format` failures back to a code and
/// to the parser's own message.
///
/// Patterns and formats are unique across the list (a test checks), so an error names its type.
pub const STRING_KINDS: &[StringKind] = &[
    HostName::KIND,
    UserName::KIND,
    UserPattern::KIND,
    SecretName::KIND,
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
    UnitName::KIND,
    HealthUrl::KIND,
    KernelParam::KIND,
    Keymap::KIND,
    PackageName::KIND,
    Substituter::KIND,
    CacheKey::KIND,
    NtpServer::KIND,
    Calendar::KIND,
    FlakeRef::KIND,
    BanTime::KIND,
    Route::KIND,
    TailscaleTag::KIND,
    IpOrCidr::KIND,
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
            assert_eq!(e.code, ProblemCode::InvalidHostName, "{bad}");
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
                // A refused pattern is mapped back to its kind's code: two kinds may share a
                // pattern (a route is a CIDR with no host bits) only when they share the code.
                assert!(
                    a.pattern.is_none() || a.pattern != b.pattern || a.code == b.code,
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
        let pattern = IpOrCidr::KIND.pattern.unwrap();
        for good in [
            "10.0.0.5",
            "192.168.1.0/24",
            "127.0.0.1/8",
            "fd00::/8",
            "::1",
            "0.0.0.0/0",
            "10.0.0.0/+08",
        ] {
            let parsed = good.parse::<IpOrCidr>();
            assert!(parsed.is_ok(), "{good}");
            assert!(simple_regex_match(pattern, good), "{good}");
        }
        assert_eq!(
            "10.0.0.0/+08".parse::<IpOrCidr>().unwrap().to_string(),
            "10.0.0.0/8"
        );
        assert!("::/0".parse::<IpOrCidr>().unwrap().covers_everything());
        assert!(
            !"10.0.0.0/8"
                .parse::<IpOrCidr>()
                .unwrap()
                .covers_everything()
        );
        for bad in [
            "",
            "pi.lan",
            "10.0.0.5:22",
            "10.0.0.0/33",
            "10.0.0.300",
            "10.0.0.0/24 10.0.0.1",
            "10.0.0.0/",
        ] {
            let e = bad.parse::<IpOrCidr>().unwrap_err();
            assert_eq!(e.code, ProblemCode::InvalidIp, "{bad}");
        }
        assert!(!simple_regex_match(pattern, "pi.lan"));
        assert!(!simple_regex_match(pattern, "10.0.0.0/24 10.0.0.1"));
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
