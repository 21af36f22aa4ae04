//! Semantic rules: what the schema cannot say, because it needs to look at two places at once.
//!
//! One function per rule, each taking the [`Context`] and returning its diagnostics, listed in [`RULES`]. Rules
//! never fail and never panic: they only read the typed inventory, so they can assume every name, key and port
//! is well formed (the loader checked) and only ask how the pieces fit together.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use model::{
    AddressMode, Board, ContainerName, Fleet, HostName, Loaded, Path, Span, SpanMap, Sudo, UserName,
};

use crate::diagnostic::{Diagnostic, Severity};
use crate::{lockout, security};

/// What a rule can look at: the typed inventory and where each part was written.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The inventory.
    pub fleet: &'a Fleet,
    /// Paths to source spans.
    pub spans: &'a SpanMap,
}

impl<'a> Context<'a> {
    /// A context over a loaded inventory.
    pub fn new(loaded: &'a Loaded) -> Self {
        Self {
            fleet: &loaded.fleet,
            spans: &loaded.spans,
        }
    }

    /// The span of the value at `path` (or the nearest enclosing place written in the file).
    pub fn value_span(&self, path: &Path) -> Option<Span> {
        self.spans.value_span(path)
    }

    /// The span of the key at `path` (or the nearest enclosing place written in the file).
    pub fn key_span(&self, path: &Path) -> Option<Span> {
        self.spans.key_span(path)
    }

    /// A diagnostic pointing at the value at `path`.
    pub fn at_value(
        &self,
        severity: Severity,
        code: &str,
        path: Path,
        message: impl Into<String>,
    ) -> Diagnostic {
        let span = self.value_span(&path);
        Diagnostic::new(severity, code, path, message).at(span)
    }

    /// A diagnostic pointing at the key at `path`.
    pub fn at_key(
        &self,
        severity: Severity,
        code: &str,
        path: Path,
        message: impl Into<String>,
    ) -> Diagnostic {
        let span = self.key_span(&path);
        Diagnostic::new(severity, code, path, message).at(span)
    }
}

/// A named semantic rule.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// A short name for the rule (not a diagnostic code: one rule may emit several codes).
    pub name: &'static str,
    /// The check itself.
    pub run: fn(&Context<'_>) -> Vec<Diagnostic>,
}

/// Every semantic rule, run in this order.
pub const RULES: &[Rule] = &[
    Rule {
        name: "user_references",
        run: user_references,
    },
    Rule {
        name: "deploy_user",
        run: deploy_user,
    },
    Rule {
        name: "user_accounts",
        run: user_accounts,
    },
    Rule {
        name: "ssh_keys",
        run: ssh_keys,
    },
    Rule {
        name: "duplicate_addresses",
        run: duplicate_addresses,
    },
    Rule {
        name: "placement",
        run: placement,
    },
    Rule {
        name: "container_ports",
        run: container_ports,
    },
    Rule {
        name: "container_dependencies",
        run: container_dependencies,
    },
    Rule {
        name: "container_images",
        run: container_images,
    },
    Rule {
        name: "network",
        run: network,
    },
    Rule {
        name: "host_lists",
        run: host_lists,
    },
    Rule {
        name: "allow_entries",
        run: allow_entries,
    },
    Rule {
        name: "sshd_settings",
        run: sshd_settings,
    },
    Rule {
        name: "string_formats",
        run: string_formats,
    },
    Rule {
        name: "board_options",
        run: board_options,
    },
    // Lockout analysis (crate::lockout).
    Rule {
        name: "sshd_enabled",
        run: lockout::sshd_enabled,
    },
    Rule {
        name: "deploy_login_key",
        run: lockout::deploy_login_key,
    },
    Rule {
        name: "ssh_user_filters",
        run: lockout::ssh_user_filters,
    },
    Rule {
        name: "root_login_for_deploy",
        run: lockout::root_login_for_deploy,
    },
    Rule {
        name: "login_methods",
        run: lockout::login_methods,
    },
    Rule {
        name: "ssh_firewall",
        run: lockout::ssh_firewall,
    },
    Rule {
        name: "deploy_port",
        run: lockout::deploy_port,
    },
    Rule {
        name: "deploy_sudo",
        run: lockout::deploy_sudo,
    },
    Rule {
        name: "sudo_accounts",
        run: lockout::sudo_accounts,
    },
    Rule {
        name: "wifi_secret",
        run: lockout::wifi_secret,
    },
    Rule {
        name: "static_address",
        run: lockout::static_address,
    },
    // Security lints (crate::security).
    Rule {
        name: "empty_passwords",
        run: security::empty_passwords,
    },
    Rule {
        name: "passwordless_sudo",
        run: security::passwordless_sudo,
    },
    Rule {
        name: "firewall_disabled",
        run: security::firewall_disabled,
    },
    Rule {
        name: "password_login",
        run: security::password_login,
    },
    Rule {
        name: "root_login",
        run: security::root_login,
    },
    Rule {
        name: "container_secrets",
        run: security::container_secrets,
    },
    Rule {
        name: "container_exposure",
        run: security::container_exposure,
    },
];

