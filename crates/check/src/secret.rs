//! Telling secrets in container settings apart from ordinary values, with a confidence.
//!
//! Everything in a container's settings ends up in the world-readable Nix store, so a leaked secret
//! is serious; but an error cannot be silenced, so it must be sure. The rule, documented in
//! docs/diagnostics.md:
//!
//! - **Confident** (an error): a value shaped like a credential whatever its name (a URL with
//!   `user:password@`, a GitHub/GitLab/Slack/Stripe/AWS/Google token, a JWT, a private key block),
//!   or a variable whose name *ends* in a secret word (`DB_PASSWORD`, `GITHUB_TOKEN`, `MQTT_PASS`,
//!   `API_KEY`, `CLIENT_SECRET`, `SMTP_CREDENTIALS`) with a value that is not a number or a boolean.
//! - **A guess** (a warning, which a host can `allow` with a reason): a name that merely contains
//!   such a word elsewhere (`SECRET_NAME`), or ends in a word that is often, not always, secret
//!   (`SORT_KEY`, `AUTH`), with a value that looks random.
//! - Names ending in `FILE`, `PATH` or `DIR` point at a file, which is the right way to pass a
//!   secret, but only when the value is an absolute path; otherwise the name is judged without it.
//!
//! Words are split at `_`, `-`, `.` and lower-to-upper case changes, and compared whole, so
//! `MONKEY` is not a key and `SORT_KEY = "name"` is not an error.

/// How sure a finding is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Finding {
    /// Surely a secret: an error.
    Confident(String),
    /// Possibly a secret: a warning.
    Guess(String),
}

/// Words that make a variable a secret when they end its name.
const SECRET_WORDS: &[&str] = &[
    "PASSWORD",
    "PASSWD",
    "PASS",
    "PWD",
    "PASSPHRASE",
    "SECRET",
    "SECRETS",
    "TOKEN",
    "CREDENTIAL",
    "CREDENTIALS",
    "APIKEY",
    "PRIVATEKEY",
];

/// Words that make `KEY` a secret when they come right before it: `API_KEY`, `SECRET_KEY`.
const KEY_QUALIFIERS: &[&str] = &[
    "API",
    "SECRET",
    "PRIVATE",
    "ACCESS",
    "SIGNING",
    "ENCRYPTION",
    "MASTER",
    "AUTH",
    "LICENSE",
];

/// Last words that are secret often, but not always (`SORT_KEY`, `AUTH=basic`).
const MAYBE_WORDS: &[&str] = &["KEY", "AUTH", "SALT", "HASH", "SEED", "COOKIE", "SESSION"];

