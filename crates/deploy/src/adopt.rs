//! Adopting a machine that already runs NixOS (a stock Pi image, a VPS): the first deploy goes in
//! through a bootstrap login (`--via nixos@10.0.0.7`), every later one through the inventory's
//! deploy settings.
//!
//! Three pure parts and a small runner:
//!
//! - [`AdoptPlan`]: the exact commands, in order. It is built from two ordinary deploy plans
//!   ([`Plan::deploy`]): one of a copy of the inventory whose host is reached as the bootstrap user
//!   (preflight, build, copy, arming the rollback, activation, going back), and one of the inventory
//!   as it is, whose confirmation, disarm and commit log in as the fleet's deploy user: after the
//!   switch the bootstrap login may be gone, and the deploy user's login is the one every later
//!   deploy needs. So adopt runs exactly the steps `pifleet deploy` would, confirmed by the same
//!   routine ([`crate::confirm`]) through the same executor ([`crate::run`]).
//! - [`transition`]: the lockout analysis across the switch. `render` writes
//!   `users.mutableUsers = false`, so an account the inventory does not list (the stock image's
//!   `nixos`) disappears with the switch; when the bootstrap login does not survive, the deploy
//!   user must be able to log in afterwards, or nobody can.
//! - [`hardware_file`]: the fetched `nixos-generate-config --show-hardware-config` output, checked
//!   to parse, under a comment saying where it came from.
//! - [`capture`] runs the probes before the deploy (preflight, fetching the hardware configuration).

use std::fmt;
use std::time::SystemTime;

use model::{Address, Fleet, HostName, HostView, LoginBlock, Port, UserName};

pub use crate::exec::{Captured, capture};
use crate::plan::{self, Action, CommandSpec, HostPlan, Options, Plan, Target};

/// The file next to the entry module that `hardware_config = true` imports.
pub const HARDWARE_FILE: &str = "hardware.nix";

/// The remote command printing the machine's hardware configuration.
pub const SHOW_HARDWARE_CONFIG: &str = "nixos-generate-config --show-hardware-config";

/// Why adopting cannot start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `--via` is not `USER@ADDRESS` with a valid user name and address.
    #[error("--via `{via}`: {reason}")]
    Via {
        /// The value as given.
        via: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `--port` is 0.
    #[error("--port 0 is not an SSH port")]
    Port,
    /// Adopt does not take this action (`dry-activate` changes nothing to adopt).
    #[error("adopt takes switch, boot or test, not {0}")]
    Action(Action),
    /// The deploy plan could not be made (an unknown host, for instance).
    #[error(transparent)]
    Plan(#[from] plan::Error),
}

/// Reads `--via USER@ADDRESS` (with the bootstrap SSH port) into a [`Target`]. The user must be a
/// valid Linux user name and the address a valid host address, so neither can smuggle an option
/// into ssh's command line.
pub fn parse_via(via: &str, port: u16) -> Result<Target, Error> {
    let bad = |reason: String| Error::Via {
        via: via.to_owned(),
        reason,
    };
    let Some((user, address)) = via.rsplit_once('@') else {
        return Err(bad(
            "expected USER@ADDRESS, e.g. nixos@192.168.1.50 or root@vps.example.net".into(),
        ));
    };
    let user = UserName::new(user).map_err(|e| bad(e.to_string()))?;
    let address = Address::new(address).map_err(|e| bad(e.to_string()))?;
    if port == 0 {
        return Err(Error::Port);
    }
    Ok(Target {
        user: user.to_string(),
        address: address.to_string(),
        port,
        pinned: None,
    })
}

/// Everything adopt does to one host, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdoptPlan {
    /// The host's name in the inventory.
    pub host: String,
    /// The bootstrap login (`--via`), used up to and including the activation.
    pub bootstrap: Target,
    /// The inventory's deploy login, used for the confirmation and by every later `pifleet deploy`.
    pub fleet: Target,
    /// Whether the inventory already imports `hardware.nix` (`hardware_config = true`). Without
    /// it, adopt stops after fetching the file.
    pub hardware_config: bool,
    /// `ssh <bootstrap> nixos-generate-config --show-hardware-config`.
    pub fetch: CommandSpec,
    /// Preflight, build, copy, arming, activation and going back through the bootstrap login; the
    /// confirmation, disarm and commit as the fleet's deploy user.
    pub deploy: HostPlan,
    /// The nixos-rebuild action.
    pub action: Action,
}