/// `nixos_hardware` needs a profile for the board: nixos-hardware has Pi 3 and Pi 4 profiles only.
pub fn board_options(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (name, host) in &ctx.fleet.hosts {
        if host.nixos_hardware && !matches!(host.board, Board::Rpi3 | Board::Rpi4) {
            out.push(
                ctx.at_value(
                    Severity::Error,
                    "nixos_hardware_unsupported",
                    host_path(name).key("nixos_hardware"),
                    format!(
                        "host `{name}` asks for nixos-hardware's profile, which exists for rpi3 and rpi4 only, not {}",
                        host.board.as_str()
                    ),
                )
                .help("remove `nixos_hardware = true`: the default mainline kernel supports this board"),
            );
        }
    }
    out
}

/// `hosts.<name>`.
pub(crate) fn host_path(name: &HostName) -> Path {
    Path::root().key("hosts").key(name.as_str())
}

/// `users.<name>`.
pub(crate) fn user_path(name: &UserName) -> Path {
    Path::root().key("users").key(name.as_str())
}

/// `hosts.*.users` and `allow_users` must name users defined in `users`.
pub fn user_references(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let fleet = ctx.fleet;
    let mut out = Vec::new();
    let known: Vec<&str> = fleet.users.keys().map(UserName::as_str).collect();
    let help = |name: &UserName| {
        if known.is_empty() {
            format!("define it with a `[users.{name}]` table")
        } else {
            format!(
                "define `[users.{name}]`, or use one of: {}",
                known.join(", ")
            )
        }
    };
    for (host_name, host) in &fleet.hosts {
        for (i, user) in host.users.iter().enumerate() {
            if user.is_root() {
                out.push(
                    ctx.at_value(
                        Severity::Error,
                        "root_in_users",
                        host_path(host_name).key("users").index(i),
                        "root is not a user to list: it always exists",
                    )
                    .help("remove it; root's keys go in `ssh.root_keys`"),
                );
            } else if !fleet.users.contains_key(user) {
                out.push(
                    ctx.at_value(
                        Severity::Error,
                        "unknown_user",
                        host_path(host_name).key("users").index(i),
                        format!("host `{host_name}` lists user `{user}`, which is not defined in `users`"),
                    )
                    .help(help(user)),
                );
            }
        }
        if let Some(allow) = host.ssh.as_ref().and_then(|s| s.allow_users.as_ref()) {
            let base = host_path(host_name).key("ssh").key("allow_users");
            for (i, user) in allow.iter().enumerate() {
                let present =
                    user.is_root() || host.users.contains(user) || host.deploy.user == *user;
                if !present {
                    out.push(
                        ctx.at_value(
                            Severity::Error,
                            "unknown_user",
                            base.index(i),
                            format!("`allow_users` names `{user}`, which is not a user of host `{host_name}`"),
                        )
                        .help(format!("add `{user}` to `hosts.{host_name}.users`, or remove it here")),
                    );
                }
            }
        }
    }
    if let Some(allow) = &fleet.ssh.allow_users {
        for (i, user) in allow.iter().enumerate() {
            if !user.is_root() && !fleet.users.contains_key(user) {
                out.push(
                    ctx.at_value(
                        Severity::Error,
                        "unknown_user",
                        Path::root().key("ssh").key("allow_users").index(i),
                        format!(
                            "`ssh.allow_users` names `{user}`, which is not defined in `users`"
                        ),
                    )
                    .help(help(user)),
                );
            }
        }
    }
    if fleet.users.keys().any(UserName::is_root) {
        let root = UserName::root();
        out.push(
            ctx.at_key(
                Severity::Error,
                "root_in_users",
                user_path(&root),
                "`users.root` cannot be defined here",
            )
            .help("root always exists; put its keys in `ssh.root_keys`"),
        );
    }
    out
}

