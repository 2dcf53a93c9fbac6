//! Conditional flow and bridge matching with minibatch optimal-transport couplings: OT-CFM,
//! SB-CFM (Tong et al., TMLR 2024) and [SF]2M (Tong et al., AISTATS 2024).
//!
//! Every batch draws `b` points of π0 and `b` of π1 independently, then pairs them by a
//! coupling computed on the batch, and regresses the network onto a conditional target:
//!
//! ```text
//! coupling   exact:     the optimal assignment of the batch (squared Euclidean cost)
//!            sinkhorn:  b pairs drawn from the batch's entropic plan, reg = 2σ²
//! OT-CFM     x_t = (1−t) x0 + t x1 + σ_min z,             target x1 − x0,          ODE
//! SB-CFM     x_t = μ_t + σ √(t(1−t)) z,  μ_t = (1−t) x0 + t x1,
//!            target (1−2t)/(2t(1−t)) · (x_t − μ_t) + (x1 − x0),                    ODE
//! [SF]2M     the same path; target (x1 − x_t)/(1 − t), the flow plus σ²/2 times the
//!            bridge's score,                                                     SDE (σ)
//! ```
//!
//! The backward direction has a network of its own, trained on the same coupling with the
//! time-reversed target (the negated ODE velocity; for [SF]2M the backward bridge drift
//! `(x0 − x_t)/t`), so each method samples both ways. Passes do not build on each other:
//! pass 1 trains the forward network, pass 2 the backward one (`train.passes: 2`).

use candle_core::Tensor;
use ndarray::{Array2, ArrayView2};
use sb_data::SbRng;
use sb_eval::{cost_matrix, emd, sinkhorn, EmdOptions, Ground, SinkhornOptions};
use serde::{Deserialize, Serialize};

use crate::dsbm::{check_bridge_grid, default_steps, default_t_epsilon};
use crate::sampler::{uniform_steps, Step};
use crate::solver::{Batch, BridgeSolver, PassContext, TrainingSet};
use crate::{Direction, MethodError, Result};

/// How a batch's points are paired.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MinibatchCoupling {
    /// As drawn: x0 and x1 independent (plain conditional flow matching, I-CFM).
    Independent,
    /// The exact optimal assignment of the batch.
    Exact,
    /// Pairs drawn with replacement from the batch's entropic plan (reg = 2σ²).
    Sinkhorn,
}

/// The conditional path and its target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Path {
    /// OT-CFM's straight path with constant width σ_min; ODE velocity `x1 − x0`.
    Straight,
    /// SB-CFM: the Brownian bridge's probability-flow velocity.
    BridgeFlow,
    /// [SF]2M: the Brownian bridge's SDE drift.
    BridgeDrift,
}

fn exact() -> MinibatchCoupling {
    MinibatchCoupling::Exact
}
fn entropic() -> MinibatchCoupling {
    MinibatchCoupling::Sinkhorn
}

/// OT-CFM's configuration (`kind: ot_cfm`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtCfmConfig {
    /// Euler steps of the ODE. Defaults to 20.
    #[serde(default = "default_steps")]
    pub num_steps: usize,
    /// Width σ_min of the straight conditional path. Defaults to 0 (TorchCFM's default).
    #[serde(default)]
    pub sigma_min: f64,
    /// The batch coupling. Defaults to `exact`.
    #[serde(default = "exact")]
    pub coupling: MinibatchCoupling,
    /// Times are drawn from `U[δ, 1−δ]`. Defaults to δ = 1e-3.
    #[serde(default = "default_t_epsilon")]
    pub t_epsilon: f64,
}

impl Default for OtCfmConfig {
    fn default() -> Self {
        Self {
            num_steps: default_steps(),
            sigma_min: 0.0,
            coupling: exact(),
            t_epsilon: default_t_epsilon(),
        }
    }
}

/// SB-CFM's and [SF]2M's configuration (`kind: sb_cfm`, `kind: sf2m`); the path's σ is the
/// problem's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SbCfmConfig {
    /// Euler steps of the ODE (SB-CFM) or SDE ([SF]2M). Defaults to 20.
    #[serde(default = "default_steps")]
    pub num_steps: usize,
    /// The batch coupling. Defaults to `sinkhorn` (reg = 2σ²).
    #[serde(default = "entropic")]
    pub coupling: MinibatchCoupling,
    /// Times are drawn from `U[δ, 1−δ]`. Defaults to δ = 1e-3.
    #[serde(default = "default_t_epsilon")]
    pub t_epsilon: f64,
}

