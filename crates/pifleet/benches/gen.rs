//! Speed of `gen`: synthetic fleets of 10 to 10,000 hosts, each with 2 users and 3 containers.
//!
//! Measures each stage separately (load = TOML parse + schema validation + deserialise, check,
//! render, plan against the tree on disk) and the whole no-op `gen` over an unchanged tree. A
//! second table times writing the tree (`Plan::apply`) against plain `std::fs::write` of the same
//! bytes in the same run: the baseline absorbs the machine's speed, so the ratio is the figure to
//! compare between runs.
//! Run with `cargo bench -p pifleet --bench gen`; numbers are recorded in docs/benchmarks.md.
//! `PIFLEET_BENCH_SIZES` and `PIFLEET_BENCH_APPLY_SIZES` choose the fleet sizes (an empty value
//! skips that table), `PIFLEET_BENCH_REPS` the repetitions of each write measurement (median).

/// The binary's allocator (src/main.rs), so the stages cost here what they cost in `pifleet gen`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Two real ed25519 keys, reused: parsing cost is what matters, not variety.
const KEYS: [&str; 2] = [
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBqeFyT5oHWhCY/SKllnU80NkJK46f+SBkowTwVuJjhq eduardo@hhlab",
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIN/AROyqCRnG7LR8F2+d+V4hkfckmsMtRuC0uRqBKwjf admin@workstation",
];

fn fleet_toml(hosts: usize) -> String {
    fleet_toml_in(hosts, "UTC", false)
}

/// The fleet with the fleet-wide warnings real fleets inherit: root may log in with a key and
/// passwords are accepted, fleet-wide, so every host gets both warnings (2 per host), all pointing
/// at the same two lines of `[ssh]`.
fn fleet_toml_warned(hosts: usize) -> String {
    fleet_toml_in(hosts, "UTC", true)
}

