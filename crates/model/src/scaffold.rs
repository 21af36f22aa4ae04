//! The first inventory of a new fleet repository (`pifleet init`).
//!
//! A new user's first `fleet.toml` has to pass `check` as written and be safe by default, so its
//! shape is decided here, next to the types it must satisfy, and not in the command that writes
//! it: one account that is the admin and the deploy user, with the user's own key, password-free
//! sudo and no password; root login off; keys only; the firewall on. Every value the user gave
//! reaches the file through `toml_edit` (quoted and escaped by it), arrives already checked by its
//! newtype, and the result is loaded back before it is handed out.

use toml_edit::{Array, DocumentMut, InlineTable, Item, Table};

use crate::load::{LoadError, load_str};
use crate::names::{Address, HostName, SecretName, SshPublicKey, UserName};
use crate::types::Board;

/// The NixOS release a new fleet starts on (`[fleet] state_version`).
pub const STATE_VERSION: &str = "26.05";

/// What a new fleet is made of: its admin and first host.
#[derive(Debug, Clone)]
pub struct Starter {
    /// The `#:schema` path written on the first line, for editors (e.g. `./schema/fleet.schema.json`).
    pub schema: String,
    /// The account of the person running pifleet: admin, deploy user, passwordless sudo.
    pub admin: UserName,
    /// That person's public keys (at least one).
    pub keys: Vec<SshPublicKey>,
    /// The first host.
    pub host: HostName,
    /// Its board.
    pub board: Board,
    /// Where deploy reaches it.
    pub address: Address,
    /// For a Wi-Fi board: the network and the secret holding its passphrase.
    pub wifi: Option<StarterWifi>,
}

/// The Wi-Fi network a board joins on first boot.
#[derive(Debug, Clone)]
pub struct StarterWifi {
    /// The network name.
    pub ssid: String,
    /// The secret (`secrets/<name>.age`) holding the passphrase.
    pub psk_secret: SecretName,
}

/// Why the first inventory could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScaffoldError {
    /// No key for the admin: nobody could log in.
    #[error("the admin `{0}` needs at least one SSH public key")]
    NoKey(String),
    /// The SSID is empty or holds a line break or control character.
    #[error(
        "the Wi-Fi network name {0:?} is empty or holds a control character; give the SSID as shown when you join it"
    )]
    Ssid(String),
    /// The text written does not load back (a bug; never written).
    #[error("internal error: the new inventory does not load back: {0}")]
    Verify(Box<LoadError>),
}

/// The text of the new `fleet.toml`.
pub fn fleet_toml(starter: &Starter) -> Result<String, ScaffoldError> {
    if starter.keys.is_empty() {
        return Err(ScaffoldError::NoKey(starter.admin.to_string()));
    }
    if let Some(wifi) = &starter.wifi
        && (wifi.ssid.is_empty() || wifi.ssid.chars().any(char::is_control))
    {
        return Err(ScaffoldError::Ssid(wifi.ssid.clone()));
    }
    let admin = starter.admin.as_str();
    let mut doc = DocumentMut::new();

    let mut fleet = Table::new();
    fleet.insert("state_version", toml_edit::value(STATE_VERSION));
    fleet.insert("time_zone", toml_edit::value("UTC"));
    fleet.insert("admins", toml_edit::value(strings([admin])));
    comment(
        &mut fleet,
        "admins",
        "# Whose keys can decrypt every secret and host key under secrets/ (`pifleet secrets set`).\n",
    );
    fleet.decor_mut().set_prefix(format!(
        "#:schema {}\n# The fleet. Edit it, then run `nix run .#gen` and commit fleet.toml together with hosts/.\n# Every field is described in the schema (your editor shows it) and in pifleet's docs/fleet.md.\n\n",
        starter.schema
    ));
    doc.insert("fleet", Item::Table(fleet));

    let mut ssh = Table::new();
    ssh.decor_mut().set_prefix(
        "\n# SSH on every host: keys only, no root login. A host may override single fields.\n",
    );
    ssh.insert("permit_root_login", toml_edit::value("no"));
    ssh.insert("password_authentication", toml_edit::value(false));
    ssh.insert("kbd_interactive_authentication", toml_edit::value(false));
    doc.insert("ssh", Item::Table(ssh));

    let mut user = Table::new();
    user.decor_mut().set_prefix(
        "\n# You. Deploys log in as this user and switch the system with sudo (no password: keys only).\n",
    );
    user.insert(
        "ssh_keys",
        toml_edit::value(strings(starter.keys.iter().map(SshPublicKey::as_str))),
    );
    comment(
        &mut user,
        "ssh_keys",
        "# Your public key: it is baked into the SD image, so the host answers SSH on first boot.\n",
    );
    user.insert("groups", toml_edit::value(strings(["wheel"])));
    user.insert("sudo", toml_edit::value("no-password"));
    let mut users = Table::new();
    users.set_implicit(true);
    users.insert(admin, Item::Table(user));
    doc.insert("users", Item::Table(users));

    let mut host = Table::new();
    host.decor_mut().set_prefix(
        "\n# The first host. Add more as [hosts.<name>] tables, then `nix run .#gen`.\n",
    );
    host.insert("board", toml_edit::value(starter.board.as_str()));
    host.insert("address", toml_edit::value(starter.address.as_str()));
    host.insert("users", toml_edit::value(strings([admin])));
    let mut deploy = InlineTable::new();
    deploy.insert("user", admin.into());
    host.insert("deploy", toml_edit::value(deploy));
    let mut firewall = InlineTable::new();
    firewall.insert("enable", true.into());
    host.insert("firewall", toml_edit::value(firewall));
    comment(
        &mut host,
        "firewall",
        "# Only the SSH port is open; list more in allowed_tcp_ports / allowed_udp_ports.\n",
    );
    if let Some(wifi) = &starter.wifi {
        let mut table = InlineTable::new();
        table.insert("ssid", wifi.ssid.as_str().into());
        table.insert("psk_secret", wifi.psk_secret.as_str().into());
        host.insert("wifi", toml_edit::value(table));
        comment(
            &mut host,
            "wifi",
            &format!(
                "# The passphrase is the secret `{}` (secrets/{}.age), never this file: `pifleet secrets set {}`.\n",
                wifi.psk_secret, wifi.psk_secret, wifi.psk_secret
            ),
        );
    }
    let mut hosts = Table::new();
    hosts.set_implicit(true);
    hosts.insert(starter.host.as_str(), Item::Table(host));
    doc.insert("hosts", Item::Table(hosts));

    let text = doc.to_string();
    load_str(&text, "fleet.toml").map_err(|e| ScaffoldError::Verify(Box::new(e)))?;
    Ok(text)
}

