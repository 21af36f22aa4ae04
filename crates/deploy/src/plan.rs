//! Deploy plans: the selected hosts and, per host, the exact commands to run in order.
//!
//! A plan is computed from the inventory and the command-line options alone and never touches the
//! network, so the `--dry-run` output and the executor cannot disagree: the executor runs
//! [`CommandSpec`]s from the plan verbatim.

use std::fmt;

use model::{Fleet, Host, HostName};

/// Where the NixOS profile of the running system lives on every host.
pub const SYSTEM_PROFILE: &str = "/nix/var/nix/profiles/system";

/// Why no plan could be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A host named on the command line is not in the inventory.
    #[error("no host `{name}` in the inventory (hosts: {known})")]
    UnknownHost {
        /// The name as given.
        name: String,
        /// The inventory's host names, comma-separated.
        known: String,
    },
    /// No host carries a tag named on the command line.
    #[error("no host is tagged `{tag}`")]
    EmptyTag {
        /// The tag, without the `@`.
        tag: String,
    },
    /// `--build-on HOST` names a fleet host whose SSH port differs from a target's: `NIX_SSHOPTS`
    /// carries a single `-p`, so nixos-rebuild would reach one of them on the wrong port.
    #[error(
        "build host `{build_host}` listens on port {build_port}, but `{host}` on port {port}; nixos-rebuild passes one port (NIX_SSHOPTS) to both"
    )]
    BuildHostPort {
        /// The build host.
        build_host: String,
        /// Its deploy port.
        build_port: u16,
        /// The target being planned.
        host: String,
        /// The target's deploy port.
        port: u16,
    },
    /// `--build-on` was given an empty value.
    #[error("--build-on needs `local`, `target` or a host")]
    EmptyBuildHost,
    /// `--build-on` is neither a fleet host nor `[user@]address`.
    #[error("--build-on `{value}`: {reason}")]
    BuildHost {
        /// The value as given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// What `nixos-rebuild` does with the new system.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Action {
    /// Activate now and make it the boot default.
    #[default]
    Switch,
    /// Make it the boot default; it runs after the next reboot.
    Boot,
    /// Activate now without changing the boot default: a reboot returns to the previous system.
    Test,
    /// Build and copy, then print what activation would change; nothing is activated.
    DryActivate,
}

impl Action {
    /// The `nixos-rebuild` subcommand.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Switch => "switch",
            Action::Boot => "boot",
            Action::Test => "test",
            Action::DryActivate => "dry-activate",
        }
    }

    /// Whether the running system changes, so the post-activation confirmation (and the magic
    /// rollback) applies: `switch` and `test`. `boot` changes nothing until the next reboot and
    /// `dry-activate` changes nothing at all.
    pub fn activates(self) -> bool {
        matches!(self, Action::Switch | Action::Test)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One word of the host selection on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// A host by name.
    Host(String),
    /// Every host carrying a tag (`@edge`).
    Tag(String),
}

impl Selector {
    /// `@tag` selects by tag, anything else by host name.
    pub fn parse(word: &str) -> Self {
        match word.strip_prefix('@') {
            Some(tag) => Selector::Tag(tag.to_owned()),
            None => Selector::Host(word.to_owned()),
        }
    }
}

/// The hosts `selectors` name, in inventory order without duplicates; every host when there are none.
pub fn select(fleet: &Fleet, selectors: &[Selector]) -> Result<Vec<HostName>, Error> {
    if selectors.is_empty() {
        return Ok(fleet.hosts.keys().cloned().collect());
    }
    let mut chosen = std::collections::BTreeSet::new();
    for selector in selectors {
        match selector {
            Selector::Host(name) => {
                let Some((name, _)) = fleet.hosts.get_key_value(name.as_str()) else {
                    return Err(Error::UnknownHost {
                        name: name.clone(),
                        known: known_hosts(fleet),
                    });
                };
                chosen.insert(name.clone());
            }
            Selector::Tag(tag) => {
                let before = chosen.len();
                let mut any = false;
                for (name, _) in fleet.hosts_tagged(tag) {
                    any = true;
                    chosen.insert(name.clone());
                }
                if !any && before == chosen.len() {
                    return Err(Error::EmptyTag { tag: tag.clone() });
                }
            }
        }
    }
    Ok(fleet
        .hosts
        .keys()
        .filter(|name| chosen.contains(*name))
        .cloned()
        .collect())
}