impl AdoptPlan {
    /// The plan for adopting `name` (in `fleet`) through `bootstrap`. `options.action` must be
    /// switch, boot or test.
    pub fn new(
        fleet: &Fleet,
        name: &HostName,
        bootstrap: &Target,
        options: &Options,
    ) -> Result<Self, Error> {
        if options.action == Action::DryActivate {
            return Err(Error::Action(options.action));
        }
        let via_fleet = Plan::deploy(fleet, std::slice::from_ref(name), options)?;
        let as_fleet = only(via_fleet);
        let mut reached = fleet.clone();
        if let Some(host) = reached.hosts.get_mut(name) {
            let invalid = |what: &str, value: &str| Error::Via {
                via: bootstrap.destination(),
                reason: format!("`{value}` is not a valid {what}"),
            };
            host.deploy.user = UserName::new(&bootstrap.user)
                .map_err(|_| invalid("user name", &bootstrap.user))?;
            host.address = Address::new(&bootstrap.address)
                .map_err(|_| invalid("address", &bootstrap.address))?;
            host.deploy.port = Some(Port::new(bootstrap.port).ok_or(Error::Port)?);
        }
        let via_bootstrap = Plan::deploy(&reached, std::slice::from_ref(name), options)?;
        let mut deploy = only(via_bootstrap);
        // Confirmed, disarmed and committed as the deploy user: that is the login every later
        // deploy needs, and the bootstrap login may be gone after the switch. Watching the activation
        // falls back to it too.
        deploy.confirm = as_fleet.confirm.clone();
        deploy.confirm_login = as_fleet.confirm_login.clone();
        deploy.disarm = as_fleet.disarm.clone();
        deploy.commit = as_fleet.commit.clone();
        deploy.probe_fallback = Some(as_fleet.probe.clone());
        let fetch = remote(&deploy.preflight, SHOW_HARDWARE_CONFIG);
        Ok(Self {
            host: name.to_string(),
            bootstrap: deploy.target.clone(),
            fleet: as_fleet.target,
            hardware_config: fleet.hosts.get(name).is_some_and(|h| h.hardware_config),
            fetch,
            deploy,
            action: options.action,
        })
    }
}

/// The single host of a one-host plan.
fn only(plan: Plan) -> HostPlan {
    plan.hosts
        .into_iter()
        .next()
        .unwrap_or_else(|| unreachable!("a plan for one host has one host"))
}

/// `preflight` (`ssh … <destination> true`) with another remote command.
fn remote(preflight: &CommandSpec, command: &str) -> CommandSpec {
    let mut spec = preflight.clone();
    spec.args.pop();
    spec.args.push(command.to_owned());
    spec
}

/// The `--dry-run` text.
impl fmt::Display for AdoptPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (b, t) = (&self.bootstrap, &self.fleet);
        writeln!(
            f,
            "plan: adopt {} ({}) through {}@{} port {}, then deploy as {}@{} port {}",
            self.host, self.deploy.system, b.user, b.address, b.port, t.user, t.address, t.port
        )?;
        writeln!(f)?;
        writeln!(f, "  1. preflight: {}", self.deploy.preflight)?;
        writeln!(
            f,
            "  2. fetch:     {} > hosts/{}/{HARDWARE_FILE}",
            self.fetch, self.host
        )?;
        if !self.hardware_config {
            writeln!(
                f,
                "  3. stop: hosts.{h} has no `hardware_config = true`, so its entry module would not import \
                 {HARDWARE_FILE}; add it to fleet.toml, run `pifleet gen`, then run adopt again",
                h = self.host
            )?;
            return Ok(());
        }
        writeln!(
            f,
            "  3. deploy through {}; confirm, disarm and commit as {}; watch the activation as either:",
            b.destination(),
            t.destination()
        )?;
        writeln!(f)?;
        write!(f, "{}", self.deploy)?;
        writeln!(f)?;
        writeln!(
            f,
            "then `pifleet deploy {}` goes in as {}@{} port {} (the inventory's deploy settings)",
            self.host, t.user, t.address, t.port
        )
    }
}

/// Whether each login works after the switch, by the inventory alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The bootstrap user.
    pub bootstrap_user: String,
    /// The fleet's deploy user.
    pub deploy_user: String,
    /// Why the bootstrap login is gone after the switch; `None` when it survives.
    pub bootstrap_lost: Option<String>,
    /// Why the deploy user could not log in after the switch; `None` when it can.
    pub deploy_blocked: Option<String>,
}

