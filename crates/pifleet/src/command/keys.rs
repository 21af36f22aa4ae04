//! `pifleet keys inject DEVICE`: add SSH public keys to a user's `authorized_keys` on a NixOS card or
//! image while it is in the workstation, so a stock NixOS SD image answers to the operator on boot.
//!
//! The card crate does the work; this file gathers the keys (files, or the inventory's deploy keys for
//! a host), shows what will change, asks before writing to a block device, and prints what it wrote.

use std::path::PathBuf;

use anyhow::{Context, bail};
use card::{Attrs, InjectError, Plan, Request};
use flash::SystemView;
use model::SshPublicKey;

use crate::outcome::Outcome;
use crate::workspace::Workspace;

const EXIT_CODES: &str = "\
Exit codes:
  0  the keys are in place (added now or already there)
  1  nothing written: the home directory does not exist yet (see --create-home), or not confirmed
  2  refused or failed: mounted or system device, no NixOS ext4 root, unreadable key or inventory";

#[derive(Debug, clap::Args)]
#[command(after_help = EXIT_CODES)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: KeysCommand,
}

#[derive(Debug, clap::Subcommand)]
enum KeysCommand {
    /// Add SSH public keys to a user's authorized_keys on a NixOS SD card or image, without booting
    /// it: the card's ext4 root is found and edited with debugfs (or mounted when debugfs is missing).
    Inject(InjectArgs),
}

#[derive(Debug, clap::Args)]
#[command(after_help = EXIT_CODES)]
struct InjectArgs {
    /// The card (`/dev/sdX`, `/dev/mmcblkN`), its root partition, or an image file (whole image or
    /// a bare ext4 file system). The ext4 root partition is found by its superblock, not its label.
    device: PathBuf,
    /// Whose authorized_keys to edit (`nixos` on the stock NixOS image).
    #[arg(long, default_value = "nixos", value_name = "NAME")]
    user: String,
    /// A public key file (`~/.ssh/id_ed25519.pub`); every key line in it is added. Repeat for more.
    #[arg(
        long = "key",
        value_name = "FILE",
        required_unless_present_any = ["from_inventory", "host_key"]
    )]
    keys: Vec<PathBuf>,
    /// Add the keys HOST's deploy user logs in with in the inventory (`ssh.root_keys` when it
    /// deploys as root), so the first deploy can reach the machine.
    #[arg(long, value_name = "HOST")]
    from_inventory: Option<String>,
    /// Also write HOST's SSH host key (/etc/ssh/ssh_host_ed25519_key, root, 0600, and its .pub),
    /// decrypted from secrets/host-keys/HOST.age, or created now when the inventory has none; so
    /// the machine answers with the key the repository pins and can decrypt its secrets.
    #[arg(long, value_name = "HOST")]
    host_key: Option<String>,
    /// Replace another host key already on the card (a card that booted before made its own).
    #[arg(long, requires = "host_key")]
    replace_host_key: bool,
    #[command(flatten)]
    inventory: crate::workspace::InventoryArg,
    #[command(flatten)]
    identity: crate::identity::IdentityArg,
    /// Owner of ~/.ssh and authorized_keys (1000 is the stock image's `nixos`).
    #[arg(long, default_value_t = 1000)]
    uid: u32,
    /// Their group (100 is `users` on NixOS).
    #[arg(long, default_value_t = 100)]
    gid: u32,
    /// Create /home/USER (owned by UID:GID, mode 700) when the card was never booted, instead of
    /// stopping with an explanation.
    #[arg(long)]
    create_home: bool,
    /// Don't ask before writing to a block device.
    #[arg(long, short = 'y')]
    yes: bool,
}

pub(crate) fn run(args: Args) -> anyhow::Result<Outcome> {
    match args.command {
        KeysCommand::Inject(args) => inject(args),
    }
}

