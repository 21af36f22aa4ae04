//! Deploying a fleet: which hosts, which commands in which order ([`plan`]), what runs on the host
//! ([`remote`]: the dead man's switch, activation, disarm, commit), how the host is read and a new
//! system confirmed ([`confirm`]), and running it all with a parallelism limit where one host failing
//! never stops the others ([`run`]).
//!
//! The plan is pure data computed from the inventory, so `pifleet deploy --dry-run` prints exactly
//! what [`run`] executes. Everything that talks to hosts shells out to `ssh` and `nix` found on
//! `PATH`; nothing here links an SSH or Nix library.

pub mod adopt;
pub mod confirm;
pub mod exec;
pub mod plan;
pub mod remote;
pub mod run;
pub mod scan;

pub use confirm::{Confirmation, Generation, HostState};
pub use plan::{
    Action, BuildOn, CommandSpec, Error, Flow, HostPlan, Options, Plan, RebootPlan, Selector,
    Target, select, workstation_system,
};
pub use run::{
    Executor, HostReport, Observer, Phase, RunOptions, Status, create_log_dir, explain_ssh_failure,
};
