//! What runs on the target: every shell script pifleet sends over SSH, built in one place.
//!
//! The dead man's switch lives here, because it must work with nothing from the workstation. The
//! protocol, all under `/run/pifleet/deploy` (a tmpfs: a reboot forgets it, as it should):
//!
//! - `lock`: the activation holds it (`flock`) while `switch-to-configuration test` runs; the
//!   rollback takes it before doing anything, so a rollback never races a running activation.
//! - `started`, `status`, `activated`: when the activation began, its exit code and when it ended
//!   (epoch seconds). The rollback waits until `activated` + the deadline, so the deadline counts
//!   from the end of activation however slow the SD card.
//! - `decided/`: created with `mkdir`, which is atomic: whoever creates it (the rollback, or the
//!   workstation's disarm after a confirmation) decides, and `decided/by` says who. The loser backs off,
//!   so a confirmed system is never rolled back and a system already going back is never committed.
//! - `rollback`, `rollback-by`, `rollback-status`: when the host started going back, whether its
//!   timer fired (`timer`) or the workstation asked (`request`), and how that ended.
//!
//! Values that reach these scripts are either validated store paths (substituted for
//! [`TOPLEVEL`]/[`PREVIOUS`] at run time, see [`store_path`]), numbers, fixed names, or values
//! from the inventory that are validated when loading and quoted with shlex here.

use model::{BootLoader, HealthCheck};

use crate::plan::SYSTEM_PROFILE;

/// Stands for the new system's store path (what `nix build` printed) until it is known.
pub const TOPLEVEL: &str = "<toplevel>";
/// Stands for the system the host ran before the deploy (`readlink -f /run/current-system`).
pub const PREVIOUS: &str = "<previous>";

/// Where the state of the deploy in progress lives on the host.
pub const STATE_DIR: &str = "/run/pifleet/deploy";
/// The dead man's switch: a transient timer and the service it starts.
pub const ROLLBACK_UNIT: &str = "pifleet-rollback";
/// The activation, a transient service so that an SSH disconnect cannot kill it.
pub const ACTIVATE_UNIT: &str = "pifleet-activate";
/// Going back at once, on the workstation's request.
pub const ROLLBACK_NOW_UNIT: &str = "pifleet-rollback-now";
/// Making the confirmed system the boot default.
pub const COMMIT_UNIT: &str = "pifleet-commit";
/// Preparing a one-shot boot of the new generation (`--reboot`).
pub const STAGE_UNIT: &str = "pifleet-stage";
/// The delayed `systemctl reboot` (`--reboot`).
pub const REBOOT_UNIT: &str = "pifleet-reboot";
/// Going back to the profile's previous generation (`pifleet rollback`).
pub const PROFILE_ROLLBACK_UNIT: &str = "pifleet-profile-rollback";

/// Exit code of a remote step that found the host busy with, or already past, a decision.
pub const EXIT_BUSY: i32 = 75;
/// Exit code of the disarm when the host had already started going back.
pub const EXIT_TOO_LATE: i32 = 3;

/// Quotes `word` for a POSIX shell (shlex). NUL cannot be quoted; no value pifleet quotes holds one
/// (the inventory's strings are validated), so it is dropped rather than failing.
pub fn quote(word: &str) -> String {
    match shlex::try_quote(word) {
        Ok(q) => q.into_owned(),
        Err(_) => quote(&word.replace('\0', "")),
    }
}

/// `words` as one shell command line.
pub fn join(words: &[&str]) -> String {
    words.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" ")
}

/// Why a path printed by `nix build` or read on the host cannot stand in a remote command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a store path pifleet can pass to the host (an absolute path of letters, digits and `+._-`)"
)]
pub struct BadStorePath(pub String);

/// Checks a store path before it replaces [`TOPLEVEL`] or [`PREVIOUS`] in a remote command: only
/// characters that mean nothing to a shell in any quoting context, absolute, no `..`.
pub fn store_path(path: &str) -> Result<&str, BadStorePath> {
    let ok = path.len() > 1
        && path.len() <= 4096
        && path.starts_with('/')
        && path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+._-/".contains(c))
        && !path.split('/').any(|part| part == "..");
    if ok {
        Ok(path)
    } else {
        Err(BadStorePath(path.to_owned()))
    }
}

/// The command for `sh -c`, run as root: through `sudo` for another deploy user.
pub fn as_root(sudo: bool, words: &[&str]) -> String {
    let mut all: Vec<&str> = Vec::with_capacity(words.len() + 1);
    if sudo {
        all.push("sudo");
    }
    all.extend_from_slice(words);
    join(&all)
}