fn inject(args: InjectArgs) -> anyhow::Result<Outcome> {
    let mut keys = Vec::new();
    for file in &args.keys {
        keys.extend(crate::pubkey::from_file(file)?);
    }
    if let Some(host) = &args.from_inventory {
        keys.extend(keys_from_inventory(&args.inventory.workspace(), host)?);
    }
    let host_key = match &args.host_key {
        Some(host) => {
            let key = crate::enrol::ready_for_card(
                &args.inventory.workspace(),
                host,
                &args.identity,
                true,
            )?;
            Some(key.with_context(|| {
                format!(
                    "no host key to write: `{host}` has none, and no admins to keep a new one for"
                )
            })?)
        }
        None => None,
    };
    if keys.is_empty() {
        // Only the host key.
        let Some(key) = &host_key else {
            bail!("no keys to add");
        };
        let view = SystemView::live();
        let root = card::locate(&view, &args.device)?;
        if let Some(device) = &root.device
            && !args.yes
            && !confirm(&root.shown, device)?
        {
            eprintln!("aborted; nothing was written");
            return Ok(Outcome::Problems);
        }
        drop(root);
        crate::enrol::write_to_card(&args.device, key, args.replace_host_key, false)?;
        return Ok(Outcome::Clean);
    }

    let view = SystemView::live();
    let root = card::locate(&view, &args.device)?;
    let mut editor = card::open(&root)?;
    let method = editor.method();
    if !method.starts_with("debugfs") {
        eprintln!(
            "debugfs (e2fsprogs) was not found, so {} is mounted to edit it; install e2fsprogs to edit without mounting",
            root.shown
        );
    }
    let request = Request {
        user: args.user.clone(),
        uid: args.uid,
        gid: args.gid,
        create_home: args.create_home,
        keys,
    };
    let plan = match card::plan(editor.as_mut(), &root.shown, &request) {
        Ok(plan) => plan,
        Err(err @ InjectError::NoHome { .. }) => {
            eprintln!("{err}");
            return Ok(Outcome::Problems);
        }
        Err(err) => return Err(err.into()),
    };
    // The host key is planned before anything is written, so another key on the card stops both.
    let host_plan = match &host_key {
        Some(key) => {
            match card::plan_host_key(editor.as_mut(), &root.shown, key, args.replace_host_key) {
                Ok(plan) => Some(plan),
                Err(err @ card::HostKeyError::OtherKey { .. }) => {
                    bail!("{err} (pass --replace-host-key to replace it); nothing was written")
                }
                Err(err) => return Err(err.into()),
            }
        }
        None => None,
    };
    let host_changes = host_plan
        .as_ref()
        .is_some_and(card::HostKeyPlan::changes_anything);
    let label = if root.label.is_empty() {
        String::new()
    } else {
        format!(" (label {})", root.label)
    };
    println!("{}{label}: NixOS root, edited with {method}", root.shown);
    if let Some(owner) = plan.home_owner_differs {
        eprintln!(
            "warning: {} is owned by {}:{}, not {}:{}; pass --uid/--gid if {} has other ids",
            plan.home, owner.uid, owner.gid, args.uid, args.gid, plan.user
        );
    }
    let lines = |done: bool| -> Vec<String> {
        let mut out = describe(&plan, done);
        if let Some(host_plan) = &host_plan {
            out.extend(host_plan.describe(done));
        }
        out
    };

    if !plan.changes_anything() && !host_changes {
        for line in lines(false) {
            println!("  {line}");
        }
        if host_plan.is_some() {
            println!("nothing to do: every key is already on the card");
        } else {
            println!("nothing to do: every key is already in {}", plan.file);
        }
        return Ok(Outcome::Clean);
    }
    if let Some(device) = &root.device
        && !args.yes
    {
        println!("will change:");
        for line in lines(false) {
            println!("  {line}");
        }
        if !confirm(&root.shown, device)? {
            eprintln!("aborted; nothing was written");
            return Ok(Outcome::Problems);
        }
    }
    if plan.changes_anything() {
        card::apply(editor.as_mut(), &root.shown, &plan)?;
    }
    if let (Some(key), Some(host_plan)) = (&host_key, &host_plan)
        && host_changes
    {
        card::apply_host_key(editor.as_mut(), &root.shown, key, host_plan)?;
    }
    drop(editor);
    for line in lines(true) {
        println!("  {line}");
    }
    Ok(Outcome::Clean)
}