/// The words of a variable name, upper case.
fn words(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut prev_lower = false;
    for c in name.chars() {
        if !c.is_ascii_alphanumeric() {
            if !word.is_empty() {
                out.push(std::mem::take(&mut word));
            }
            prev_lower = false;
            continue;
        }
        if c.is_ascii_uppercase() && prev_lower && !word.is_empty() {
            out.push(std::mem::take(&mut word));
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        word.push(c.to_ascii_uppercase());
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

/// Whether a value is plainly not a secret: a number, a boolean, a placeholder to be filled from
/// the environment.
fn trivial(value: &str) -> bool {
    let v = value.trim();
    v.is_empty()
        || v.chars().all(|c| c.is_ascii_digit() || c == '.')
        || matches!(
            v.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "none" | "null"
        )
        || (v.starts_with("${") && v.ends_with('}'))
}

/// Whether a value looks random enough to be a key: long, and mixing letters with digits or cases.
fn looks_random(value: &str) -> bool {
    let v = value.trim();
    if v.len() < 16 || v.contains(char::is_whitespace) {
        return false;
    }
    let classes = [
        v.chars().any(|c| c.is_ascii_lowercase()),
        v.chars().any(|c| c.is_ascii_uppercase()),
        v.chars().any(|c| c.is_ascii_digit()),
    ];
    classes.iter().filter(|c| **c).count() >= 2 && !v.contains('/')
}

/// A token format: its prefix, how many characters follow at least, of which alphabet, and its name.
type TokenShape = (&'static str, usize, fn(char) -> bool, &'static str);

/// A credential recognisable by its shape, whatever the variable is called.
pub(crate) fn shaped_credential(value: &str) -> Option<&'static str> {
    if url_with_password(value) {
        return Some("a URL with a password in it");
    }
    if value.contains("PRIVATE KEY-----") {
        return Some("a private key");
    }
    let token = |prefix: &str, min_rest: usize, alphabet: fn(char) -> bool| {
        value
            .split(|c: char| !(c.is_ascii_alphanumeric() || "_-".contains(c)))
            .any(|w| {
                w.strip_prefix(prefix)
                    .is_some_and(|rest| rest.len() >= min_rest && rest.chars().all(alphabet))
            })
    };
    let alnum = |c: char| c.is_ascii_alphanumeric();
    let alnum_dash = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    let upper_digit = |c: char| c.is_ascii_uppercase() || c.is_ascii_digit();
    let known: &[TokenShape] = &[
        ("ghp_", 30, alnum, "a GitHub token"),
        ("gho_", 30, alnum, "a GitHub token"),
        ("ghu_", 30, alnum, "a GitHub token"),
        ("ghs_", 30, alnum, "a GitHub token"),
        ("ghr_", 30, alnum, "a GitHub token"),
        ("github_pat_", 30, alnum_dash, "a GitHub token"),
        ("glpat-", 20, alnum_dash, "a GitLab token"),
        ("xoxb-", 20, alnum_dash, "a Slack token"),
        ("xoxp-", 20, alnum_dash, "a Slack token"),
        ("xoxa-", 20, alnum_dash, "a Slack token"),
        ("xoxr-", 20, alnum_dash, "a Slack token"),
        ("xoxs-", 20, alnum_dash, "a Slack token"),
        ("sk_live_", 16, alnum, "a Stripe key"),
        ("AKIA", 16, upper_digit, "an AWS access key"),
        ("ASIA", 16, upper_digit, "an AWS access key"),
        ("AIza", 35, alnum_dash, "a Google API key"),
    ];
    for (prefix, min, alphabet, what) in known {
        if token(prefix, *min, *alphabet) {
            return Some(what);
        }
    }
    let jwt = value.split('.').collect::<Vec<_>>();
    if jwt.len() == 3
        && jwt[0].starts_with("eyJ")
        && jwt[1].starts_with("eyJ")
        && jwt[2].len() >= 16
    {
        return Some("a JSON web token");
    }
    None
}

/// `scheme://user:password@host…` with a real password (not empty, not a `${…}` placeholder).
fn url_with_password(value: &str) -> bool {
    value.split_whitespace().any(|word| {
        let Some((_, rest)) = word.split_once("://") else {
            return false;
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let Some((userinfo, _)) = authority.rsplit_once('@') else {
            return false;
        };
        userinfo.split_once(':').is_some_and(|(_, password)| {
            !password.is_empty() && !password.starts_with("${") && !password.starts_with('$')
        })
    })
}

/// Judges a variable `name = value` (from `environment`, a label, or `NAME=value` in a command).
pub(crate) fn judge_variable(name: &str, value: &str) -> Option<Finding> {
    if let Some(what) = shaped_credential(value) {
        return Some(Finding::Confident(format!("its value is {what}")));
    }
    if trivial(value) {
        return None;
    }
    let mut words = words(name);
    // `PASSWORD_FILE=/run/secrets/db` names a file, the right way to pass a secret.
    if words
        .last()
        .is_some_and(|w| matches!(w.as_str(), "FILE" | "PATH" | "DIR"))
    {
        if value.starts_with('/') {
            return None;
        }
        words.pop();
    }
    let last = words.last()?;
    let before_last = words.len().checked_sub(2).map(|i| words[i].as_str());
    let key_pair = last == "KEY" && before_last.is_some_and(|w| KEY_QUALIFIERS.contains(&w));
    if SECRET_WORDS.contains(&last.as_str()) || key_pair {
        return Some(Finding::Confident(format!("`{name}` names a secret")));
    }
    let secret_inside = words.iter().any(|w| SECRET_WORDS.contains(&w.as_str()));
    if (MAYBE_WORDS.contains(&last.as_str()) || secret_inside) && looks_random(value) {
        return Some(Finding::Guess(format!(
            "`{name}` may name a secret, and its value looks random"
        )));
    }
    None
}

/// Judges the words of a command line (`command`, `entrypoint`, `extra_options`): credentials by
/// shape, `NAME=value` pairs, and `--password=…` or `--password …` flags.
pub(crate) fn judge_arguments(args: &[&str]) -> Option<(usize, Finding)> {
    for (i, arg) in args.iter().enumerate() {
        if let Some(what) = shaped_credential(arg) {
            return Some((i, Finding::Confident(format!("it holds {what}"))));
        }
        let flag = arg.trim_start_matches('-');
        let is_flag = flag.len() < arg.len();
        // `--env=NAME=value`, `-e NAME=value`, `NAME=value`, `--password=value`.
        let pair = flag.split_once('=').map(|(k, v)| match v.split_once('=') {
            Some((name, value)) if matches!(k, "env" | "e" | "build-arg" | "label" | "l") => {
                (name, value)
            }
            _ => (k, v),
        });
        if let Some((name, value)) = pair
            && let Some(Finding::Confident(why)) = judge_variable(name, value)
        {
            return Some((i, Finding::Confident(why)));
        }
        // `--password value`.
        if is_flag
            && !flag.contains('=')
            && let Some(value) = args.get(i + 1)
            && !value.starts_with('-')
            && let Some(Finding::Confident(_)) = judge_variable(flag, value)
        {
            return Some((i + 1, Finding::Confident(format!("it follows `{arg}`"))));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn confident(name: &str, value: &str) -> bool {
        matches!(judge_variable(name, value), Some(Finding::Confident(_)))
    }

    fn guess(name: &str, value: &str) -> bool {
        matches!(judge_variable(name, value), Some(Finding::Guess(_)))
    }

    #[test]
    fn names_ending_in_a_secret_word_are_confident() {
        for name in [
            "DB_PASSWORD",
            "MQTT_PASS",
            "ADMIN_PWD",
            "GITHUB_TOKEN",
            "client-secret",
            "SMTP_CREDENTIALS",
            "GPG_PASSPHRASE",
            "API_KEY",
            "apiKey",
            "AWS_SECRET_ACCESS_KEY",
            "PASSWORD_FILE",
        ] {
            assert!(confident(name, "hunter2-hunter2"), "{name}");
        }
    }

    #[test]
    fn ordinary_names_and_values_are_not_errors() {
        for (name, value) in [
            ("MONKEY", "banana"),
            ("SORT_KEY", "name"),
            ("TZ", "Europe/Amsterdam"),
            ("KEYBOARD_LAYOUT", "us"),
            ("PASSWORD_FILE", "/run/secrets/db"),
            ("TOKEN_TTL", "3600"),
            ("DB_PASSWORD", "${DB_PASSWORD}"),
            ("AUTH", "basic"),
            ("PUID", "1000"),
            ("DATABASE_URL", "postgres://app@db/app"),
        ] {
            assert_eq!(judge_variable(name, value), None, "{name}={value}");
        }
    }

    #[test]
    fn random_values_under_maybe_words_are_guesses() {
        assert!(guess("SESSION_KEY", "x8Jq2mL0v9Zt4Wc7"));
        assert!(guess("SECRET_NAME", "k3jd8Fh2Lq9Xw0Zp"));
        assert!(!guess("SORT_KEY", "name"));
    }

    #[test]
    fn shaped_credentials_are_confident_whatever_the_name() {
        for value in [
            "postgres://app:s3cret@db:5432/app",
            "ghp_0123456789abcdefghijABCDEFGHIJ012345",
            "xoxb-1234567890-1234567890123-abcdefghijklmnop",
            "AKIAIOSFODNN7EXAMPLE",
            "-----BEGIN OPENSSH PRIVATE KEY-----",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        ] {
            assert!(confident("X", value), "{value}");
        }
        assert!(!confident("X", "https://example.org/a:b@c"));
        assert!(!confident("X", "mqtt://user:${PASSWORD}@broker"));
    }

    #[test]
    fn command_lines() {
        assert_eq!(
            judge_arguments(&["--db", "postgres://a:b@db/x"]).map(|f| f.0),
            Some(1)
        );
        assert_eq!(
            judge_arguments(&["--password", "hunter2"]).map(|f| f.0),
            Some(1)
        );
        assert_eq!(
            judge_arguments(&["--env=DB_PASSWORD=hunter2"]).map(|f| f.0),
            Some(0)
        );
        assert_eq!(
            judge_arguments(&["-e", "API_KEY=abc123def"]).map(|f| f.0),
            Some(1)
        );
        assert_eq!(
            judge_arguments(&["--network=host", "--device=/dev/ttyUSB0"]),
            None
        );
        assert_eq!(
            judge_arguments(&["--password-file", "/run/secrets/p"]),
            None
        );
    }
}