impl Default for SbCfmConfig {
    fn default() -> Self {
        Self {
            num_steps: default_steps(),
            coupling: entropic(),
            t_epsilon: default_t_epsilon(),
        }
    }
}

/// A conditional-matching solver with a minibatch coupling: OT-CFM, SB-CFM or [SF]2M.
#[derive(Clone, Debug)]
pub struct Cfm {
    path: Path,
    /// The path width: σ_min for OT-CFM, the reference σ otherwise.
    width: f64,
    /// The reference σ (Sinkhorn's reg is 2σ²; [SF]2M's diffusion).
    sigma: f64,
    num_steps: usize,
    coupling: MinibatchCoupling,
    t_epsilon: f64,
}

impl Cfm {
    /// `n` uniform steps in `direction`: [SF]2M samples the SDE, OT-CFM and SB-CFM an ODE.
    fn uniform(&self, direction: Direction, n: usize) -> Vec<Step> {
        let noise = if self.path == Path::BridgeDrift {
            self.sigma
        } else {
            0.0
        };
        uniform_steps(n, direction, noise)
    }

    /// OT-CFM for a problem with reference σ (used only by a `sinkhorn` coupling).
    ///
    /// # Errors
    /// `num_steps = 0`, δ outside `[0, 0.5)`, σ_min < 0, or a `sinkhorn` coupling with σ = 0.
    pub fn ot_cfm(config: &OtCfmConfig, sigma: f64) -> Result<Self> {
        check_bridge_grid(config.num_steps, config.t_epsilon, sigma)?;
        if !(config.sigma_min >= 0.0 && config.sigma_min.is_finite()) {
            return Err(MethodError::Config(format!(
                "method.sigma_min must be ≥ 0, got {}",
                config.sigma_min
            )));
        }
        Self::entropic_needs_sigma(config.coupling, sigma)?;
        Ok(Self {
            path: Path::Straight,
            width: config.sigma_min,
            sigma,
            num_steps: config.num_steps,
            coupling: config.coupling,
            t_epsilon: config.t_epsilon,
        })
    }

    /// SB-CFM (`sde: false`) or [SF]2M (`sde: true`) for a reference σ > 0.
    ///
    /// # Errors
    /// `num_steps = 0`, δ outside `[0, 0.5)`, or σ = 0 (the bridge needs noise).
    pub fn sb_cfm(config: &SbCfmConfig, sigma: f64, sde: bool) -> Result<Self> {
        check_bridge_grid(config.num_steps, config.t_epsilon, sigma)?;
        if sigma <= 0.0 {
            return Err(MethodError::Config(
                "sigma must be > 0 for SB-CFM and [SF]2M (with σ = 0 use kind: ot_cfm)".into(),
            ));
        }
        Ok(Self {
            path: if sde {
                Path::BridgeDrift
            } else {
                Path::BridgeFlow
            },
            width: sigma,
            sigma,
            num_steps: config.num_steps,
            coupling: config.coupling,
            t_epsilon: config.t_epsilon,
        })
    }

    fn entropic_needs_sigma(coupling: MinibatchCoupling, sigma: f64) -> Result<()> {
        if coupling == MinibatchCoupling::Sinkhorn && sigma <= 0.0 {
            return Err(MethodError::Config(
                "method.coupling: `sinkhorn` needs sigma > 0 (its reg is 2σ²)".into(),
            ));
        }
        Ok(())
    }
}

/// The squared Euclidean cost between the rows of `x0` and `x1` (sb-eval's, in f64).
fn squared_distances(
    x0: ArrayView2<'_, f32>,
    x1: ArrayView2<'_, f32>,
) -> std::result::Result<Array2<f64>, sb_eval::EvalError> {
    cost_matrix(
        x0.mapv(f64::from).view(),
        x1.mapv(f64::from).view(),
        Ground::SquaredEuclidean,
    )
}

