//! A reader that stops early (`pifleet completions bash | head`, `pifleet check | head -3`) closes
//! the pipe under pifleet; the next write fails with EPIPE.
//!
//! Rust ignores SIGPIPE, so `println!` panics and `write_all` returns the error. Restoring the
//! default SIGPIPE instead would kill the process outright, skipping the destructors that unmount
//! cards, detach loop devices and wipe a decrypted secret's temporary file. So the failure is
//! allowed to unwind (or return) as usual, and only its report is silenced: the process ends
//! quietly with the status a shell shows for a reader that closed the pipe (128 + SIGPIPE).

use std::any::Any;

/// The exit status after a closed pipe: what `sh` reports for a process ended by SIGPIPE.
pub(crate) const CLOSED_PIPE_STATUS: u8 = 141;

/// Installs a panic hook that says nothing about a failed print to a closed pipe and reports
/// every other panic as before.
pub(crate) fn silence_closed_pipe_panics() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !is_closed_pipe_panic(info.payload()) {
            previous(info);
        }
    }));
}

/// Whether a panic payload is `println!`/`eprintln!` failing on a closed pipe.
pub(crate) fn is_closed_pipe_panic(payload: &(dyn Any + Send)) -> bool {
    let message = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or_default();
    message.starts_with("failed printing to std") && message.contains("Broken pipe")
}

/// Whether an error was caused by writing to a closed pipe.
pub(crate) fn is_closed_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_print_failures_on_a_closed_pipe_are_silenced() {
        let printed: Box<dyn Any + Send> =
            Box::new("failed printing to stdout: Broken pipe (os error 32)".to_owned());
        assert!(is_closed_pipe_panic(printed.as_ref()));
        let other: Box<dyn Any + Send> = Box::new("index out of bounds");
        assert!(!is_closed_pipe_panic(other.as_ref()));
        let full: Box<dyn Any + Send> =
            Box::new("failed printing to stdout: No space left on device".to_owned());
        assert!(!is_closed_pipe_panic(full.as_ref()));
    }

    #[test]
    fn a_closed_pipe_anywhere_in_the_chain_counts() {
        let io = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        let err = anyhow::Error::new(io).context("writing the diff");
        assert!(is_closed_pipe(&err));
        assert!(!is_closed_pipe(&anyhow::anyhow!("no such host")));
    }
}
