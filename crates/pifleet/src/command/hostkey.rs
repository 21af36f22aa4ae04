//! `pifleet hostkey new|show|scan HOST`: a host's SSH identity, known to the repository before the
//! host first boots (`new`) or learnt once from a running machine (`scan`).
//!
//! The key is what deploy pins and what the host's secrets are encrypted to, so these commands
//! only wire: `deploy::scan` fetches a presented key, `vault` makes a new one, and `enrol` records
//! it and brings the host's secrets along.

use anyhow::{Context as _, bail};
use model::{HostName, SshPublicKey};

use crate::identity::IdentityArg;
use crate::outcome::Outcome;
use crate::workspace::InventoryArg;

const EXIT_CODES: &str = "\
Exit codes:
  0  done (`show`: the key was printed)
  1  nothing recorded: the host has no key (`show`), a key is already recorded, or the key was not confirmed
  2  usage or I/O error: unknown host, no admins to encrypt to, unreachable host";

#[derive(Debug, clap::Args)]
#[command(after_help = EXIT_CODES)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: HostkeyCommand,
}

#[derive(Debug, clap::Subcommand)]
enum HostkeyCommand {
    /// Generate an ed25519 host key for a host that has not booted yet: the public key goes into the
    /// inventory (`host_key`), the private key only encrypted to the admins, as
    /// secrets/host-keys/HOST.age; `flash` and `keys inject --host-key` put it on the card.
    New(NewArgs),
    /// Print a host's recorded host key as one OpenSSH line.
    Show(ShowArgs),
    /// Fetch the key a running host presents, show its fingerprint, and record it once confirmed
    /// (trust on first use, made explicit). For machines pifleet did not flash.
    Scan(ScanArgs),
}

#[derive(Debug, clap::Args)]
#[command(after_help = EXIT_CODES)]
struct NewArgs {
    /// The host (as named in the inventory).
    host: String,
    /// Replace a key that is already recorded. The host then needs the new key on its card
    /// (`pifleet flash` or `keys inject --host-key`) before deploys reach it again.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    inventory: InventoryArg,
    #[command(flatten)]
    identity: IdentityArg,
}

#[derive(Debug, clap::Args)]
#[command(after_help = EXIT_CODES)]
struct ShowArgs {
    /// The host.
    host: String,
    #[command(flatten)]
    inventory: InventoryArg,
}

#[derive(Debug, clap::Args)]
#[command(after_help = EXIT_CODES)]
struct ScanArgs {
    /// The host; it is reached as deploy reaches it (address, port, your ~/.ssh/config).
    host: String,
    /// The fingerprint you expect (`SHA256:…`, as `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`
    /// prints on the host): the key is recorded only if it matches, without asking.
    #[arg(long, value_name = "SHA256:…")]
    fingerprint: Option<String>,
    /// Record the key without asking (only when the network path is trusted).
    #[arg(long, short = 'y')]
    yes: bool,
    /// Replace a different key that is already recorded.
    #[arg(long)]
    force: bool,
    /// Reach the host at this address instead of the inventory's (e.g. before DNS knows it).
    #[arg(long, value_name = "ADDRESS")]
    address: Option<String>,
    #[command(flatten)]
    inventory: InventoryArg,
    #[command(flatten)]
    identity: IdentityArg,
}

pub(crate) fn run(args: Args) -> anyhow::Result<Outcome> {
    match args.command {
        HostkeyCommand::New(args) => new(args),
        HostkeyCommand::Show(args) => show(args),
        HostkeyCommand::Scan(args) => scan(args),
    }
}

fn host_name(fleet: &model::Fleet, host: &str, shown: &str) -> anyhow::Result<HostName> {
    let name = HostName::new(host).map_err(|e| anyhow::anyhow!("{}", e.message))?;
    if !fleet.hosts.contains_key(&name) {
        let known: Vec<&str> = fleet.hosts.keys().map(HostName::as_str).collect();
        bail!("no host `{host}` in {shown} (hosts: {})", known.join(", "));
    }
    Ok(name)
}