/// Pairs the rows of a batch: `pairs[k] = (i, j)` joins `x0[i]` with `x1[j]`.
///
/// `exact` gives the optimal assignment (each row of each side once, by the network
/// simplex); `sinkhorn` draws `b` index pairs with replacement from the entropic plan with
/// reg = 2σ² (at most 1,000 iterations, stopping at a marginal error of 1e-6, as POT's
/// default budget); `independent` keeps the rows as drawn.
///
/// # Errors
/// A non-finite point (the cost cannot be built).
pub fn couple(
    coupling: MinibatchCoupling,
    x0: ArrayView2<'_, f32>,
    x1: ArrayView2<'_, f32>,
    sigma: f64,
    rng: &mut SbRng,
) -> Result<Vec<(usize, usize)>> {
    let b = x0.nrows();
    let solver_error =
        |e: sb_eval::EvalError| MethodError::Config(format!("the minibatch coupling failed: {e}"));
    match coupling {
        MinibatchCoupling::Independent => Ok((0..b).map(|i| (i, i)).collect()),
        MinibatchCoupling::Exact => {
            let cost = squared_distances(x0, x1).map_err(solver_error)?;
            let plan = emd(None, None, cost.view(), EmdOptions::default()).map_err(solver_error)?;
            // Equal uniform weights: the optimal vertex is a permutation, one entry per row.
            let mut pairs: Vec<(usize, usize)> = plan
                .plan
                .iter()
                .filter(|(_, _, flow)| *flow > 0.0)
                .map(|&(i, j, _)| (i, j))
                .collect();
            pairs.sort_unstable();
            Ok(pairs)
        }
        MinibatchCoupling::Sinkhorn => {
            let cost = squared_distances(x0, x1).map_err(solver_error)?;
            let options = SinkhornOptions {
                tol: 1e-6,
                max_iter: 1000,
                ..SinkhornOptions::default()
            };
            let plan = sinkhorn(None, None, cost.view(), 2.0 * sigma * sigma, options)
                .map_err(solver_error)?;
            let m = x1.nrows();
            let mut cdf = Vec::with_capacity(b * m);
            let mut total = 0.0;
            for p in &plan.plan {
                total += p;
                cdf.push(total);
            }
            Ok((0..b)
                .map(|_| {
                    let u = rng.uniform() * total;
                    let k = cdf.partition_point(|&c| c <= u).min(b * m - 1);
                    (k / m, k % m)
                })
                .collect())
        }
    }
}

impl BridgeSolver for Cfm {
    fn name(&self, _passes: usize) -> String {
        match (self.path, self.coupling) {
            (Path::Straight, MinibatchCoupling::Exact) => "OT-CFM".into(),
            (Path::Straight, MinibatchCoupling::Sinkhorn) => "OT-CFM (Sinkhorn)".into(),
            (Path::Straight, MinibatchCoupling::Independent) => "I-CFM".into(),
            (Path::BridgeFlow, MinibatchCoupling::Sinkhorn) => "SB-CFM".into(),
            (Path::BridgeFlow, MinibatchCoupling::Exact) => "SB-CFM (exact OT)".into(),
            (Path::BridgeFlow, MinibatchCoupling::Independent) => "SB-CFM (independent)".into(),
            // The [SF]2M paper's names for its three couplings.
            (Path::BridgeDrift, MinibatchCoupling::Sinkhorn) => "[SF]2M-Sink".into(),
            (Path::BridgeDrift, MinibatchCoupling::Exact) => "[SF]2M-Exact".into(),
            (Path::BridgeDrift, MinibatchCoupling::Independent) => "[SF]2M-I".into(),
        }
    }

    fn params(&self) -> Vec<(String, String)> {
        let coupling = match self.coupling {
            MinibatchCoupling::Independent => "independent",
            MinibatchCoupling::Exact => "exact",
            MinibatchCoupling::Sinkhorn => "sinkhorn",
        };
        let mut out = vec![
            ("num_steps".into(), self.num_steps.to_string()),
            ("coupling".into(), coupling.into()),
            ("t_epsilon".into(), self.t_epsilon.to_string()),
        ];
        if self.path == Path::Straight {
            out.push(("sigma_min".into(), self.width.to_string()));
        }
        out
    }

    fn first_direction(&self) -> Direction {
        Direction::Forward
    }

    fn steps(&self, direction: Direction) -> Vec<Step> {
        self.uniform(direction, self.num_steps)
    }

    fn steps_with(&self, direction: Direction, n: usize) -> Option<Vec<Step>> {
        Some(self.uniform(direction, n))
    }

    fn reference_drift(&self, _direction: Direction, x: &Tensor, _step: &Step) -> Result<Tensor> {
        Ok(x.zeros_like()?)
    }

