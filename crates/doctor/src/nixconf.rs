//! Reading nix.conf the way Nix does, for the settings the checks need.
//!
//! Nix merges several files and lets `extra-<name>` append to `<name>` while a plain assignment
//! replaces it; NixOS writes `extra-` settings for binfmt emulation. Judging a check from one
//! literal line would give wrong answers, so this applies the same rules: files in order (system
//! then user), `include` / `!include` in place, later assignments win, `extra-` appends.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// Settings whose own names start with `extra-`.
const OWN_NAME: &[&str] = &["extra-platforms"];

/// The merged settings of one or more nix.conf files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NixConf {
    settings: BTreeMap<String, Vec<String>>,
    sources: Vec<PathBuf>,
}

impl NixConf {
    /// Reads `root/etc/nix/nix.conf`, then `user` if given. Missing files count as empty.
    pub fn load(root: &Path, user: Option<&Path>) -> Self {
        let mut conf = Self::default();
        conf.read_file(&root.join("etc/nix/nix.conf"), 0);
        if let Some(user) = user {
            conf.read_file(user, 0);
        }
        conf
    }

    /// Parses one file's text (for tests and `NIX_CONFIG`).
    pub fn parse(text: &str) -> Self {
        let mut conf = Self::default();
        conf.apply(text, None, 0);
        conf
    }

    fn read_file(&mut self, path: &Path, depth: u32) {
        if let Ok(text) = fs::read_to_string(path) {
            self.sources.push(path.to_path_buf());
            self.apply(&text, path.parent(), depth);
        }
    }

    /// Applies more configuration text on top, as `NIX_CONFIG` does.
    pub fn apply(&mut self, text: &str, dir: Option<&Path>, depth: u32) {
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            if let Some(rest) = line
                .strip_prefix("!include ")
                .or_else(|| line.strip_prefix("include "))
            {
                // Includes are relative to the including file; a loop stops at a sane depth.
                if depth < 8 {
                    let path =
                        dir.map_or_else(|| PathBuf::from(rest.trim()), |d| d.join(rest.trim()));
                    self.read_file(&path, depth + 1);
                }
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let (key, value) = (key.trim(), value.split_whitespace().map(str::to_owned));
            // `extra-platforms` is a setting of its own (so `extra-extra-platforms` appends to it);
            // any other `extra-<name>` appends to `<name>`, as in Nix's `Config::set`.
            if let Some(base) = key.strip_prefix("extra-")
                && !OWN_NAME.contains(&key)
            {
                self.settings
                    .entry(base.to_owned())
                    .or_default()
                    .extend(value);
            } else {
                self.settings.insert(key.to_owned(), value.collect());
            }
        }
    }

    /// The words of a setting, `extra-` additions included.
    pub fn values(&self, key: &str) -> Vec<&str> {
        self.settings
            .get(key)
            .map(|v| v.iter().map(String::as_str).collect())
            .unwrap_or_default()
    }

    /// The files read, for messages.
    pub fn describe_sources(&self) -> String {
        if self.sources.is_empty() {
            "nix.conf (none found)".to_owned()
        } else {
            self.sources
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(" + ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_appends_and_plain_replaces() {
        let conf = NixConf::parse(
            "experimental-features = nix-command\nextra-experimental-features = flakes # comment\n",
        );
        assert_eq!(
            conf.values("experimental-features"),
            ["nix-command", "flakes"]
        );
        let conf =
            NixConf::parse("experimental-features = flakes\nexperimental-features = nix-command\n");
        assert_eq!(conf.values("experimental-features"), ["nix-command"]);
        let conf =
            NixConf::parse("extra-platforms = i686-linux\nextra-extra-platforms = aarch64-linux\n");
        assert_eq!(
            conf.values("extra-platforms"),
            ["i686-linux", "aarch64-linux"]
        );
        assert!(conf.values("missing").is_empty());
    }
}
