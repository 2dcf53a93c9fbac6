//! `sb run` on the terminal: [`sb_runner::run`] with a reporter that prints the data summary,
//! a progress bar per pass and a line per finished job (nothing with `--quiet`), and a
//! Ctrl-C handler that says how to resume.

use std::path::{Path, PathBuf};

pub use sb_runner::run::{check, check_with_summary, Reporter, Silent};
use sb_runner::{Job, Row};

use crate::jobs::Shard;
use crate::progress::Progress;
use crate::Result;

/// Options of `sb run`.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// The run directory; defaults to `runs/<name>` (or `runs/<name>-2`, … if taken).
    pub out: Option<PathBuf>,
    /// Run this seed only, instead of the file's seeds.
    pub seed: Option<u64>,
    /// No summary, progress or job lines.
    pub quiet: bool,
    /// Run only this shard of the jobs.
    pub shard: Option<Shard>,
}

/// Runs an experiment file as `sb run` does; returns the run directory and the result rows.
///
/// # Errors
/// As [`sb_runner::run()`].
pub fn run(path: &Path, options: &RunOptions) -> Result<(PathBuf, Vec<Row>)> {
    let runner = sb_runner::RunOptions {
        out: options.out.clone(),
        seed: options.seed,
        shard: options.shard,
    };
    if options.quiet {
        sb_runner::run(path, &runner, &mut Quiet)
    } else {
        sb_runner::run(path, &runner, &mut Terminal)
    }
}

/// Continues a run directory as `sb run --resume` does.
///
/// # Errors
/// As [`sb_runner::resume()`].
pub fn resume(run_dir: &Path, quiet: bool) -> Result<(PathBuf, Vec<Row>)> {
    if quiet {
        sb_runner::resume(run_dir, &mut Quiet)
    } else {
        sb_runner::resume(run_dir, &mut Terminal)
    }
}

/// The run directory in progress, for the Ctrl-C message.
static CURRENT_RUN: std::sync::Mutex<Option<PathBuf>> = std::sync::Mutex::new(None);

fn remember(dir: &Path) {
    if let Ok(mut current) = CURRENT_RUN.lock() {
        *current = Some(dir.to_path_buf());
    }
}

/// Prints nothing, but remembers the run directory for the Ctrl-C message.
struct Quiet;

impl Reporter for Quiet {
    fn run_dir(&mut self, dir: &Path) {
        remember(dir);
    }
}

/// Prints to stderr: the summary, progress bars (plain lines off a terminal), job lines.
struct Terminal;

fn prefix(job: &Job) -> String {
    format!("[{} / {} / seed {}]", job.benchmark, job.method, job.seed)
}

impl Reporter for Terminal {
    fn run_dir(&mut self, dir: &Path) {
        remember(dir);
    }

    fn summary(&mut self, text: &str, warnings: &[String]) {
        eprint!("{text}");
        for w in warnings {
            eprintln!("warning: {w}");
        }
    }

    fn note(&mut self, job: &Job, text: &str) {
        eprintln!("{} {text}", prefix(job));
    }

    fn training(&mut self, job: &Job) -> Option<Box<dyn sb_methods::Observer + '_>> {
        Some(Box::new(Progress::new(prefix(job))))
    }

    fn job_done(&mut self, job: &Job, values: &[(String, f64)], wall_s: f64) {
        let summary: Vec<String> = values
            .iter()
            .map(|(k, v)| format!("{k} = {v:.4}"))
            .collect();
        eprintln!("{} {} ({wall_s:.1} s)", prefix(job), summary.join(", "));
    }
}

/// Installs (once per process) a Ctrl-C handler that says how to resume the run in progress
/// and exits with status 130. Any moment is a clean point: checkpoints and results are only
/// ever replaced by an atomic rename.
pub fn stop_cleanly_on_ctrl_c() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let installed = ctrlc::set_handler(|| {
            let dir = CURRENT_RUN.lock().ok().and_then(|d| d.clone());
            match dir {
                Some(d) => eprintln!(
                    "\ninterrupted: every finished pass is checkpointed; continue with `sb run --resume {}`",
                    d.display()
                ),
                None => eprintln!("\ninterrupted"),
            }
            std::process::exit(130);
        });
        if let Err(e) = installed {
            eprintln!("warning: Ctrl-C will not print how to resume: {e}");
        }
    });
}
