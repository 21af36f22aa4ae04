//! The terminal side of every command, in one place: yes/no questions, sizes and durations as
//! people read them, and the per-user directories pifleet keeps state and caches in.
//!
//! One prompt with one rule for what counts as yes: a command that can erase a card or lock a
//! host must not accept different answers from another that asks the same kind of question.

use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;

/// Asks `question` (without a `[y/N]` suffix) and returns whether the answer was yes. The default,
/// an empty answer and the end of input mean no. On a terminal the question is a dialoguer prompt;
/// otherwise it is printed to stderr and one line is read from stdin (so scripts and tests can answer
/// with `echo y |`).
pub(crate) fn confirm(question: &str) -> anyhow::Result<bool> {
    if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
        return dialoguer::Confirm::new()
            .with_prompt(question)
            .default(false)
            .wait_for_newline(true)
            .interact_on(&console::Term::stderr())
            .context("cannot read the answer");
    }
    eprint!("{question} [y/N] ");
    std::io::stderr().flush().ok();
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("cannot read the answer")?;
    Ok(is_yes(&line))
}

/// Whether a typed answer means yes: `y` or `yes`, in any case, around white space.
fn is_yes(answer: &str) -> bool {
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

/// Whether a question can be asked at all: someone is at a terminal.
pub(crate) fn interactive() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Binary units, as card sizes are read: `512.00 MiB`, `2.00 GiB`.
pub(crate) fn bytes(n: u64) -> String {
    indicatif::HumanBytes(n).to_string()
}

/// A duration in words: `3 seconds`, `2 minutes`.
pub(crate) fn duration(d: Duration) -> String {
    indicatif::HumanDuration(d).to_string()
}

fn base_dirs() -> anyhow::Result<impl etcetera::BaseStrategy> {
    etcetera::choose_base_strategy().context("no home directory to keep pifleet's files in")
}

/// Where deploy logs go: `$XDG_STATE_HOME/pifleet/logs`, else `~/.local/state/pifleet/logs`.
pub(crate) fn log_dir() -> anyhow::Result<PathBuf> {
    use etcetera::BaseStrategy as _;
    let dirs = base_dirs()?;
    let state = dirs
        .state_dir()
        .unwrap_or_else(|| dirs.home_dir().join(".local").join("state"));
    Ok(state.join("pifleet").join("logs"))
}

/// Where caches go: `$PIFLEET_CACHE_DIR`, else `$XDG_CACHE_HOME/pifleet`, else `~/.cache/pifleet`.
/// An empty `PIFLEET_CACHE_DIR` turns caching off (`None`).
pub(crate) fn cache_dir() -> Option<PathBuf> {
    use etcetera::BaseStrategy as _;
    if let Some(dir) = std::env::var_os("PIFLEET_CACHE_DIR") {
        return (!dir.is_empty()).then(|| PathBuf::from(dir));
    }
    Some(base_dirs().ok()?.cache_dir().join("pifleet"))
}

/// The user's Nix configuration file: `$XDG_CONFIG_HOME/nix/nix.conf`, else `~/.config/nix/nix.conf`.
pub(crate) fn user_nix_conf() -> Option<PathBuf> {
    use etcetera::BaseStrategy as _;
    Some(base_dirs().ok()?.config_dir().join("nix").join("nix.conf"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_rule_for_yes() {
        for yes in ["y", "Y", "yes", "YES", "Yes", " y\n"] {
            assert!(is_yes(yes), "{yes:?}");
        }
        for no in ["", "\n", "n", "no", "yep", "sure", "y y"] {
            assert!(!is_yes(no), "{no:?}");
        }
    }

    #[test]
    fn sizes_and_durations_read_as_words() {
        assert_eq!(bytes(512 << 20), "512.00 MiB");
        assert_eq!(bytes(2 << 30), "2.00 GiB");
        assert_eq!(bytes(7), "7 B");
        assert_eq!(duration(Duration::from_secs(3)), "3 seconds");
        assert_eq!(duration(Duration::from_secs(120)), "2 minutes");
    }
}
