//! OpenSSH public keys, parsed by the `ssh-key` crate and kept as written, with the options an
//! `authorized_keys` line may carry in front (`from="10.0.0.0/8",no-pty ssh-ed25519 AAAA…`).
//!
//! The options are parsed here by hand, following sshd(8)'s grammar (comma-separated, values in
//! double quotes, no spaces outside quotes): the `ssh-key` crate's own option parser rejects spaces
//! inside quotes (`command="nix-store --serve"`) and unknown options would make sshd reject the
//! whole line, so pifleet must know them.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

use super::{NameError, StringKind, err};
use crate::ProblemCode;

/// An OpenSSH public key line (`ssh-ed25519 AAAA… eduardo@hhlab`), parsed by the `ssh-key` crate.
///
/// The original text is kept verbatim so the generated `authorized_keys` entry is exactly what the user wrote.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SshPublicKey {
    text: String,
    key: ssh_key::PublicKey,
    options: Vec<KeyOption>,
}

/// One `authorized_keys` option in front of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyOption {
    /// The option's name, in lower case (`from`, `command`, `no-pty`, …).
    pub name: String,
    /// Its value, unquoted, for `name="value"` options.
    pub value: Option<String>,
}

/// Options without a value (sshd(8), "AUTHORIZED_KEYS FILE FORMAT").
const FLAG_OPTIONS: &[&str] = &[
    "agent-forwarding",
    "cert-authority",
    "no-agent-forwarding",
    "no-port-forwarding",
    "no-pty",
    "no-user-rc",
    "no-x11-forwarding",
    "port-forwarding",
    "pty",
    "restrict",
    "user-rc",
    "x11-forwarding",
    "no-touch-required",
    "verify-required",
];

/// Options that take a quoted value.
const VALUE_OPTIONS: &[&str] = &[
    "command",
    "environment",
    "expiry-time",
    "from",
    "permitlisten",
    "permitopen",
    "principals",
    "tunnel",
];

/// sshd's `from="pattern-list"` for an address: comma-separated patterns (`*`, `?`, CIDR), any
/// prefixed with `!` to refuse; a refusing match wins. `None` when a pattern is a host name.
pub fn from_allows(patterns: &str, ip: std::net::IpAddr) -> Option<bool> {
    let text = ip.to_string();
    let mut allowed = false;
    let mut unknown = false;
    for pattern in patterns.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (negated, pattern) = match pattern.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, pattern),
        };
        let matched = if let Ok(cidr) = pattern.parse::<super::Cidr>() {
            in_network(ip, cidr.address, cidr.prefix)
        } else if pattern
            .chars()
            .all(|c| c.is_ascii_hexdigit() || matches!(c, '.' | ':' | '*' | '?'))
        {
            super::wildcard_match(pattern, &text)
        } else {
            unknown = true;
            continue;
        };
        if matched && negated {
            return Some(false);
        }
        allowed |= matched && !negated;
    }
    if allowed {
        Some(true)
    } else if unknown {
        None
    } else {
        Some(false)
    }
}

/// Whether `ip` lies in `network/prefix`.
fn in_network(ip: std::net::IpAddr, network: std::net::IpAddr, prefix: u8) -> bool {
    let bits = |ip: std::net::IpAddr| match ip {
        std::net::IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32u32),
        std::net::IpAddr::V6(v6) => (u128::from(v6), 128u32),
    };
    let ((a, width), (b, other)) = (bits(ip), bits(network));
    if width != other {
        return false;
    }
    let shift = width.saturating_sub(u32::from(prefix));
    shift >= width || (a >> shift) == (b >> shift)
}

/// Where the options of `line` end: the first space or tab outside double quotes.
fn options_end(line: &str) -> usize {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ' ' | '\t' if !quoted => return i,
            _ => {}
        }
    }
    line.len()
}

