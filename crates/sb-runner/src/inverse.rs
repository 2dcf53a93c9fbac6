//! Conditional bridges on linear-Gaussian inverse problems (suite C1, SPEC §8).
//!
//! `x ~ N(m, Σ)`, `y = A x + η`, `η ~ N(0, noise² I)`. The bridge's state is `[x, y]` with `y`
//! frozen: π0 is the joint of `(x, y)`, π1 the reference of `x` (N(0, I) unless given) beside
//! the same `y`, so one trained bridge samples `p(x | y)` backward from `[z, y]` for any `y`.
//! It is scored against the exact posterior at fixed observations.

use ndarray::{s, Array1, Array2, Axis};
use sb_data::{Distribution, MatrixSpec, SbRng, Source, VectorSpec};
use sb_eval::LinearGaussian;
use sb_methods::tensor::to_f32;
use sb_methods::{Direction, TrainedBridge};
use serde::{Deserialize, Serialize};

use crate::experiment::{EvalConfig, Metric};
use crate::jobs::Reference;
use crate::Result;

/// A linear-Gaussian inverse problem: the prior of the unknowns, the observation operator and
/// the observation noise.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InverseSpec {
    /// The prior of `x` (`kind: gaussian`).
    pub prior: Distribution,
    /// The observation operator `A`.
    pub operator: Operator,
    /// The observation noise's standard deviation (`Γ = noise² I`), > 0.
    pub noise: f64,
    /// The bridge's other end for `x` (`kind: gaussian`). Defaults to N(0, I).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<Distribution>,
}

/// An observation operator `A` (m × d).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Operator {
    /// `A = I`: every coordinate observed through the noise (denoising).
    Identity,
    /// The first `observed` coordinates, exactly as they are (through the noise).
    Partial {
        /// How many leading coordinates are observed (1 ≤ observed ≤ d).
        observed: usize,
    },
    /// Each observation a Gaussian-weighted average of neighbouring coordinates (weights
    /// `exp(−(i − j)²/(2 width²))`, each row summing to 1): a 1-D blur.
    Blur {
        /// The kernel's standard deviation in coordinates, > 0.
        width: f64,
    },
    /// `rows` random projections, entries N(0, 1/d) from `seed`.
    Random {
        /// How many observations.
        rows: usize,
        /// The seed of the entries.
        seed: u64,
    },
}

impl Operator {
    /// The matrix for `d` unknowns.
    ///
    /// # Errors
    /// `observed` outside `[1, d]`, a non-positive width, or zero rows.
    pub fn matrix(&self, d: usize) -> std::result::Result<Array2<f64>, String> {
        Ok(match *self {
            Self::Identity => Array2::eye(d),
            Self::Partial { observed } => {
                if !(1..=d).contains(&observed) {
                    return Err(format!(
                        "operator.observed must be in [1, {d}] (the prior's dimension), got {observed}"
                    ));
                }
                Array2::eye(d).slice(s![..observed, ..]).to_owned()
            }
            Self::Blur { width } => {
                if !(width > 0.0 && width.is_finite()) {
                    return Err(format!("operator.width must be > 0, got {width}"));
                }
                let mut a = Array2::from_shape_fn((d, d), |(i, j)| {
                    let u = i as f64 - j as f64;
                    (-u * u / (2.0 * width * width)).exp()
                });
                for mut row in a.rows_mut() {
                    let total = row.sum();
                    row /= total;
                }
                a
            }
            Self::Random { rows, seed } => {
                if rows == 0 {
                    return Err("operator.rows must be ≥ 1, got 0".into());
                }
                let mut rng = SbRng::new(seed);
                let scale = 1.0 / (d as f64).sqrt();
                Array2::from_shape_vec((rows, d), rng.normal_f64(rows * d)).expect("rows·d draws")
                    * scale
            }
        })
    }
}

/// The metrics of this module: they need an `inverse` problem.
pub fn is_posterior(metric: Metric) -> bool {
    matches!(metric, Metric::PosteriorCbwUvp | Metric::PosteriorMeanUvp)
}

/// A loaded inverse problem: its exact posterior, the observations it is scored at and the
/// reference of `x`.
pub struct InverseData {
    /// The problem and its posterior.
    pub problem: LinearGaussian,
    /// The fixed observations, one per row (the same for every seed and method).
    pub observations: Array2<f64>,
    /// The bridge's other end for `x`.
    pub reference: Source,
}

/// The stream of the fixed observations (distinct from every job's streams).
const OBSERVATION_STREAM: u64 = 0x0b5e_7e00;

