//! Deploy plans: the selected hosts and, per host, the exact commands to run in order.
//!
//! A plan is computed from the inventory and the command-line options alone and never touches the
//! network, so the `--dry-run` output and the executor cannot disagree: the executor runs
//! [`CommandSpec`]s from the plan verbatim, with two values filled in once they are known: the new
//! system's store path ([`crate::remote::TOPLEVEL`], printed by `nix build`) and the system the host
//! ran before ([`crate::remote::PREVIOUS`], read from the host), both validated as store paths.
//!
//! pifleet drives the steps itself rather than running `nixos-rebuild`: the dead man's switch must be
//! armed between copying and activating, the activation must be a `test` whose end the switch can
//! see, and the boot default must change only after the confirmation (docs/deploy.md).

use std::fmt;

use model::{Fleet, HealthCheck, Host, HostName};

use crate::remote;

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
    /// carries a single `-p`, so Nix would reach one of them on the wrong port.
    #[error(
        "build host `{build_host}` listens on port {build_port}, but `{host}` on port {port}; Nix passes one port (NIX_SSHOPTS) to both"
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
    /// `--reboot` on a host whose boot loader cannot boot a generation once, without the
    /// acknowledgement that it commits first.
    #[error(
        "`{host}` boots with {loader}, which has no one-shot boot: `--reboot` would have to make the new \
         generation the boot default before rebooting, and if it then fails to boot, only the boot menu on a \
         console brings back the previous one. Pass --commit-before-reboot to accept that, or deploy without --reboot"
    )]
    RebootCommitsFirst {
        /// The host.
        host: String,
        /// Its boot loader.
        loader: &'static str,
    },
    /// `--reboot` with an action other than `switch`.
    #[error(
        "--reboot goes with --action switch (it proves that the new boot default boots), not {0}"
    )]
    RebootAction(Action),
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

/// What a deploy does with the new system (nixos-rebuild's names).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Action {
    /// Arm the rollback, activate with `test`, confirm, disarm, then make it the boot default.
    #[default]
    Switch,
    /// Make it the boot default; it runs after the next reboot.
    Boot,
    /// Like `switch` without the last step: the boot default stays, so a reboot returns to the
    /// previous system.
    Test,
    /// Build and copy, then print what activation would change; nothing is activated.
    DryActivate,
}

impl Action {
    /// The name on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Switch => "switch",
            Action::Boot => "boot",
            Action::Test => "test",
            Action::DryActivate => "dry-activate",
        }
    }

    /// Whether the running system changes, so the dead man's switch and the confirmation apply:
    /// `switch` and `test`. `boot` changes nothing until the next reboot and `dry-activate` changes
    /// nothing at all.
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
    /// Nix's command line.
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
    /// What happens to the new system.
    pub action: Action,
    /// The flake holding `nixosConfigurations.<host>`, e.g. `.`.
    pub flake: String,
    /// Where to build.
    pub build_on: BuildOn,
    /// SSH options the user already passes to Nix (`NIX_SSHOPTS`), kept first so they win.
    pub ssh_options: Vec<String>,
    /// `ConnectTimeout` for every SSH connection, in seconds.
    pub connect_timeout: u32,
    /// Arm the dead man's switch and roll back a host whose confirmation fails. Off
    /// (`--no-magic-rollback`): a failed confirmation is only reported, and the new system runs
    /// uncommitted (a reboot returns to the previous one).
    pub magic_rollback: bool,
    /// Overrides every host's `deploy.confirm_timeout` (seconds after activation ends).
    pub confirm_timeout: Option<u32>,
    /// After the confirmation, reboot into the new generation, confirm again, then commit.
    pub reboot: bool,
    /// With `reboot`: accept committing before the reboot on hosts whose boot loader has no
    /// one-shot boot (extlinux).
    pub commit_before_reboot: bool,
    /// Deploy this many hosts first; the others only if all of them are confirmed.
    pub canary: Option<usize>,
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
            ssh_options: Vec::new(),
            connect_timeout: 10,
            magic_rollback: true,
            confirm_timeout: None,
            reboot: false,
            commit_before_reboot: false,
            canary: None,
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
    /// `user@address`, as ssh takes it.
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

    /// This command with [`remote::TOPLEVEL`] and [`remote::PREVIOUS`] replaced by store paths that
    /// [`remote::store_path`] accepted.
    pub fn bind(&self, toplevel: Option<&str>, previous: Option<&str>) -> CommandSpec {
        CommandSpec {
            program: self.program.clone(),
            args: self
                .args
                .iter()
                .map(|a| remote::bind(a, toplevel, previous))
                .collect(),
            env: self.env.clone(),
        }
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

/// Quotes `word` for a POSIX shell when it holds anything but plainly safe characters (shlex).
pub fn shell_quote(word: &str) -> String {
    remote::quote(word)
}

/// What kind of run a host gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// `switch` and `test`: arm, activate with `test`, confirm, disarm (and commit, for `switch`).
    Activate,
    /// `boot`: commit only; the new system starts at the next boot.
    Boot,
    /// `dry-activate`: print what activation would change.
    DryActivate,
    /// `pifleet rollback`: the system profile's previous generation, then the confirmation.
    ProfileRollback,
}