/// A non-root deploy user must exist on the host and be able to use sudo.
pub fn deploy_user(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let fleet = ctx.fleet;
    let mut out = Vec::new();
    for (host_name, host) in &fleet.hosts {
        let user = &host.deploy.user;
        if user.is_root() {
            continue;
        }
        let path = host_path(host_name).key("deploy").key("user");
        let Some(account) = fleet.users.get(user) else {
            out.push(
                ctx.at_value(
                    Severity::Error,
                    "unknown_deploy_user",
                    path,
                    format!(
                        "host `{host_name}` deploys as `{user}`, which is not defined in `users`"
                    ),
                )
                .help(format!(
                    "define `[users.{user}]` with its SSH key and `sudo = \"no-password\"`"
                )),
            );
            continue;
        };
        if !host.users.contains(user) {
            out.push(
                ctx.at_value(
                    Severity::Error,
                    "deploy_user_not_on_host",
                    path.clone(),
                    format!(
                        "host `{host_name}` deploys as `{user}`, but `{user}` is not in its `users`"
                    ),
                )
                .help(format!("add \"{user}\" to `hosts.{host_name}.users`")),
            );
        }
        if account.sudo.is_none() && !account.groups.iter().any(|g| g == "wheel") {
            out.push(
                ctx.at_value(
                    Severity::Error,
                    "deploy_user_without_sudo",
                    path,
                    format!("host `{host_name}` is deployed as `{user}`, which has no sudo rights: deploy could copy the new system but never activate it"),
                )
                .help(format!("set `sudo = \"no-password\"` in `[users.{user}]`")),
            );
        }
    }
    out
}

/// Account settings that contradict each other.
pub fn user_accounts(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (name, user) in &ctx.fleet.users {
        let path = user_path(name);
        if user.hashed_password.is_some() && user.hashed_password_file.is_some() {
            out.push(
                ctx.at_key(
                    Severity::Error,
                    "conflicting_passwords",
                    path.key("hashed_password"),
                    format!("user `{name}` sets both `hashed_password` and `hashed_password_file`"),
                )
                .help("keep one; `hashed_password_file` keeps the hash out of the Nix store"),
            );
        }
        if let Some(hash) = &user.hashed_password
            && !(hash.is_empty() || hash.starts_with('$') || hash == "!" || hash == "*")
        {
            out.push(
                ctx.at_value(
                    Severity::Error,
                    "plaintext_password",
                    path.key("hashed_password"),
                    format!("`hashed_password` of user `{name}` is not a crypt(3) hash; it looks like a plain password"),
                )
                .help("generate a hash with `mkpasswd -m yescrypt` (it starts with `$y$`), and change the leaked password"),
            );
        }
        let has_password = user.hashed_password.is_some() || user.hashed_password_file.is_some();
        if user.sudo == Some(Sudo::Password) && !has_password {
            out.push(
                ctx.at_value(
                    Severity::Error,
                    "sudo_without_password",
                    path.key("sudo"),
                    format!("user `{name}` needs a password for sudo but has none"),
                )
                .help("set `hashed_password_file`, or use `sudo = \"no-password\"`"),
            );
        }
    }
    out
}

/// The same key twice in one list is a copy-paste slip; the same key for two accounts means one person is both.
pub fn ssh_keys(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let fleet = ctx.fleet;
    let mut out = Vec::new();
    let mut lists: Vec<(Path, &Vec<model::SshPublicKey>)> = Vec::new();
    lists.push((
        Path::root().key("ssh").key("root_keys"),
        &fleet.ssh.root_keys,
    ));
    for (name, user) in &fleet.users {
        lists.push((user_path(name).key("ssh_keys"), &user.ssh_keys));
    }
    for (host_name, host) in &fleet.hosts {
        if let Some(keys) = host.ssh.as_ref().and_then(|s| s.root_keys.as_ref()) {
            lists.push((host_path(host_name).key("ssh").key("root_keys"), keys));
        }
    }
    for (path, keys) in &lists {
        for (i, key) in keys.iter().enumerate() {
            if let Some(j) = keys[..i].iter().position(|k| k.same_key(key)) {
                out.push(
                    ctx.at_value(
                        Severity::Error,
                        "duplicate_ssh_key",
                        path.index(i),
                        format!("`{path}` lists the key {} twice", key.fingerprint()),
                    )
                    .help("remove the repeated entry")
                    .related(
                        path.index(j),
                        ctx.value_span(&path.index(j)),
                        "first listed here",
                    ),
                );
            }
        }
    }
    // Across users (root keys are often the admin's own key, so only user-to-user sharing is reported).
    let mut owner: HashMap<Vec<u8>, (UserName, Path)> = HashMap::new();
    for (name, user) in &fleet.users {
        for (i, key) in user.ssh_keys.iter().enumerate() {
            let id = key.fingerprint().into_bytes();
            let path = user_path(name).key("ssh_keys").index(i);
            match owner.get(&id) {
                Some((other, other_path)) if other != name => out.push(
                    ctx.at_value(
                        Severity::Warning,
                        "shared_ssh_key",
                        path,
                        format!(
                            "users `{other}` and `{name}` share the key {}",
                            key.fingerprint()
                        ),
                    )
                    .help("give each account its own key, so access can be revoked per person")
                    .related(
                        other_path.clone(),
                        ctx.value_span(other_path),
                        "also used here",
                    ),
                ),
                Some(_) => {}
                None => {
                    owner.insert(id, (name.clone(), path));
                }
            }
        }
    }
    out
}