fn new(args: NewArgs) -> anyhow::Result<Outcome> {
    let workspace = args.inventory.workspace();
    let (text, loaded) = workspace.load()?;
    let name = host_name(&loaded.fleet, &args.host, &workspace.shown())?;
    let keeper = keeper::Keeper::new(workspace.base(), &loaded.fleet);
    let backup = keeper.path(&keeper::Item::HostKey(name.clone()));
    if let Some(existing) = &loaded.fleet.hosts[&name].host_key
        && !args.force
    {
        eprintln!(
            "`{name}` already has a host key ({}); a new one would lock deploys out until the card holds it. \
             To replace it anyway (a re-flashed or replaced card): `pifleet hostkey new {name} --force`",
            existing.fingerprint()
        );
        return Ok(Outcome::Problems);
    }
    if backup.exists() && !args.force {
        eprintln!(
            "{} already holds a private key for `{name}`, but the inventory records none: restore `host_key` from git, or replace both with --force",
            backup.display()
        );
        return Ok(Outcome::Problems);
    }
    let generated = vault::generate_host_key(name.as_str())?;
    let public: SshPublicKey = generated
        .public_line
        .parse()
        .map_err(|e: model::NameError| anyhow::anyhow!("{}", e.message))?;
    let (_, enrolled) = crate::enrol::record(
        &workspace,
        &text,
        &name,
        &public,
        Some(generated.private_openssh.as_str()),
        &args.identity.unlock(),
    )?;
    enrolled.print();
    eprintln!(
        "next: `pifleet gen` (hosts/known_hosts), commit {}, secrets/ and hosts/, then `pifleet flash {name} DEVICE`",
        workspace.shown()
    );
    Ok(Outcome::Clean)
}

fn show(args: ShowArgs) -> anyhow::Result<Outcome> {
    let workspace = args.inventory.workspace();
    let (_, loaded) = workspace.load()?;
    let name = host_name(&loaded.fleet, &args.host, &workspace.shown())?;
    match &loaded.fleet.hosts[&name].host_key {
        Some(key) => {
            println!("{}", key.as_str());
            Ok(Outcome::Clean)
        }
        None => {
            eprintln!(
                "`{name}` has no recorded host key: `pifleet hostkey new {name}` before its card is flashed, or `pifleet hostkey scan {name}` when it is already running"
            );
            Ok(Outcome::Problems)
        }
    }
}

fn scan(args: ScanArgs) -> anyhow::Result<Outcome> {
    let workspace = args.inventory.workspace();
    let (text, loaded) = workspace.load()?;
    let name = host_name(&loaded.fleet, &args.host, &workspace.shown())?;
    let mut target =
        deploy::scan::host_target(&loaded.fleet, &name).context("the host has no deploy target")?;
    if let Some(address) = &args.address {
        target.address.clone_from(address);
    }
    let ssh_options = crate::fleet_run::nix_sshopts()?;
    eprintln!(
        "asking {} (port {}) for its host key",
        target.address, target.port
    );
    let key = deploy::scan::scan(&target, name.as_str(), &ssh_options, 10)?;
    let fingerprint = key.fingerprint();
    if let Some(recorded) = &loaded.fleet.hosts[&name].host_key {
        if recorded.same_key(&key) {
            eprintln!("`{name}` presents the recorded key ({fingerprint}); nothing to do");
            return Ok(Outcome::Clean);
        }
        if !args.force {
            eprintln!(
                "`{name}` presents {fingerprint}, but the inventory records {}.\n\
                 If the card was re-flashed or replaced without its key, this is expected: record the new key with --force \
                 (and re-encrypt its secrets). If nothing changed on the host, someone may be intercepting the connection: do not record it.",
                recorded.fingerprint()
            );
            return Ok(Outcome::Problems);
        }
    }
    let accepted = match &args.fingerprint {
        Some(expected) if expected.trim() == fingerprint => true,
        Some(expected) => {
            eprintln!(
                "`{name}` presents {fingerprint}, not the expected {}: nothing recorded",
                expected.trim()
            );
            return Ok(Outcome::Problems);
        }
        None if args.yes => true,
        None => {
            eprintln!(
                "`{name}` at {} presents the host key\n  {} {fingerprint}\n\
                 Compare it with the host's own (`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on its console, or from its provider).",
                target.address,
                key.algorithm()
            );
            if !crate::ui::interactive() && args.fingerprint.is_none() {
                eprintln!(
                    "not recorded: no terminal to confirm on; pass --fingerprint SHA256:… (or --yes)"
                );
                return Ok(Outcome::Problems);
            }
            crate::ui::confirm(&format!("Record this key for `{name}`?"))?
        }
    };
    if !accepted {
        eprintln!("not recorded");
        return Ok(Outcome::Problems);
    }
    let (_, enrolled) = crate::enrol::record(
        &workspace,
        &text,
        &name,
        &key,
        None,
        &args.identity.unlock(),
    )?;
    enrolled.print();
    eprintln!(
        "next: `pifleet gen` (hosts/known_hosts) and commit {} and hosts/",
        workspace.shown()
    );
    Ok(Outcome::Clean)
}
