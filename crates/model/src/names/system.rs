//! Strings that configure the system itself: kernel parameters, console keymaps, unfree package
//! names, binary caches and their keys, time servers, systemd calendar events, flake references,
//! fail2ban durations, and the routes and tags a host advertises into its tailnet.
//!
//! Each lands in a NixOS option whose type is looser than what works on the host (most are `str`),
//! so a typo would build and then do nothing, or fail at boot. Checking the grammar here gives the
//! error a span in `fleet.toml` instead.

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

use super::{Cidr, NO_FORMAT, NO_PATTERN, NameError, StringKind, err};
use crate::ProblemCode;

const KEYMAP_PATTERN: &str = "^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$";
const PACKAGE_NAME_PATTERN: &str = "^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,127}$";
/// Tailscale's own rule (`tailcfg.CheckTag`): `tag:`, then a letter, then letters, digits and '-'.
const TAILSCALE_TAG_PATTERN: &str = "^tag:[A-Za-z][A-Za-z0-9-]*$";

/// Whether `c` may not appear in a value that ends up in a line of a config file.
fn is_space_or_control(c: char) -> bool {
    c.is_whitespace() || c.is_control()
}

string_newtype! {
    /// One kernel command-line parameter (`boot.kernelParams`): `quiet`, `console=ttyS0,115200`,
    /// `cma=256M`. NixOS's own type: no white space outside double quotes.
    KernelParam, kind = ProblemCode::InvalidKernelParam, pattern = NO_PATTERN, format = Some("pifleet-kernel-param"),
    description = "Kernel command-line parameter, one token such as \"quiet\" or \"console=ttyS0,115200\": no spaces (except inside double quotes) and no control characters.",
    check = check_kernel_param
}

fn check_kernel_param(s: &str) -> Result<(), NameError> {
    let code = ProblemCode::InvalidKernelParam;
    if s.is_empty() {
        return Err(err(code, "a kernel parameter cannot be empty"));
    }
    if let Some(c) = s.chars().find(|c| c.is_control()) {
        return Err(err(
            code,
            format!("kernel parameter {s:?} holds the control character {c:?}"),
        ));
    }
    // NixOS's kernelParam type: `([^"[:space:]]|"[^"]*")+`.
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                return Err(err(
                    code,
                    format!(
                        "kernel parameter `{s}` contains a space: write each parameter as its own list item, e.g. [\"quiet\", \"loglevel=3\"]"
                    ),
                ));
            }
            _ => {}
        }
    }
    if quoted {
        return Err(err(
            code,
            format!("kernel parameter `{s}` opens a double quote it never closes"),
        ));
    }
    Ok(())
}

string_newtype! {
    /// A console keymap (`console.keyMap`), a kbd keymap name such as `us`, `de-latin1` or `fr`.
    Keymap, kind = ProblemCode::InvalidKeymap, pattern = Some(KEYMAP_PATTERN), format = NO_FORMAT,
    description = "Console keymap as kbd names it (`localectl list-keymaps`), e.g. \"us\", \"de-latin1\", \"uk\".",
    check = check_keymap
}

fn check_keymap(s: &str) -> Result<(), NameError> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '+' | '-'));
    if ok {
        Ok(())
    } else {
        Err(err(
            ProblemCode::InvalidKeymap,
            format!(
                "`{s}` is not a keymap name: use a name from `localectl list-keymaps`, such as \"us\" or \"de-latin1\""
            ),
        ))
    }
}

string_newtype! {
    /// The name of an unfree package as `lib.getName` gives it (`vscode`, `unrar`, `nvidia-x11`),
    /// allowed by `nixpkgs.config.allowUnfreePredicate`.
    PackageName, kind = ProblemCode::InvalidPackageName, pattern = Some(PACKAGE_NAME_PATTERN), format = NO_FORMAT,
    description = "Package name as `lib.getName` gives it (the pname, without version), e.g. \"unrar\" or \"vscode\".",
    check = check_package_name
}

fn check_package_name(s: &str) -> Result<(), NameError> {
    let ok = !s.is_empty()
        && s.len() <= 128
        && s.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '+' | '-'));
    if ok {
        Ok(())
    } else {
        Err(err(
            ProblemCode::InvalidPackageName,
            format!(
                "`{s}` is not a package name: use the name without version, as `lib.getName` gives it (e.g. \"unrar\")"
            ),
        ))
    }
}

