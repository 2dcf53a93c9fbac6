//! The experiment file: problems × methods × seeds, and how to evaluate them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sb_data::{CourseSpec, Distribution, SplitSpec};
use sb_methods::{MethodConfig, NetConfig, TrainConfig};
use serde::{Deserialize, Serialize};

use crate::{Result, RunnerError};

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
    /// Where each problem and method came from in the file.
    #[serde(skip)]
    origins: Origins,
}

/// For each problem and method, its index in the file (sweeps expand one entry into
/// several), so that errors name the file's keys. Not part of an experiment's identity: two
/// experiments with the same content are equal however they were written.
#[derive(Clone, Debug, Default)]
struct Origins {
    problems: Vec<usize>,
    methods: Vec<usize>,
}

impl PartialEq for Origins {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// The reference's noise level: a value, or `auto`, chosen from the data by
/// [`crate::protocol::auto_sigma`] when the data are loaded.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Sigma {
    /// σ itself.
    Value(f64),
    /// Half the typical per-coordinate spread of the two ends (see `auto_sigma`).
    Auto,
}

impl Sigma {
    /// The value, if given (not `auto`).
    pub fn value(self) -> Option<f64> {
        match self {
            Self::Value(v) => Some(v),
            Self::Auto => None,
        }
    }

    /// The value, or 1 for `auto`: what builds a solver to check its settings or to name it
    /// (neither depends on σ).
    pub fn for_checks(self) -> f64 {
        self.value().unwrap_or(1.0)
    }
}

impl std::fmt::Display for Sigma {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Value(v) => write!(f, "{v}"),
            Self::Auto => f.write_str("auto"),
        }
    }
}

impl Serialize for Sigma {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Self::Value(v) => s.serialize_f64(*v),
            Self::Auto => s.serialize_str("auto"),
        }
    }
}

