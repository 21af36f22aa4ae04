//! Shared by the deploy tests: a scratch fleet repo, real `sshd` targets on loopback addresses, and
//! stand-ins for the two programs that cannot run on a test machine.
//!
//! - `nixos-rebuild` is a recording stand-in (a shell script written into a temp dir and put first
//!   on PATH): the real one needs a NixOS target and a modern Nix. It appends its argv to a record
//!   file, writes start/end markers with nanosecond timestamps (to measure concurrency), sleeps a
//!   little so parallelism is observable, and fails or "breaks" hosts named in environment
//!   variables.
//! - `systemctl` on the *target* side is a stand-in too, because the test machine's own systemd
//!   (if any) is not a deployed NixOS system. sshd puts it first on the PATH of every session with
//!   `SetEnv PATH=…` in its config (no ForceCommand: the remote command runs as sent). It answers
//!   `is-system-running` from marker files keyed by the address the session came in on.
//! - Each address reads its own authorized keys file (`Match LocalAddress`), so the stand-in can
//!   lock the deploy user out of one "host" the way a bad switch would, and its `--rollback` lets
//!   it back in.
//!
//! Everything else is real: `ssh` connects to a real `/usr/sbin/sshd -D -e -f <config>` listening
//! on 127.0.0.x with generated host and client keys. Only loopback is ever contacted. Without
//! sshd/ssh the tests skip, unless `PIFLEET_REQUIRE_SSH=1` (set by scripts/test), when they fail.

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
    let ok = root && Path::new(SSHD).exists() && on_path("ssh") && on_path("ssh-keygen");
    if !ok {
        if std::env::var_os("PIFLEET_REQUIRE_SSH").is_some_and(|v| v == "1") {
            panic!(
                "root, sshd, ssh and ssh-keygen are required (PIFLEET_REQUIRE_SSH=1): run as root; apt-get install openssh-server openssh-client"
            );
        }
        eprintln!(
            "skipped: needs root, {SSHD}, ssh and ssh-keygen (apt-get install openssh-server)"
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
    sshd: Option<Child>,
    pub port: u16,
}

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
            sshd: None,
            port: 0,
        };
        lab.script("bin/nixos-rebuild", NIXOS_REBUILD);
        lab.script("remote-bin/systemctl", SYSTEMCTL);
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

    /// Generates keys and starts one sshd listening on every address in `addresses` (all on one
    /// free port). Connections arriving on an address in `reject` find no authorized key.
    pub fn start_sshd(&mut self, addresses: &[&str], reject: &[&str]) {
        let ssh = self.path("ssh");
        keygen(&ssh.join("host_ed25519"));
        keygen(&ssh.join("id_ed25519"));
        std::fs::copy(ssh.join("id_ed25519.pub"), ssh.join("authorized_keys")).unwrap();
        keygen(&ssh.join("other_ed25519"));
        // sshd wants its privilege separation directory.
        let _ = std::fs::create_dir_all("/run/sshd");

        let host_pub = std::fs::read_to_string(ssh.join("host_ed25519.pub")).unwrap();
        let host_pub: Vec<&str> = host_pub.split_whitespace().take(2).collect();
        for attempt in 0..5 {
            let port = free_port();
            let mut config = String::new();
            for a in addresses.iter().chain(reject) {
                config.push_str(&format!("ListenAddress {a}:{port}\n"));
            }
            config.push_str(&format!(
                "HostKey {ssh}/host_ed25519\n\
                 PidFile {ssh}/sshd.pid\n\
                 AuthorizedKeysFile {ssh}/authorized_keys\n\
                 PermitRootLogin prohibit-password\n\
                 PasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\n\
                 UsePAM no\n\
                 StrictModes no\n\
                 LogLevel VERBOSE\n\
                 SetEnv PATH={remote}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin PIFLEET_TEST_STATE={state}\n",
                ssh = ssh.display(),
                remote = self.path("remote-bin").display(),
                state = self.path("state").display(),
            ));
            // Each address reads its own key file, so the stand-in can lock one "host" out.
            for a in addresses {
                let keys = self.path(&format!("state/authorized_keys-{a}"));
                std::fs::copy(ssh.join("id_ed25519.pub"), &keys).unwrap();
                config.push_str(&format!(
                    "Match LocalAddress {a}\n  AuthorizedKeysFile {}\n",
                    keys.display()
                ));
            }
            std::fs::copy(
                ssh.join("id_ed25519.pub"),
                self.path("state/authorized_keys"),
            )
            .unwrap();
            for a in reject {
                config.push_str(&format!(
                    "Match LocalAddress {a}\n  AuthorizedKeysFile {}/other_ed25519.pub\n",
                    ssh.display()
                ));
            }
            std::fs::write(ssh.join("sshd_config"), config).unwrap();

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

            let log = std::fs::File::create(ssh.join("sshd.log")).unwrap();
            let mut child = Command::new(SSHD)
                .args(["-D", "-e", "-f"])
                .arg(ssh.join("sshd_config"))
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap();
            if wait_listening(
                addresses.first().copied().unwrap_or("127.0.0.1"),
                port,
                &mut child,
            ) {
                self.sshd = Some(child);
                self.port = port;
                return;
            }
            let _ = child.kill();
            let _ = child.wait();
            eprintln!(
                "sshd attempt {attempt} on port {port} failed: {}",
                std::fs::read_to_string(ssh.join("sshd.log")).unwrap_or_default()
            );
        }
        panic!("could not start sshd");
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
        if let Some(child) = &mut self.sshd {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
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

/// The recording stand-in for nixos-rebuild (the real one cannot run here).
const NIXOS_REBUILD: &str = r#"#!/bin/sh
# Recording stand-in for nixos-rebuild, written by pifleet's deploy tests: the real one needs a
# NixOS target and a modern Nix. It records its argv, marks start and end for the concurrency
# check, and fails (PIFLEET_TEST_FAIL) or breaks (PIFLEET_TEST_BREAK) the hosts listed there.
record="$PIFLEET_TEST_RECORD"
host=""; addr=""; prev=""; rollback=0
for a in "$@"; do
  case "$prev" in
    --flake) host="${a#*#}" ;;
    --target-host) addr="${a#*@}" ;;
  esac
  [ "$a" = --rollback ] && rollback=1
  prev="$a"