/// The host `name` of `fleet`, or the error that lists the hosts there are.
fn host_of<'a>(fleet: &'a Fleet, name: &HostName) -> Result<&'a Host, Error> {
    fleet.hosts.get(name).ok_or_else(|| Error::UnknownHost {
        name: name.to_string(),
        known: known_hosts(fleet),
    })
}

fn known_hosts(fleet: &Fleet) -> String {
    let names: Vec<&str> = fleet.hosts.keys().map(HostName::as_str).collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// Where the system closures are built, as chosen on the command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum BuildOn {
    /// Each host's `deploy.build_on` from the inventory (the workstation unless it says `target`).
    #[default]
    Inventory,
    /// On the workstation, for every host.
    Local,
    /// On each target itself.
    Target,
    /// On one build host: a fleet host's name, or an SSH destination (`[user@]host`).
    Host(String),
}

impl BuildOn {
    /// `local`, `target`, or a build host: a fleet host's name or `[user@]address`, validated like the
    /// inventory's users and addresses, so the value can never smuggle an option into ssh's or
    /// nixos-rebuild's command line.
    pub fn parse(word: &str) -> Result<Self, Error> {
        Ok(match word {
            "" => return Err(Error::EmptyBuildHost),
            "local" | "workstation" => BuildOn::Local,
            "target" => BuildOn::Target,
            other => {
                let bad = |reason: String| Error::BuildHost {
                    value: other.to_owned(),
                    reason,
                };
                let address = match other.rsplit_once('@') {
                    Some((user, address)) => {
                        model::UserName::new(user).map_err(|e| bad(e.to_string()))?;
                        address
                    }
                    None => other,
                };
                model::Address::new(address).map_err(|e| bad(e.to_string()))?;
                BuildOn::Host(other.to_owned())
            }
        })
    }
}

/// Options that shape every host's commands.
#[derive(Debug, Clone)]
pub struct Options {
    /// What nixos-rebuild does.
    pub action: Action,
    /// The flake holding `nixosConfigurations.<host>`, e.g. `.`; `#<host>` is always appended.
    pub flake: String,
    /// Where to build.
    pub build_on: BuildOn,
    /// The workstation's Nix system (`x86_64-linux`): targets of another system get `--fast`.
    pub local_system: String,
    /// SSH options the user already passes to Nix (`NIX_SSHOPTS`), kept first so they win.
    pub ssh_options: Vec<String>,
    /// `ConnectTimeout` for every SSH connection, in seconds.
    pub connect_timeout: u32,
    /// Roll back automatically when the post-activation confirmation fails.
    pub magic_rollback: bool,
    /// `hosts/known_hosts`: hosts with a recorded key are pinned to it (`StrictHostKeyChecking=yes`,
    /// `HostKeyAlias=<host>`). `None` leaves ssh's own known_hosts in charge.
    pub known_hosts: Option<std::path::PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            action: Action::Switch,
            flake: ".".into(),
            build_on: BuildOn::Inventory,
            local_system: workstation_system(),
            ssh_options: Vec::new(),
            connect_timeout: 10,
            magic_rollback: true,
            known_hosts: None,
        }
    }
}

/// The Nix system of this machine, from the architecture pifleet was built for.
pub fn workstation_system() -> String {
    format!("{}-linux", std::env::consts::ARCH)
}

/// How to reach a host over SSH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The SSH user.
    pub user: String,
    /// The address or DNS name.
    pub address: String,
    /// The SSH port.
    pub port: u16,
    /// The host's name when its key is recorded in the inventory: ssh checks the key under this
    /// name (`HostKeyAlias`) in `hosts/known_hosts`.
    pub pinned: Option<String>,
}

