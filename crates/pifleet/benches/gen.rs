//! Speed of `gen`: synthetic fleets of 10 to 10,000 hosts, each with 2 users and 3 containers.
//!
//! Measures each stage separately (load = TOML parse + schema validation + deserialise, check,
//! render, plan against the tree on disk) and the whole no-op `gen` over an unchanged tree.
//! Run with `cargo bench -p pifleet --bench gen`; numbers are recorded in docs/benchmarks.md.

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Two real ed25519 keys, reused: parsing cost is what matters, not variety.
const KEYS: [&str; 2] = [
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBqeFyT5oHWhCY/SKllnU80NkJK46f+SBkowTwVuJjhq eduardo@hhlab",
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIN/AROyqCRnG7LR8F2+d+V4hkfckmsMtRuC0uRqBKwjf admin@workstation",
];

fn fleet_toml(hosts: usize) -> String {
    let mut s = String::from("[fleet]\nstate_version = \"26.05\"\n\n");
    // user0 deploys (password-free sudo); user1 is an admin with a password: a clean, hardened fleet.
    for (u, key) in KEYS.iter().enumerate() {
        let sudo = if u == 0 {
            "sudo = \"no-password\""
        } else {
            "sudo = \"password\"\nhashed_password_file = \"/var/lib/secrets/user1.hash\""
        };
        let _ = writeln!(
            s,
            "[users.user{u}]\nssh_keys = [\"{key}\"]\ngroups = [\"wheel\", \"docker\"]\n{sudo}\n",
        );
    }
    for h in 0..hosts {
        let _ = writeln!(
            s,
            "[hosts.host-{h:05}]\nboard = \"rpi4\"\naddress = \"10.{}.{}.{}\"\ndeploy = {{ user = \"user0\" }}\nusers = [\"user0\", \"user1\"]\ntags = [\"edge\"]\npackages = [\"git\", \"vim\"]",
            (h >> 16) & 255,
            (h >> 8) & 255,
            h & 255
        );
        for c in 0..3 {
            let _ = writeln!(
                s,
                "[hosts.host-{h:05}.containers.app{c}]\nimage = \"ghcr.io/example/app{c}:1.2.{c}\"\nports = [\"127.0.0.1:{}:80\"]\nvolumes = [\"/var/lib/app{c}:/data\"]\nenvironment = {{ TZ = \"UTC\", MODE = \"production\" }}",
                8000 + c
            );
        }
        s.push('\n');
    }
    s
}

fn time<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let out = f();
    (out, start.elapsed())
}

fn ms(d: Duration) -> String {
    format!("{:9.1} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    let sizes: Vec<usize> = match std::env::var("PIFLEET_BENCH_SIZES") {
        Ok(v) => v.split(',').filter_map(|s| s.trim().parse().ok()).collect(),
        Err(_) => vec![10, 100, 1_000, 10_000],
    };
    println!(
        "{:>7} {:>12} {:>12} {:>12} {:>12} {:>12} {:>14} {:>14}",
        "hosts", "load", "check", "render", "plan", "full no-op", "render/host", "cached no-op"
    );
    for hosts in sizes {
        let text = fleet_toml(hosts);
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("hosts");
        // First run writes the tree; the measured run is the no-op one over it.
        let loaded = model::load_str(&text, "fleet.toml").expect("synthetic fleet loads");
        let output = render::render(&loaded.fleet, "fleet.toml").expect("renders");
        render::tree::plan(&out, &output, false)
            .expect("plan")
            .apply()
            .expect("apply");

        let (loaded, load) = time(|| model::load_str(&text, "fleet.toml").expect("loads"));
        let (diags, check) = time(|| check::check_loaded(&loaded));
        assert!(
            !diags.iter().any(|d| d.severity() == check::Severity::Error),
            "{diags:?}"
        );
        let (output, render) =
            time(|| render::render(&loaded.fleet, "fleet.toml").expect("renders"));
        let (plan, plan_time) = time(|| render::tree::plan(&out, &output, false).expect("plan"));
        assert!(plan.is_clean(), "no-op run must write nothing");
        black_box(plan);
        let total = load + check + render + plan_time;

        // What `pifleet gen` does on a no-op run after a successful one: hash the inventory and
        // confirm the stamped tree (render::cache), without loading or rendering.
        let cache = dir.path().join("cache");
        let stamp = render::cache::Stamp::new(&cache, &out);
        stamp
            .record(&render::cache::key("fleet.toml", text.as_bytes()), &output)
            .expect("stamp");
        let (fresh, cached) = time(|| {
            let key = render::cache::key("fleet.toml", text.as_bytes());
            stamp.fresh(&out, &key)
        });
        assert_eq!(fresh, Some(hosts + 1), "the stamp must confirm every file");
        println!(
            "{hosts:>7} {} {} {} {} {} {:11.1} µs {}",
            ms(load),
            ms(check),
            ms(render),
            ms(plan_time),
            ms(total),
            render.as_secs_f64() * 1e6 / hosts as f64,
            ms(cached)
        );
    }
}