/// `--reboot`: after the live confirmation, prove the new generation boots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebootPlan {
    /// The host's boot loader.
    pub loader: model::BootLoader,
    /// Adds the new generation to the boot menu and boots it once (one-shot loaders). `None` for
    /// extlinux, where the plan commits before rebooting instead.
    pub stage: Option<CommandSpec>,
    /// The reboot.
    pub reboot: CommandSpec,
    /// Extlinux only: the previous system made the boot default again when the confirmation after
    /// the reboot fails (then another reboot).
    pub uncommit: Option<CommandSpec>,
}

/// Everything that happens to one host, in order. Steps that do not apply are `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPlan {
    /// The host's name in the inventory (and in the flake).
    pub host: String,
    /// Its Nix system, e.g. `aarch64-linux`.
    pub system: String,
    /// How it is reached.
    pub target: Target,
    /// The `from="…"` restrictions of the deploy user's keys, when every key has one: the preflight
    /// refuses a host none of whose keys admits this workstation's address.
    pub key_sources: Option<Vec<String>>,
    /// What kind of run.
    pub flow: Flow,
    /// Seconds after the activation ends that the host waits for a confirmation.
    pub deadline: u32,
    /// The health checks the confirmation runs, in order (for messages).
    pub health: Vec<HealthCheck>,
    /// `ssh … true`: can the deploy user log in at all?
    pub preflight: CommandSpec,
    /// `nix build` of the system (prints [`remote::TOPLEVEL`]).
    pub build: Option<CommandSpec>,
    /// `nix copy` of the closure to the host (none when it was built there).
    pub copy: Vec<CommandSpec>,
    /// What the host runs and the state of a deploy in progress: records [`remote::PREVIOUS`]
    /// before anything changes and watches the activation.
    pub probe: CommandSpec,
    /// Another login to probe through when `probe` cannot log in (adopt: the deploy user, once the
    /// bootstrap login is gone).
    pub probe_fallback: Option<CommandSpec>,
    /// Clears an earlier deploy's state; refuses while another deploy is unconfirmed.
    pub prepare: Option<CommandSpec>,
    /// Arms the dead man's switch. `None` with `--no-magic-rollback`.
    pub arm: Option<CommandSpec>,
    /// Starts the activation (`Activate`), prints what it would do (`DryActivate`), or goes back
    /// one generation (`ProfileRollback`).
    pub activate: Option<CommandSpec>,
    /// The confirmation over a fresh connection.
    pub confirm: Option<CommandSpec>,
    /// Who the confirmation logs in as, for messages.
    pub confirm_login: String,
    /// Decides "confirmed" on the host and stops the switch.
    pub disarm: Option<CommandSpec>,
    /// Goes back to [`remote::PREVIOUS`] at once when the confirmation fails.
    pub rollback: Option<CommandSpec>,
    /// Makes the new system the boot default.
    pub commit: Option<CommandSpec>,
    /// `--reboot`.
    pub reboot: Option<RebootPlan>,
}