    fn training_set(&self, ctx: &PassContext<'_>, _rng: &mut SbRng) -> Result<TrainingSet> {
        // Independent draws of both ends; each batch couples its own rows.
        Ok(TrainingSet::Pairs {
            x0: ctx.x0.clone(),
            x1: ctx.x1.clone(),
        })
    }

    fn batch(
        &self,
        set: &TrainingSet,
        direction: Direction,
        rows: &[usize],
        rng: &mut SbRng,
    ) -> Result<Batch> {
        let TrainingSet::Pairs { x0, x1 } = set else {
            unreachable!("CFM builds pair sets");
        };
        let a = x0.select(ndarray::Axis(0), rows);
        let b = x1.select(ndarray::Axis(0), rows);
        let pairs = couple(self.coupling, a.view(), b.view(), self.sigma, rng)?;
        let d = a.ncols();
        let size = pairs.len();
        let mut x = Array2::zeros((size, d));
        let mut t_col = Array2::zeros((size, 1));
        let mut target = Array2::zeros((size, d));
        for (k, &(i, j)) in pairs.iter().enumerate() {
            let t = rng.uniform_in(self.t_epsilon, 1.0 - self.t_epsilon);
            let z = rng.normal_f32(d);
            let (p, q) = (a.row(i), b.row(j));
            let std = match self.path {
                Path::Straight => self.width,
                Path::BridgeFlow | Path::BridgeDrift => self.width * (t * (1.0 - t)).sqrt(),
            };
            for c in 0..d {
                let (u, v) = (f64::from(p[c]), f64::from(q[c]));
                let mean = (1.0 - t) * u + t * v;
                let xt = mean + std * f64::from(z[c]);
                let forward = match self.path {
                    Path::Straight => v - u,
                    Path::BridgeFlow => {
                        (1.0 - 2.0 * t) / (2.0 * t * (1.0 - t)) * (xt - mean) + (v - u)
                    }
                    Path::BridgeDrift => (v - xt) / (1.0 - t),
                };
                let value = match (direction, self.path) {
                    (Direction::Forward, _) => forward,
                    (Direction::Backward, Path::BridgeDrift) => (u - xt) / t,
                    (Direction::Backward, _) => -forward,
                };
                x[[k, c]] = xt as f32;
                target[[k, c]] = value as f32;
            }
            t_col[[k, 0]] = t as f32;
        }
        Ok(Batch {
            x,
            t: t_col,
            target,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cloud(rng: &mut SbRng, n: usize, d: usize, shift: f32) -> Array2<f32> {
        Array2::from_shape_fn((n, d), |_| rng.normal() as f32 + shift)
    }

    #[test]
    fn exact_pairs_are_the_optimal_assignment() {
        let mut rng = SbRng::new(3);
        for (n, d) in [(1, 2), (7, 1), (64, 3), (200, 2)] {
            let (a, b) = (cloud(&mut rng, n, d, 0.0), cloud(&mut rng, n, d, 1.0));
            let pairs =
                couple(MinibatchCoupling::Exact, a.view(), b.view(), 1.0, &mut rng).unwrap();
            // A permutation: every row of each side once.
            assert_eq!(pairs.len(), n);
            let mut seen = vec![false; n];
            for &(i, j) in &pairs {
                assert_eq!(i, pairs.iter().position(|p| p.0 == i).unwrap());
                assert!(!seen[j]);
                seen[j] = true;
            }
            // The pairs are the optimal assignment, as the independent Hungarian solver finds
            // it (unique for points in general position).
            let c = cost_matrix(
                a.mapv(f64::from).view(),
                b.mapv(f64::from).view(),
                Ground::SquaredEuclidean,
            )
            .unwrap();
            let hungarian = sb_eval::assignment::solve(&c);
            let ours: Vec<usize> = pairs.iter().map(|p| p.1).collect();
            assert_eq!(ours, hungarian.row_to_col, "n = {n}");
        }
    }

    #[test]
    fn sinkhorn_pairs_follow_the_entropic_plan() {
        // 5 × 5 batch, 200,000 draws: each pair's frequency within 5 standard errors of its
        // plan probability.
        let mut rng = SbRng::new(8);
        let (a, b) = (cloud(&mut rng, 5, 2, 0.0), cloud(&mut rng, 5, 2, 0.5));
        let sigma = 0.7;
        let cost = squared_distances(a.view(), b.view()).unwrap();
        let plan = sinkhorn(
            None,
            None,
            cost.view(),
            2.0 * sigma * sigma,
            SinkhornOptions::default(),
        )
        .unwrap()
        .plan;
        let mut counts = Array2::<f64>::zeros((5, 5));
        let rounds = 40_000;
        for _ in 0..rounds {
            for (i, j) in couple(
                MinibatchCoupling::Sinkhorn,
                a.view(),
                b.view(),
                sigma,
                &mut rng,
            )
            .unwrap()
            {
                counts[[i, j]] += 1.0;
            }
        }
        let draws = (rounds * 5) as f64;
        for ((i, j), p) in plan.indexed_iter() {
            let freq = counts[[i, j]] / draws;
            let se = (p * (1.0 - p) / draws).sqrt();
            assert!(
                (freq - p).abs() < 5.0 * se + 1e-9,
                "({i}, {j}): {freq} vs {p}"
            );
        }
    }

    #[test]
    fn targets_by_hand() {
        let config = SbCfmConfig::default();
        let sb = Cfm::sb_cfm(&config, 1.0, false).unwrap();
        let sf = Cfm::sb_cfm(&config, 1.0, true).unwrap();
        let ot = Cfm::ot_cfm(
            &OtCfmConfig {
                coupling: MinibatchCoupling::Independent,
                ..OtCfmConfig::default()
            },
            1.0,
        )
        .unwrap();
        let set = TrainingSet::Pairs {
            x0: ndarray::array![[0.0f32, 2.0]],
            x1: ndarray::array![[4.0f32, -2.0]],
        };
        for direction in [Direction::Forward, Direction::Backward] {
            let sign = if direction == Direction::Forward {
                1.0
            } else {
                -1.0
            };
            // OT-CFM with σ_min = 0: the velocity x1 − x0 on the straight line.
            let b = ot.batch(&set, direction, &[0], &mut SbRng::new(1)).unwrap();
            let t = f64::from(b.t[[0, 0]]);
            assert!((f64::from(b.x[[0, 0]]) - 4.0 * t).abs() < 1e-5);
            assert!((f64::from(b.target[[0, 0]]) - sign * 4.0).abs() < 1e-5);
            assert!((f64::from(b.target[[0, 1]]) + sign * 4.0).abs() < 1e-5);
            // SB-CFM's flow plus σ²/2 times the bridge score −(x_t − μ_t)/(σ² t(1−t)) is
            // [SF]2M's forward drift (x1 − x_t)/(1 − t): same seed, same t and x_t.
            let flow = sb
                .batch(&set, Direction::Forward, &[0], &mut SbRng::new(2))
                .unwrap();
            let drift = sf
                .batch(&set, Direction::Forward, &[0], &mut SbRng::new(2))
                .unwrap();
            let t = f64::from(flow.t[[0, 0]]);
            for c in 0..2 {
                let xt = f64::from(flow.x[[0, c]]);
                let mean = (1.0 - t) * [0.0, 2.0][c] + t * [4.0, -2.0][c];
                let score = -(xt - mean) / (t * (1.0 - t));
                let sum = f64::from(flow.target[[0, c]]) + 0.5 * score;
                assert!(
                    (sum - f64::from(drift.target[[0, c]])).abs() < 1e-3 * (1.0 + sum.abs()),
                    "{sum} vs {}",
                    drift.target[[0, c]]
                );
            }
        }
    }

    #[test]
    fn names() {
        assert_eq!(
            Cfm::ot_cfm(&OtCfmConfig::default(), 1.0).unwrap().name(2),
            "OT-CFM"
        );
        assert_eq!(
            Cfm::sb_cfm(&SbCfmConfig::default(), 1.0, false)
                .unwrap()
                .name(2),
            "SB-CFM"
        );
        assert_eq!(
            Cfm::sb_cfm(&SbCfmConfig::default(), 1.0, true)
                .unwrap()
                .name(2),
            "[SF]2M-Sink"
        );
        let exact = SbCfmConfig {
            coupling: MinibatchCoupling::Exact,
            ..SbCfmConfig::default()
        };
        assert_eq!(
            Cfm::sb_cfm(&exact, 1.0, true).unwrap().name(2),
            "[SF]2M-Exact"
        );
        assert!(Cfm::sb_cfm(&SbCfmConfig::default(), 0.0, false).is_err());
        let sinkhorn = OtCfmConfig {
            coupling: MinibatchCoupling::Sinkhorn,
            ..OtCfmConfig::default()
        };
        assert!(Cfm::ot_cfm(&sinkhorn, 0.0).is_err());
    }
}
