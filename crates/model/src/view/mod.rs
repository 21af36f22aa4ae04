//! The resolved host view: one host as it will run, computed once from the inventory.
//!
//! The inventory says things once, at the level where they apply (fleet-wide SSH policy, users
//! defined once and listed per host, containers placed by tag). Every consumer needs the other
//! question: "what does *this host* get?" The renderer writes it, `check`'s lockout analysis and
//! security lints judge it, `adopt` reasons about the switch with it, and `keys inject` takes the
//! deploy user's keys from it. Computing it here, once, keeps them from disagreeing: each fact has
//! one owner, and nothing downstream re-derives policy.
//!
//! Build views with [`Fleet::view`] or [`Fleet::views`]. A view borrows the inventory; it does not
//! validate it (that is `check`'s job): references to undefined users are left out of
//! [`HostView::accounts`] and listed in [`HostView::unknown_users`].

mod keyring;
mod login;
mod ssh;

use std::borrow::Cow;
use std::collections::BTreeSet;

pub use crate::sshd::SettingValue;
pub use keyring::{Holder, KeyOf, Keyring, Recipients, SECRETS_DIR, Sealed};
pub use login::{KeyLogin, LoginBlock};
pub use ssh::{ExtraSetting, Origin, SshField, SshView};

use crate::names::{
    Address, CacheKey, ContainerName, HostName, Keymap, PackageName, Protocol, Route, SecretName,
    SshPublicKey, StateVersion, Substituter, TailscaleTag, UserName,
};
use crate::types::{
    AutoUpgrade, Board, BootLoader, BuildOn, Container, ContainerBackend, Fail2ban, Fleet,
    GarbageCollection, HealthCheck, Host, Sudo, User,
};

/// The interface tailscaled creates (`services.tailscale.interfaceName`'s default).
pub const TAILSCALE_INTERFACE: &str = "tailscale0";
/// The UDP port tailscaled listens on for direct (peer-to-peer) connections.
pub const TAILSCALE_PORT: u16 = 41641;
/// mDNS: avahi answers on UDP 5353.
pub const MDNS_PORT: u16 = 5353;

/// Whether `address` is a Tailscale address: the CGNAT range 100.64.0.0/10 Tailscale assigns from,
/// or its IPv6 prefix fd7a:115c:a1e0::/48. Deploy reaching such an address goes through the tailnet.
pub fn is_tailnet_address(address: &str) -> bool {
    match address.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(v4)) => {
            let [a, b, ..] = v4.octets();
            a == 100 && (64..128).contains(&b)
        }
        Ok(std::net::IpAddr::V6(v6)) => {
            let s = v6.segments();
            s[0] == 0xfd7a && s[1] == 0x115c && s[2] == 0xa1e0
        }
        Err(_) => false,
    }
}

/// Where a host's container was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerOrigin {
    /// In `hosts.<name>.containers`.
    Host,
    /// In the top-level `containers`, placed on this host.
    Fleet,
}

/// A container as it runs on one host.
#[derive(Debug, Clone, PartialEq)]
pub struct HostContainer<'a> {
    /// Its name.
    pub name: &'a ContainerName,
    /// Its settings (a fleet container without its placement).
    pub container: Cow<'a, Container>,
    /// Where it was written.
    pub origin: ContainerOrigin,
}

/// What sudo gives an account. The generated module sets `security.sudo.wheelNeedsPassword =
/// true` and a NOPASSWD rule for `sudo = "no-password"` users, so wheel membership alone means
/// sudo with a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SudoRight {
    /// No sudo at all.
    None,
    /// sudo after typing the account's password.
    WithPassword,
    /// sudo without a password (`sudo = "no-password"`).
    NoPassword,
}

/// Whether an account has a password it could type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordState {
    /// No hash at all: the password is locked (NixOS's default for declared users).
    None,
    /// A hash that cannot match anything (`"!…"`, `"*"`): locked on purpose.
    Locked,
    /// `hashed_password = ""`: no password needed.
    Empty,
    /// A hash written into the inventory (world-readable in the Nix store).
    Inline,
    /// A hash in a file on the host (`hashed_password_file`).
    File,
    /// A hash in a secret, decrypted on the host (`hashed_password_secret`).
    Secret,
}

impl PasswordState {
    /// Whether the user can type a password that works (for sudo or a password login).
    pub fn can_type(self) -> bool {
        matches!(
            self,
            PasswordState::Inline | PasswordState::File | PasswordState::Secret
        )
    }
}