/// `sh -c SCRIPT`, as root.
pub fn script_as_root(sudo: bool, script: &str) -> String {
    as_root(sudo, &["sh", "-c", script])
}

/// `systemd-run` for a transient service running `script` with `/bin/sh`, with `PATH` set to the
/// tools of `sw` (a system's `sw/bin`: the running one's, so a broken new system cannot take them
/// away). `wait`: wait for the unit and pass its output and exit code through (`--wait --pipe`);
/// an SSH disconnect still cannot stop it, only the waiting.
fn transient(unit: &str, description: &str, sw: &str, wait: bool, script: &str) -> Vec<String> {
    let mut words = vec![
        "systemd-run".to_owned(),
        format!("--unit={unit}"),
        format!("--description={description}"),
        format!("--setenv=PATH={sw}/sw/bin"),
        "--collect".to_owned(),
        "--quiet".to_owned(),
        "--service-type=exec".to_owned(),
    ];
    if wait {
        words.extend(["--wait".to_owned(), "--pipe".to_owned()]);
    }
    words.extend([
        "--".to_owned(),
        "/bin/sh".to_owned(),
        "-c".to_owned(),
        script.to_owned(),
    ]);
    words
}

fn root_words(sudo: bool, words: &[String]) -> String {
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    as_root(sudo, &words)
}

/// Prints what the host runs and the state of a deploy in progress, as `key value` lines (see
/// [`crate::confirm::HostState`]). Needs no root.
pub fn probe() -> String {
    format!(
        "d={STATE_DIR}; \
         echo \"current $(readlink -f /run/current-system)\"; \
         echo \"profile $(readlink {SYSTEM_PROFILE})\"; \
         for l in {SYSTEM_PROFILE}-*-link; do [ -e \"$l\" ] && echo \"generation ${{l##*/}} $(readlink -f \"$l\")\"; done; \
         for f in started status activated rollback rollback-by rollback-status; do [ -e \"$d/$f\" ] && echo \"$f $(cat \"$d/$f\")\"; done; \
         [ -d \"$d/decided\" ] && echo \"decided $(cat \"$d/decided/by\" 2>/dev/null)\"; \
         [ -e \"$d/activated\" ] && sed 's/^/log /' \"$d/activate.log\" 2>/dev/null; \
         echo \"now $(date +%s)\""
    )
}

/// Refuses while another deploy is unconfirmed on the host, else clears what an earlier one left.
pub fn prepare(sudo: bool) -> String {
    script_as_root(
        sudo,
        &format!(
            "if systemctl is-active --quiet {ROLLBACK_UNIT}.timer {ROLLBACK_UNIT}.service {ACTIVATE_UNIT}.service; then \
             echo 'another deploy is unconfirmed on this host ({ROLLBACK_UNIT}.timer is armed or an activation is running)' >&2; exit {EXIT_BUSY}; fi; \
             rm -rf {STATE_DIR} && mkdir -p {STATE_DIR}"
        ),
    )
}

/// The way back to [`PREVIOUS`]: wait for a running activation to end (its lock), then, when
/// `wait` is given, until that many seconds after it ended; then go back unless the workstation
/// confirmed first. `stop_timer`: the workstation asks for it now, so the timer is stopped first.
fn rollback_script(wait: Option<u32>, stop_timer: bool) -> String {
    let by = if stop_timer { "request" } else { "timer" };
    let mut s = format!("d={STATE_DIR}; ");
    if stop_timer {
        s.push_str(&format!(
            "systemctl stop {ROLLBACK_UNIT}.timer {ROLLBACK_UNIT}.service 2>/dev/null; "
        ));
    }
    s.push_str(
        "exec 9>>\"$d/lock\"; flock 9; \
         if [ ! -e \"$d/started\" ]; then mkdir \"$d/decided\" 2>/dev/null && echo expired > \"$d/decided/by\"; \
         echo 'no activation started: nothing to roll back'; exit 0; fi; ",
    );
    if let Some(deadline) = wait {
        s.push_str(&format!(
            "end=$(cat \"$d/activated\" 2>/dev/null || date +%s); left=$((end + {deadline} - $(date +%s))); \
             if [ \"$left\" -gt 0 ]; then sleep \"$left\"; fi; "
        ));
    }
    s.push_str(&format!(
        "if ! mkdir \"$d/decided\" 2>/dev/null; then echo \"already decided: $(cat \"$d/decided/by\" 2>/dev/null)\"; exit 0; fi; \
         echo rollback > \"$d/decided/by\"; date +%s > \"$d/rollback\"; echo {by} > \"$d/rollback-by\"; \
         echo 'going back to {PREVIOUS}'; \
         {PREVIOUS}/bin/switch-to-configuration test; echo $? > \"$d/rollback-status\""
    ));
    s
}

