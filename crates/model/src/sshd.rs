//! sshd's configuration language, as far as pifleet lets users write it: every keyword of
//! sshd_config(5) (OpenSSH 10.x), the grammar of its value, and whether `extra_settings` may set it.
//!
//! The NixOS module writes `services.openssh.settings` into sshd_config verbatim, one `Keyword value`
//! line each, and sshd keeps the first value it reads. A value that smuggles a line break in becomes
//! a directive of its own, which could turn passwords back on or shut the deploy user out; a keyword
//! pifleet or NixOS already sets would silently win over theirs. So every extra setting is checked
//! here before anything renders it: a known keyword (spelled as NixOS declares it), a value of the
//! keyword's type, and no control characters anywhere.
//!
//! The keyword table was read from OpenSSH's `servconf.c`/`servconf.h` keyword table and
//! sshd_config(5); the NixOS facts (declared list options, `UseDns`/`Macs` spellings, the lines the
//! module writes itself) from nixpkgs `nixos/modules/services/networking/ssh/sshd.nix`.

use std::borrow::Cow;
use std::fmt;

use crate::types::SshdValue;

/// What a keyword's value looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `yes` or `no`: a boolean in the inventory.
    YesNo,
    /// A non-negative number.
    Int,
    /// sshd's time format: `30`, `10m`, `1h30m` (s, m, h, d, w), or a number of seconds.
    Time,
    /// One of a fixed list of words.
    Choice(&'static [&'static str]),
    /// One argument (a path, a command, a pattern): any text on one line.
    Text,
    /// Several values separated by spaces (`AcceptEnv LANG LC_*`).
    SpaceList,
    /// Several values separated by commas (`Ciphers aes256-gcm@openssh.com,…`).
    CommaList,
}

/// Whether `extra_settings` may set a keyword.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Yes.
    Supported,
    /// No: pifleet or NixOS sets it; the text says what to use instead.
    Owned(&'static str),
    /// No: an old name of the keyword given.
    Alias(&'static str),
    /// No: removed from OpenSSH; sshd ignores it.
    Removed,
    /// No: compiled out of NixOS's OpenSSH (Kerberos, GSSAPI); sshd ignores it.
    Unsupported,
}

/// One sshd_config keyword.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keyword {
    /// The spelling NixOS declares (sshd itself ignores case): `UseDns`, `Macs`, else sshd_config(5)'s.
    pub name: &'static str,
    /// Its value's grammar.
    pub kind: Kind,
    /// Whether `extra_settings` may set it.
    pub status: Status,
}

impl Keyword {
    /// Whether the NixOS module declares this keyword as a list option (`listOf str`), so the
    /// generated module must give it a Nix list; other multi-value keywords take one joined string.
    pub fn nixos_list(&self) -> bool {
        NIXOS_LISTS.contains(&self.name)
    }
}

/// The `services.openssh.settings` keys NixOS declares with type `listOf str`.
const NIXOS_LISTS: &[&str] = &[
    "AcceptEnv",
    "AllowGroups",
    "AllowUsers",
    "DenyGroups",
    "DenyUsers",
    "Ciphers",
    "KexAlgorithms",
    "Macs",
];

const fn kw(name: &'static str, kind: Kind, status: Status) -> Keyword {
    Keyword { name, kind, status }
}