impl<'de> Deserialize<'de> for Sigma {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Sigma;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a number ≥ 0, `auto`, or a list of these (a sweep)")
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> std::result::Result<Sigma, E> {
                Ok(Sigma::Value(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> std::result::Result<Sigma, E> {
                Ok(Sigma::Value(v as f64))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> std::result::Result<Sigma, E> {
                Ok(Sigma::Value(v as f64))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> std::result::Result<Sigma, E> {
                if v == "auto" {
                    Ok(Sigma::Auto)
                } else {
                    Err(E::invalid_value(serde::de::Unexpected::Str(v), &self))
                }
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// A bridge problem: π0, π1 and the reference's σ, or a leave-one-out time course.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Problem {
    /// Name in results (the `benchmark` column).
    pub name: String,
    /// Noise level of the reference `dX = σ dW` on [0, 1]; ε = σ². A number, `auto` (half
    /// the typical per-coordinate spread of the two ends, printed with the results), or in
    /// the file a list of these: a sweep, one problem per value, named `<name> sigma=<value>`.
    pub sigma: Sigma,
    /// The distribution at t = 0 (data). Give `pi0` and `pi1`, or `leave_one_out`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pi0: Option<Distribution>,
    /// The distribution at t = 1 (prior, or a second data set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pi1: Option<Distribution>,
    /// Single-cell-style interpolation: for each held-out time, a bridge is fitted between
    /// the neighbouring times and asked to predict the held-out snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leave_one_out: Option<LeaveOneOut>,
    /// A conditional bridge for a linear-Gaussian inverse problem (instead of pi0 and pi1):
    /// the bridge's state is `[x, y]` with the observation `y` frozen, and it is scored
    /// against the exact posterior `p(x | y)` at `eval.cond_inputs` fixed observations
    /// (`eval.cond_samples` draws each). Methods: `dsb` and `dsbm`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inverse: Option<crate::inverse::InverseSpec>,
    /// Fix each data end (every end that is not `kind: gaussian` or `kind: mixture`) as one
    /// data set split into train / val / test points: training sees the train points,
    /// evaluation compares with the test points (and starts from them), and a
    /// "Same distribution (floor)" row compares val with test. Defaults to none: every draw
    /// is fresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<SplitSpec>,
    /// Train on one fixed set of this many points per prior end (`kind: gaussian` or
    /// `kind: mixture`), drawn once per run seed, as the official DSBM Gaussian code does;
    /// evaluation still draws afresh from the distributions. Defaults to none: every
    /// training draw is fresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_set: Option<usize>,
    /// Labels of π0's rows (a `kind: file` end split with `shuffle: false`, one label per
    /// row in order; classes 0, 1, 2, …): a softmax classifier is fitted on the train split and
    /// the metric `class_gap` compares the classes of generated π0 points with the test split's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<PathBuf>,
    /// Add a "Gaussian fit (reference)" row: a Gaussian fitted to each split end's train
    /// points, drawn as many times as the test split holds and scored like a model. Defaults to
    /// false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub gaussian_row: bool,
    /// Metrics for this problem, instead of `eval.metrics`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Vec<Metric>>,
    /// Published values to print beside ours: method → metric (as in results) → value.
    /// Methods not run here appear as rows of their own.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub published: BTreeMap<String, BTreeMap<String, f64>>,
}

/// The leave-one-out protocol of single-cell interpolation benchmarks.
///
/// For each held-out time `t`, with `t⁻` and `t⁺` the observed times around it, a bridge
/// is trained from the cells at `t⁻` to those at `t⁺` (no others), every `t⁻` cell is
/// transported to the fraction `(t − t⁻)/(t⁺ − t⁻)` of the interval, and the prediction is
/// compared with the cells observed at `t`. Two reference rows need no training: the exact
/// optimal-transport interpolation at that fraction, and the cells of `t⁻` as the prediction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaveOneOut {
    /// The time course.
    pub course: CourseSpec,
    /// The times to hold out, one at a time; each needs an observed time on either side.
    pub held_out: Vec<f64>,
    /// Whether to add the two reference rows. Defaults to true.
    #[serde(default = "yes")]
    pub references: bool,
}

fn yes() -> bool {
    true
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
    /// The drift networks. Defaults to a 3×256 SiLU MLP with the time concatenated.
    #[serde(default)]
    pub net: NetConfig,
    /// The training schedule.
    #[serde(default)]
    pub train: TrainConfig,
}

/// A metric of a trained bridge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Exact 2-Wasserstein distance (squared Euclidean cost, then the root).
    W2,
    /// Exact 1-Wasserstein distance (Euclidean cost).
    W1,
    /// Squared MMD with a Gaussian kernel of bandwidth `eval.mmd_bandwidth`.
    Mmd,
    /// Gaussian problems: the mean over the forward process's grid times of
    /// `KL(N(μ̂_t, Σ̂_t) ‖ N(μ_t, Σ_t))`, in units of 10⁻³ (`eval.kl_samples` particles).
    Kl,
    /// As `kl`, but the sum over coordinates of the one-dimensional marginals' KL.
    KlDiag,
    /// Gaussian problems: the mean diagonal entry of the learned cross-covariance
    /// `Cov(X₀, X₁)` of the forward process.
    CrossCov,
    /// Gaussian problems: BW2²-UVP (%) of the generated end in each direction.
    BwUvp,
    /// Gaussian problems: BW2²-UVP (%) of the forward process at t = 0.5.
    BwUvpMid,
    /// Gaussian problems: BW2²-UVP (%) of the plan as the joint `[x, T(x)]` (2d
    /// coordinates) of `eval.samples` fresh π0 points and their forward ends, against the
    /// closed-form plan `[[Σ0, C], [Cᵀ, Σ1]]` (the ENOT paper's plan metric).
    BwUvpPlan,
    /// Gaussian problems: cBW2²-UVP (%) of the plan, `eval.cond_inputs` inputs ×
    /// `eval.cond_samples` draws.
    CbwUvp,
    /// Exact W2 between `eval.train_points` generated points (the first of the evaluation
    /// blocks) and as many training points of the target (its split's train part, or fresh
    /// draws): a larger-sample W2 whose same-distribution floor is lower.
    W2Train,
    /// The mean first coordinate of the generated points (all blocks); for the moons, how the
    /// mass splits between the two arcs (the data's value is in the floor row).
    XMean,
    /// Labelled π0 (`labels`): the largest gap, in percentage points, between a class's share
    /// among the generated π0 points (under the classifier fitted on the train split) and
    /// among π0's test points; the floor row gives the validation points' gap and the
    /// classifier's test accuracy (`classifier_accuracy`).
    ClassGap,
    /// Labelled π0 (`labels`): the largest gap, in percentage points, between a class's share
    /// among the generated π0 points (under the same classifier) and the uniform share
    /// `1 / classes` (issue 16's target for unconditional digits: within 5 points); the floor
    /// row gives the validation points' value.
    ClassGapUniform,
    /// Inverse problems: BW2²-UVP (%) of the conditional samples against the exact posterior,
    /// averaged over the fixed observations (cBW2²-UVP, normalised by `½ tr Σ_post`).
    PosteriorCbwUvp,
    /// Inverse problems: the posterior-mean part alone, `100 · mean_y ‖m̂(y) − m_post(y)‖² /
    /// tr Σ_post` (%).
    PosteriorMeanUvp,
    /// Inverse problems, any prior: exact W2 between each observation's conditional samples
    /// and as many exact posterior draws (closed form, or rejection sampling from the prior),
    /// averaged over the observations.
    PosteriorW2,
    /// Inverse problems on data rows: the root mean squared error between the conditional
    /// samples and each observation's own `x` (over draws, observations and coordinates).
    InpaintRmse,
    /// Inverse problems on data rows: the root mean squared error of each observation's mean
    /// draw (an estimate of the posterior mean) against its own `x`; comparable with a single
    /// guess such as the nearest-row reference, whose draws are all the same.
    InpaintMeanRmse,
    /// Inverse problems on data rows with labels: the percentage of completed rows
    /// (observation and sample) that the classifier fitted on the train rows assigns to the
    /// observation's own class.
    InpaintAgreement,
}

impl Metric {
    /// The name used in experiment files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::W2 => "w2",
            Self::W1 => "w1",
            Self::Mmd => "mmd",
            Self::Kl => "kl",
            Self::KlDiag => "kl_diag",
            Self::CrossCov => "cross_cov",
            Self::BwUvp => "bw_uvp",
            Self::BwUvpMid => "bw_uvp_mid",
            Self::BwUvpPlan => "bw_uvp_plan",
            Self::CbwUvp => "cbw_uvp",
            Self::W2Train => "w2_train",
            Self::XMean => "x_mean",
            Self::ClassGap => "class_gap",
            Self::ClassGapUniform => "class_gap_uniform",
            Self::PosteriorCbwUvp => "posterior_cbw_uvp",
            Self::PosteriorMeanUvp => "posterior_mean_uvp",
            Self::PosteriorW2 => "posterior_w2",
            Self::InpaintRmse => "inpaint_rmse",
            Self::InpaintMeanRmse => "inpaint_mean_rmse",
            Self::InpaintAgreement => "inpaint_agreement",
        }
    }

    /// Whether the metric needs the closed-form Gaussian bridge (both ends Gaussian).
    pub fn needs_gaussians(self) -> bool {
        !matches!(
            self,
            Self::W2
                | Self::W1
                | Self::Mmd
                | Self::W2Train
                | Self::XMean
                | Self::ClassGap
                | Self::ClassGapUniform
                | Self::PosteriorCbwUvp
                | Self::PosteriorMeanUvp
                | Self::PosteriorW2
                | Self::InpaintRmse
                | Self::InpaintMeanRmse
                | Self::InpaintAgreement
        )
    }

    /// Whether the metric compares one generated cloud with one true cloud (and so applies
    /// to leave-one-out predictions and to the floor row).
    pub fn is_two_sample(self) -> bool {
        matches!(self, Self::W2 | Self::W1 | Self::Mmd)
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
    /// Points per evaluation block. Defaults to 1000. With a split, a data end's blocks
    /// start from (and are compared with) its test points instead.
    #[serde(default = "default_samples")]
    pub samples: usize,
    /// Disjoint evaluation blocks: each is generated afresh and compared with the truth, and
    /// the sample metrics (w1, w2, mmd) report the mean over blocks. Defaults to 1.
    #[serde(default = "one_block")]
    pub blocks: usize,
    /// Generated and training points for `w2_train`. Defaults to 4000.
    #[serde(default = "default_train_points")]
    pub train_points: usize,
    /// Metrics. Defaults to `[w2]`.
    #[serde(default = "default_metrics")]
    pub metrics: Vec<Metric>,
    /// Kernel bandwidth for `mmd`. Defaults to 1.
    #[serde(default = "one")]
    pub mmd_bandwidth: f64,
    /// Particles for `kl`, `kl_diag` and `cross_cov`. Defaults to 10,000.
    #[serde(default = "default_kl_samples")]
    pub kl_samples: usize,
    /// Extra sampling step counts: each adds the sample metrics (w1, w2, mmd) of the same
    /// evaluation blocks transported with that many uniform Euler steps, named with `@n`
    /// (`w2_forward@100`). Methods whose networks take continuous time only (DSB gives them
    /// at its own grid's length). Defaults to none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<usize>,
    /// Also transport the evaluation blocks along the probability-flow ODE of a DSBM pair,
    /// drift `(v_f − v_b)/2`, with the method's own step count (the official DSBM code's
    /// `sample_ode`): sample metrics named with `@ode`. Other methods are skipped with a note.
    /// Defaults to false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ode: bool,
    /// Also transport the evaluation blocks with the last Euler step's noise left out:
    /// sample metrics named with `@quiet_end`. Defaults to false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub quiet_end: bool,
    /// Further particle counts for `kl` and `kl_diag`: each adds `kl_e-3@n=N` (and
    /// `kl_diag_e-3@n=N`), with moments accumulated chunk by chunk (10⁶ particles in d = 50
    /// need no n × d × 21 array), and the closed-form row gives the estimator's floor at N.
    /// Defaults to none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kl_at: Vec<usize>,
    /// Conditioning inputs for `cbw_uvp`. Defaults to 1000.
    #[serde(default = "default_cond")]
    pub cond_inputs: usize,
    /// Draws per conditioning input for `cbw_uvp`. Defaults to 1000.
    #[serde(default = "default_cond")]
    pub cond_samples: usize,
}

fn one_block() -> usize {
    1
}
fn default_train_points() -> usize {
    4000
}
fn default_kl_samples() -> usize {
    10_000
}
fn default_cond() -> usize {
    1000
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            samples: default_samples(),
            blocks: one_block(),
            train_points: default_train_points(),
            metrics: default_metrics(),
            mmd_bandwidth: 1.0,
            steps: Vec::new(),
            ode: false,
            quiet_end: false,
            kl_at: Vec::new(),
            kl_samples: default_kl_samples(),
            cond_inputs: default_cond(),
            cond_samples: default_cond(),
        }
    }
}

impl Experiment {
    /// An experiment from its parts (as a file would give them, without sweeps).
    pub fn new(
        name: String,
        seeds: Vec<u64>,
        problems: Vec<Problem>,
        methods: Vec<MethodEntry>,
        eval: EvalConfig,
    ) -> Self {
        Self {
            origins: Origins::default(),
            name,
            seeds,
            problems,
            methods,
            eval,
        }
    }