/// Arms the dead man's switch: a transient timer `deadline` seconds from now whose service goes back
/// to [`PREVIOUS`] with `switch-to-configuration test`, waiting for the activation to end and then
/// `deadline` seconds more.
pub fn arm(sudo: bool, deadline: u32) -> String {
    let script = rollback_script(Some(deadline), false);
    let words = vec![
        "systemd-run".to_owned(),
        format!("--unit={ROLLBACK_UNIT}"),
        format!("--description=pifleet: go back to {PREVIOUS} unless the deploy is confirmed"),
        format!("--on-active={deadline}"),
        "--timer-property=AccuracySec=1s".to_owned(),
        format!("--setenv=PATH={PREVIOUS}/sw/bin"),
        "--quiet".to_owned(),
        "--".to_owned(),
        "/bin/sh".to_owned(),
        "-c".to_owned(),
        script,
    ];
    root_words(sudo, &words)
}

/// Starts the activation of [`TOPLEVEL`] (`switch-to-configuration test`) as a transient service and
/// returns at once: holding the lock, refusing if the switch already fired, recording start, exit
/// code and end.
pub fn activate(sudo: bool) -> String {
    let script = format!(
        "d={STATE_DIR}; exec 9>>\"$d/lock\"; flock 9; \
         if [ -d \"$d/decided\" ]; then echo \"not activating: already decided: $(cat \"$d/decided/by\" 2>/dev/null)\" > \"$d/activate.log\"; echo {EXIT_BUSY} > \"$d/status\"; date +%s > \"$d/activated\"; exit {EXIT_BUSY}; fi; \
         date +%s > \"$d/started\"; \
         {TOPLEVEL}/bin/switch-to-configuration test > \"$d/activate.log\" 2>&1; echo $? > \"$d/status\"; \
         date +%s > \"$d/activated\""
    );
    root_words(
        sudo,
        &transient(
            ACTIVATE_UNIT,
            &format!("pifleet: activate {TOPLEVEL}"),
            PREVIOUS,
            false,
            &script,
        ),
    )
}

/// Goes back to [`PREVIOUS`] now, unless the host already decided; waits for it.
pub fn rollback_now(sudo: bool) -> String {
    root_words(
        sudo,
        &transient(
            ROLLBACK_NOW_UNIT,
            &format!("pifleet: go back to {PREVIOUS} now"),
            PREVIOUS,
            true,
            &rollback_script(None, true),
        ),
    )
}

/// Disarms the switch after a confirmation: decides "confirmed" unless the host already decided to
/// go back (exit [`EXIT_TOO_LATE`]), then stops the timer and its service.
pub fn disarm(sudo: bool) -> String {
    script_as_root(
        sudo,
        &format!(
            "d={STATE_DIR}; if mkdir \"$d/decided\" 2>/dev/null; then echo confirmed > \"$d/decided/by\"; \
             systemctl stop {ROLLBACK_UNIT}.timer {ROLLBACK_UNIT}.service; echo disarmed; \
             else echo \"too late: already decided: $(cat \"$d/decided/by\" 2>/dev/null)\" >&2; exit {EXIT_TOO_LATE}; fi"
        ),
    )
}

/// Makes [`TOPLEVEL`] the boot default: a new generation of the system profile, then the boot loader.
pub fn commit(sudo: bool) -> String {
    root_words(
        sudo,
        &transient(
            COMMIT_UNIT,
            &format!("pifleet: make {TOPLEVEL} the boot default"),
            TOPLEVEL,
            true,
            &format!(
                "nix-env -p {SYSTEM_PROFILE} --set {TOPLEVEL} && {TOPLEVEL}/bin/switch-to-configuration boot"
            ),
        ),
    )
}

/// Makes [`PREVIOUS`] the boot default again (after `--reboot` committed first and the confirmation
/// after the reboot failed).
pub fn uncommit(sudo: bool) -> String {
    root_words(
        sudo,
        &transient(
            COMMIT_UNIT,
            &format!("pifleet: make {PREVIOUS} the boot default again"),
            PREVIOUS,
            true,
            &format!(
                "nix-env -p {SYSTEM_PROFILE} --set {PREVIOUS} && {PREVIOUS}/bin/switch-to-configuration boot"
            ),
        ),
    )
}

