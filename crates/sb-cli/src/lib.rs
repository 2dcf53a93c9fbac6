//! The `sb` command: YAML experiments to reproducible benchmark tables, and sampling with
//! trained bridges.
//!
//! `main.rs` only calls [`main_with_args`]; every subcommand is a function of this library
//! so that tests call it directly. The experiment runner itself is the crate
//! [`sb_runner`] (re-exported here under its module names); this crate adds the command
//! line, the terminal's progress, `sb metric`, `sb bench` and `sb slurm`.
//!
//! - [`run`](mod@run): `sb run` on the terminal (progress bars, Ctrl-C);
//! - [`metric`]: `sb metric`, exact W1/W2, BW2²-UVP and Sinkhorn between files;
//! - [`slurm`]: `sb slurm`, job-array scripts for a cluster;
//! - [`bench`]: `sb bench`, the speed measurements.

pub mod bench;
mod cli;
pub mod metric;
pub mod progress;
pub mod run;
pub mod slurm;

pub use cli::{main_with_args, Cli};
pub use sb_runner::{
    checkpoint, experiment, jobs, layout, log, memory, plot, protocol, report, results, sample,
    summary, sweep, table,
};
pub use sb_runner::{Result, RunnerError as CliError};
