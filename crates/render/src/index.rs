//! `hosts/default.nix`: what the flake library needs to know about each host before it can
//! evaluate it: its system, board profile, entry module, SD image and deploy target.
//!
//! The shape is the contract with `nix/lib.nix` (`mkFleet`), documented in `nix/README.md`.

use model::{BuildOn, Fleet};
use nixgen::{AttrPath, AttrSet, Expr};

pub(crate) fn index(fleet: &Fleet) -> Expr {
    let mut set = AttrSet::new();
    for view in fleet.views() {
        let (name, host) = (view.name, view.host);
        let deploy = AttrSet::new()
            .with("address", view.deploy.address.as_str())
            .with("user", view.deploy.user.as_str())
            .with("port", view.deploy.port)
            .with(
                "buildOn",
                match view.deploy.build_on {
                    BuildOn::Workstation => "local",
                    BuildOn::Target => "target",
                },
            );
        let entry = AttrSet::new()
            .with("system", host.board.system())
            .with("board", host.board.as_str())
            .with("module", Expr::path(format!("./{name}")))
            .with("sdImage", host.board.system() == "aarch64-linux")
            .with("nixosHardware", host.nixos_hardware)
            // Hosts that decrypt secrets get agenix's NixOS module from the flake library.
            .with("agenix", !view.secrets.is_empty())
            .with("crossCompile", view.cross_compile)
            .with(
                "tags",
                Expr::list(host.tags.iter().map(|t| Expr::string(t.as_str()))),
            )
            .with("deploy", deploy);
        set.set(AttrPath::key(name.as_str()), entry);
    }
    Expr::attrs(set)
}
