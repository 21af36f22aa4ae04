//! What a subcommand reports back to `main`, which turns it into the exit code.

/// What a subcommand reports back: success, or "ran, but found problems" (exit 1).
/// Errors that stop a command from doing its job are `Err` and exit 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Clean,
    Problems,
}
