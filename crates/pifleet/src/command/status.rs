//! `pifleet status` (`list`): the fleet at a glance, one line per host, from the inventory's
//! resolved host views plus the last deploy result each host has in the logs.
//!
//! Nothing is contacted: the line says what the repository says and what the last run on this
//! workstation recorded (`results.json` beside each run's logs, written by `deploy`/`rollback`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::outcome::Outcome;

const EXIT_CODES: &str = "\
Exit codes:
  0  the hosts were listed (an inventory with warnings lists too)
  2  the inventory cannot be read";

#[derive(Debug, clap::Args)]
#[command(after_help = EXIT_CODES)]
pub(crate) struct Args {
    #[command(flatten)]
    inventory: crate::workspace::InventoryArg,
    /// Where deploy logs are [default: $XDG_STATE_HOME/pifleet/logs, or ~/.local/state/pifleet/logs].
    #[arg(long, value_name = "DIR")]
    log_dir: Option<PathBuf>,
    /// `json`: a list of hosts with the same fields, for tools.
    #[arg(long, value_enum, default_value_t = crate::fleet_run::Format::Human)]
    format: crate::fleet_run::Format,
}

/// The last recorded deploy of a host: `(status, detail, finished, run directory)`.
type Last = (String, String, u64, PathBuf);

pub(crate) fn run(args: Args) -> anyhow::Result<Outcome> {
    let workspace = args.inventory.workspace();
    let (_, loaded) = workspace.load()?;
    let fleet = &loaded.fleet;
    let logs = match &args.log_dir {
        Some(dir) => Some(dir.clone()),
        None => crate::ui::log_dir().ok(),
    };
    let last = logs.as_deref().map(last_results).unwrap_or_default();
    let rows: Vec<serde_json::Value> =
        fleet
            .views()
            .map(|view| {
                let mut containers: Vec<&str> =
                    view.containers.iter().map(|c| c.name.as_str()).collect();
                containers.sort_unstable();
                let mut secrets: Vec<&str> = view.secrets.iter().map(|s| s.name.as_str()).collect();
                secrets.sort_unstable();
                secrets.dedup();
                let last = last.get(view.name.as_str()).map(|(status, detail, finished, dir)| {
                serde_json::json!({
                    "status": status, "detail": detail, "finished_unix": finished, "logs": dir,
                })
            });
                serde_json::json!({
                    "host": view.name.as_str(),
                    "board": view.host.board.as_str(),
                    "address": view.deploy.address.as_str(),
                    "tags": view.host.tags.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
                    "deploy_user": view.deploy.user.as_str(),
                    "containers": containers,
                    "secrets": secrets,
                    "last_deploy": last,
                })
            })
            .collect();
    match args.format {
        crate::fleet_run::Format::Json => println!("{:#}", serde_json::Value::from(rows)),
        crate::fleet_run::Format::Human => print_table(&rows),
    }
    Ok(Outcome::Clean)
}

fn print_table(rows: &[serde_json::Value]) {
    let list = |v: &serde_json::Value| -> String {
        let items: Vec<&str> = v
            .as_array()
            .map(|a| a.iter().filter_map(|i| i.as_str()).collect())
            .unwrap_or_default();
        if items.is_empty() {
            "-".to_owned()
        } else {
            items.join(",")
        }
    };
    let cells: Vec<[String; 8]> = rows
        .iter()
        .map(|r| {
            let text = |k: &str| r[k].as_str().unwrap_or("-").to_owned();
            let last = match &r["last_deploy"] {
                serde_json::Value::Null => "never".to_owned(),
                last => last["status"].as_str().unwrap_or("?").to_owned(),
            };
            [
                text("host"),
                text("board"),
                text("address"),
                list(&r["tags"]),
                text("deploy_user"),
                list(&r["containers"]),
                list(&r["secrets"]),
                last,
            ]
        })
        .collect();
    let header = [
        "host",
        "board",
        "address",
        "tags",
        "deploy",
        "containers",
        "secrets",
        "last deploy",
    ];
    let mut widths = header.map(str::len);
    for row in &cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[&str]| -> String {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        padded.join("  ").trim_end().to_owned()
    };
    println!("{}", line(&header));
    for row in &cells {
        let refs: Vec<&str> = row.iter().map(String::as_str).collect();
        println!("{}", line(&refs));
    }
}

/// Every host's most recent result under `logs` (run directories are named by their UTC start,
/// so the names sort in time order).
fn last_results(logs: &Path) -> BTreeMap<String, Last> {
    let mut runs: Vec<PathBuf> = std::fs::read_dir(logs)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.join(crate::fleet_run::RESULTS_FILE).is_file())
                .collect()
        })
        .unwrap_or_default();
    runs.sort();
    let mut out = BTreeMap::new();
    for run in runs {
        let Ok(text) = std::fs::read_to_string(run.join(crate::fleet_run::RESULTS_FILE)) else {
            continue;
        };
        let Ok(results) = serde_json::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        let finished = results["finished_unix"].as_u64().unwrap_or(0);
        for host in results["hosts"].as_array().into_iter().flatten() {
            if let Some(name) = host["host"].as_str() {
                out.insert(
                    name.to_owned(),
                    (
                        host["status"].as_str().unwrap_or("?").to_owned(),
                        host["detail"].as_str().unwrap_or_default().to_owned(),
                        finished,
                        run.clone(),
                    ),
                );
            }
        }
    }
    out
}
