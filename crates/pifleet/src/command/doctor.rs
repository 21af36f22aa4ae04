//! `pifleet doctor`: is this workstation ready to build images, flash cards and deploy?
//!
//! The checks live in the `doctor` crate and take their inputs explicitly; this file gathers them
//! from the machine (`nix --version`, nix.conf, binfmt_misc, `~/.ssh`, the inventory's keys, free
//! space in the store) and prints one line per check, with the fix for Ubuntu and NixOS under each
//! one that failed.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use doctor::{Inputs, Status};

use crate::outcome::Outcome;

const EXIT_CODES: &str = "\
Exit codes:
  0  every check passed (warnings may have been printed)
  1  a check failed; its fix is printed under it
  2  the checks could not run";

#[derive(Debug, clap::Args)]
#[command(after_help = EXIT_CODES)]
pub(crate) struct Args {
    /// The inventory whose SSH keys should include this workstation's (`--inventory` is the old name).
    #[command(flatten)]
    inventory: crate::workspace::InventoryArg,
    /// Read nix.conf and binfmt_misc under this directory instead of `/` (for tests).
    #[arg(long, default_value = "/", hide = true)]
    root: PathBuf,
    /// `json`: `[{name, status: "ok"|"warn"|"fail", summary, fix: {ubuntu, nixos} | null}]`.
    #[arg(long, value_enum, default_value_t = crate::fleet_run::Format::Human)]
    format: crate::fleet_run::Format,
}

pub(crate) fn run(args: Args) -> anyhow::Result<Outcome> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let inputs = Inputs {
        root: args.root.clone(),
        user_conf: crate::ui::user_nix_conf(),
        env_conf: std::env::var("NIX_CONFIG").ok(),
        arch: std::env::consts::ARCH.to_owned(),
        nix_version: nix_version(),
        path_var: std::env::var_os("PATH").unwrap_or_default(),
        ssh_dir: home.unwrap_or_default().join(".ssh"),
        inventory_keys: inventory_keys(&args.inventory.file),
        store: store_space(&args.root),
    };
    let checks = doctor::run_all(&inputs);
    if args.format == crate::fleet_run::Format::Json {
        let list: Vec<serde_json::Value> = checks
            .iter()
            .map(|c| {
                serde_json::json!({
                    "name": c.name,
                    "status": match c.status {
                        Status::Ok => "ok",
                        Status::Warn => "warn",
                        Status::Fail => "fail",
                    },
                    "summary": c.summary,
                    "fix": c.fix.as_ref().map(|f| serde_json::json!({ "ubuntu": f.ubuntu, "nixos": f.nixos })),
                })
            })
            .collect();
        println!("{:#}", serde_json::Value::from(list));
    }
    for check in checks
        .iter()
        .filter(|_| args.format == crate::fleet_run::Format::Human)
    {
        println!("{:<5} {:<14} {}", check.status, check.name, check.summary);
        if let Some(fix) = &check.fix {
            println!("      fix on Ubuntu: {}", fix.ubuntu);
            println!("      fix on NixOS:  {}", fix.nixos);
        }
    }
    Ok(if checks.iter().any(|c| c.status == Status::Fail) {
        Outcome::Problems
    } else {
        Outcome::Clean
    })
}

fn nix_version() -> Option<String> {
    let out = Command::new("nix")
        .arg("--version")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Every key the inventory grants: each host's root keys (when root may log in) and its users' keys.
fn inventory_keys(path: &Path) -> Option<Vec<String>> {
    if !path.exists() {
        return None;
    }
    match model::load(path) {
        Ok(loaded) => {
            let mut keys: Vec<String> = Vec::new();
            for view in loaded.fleet.views() {
                let root = view.ssh.root_keys_installed().then_some(view.ssh.root_keys);
                let users = view.accounts.iter().map(|a| a.keys());
                for key in root.into_iter().chain(users).flatten() {
                    if !keys.iter().any(|k| k == key.as_str()) {
                        keys.push(key.as_str().to_owned());
                    }
                }
            }
            Some(keys)
        }
        Err(err) => {
            tracing::warn!(
                "cannot read {} ({err}); run `pifleet check` for details",
                path.display()
            );
            None
        }
    }
}

/// Free space where image builds land: the Nix store, or the nearest existing parent.
fn store_space(root: &Path) -> Option<(PathBuf, u64)> {
    [root.join("nix/store"), root.join("nix"), root.to_path_buf()]
        .into_iter()
        .find(|p| p.exists())
        .and_then(|p| doctor::available_space(&p).ok().map(|free| (p, free)))
}
