//! Containers: placement of fleet containers, ports, dependencies, images, names, and what a
//! container exposes or leaks (secrets in the environment, sensitive ports, the Docker socket).

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use model::{Container, ContainerName, ContainerOrigin, Fleet, HostContainer, HostName, Path};

use crate::codes::Code;
use crate::context::{Context, host_path};
use crate::diagnostic::Diagnostic;
use crate::rules::{Family, rules};
use crate::secret::{self, Finding};

/// The containers family.
pub(crate) const FAMILY: Family = Family {
    name: "containers",
    rules: rules![
        placement,
        container_ports,
        container_dependencies,
        container_images,
        environment_names,
        container_secrets,
        container_exposure,
    ],
};

/// Fleet containers must be placed by existing tags and hosts, and must not clash with a host's own container.
fn placement(ctx: &Context<'_>) -> Vec<Diagnostic> {
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
                        Code::UnknownPlacementTag,
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
                        Code::UnknownPlacementHost,
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
                    Code::UnplacedContainer,
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
                        Code::ContainerNameConflict,
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

/// Where a container of `host_name` was written, for pointing at it.
fn container_path(host_name: &HostName, hc: &HostContainer<'_>) -> Path {
    match hc.origin {
        ContainerOrigin::Host => host_path(host_name).key("containers").key(hc.name.as_str()),
        ContainerOrigin::Fleet => Path::root().key("containers").key(hc.name.as_str()),
    }
}

/// Two containers on one host cannot publish the same host port.
fn container_ports(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for view in &ctx.hosts {
        let host_name = view.name;
        // Bucketed by port and protocol, so many ports stay linear.
        let mut seen: BTreeMap<(u16, model::Protocol), Vec<(model::PortMapping, Path)>> =
            BTreeMap::new();
        for hc in &view.containers {
            let base = container_path(host_name, hc).key("ports");
            for (i, port) in hc.container.ports.iter().enumerate() {
                let path = base.index(i);
                let bucket = seen.entry((port.host_port, port.protocol)).or_default();
                let clash = bucket.iter().find(|(p, _)| {
                    p.host_ip.is_none() || port.host_ip.is_none() || p.host_ip == port.host_ip
                });
                if let Some((_, first)) = clash {
                    out.push(
                        ctx.at_value(
                            Code::DuplicateHostPort,
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
                    bucket.push((*port, path));
                }
            }
        }
    }
    out
}

/// `depends_on` must name containers on the same host, without cycles.
fn container_dependencies(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let mut reported_fleet: BTreeSet<(&ContainerName, &ContainerName)> = BTreeSet::new();
    for view in &ctx.hosts {
        let host_name = view.name;
        let containers = &view.containers;
        let names: BTreeSet<&ContainerName> = containers.iter().map(|c| c.name).collect();
        for hc in containers {
            let base = container_path(host_name, hc).key("depends_on");
            let from_fleet = hc.origin == ContainerOrigin::Fleet;
            for (i, dep) in hc.container.depends_on.iter().enumerate() {
                if dep == hc.name {
                    out.push(
                        ctx.at_value(
                            Code::DependencyCycle,
                            base.index(i),
                            format!("container `{}` depends on itself", hc.name),
                        )
                        .help("remove it from its own `depends_on`"),
                    );
                } else if !names.contains(dep) {
                    if from_fleet && !reported_fleet.insert((hc.name, dep)) {
                        continue;
                    }
                    out.push(
                        ctx.at_value(
                            Code::UnknownDependency,
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
                    c.name,
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
            let Some(hc) = containers.iter().find(|c| c.name == *start) else {
                continue;
            };
            let path = container_path(host_name, hc).key("depends_on");
            let names: Vec<&str> = members.iter().map(|m| m.as_str()).collect();
            out.push(
                ctx.at_value(
                    Code::DependencyCycle,
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
fn container_images(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let fleet = ctx.fleet;
    let mut out = Vec::new();
    let mut check = |path: Path, image: &model::ImageRef| {
        if image.is_floating() {
            out.push(
                ctx.at_value(
                    Code::UnpinnedImage,
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

/// Every container definition once: fleet containers at `containers.<name>`, host containers at
/// `hosts.<host>.containers.<name>`.
fn container_definitions(fleet: &Fleet) -> Vec<Definition<'_>> {
    let mut out: Vec<Definition<'_>> = fleet
        .containers
        .iter()
        .map(|(n, c)| Definition {
            host: None,
            name: n.as_str(),
            container: Cow::Owned(c.to_container()),
        })
        .collect();
    for (host_name, host) in &fleet.hosts {
        for (n, c) in &host.containers {
            out.push(Definition {
                host: Some(host_name),
                name: n.as_str(),
                container: Cow::Borrowed(c),
            });
        }
    }
    out
}

/// One container definition. Its path and its description are made only for a finding: a large
/// fleet has thousands of definitions and few findings.
struct Definition<'a> {
    host: Option<&'a model::HostName>,
    name: &'a str,
    container: Cow<'a, Container>,
}

impl Definition<'_> {
    fn base(&self) -> Path {
        match self.host {
            None => Path::root().key("containers").key(self.name),
            Some(host) => host_path(host).key("containers").key(self.name),
        }
    }

    fn what(&self) -> String {
        match self.host {
            None => format!("container `{}`", self.name),
            Some(host) => format!("container `{}` on host `{host}`", self.name),
        }
    }
}

/// Secrets written into a container's settings end up world-readable in the Nix store. Sure
/// findings are errors, guesses warnings a host can `allow` (the rule: [`crate::secret`]).
fn container_secrets(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let mut push = |code: Code,
                    guess_code: Code,
                    path: Path,
                    finding: Finding,
                    what: &str,
                    field: &str| {
        let (code, why) = match finding {
            Finding::Confident(why) => (code, why),
            Finding::Guess(why) => (guess_code, why),
        };
        out.push(
            ctx.at_value(
                code,
                path,
                format!("{what} has what looks like a secret in `{field}` ({why}): it would be stored world-readable in the Nix store"),
            )
            .help(if code == Code::PossibleSecret {
                "if it is a secret, store it with `pifleet secrets set` (a KEY=value line) and list it in `environment_secrets`; if not, `allow` this code with the reason".to_owned()
            } else {
                "store it with `pifleet secrets set` (a KEY=value line), list it in `environment_secrets` and refer to the variable; rotate the leaked value".to_owned()
            }),
        );
    };
    for d in container_definitions(ctx.fleet) {
        let c = &d.container;
        for (key, value) in &c.environment {
            if let Some(finding) = secret::judge_variable(key, value) {
                let path = d.base().key("environment").key(key.as_str());
                push(
                    Code::SecretInEnvironment,
                    Code::PossibleSecret,
                    path,
                    finding,
                    &d.what(),
                    "environment",
                );
            }
        }
        for (key, value) in &c.labels {
            if let Some(finding) = secret::judge_variable(key, value) {
                let path = d.base().key("labels").key(key.as_str());
                push(
                    Code::SecretInContainerSettings,
                    Code::PossibleSecret,
                    path,
                    finding,
                    &d.what(),
                    "labels",
                );
            }
        }
        let lists: [(&str, Vec<&str>); 3] = [
            (
                "command",
                c.command.iter().flatten().map(String::as_str).collect(),
            ),
            (
                "entrypoint",
                c.entrypoint.iter().map(String::as_str).collect(),
            ),
            (
                "extra_options",
                c.extra_options.iter().map(String::as_str).collect(),
            ),
        ];
        for (field, args) in lists {
            if let Some((i, finding)) = secret::judge_arguments(&args) {
                let path = match field {
                    "entrypoint" => d.base().key(field),
                    _ => d.base().key(field).index(i),
                };
                push(
                    Code::SecretInContainerSettings,
                    Code::PossibleSecret,
                    path,
                    finding,
                    &d.what(),
                    field,
                );
            }
        }
    }
    out
}

/// Services whose default setup trusts the network: published on every address, they are open to anyone who can
/// reach the host. Docker's published ports bypass the NixOS firewall (they are DNAT rules), so the firewall does
/// not help. Matched by the port inside the container.
const SENSITIVE_PORTS: &[(u16, &str)] = &[
    (2375, "the Docker API without TLS (root on the host)"),
    (2376, "the Docker API"),
    (3306, "MySQL/MariaDB"),
    (5432, "PostgreSQL"),
    (6379, "Redis (no password by default)"),
    (9200, "Elasticsearch/OpenSearch"),
    (11211, "memcached (no authentication)"),
    (27017, "MongoDB"),
];

/// Which engine's API socket a volume source gives a container, if any: either backend's socket
/// (a fleet container may run on Docker and Podman hosts alike), a rootless user's Podman socket,
/// or the directory that holds one.
fn engine_socket(source: &str) -> Option<&'static str> {
    use model::ContainerBackend;
    let source = source.trim_end_matches('/');
    if matches!(
        source,
        "/run" | "/var/run" | "/run/podman" | "/var/run/podman"
    ) {
        return Some("container engine");
    }
    if source.ends_with("/podman/podman.sock") {
        return Some("Podman");
    }
    if ContainerBackend::Docker.socket_paths().contains(&source) {
        // On a Podman host with `dockerSocket.enable`, the same path is Podman's socket.
        return Some("Docker");
    }
    None
}

/// Container exposure: sensitive ports on all addresses, the engine's socket, `privileged`.
fn container_exposure(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for d in container_definitions(ctx.fleet) {
        let c = &d.container;
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
                        Code::SensitivePortExposed,
                        d.base().key("ports").index(i),
                        format!("{} publishes {service} on every address (port {}); Docker's published ports bypass the host firewall", d.what(), port.host_port),
                    )
                    .help(format!("bind it to loopback (\"127.0.0.1:{}:{}\") or drop the mapping and connect over a Docker network", port.host_port, port.container_port)),
                );
            }
        }
        for (i, volume) in c.volumes.iter().enumerate() {
            let source = volume.as_str().split(':').next().unwrap_or_default();
            if let Some(engine) = engine_socket(source) {
                out.push(
                    ctx.at_value(
                        Code::DockerSocketMounted,
                        d.base().key("volumes").index(i),
                        format!("{} gets the {engine} socket (`{source}`): it can start a privileged container, which is root on the host", d.what()),
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
                Some(i) if !c.privileged => d.base().key("extra_options").index(i),
                _ => d.base().key("privileged"),
            };
            out.push(
                ctx.at_value(
                    Code::PrivilegedContainer,
                    path,
                    format!("{} runs privileged: it has every capability and device of the host, so a compromise of it is root on the host", d.what()),
                )
                .help("grant only what the image needs: `extra_options = [\"--device=/dev/ttyUSB0\"]` or `--cap-add=…`"),
            );
        }
    }
    out
}

/// Docker passes any name without '=' (some images read dotted names); refuse only what cannot work.
fn is_env_name(s: &str) -> bool {
    !s.is_empty() && !s.contains('=') && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Environment variable names Docker cannot pass. Caught here, they get a line number.
fn environment_names(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for d in container_definitions(ctx.fleet) {
        let c = &d.container;
        for key in c.environment.keys() {
            if !is_env_name(key) {
                out.push(
                    ctx.at_value(
                        Code::InvalidEnvironmentName,
                        d.base().key("environment").key(key.as_str()),
                        format!("`{key}` is not a valid environment variable name"),
                    )
                    .help("a variable name cannot be empty or contain '=' or white space"),
                );
            }
        }
    }
    out
}