impl Target {
    /// `user@address`, as ssh and `--target-host` take it.
    pub fn destination(&self) -> String {
        format!("{}@{}", self.user, self.address)
    }

    /// Whether commands on the host need `sudo` (any user but root).
    pub fn needs_sudo(&self) -> bool {
        self.user != "root"
    }
}

/// One program invocation: the program (looked up on `PATH`), its arguments and extra environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandSpec {
    /// The program name.
    pub program: String,
    /// Its arguments, exactly.
    pub args: Vec<String>,
    /// Environment variables set for it on top of pifleet's own environment.
    pub env: Vec<(String, String)>,
}

impl CommandSpec {
    fn new(program: &str) -> Self {
        Self {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
        }
    }

    fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// The program followed by its arguments.
    pub fn argv(&self) -> Vec<&str> {
        std::iter::once(self.program.as_str())
            .chain(self.args.iter().map(String::as_str))
            .collect()
    }
}

/// As a shell command line one could paste: `VAR='…' program arg…`, quoted where needed.
impl fmt::Display for CommandSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut words: Vec<String> = self
            .env
            .iter()
            .map(|(k, v)| format!("{k}={}", shell_quote(v)))
            .collect();
        words.extend(self.argv().into_iter().map(shell_quote));
        f.write_str(&words.join(" "))
    }
}

/// Quotes `word` for a POSIX shell when it holds anything but plainly safe characters.
pub fn shell_quote(word: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "_@%+=:,./#-".contains(c);
    if !word.is_empty() && word.chars().all(safe) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Everything that happens to one host, in order: preflight, activate, confirm, and the rollback
/// that runs only when the confirmation fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPlan {
    /// The host's name in the inventory (and in the flake).
    pub host: String,
    /// Its Nix system, e.g. `aarch64-linux`.
    pub system: String,
    /// How it is reached.
    pub target: Target,
    /// `ssh … true`: can the deploy user log in at all?
    pub preflight: CommandSpec,
    /// The `from="…"` restrictions of the deploy user's keys, when every key has one: the preflight
    /// refuses a host none of whose keys admits this workstation's address.
    pub key_sources: Option<Vec<String>>,
    /// The `nixos-rebuild` run (for `pifleet rollback`, the one switching back).
    pub activate: CommandSpec,
    /// Over a fresh connection: the system state and its failed units. `None` when nothing is
    /// activated (`boot`, `dry-activate`).
    pub confirm: Option<CommandSpec>,
    /// Runs when the confirmation fails. `None` without confirmation or with `--no-magic-rollback`.
    pub rollback: Option<CommandSpec>,
}

/// The whole deploy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// What is being done, for the header: `switch`, `rollback`, …
    pub title: String,
    /// The nixos-rebuild action (`switch` for a rollback).
    pub action: Action,
    /// Whether a failed confirmation would have rolled back, but `--no-magic-rollback` said no.
    pub magic_rollback_disabled: bool,
    /// The hosts, in inventory order.
    pub hosts: Vec<HostPlan>,
}

/// The remote command of the confirmation: the overall state on the first line, then failed units.
pub const CONFIRM_COMMAND: &str =
    "systemctl is-system-running; systemctl --failed --plain --no-legend";

impl Plan {
    /// The deploy of `hosts` (which must be in `fleet`) with `options`.
    pub fn deploy(fleet: &Fleet, hosts: &[HostName], options: &Options) -> Result<Plan, Error> {
        let mut out = Vec::new();
        for name in hosts {
            let host = host_of(fleet, name)?;
            out.push(deploy_host(fleet, name, host, options)?);
        }
        Ok(Plan {
            title: format!("nixos-rebuild {}", options.action),
            action: options.action,
            magic_rollback_disabled: options.action.activates() && !options.magic_rollback,
            hosts: out,
        })
    }

