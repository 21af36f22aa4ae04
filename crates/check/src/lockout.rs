//! Lockout analysis: would the operator still get in after the switch?
//!
//! pifleet deploys with `nixos-rebuild --target-host <deploy user>@<address>` over SSH, so after every switch the
//! deploy user must still reach sshd, be let in with a key the inventory knows, and be able to activate the next
//! generation (sudo without a prompt, Nix trust). Each rule here reasons about what `render` writes into the host
//! module (crates/render/src/host.rs), not about NixOS defaults:
//!
//! - `users.mutableUsers = false`: accounts, keys and password hashes come only from the inventory; nothing set
//!   by hand on the host survives, and a password can never be set later with `passwd`.
//! - `security.sudo.wheelNeedsPassword = true`; `sudo = "no-password"` users get a NOPASSWD rule.
//! - `services.openssh.openFirewall` follows `ssh.open_firewall` (default true); `AllowUsers` is
//!   [`model::Fleet::effective_ssh`]'s list; `DenyUsers` is `ssh.deny_users`.
//! - `nix.settings.trusted-users` always holds root and the deploy user, so "the deploy user is not a Nix trusted
//!   user" cannot happen with a generated config (docs/diagnostics.md says so; there is no code for it).
//!
//! Every finding is an error (errors cannot be silenced with `allow`): it names the host, says why the operator
//! would be locked out, and says how to fix it.

use model::{
    AddressMode, Board, Host, HostName, Path, PermitRootLogin, Span, SshPolicy, Sudo, User,
};

use crate::diagnostic::{Diagnostic, Severity};
use crate::rules::{Context, host_path, user_path};

/// Where an effective SSH setting of a host was written: the host's override, the fleet policy, or nowhere (the
/// default), in which case the host's table is the place to change it.
pub(crate) fn ssh_setting_span(
    ctx: &Context<'_>,
    name: &HostName,
    host: &Host,
    field: &str,
    set_on_host: impl Fn(&model::SshOverride) -> bool,
) -> Option<Span> {
    if host.ssh.as_ref().is_some_and(set_on_host) {
        return ctx.value_span(&host_path(name).key("ssh").key(field));
    }
    let fleet_path = Path::root().key("ssh").key(field);
    if ctx.spans.get(&fleet_path).is_some() {
        return ctx.value_span(&fleet_path);
    }
    ctx.key_span(&host_path(name))
}

fn lockout(code: &str, path: Path, span: Option<Span>, message: String) -> Diagnostic {
    Diagnostic::new(Severity::Error, code, path, message).at(span)
}

/// The deploy user's account, when it is a defined, non-root user of the host (other rules report the rest).
fn deploy_account<'a>(ctx: &Context<'a>, host: &Host) -> Option<&'a User> {
    let user = &host.deploy.user;
    if user.is_root() || !host.users.contains(user) {
        return None;
    }
    ctx.fleet.users.get(user)
}

/// Whether nobody at all can log in over SSH: no password logins and no key anywhere for anyone on the host.
fn nobody_can_log_in(ctx: &Context<'_>, host: &Host, policy: &SshPolicy) -> bool {
    if policy.password_authentication
        || policy.kbd_interactive_authentication
        || policy.authorized_keys_in_homedir
    {
        return false;
    }
    let root_keys = policy.permit_root_login != PermitRootLogin::No && !policy.root_keys.is_empty();
    let user_keys = host.users.iter().any(|u| {
        ctx.fleet
            .users
            .get(u)
            .is_some_and(|a| !a.ssh_keys.is_empty())
    });
    !root_keys && !user_keys
}

/// `ssh.enable = false` turns off the only way deploy reaches the host.
pub fn sshd_enabled(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (name, host) in &ctx.fleet.hosts {
        let policy = ctx.fleet.effective_ssh(host);
        if !policy.enable {
            out.push(
                lockout(
                    "sshd_disabled",
                    host_path(name).key("ssh").key("enable"),
                    ssh_setting_span(ctx, name, host, "enable", |o| o.enable.is_some()),
                    format!("host `{name}` would run no SSH server: after this switch deploy can never connect again, and only a console or a re-flashed card gets you back in"),
                )
                .help("remove `enable = false` (pifleet deploys over SSH); restrict who may log in with `allow_users` instead"),
            );
        }
    }
    out
}

