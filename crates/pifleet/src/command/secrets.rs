//! `pifleet secrets set|edit|show|list|rekey`: the fleet's secrets, encrypted in the repository to
//! the hosts that read them and to the admins.
//!
//! `keeper` does the work (who each file is for, checking values, sealing and rekeying); this file
//! reads values and the identity, and says what happened. Values are never printed except by
//! `show`, which exists to print one.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use keeper::{Entry, Item, Keeper, Status};
use model::{HostName, SecretName};

use crate::identity::IdentityArg;
use crate::outcome::Outcome;
use crate::workspace::{InventoryArg, Workspace};

const EXIT_CODES: &str = "\
Exit codes:
  0  done (`list`, `rekey`: every file is current)
  1  `list`: a file is missing, not age or needs a rekey; `rekey`: a file could not be re-encrypted
  2  usage or I/O error: a bad name or value, no key to decrypt with, no admins";

#[derive(Debug, clap::Args)]
#[command(after_help = EXIT_CODES)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: SecretsCommand,
}

#[derive(Debug, clap::Subcommand)]
enum SecretsCommand {
    /// Encrypt a value as secrets/NAME.age, to the hosts that read it and the admins. The value
    /// comes from --from FILE, a prompt (on a terminal), or standard input. A Wi-Fi passphrase is
    /// given alone; pifleet writes the `psk=` line the host reads.
    Set(SetArgs),
    /// Decrypt a secret into a private temporary file, open $VISUAL/$EDITOR on it, and encrypt what
    /// was saved; the file is overwritten and removed afterwards.
    Edit(EditArgs),
    /// Decrypt a secret and print it.
    Show(ShowArgs),
    /// Every file under secrets/ and every secret the inventory names: who reads it, and whether it
    /// is encrypted to exactly the keys it should be.
    List(ListArgs),
    /// Re-encrypt secrets to their current readers and admins (every file that needs it, or the ones
    /// named). Decrypts with your key, so you must be one of the file's admins.
    Rekey(RekeyArgs),
}

#[derive(Debug, clap::Args)]
#[command(after_help = EXIT_CODES)]
struct SetArgs {
    /// The secret: secrets/NAME.age.
    name: String,
    /// Read the value from FILE (`-` for standard input) instead of a prompt.
    #[arg(long, value_name = "FILE")]
    from: Option<PathBuf>,
    #[command(flatten)]
    inventory: InventoryArg,
}

#[derive(Debug, clap::Args)]
#[command(after_help = EXIT_CODES)]
struct EditArgs {
    /// The secret.
    name: String,
    #[command(flatten)]
    inventory: InventoryArg,
    #[command(flatten)]
    identity: IdentityArg,
}

#[derive(Debug, clap::Args)]
#[command(after_help = EXIT_CODES)]
struct ShowArgs {
    /// The secret.
    name: Option<String>,
    /// Show the private host key of HOST (secrets/host-keys/HOST.age) instead.
    #[arg(long, value_name = "HOST", conflicts_with = "name")]
    host_key: Option<String>,
    #[command(flatten)]
    inventory: InventoryArg,
    #[command(flatten)]
    identity: IdentityArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ListFormat {
    /// A table for people.
    Text,
    /// A JSON array, one object per file.
    Json,
}

#[derive(Debug, clap::Args)]
#[command(after_help = EXIT_CODES)]
struct ListArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = ListFormat::Text)]
    format: ListFormat,
    #[command(flatten)]
    inventory: InventoryArg,
}

#[derive(Debug, clap::Args)]
#[command(after_help = EXIT_CODES)]
struct RekeyArgs {
    /// The secrets to re-encrypt [default: every file that needs it].
    names: Vec<String>,
    /// Re-encrypt the private host key of HOST (repeat for more).
    #[arg(long, value_name = "HOST")]
    host_key: Vec<String>,
    /// Re-encrypt even files that are already current (a new random file key for each).
    #[arg(long)]
    all: bool,
    #[command(flatten)]
    inventory: InventoryArg,
    #[command(flatten)]
    identity: IdentityArg,
}

