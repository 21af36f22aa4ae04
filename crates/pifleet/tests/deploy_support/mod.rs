//! Shared by the deploy tests: a scratch fleet repo, and fake NixOS targets served by real `sshd`
//! on loopback addresses.
//!
//! Real Nix and NixOS cannot run here, so:
//!
//! - `nix` on the workstation is a recording stand-in (first on PATH): `nix build` prints the store
//!   path of the generation a test chose for the host (`PIFLEET_TEST_BUILD="alpha=bad"`, default
//!   `good`; `fail` fails the build), records its argv and start/end times (to measure
//!   concurrency); `nix copy` records its argv. The generations already sit in each fake store.
//! - Each address in [`Lab::start_sshd`] is one fake target: a root directory (`targets/<address>/`)
//!   with `nix/` (a store holding generations, the system profile, a test record), `run/` (with
//!   `current-system`) and `boot/`, bind-mounted over `/nix`, `/run` and `/boot` in a private mount
//!   and pid namespace (`unshare`). Its pid 1 is a supervisor that runs a real `/usr/sbin/sshd` while
//!   the running system enables it, as systemd would. Ending the namespace's init ends everything in
//!   it, so nothing a test starts outlives it.
//! - On the target, the scripts pifleet sends run unchanged through real shells and real coreutils,
//!   `flock`, `ps`, `df`, `du`. Stand-ins (`deploy_support/target/`, in every generation's
//!   `sw/bin`) replace what needs a booted NixOS: `systemd-run` ACTUALLY RUNS the transient service
//!   as real processes, in a session of its own so that an SSH disconnect cannot kill it, and
//!   `--on-active` is a real timer (a real `sleep`, real time); `systemctl` answers for those units
//!   and for the running generation, and `reboot` is a fake reboot (units killed, `/run` forgotten,
//!   the boot loader's choice becomes the running system); `nix-env` moves the profile; `bootctl`
//!   sets a one-shot entry; each generation's `switch-to-configuration` records what it did in
//!   `/nix/var/test/activations` and, for the "bad" generations, breaks the host (see
//!   [`GENERATIONS`]).
//! - Each address reads its own authorized keys file, so a test can lock the deploy user out of
//!   one "host"; addresses in `reject` answer with no key of ours authorized.
//!
//! ssh connects to those sshd instances with generated host and client keys. Only loopback is ever
//! contacted. Without root, sshd/ssh or unshare the tests skip, unless `PIFLEET_REQUIRE_SSH=1` (set
//! by scripts/test), when they fail. Timeouts are short parameters (`--confirm-timeout`); no test
//! asserts how long anything took.

#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    reason = "test helpers shared by several test binaries: a failure is the test failing"
)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The example key used in fleets whose keys never log in anywhere (the dry-run snapshot).
pub const EXAMPLE_KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIN/AROyqCRnG7LR8F2+d+V4hkfckmsMtRuC0uRqBKwjf admin@workstation";

/// Whether sshd, ssh and ssh-keygen are here. Without them the test should return early; with
/// `PIFLEET_REQUIRE_SSH=1` their absence fails the test instead.
pub fn ssh_available() -> bool {
    // The test fleets deploy as root (sshd can only log in the user it runs as otherwise).
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    let ok = root
        && Path::new(SSHD).exists()
        && on_path("ssh")
        && on_path("ssh-keygen")
        && on_path("unshare")
        && on_path("setsid")
        && on_path("flock")
        && on_path("ps");
    if !ok {
        if std::env::var_os("PIFLEET_REQUIRE_SSH").is_some_and(|v| v == "1") {
            panic!(
                "root, sshd, ssh, ssh-keygen, unshare, setsid, flock and ps are required (PIFLEET_REQUIRE_SSH=1): run as root; apt-get install openssh-server openssh-client util-linux procps"
            );
        }
        eprintln!(
            "skipped: needs root, {SSHD}, ssh, ssh-keygen, unshare, setsid, flock and ps (apt-get install openssh-server util-linux procps)"
        );
    }
    ok
}