    /// Reads and validates an experiment file.
    ///
    /// # Errors
    /// An unreadable file, a YAML error (with line and column), an unknown key, or an
    /// invalid value, each naming the file and the key.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| RunnerError::io(path, e))?;
        let folder = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        Self::parse_in(&text, path, folder)
    }

    /// [`Experiment::parse`], then relative data paths read from the folder `base` (as
    /// [`Experiment::load`] reads them from the file's folder): for experiments that are
    /// not files, such as a dict given to the Python package.
    ///
    /// # Errors
    /// As [`Experiment::parse`].
    pub fn parse_in(text: &str, file: &Path, base: &Path) -> Result<Self> {
        let mut exp = Self::parse(text, file)?;
        let base = base.canonicalize().unwrap_or_else(|_| base.to_path_buf());
        exp.resolve_paths(&base);
        Ok(exp)
    }

    /// Parses and validates experiment text; `file` names it in errors. Sweeps (lists under
    /// a problem's `sigma`, a method's `train.lr` or `train.passes`) are expanded. Relative
    /// data paths are left as written ([`Experiment::load`] resolves them).
    ///
    /// # Errors
    /// As [`Experiment::load`].
    pub fn parse(text: &str, file: &Path) -> Result<Self> {
        let config = |message: String| RunnerError::Config {
            file: file.to_path_buf(),
            message,
        };
        let mut value: serde_yaml::Value =
            serde_yaml::from_str(text).map_err(|e| config(e.to_string()))?;
        let origins = crate::sweep::expand(&mut value).map_err(config)?;
        // Without a sweep, parse the text itself: its errors carry lines and columns.
        let mut exp: Self = match &origins {
            None => serde_yaml::from_str(text),
            Some(_) => serde_yaml::from_value(value),
        }
        .map_err(|e| config(e.to_string()))?;
        if let Some((problems, methods)) = origins {
            exp.origins = Origins { problems, methods };
        }
        exp.validate(file)?;
        Ok(exp)
    }