/// The URL schemes Nix can substitute from.
const SUBSTITUTER_SCHEMES: &[&str] = &["https", "http", "s3", "ssh", "ssh-ng", "file", "gs"];

string_newtype! {
    /// A binary cache URL (`nix.settings.substituters`): `https://cache.example.org`.
    Substituter, kind = ProblemCode::InvalidSubstituter, pattern = NO_PATTERN, format = Some("pifleet-substituter"),
    description = "Binary cache URL, e.g. \"https://nix-community.cachix.org\" (also s3://, ssh://, ssh-ng://, file://).",
    check = check_substituter
}

fn check_substituter(s: &str) -> Result<(), NameError> {
    let code = ProblemCode::InvalidSubstituter;
    if let Some(c) = s.chars().find(|c| is_space_or_control(*c)) {
        return Err(err(
            code,
            format!("substituter {s:?} contains {c:?}: a URL has no spaces or control characters"),
        ));
    }
    let Some((scheme, rest)) = s.split_once("://") else {
        return Err(err(
            code,
            format!("`{s}` is not a URL: write the scheme too, e.g. \"https://{s}\""),
        ));
    };
    if !SUBSTITUTER_SCHEMES.contains(&scheme) {
        return Err(err(
            code,
            format!(
                "`{s}`: Nix cannot substitute from `{scheme}://`; use one of {}",
                SUBSTITUTER_SCHEMES.join(", ")
            ),
        ));
    }
    if rest.is_empty() || (scheme != "file" && rest.starts_with('/')) {
        return Err(err(code, format!("`{s}` names no host")));
    }
    Ok(())
}

impl Substituter {
    /// The URL scheme, e.g. `https`.
    pub fn scheme(&self) -> &str {
        self.0.split_once("://").map_or("", |(s, _)| s)
    }

    /// The host part of the URL (without user, port or path), lower case.
    pub fn host(&self) -> String {
        let rest = self.0.split_once("://").map_or("", |(_, r)| r);
        let authority = rest.split('/').next().unwrap_or("");
        let host = authority.rsplit('@').next().unwrap_or("");
        let host = host.split(':').next().unwrap_or("");
        host.to_ascii_lowercase()
    }

    /// Whether this is the NixOS cache, whose key every Nix trusts already.
    pub fn is_nixos_cache(&self) -> bool {
        self.scheme() == "https" && self.host() == "cache.nixos.org"
    }
}

string_newtype! {
    /// A binary cache's public key (`nix.settings.trusted-public-keys`): `name:base64`, an ed25519 key.
    CacheKey, kind = ProblemCode::InvalidCacheKey, pattern = NO_PATTERN, format = Some("pifleet-cache-key"),
    description = "Binary cache public key, `name:base64` as the cache publishes it, e.g. \"nix-community.cachix.org-1:mB9FSh9qf2dCimDSUo8Zy7bkq5CX+/rkCWyvRCYg3Fs=\".",
    check = check_cache_key
}

fn check_cache_key(s: &str) -> Result<(), NameError> {
    use base64ct::Encoding as _;
    let code = ProblemCode::InvalidCacheKey;
    let Some((name, key)) = s.split_once(':') else {
        return Err(err(
            code,
            format!("`{s}` is not a cache key: write it as the cache publishes it, `name:base64`"),
        ));
    };
    if name.is_empty() || name.chars().any(is_space_or_control) {
        return Err(err(
            code,
            format!("`{s}`: the key's name before `:` is empty or holds a space"),
        ));
    }
    match base64ct::Base64::decode_vec(key) {
        Ok(bytes) if bytes.len() == 32 => Ok(()),
        Ok(bytes) if bytes.len() == 64 => Err(err(
            code,
            format!(
                "`{name}:…` is a secret key (64 bytes): give the public key, from `nix key convert-secret-to-public`, and rotate this one"
            ),
        )),
        _ => Err(err(
            code,
            format!("`{name}:…`: the part after `:` is not a base64 ed25519 public key (32 bytes)"),
        )),
    }
}

string_newtype! {
    /// A time server (`networking.timeServers`): a DNS name or an IP address.
    NtpServer, kind = ProblemCode::InvalidAddress, pattern = NO_PATTERN, format = Some("pifleet-ntp-server"),
    description = "NTP server: a DNS name or IP address, e.g. \"0.de.pool.ntp.org\" or \"192.168.1.1\".",
    check = check_ntp_server
}

