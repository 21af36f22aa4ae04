//! Progress of long byte-counting work (writing and verifying a card): an indicatif bar on a
//! terminal, plain lines every few seconds when the output goes to a log.

use std::io::IsTerminal as _;
use std::time::{Duration, Instant};

use crate::ui::bytes;

/// Progress as an indicatif bar on a terminal, or plain lines every few seconds when piped.
pub(crate) enum ByteProgress {
    Bar(indicatif::ProgressBar),
    Plain {
        verb: &'static str,
        started: Instant,
        last: Instant,
        done: u64,
        total: Option<u64>,
    },
}

/// How often a plain line is printed when output is not a terminal.
const PLAIN_EVERY: Duration = Duration::from_secs(2);

impl ByteProgress {
    pub(crate) fn new(verb: &'static str, total: Option<u64>) -> Self {
        if std::io::stderr().is_terminal() {
            let bar = match total {
                Some(total) => indicatif::ProgressBar::new(total),
                None => indicatif::ProgressBar::new_spinner(),
            };
            let template = if total.is_some() {
                "{msg:8} [{bar:40}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}"
            } else {
                "{msg:8} {spinner} {bytes} {binary_bytes_per_sec} {elapsed}"
            };
            if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message(verb);
            Self::Bar(bar)
        } else {
            let now = Instant::now();
            Self::Plain {
                verb,
                started: now,
                last: now,
                done: 0,
                total,
            }
        }
    }

    pub(crate) fn finish(&mut self) {
        match self {
            Self::Bar(bar) => bar.finish(),
            Self::Plain {
                verb,
                started,
                done,
                total,
                ..
            } => eprintln!("{}", plain_line(verb, *done, *total, started.elapsed())),
        }
    }
}

impl flash::Progress for ByteProgress {
    fn update(&mut self, written: u64, _total: Option<u64>) {
        match self {
            Self::Bar(bar) => bar.set_position(written),
            Self::Plain {
                verb,
                started,
                last,
                done,
                total,
            } => {
                *done = written;
                if last.elapsed() >= PLAIN_EVERY {
                    *last = Instant::now();
                    eprintln!("{}", plain_line(verb, written, *total, started.elapsed()));
                }
            }
        }
    }
}

/// "written 512 MiB of 2.0 GiB, 85 MiB/s"
fn plain_line(verb: &str, done: u64, total: Option<u64>, elapsed: Duration) -> String {
    let rate = if elapsed.as_secs_f64() > 0.0 {
        (done as f64 / elapsed.as_secs_f64()) as u64
    } else {
        0
    };
    match total {
        Some(total) => format!(
            "{verb} {} of {}, {}/s",
            bytes(done),
            bytes(total),
            bytes(rate)
        ),
        None => format!("{verb} {}, {}/s", bytes(done), bytes(rate)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines() {
        assert_eq!(
            plain_line("written", 512 << 20, Some(2 << 30), Duration::from_secs(8)),
            "written 512.00 MiB of 2.00 GiB, 64.00 MiB/s"
        );
        assert_eq!(
            plain_line("written", 3 << 20, None, Duration::from_secs(1)),
            "written 3.00 MiB, 3.00 MiB/s"
        );
    }
}