/// Loads `spec` with `inputs` fixed observations; returns the data and the two ends of the
/// bridge's state `[x, y]`: π0 the joint, π1 the reference of `x` beside a placeholder `y`
/// (the trainer gives each π1 draw the `y` of its row's π0 draw).
///
/// # Errors
/// A prior or reference that is not Gaussian, an invalid operator or noise, named by key.
pub fn load(
    spec: &InverseSpec,
    inputs: usize,
) -> std::result::Result<(InverseData, Source, Source), String> {
    let (mean, cov) = spec
        .prior
        .gaussian_parameters()
        .map_err(|e| format!("inverse.prior: {e}"))?
        .ok_or("inverse.prior must be `kind: gaussian` (its posterior is the exact truth)")?;
    let d = mean.len();
    let a = spec
        .operator
        .matrix(d)
        .map_err(|e| format!("inverse.{e}"))?;
    if !(spec.noise > 0.0 && spec.noise.is_finite()) {
        return Err(format!("inverse.noise must be > 0, got {}", spec.noise));
    }
    let m = a.nrows();
    let problem = LinearGaussian::new(mean, cov, a, Array2::eye(m) * spec.noise.powi(2))
        .map_err(|e| format!("inverse: {e}"))?;
    let (ref_mean, ref_cov) = match &spec.reference {
        None => (Array1::zeros(d), Array2::eye(d)),
        Some(r) => {
            let (rm, rc) = r
                .gaussian_parameters()
                .map_err(|e| format!("inverse.reference: {e}"))?
                .ok_or("inverse.reference must be `kind: gaussian`")?;
            if rm.len() != d {
                return Err(format!(
                    "inverse.reference has dimension {} but the prior has {d}",
                    rm.len()
                ));
            }
            (rm, rc)
        }
    };
    let gaussian = |mean: &Array1<f64>, cov: &Array2<f64>| {
        Distribution::Gaussian {
            dim: mean.len(),
            mean: VectorSpec::Full(mean.to_vec()),
            cov: MatrixSpec::Full(cov.rows().into_iter().map(|r| r.to_vec()).collect()),
        }
        .load()
        .map_err(|e| e.to_string())
    };
    let (jm, jc) = problem.joint();
    let pi0 = gaussian(&jm, &jc).map_err(|e| format!("inverse: the joint of (x, y): {e}"))?;
    let reference = gaussian(&ref_mean, &ref_cov).map_err(|e| format!("inverse.reference: {e}"))?;
    let mut pm = Array1::zeros(d + m);
    pm.slice_mut(s![..d]).assign(&ref_mean);
    let mut pc = Array2::eye(d + m);
    pc.slice_mut(s![..d, ..d]).assign(&ref_cov);
    let pi1 = gaussian(&pm, &pc).map_err(|e| format!("inverse.reference: {e}"))?;
    let joint = pi0.sample(inputs, &mut SbRng::stream(0, OBSERVATION_STREAM));
    let observations = joint.slice(s![.., d..]).to_owned();
    Ok((
        InverseData {
            problem,
            observations,
            reference,
        },
        pi0,
        pi1,
    ))
}

/// Conditional samples of a trained bridge: `per_input` draws of `x | y` for each observation,
/// transported backward from `[reference draw, y]` in one batch, on the trained grid or with
/// `steps` uniform Euler steps. Returns one array per observation, `(per_input, d)`.
///
/// # Errors
/// A sampling error.
pub fn conditional_samples(
    bridge: &TrainedBridge,
    data: &InverseData,
    per_input: usize,
    steps: Option<usize>,
    rng: &mut SbRng,
) -> Result<Vec<Array2<f64>>> {
    let (d, k) = (data.problem.dim(), data.observations.nrows());
    let m = data.problem.observation_dim();
    let mut start = Array2::zeros((k * per_input, d + m));
    let z = data.reference.sample(k * per_input, rng);
    start.slice_mut(s![.., ..d]).assign(&z);
    for (j, y) in data.observations.rows().into_iter().enumerate() {
        start
            .slice_mut(s![j * per_input..(j + 1) * per_input, d..])
            .assign(&y.broadcast((per_input, m)).expect("one row per draw"));
    }
    let start = to_f32(&start);
    let end = match steps {
        None => bridge
            .sample(Direction::Backward, &start, rng, false)?
            .end()
            .clone(),
        Some(n) => bridge.sample_until_with(Direction::Backward, &start, rng, 0.0, n)?,
    };
    Ok((0..k)
        .map(|j| {
            end.slice(s![j * per_input..(j + 1) * per_input, ..d])
                .mapv(f64::from)
        })
        .collect())
}

/// The posterior metrics of conditional samples (one array per observation of `data`).
///
/// # Errors
/// A metric error.
pub fn posterior_metrics(
    samples: &[Array2<f64>],
    data: &InverseData,
    metrics: &[Metric],
) -> Result<Vec<(String, f64)>> {
    let cov = data.problem.posterior_cov();
    let trace = cov.diag().sum();
    let means: Vec<Array1<f64>> = data
        .observations
        .rows()
        .into_iter()
        .map(|y| data.problem.posterior_mean(y))
        .collect::<std::result::Result<_, _>>()?;
    let mut out = Vec::new();
    for &metric in metrics {
        let value = match metric {
            Metric::PosteriorCbwUvp => {
                let conditionals: Vec<_> = samples
                    .iter()
                    .zip(&means)
                    .map(|(x, m)| (x.view(), m.view(), cov))
                    .collect();
                sb_eval::cbw2_uvp(&conditionals, trace)?
            }
            Metric::PosteriorMeanUvp => {
                let total: f64 = samples
                    .iter()
                    .zip(&means)
                    .map(|(x, m)| {
                        let diff = x.mean_axis(Axis(0)).expect("draws") - m;
                        diff.dot(&diff)
                    })
                    .sum();
                100.0 * total / samples.len() as f64 / trace
            }
            _ => continue,
        };
        out.push((metric.as_str().to_string(), value));
    }
    Ok(out)
}