/// The deploy user must have a key the inventory installs: with `mutableUsers = false` and homedir keys off,
/// no other key works. Root's keys are `ssh.root_keys`.
pub fn deploy_login_key(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (name, host) in &ctx.fleet.hosts {
        let policy = ctx.fleet.effective_ssh(host);
        if policy.authorized_keys_in_homedir || nobody_can_log_in(ctx, host, &policy) {
            continue;
        }
        let user = &host.deploy.user;
        let path = host_path(name).key("deploy").key("user");
        if user.is_root() {
            if policy.permit_root_login == PermitRootLogin::No || !policy.root_keys.is_empty() {
                continue;
            }
            out.push(
                lockout(
                    "deploy_user_without_key",
                    path.clone(),
                    ctx.value_span(&path).or_else(|| ctx.key_span(&host_path(name))),
                    format!("host `{name}` is deployed as root, but root has no SSH key: deploy could not log in after this switch"),
                )
                .help("add your public key to `ssh.root_keys` (or the host's `ssh.root_keys`), or deploy as a non-root user with `deploy = { user = \"deploy\" }`"),
            );
        } else if let Some(account) = deploy_account(ctx, host)
            && account.ssh_keys.is_empty()
        {
            out.push(
                lockout(
                    "deploy_user_without_key",
                    path.clone(),
                    ctx.value_span(&path),
                    format!("host `{name}` is deployed as `{user}`, which has no SSH key: only keys in the inventory are installed, so deploy could not log in after this switch"),
                )
                .help(format!("add the workstation's public key to `users.{user}.ssh_keys`"))
                .related(user_path(user), ctx.key_span(&user_path(user)), "defined here"),
            );
        }
    }
    out
}

/// `AllowUsers` must let the deploy user in, and `DenyUsers` must not shut it out.
pub fn ssh_user_filters(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (name, host) in &ctx.fleet.hosts {
        let policy = ctx.fleet.effective_ssh(host);
        let user = &host.deploy.user;
        // The derived list lacks the deploy user only for root with root logins off: `root_deploy_login_disabled`.
        let explicit = ctx.fleet.ssh.allow_users.is_some()
            || host.ssh.as_ref().is_some_and(|o| o.allow_users.is_some());
        if let Some(allow) = &policy.allow_users
            && explicit
            && !allow.contains(user)
        {
            out.push(
                lockout(
                    "deploy_user_not_allowed",
                    host_path(name).key("ssh").key("allow_users"),
                    ssh_setting_span(ctx, name, host, "allow_users", |o| o.allow_users.is_some()),
                    format!("host `{name}` is deployed as `{user}`, but `allow_users` does not list it: sshd would refuse deploy after this switch"),
                )
                .help(format!("add \"{user}\" to `allow_users`, or leave `allow_users` out to derive it")),
            );
        }
        if policy.deny_users.contains(user) {
            out.push(
                lockout(
                    "deploy_user_not_allowed",
                    host_path(name).key("ssh").key("deny_users"),
                    ssh_setting_span(ctx, name, host, "deny_users", |o| o.deny_users.is_some()),
                    format!("host `{name}` is deployed as `{user}`, but `deny_users` lists it: sshd would refuse deploy after this switch"),
                )
                .help(format!("remove \"{user}\" from `deny_users`")),
            );
        }
    }
    out
}

/// Root deploys need root logins.
pub fn root_login_for_deploy(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (name, host) in &ctx.fleet.hosts {
        let policy = ctx.fleet.effective_ssh(host);
        if host.deploy.user.is_root() && policy.permit_root_login == PermitRootLogin::No {
            out.push(
                lockout(
                    "root_deploy_login_disabled",
                    host_path(name).key("ssh").key("permit_root_login"),
                    ssh_setting_span(ctx, name, host, "permit_root_login", |o| {
                        o.permit_root_login.is_some()
                    }),
                    format!("host `{name}` is deployed as root, but `permit_root_login = \"no\"`: deploy could not log in after this switch"),
                )
                .help(format!("deploy as a non-root user with `no-password` sudo (`hosts.{name}.deploy = {{ user = \"deploy\" }}`), or set `permit_root_login = \"prohibit-password\"` with `root_keys`")),
            );
        }
    }
    out
}

/// No password logins and no key for anyone: nobody can log in at all.
pub fn login_methods(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (name, host) in &ctx.fleet.hosts {
        let policy = ctx.fleet.effective_ssh(host);
        // Root keys shut out by `permit_root_login = "no"` on a root deploy: `root_deploy_login_disabled` says it.
        let root_shut_out = host.deploy.user.is_root()
            && policy.permit_root_login == PermitRootLogin::No
            && !policy.root_keys.is_empty();
        if policy.enable && !root_shut_out && nobody_can_log_in(ctx, host, &policy) {
            out.push(
                lockout(
                    "no_login_method",
                    host_path(name),
                    ctx.key_span(&host_path(name)),
                    format!("nobody could log in to host `{name}`: password logins are off and no user on it (nor root) has an SSH key"),
                )
                .help("add a public key to the deploy user (`users.<name>.ssh_keys`) or to `ssh.root_keys`; for root, also keep `permit_root_login = \"prohibit-password\"`"),
            );
        }
    }
    out
}

