//! Hosts: lists that repeat an entry, module paths and packages the flake must accept, board
//! options, and time zones.

use model::{Board, Path};

use crate::codes::Code;
use crate::context::{Context, host_path};
use crate::diagnostic::Diagnostic;
use crate::rules::{Family, rules};

/// The hosts family.
pub(crate) const FAMILY: Family = Family {
    name: "hosts",
    rules: rules![host_lists, board_options, time_zones],
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
            for (i, item) in items.iter().enumerate() {
                if let Some(j) = items[..i].iter().position(|x| x == item) {
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