/// Two hosts with the same address would receive each other's deploys.
pub fn duplicate_addresses(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let mut seen: BTreeMap<String, &HostName> = BTreeMap::new();
    let mut out = Vec::new();
    for (name, host) in &ctx.fleet.hosts {
        let addr = host
            .address
            .as_str()
            .trim_end_matches('.')
            .to_ascii_lowercase();
        let path = host_path(name).key("address");
        if let Some(first) = seen.get(&addr) {
            let first_path = host_path(first).key("address");
            out.push(
                ctx.at_value(
                    Severity::Error,
                    "duplicate_address",
                    path,
                    format!(
                        "hosts `{first}` and `{name}` have the same address {}",
                        host.address
                    ),
                )
                .help("give each host its own address; a deploy to one would reach the other")
                .related(
                    first_path.clone(),
                    ctx.value_span(&first_path),
                    "also used here",
                ),
            );
        } else {
            seen.insert(addr, name);
        }
    }
    out
}

/// Fleet containers must be placed by existing tags and hosts, and must not clash with a host's own container.
pub fn placement(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let fleet = ctx.fleet;
    let mut out = Vec::new();
    let tags: BTreeSet<&str> = fleet
        .hosts
        .values()
        .flat_map(|h| h.tags.iter().map(|t| t.as_str()))
        .collect();
    for (name, c) in &fleet.containers {
        let base = Path::root()
            .key("containers")
            .key(name.as_str())
            .key("placement");
        for (i, tag) in c.placement.tags.iter().enumerate() {
            if !tags.contains(tag.as_str()) {
                let known = tags.iter().copied().collect::<Vec<_>>().join(", ");
                out.push(
                    ctx.at_value(
                        Severity::Error,
                        "unknown_placement_tag",
                        base.key("tags").index(i),
                        format!("container `{name}` is placed on tag `{tag}`, which no host has"),
                    )
                    .help(if known.is_empty() {
                        "add the tag to a host's `tags`".to_owned()
                    } else {
                        format!("use a tag hosts have ({known}) or add `{tag}` to a host's `tags`")
                    }),
                );
            }
        }
        for (i, host) in c.placement.hosts.iter().enumerate() {
            if !fleet.hosts.contains_key(host) {
                out.push(
                    ctx.at_value(
                        Severity::Error,
                        "unknown_placement_host",
                        base.key("hosts").index(i),
                        format!(
                            "container `{name}` is placed on host `{host}`, which is not defined"
                        ),
                    )
                    .help("use the name of a host in `hosts`"),
                );
            }
        }
        if c.placement.tags.is_empty() && c.placement.hosts.is_empty() {
            out.push(
                ctx.at_key(
                    Severity::Warning,
                    "unplaced_container",
                    base,
                    format!("container `{name}` is not placed on any host"),
                )
                .help("list hosts or tags in `placement`, or remove the container"),
            );
        }
        for (host_name, host) in &fleet.hosts {
            if host.containers.contains_key(name) && fleet.is_placed_on(name, host_name, host) {
                let own = host_path(host_name).key("containers").key(name.as_str());
                out.push(
                    ctx.at_key(
                        Severity::Error,
                        "container_name_conflict",
                        own,
                        format!("host `{host_name}` defines container `{name}`, and the fleet container `{name}` is placed on it too"),
                    )
                    .help("rename one of them, or exclude this host from the fleet container's placement")
                    .related(
                        Path::root().key("containers").key(name.as_str()),
                        ctx.key_span(&Path::root().key("containers").key(name.as_str())),
                        "fleet container defined here",
                    ),
                );
            }
        }
    }
    out
}

