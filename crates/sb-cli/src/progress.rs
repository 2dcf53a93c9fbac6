//! Observers of training runs: a progress bar (or plain lines) and a JSON-lines log.

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};
use sb_methods::{Observer, PassInfo, StepInfo};

use crate::{CliError, Result};

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

/// Writes training events as JSON lines: the loss every `every` steps and at the end of each
/// pass, and each pass's mean loss.
pub struct JsonLog {
    out: BufWriter<File>,
    every: usize,
    failed: Option<std::io::Error>,
}

impl JsonLog {
    /// Opens the log file: truncated for a new run; when resuming after `passes_done`
    /// finished passes, the lines of later (interrupted) passes are dropped first, so that
    /// every logged step appears once, as in an uninterrupted run.
    ///
    /// # Errors
    /// The file cannot be read, rewritten or opened.
    pub fn open(path: &Path, every: usize, resume_after: Option<usize>) -> Result<Self> {
        let append = resume_after.is_some();
        if let Some(done) = resume_after {
            if path.is_file() {
                let text = std::fs::read_to_string(path).map_err(|e| CliError::io(path, e))?;
                let kept: String = text
                    .lines()
                    .filter(|line| {
                        serde_json::from_str::<serde_json::Value>(line)
                            .ok()
                            .and_then(|v| v["pass"].as_u64())
                            .is_some_and(|p| (p as usize) < done)
                    })
                    .map(|line| format!("{line}\n"))
                    .collect();
                crate::run::write_atomic(path, kept.as_bytes())?;
            }
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(path)
            .map_err(|e| CliError::io(path, e))?;
        Ok(Self {
            out: BufWriter::new(file),
            every: every.max(1),
            failed: None,
        })
    }

    fn write(&mut self, line: serde_json::Value) {
        if self.failed.is_none() {
            if let Err(e) = writeln!(self.out, "{line}") {
                self.failed = Some(e);
            }
        }
    }

    /// Flushes the log; reports the first write error, if any.
    ///
    /// # Errors
    /// A write or flush failed.
    pub fn finish(mut self, path: &Path) -> Result<()> {
        if let Some(e) = self.failed.take() {
            return Err(CliError::io(path, e));
        }
        self.out.flush().map_err(|e| CliError::io(path, e))
    }
}

impl Observer for JsonLog {
    fn step(&mut self, info: &StepInfo) {
        if (info.step + 1) % self.every == 0 || info.step + 1 == info.steps {
            self.write(serde_json::json!({
                "event": "step",
                "pass": info.pass,
                "direction": info.direction.as_str(),
                "step": info.step,
                "loss": info.loss,
            }));
        }
    }

    fn pass_end(&mut self, info: &PassInfo) {
        self.write(serde_json::json!({
            "event": "pass_end",
            "pass": info.pass,
            "direction": info.direction.as_str(),
            "mean_loss": info.mean_loss,
        }));
        if let Err(e) = self.out.flush() {
            self.failed.get_or_insert(e);
        }
    }
}
