//! Containers on a host, and fleet containers placed on hosts by tag or name.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::*;
use crate::names::{ContainerName, HostName, ImageRef, PortMapping, SecretName, Tag, Volume};

/// What systemd does when a container stops.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Restart {
    /// Always restart (default).
    #[default]
    Always,
    /// Docker Compose's most common value, accepted as written. Under systemd it is the same as
    /// `always`: a container stopped on purpose (`systemctl stop docker-NAME`) stays stopped until
    /// it is started again or the host boots (when `auto_start` starts it).
    UnlessStopped,
    /// Restart only after a failure.
    OnFailure,
    /// Never restart.
    No,
}

/// Generates the container structs: host containers and fleet containers share every field, and serde's
/// `flatten` cannot be combined with `deny_unknown_fields`, so the list is written once here.
macro_rules! container_struct {
    ($(#[$meta:meta])* $name:ident { $($(#[$fmeta:meta])* pub $field:ident : $ty:ty,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $($(#[$fmeta])* pub $field: $ty,)*
            /// Image with a tag or digest, e.g. "ghcr.io/home-assistant/home-assistant:2026.11.1".
            pub image: ImageRef,
            /// Published ports: "HOST:CONTAINER", "127.0.0.1:8080:80" or "53:53/udp".
            #[serde(default)]
            pub ports: Vec<PortMapping>,
            /// Volumes: "/host/path:/container/path[:ro]" or "name:/container/path".
            #[serde(default)]
            pub volumes: Vec<Volume>,
            /// Environment variables. Values are strings: quote numbers ("1000").
            #[serde(default)]
            pub environment: BTreeMap<String, String>,
            /// Files on the host with KEY=value lines, for secrets that must stay out of the Nix store.
            #[serde(default)]
            pub environment_files: Vec<String>,
            /// Secrets (in `secrets/<name>.age`) holding KEY=value lines for the container's environment, decrypted
            /// on the host by agenix. Write them with `pifleet secrets set`.
            #[serde(default)]
            pub environment_secrets: Vec<SecretName>,
            /// Command and arguments passed to the image, replacing its CMD.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub command: Option<Vec<String>>,
            /// Entrypoint replacing the image's.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub entrypoint: Option<String>,
            /// User (and group) inside the container, e.g. "1000:1000".
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub user: Option<String>,
            /// Start at boot (`autoStart`).
            #[serde(default = "yes")]
            pub auto_start: bool,
            /// When systemd restarts the container: "always" (default), "on-failure" or "no".
            #[serde(default)]
            pub restart: Restart,
            /// Containers on the same host that must start first.
            #[serde(default)]
            pub depends_on: Vec<ContainerName>,
            /// Extra `docker run` options, e.g. ["--network=host", "--device=/dev/ttyUSB0"].
            #[serde(default)]
            pub extra_options: Vec<String>,
            /// Container labels.
            #[serde(default)]
            pub labels: BTreeMap<String, String>,
            /// Run with `--privileged`: full access to the host. Avoid unless the image really needs it.
            #[serde(default)]
            pub privileged: bool,
            /// Open the published host ports in the host firewall.
            #[serde(default)]
            pub open_firewall: bool,
        }
    };
}

container_struct! {
    /// A Docker container on a host, run through `virtualisation.oci-containers` with `backend = "docker"`.
    Container {}
}

container_struct! {
    /// A container written once for the fleet and placed on hosts by tag or by name.
    FleetContainer {
        /// Which hosts run this container.
        pub placement: Placement,
    }
}

impl FleetContainer {
    /// The container as it runs on a host, without the placement.
    pub fn to_container(&self) -> Container {
        Container {
            image: self.image.clone(),
            ports: self.ports.clone(),
            volumes: self.volumes.clone(),
            environment: self.environment.clone(),
            environment_files: self.environment_files.clone(),
            environment_secrets: self.environment_secrets.clone(),
            command: self.command.clone(),
            entrypoint: self.entrypoint.clone(),
            user: self.user.clone(),
            auto_start: self.auto_start,
            restart: self.restart,
            depends_on: self.depends_on.clone(),
            extra_options: self.extra_options.clone(),
            labels: self.labels.clone(),
            privileged: self.privileged,
            open_firewall: self.open_firewall,
        }
    }
}

/// Which hosts run a fleet container: every host with one of `tags`, plus every host in `hosts`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Placement {
    /// Run on every host that has at least one of these tags.
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// Run on these hosts, by name.
    #[serde(default)]
    pub hosts: Vec<HostName>,
}