/// With the firewall on and `open_firewall = false`, the SSH port must be listed by hand.
pub fn ssh_firewall(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (name, host) in &ctx.fleet.hosts {
        let policy = ctx.fleet.effective_ssh(host);
        let port = policy.port;
        if host.firewall.enable
            && !policy.open_firewall
            && !host.firewall.allowed_tcp_ports.contains(&port)
        {
            out.push(
                lockout(
                    "ssh_port_closed",
                    host_path(name).key("ssh").key("open_firewall"),
                    ssh_setting_span(ctx, name, host, "open_firewall", |o| o.open_firewall.is_some()),
                    format!("host `{name}`: the firewall is on and SSH port {port} is not open (`open_firewall = false`, and it is not in `firewall.allowed_tcp_ports`): deploy could not connect after this switch"),
                )
                .help(format!("remove `open_firewall = false`, or add {port} to `hosts.{name}.firewall.allowed_tcp_ports`")),
            );
        }
    }
    out
}

/// `deploy.port` must be the port sshd will listen on: a port change with deploy still on the old port leaves
/// the next deploy knocking on a closed door.
pub fn deploy_port(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (name, host) in &ctx.fleet.hosts {
        let Some(port) = host.deploy.port else {
            continue;
        };
        let sshd = ctx.fleet.effective_ssh(host).port;
        if port != sshd {
            let path = host_path(name).key("deploy").key("port");
            out.push(
                lockout(
                    "deploy_port_mismatch",
                    path.clone(),
                    ctx.value_span(&path),
                    format!("host `{name}`: sshd will listen on port {sshd}, but deploy connects to port {port}: after this switch deploy would find nothing listening"),
                )
                .help(format!("set `deploy.port = {sshd}`, or leave `deploy.port` out to follow `ssh.port`")),
            );
        }
    }
    out
}

/// Whether sudo asks this user for a password: `wheelNeedsPassword = true`, so wheel without `no-password` does.
fn sudo_needs_password(user: &User) -> bool {
    match user.sudo {
        Some(Sudo::NoPassword) => false,
        Some(Sudo::Password) => true,
        None => user.groups.iter().any(|g| g == "wheel"),
    }
}

/// Whether the user has a password it could type: a hash that is not empty and not locked ("!…", "*").
fn has_password(user: &User) -> bool {
    user.hashed_password
        .as_deref()
        .is_some_and(|h| !h.is_empty() && !h.starts_with('!') && !h.starts_with('*'))
        || user.hashed_password_file.is_some()
}

/// A non-root deploy user must activate without a password prompt it could never answer.
pub fn deploy_sudo(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (name, host) in &ctx.fleet.hosts {
        let Some(account) = deploy_account(ctx, host) else {
            continue;
        };
        let user = &host.deploy.user;
        if sudo_needs_password(account) && !has_password(account) {
            let path = host_path(name).key("deploy").key("user");
            out.push(
                lockout(
                    "deploy_sudo_needs_password",
                    path.clone(),
                    ctx.value_span(&path),
                    format!("host `{name}` is deployed as `{user}`, whose sudo asks for a password it does not have (users are immutable, so none can be set on the host): deploy could not activate the next generation"),
                )
                .help(format!("set `sudo = \"no-password\"` in `[users.{user}]`"))
                .related(user_path(user), ctx.key_span(&user_path(user)), "defined here"),
            );
        }
    }
    out
}

/// With `mutableUsers = false`, a sudo user without key or password hash can never log in or use sudo.
pub fn sudo_accounts(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (user_name, user) in &ctx.fleet.users {
        let sudoer = user.sudo.is_some() || user.groups.iter().any(|g| g == "wheel");
        // `sudo = "password"` without a password is `sudo_without_password` already.
        if !sudoer || user.sudo == Some(Sudo::Password) {
            continue;
        }
        if !user.ssh_keys.is_empty() || has_password(user) {
            continue;
        }
        let hosts: Vec<&str> = ctx
            .fleet
            .hosts
            .iter()
            // Keys may live in home directories there; and a deploy user gets `deploy_user_without_key`.
            .filter(|(_, h)| {
                h.users.contains(user_name)
                    && h.deploy.user != *user_name
                    && !ctx.fleet.effective_ssh(h).authorized_keys_in_homedir
            })
            .map(|(n, _)| n.as_str())
            .collect();
        if hosts.is_empty() {
            continue;
        }
        out.push(
            ctx.at_key(
                Severity::Error,
                "sudo_user_without_credentials",
                user_path(user_name),
                format!("sudo user `{user_name}` has neither an SSH key nor a password hash; users are immutable on {} so the account can never be used, and the admin access it was meant to give is lost", hosts.join(", ")),
            )
            .help(format!("add a key to `users.{user_name}.ssh_keys` or set `hashed_password_file`")),
        );
    }
    out
}

