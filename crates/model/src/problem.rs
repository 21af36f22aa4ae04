//! The codes of the problems the loader reports: the file's syntax, the schema, and the checked
//! string types. `check` turns each into a diagnostic code with its severity and documentation
//! (`check::Code`), by an exhaustive match, so a new code here cannot go undocumented there.

use std::fmt;

macro_rules! problem_codes {
    ($($(#[$doc:meta])* $variant:ident = $name:literal,)*) => {
        /// Why the loader refused a value. Stable: users and tools match on [`ProblemCode::as_str`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ProblemCode {
            $($(#[$doc])* $variant,)*
        }

        impl ProblemCode {
            /// Every code, in documentation order.
            pub const ALL: &'static [ProblemCode] = &[$(ProblemCode::$variant,)*];

            /// The snake_case name users see, e.g. `invalid_host_name`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ProblemCode::$variant => $name,)*
                }
            }
        }
    };
}

problem_codes! {
    /// The file is not valid TOML.
    TomlSyntax = "toml_syntax",
    /// The file is not valid JSON.
    JsonSyntax = "json_syntax",
    /// A field that does not exist.
    UnknownField = "unknown_field",
    /// A required field is missing.
    MissingField = "missing_field",
    /// A value of the wrong type.
    WrongType = "wrong_type",
    /// A value outside the allowed choices.
    InvalidValue = "invalid_value",
    /// A number outside its range.
    OutOfRange = "out_of_range",
    /// An item repeated where items must be unique.
    DuplicateItem = "duplicate_item",
    /// A value the schema rejects for another reason.
    SchemaViolation = "schema_violation",
    /// A host name that is not an RFC 1123 label.
    InvalidHostName = "invalid_host_name",
    /// A user name that is not a valid Linux user name.
    InvalidUserName = "invalid_user_name",
    /// A secret name that cannot name a file under `secrets/`.
    InvalidSecretName = "invalid_secret_name",
    /// An `allow_users`/`deny_users` entry that is not a user pattern sshd takes.
    InvalidUserPattern = "invalid_user_pattern",
    /// A container name with invalid characters.
    InvalidContainerName = "invalid_container_name",
    /// A tag with invalid characters.
    InvalidTag = "invalid_tag",
    /// An address that is neither an IP address nor a DNS name.
    InvalidAddress = "invalid_address",
    /// A state_version that is not a NixOS release.
    InvalidStateVersion = "invalid_state_version",
    /// A volume that is not source:/container/path.
    InvalidVolume = "invalid_volume",
    /// An SSH public key that does not parse.
    InvalidSshKey = "invalid_ssh_key",
    /// An image reference that does not parse or has no tag or digest.
    InvalidImage = "invalid_image",
    /// A port or port mapping outside 1-65535 or malformed.
    InvalidPort = "invalid_port",
    /// An address without or with a bad prefix length.
    InvalidCidr = "invalid_cidr",
    /// A gateway, DNS server or fail2ban `ignore_ip` entry that is not an IP address (or, for
    /// `ignore_ip`, a network in CIDR form).
    InvalidIp = "invalid_ip",
    /// A health check's unit name that is not a systemd unit name.
    InvalidUnitName = "invalid_unit_name",
    /// A health check's URL that is not an http(s) URL.
    InvalidHealthUrl = "invalid_health_url",
    /// A kernel parameter with a space or control character.
    InvalidKernelParam = "invalid_kernel_param",
    /// A console keymap that is not a keymap name.
    InvalidKeymap = "invalid_keymap",
    /// An unfree package name that is not a package name.
    InvalidPackageName = "invalid_package_name",
    /// A binary cache that is not a URL Nix substitutes from.
    InvalidSubstituter = "invalid_substituter",
    /// A binary cache key that is not `name:base64` of an ed25519 public key.
    InvalidCacheKey = "invalid_cache_key",
    /// A systemd calendar event that cannot be one.
    InvalidCalendar = "invalid_calendar",
    /// A flake reference a host cannot fetch.
    InvalidFlakeRef = "invalid_flake_ref",
    /// A fail2ban duration that does not parse.
    InvalidDuration = "invalid_duration",
    /// A Tailscale ACL tag that is not `tag:` and a name Tailscale accepts.
    InvalidTailscaleTag = "invalid_tailscale_tag",
    /// A Tailscale auth key written into the inventory.
    PlaintextAuthKey = "plaintext_auth_key",
    /// A Wi-Fi passphrase written into the inventory.
    PlaintextWifiPsk = "plaintext_wifi_psk",
    /// A password written into the inventory instead of a hash.
    PlaintextPassword = "plaintext_password",
    /// The file is not valid UTF-8.
    InvalidUtf8 = "invalid_utf8",
    /// A key written twice in one JSON object.
    DuplicateKey = "duplicate_key",
    /// A bug in pifleet.
    InternalError = "internal_error",
}

impl fmt::Display for ProblemCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
