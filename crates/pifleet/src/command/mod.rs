//! One module per subcommand, each with its own clap `Args` and a `run` function.

pub(crate) mod check;
pub(crate) mod completions;
pub(crate) mod schema;
pub(crate) mod flash;
pub(crate) mod image;
