//! The run directory's layout, in one place: where each job's model lives, what its
//! `model.yaml` holds, how names become folder names, and how files are replaced.
//!
//! ```text
//! <run>/config.yaml            the experiment as run (absolute data paths)
//! <run>/run.yaml               the shard this directory holds
//! <run>/results.{json,md,csv}  rows and tables, rewritten after every job
//! <run>/progress_<benchmark>.{png,svg}
//! <run>/models/<benchmark>/<method>/seed<k>/
//!     model.yaml, weights, train_log.jsonl, metrics_log.jsonl, checkpoints/, figures
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::experiment::MethodEntry;
use crate::{Result, RunnerError};

/// The folder of one job's model inside a run directory.
pub fn model_dir(run_dir: &Path, benchmark: &str, method: &str, seed: u64) -> PathBuf {
    run_dir
        .join("models")
        .join(slug(benchmark))
        .join(slug(method))
        .join(format!("seed{seed}"))
}

/// What a saved model needs to be rebuilt by `sb sample`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// The method's name in results.
    pub method: String,
    /// The benchmark it was trained on.
    pub benchmark: String,
    /// The reference's σ.
    pub sigma: f64,
    /// The dimension of the points.
    pub dim: usize,
    /// The seed it was trained with.
    pub seed: u64,
    /// The number of passes trained.
    pub passes: usize,
    /// Leave-one-out: where the held-out time lies between the two observed ones (the
    /// fraction of the bridge's interval its predictions were made at).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fraction: Option<f64>,
    /// `auto` when σ was chosen from the data (its value is `sigma`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sigma_rule: Option<String>,
    /// A conditional bridge: how many trailing coordinates of `dim` are the observation `y`
    /// (0, and not written, otherwise).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub observation_dim: usize,
    /// The solver, its networks and schedule, as in the experiment file.
    pub entry: MethodEntry,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Writes a trained bridge in `dir`: its weights (or exact plan) and `model.yaml`, which
/// [`crate::sample::load_model`] (and so `sb sample`) reads back.
///
/// # Errors
/// The folder or a file cannot be written.
pub fn write_model(bridge: &sb_methods::TrainedBridge, spec: &ModelSpec, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| RunnerError::io(dir, e))?;
    bridge.save(dir)?;
    let yaml = serde_yaml::to_string(spec).expect("plain data serialises");
    write_atomic(&dir.join("model.yaml"), yaml.as_bytes())
}

/// Finds every model directory (one holding `model.yaml`) under `dir`, sorted.
pub fn find_models(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        if d.join("model.yaml").is_file() {
            found.push(d.clone());
        }
        if let Ok(entries) = std::fs::read_dir(&d) {
            for e in entries.flatten() {
                if e.path().is_dir() {
                    stack.push(e.path());
                }
            }
        }
    }
    found.sort();
    found
}

/// Writes a file through a temporary file and a rename, so a reader never sees half of it.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(|e| RunnerError::io(&tmp, e))?;
    f.write_all(bytes).map_err(|e| RunnerError::io(&tmp, e))?;
    f.sync_all().map_err(|e| RunnerError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| RunnerError::io(path, e))
}

/// A file-name-safe version of a name: letters, digits, `-`, `_`, `.`; others become `-`.
pub fn slug(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect()
}
