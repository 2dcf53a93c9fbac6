//! Command-line parsing (clap) and dispatch.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use sb_methods::Direction;

use crate::run::{run, RunOptions};
use crate::sample::{sample, SampleOptions};

/// Schrödinger-bridge solvers (DSB, DSBM) and benchmarks: experiment files to tables.
#[derive(Debug, Parser)]
#[command(name = "sb", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Train every method of an experiment file and write a run directory
    /// (config.yaml, results.json, results.md, samples and networks).
    Run {
        /// The experiment file (YAML).
        experiment: PathBuf,
        /// The run directory [default: runs/<name>, or runs/<name>-2, … if taken].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Run this seed only, instead of the file's `seeds`.
        #[arg(long)]
        seed: Option<u64>,
        /// Print nothing but errors and the final table.
        #[arg(long)]
        quiet: bool,
    },
    /// Transport points with a trained bridge.
    Sample {
        /// A run directory written by `sb run` (or one model directory inside it).
        run_dir: PathBuf,
        /// Forward (from π0 to π1) or backward (from π1 to π0).
        #[arg(long, value_enum)]
        direction: DirectionArg,
        /// The starting points (.npy, .npz or .csv; one row a point).
        #[arg(long)]
        from: PathBuf,
        /// Where to write the transported points (.npy, float32).
        #[arg(long)]
        out: PathBuf,
        /// Euler–Maruyama steps [default: as trained].
        #[arg(long)]
        steps: Option<usize>,
        /// Seed of the sampling noise.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Which model, as a path under RUN_DIR/models (when the run holds several).
        #[arg(long)]
        model: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum DirectionArg {
    Forward,
    Backward,
}

/// Parses `args` (the program name first) and runs the subcommand; returns the exit code.
pub fn main_with_args<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    match dispatch(cli) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

fn dispatch(cli: Cli) -> crate::Result<()> {
    match cli.command {
        Command::Run {
            experiment,
            out,
            seed,
            quiet,
        } => {
            let (dir, rows) = run(&experiment, &RunOptions { out, seed, quiet })?;
            println!("{}", crate::results::markdown(&rows));
            println!("run directory: {}", dir.display());
        }
        Command::Sample {
            run_dir,
            direction,
            from,
            out,
            steps,
            seed,
            model,
        } => {
            let direction = match direction {
                DirectionArg::Forward => Direction::Forward,
                DirectionArg::Backward => Direction::Backward,
            };
            let used = sample(&SampleOptions {
                run_dir,
                model,
                direction,
                from,
                out: out.clone(),
                steps,
                seed,
            })?;
            eprintln!(
                "wrote {} with the model in {}",
                out.display(),
                used.display()
            );
        }
    }
    Ok(())
}
