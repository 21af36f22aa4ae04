//! Container image references: `[registry/]repository[:tag][@digest]`.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

use super::{NameError, StringKind, err};
use crate::ProblemCode;

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
        let code = ProblemCode::InvalidImage;
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

/// Schema pattern: lower-case repository path components (after an optional registry host), then a
/// tag, a digest or both.
const IMAGE_PATTERN: &str = concat!(
    r"^([A-Za-z0-9-]*[.:][A-Za-z0-9.:-]*/|localhost/)?",
    r"[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*)*",
    r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}(@sha256:[0-9a-f]{64}|@sha512:[0-9a-f]{128})?",
    r"|@sha256:[0-9a-f]{64}|@sha512:[0-9a-f]{128})$"
);

parsed_string_schema!(
    ImageRef,
    ProblemCode::InvalidImage,
    "pifleet-image",
    Some(IMAGE_PATTERN),
    "Container image with a tag or digest: \"ghcr.io/owner/name:1.2.3\", \"eclipse-mosquitto:2.0.20\" or \"name@sha256:…\"."
);
