//! The terminal's view of a run: a progress bar per pass (or plain lines), the data summary,
//! and a line per finished job.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};
use sb_methods::{Observer, PassInfo, StepInfo};

/// A progress bar per pass on a terminal; one plain line per finished pass otherwise.
pub struct Progress {
    prefix: String,
    bar: Option<ProgressBar>,
    terminal: bool,
}

impl Progress {
    /// Progress for the job named by `prefix` (benchmark / method / seed).
    pub fn new(prefix: String) -> Self {
        Self {
            prefix,
            bar: None,
            terminal: std::io::stderr().is_terminal(),
        }
    }
}

impl Observer for Progress {
    fn pass_start(&mut self, info: &PassInfo) {
        if !self.terminal {
            return;
        }
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix} {msg} [{bar:30}] {pos}/{len} {per_sec} ETA {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix(format!(
            "{} pass {}/{} ({})",
            self.prefix,
            info.pass + 1,
            info.passes,
            info.direction
        ));
        self.bar = Some(bar);
    }

    fn step(&mut self, info: &StepInfo) {
        if let Some(bar) = &self.bar {
            if info.step == 0 {
                bar.set_length(info.steps as u64);
            }
            bar.inc(1);
            if info.step % 20 == 0 {
                bar.set_message(format!("loss {:.4}", info.loss));
            }
        }
    }

    fn pass_end(&mut self, info: &PassInfo) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        eprintln!(
            "{} pass {}/{} ({}) mean loss {:.5}",
            self.prefix,
            info.pass + 1,
            info.passes,
            info.direction,
            info.mean_loss
        );
    }
}