/// The whole deploy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// What is being done, for the header.
    pub title: String,
    /// The action.
    pub action: Action,
    /// Whether the dead man's switch was turned off (`--no-magic-rollback`).
    pub magic_rollback_disabled: bool,
    /// Deploy this many hosts first; the rest only if they are all confirmed.
    pub canary: Option<usize>,
    /// The hosts, in inventory order.
    pub hosts: Vec<HostPlan>,
}

impl Plan {
    /// The deploy of `hosts` (which must be in `fleet`) with `options`.
    pub fn deploy(fleet: &Fleet, hosts: &[HostName], options: &Options) -> Result<Plan, Error> {
        if options.reboot && options.action != Action::Switch {
            return Err(Error::RebootAction(options.action));
        }
        let mut out = Vec::new();
        for name in hosts {
            let host = host_of(fleet, name)?;
            out.push(deploy_host(fleet, name, host, options)?);
        }
        let mut title = options.action.as_str().to_owned();
        if options.action.activates() {
            title.push_str(if !options.magic_rollback {
                " (activate with test, confirm"
            } else {
                " (arm the rollback, activate with test, confirm, disarm"
            });
            if options.action == Action::Switch {
                title.push_str(if options.reboot {
                    ", reboot into it, confirm, commit)"
                } else {
                    ", commit)"
                });
            } else {
                title.push(')');
            }
        }
        Ok(Plan {
            title,
            action: options.action,
            magic_rollback_disabled: options.action.activates() && !options.magic_rollback,
            canary: options.canary,
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
            let view = model::HostView::new(fleet, name, host);
            let system = host.board.system().to_owned();
            let ctx = HostContext {
                name: name.as_str(),
                target: &target,
                options,
            };
            let sudo = target.needs_sudo();
            out.push(HostPlan {
                host: name.to_string(),
                key_sources: key_sources(fleet, name, host),
                flow: Flow::ProfileRollback,
                deadline: options
                    .confirm_timeout
                    .unwrap_or(view.deploy.confirm_timeout),
                health: view.deploy.health.to_vec(),
                preflight: ctx.ssh("true"),
                build: None,
                copy: Vec::new(),
                probe: ctx.ssh(&remote::probe()),
                probe_fallback: None,
                prepare: None,
                arm: None,
                activate: Some(ctx.ssh(&remote::profile_rollback(sudo))),
                confirm: Some(ctx.ssh(&remote::confirm(view.deploy.health, None, sudo))),
                confirm_login: target.destination(),
                disarm: None,
                rollback: None,
                commit: None,
                reboot: None,
                system,
                target,
            });
        }
        Ok(Plan {
            title: "rollback to the previous generation".into(),
            action: Action::Switch,
            magic_rollback_disabled: false,
            canary: None,
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
    options: &'a Options,
}

impl HostContext<'_> {
    /// Options for every SSH connection: the user's first (the first value of an option wins in
    /// ssh), then non-interactive defaults and the port.
    fn ssh_options(&self) -> Vec<String> {
        ssh_options(self.target, self.options)
    }

    /// `ssh` over a fresh connection (never a multiplexed one), running `remote` (one shell command
    /// line) on the host.
    fn ssh(&self, remote: &str) -> CommandSpec {
        CommandSpec::new("ssh")
            .args(self.ssh_options())
            .args(["-o", "ControlMaster=no", "-o", "ControlPath=none"])
            .arg(self.target.destination())
            .arg(remote)
    }

    /// `NIX_SSHOPTS` for Nix's own SSH connections (`ssh-ng://`): the same pinned options.
    fn with_ssh_env(&self, spec: CommandSpec) -> CommandSpec {
        CommandSpec {
            // Older Nix splits NIX_SSHOPTS on whitespace only (no quotes), so the options go in as
            // they are: none holds whitespace (the user's own were split on it, the rest are ours).
            env: vec![("NIX_SSHOPTS".into(), self.ssh_options().join(" "))],
            ..spec
        }
    }

    /// The flake attribute of the host's system.
    fn toplevel_attr(&self) -> String {
        // Always the host's own attribute: never the builder's hostname.
        format!(
            "{}#nixosConfigurations.{}.config.system.build.toplevel",
            self.options.flake, self.name
        )
    }
}

/// Options for every SSH connection to `target`: the user's first (the first value of an option wins
/// in ssh), then non-interactive defaults, the pinned host key, and the port.
pub(crate) fn ssh_options(target: &Target, options: &Options) -> Vec<String> {
    let mut opts = options.ssh_options.clone();
    opts.extend([
        "-o".into(),
        "BatchMode=yes".into(),
        "-o".into(),
        format!("ConnectTimeout={}", options.connect_timeout),
    ]);
    // A recorded host key is the only one accepted: no trust on first use, no prompt.
    if let (Some(alias), Some(known_hosts)) = (&target.pinned, &options.known_hosts) {
        opts.extend([
            "-o".into(),
            "StrictHostKeyChecking=yes".into(),
            "-o".into(),
            format!("UserKnownHostsFile={}", known_hosts.display()),
            "-o".into(),
            format!("HostKeyAlias={alias}"),
        ]);
    }
    opts.extend(["-p".into(), target.port.to_string()]);
    opts
}

fn deploy_host(
    fleet: &Fleet,
    name: &HostName,
    host: &Host,
    options: &Options,
) -> Result<HostPlan, Error> {
    let target = target_of(fleet, name, host);
    let view = model::HostView::new(fleet, name, host);
    let system = host.board.system().to_owned();
    let ctx = HostContext {
        name: name.as_str(),
        target: &target,
        options,
    };
    let builder = match &options.build_on {
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
    let destination = target.destination();
    let mut build = CommandSpec::new("nix").args(["build", "--no-link", "--print-out-paths"]);
    if let Some(builder) = &builder {
        build = build.args([
            "--eval-store".to_owned(),
            "auto".to_owned(),
            "--store".to_owned(),
            format!("ssh-ng://{builder}"),
        ]);
    }
    let build = ctx.with_ssh_env(build.arg(ctx.toplevel_attr()));
    let copy = match &builder {
        Some(b) if *b == destination => Vec::new(),
        Some(b) => vec![ctx.with_ssh_env(CommandSpec::new("nix").args([
            "copy".to_owned(),
            "--from".to_owned(),
            format!("ssh-ng://{b}"),
            "--to".to_owned(),
            format!("ssh-ng://{destination}"),
            "--substitute-on-destination".to_owned(),
            remote::TOPLEVEL.to_owned(),
        ]))],
        None => vec![ctx.with_ssh_env(CommandSpec::new("nix").args([
            "copy".to_owned(),
            "--to".to_owned(),
            format!("ssh-ng://{destination}"),
            "--substitute-on-destination".to_owned(),
            remote::TOPLEVEL.to_owned(),
        ]))],
    };

    let sudo = target.needs_sudo();
    let deadline = options
        .confirm_timeout
        .unwrap_or(view.deploy.confirm_timeout);
    let activates = options.action.activates();
    let armed = activates && options.magic_rollback;
    let loader = view.deploy.boot_loader;
    let reboot = if options.reboot {
        if !loader.has_one_shot() && !options.commit_before_reboot {
            return Err(Error::RebootCommitsFirst {
                host: name.to_string(),
                loader: loader.as_str(),
            });
        }
        Some(RebootPlan {
            loader,
            stage: remote::stage_one_shot(sudo, loader).map(|s| ctx.ssh(&s)),
            reboot: ctx.ssh(&remote::reboot(sudo)),
            uncommit: (!loader.has_one_shot()).then(|| ctx.ssh(&remote::uncommit(sudo))),
        })
    } else {
        None
    };
    let flow = match options.action {
        Action::Switch | Action::Test => Flow::Activate,
        Action::Boot => Flow::Boot,
        Action::DryActivate => Flow::DryActivate,
    };
    Ok(HostPlan {
        host: name.to_string(),
        system,
        key_sources: key_sources(fleet, name, host),
        flow,
        deadline,
        health: view.deploy.health.to_vec(),
        preflight: ctx.ssh("true"),
        build: Some(build),
        copy,
        probe: ctx.ssh(&remote::probe()),
        probe_fallback: None,
        prepare: activates.then(|| ctx.ssh(&remote::prepare(sudo))),
        arm: armed.then(|| ctx.ssh(&remote::arm(sudo, deadline))),
        activate: match flow {
            Flow::Activate => Some(ctx.ssh(&remote::activate(sudo))),
            Flow::DryActivate => Some(ctx.ssh(&remote::dry_activate(sudo))),
            Flow::Boot | Flow::ProfileRollback => None,
        },
        confirm: activates.then(|| {
            ctx.ssh(&remote::confirm(
                view.deploy.health,
                Some(remote::TOPLEVEL),
                sudo,
            ))
        }),
        confirm_login: destination,
        disarm: armed.then(|| ctx.ssh(&remote::disarm(sudo))),
        rollback: armed.then(|| ctx.ssh(&remote::rollback_now(sudo))),
        commit: matches!(options.action, Action::Switch | Action::Boot)
            .then(|| ctx.ssh(&remote::commit(sudo))),
        reboot,
        target,
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
        if let Some(canary) = self.canary {
            let names: Vec<&str> = self.hosts.iter().map(|h| h.host.as_str()).collect();
            let (first, rest) = names.split_at(canary.min(names.len()));
            writeln!(
                f,
                "waves: canaries {} first; {} only if every canary is confirmed",
                first.join(", "),
                if rest.is_empty() {
                    "no other hosts".to_owned()
                } else {
                    rest.join(", ")
                }
            )?;
        }
        writeln!(
            f,
            "{}: the store path `nix build` prints; {}: what the host runs before (`readlink -f /run/current-system`)",
            remote::TOPLEVEL,
            remote::PREVIOUS
        )?;
        for host in &self.hosts {
            writeln!(f)?;
            host.fmt_steps(f)?;
        }
        Ok(())
    }
}

/// One host's steps, numbered, as `--dry-run` prints them.
impl fmt::Display for HostPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_steps(f)
    }
}

impl HostPlan {
    fn fmt_steps(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.target;
        write!(
            f,
            "{} ({}, {}@{} port {}",
            self.host, self.system, t.user, t.address, t.port
        )?;
        if self.flow == Flow::Activate || self.flow == Flow::ProfileRollback {
            write!(f, ", confirm within {} s", self.deadline)?;
        }
        if let Some(reboot) = &self.reboot {
            write!(f, ", boot loader {}", reboot.loader.as_str())?;
        }
        writeln!(f, ")")?;
        let mut n = 0;
        let mut step = |f: &mut fmt::Formatter<'_>, name: &str, spec: &CommandSpec| {
            n += 1;
            writeln!(f, "  {n:>2}. {name:<9} {spec}")
        };
        let note = |f: &mut fmt::Formatter<'_>, text: &str| writeln!(f, "      {text}");
        step(f, "preflight", &self.preflight)?;
        if let Some(build) = &self.build {
            step(f, "build", build)?;
        }
        for copy in &self.copy {
            step(f, "copy", copy)?;
        }
        match self.flow {
            Flow::DryActivate => {
                if let Some(activate) = &self.activate {
                    step(f, "dry-run", activate)?;
                }
                return note(f, "nothing is activated and the boot default stays");
            }
            Flow::Boot => {
                if let Some(commit) = &self.commit {
                    step(f, "commit", commit)?;
                }
                return note(
                    f,
                    "nothing is activated now: the new system starts at the next boot (`pifleet rollback` goes back)",
                );
            }
            Flow::ProfileRollback => {
                step(f, "record", &self.probe)?;
                if let Some(activate) = &self.activate {
                    step(f, "rollback", activate)?;
                }
                if let Some(confirm) = &self.confirm {
                    step(f, "confirm", confirm)?;
                }
                step(f, "record", &self.probe)?;
                return note(f, "reports the generation before and after");
            }
            Flow::Activate => {}
        }
        step(f, "record", &self.probe)?;
        note(
            f,
            &format!("{} := the `current` it prints", remote::PREVIOUS),
        )?;
        if let Some(prepare) = &self.prepare {
            step(f, "prepare", prepare)?;
        }
        match &self.arm {
            Some(arm) => {
                step(f, "arm", arm)?;
                note(
                    f,
                    &format!(
                        "the host goes back to {} by itself {} s after the activation ends unless disarmed",
                        remote::PREVIOUS,
                        self.deadline
                    ),
                )?;
            }
            None => note(
                f,
                "no rollback timer (--no-magic-rollback): a failed confirmation is only reported",
            )?,
        }
        if let Some(activate) = &self.activate {
            step(f, "activate", activate)?;
            note(
                f,
                &format!(
                    "watched with `record` until it ends; until the commit, power-cycling brings back {}",
                    remote::PREVIOUS
                ),
            )?;
        }
        if let Some(confirm) = &self.confirm {
            step(f, "confirm", confirm)?;
            match &self.rollback {
                Some(rollback) => {
                    note(f, "if it fails:")?;
                    step(f, "rollback", rollback)?;
                    note(
                        f,
                        "if the host cannot be reached: wait for its timer, then report where it is",
                    )?;
                }
                None => note(
                    f,
                    "if it fails: report it; the host keeps the new system, uncommitted",
                )?,
            }
        }
        if let Some(disarm) = &self.disarm {
            step(f, "disarm", disarm)?;
        }
        match (&self.reboot, &self.commit) {
            (Some(reboot), Some(commit)) => match &reboot.stage {
                Some(stage) => {
                    step(f, "stage", stage)?;
                    step(f, "reboot", &reboot.reboot)?;
                    note(f, "wait for the host (`record`), then:")?;
                    step(f, "confirm", self.confirm.as_ref().unwrap_or(&self.probe))?;
                    step(f, "commit", commit)?;
                    note(
                        f,
                        "if the confirmation after the reboot fails: reboot again, into the unchanged boot default",
                    )?;
                }
                None => {
                    step(f, "commit", commit)?;
                    note(
                        f,
                        "committed before the reboot (no one-shot boot): if the new generation fails to boot, only the boot menu on a console brings back the previous one",
                    )?;
                    step(f, "reboot", &reboot.reboot)?;
                    note(f, "wait for the host (`record`), then:")?;
                    step(f, "confirm", self.confirm.as_ref().unwrap_or(&self.probe))?;
                    if let Some(uncommit) = &reboot.uncommit {
                        note(f, "if it fails:")?;
                        step(f, "uncommit", uncommit)?;
                        step(f, "reboot", &reboot.reboot)?;
                    }
                }
            },
            (None, Some(commit)) => {
                step(f, "commit", commit)?;
            }
            (_, None) => note(
                f,
                &format!(
                    "no commit (test): the boot default stays; a reboot returns to {}",
                    remote::PREVIOUS
                ),
            )?,
        }
        Ok(())
    }
}