/// An account on the host from the inventory's `users`.
#[derive(Debug, Clone)]
pub struct Account<'a> {
    /// The user name.
    pub name: &'a UserName,
    /// Its definition.
    pub user: &'a User,
    /// What sudo gives it.
    pub sudo: SudoRight,
    /// Its password.
    pub password: PasswordState,
    /// `extraGroups` as written on the host: `wheel` first when the user has sudo, each group once.
    pub groups: Vec<&'a str>,
}

impl<'a> Account<'a> {
    fn new(name: &'a UserName, user: &'a User) -> Self {
        let in_wheel = user.groups.iter().any(|g| g == "wheel");
        let sudo = match user.sudo {
            Some(Sudo::NoPassword) => SudoRight::NoPassword,
            Some(Sudo::Password) => SudoRight::WithPassword,
            None if in_wheel => SudoRight::WithPassword,
            None => SudoRight::None,
        };
        let password = match (&user.hashed_password, &user.hashed_password_file) {
            _ if user.hashed_password_secret.is_some() => PasswordState::Secret,
            (_, Some(_)) => PasswordState::File,
            (Some(h), None) if h.is_empty() => PasswordState::Empty,
            (Some(h), None) if h.starts_with('!') || h.starts_with('*') => PasswordState::Locked,
            (Some(_), None) => PasswordState::Inline,
            (None, None) => PasswordState::None,
        };
        let mut groups: Vec<&str> = Vec::with_capacity(user.groups.len() + 1);
        if user.sudo.is_some() && !in_wheel {
            groups.push("wheel");
        }
        for g in &user.groups {
            if !groups.contains(&g.as_str()) {
                groups.push(g);
            }
        }
        Self {
            name,
            user,
            sudo,
            password,
            groups,
        }
    }

    /// The keys that may log in as this account.
    pub fn keys(&self) -> &'a [SshPublicKey] {
        &self.user.ssh_keys
    }
}

/// How deploy elevates to root on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Elevation {
    /// It logs in as root.
    Root,
    /// It logs in as another user and runs activation through sudo (`nixos-rebuild --sudo`).
    Sudo,
}

/// How pifleet reaches the host to deploy.
#[derive(Debug, Clone, Copy)]
pub struct DeployTarget<'a> {
    /// The SSH user.
    pub user: &'a UserName,
    /// The address or DNS name.
    pub address: &'a Address,
    /// The SSH port: `deploy.port`, else the port sshd listens on.
    pub port: u16,
    /// How it becomes root.
    pub elevation: Elevation,
    /// Where the system is built.
    pub build_on: BuildOn,
    /// Seconds the host waits for a confirmation after activation: `deploy.confirm_timeout`, else
    /// [`crate::DEFAULT_CONFIRM_TIMEOUT`].
    pub confirm_timeout: u32,
    /// The checks a confirmation runs on the host.
    pub health: &'a [HealthCheck],
    /// The boot loader: `deploy.boot_loader`, else the board's (extlinux on the aarch64 boards, grub on
    /// x86_64).
    pub boot_loader: BootLoader,
}

/// The host firewall after every source of open ports is merged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirewallView {
    /// `networking.firewall.enable`.
    pub enable: bool,
    /// `allowedTCPPorts`: the host's own list, published container ports with `open_firewall` (unless
    /// bound to loopback), and the node exporter with `open_firewall`. sshd's port is opened separately,
    /// by `services.openssh.openFirewall`.
    pub tcp: BTreeSet<u16>,
    /// `allowedUDPPorts`, from the same sources, plus mDNS (5353) when avahi runs and tailscaled's
    /// port (41641) when Tailscale runs.
    pub udp: BTreeSet<u16>,
    /// `trustedInterfaces`: the host's list, then `tailscale0` with `tailscale.trust_interface`; each once.
    pub trusted_interfaces: Vec<String>,
    /// `allowPing`, when the inventory sets it.
    pub allow_ping: Option<bool>,
}

impl FirewallView {
    /// Whether traffic arriving on `interface` is accepted on every port.
    pub fn trusts(&self, interface: &str) -> bool {
        !self.enable || self.trusted_interfaces.iter().any(|i| i == interface)
    }
}

