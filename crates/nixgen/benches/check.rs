//! How much each safety pass costs: building + re-parse check (`Check::Parse`) against the same
//! plus nixpkgs-fmt (`Check::Format`), on a host-sized module and a large one.
//!
//! Run with `cargo bench -p nixgen`. A plain bench binary (no criterion) keeps the workspace's
//! build small; it reports the median of repeated runs.

use std::hint::black_box;
use std::time::{Duration, Instant};

use nixgen::{AttrPath, AttrSet, Check, Expr, File, make};

/// A module shaped like a generated host: users with keys, ssh settings, containers.
fn host(users: usize, containers: usize) -> File {
    let mut body = AttrSet::new();
    body.set("networking.hostName", "rpi-box-01");
    for u in 0..users {
        body.set(
            AttrPath::dotted("users.users").then(format!("user{u}")),
            AttrSet::new()
                .with("isNormalUser", true)
                .with(
                    "extraGroups",
                    Expr::list(["wheel", "docker"].map(Expr::from)),
                )
                .with(
                    "openssh.authorizedKeys.keys",
                    Expr::list((0..2).map(|k| {
                        Expr::string(format!(
                            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{u:08}{k:032} user{u}@host"
                        ))
                    })),
                ),
        );
    }
    for c in 0..containers {
        body.set(
            AttrPath::dotted("virtualisation.oci-containers.containers").then(format!("app{c}")),
            AttrSet::new()
                .with("image", format!("ghcr.io/example/app{c}:1.2.3"))
                .with(
                    "ports",
                    Expr::list([Expr::string(format!("{}:80", 8000 + c))]),
                )
                .with(
                    "environment",
                    AttrSet::new().with("TZ", "UTC").with("MODE", "production"),
                ),
        );
    }
    body.set(
        "environment.systemPackages",
        make::packages(["git", "vim", "htop"]),
    );
    File::new(make::module(Expr::attrs(body))).header(["bench"])
}

fn median(mut f: impl FnMut(), runs: usize) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2]
}

fn main() {
    println!(
        "{:<28} {:>14} {:>14} {:>8}",
        "module", "Check::Parse", "Check::Format", "ratio"
    );
    for (name, users, containers, runs) in [
        ("host (2 users, 3 containers)", 2, 3, 400),
        ("large (50 users, 200 containers)", 50, 200, 30),
    ] {
        let file = host(users, containers);
        let parse = median(
            || {
                black_box(file.render(Check::Parse).expect("renders"));
            },
            runs,
        );
        let format = median(
            || {
                black_box(file.render(Check::Format).expect("renders"));
            },
            runs,
        );
        println!(
            "{name:<28} {:>11.1} µs {:>11.1} µs {:>7.1}x",
            parse.as_secs_f64() * 1e6,
            format.as_secs_f64() * 1e6,
            format.as_secs_f64() / parse.as_secs_f64()
        );
    }
}