pub(crate) fn run(args: Args) -> anyhow::Result<Outcome> {
    match args.command {
        SecretsCommand::Set(args) => set(args),
        SecretsCommand::Edit(args) => edit(args),
        SecretsCommand::Show(args) => show(args),
        SecretsCommand::List(args) => list(args),
        SecretsCommand::Rekey(args) => rekey(args),
    }
}

fn secret_name(name: &str) -> anyhow::Result<SecretName> {
    SecretName::new(name).map_err(|e| anyhow::anyhow!("{}", e.message))
}

fn host_item(fleet: &model::Fleet, host: &str) -> anyhow::Result<Item> {
    let name = HostName::new(host).map_err(|e| anyhow::anyhow!("{}", e.message))?;
    if !fleet.hosts.contains_key(&name) {
        bail!("no host `{host}` in the inventory");
    }
    Ok(Item::HostKey(name))
}

/// Says who a freshly sealed file is for, and who should be but cannot be yet.
/// What re-encrypting changed about the value, or why its hosts cannot use it.
fn report_resealed(item: &Item, resealed: &keeper::Resealed) {
    if resealed.reformatted {
        eprintln!(
            "{}: the value was rewritten in the form its hosts read it (e.g. a bare Wi-Fi passphrase now has its `psk=` line)",
            item.file()
        );
    }
    if let (Some(unfit), Item::Secret(name)) = (&resealed.unfit, item) {
        eprintln!(
            "warning: {} does not hold a value its hosts can use: {unfit}. It was re-encrypted as it is; fix it with `pifleet secrets edit {name}`",
            item.file(),
        );
    }
}

fn report_sealed(keeper: &Keeper<'_>, item: &Item) {
    let wanted = keeper.ring().recipients(item.sealed());
    let holders: Vec<String> = wanted.keys.iter().map(|k| k.holder.to_string()).collect();
    let mut unique = holders.clone();
    unique.dedup();
    eprintln!("encrypted {} to {}", item.file(), unique.join(", "));
    for holder in &wanted.keyless {
        match holder {
            model::Holder::Host(host) => eprintln!(
                "warning: host `{host}` reads {} but has no recorded host key, so it cannot decrypt it: \
                 `pifleet hostkey new {host}` (before flashing) or `pifleet hostkey scan {host}` (running), then `pifleet secrets rekey`",
                item.file()
            ),
            model::Holder::Admin(user) => eprintln!(
                "warning: admin `{user}` has no ssh-ed25519 or ssh-rsa key, so the file is not encrypted to them"
            ),
        }
    }
    if let Item::Secret(name) = item
        && keeper.ring().readers(name).is_empty()
    {
        eprintln!(
            "note: no host reads `{name}` yet; it is encrypted to the admins only (name it in the inventory, then `pifleet secrets rekey {name}`)"
        );
    }
}

fn set(args: SetArgs) -> anyhow::Result<Outcome> {
    let name = secret_name(&args.name)?;
    let workspace = args.inventory.workspace();
    let (_, loaded) = workspace.load()?;
    let keeper = Keeper::new(workspace.base(), &loaded.fleet);
    let value = crate::identity::read_value(args.from.as_deref(), &format!("`{name}`"))?;
    keeper.set(&name, &value)?;
    report_sealed(&keeper, &Item::Secret(name));
    Ok(Outcome::Clean)
}

fn edit(args: EditArgs) -> anyhow::Result<Outcome> {
    let name = secret_name(&args.name)?;
    let workspace = args.inventory.workspace();
    let (_, loaded) = workspace.load()?;
    let keeper = Keeper::new(workspace.base(), &loaded.fleet);
    let item = Item::Secret(name.clone());
    let uses = keeper::payload::uses(&loaded.fleet, &name);
    let current = if keeper.path(&item).exists() {
        let plaintext = keeper.open(&item, &args.identity.unlock())?;
        keeper::payload::editable(&uses, plaintext.expose())
    } else {
        keeper::Zeroed::default()
    };
    let Some(edited) = edit_in_private_file(&name, &current)? else {
        eprintln!("unchanged; {} was not rewritten", item.file());
        return Ok(Outcome::Clean);
    };
    keeper.set(&name, &edited)?;
    report_sealed(&keeper, &item);
    Ok(Outcome::Clean)
}

