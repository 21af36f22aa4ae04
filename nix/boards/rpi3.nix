# Raspberry Pi 3 (1 GB) on the mainline kernel and the stock aarch64 SD image.
# With `nixosHardware = true` the flake library adds nixos-hardware's raspberry-pi-3 profile too.
{ lib, ... }:

{
  imports = [ ./generic-aarch64.nix ];

  # 1 GB of RAM: compressed swap in memory keeps nix and containers from being OOM-killed.
  zramSwap.enable = lib.mkDefault true;
}