fn check_ntp_server(s: &str) -> Result<(), NameError> {
    if s.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    let name = s.strip_suffix('.').unwrap_or(s);
    let numeric = name.chars().all(|c| c.is_ascii_digit() || c == '.');
    if !name.is_empty() && name.len() <= 253 && !numeric && name.split('.').all(label_ok) {
        Ok(())
    } else {
        Err(err(
            ProblemCode::InvalidAddress,
            format!("`{s}` is not a DNS name or IP address of a time server (no port, no URL)"),
        ))
    }
}

string_newtype! {
    /// A systemd calendar event (`OnCalendar=`, systemd.time(7)): `daily`, `04:40`, `Sat 02:00`.
    Calendar, kind = ProblemCode::InvalidCalendar, pattern = NO_PATTERN, format = Some("pifleet-calendar"),
    description = "systemd calendar event (systemd.time(7)), e.g. \"daily\", \"04:40\", \"Sat *-*-* 02:00:00\"; check one with `systemd-analyze calendar`.",
    check = check_calendar
}

fn check_calendar(s: &str) -> Result<(), NameError> {
    let code = ProblemCode::InvalidCalendar;
    let fix = "write a systemd calendar event such as \"daily\", \"04:40\" or \"Sat 02:00\" (`systemd-analyze calendar` checks one)";
    if s.trim().is_empty() || s.len() > 128 {
        return Err(err(code, format!("`{s}` is not a calendar event: {fix}")));
    }
    // The characters systemd's calendar grammar uses: weekdays and shorthands, digits, and
    // `*-:,./~+` (plus spaces between the parts, and `_` in time zone names such as `America/New_York`).
    if let Some(c) = s.chars().find(|c| {
        !(c.is_ascii_alphanumeric()
            || matches!(c, ' ' | '*' | '-' | ':' | ',' | '.' | '/' | '~' | '+' | '_'))
    }) {
        return Err(err(code, format!("`{s}` contains {c:?}: {fix}")));
    }
    Ok(())
}

string_newtype! {
    /// A flake reference a host pulls its configuration from (`system.autoUpgrade.flake`):
    /// `github:me/fleet`, `git+https://git.example.org/fleet`, optionally with `#<host>`.
    FlakeRef, kind = ProblemCode::InvalidFlakeRef, pattern = NO_PATTERN, format = Some("pifleet-flake-ref"),
    description = "Flake reference of this fleet's repository as the host fetches it, e.g. \"github:me/fleet\" or \"git+https://git.example.org/fleet?ref=main\"; pifleet adds `#<host>`.",
    check = check_flake_ref
}

fn check_flake_ref(s: &str) -> Result<(), NameError> {
    let code = ProblemCode::InvalidFlakeRef;
    if let Some(c) = s
        .chars()
        .find(|c| is_space_or_control(*c) || matches!(c, '"' | '\'' | '`'))
    {
        return Err(err(code, format!("flake reference {s:?} contains {c:?}")));
    }
    let (url, fragment) = match s.split_once('#') {
        Some((url, fragment)) => (url, Some(fragment)),
        None => (s, None),
    };
    let scheme_ok = url.split_once(':').is_some_and(|(scheme, rest)| {
        !rest.is_empty()
            && scheme
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_lowercase())
            && scheme.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '+' | '-' | '.')
            })
    });
    if !(scheme_ok || (url.starts_with('/') && url.len() > 1)) {
        return Err(err(
            code,
            format!(
                "`{s}` is not a flake reference the host can fetch: use a URL such as \"github:me/fleet\" or \"git+https://…\", or an absolute path"
            ),
        ));
    }
    if let Some(fragment) = fragment
        && (fragment.is_empty() || fragment.contains('#'))
    {
        return Err(err(
            code,
            format!("`{s}`: after `#` comes the host name, once"),
        ));
    }
    Ok(())
}

impl FlakeRef {
    /// The reference without its `#attribute`.
    pub fn url(&self) -> &str {
        self.0.split_once('#').map_or(&self.0, |(url, _)| url)
    }

    /// The attribute after `#`, when written: the configuration it builds.
    pub fn attribute(&self) -> Option<&str> {
        self.0.split_once('#').map(|(_, a)| a)
    }
}

