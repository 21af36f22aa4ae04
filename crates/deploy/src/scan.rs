//! Learning the SSH host key a running machine presents, for `pifleet hostkey scan` and `adopt`.
//!
//! Trust on first use, made explicit and one-time: the key is fetched once, shown by fingerprint for
//! a human to compare, and then recorded in the inventory, after which every connection is pinned
//! to it. The key is fetched with `ssh` itself rather than `ssh-keyscan`, so the user's
//! `~/.ssh/config` (jump hosts, proxies) applies exactly as for a deploy: ssh writes the server's
//! ed25519 key to a throwaway known-hosts file during key exchange, before authentication, so the
//! key is learnt even when the login is refused.

use std::path::Path;
use std::time::Duration;

use model::{Fleet, HostName, SshPublicKey};

use crate::exec;
use crate::plan::{CommandSpec, Target};

/// Why no key was learnt.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScanError {
    /// ssh could not be run, or the scratch file not made.
    #[error("cannot run ssh: {0}")]
    Io(#[from] std::io::Error),
    /// The host never completed key exchange.
    #[error("{destination} presented no ed25519 host key: {why}")]
    NoKey {
        /// `user@address` and port.
        destination: String,
        /// What ssh said, explained.
        why: String,
    },
}

/// The ssh invocation that records the server's ed25519 key under `alias` in `known_hosts`.
pub fn scan_command(
    target: &Target,
    alias: &str,
    ssh_options: &[String],
    connect_timeout: u32,
    known_hosts: &Path,
) -> CommandSpec {
    CommandSpec {
        program: "ssh".into(),
        args: ssh_options
            .iter()
            .cloned()
            .chain(
                [
                    "BatchMode=yes".to_owned(),
                    format!("ConnectTimeout={connect_timeout}"),
                    "StrictHostKeyChecking=accept-new".to_owned(),
                    format!("UserKnownHostsFile={}", known_hosts.display()),
                    "GlobalKnownHostsFile=/dev/null".to_owned(),
                    format!("HostKeyAlias={alias}"),
                    "HostKeyAlgorithms=ssh-ed25519".to_owned(),
                    "HashKnownHosts=no".to_owned(),
                    "UpdateHostKeys=no".to_owned(),
                    "ControlMaster=no".to_owned(),
                    "ControlPath=none".to_owned(),
                ]
                .into_iter()
                .flat_map(|o| ["-o".to_owned(), o]),
            )
            .chain([
                "-p".to_owned(),
                target.port.to_string(),
                target.destination(),
                "true".to_owned(),
            ])
            .collect(),
        env: Vec::new(),
    }
}

/// Connects to `target` and returns the ed25519 host key it presented.
pub fn scan(
    target: &Target,
    alias: &str,
    ssh_options: &[String],
    connect_timeout: u32,
) -> Result<SshPublicKey, ScanError> {
    let dir = tempfile::tempdir()?;
    let known = dir.path().join("known_hosts");
    let spec = scan_command(target, alias, ssh_options, connect_timeout, &known);
    let out = exec::capture(
        &spec,
        Duration::from_secs(u64::from(connect_timeout) * 3 + 10),
    )?;
    let text = std::fs::read_to_string(&known).unwrap_or_default();
    let key = text.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        let (Some(name), Some(kind), Some(body)) = (words.next(), words.next(), words.next())
        else {
            return None;
        };
        (name == alias && kind == "ssh-ed25519")
            .then(|| format!("{kind} {body}").parse::<SshPublicKey>().ok())
            .flatten()
    });
    key.ok_or_else(|| ScanError::NoKey {
        destination: format!("{} port {}", target.destination(), target.port),
        why: if out.status.is_none() {
            "ssh timed out".to_owned()
        } else {
            crate::run::explain_ssh_failure(&target.destination(), &out.stderr)
        },
    })
}

/// How deploy reaches `name` (its deploy user, address and port), unpinned.
pub fn host_target(fleet: &Fleet, name: &HostName) -> Option<Target> {
    let host = fleet.hosts.get(name)?;
    Some(Target {
        pinned: None,
        ..crate::plan::target_of(fleet, name, host)
    })
}