/// Where a container was written, for pointing at it.
fn container_path(fleet: &Fleet, host_name: &HostName, name: &ContainerName) -> Path {
    let host_own = fleet
        .hosts
        .get(host_name)
        .is_some_and(|h| h.containers.contains_key(name));
    if host_own {
        host_path(host_name).key("containers").key(name.as_str())
    } else {
        Path::root().key("containers").key(name.as_str())
    }
}

/// Two containers on one host cannot publish the same host port.
pub fn container_ports(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let fleet = ctx.fleet;
    let mut out = Vec::new();
    for host_name in fleet.hosts.keys() {
        let mut seen: Vec<(model::PortMapping, Path)> = Vec::new();
        for hc in fleet.containers_of(host_name) {
            let base = container_path(fleet, host_name, &hc.name).key("ports");
            for (i, port) in hc.container.ports.iter().enumerate() {
                let path = base.index(i);
                let clash = seen.iter().find(|(p, _)| {
                    p.host_port == port.host_port
                        && p.protocol == port.protocol
                        && (p.host_ip.is_none()
                            || port.host_ip.is_none()
                            || p.host_ip == port.host_ip)
                });
                if let Some((_, first)) = clash {
                    out.push(
                        ctx.at_value(
                            Severity::Error,
                            "duplicate_host_port",
                            path.clone(),
                            format!(
                                "host `{host_name}`: port {}/{} is published twice",
                                port.host_port, port.protocol
                            ),
                        )
                        .help("publish one of them on another host port, e.g. \"8081:80\"")
                        .related(
                            first.clone(),
                            ctx.value_span(first),
                            "first published here",
                        ),
                    );
                } else {
                    seen.push((*port, path));
                }
            }
        }
    }
    out
}

/// `depends_on` must name containers on the same host, without cycles.
pub fn container_dependencies(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let fleet = ctx.fleet;
    let mut out = Vec::new();
    let mut reported_fleet: BTreeSet<(ContainerName, ContainerName)> = BTreeSet::new();
    for host_name in fleet.hosts.keys() {
        let containers = fleet.containers_of(host_name);
        let names: BTreeSet<&ContainerName> = containers.iter().map(|c| &c.name).collect();
        for hc in &containers {
            let base = container_path(fleet, host_name, &hc.name).key("depends_on");
            let from_fleet = hc.origin == model::ContainerOrigin::Fleet;
            for (i, dep) in hc.container.depends_on.iter().enumerate() {
                if dep == &hc.name {
                    out.push(
                        ctx.at_value(
                            Severity::Error,
                            "dependency_cycle",
                            base.index(i),
                            format!("container `{}` depends on itself", hc.name),
                        )
                        .help("remove it from its own `depends_on`"),
                    );
                } else if !names.contains(dep) {
                    if from_fleet && !reported_fleet.insert((hc.name.clone(), dep.clone())) {
                        continue;
                    }
                    out.push(
                        ctx.at_value(
                            Severity::Error,
                            "unknown_dependency",
                            base.index(i),
                            format!(
                                "container `{}` depends on `{dep}`, which does not run on host `{host_name}`",
                                hc.name
                            ),
                        )
                        .help(format!(
                            "define `{dep}` on `{host_name}`, or remove it from `depends_on`; known here: {}",
                            names.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(", ")
                        )),
                    );
                }
            }
        }
        // Cycles longer than one: walk the graph from each container.
        let graph: BTreeMap<&ContainerName, Vec<&ContainerName>> = containers
            .iter()
            .map(|c| {
                (
                    &c.name,
                    c.container
                        .depends_on
                        .iter()
                        .filter(|d| names.contains(d))
                        .collect(),
                )
            })
            .collect();
        let reach = |from: &ContainerName| -> BTreeSet<&ContainerName> {
            let mut stack: Vec<&ContainerName> = graph.get(from).cloned().unwrap_or_default();
            let mut seen = BTreeSet::new();
            while let Some(n) = stack.pop() {
                if seen.insert(n) {
                    stack.extend(graph.get(n).cloned().unwrap_or_default());
                }
            }
            seen
        };
        let reaches: BTreeMap<&ContainerName, BTreeSet<&ContainerName>> =
            graph.keys().map(|n| (*n, reach(n))).collect();
        for (start, reachable) in &reaches {
            let self_loop = graph.get(start).is_some_and(|d| d.contains(start));
            if self_loop || !reachable.contains(start) {
                continue;
            }
            // Report each cycle once, at its alphabetically first member.
            let members: Vec<&ContainerName> = reachable
                .iter()
                .copied()
                .filter(|n| reaches.get(n).is_some_and(|r| r.contains(start)))
                .collect();
            if members.iter().any(|m| m < start) {
                continue;
            }
            let path = container_path(fleet, host_name, start).key("depends_on");
            let names: Vec<&str> = members.iter().map(|m| m.as_str()).collect();
            out.push(
                ctx.at_value(
                    Severity::Error,
                    "dependency_cycle",
                    path,
                    format!(
                        "containers on host `{host_name}` wait for each other through `depends_on`: {}",
                        names.join(" → ")
                    ),
                )
                .help("break the cycle: systemd cannot start containers that wait for each other"),
            );
        }
    }
    out
}

