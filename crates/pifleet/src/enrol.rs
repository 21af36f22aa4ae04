//! Recording a host's SSH key in the repository: the step `hostkey new`, `hostkey scan`, `image`,
//! `flash` and `adopt` share.
//!
//! The order protects what cannot be recreated. A generated private key is sealed (encrypted to
//! the admins) before the inventory names its public half, so a crash never leaves the inventory
//! pinning a key nobody holds. Only then is the inventory rewritten, and last the host's secrets
//! are re-encrypted to include the new key; a secret that cannot be (no identity at hand) is
//! reported with the command that finishes the job, and `check` keeps saying so until it is done.

use anyhow::Context as _;
use keeper::{Item, Keeper, Status};
use model::{HostName, SshPublicKey};

use crate::workspace::Workspace;

/// What recording a key did beyond the inventory.
#[derive(Debug, Default)]
pub(crate) struct Enrolled {
    /// Files re-encrypted to include the host.
    pub(crate) rekeyed: Vec<String>,
    /// Files still to do, with why.
    pub(crate) pending: Vec<String>,
}

impl Enrolled {
    /// Prints what happened to the host's secrets.
    pub(crate) fn print(&self) {
        for file in &self.rekeyed {
            eprintln!("re-encrypted {file} to include the new key");
        }
        for why in &self.pending {
            eprintln!("warning: {why}");
        }
    }
}

/// Records `key` as `host`'s `host_key` in the inventory (`text` is its current content), sealing
/// `private` first when given, then re-encrypts the host's secrets. Returns the inventory as
/// written.
pub(crate) fn record(
    workspace: &Workspace,
    text: &str,
    host: &HostName,
    key: &SshPublicKey,
    private: Option<&str>,
    unlock: &keeper::Unlock,
) -> anyhow::Result<(model::Loaded, Enrolled)> {
    let shown = workspace.shown();
    let edited = model::edit::set_host_key(text, &shown, host, key)
        .with_context(|| format!("cannot record the host key of `{host}` in {shown}"))?;
    let loaded = model::load_str(&edited, &shown)
        .with_context(|| format!("the edited {shown} does not load"))?;
    let keeper = Keeper::new(workspace.base(), &loaded.fleet);
    if let Some(private) = private {
        let item = Item::HostKey(host.clone());
        keeper.seal(&item, private.as_bytes()).with_context(|| {
            format!("cannot keep the private host key of `{host}`; nothing was changed")
        })?;
        eprintln!("encrypted the private key to the admins: {}", item.file());
    }
    workspace.write_inventory(&edited)?;
    eprintln!(
        "recorded the host key of `{host}` in {shown}: {} {}",
        key.algorithm(),
        key.fingerprint()
    );
    let enrolled = rekey_host(&keeper, &loaded.fleet, host, unlock);
    Ok((loaded, enrolled))
}

/// Re-encrypts every secret `host` reads whose file lacks a reader's key.
pub(crate) fn rekey_host(
    keeper: &Keeper<'_>,
    fleet: &model::Fleet,
    host: &HostName,
    unlock: &keeper::Unlock,
) -> Enrolled {
    let mut out = Enrolled::default();
    let Some(view) = fleet.view(host.as_str()) else {
        return out;
    };
    let mut seen = Vec::new();
    for used in &view.secrets {
        if seen.contains(&used.name) {
            continue;
        }
        seen.push(used.name);
        let item = Item::Secret(used.name.clone());
        let file = item.file();
        match keeper.status(&item) {
            Status::Current => {}
            Status::Missing => out.pending.push(format!(
                "{file} does not exist yet: `pifleet secrets set {}`",
                used.name
            )),
            Status::Unreadable(why) | Status::NotAge(why) => {
                out.pending.push(format!("{file}: {why}"));
            }
            Status::Stale { .. } => match keeper.rekey(&item, unlock) {
                Ok(_) => out.rekeyed.push(file),
                Err(err) => out.pending.push(format!(
                    "{:#}; re-encrypt it later with `pifleet secrets rekey {}`",
                    anyhow::Error::new(err),
                    used.name
                )),
            },
        }
    }
    out
}