impl Transition {
    /// Safe when the bootstrap login survives (a failed confirmation can still roll back through
    /// it) or the deploy user can log in after the switch.
    pub fn is_safe(&self) -> bool {
        self.bootstrap_lost.is_none() || self.deploy_blocked.is_none()
    }

    /// The refusal, with its reason and how to fix it; `None` when safe.
    pub fn refusal(&self, host: &str) -> Option<String> {
        let (Some(lost), Some(blocked)) = (&self.bootstrap_lost, &self.deploy_blocked) else {
            return None;
        };
        let (b, d) = (&self.bootstrap_user, &self.deploy_user);
        let give = if d == "root" {
            "give root a key: add this workstation's public key to `ssh.root_keys` (with \
             `permit_root_login = \"prohibit-password\"`)"
                .to_owned()
        } else {
            format!(
                "give `{d}` a key this workstation holds (`users.{d}.ssh_keys`), list it in \
                 hosts.{host}.users and let sshd admit it (`allow_users`, `deny_users`)"
            )
        };
        let keep = if b == "root" {
            "keep root's login (`ssh.root_keys`, `permit_root_login = \"prohibit-password\"`)"
                .to_owned()
        } else {
            format!("keep `{b}` (define users.{b} with its key and list it in hosts.{host}.users)")
        };
        Some(format!(
            "refusing to adopt `{host}`: after the switch nobody could log in to deploy it.\n  \
             - the bootstrap login `{b}` goes away: {lost}\n  \
             - the fleet's deploy user `{d}` could not log in: {blocked}\n\
             fix: {give}; or {keep}. Then run `pifleet gen` and adopt again"
        ))
    }
}

/// One line per login for the output: who gets in after the switch.
impl fmt::Display for Transition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (b, d) = (&self.bootstrap_user, &self.deploy_user);
        if b == d {
            return match (&self.bootstrap_lost, &self.deploy_blocked) {
                (None, None) => write!(
                    f,
                    "after the switch: `{b}` (bootstrap and deploy user) can log in"
                ),
                (Some(why), _) | (None, Some(why)) => {
                    write!(
                        f,
                        "after the switch: `{b}` (bootstrap and deploy user) cannot log in: {why}"
                    )
                }
            };
        }
        match &self.bootstrap_lost {
            None => writeln!(
                f,
                "after the switch: the bootstrap user `{b}` can still log in"
            )?,
            Some(why) if self.deploy_blocked.is_none() => writeln!(
                f,
                "after the switch: the bootstrap user `{b}` cannot log in: {why} \
                 (so a failed confirmation cannot be rolled back through `{b}` either)"
            )?,
            Some(why) => writeln!(
                f,
                "after the switch: the bootstrap user `{b}` cannot log in: {why}"
            )?,
        }
        match &self.deploy_blocked {
            None => write!(f, "after the switch: the deploy user `{d}` can log in"),
            Some(why) => write!(
                f,
                "after the switch: the deploy user `{d}` cannot log in: {why}"
            ),
        }
    }
}

/// The lockout analysis across the switch from the machine's current system to the inventory's.
///
/// The inventory has passed `check` (adopt refuses one with errors), so the deploy user can log in
/// to a host whose account already exists; here the question is the switch itself. Who can log in
/// is the host view's answer ([`model::HostView::key_login`]); passwords never count, because
/// deploy runs with `BatchMode=yes`.
pub fn transition(view: &HostView<'_>, bootstrap_user: &str) -> Transition {
    let deploy_user = view.deploy.user.as_str();
    // The bootstrap account exists on the machine now, so keys in its home directory may count.
    let bootstrap_lost = first_block(view, bootstrap_user, true);
    let deploy_blocked = if deploy_user == bootstrap_user {
        bootstrap_lost.clone()
    } else {
        // A fresh account on this machine: only keys the inventory installs can let it in.
        first_block(view, deploy_user, false)
    };
    Transition {
        bootstrap_user: bootstrap_user.to_owned(),
        deploy_user: deploy_user.to_owned(),
        bootstrap_lost,
        deploy_blocked,
    }
}

