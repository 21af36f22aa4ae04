{
  description = "My fleet, managed with pifleet";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";
    nixos-hardware = {
      url = "github:NixOS/nixos-hardware";
      inputs.nixpkgs.follows = "nixpkgs";
    };
    # Decrypts secrets/<name>.age on the hosts that read secrets, with their SSH host keys.
    agenix = {
      url = "github:ryantm/agenix";
      inputs.nixpkgs.follows = "nixpkgs";
      inputs.darwin.follows = "";
      inputs.home-manager.follows = "";
    };
    pifleet = {
      # Where you get pifleet from: REPLACE this placeholder with the URL of pifleet's Git
      # repository (git+https://…) or of a local checkout (git+file:///home/you/src/pifleet).
      # `pifleet init` fills it in for you when it can.
      url = "git+https://example.invalid/pifleet";
      inputs.nixpkgs.follows = "nixpkgs";
      inputs.nixos-hardware.follows = "nixos-hardware";
      inputs.agenix.follows = "agenix";
    };
  };

  # fleet.toml → `nix run .#gen` → hosts/ → nixosConfigurations, SD images, deploys.
  outputs = { self, nixpkgs, nixos-hardware, agenix, pifleet }:
    pifleet.lib.mkFleet {
      inherit self nixpkgs nixos-hardware agenix;
      # Modules every host gets, next to the ones listed per host in fleet.toml:
      # extraModules = [ ./modules/common.nix ];
      # Cross-compile aarch64 hosts instead of emulating them (fast, but few binary cache hits):
      # crossCompile = true;
    };
}