fn strings<'a>(items: impl IntoIterator<Item = &'a str>) -> Array {
    items.into_iter().collect()
}

/// Puts `text` (whole `# …` lines) above `key` in `table`.
fn comment(table: &mut Table, key: &str, text: &str) {
    if let Some(mut key) = table.key_mut(key) {
        key.leaf_decor_mut().set_prefix(text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl me@desk";

    fn starter() -> Starter {
        Starter {
            schema: "./schema/fleet.schema.json".to_owned(),
            admin: UserName::new("deploy").expect("name"),
            keys: vec![KEY.parse().expect("key")],
            host: HostName::new("pi-01").expect("name"),
            board: Board::Rpi4,
            address: Address::new("192.168.1.50").expect("address"),
            wifi: None,
        }
    }

    #[test]
    fn the_first_inventory_reads_as_written() {
        let text = fleet_toml(&starter()).expect("inventory");
        assert_eq!(
            text,
            format!(
                r##"#:schema ./schema/fleet.schema.json
# The fleet. Edit it, then run `nix run .#gen` and commit fleet.toml together with hosts/.
# Every field is described in the schema (your editor shows it) and in pifleet's docs/fleet.md.

[fleet]
state_version = "26.05"
time_zone = "UTC"
# Whose keys can decrypt every secret and host key under secrets/ (`pifleet secrets set`).
admins = ["deploy"]

# SSH on every host: keys only, no root login. A host may override single fields.
[ssh]
permit_root_login = "no"
password_authentication = false
kbd_interactive_authentication = false

# You. Deploys log in as this user and switch the system with sudo (no password: keys only).
[users.deploy]
# Your public key: it is baked into the SD image, so the host answers SSH on first boot.
ssh_keys = ["{KEY}"]
groups = ["wheel"]
sudo = "no-password"

# The first host. Add more as [hosts.<name>] tables, then `nix run .#gen`.
[hosts.pi-01]
board = "rpi4"
address = "192.168.1.50"
users = ["deploy"]
deploy = {{ user = "deploy" }}
# Only the SSH port is open; list more in allowed_tcp_ports / allowed_udp_ports.
firewall = {{ enable = true }}
"##
            )
        );
    }

    #[test]
    fn user_values_are_quoted_by_toml_edit() {
        let mut s = starter();
        s.board = Board::Zero2w;
        s.wifi = Some(StarterWifi {
            ssid: "cafe \"net\" = [x] # not a comment".to_owned(),
            psk_secret: SecretName::new("pi-01-wifi").expect("name"),
        });
        let text = fleet_toml(&s).expect("inventory");
        let loaded = load_str(&text, "fleet.toml").expect("loads");
        let host = &loaded.fleet.hosts["pi-01"];
        let wifi = host.wifi.as_ref().expect("wifi");
        assert_eq!(wifi.ssid, "cafe \"net\" = [x] # not a comment");
        assert_eq!(
            wifi.psk_secret.as_ref().map(SecretName::as_str),
            Some("pi-01-wifi")
        );
        s.wifi = Some(StarterWifi {
            ssid: "two\nlines".to_owned(),
            psk_secret: SecretName::new("w").expect("name"),
        });
        assert!(matches!(fleet_toml(&s), Err(ScaffoldError::Ssid(_))));
        s.keys.clear();
        assert!(matches!(fleet_toml(&s), Err(ScaffoldError::NoKey(_))));
    }
}
