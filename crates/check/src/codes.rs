//! The catalogue of diagnostic codes: stable names that users put in `allow` and tools match on.
//!
//! Codes never change meaning once released. A test asserts that every code the loader and the rules emit is
//! listed here, so the list doubles as documentation.

use crate::diagnostic::Severity;

/// What a code means.
#[derive(Debug, Clone, Copy)]
pub struct CodeInfo {
    /// The code.
    pub code: &'static str,
    /// Its severity.
    pub severity: Severity,
    /// One line on what it reports.
    pub summary: &'static str,
}

const fn e(code: &'static str, summary: &'static str) -> CodeInfo {
    CodeInfo {
        code,
        severity: Severity::Error,
        summary,
    }
}

const fn w(code: &'static str, summary: &'static str) -> CodeInfo {
    CodeInfo {
        code,
        severity: Severity::Warning,
        summary,
    }
}

/// Every code pifleet reports.
pub const CODES: &[CodeInfo] = &[
    // Reading the file.
    e("toml_syntax", "the file is not valid TOML"),
    e("json_syntax", "the file is not valid JSON"),
    e(
        "unknown_field",
        "a field that does not exist (often a typo)",
    ),
    e("missing_field", "a required field is missing"),
    e(
        "wrong_type",
        "a value of the wrong type (string, number, table, …)",
    ),
    e("invalid_value", "a value outside the allowed choices"),
    e("out_of_range", "a number outside its range"),
    e(
        "duplicate_item",
        "an item repeated where items must be unique",
    ),
    e(
        "schema_violation",
        "a value the schema rejects for another reason",
    ),
    e(
        "invalid_host_name",
        "a host name that is not an RFC 1123 label",
    ),
    e(
        "invalid_user_name",
        "a user name that is not a valid Linux user name",
    ),
    e(
        "invalid_container_name",
        "a container name with invalid characters",
    ),
    e("invalid_tag", "a tag with invalid characters"),
    e(
        "invalid_address",
        "an address that is neither an IP address nor a DNS name",
    ),
    e(
        "invalid_state_version",
        "a state_version that is not a NixOS release",
    ),
    e(
        "invalid_volume",
        "a volume that is not source:/container/path",
    ),
    e("invalid_ssh_key", "an SSH public key that does not parse"),
    e(
        "invalid_image",
        "an image reference that does not parse or has no tag or digest",
    ),
    e(
        "invalid_port",
        "a port or port mapping outside 1-65535 or malformed",
    ),
    e(
        "invalid_cidr",
        "an address without or with a bad prefix length",
    ),
    e(
        "invalid_ip",
        "a gateway or DNS server that is not an IP address",
    ),
    e(
        "plaintext_wifi_psk",
        "a Wi-Fi passphrase written into the inventory",
    ),
    e(
        "plaintext_password",
        "a password written into the inventory instead of a hash",
    ),
    e("internal_error", "a bug in pifleet"),
    e(
        "nixos_hardware_unsupported",
        "nixos-hardware's Pi profile asked for on a board it has none for",
    ),
    // Semantic rules.
    e(
        "unknown_user",
        "a reference to a user not defined in `users`",
    ),
    e(
        "root_in_users",
        "root listed or defined as an ordinary user",
    ),
    e(
        "unknown_deploy_user",
        "a deploy user not defined in `users`",
    ),
    e(
        "deploy_user_not_on_host",
        "a deploy user not in the host's `users`",
    ),
    e(
        "deploy_user_without_sudo",
        "a non-root deploy user that cannot use sudo",
    ),
    e(
        "conflicting_passwords",
        "both hashed_password and hashed_password_file",
    ),
    e(
        "sudo_without_password",
        "sudo with a password for a user that has none",
    ),
    e("duplicate_ssh_key", "the same key twice in one list"),
    w("shared_ssh_key", "one key used by two user accounts"),
    e("duplicate_address", "two hosts with the same address"),
    e(
        "unknown_placement_tag",
        "a fleet container placed on a tag no host has",
    ),
    e(
        "unknown_placement_host",
        "a fleet container placed on an undefined host",
    ),
    w("unplaced_container", "a fleet container placed nowhere"),
    e(
        "container_name_conflict",
        "a host container with the name of a fleet container placed on it",
    ),
    e(
        "duplicate_host_port",
        "two containers publishing the same host port",
    ),
    e(
        "unknown_dependency",
        "depends_on naming a container that does not run on the host",
    ),
    e("dependency_cycle", "containers that wait for each other"),
    w("unpinned_image", "an image on a moving tag such as latest"),
    e(
        "incomplete_static_network",
        "a static network without address or gateway",
    ),
    e(
        "static_settings_with_dhcp",
        "static address settings on a DHCP host",
    ),
    e(
        "address_mismatch",
        "a static address that moves the host away from the address deploy connects to",
    ),
    w("duplicate_entry", "an entry repeated in a host list"),
    e(
        "invalid_module_path",
        "a module path the flake cannot import",
    ),
    e(
        "invalid_package",
        "a package that is not a nixpkgs attribute name",
    ),
    e("allow_without_reason", "an allow entry without a reason"),
    w(
        "unknown_allow_code",
        "an allow entry naming an unknown code",
    ),
    e(
        "sshd_setting_conflict",
        "extra_settings overriding a setting pifleet manages",
    ),
    e(
        "invalid_sshd_setting",
        "an extra_settings key that is not an sshd keyword",
    ),
    e("invalid_group", "a group name that is not valid"),
    e(
        "invalid_time_zone",
        "a time zone that is not a tz database name",
    ),
    e(
        "invalid_interface",
        "a network interface name that is not valid",
    ),
    e("invalid_ssid", "an SSID longer than 32 bytes or empty"),
    e(
        "invalid_psk_name",
        "a psk_name that cannot appear in the secrets file",
    ),
    e(
        "invalid_secrets_file",
        "a Wi-Fi secrets file that is not an absolute path",
    ),
    e(
        "invalid_environment_name",
        "an environment variable name that is not valid",
    ),
    w(
        "allow_has_no_effect",
        "an allow entry naming an error, which cannot be silenced",
    ),
    // Lockout analysis: after the switch, deploy must still log in and activate.
    e("sshd_disabled", "the SSH server turned off"),
    e(
        "deploy_user_without_key",
        "a deploy user (or root) without an SSH key",
    ),
    e(
        "deploy_user_not_allowed",
        "allow_users or deny_users shutting out the deploy user",
    ),
    e(
        "root_deploy_login_disabled",
        "root deploys but permit_root_login is \"no\"",
    ),
    e(
        "no_login_method",
        "password logins off and no SSH key for anyone on the host",
    ),
    e(
        "ssh_port_closed",
        "the firewall on and the SSH port not open",
    ),
    e(
        "deploy_port_mismatch",
        "deploy connecting to a port sshd does not listen on",
    ),
    e(
        "deploy_sudo_needs_password",
        "a deploy user whose sudo asks for a password it does not have",
    ),
    e(
        "sudo_user_without_credentials",
        "a sudo user with neither an SSH key nor a password hash",
    ),
    e(
        "wifi_secret_missing",
        "a Wi-Fi-only host without Wi-Fi settings or secrets file",
    ),
    // Security lints.
    e("empty_password", "an empty password hash"),
    w(
        "passwordless_sudo",
        "sudo without a password for a user that is not the deploy user",
    ),
    w("firewall_disabled", "the host firewall turned off"),
    w(
        "password_authentication_enabled",
        "SSH logins with a password allowed",
    ),
    w("root_login_allowed", "root may log in over SSH with a key"),
    e(
        "secret_in_environment",
        "a secret written into a container's environment",
    ),
    w(
        "sensitive_port_exposed",
        "a database or similar service published on every address",
    ),
    w(
        "docker_socket_mounted",
        "the Docker socket mounted into a container",
    ),
    w("privileged_container", "a container running privileged"),
];

/// The entry for `code`, if it exists.
pub fn lookup(code: &str) -> Option<&'static CodeInfo> {
    CODES.iter().find(|c| c.code == code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_snake_case() {
        let mut seen = std::collections::BTreeSet::new();
        for c in CODES {
            assert!(seen.insert(c.code), "duplicate code {}", c.code);
            assert!(
                c.code
                    .chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_'),
                "{} is not snake_case",
                c.code
            );
        }
    }
}