const SSHD: &str = "/usr/sbin/sshd";

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// A scratch fleet repository with stand-ins and, optionally, an sshd serving its hosts.
pub struct Lab {
    pub dir: tempfile::TempDir,
    /// Each target's namespace (its init); killing it ends everything in the namespace.
    targets: Vec<Child>,
    pub port: u16,
}

/// The generations every fake target holds, by label, and what their `etc/` says:
/// `old` is generation 1, running and the boot default when the lab starts; `good` and `newer` are
/// healthy; `bad` stops sshd when activated (nothing can log in until something goes back);
/// `unhealthy` runs without `nginx.service`; `degraded` lists a failed unit; `dropping` cuts every
/// SSH connection and session when activated and then takes 2 s more; `failing` exits 1.
pub const GENERATIONS: &[(&str, &[(&str, &str)])] = &[
    ("old", HEALTHY),
    ("good", HEALTHY),
    ("newer", HEALTHY),
    ("bad", &[("active-units", "nginx.service\n")]),
    (
        "unhealthy",
        &[("ssh-enabled", ""), ("active-units", "sshd.service\n")],
    ),
    (
        "degraded",
        &[
            ("ssh-enabled", ""),
            ("active-units", "sshd.service\nnginx.service\n"),
            ("system-state", "degraded\n"),
            ("failed-units", "broken.service\n"),
        ],
    ),
    (
        "dropping",
        &[
            ("ssh-enabled", ""),
            ("active-units", "sshd.service\nnginx.service\n"),
            ("drop-ssh", ""),
            ("activate-seconds", "2\n"),
        ],
    ),
    (
        "failing",
        &[
            ("ssh-enabled", ""),
            ("active-units", "sshd.service\nnginx.service\n"),
            ("activate-exit", "1\n"),
        ],
    ),
];

const HEALTHY: &[(&str, &str)] = &[
    ("ssh-enabled", ""),
    ("active-units", "sshd.service\nnginx.service\n"),
];

/// The store path of the generation `label` (the same in every fake store).
pub fn store_path(label: &str) -> String {
    format!("/nix/store/0pifleettest0000000000000000000000-nixos-system-{label}")
}

const TOOLS: &str = "/nix/store/0pifleettest0000000000000000000000-tools";