fn attrs(a: Attrs) -> String {
    format!("owner {}:{}, mode {:o}", a.uid, a.gid, a.mode)
}

/// One line per change (or per thing already right), in the past tense once `done`.
fn describe(plan: &Plan, done: bool) -> Vec<String> {
    let verb = |future: &str, past: &str| if done { past } else { future }.to_owned();
    let mut out = Vec::new();
    if plan.create_home {
        out.push(format!(
            "{} {} ({})",
            verb("create", "created"),
            plan.home,
            attrs(plan.dir_attrs)
        ));
    }
    match plan.ssh_dir_now {
        None => out.push(format!(
            "{} {} ({})",
            verb("create", "created"),
            plan.ssh_dir,
            attrs(plan.dir_attrs)
        )),
        Some(now) if now != plan.dir_attrs => out.push(format!(
            "{} {} ({}, was {})",
            verb("fix", "fixed"),
            plan.ssh_dir,
            attrs(plan.dir_attrs),
            attrs(now)
        )),
        Some(_) => out.push(format!("kept {} ({})", plan.ssh_dir, attrs(plan.dir_attrs))),
    }
    let file_line = match plan.file_now {
        None => format!(
            "{} {} ({})",
            verb("write", "wrote"),
            plan.file,
            attrs(plan.file_attrs)
        ),
        Some(_) if !plan.added.is_empty() => format!(
            "{} {} ({})",
            verb("rewrite", "rewrote"),
            plan.file,
            attrs(plan.file_attrs)
        ),
        Some(now) if now != plan.file_attrs => format!(
            "{} {} ({}, was {})",
            verb("fix", "fixed"),
            plan.file,
            attrs(plan.file_attrs),
            attrs(now)
        ),
        Some(_) => format!("kept {} ({})", plan.file, attrs(plan.file_attrs)),
    };
    out.push(file_line);
    for key in &plan.added {
        out.push(format!("{} {}", verb("add    ", "added  "), key_line(key)));
    }
    for key in &plan.present {
        out.push(format!("present {}", key_line(key)));
    }
    out
}

fn key_line(key: &SshPublicKey) -> String {
    let comment = key.comment();
    if comment.is_empty() {
        format!("{} {}", key.fingerprint(), key.algorithm())
    } else {
        format!("{} {} {comment}", key.fingerprint(), key.algorithm())
    }
}

/// The keys `host`'s deploy user logs in with after its first switch, as the host's view says:
/// that user's `ssh_keys`, or the host's effective root keys when it deploys as root.
fn keys_from_inventory(workspace: &Workspace, host: &str) -> anyhow::Result<Vec<SshPublicKey>> {
    let Some(loaded) = workspace.load_checked()? else {
        bail!(
            "the inventory has errors (printed above); `keys inject --from-inventory` takes keys only from a valid one"
        );
    };
    let fleet = &loaded.fleet;
    let Some(view) = fleet.view(host) else {
        let known: Vec<&str> = fleet.hosts.keys().map(|n| n.as_str()).collect();
        bail!(
            "no host {host} in {} (hosts: {})",
            workspace.shown(),
            known.join(", ")
        );
    };
    // The account is new on the card: only the inventory's keys can let it in.
    match view.key_login(view.deploy.user.as_str(), false) {
        Ok(login) if !login.keys.is_empty() => Ok(login.keys.to_vec()),
        Ok(_) => bail!(
            "{host}: the deploy user `{}` gets no key from the inventory",
            view.deploy.user
        ),
        Err(blocks) => {
            let why: Vec<String> = blocks.iter().map(ToString::to_string).collect();
            bail!(
                "{host} deploys as `{}`, who could not log in after the first switch: {}",
                view.deploy.user,
                why.join("; ")
            )
        }
    }
}

fn confirm(shown: &str, device: &flash::Device) -> anyhow::Result<bool> {
    let model = device.model.as_deref().unwrap_or("unknown model");
    crate::ui::confirm(&format!(
        "Write to {shown} on {} ({model}, {})?",
        device.path.display(),
        crate::ui::bytes(device.size)
    ))
}
