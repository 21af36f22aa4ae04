# Raspberry Pi 4 (1–8 GB) on the mainline kernel and the stock aarch64 SD image.
# With `nixosHardware = true` the flake library adds nixos-hardware's raspberry-pi-4 profile too.
{ ... }:

{
  imports = [ ./generic-aarch64.nix ];
}