/// Every keyword sshd_config(5) knows, including old and compiled-out ones (so they get a precise
/// refusal rather than "unknown").
pub const KEYWORDS: &[Keyword] = &[
    kw("AcceptEnv", Kind::SpaceList, Status::Supported),
    kw(
        "AddressFamily",
        Kind::Choice(&["any", "inet", "inet6"]),
        Status::Supported,
    ),
    kw("AllowAgentForwarding", Kind::YesNo, Status::Supported),
    kw("AllowGroups", Kind::SpaceList, Status::Supported),
    kw(
        "AllowStreamLocalForwarding",
        Kind::Choice(&["yes", "all", "no", "local", "remote"]),
        Status::Supported,
    ),
    kw(
        "AllowTcpForwarding",
        Kind::Choice(&["yes", "all", "no", "local", "remote"]),
        Status::Supported,
    ),
    kw(
        "AllowUsers",
        Kind::SpaceList,
        Status::Owned("the `allow_users` field"),
    ),
    kw("AuthenticationMethods", Kind::Text, Status::Supported),
    kw(
        "AuthorizedKeysCommand",
        Kind::Text,
        Status::Owned("nothing: keys come from the inventory"),
    ),
    kw(
        "AuthorizedKeysCommandUser",
        Kind::Text,
        Status::Owned("nothing: keys come from the inventory"),
    ),
    kw(
        "AuthorizedKeysFile",
        Kind::SpaceList,
        Status::Owned("the `authorized_keys_in_homedir` field (keys come from the inventory)"),
    ),
    kw("AuthorizedPrincipalsCommand", Kind::Text, Status::Supported),
    kw(
        "AuthorizedPrincipalsCommandUser",
        Kind::Text,
        Status::Supported,
    ),
    kw(
        "AuthorizedPrincipalsFile",
        Kind::Text,
        Status::Owned("nothing: NixOS sets it from users' authorized principals"),
    ),
    kw("Banner", Kind::Text, Status::Supported),
    kw("CASignatureAlgorithms", Kind::CommaList, Status::Supported),
    kw("ChannelTimeout", Kind::Text, Status::Supported),
    kw("ChrootDirectory", Kind::Text, Status::Supported),
    kw("Ciphers", Kind::CommaList, Status::Supported),
    kw("ClientAliveCountMax", Kind::Int, Status::Supported),
    kw("ClientAliveInterval", Kind::Time, Status::Supported),
    kw(
        "Compression",
        Kind::Choice(&["yes", "delayed", "no"]),
        Status::Supported,
    ),
    kw("DenyGroups", Kind::SpaceList, Status::Supported),
    kw(
        "DenyUsers",
        Kind::SpaceList,
        Status::Owned("the `deny_users` field"),
    ),
    kw("DisableForwarding", Kind::YesNo, Status::Supported),
    kw("ExposeAuthInfo", Kind::YesNo, Status::Supported),
    kw(
        "FingerprintHash",
        Kind::Choice(&["md5", "sha256"]),
        Status::Supported,
    ),
    kw("ForceCommand", Kind::Text, Status::Supported),
    kw(
        "GatewayPorts",
        Kind::Choice(&["no", "yes", "clientspecified"]),
        Status::Supported,
    ),
    kw("GSSAPIAuthentication", Kind::YesNo, Status::Unsupported),
    kw("GSSAPICleanupCredentials", Kind::YesNo, Status::Unsupported),
    kw(
        "GSSAPIDelegateCredentials",
        Kind::YesNo,
        Status::Unsupported,
    ),
    kw(
        "GSSAPIStrictAcceptorCheck",
        Kind::YesNo,
        Status::Unsupported,
    ),
    kw(
        "HostbasedAcceptedAlgorithms",
        Kind::CommaList,
        Status::Supported,
    ),
    kw("HostbasedAuthentication", Kind::YesNo, Status::Supported),
    kw(
        "HostbasedUsesNameFromPacketOnly",
        Kind::YesNo,
        Status::Supported,
    ),
    kw("HostCertificate", Kind::Text, Status::Supported),
    kw(
        "HostKey",
        Kind::Text,
        Status::Owned("nothing: NixOS manages the host keys (`services.openssh.hostKeys`)"),
    ),
    kw("HostKeyAgent", Kind::Text, Status::Supported),
    kw("HostKeyAlgorithms", Kind::CommaList, Status::Supported),
    kw(
        "IgnoreRhosts",
        Kind::Choice(&["yes", "shosts-only", "no"]),
        Status::Supported,
    ),
    kw("IgnoreUserKnownHosts", Kind::YesNo, Status::Supported),
    kw(
        "Include",
        Kind::SpaceList,
        Status::Owned("a hand-written module"),
    ),
    kw("IPQoS", Kind::Text, Status::Supported),
    kw(
        "KbdInteractiveAuthentication",
        Kind::YesNo,
        Status::Owned("the `kbd_interactive_authentication` field"),
    ),
    kw("KerberosAuthentication", Kind::YesNo, Status::Unsupported),
    kw("KerberosGetAFSToken", Kind::YesNo, Status::Unsupported),
    kw("KerberosOrLocalPasswd", Kind::YesNo, Status::Unsupported),
    kw("KerberosTicketCleanup", Kind::YesNo, Status::Unsupported),
    kw("KexAlgorithms", Kind::CommaList, Status::Supported),
    kw(
        "ListenAddress",
        Kind::Text,
        Status::Owned(
            "nothing: sshd listens on every address of the host, which the lockout analysis relies on",
        ),
    ),
    kw("LoginGraceTime", Kind::Time, Status::Supported),
    kw(
        "LogLevel",
        Kind::Choice(&[
            "QUIET", "FATAL", "ERROR", "INFO", "VERBOSE", "DEBUG", "DEBUG1", "DEBUG2", "DEBUG3",
        ]),
        Status::Supported,
    ),
    kw("LogVerbose", Kind::SpaceList, Status::Supported),
    kw("Macs", Kind::CommaList, Status::Supported),
    kw(
        "Match",
        Kind::Text,
        Status::Owned("a hand-written module (`extra_settings` cannot express conditional blocks)"),
    ),
    kw("MaxAuthTries", Kind::Int, Status::Supported),
    kw("MaxSessions", Kind::Int, Status::Supported),
    kw("MaxStartups", Kind::Text, Status::Supported),
    kw("ModuliFile", Kind::Text, Status::Supported),
    kw("PAMServiceName", Kind::Text, Status::Supported),
    kw(
        "PasswordAuthentication",
        Kind::YesNo,
        Status::Owned("the `password_authentication` field"),
    ),
    kw("PermitEmptyPasswords", Kind::YesNo, Status::Supported),
    kw("PermitListen", Kind::Text, Status::Supported),
    kw("PermitOpen", Kind::Text, Status::Supported),
    kw(
        "PermitRootLogin",
        Kind::Choice(&[
            "yes",
            "prohibit-password",
            "without-password",
            "forced-commands-only",
            "no",
        ]),
        Status::Owned("the `permit_root_login` field"),
    ),
    kw("PermitTTY", Kind::YesNo, Status::Supported),
    kw(
        "PermitTunnel",
        Kind::Choice(&["yes", "point-to-point", "ethernet", "no"]),
        Status::Supported,
    ),
    kw("PermitUserEnvironment", Kind::Text, Status::Supported),
    kw("PermitUserRC", Kind::YesNo, Status::Supported),
    kw("PerSourceMaxStartups", Kind::Text, Status::Supported),
    kw("PerSourceNetBlockSize", Kind::Text, Status::Supported),
    kw("PerSourcePenalties", Kind::Text, Status::Supported),
    kw(
        "PerSourcePenaltyExemptList",
        Kind::CommaList,
        Status::Supported,
    ),
    kw(
        "PidFile",
        Kind::Text,
        Status::Owned("nothing: systemd tracks sshd"),
    ),
    kw("Port", Kind::Int, Status::Owned("the `port` field")),
    kw("PrintLastLog", Kind::YesNo, Status::Supported),
    kw("PrintMotd", Kind::YesNo, Status::Supported),
    kw(
        "PubkeyAcceptedAlgorithms",
        Kind::CommaList,
        Status::Supported,
    ),
    kw("PubkeyAuthentication", Kind::YesNo, Status::Supported),
    kw("PubkeyAuthOptions", Kind::Text, Status::Supported),
    kw("RDomain", Kind::Text, Status::Supported),
    kw("RefuseConnection", Kind::YesNo, Status::Supported),
    kw("RekeyLimit", Kind::Text, Status::Supported),
    kw("RequiredRSASize", Kind::Int, Status::Supported),
    kw("RevokedKeys", Kind::SpaceList, Status::Supported),
    kw("SecurityKeyProvider", Kind::Text, Status::Supported),
    kw("SetEnv", Kind::SpaceList, Status::Supported),
    kw("SshdAuthPath", Kind::Text, Status::Supported),
    kw("SshdSessionPath", Kind::Text, Status::Supported),
    kw("StreamLocalBindMask", Kind::Text, Status::Supported),
    kw("StreamLocalBindUnlink", Kind::YesNo, Status::Supported),
    kw("StrictModes", Kind::YesNo, Status::Supported),
    kw(
        "Subsystem",
        Kind::Text,
        Status::Owned("nothing: NixOS configures the sftp subsystem"),
    ),
    kw(
        "SyslogFacility",
        Kind::Choice(&[
            "DAEMON", "USER", "AUTH", "AUTHPRIV", "LOCAL0", "LOCAL1", "LOCAL2", "LOCAL3", "LOCAL4",
            "LOCAL5", "LOCAL6", "LOCAL7",
        ]),
        Status::Supported,
    ),
    kw("TCPKeepAlive", Kind::YesNo, Status::Supported),
    kw("TrustedUserCAKeys", Kind::Text, Status::Supported),
    kw("UnusedConnectionTimeout", Kind::Text, Status::Supported),
    kw("UseDns", Kind::YesNo, Status::Supported),
    kw("UsePAM", Kind::YesNo, Status::Supported),
    kw("VersionAddendum", Kind::Text, Status::Supported),
    kw("X11DisplayOffset", Kind::Int, Status::Supported),
    kw("X11Forwarding", Kind::YesNo, Status::Supported),
    kw("X11UseLocalhost", Kind::YesNo, Status::Supported),
    kw(
        "XAuthLocation",
        Kind::Text,
        Status::Owned("nothing: NixOS sets it"),
    ),
    kw(
        "ChallengeResponseAuthentication",
        Kind::YesNo,
        Status::Owned("the `kbd_interactive_authentication` field"),
    ),
    kw(
        "DSAAuthentication",
        Kind::YesNo,
        Status::Alias("PubkeyAuthentication"),
    ),
    kw(
        "HostbasedAcceptedKeyTypes",
        Kind::CommaList,
        Status::Alias("HostbasedAcceptedAlgorithms"),
    ),
    kw("HostDSAKey", Kind::Text, Status::Alias("HostKey")),
    kw("KeepAlive", Kind::YesNo, Status::Alias("TCPKeepAlive")),
    kw(
        "PubkeyAcceptedKeyTypes",
        Kind::CommaList,
        Status::Alias("PubkeyAcceptedAlgorithms"),
    ),
    kw(
        "SKeyAuthentication",
        Kind::YesNo,
        Status::Alias("KbdInteractiveAuthentication"),
    ),
    kw("AFSTokenPassing", Kind::Text, Status::Removed),
    kw("AuthorizedKeysFile2", Kind::Text, Status::Removed),
    kw("CheckMail", Kind::Text, Status::Removed),
    kw("KerberosTgtPassing", Kind::Text, Status::Removed),
    kw("KeyRegenerationInterval", Kind::Text, Status::Removed),
    kw("Protocol", Kind::Text, Status::Removed),
    kw("ReverseMappingCheck", Kind::Text, Status::Removed),
    kw("RhostsAuthentication", Kind::Text, Status::Removed),
    kw("RhostsRSAAuthentication", Kind::Text, Status::Removed),
    kw("RSAAuthentication", Kind::Text, Status::Removed),
    kw("ServerKeyBits", Kind::Text, Status::Removed),
    kw("UseLogin", Kind::Text, Status::Removed),
    kw("UsePrivilegeSeparation", Kind::Text, Status::Removed),
    kw("VerifyReverseMapping", Kind::Text, Status::Removed),
];