/// Parses the options field of an `authorized_keys` line.
fn parse_options(field: &str) -> Result<Vec<KeyOption>, String> {
    let mut out = Vec::new();
    let mut rest = field;
    while !rest.is_empty() {
        let name_end = rest.find(['=', ',']).unwrap_or(rest.len());
        let name = rest[..name_end].to_ascii_lowercase();
        rest = &rest[name_end..];
        let value = if let Some(after) = rest.strip_prefix('=') {
            let Some(body) = after.strip_prefix('"') else {
                return Err(format!("the value of `{name}` must be in double quotes"));
            };
            let mut value = String::new();
            let mut chars = body.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some((_, '"')) => value.push('"'),
                        Some((_, other)) => {
                            value.push('\\');
                            value.push(other);
                        }
                        None => break,
                    },
                    '"' => {
                        end = Some(i);
                        break;
                    }
                    c => value.push(c),
                }
            }
            let Some(end) = end else {
                return Err(format!("the value of `{name}` has no closing quote"));
            };
            rest = &body[end + 1..];
            if !VALUE_OPTIONS.contains(&name.as_str()) {
                return Err(format!("`{name}` is not an option that takes a value"));
            }
            Some(value)
        } else {
            if !FLAG_OPTIONS.contains(&name.as_str()) {
                return Err(if VALUE_OPTIONS.contains(&name.as_str()) {
                    format!("`{name}` needs a value: {name}=\"…\"")
                } else {
                    format!(
                        "`{name}` is not an authorized_keys option sshd knows (sshd would reject the whole line)"
                    )
                });
            }
            None
        };
        out.push(KeyOption { name, value });
        match rest.strip_prefix(',') {
            Some(next) if !next.is_empty() => rest = next,
            Some(_) => return Err("the options end with a comma".into()),
            None if rest.is_empty() => {}
            None => return Err(format!("unexpected `{rest}` after an option")),
        }
    }
    Ok(out)
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

    /// Whether age can encrypt to this key: ssh-ed25519 and ssh-rsa keys only.
    pub fn is_age_recipient(&self) -> bool {
        matches!(
            self.key.algorithm(),
            ssh_key::Algorithm::Ed25519 | ssh_key::Algorithm::Rsa { .. }
        )
    }

    /// The key as age and `known_hosts` take it: algorithm and base64, without options or comment.
    pub fn bare(&self) -> String {
        let mut key = self.key.clone();
        key.set_comment("");
        key.to_openssh().unwrap_or_default().trim().to_owned()
    }

    /// The `authorized_keys` options in front of the key, as written.
    pub fn options(&self) -> &[KeyOption] {
        &self.options
    }

    /// The value of the option `name` (lower case), if the key has it.
    pub fn option(&self, name: &str) -> Option<&str> {
        self.options
            .iter()
            .find(|o| o.name == name)
            .and_then(|o| o.value.as_deref())
    }

    /// Whether the key's `from="…"` option lets a login from `ip` in: `Some(true)` or `Some(false)`
    /// when the patterns decide by address alone, `None` when the key has no `from` or a pattern
    /// names hosts (sshd would match those against the client's DNS name, which is not known here).
    pub fn from_allows(&self, ip: std::net::IpAddr) -> Option<bool> {
        from_allows(self.option("from")?, ip)
    }

    /// The signature algorithms a login with this key may use, as `PubkeyAcceptedAlgorithms`
    /// names them (an RSA key signs with `rsa-sha2-512`/`rsa-sha2-256`, or legacy `ssh-rsa`).
    pub fn signature_algorithms(&self) -> Vec<String> {
        let name = self.key.algorithm().as_str().to_owned();
        if name == "ssh-rsa" {
            vec!["rsa-sha2-512".into(), "rsa-sha2-256".into(), name]
        } else {
            vec![name]
        }
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
        let code = ProblemCode::InvalidSshKey;
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
        if text.chars().any(char::is_control) {
            return Err(err(
                code,
                format!("the SSH key contains a control character: {fix}"),
            ));
        }
        // A key line, or options in front of one.
        let parsed: Result<(ssh_key::PublicKey, Vec<KeyOption>), String> =
            ssh_key::PublicKey::from_openssh(text)
                .map(|key| (key, Vec::new()))
                .or_else(|e| {
                    let end = options_end(text);
                    if end == text.len() && text.contains('"') {
                        return Err("the options in front of the key have an unclosed quote".into());
                    }
                    let (field, rest) = (&text[..end], text[end..].trim_start());
                    // Options only if what follows them is a key.
                    let key = ssh_key::PublicKey::from_openssh(rest).map_err(|_| e.to_string())?;
                    let options =
                        parse_options(field).map_err(|why| format!("its options: {why}"))?;
                    Ok((key, options))
                });
        match parsed {
            Ok((key, options)) => Ok(Self {
                text: text.to_owned(),
                key,
                options,
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
    ProblemCode::InvalidSshKey,
    "pifleet-ssh-public-key",
    // One line: options, then a key type and its base64 blob (an ed25519 blob has a fixed
    // length; every blob starts with AAAA, the length of its algorithm name), then a comment.
    Some(concat!(
        r"^([^\r\n]*[ \t])?(ssh-ed25519[ \t]+AAAAC3NzaC1lZDI1NTE5AAAAI[A-Za-z0-9+/]{43}",
        r"|(ssh-rsa|ssh-dss|ecdsa-sha2-nistp(256|384|521)|[!-~]+@[!-~]+)[ \t]+AAAA[A-Za-z0-9+/]+={0,2})",
        r"([ \t][^\r\n]*)?$"
    )),
    "OpenSSH public key, one line as in a .pub file: \"ssh-ed25519 AAAA… user@machine\", optionally with authorized_keys options in front (`from=\"10.0.0.0/8\" ssh-ed25519 …`)."
);

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBqeFyT5oHWhCY/SKllnU80NkJK46f+SBkowTwVuJjhq a@ws";

    #[test]
    fn options_in_front_are_kept_and_parsed() {
        let line =
            format!("from=\"10.0.0.0/8,!10.0.0.9\",command=\"nix-store --serve\",no-pty {KEY}");
        let key: SshPublicKey = line.parse().expect("valid");
        assert_eq!(key.as_str(), line);
        assert_eq!(key.comment(), "a@ws");
        assert_eq!(
            key.options(),
            [
                KeyOption {
                    name: "from".into(),
                    value: Some("10.0.0.0/8,!10.0.0.9".into())
                },
                KeyOption {
                    name: "command".into(),
                    value: Some("nix-store --serve".into())
                },
                KeyOption {
                    name: "no-pty".into(),
                    value: None
                },
            ]
        );
        assert_eq!(key.option("command"), Some("nix-store --serve"));
        let plain: SshPublicKey = KEY.parse().expect("valid");
        assert!(plain.options().is_empty());
        assert!(plain.same_key(&key));
    }

    #[test]
    fn from_patterns_by_address() {
        let ip = |s: &str| s.parse::<std::net::IpAddr>().expect("an address");
        assert_eq!(from_allows("10.0.0.0/8", ip("10.1.2.3")), Some(true));
        assert_eq!(from_allows("10.0.0.0/8", ip("192.168.1.5")), Some(false));
        assert_eq!(
            from_allows("192.168.1.*,!192.168.1.9", ip("192.168.1.9")),
            Some(false)
        );
        assert_eq!(
            from_allows("192.168.1.*,!192.168.1.9", ip("192.168.1.8")),
            Some(true)
        );
        assert_eq!(from_allows("*.example.org", ip("192.168.1.8")), None);
        assert_eq!(
            from_allows("*.example.org,10.0.0.1", ip("10.0.0.1")),
            Some(true)
        );
        assert_eq!(from_allows("fd00::/8", ip("fd12::1")), Some(true));
        assert_eq!(from_allows("fd00::/8", ip("10.0.0.1")), Some(false));
    }

    #[test]
    fn bad_options_are_refused_with_the_reason() {
        for (line, why) in [
            (
                format!("frm=\"x\" {KEY}"),
                "`frm` is not an option that takes a value",
            ),
            (
                format!("no-ptty {KEY}"),
                "`no-ptty` is not an authorized_keys option",
            ),
            (format!("from=10.0.0.1 {KEY}"), "must be in double quotes"),
            (format!("from=\"10.0.0.1 {KEY}"), "unclosed quote"),
            (format!("no-pty, {KEY}"), "end with a comma"),
            (format!("command {KEY}"), "needs a value"),
        ] {
            let e = line.parse::<SshPublicKey>().expect_err(&line);
            assert!(e.message.contains(why), "{line}: {}", e.message);
        }
    }
}
