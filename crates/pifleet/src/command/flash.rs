//! `pifleet flash IMAGE [DEVICE]`: write an SD card image to a card, safely, and prove it worked.
//!
//! The order matters: the image is checked and the target judged before anything is asked or
//! written, so a mistake costs nothing. A human confirms the exact device (model and size), or the
//! replacement of an existing file, unless `--yes`; `--force` overrides the safety refusals but never
//! a device too small to hold the image, nor a target that is the image itself. What the read-back
//! proves is said as it is: without zstd frame checksums, only that the card matches what the file
//! decoded to. Progress is a bar on a terminal and plain periodic lines otherwise, so logs of
//! scripted runs stay readable.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::bail;
use flash::{Image, SystemView, Target};

use crate::command::image::{self, FlakeArgs};
use crate::outcome::Outcome;
use crate::progress::ByteProgress;
use crate::ui::{bytes, duration};

const EXIT_CODES: &str = "\
Exit codes:
  0  written and verified (or, without DEVICE, removable devices listed)
  1  declined at the confirmation, or no removable device to list
  2  refused or failed: an unsafe or too small target, a bad image, a failed build, a write or
     read-back error";

#[derive(Debug, clap::Args)]
#[command(after_help = EXIT_CODES)]
pub(crate) struct Args {
    /// The image (`.img` or `.img.zst`), or a host name: its image is built first with Nix, and its
    /// SSH host key written onto the card (as with --host).
    image: String,
    /// The card to write (`/dev/sdX`, `/dev/mmcblkN`), or a regular file (an existing one is
    /// replaced only after confirmation). Omit it to list the removable devices.
    device: Option<PathBuf>,
    /// Don't ask for confirmation before erasing a device or replacing an existing file.
    #[arg(long, short = 'y')]
    yes: bool,
    /// Write even if the device looks mounted or swapped to, holds the running system or is not
    /// removable. The kernel still refuses a device that is mounted or swapped to.
    #[arg(long)]
    force: bool,
    /// Don't read the card back to compare checksums after writing.
    #[arg(long)]
    no_verify: bool,
    /// After writing, put HOST's SSH host key on the card's root partition
    /// (/etc/ssh/ssh_host_ed25519_key, root, 0600), so it boots with the identity the repository
    /// knows and can decrypt its secrets. A key the inventory lacks is created first.
    #[arg(long, value_name = "HOST")]
    host: Option<String>,
    /// Write no host key: the card makes its own at first boot (record it then with
    /// `pifleet hostkey scan`).
    #[arg(long)]
    no_host_key: bool,
    #[command(flatten)]
    flake: FlakeArgs,
    #[command(flatten)]
    inventory: crate::workspace::InventoryArg,
    #[command(flatten)]
    identity: crate::identity::IdentityArg,
}

pub(crate) fn run(args: Args) -> anyhow::Result<Outcome> {
    let view = SystemView::live();
    let Some(device_path) = args.device else {
        return list_candidates(&view);
    };

    // A host name builds its image; its identity and secrets are made ready first, so a mistake
    // there costs no build and no card.
    let host = match (&args.host, image_file(&args.image)?) {
        (Some(host), _) => Some(host.clone()),
        (None, None) => Some(args.image.clone()),
        (None, Some(_)) => None,
    };
    let building = image_file(&args.image)?.is_none();
    if building {
        // Before anything else: an old Nix would fail the build only after the questions.
        crate::nix_gate::require_nix(image::nix())?;
        // A device that will be refused anyway is refused before a build that can take hours.
        if let Target::Device(device) = view.target(&device_path)? {
            refuse_unsafe(&view, &device, None, args.force)?;
        }
    }
    let host_key = match &host {
        Some(host) => crate::enrol::ready_for_card(
            &args.inventory.workspace(),
            host,
            &args.identity,
            !args.no_host_key,
        )?,
        None => None,
    };
    let image_path = match image_file(&args.image)? {
        Some(path) => path,
        None => image::build(&args.flake, &args.image)?,
    };
    let image = Image::open(&image_path)?;
    if image.file_len() <= FULL_CHECK_UP_TO {
        image.check_decode()?;
    }
    let target = view.target(&device_path)?;
    if let Some(refusal) = target.overwrites_image(&image) {
        bail!("refusing to write {}: {refusal}", target.path().display());
    }

    match &target {
        Target::NewFile(_) => {}
        Target::File(path) => {
            if !args.yes && !confirm_replace(&image, path)? {
                eprintln!("aborted; nothing was written");
                return Ok(Outcome::Problems);
            }
        }
        Target::Device(device) => {
            refuse_unsafe(&view, device, image.size(), args.force)?;
            if !args.yes && !confirm(&image, device)? {
                eprintln!("aborted; nothing was written");
                return Ok(Outcome::Problems);
            }
        }
    }

    let target_path = target.path().to_path_buf();
    let started = Instant::now();
    let mut progress = ByteProgress::new("written", image.size());
    // Without verification the hash would be computed for nothing.
    let hashing = if args.no_verify {
        flash::Hashing::Off
    } else {
        flash::Hashing::Sha256
    };
    let written = flash::write_image(&image, &target, hashing, &mut progress);
    progress.finish();
    let written = written?;
    let took = started.elapsed();
    eprintln!(
        "wrote {} to {} in {}",
        bytes(written.len),
        target_path.display(),
        duration(took)
    );

    if args.no_verify {
        eprintln!("not verified (--no-verify)");
    } else {
        let mut progress = ByteProgress::new("verified", Some(written.len));
        let verified = flash::verify(&target_path, &written, &mut progress);
        progress.finish();
        verified?;
        eprintln!("{}", verified_message(&image));
    }
    // Before the partition table is re-read: a desktop may mount the new partitions right after.
    if let Some(key) = &host_key {
        crate::enrol::write_to_card(&target_path, key, false, true)?;
    } else if let Some(host) = host.as_ref().filter(|_| args.no_host_key) {
        eprintln!(
            "no host key written (--no-host-key): `{host}` makes its own at first boot; record it with `pifleet hostkey scan {host}`"
        );
    }
    if matches!(target, Target::Device(_)) && !flash::reread_partition_table(&target_path) {
        tracing::debug!(
            "could not re-read the partition table of {}",
            target_path.display()
        );
    }
    if let Some(sha) = written.sha256_hex() {
        println!("sha256: {sha}");
    }
    Ok(Outcome::Clean)
}

