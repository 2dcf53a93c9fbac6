//! The experiment file: problems × methods × seeds, and how to evaluate them.

use std::path::Path;

use sb_data::Distribution;
use sb_methods::{MethodConfig, NetConfig, TrainConfig};
use serde::{Deserialize, Serialize};

use crate::{CliError, Result};

fn default_seeds() -> Vec<u64> {
    vec![0]
}

/// An experiment: every method is trained on every problem for every seed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    /// Name of the experiment; the default run directory is `runs/<name>`.
    pub name: String,
    /// Seeds; each (problem, method) is run once per seed. Defaults to `[0]`.
    #[serde(default = "default_seeds")]
    pub seeds: Vec<u64>,
    /// The bridge problems.
    pub problems: Vec<Problem>,
    /// The methods to compare.
    pub methods: Vec<MethodEntry>,
    /// How trained bridges are evaluated.
    #[serde(default)]
    pub eval: EvalConfig,
}

/// A bridge problem: π0, π1 and the reference's σ.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Problem {
    /// Name in results (the `benchmark` column).
    pub name: String,
    /// Noise level of the reference `dX = σ dW` on [0, 1]; ε = σ².
    pub sigma: f64,
    /// The distribution at t = 0 (data).
    pub pi0: Distribution,
    /// The distribution at t = 1 (prior, or a second data set).
    pub pi1: Distribution,
}

/// One method to run: the solver, its networks and its training schedule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MethodEntry {
    /// Name in results. Defaults to the solver's own name (DSB, DSBM-IMF, …).
    #[serde(default)]
    pub label: Option<String>,
    /// The solver (`kind: dsb` or `kind: dsbm`) and its parameters.
    pub method: MethodConfig,
    /// The drift networks. Defaults to a 3×256 SiLU MLP with sinusoidal time.
    #[serde(default)]
    pub net: NetConfig,
    /// The training schedule.
    #[serde(default)]
    pub train: TrainConfig,
}

/// A metric between generated and true samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Exact 2-Wasserstein distance (squared Euclidean cost, then the root).
    W2,
    /// Exact 1-Wasserstein distance (Euclidean cost).
    W1,
    /// Squared MMD with a Gaussian kernel of bandwidth `eval.mmd_bandwidth`.
    Mmd,
}

impl Metric {
    /// The name used in results.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::W2 => "w2",
            Self::W1 => "w1",
            Self::Mmd => "mmd",
        }
    }
}

fn default_samples() -> usize {
    1000
}
fn default_metrics() -> Vec<Metric> {
    vec![Metric::W2]
}
fn one() -> f64 {
    1.0
}

/// Evaluation: `samples` points are transported in each direction and compared with
/// `samples` fresh points of the target distribution.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalConfig {
    /// Points per evaluation. Defaults to 1000.
    #[serde(default = "default_samples")]
    pub samples: usize,
    /// Metrics. Defaults to `[w2]`.
    #[serde(default = "default_metrics")]
    pub metrics: Vec<Metric>,
    /// Kernel bandwidth for `mmd`. Defaults to 1.
    #[serde(default = "one")]
    pub mmd_bandwidth: f64,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            samples: default_samples(),
            metrics: default_metrics(),
            mmd_bandwidth: 1.0,
        }
    }
}

impl Experiment {
    /// Reads and validates an experiment file.
    ///
    /// # Errors
    /// An unreadable file, a YAML error (with line and column), an unknown key, or an
    /// invalid value, each naming the file and the key.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| CliError::io(path, e))?;
        Self::parse(&text, path)
    }

    /// Parses and validates experiment text; `file` names it in errors.
    ///
    /// # Errors
    /// As [`Experiment::load`].
    pub fn parse(text: &str, file: &Path) -> Result<Self> {
        let exp: Self = serde_yaml::from_str(text).map_err(|e| CliError::Config {
            file: file.to_path_buf(),
            message: e.to_string(),
        })?;
        exp.validate(file)?;
        Ok(exp)
    }

    /// Checks every value that can be checked without training.
    ///
    /// # Errors
    /// The first invalid value, naming its key.
    pub fn validate(&self, file: &Path) -> Result<()> {
        let bad = |message: String| CliError::Config {
            file: file.to_path_buf(),
            message,
        };
        if self.seeds.is_empty() {
            return Err(bad("seeds must list at least one seed".into()));
        }
        if self.problems.is_empty() {
            return Err(bad("problems must list at least one problem".into()));
        }
        if self.methods.is_empty() {
            return Err(bad("methods must list at least one method".into()));
        }
        if self.eval.samples < 2 {
            return Err(bad(format!(
                "eval.samples must be ≥ 2, got {}",
                self.eval.samples
            )));
        }
        if !(self.eval.mmd_bandwidth > 0.0 && self.eval.mmd_bandwidth.is_finite()) {
            return Err(bad(format!(
                "eval.mmd_bandwidth must be > 0, got {}",
                self.eval.mmd_bandwidth
            )));
        }
        for (i, p) in self.problems.iter().enumerate() {
            if !(p.sigma >= 0.0 && p.sigma.is_finite()) {
                return Err(bad(format!(
                    "problems[{i}].sigma must be ≥ 0, got {}",
                    p.sigma
                )));
            }
            for (j, m) in self.methods.iter().enumerate() {
                m.method.build(p.sigma).map_err(|e| {
                    bad(format!(
                        "methods[{j}].{e} (with problems[{i}].sigma = {})",
                        p.sigma
                    ))
                })?;
            }
        }
        for (j, m) in self.methods.iter().enumerate() {
            m.train
                .validate()
                .map_err(|e| bad(format!("methods[{j}].{e}")))?;
            m.net
                .validate()
                .map_err(|e| bad(format!("methods[{j}].{e}")))?;
        }
        Ok(())
    }

    /// The experiment with defaults written out, as YAML.
    pub fn to_yaml(&self) -> String {
        serde_yaml::to_string(self).expect("plain data serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "
name: t
problems:
  - name: p
    sigma: 1.0
    pi0: {kind: moons}
    pi1: {kind: gaussian, dim: 2}
methods:
  - method: {kind: dsbm, first_coupling: reference}
";

    #[test]
    fn parses_with_defaults_and_round_trips() {
        let e = Experiment::parse(GOOD, Path::new("x.yaml")).unwrap();
        assert_eq!(e.seeds, vec![0]);
        assert_eq!(e.methods[0].train, TrainConfig::default());
        let again = Experiment::parse(&e.to_yaml(), Path::new("x.yaml")).unwrap();
        assert_eq!(e, again);
    }

    #[test]
    fn unknown_key_names_the_file_and_the_key() {
        let text = GOOD.replace(
            "first_coupling: reference",
            "first_coupling: reference, lr: 3",
        );
        let e = Experiment::parse(&text, Path::new("x.yaml"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("x.yaml: "), "{e}");
        assert!(e.contains("unknown field `lr`"), "{e}");
    }

    #[test]
    fn negative_sigma_is_refused() {
        let text = GOOD.replace("sigma: 1.0", "sigma: -1.0");
        let e = Experiment::parse(&text, Path::new("x.yaml"))
            .unwrap_err()
            .to_string();
        assert_eq!(e, "x.yaml: problems[0].sigma must be ≥ 0, got -1");
    }
}
