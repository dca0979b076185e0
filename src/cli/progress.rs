//! Progress of the long commands (fuse, register, resample, train, eval): a bar with the
//! rate and time left on a terminal, one plain line per step when stderr is a pipe or a file.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// One job's progress: `total` steps of `unit` (e.g. "slices").
pub struct Progress {
    bar: Option<ProgressBar>,
    label: String,
    unit: String,
    total: u64,
    started: Instant,
    /// Plain mode prints at most every this many steps (and the last).
    every: u64,
    last_printed: Option<u64>,
}

impl Progress {
    /// A bar on a terminal, plain lines otherwise. `every` thins plain lines for jobs of
    /// many short steps (1: a line per step).
    pub fn new(label: &str, total: usize, unit: &str, every: usize) -> Self {
        let total = total as u64;
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            let template = format!(
                "{label} [{{bar:32}}] {{pos}}/{{len}} {unit} {{msg}} ({{elapsed}}, ETA {{eta}})"
            );
            if let Ok(style) = ProgressStyle::with_template(&template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.enable_steady_tick(Duration::from_millis(500));
            bar
        });
        Self {
            bar,
            label: label.to_string(),
            unit: unit.to_string(),
            total,
            started: Instant::now(),
            every: every.max(1) as u64,
            last_printed: None,
        }
    }

    /// `done` of the total steps are finished; `message` says how (may be empty).
    pub fn set(&mut self, done: usize, message: &str) {
        let done = done as u64;
        if let Some(bar) = &self.bar {
            bar.set_position(done);
            bar.set_message(message.to_string());
            return;
        }
        let due = done == self.total || done.is_multiple_of(self.every);
        if !due || self.last_printed == Some(done) {
            return;
        }
        self.last_printed = Some(done);
        let elapsed = self.started.elapsed().as_secs_f64();
        let left = if done > 0 && done < self.total {
            let seconds = elapsed * (self.total - done) as f64 / done as f64;
            format!(", {} left", clock(seconds))
        } else {
            String::new()
        };
        let message = if message.is_empty() {
            String::new()
        } else {
            format!(" {message}")
        };
        eprintln!(
            "{}: {done}/{} {}{message} ({}{left})",
            self.label,
            self.total,
            self.unit,
            clock(elapsed)
        );
    }

    /// `done` of `total`, for the library's `(done, total)` callbacks (the total may be
    /// learnt only then: create with 0). Always `true`: the command line does not cancel.
    pub fn report(&mut self, done: usize, total: usize) -> bool {
        let total = total as u64;
        if total != self.total {
            self.total = total;
            if let Some(bar) = &self.bar {
                bar.set_length(total);
            }
        }
        self.set(done, "");
        true
    }

    /// Ends the bar (a terminal keeps its last state on a line of its own).
    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish();
        }
    }
}

/// Seconds as `m:ss` (or `h:mm:ss`).
fn clock(seconds: f64) -> String {
    let whole = seconds.round() as u64;
    let (hours, minutes, seconds) = (whole / 3600, whole / 60 % 60, whole % 60);
    if hours > 0 {
        format!("{hours}:{minutes:02}:{seconds:02}")
    } else {
        format!("{minutes}:{seconds:02}")
    }
}

#[cfg(test)]
mod tests {
    use super::clock;

    #[test]
    fn clock_reads_as_minutes_and_hours() {
        assert_eq!(clock(0.4), "0:00");
        assert_eq!(clock(75.0), "1:15");
        assert_eq!(clock(3725.0), "1:02:05");
    }
}
