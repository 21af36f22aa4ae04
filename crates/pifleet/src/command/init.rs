//! `pifleet init [DIR]`: a new fleet repository that passes `check` and builds on the first try.
//!
//! A new user's first half hour decides whether they stay, so the repository is complete when this
//! ends: the template's `flake.nix` pointing at a pifleet it can fetch, a hardened `fleet.toml` with
//! their own key (`model::scaffold` decides its shape), the schema for their editor, a `.gitignore`
//! and a README (minijinja templates under `templates/`), `hosts/` generated, everything added to
//! Git. Existing files are never overwritten, and a failure half way says what was created.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use model::{Address, Board, HostName, SecretName, SshPublicKey, UserName};

use crate::outcome::Outcome;
use crate::workspace::Workspace;

const EXIT_CODES: &str = "\
Exit codes:
  0  the repository was created, its inventory passes check and hosts/ was generated
  1  the repository was created, but the inventory needs one more step (e.g. the Wi-Fi
     passphrase): check printed what, and gen did not run
  2  usage or I/O error: a directory that is not empty (without --force), a private key, no
     public key found, a bad host name, board or address";

/// The fleet template's flake, the one `nix flake init -t` copies too: one owner for the flake.
const FLAKE_TEMPLATE: &str = include_str!("../../../../templates/default/flake.nix");
/// The template's placeholder for the pifleet input, kept when nothing better is known.
const PLACEHOLDER_URL: &str = "git+https://example.invalid/pifleet";
const README_TEMPLATE: &str = include_str!("../../templates/README.md.j2");
const GITIGNORE_TEMPLATE: &str = include_str!("../../templates/gitignore.j2");
const SCHEMA_PATH: &str = "schema/fleet.schema.json";
/// The secret a new Wi-Fi board's passphrase is kept in; more hosts on the network reuse it.
const WIFI_SECRET: &str = "wifi";

#[derive(Debug, clap::Args)]
#[command(after_help = EXIT_CODES)]
pub(crate) struct Args {
    /// Where to create the repository (made if missing) [default: the current directory].
    #[arg(default_value = ".", value_name = "DIR")]
    dir: PathBuf,
    /// Your SSH public key, a `.pub` file [default: ~/.ssh/id_ed25519.pub, else the ssh agent's
    /// first key]. It logs you in on every host and decrypts the fleet's secrets.
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    /// The first host's name [asked on a terminal].
    #[arg(long, value_name = "NAME")]
    host: Option<String>,
    /// Its board: rpi3, rpi4, zero2w, generic-aarch64 or x86_64 [asked on a terminal].
    #[arg(long, value_name = "BOARD")]
    board: Option<String>,
    /// Where deploy reaches it: an IP address or a DNS name [asked on a terminal].
    #[arg(long, value_name = "ADDRESS")]
    address: Option<String>,
    /// The Wi-Fi network the host joins on first boot (needed for a zero2w, which has no Ethernet).
    #[arg(long, value_name = "SSID")]
    wifi_ssid: Option<String>,
    /// Read the Wi-Fi passphrase from FILE (`-`: standard input) instead of a prompt. Without
    /// either, init prints the one command that stores it.
    #[arg(long, value_name = "FILE", requires = "wifi_ssid")]
    wifi_passphrase_file: Option<PathBuf>,
    /// The account you log in and deploy as; it becomes the fleet's admin.
    #[arg(long, value_name = "NAME", default_value = "deploy")]
    user: String,
    /// Where the new repository's flake fetches pifleet from (its `pifleet` input) [default: the
    /// checkout this pifleet was built from, when there is one].
    #[arg(long, value_name = "URL")]
    pifleet_url: Option<String>,
    /// Also create the repository in a directory that is not empty. Existing files are kept as they
    /// are, never overwritten.
    #[arg(long)]
    force: bool,
}

