//! Strings of the health checks a host declares for deploy confirmations (`deploy.health`):
//! systemd unit names and the URLs fetched on the host.
//!
//! Both end up in a shell command line on the target. Deploy quotes them (shlex), but quoting only
//! makes a value one word: a unit name that starts with `-` or a URL with a `file:` scheme would
//! still be read as something else. So the grammar is checked here, once, while loading, and a value
//! of these types is known to be a plain unit name or an http(s) URL.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

use super::{NO_FORMAT, NameError, StringKind, err};
use crate::ProblemCode;

/// The unit types systemd knows, as suffixes.
const UNIT_SUFFIXES: &[&str] = &[
    ".service",
    ".socket",
    ".target",
    ".timer",
    ".mount",
    ".automount",
    ".path",
    ".swap",
    ".slice",
    ".scope",
    ".device",
];

/// systemd's unit name grammar (`unit_name_is_valid`): letters, digits and `:-_.\@`, at most 255
/// bytes. Not starting with `-` is ours: the name is an argument of `systemctl is-active`.
const UNIT_PATTERN: &str = "^[A-Za-z0-9:_.@\\\\][A-Za-z0-9:_.@\\\\-]{0,254}$";

fn check_unit_name(s: &str) -> Result<(), NameError> {
    let code = ProblemCode::InvalidUnitName;
    let fix = "write a systemd unit name such as \"nginx.service\" or \"home-assistant\" (letters, digits and `:-_.\\@`)";
    if s.is_empty() {
        return Err(err(code, format!("the unit name is empty: {fix}")));
    }
    if s.len() > 255 {
        return Err(err(
            code,
            format!("unit name `{s}` is longer than 255 characters"),
        ));
    }
    if s.starts_with('-') {
        return Err(err(code, format!("unit name `{s}` starts with '-': {fix}")));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || ":-_.\\@".contains(*c)))
    {
        return Err(err(code, format!("unit name `{s}` contains {c:?}: {fix}")));
    }
    Ok(())
}

string_newtype! {
    /// A systemd unit that must be active before a deploy is confirmed, e.g. `nginx.service`. Without a
    /// unit type suffix it is a service (systemctl's own rule).
    UnitName, kind = ProblemCode::InvalidUnitName, pattern = Some(UNIT_PATTERN), format = NO_FORMAT,
    description = "systemd unit name, e.g. \"nginx.service\"; without a suffix it is a service.",
    check = check_unit_name
}

impl UnitName {
    /// The name with its type: `nginx` is `nginx.service`.
    pub fn with_suffix(&self) -> String {
        if UNIT_SUFFIXES.iter().any(|s| self.0.ends_with(s)) {
            self.0.clone()
        } else {
            format!("{}.service", self.0)
        }
    }
}

fn check_health_url(s: &str) -> Result<(), NameError> {
    let code = ProblemCode::InvalidHealthUrl;
    let fix = "write an http:// or https:// URL as curl on the host fetches it, e.g. \"http://127.0.0.1:8123/\"";
    let uri = fluent_uri::Uri::parse(s)
        .map_err(|e| err(code, format!("`{s}` is not a URL ({e}): {fix}")))?;
    let scheme = uri.scheme().as_str().to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err(err(
            code,
            format!(
                "`{s}` uses the scheme `{scheme}`; health checks fetch http and https only: {fix}"
            ),
        ));
    }
    let Some(authority) = uri.authority() else {
        return Err(err(code, format!("`{s}` names no host: {fix}")));
    };
    if authority.host().is_empty() {
        return Err(err(code, format!("`{s}` names no host: {fix}")));
    }
    if authority.has_userinfo() {
        return Err(err(
            code,
            format!(
                "`{s}` carries a user name or password: health checks send no credentials, and the inventory is no place for them"
            ),
        ));
    }
    if authority.port_to_u16().map_or(true, |p| p == Some(0)) {
        return Err(err(code, format!("`{s}` has an invalid port: {fix}")));
    }
    if uri.fragment().is_some() {
        return Err(err(
            code,
            format!("`{s}` has a fragment (`#…`), which is never sent: remove it"),
        ));
    }
    if s.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(err(
            code,
            format!("`{s}` contains spaces or control characters: {fix}"),
        ));
    }
    Ok(())
}

string_newtype! {
    /// An http(s) URL that must answer with a 2xx status before a deploy is confirmed. It is fetched on
    /// the host itself, so it may name `localhost` and needs no open firewall port.
    HealthUrl, kind = ProblemCode::InvalidHealthUrl, pattern = super::NO_PATTERN, format = Some("pifleet-health-url"),
    description = "http:// or https:// URL fetched with curl on the host itself, e.g. \"http://127.0.0.1:8123/\".",
    check = check_health_url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_names() {
        for ok in [
            "nginx.service",
            "home-assistant",
            "getty@tty1.service",
            "a:b_c.d",
        ] {
            assert!(UnitName::new(ok).is_ok(), "{ok}");
        }
        assert_eq!(
            UnitName::new("nginx").unwrap().with_suffix(),
            "nginx.service"
        );
        assert_eq!(UnitName::new("x.socket").unwrap().with_suffix(), "x.socket");
        for bad in ["", "-x", "a b", "a;b", "$(x)", "a'b"] {
            let e = UnitName::new(bad).unwrap_err();
            assert_eq!(e.code, ProblemCode::InvalidUnitName, "{bad}");
        }
    }

    #[test]
    fn health_urls() {
        for ok in [
            "http://127.0.0.1:8123/",
            "https://localhost/health?x=1&y=2",
            "http://[::1]:80/a",
            "HTTP://pi.lan",
        ] {
            assert!(HealthUrl::new(ok).is_ok(), "{ok}");
        }
        for (bad, why) in [
            ("file:///etc/shadow", "scheme `file`"),
            ("-o/tmp/x", "not a URL"),
            ("http://user:pw@localhost/", "user name or password"),
            ("http:///x", "no host"),
            ("http://localhost:0/", "invalid port"),
            ("http://localhost/#x", "fragment"),
            ("localhost:8080", "scheme `localhost`"),
            ("http://localhost/a b", "not a URL"),
        ] {
            let e = HealthUrl::new(bad).unwrap_err();
            assert_eq!(e.code, ProblemCode::InvalidHealthUrl, "{bad}");
            assert!(e.message.contains(why), "{bad}: {}", e.message);
        }
    }
}
