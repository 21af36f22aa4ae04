//! Semantic rules: what the schema cannot say, because it needs to look at two places at once, and
//! the lockout analysis and security lints, which judge each host's resolved view.
//!
//! Rules come in families, one file each, by what they look at: users and keys, SSH, the network,
//! containers, secrets and host keys, services (Tailscale, upgrades, caches, the kernel command line), hosts, `allow` entries, and every value as text. Each family exports its rules in a [`Family`]; a new
//! rule is registered by adding it to its family's list (one edit), and its code by one entry in
//! [`crate::codes`]. Families read the shared [`crate::context`] and never each other.
//!
//! Rules never fail and never panic: they only read the typed inventory, so they can assume every
//! name, key and port is well formed (the loader checked) and only ask how the pieces fit.

mod allow;
mod containers;
mod hosts;
mod network;
mod secrets;
mod services;
mod ssh;
mod users;
mod values;

use crate::context::Context;
use crate::diagnostic::Diagnostic;

/// A named semantic rule.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// A short name for the rule (not a diagnostic code: one rule may emit several codes).
    pub name: &'static str,
    /// The check itself.
    pub run: fn(&Context<'_>) -> Vec<Diagnostic>,
}

/// The rules of one family.
#[derive(Debug, Clone, Copy)]
pub struct Family {
    /// What the family looks at.
    pub name: &'static str,
    /// Its rules, run in this order.
    pub rules: &'static [Rule],
}

/// `Rule { name: "f", run: f }`.
macro_rules! rules {
    ($($rule:ident),* $(,)?) => {
        &[$($crate::rules::Rule { name: stringify!($rule), run: $rule }),*]
    };
}
pub(crate) use rules;

/// Every family, in the order they run.
pub const FAMILIES: &[Family] = &[
    users::FAMILY,
    ssh::FAMILY,
    network::FAMILY,
    containers::FAMILY,
    secrets::FAMILY,
    services::FAMILY,
    hosts::FAMILY,
    allow::FAMILY,
    values::FAMILY,
];

/// Every rule of every family.
pub fn all() -> impl Iterator<Item = &'static Rule> {
    FAMILIES.iter().flat_map(|f| f.rules.iter())
}