/// Images that can change under the same name make deploys unreproducible.
pub fn container_images(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let fleet = ctx.fleet;
    let mut out = Vec::new();
    let mut check = |path: Path, image: &model::ImageRef| {
        if image.is_floating() {
            out.push(
                ctx.at_value(
                    Severity::Warning,
                    "unpinned_image",
                    path,
                    format!("image `{image}` uses a moving tag: every pull may run different code"),
                )
                .help("pin a digest (\"name:1.2.3@sha256:…\", best: the bytes cannot change) or at least a version tag (\"name:1.2.3\")"),
            );
        }
    };
    for (name, c) in &fleet.containers {
        check(
            Path::root()
                .key("containers")
                .key(name.as_str())
                .key("image"),
            &c.image,
        );
    }
    for (host_name, host) in &fleet.hosts {
        for (name, c) in &host.containers {
            check(
                host_path(host_name)
                    .key("containers")
                    .key(name.as_str())
                    .key("image"),
                &c.image,
            );
        }
    }
    out
}

/// Network settings that contradict each other or NixOS.
pub fn network(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (name, host) in &ctx.fleet.hosts {
        let net = &host.network;
        let base = host_path(name).key("network");
        match net.mode {
            AddressMode::Static => {
                for (field, missing) in [
                    ("address", net.address.is_none()),
                    ("gateway", net.gateway.is_none()),
                ] {
                    if missing {
                        out.push(
                            ctx.at_key(
                                Severity::Error,
                                "incomplete_static_network",
                                base.key("mode"),
                                format!("host `{name}` uses a static address but sets no `network.{field}`"),
                            )
                            .help(format!("add `{field} = …` to `[hosts.{name}.network]`, or use `mode = \"dhcp\"`")),
                        );
                    }
                }
            }
            AddressMode::Dhcp => {
                for (field, set) in [
                    ("address", net.address.is_some()),
                    ("gateway", net.gateway.is_some()),
                ] {
                    if set {
                        out.push(
                            ctx.at_key(
                                Severity::Error,
                                "static_settings_with_dhcp",
                                base.key(field),
                                format!(
                                    "host `{name}` uses DHCP, so `network.{field}` would be ignored"
                                ),
                            )
                            .help("set `mode = \"static\"`, or remove the setting"),
                        );
                    }
                }
            }
        }
    }
    out
}

/// Lists that repeat an entry, and module paths the flake cannot import.
pub fn host_lists(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (name, host) in &ctx.fleet.hosts {
        let base = host_path(name);
        let lists: [(&str, Vec<&str>); 4] = [
            ("users", host.users.iter().map(|u| u.as_str()).collect()),
            ("tags", host.tags.iter().map(|t| t.as_str()).collect()),
            (
                "packages",
                host.packages.iter().map(String::as_str).collect(),
            ),
            ("modules", host.modules.iter().map(String::as_str).collect()),
        ];
        for (field, items) in lists {
            for (i, item) in items.iter().enumerate() {
                if let Some(j) = items[..i].iter().position(|x| x == item) {
                    let first = base.key(field).index(j);
                    out.push(
                        ctx.at_value(
                            Severity::Warning,
                            "duplicate_entry",
                            base.key(field).index(i),
                            format!("`{item}` is listed twice in `hosts.{name}.{field}`"),
                        )
                        .help("remove the repeated entry")
                        .related(
                            first.clone(),
                            ctx.value_span(&first),
                            "first listed here",
                        ),
                    );
                }
            }
        }
        for (i, module) in host.modules.iter().enumerate() {
            let bad = if module.starts_with('/') {
                Some("is absolute; the flake can only import files inside the repository")
            } else if module.split('/').any(|c| c == "..") {
                Some("leaves the repository through `..`")
            } else if !module.ends_with(".nix") {
                Some("is not a `.nix` file")
            } else {
                None
            };
            if let Some(why) = bad {
                out.push(
                    ctx.at_value(
                        Severity::Error,
                        "invalid_module_path",
                        base.key("modules").index(i),
                        format!("module `{module}` {why}"),
                    )
                    .help("use a path relative to fleet.toml, e.g. \"modules/media.nix\""),
                );
            }
        }
        for (i, package) in host.packages.iter().enumerate() {
            // Attribute path segments; a leading digit is fine (the renderer quotes such names).
            let ok = !package.is_empty()
                && package.split('.').all(|part| {
                    !part.is_empty()
                        && part
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '\''))
                });
            if !ok {
                out.push(
                    ctx.at_value(
                        Severity::Error,
                        "invalid_package",
                        base.key("packages").index(i),
                        format!("`{package}` is not a nixpkgs attribute name"),
                    )
                    .help("use the attribute name from search.nixos.org, e.g. \"htop\" or \"python3Packages.requests\""),
                );
            }
        }
    }
    out
}

