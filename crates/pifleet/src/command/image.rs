//! `pifleet image HOST`: build a host's SD card image with Nix and say where it is.
//!
//! The flake exposes `packages.<system>.<host>-sd`; its output holds the image under `sd-image/`
//! with a name we don't control (`image.fileName` changed names across NixOS releases), so the
//! output is globbed for `*.img*` rather than guessed. `flash` reuses [`build`] to accept a host
//! name in place of an image file.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

use crate::outcome::Outcome;
use crate::ui::bytes;

const EXIT_CODES: &str = "\
Exit codes:
  0  the image was built; its path, size and SHA-256 were printed
  2  refused or failed: an unknown host, a missing secret or host key, Nix too old or missing, a
     failed build";

#[derive(Debug, clap::Args)]
#[command(after_help = EXIT_CODES)]
pub(crate) struct Args {
    /// The host whose SD image to build (the flake output `<HOST>-sd`). Its host key is created
    /// first when the inventory has none, and its secrets re-encrypted to it, so the image's first
    /// boot can decrypt them.
    host: String,
    #[command(flatten)]
    flake: FlakeArgs,
    #[command(flatten)]
    inventory: crate::workspace::InventoryArg,
    /// `json`: `{host, image, bytes, compression, card_bytes, sha256}` on stdout.
    #[arg(long, value_enum, default_value_t = crate::fleet_run::Format::Human)]
    format: crate::fleet_run::Format,
    #[command(flatten)]
    identity: crate::identity::IdentityArg,
}

/// Where the fleet's flake is.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct FlakeArgs {
    /// The flake holding the fleet (a directory or flake reference).
    #[arg(long, default_value = ".", value_name = "FLAKE")]
    pub(crate) flake: String,
}

pub(crate) fn run(args: Args) -> anyhow::Result<Outcome> {
    // Before anything else, so an old Nix costs no key generation and no questions.
    crate::nix_gate::require_nix(nix())?;
    crate::enrol::ready_for_card(
        &args.inventory.workspace(),
        &args.host,
        &args.identity,
        false,
    )?;
    let image = build(&args.flake, &args.host)?;
    let opened = flash::Image::open(&image)?;
    let size = opened.file_len();
    let sha =
        flash::file_sha256(&image).with_context(|| format!("cannot hash {}", image.display()))?;
    if args.format == crate::fleet_run::Format::Json {
        println!(
            "{:#}",
            serde_json::json!({
                "host": args.host,
                "image": image,
                "bytes": size,
                "compression": match opened.format() {
                    flash::Format::Zstd => "zstd",
                    flash::Format::Raw => "none",
                },
                "card_bytes": opened.size(),
                "sha256": sha,
            })
        );
        return Ok(Outcome::Clean);
    }
    println!("image:  {}", image.display());
    match (opened.format(), opened.size()) {
        (flash::Format::Zstd, Some(card)) => println!(
            "size:   {} ({size} bytes), zstd; {} on the card",
            bytes(size),
            bytes(card)
        ),
        (flash::Format::Zstd, None) => println!("size:   {} ({size} bytes), zstd", bytes(size)),
        (flash::Format::Raw, _) => println!("size:   {} ({size} bytes)", bytes(size)),
    }
    println!("sha256: {sha}");
    Ok(Outcome::Clean)
}

/// Builds `<flake>#<host>-sd` and returns the image file in its output.
pub(crate) fn build(flake: &FlakeArgs, host: &str) -> anyhow::Result<PathBuf> {
    if host.is_empty() || host.contains(['/', '#', ' ']) {
        bail!("{host:?} is not a host name");
    }
    crate::nix_gate::require_nix(nix())?;
    let installable = format!("{}#{host}-sd", flake.flake);
    eprintln!("building {installable} (this can take a while the first time)");
    // Flakes may not be enabled in nix.conf yet (`pifleet doctor` says how); enable them for this call.
    let output = Command::new(nix())
        .args([
            "--extra-experimental-features",
            "nix-command flakes",
            "build",
            &installable,
            "--print-out-paths",
            "--out-link",
            &format!("result-{host}-sd"),
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run `nix`; is Nix installed? (`pifleet doctor` checks)")?;
    if !output.status.success() {
        bail!("`nix build {installable}` failed ({})", output.status);
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let out = stdout
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .with_context(|| format!("`nix build {installable}` printed no output path"))?;
    find_image(Path::new(out))
}

/// The image file in a build output: `<out>/sd-image/*.img*`.
fn find_image(out: &Path) -> anyhow::Result<PathBuf> {
    let dir = out.join("sd-image");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("the build output has no {}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.contains(".img"))
        })
        .collect();
    found.sort();
    match found.len() {
        0 => bail!("no *.img* file in {}", dir.display()),
        1 => {}
        _ => tracing::warn!("several images in {}; using the first", dir.display()),
    }
    Ok(found.swap_remove(0))
}

/// The `nix` executable: baked in by the Nix package when built there, else from PATH.
pub(crate) fn nix() -> &'static str {
    option_env!("PIFLEET_NIX").unwrap_or("nix")
}