pub(crate) fn run(args: Args) -> anyhow::Result<Outcome> {
    // Everything is asked and checked before the first file is written.
    let (keys, found) = crate::pubkey::own(args.key.as_deref())?;
    let admin =
        UserName::new(args.user.as_str()).map_err(|e| anyhow::anyhow!("--user: {}", e.message))?;
    if admin.as_str() == "root" {
        bail!(
            "--user root: deploys log in as an ordinary user with sudo; pick another name (the default is `deploy`)"
        );
    }
    let first = first_host(&args)?;
    let secret = wifi_secret()?;
    let source = pifleet_source(args.pifleet_url.as_deref())?;
    refuse_non_empty(&args.dir, args.force)?;

    let starter = model::scaffold::Starter {
        schema: format!("./{SCHEMA_PATH}"),
        admin: admin.clone(),
        keys,
        host: first.name.clone(),
        board: first.board,
        address: first.address.clone(),
        wifi: first
            .wifi
            .as_ref()
            .map(|ssid| model::scaffold::StarterWifi {
                ssid: ssid.clone(),
                psk_secret: secret.clone(),
            }),
    };
    let fleet_toml = model::scaffold::fleet_toml(&starter)?;
    let flake =
        nixgen::edit::set_string(FLAKE_TEMPLATE, &["inputs", "pifleet", "url"], source.url())
            .context("cannot set the pifleet input of flake.nix")?;
    let context = minijinja::context! {
        host => first.name.as_str(),
        board => first.board.as_str(),
        address => first.address.as_str(),
        user => admin.as_str(),
        sd_image => first.board.is_raspberry_pi(),
        wifi_ssid => first.wifi.as_deref(),
        wifi_secret => first.wifi.as_ref().map(|_| WIFI_SECRET),
        pifleet_url => source.url(),
        placeholder => matches!(source, Source::Placeholder),
    };
    let files: [(&str, String); 5] = [
        ("flake.nix", flake),
        ("fleet.toml", fleet_toml),
        (SCHEMA_PATH, model::schema_string()),
        (".gitignore", render(GITIGNORE_TEMPLATE, &context)?),
        ("README.md", render(README_TEMPLATE, &context)?),
    ];

    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    let mut made = Made::new(&args.dir);
    for (name, text) in &files {
        made.write(name, text.as_bytes())?;
    }
    eprintln!("your key: {found}");
    eprintln!("the pifleet input: {}", source.describe());

    let workspace = Workspace::new(&args.dir.join("fleet.toml"), None);
    let inventory_is_ours = made.created.iter().any(|p| p == "fleet.toml");
    let mut pending = Vec::new();
    if first.wifi.is_some()
        && inventory_is_ours
        && let Err(err) = wifi_identity(
            &workspace,
            &first.name,
            args.wifi_passphrase_file.as_deref(),
            &secret,
            &mut made,
            &mut pending,
        )
    {
        return Err(made.failed(err));
    }

    // gen, as `pifleet gen` would: only on an inventory check accepts.
    let generated = match workspace.load_checked().map_err(|e| made.failed(e))? {
        Some(loaded) => {
            let hosts = workspace
                .write_tree(&loaded.fleet)
                .map_err(|e| made.failed(e))?;
            println!("gen: {hosts} ({})", workspace.hosts.display());
            made.created.push("hosts".to_owned());
            true
        }
        None => {
            eprintln!("gen did not run: the inventory needs the step below first");
            false
        }
    };

    git_add(&args.dir, &made.created);
    if !made.skipped.is_empty() {
        eprintln!(
            "kept as they were (init never overwrites): {}",
            made.skipped.join(", ")
        );
    }
    print_next_steps(&args.dir, &first, &admin, &source, &pending, generated);
    Ok(if generated {
        Outcome::Clean
    } else {
        Outcome::Problems
    })
}

/// The first host, from the flags or asked on a terminal; each value checked by its model type.
#[derive(Debug)]
struct FirstHost {
    name: HostName,
    board: Board,
    address: Address,
    wifi: Option<String>,
}

fn first_host(args: &Args) -> anyhow::Result<FirstHost> {
    let interactive = crate::ui::interactive();
    let missing: Vec<&str> = [
        ("--host NAME", args.host.is_none()),
        ("--board BOARD", args.board.is_none()),
        ("--address ADDRESS", args.address.is_none()),
    ]
    .into_iter()
    .filter_map(|(flag, missing)| missing.then_some(flag))
    .collect();
    if !missing.is_empty() && !interactive {
        bail!(
            "the first host needs {} (or run init on a terminal to be asked)",
            missing.join(", ")
        );
    }
    let name = match &args.host {
        Some(name) => host_name(name)?,
        None => ask("Name of the first host (e.g. pi-01)", host_name)?,
    };
    let board = match &args.board {
        Some(board) => parse_board(board)?,
        None => ask_board()?,
    };
    let address = match &args.address {
        Some(address) => parse_address(address)?,
        None => ask(
            "Its address on your network (IP or DNS name)",
            parse_address,
        )?,
    };
    let wifi = match (&args.wifi_ssid, board) {
        (Some(ssid), _) => Some(ssid.clone()),
        (None, Board::Zero2w) if interactive => {
            Some(ask("The Wi-Fi network it joins (SSID)", |s| {
                Ok(s.to_owned())
            })?)
        }
        (None, Board::Zero2w) => {
            bail!("a zero2w has only Wi-Fi: give the network it joins with --wifi-ssid SSID")
        }
        (None, _) => None,
    };
    if let Some(ssid) = &wifi
        && (ssid.is_empty() || ssid.chars().any(char::is_control))
    {
        bail!("--wifi-ssid {ssid:?}: give the network's name as shown when you join it");
    }
    Ok(FirstHost {
        name,
        board,
        address,
        wifi,
    })
}