/// Whether the host's only way onto the network is Wi-Fi: the configured interface is a wireless one, or it is a
/// Zero 2 W (no Ethernet) with no other interface named.
fn wifi_only(host: &Host) -> bool {
    match host.network.interface.as_deref() {
        Some(interface) => interface.starts_with("wl"),
        None => host.board == Board::Zero2w,
    }
}

/// A Wi-Fi-only host without its Wi-Fi secret never joins the network after the switch (or on first boot).
pub fn wifi_secret(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (name, host) in &ctx.fleet.hosts {
        if !wifi_only(host) {
            continue;
        }
        let why = if host.board == Board::Zero2w && host.network.interface.is_none() {
            "is a Zero 2 W, which has no Ethernet".to_owned()
        } else {
            format!(
                "reaches the network only through `{}`",
                host.network.interface.as_deref().unwrap_or("wlan0")
            )
        };
        match &host.wifi {
            None => out.push(
                lockout(
                    "wifi_secret_missing",
                    host_path(name).key("wifi"),
                    ctx.key_span(&host_path(name)),
                    format!("host `{name}` {why}, but sets no `wifi`: it would never join a network, and deploy could not reach it"),
                )
                .help(format!("add `[hosts.{name}.wifi]` with `ssid` and `secrets_file` (a root-only file on the host with `psk=…`); with a USB Ethernet adapter, set `network.interface` to it")),
            ),
            Some(wifi) if wifi.secrets_file.trim().is_empty() => {
                let path = host_path(name).key("wifi").key("secrets_file");
                out.push(
                    lockout(
                        "wifi_secret_missing",
                        path.clone(),
                        ctx.value_span(&path),
                        format!("host `{name}` {why}, but its Wi-Fi `secrets_file` is empty: wpa_supplicant would have no passphrase, and deploy could not reach the host"),
                    )
                    .help("set `secrets_file` to an absolute path on the host, e.g. \"/var/lib/secrets/wifi\", holding `psk=…`"),
                );
            }
            Some(_) => {}
        }
    }
    out
}

/// A static address that differs from the deploy address: after the switch the host answers on its new static
/// address while deploy (and its post-switch confirmation) keeps connecting to the old one.
///
/// pifleet cannot compare with the previously deployed configuration here (checks read only the inventory), so
/// the inventory itself must agree: `address` is where deploy connects, `network.address` is where the host will
/// be. The one legitimate difference, a NAT port forward (deploy to a public address that the router forwards to
/// a private static address), is not reported.
pub fn static_address(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (name, host) in &ctx.fleet.hosts {
        let net = &host.network;
        if net.mode != AddressMode::Static {
            continue;
        }
        let (Some(cidr), Ok(ip)) = (
            net.address,
            host.address.as_str().parse::<std::net::IpAddr>(),
        ) else {
            continue;
        };
        if cidr.address == ip || (is_private(cidr.address) && !is_private(ip)) {
            continue;
        }
        out.push(
            lockout(
                "address_mismatch",
                host_path(name).key("address"),
                ctx.value_span(&host_path(name).key("address")),
                format!(
                    "host `{name}` is deployed to {ip}, but its static address is {}: after this switch the host moves to {} and deploy, still connecting to {ip}, cannot confirm or reach it again",
                    cidr.address, cidr.address
                ),
            )
            .help(format!("make `address` and `network.address` agree: to move the host, set `address = \"{}\"` too, so deploy never reports success on an address the host is leaving", cidr.address))
            .related(
                host_path(name).key("network").key("address"),
                ctx.value_span(&host_path(name).key("network").key("address")),
                "the host's new address",
            ),
        );
    }
    out
}

/// Private, loopback or link-local: an address only reachable inside the LAN.
fn is_private(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => v4.is_private() || v4.is_loopback() || v4.is_link_local(),
        std::net::IpAddr::V6(v6) => {
            v6.is_loopback()
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}