/// Nix settings on the host.
#[derive(Debug, Clone)]
pub struct NixView<'a> {
    /// The `nix-command` and `flakes` features are on.
    pub flakes: bool,
    /// `nix.settings.trusted-users`: root, the deploy user, then the fleet's extras, each once.
    pub trusted_users: Vec<&'a str>,
    /// Garbage collection.
    pub gc: &'a GarbageCollection,
    /// `nix.optimise.automatic`.
    pub optimise: bool,
    /// Extra binary caches.
    pub substituters: &'a [Substituter],
    /// Their keys.
    pub trusted_public_keys: &'a [CacheKey],
}

/// What `services.tailscale.useRoutingFeatures` must be: forwarding for a router, loose reverse-path
/// filtering for a client of other routers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoutingFeatures {
    /// Neither (NixOS's default, left unset).
    None,
    /// Accepts routes (`--accept-routes`): loose reverse-path filtering.
    Client,
    /// Advertises routes or an exit node: IP forwarding.
    Server,
    /// Both.
    Both,
}

impl RoutingFeatures {
    /// The option's value, or `None` for the default.
    pub fn as_option(self) -> Option<&'static str> {
        match self {
            RoutingFeatures::None => None,
            RoutingFeatures::Client => Some("client"),
            RoutingFeatures::Server => Some("server"),
            RoutingFeatures::Both => Some("both"),
        }
    }
}

/// Tailscale on the host, when it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailscaleView<'a> {
    /// The secret holding the auth key, when there is one.
    pub auth_key_secret: Option<&'a SecretName>,
    /// Subnets advertised.
    pub advertise_routes: &'a [Route],
    /// Offered as an exit node.
    pub exit_node: bool,
    /// Uses others' routes.
    pub accept_routes: bool,
    /// `tailscale0` is a trusted firewall interface.
    pub trust_interface: bool,
    /// `useRoutingFeatures`.
    pub routing: RoutingFeatures,
    /// ACL tags asked for at login.
    pub advertise_tags: &'a [TailscaleTag],
    /// Tailscale SSH on (`Some(true)`), off (`Some(false)`), or as the node has it (`None`).
    pub ssh: Option<bool>,
    /// The tailnet's DNS settings accepted, refused, or Tailscale's default (`None`).
    pub accept_dns: Option<bool>,
}

impl TailscaleView<'_> {
    /// The `tailscale up` flags of the first login (`extraUpFlags`): the [`set_flags`], then the
    /// tags, which `tailscale set` does not take (a node's tags change only with a new login).
    ///
    /// [`set_flags`]: TailscaleView::set_flags
    pub fn up_flags(&self) -> Vec<String> {
        let mut out = self.set_flags();
        if !self.advertise_tags.is_empty() {
            let tags: Vec<&str> = self.advertise_tags.iter().map(|t| t.as_str()).collect();
            out.push(format!("--advertise-tags={}", tags.join(",")));
        }
        out
    }

    /// The `tailscale set` flags the inventory implies, in a fixed order (`extraSetFlags`, applied
    /// at every activation). Each is a flag `tailscale up` takes too.
    pub fn set_flags(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.advertise_routes.is_empty() {
            let routes: Vec<String> = self
                .advertise_routes
                .iter()
                .map(ToString::to_string)
                .collect();
            out.push(format!("--advertise-routes={}", routes.join(",")));
        }
        if self.exit_node {
            out.push("--advertise-exit-node".to_owned());
        }
        if self.accept_routes {
            out.push("--accept-routes".to_owned());
        }
        match self.ssh {
            Some(true) => out.push("--ssh".to_owned()),
            Some(false) => out.push("--ssh=false".to_owned()),
            None => {}
        }
        if let Some(accept) = self.accept_dns {
            out.push(format!("--accept-dns={accept}"));
        }
        out
    }
}

/// Pull-mode upgrades, when enabled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoUpgradeView<'a> {
    /// The inventory's settings.
    pub settings: &'a AutoUpgrade,
    /// `system.autoUpgrade.flake`: the reference with `#<this host>` (the written attribute when it
    /// names another configuration, which `check` refuses).
    pub flake: String,
    /// The configuration the reference builds, when it is not this host.
    pub other_host: Option<&'a str>,
}