    /// Switching `hosts` back to their previous generation (`pifleet rollback`), confirmed afterwards
    /// but never rolled back again automatically.
    pub fn rollback(fleet: &Fleet, hosts: &[HostName], options: &Options) -> Result<Plan, Error> {
        let mut out = Vec::new();
        for name in hosts {
            let host = host_of(fleet, name)?;
            let target = target_of(fleet, name, host);
            let system = host.board.system().to_owned();
            let ctx = HostContext {
                name: name.as_str(),
                target: &target,
                system: &system,
                options,
            };
            out.push(HostPlan {
                host: name.to_string(),
                key_sources: key_sources(fleet, name, host),
                preflight: ctx.ssh(&["true"]),
                activate: ctx.rebuild_rollback(Action::Switch),
                confirm: Some(ctx.ssh(&[CONFIRM_COMMAND])),
                rollback: None,
                system,
                target,
            });
        }
        Ok(Plan {
            title: "rollback to the previous generation".into(),
            action: Action::Switch,
            magic_rollback_disabled: false,
            hosts: out,
        })
    }
}

pub(crate) fn target_of(fleet: &Fleet, name: &HostName, host: &Host) -> Target {
    let view = model::HostView::new(fleet, name, host);
    Target {
        user: view.deploy.user.to_string(),
        address: view.deploy.address.to_string(),
        port: view.deploy.port,
        pinned: view.host_key.map(|_| name.to_string()),
    }
}

/// The `from="…"` option of every key the deploy user logs in with, when each has one (`None` when
/// any key, or `~/.ssh/authorized_keys`, admits logins from anywhere).
fn key_sources(fleet: &Fleet, name: &HostName, host: &Host) -> Option<Vec<String>> {
    let view = model::HostView::new(fleet, name, host);
    let login = view.deploy_login().ok()?;
    if login.homedir {
        return None;
    }
    let sources: Option<Vec<String>> = login
        .keys
        .iter()
        .map(|k| k.option("from").map(str::to_owned))
        .collect();
    sources.filter(|s| !s.is_empty())
}

/// What every command of one host needs.
struct HostContext<'a> {
    name: &'a str,
    target: &'a Target,
    system: &'a str,
    options: &'a Options,
}

impl HostContext<'_> {
    /// Options for every SSH connection: the user's first (the first value of an option wins in
    /// ssh), then non-interactive defaults and the port.
    fn ssh_options(&self) -> Vec<String> {
        let mut opts = self.options.ssh_options.clone();
        opts.extend([
            "-o".into(),
            "BatchMode=yes".into(),
            "-o".into(),
            format!("ConnectTimeout={}", self.options.connect_timeout),
        ]);
        // A recorded host key is the only one accepted: no trust on first use, no prompt.
        if let (Some(alias), Some(known_hosts)) = (&self.target.pinned, &self.options.known_hosts) {
            opts.extend([
                "-o".into(),
                "StrictHostKeyChecking=yes".into(),
                "-o".into(),
                format!("UserKnownHostsFile={}", known_hosts.display()),
                "-o".into(),
                format!("HostKeyAlias={alias}"),
            ]);
        }
        opts.extend(["-p".into(), self.target.port.to_string()]);
        opts
    }

    /// `ssh` over a fresh connection (never a multiplexed one nixos-rebuild left behind).
    fn ssh(&self, remote: &[&str]) -> CommandSpec {
        CommandSpec::new("ssh")
            .args(self.ssh_options())
            .args(["-o", "ControlMaster=no", "-o", "ControlPath=none"])
            .arg(self.target.destination())
            .args(remote.iter().copied())
    }

    fn flake(&self) -> String {
        // Always `#<host>`: without it nixos-rebuild picks the target's own hostname.
        format!("{}#{}", self.options.flake, self.name)
    }

    /// The flags that say how to reach and change the target, shared by deploy and rollback.
    fn target_flags(&self) -> Vec<String> {
        let mut args = vec![
            "--flake".into(),
            self.flake(),
            "--target-host".into(),
            self.target.destination(),
        ];
        if self.target.needs_sudo() {
            args.push("--sudo".into());
        }
        args
    }

    /// `--fast` when the target's system differs from the workstation's: nixos-rebuild must not
    /// try to build and re-execute itself for the target's architecture.
    fn fast(&self) -> Option<&'static str> {
        (self.system != self.options.local_system).then_some("--fast")
    }

    fn with_ssh_env(&self, spec: CommandSpec) -> CommandSpec {
        CommandSpec {
            // nixos-rebuild splits NIX_SSHOPTS as a shell would: quote each option.
            env: vec![(
                "NIX_SSHOPTS".into(),
                self.ssh_options()
                    .iter()
                    .map(|o| shell_quote(o))
                    .collect::<Vec<_>>()
                    .join(" "),
            )],
            ..spec
        }
    }

    fn rebuild_rollback(&self, action: Action) -> CommandSpec {
        let spec = CommandSpec::new("nixos-rebuild")
            .arg(action.as_str())
            .arg("--rollback")
            .args(self.target_flags())
            .args(self.fast());
        self.with_ssh_env(spec)
    }
}