/// Why `user` cannot log in with a key after the switch (the first reason), or `None` when it can.
fn first_block(view: &HostView<'_>, user: &str, account_exists_now: bool) -> Option<String> {
    let blocks = view.key_login(user, account_exists_now).err()?;
    blocks.first().map(|block| match block {
        LoginBlock::NoAccount => format!(
            "`{user}` is not in hosts.{}.users: the new system declares its users only \
             (users.mutableUsers = false), so the switch deletes the account",
            view.name
        ),
        LoginBlock::NoKey { homedir_read } => {
            let what = if user == "root" {
                "root gets no SSH key: `ssh.root_keys` is empty".to_owned()
            } else {
                format!("`users.{user}.ssh_keys` is empty")
            };
            if *homedir_read {
                format!(
                    "{what} (keys in its ~/.ssh are read, but pifleet cannot know there are any)"
                )
            } else {
                format!(
                    "{what} and keys in ~/.ssh are not read (`authorized_keys_in_homedir = false`)"
                )
            }
        }
        LoginBlock::NotAllowed { allow_users, .. } => format!(
            "sshd's AllowUsers ({}) does not list `{user}`",
            allow_users.join(", ")
        ),
        LoginBlock::Denied => format!("`deny_users` lists `{user}`"),
        other => other.to_string(),
    })
}

/// Why a fetched hardware configuration is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HardwareError {
    /// The command printed nothing.
    #[error("`{SHOW_HARDWARE_CONFIG}` printed nothing")]
    Empty,
    /// The output is not valid Nix.
    #[error(
        "`{SHOW_HARDWARE_CONFIG}` printed something that is not valid Nix: line {line}, column {column}: {message}"
    )]
    Syntax {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// rnix's message.
        message: String,
    },
}

