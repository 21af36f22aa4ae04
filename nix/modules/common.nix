# Headless defaults for every host in the fleet. Values are defaults (lib.mkDefault) or merging lists,
# so the generated host module and hand-written modules win.
{ config, lib, ... }:

{
  # No desktop: these machines are reached over SSH.
  services.xserver.enable = lib.mkDefault false;
  fonts.fontconfig.enable = lib.mkDefault false;
  documentation.nixos.enable = lib.mkDefault false;

  # Wi-Fi and GPU firmware (the Pi's Broadcom Wi-Fi needs it).
  hardware.enableRedistributableFirmware = lib.mkDefault true;

  # Keep the journal from filling a small card. A drop-in, so the host can still use the
  # journald options.
  environment.etc."systemd/journald.conf.d/50-pifleet.conf".text = lib.mkDefault ''
    [Journal]
    SystemMaxUse=128M
    RuntimeMaxUse=32M
    MaxRetentionSec=1month
  '';
  # Apply a changed limit on switch, not only after a reboot.
  systemd.services.systemd-journald.restartTriggers = [
    config.environment.etc."systemd/journald.conf.d/50-pifleet.conf".source
  ];

  boot.tmp.cleanOnBoot = lib.mkDefault true;

  # Nix settings (flakes, trusted users, garbage collection) come from the inventory
  # (`[fleet.nix]`) through the generated host module, so `flakes = false` really means off.
}