fn host_name(name: &str) -> anyhow::Result<HostName> {
    HostName::new(name.trim()).map_err(|e| anyhow::anyhow!("host name `{name}`: {}", e.message))
}

fn parse_address(address: &str) -> anyhow::Result<Address> {
    Address::new(address.trim()).map_err(|e| anyhow::anyhow!("address `{address}`: {}", e.message))
}

const BOARDS: [Board; 5] = [
    Board::Rpi4,
    Board::Rpi3,
    Board::Zero2w,
    Board::GenericAarch64,
    Board::X86_64,
];

fn parse_board(board: &str) -> anyhow::Result<Board> {
    BOARDS
        .into_iter()
        .find(|b| b.as_str() == board.trim())
        .ok_or_else(|| {
            let names: Vec<&str> = BOARDS.iter().map(|b| b.as_str()).collect();
            anyhow::anyhow!(
                "board `{board}` is not one pifleet knows: {}",
                names.join(", ")
            )
        })
}

/// Asks for a line until `parse` accepts it.
fn ask<T>(prompt: &str, parse: impl Fn(&str) -> anyhow::Result<T>) -> anyhow::Result<T> {
    let text: String = dialoguer::Input::new()
        .with_prompt(prompt)
        .validate_with(|s: &String| parse(s).map(|_| ()).map_err(|e| e.to_string()))
        .interact_text_on(&console::Term::stderr())
        .context("cannot read the answer")?;
    parse(&text)
}

fn ask_board() -> anyhow::Result<Board> {
    let items: Vec<&str> = BOARDS.iter().map(|b| b.as_str()).collect();
    let chosen = dialoguer::Select::new()
        .with_prompt("Its board")
        .items(&items)
        .default(0)
        .interact_on(&console::Term::stderr())
        .context("cannot read the answer")?;
    Ok(BOARDS[chosen])
}

fn wifi_secret() -> anyhow::Result<SecretName> {
    SecretName::new(WIFI_SECRET).map_err(|e| anyhow::anyhow!("{}", e.message))
}

/// Where the new flake fetches pifleet from.
#[derive(Debug)]
enum Source {
    /// `--pifleet-url`.
    Given(String),
    /// Set when this pifleet was built (`PIFLEET_FLAKE_URL`, for packagers).
    Built(String),
    /// The Git checkout this binary was built from, still where it was.
    Checkout(String),
    /// Nothing known: the template's placeholder.
    Placeholder,
}

impl Source {
    fn url(&self) -> &str {
        match self {
            Source::Given(url) | Source::Built(url) | Source::Checkout(url) => url,
            Source::Placeholder => PLACEHOLDER_URL,
        }
    }

    fn describe(&self) -> String {
        match self {
            Source::Given(url) => format!("{url} (--pifleet-url)"),
            Source::Built(url) => format!("{url} (set when this pifleet was built)"),
            Source::Checkout(url) => format!("{url} (the checkout this pifleet was built from)"),
            Source::Placeholder => format!("{PLACEHOLDER_URL}, a PLACEHOLDER"),
        }
    }
}

fn pifleet_source(given: Option<&str>) -> anyhow::Result<Source> {
    if let Some(url) = given {
        if url.is_empty() || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
            bail!(
                "--pifleet-url {url:?} is not a flake URL (e.g. git+https://host/pifleet or git+file:///path/to/pifleet)"
            );
        }
        return Ok(Source::Given(url.to_owned()));
    }
    if let Some(url) = option_env!("PIFLEET_FLAKE_URL").filter(|u| !u.is_empty()) {
        return Ok(Source::Built(url.to_owned()));
    }
    Ok(checkout_url().map_or(Source::Placeholder, Source::Checkout))
}

/// `git+file://` of the workspace this binary was compiled in, when it is still there as a Git
/// checkout with pifleet's flake (`cargo install --path` or `cargo run` from a clone). A binary
/// built elsewhere (by Nix, in a sandbox that is gone) finds nothing.
fn checkout_url() -> Option<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let root = root.canonicalize().ok()?;
    let ours = root.join("flake.nix").is_file()
        && root.join("nix/lib.nix").is_file()
        && root.join("crates/pifleet/Cargo.toml").is_file()
        && root.join(".git").exists();
    ours.then(|| format!("git+file://{}", url_path(&root)))
}

