//! Hosts: lists that repeat an entry, module paths and packages the flake must accept, board
//! options, time zones, and the health checks deploy runs before confirming a new system.

use model::{Board, Path};

use crate::codes::Code;
use crate::context::{Context, host_path};
use crate::diagnostic::Diagnostic;
use crate::rules::{Family, rules};

/// The hosts family.
pub(crate) const FAMILY: Family = Family {
    name: "hosts",
    rules: rules![
        host_lists,
        module_files,
        board_options,
        time_zones,
        trusted_users,
        health_checks
    ],
};

/// Lists that repeat an entry, and module paths the flake cannot import.
fn host_lists(ctx: &Context<'_>) -> Vec<Diagnostic> {
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
            // One pass with the first index of each item: lists can be long.
            let mut first: std::collections::HashMap<&str, usize> =
                std::collections::HashMap::new();
            for (i, item) in items.iter().enumerate() {
                let j = *first.entry(item).or_insert(i);
                if j != i {
                    let first = base.key(field).index(j);
                    out.push(
                        ctx.at_value(
                            Code::DuplicateEntry,
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
                        Code::InvalidModulePath,
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
                        Code::InvalidPackage,
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

/// `nixos_hardware` needs a profile for the board: nixos-hardware has Pi 3 and Pi 4 profiles only.
fn board_options(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (name, host) in &ctx.fleet.hosts {
        if host.nixos_hardware && !matches!(host.board, Board::Rpi3 | Board::Rpi4) {
            out.push(
                ctx.at_value(
                    Code::NixosHardwareUnsupported,
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

fn is_time_zone(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('/')
        && !s.split('/').any(|p| p.is_empty() || p == "." || p == "..")
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-' | '+'))
}

/// Time zones become `time.timeZone`, which NixOS resolves to a file under zoneinfo: only tz
/// database names work.
fn time_zones(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let fleet = ctx.fleet;
    let mut places = vec![(
        Path::root().key("fleet").key("time_zone"),
        &fleet.fleet.time_zone,
    )];
    for (name, host) in &fleet.hosts {
        if let Some(tz) = &host.time_zone {
            places.push((host_path(name).key("time_zone"), tz));
        }
    }
    places
        .into_iter()
        .filter(|(_, tz)| !is_time_zone(tz))
        .map(|(path, tz)| {
            ctx.at_value(
                Code::InvalidTimeZone,
                path,
                format!("`{tz}` is not a time zone name"),
            )
            .help("use a tz database name such as \"UTC\" or \"Europe/Amsterdam\" (`timedatectl list-timezones`)")
        })
        .collect()
}

/// `nix.settings.trusted-users` is root on the host: a trusted user can import store paths nobody
/// signed. `*` trusts everyone; broad groups (`@users`) nearly so.
fn trusted_users(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (i, user) in ctx.fleet.fleet.nix.trusted_users.iter().enumerate() {
        let broad = user.contains(['*', '?']) || matches!(user.as_str(), "@users" | "@nogroup");
        if broad {
            out.push(
                ctx.at_value(
                    Code::TrustedUsersWildcard,
                    Path::root().key("fleet").key("nix").key("trusted_users").index(i),
                    format!("`{user}` makes every matching user a trusted Nix user, which can import unsigned store paths: root on every host"),
                )
                .help("list users (or `@wheel`); the deploy user is trusted already"),
            );
        }
    }
    out
}

/// Hand-written modules must exist: the flake would stop with "path does not exist" at evaluation,
/// far from the line that names them. Looked up next to the inventory, when it is a file.
fn module_files(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let Some(base) = ctx.base else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (name, host) in &ctx.fleet.hosts {
        for (i, module) in host.modules.iter().enumerate() {
            // Paths the flake cannot import at all are `invalid_module_path`.
            if module.starts_with('/') || module.split('/').any(|c| c == "..") {
                continue;
            }
            let file = base.join(module.trim_start_matches("./"));
            if !file.is_file() {
                out.push(
                    ctx.at_value(
                        Code::MissingModule,
                        host_path(name).key("modules").index(i),
                        format!("module `{module}` of host `{name}` does not exist ({} is not a file)", file.display()),
                    )
                    .help("create it, or fix the path (relative to the inventory); remember `git add`: the flake sees only tracked files"),
                );
            }
        }
    }
    out
}

/// A deploy health check must name something the host has: a container check for a container the
/// host does not run would fail every confirmation, and every deploy would roll back. A check listed
/// twice is a slip.
fn health_checks(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for view in ctx.fleet.views() {
        let name = view.name;
        let base = host_path(name).key("deploy").key("health");
        for (i, check) in view.deploy.health.iter().enumerate() {
            if let Some(j) = view.deploy.health[..i].iter().position(|c| c == check) {
                out.push(
                    ctx.at_value(
                        Code::DuplicateEntry,
                        base.clone().index(i),
                        format!("the health check `{check}` is listed twice in `hosts.{name}.deploy.health`"),
                    )
                    .help("remove the repeated check")
                    .related(
                        base.clone().index(j),
                        ctx.value_span(&base.clone().index(j)),
                        "first listed here",
                    ),
                );
            }
            let model::HealthCheck::Container(container) = check else {
                continue;
            };
            if view.containers.iter().any(|c| c.name == container) {
                continue;
            }
            let known: Vec<&str> = view.containers.iter().map(|c| c.name.as_str()).collect();
            out.push(
                ctx.at_value(
                    Code::UnknownHealthContainer,
                    base.clone().index(i).key("container"),
                    format!("host `{name}` runs no container `{container}`, so this check would fail every deploy"),
                )
                .help(if known.is_empty() {
                    "the host runs no containers: remove the check, or add the container".to_owned()
                } else {
                    format!("use one of its containers ({})", known.join(", "))
                }),
            );
        }
    }
    out
}