fn deploy_host(
    fleet: &Fleet,
    name: &HostName,
    host: &Host,
    options: &Options,
) -> Result<HostPlan, Error> {
    let target = target_of(fleet, name, host);
    let system = host.board.system().to_owned();
    let ctx = HostContext {
        name: name.as_str(),
        target: &target,
        system: &system,
        options,
    };
    let build_host = match &options.build_on {
        BuildOn::Local => None,
        BuildOn::Target => Some(target.destination()),
        BuildOn::Inventory => match host.deploy.build_on {
            model::BuildOn::Workstation => None,
            model::BuildOn::Target => Some(target.destination()),
        },
        BuildOn::Host(build) => match fleet.hosts.get_key_value(build.as_str()) {
            Some((builder_name, builder)) => {
                let builder_target = target_of(fleet, builder_name, builder);
                if builder_target.port != target.port {
                    return Err(Error::BuildHostPort {
                        build_host: build.clone(),
                        build_port: builder_target.port,
                        host: name.to_string(),
                        port: target.port,
                    });
                }
                Some(builder_target.destination())
            }
            None => Some(build.clone()),
        },
    };

    let mut activate = CommandSpec::new("nixos-rebuild")
        .arg(options.action.as_str())
        .args(ctx.target_flags())
        .arg("--use-substitutes")
        .args(ctx.fast());
    if let Some(build_host) = build_host {
        activate = activate.args(["--build-host".to_owned(), build_host]);
    }
    let activate = ctx.with_ssh_env(activate);

    let confirm = options
        .action
        .activates()
        .then(|| ctx.ssh(&[CONFIRM_COMMAND]));
    let rollback = match options.action {
        _ if !options.magic_rollback => None,
        Action::Switch => Some(ctx.rebuild_rollback(Action::Switch)),
        // `test` left the profile alone: re-activating it is the way back (so is a reboot).
        Action::Test => {
            let activate = format!("{SYSTEM_PROFILE}/bin/switch-to-configuration");
            let remote: Vec<&str> = if target.needs_sudo() {
                vec!["sudo", &activate, "test"]
            } else {
                vec![&activate, "test"]
            };
            Some(ctx.ssh(&remote))
        }
        Action::Boot | Action::DryActivate => None,
    };
    let preflight = ctx.ssh(&["true"]);
    Ok(HostPlan {
        host: name.to_string(),
        system: system.clone(),
        target,
        key_sources: key_sources(fleet, name, host),
        preflight,
        activate,
        confirm,
        rollback,
    })
}