/// `switch-to-configuration dry-activate` of [`TOPLEVEL`]: what activation would change.
pub fn dry_activate(sudo: bool) -> String {
    as_root(
        sudo,
        &[
            &format!("{TOPLEVEL}/bin/switch-to-configuration"),
            "dry-activate",
        ],
    )
}

/// Adds [`TOPLEVEL`] to the system profile and the boot menu without making it the default, and
/// tells the boot loader to boot it once. `None` for a loader without one-shot boots.
pub fn stage_one_shot(sudo: bool, loader: BootLoader) -> Option<String> {
    let once = match loader {
        BootLoader::Extlinux => return None,
        BootLoader::SystemdBoot => "bootctl set-oneshot \"nixos-generation-$m.conf\"".to_owned(),
        BootLoader::Grub => "grep -q saved_entry /boot/grub/grub.cfg || { echo 'grub-reboot needs boot.loader.grub.default = \"saved\"' >&2; exit 1; }; \
             title=$(sed -n \"s/^[[:space:]]*menuentry \\\"\\(NixOS - Configuration $m [^\\\"]*\\)\\\".*/\\1/p\" /boot/grub/grub.cfg | head -n 1); \
             [ -n \"$title\" ] || { echo \"no GRUB entry for generation $m\" >&2; exit 1; }; \
             grub-reboot \"NixOS - All configurations>$title\""
            .to_owned(),
    };
    let script = format!(
        "p={SYSTEM_PROFILE}; old=$(readlink $p); n=${{old#system-}}; n=${{n%-link}}; \
         nix-env -p $p --set {TOPLEVEL} || exit 1; new=$(readlink $p); m=${{new#system-}}; m=${{m%-link}}; \
         nix-env -p $p --switch-generation \"$n\" || exit 1; \
         $p/bin/switch-to-configuration boot || exit 1; \
         {once} || exit 1; echo \"generation $m boots once; the default stays generation $n\""
    );
    Some(root_words(
        sudo,
        &transient(
            STAGE_UNIT,
            &format!("pifleet: boot {TOPLEVEL} once"),
            PREVIOUS,
            true,
            &script,
        ),
    ))
}

/// Reboots in two seconds, so the SSH command that asks for it can return first.
pub fn reboot(sudo: bool) -> String {
    as_root(
        sudo,
        &[
            "systemd-run",
            &format!("--unit={REBOOT_UNIT}"),
            "--on-active=2",
            "--quiet",
            "--",
            "systemctl",
            "reboot",
        ],
    )
}

/// `pifleet rollback`: the profile's previous generation, activated and made the boot default.
pub fn profile_rollback(sudo: bool) -> String {
    root_words(
        sudo,
        &transient(
            PROFILE_ROLLBACK_UNIT,
            "pifleet: back to the previous generation",
            "/run/current-system",
            true,
            &format!(
                "nix-env -p {SYSTEM_PROFILE} --rollback && {SYSTEM_PROFILE}/bin/switch-to-configuration switch"
            ),
        ),
    )
}

/// The confirmation, run as the deploy user over a fresh connection: what the host runs, the system
/// state and failed units, each health check, and the room on `/boot` next to the size of the new
/// kernel and initrd. One `key …` line each; [`crate::confirm`] reads them. `toplevel` is the
/// system whose kernel and initrd must fit again (none for `pifleet rollback`). `sudo`: the deploy
/// user is not root (container checks need root).
pub fn confirm(health: &[HealthCheck], toplevel: Option<&str>, sudo: bool) -> String {
    let mut s = String::from(
        "echo \"current $(readlink -f /run/current-system)\"; \
         echo \"state $(systemctl is-system-running 2>&1)\"; \
         systemctl --failed --plain --no-legend 2>/dev/null | while read -r u _; do echo \"failed $u\"; done; ",
    );
    for (i, check) in health.iter().enumerate() {
        s.push_str(&health_check(i, check, sudo));
        s.push_str("; ");
    }
    if let Some(toplevel) = toplevel {
        s.push_str(&format!(
            "echo \"boot $(df -Pk /boot | awk 'NR==2 {{print $4}}') $(du -sLk {toplevel}/kernel {toplevel}/initrd | awk '{{s+=$1}} END {{print s}}')\"; "
        ));
    }
    s.push_str("echo end");
    s
}

