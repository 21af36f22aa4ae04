//! Commands that run Nix (`image`, `flash HOST`, `deploy`, `adopt`) check its version before
//! anything else.
//!
//! An old Nix fails late and cryptically (`unrecognised flag '--print-out-paths'` after the
//! inventory was read and a card chosen); one line naming the version found, the version needed
//! and `pifleet doctor` is the useful answer. The minimum and the version parsing are doctor's, so
//! the gate and `pifleet doctor` always agree. There is no switch to skip the gate: tests put a
//! stand-in `nix` on PATH that reports a supported version.

use std::process::{Command, Stdio};

use anyhow::bail;

/// Fails unless `program --version` reports Nix `doctor::MIN_NIX` or newer.
pub(crate) fn require_nix(program: &str) -> anyhow::Result<()> {
    let (major, minor) = doctor::MIN_NIX;
    let out = match Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
    {
        Ok(out) if out.status.success() => out,
        Ok(out) => bail!(
            "`{program} --version` failed ({}): pifleet needs Nix {major}.{minor} or newer; `pifleet doctor` says how to install it",
            out.status
        ),
        Err(err) => bail!(
            "cannot run `{program}` ({err}): pifleet needs Nix {major}.{minor} or newer; `pifleet doctor` says how to install it"
        ),
    };
    let text = String::from_utf8_lossy(&out.stdout);
    match doctor::parse_version(&text) {
        Some((found_major, found_minor, found)) if (found_major, found_minor) < (major, minor) => {
            bail!(
                "Nix {found} (`{program}`) is too old: pifleet needs Nix {major}.{minor} or newer; `pifleet doctor` shows how to upgrade"
            )
        }
        Some(_) => Ok(()),
        None => bail!(
            "cannot read a Nix version from `{program} --version` ({:?}): pifleet needs Nix {major}.{minor} or newer; see `pifleet doctor`",
            text.trim()
        ),
    }
}