/// Checks that `module` parses as Nix, reporting rnix's first error with its line and column.
pub fn check_nix(module: &str) -> Result<(), HardwareError> {
    if module.trim().is_empty() {
        return Err(HardwareError::Empty);
    }
    let parsed = rnix::Root::parse(module);
    let Some(err) = parsed.errors().first() else {
        return Ok(());
    };
    let offset = match err {
        rnix::ParseError::Unexpected(range)
        | rnix::ParseError::UnexpectedExtra(range)
        | rnix::ParseError::UnexpectedWanted(_, range, _)
        | rnix::ParseError::UnexpectedDoubleBind(range)
        | rnix::ParseError::DuplicatedArgs(range, _) => usize::from(range.start()),
        _ => module.len(),
    };
    let before = &module[..offset.min(module.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Err(HardwareError::Syntax {
        line,
        column,
        message: err.to_string(),
    })
}

/// The text of `hosts/<host>/hardware.nix`: a comment saying where and when it was fetched and
/// that it is hand-maintained from now on (it is not a generated file: `gen` never touches it),
/// then the module as the machine printed it.
pub fn hardware_file(module: &str, from: &Target, date: &str) -> Result<String, HardwareError> {
    check_nix(module)?;
    let mut text = format!(
        "# Hardware configuration fetched by `pifleet adopt` from {} on {date}\n\
         # (`{SHOW_HARDWARE_CONFIG}`). Hand-maintained from now on: pifleet never\n\
         # rewrites it (`pifleet adopt --force` fetches it again).\n",
        from.destination()
    );
    text.push_str(module);
    if !module.ends_with('\n') {
        text.push('\n');
    }
    Ok(text)
}

/// The part of a `hardware.nix` below adopt's comment header, for telling whether a fetch changed
/// anything.
pub fn hardware_body(text: &str) -> &str {
    match text.strip_prefix("# Hardware configuration fetched by `pifleet adopt`") {
        Some(_) => {
            let mut rest = text;
            for _ in 0..3 {
                rest = rest.split_once('\n').map_or("", |(_, r)| r);
            }
            rest
        }
        None => text,
    }
}

/// Today's UTC date, `2026-11-21`.
pub fn utc_date(time: SystemTime) -> String {
    jiff::Timestamp::try_from(time)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .strftime("%Y-%m-%d")
        .to_string()
}

/// What [`save_hardware`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saved {
    /// The file already held the same module (its header's date aside).
    Unchanged,
    /// The file was written.
    Written,
}

/// Why [`save_hardware`] wrote nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SaveError {
    /// A different, hand-maintained module is there and `force` was not given.
    #[error(
        "{} exists and differs from what the machine prints now: it is hand-maintained, so adopt \
         does not replace it; compare them, or pass --force to replace it",
        path.display()
    )]
    Differs {
        /// The file.
        path: std::path::PathBuf,
    },
    /// Reading or writing failed.
    #[error("cannot {what} {}", path.display())]
    Io {
        /// "read", "create" or "write".
        what: &'static str,
        /// The file or directory.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Writes the fetched hardware configuration `text` to `path` atomically (a temporary file in the
/// same directory, synced, then renamed), unless a different module is already there and `force`
/// is not given. The date in the header alone is no difference.
pub fn save_hardware(path: &std::path::Path, text: &str, force: bool) -> Result<Saved, SaveError> {
    use std::io::Write as _;
    let io = |what, path: &std::path::Path| {
        let path = path.to_owned();
        move |source| SaveError::Io { what, path, source }
    };
    match std::fs::read_to_string(path) {
        Ok(old) if hardware_body(&old) == hardware_body(text) => return Ok(Saved::Unchanged),
        Ok(_) if !force => {
            return Err(SaveError::Differs {
                path: path.to_owned(),
            });
        }
        Ok(_) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(io("read", path)(err)),
    }
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir).map_err(io("create", dir))?;
    let tmp = dir.join(format!(".{HARDWARE_FILE}.pifleet-{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    if let Err(err) = write() {
        let _ = std::fs::remove_file(&tmp);
        return Err(io("write", path)(err));
    }
    Ok(Saved::Written)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use std::time::Duration;

    use super::*;

    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIN/AROyqCRnG7LR8F2+d+V4hkfckmsMtRuC0uRqBKwjf admin@workstation";

    /// A fleet with `host` as given after the common part.
    fn fleet(ssh: &str, users: &str, host: &str) -> Fleet {
        let text = format!(
            "[fleet]\nstate_version = \"26.05\"\n\n[ssh]\n{ssh}\n\n{users}\n\n[hosts.pi]\nboard = \"rpi4\"\naddress = \"127.0.0.2\"\n{host}\n"
        );
        model::load_str(&text, "fleet.toml").unwrap().fleet
    }

    fn analyse(f: &Fleet, bootstrap: &str) -> Transition {
        transition(&f.view("pi").unwrap(), bootstrap)
    }

    fn deploy_user() -> String {
        format!("[users.deploy]\nssh_keys = [\"{KEY}\"]\nsudo = \"no-password\"")
    }

    #[test]
    fn removing_the_bootstrap_user_with_a_working_deploy_user_is_accepted() {
        let f = fleet(
            "",
            &deploy_user(),
            "users = [\"deploy\"]\ndeploy = { user = \"deploy\" }",
        );
        let t = analyse(&f, "nixos");
        assert!(
            t.bootstrap_lost
                .as_deref()
                .unwrap()
                .contains("`nixos` is not in hosts.pi.users")
        );
        assert_eq!(t.deploy_blocked, None);
        assert!(t.is_safe());
        assert_eq!(t.refusal("pi"), None);
    }

    #[test]
    fn removing_the_bootstrap_user_for_root_with_root_keys_is_accepted() {
        let f = fleet(&format!("root_keys = [\"{KEY}\"]"), "", "");
        let t = analyse(&f, "nixos");
        assert!(t.bootstrap_lost.is_some());
        assert_eq!(t.deploy_blocked, None);
        assert!(t.is_safe());
    }

    #[test]
    fn removing_the_bootstrap_user_without_a_deploy_key_is_refused() {
        // Root deploys, but root gets no key.
        let f = fleet("", "", "");
        let t = analyse(&f, "nixos");
        assert!(!t.is_safe());
        let refusal = t.refusal("pi").unwrap();
        assert!(refusal.contains("refusing to adopt `pi`"), "{refusal}");
        assert!(
            refusal.contains("`nixos` is not in hosts.pi.users"),
            "{refusal}"
        );
        assert!(refusal.contains("root gets no SSH key"), "{refusal}");
        assert!(refusal.contains("fix: give root a key"), "{refusal}");

        // A non-root deploy user without keys.
        let f = fleet(
            "",
            "[users.deploy]\nsudo = \"no-password\"",
            "users = [\"deploy\"]\ndeploy = { user = \"deploy\" }",
        );
        let t = analyse(&f, "nixos");
        assert!(!t.is_safe());
        assert!(
            t.deploy_blocked
                .as_deref()
                .unwrap()
                .contains("`users.deploy.ssh_keys` is empty"),
            "{t:?}"
        );
    }

    #[test]
    fn removing_the_bootstrap_user_when_the_deploy_user_is_not_allowed_is_refused() {
        let f = fleet(
            "allow_users = [\"alice\"]",
            &format!("{}\n[users.alice]\nssh_keys = [\"{KEY}\"]", deploy_user()),
            "users = [\"deploy\", \"alice\"]\ndeploy = { user = \"deploy\" }",
        );
        let t = analyse(&f, "nixos");
        assert!(!t.is_safe());
        assert!(
            t.deploy_blocked
                .as_deref()
                .unwrap()
                .contains("AllowUsers (alice) does not list `deploy`"),
            "{t:?}"
        );
        let f = fleet(
            "deny_users = [\"deploy\"]",
            &deploy_user(),
            "users = [\"deploy\"]\ndeploy = { user = \"deploy\" }",
        );
        let t = analyse(&f, "nixos");
        assert_eq!(
            t.deploy_blocked.as_deref(),
            Some("`deny_users` lists `deploy`")
        );
        assert!(!t.is_safe());
    }

    #[test]
    fn deploying_as_the_removed_user_is_refused() {
        // `nixos` is the deploy user but the host does not list it: the switch deletes the
        // account both logins need (`pifleet check` reports it too).
        let f = fleet(
            &format!("root_keys = [\"{KEY}\"]"),
            &format!("[users.nixos]\nssh_keys = [\"{KEY}\"]\nsudo = \"no-password\""),
            "deploy = { user = \"nixos\" }",
        );
        let t = analyse(&f, "nixos");
        assert!(!t.is_safe());
        assert_eq!(t.bootstrap_lost, t.deploy_blocked);
        assert!(
            t.to_string()
                .contains("`nixos` (bootstrap and deploy user) cannot log in")
        );
    }

    #[test]
    fn keeping_the_bootstrap_user_is_accepted() {
        // `nixos` stays with its key; root (the deploy user) has none, yet a rollback through
        // `nixos` stays possible.
        let f = fleet(
            "",
            &format!("[users.nixos]\nssh_keys = [\"{KEY}\"]\nsudo = \"no-password\""),
            "users = [\"nixos\"]",
        );
        let t = analyse(&f, "nixos");
        assert_eq!(t.bootstrap_lost, None);
        assert!(t.deploy_blocked.is_some());
        assert!(t.is_safe());
    }

    #[test]
    fn root_bootstrap() {
        // Root with `permit_root_login = "no"` loses its login; the deploy user must work.
        let f = fleet(
            "permit_root_login = \"no\"",
            &deploy_user(),
            "users = [\"deploy\"]\ndeploy = { user = \"deploy\" }",
        );
        let t = analyse(&f, "root");
        assert_eq!(
            t.bootstrap_lost.as_deref(),
            Some("`permit_root_login = \"no\"`")
        );
        assert!(t.is_safe());
        // Keys in ~/.ssh survive when the policy reads them.
        let f = fleet("authorized_keys_in_homedir = true", "", "");
        let t = analyse(&f, "root");
        assert_eq!(t.bootstrap_lost, None);
        assert!(t.is_safe());
    }

    #[test]
    fn via() {
        let t = parse_via("nixos@127.0.0.2", 2222).unwrap();
        assert_eq!(t.destination(), "nixos@127.0.0.2");
        assert_eq!(t.port, 2222);
        assert!(t.needs_sudo());
        for bad in [
            "127.0.0.2",
            "Nixos@127.0.0.2",
            "nixos@-oProxyCommand=x",
            "@h",
            "u@",
        ] {
            assert!(parse_via(bad, 22).is_err(), "{bad}");
        }
        assert_eq!(parse_via("root@h", 0), Err(Error::Port));
    }

    #[test]
    fn hardware_files() {
        let target = parse_via("nixos@127.0.0.2", 22).unwrap();
        let module = "{ config, lib, ... }:\n{\n  fileSystems.\"/\" = { device = \"/dev/sda1\"; fsType = \"ext4\"; };\n}\n";
        let text = hardware_file(module, &target, "2026-11-21").unwrap();
        assert!(text.starts_with(
            "# Hardware configuration fetched by `pifleet adopt` from nixos@127.0.0.2 on 2026-11-21\n"
        ));
        assert!(text.ends_with(module));
        assert_eq!(hardware_body(&text), module);
        assert_eq!(hardware_body(module), module);
        assert!(rnix::Root::parse(&text).errors().is_empty());
        assert_eq!(
            hardware_file("  \n", &target, "d"),
            Err(HardwareError::Empty)
        );
        let err = hardware_file("{\n  a = ;\n}\n", &target, "d").unwrap_err();
        assert!(
            matches!(err, HardwareError::Syntax { line: 2, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn date() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_262_779);
        assert_eq!(utc_date(t), "2026-11-21");
        assert_eq!(utc_date(SystemTime::UNIX_EPOCH), "1970-01-01");
    }
}