/// One health check as a shell command printing `check I ok` or `check I fail WHY`.
fn health_check(i: usize, check: &HealthCheck, sudo: bool) -> String {
    let ok = format!("echo 'check {i} ok'");
    match check {
        HealthCheck::Tcp(port) => {
            let probe = |host: &str| {
                format!(
                    "timeout 5 bash -c {} 2>/dev/null",
                    quote(&format!("</dev/tcp/{host}/{port}"))
                )
            };
            format!(
                "if {} || {}; then {ok}; else echo 'check {i} fail nothing accepts connections on port {port}'; fi",
                probe("127.0.0.1"),
                probe("::1")
            )
        }
        HealthCheck::Unit(unit) => {
            let unit = quote(&unit.with_suffix());
            format!(
                "if systemctl is-active --quiet {unit}; then {ok}; else echo \"check {i} fail $(systemctl is-active {unit} 2>&1)\"; fi"
            )
        }
        HealthCheck::Http(url) => format!(
            "c=$(curl -sS -o /dev/null -w '%{{http_code}}' --max-time 10 --url {} 2>&1); \
             case \"$c\" in 2??) {ok};; *) echo \"check {i} fail $c\";; esac",
            quote(url.as_str())
        ),
        HealthCheck::Container(name) => format!(
            "r=$({}docker inspect --format '{{{{.State.Running}}}}' {} 2>&1); \
             if [ \"$r\" = true ]; then {ok}; else echo \"check {i} fail $r\"; fi",
            if sudo { "sudo -n " } else { "" },
            quote(name.as_str())
        ),
    }
}

/// Replaces [`TOPLEVEL`] and [`PREVIOUS`] in `text` with validated store paths.
pub fn bind(text: &str, toplevel: Option<&str>, previous: Option<&str>) -> String {
    let mut out = text.to_owned();
    if let Some(t) = toplevel {
        out = out.replace(TOPLEVEL, t);
    }
    if let Some(p) = previous {
        out = out.replace(PREVIOUS, p);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_paths() {
        assert!(store_path("/nix/store/abc-nixos-system-pi-26.05").is_ok());
        for bad in [
            "",
            "/",
            "relative/path",
            "/nix/store/a b",
            "/nix/store/a'b",
            "/nix/store/$(reboot)",
            "/nix/store/../etc",
            "/nix/store/a;b",
            "/nix/store/a\nb",
        ] {
            assert!(store_path(bad).is_err(), "{bad:?}");
        }
    }

    /// Every script parses as shell (`sh -n`), with the placeholders bound.
    #[test]
    fn scripts_parse() {
        let health = [
            HealthCheck::Tcp(model::Port::new(8123).expect("port")),
            HealthCheck::Unit(model::UnitName::new("nginx").expect("unit")),
            HealthCheck::Http(
                model::HealthUrl::new("http://127.0.0.1:80/a?b=1&c='x'").expect("url"),
            ),
            HealthCheck::Container(model::ContainerName::new("web").expect("name")),
        ];
        let mut all = vec![
            probe(),
            prepare(true),
            arm(false, 30),
            activate(true),
            rollback_now(false),
            disarm(true),
            commit(false),
            uncommit(true),
            dry_activate(false),
            reboot(true),
            profile_rollback(false),
            confirm(&health, Some(TOPLEVEL), true),
        ];
        for loader in [BootLoader::SystemdBoot, BootLoader::Grub] {
            all.extend(stage_one_shot(false, loader));
        }
        assert!(stage_one_shot(false, BootLoader::Extlinux).is_none());
        for script in all {
            let bound = bind(&script, Some("/nix/store/new"), Some("/nix/store/old"));
            assert!(
                !bound.contains(TOPLEVEL) && !bound.contains(PREVIOUS),
                "{bound}"
            );
            let out = std::process::Command::new("sh")
                .args(["-n", "-c", &bound])
                .output()
                .expect("sh");
            assert!(
                out.status.success(),
                "{bound}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    /// Inventory values reach the host as one quoted word each: run the health-check lines through
    /// a real shell with the tools replaced by `echo`, and see the value come back intact.
    #[test]
    fn health_values_are_one_word() {
        let url = "http://127.0.0.1/$(id)?a=1&b='x';c";
        let check = HealthCheck::Http(model::HealthUrl::new(url).expect("a URL"));
        let script = health_check(0, &check, false);
        // The stand-in prints its arguments on fd 3: the check captures curl's stderr with its stdout.
        let script =
            format!("exec 3>&2; curl() {{ printf '%s\\n' \"$@\" >&3; echo 200; }}; {script}");
        let out = std::process::Command::new("sh")
            .args(["-c", &script])
            .output()
            .expect("sh");
        let args = String::from_utf8_lossy(&out.stderr);
        assert!(args.lines().any(|l| l == url), "{args}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "check 0 ok\n");
    }
}