/// Exact draws of `x | y` for each observation (`kind` = the closed form), or draws of the
/// prior that ignore `y` (`kind` = the prior reference row).
fn reference_samples(
    reference: Reference,
    data: &InverseData,
    per_input: usize,
    rng: &mut SbRng,
) -> std::result::Result<Vec<Array2<f64>>, String> {
    let d = data.problem.dim();
    let draw = |mean: &Array1<f64>, cov: &Array2<f64>, rng: &mut SbRng| {
        Distribution::Gaussian {
            dim: d,
            mean: VectorSpec::Full(mean.to_vec()),
            cov: MatrixSpec::Full(cov.rows().into_iter().map(|r| r.to_vec()).collect()),
        }
        .sample(per_input, rng)
        .map_err(|e| e.to_string())
    };
    data.observations
        .rows()
        .into_iter()
        .map(|y| match reference {
            Reference::ClosedForm => {
                let m = data.problem.posterior_mean(y).map_err(|e| e.to_string())?;
                draw(&m, data.problem.posterior_cov(), rng)
            }
            _ => {
                let (m, c) = data.problem.prior();
                draw(m, c, rng)
            }
        })
        .collect()
}

/// The rows of a reference job on an inverse problem: the closed form's exact posterior draws
/// (the estimator's floor at `eval.cond_samples` draws) or the prior's (y ignored).
///
/// # Errors
/// A metric error.
pub fn reference_values(
    reference: Reference,
    data: &InverseData,
    metrics: &[Metric],
    eval: &EvalConfig,
) -> Result<Vec<(String, f64)>> {
    let mut rng = SbRng::stream(0, 6);
    let samples = reference_samples(reference, data, eval.cond_samples, &mut rng)
        .map_err(crate::RunnerError::Input)?;
    posterior_metrics(&samples, data, metrics)
}

/// Exact posterior draws for the first observation (for the run directory's picture).
///
/// # Errors
/// An invalid covariance (never, for a loaded problem).
pub fn first_posterior(
    data: &InverseData,
    n: usize,
    rng: &mut SbRng,
) -> std::result::Result<Array2<f64>, String> {
    let mut one = reference_samples(
        Reference::ClosedForm,
        &InverseData {
            problem: data.problem.clone(),
            observations: data.observations.slice(s![..1, ..]).to_owned(),
            reference: data.reference.clone(),
        },
        n,
        rng,
    )?;
    Ok(one.remove(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operators_have_their_shapes_and_rows() {
        assert_eq!(Operator::Identity.matrix(3).unwrap(), Array2::<f64>::eye(3));
        let p = Operator::Partial { observed: 2 }.matrix(4).unwrap();
        assert_eq!(p.dim(), (2, 4));
        assert!((p[[1, 1]] - 1.0).abs() < f64::EPSILON && p[[1, 0]].abs() < f64::EPSILON);
        let b = Operator::Blur { width: 1.0 }.matrix(5).unwrap();
        for row in b.rows() {
            assert!((row.sum() - 1.0).abs() < 1e-12);
        }
        assert!(b[[2, 2]] > b[[2, 1]] && b[[2, 1]] > b[[2, 0]]);
        let r = Operator::Random { rows: 3, seed: 4 }.matrix(8).unwrap();
        assert_eq!(r.dim(), (3, 8));
        assert_eq!(r, Operator::Random { rows: 3, seed: 4 }.matrix(8).unwrap());
        assert!(Operator::Partial { observed: 5 }.matrix(4).is_err());
        assert!(Operator::Blur { width: 0.0 }.matrix(4).is_err());
    }

    #[test]
    fn the_closed_form_row_scores_near_zero_and_the_prior_row_does_not() {
        let spec: InverseSpec = serde_yaml::from_str(
            "prior: {kind: gaussian, dim: 2, mean: 1.0, cov: 1.0}\noperator: {kind: partial, observed: 1}\nnoise: 0.2",
        )
        .unwrap();
        let (data, pi0, pi1) = load(&spec, 20).unwrap();
        assert_eq!((pi0.dim(), pi1.dim()), (3, 3));
        assert_eq!(data.observations.dim(), (20, 1));
        let eval = EvalConfig {
            cond_samples: 2000,
            ..EvalConfig::default()
        };
        let metrics = [Metric::PosteriorCbwUvp, Metric::PosteriorMeanUvp];
        let exact = reference_values(Reference::ClosedForm, &data, &metrics, &eval).unwrap();
        let prior = reference_values(Reference::Prior, &data, &metrics, &eval).unwrap();
        // 2,000 exact draws: a fraction of a percent; the prior misses x₁'s pinned value.
        assert!(exact[0].1 < 0.5 && exact[1].1 < 0.2, "{exact:?}");
        assert!(prior[0].1 > 20.0, "{prior:?}");
    }
}
