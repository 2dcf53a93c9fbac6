//! The JSON-lines training log of a model directory (`train_log.jsonl`).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use sb_methods::{Observer, PassInfo, StepInfo};

use crate::{Result, RunnerError};

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
                let text = std::fs::read_to_string(path).map_err(|e| RunnerError::io(path, e))?;
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
                crate::layout::write_atomic(path, kept.as_bytes())?;
            }
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(path)
            .map_err(|e| RunnerError::io(path, e))?;
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
            return Err(RunnerError::io(path, e));
        }
        self.out.flush().map_err(|e| RunnerError::io(path, e))
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