/// Why a host reads a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretPurpose<'a> {
    /// The Wi-Fi passphrase (`wifi.psk_secret`).
    WifiPassphrase,
    /// `KEY=value` lines for a container's environment (`environment_secrets`).
    ContainerEnvironment(&'a ContainerName),
    /// A user's password hash (`hashed_password_secret`).
    PasswordHash(&'a UserName),
    /// The Tailscale auth key (`tailscale.auth_key_secret`).
    TailscaleAuthKey,
}

/// A secret a host decrypts during activation (agenix, with the host's SSH key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretUse<'a> {
    /// The secret, `secrets/<name>.age`.
    pub name: &'a SecretName,
    /// What it is for.
    pub purpose: SecretPurpose<'a>,
}

/// How a decrypted secret's file is owned on the host (`age.secrets.<name>.{owner,group,mode}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecretFile<'a> {
    /// The secret.
    pub name: &'a SecretName,
    /// The owning user: `wpa_supplicant` for a passphrase wpa_supplicant reads itself (it runs as its own
    /// user since NixOS 26.05), else root.
    pub owner: &'static str,
    /// The owning group.
    pub group: &'static str,
    /// Always `0400`: only the owner reads it.
    pub mode: &'static str,
}

/// One host as it will run. See the module documentation.
#[derive(Debug, Clone)]
pub struct HostView<'a> {
    /// The host's name.
    pub name: &'a HostName,
    /// Its inventory entry, for facts the view does not resolve (board, packages, network, …).
    pub host: &'a Host,
    /// `system.stateVersion`.
    pub state_version: &'a StateVersion,
    /// `time.timeZone`.
    pub time_zone: &'a str,
    /// `i18n.defaultLocale`.
    pub locale: &'a str,
    /// Built by cross-compiling from x86_64 (only aarch64 hosts can be).
    pub cross_compile: bool,
    /// The SSH server.
    pub ssh: SshView<'a>,
    /// The inventory's accounts on this host, in the order the host lists them.
    pub accounts: Vec<Account<'a>>,
    /// Users the host lists that `users` does not define (`check` reports them; render refuses).
    pub unknown_users: Vec<&'a UserName>,
    /// How deploy reaches it.
    pub deploy: DeployTarget<'a>,
    /// The firewall.
    pub firewall: FirewallView,
    /// Its containers: its own, then fleet containers placed on it (a host's own wins a name clash).
    pub containers: Vec<HostContainer<'a>>,
    /// Nix settings.
    pub nix: NixView<'a>,
    /// The host's recorded SSH host key (`host_key`): deploy pins it, secrets are encrypted to it.
    pub host_key: Option<&'a SshPublicKey>,
    /// The secrets the host decrypts, in the order the inventory names them (a secret may appear
    /// more than once, for several purposes).
    pub secrets: Vec<SecretUse<'a>>,
    /// `console.keyMap`, when the host or the fleet sets one.
    pub keymap: Option<&'a Keymap>,
    /// Unfree packages the host may install (`fleet.allow_unfree`).
    pub allow_unfree: &'a [PackageName],
    /// The container engine: the host's override, else the fleet's.
    pub container_backend: ContainerBackend,
    /// Tailscale, when enabled.
    pub tailscale: Option<TailscaleView<'a>>,
    /// avahi answers mDNS.
    pub mdns: bool,
    /// fail2ban's settings, when it runs.
    pub fail2ban: Option<&'a Fail2ban>,
    /// Pull-mode upgrades, when enabled.
    pub auto_upgrade: Option<AutoUpgradeView<'a>>,
}