    /// The index in the file of `problems[i]` (sweeps expand one entry into several).
    pub fn problem_key(&self, i: usize) -> usize {
        self.origins.problems.get(i).copied().unwrap_or(i)
    }

    /// The index in the file of `methods[j]`.
    pub fn method_key(&self, j: usize) -> usize {
        self.origins.methods.get(j).copied().unwrap_or(j)
    }

    /// Makes every data path absolute against `base`; the files the experiment reads.
    pub fn resolve_paths(&mut self, base: &Path) -> Vec<PathBuf> {
        let mut files = Vec::new();
        for p in &mut self.problems {
            for d in [&mut p.pi0, &mut p.pi1].into_iter().flatten() {
                files.extend(d.resolve_paths(base));
            }
            if let Some(loo) = &mut p.leave_one_out {
                files.extend(loo.course.resolve_paths(base));
            }
            if let Some(labels) = &mut p.labels {
                *labels = sb_data::absolute(base, labels);
                files.push(labels.clone());
            }
            if let Some(inverse) = &mut p.inverse {
                files.extend(inverse.resolve_paths(base));
            }
        }
        files
    }

    /// Checks every value that can be checked without training.
    ///
    /// # Errors
    /// The first invalid value, naming its key.
    pub fn validate(&self, file: &Path) -> Result<()> {
        let bad = |message: String| RunnerError::Config {
            file: file.to_path_buf(),
            message,
        };
        if self.name.trim().is_empty() {
            return Err(bad(
                "name must not be empty (it names the run directory runs/<name>)".into(),
            ));
        }
        if self.seeds.is_empty() {
            return Err(bad("seeds must list at least one seed".into()));
        }
        let mut seen = std::collections::BTreeSet::new();
        if let Some(dup) = self.seeds.iter().find(|s| !seen.insert(**s)) {
            return Err(bad(format!(
                "seeds lists {dup} twice: the same seed gives the same numbers, so a repeat would \
                 count one run as two in the mean ± interval"
            )));
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
        if self.eval.blocks == 0 {
            return Err(bad("eval.blocks must be ≥ 1, got 0".into()));
        }
        if let Some(n) = self.eval.kl_at.iter().find(|&&n| n < 2) {
            return Err(bad(format!(
                "eval.kl_at: a particle count must be ≥ 2, got {n}"
            )));
        }
        let mut seen = std::collections::BTreeSet::new();
        for &n in &self.eval.steps {
            if n == 0 {
                return Err(bad("eval.steps: a step count must be ≥ 1, got 0".into()));
            }
            if !seen.insert(n) {
                return Err(bad(format!("eval.steps lists {n} twice")));
            }
        }
        for (name, v) in [
            ("train_points", self.eval.train_points),
            ("kl_samples", self.eval.kl_samples),
            ("cond_inputs", self.eval.cond_inputs),
            ("cond_samples", self.eval.cond_samples),
        ] {
            if v < 2 {
                return Err(bad(format!("eval.{name} must be ≥ 2, got {v}")));
            }
        }
        let mut names = std::collections::BTreeSet::new();
        for (index, p) in self.problems.iter().enumerate() {
            let i = self.problem_key(index);
            if !names.insert(p.name.as_str()) {
                return Err(bad(format!(
                    "problems[{i}].name `{}` is used twice; names identify rows",
                    p.name
                )));
            }
            if let Sigma::Value(v) = p.sigma {
                if !(v >= 0.0 && v.is_finite()) {
                    return Err(bad(format!("problems[{i}].sigma must be ≥ 0, got {v}")));
                }
            }
            self.validate_setting(i, p).map_err(bad)?;
            for (j, m) in self.methods.iter().enumerate() {
                let j = self.method_key(j);
                let built = match &p.inverse {
                    // The observation's size does not matter to whether a form exists.
                    Some(_) => m.method.build_conditional(p.sigma.for_checks(), 1),
                    None => m.method.build(p.sigma.for_checks()),
                };
                built.map_err(|e| {
                    bad(format!(
                        "methods[{j}].{e} (with problems[{i}].sigma = {})",
                        p.sigma
                    ))
                })?;
            }
        }
        for (j, m) in self.methods.iter().enumerate() {
            let j = self.method_key(j);
            m.train
                .validate()
                .map_err(|e| bad(format!("methods[{j}].{e}")))?;
            m.net
                .validate()
                .map_err(|e| bad(format!("methods[{j}].{e}")))?;
        }
        Ok(())
    }

    /// The metrics evaluated on problem `p`.
    pub fn metrics_for<'a>(&'a self, p: &'a Problem) -> &'a [Metric] {
        p.metrics.as_deref().unwrap_or(&self.eval.metrics)
    }

    fn validate_setting(&self, i: usize, p: &Problem) -> std::result::Result<(), String> {
        let metrics = self.metrics_for(p);
        if metrics.is_empty() {
            // Name the key the empty list came from: the problem's own, or eval's default.
            return Err(if p.metrics.is_some() {
                format!("problems[{i}].metrics must list at least one metric")
            } else {
                format!(
                    "eval.metrics must list at least one metric (problems[{i}] has no metrics of its own)"
                )
            });
        }
        if let Some(n) = p.train_set {
            if n < 2 {
                return Err(format!("problems[{i}].train_set must be ≥ 2, got {n}"));
            }
        }
        if let Some(m) = metrics
            .iter()
            .find(|m| crate::inverse::is_posterior(**m) != p.inverse.is_some())
        {
            return Err(if p.inverse.is_some() {
                format!(
                    "problems[{i}]: metric `{}` does not apply to an inverse problem; it takes posterior_cbw_uvp, posterior_mean_uvp and posterior_w2 (inpaint_rmse, inpaint_mean_rmse and inpaint_agreement on data rows)",
                    m.as_str()
                )
            } else {
                format!(
                    "problems[{i}]: metric `{}` scores a conditional bridge against its posterior; it needs `inverse`",
                    m.as_str()
                )
            });
        }
        if let Some(inv) = &p.inverse {
            if p.pi0.is_some() || p.pi1.is_some() || p.leave_one_out.is_some() {
                return Err(format!(
                    "problems[{i}]: give inverse alone (it defines both ends), not with pi0, pi1 or leave_one_out"
                ));
            }
            if p.split.is_some() || p.train_set.is_some() {
                return Err(format!(
                    "problems[{i}]: split and train_set do not apply to inverse problems (every draw of the joint is fresh)"
                ));
            }
            if !p.sigma.value().is_some_and(|v| v > 0.0) {
                return Err(format!(
                    "problems[{i}].sigma: an inverse problem needs a value > 0, got {}",
                    p.sigma
                ));
            }
            inv.check_form().map_err(|e| format!("problems[{i}].{e}"))?;
            if let Some(m) = metrics
                .iter()
                .find(|m| crate::inverse::is_held_out(**m) != inv.from_rows())
            {
                return Err(if inv.from_rows() {
                    format!(
                        "problems[{i}]: metric `{}` needs an exact posterior; an inverse problem on data rows takes inpaint_rmse, inpaint_mean_rmse and inpaint_agreement",
                        m.as_str()
                    )
                } else {
                    format!(
                        "problems[{i}]: metric `{}` scores against held-out data rows; it needs inverse.observed_columns",
                        m.as_str()
                    )
                });
            }
            if metrics.contains(&Metric::InpaintAgreement) && inv.labels.is_none() {
                return Err(format!(
                    "problems[{i}]: metric `inpaint_agreement` needs inverse.labels (the classes of the data rows)"
                ));
            }
            if !inv.from_rows() && !matches!(inv.prior.gaussian_parameters(), Ok(Some(_))) {
                if let Some(m) = metrics
                    .iter()
                    .find(|m| matches!(m, Metric::PosteriorCbwUvp | Metric::PosteriorMeanUvp))
                {
                    return Err(format!(
                        "problems[{i}]: metric `{}` compares with the Gaussian posterior, but inverse.prior is not `kind: gaussian`; use posterior_w2",
                        m.as_str()
                    ));
                }
            }
            if self.eval.ode || self.eval.quiet_end {
                return Err(format!(
                    "problems[{i}]: eval.ode and eval.quiet_end apply to two-distribution problems; an inverse problem's samplers are its grid and eval.steps"
                ));
            }
            return Ok(());
        }
        if let Some(m) = metrics
            .iter()
            .find(|m| matches!(m, Metric::ClassGap | Metric::ClassGapUniform))
            .filter(|_| p.labels.is_none())
        {
            return Err(format!(
                "problems[{i}]: metric `{}` needs `labels` (the classes of π0's rows)",
                m.as_str()
            ));
        }
        if let Some(labels) = &p.labels {
            let file_end = matches!(p.pi0, Some(Distribution::File { .. }));
            let in_order = p.split.as_ref().is_some_and(|s| !s.shuffle);
            if !(file_end && in_order) {
                return Err(format!(
                    "problems[{i}].labels ({}): labels follow π0's rows, so pi0 must be `kind: file` with `split: {{…, shuffle: false}}` (train, val and test are then consecutive rows)",
                    labels.display()
                ));
            }
        }
        if p.gaussian_row && p.split.is_none() {
            return Err(format!(
                "problems[{i}].gaussian_row: the Gaussian is fitted to a split's train points; give `split`"
            ));
        }
        match (&p.pi0, &p.pi1, &p.leave_one_out) {
            (Some(pi0), Some(pi1), None) => {
                let gaussian = |d: &Distribution| matches!(d.gaussian_parameters(), Ok(Some(_)));
                if let Some(m) = metrics.iter().find(|m| m.needs_gaussians()) {
                    if !(gaussian(pi0) && gaussian(pi1)) {
                        return Err(format!(
                            "problems[{i}]: metric `{}` needs the closed-form bridge, so pi0 and pi1 must both be `kind: gaussian`",
                            m.as_str()
                        ));
                    }
                    if p.split.is_some() {
                        return Err(format!(
                            "problems[{i}].split: the Gaussian metrics compare with the closed form, not with a split"
                        ));
                    }
                    if p.sigma.value().is_some_and(|v| v <= 0.0) {
                        return Err(format!(
                            "problems[{i}]: metric `{}` needs sigma > 0 (the closed form has ε = σ²)",
                            m.as_str()
                        ));
                    }
                }
                Ok(())
            }
            (None, None, Some(loo)) => {
                if p.train_set.is_some() {
                    return Err(format!(
                        "problems[{i}].train_set: leave-one-out problems train on the time course's cells"
                    ));
                }
                if p.split.is_some() {
                    return Err(format!(
                        "problems[{i}].split: leave-one-out problems use the time course as given; split applies to pi0 and pi1"
                    ));
                }
                if loo.held_out.is_empty() {
                    return Err(format!(
                        "problems[{i}].leave_one_out.held_out must list at least one time"
                    ));
                }
                if let Some(m) = metrics.iter().find(|m| !m.is_two_sample()) {
                    return Err(format!(
                        "problems[{i}]: metric `{}` does not apply to a prediction; leave-one-out problems take w1, w2 or mmd",
                        m.as_str()
                    ));
                }
                Ok(())
            }
            (_, _, Some(_)) => Err(format!(
                "problems[{i}]: give either pi0 and pi1, or leave_one_out, not both"
            )),
            _ => Err(format!(
                "problems[{i}]: give both pi0 and pi1 (or leave_one_out, or inverse, instead)"
            )),
        }
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