/// The keyword `name` (compared without case, as sshd does).
pub fn keyword(name: &str) -> Option<&'static Keyword> {
    KEYWORDS.iter().find(|k| k.name.eq_ignore_ascii_case(name))
}

/// The known keyword closest to `name`, for "did you mean" (only when it is close).
pub fn closest(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    KEYWORDS
        .iter()
        .filter(|k| k.status == Status::Supported)
        .map(|k| {
            (
                strsim::levenshtein(&lower, &k.name.to_ascii_lowercase()),
                k.name,
            )
        })
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min()
        .map(|(_, k)| k)
}

/// Why an extra setting cannot be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettingError {
    /// Not an sshd keyword.
    Unknown {
        /// The closest keyword, if one is close.
        suggestion: Option<&'static str>,
    },
    /// pifleet or NixOS sets this keyword; the text says what to use instead.
    Owned(&'static str),
    /// An old name: use the new one.
    Alias(&'static str),
    /// Removed from OpenSSH.
    Removed,
    /// Compiled out of NixOS's OpenSSH.
    Unsupported,
    /// The value has a control character (a line break would become an sshd directive of its own).
    ControlCharacter,
    /// The value does not fit the keyword's grammar; the text says what it takes.
    Value(String),
}

impl fmt::Display for SettingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SettingError::Unknown { suggestion: Some(s) } => {
                write!(f, "is not an sshd_config keyword; did you mean `{s}`?")
            }
            SettingError::Unknown { suggestion: None } => f.write_str("is not an sshd_config keyword"),
            SettingError::Owned(instead) => {
                write!(f, "is set by pifleet or NixOS; use {instead}")
            }
            SettingError::Alias(new) => write!(f, "is an old name of `{new}`; write `{new}`"),
            SettingError::Removed => f.write_str("was removed from OpenSSH; sshd ignores it"),
            SettingError::Unsupported => f.write_str(
                "is not supported by NixOS's OpenSSH (built without Kerberos and GSSAPI); sshd ignores it",
            ),
            SettingError::ControlCharacter => f.write_str(
                "has a control character (a line break would become an sshd directive of its own)",
            ),
            SettingError::Value(expected) => f.write_str(expected),
        }
    }
}

