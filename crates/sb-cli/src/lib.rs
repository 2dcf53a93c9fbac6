//! The `sb` command: YAML experiments to reproducible benchmark tables, and sampling with
//! trained bridges.
//!
//! `main.rs` only calls [`main_with_args`]; every subcommand is a function of this library
//! so that tests call it directly.
//!
//! - [`experiment`]: the experiment file (problems × methods × seeds, evaluation);
//! - [`run`](mod@run): `sb run`, which trains, evaluates and writes a run directory;
//! - [`sample`](mod@sample): `sb sample`, which transports points with a saved bridge;
//! - [`metric`]: `sb metric`, exact W1/W2 and BW2²-UVP between files;
//! - [`results`]: result rows and the Markdown table.

pub mod bench;
pub mod checkpoint;
mod cli;
mod error;
pub mod experiment;
pub mod jobs;
pub mod memory;
pub mod metric;
pub mod plot;
pub mod progress;
pub mod protocol;
pub mod report;
pub mod results;
pub mod run;
pub mod sample;
pub mod slurm;
pub mod summary;
pub mod sweep;
pub mod table;

pub use cli::{main_with_args, Cli};
pub use error::{CliError, Result};