impl<'a> HostView<'a> {
    /// The view of `host`, named `name`, in `fleet`.
    pub fn new(fleet: &'a Fleet, name: &'a HostName, host: &'a Host) -> Self {
        let ssh = SshView::new(fleet, host);
        let mut accounts = Vec::with_capacity(host.users.len());
        let mut unknown_users = Vec::new();
        for user_name in &host.users {
            match fleet.users.get_key_value(user_name) {
                Some((name, user)) if !user_name.is_root() => {
                    if !accounts.iter().any(|a: &Account<'_>| a.name == name) {
                        accounts.push(Account::new(name, user));
                    }
                }
                _ => unknown_users.push(user_name),
            }
        }
        let deploy = DeployTarget {
            user: &host.deploy.user,
            address: &host.address,
            port: host.deploy.port.unwrap_or(ssh.port).get(),
            elevation: if host.deploy.user.is_root() {
                Elevation::Root
            } else {
                Elevation::Sudo
            },
            build_on: host.deploy.build_on,
            confirm_timeout: host
                .deploy
                .confirm_timeout
                .unwrap_or(crate::DEFAULT_CONFIRM_TIMEOUT),
            health: &host.deploy.health,
            boot_loader: host.deploy.boot_loader.unwrap_or(match host.board {
                Board::X86_64 => BootLoader::Grub,
                _ => BootLoader::Extlinux,
            }),
        };
        let containers = fleet.placed_containers(name, host);
        let tailscale = host.tailscale.as_ref().filter(|t| t.enable).map(|t| {
            let server = !t.advertise_routes.is_empty() || t.exit_node;
            TailscaleView {
                auth_key_secret: t.auth_key_secret.as_ref(),
                advertise_routes: &t.advertise_routes,
                exit_node: t.exit_node,
                accept_routes: t.accept_routes,
                trust_interface: t.trust_interface,
                routing: match (server, t.accept_routes) {
                    (true, true) => RoutingFeatures::Both,
                    (true, false) => RoutingFeatures::Server,
                    (false, true) => RoutingFeatures::Client,
                    (false, false) => RoutingFeatures::None,
                },
                advertise_tags: &t.advertise_tags,
                ssh: t.ssh,
                accept_dns: t.accept_dns,
            }
        });
        let mdns = host.mdns.as_ref().is_some_and(|m| m.enable);
        let firewall = firewall_of(host, &containers, tailscale.as_ref(), mdns);
        let auto_upgrade = host
            .auto_upgrade
            .as_ref()
            .filter(|u| u.enable)
            .map(|settings| {
                let other_host = settings.flake.attribute().filter(|a| *a != name.as_str());
                AutoUpgradeView {
                    settings,
                    flake: format!(
                        "{}#{}",
                        settings.flake.url(),
                        other_host.unwrap_or(name.as_str())
                    ),
                    other_host,
                }
            });
        let settings = &fleet.fleet.nix;
        let mut trusted_users: Vec<&str> = vec!["root"];
        if !host.deploy.user.is_root() {
            trusted_users.push(host.deploy.user.as_str());
        }
        for user in &settings.trusted_users {
            if !trusted_users.contains(&user.as_str()) {
                trusted_users.push(user);
            }
        }
        let secrets = secrets_of(fleet, host, &accounts, &containers);
        Self {
            name,
            host,
            host_key: host.host_key.as_ref(),
            secrets,
            state_version: host
                .state_version
                .as_ref()
                .unwrap_or(&fleet.fleet.state_version),
            time_zone: host.time_zone.as_deref().unwrap_or(&fleet.fleet.time_zone),
            locale: &fleet.fleet.locale,
            cross_compile: host.board.system() == "aarch64-linux"
                && host.cross_compile.unwrap_or(fleet.fleet.cross_compile),
            ssh,
            accounts,
            unknown_users,
            deploy,
            firewall,
            containers,
            nix: NixView {
                flakes: settings.flakes,
                trusted_users,
                gc: &settings.gc,
                optimise: settings.optimise,
                substituters: &settings.substituters,
                trusted_public_keys: &settings.trusted_public_keys,
            },
            keymap: host.keymap.as_ref().or(fleet.fleet.keymap.as_ref()),
            allow_unfree: &fleet.fleet.allow_unfree,
            container_backend: host
                .container_backend
                .unwrap_or(fleet.fleet.container_backend),
            tailscale,
            mdns,
            fail2ban: host.fail2ban.as_ref().filter(|f| f.enable),
            auto_upgrade,
        }
    }

