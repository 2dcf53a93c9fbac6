//! Helpers for the end-to-end tests: a tiny experiment that trains in about a second.

use std::path::{Path, PathBuf};

/// A two-method experiment (DSB and DSBM-IPF) between 2-D Gaussians, small enough for tests.
pub const TINY: &str = "
name: tiny
seeds: [3]
problems:
  - name: gauss
    sigma: 1.0
    pi0: {kind: gaussian, dim: 2, mean: -1.0, cov: 0.5}
    pi1: {kind: gaussian, dim: 2, mean: 1.0, cov: 1.0}
methods:
  - method: {kind: dsb, num_steps: 5}
    net: {hidden: [16]}
    train: {passes: 2, steps_per_pass: 20, batch_size: 32, lr: 1.0e-3, cache_size: 64}
  - method: {kind: dsbm, num_steps: 5, first_coupling: reference}
    net: {hidden: [16], time: concat}
    train: {passes: 2, steps_per_pass: 20, batch_size: 32, lr: 1.0e-3, cache_size: 64}
eval:
  samples: 50
  metrics: [w2, w1, mmd]
";

/// Writes `text` as `name` in `dir` and returns its path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write test file");
    p
}

/// Reads a run's `results.json` as (method, metric, seed, value) tuples.
pub fn values(run_dir: &Path) -> Vec<(String, String, u64, f64)> {
    let text = std::fs::read_to_string(run_dir.join("results.json")).expect("results.json");
    let rows: Vec<serde_json::Value> = serde_json::from_str(&text).expect("json");
    rows.iter()
        .map(|r| {
            (
                r["method"].as_str().unwrap_or_default().to_string(),
                r["metric"].as_str().unwrap_or_default().to_string(),
                r["seed"].as_u64().unwrap_or_default(),
                r["value"].as_f64().unwrap_or(f64::NAN),
            )
        })
        .collect()
}