impl Lab {
    /// An empty lab: a temp dir with `bin/` (workstation stand-ins), `remote-bin/` (target
    /// stand-ins), `state/`, `logs/` and the record file.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["bin", "remote-bin", "state", "logs", "ssh"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        let lab = Self {
            dir,
            targets: Vec::new(),
            port: 0,
        };
        lab.script("bin/nix", &NIX.replace("@BUILT@", &store_path("$label")));
        lab
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn script(&self, rel: &str, body: &str) {
        use std::os::unix::fs::PermissionsExt as _;
        let path = self.path(rel);
        std::fs::write(&path, body).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// The client's public key (after [`Lab::start_sshd`]).
    pub fn client_key(&self) -> String {
        std::fs::read_to_string(self.path("ssh/id_ed25519.pub"))
            .unwrap()
            .trim()
            .to_owned()
    }

    /// Generates keys and starts one fake target per address in `addresses` (all on one free
    /// port), each with generation `old` running. Addresses in `reject` answer too, but with no
    /// key of ours authorized.
    pub fn start_sshd(&mut self, addresses: &[&str], reject: &[&str]) {
        self.start(addresses, reject, false);
    }

    /// Like [`Lab::start_sshd`], but ONE fake target answers on every address (`reject` ones with
    /// no key of ours authorized): a machine reached on two addresses.
    pub fn start_machine(&mut self, addresses: &[&str], reject: &[&str]) {
        self.start(addresses, reject, true);
    }

    fn start(&mut self, addresses: &[&str], reject: &[&str], one: bool) {
        let ssh = self.path("ssh");
        keygen(&ssh.join("host_ed25519"));
        keygen(&ssh.join("id_ed25519"));
        keygen(&ssh.join("other_ed25519"));
        std::fs::copy(
            ssh.join("id_ed25519.pub"),
            self.path("state/authorized_keys"),
        )
        .unwrap();
        let host_pub = std::fs::read_to_string(ssh.join("host_ed25519.pub")).unwrap();
        let host_pub: Vec<&str> = host_pub.split_whitespace().take(2).collect();
        for attempt in 0..5 {
            let port = free_port();
            let known: String = addresses
                .iter()
                .chain(reject)
                .map(|a| format!("[{a}]:{port} {} {}\n", host_pub[0], host_pub[1]))
                .collect();
            std::fs::write(ssh.join("known_hosts"), known).unwrap();
            std::fs::write(
                ssh.join("ssh_config"),
                format!(
                    "Host *\n  IdentityFile {ssh}/id_ed25519\n  IdentitiesOnly yes\n  UserKnownHostsFile {ssh}/known_hosts\n  GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n  LogLevel ERROR\n",
                    ssh = ssh.display()
                ),
            )
            .unwrap();
            let mut ok = true;
            if one {
                ok = self.start_target(addresses, reject, port);
            }
            for a in addresses.iter().filter(|_| !one) {
                ok = ok && self.start_target(&[a], &[], port);
            }
            for a in reject.iter().filter(|_| !one) {
                ok = ok && self.start_target(&[], &[a], port);
            }
            if ok {
                self.port = port;
                return;
            }
            eprintln!("targets on port {port} failed to start (attempt {attempt})");
            self.stop_targets();
        }
        panic!("could not start the fake targets");
    }

    /// The fake target's root directory at `address` (its `/nix`, `/run` and `/boot` live here).
    pub fn root(&self, address: &str) -> PathBuf {
        self.path(&format!("targets/{address}"))
    }

    /// Builds one fake root and starts its namespace with sshd on `port` of every address; the
    /// root is named by the first address.
    fn start_target(&mut self, addresses: &[&str], reject: &[&str], port: u16) -> bool {
        use std::os::unix::fs::symlink;
        let address = addresses.first().or(reject.first()).copied().unwrap();
        let root = self.root(address);
        let _ = std::fs::remove_dir_all(&root);
        let tools = root.join(TOOLS.trim_start_matches('/')).join("bin");
        std::fs::create_dir_all(&tools).unwrap();
        for (name, body) in [
            ("systemd-run", include_str!("target/systemd-run")),
            ("systemctl", include_str!("target/systemctl")),
            ("nix-env", include_str!("target/nix-env")),
            ("bootctl", include_str!("target/bootctl")),
        ] {
            write_exe(&tools.join(name), body);
        }
        // Everything else a NixOS system's sw/bin has: the machine's own tools.
        for entry in std::fs::read_dir("/usr/bin").unwrap().flatten() {
            let link = tools.join(entry.file_name());
            if !link.exists() {
                let _ = symlink(entry.path(), link);
            }
        }
        for (label, etc) in GENERATIONS {
            let top = root.join(store_path(label).trim_start_matches('/'));
            std::fs::create_dir_all(top.join("bin")).unwrap();
            std::fs::create_dir_all(top.join("etc")).unwrap();
            write_exe(
                &top.join("bin/switch-to-configuration"),
                include_str!("target/switch-to-configuration"),
            );
            symlink(TOOLS, top.join("sw")).unwrap();
            std::fs::write(top.join("kernel"), vec![0u8; 8192]).unwrap();
            std::fs::write(top.join("initrd"), vec![0u8; 8192]).unwrap();
            for (file, text) in *etc {
                std::fs::write(top.join("etc").join(file), text).unwrap();
            }
        }
        let profiles = root.join("nix/var/nix/profiles");
        std::fs::create_dir_all(&profiles).unwrap();
        symlink(store_path("old"), profiles.join("system-1-link")).unwrap();
        symlink("system-1-link", profiles.join("system")).unwrap();
        std::fs::create_dir_all(root.join("nix/var/test")).unwrap();
        std::fs::create_dir_all(root.join("run/sshd")).unwrap();
        symlink(store_path("old"), root.join("run/current-system")).unwrap();
        std::fs::create_dir_all(root.join("boot/entries")).unwrap();
        std::fs::write(
            root.join("boot/entries/nixos-generation-1.conf"),
            format!("{}\n", store_path("old")),
        )
        .unwrap();
        std::fs::write(
            root.join("boot/default"),
            format!("{}\n", store_path("old")),
        )
        .unwrap();

        let ssh = self.path("ssh");
        let config = self.path(&format!("targets/{address}.sshd_config"));
        let mut listen = String::new();
        let mut matches = String::new();
        for a in addresses {
            let keys = self.path(&format!("state/authorized_keys-{a}"));
            std::fs::copy(ssh.join("id_ed25519.pub"), &keys).unwrap();
            listen.push_str(&format!("ListenAddress {a}:{port}\n"));
            matches.push_str(&format!(
                "Match LocalAddress {a}\n  AuthorizedKeysFile {}\n",
                keys.display()
            ));
        }
        for a in reject {
            listen.push_str(&format!("ListenAddress {a}:{port}\n"));
            matches.push_str(&format!(
                "Match LocalAddress {a}\n  AuthorizedKeysFile {}\n",
                ssh.join("other_ed25519.pub").display()
            ));
        }
        std::fs::write(
            &config,
            format!(
                "{listen}\
                 HostKey {ssh}/host_ed25519\n\
                 PidFile /run/sshd.pid\n\
                 AuthorizedKeysFile /dev/null\n\
                 PermitRootLogin prohibit-password\n\
                 PasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\n\
                 UsePAM no\n\
                 StrictModes no\n\
                 LogLevel VERBOSE\n\
                 SetEnv PATH={remote}:/run/current-system/sw/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin PIFLEET_TEST_STATE={state}\n{matches}",
                ssh = ssh.display(),
                remote = self.path("remote-bin").display(),
                state = self.path("state").display(),
            ),
        )
        .unwrap();
        let supervisor = self.path("targets/supervisor");
        write_exe(&supervisor, include_str!("target/supervisor"));
        let log = self.path(&format!("targets/{address}.sshd.log"));
        let init = format!(
            "mount --bind {root}/nix /nix && mount --bind {root}/run /run && mount --bind {root}/boot /boot || exit 1; exec {supervisor} {config} {log}",
            root = root.display(),
            supervisor = supervisor.display(),
            config = config.display(),
            log = log.display(),
        );
        let child = Command::new("unshare")
            .args([
                "--mount",
                "--propagation",
                "private",
                "--pid",
                "--fork",
                "--mount-proc",
                "--kill-child=SIGKILL",
                "sh",
                "-c",
                &init,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.targets.push(child);
        let ok = wait_listening(address, port, self.targets.last_mut().unwrap());
        if !ok {
            eprintln!(
                "target {address}: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        ok
    }

    fn stop_targets(&mut self) {
        for mut child in self.targets.drain(..) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Lines of the target's record of activations (`begin|end ACTION PATH`, `profile N PATH`,
    /// `boot PATH`, `dropped ssh`), without their timestamps.
    pub fn activations(&self, address: &str) -> Vec<String> {
        record_lines(&self.root(address).join("nix/var/test/activations"))
    }

    /// The target's journal of transient units (`create`, `fired`, `start`, `exit`, `stop`).
    pub fn journal(&self, address: &str) -> Vec<String> {
        record_lines(&self.root(address).join("nix/var/test/journal"))
    }

    /// What the target runs now.
    pub fn current(&self, address: &str) -> String {
        std::fs::read_link(self.root(address).join("run/current-system"))
            .unwrap()
            .display()
            .to_string()
    }

    /// The system profile's link (`system-N-link`) and what it points to.
    pub fn profile(&self, address: &str) -> (String, String) {
        let profiles = self.root(address).join("nix/var/nix/profiles");
        let link = std::fs::read_link(profiles.join("system"))
            .unwrap()
            .display()
            .to_string();
        let target = std::fs::read_link(profiles.join(&link))
            .unwrap()
            .display()
            .to_string();
        (link, target)
    }

    /// The fake boot loader's default entry.
    pub fn boot_default(&self, address: &str) -> String {
        std::fs::read_to_string(self.root(address).join("boot/default"))
            .unwrap()
            .trim()
            .to_owned()
    }

    /// Writes `fleet.toml` (and an empty module for every `modules = [...]` entry it lists, which
    /// `check` requires to exist) and renders `hosts/` from it with `pifleet gen`.
    pub fn fleet(&self, toml: &str) {
        std::fs::write(self.path("fleet.toml"), toml).unwrap();
        for line in toml
            .lines()
            .filter(|l| l.trim_start().starts_with("modules = ["))
        {
            for module in line.split('"').skip(1).step_by(2) {
                let path = self.path(module);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, "{ ... }: { }\n").unwrap();
            }
        }
        let out = Command::new(env!("CARGO_BIN_EXE_pifleet"))
            .args(["gen", "-f", "fleet.toml"])
            .current_dir(self.dir.path())
            .env("PIFLEET_CACHE_DIR", "")
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "gen failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs pifleet in the lab with the stand-ins first on PATH and the lab's SSH client config.
    pub fn pifleet(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let path = format!(
            "{}:{}",
            self.path("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pifleet"));
        cmd.args(args)
            .current_dir(self.dir.path())
            .env("PATH", path)
            .env(
                "NIX_SSHOPTS",
                format!("-F {}", self.path("ssh/ssh_config").display()),
            )
            .env("PIFLEET_TEST_STATE", self.path("state"))
            .env("PIFLEET_TEST_RECORD", self.path("record"))
            .env("PIFLEET_WORKSTATION_SYSTEM", "x86_64-linux")
            .env("PIFLEET_CACHE_DIR", "")
            .env("XDG_STATE_HOME", self.path("xdg-state"))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }

    /// The recorded nixos-rebuild invocations: (host, argv without the program), in call order.
    pub fn calls(&self) -> Vec<(String, Vec<String>)> {
        std::fs::read_to_string(self.path("record"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.strip_prefix("argv "))
            .map(|l| {
                let mut words = l.split(' ').map(str::to_owned);
                let host = words.next().unwrap();
                (host, words.collect())
            })
            .collect()
    }

    /// The NIX_SSHOPTS each call saw, by host.
    pub fn sshopts(&self, host: &str) -> Vec<String> {
        std::fs::read_to_string(self.path("record"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.strip_prefix(&format!("env {host} ")))
            .map(str::to_owned)
            .collect()
    }

    /// The largest number of nixos-rebuild runs that overlapped, from the start/end markers.
    pub fn max_concurrency(&self) -> usize {
        let text = std::fs::read_to_string(self.path("record")).unwrap_or_default();
        let mut events: Vec<(u128, i32)> = text
            .lines()
            .filter_map(|l| {
                let mut w = l.split(' ');
                let kind = match w.next()? {
                    "start" => 1,
                    "end" => -1,
                    _ => return None,
                };
                let _host = w.next()?;
                Some((w.next()?.parse().ok()?, kind))
            })
            .collect();
        // An end and a start at the same instant do not overlap.
        events.sort();
        let (mut now, mut max) = (0i32, 0i32);
        for (_, delta) in events {
            now += delta;
            max = max.max(now);
        }
        usize::try_from(max).unwrap()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.stop_targets();
    }
}

fn write_exe(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::write(path, body).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A record's lines without their leading timestamp.
fn record_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| l.split_once(' ').map_or(l, |(_, rest)| rest).to_owned())
        .collect()
}

pub fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn keygen(path: &Path) {
    // A key the test put there first (e.g. a host key pifleet generated) is kept.
    if path.exists() {
        return;
    }
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "pifleet-test", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "ssh-keygen failed");
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_listening(address: &str, port: u16, child: &mut Child) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            return false;
        }
        if std::net::TcpStream::connect((address, port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// The recording stand-in for `nix` on the workstation (the real one cannot build NixOS here).
const NIX: &str = include_str!("workstation-nix");