    /// The account `name` on this host, if the inventory creates it.
    pub fn account(&self, name: &str) -> Option<&Account<'a>> {
        self.accounts.iter().find(|a| a.name.as_str() == name)
    }

    /// The deploy user's account, when it is a non-root user the inventory creates on this host.
    pub fn deploy_account(&self) -> Option<&Account<'a>> {
        if self.deploy.user.is_root() {
            return None;
        }
        self.account(self.deploy.user.as_str())
    }

    /// The secret files the host decrypts, one per secret, with their owner: a secret that
    /// wpa_supplicant reads belongs to `wpa_supplicant` (root reads it all the same).
    pub fn secret_files(&self) -> Vec<SecretFile<'a>> {
        let mut out: Vec<SecretFile<'a>> = Vec::new();
        for used in &self.secrets {
            let wpa = used.purpose == SecretPurpose::WifiPassphrase
                && self.host.network.manager == crate::types::NetworkManagerKind::Networkd;
            let (owner, group) = if wpa {
                ("wpa_supplicant", "wpa_supplicant")
            } else {
                ("root", "root")
            };
            match out.iter_mut().find(|f| f.name == used.name) {
                Some(file) if owner != "root" => {
                    file.owner = owner;
                    file.group = group;
                }
                Some(_) => {}
                None => out.push(SecretFile {
                    name: used.name,
                    owner,
                    group,
                    mode: "0400",
                }),
            }
        }
        out
    }

    /// Whether deploy reaches the host through its tailnet: the deploy address is a Tailscale
    /// address (100.64.0.0/10, fd7a:115c:a1e0::/48).
    pub fn deploy_via_tailnet(&self) -> bool {
        is_tailnet_address(self.deploy.address.as_str())
    }

    /// Whether sshd's port gets through the host firewall on the way deploy comes: open to the
    /// network, or, for a deploy over the tailnet, `tailscale0` trusted.
    pub fn ssh_port_open(&self) -> bool {
        !self.firewall.enable
            || self.ssh.open_firewall
            || self.firewall.tcp.contains(&self.ssh.port.get())
            || (self.deploy_via_tailnet()
                && self.tailscale.is_some()
                && self.firewall.trusts(TAILSCALE_INTERFACE))
    }
}

/// The secrets `host` reads: the Wi-Fi passphrase, its users' password hashes, its containers'
/// environments, the Tailscale auth key.
fn secrets_of<'a>(
    fleet: &'a Fleet,
    host: &'a Host,
    accounts: &[Account<'a>],
    containers: &[HostContainer<'a>],
) -> Vec<SecretUse<'a>> {
    let mut out = Vec::new();
    if let Some(name) = host.wifi.as_ref().and_then(|w| w.psk_secret.as_ref()) {
        out.push(SecretUse {
            name,
            purpose: SecretPurpose::WifiPassphrase,
        });
    }
    for account in accounts {
        if let Some(name) = &account.user.hashed_password_secret {
            out.push(SecretUse {
                name,
                purpose: SecretPurpose::PasswordHash(account.name),
            });
        }
    }
    for c in containers {
        // A fleet container's settings are owned by the view (`Cow::Owned`); its names live in the
        // fleet table, which outlives the view.
        let names: &'a [SecretName] = match &c.container {
            std::borrow::Cow::Borrowed(own) => &own.environment_secrets,
            std::borrow::Cow::Owned(_) => fleet
                .containers
                .get(c.name)
                .map_or(&[][..], |fc| &fc.environment_secrets),
        };
        for name in names {
            out.push(SecretUse {
                name,
                purpose: SecretPurpose::ContainerEnvironment(c.name),
            });
        }
    }
    if let Some(name) = host
        .tailscale
        .as_ref()
        .filter(|t| t.enable)
        .and_then(|t| t.auth_key_secret.as_ref())
    {
        out.push(SecretUse {
            name,
            purpose: SecretPurpose::TailscaleAuthKey,
        });
    }
    out
}

