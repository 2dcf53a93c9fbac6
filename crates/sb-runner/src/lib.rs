//! The experiment runner: experiment files to reproducible tables, for any front end.
//!
//! The `sb` command and the Python package `sbridge` are two front ends over this crate:
//! they parse their arguments, pass a [`run::Reporter`] for what the user sees, and print or
//! return what it gives back.
//!
//! - [`experiment`]: the experiment file (problems × methods × seeds, evaluation), loaded and
//!   validated, with [`sweep`]s expanded;
//! - [`protocol`]: each problem's data, splits and held-out times; [`summary`] describes them;
//! - [`jobs`]: the ordered list of jobs, and shards of it;
//! - [`run`](mod@run): train, evaluate and write a run directory, or resume one;
//! - [`layout`]: where everything lives in a run directory;
//! - [`report`]: read run directories back and merge them into one table ([`table`],
//!   [`results`]);
//! - [`inverse`]: conditional bridges on linear-Gaussian inverse problems, scored against the
//!   exact posterior;
//! - [`sample`](mod@sample): transport points with a saved model; [`plot`]: the figures.

pub mod checkpoint;
mod error;
pub mod experiment;
pub mod images;
pub mod inverse;
pub mod jobs;
pub mod layout;
pub mod log;
pub mod memory;
pub mod plot;
pub mod protocol;
pub mod report;
pub mod results;
pub mod run;
pub mod sample;
pub mod summary;
pub mod sweep;
pub mod table;

pub use error::{Result, RunnerError};
pub use experiment::Experiment;
pub use jobs::{jobs, Job, Shard};
pub use report::{report, Report};
pub use results::Row;
pub use run::{check, resume, run, run_experiment, Reporter, RunOptions, Silent};