/// A checked extra setting, ready to render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting<'a> {
    /// The keyword as NixOS spells it.
    pub keyword: &'static Keyword,
    /// The value as `services.openssh.settings` takes it.
    pub value: SettingValue<'a>,
}

/// One value of `services.openssh.settings`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettingValue<'a> {
    /// A boolean (NixOS writes yes/no).
    Bool(bool),
    /// A number.
    Int(i64),
    /// A single string.
    Str(Cow<'a, str>),
    /// A list (for keywords NixOS declares as lists, such as `AllowUsers`).
    List(Vec<Cow<'a, str>>),
}

/// Whether `s` holds a character that has no place on one line of a configuration file: C0 and C1
/// controls, DEL, and the Unicode line and paragraph separators.
pub fn has_control(s: &str) -> bool {
    s.chars()
        .any(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}'))
}

/// Checks one extra setting and returns it as the generated module writes it.
pub fn check_setting<'a>(name: &str, value: &'a SshdValue) -> Result<Setting<'a>, SettingError> {
    let Some(keyword) = keyword(name) else {
        return Err(SettingError::Unknown {
            suggestion: closest(name),
        });
    };
    match keyword.status {
        Status::Supported => {}
        Status::Owned(instead) => return Err(SettingError::Owned(instead)),
        Status::Alias(new) => return Err(SettingError::Alias(new)),
        Status::Removed => return Err(SettingError::Removed),
        Status::Unsupported => return Err(SettingError::Unsupported),
    }
    let value = typed(keyword, value)?;
    Ok(Setting { keyword, value })
}

