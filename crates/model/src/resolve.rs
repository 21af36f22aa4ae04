//! Resolved views of a host: the inventory after defaults, overrides and fleet-wide placement are applied.
//!
//! The renderer and the checks both need "what does this host actually get"; computing it in one place keeps
//! them from disagreeing about, say, which SSH policy or which containers a host ends up with.

use crate::names::{ContainerName, HostName, StateVersion, UserName};
use crate::types::{Container, Fleet, Host, PermitRootLogin, SshPolicy};

/// Where a host's container was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerOrigin {
    /// In `hosts.<name>.containers`.
    Host,
    /// In the top-level `containers`, placed on this host.
    Fleet,
}

/// A container as it runs on one host.
#[derive(Debug, Clone, PartialEq)]
pub struct HostContainer {
    /// Its name.
    pub name: ContainerName,
    /// Its settings.
    pub container: Container,
    /// Where it was written.
    pub origin: ContainerOrigin,
}

impl Fleet {
    /// The SSH policy in force on `host`: the fleet policy with the host's overrides applied, and `allow_users`
    /// derived when neither sets it (the host's users, its deploy user, and root if root may log in).
    pub fn effective_ssh(&self, host: &Host) -> SshPolicy {
        let mut policy = self.ssh.clone();
        if let Some(o) = &host.ssh {
            if let Some(v) = o.enable {
                policy.enable = v;
            }
            if let Some(v) = o.port {
                policy.port = v;
            }
            if let Some(v) = o.permit_root_login {
                policy.permit_root_login = v;
            }
            if let Some(v) = o.password_authentication {
                policy.password_authentication = v;
            }
            if let Some(v) = o.kbd_interactive_authentication {
                policy.kbd_interactive_authentication = v;
            }
            if let Some(v) = &o.root_keys {
                policy.root_keys = v.clone();
            }
            if let Some(v) = &o.allow_users {
                policy.allow_users = Some(v.clone());
            }
            if let Some(v) = &o.deny_users {
                policy.deny_users = v.clone();
            }
            if let Some(v) = o.open_firewall {
                policy.open_firewall = v;
            }
            if let Some(v) = o.authorized_keys_in_homedir {
                policy.authorized_keys_in_homedir = v;
            }
            for (k, v) in &o.extra_settings {
                policy.extra_settings.insert(k.clone(), v.clone());
            }
        }
        if policy.allow_users.is_none() {
            let mut users: Vec<UserName> = host.users.clone();
            if !host.deploy.user.is_root() && !users.contains(&host.deploy.user) {
                users.push(host.deploy.user.clone());
            }
            if policy.permit_root_login != PermitRootLogin::No {
                users.push(UserName::root());
            }
            users.sort();
            users.dedup();
            policy.allow_users = Some(users);
        }
        policy
    }

    /// The port deploy connects to: `deploy.port`, else the host's effective SSH port.
    pub fn deploy_port(&self, host: &Host) -> u16 {
        host.deploy
            .port
            .unwrap_or_else(|| self.effective_ssh(host).port)
            .get()
    }

    /// The host's `system.stateVersion`.
    pub fn state_version_of<'a>(&'a self, host: &'a Host) -> &'a StateVersion {
        host.state_version
            .as_ref()
            .unwrap_or(&self.fleet.state_version)
    }

    /// Whether `host` is cross-compiled from x86_64: its own setting, else the fleet's.
    pub fn cross_compiles(&self, host: &Host) -> bool {
        host.cross_compile.unwrap_or(self.fleet.cross_compile)
    }

    /// The host's time zone.
    pub fn time_zone_of<'a>(&'a self, host: &'a Host) -> &'a str {
        host.time_zone.as_deref().unwrap_or(&self.fleet.time_zone)
    }

    /// Whether the fleet container `name` is placed on host `host_name`.
    pub fn is_placed_on(&self, name: &ContainerName, host_name: &HostName, host: &Host) -> bool {
        self.containers.get(name).is_some_and(|c| {
            c.placement.hosts.contains(host_name)
                || c.placement.tags.iter().any(|t| host.tags.contains(t))
        })
    }

    /// The containers that run on `host_name`: its own by name, then the fleet containers placed on it by name.
    /// When a host defines a container with the name of a placed fleet container, the host's own wins
    /// (`pifleet check` reports the clash).
    pub fn containers_of(&self, host_name: &HostName) -> Vec<HostContainer> {
        let Some(host) = self.hosts.get(host_name) else {
            return Vec::new();
        };
        let mut out: Vec<HostContainer> = host
            .containers
            .iter()
            .map(|(name, c)| HostContainer {
                name: name.clone(),
                container: c.clone(),
                origin: ContainerOrigin::Host,
            })
            .collect();
        for (name, fc) in &self.containers {
            if self.is_placed_on(name, host_name, host) && !host.containers.contains_key(name) {
                out.push(HostContainer {
                    name: name.clone(),
                    container: fc.to_container(),
                    origin: ContainerOrigin::Fleet,
                });
            }
        }
        out
    }

    /// Hosts carrying `tag`.
    pub fn hosts_tagged<'a>(
        &'a self,
        tag: &'a str,
    ) -> impl Iterator<Item = (&'a HostName, &'a Host)> + 'a {
        self.hosts
            .iter()
            .filter(move |(_, h)| h.tags.iter().any(|t| t.as_str() == tag))
    }
}
