//! The fleet inventory: typed, documented, and checked while it is read.
//!
//! `fleet.toml` is the only place a fleet is described, so this crate makes it hard to get wrong: every table
//! rejects unknown fields, every string with a grammar is a checked newtype ([`names`]), the JSON schema editors
//! use is generated from the same types ([`schema`]), and [`load`] reports every problem with a path and a
//! line:column instead of stopping at the first.
//!
//! ```no_run
//! let loaded = model::load("fleet.toml")?;
//! for host in loaded.fleet.views() {
//!     println!("{}: {} on port {}", host.name, host.host.board.system(), host.ssh.port);
//! }
//! # Ok::<(), model::LoadError>(())
//! ```

pub mod edit;
mod json_spans;
pub mod load;
pub mod names;
mod problem;
pub mod scaffold;
pub mod source;
pub mod sshd;
pub mod types;
pub mod view;

pub use load::{
    Format, Invalid, LoadError, Loaded, MAX_INVENTORY_BYTES, Partial, Problem, ReadError, load,
    load_bytes, load_str, load_str_as, read_inventory, read_inventory_from, schema, schema_string,
};
pub use names::{
    Address, BanTime, CacheKey, Calendar, Cidr, ContainerName, FlakeRef, HealthUrl, HostName,
    ImageRef, Ip, IpOrCidr, KernelParam, Keymap, NameError, NtpServer, PackageName, Port,
    PortMapping, Protocol, Route, SecretName, SshPublicKey, StateVersion, Substituter, Tag,
    TailscaleTag, UnitName, UserName, UserPattern, Volume,
};
pub use problem::ProblemCode;
pub use source::{Lines, Path, Segment, SourceFile, Span, SpanMap, Spans};
pub use types::*;
pub use view::{
    Account, AutoUpgradeView, ContainerOrigin, DeployTarget, Elevation, Holder, HostContainer,
    HostView, KeyLogin, KeyOf, Keyring, LoginBlock, Origin, PasswordState, Recipients,
    RoutingFeatures, SECRETS_DIR, Sealed, SettingValue, SshField, SshView, SudoRight,
    TailscaleView,
};

/// The body of the cargo-fuzz target in `crates/model/fuzz/`: read arbitrary bytes as TOML and as JSON.
/// Public so the no-panic tests run exactly what the fuzzer runs.
#[doc(hidden)]
pub fn fuzz_load(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        for name in ["fuzz.toml", "fuzz.json"] {
            match load_str(text, name) {
                Ok(loaded) => {
                    // Exercise the resolved views too: they must not panic on anything the loader accepts.
                    for view in loaded.fleet.views() {
                        let _ = view.ssh.settings();
                        let _ = view.deploy_login();
                    }
                }
                Err(LoadError::Invalid(invalid)) => {
                    for p in &invalid.problems {
                        if let Some(span) = p.span {
                            let _ = invalid.source.line_col(span.start);
                        }
                    }
                }
                Err(_) => {}
            }
        }
    }
}
