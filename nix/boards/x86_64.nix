# A VPS or PC. There is no SD image, and the disks are left to the user: list a hand-written module
# with `fileSystems` and `boot.loader` in the host's `modules` (or use disko).
{ ... }:

{ }