/// `allow` entries need a reason and should name a real code.
pub fn allow_entries(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (name, host) in &ctx.fleet.hosts {
        for (i, allow) in host.allow.iter().enumerate() {
            let path = host_path(name).key("allow").index(i);
            if allow.reason.trim().is_empty() {
                out.push(
                    ctx.at_value(
                        Severity::Error,
                        "allow_without_reason",
                        path.key("reason"),
                        format!(
                            "`allow` of `{}` on host `{name}` gives no reason",
                            allow.code
                        ),
                    )
                    .help("say why the warning does not apply here; reviewers read it"),
                );
            }
            match crate::codes::lookup(&allow.code) {
                None => out.push(
                    ctx.at_value(
                        Severity::Warning,
                        "unknown_allow_code",
                        path.key("code"),
                        format!("`{}` is not a pifleet diagnostic code", allow.code),
                    )
                    .help("use a code printed by `pifleet check`, e.g. \"unpinned_image\""),
                ),
                Some(info) if info.severity == Severity::Error => out.push(
                    ctx.at_value(
                        Severity::Warning,
                        "allow_has_no_effect",
                        path.key("code"),
                        format!("`{}` is an error; errors cannot be silenced", allow.code),
                    )
                    .help("fix the error instead, and remove this entry"),
                ),
                Some(_) => {}
            }
        }
    }
    out
}

/// sshd settings pifleet manages through dedicated fields, so `extra_settings` cannot quietly undo them (e.g.
/// `PermitRootLogin = "yes"`, which `permit_root_login` refuses).
const MANAGED_SSHD_SETTINGS: &[(&str, &str)] = &[
    ("PermitRootLogin", "permit_root_login"),
    ("PasswordAuthentication", "password_authentication"),
    (
        "KbdInteractiveAuthentication",
        "kbd_interactive_authentication",
    ),
    (
        "ChallengeResponseAuthentication",
        "kbd_interactive_authentication",
    ),
    ("AllowUsers", "allow_users"),
    ("DenyUsers", "deny_users"),
    ("Port", "port"),
    ("AuthorizedKeysFile", "authorized_keys_in_homedir"),
];

/// `extra_settings` keys must be sshd keywords and must not override the settings pifleet manages.
pub fn sshd_settings(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let fleet = ctx.fleet;
    let mut out = Vec::new();
    let mut tables = vec![(
        Path::root().key("ssh").key("extra_settings"),
        &fleet.ssh.extra_settings,
    )];
    for (name, host) in &fleet.hosts {
        if let Some(o) = &host.ssh {
            tables.push((
                host_path(name).key("ssh").key("extra_settings"),
                &o.extra_settings,
            ));
        }
    }
    for (base, settings) in tables {
        for key in settings.keys() {
            let path = base.key(key.as_str());
            if let Some((_, field)) = MANAGED_SSHD_SETTINGS
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
            {
                out.push(
                    ctx.at_key(
                        Severity::Error,
                        "sshd_setting_conflict",
                        path,
                        format!(
                            "`{key}` is managed by pifleet and cannot be set in `extra_settings`"
                        ),
                    )
                    .help(format!("use the `{field}` field of the SSH policy instead")),
                );
            } else if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric()) {
                out.push(
                    ctx.at_key(
                        Severity::Error,
                        "invalid_sshd_setting",
                        path,
                        format!("`{key}` is not an sshd_config keyword"),
                    )
                    .help("use a keyword from `man sshd_config`, e.g. MaxAuthTries"),
                );
            }
        }
    }
    out
}

