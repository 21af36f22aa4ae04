# The pifleet flake library. `mkFleet` turns the index that `pifleet gen` writes (hosts/default.nix)
# into the outputs of a fleet repo's flake: one NixOS system per host, an SD image system per Pi,
# the images as packages, apps that run pifleet, checks and a formatter.
let
  # One profile per board; the generated host module holds the host's data, these hold the hardware.
  boards = {
    rpi3 = ./boards/rpi3.nix;
    rpi4 = ./boards/rpi4.nix;
    zero2w = ./boards/zero2w.nix;
    generic-aarch64 = ./boards/generic-aarch64.nix;
    x86_64 = ./boards/x86_64.nix;
  };

  # nixos-hardware profiles, only for hosts that opt in: they build the vendor kernel, which is not
  # in the binary cache (hours under emulation).
  hardwareProfiles = {
    rpi3 = "raspberry-pi-3";
    rpi4 = "raspberry-pi-4";
  };

  # The subcommands exposed as `nix run .#<name>`.
  appCommands = [ "gen" "deploy" "check" "flash" ];
in
{
  mkFleet =
    { self
    , nixpkgs
    , nixos-hardware ? null
      # ryantm/agenix, for hosts that read secrets (`agenix = true` in the index).
    , agenix ? null
      # The index written by `pifleet gen`; empty until the first `gen` (or `git add hosts`).
    , hosts ? (if builtins.pathExists (self + "/hosts/default.nix") then import (self + "/hosts") else { })
    , systems ? [ "x86_64-linux" "aarch64-linux" ]
      # null: build pifleet from this source with the fleet's nixpkgs; or a function `pkgs: package`,
      # or a package.
    , pifleet ? null
      # Modules added to every host (and its SD image).
    , extraModules ? [ ]
      # Fleet-wide default for hosts that don't say: cross-compile aarch64 hosts instead of emulating.
    , crossCompile ? false
    , buildPlatform ? "x86_64-linux"
    , ...
    }:
    let
      inherit (nixpkgs) lib;

      forAllSystems = lib.genAttrs systems;
      pkgsFor = system: nixpkgs.legacyPackages.${system};

      pifleetFor = system:
        if pifleet == null then (pkgsFor system).callPackage ./package.nix { }
        else if builtins.isFunction pifleet then pifleet (pkgsFor system)
        else pifleet;

      sdHosts = lib.filterAttrs (_: host: host.sdImage or false) hosts;

      # Where an error in one of our inline modules points to.
      here = toString ./lib.nix;

      boardModule = name: host:
        let
          board = host.board or (throw "pifleet: host ${name} has no board in hosts/default.nix");
        in
        if boards ? ${board} then boards.${board}
        else throw "pifleet: host ${name} has unknown board ${board}";

      hardwareModules = name: host:
        let
          profile = hardwareProfiles.${host.board} or
            (throw "pifleet: host ${name} sets nixosHardware, but nixos-hardware has no profile for board ${host.board}");
        in
        if nixos-hardware == null then
          throw "pifleet: host ${name} sets nixosHardware; pass nixos-hardware to mkFleet"
        else [
          nixos-hardware.nixosModules.${profile}
          {
            _file = "${here}#nixos-hardware";
            # Without it nixos-hardware's firmware partition has no U-Boot, and the extlinux
            # generation menu (rollback at boot) never runs.
            hardware.raspberry-pi.firmware.uboot.enable = true;
            # The vendor kernel (linux-rpi) lacks modules that all-hardware.nix puts in the initrd
            # (ahci, sun4i-drm, dw-hdmi, …), and makeModulesClosure stops at the first one
            # (NixOS/nixpkgs#154163). sd-image.nix and the board profile turn enableAllHardware on;
            # mkForce is the only way to turn it off, since a list cannot lose entries. The profile's
            # own initrd modules (vc4, pcie_brcmstb, reset-raspberrypi, usb_storage, …) stay, and
            # so does the firmware all-hardware brought (the Pi's Wi-Fi and Bluetooth blobs).
            # Preferred over `makeModulesClosure { allowMissing = true; }`, which would also hide a
            # boot module that is really missing.
            hardware.enableAllHardware = lib.mkForce false;
            hardware.enableRedistributableFirmware = lib.mkDefault true;
          }
        ];

      # agenix's NixOS module for hosts that decrypt secrets. It decrypts with the host's SSH host key
      # (`age.identityPaths` defaults to the ed25519 key of services.openssh.hostKeys).
      agenixModules = name: host:
        if agenix == null then
          throw "pifleet: host ${name} reads secrets (secrets/*.age), but agenix was not passed to mkFleet: add the input `agenix.url = \"github:ryantm/agenix\"` to flake.nix and pass it: `mkFleet { inherit agenix; … }`"
        else [ agenix.nixosModules.default ];

      platformModule = name: host:
        let
          cross = host.crossCompile or crossCompile;
        in
        {
          _file = "${here}#platform";
          nixpkgs = {
            hostPlatform = host.system;
          } // lib.optionalAttrs (cross && host.system != buildPlatform) {
            # Native speed, but almost nothing comes from the binary cache.
            inherit buildPlatform;
          };
        };

      hostModules = name: host:
        [
          ./modules/common.nix
          (boardModule name host)
          host.module
          (platformModule name host)
        ]
        ++ lib.optionals (host.nixosHardware or false) (hardwareModules name host)
        ++ lib.optionals (host.agenix or false) (agenixModules name host)
        ++ extraModules;

      # The stock image boots Pi 3, Zero 2 W and Pi 4 on the cached mainline kernel.
      sdModules = name: host:
        if host.system != "aarch64-linux" then
          throw "pifleet: host ${name} asks for an SD image, but only aarch64-linux hosts have one"
        else [
          "${nixpkgs}/nixos/modules/installer/sd-card/sd-image-aarch64.nix"
          {
            _file = "${here}#sd-image";
            # result/sd-image/<host>.img.zst
            image.baseName = name;
          }
        ];

      mkSystem = name: host: modules: lib.nixosSystem {
        # The host's index entry, for hand-written modules that want its tags or deploy settings.
        specialArgs.pifleetHost = host // { inherit name; };
        inherit modules;
      };

      nixosConfigurations =
        lib.mapAttrs (name: host: mkSystem name host (hostModules name host)) hosts
        // lib.mapAttrs'
          (name: host: lib.nameValuePair "${name}-sd"
            (mkSystem name host (hostModules name host ++ sdModules name host)))
          sdHosts;

      sdImages = lib.mapAttrs'
        (name: _: lib.nameValuePair "${name}-sd"
          nixosConfigurations."${name}-sd".config.system.build.sdImage)
        sdHosts;

      # `command` null: pifleet itself (`nix run . -- secrets set NAME`).
      mkApp = system: command:
        let
          name = if command == null then "pifleet" else "pifleet-${command}";
          run = if command == null then "pifleet" else "pifleet ${command}";
          script = (pkgsFor system).writeShellScript name ''
            exec ${pifleetFor system}/bin/${run} "$@"
          '';
        in
        {
          type = "app";
          program = "${script}";
          meta.description = "Run `${run}` in the current directory";
        };

      checksFor = system:
        let
          pkgs = pkgsFor system;
          package = pifleetFor system;
        in
        {
          # Building the package runs pifleet's tests.
          pifleet = package;
        } // lib.optionalAttrs (builtins.pathExists (self + "/fleet.toml")) {
          generated = pkgs.runCommand "pifleet-generated-up-to-date" { nativeBuildInputs = [ package ]; } ''
            cp -r --no-preserve=mode ${self} fleet
            cd fleet
            pifleet gen --check
            touch $out
          '';
        };
    in
    {
      inherit nixosConfigurations;
      packages = forAllSystems (system: { default = pifleetFor system; } // sdImages);
      apps = forAllSystems (system: lib.genAttrs appCommands (mkApp system) // { default = mkApp system null; });
      checks = forAllSystems checksFor;
      # The generator's output is a fixed point of nixpkgs-fmt: `nix fmt` leaves it unchanged.
      formatter = forAllSystems (system: (pkgsFor system).nixpkgs-fmt);
    };
}