/// A path as the path of a URL: bytes outside the unreserved set are percent-encoded.
fn url_path(path: &Path) -> String {
    let mut out = String::new();
    for byte in path.as_os_str().as_encoded_bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'.' | b'_' | b'~' | b'+' => {
                out.push(char::from(*byte));
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

fn refuse_non_empty(dir: &Path, force: bool) -> anyhow::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
    };
    let names: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    if !names.is_empty() && !force {
        let mut shown = names.clone();
        shown.sort();
        shown.truncate(5);
        bail!(
            "{} is not empty ({}{}): init makes a new repository. Give an empty or new directory, or --force to add \
             only the files that are missing (existing files are never overwritten)",
            dir.display(),
            shown.join(", "),
            if names.len() > shown.len() {
                ", …"
            } else {
                ""
            }
        );
    }
    Ok(())
}

fn render(template: &str, context: &minijinja::Value) -> anyhow::Result<String> {
    let mut env = minijinja::Environment::new();
    env.set_keep_trailing_newline(true);
    env.template_from_str(template)
        .and_then(|t| t.render(context))
        .context("rendering a file of the new repository")
}

/// The files init wrote, and the ones it found in place and left alone.
#[derive(Debug)]
struct Made {
    dir: PathBuf,
    created: Vec<String>,
    skipped: Vec<String>,
}

impl Made {
    fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
            created: Vec::new(),
            skipped: Vec::new(),
        }
    }

    /// Writes `rel` unless something is there already: the content goes to a temporary file in the
    /// same directory, which is then linked into place only if the name is still free.
    fn write(&mut self, rel: &str, content: &[u8]) -> anyhow::Result<()> {
        use std::io::Write as _;
        let path = self.dir.join(rel);
        if path.symlink_metadata().is_ok() {
            self.skipped.push(rel.to_owned());
            return Ok(());
        }
        let result = (|| {
            let parent = path.parent().unwrap_or(&self.dir);
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
            let mut tmp = tempfile::Builder::new()
                .prefix(".pifleet-init-")
                .tempfile_in(parent)
                .with_context(|| format!("cannot create a file in {}", parent.display()))?;
            tmp.write_all(content)
                .and_then(|()| tmp.as_file().sync_all())
                .with_context(|| format!("cannot write {}", path.display()))?;
            match tmp.persist_noclobber(&path) {
                Ok(_) => Ok(true),
                Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
                Err(e) => Err(e.error).with_context(|| format!("cannot create {}", path.display())),
            }
        })();
        match result {
            Ok(true) => self.created.push(rel.to_owned()),
            Ok(false) => self.skipped.push(rel.to_owned()),
            Err(err) => return Err(self.failed(err)),
        }
        Ok(())
    }

    /// `err`, with what had been created before it.
    fn failed(&self, err: anyhow::Error) -> anyhow::Error {
        if self.created.is_empty() {
            err.context("init stopped before creating anything")
        } else {
            err.context(format!(
                "init stopped after creating {} in {} (nothing else was changed; remove them to start over)",
                self.created.join(", "),
                self.dir.display()
            ))
        }
    }
}