string_newtype! {
    /// A fail2ban time (`bantime`): `10m`, `1h`, `1d`, `600` (seconds) or `-1` (for ever).
    BanTime, kind = ProblemCode::InvalidDuration, pattern = NO_PATTERN, format = Some("pifleet-ban-time"),
    description = "fail2ban duration: a number of seconds or a number with a unit s, m, h, d, w, e.g. \"10m\", \"1h\", \"1d\"; \"-1\" bans for ever.",
    check = check_ban_time
}

fn check_ban_time(s: &str) -> Result<(), NameError> {
    if s == "-1" {
        return Ok(());
    }
    let digits = s.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &s[digits.len()..];
    let ok = !digits.is_empty()
        && digits.len() <= 9
        && digits.chars().all(|c| c.is_ascii_digit())
        && matches!(unit, "" | "s" | "m" | "h" | "d" | "w");
    if ok {
        Ok(())
    } else {
        Err(err(
            ProblemCode::InvalidDuration,
            format!(
                "`{s}` is not a fail2ban duration: a number with s, m, h, d or w, e.g. \"10m\" or \"1h\""
            ),
        ))
    }
}

string_newtype! {
    /// A Tailscale ACL tag the host advertises (`--advertise-tags`): `tag:server`. The policy
    /// file's `tagOwners` must let the auth key's owner (or the key's own tags) hand it out.
    TailscaleTag, kind = ProblemCode::InvalidTailscaleTag, pattern = Some(TAILSCALE_TAG_PATTERN), format = NO_FORMAT,
    description = "Tailscale ACL tag as the policy file names it: \"tag:\" then a letter, then letters, digits and '-', e.g. \"tag:server\".",
    check = check_tailscale_tag
}

fn check_tailscale_tag(s: &str) -> Result<(), NameError> {
    let code = ProblemCode::InvalidTailscaleTag;
    if s.is_empty() {
        return Err(err(
            code,
            "a Tailscale tag cannot be empty: write one such as \"tag:server\"",
        ));
    }
    if let Some(c) = s.chars().find(|c| is_space_or_control(*c) || *c == ',') {
        return Err(err(
            code,
            format!(
                "Tailscale tag {s:?} contains {c:?}: write each tag as its own list item, e.g. [\"tag:server\", \"tag:home\"]"
            ),
        ));
    }
    let Some(name) = s.strip_prefix("tag:") else {
        return Err(err(
            code,
            format!(
                "`{s}` is not a Tailscale tag: tags start with `tag:`, as in the policy file (\"tag:{s}\")"
            ),
        ));
    };
    let ok = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(err(
            code,
            format!(
                "`{s}`: after `tag:` Tailscale takes a letter, then letters, digits and '-' (e.g. \"tag:server\", \"tag:pi-4\")"
            ),
        ))
    }
}

/// A route a host advertises into its tailnet: a network in CIDR form with no host bits set
/// (`192.168.1.0/24`, not `192.168.1.41/24`, which tailscale refuses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Route(pub Cidr);

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for Route {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, NameError> {
        let cidr: Cidr = s.parse()?;
        let network = match cidr.address {
            IpAddr::V4(a) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(cidr.prefix))
                    .unwrap_or(0);
                IpAddr::V4((u32::from(a) & mask).into())
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(cidr.prefix))
                    .unwrap_or(0);
                IpAddr::V6((u128::from(a) & mask).into())
            }
        };
        if network != cidr.address {
            return Err(err(
                ProblemCode::InvalidCidr,
                format!(
                    "`{s}` has host bits set: a route names the network, \"{network}/{}\"",
                    cidr.prefix
                ),
            ));
        }
        Ok(Route(cidr))
    }
}

