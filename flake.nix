{
  description = "pifleet: a fleet of Raspberry Pis and other NixOS hosts, run declaratively from one workstation";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";
    # Only for hosts that opt in (`nixosHardware = true`): its Pi profiles build their own kernel.
    nixos-hardware = {
      url = "github:NixOS/nixos-hardware";
      inputs.nixpkgs.follows = "nixpkgs";
    };
    # Decrypts secrets/<name>.age on the host during activation, with its SSH host key. Only for
    # hosts that read secrets; its darwin and home-manager inputs are not fetched.
    agenix = {
      url = "github:ryantm/agenix";
      inputs.nixpkgs.follows = "nixpkgs";
      inputs.darwin.follows = "";
      inputs.home-manager.follows = "";
    };
  };

  outputs = { self, nixpkgs, nixos-hardware, agenix }:
    let
      pifleetLib = import ./nix/lib.nix;
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAllSystems = nixpkgs.lib.genAttrs systems;

      # The example fleet: fleet.toml → `pifleet gen` → hosts/.
      fleet = pifleetLib.mkFleet {
        inherit self nixpkgs nixos-hardware agenix systems;
      };
    in
    fleet // {
      lib = pifleetLib;

      devShells = forAllSystems (system:
        let pkgs = nixpkgs.legacyPackages.${system}; in
        {
          default = pkgs.mkShell {
            packages = [
              pkgs.cargo
              pkgs.rustc
              pkgs.clippy
              pkgs.rustfmt
              pkgs.nixpkgs-fmt
              pkgs.cargo-insta
            ];
          };
        });

      templates.default = {
        path = ./templates/default;
        description = "A fleet repository: fleet.toml and a flake that calls pifleet's mkFleet";
      };
    };
}