/// The fleet in `time_zone` (another one changes every host module, not the index), with or
/// without the fleet-wide warnings.
fn fleet_toml_in(hosts: usize, time_zone: &str, warned: bool) -> String {
    let mut s = format!("[fleet]\nstate_version = \"26.05\"\ntime_zone = \"{time_zone}\"\n\n");
    if warned {
        let _ = writeln!(
            s,
            "[ssh]\npermit_root_login = \"prohibit-password\"\npassword_authentication = true\nroot_keys = [\"{}\"]\n",
            KEYS[1]
        );
    }
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

fn sizes(var: &str, default: &[usize]) -> Vec<usize> {
    match std::env::var(var) {
        Ok(v) => v.split(',').filter_map(|s| s.trim().parse().ok()).collect(),
        Err(_) => default.to_vec(),
    }
}

fn main() {
    // `fleet N [warned]` prints the synthetic fleet instead (scripts/bench-gen): one generator
    // for the bench and the end-to-end runs. (`cargo bench` adds `--bench`.)
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if let [command, hosts, rest @ ..] = args.as_slice()
        && command == "fleet"
    {
        let hosts = hosts.parse().expect("fleet N: a number of hosts");
        let text = match rest {
            [] => fleet_toml(hosts),
            [w] if w == "warned" => fleet_toml_warned(hosts),
            _ => panic!("usage: gen fleet N [warned]"),
        };
        print!("{text}");
        return;
    }
    no_op(&sizes("PIFLEET_BENCH_SIZES", &[10, 100, 1_000, 10_000]));
    apply(&sizes("PIFLEET_BENCH_APPLY_SIZES", &[100, 1_000]));
}

fn no_op(sizes: &[usize]) {
    if sizes.is_empty() {
        return;
    }
    println!(
        "{:>7} {:>12} {:>12} {:>12} {:>12} {:>12} {:>14} {:>14}",
        "hosts", "load", "check", "render", "plan", "full no-op", "render/host", "cached no-op"
    );
    for &hosts in sizes {
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

fn rendered(text: &str) -> render::Output {
    let loaded = model::load_str(text, "fleet.toml").expect("synthetic fleet loads");
    render::render(&loaded.fleet, "fleet.toml").expect("renders")
}

/// The baseline: every file written with `std::fs::write` (no temporary file, no sync, no rename),
/// its directory made with `create_dir_all` first.
fn plain_write(root: &std::path::Path, output: &render::Output) {
    for (path, text) in &output.files {
        let target = root.join(path);
        std::fs::create_dir_all(target.parent().expect("parent")).expect("mkdir");
        std::fs::write(&target, text).expect("write");
    }
}

/// Flushes what earlier runs left dirty, so one measurement does not pay for the last one's
/// writeback.
fn settle(dir: &std::path::Path) {
    #[cfg(target_os = "linux")]
    rustix::fs::syncfs(std::fs::File::open(dir).expect("open dir")).expect("syncfs");
    #[cfg(not(target_os = "linux"))]
    let _ = dir;
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// `Plan::apply` into a fresh directory, over a tree where every host module changes, and over an
/// identical tree, each against plain writes of the same bytes.
fn apply(sizes: &[usize]) {
    if sizes.is_empty() {
        return;
    }
    let reps: usize = std::env::var("PIFLEET_BENCH_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
        .max(1);
    println!(
        "\nwriting the tree, median of {reps}: plain = std::fs::write per file; apply = render::tree::Plan::apply"
    );
    println!(
        "{:>7} {:>12} {:>12} {:>7} {:>12} {:>12} {:>7} {:>14}",
        "hosts",
        "plain new",
        "apply new",
        "ratio",
        "plain over",
        "apply update",
        "ratio",
        "apply same"
    );
    for &hosts in sizes {
        let before = rendered(&fleet_toml(hosts));
        let after = rendered(&fleet_toml_in(hosts, "Europe/Lisbon", false));
        let changed = before
            .files
            .iter()
            .filter(|(path, text)| after.files.get(*path) != Some(*text))
            .count();
        assert_eq!(changed, hosts, "every host module, and only those, changes");
        let (mut plain_new, mut apply_new) = (Vec::new(), Vec::new());
        let (mut plain_over, mut apply_update, mut apply_same) =
            (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..reps {
            let scratch = tempfile::tempdir().expect("tempdir");
            let dir = scratch.path();

            settle(dir);
            let ((), t) = time(|| plain_write(&dir.join("plain"), &after));
            plain_new.push(t);

            let root = dir.join("hosts");
            let plan = render::tree::plan(&root, &after, false).expect("plan");
            settle(dir);
            let (summary, t) = time(|| plan.apply().expect("apply"));
            assert_eq!(summary.written, hosts + 1);
            apply_new.push(t);

            // `before` on disk, then `after` over it.
            plain_write(&dir.join("over"), &before);
            settle(dir);
            let ((), t) = time(|| plain_write(&dir.join("over"), &after));
            plain_over.push(t);

            let root = dir.join("update");
            render::tree::plan(&root, &before, false)
                .expect("plan")
                .apply()
                .expect("apply");
            let plan = render::tree::plan(&root, &after, false).expect("plan");
            settle(dir);
            let (summary, t) = time(|| plan.apply().expect("apply"));
            assert_eq!((summary.written, summary.unchanged), (hosts, 1));
            apply_update.push(t);

            let plan = render::tree::plan(&root, &after, false).expect("plan");
            assert!(plan.is_clean());
            settle(dir);
            let (summary, t) = time(|| plan.apply().expect("apply"));
            assert_eq!(summary.unchanged, hosts + 1);
            apply_same.push(t);
        }
        let (plain_new, apply_new) = (median(plain_new), median(apply_new));
        let (plain_over, apply_update) = (median(plain_over), median(apply_update));
        println!(
            "{hosts:>7} {} {} {:6.2}x {} {} {:6.2}x {}",
            ms(plain_new),
            ms(apply_new),
            apply_new.as_secs_f64() / plain_new.as_secs_f64(),
            ms(plain_over),
            ms(apply_update),
            apply_update.as_secs_f64() / plain_over.as_secs_f64(),
            ms(median(apply_same)),
        );
    }
}