parsed_string_schema!(
    Route,
    ProblemCode::InvalidCidr,
    "pifleet-route",
    Some(super::network::CIDR_PATTERN),
    "Network in CIDR form with no host bits set, e.g. \"192.168.1.0/24\"."
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_params() {
        for good in [
            "quiet",
            "console=ttyS0,115200n8",
            "cma=256M",
            "dyndbg=\"file x.c +p\"",
        ] {
            assert!(KernelParam::new(good).is_ok(), "{good}");
        }
        for bad in ["", "quiet splash", "a=\"b", "x\ny", "tab\there"] {
            let e = KernelParam::new(bad).unwrap_err();
            assert_eq!(e.code, ProblemCode::InvalidKernelParam, "{bad}");
        }
    }

    #[test]
    fn substituters_and_keys() {
        let s = Substituter::new("https://user@Cache.Example.org:8443/path").unwrap();
        assert_eq!(s.scheme(), "https");
        assert_eq!(s.host(), "cache.example.org");
        assert!(
            Substituter::new("https://cache.nixos.org/")
                .unwrap()
                .is_nixos_cache()
        );
        for bad in [
            "cache.example.org",
            "ftp://x",
            "https://",
            "https://a b",
            "https:///path",
        ] {
            assert!(Substituter::new(bad).is_err(), "{bad}");
        }
        assert!(
            CacheKey::new("cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY=").is_ok()
        );
        for bad in [
            "cache.nixos.org-1",
            ":6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY=",
            "a:bm90IGEga2V5",
        ] {
            assert!(CacheKey::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn flake_refs() {
        let f = FlakeRef::new("github:me/fleet#pi").unwrap();
        assert_eq!((f.url(), f.attribute()), ("github:me/fleet", Some("pi")));
        let f = FlakeRef::new("git+https://git.example.org/fleet?ref=main").unwrap();
        assert_eq!(f.attribute(), None);
        assert!(FlakeRef::new("/etc/nixos").is_ok());
        for bad in [
            "fleet",
            "./fleet",
            "github:me/fleet#",
            "github:me/fleet#a#b",
            "github:me/fl eet",
            "Github:x",
        ] {
            assert!(FlakeRef::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn calendars_ban_times_keymaps_servers() {
        for good in [
            "daily",
            "04:40",
            "Sat *-*-* 02:00:00",
            "Mon..Fri 22:00",
            "*-*-1 04:00 Europe/Berlin",
        ] {
            assert!(Calendar::new(good).is_ok(), "{good}");
        }
        for bad in ["", "04:40;reboot", "daily\n", "\"daily\""] {
            assert!(Calendar::new(bad).is_err(), "{bad}");
        }
        for good in ["10m", "1h", "600", "-1", "2w"] {
            assert!(BanTime::new(good).is_ok(), "{good}");
        }
        for bad in ["", "1 h", "h", "10y", "-2", "1h30m"] {
            assert!(BanTime::new(bad).is_err(), "{bad}");
        }
        for good in ["us", "de-latin1", "mac-us", "fr_CH"] {
            assert!(Keymap::new(good).is_ok(), "{good}");
        }
        for bad in ["", "de latin1", "../us", "-x"] {
            assert!(Keymap::new(bad).is_err(), "{bad}");
        }
        for good in ["0.de.pool.ntp.org", "192.168.1.1", "fd00::1", "ntp"] {
            assert!(NtpServer::new(good).is_ok(), "{good}");
        }
        for bad in ["", "ntp.example.org:123", "udp://ntp", "1.2.3.400", "a b"] {
            assert!(NtpServer::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tailscale_tags_are_checked_as_tailscale_does() {
        for good in ["tag:server", "tag:pi-4", "tag:A1", "tag:x"] {
            assert!(TailscaleTag::new(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "server",
            "tag:",
            "tag:1pi",
            "tag:-pi",
            "tag:pi_4",
            "tag:a b",
            "tag:a,tag:b",
            "tag:a\n",
            "Tag:server",
            "tag:caf\u{e9}",
        ] {
            let e = TailscaleTag::new(bad).unwrap_err();
            assert_eq!(e.code, ProblemCode::InvalidTailscaleTag, "{bad}");
        }
        let e = TailscaleTag::new("server").unwrap_err();
        assert!(e.message.contains("\"tag:server\""), "{}", e.message);
        let e = TailscaleTag::new("tag:a,tag:b").unwrap_err();
        assert!(e.message.contains("own list item"), "{}", e.message);
    }

    #[test]
    fn routes_have_no_host_bits() {
        assert_eq!(
            "192.168.1.0/24".parse::<Route>().unwrap().to_string(),
            "192.168.1.0/24"
        );
        assert!("0.0.0.0/0".parse::<Route>().is_ok());
        assert!("fd7a:115c:a1e0::/48".parse::<Route>().is_ok());
        let e = "192.168.1.41/24".parse::<Route>().unwrap_err();
        assert!(e.message.contains("192.168.1.0/24"), "{}", e.message);
        assert!("10.0.0.1/32".parse::<Route>().is_ok());
    }
}