/// The `--dry-run` text: every host with its commands, numbered in the order they run.
impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.hosts.len();
        writeln!(
            f,
            "plan: {} on {n} host{}",
            self.title,
            if n == 1 { "" } else { "s" }
        )?;
        for host in &self.hosts {
            let t = &host.target;
            writeln!(f)?;
            writeln!(
                f,
                "{} ({}, {}@{} port {})",
                host.host, host.system, t.user, t.address, t.port
            )?;
            writeln!(f, "  1. preflight: {}", host.preflight)?;
            writeln!(f, "  2. activate:  {}", host.activate)?;
            match &host.confirm {
                Some(confirm) => {
                    writeln!(f, "  3. confirm:   {confirm}")?;
                    match &host.rollback {
                        Some(rollback) => {
                            writeln!(f, "     if the confirmation fails, roll back: {rollback}")?
                        }
                        None if self.magic_rollback_disabled => writeln!(
                            f,
                            "     if the confirmation fails: report it, no rollback (--no-magic-rollback)"
                        )?,
                        None => writeln!(f, "     if the confirmation fails: report it")?,
                    }
                }
                None if self.action == Action::Boot => writeln!(
                    f,
                    "  3. no confirmation: the new system starts at the next boot (`pifleet rollback` goes back)"
                )?,
                None => writeln!(f, "  3. no confirmation: nothing is activated")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn build_hosts_are_validated_like_addresses() {
        assert_eq!(BuildOn::parse("local").expect("ok"), BuildOn::Local);
        assert_eq!(
            BuildOn::parse("builder@10.0.0.9").expect("ok"),
            BuildOn::Host("builder@10.0.0.9".into())
        );
        assert_eq!(
            BuildOn::parse("rpi-box-01").expect("ok"),
            BuildOn::Host("rpi-box-01".into())
        );
        for bad in [
            "-oProxyCommand=sh",
            "a b",
            "user@",
            "Root@host",
            "host:22",
            "x@-y",
        ] {
            assert!(
                matches!(BuildOn::parse(bad), Err(Error::BuildHost { .. })),
                "{bad} must be refused"
            );
        }
    }

    const FLEET: &str = r#"
[fleet]
state_version = "26.05"

[ssh]
permit_root_login = "prohibit-password"
root_keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIN/AROyqCRnG7LR8F2+d+V4hkfckmsMtRuC0uRqBKwjf admin@workstation"]

[users.deploy]
ssh_keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIN/AROyqCRnG7LR8F2+d+V4hkfckmsMtRuC0uRqBKwjf admin@workstation"]
sudo = "no-password"

[hosts.pi]
board = "rpi4"
address = "127.0.0.2"
tags = ["edge"]

[hosts.vps]
board = "x86_64"
address = "127.0.0.3"
users = ["deploy"]
deploy = { user = "deploy", port = 2222, build_on = "target" }
tags = ["edge", "cloud"]
"#;

    fn fleet() -> Fleet {
        model::load_str(FLEET, "fleet.toml").unwrap().fleet
    }

    fn options() -> Options {
        Options {
            local_system: "x86_64-linux".into(),
            ..Options::default()
        }
    }

    fn hosts(f: &Fleet, words: &[&str]) -> Vec<String> {
        let sel: Vec<_> = words.iter().map(|w| Selector::parse(w)).collect();
        select(f, &sel)
            .unwrap()
            .into_iter()
            .map(|h| h.to_string())
            .collect()
    }

    #[test]
    fn selection_by_name_tag_and_all() {
        let f = fleet();
        assert_eq!(hosts(&f, &[]), ["pi", "vps"]);
        assert_eq!(hosts(&f, &["@cloud"]), ["vps"]);
        assert_eq!(hosts(&f, &["vps", "@edge", "pi"]), ["pi", "vps"]);
        let err = select(&f, &[Selector::parse("nope")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no host `nope` in the inventory (hosts: pi, vps)"
        );
        let err = select(&f, &[Selector::parse("@none")]).unwrap_err();
        assert_eq!(err.to_string(), "no host is tagged `none`");
    }

    #[test]
    fn argv_per_host() {
        let f = fleet();
        let plan = Plan::deploy(&f, &select(&f, &[]).unwrap(), &options()).unwrap();
        let pi = &plan.hosts[0];
        assert_eq!(
            pi.activate.argv(),
            [
                "nixos-rebuild",
                "switch",
                "--flake",
                ".#pi",
                "--target-host",
                "root@127.0.0.2",
                "--use-substitutes",
                "--fast"
            ]
        );
        assert_eq!(
            pi.activate.env,
            [(
                "NIX_SSHOPTS".to_owned(),
                "-o BatchMode=yes -o ConnectTimeout=10 -p 22".to_owned()
            )]
        );
        let vps = &plan.hosts[1];
        assert_eq!(
            vps.activate.argv(),
            [
                "nixos-rebuild",
                "switch",
                "--flake",
                ".#vps",
                "--target-host",
                "deploy@127.0.0.3",
                "--sudo",
                "--use-substitutes",
                "--build-host",
                "deploy@127.0.0.3"
            ]
        );
        assert_eq!(
            vps.rollback.as_ref().unwrap().argv(),
            [
                "nixos-rebuild",
                "switch",
                "--rollback",
                "--flake",
                ".#vps",
                "--target-host",
                "deploy@127.0.0.3",
                "--sudo"
            ]
        );
        assert_eq!(
            vps.preflight.to_string(),
            "ssh -o BatchMode=yes -o ConnectTimeout=10 -p 2222 -o ControlMaster=no -o ControlPath=none deploy@127.0.0.3 true"
        );
    }

    #[test]
    fn build_on_overrides_and_user_ssh_options_come_first() {
        let f = fleet();
        let all = select(&f, &[]).unwrap();
        let opts = Options {
            build_on: BuildOn::Local,
            ssh_options: vec!["-F".into(), "/tmp/cfg".into()],
            ..options()
        };
        let plan = Plan::deploy(&f, &all, &opts).unwrap();
        assert!(!plan.hosts[1].activate.args.contains(&"--build-host".into()));
        assert_eq!(
            plan.hosts[1].activate.env[0].1,
            "-F /tmp/cfg -o BatchMode=yes -o ConnectTimeout=10 -p 2222"
        );
        let opts = Options {
            build_on: BuildOn::parse("builder@10.0.0.1").unwrap(),
            ..options()
        };
        let plan = Plan::deploy(&f, &all, &opts).unwrap();
        assert!(
            plan.hosts[0]
                .activate
                .to_string()
                .ends_with("--build-host builder@10.0.0.1")
        );
        // A fleet host as the build host must share the port: NIX_SSHOPTS has one -p.
        let opts = Options {
            build_on: BuildOn::parse("vps").unwrap(),
            ..options()
        };
        assert!(matches!(
            Plan::deploy(&f, &all, &opts),
            Err(Error::BuildHostPort { .. })
        ));
    }

    #[test]
    fn actions_decide_confirmation_and_rollback() {
        let f = fleet();
        let all = select(&f, &[]).unwrap();
        for (action, confirm, rollback) in [
            (Action::Switch, true, true),
            (Action::Test, true, true),
            (Action::Boot, false, false),
            (Action::DryActivate, false, false),
        ] {
            let plan = Plan::deploy(
                &f,
                &all,
                &Options {
                    action,
                    ..options()
                },
            )
            .unwrap();
            assert_eq!(plan.hosts[0].confirm.is_some(), confirm, "{action}");
            assert_eq!(plan.hosts[0].rollback.is_some(), rollback, "{action}");
        }
        let plan = Plan::deploy(
            &f,
            &all,
            &Options {
                action: Action::Test,
                ..options()
            },
        )
        .unwrap();
        assert_eq!(
            plan.hosts[1].rollback.as_ref().unwrap().args[10..],
            [
                "deploy@127.0.0.3",
                "sudo",
                "/nix/var/nix/profiles/system/bin/switch-to-configuration",
                "test"
            ]
        );
        let plan = Plan::deploy(
            &f,
            &all,
            &Options {
                magic_rollback: false,
                ..options()
            },
        )
        .unwrap();
        assert!(plan.hosts.iter().all(|h| h.rollback.is_none()));
        assert!(plan.magic_rollback_disabled);
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote(".#pi"), ".#pi");
    }
}