/// Runs the editor on a 0600 file in a private directory (`$XDG_RUNTIME_DIR`, a tmpfs, when there
/// is one); `None` when the content did not change. The file is overwritten and removed however
/// the editor ends.
fn edit_in_private_file(
    name: &SecretName,
    current: &[u8],
) -> anyhow::Result<Option<keeper::Zeroed>> {
    let base = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|d| d.is_dir())
        .unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::Builder::new()
        .prefix("pifleet-secret-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .tempdir_in(&base)
        .with_context(|| format!("cannot make a private directory in {}", base.display()))?;
    let path = dir.path().join(name.as_str());
    let guard = Scrub(path.clone());
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        file.write_all(current)
            .and_then(|()| file.sync_all())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let editor = std::env::var("VISUAL")
        .ok()
        .filter(|e| !e.trim().is_empty())
        .or_else(|| {
            std::env::var("EDITOR")
                .ok()
                .filter(|e| !e.trim().is_empty())
        })
        .unwrap_or_else(|| "vi".to_owned());
    let mut words = shlex::split(&editor)
        .filter(|w| !w.is_empty())
        .with_context(|| format!("cannot split the editor command {editor:?}"))?;
    let program = words.remove(0);
    let status = std::process::Command::new(&program)
        .args(&words)
        .arg(&path)
        .status()
        .with_context(|| format!("cannot run the editor `{program}` (set $VISUAL or $EDITOR)"))?;
    if !status.success() {
        bail!("the editor exited with {status}; the secret was not changed");
    }
    let mut after = keeper::Zeroed::default();
    after.extend_from_slice(
        &std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?,
    );
    drop(guard);
    Ok((after.as_slice() != current).then_some(after))
}

/// Overwrites and removes the editor's file when dropped.
struct Scrub(PathBuf);

impl Drop for Scrub {
    fn drop(&mut self) {
        if let Ok(meta) = std::fs::metadata(&self.0)
            && let Ok(mut file) = std::fs::OpenOptions::new().write(true).open(&self.0)
        {
            let zeros = vec![0u8; usize::try_from(meta.len()).unwrap_or(0)];
            let _ = file.write_all(&zeros).and_then(|()| file.sync_all());
        }
        let _ = std::fs::remove_file(&self.0);
    }
}

fn show(args: ShowArgs) -> anyhow::Result<Outcome> {
    let workspace = args.inventory.workspace();
    let (_, loaded) = workspace.load()?;
    let keeper = Keeper::new(workspace.base(), &loaded.fleet);
    let item = match (&args.name, &args.host_key) {
        (Some(name), None) => Item::Secret(secret_name(name)?),
        (None, Some(host)) => host_item(&loaded.fleet, host)?,
        _ => bail!("name a secret, or a host with --host-key"),
    };
    let plaintext = keeper.open(&item, &args.identity.unlock())?;
    let mut out = std::io::stdout().lock();
    out.write_all(plaintext.expose())
        .and_then(|()| out.flush())
        .context("writing the secret")?;
    Ok(Outcome::Clean)
}

fn status_word(status: &Status) -> String {
    match status {
        Status::Missing => "missing".to_owned(),
        Status::Unreadable(why) => format!("unreadable: {why}"),
        Status::NotAge(_) => "NOT ENCRYPTED (not an age file)".to_owned(),
        Status::Current => "current".to_owned(),
        Status::Stale { missing, extra } => {
            let mut parts = Vec::new();
            if !missing.is_empty() {
                let who: Vec<String> = missing.iter().map(ToString::to_string).collect();
                parts.push(format!("not for {}", who.join(", ")));
            }
            if !extra.is_empty() {
                parts.push(format!("still for {}", extra.join(", ")));
            }
            format!("needs rekey: {}", parts.join("; "))
        }
    }
}