/// Refuses a device that must never be written (mounted, the system disk, too small for
/// `size` when known) and, without `force`, one that only looks wrong (not removable, say).
fn refuse_unsafe(
    view: &SystemView,
    device: &flash::Device,
    size: Option<u64>,
    force: bool,
) -> anyhow::Result<()> {
    let refusals = view.check(device, size)?;
    let hard: Vec<_> = refusals.iter().filter(|r| !r.overridable()).collect();
    if !hard.is_empty() {
        let why: Vec<String> = hard.iter().map(|r| r.to_string()).collect();
        bail!(
            "refusing to write {}: {}",
            device.path.display(),
            why.join("; ")
        );
    }
    if !refusals.is_empty() {
        let why: Vec<String> = refusals.iter().map(|r| format!("  - {r}")).collect();
        if !force {
            bail!(
                "refusing to write {}:\n{}\npass --force to write anyway, if you are sure",
                device.path.display(),
                why.join("\n")
            );
        }
        if size.is_some() {
            eprintln!(
                "warning: --force: writing {} although:\n{}",
                device.path.display(),
                why.join("\n")
            );
        }
    }
    Ok(())
}

/// An existing file is the image; otherwise a bare name is a host whose image we build (`None`).
fn image_file(arg: &str) -> anyhow::Result<Option<PathBuf>> {
    let path = Path::new(arg);
    if path.exists() {
        return Ok(Some(path.to_path_buf()));
    }
    let looks_like_file = arg.contains('/') || arg.contains(".img") || arg.ends_with(".zst");
    if looks_like_file {
        bail!("no image at {arg}");
    }
    Ok(None)
}

fn list_candidates(view: &SystemView) -> anyhow::Result<Outcome> {
    let devices = view.candidates()?;
    if devices.is_empty() {
        println!("no removable devices found; insert a card (or name the device explicitly)");
        return Ok(Outcome::Problems);
    }
    println!("removable devices (pass one as DEVICE):");
    for d in devices {
        println!(
            "  {:<16} {:>10}  {}",
            d.path.display(),
            bytes(d.size),
            d.model.as_deref().unwrap_or("(unknown model)")
        );
    }
    Ok(Outcome::Clean)
}

fn confirm(image: &Image, device: &flash::Device) -> anyhow::Result<bool> {
    let model = device.model.as_deref().unwrap_or("unknown model");
    let size = image
        .size()
        .map_or_else(|| "unknown size".to_owned(), bytes);
    crate::ui::confirm(&format!(
        "Erase {} ({model}, {}) and write {} ({size})?",
        device.path.display(),
        bytes(device.size),
        image.path().display(),
    ))
}

fn confirm_replace(image: &Image, file: &Path) -> anyhow::Result<bool> {
    let len =
        std::fs::metadata(file).map_or_else(|_| "unknown size".to_owned(), |m| bytes(m.len()));
    let size = image
        .size()
        .map_or_else(|| "unknown size".to_owned(), bytes);
    crate::ui::confirm(&format!(
        "Overwrite the existing file {} ({len}) with {} ({size})?",
        file.display(),
        image.path().display(),
    ))
}

/// What a read-back that matched proves. It compares the target with the SHA-256 taken of the
/// decoded stream, so it can't see damage that decoded into wrong bytes; zstd frame checksums, which
/// the decoder checks while writing, are what rule that out.
fn verified_message(image: &Image) -> &'static str {
    match image.frame_checksums() {
        Some(false) => {
            "verified: the card reads back identical to the decoded image; the image's zstd frames carry no checksum, so damage inside the .zst file itself would not be detected"
        }
        Some(true) | None => "verified: the card reads back identical to the image",
    }
}

/// Compressed images up to this size are decoded once before writing, to catch damage inside
/// compressed blocks while nothing is written yet; that costs well under a second. Larger ones are
/// checked structurally only (truncation), and damage stops the write part way.
const FULL_CHECK_UP_TO: u64 = 64 << 20;