/// The words of a string or list value, each checked for control characters and emptiness.
fn words<'a>(value: &'a SshdValue, separator: char) -> Result<Vec<Cow<'a, str>>, SettingError> {
    let items: Vec<&'a str> = match value {
        SshdValue::List(items) => items.iter().map(String::as_str).collect(),
        SshdValue::String(s) => s
            .split(|c: char| c == separator || (separator == ' ' && c.is_whitespace()))
            .filter(|w| !w.is_empty())
            .collect(),
        _ => {
            return Err(SettingError::Value(format!(
                "takes a list of words (or one string, separated by `{}`)",
                if separator == ' ' { "spaces" } else { "commas" }
            )));
        }
    };
    if items.is_empty() {
        return Err(SettingError::Value("takes at least one value".into()));
    }
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        if has_control(item) {
            return Err(SettingError::ControlCharacter);
        }
        if item.is_empty()
            || item.contains(separator)
            || (separator == ' ' && item.contains(char::is_whitespace))
        {
            return Err(SettingError::Value(format!(
                "list items cannot be empty or contain {}: `{item}`",
                if separator == ' ' {
                    "white space"
                } else {
                    "commas"
                }
            )));
        }
        out.push(Cow::Borrowed(item));
    }
    Ok(out)
}

fn typed<'a>(keyword: &Keyword, value: &'a SshdValue) -> Result<SettingValue<'a>, SettingError> {
    if let SshdValue::String(s) = value
        && has_control(s)
    {
        return Err(SettingError::ControlCharacter);
    }
    if let SshdValue::List(items) = value
        && items.iter().any(|i| has_control(i))
    {
        return Err(SettingError::ControlCharacter);
    }
    Ok(match keyword.kind {
        Kind::YesNo => match value {
            SshdValue::Bool(b) => SettingValue::Bool(*b),
            _ => return Err(SettingError::Value("takes true or false".into())),
        },
        Kind::Int => match value {
            SshdValue::Int(i) if *i >= 0 => SettingValue::Int(*i),
            _ => return Err(SettingError::Value("takes a number, 0 or more".into())),
        },
        Kind::Time => match value {
            SshdValue::Int(i) if *i >= 0 => SettingValue::Int(*i),
            SshdValue::String(s) if is_time(s) => SettingValue::Str(Cow::Borrowed(s)),
            _ => {
                return Err(SettingError::Value(
                    "takes a time: seconds as a number, or sshd's format such as \"90s\", \"10m\" or \"1h30m\"".into(),
                ));
            }
        },
        Kind::Choice(choices) => match value {
            SshdValue::String(s) => match choices.iter().find(|c| c.eq_ignore_ascii_case(s)) {
                Some(_) => SettingValue::Str(Cow::Borrowed(s)),
                None => {
                    return Err(SettingError::Value(format!(
                        "takes one of {}",
                        choices.join(", ")
                    )));
                }
            },
            SshdValue::Bool(b) if choices.contains(&"yes") && choices.contains(&"no") => {
                SettingValue::Str(Cow::Borrowed(if *b { "yes" } else { "no" }))
            }
            _ => {
                return Err(SettingError::Value(format!(
                    "takes one of {}",
                    choices.join(", ")
                )));
            }
        },
        Kind::Text => match value {
            SshdValue::String(s) if !s.trim().is_empty() => SettingValue::Str(Cow::Borrowed(s)),
            SshdValue::Int(i) => SettingValue::Int(*i),
            _ => return Err(SettingError::Value("takes one string".into())),
        },
        Kind::SpaceList | Kind::CommaList => {
            let separator = if keyword.kind == Kind::SpaceList {
                ' '
            } else {
                ','
            };
            let items = words(value, separator)?;
            if keyword.nixos_list() {
                SettingValue::List(items)
            } else {
                let joined = items.join(if separator == ' ' { " " } else { "," });
                SettingValue::Str(Cow::Owned(joined))
            }
        }
    })
}

/// sshd's time format: a sequence of `number[qualifier]`, qualifiers s, m, h, d, w (any case).
fn is_time(s: &str) -> bool {
    let mut digits = false;
    let mut any = false;
    for c in s.chars() {
        match c {
            '0'..='9' => digits = true,
            's' | 'S' | 'm' | 'M' | 'h' | 'H' | 'd' | 'D' | 'w' | 'W' if digits => {
                digits = false;
                any = true;
            }
            _ => return false,
        }
    }
    digits || any
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_are_unique_without_case() {
        let mut seen = std::collections::BTreeSet::new();
        for k in KEYWORDS {
            assert!(seen.insert(k.name.to_ascii_lowercase()), "{} twice", k.name);
        }
    }

    #[test]
    fn times() {
        for ok in ["30", "10m", "1h30m", "2W", "0"] {
            assert!(is_time(ok), "{ok}");
        }
        for bad in ["", "m", "10x", "1h 30m", "-5", "10mm"] {
            assert!(!is_time(bad), "{bad}");
        }
    }
}
