{
  description = "My fleet, managed with pifleet";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";
    nixos-hardware = {
      url = "github:NixOS/nixos-hardware";
      inputs.nixpkgs.follows = "nixpkgs";
    };
    pifleet = {
      # Where you get pifleet from.
      url = "git+https://example.invalid/pifleet";
      inputs.nixpkgs.follows = "nixpkgs";
      inputs.nixos-hardware.follows = "nixos-hardware";
    };
  };

  # fleet.toml → `nix run .#gen` → hosts/ → nixosConfigurations, SD images, deploys.
  outputs = { self, nixpkgs, nixos-hardware, pifleet }:
    pifleet.lib.mkFleet {
      inherit self nixpkgs nixos-hardware;
      # Modules every host gets, next to the ones listed per host in fleet.toml:
      # extraModules = [ ./modules/common.nix ];
      # Cross-compile aarch64 hosts instead of emulating them (fast, but few binary cache hits):
      # crossCompile = true;
    };
}
