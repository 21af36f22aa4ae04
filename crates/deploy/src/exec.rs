//! Running one planned command: the building blocks `run` (deploy, rollback) and `adopt` share.
//!
//! Every command pifleet runs during a deploy is a [`CommandSpec`] from the plan, so what
//! `--dry-run` prints is exactly what runs. Probes (preflight, confirmation, fetching a hardware
//! configuration) run with a time limit and their output captured, because a host that stops
//! answering must not hang the whole fleet.

use std::io::Read as _;
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::plan::CommandSpec;

/// A command's captured result.
#[derive(Debug, Clone)]
pub struct Captured {
    /// `None` when it was killed after the time limit.
    pub status: Option<ExitStatus>,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

impl Captured {
    /// Whether it exited successfully.
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }
}

/// The process for `spec`, with no standard input: nothing pifleet runs may wait for a prompt.
pub(crate) fn command(spec: &CommandSpec) -> Command {
    let mut cmd = Command::new(&spec.program);
    cmd.args(&spec.args).stdin(Stdio::null());
    for (k, v) in &spec.env {
        cmd.env(k, v);
    }
    cmd
}

/// Runs `spec`, capturing its output; it is killed after `timeout`.
pub fn capture(spec: &CommandSpec, timeout: Duration) -> std::io::Result<Captured> {
    let mut child = command(spec)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    // Both pipes are drained on their own threads so a chatty command can't block on a full pipe.
    let read = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut buf);
            }
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let stdout = read(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = read(child.stderr.take().map(|p| Box::new(p) as _));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(20));
    };
    Ok(Captured {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}
