//! Deploying a fleet: which hosts, which commands in which order ([`plan`]), and running them with a
//! parallelism limit where one host failing never stops the others ([`run`]).
//!
//! The plan is pure data computed from the inventory, so `pifleet deploy --dry-run` prints exactly
//! what [`run`] executes. Everything that talks to hosts shells out to `ssh` and `nixos-rebuild`
//! found on `PATH`; nothing here links an SSH or Nix library.

pub mod adopt;
pub mod exec;
pub mod plan;
pub mod run;
pub mod scan;

pub use plan::{
    Action, BuildOn, CommandSpec, Error, HostPlan, Options, Plan, Selector, Target, select,
    workstation_system,
};
pub use run::{
    Executor, HostReport, Observer, Phase, RunOptions, Status, create_log_dir, explain_ssh_failure,
};