/// A Wi-Fi board joins its network on first boot by decrypting the passphrase with its host key,
/// so it gets its key now (the private half sealed to the admin), and the passphrase is stored from
/// `--wifi-passphrase-file` or a prompt. Without either, the one command left is noted.
fn wifi_identity(
    workspace: &Workspace,
    host: &HostName,
    passphrase_file: Option<&Path>,
    secret: &SecretName,
    made: &mut Made,
    pending: &mut Vec<String>,
) -> anyhow::Result<()> {
    let (text, _) = workspace.load()?;
    let generated = vault::generate_host_key(host.as_str())?;
    let public: SshPublicKey = generated
        .public_line
        .parse()
        .map_err(|e: model::NameError| anyhow::anyhow!("{}", e.message))?;
    // No secret exists yet, so nothing needs decrypting: the identity is never asked for.
    let unlock = crate::identity::IdentityArg::default().unlock();
    let (loaded, _) = crate::enrol::record(
        workspace,
        &text,
        host,
        &public,
        Some(generated.private_openssh.as_str()),
        &unlock,
    )?;
    made.created
        .push(keeper::Item::HostKey(host.clone()).file());
    let value = match passphrase_file {
        Some(file) => Some(crate::identity::read_value(
            Some(file),
            "the Wi-Fi passphrase",
        )?),
        None if crate::ui::interactive() => Some(crate::identity::read_value(
            None,
            &format!("the Wi-Fi passphrase of `{host}`'s network"),
        )?),
        None => None,
    };
    match value {
        Some(value) => {
            let keeper = keeper::Keeper::new(workspace.base(), &loaded.fleet);
            let item = keeper::Item::Secret(secret.clone());
            match keeper.set(secret, &value) {
                Ok(()) => {
                    eprintln!(
                        "encrypted the Wi-Fi passphrase to you and `{host}`: {}",
                        item.file()
                    );
                    made.created.push(item.file());
                }
                // The repository is whole without it; the one step left is said below.
                Err(err) => {
                    eprintln!(
                        "error: the Wi-Fi passphrase was not stored: {:#}",
                        anyhow::Error::new(err)
                    );
                    pending.push(format!(
                        "store the Wi-Fi passphrase, encrypted to you and `{host}`: pifleet secrets set {secret}"
                    ));
                }
            }
        }
        None => pending.push(format!(
            "store the Wi-Fi passphrase, encrypted to you and `{host}`: pifleet secrets set {secret}"
        )),
    }
    Ok(())
}

/// `git init` (unless the directory is a repository's top already) and `git add` of what init
/// made: a flake sees only the files Git tracks.
fn git_add(dir: &Path, created: &[String]) {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
    };
    if git(&["--version"]).is_err() {
        eprintln!(
            "git is not installed, so nothing was added: a flake sees only the files Git tracks. Install git, then \
             `git init && git add -A` in {}",
            dir.display()
        );
        return;
    }
    if !dir.join(".git").exists() {
        match git(&["init", "--quiet"]) {
            Ok(out) if out.status.success() => eprintln!("git init: {}", dir.display()),
            Ok(out) => {
                eprintln!(
                    "warning: git init failed ({}); run `git init && git add -A` in {}",
                    String::from_utf8_lossy(&out.stderr).trim(),
                    dir.display()
                );
                return;
            }
            Err(e) => {
                eprintln!("warning: cannot run git: {e}");
                return;
            }
        }
    }
    if created.is_empty() {
        return;
    }
    let mut args = vec!["add", "--"];
    args.extend(created.iter().map(String::as_str));
    match git(&args) {
        Ok(out) if out.status.success() => {
            eprintln!("git add: {}", created.join(", "));
        }
        Ok(out) => eprintln!(
            "warning: git add failed ({}); add the files yourself: `git add -A`",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => eprintln!("warning: cannot run git: {e}"),
    }
}

fn print_next_steps(
    dir: &Path,
    first: &FirstHost,
    admin: &UserName,
    source: &Source,
    pending: &[String],
    generated: bool,
) {
    let host = &first.name;
    let mut steps: Vec<String> = Vec::new();
    if dir != Path::new(".") {
        steps.push(format!("cd {}", dir.display()));
    }
    if matches!(source, Source::Placeholder) {
        steps.push(
            "replace the pifleet input's URL in flake.nix with where you get pifleet (git+https://… of its repository, \
             or git+file:///path/to/a/checkout)"
                .to_owned(),
        );
    }
    steps.extend(pending.iter().cloned());
    if !generated {
        steps.push("pifleet check, then pifleet gen".to_owned());
    }
    steps.push(
        "git commit -m \"A new fleet\"     (init added its files; flakes see only what Git tracks)"
            .to_owned(),
    );
    if first.board.is_raspberry_pi() {
        steps.push(format!(
            "nix run .#flash -- {host} /dev/sdX     (build the SD image and write it; see pifleet's docs/sd-card.md)"
        ));
    } else {
        steps.push(format!(
            "nix run . -- adopt {host} --via root@{}     (take over the machine, already running NixOS)",
            first.address
        ));
    }
    steps.push(format!("ssh {admin}@{}", first.address));
    steps.push(format!(
        "nix run .#deploy -- {host}     (every change after that)"
    ));

    if matches!(source, Source::Placeholder) {
        eprintln!();
        eprintln!(
            "NOTE: flake.nix fetches pifleet from {PLACEHOLDER_URL}, a placeholder: this pifleet cannot tell where it \
             comes from. Nothing builds until you put the real URL there (or run init with --pifleet-url URL)."
        );
    }
    println!();
    println!("Next steps:");
    for (i, step) in steps.iter().enumerate() {
        println!("  {}. {step}", i + 1);
    }
}
