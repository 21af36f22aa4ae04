//! One module per subcommand, each with its own clap `Args` and a `run` function.

pub(crate) mod adopt;
pub(crate) mod check;
pub(crate) mod completions;
pub(crate) mod deploy;
pub(crate) mod doctor;
pub(crate) mod flash;
pub(crate) mod generate;
pub(crate) mod hostkey;
pub(crate) mod image;
pub(crate) mod init;
pub(crate) mod keys;
pub(crate) mod rollback;
pub(crate) mod schema;
pub(crate) mod secrets;
pub(crate) mod status;
