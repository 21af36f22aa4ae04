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
  # same initrd drivers the SD image has: sd-image.nix sets `hardware.enableAllHardware = true`,
  # so the deploy configuration matches the image it was flashed with.
  #
  # Not with the vendor kernel (`nixos_hardware = true`): all-hardware.nix lists initrd modules
  # that linux-rpi does not build (ahci, sun4i-drm, dw-hdmi, rockchipdrm, …), and
  # makeModulesClosure fails on the first one ("modprobe: FATAL: Module … not found",
  # NixOS/nixpkgs#154163). A list option cannot lose entries, so nix/lib.nix turns the whole
  # profile off with mkForce for those hosts (sd-image.nix sets it at normal priority) and keeps
  # the firmware it brought.
  hardware.enableAllHardware = lib.mkDefault true;

  # The file systems of the SD image (sd-image.nix defines the same at normal priority). Each
  # field is a default of its own: a `lib.mkDefault { … }` around the whole entry would be
  # discarded as soon as a host module sets any field at normal priority (the generated
  # `fileSystems."/".options = [ "noatime" ]` of `storage.noatime`), taking device and fsType
  # with it.
  fileSystems."/".device = lib.mkDefault "/dev/disk/by-label/NIXOS_SD";
  fileSystems."/".fsType = lib.mkDefault "ext4";
  fileSystems."/boot/firmware".device = lib.mkDefault "/dev/disk/by-label/FIRMWARE";
  fileSystems."/boot/firmware".fsType = lib.mkDefault "vfat";
  fileSystems."/boot/firmware".options = lib.mkDefault [ "nofail" "noauto" ];
}
