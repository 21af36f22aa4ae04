# Raspberry Pi Zero 2 W (512 MB) on the mainline kernel and the stock aarch64 SD image, which has a
# [pi02] section in its config.txt. nixos-hardware has no profile for it.
{ lib, ... }:

{
  imports = [ ./generic-aarch64.nix ];

  # 512 MB of RAM: swap to compressed memory, and never build on the board itself.
  zramSwap.enable = lib.mkDefault true;
  zramSwap.memoryPercent = lib.mkDefault 100;
  nix.settings.max-jobs = lib.mkDefault 1;
}
