//! Security lints: settings that expose a host rather than lock the operator out.
//!
//! Warnings unless a secret would leak (then errors: the Nix store is world-readable). Warnings about a host are
//! reported under `hosts.<name>…` so that host can silence them with `allow = [{ code, reason }]`; a fleet
//! container's warning is silenced when every host it runs on allows its code.

use model::{Container, Fleet, HostName, Path, PermitRootLogin, Sudo};

use crate::diagnostic::{Diagnostic, Severity};
use crate::lockout::ssh_setting_span;
use crate::rules::{Context, host_path, user_path};

/// `hashed_password = ""` is an empty password: anyone may log in as that user on the console (and over SSH
/// when password logins are on).
pub fn empty_passwords(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (name, user) in &ctx.fleet.users {
        if user.hashed_password.as_deref() == Some("") {
            out.push(
                ctx.at_value(
                    Severity::Error,
                    "empty_password",
                    user_path(name).key("hashed_password"),
                    format!("user `{name}` has an empty password: anyone can log in as `{name}` without one"),
                )
                .help("set `hashed_password_file` to a file with a yescrypt hash (`mkpasswd -m yescrypt`), or use \"!\" to lock the password"),
            );
        }
    }
    out
}

/// `sudo = "no-password"` is what a deploy user needs; for anyone else it is `wheelNeedsPassword = false`: a
/// stolen key (or any process running as that user) becomes root without further proof.
pub fn passwordless_sudo(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (host_name, host) in &ctx.fleet.hosts {
        for (i, user_name) in host.users.iter().enumerate() {
            if *user_name == host.deploy.user {
                continue;
            }
            let Some(user) = ctx.fleet.users.get(user_name) else {
                continue;
            };
            if user.sudo == Some(Sudo::NoPassword) {
                let sudo = user_path(user_name).key("sudo");
                out.push(
                    ctx.at_value(
                        Severity::Warning,
                        "passwordless_sudo",
                        host_path(host_name).key("users").index(i),
                        format!("user `{user_name}` gets root on host `{host_name}` without a password, but is not its deploy user: whoever holds its key (or runs code as it) is root"),
                    )
                    .help(format!("use `sudo = \"password\"` with `hashed_password_file` for `{user_name}`; only the deploy user needs \"no-password\""))
                    .related(sudo.clone(), ctx.value_span(&sudo), "set here"),
                );
            }
        }
    }
    out
}

/// The firewall is off: every listening service is reachable from the network.
pub fn firewall_disabled(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (name, host) in &ctx.fleet.hosts {
        if !host.firewall.enable {
            out.push(
                ctx.at_value(
                    Severity::Warning,
                    "firewall_disabled",
                    host_path(name).key("firewall").key("enable"),
                    format!("host `{name}` runs without a firewall: every service listening on it is reachable from the network"),
                )
                .help("remove `enable = false` and open the ports you need in `firewall.allowed_tcp_ports` / `allowed_udp_ports` (SSH is opened for you)"),
            );
        }
    }
    out
}

/// Password (or keyboard-interactive) logins over SSH invite brute force.
pub fn password_login(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (name, host) in &ctx.fleet.hosts {
        let policy = ctx.fleet.effective_ssh(host);
        for (field, on, set_on_host) in [
            (
                "password_authentication",
                policy.password_authentication,
                host.ssh
                    .as_ref()
                    .is_some_and(|o| o.password_authentication.is_some()),
            ),
            (
                "kbd_interactive_authentication",
                policy.kbd_interactive_authentication,
                host.ssh
                    .as_ref()
                    .is_some_and(|o| o.kbd_interactive_authentication.is_some()),
            ),
        ] {
            if !on {
                continue;
            }
            let span = ssh_setting_span(ctx, name, host, field, |_| set_on_host);
            out.push(
                Diagnostic::new(
                    Severity::Warning,
                    "password_authentication_enabled",
                    host_path(name).key("ssh").key(field),
                    format!("host `{name}` accepts SSH logins with a password (`{field} = true`): they can be guessed, keys cannot"),
                )
                .at(span)
                .help(format!("set `{field} = false` and log in with keys (`users.<name>.ssh_keys`)")),
            );
        }
    }
    out
}

/// Root may log in over SSH (with a key): one stolen key is root on the host, and logs only say "root".
pub fn root_login(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (name, host) in &ctx.fleet.hosts {
        let policy = ctx.fleet.effective_ssh(host);
        let root = model::UserName::root();
        let root_can = (!policy.root_keys.is_empty() || policy.authorized_keys_in_homedir)
            && policy
                .allow_users
                .as_ref()
                .is_none_or(|a| a.contains(&root))
            && !policy.deny_users.contains(&root);
        if policy.permit_root_login == PermitRootLogin::ProhibitPassword
            && root_can
            && policy.enable
        {
            let span = ssh_setting_span(ctx, name, host, "permit_root_login", |o| {
                o.permit_root_login.is_some()
            });
            out.push(
                Diagnostic::new(
                    Severity::Warning,
                    "root_login_allowed",
                    host_path(name).key("ssh").key("permit_root_login"),
                    format!("root may log in to host `{name}` over SSH (with a key): a stolen key is root at once, and logs cannot tell who it was"),
                )
                .at(span)
                .help("deploy as a non-root user with `sudo = \"no-password\"` and set `permit_root_login = \"no\"`"),
            );
        }
    }
    out
}

