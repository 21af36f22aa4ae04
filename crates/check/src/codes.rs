//! The catalogue of diagnostic codes: stable names that users put in `allow` and tools match on.
//!
//! A code is a typed value ([`Code`]) that carries everything about it: its name, its severity, the
//! group it is documented in, a one-line summary, a minimal example that triggers it and the fix.
//! Rules name a `Code`, never a string, so a severity is stated once, here, and cannot disagree with
//! a call site. `docs/diagnostics.md` is generated from this catalogue ([`crate::docs`]) and a test
//! keeps the committed page in step. Adding a code is one entry below.
//!
//! Codes never change meaning once released.
//!
//! This file is long on purpose: it is the catalogue, one entry per code with its example and fix,
//! and reads top to bottom as the page it generates. The logic lives in the rule families.

use std::fmt;

/// How bad a diagnostic is. Errors make `pifleet check` exit 1; warnings do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The inventory is wrong or unsafe to deploy.
    Error,
    /// Probably a mistake; can be silenced per host with `allow`.
    Warning,
}

impl Severity {
    /// "error" or "warning".
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a code is documented: the sections of `docs/diagnostics.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Group {
    /// Reading the file: syntax, schema, checked strings.
    File,
    /// Semantic rules: references between parts of the inventory, formats NixOS needs.
    Semantic,
    /// Lockout analysis: after the switch, deploy must still log in and activate.
    Lockout,
    /// Security lints: settings that expose a host.
    Security,
}

impl Group {
    /// Every group, in documentation order.
    pub const ALL: [Group; 4] = [
        Group::File,
        Group::Semantic,
        Group::Lockout,
        Group::Security,
    ];

    /// The section title in `docs/diagnostics.md`.
    pub fn title(self) -> &'static str {
        match self {
            Group::File => "Reading the file",
            Group::Semantic => "Semantic rules",
            Group::Lockout => "Lockout analysis",
            Group::Security => "Security lints",
        }
    }
}

/// A minimal inventory that triggers a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Example {
    /// The code block's language: `toml` or `json`.
    pub lang: &'static str,
    /// The inventory excerpt, ending in a newline.
    pub text: &'static str,
}

/// Everything known about a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeInfo {
    /// The snake_case name.
    pub name: &'static str,
    /// Error or warning.
    pub severity: Severity,
    /// Its section of the documentation.
    pub group: Group,
    /// One line on what it reports.
    pub summary: &'static str,
    /// An inventory that triggers it.
    pub example: Example,
    /// How to fix it.
    pub fix: &'static str,
}

macro_rules! catalogue {
    ($(
        $variant:ident = $name:literal, $severity:ident, $group:ident,
        $summary:literal,
        $lang:ident $example:literal,
        $fix:literal;
    )*) => {
        /// A diagnostic code. See the module documentation.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[non_exhaustive]
        pub enum Code {
            $(#[doc = $summary] $variant,)*
        }

        impl Code {
            /// Every code, in documentation order.
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            /// Everything about this code.
            pub fn info(self) -> &'static CodeInfo {
                match self {
                    $(Code::$variant => &CodeInfo {
                        name: $name,
                        severity: Severity::$severity,
                        group: Group::$group,
                        summary: $summary,
                        example: Example { lang: stringify!($lang), text: $example },
                        fix: $fix,
                    },)*
                }
            }
        }
    };
}

impl Code {
    /// The snake_case name users see, e.g. `duplicate_host_port`.
    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// Its severity.
    pub fn severity(self) -> Severity {
        self.info().severity
    }

    /// The code named `name`, if there is one.
    pub fn from_name(name: &str) -> Option<Code> {
        Code::ALL.iter().copied().find(|c| c.name() == name)
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl From<model::ProblemCode> for Code {
    fn from(code: model::ProblemCode) -> Self {
        use model::ProblemCode as P;
        match code {
            P::TomlSyntax => Code::TomlSyntax,
            P::JsonSyntax => Code::JsonSyntax,
            P::UnknownField => Code::UnknownField,
            P::MissingField => Code::MissingField,
            P::WrongType => Code::WrongType,
            P::InvalidValue => Code::InvalidValue,
            P::OutOfRange => Code::OutOfRange,
            P::DuplicateItem => Code::DuplicateItem,
            P::SchemaViolation => Code::SchemaViolation,
            P::InvalidHostName => Code::InvalidHostName,
            P::InvalidUserName => Code::InvalidUserName,
            P::InvalidUserPattern => Code::InvalidUserPattern,
            P::InvalidSecretName => Code::InvalidSecretName,
            P::InvalidUtf8 => Code::InvalidUtf8,
            P::DuplicateKey => Code::DuplicateKey,
            P::InvalidContainerName => Code::InvalidContainerName,
            P::InvalidTag => Code::InvalidTag,
            P::InvalidAddress => Code::InvalidAddress,
            P::InvalidStateVersion => Code::InvalidStateVersion,
            P::InvalidVolume => Code::InvalidVolume,
            P::InvalidSshKey => Code::InvalidSshKey,
            P::InvalidImage => Code::InvalidImage,
            P::InvalidPort => Code::InvalidPort,
            P::InvalidCidr => Code::InvalidCidr,
            P::InvalidIp => Code::InvalidIp,
            P::InvalidUnitName => Code::InvalidUnitName,
            P::InvalidHealthUrl => Code::InvalidHealthUrl,
            P::PlaintextWifiPsk => Code::PlaintextWifiPsk,
            P::PlaintextPassword => Code::PlaintextPassword,
            P::InvalidKernelParam => Code::InvalidKernelParam,
            P::InvalidKeymap => Code::InvalidKeymap,
            P::InvalidPackageName => Code::InvalidPackageName,
            P::InvalidSubstituter => Code::InvalidSubstituter,
            P::InvalidCacheKey => Code::InvalidCacheKey,
            P::InvalidCalendar => Code::InvalidCalendar,
            P::InvalidFlakeRef => Code::InvalidFlakeRef,
            P::InvalidDuration => Code::InvalidDuration,
            P::InvalidTailscaleTag => Code::InvalidTailscaleTag,
            P::PlaintextAuthKey => Code::PlaintextAuthKey,
            P::InternalError => Code::InternalError,
        }
    }
}

catalogue! {
    TomlSyntax = "toml_syntax", Error, File,
        r#"the file is not valid TOML"#,
        toml r#"[hosts.pi]
board = "rpi4
"#,
        r#"Close the string, table or array the message points at; the line:column is where the parser gave up."#;
    JsonSyntax = "json_syntax", Error, File,
        r#"the file is not valid JSON"#,
        json r#"{ "hosts": { "pi": { "board": "rpi4", } } }
"#,
        r#"Remove the trailing comma or add what is missing; JSON allows no comments or trailing commas."#;
    UnknownField = "unknown_field", Error, File,
        r#"a field that does not exist (often a typo)"#,
        toml r#"[hosts.pi]
baord = "rpi4"
"#,
        r#"Fix the spelling (the help suggests the closest field), or remove the line. Every table rejects unknown fields so a typo never goes unnoticed."#;
    MissingField = "missing_field", Error, File,
        r#"a required field is missing"#,
        toml r#"[hosts.pi]
address = "10.0.0.2"   # no board
"#,
        r#"Add the field named in the message, e.g. `board = "rpi4"`."#;
    WrongType = "wrong_type", Error, File,
        r#"a value of the wrong type (string, number, table, …)"#,
        toml r#"[hosts.pi]
packages = "vim"
"#,
        r#"Use the type the field takes: here a list, `packages = ["vim"]`. Container environment values are strings: `PUID = "1000"`."#;
    InvalidValue = "invalid_value", Error, File,
        r#"a value outside the allowed choices"#,
        toml r#"[hosts.pi]
board = "rpi5"
"#,
        r#"Use one of the values listed in the message (`rpi3`, `rpi4`, `zero2w`, `generic-aarch64`, `x86_64` for `board`)."#;
    OutOfRange = "out_of_range", Error, File,
        r#"a number outside its range"#,
        toml r#"[users.pi]
uid = -1
"#,
        r#"Use a number inside the range given in the message."#;
    DuplicateItem = "duplicate_item", Error, File,
        r#"an item repeated where items must be unique"#,
        toml r#"[users.pi]
groups = ["wheel", "wheel"]
"#,
        r#"Remove the repeated item."#;
    SchemaViolation = "schema_violation", Error, File,
        r#"a value the schema rejects for another reason"#,
        toml r#"# any value the JSON schema rejects for a reason not covered above
"#,
        r#"Follow the message; editors using `#:schema ./schema/fleet.schema.json` show the constraint while you type."#;
    InvalidHostName = "invalid_host_name", Error, File,
        r#"a host name that is not an RFC 1123 label"#,
        toml r#"[hosts.Pi_Box]
board = "rpi4"
"#,
        r#"Use lowercase letters, digits and `-` (at most 63 characters, no dots): `[hosts.pi-box]`. The name becomes `networking.hostName`."#;
    InvalidUserName = "invalid_user_name", Error, File,
        r#"a user name that is not a valid Linux user name"#,
        toml r#"[users.Eduardo]
"#,
        r#"Use a Linux user name: lowercase letters, digits, `_` and `-`, starting with a letter or `_`."#;
    InvalidContainerName = "invalid_container_name", Error, File,
        r#"a container name with invalid characters"#,
        toml r#"[hosts.pi.containers."home assistant"]
"#,
        r#"Use letters, digits, `_`, `.` and `-`: `[hosts.pi.containers.homeassistant]`."#;
    InvalidTag = "invalid_tag", Error, File,
        r#"a tag with invalid characters"#,
        toml r#"[hosts.pi]
tags = ["edge devices"]
"#,
        r#"Use letters, digits, `_` and `-`: `tags = ["edge"]`."#;
    InvalidAddress = "invalid_address", Error, File,
        r#"an address that is neither an IP address nor a DNS name"#,
        toml r#"[hosts.pi]
address = "10.0.0.300"
"#,
        r#"Write an IPv4/IPv6 address or a DNS name, without a port (the port goes in `deploy.port`)."#;
    InvalidStateVersion = "invalid_state_version", Error, File,
        r#"a state_version that is not a NixOS release"#,
        toml r#"[fleet]
state_version = "26"
"#,
        r#"Write a NixOS release, `YY.MM`: `state_version = "26.05"`."#;
    InvalidVolume = "invalid_volume", Error, File,
        r#"a volume that is not source:/container/path"#,
        toml r#"volumes = ["data:config"]
"#,
        r#"Write `"/host/path:/container/path"` or `"volume-name:/container/path"`, optionally with `:ro`."#;
    InvalidSshKey = "invalid_ssh_key", Error, File,
        r#"an SSH public key that does not parse"#,
        toml r#"[users.pi]
ssh_keys = ["ssh-ed25519 AAAAC3Nza"]   # truncated
"#,
        r#"Paste the whole line of the `.pub` file (`ssh-ed25519 AAAA… comment`); never a private key."#;
    InvalidImage = "invalid_image", Error, File,
        r#"an image reference that does not parse or has no tag or digest"#,
        toml r#"image = "nginx"
"#,
        r#"Give a tag or digest: `"nginx:1.27.3"` or `"nginx@sha256:…"`."#;
    InvalidPort = "invalid_port", Error, File,
        r#"a port or port mapping outside 1-65535 or malformed"#,
        toml r#"ports = ["70000:80"]
"#,
        r#"Use ports 1–65535 and the forms `"HOST:CONTAINER"`, `"IP:HOST:CONTAINER"`, `"53:53/udp"`."#;
    InvalidCidr = "invalid_cidr", Error, File,
        r#"an address without or with a bad prefix length"#,
        toml r#"[hosts.pi.network]
address = "192.168.1.41"
"#,
        r#"Add the prefix length: `address = "192.168.1.41/24"`."#;
    InvalidIp = "invalid_ip", Error, File,
        r#"a gateway, DNS server or fail2ban `ignore_ip` entry that is not an IP address"#,
        toml r#"[hosts.pi.network]
gateway = "router.lan"
"#,
        r#"Gateways and DNS servers are IP addresses: `gateway = "192.168.1.1"`. fail2ban's `ignore_ip` also takes networks in CIDR form, `"192.168.1.0/24"`, but no DNS names."#;
    InvalidUserPattern = "invalid_user_pattern", Error, File,
        r#"an `allow_users`/`deny_users` entry that is not a user pattern sshd takes"#,
        toml r#"[ssh]
allow_users = ["deploy admin"]
"#,
        r#"Write one user (or pattern, with `*` and `?`) per entry, optionally `user@host-pattern`: `allow_users = ["deploy", "admin"]`."#;
    InvalidSecretName = "invalid_secret_name", Error, File,
        r#"a secret name that cannot name a file under `secrets/`"#,
        toml r#"[hosts.pi.wifi]
ssid = "home"
psk_secret = "Home Wifi"
"#,
        r#"Use lower-case letters, digits, `-`, `_` and `.`: the secret lives in `secrets/<name>.age`, e.g. `psk_secret = "home-wifi"`."#;
    InvalidUnitName = "invalid_unit_name", Error, File,
        r#"a health check's unit that is not a systemd unit name"#,
        toml r#"[hosts.pi.deploy]
health = [{ unit = "nginx service" }]
"#,
        r#"Write the unit as `systemctl` names it: `{ unit = "nginx.service" }` (letters, digits and `:-_.\@`; without a suffix it is a service). It is checked on the host with `systemctl is-active`."#;
    InvalidHealthUrl = "invalid_health_url", Error, File,
        r#"a health check's URL that is not an http(s) URL"#,
        toml r#"[hosts.pi.deploy]
health = [{ http = "localhost:8123" }]
"#,
        r#"Write a whole http:// or https:// URL without credentials or fragment: `{ http = "http://127.0.0.1:8123/" }`. curl fetches it on the host itself, so `localhost` works and no firewall port needs to be open."#;
    InvalidUtf8 = "invalid_utf8", Error, File,
        r#"the file is not valid UTF-8"#,
        toml r#"[hosts.pi]
board = "rpi4"   # saved as Latin-1 with a "é" somewhere
"#,
        r#"Save the file as UTF-8; the position points at the first byte that is not."#;
    DuplicateKey = "duplicate_key", Error, File,
        r#"a key written twice in one JSON object"#,
        json r#"{ "hosts": { "pi": { "board": "rpi4", "board": "rpi3" } } }
"#,
        r#"Keep one of them: JSON parsers disagree on which one wins, so pifleet refuses both."#;
    PlaintextWifiPsk = "plaintext_wifi_psk", Error, File,
        r#"a Wi-Fi passphrase written into the inventory"#,
        toml r#"[hosts.pi.wifi]
ssid = "home"
psk = "correct horse"
"#,
        r#"Store it encrypted: `pifleet secrets set home-wifi` (prompts without echo) and set `psk_secret = "home-wifi"`; never write the passphrase into the inventory. A file you manage on the host yourself (`psk=…`, root-only) works too, through `secrets_file`."#;
    PlaintextPassword = "plaintext_password", Error, File,
        r#"a password written into the inventory instead of a hash"#,
        toml r#"[users.pi]
hashed_password = "hunter2"
"#,
        r#"Generate a hash with `mkpasswd -m yescrypt` (it starts with `$y$`), preferably in a file named by `hashed_password_file`; change the leaked password."#;
    InvalidKernelParam = "invalid_kernel_param", Error, File,
        r#"a kernel parameter with a space or control character"#,
        toml r#"[hosts.pi]
kernel_params = ["quiet splash"]
"#,
        r#"Write one parameter per list item: `kernel_params = ["quiet", "splash"]`. Spaces are allowed only inside double quotes (`dyndbg="file x.c +p"`), as NixOS's `boot.kernelParams` takes them."#;
    InvalidKeymap = "invalid_keymap", Error, File,
        r#"a console keymap that is not a keymap name"#,
        toml r#"[fleet]
keymap = "de latin1"
"#,
        r#"Use a name from `localectl list-keymaps`, e.g. `"de-latin1"`."#;
    InvalidPackageName = "invalid_package_name", Error, File,
        r#"an `allow_unfree` entry that is not a package name"#,
        toml r#"[fleet]
allow_unfree = ["unrar 6.2"]
"#,
        r#"Give the package name as `lib.getName` returns it, without version or spaces: `"unrar"`, `"vscode"`."#;
    InvalidSubstituter = "invalid_substituter", Error, File,
        r#"a binary cache that is not a URL Nix substitutes from"#,
        toml r#"[fleet.nix]
substituters = ["cache.example.org"]
"#,
        r#"Write the whole URL with its scheme: `"https://cache.example.org"` (also `s3://`, `ssh://`, `ssh-ng://`, `file://`)."#;
    InvalidCacheKey = "invalid_cache_key", Error, File,
        r#"a binary cache key that is not an ed25519 public key as `name:base64`"#,
        toml r#"[fleet.nix]
trusted_public_keys = ["cache.example.org-1"]
"#,
        r#"Copy the public key the cache publishes, `name:base64` (44 base64 characters). A 64-byte key is the secret key: never paste it anywhere, and rotate it."#;
    InvalidCalendar = "invalid_calendar", Error, File,
        r#"a schedule that cannot be a systemd calendar event"#,
        toml r#"[hosts.pi.auto_upgrade]
flake = "github:me/fleet"
dates = "04:40; reboot"
"#,
        r#"Write a calendar event from systemd.time(7): `"daily"`, `"04:40"`, `"Sat 02:00"`; `systemd-analyze calendar "…"` checks one."#;
    InvalidFlakeRef = "invalid_flake_ref", Error, File,
        r#"a flake reference the host cannot fetch"#,
        toml r#"[hosts.pi.auto_upgrade]
flake = "./fleet"
"#,
        r#"Use a URL the host can fetch on its own: `"github:me/fleet"`, `"git+https://git.example.org/fleet?ref=main"`, or an absolute path on the host. A path on the workstation means nothing to it."#;
    InvalidDuration = "invalid_duration", Error, File,
        r#"a fail2ban duration that does not parse"#,
        toml r#"[hosts.pi.fail2ban]
ban_time = "1 hour"
"#,
        r#"Write a number with s, m, h, d or w: `"1h"`, `"10m"`, `"1d"`; a bare number is seconds, `"-1"` bans for ever."#;
    InvalidTailscaleTag = "invalid_tailscale_tag", Error, File,
        r#"a Tailscale tag that is not `tag:` and a name Tailscale accepts"#,
        toml r#"[hosts.pi.tailscale]
advertise_tags = ["server"]
"#,
        r#"Write the tag as the policy file names it: `"tag:server"`. After `tag:` Tailscale takes a letter, then letters, digits and `-`; give each tag its own list item, `["tag:server", "tag:home"]`."#;
    PlaintextAuthKey = "plaintext_auth_key", Error, Security,
        r#"a Tailscale auth key written into the inventory"#,
        toml r#"[hosts.pi.tailscale]
auth_key = "tskey-auth-…"
"#,
        r#"Store it encrypted: `pifleet secrets set tailscale-key` (prompts without echo) and set `auth_key_secret = "tailscale-key"`. Revoke the written key in the Tailscale admin console: it is in the repository's history. Also reported when `auth_key_secret` holds a key (`tskey-…`) instead of a secret's name."#;
    InternalError = "internal_error", Error, File,
        r#"a bug in pifleet"#,
        toml r#"# none: this is a bug
"#,
        r#"Report it with the inventory that triggers it."#;
    ConfigTxtKernelParam = "config_txt_kernel_param", Warning, Semantic,
        r#"a Pi firmware (config.txt) setting written as a kernel parameter"#,
        toml r#"[hosts.pi]
kernel_params = ["gpu_mem=128"]
"#,
        r#"Remove it from `kernel_params`: the firmware reads `gpu_mem`, `dtoverlay`, `arm_freq` and the like from config.txt on the firmware partition, before the kernel starts, and the kernel ignores them. Set config.txt in a hand-written module (`sdImage.populateFirmwareCommands`, or nixos-hardware's `hardware.raspberry-pi.configtxt`). Kernel-side settings such as `cma=`, `console=` and `video=` are not reported."#;
    NixosHardwareUnsupported = "nixos_hardware_unsupported", Error, File,
        r#"nixos-hardware's Pi profile asked for on a board it has none for"#,
        toml r#"[hosts.zero]
board = "zero2w"
nixos_hardware = true
"#,
        r#"Remove `nixos_hardware = true`; the mainline kernel supports the board."#;
    UnknownUser = "unknown_user", Error, Semantic,
        r#"a reference to a user not defined in `users`"#,
        toml r#"[hosts.pi]
users = ["bob"]   # no [users.bob]
"#,
        r#"Define `[users.bob]`, or fix the name."#;
    RootInUsers = "root_in_users", Error, Semantic,
        r#"root listed or defined as an ordinary user"#,
        toml r#"[hosts.pi]
users = ["root"]
"#,
        r#"Remove it; root always exists and its keys go in `ssh.root_keys`."#;
    UnknownDeployUser = "unknown_deploy_user", Error, Semantic,
        r#"a deploy user not defined in `users`"#,
        toml r#"[hosts.pi]
deploy = { user = "deploy" }   # no [users.deploy]
"#,
        r#"Define `[users.deploy]` with its key and `sudo = "no-password"`."#;
    DeployUserNotOnHost = "deploy_user_not_on_host", Error, Semantic,
        r#"a deploy user not in the host's `users`"#,
        toml r#"[hosts.pi]
users = ["eduardo"]
deploy = { user = "deploy" }
"#,
        r#"Add the deploy user to the host's `users`: the account would not exist on the host, so deploy could not log in. (Lockout.)"#;
    DeployUserWithoutSudo = "deploy_user_without_sudo", Error, Semantic,
        r#"a non-root deploy user that cannot use sudo"#,
        toml r#"[users.deploy]
ssh_keys = ["ssh-ed25519 AAAA… you@workstation"]

[hosts.pi]
users = ["deploy"]
deploy = { user = "deploy" }
"#,
        r#"Set `sudo = "no-password"` in `[users.deploy]`: without sudo, deploy copies the system but can never activate it. (Lockout.)"#;
    ConflictingPasswords = "conflicting_passwords", Error, Semantic,
        r#"both hashed_password and hashed_password_file"#,
        toml r#"[users.pi]
hashed_password = "$y$…"
hashed_password_file = "/var/lib/secrets/pi.hash"
"#,
        r#"Keep one; `hashed_password_file` keeps the hash out of the Nix store."#;
    SudoWithoutPassword = "sudo_without_password", Error, Semantic,
        r#"sudo with a password for a user that has none"#,
        toml r#"[users.pi]
sudo = "password"   # no hashed_password(_file)
"#,
        r#"Set `hashed_password_file`, or use `sudo = "no-password"`. Users are immutable (`users.mutableUsers = false`), so a password cannot be set on the host later."#;
    DuplicateSshKey = "duplicate_ssh_key", Error, Semantic,
        r#"the same key twice in one list"#,
        toml r#"ssh_keys = ["ssh-ed25519 AAAA… you@workstation", "ssh-ed25519 AAAA… you@workstation"]
"#,
        r#"Remove the repeated entry."#;
    SharedSshKey = "shared_ssh_key", Warning, Semantic,
        r#"one key used by two user accounts"#,
        toml r#"[users.alice]
ssh_keys = ["ssh-ed25519 AAAA… you@workstation"]
[users.bob]
ssh_keys = ["ssh-ed25519 AAAA… you@workstation"]
"#,
        r#"Give each account its own key, so access can be revoked per person."#;
    DuplicateAddress = "duplicate_address", Error, Semantic,
        r#"two hosts with the same address"#,
        toml r#"[hosts.a]
address = "10.0.0.2"
[hosts.b]
address = "10.0.0.2"
"#,
        r#"Give each host its own address; a deploy to one would reach the other."#;
    UnknownPlacementTag = "unknown_placement_tag", Error, Semantic,
        r#"a fleet container placed on a tag no host has"#,
        toml r#"[containers.web]
placement = { tags = ["egde"] }
"#,
        r#"Use a tag some host has, or add it to a host's `tags`."#;
    UnknownPlacementHost = "unknown_placement_host", Error, Semantic,
        r#"a fleet container placed on an undefined host"#,
        toml r#"[containers.web]
placement = { hosts = ["pi-9"] }
"#,
        r#"Use the name of a host in `hosts`."#;
    UnknownHealthContainer = "unknown_health_container", Error, Semantic,
        r#"a health check waits for a container the host does not run"#,
        toml r#"[hosts.pi.deploy]
health = [{ container = "homeassistant" }]   # no hosts.pi.containers.homeassistant
"#,
        r#"Name one of the host's containers (its own, or a fleet container placed on it), or remove the check: every deploy would fail its confirmation and roll back."#;
    UnplacedContainer = "unplaced_container", Warning, Semantic,
        r#"a fleet container placed nowhere"#,
        toml r#"[containers.web]
image = "nginx:1.27.3"
placement = {}
"#,
        r#"List hosts or tags in `placement`, or remove the container."#;
    TailscaleTagsNeedAuthKey = "tailscale_tags_need_auth_key", Warning, Semantic,
        r#"Tailscale tags on a host that does not log in with an auth key"#,
        toml r#"[hosts.pi.tailscale]
advertise_tags = ["tag:edge"]
"#,
        r#"Tags are a flag of `tailscale up`, which NixOS runs only with an auth key (`authKeyFile`), and `tailscale set` does not take them. Without `auth_key_secret` the tags are written into the module and never used: a host logged in by hand has the tags of that login. Add `auth_key_secret` (the host logs in at boot with the tags), or drop `advertise_tags` and tag the node in the admin console. The other flags (`advertise_routes`, `exit_node`, `accept_routes`, `ssh`, `accept_dns`) are applied with `tailscale set` at every activation, auth key or not."#;
    ContainerNameConflict = "container_name_conflict", Error, Semantic,
        r#"a host container with the name of a fleet container placed on it"#,
        toml r#"[containers.web]
placement = { hosts = ["pi"] }
[hosts.pi.containers.web]
"#,
        r#"Rename one of them, or take the host out of the fleet container's placement."#;
    DuplicateHostPort = "duplicate_host_port", Error, Semantic,
        r#"two containers publishing the same host port"#,
        toml r#"[hosts.pi.containers.a]
ports = ["8080:80"]
[hosts.pi.containers.b]
ports = ["8080:80"]
"#,
        r#"Publish one of them on another host port, e.g. `"8081:80"`."#;
    UnknownDependency = "unknown_dependency", Error, Semantic,
        r#"depends_on naming a container that does not run on the host"#,
        toml r#"[hosts.pi.containers.web]
depends_on = ["db"]   # no container db on pi
"#,
        r#"Define the container on the same host, or remove it from `depends_on`."#;
    DependencyCycle = "dependency_cycle", Error, Semantic,
        r#"containers that wait for each other"#,
        toml r#"[hosts.pi.containers.a]
depends_on = ["b"]
[hosts.pi.containers.b]
depends_on = ["a"]
"#,
        r#"Break the cycle: systemd cannot start containers that wait for each other."#;
    UnpinnedImage = "unpinned_image", Warning, Semantic,
        r#"an image on a moving tag such as latest"#,
        toml r#"image = "nginx:latest"
"#,
        r#"Pin a digest (`"nginx:1.27.3@sha256:…"`, best: the bytes cannot change) or at least a version tag (`"nginx:1.27.3"`). Moving tags are `latest`, `stable`, `edge` and `main`; an image without any tag is `invalid_image`."#;
    IncompleteStaticNetwork = "incomplete_static_network", Error, Semantic,
        r#"a static network without address or gateway"#,
        toml r#"[hosts.pi.network]
mode = "static"
address = "192.168.1.41/24"   # no gateway
"#,
        r#"Add the missing `address` or `gateway`, or use `mode = "dhcp"`."#;
    StaticSettingsWithDhcp = "static_settings_with_dhcp", Error, Semantic,
        r#"static address settings on a DHCP host"#,
        toml r#"[hosts.pi.network]
address = "192.168.1.41/24"   # mode defaults to dhcp
"#,
        r#"Set `mode = "static"`, or remove the setting."#;
    AddressMismatch = "address_mismatch", Error, Semantic,
        r#"a static address that moves the host away from the address deploy connects to"#,
        toml r#"[hosts.pi]
address = "192.168.1.41"
[hosts.pi.network]
mode = "static"
address = "192.168.1.50/24"
gateway = "192.168.1.1"
"#,
        r#"Make `address` and `network.address` agree. After the switch the host answers on its new static address while deploy keeps connecting to the old one, so it cannot confirm the switch or deploy again. (Lockout; was a warning before the lockout analysis.)

The check reads only the inventory, not the previously deployed configuration, so it compares the deploy address with the static address being deployed. A public deploy address with a private static address (a NAT port forward) is not reported; DNS names are not compared."#;
    DuplicateEntry = "duplicate_entry", Warning, Semantic,
        r#"an entry repeated in a host list"#,
        toml r#"[hosts.pi]
packages = ["vim", "vim"]
"#,
        r#"Remove the repeated entry."#;
    InvalidModulePath = "invalid_module_path", Error, Semantic,
        r#"a module path the flake cannot import"#,
        toml r#"[hosts.pi]
modules = ["/etc/nixos/extra.nix"]
"#,
        r#"Use a `.nix` path inside the repository, relative to fleet.toml: `"modules/extra.nix"`."#;
    InvalidPackage = "invalid_package", Error, Semantic,
        r#"a package that is not a nixpkgs attribute name"#,
        toml r#"[hosts.pi]
packages = ["python3 requests"]
"#,
        r#"Use the nixpkgs attribute name: `"python3Packages.requests"`."#;
    AllowWithoutReason = "allow_without_reason", Error, Semantic,
        r#"an allow entry without a reason"#,
        toml r#"[hosts.pi]
allow = [{ code = "unpinned_image", reason = "" }]
"#,
        r#"Say why the warning does not apply; reviewers (and `check --format json`) read it."#;
    UnknownAllowCode = "unknown_allow_code", Warning, Semantic,
        r#"an allow entry naming an unknown code"#,
        toml r#"[hosts.pi]
allow = [{ code = "unpined_image", reason = "…" }]
"#,
        r#"Use a code from this page."#;
    SshdSettingConflict = "sshd_setting_conflict", Error, Semantic,
        r#"extra_settings overriding a setting pifleet manages"#,
        toml r#"[ssh.extra_settings]
PermitRootLogin = "yes"
"#,
        r#"Use the dedicated field (`permit_root_login`, `password_authentication`, `kbd_interactive_authentication`, `allow_users`, `deny_users`, `port`, `authorized_keys_in_homedir`)."#;
    InvalidSshdSetting = "invalid_sshd_setting", Error, Semantic,
        r#"an extra_settings key that is not an sshd keyword"#,
        toml r#"[ssh.extra_settings]
"Max Auth Tries" = 3
"#,
        r#"Use a keyword from `man sshd_config`, e.g. `MaxAuthTries`."#;
    InvalidGroup = "invalid_group", Error, Semantic,
        r#"a group name that is not valid"#,
        toml r#"[users.pi]
groups = ["wheel users"]
"#,
        r#"Use letters, digits, `_`, `.` and `-` (at most 32)."#;
    InvalidTimeZone = "invalid_time_zone", Error, Semantic,
        r#"a time zone that is not a tz database name"#,
        toml r#"[fleet]
time_zone = "CET+1"
"#,
        r#"Use a tz database name such as `"Europe/Amsterdam"` (`timedatectl list-timezones`)."#;
    InvalidInterface = "invalid_interface", Error, Semantic,
        r#"a network interface name that is not valid"#,
        toml r#"[hosts.pi.network]
interface = "wlx00e04c680001x"
"#,
        r#"Use the name `ip link` shows (at most 15 characters)."#;
    InvalidSsid = "invalid_ssid", Error, Semantic,
        r#"an SSID longer than 32 bytes or empty"#,
        toml r#"[hosts.pi.wifi]
ssid = ""
"#,
        r#"Write the network name exactly as broadcast (1–32 bytes)."#;
    InvalidPskName = "invalid_psk_name", Error, Semantic,
        r#"a psk_name that cannot appear in the secrets file"#,
        toml r#"[hosts.pi.wifi]
psk_name = "home-wifi"
"#,
        r#"Use letters, digits and `_`: `psk_name = "HOME_WIFI"`."#;
    InvalidSecretsFile = "invalid_secrets_file", Error, Semantic,
        r#"a Wi-Fi secrets file that is not an absolute path"#,
        toml r#"[hosts.pi.wifi]
secrets_file = "secrets/wifi"
"#,
        r#"Use an absolute path on the host, e.g. `"/var/lib/secrets/wifi"`."#;
    InvalidEnvironmentName = "invalid_environment_name", Error, Semantic,
        r#"an environment variable name that is not valid"#,
        toml r#"environment = { "MY VAR" = "1" }
"#,
        r#"A variable name cannot be empty or contain `=` or white space."#;
    InvalidSshdValue = "invalid_sshd_value", Error, Semantic,
        r#"an `extra_settings` value that does not fit its keyword, or spans several lines"#,
        toml r#"[ssh]
extra_settings = { MaxAuthTries = "three", Banner = "/etc/issue\nPermitRootLogin yes" }
"#,
        r#"Give each keyword the type sshd_config(5) gives it: true/false for yes/no keywords, numbers, one of the listed words, or a list for keywords that take several. A line break would become an sshd directive of its own: it is never accepted."#;
    ControlCharacter = "control_character", Error, Semantic,
        r#"a value with a control character (or a NUL byte, which Nix cannot hold)"#,
        toml r#"[hosts.pi.containers.app.environment]
GREETING = "hello\nEXTRA=injected"
"#,
        r#"Remove the control character. Values that end up in line-oriented files on the host (environment files, sshd_config, wpa_supplicant.conf, /etc/passwd) must stay on one line; a NUL byte cannot be written into Nix at all."#;
    InvalidUid = "invalid_uid", Error, Semantic,
        r#"a user id of root or of the system range"#,
        toml r#"[users.admin]
uid = 0
"#,
        r#"Leave `uid` out (NixOS picks one) or use 1000 or more: ids below 1000 belong to root and system services."#;
    MissingModule = "missing_module", Error, Semantic,
        r#"a hand-written module that does not exist"#,
        toml r#"[hosts.pi]
modules = ["modules/media.nix"]   # no such file
"#,
        r#"Create the file (relative to the inventory), or fix the path. The flake could not import it."#;
    InvalidPasswordFile = "invalid_password_file", Error, Semantic,
        r#"a password file that is not an absolute path on the host, or one in the Nix store"#,
        toml r#"[users.admin]
hashed_password_file = "secrets/admin.hash"
"#,
        r#"Use an absolute path on the host, outside /nix/store (the store is world-readable), e.g. "/var/lib/secrets/admin.hash"."#;
    UnknownAdmin = "unknown_admin", Error, Semantic,
        r#"an admin that is not defined in `users`"#,
        toml r#"[fleet]
admins = ["eduardo"]   # no [users.eduardo]
"#,
        r#"Define the user with its SSH keys under `[users.<name>]`, or remove it from `admins`."#;
    AdminKeyUnsupported = "admin_key_unsupported", Error, Semantic,
        r#"an admin without an ssh-ed25519 or ssh-rsa key, which age cannot encrypt to"#,
        toml r#"[users.eduardo]
ssh_keys = ["ecdsa-sha2-nistp256 AAAA… eduardo@ws"]
[fleet]
admins = ["eduardo"]
"#,
        r#"Add an ed25519 key (`ssh-keygen -t ed25519`) to the admin's `ssh_keys`: only ssh-ed25519 and ssh-rsa keys can be age recipients (not ECDSA, security keys or agent-only keys)."#;
    UnsupportedHostKey = "unsupported_host_key", Error, Semantic,
        r#"a host key of a type age cannot encrypt to"#,
        toml r#"[hosts.pi]
host_key = "ecdsa-sha2-nistp256 AAAA…"
"#,
        r#"Record the host's ed25519 key: `pifleet hostkey scan HOST` asks for it, `pifleet hostkey new HOST` makes one before flashing."#;
    WifiSecretConflict = "wifi_secret_conflict", Error, Semantic,
        r#"a Wi-Fi passphrase given both as a secret and as a file"#,
        toml r#"[hosts.pi.wifi]
ssid = "home"
psk_secret = "home-wifi"
secrets_file = "/etc/wifi.env"
"#,
        r#"Keep one: `psk_secret` (encrypted in the repository, on the card from the first boot) or `secrets_file` (a file you place on the host yourself)."#;
    HostKeyMissing = "host_key_missing", Error, Semantic,
        r#"a host that reads secrets without a recorded host key"#,
        toml r#"[hosts.pi.wifi]
ssid = "home"
psk_secret = "home-wifi"   # and no host_key
"#,
        r#"Record the host key, which the secrets are encrypted to: `pifleet hostkey new HOST` before flashing a new card, `pifleet hostkey scan HOST` for a running machine. Then `pifleet secrets rekey`."#;
    SecretsWithoutAdmins = "secrets_without_admins", Error, Semantic,
        r#"secrets in use, and no admins to encrypt them to"#,
        toml r#"[hosts.pi.wifi]
ssid = "home"
psk_secret = "home-wifi"   # and no [fleet] admins
"#,
        r#"List the users whose keys may read and re-encrypt the secrets: `[fleet] admins = ["you"]`. Without an admin, nobody could ever change a secret again."#;
    SecretFileMissing = "secret_file_missing", Error, Semantic,
        r#"a secret the inventory names that has no `secrets/<name>.age`"#,
        toml r#"[hosts.pi.wifi]
ssid = "home"
psk_secret = "home-wifi"   # no secrets/home-wifi.age
"#,
        r#"Write it: `pifleet secrets set home-wifi` (from standard input or a prompt). Activation would fail without it."#;
    NotAnAgeFile = "not_an_age_file", Error, Semantic,
        r#"a file under `secrets/` that is not age-encrypted"#,
        toml r#"# secrets/home-wifi.age holds "psk=hunter2" in plain text
"#,
        r#"Move plain files out of `secrets/` at once (and rotate what they held); write secrets with `pifleet secrets set NAME`."#;
    SecretNotEncryptedForHost = "secret_not_encrypted_for_host", Error, Semantic,
        r#"a secret that a host using it cannot decrypt"#,
        toml r#"[hosts.new-pi]   # reads home-wifi, but the file predates it
host_key = "ssh-ed25519 AAAA…"
"#,
        r#"Re-encrypt it to its current readers: `pifleet secrets rekey NAME` (with an admin's key)."#;
    SecretNeedsRekey = "secret_needs_rekey", Warning, Semantic,
        r#"a secret still encrypted to keys that no longer need it, or not yet to a current admin"#,
        toml r#"# home-wifi.age is encrypted to a host that left the fleet
"#,
        r#"Run `pifleet secrets rekey NAME` (by an admin who can decrypt it). Rekeying stops future reads only: if a key was lost or stolen, also change the secret itself with `pifleet secrets set NAME`."#;
    AllowHasNoEffect = "allow_has_no_effect", Warning, Semantic,
        r#"an allow entry naming an error, which cannot be silenced"#,
        toml r#"[hosts.pi]
allow = [{ code = "sshd_disabled", reason = "…" }]
"#,
        r#"Errors cannot be silenced: fix the error and remove the entry."#;
    SshdDisabled = "sshd_disabled", Error, Lockout,
        r#"the SSH server turned off"#,
        toml r#"[ssh]
enable = false
"#,
        r#"Remove `enable = false`: pifleet deploys over SSH, so a host without sshd can only be reached again from a console or a re-flashed card. Restrict logins with `allow_users` instead."#;
    DeployUserWithoutKey = "deploy_user_without_key", Error, Lockout,
        r#"a deploy user (or root) without an SSH key"#,
        toml r#"[users.deploy]
sudo = "no-password"   # no ssh_keys

[hosts.pi]
users = ["deploy"]
deploy = { user = "deploy" }
"#,
        r#"Add the workstation's public key to `users.deploy.ssh_keys` (for a root deploy: `ssh.root_keys`). Only keys in the inventory are installed (`authorized_keys_in_homedir = false`), so deploy could not log in after the switch.

Not reported when `authorized_keys_in_homedir = true` (keys may be managed on the host), or when nobody at all can log in (`no_login_method` says so instead)."#;
    DeployUserNotAllowed = "deploy_user_not_allowed", Error, Lockout,
        r#"allow_users or deny_users shutting out the deploy user"#,
        toml r#"[ssh]
allow_users = ["eduardo"]

[hosts.pi]
deploy = { user = "deploy" }
"#,
        r#"Add the deploy user to `allow_users` (or leave `allow_users` out: the derived list always includes it), and never list it in `deny_users`."#;
    RootDeployLoginDisabled = "root_deploy_login_disabled", Error, Lockout,
        r#"root deploys but permit_root_login is "no""#,
        toml r#"[ssh]
permit_root_login = "no"

[hosts.pi]   # deploy.user defaults to root
"#,
        r#"Deploy as a non-root user with `sudo = "no-password"` (`deploy = { user = "deploy" }`), or set `permit_root_login = "prohibit-password"` with `root_keys`."#;
    NoLoginMethod = "no_login_method", Error, Lockout,
        r#"password logins off and no SSH key for anyone on the host"#,
        toml r#"[ssh]
password_authentication = false

[hosts.pi]
board = "rpi4"
address = "10.0.0.2"   # no user with keys, no root_keys
"#,
        r#"Give the deploy user (or root, with `permit_root_login = "prohibit-password"`) an SSH key."#;
    SshPortClosed = "ssh_port_closed", Error, Lockout,
        r#"the firewall on and the SSH port not open"#,
        toml r#"[ssh]
open_firewall = false

[hosts.pi]
firewall = { enable = true }
"#,
        r#"Remove `open_firewall = false`, or list the SSH port in `firewall.allowed_tcp_ports`.

The generated config opens the SSH port with `services.openssh.openFirewall`, which follows `ssh.open_firewall` (default true); this error can only happen when that is turned off."#;
    DeployPortMismatch = "deploy_port_mismatch", Error, Lockout,
        r#"deploy connecting to a port sshd does not listen on"#,
        toml r#"[hosts.pi]
deploy = { user = "deploy", port = 22 }

[hosts.pi.ssh]
port = 2222
"#,
        r#"Set `deploy.port` to the SSH port, or leave it out to follow `ssh.port`.

The check reads only the inventory, so it compares `deploy.port` with the port sshd will listen on after the switch. A router forwarding another port to sshd cannot be expressed; use the forwarded address and port consistently."#;
    DeploySudoNeedsPassword = "deploy_sudo_needs_password", Error, Lockout,
        r#"a deploy user whose sudo asks for a password it does not have"#,
        toml r#"[users.deploy]
ssh_keys = ["ssh-ed25519 AAAA… you@workstation"]
sudo = "password"   # no hashed_password_file
"#,
        r#"Set `sudo = "no-password"` for the deploy user. The generated config keeps `security.sudo.wheelNeedsPassword = true` and `users.mutableUsers = false`, so a wheel member without a password hash can never pass sudo."#;
    SudoUserWithoutCredentials = "sudo_user_without_credentials", Error, Lockout,
        r#"a sudo user with neither an SSH key nor a password hash"#,
        toml r#"[users.admin]
groups = ["wheel"]   # no ssh_keys, no password
"#,
        r#"Add an SSH key or a `hashed_password_file`; with immutable users the account can never log in otherwise, and the admin access it was meant to give is gone.

Not reported for the host's deploy user (see `deploy_user_without_key`) or on hosts with `authorized_keys_in_homedir = true`."#;
    WifiSecretMissing = "wifi_secret_missing", Error, Lockout,
        r#"a Wi-Fi-only host without Wi-Fi settings or secrets file"#,
        toml r#"[hosts.cam]
board = "zero2w"
address = "192.168.1.60"   # no [hosts.cam.wifi]
"#,
        r#"Add `[hosts.cam.wifi]` with `ssid` and `psk_secret` (a secret from `pifleet secrets set`; it is on the card before first boot), or `secrets_file` for a root-only file on the host holding `psk=…`. With a USB Ethernet adapter, set `network.interface` to it.

A host is Wi-Fi-only when its `network.interface` starts with `wl`, or when it is a Zero 2 W and names no interface. Replaces the warning `no_network_on_zero2w`."#;
    PubkeyAuthenticationDisabled = "pubkey_authentication_disabled", Error, Lockout,
        r#"`PubkeyAuthentication = false`: deploy logs in with a key"#,
        toml r#"[ssh]
extra_settings = { PubkeyAuthentication = false }
"#,
        r#"Remove it. pifleet deploys with keys only; to restrict who may log in, use `allow_users`."#;
    AuthenticationMethodsLockout = "authentication_methods_lockout", Error, Lockout,
        r#"`AuthenticationMethods` that a key alone cannot satisfy"#,
        toml r#"[ssh]
extra_settings = { AuthenticationMethods = "publickey,password" }
"#,
        r#"Keep a list that is `publickey` alone, e.g. "publickey publickey,password", or remove the setting: deploy runs without anyone to type a password."#;
    DeployUserGroupFiltered = "deploy_user_group_filtered", Error, Lockout,
        r#"`AllowGroups`/`DenyGroups` shutting out the deploy user"#,
        toml r#"[ssh]
extra_settings = { AllowGroups = ["admins"] }   # deploy is not in admins
"#,
        r#"Add one of the deploy user's groups (`users`, `wheel`, its `groups`) to `AllowGroups`, or remove it from `DenyGroups`."#;
    DeployLoginRestricted = "deploy_login_restricted", Error, Lockout,
        r#"`ForceCommand` or `ChrootDirectory` for every login"#,
        toml r#"[ssh]
extra_settings = { ForceCommand = "internal-sftp" }
"#,
        r#"Remove it: without `Match` blocks it applies to the deploy user too, and nixos-rebuild's commands would never run. Put user-specific restrictions in a hand-written module with a `Match User` block."#;
    SshdLimitZero = "sshd_limit_zero", Error, Lockout,
        r#"`MaxAuthTries`, `MaxSessions` or `MaxStartups` set to 0"#,
        toml r#"[ssh]
extra_settings = { MaxSessions = 0 }
"#,
        r#"Use a positive number (sshd's defaults are 6, 10 and 10:30:100) or leave the setting out."#;
    DeployKeyTypeNotAccepted = "deploy_key_type_not_accepted", Error, Lockout,
        r#"`PubkeyAcceptedAlgorithms` accepting none of the deploy user's keys"#,
        toml r#"[ssh]
extra_settings = { PubkeyAcceptedAlgorithms = "ecdsa-sha2-nistp256" }   # deploy has an ed25519 key
"#,
        r#"Include the deploy keys' algorithms (e.g. "ssh-ed25519,ecdsa-sha2-nistp256"), or use `+…` to add to the defaults."#;
    DeployKeysUnusable = "deploy_keys_unusable", Error, Lockout,
        r#"every deploy key bound to a forced command or expired"#,
        toml r#"[users.deploy]
ssh_keys = ['command="/bin/true" ssh-ed25519 AAAA… deploy@ws']
"#,
        r#"Give the deploy user a key without `command=` and with an `expiry-time` in the future; nixos-rebuild and nix-copy-closure run their own commands."#;
    PamDisabledLocksDeployUser = "pam_disabled_locks_deploy_user", Error, Lockout,
        r#"`UsePAM = false` with a deploy user whose password is locked"#,
        toml r#"[ssh]
extra_settings = { UsePAM = false }
"#,
        r#"Remove `UsePAM = false`: without PAM, sshd refuses accounts with a locked password even for key logins, and inventory accounts without a password hash are locked."#;
    SshAddressFamilyMismatch = "ssh_address_family_mismatch", Error, Lockout,
        r#"`AddressFamily` excluding the address deploy connects to"#,
        toml r#"[hosts.pi]
address = "fd00::41"
ssh = { extra_settings = { AddressFamily = "inet" } }
"#,
        r#"Use `AddressFamily = "any"` (or the family of `address`), or deploy to an address of the family sshd listens on."#;
    UnroutableStaticNetwork = "unroutable_static_network", Error, Lockout,
        r#"a static network whose gateway cannot be reached"#,
        toml r#"[hosts.pi.network]
mode = "static"
address = "192.168.1.41/24"
gateway = "192.168.2.1"
"#,
        r#"Put the gateway inside the host's subnet (and not on the host's own address), or widen the prefix; a /32 has no neighbours to route through."#;
    TailnetWithoutTailscale = "tailnet_without_tailscale", Error, Lockout,
        r#"a Tailscale deploy address on a host that does not run Tailscale"#,
        toml r#"[hosts.pi]
address = "100.101.102.103"   # no [hosts.pi.tailscale]
"#,
        r#"Add `[hosts.pi.tailscale]` with `auth_key_secret` so the host joins the tailnet at boot, or deploy to its LAN address. Addresses in 100.64.0.0/10 and fd7a:115c:a1e0::/48 are Tailscale's."#;
    AutoUpgradeOtherHost = "auto_upgrade_other_host", Error, Lockout,
        r#"a pull-mode host whose flake reference builds another host"#,
        toml r#"[hosts.pi.auto_upgrade]
flake = "github:me/fleet#other-pi"
"#,
        r#"Leave out the `#…` part (pifleet adds `#<host>`), or write this host's own name. The host would rebuild itself as the other one: its name, address, keys and secrets."#;
    RebootWithoutFallback = "reboot_without_fallback", Warning, Lockout,
        r#"automatic reboots after upgrades on a boot loader without one-shot boot"#,
        toml r#"[hosts.pi.auto_upgrade]
flake = "github:me/fleet"
allow_reboot = true
"#,
        r#"Leave `allow_reboot` off, so kernel updates wait for a reboot you watch, or `allow` this code with the reason (a host on your desk). pifleet's own deploys activate with `test` first and keep the old boot default until the host confirms; an unattended upgrade reboots straight into the new default, and U-Boot's extlinux menu (every Pi board) has no one-shot entry to fall back from."#;
    UnusualInterface = "unusual_interface", Warning, Lockout,
        r#"an interface name other than the board's own"#,
        toml r#"[hosts.pi]
board = "rpi4"
network = { mode = "static", interface = "eth0", address = "192.168.1.41/24", gateway = "192.168.1.1" }
"#,
        r#"On the mainline kernel a Pi 4's Ethernet is `end0` and a Zero 2 W's Wi-Fi `wlan0`; a name that does not exist leaves the host without its address. Check `ip link` on the host, or `allow` this if the interface is a USB adapter."#;
    EmptyPassword = "empty_password", Error, Security,
        r#"an empty password hash"#,
        toml r#"[users.pi]
hashed_password = ""
"#,
        r#"Use `hashed_password_file` with a yescrypt hash, or `"!"` to lock the password: an empty hash lets anyone log in as that user."#;
    PasswordlessSudo = "passwordless_sudo", Warning, Security,
        r#"sudo without a password for a user that is not the deploy user"#,
        toml r#"[users.eduardo]
sudo = "no-password"

[hosts.pi]
users = ["eduardo", "deploy"]
deploy = { user = "deploy" }
"#,
        r#"Use `sudo = "password"` with `hashed_password_file`. This is `wheelNeedsPassword = false` for that user: whoever holds its key, or any process running as it, is root without further proof. Only the deploy user needs it."#;
    FirewallDisabled = "firewall_disabled", Warning, Security,
        r#"the host firewall turned off"#,
        toml r#"[hosts.pi]
firewall = { enable = false }
"#,
        r#"Turn it back on and open what you need in `allowed_tcp_ports` / `allowed_udp_ports` (SSH is opened for you)."#;
    PasswordAuthenticationEnabled = "password_authentication_enabled", Warning, Security,
        r#"SSH logins with a password allowed"#,
        toml r#"[ssh]
password_authentication = true
"#,
        r#"Set it (and `kbd_interactive_authentication`) to false and log in with keys."#;
    RootLoginAllowed = "root_login_allowed", Warning, Security,
        r#"root may log in over SSH with a key"#,
        toml r#"[ssh]
permit_root_login = "prohibit-password"
root_keys = ["ssh-ed25519 AAAA… you@workstation"]
"#,
        r#"Deploy as a non-root user with `sudo = "no-password"` and set `permit_root_login = "no"`. Reported only when root could actually log in (it has keys and `allow_users`/`deny_users` let it in)."#;
    SecretInEnvironment = "secret_in_environment", Error, Security,
        r#"a secret written into a container's environment"#,
        toml r#"[hosts.pi.containers.db]
image = "postgres:17.2"
environment = { POSTGRES_PASSWORD = "hunter2" }
"#,
        r#"Store it encrypted (`pifleet secrets set db-env` with the line `POSTGRES_PASSWORD=…`) and list the secret in `environment_secrets`, or use the image's `*_FILE` variable. Rotate the leaked value: the Nix store is world-readable.

A variable is a secret when a word of its name (split at `_`, `-`, `.`) contains PASSWORD, PASSWD, TOKEN or SECRET, or ends in KEY (`API_KEY`, `APIKEY`; not `KEYBOARD`), case-insensitively, and its value is not empty. Names ending in `_FILE`, `_PATH` or `_DIR` point at files and are fine."#;
    SensitivePortExposed = "sensitive_port_exposed", Warning, Security,
        r#"a database or similar service published on every address"#,
        toml r#"[hosts.pi.containers.db]
image = "postgres:17.2"
ports = ["5432:5432"]
"#,
        r#"Bind it to loopback (`"127.0.0.1:5432:5432"`) or drop the mapping and let containers talk over a Docker network.

Matched by the port inside the container, for services that trust the network by default: 2375/2376 (Docker API), 3306 (MySQL/MariaDB), 5432 (PostgreSQL), 6379 (Redis), 9200 (Elasticsearch/OpenSearch), 11211 (memcached), 27017 (MongoDB). Reported even with the firewall on, because Docker's published ports are DNAT rules that bypass the NixOS firewall. MQTT (1883) and web UIs such as Home Assistant are left out: they ask for credentials by default."#;
    DockerSocketMounted = "docker_socket_mounted", Warning, Security,
        r#"the Docker or Podman socket mounted into a container"#,
        toml r#"volumes = ["/var/run/docker.sock:/var/run/docker.sock"]
"#,
        r#"Drop the mount, or mount a filtering proxy (e.g. tecnativa/docker-socket-proxy) read-only. Whoever controls the socket can start a privileged container, which is root on the host. Mounting `/run` or `/var/run` whole is reported too, and so is Podman's socket (`/run/podman/podman.sock`, or a user's `…/podman/podman.sock`), which gives the same power."#;
    PrivilegedContainer = "privileged_container", Warning, Security,
        r#"a container running privileged"#,
        toml r#"[hosts.pi.containers.io]
image = "example/gpio:1.0"
privileged = true
"#,
        r#"Grant only what the image needs: `extra_options = ["--device=/dev/gpiomem"]` or `--cap-add=…`. `extra_options = ["--privileged"]` is reported the same way."#;
    PossibleSecret = "possible_secret", Warning, Security,
        r#"a container setting that looks like it might hold a secret"#,
        toml r#"[hosts.pi.containers.app.environment]
SESSION_KEY = "x8Jq2mL0v9Zt4Wc7"
"#,
        r#"If it is a secret, store it with `pifleet secrets set` (a `KEY=value` line) and list it in `environment_secrets`; if it is not (a sort key, a public name), `allow` this code with the reason."#;
    SecretInContainerSettings = "secret_in_container_settings", Error, Security,
        r#"a secret in a container's command, entrypoint, options or labels"#,
        toml r#"[hosts.pi.containers.app]
image = "example/app:1.0"
command = ["--db", "postgres://app:s3cret@db/app"]
"#,
        r#"Pass it as an environment variable from an encrypted secret (`pifleet secrets set`, listed in `environment_secrets`) and refer to the variable; the Nix store is world-readable. Rotate the leaked value."#;
    InlinePasswordHash = "inline_password_hash", Warning, Security,
        r#"a password hash written into the inventory (world-readable in the Nix store)"#,
        toml r#"[users.admin]
hashed_password = "$y$j9T$…"
"#,
        r#"Store the hash encrypted: `pifleet secrets set admin-password` (paste the output of `mkpasswd -m yescrypt`) and set `hashed_password_secret = "admin-password"`."#;
    WeakPasswordHash = "weak_password_hash", Warning, Security,
        r#"a password hash with a weak scheme (MD5-crypt)"#,
        toml r#"[users.admin]
hashed_password = "$1$salt$…"   # md5-crypt
"#,
        r#"Hash again with yescrypt (`mkpasswd -m yescrypt`) or sha-512 crypt (`$6$`)."#;
    InsecureSubstituter = "insecure_substituter", Warning, Security,
        r#"a binary cache fetched over plain http"#,
        toml r#"[fleet.nix]
substituters = ["http://cache.example.org"]
"#,
        r#"Use `https://`. Signatures still protect the contents, but over http anyone on the way sees every path the hosts fetch and can hold back updates by serving old, still-signed answers."#;
    SubstituterWithoutKey = "substituter_without_key", Warning, Security,
        r#"a binary cache listed without any trusted public key"#,
        toml r#"[fleet.nix]
substituters = ["https://cache.example.org"]   # no trusted_public_keys
"#,
        r#"Add the key the cache publishes to `trusted_public_keys`. Nix only takes signed paths from a cache, so without its key it serves nothing; turning signature checks off instead would trust whatever it sends."#;
    TrustedUsersWildcard = "trusted_users_wildcard", Warning, Security,
        r#"every user (or a broad group) trusted by the Nix daemon"#,
        toml r#"[fleet.nix]
trusted_users = ["*"]
"#,
        r#"List users (or `@wheel`): a trusted Nix user can import unsigned store paths, which is root on the host."#;
    TailscaleSsh = "tailscale_ssh", Warning, Security,
        r#"Tailscale SSH, which bypasses sshd and the inventory's SSH policy"#,
        toml r#"[hosts.pi.tailscale]
ssh = true
"#,
        r#"With `ssh = true`, tailscaled answers port 22 on the host's tailnet addresses itself. Those connections never reach sshd, so nothing in `[ssh]` applies to them: not the keys, `allow_users`/`deny_users`, `permit_root_login` or password settings. The `ssh` rules of the tailnet's policy file decide who logs in as which user, root included. A deploy to the host's Tailscale address on port 22 goes through them too. Leave `ssh` out (or set it to `false` to turn it off on a host that has it) and reach sshd over the tailnet with `trust_interface = true`. Or `allow` this code, with the reason, if the policy file's rules are meant to decide."#;
    Fail2banIgnoresEveryone = "fail2ban_ignores_everyone", Warning, Security,
        r#"fail2ban told to ignore every address (`0.0.0.0/0` or `::/0`)"#,
        toml r#"[hosts.pi.fail2ban]
ignore_ip = ["0.0.0.0/0"]
"#,
        r#"A prefix of length 0 matches every address of its family, so fail2ban never bans anyone (`::/0`: no IPv6 client). List only the networks you trust, such as your LAN (`"192.168.1.0/24"`) or one workstation (`"192.168.1.20"`). To stop banning, turn fail2ban off with `enable = false`."#;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_snake_case() {
        let mut seen = std::collections::BTreeSet::new();
        for code in Code::ALL {
            let name = code.name();
            assert!(seen.insert(name), "duplicate code {name}");
            assert!(
                name.chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_'),
                "{name} is not snake_case"
            );
        }
    }

    #[test]
    fn load_codes_keep_their_names() {
        for code in model::ProblemCode::ALL {
            assert_eq!(Code::from(*code).name(), code.as_str());
            assert_eq!(Code::from(*code).severity(), Severity::Error);
        }
    }

    #[test]
    fn examples_end_in_a_newline_and_summaries_do_not_end_in_a_full_stop() {
        for code in Code::ALL {
            let info = code.info();
            assert!(info.example.text.ends_with('\n'), "{code}");
            assert!(!info.summary.ends_with('.'), "{code}");
            assert!(matches!(info.example.lang, "toml" | "json"), "{code}");
        }
    }
}
