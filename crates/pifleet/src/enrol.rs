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
                Ok(resealed) => {
                    if let Some(unfit) = resealed.and_then(|r| r.unfit) {
                        out.pending.push(format!(
                            "{file} does not hold a value {host} can use: {unfit}; fix it with `pifleet secrets edit {}`",
                            used.name
                        ));
                    }
                    out.rekeyed.push(file);
                }
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

/// Makes `host` ready for a new card, before anything is built or written: a host key (created and
/// recorded when missing and there are admins to keep it), every secret it reads present and
/// encrypted to it. With `want_private`, returns the private key to put on the card (generated
/// now, or decrypted from secrets/host-keys/HOST.age); `None` when the card should make its own.
pub(crate) fn ready_for_card(
    workspace: &Workspace,
    host: &str,
    identity: &crate::identity::IdentityArg,
    want_private: bool,
) -> anyhow::Result<Option<card::HostKey>> {
    let (text, loaded) = workspace.load()?;
    let shown = workspace.shown();
    let name = HostName::new(host).map_err(|e| anyhow::anyhow!("{}", e.message))?;
    if !loaded.fleet.hosts.contains_key(&name) {
        let known: Vec<&str> = loaded.fleet.hosts.keys().map(HostName::as_str).collect();
        anyhow::bail!("no host `{host}` in {shown} (hosts: {})", known.join(", "));
    }
    let unlock = identity.unlock();
    let item = Item::HostKey(name.clone());
    let (loaded, key) = match loaded.fleet.hosts[&name].host_key.clone() {
        None => {
            let admins = keeper::Keeper::new(workspace.base(), &loaded.fleet)
                .ring()
                .recipients(item.sealed());
            if admins.keys.is_empty() {
                eprintln!(
                    "warning: `{name}` has no recorded host key, and `[fleet] admins` names nobody to keep a new one for: \
                     the card will make its own key at first boot, so the first connection must trust it (`pifleet hostkey scan {name}`). \
                     Add admins to have pifleet create the key now."
                );
                return Ok(None);
            }
            eprintln!("`{name}` has no host key yet: making one");
            let generated = vault::generate_host_key(name.as_str())?;
            let public: SshPublicKey = generated
                .public_line
                .parse()
                .map_err(|e: model::NameError| anyhow::anyhow!("{}", e.message))?;
            let (loaded, enrolled) = record(
                workspace,
                &text,
                &name,
                &public,
                Some(generated.private_openssh.as_str()),
                &unlock,
            )?;
            enrolled.print();
            let key = card::HostKey::with_public(
                generated.private_openssh.clone(),
                &generated.public_line,
            )?;
            (loaded, Some(key))
        }
        Some(recorded) => {
            let keeper = Keeper::new(workspace.base(), &loaded.fleet);
            rekey_host(&keeper, &loaded.fleet, &name, &unlock).print();
            let key = if want_private {
                if !keeper.path(&item).exists() {
                    anyhow::bail!(
                        "the repository holds no private key for `{name}` ({} is missing): its key was recorded from a running machine. \
                         Flash with --no-host-key to let the card make a new key (then `pifleet hostkey scan {name}` and `pifleet secrets rekey` after its first boot), \
                         or replace the recorded key with `pifleet hostkey new {name} --force`",
                        item.file()
                    );
                }
                let plaintext = keeper.open(&item, &unlock)?;
                let private =
                    card::Zeroizing::new(String::from_utf8(plaintext.expose().to_vec()).map_err(
                        |_| anyhow::anyhow!("{} does not hold an OpenSSH key", item.file()),
                    )?);
                let key =
                    card::HostKey::with_public(private, recorded.as_str()).with_context(|| {
                        format!(
                            "{} does not hold the private half of `{name}`'s recorded host key",
                            item.file()
                        )
                    })?;
                Some(key)
            } else {
                None
            };
            (loaded, key)
        }
    };
    // The first boot decrypts every secret the host reads: each must exist and be for this host.
    let keeper = Keeper::new(workspace.base(), &loaded.fleet);
    let mut problems = Vec::new();
    if let Some(view) = loaded.fleet.view(name.as_str()) {
        for used in &view.secrets {
            let secret = Item::Secret(used.name.clone());
            match keeper.status(&secret) {
                Status::Missing => problems.push(format!(
                    "{} does not exist: `pifleet secrets set {}`",
                    secret.file(),
                    used.name
                )),
                Status::Stale { missing, .. }
                    if missing.contains(&keeper::Owner::Host(name.clone())) =>
                {
                    problems.push(format!(
                        "{} is not encrypted to `{name}`: `pifleet secrets rekey {}`",
                        secret.file(),
                        used.name
                    ));
                }
                Status::NotAge(why) | Status::Unreadable(why) => {
                    problems.push(format!("{}: {why}", secret.file()));
                }
                _ => {}
            }
        }
    }
    if !problems.is_empty() {
        anyhow::bail!(
            "`{name}` could not decrypt its secrets at first boot:\n  {}\nnothing was built or written",
            problems.join("\n  ")
        );
    }
    workspace.warn_untracked_secrets();
    Ok(key)
}

/// Writes `key` onto the NixOS root of the card or image at `path` (found by its superblock) and
/// prints what changed. Another host key already there is replaced only with `replace`.
/// `fresh_table`: the partition table was just written and the kernel has not re-read it, so its
/// partition nodes are not to be trusted (see [`card::locate_fresh`]).
pub(crate) fn write_to_card(
    path: &std::path::Path,
    key: &card::HostKey,
    replace: bool,
    fresh_table: bool,
) -> anyhow::Result<()> {
    let view = flash::SystemView::live();
    let root = if fresh_table {
        card::locate_fresh(&view, path)?
    } else {
        card::locate(&view, path)?
    };
    let mut editor = card::open(&root)?;
    let plan = match card::write_host_key(editor.as_mut(), &root.shown, key, replace) {
        Ok(plan) => plan,
        Err(err @ card::HostKeyError::OtherKey { .. }) => {
            anyhow::bail!("{err} (pass --replace-host-key to replace it)")
        }
        Err(err) => return Err(err.into()),
    };
    eprintln!("{}:", root.shown);
    for line in plan.describe(true) {
        eprintln!("  {line}");
    }
    Ok(())
}