/// The firewall of `host` with the ports its containers, exporters and services open, and the
/// interfaces it trusts.
fn firewall_of(
    host: &Host,
    containers: &[HostContainer<'_>],
    tailscale: Option<&TailscaleView<'_>>,
    mdns: bool,
) -> FirewallView {
    let mut tcp: BTreeSet<u16> = host
        .firewall
        .allowed_tcp_ports
        .iter()
        .map(|p| p.get())
        .collect();
    let mut udp: BTreeSet<u16> = host
        .firewall
        .allowed_udp_ports
        .iter()
        .map(|p| p.get())
        .collect();
    for c in containers.iter().filter(|c| c.container.open_firewall) {
        // A port bound to loopback is not reachable from outside whatever the firewall says.
        for port in c
            .container
            .ports
            .iter()
            .filter(|p| !p.host_ip.is_some_and(|ip| ip.is_loopback()))
        {
            match port.protocol {
                Protocol::Tcp => tcp.insert(port.host_port),
                Protocol::Udp => udp.insert(port.host_port),
            };
        }
    }
    if host.monitoring.node_exporter && host.monitoring.open_firewall {
        tcp.insert(host.monitoring.node_exporter_port.get());
    }
    if mdns {
        udp.insert(MDNS_PORT);
    }
    let mut trusted_interfaces: Vec<String> = Vec::new();
    for interface in &host.firewall.trusted_interfaces {
        if !trusted_interfaces.contains(interface) {
            trusted_interfaces.push(interface.clone());
        }
    }
    if let Some(ts) = tailscale {
        // Direct connections between peers; without it tailscale falls back to relays.
        udp.insert(TAILSCALE_PORT);
        if ts.trust_interface && !trusted_interfaces.iter().any(|i| i == TAILSCALE_INTERFACE) {
            trusted_interfaces.push(TAILSCALE_INTERFACE.to_owned());
        }
    }
    FirewallView {
        enable: host.firewall.enable,
        tcp,
        udp,
        trusted_interfaces,
        allow_ping: host.firewall.allow_ping,
    }
}

impl Fleet {
    /// The view of the host `name`, if it exists.
    pub fn view<'a>(&'a self, name: &str) -> Option<HostView<'a>> {
        let (name, host) = self.hosts.get_key_value(name)?;
        Some(HostView::new(self, name, host))
    }

    /// The view of every host, in name order.
    pub fn views(&self) -> impl Iterator<Item = HostView<'_>> + '_ {
        self.hosts
            .iter()
            .map(move |(name, host)| HostView::new(self, name, host))
    }

    /// Whether the fleet container `name` is placed on host `host_name`.
    pub fn is_placed_on(&self, name: &ContainerName, host_name: &HostName, host: &Host) -> bool {
        self.containers.get(name).is_some_and(|c| {
            c.placement.hosts.contains(host_name)
                || c.placement.tags.iter().any(|t| host.tags.contains(t))
        })
    }

    /// The hosts the fleet container `name` runs on.
    pub fn hosts_running<'a>(&'a self, name: &str) -> Vec<&'a HostName> {
        let Some((container_name, _)) = self.containers.get_key_value(name) else {
            return Vec::new();
        };
        self.hosts
            .iter()
            .filter(|(h, host)| self.is_placed_on(container_name, h, host))
            .map(|(h, _)| h)
            .collect()
    }

    /// The containers of `host`: its own by name, then the fleet containers placed on it by name.
    /// When a host defines a container with the name of a placed fleet container, the host's own
    /// wins (`pifleet check` reports the clash).
    fn placed_containers<'a>(&'a self, name: &HostName, host: &'a Host) -> Vec<HostContainer<'a>> {
        let mut out: Vec<HostContainer<'a>> = host
            .containers
            .iter()
            .map(|(name, c)| HostContainer {
                name,
                container: Cow::Borrowed(c),
                origin: ContainerOrigin::Host,
            })
            .collect();
        for (cname, fc) in &self.containers {
            if !host.containers.contains_key(cname) && self.is_placed_on(cname, name, host) {
                out.push(HostContainer {
                    name: cname,
                    container: Cow::Owned(fc.to_container()),
                    origin: ContainerOrigin::Fleet,
                });
            }
        }
        out
    }

    /// The keys of the fleet's admins that can be age recipients (ssh-ed25519, ssh-rsa), per admin.
    /// Admins that are not defined users are left out (`check` reports them).
    pub fn admin_keys(&self) -> Vec<(&UserName, Vec<&SshPublicKey>)> {
        self.fleet
            .admins
            .iter()
            .filter_map(|name| {
                let (name, user) = self.users.get_key_value(name)?;
                let keys = user
                    .ssh_keys
                    .iter()
                    .filter(|k| k.is_age_recipient())
                    .collect();
                Some((name, keys))
            })
            .collect()
    }

    /// Every secret the hosts read, with the hosts that read it (in name order).
    pub fn secret_readers(&self) -> std::collections::BTreeMap<&SecretName, Vec<&HostName>> {
        let mut out: std::collections::BTreeMap<&SecretName, Vec<&HostName>> =
            std::collections::BTreeMap::new();
        for view in self.views() {
            for used in &view.secrets {
                let hosts = out.entry(used.name).or_default();
                if hosts.last() != Some(&view.name) {
                    hosts.push(view.name);
                }
            }
        }
        out
    }

    /// Hosts carrying `tag`.
    pub fn hosts_tagged<'a>(
        &'a self,
        tag: &'a str,
    ) -> impl Iterator<Item = (&'a HostName, &'a Host)> + 'a {
        self.hosts
            .iter()
            .filter(move |(_, h)| h.tags.iter().any(|t| t.as_str() == tag))
    }
}