/// What shadow-utils accepts: letters, digits, '_', '.', '-', not starting with '-', at most 32 characters.
fn is_group_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && !s.starts_with('-')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// A name for the wifi secrets file (wpa_supplicant `ext:NAME`): an identifier.
fn is_secret_name(s: &str) -> bool {
    s.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Docker passes any name without '=' (some images read dotted names); refuse only what cannot work.
fn is_env_name(s: &str) -> bool {
    !s.is_empty() && !s.contains('=') && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn is_time_zone(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('/')
        && !s.split('/').any(|p| p.is_empty() || p == "." || p == "..")
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-' | '+'))
}

fn is_interface(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 15
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Free-form strings that still have a grammar on the NixOS side: groups, time zones, interfaces, SSIDs,
/// environment variable names. Caught here, they get a line number; caught by Nix, a stack trace.
pub fn string_formats(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let fleet = ctx.fleet;
    let mut out = Vec::new();
    let mut bad = |code: &str, path: Path, message: String, help: &str| {
        out.push(
            ctx.at_value(Severity::Error, code, path, message)
                .help(help),
        );
    };
    for (name, user) in &fleet.users {
        for (i, group) in user.groups.iter().enumerate() {
            if !is_group_name(group) {
                bad(
                    "invalid_group",
                    user_path(name).key("groups").index(i),
                    format!("`{group}` is not a valid group name"),
                    "use letters, digits, '_', '.' and '-' (at most 32), e.g. \"wheel\" or \"docker\"",
                );
            }
        }
    }
    let tz_help = "use a tz database name such as \"UTC\" or \"Europe/Amsterdam\" (`timedatectl list-timezones`)";
    if !is_time_zone(&fleet.fleet.time_zone) {
        bad(
            "invalid_time_zone",
            Path::root().key("fleet").key("time_zone"),
            format!("`{}` is not a time zone name", fleet.fleet.time_zone),
            tz_help,
        );
    }
    let mut containers: Vec<(Path, &BTreeMap<String, String>)> = fleet
        .containers
        .iter()
        .map(|(n, c)| {
            (
                Path::root().key("containers").key(n.as_str()),
                &c.environment,
            )
        })
        .collect();
    for (name, host) in &fleet.hosts {
        let base = host_path(name);
        if let Some(tz) = &host.time_zone
            && !is_time_zone(tz)
        {
            bad(
                "invalid_time_zone",
                base.key("time_zone"),
                format!("`{tz}` is not a time zone name"),
                tz_help,
            );
        }
        if let Some(interface) = &host.network.interface
            && !is_interface(interface)
        {
            bad(
                "invalid_interface",
                base.key("network").key("interface"),
                format!("`{interface}` is not a network interface name"),
                "use the name `ip link` shows, e.g. \"eth0\", \"end0\" or \"wlan0\" (at most 15 characters)",
            );
        }
        if let Some(wifi) = &host.wifi {
            if wifi.ssid.is_empty() || wifi.ssid.len() > 32 {
                bad(
                    "invalid_ssid",
                    base.key("wifi").key("ssid"),
                    format!(
                        "an SSID has 1 to 32 bytes; `{}` has {}",
                        wifi.ssid,
                        wifi.ssid.len()
                    ),
                    "write the network name exactly as it is broadcast",
                );
            }
            if !is_secret_name(&wifi.psk_name) {
                bad(
                    "invalid_psk_name",
                    base.key("wifi").key("psk_name"),
                    format!("`{}` cannot be a name in the secrets file", wifi.psk_name),
                    "use letters, digits and '_', e.g. \"psk\" or \"HOME_WIFI\"",
                );
            }
            if !wifi.secrets_file.starts_with('/') {
                bad(
                    "invalid_secrets_file",
                    base.key("wifi").key("secrets_file"),
                    format!(
                        "`{}` is not an absolute path on the host",
                        wifi.secrets_file
                    ),
                    "use an absolute path such as \"/var/lib/secrets/wifi\"",
                );
            }
        }
        for (cname, c) in &host.containers {
            containers.push((base.key("containers").key(cname.as_str()), &c.environment));
        }
    }
    for (base, env) in containers {
        for key in env.keys() {
            if !is_env_name(key) {
                bad(
                    "invalid_environment_name",
                    base.key("environment").key(key.as_str()),
                    format!("`{key}` is not a valid environment variable name"),
                    "a variable name cannot be empty or contain '=' or white space",
                );
            }
        }
    }
    out
}
