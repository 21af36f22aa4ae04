//! The inventory types: one struct per table of `fleet.toml`, in one file per area.
//!
//! Field names are a contract shared with users' files, the JSON schema and the renderer, so they follow
//! the project's design. Every doc comment here becomes the tooltip an editor shows while completing the field, so
//! write them for the person editing `fleet.toml`, not for Rust readers. Every table rejects unknown fields:
//! a typo must be an error, never a silently ignored setting.

mod container;
mod fleet;
mod host;
mod network;
mod ssh;
mod system;
mod user;

pub use container::*;
pub use fleet::*;
pub use host::*;
pub use network::*;
pub use ssh::*;
pub use system::*;
pub use user::*;