fn list(args: ListArgs) -> anyhow::Result<Outcome> {
    let workspace = args.inventory.workspace();
    let (_, loaded) = workspace.load()?;
    let keeper = Keeper::new(workspace.base(), &loaded.fleet);
    let entries = keeper.survey();
    match args.format {
        ListFormat::Json => {
            let json: Vec<serde_json::Value> = entries.iter().map(entry_json).collect();
            let mut out = std::io::stdout().lock();
            serde_json::to_writer_pretty(&mut out, &json).context("writing JSON")?;
            writeln!(out).context("writing JSON")?;
        }
        ListFormat::Text => {
            if entries.is_empty() {
                println!("no secrets: secrets/ is empty and the inventory names none");
            }
            let width = entries.iter().map(|e| e.file.len()).max().unwrap_or(0);
            for entry in &entries {
                let readers = match (&entry.item, entry.readers.is_empty()) {
                    (Some(Item::HostKey(_)), _) => "admins only (a private host key)".to_owned(),
                    (_, true) => "no host".to_owned(),
                    (_, false) => entry
                        .readers
                        .iter()
                        .map(HostName::as_str)
                        .collect::<Vec<_>>()
                        .join(", "),
                };
                println!(
                    "{:<width$}  {}  [read by {readers}]",
                    entry.file,
                    status_word(&entry.status)
                );
            }
        }
    }
    Ok(if entries.iter().all(|e| e.status.is_current()) {
        Outcome::Clean
    } else {
        Outcome::Problems
    })
}

fn entry_json(entry: &Entry) -> serde_json::Value {
    let (kind, name) = match &entry.item {
        Some(Item::Secret(name)) => ("secret", Some(name.to_string())),
        Some(Item::HostKey(host)) => ("host_key", Some(host.to_string())),
        None => ("other", None),
    };
    let (status, missing, extra, reason) = match &entry.status {
        Status::Missing => ("missing", vec![], vec![], None),
        Status::Unreadable(why) => ("unreadable", vec![], vec![], Some(why.clone())),
        Status::NotAge(why) => ("not_age", vec![], vec![], Some(why.clone())),
        Status::Current => ("current", vec![], vec![], None),
        Status::Stale { missing, extra } => (
            "needs_rekey",
            missing.iter().map(ToString::to_string).collect(),
            extra.clone(),
            None,
        ),
    };
    serde_json::json!({
        "file": entry.file,
        "kind": kind,
        "name": name,
        "readers": entry.readers.iter().map(HostName::as_str).collect::<Vec<_>>(),
        "status": status,
        "missing": missing,
        "extra": extra,
        "reason": reason,
    })
}

fn rekey(args: RekeyArgs) -> anyhow::Result<Outcome> {
    let workspace: Workspace = args.inventory.workspace();
    let (_, loaded) = workspace.load()?;
    let keeper = Keeper::new(workspace.base(), &loaded.fleet);
    let mut items: Vec<Item> = Vec::new();
    for name in &args.names {
        items.push(Item::Secret(secret_name(name)?));
    }
    for host in &args.host_key {
        items.push(host_item(&loaded.fleet, host)?);
    }
    let named = !items.is_empty();
    if !named {
        items = keeper
            .survey()
            .into_iter()
            .filter(|e| args.all || matches!(e.status, Status::Stale { .. }))
            .filter(|e| !matches!(e.status, Status::Missing))
            .filter_map(|e| e.item)
            .collect();
        if items.is_empty() {
            eprintln!(
                "every secret is encrypted to exactly its readers and the admins; nothing to do"
            );
            return Ok(Outcome::Clean);
        }
    }
    let unlock = args.identity.unlock();
    let mut failed = 0;
    for item in &items {
        let result = if args.all {
            keeper.reseal(item, &unlock).map(Some)
        } else {
            keeper.rekey(item, &unlock)
        };
        match result {
            Ok(Some(resealed)) => {
                report_sealed(&keeper, item);
                report_resealed(item, &resealed);
            }
            Ok(None) => eprintln!("{} is current", item.file()),
            Err(err) => {
                failed += 1;
                eprintln!("error: {:#}", anyhow::Error::new(err));
            }
        }
    }
    if failed > 0 {
        eprintln!(
            "{failed} of {} file(s) could not be re-encrypted (left as they were)",
            items.len()
        );
        return Ok(Outcome::Problems);
    }
    Ok(Outcome::Clean)
}
