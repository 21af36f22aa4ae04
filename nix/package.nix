# pifleet, the command-line tool, built from this repository's Cargo workspace.
{ lib
, stdenv
, rustPlatform
, installShellFiles
, makeBinaryWrapper
, nix
, openssh
, nixos-rebuild-ng
}:

let
  workspace = lib.importTOML ../Cargo.toml;
in
rustPlatform.buildRustPackage {
  pname = "pifleet";
  inherit (workspace.workspace.package) version;

  # Only what cargo and the tests read: editing docs, nix/ or the flake doesn't rebuild pifleet.
  # templates/ is compiled in: `pifleet init` writes the fleet template's flake.nix.
  src = lib.fileset.toSource {
    root = ../.;
    fileset = lib.fileset.unions [
      ../Cargo.toml
      ../Cargo.lock
      ../crates
      ../templates
      (lib.fileset.maybeMissing ../clippy.toml)
      (lib.fileset.maybeMissing ../schema)
      (lib.fileset.maybeMissing ../snapshots)
      (lib.fileset.maybeMissing ../fleet.toml)
      (lib.fileset.maybeMissing ../hosts)
    ];
  };

  cargoLock.lockFile = ../Cargo.lock;

  cargoBuildFlags = [ "--package" "pifleet" ];
  cargoTestFlags = [ "--workspace" ];
  # Tests that need Nix, sshd or loop devices skip inside the build sandbox; CI runs them for real.

  nativeBuildInputs = [ installShellFiles makeBinaryWrapper ];

  postInstall = lib.optionalString (stdenv.buildPlatform.canExecute stdenv.hostPlatform) ''
    installShellCompletion --cmd pifleet \
      --bash <($out/bin/pifleet completions bash) \
      --fish <($out/bin/pifleet completions fish) \
      --zsh <($out/bin/pifleet completions zsh)
  '' + ''
    # deploy runs nixos-rebuild, nix and ssh. They go at the end of PATH: the user's own nix (which
    # matches their daemon) and ssh (with their agent and config) come first when installed.
    wrapProgram $out/bin/pifleet \
      --suffix PATH : ${lib.makeBinPath [ nix openssh nixos-rebuild-ng ]}
  '';

  meta = {
    description = "Run a fleet of Raspberry Pis and other NixOS machines declaratively from one workstation";
    license = with lib.licenses; [ mit asl20 ];
    mainProgram = "pifleet";
  };
}