done
echo "start $host $(date +%s%N)" >> "$record"
echo "argv $host $*" >> "$record"
echo "env $host $NIX_SSHOPTS" >> "$record"
echo "building the system configuration..."
sleep "${PIFLEET_TEST_SLEEP:-0.2}"
status=0
if [ "$rollback" = 1 ]; then
  rm -f "$PIFLEET_TEST_STATE/broken-$addr"
  cp "$PIFLEET_TEST_STATE/authorized_keys" "$PIFLEET_TEST_STATE/authorized_keys-$addr"
  echo "rolled back"
else
  case " $PIFLEET_TEST_FAIL " in
    *" $host "*) echo "error: builder for '/nix/store/...-$host.drv' failed" >&2; status=1 ;;
  esac
  case " $PIFLEET_TEST_BREAK " in
    *" $host "*) : > "$PIFLEET_TEST_STATE/broken-$addr" ;;
  esac
  case " $PIFLEET_TEST_LOCKOUT " in
    *" $host "*) : > "$PIFLEET_TEST_STATE/authorized_keys-$addr" ;;
  esac
  case " $PIFLEET_TEST_SLOW_START " in
    *" $host "*) echo 2 > "$PIFLEET_TEST_STATE/starting-$addr" ;;
  esac
  case " $PIFLEET_TEST_DEGRADE " in
    *" $host "*) : > "$PIFLEET_TEST_STATE/degraded-$addr" ;;
  esac
  echo "activating the configuration..."
fi
echo "end $host $(date +%s%N)" >> "$record"
exit "$status"
"#;

/// The target-side stand-in for systemctl, run inside sshd sessions.
const SYSTEMCTL: &str = r#"#!/bin/sh
# Stand-in for a deployed host's systemctl, first on sshd sessions' PATH (SetEnv in sshd_config).
# The address the session came in on says which "host" this is.
addr=$(echo "$SSH_CONNECTION" | cut -d' ' -f3)
state=running
[ -e "$PIFLEET_TEST_STATE/degraded-$addr" ] && state=degraded
[ -e "$PIFLEET_TEST_STATE/broken-$addr" ] && state=maintenance
# A slow start: `starting` for as many checks as the file says.
starting="$PIFLEET_TEST_STATE/starting-$addr"
if [ "$1" = is-system-running ] && [ -s "$starting" ]; then
  n=$(cat "$starting")
  if [ "$n" -gt 0 ]; then echo $((n - 1)) > "$starting"; state=starting; fi
fi
case "$1" in
  is-system-running) echo "$state"; [ "$state" = running ] ;;
  --failed)
    [ "$state" = running ] || echo "broken.service loaded failed failed A unit the new config broke"
    exit 0 ;;
  *) echo "systemctl stand-in: unexpected $*" >&2; exit 1 ;;
esac
"#;
