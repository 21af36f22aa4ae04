//! Names and other single-word strings: host, user and container names, tags, NixOS releases,
//! deploy addresses and volumes.

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

use super::{NO_FORMAT, NO_PATTERN, NameError, StringKind, err};
use crate::ProblemCode;

/// RFC 1123 label, lower case: what `networking.hostName` accepts.
const LABEL_PATTERN: &str = "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$";
const USER_PATTERN: &str = "^[a-z_][a-z0-9_-]{0,31}$";
const CONTAINER_PATTERN: &str = "^[a-z0-9][a-z0-9_-]{0,62}$";
/// The same language as container names, written differently: the loader finds a type by its pattern.
const TAG_PATTERN: &str = "^[a-z0-9][-a-z0-9_]{0,62}$";
/// Secret names: the file `secrets/<name>.age`.
const SECRET_PATTERN: &str = "^[a-z0-9][a-z0-9._-]{0,63}$";

fn check_label(s: &str, code: ProblemCode, what: &str) -> Result<(), NameError> {
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
    check_label(s, ProblemCode::InvalidHostName, "host name")
}

fn check_user_name(s: &str) -> Result<(), NameError> {
    let code = ProblemCode::InvalidUserName;
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

fn check_short_name(s: &str, code: ProblemCode, what: &str) -> Result<(), NameError> {
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
    HostName, kind = ProblemCode::InvalidHostName, pattern = Some(LABEL_PATTERN), format = NO_FORMAT,
    description = "Host name: one lower-case DNS label (RFC 1123), 1-63 characters of a-z, 0-9 and '-'.",
    check = check_host_name
}

string_newtype! {
    /// A Linux user name (`pi`, `deploy`): lower case, at most 32 characters.
    UserName, kind = ProblemCode::InvalidUserName, pattern = Some(USER_PATTERN), format = NO_FORMAT,
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
    /// An entry of sshd's `AllowUsers`/`DenyUsers`: a user name pattern (`deploy`, `admin*`), optionally
    /// with a host pattern the login must come from (`deploy@10.0.0.*`, `ops@192.168.1.0/24`).
    UserPattern, kind = ProblemCode::InvalidUserPattern, pattern = NO_PATTERN, format = Some("pifleet-user-pattern"),
    description = "User pattern as sshd's AllowUsers/DenyUsers take it: a user name or wildcard pattern (* and ?), optionally followed by @ and a host, address or CIDR pattern, e.g. \"deploy\", \"admin*\", \"ops@192.168.1.0/24\".",
    check = check_user_pattern
}

impl UserPattern {
    /// The user part (before `@`).
    pub fn user(&self) -> &str {
        self.0.split_once('@').map_or(&self.0, |(u, _)| u)
    }

    /// The host part (after `@`), if the pattern restricts where the login comes from.
    pub fn host(&self) -> Option<&str> {
        self.0.split_once('@').map(|(_, h)| h)
    }

    /// Whether the pattern could admit `user`: its user part matches, and its host part (if any)
    /// might match the workstation. pifleet cannot know where a login comes from, so a host part
    /// never rules a user out here.
    pub fn may_match(&self, user: &str) -> bool {
        wildcard_match(self.user(), user)
    }

    /// Whether the pattern surely matches `user`, from wherever it logs in: its user part matches
    /// and it has no host part (or the host part is `*`).
    pub fn surely_matches(&self, user: &str) -> bool {
        wildcard_match(self.user(), user) && self.host().is_none_or(|h| h == "*")
    }

    /// Whether the pattern is a plain user name (no wildcard, no host), i.e. names one account.
    pub fn as_user_name(&self) -> Option<&str> {
        (self.host().is_none() && !self.0.contains(['*', '?'])).then_some(&self.0)
    }
}

impl From<UserName> for UserPattern {
    fn from(name: UserName) -> Self {
        Self(name.0)
    }
}

/// sshd's pattern matching (ssh_config(5), PATTERNS): `*` matches any run of characters, `?`
/// exactly one.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    // Iterative matching with backtracking to the last star: linear in practice.
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

fn check_user_pattern(s: &str) -> Result<(), NameError> {
    let code = ProblemCode::InvalidUserPattern;
    let fix = "write a user name or pattern (a-z, 0-9, '_', '-', '*', '?'), optionally `@` and a host, address or CIDR pattern";
    let (user, host) = match s.split_once('@') {
        Some((u, h)) => (u, Some(h)),
        None => (s, None),
    };
    if user.is_empty() || user.len() > 32 {
        return Err(err(
            code,
            format!("`{s}`: the user part must have 1 to 32 characters: {fix}"),
        ));
    }
    if let Some(c) = user.chars().find(|c| {
        !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-' | '*' | '?' | '.'))
    }) {
        return Err(err(
            code,
            format!("`{s}` contains {c:?} in its user part: {fix}"),
        ));
    }
    if let Some(host) = host {
        if host.is_empty() {
            return Err(err(code, format!("`{s}` has nothing after `@`: {fix}")));
        }
        if let Some(c) = host.chars().find(|c| {
            !(c.is_ascii_alphanumeric()
                || matches!(c, '.' | ':' | '*' | '?' | '/' | '-' | '_' | '!' | ','))
        }) {
            return Err(err(
                code,
                format!("`{s}` contains {c:?} in its host part: {fix}"),
            ));
        }
    }
    Ok(())
}

string_newtype! {
    /// The name of a secret in the repository: `secrets/<name>.age`, and `age.secrets.<name>` on the host.
    SecretName, kind = ProblemCode::InvalidSecretName, pattern = Some(SECRET_PATTERN), format = NO_FORMAT,
    description = "Secret name: the file secrets/<name>.age, 1-64 characters of a-z, 0-9, '-', '_' and '.', starting with a letter or digit.",
    check = check_secret_name
}

fn check_secret_name(s: &str) -> Result<(), NameError> {
    let code = ProblemCode::InvalidSecretName;
    let fix = "use 1 to 64 lower-case letters, digits, '-', '_' and '.', starting with a letter or digit (it names secrets/<name>.age)";
    let mut chars = s.chars();
    match chars.next() {
        None => return Err(err(code, format!("secret name is empty: {fix}"))),
        Some(c) if !(c.is_ascii_lowercase() || c.is_ascii_digit()) => {
            return Err(err(
                code,
                format!("secret name `{s}` starts with {c:?}: {fix}"),
            ));
        }
        Some(_) => {}
    }
    if let Some(c) = chars
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.')))
    {
        return Err(err(
            code,
            format!("secret name `{s}` contains {c:?}: {fix}"),
        ));
    }
    if s.len() > 64 || s.contains("..") {
        return Err(err(
            code,
            format!("secret name `{s}` is too long or contains `..`: {fix}"),
        ));
    }
    Ok(())
}

string_newtype! {
    /// A container name: becomes the Docker container name and the systemd unit `docker-<name>.service`.
    ContainerName, kind = ProblemCode::InvalidContainerName, pattern = Some(CONTAINER_PATTERN), format = NO_FORMAT,
    description = "Container name: 1-63 characters of a-z, 0-9, '_' and '-', starting with a letter or digit.",
    check = |s| check_short_name(s, ProblemCode::InvalidContainerName, "container name")
}

string_newtype! {
    /// A host tag (`edge`, `living-room`), used to select hosts for deploys and container placement.
    Tag, kind = ProblemCode::InvalidTag, pattern = Some(TAG_PATTERN), format = NO_FORMAT,
    description = "Tag: 1-63 characters of a-z, 0-9, '_' and '-', starting with a letter or digit.",
    check = |s| check_short_name(s, ProblemCode::InvalidTag, "tag")
}

/// Schema pattern for [`Address`]: digits and dots alone must be an IPv4 address (each number
/// 0-255, no leading zeros, as the parser reads them); with colons, an IPv6 address (two or more;
/// one colon is a port, which belongs in `deploy.port`); anything else is a name without `/`.
const ADDRESS_PATTERN: &str = concat!(
    r"^((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])([.](25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}",
    r"|[0-9A-Fa-f.]*:[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*",
    r"|[^/:]*[^0-9./:][^/:]*)$"
);

string_newtype! {
    /// Where deploy connects: an IPv4/IPv6 address or a DNS name.
    Address, kind = ProblemCode::InvalidAddress, pattern = Some(ADDRESS_PATTERN), format = Some("pifleet-address"),
    description = "IPv4 or IPv6 address, or DNS name, that the workstation connects to over SSH.",
    check = check_address
}

string_newtype! {
    /// A NixOS release used as `system.stateVersion`, such as `26.05`.
    StateVersion, kind = ProblemCode::InvalidStateVersion, pattern = Some("^[0-9]{2}\\.(05|11)$"), format = NO_FORMAT,
    description = "NixOS release whose defaults this system keeps (system.stateVersion), e.g. \"26.05\". Set it once at install time and do not change it on upgrades.",
    check = check_state_version
}

string_newtype! {
    /// A Docker volume: `host-path-or-volume:/container/path[:options]`.
    Volume, kind = ProblemCode::InvalidVolume, pattern = NO_PATTERN, format = Some("pifleet-volume"),
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
            ProblemCode::InvalidStateVersion,
            format!("`{s}` is not a NixOS release: write it as YY.05 or YY.11, e.g. \"26.05\""),
        ))
    }
}

fn check_address(s: &str) -> Result<(), NameError> {
    if s.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    let code = ProblemCode::InvalidAddress;
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
    let code = ProblemCode::InvalidVolume;
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