/// Every container definition once: fleet containers at `containers.<name>`, host containers at
/// `hosts.<host>.containers.<name>`.
fn container_definitions(fleet: &Fleet) -> Vec<(Path, String, Container)> {
    let mut out: Vec<(Path, String, Container)> = fleet
        .containers
        .iter()
        .map(|(n, c)| {
            (
                Path::root().key("containers").key(n.as_str()),
                format!("container `{n}`"),
                c.to_container(),
            )
        })
        .collect();
    for (host_name, host) in &fleet.hosts {
        for (n, c) in &host.containers {
            out.push((
                host_path(host_name).key("containers").key(n.as_str()),
                format!("container `{n}` on host `{host_name}`"),
                c.clone(),
            ));
        }
    }
    out
}

/// Words in an environment variable name that mark a secret.
fn is_secret_name(key: &str) -> bool {
    let words: Vec<String> = key
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.to_ascii_uppercase())
        .collect();
    // `POSTGRES_PASSWORD_FILE=/run/secrets/db` names a file, which is the right way to do it.
    if words
        .last()
        .is_some_and(|w| matches!(w.as_str(), "FILE" | "PATH" | "DIR"))
    {
        return false;
    }
    words.iter().any(|w| {
        w.contains("PASSWORD")
            || w.contains("PASSWD")
            || w.contains("TOKEN")
            || w.contains("SECRET")
            || w.ends_with("KEY")
    })
}

/// A password, token, secret or key written as a literal value ends up in the world-readable Nix store.
pub fn container_secrets(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (base, what, c) in container_definitions(ctx.fleet) {
        for (key, value) in &c.environment {
            if value.is_empty() || !is_secret_name(key) {
                continue;
            }
            out.push(
                ctx.at_value(
                    Severity::Error,
                    "secret_in_environment",
                    base.key("environment").key(key.as_str()),
                    format!("{what} has the secret `{key}` written into `environment`: it would be stored world-readable in the Nix store"),
                )
                .help(format!("move `{key}=…` into a root-only file on the host and list it in `environment_files`; rotate the leaked value")),
            );
        }
    }
    out
}

/// Services whose default setup trusts the network: published on every address, they are open to anyone who can
/// reach the host. Docker's published ports bypass the NixOS firewall (they are DNAT rules), so the firewall does
/// not help. Matched by the port inside the container.
pub const SENSITIVE_PORTS: &[(u16, &str)] = &[
    (2375, "the Docker API without TLS (root on the host)"),
    (2376, "the Docker API"),
    (3306, "MySQL/MariaDB"),
    (5432, "PostgreSQL"),
    (6379, "Redis (no password by default)"),
    (9200, "Elasticsearch/OpenSearch"),
    (11211, "memcached (no authentication)"),
    (27017, "MongoDB"),
];

/// Container exposure: sensitive ports on all addresses, the Docker socket, `privileged`.
pub fn container_exposure(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (base, what, c) in container_definitions(ctx.fleet) {
        for (i, port) in c.ports.iter().enumerate() {
            let everywhere = port.host_ip.is_none_or(|ip| ip.is_unspecified());
            let Some((_, service)) = SENSITIVE_PORTS
                .iter()
                .find(|(p, _)| *p == port.container_port)
            else {
                continue;
            };
            if everywhere {
                out.push(
                    ctx.at_value(
                        Severity::Warning,
                        "sensitive_port_exposed",
                        base.key("ports").index(i),
                        format!("{what} publishes {service} on every address (port {}); Docker's published ports bypass the host firewall", port.host_port),
                    )
                    .help(format!("bind it to loopback (\"127.0.0.1:{}:{}\") or drop the mapping and connect over a Docker network", port.host_port, port.container_port)),
                );
            }
        }
        for (i, volume) in c.volumes.iter().enumerate() {
            let source = volume.as_str().split(':').next().unwrap_or_default();
            if matches!(
                source.trim_end_matches('/'),
                "/var/run/docker.sock" | "/run/docker.sock" | "/var/run" | "/run"
            ) {
                out.push(
                    ctx.at_value(
                        Severity::Warning,
                        "docker_socket_mounted",
                        base.key("volumes").index(i),
                        format!("{what} gets the Docker socket (`{source}`): it can start a privileged container, which is root on the host"),
                    )
                    .help("drop the mount, or put a filtering proxy in front of it (e.g. tecnativa/docker-socket-proxy) and mount that read-only"),
                );
            }
        }
        let privileged_option = c
            .extra_options
            .iter()
            .position(|o| o == "--privileged" || o == "--privileged=true");
        if c.privileged || privileged_option.is_some() {
            let path = match privileged_option {
                Some(i) if !c.privileged => base.key("extra_options").index(i),
                _ => base.key("privileged"),
            };
            out.push(
                ctx.at_value(
                    Severity::Warning,
                    "privileged_container",
                    path,
                    format!("{what} runs privileged: it has every capability and device of the host, so a compromise of it is root on the host"),
                )
                .help("grant only what the image needs: `extra_options = [\"--device=/dev/ttyUSB0\"]` or `--cap-add=…`"),
            );
        }
    }
    out
}

/// Whether the fleet container `name` runs on `host` (for allow).
pub(crate) fn fleet_container_hosts<'a>(fleet: &'a Fleet, name: &str) -> Vec<&'a HostName> {
    let Some((container_name, _)) = fleet.containers.iter().find(|(n, _)| n.as_str() == name)
    else {
        return Vec::new();
    };
    fleet
        .hosts
        .iter()
        .filter(|(h, host)| fleet.is_placed_on(container_name, h, host))
        .map(|(h, _)| h)
        .collect()
}
