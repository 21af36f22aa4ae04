# Any aarch64 board that boots the Hydra-style aarch64 SD image: U-Boot reads extlinux.conf from
# the root partition, which gives a generation menu (rollback at boot). The layout matches what
# sd-image-aarch64.nix writes, so `<host>` and `<host>-sd` are the same system and the first deploy
# after flashing changes almost nothing.
{ lib, ... }:

{
  boot.loader.grub.enable = lib.mkDefault false;
  boot.loader.generic-extlinux-compatible.enable = lib.mkDefault true;
  # /boot lives on the card's root partition: keep a bounded number of generations.
  boot.loader.generic-extlinux-compatible.configurationLimit = lib.mkDefault 10;

  # The mainline kernel from the binary cache (NixOS's default `boot.kernelPackages`), with the
  # same initrd drivers the SD image has.
  hardware.enableAllHardware = lib.mkDefault true;

  # The file systems of the SD image (sd-image.nix defines the same at normal priority).
  fileSystems."/" = lib.mkDefault {
    device = "/dev/disk/by-label/NIXOS_SD";
    fsType = "ext4";
  };
  fileSystems."/boot/firmware" = lib.mkDefault {
    device = "/dev/disk/by-label/FIRMWARE";
    fsType = "vfat";
    options = [ "nofail" "noauto" ];
  };
}
