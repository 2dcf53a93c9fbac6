//! DSBM: Diffusion Schrödinger Bridge Matching by iterative Markovian fitting
//! (Shi, De Bortoli, Campbell, Doucet, NeurIPS 2023).
//!
//! ```text
//! reciprocal projection:  t ~ U[δ, 1−δ],  X_t = (1−t) X_0 + t X_1 + σ √(t(1−t)) Z
//! Markovian projection:   v_f(t, X_t) ≈ (X_1 − X_t)/(1 − t),   v_b(t, X_t) ≈ (X_0 − X_t)/t
//! sampling forward:       X_{t+dt} = X_t + v_f(t, X_t) dt + σ √dt Z     (backward: mirror image)
//! ```
//!
//! The first coupling picks the variant: `reference`, `(X_0, X_0 + σZ)`, is DSBM-IPF;
//! `independent`, `(X_0, X_1)` drawn independently, is DSBM-IMF. One pass of the
//! independent coupling is bridge matching; with σ = 0 it is flow matching, and further
//! passes are rectified flow. Later couplings come from the previous pass's model:
//! `(X_0, X̂_1)` from the forward model when training backward, `(X̂_0, X_1)` from the
//! backward model when training forward.

use candle_core::Tensor;
use ndarray::{Array2, ArrayView1};
use sb_data::SbRng;
use serde::{Deserialize, Serialize};

use crate::sampler::{copy_tail, freeze, simulate, uniform_steps, Step};
use crate::solver::{Batch, BridgeSolver, PassContext, TrainingSet};
use crate::{Direction, MethodError, Result};

/// The coupling of the first pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Coupling {
    /// `(X_0, X_0 + σZ)`, the reference's own coupling: DSBM-IPF.
    Reference,
    /// `(X_0, X_1)` independent: DSBM-IMF (and bridge or flow matching).
    #[default]
    Independent,
}

pub(crate) fn default_steps() -> usize {
    20
}
pub(crate) fn default_t_epsilon() -> f64 {
    1e-3
}
fn default_first() -> Direction {
    Direction::Backward
}

/// DSBM's configuration (plain data).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DsbmConfig {
    /// Number of Euler–Maruyama steps N. Defaults to 20.
    #[serde(default = "default_steps")]
    pub num_steps: usize,
    /// First coupling. Defaults to `independent` (DSBM-IMF).
    #[serde(default)]
    pub first_coupling: Coupling,
    /// Times are drawn from `U[δ, 1−δ]`. Defaults to δ = 1e-3.
    #[serde(default = "default_t_epsilon")]
    pub t_epsilon: f64,
    /// Direction of the first pass. Defaults to `backward`, as in the paper's schedule.
    #[serde(default = "default_first")]
    pub first_direction: Direction,
}

impl Default for DsbmConfig {
    fn default() -> Self {
        Self {
            num_steps: default_steps(),
            first_coupling: Coupling::default(),
            t_epsilon: default_t_epsilon(),
            first_direction: default_first(),
        }
    }
}

/// The DSBM solver, built from a [`DsbmConfig`] and the reference's σ.
#[derive(Clone, Debug)]
pub struct Dsbm {
    sigma: f64,
    num_steps: usize,
    coupling: Coupling,
    t_epsilon: f64,
    first_direction: Direction,
    observation_dim: usize,
}

impl Dsbm {
    /// Builds the solver.
    ///
    /// # Errors
    /// `num_steps = 0`, δ outside `[0, 0.5)`, σ < 0, or the reference coupling with σ = 0.
    pub fn new(config: &DsbmConfig, sigma: f64) -> Result<Self> {
        check_bridge_grid(config.num_steps, config.t_epsilon, sigma)?;
        if config.first_coupling == Coupling::Reference && sigma <= 0.0 {
            return Err(MethodError::Config(
                "method.first_coupling: `reference` needs sigma > 0 (with σ = 0 it pairs every point with itself)".into(),
            ));
        }
        Ok(Self {
            sigma,
            num_steps: config.num_steps,
            coupling: config.first_coupling,
            t_epsilon: config.t_epsilon,
            first_direction: config.first_direction,
            observation_dim: 0,
        })
    }

    /// The conditional form: the last `m` coordinates of every state are an observation the
    /// bridge carries unchanged (see [`BridgeSolver::observation_dim`]).
    #[must_use]
    pub fn conditional(mut self, m: usize) -> Self {
        self.observation_dim = m;
        self
    }
}

/// Checks what every bridge-matching method shares: `num_steps ≥ 1`, δ in `[0, 0.5)` and
/// σ ≥ 0, naming the key.
///
/// # Errors
/// The first invalid value.
pub(crate) fn check_bridge_grid(num_steps: usize, t_epsilon: f64, sigma: f64) -> Result<()> {
    if num_steps == 0 {
        return Err(MethodError::Config(
            "method.num_steps must be ≥ 1, got 0".into(),
        ));
    }
    if !(0.0..0.5).contains(&t_epsilon) {
        return Err(MethodError::Config(format!(
            "method.t_epsilon must be in [0, 0.5), got {t_epsilon}"
        )));
    }
    if !(sigma >= 0.0 && sigma.is_finite()) {
        return Err(MethodError::Config(format!(
            "sigma must be ≥ 0, got {sigma}"
        )));
    }
    Ok(())
}

/// A point of the Brownian bridge between `x0` and `x1` at time `t` with noise `z`:
///
/// ```text
/// X_t = (1 − t) x0 + t x1 + σ √(t(1 − t)) z
/// ```
pub fn bridge_point(
    x0: ArrayView1<'_, f32>,
    x1: ArrayView1<'_, f32>,
    t: f64,
    sigma: f64,
    z: ArrayView1<'_, f32>,
) -> ndarray::Array1<f32> {
    let s = (sigma * (t * (1.0 - t)).sqrt()) as f32;
    let t = t as f32;
    let mut out = &x0 * (1.0 - t) + &x1 * t;
    out.scaled_add(s, &z);
    out
}

/// DSBM's regression target at a bridge point `xt` at time `t`:
///
/// ```text
/// forward:  (x1 − xt) / (1 − t)        backward:  (x0 − xt) / t
/// ```
pub fn drift_target(
    direction: Direction,
    x0: ArrayView1<'_, f32>,
    x1: ArrayView1<'_, f32>,
    xt: ArrayView1<'_, f32>,
    t: f64,
) -> ndarray::Array1<f32> {
    match direction {
        Direction::Forward => (&x1 - &xt) / (1.0 - t) as f32,
        Direction::Backward => (&x0 - &xt) / t as f32,
    }
}

impl BridgeSolver for Dsbm {
    fn name(&self, passes: usize) -> String {
        match (self.coupling, self.sigma > 0.0, passes) {
            (Coupling::Reference, _, _) => "DSBM-IPF".into(),
            (Coupling::Independent, false, 1) => "Flow matching".into(),
            (Coupling::Independent, false, _) => "Rectified flow".into(),
            (Coupling::Independent, true, 1) => "Bridge matching".into(),
            (Coupling::Independent, true, _) => "DSBM-IMF".into(),
        }
    }

    fn params(&self) -> Vec<(String, String)> {
        vec![
            ("num_steps".into(), self.num_steps.to_string()),
            (
                "first_coupling".into(),
                match self.coupling {
                    Coupling::Reference => "reference".into(),
                    Coupling::Independent => "independent".into(),
                },
            ),
            ("t_epsilon".into(), self.t_epsilon.to_string()),
        ]
    }

    fn first_direction(&self) -> Direction {
        self.first_direction
    }

    fn steps(&self, direction: Direction) -> Vec<Step> {
        freeze(
            uniform_steps(self.num_steps, direction, self.sigma),
            self.observation_dim,
        )
    }

    fn steps_with(&self, direction: Direction, n: usize) -> Option<Vec<Step>> {
        Some(freeze(
            uniform_steps(n, direction, self.sigma),
            self.observation_dim,
        ))
    }

    fn probability_flow(&self) -> bool {
        true
    }

    fn reference_drift(&self, _direction: Direction, x: &Tensor, _step: &Step) -> Result<Tensor> {
        Ok(x.zeros_like()?)
    }

    fn observation_dim(&self) -> usize {
        self.observation_dim
    }

    fn training_set(&self, ctx: &PassContext<'_>, rng: &mut SbRng) -> Result<TrainingSet> {
        let (x0, mut x1) = if ctx.opposite_trained {
            let generating = ctx.direction.opposite();
            let steps = self.steps(generating);
            match generating {
                Direction::Forward => {
                    let sim = simulate(
                        ctx.opposite,
                        &steps,
                        generating,
                        ctx.x0,
                        rng,
                        false,
                        ctx.device,
                    )?;
                    (ctx.x0.clone(), sim.end().clone())
                }
                Direction::Backward => {
                    let sim = simulate(
                        ctx.opposite,
                        &steps,
                        generating,
                        ctx.x1,
                        rng,
                        false,
                        ctx.device,
                    )?;
                    (sim.end().clone(), ctx.x1.clone())
                }
            }
        } else {
            match self.coupling {
                Coupling::Reference => {
                    let (n, d) = ctx.x0.dim();
                    let z =
                        Array2::from_shape_vec((n, d), rng.normal_f32(n * d)).expect("n·d draws");
                    (ctx.x0.clone(), ctx.x0 + &(z * self.sigma as f32))
                }
                Coupling::Independent => (ctx.x0.clone(), ctx.x1.clone()),
            }
        };
        if self.observation_dim > 0 {
            // Both ends of a pair carry the same observation (the reference coupling's noise
            // must not move it).
            copy_tail(&mut x1, &x0, self.observation_dim);
        }
        Ok(TrainingSet::Pairs { x0, x1 })
    }

    fn batch(
        &self,
        set: &TrainingSet,
        direction: Direction,
        rows: &[usize],
        rng: &mut SbRng,
    ) -> Result<Batch> {
        let TrainingSet::Pairs { x0, x1 } = set else {
            unreachable!("DSBM builds pair sets");
        };
        let d = x0.ncols();
        let size = rows.len();
        let mut x = Array2::zeros((size, d));
        let mut t_col = Array2::zeros((size, 1));
        let mut target = Array2::zeros((size, d));
        for (i, &r) in rows.iter().enumerate() {
            let t = rng.uniform_in(self.t_epsilon, 1.0 - self.t_epsilon);
            let mut z = ndarray::Array1::from(rng.normal_f32(d));
            let (a, b) = (x0.row(r), x1.row(r));
            if self.observation_dim > 0 {
                // No bridge noise on the observation: it stays the pair's y, and its target is 0.
                z.slice_mut(ndarray::s![d - self.observation_dim..])
                    .fill(0.0);
            }
            let xt = bridge_point(a, b, t, self.sigma, z.view());
            target
                .row_mut(i)
                .assign(&drift_target(direction, a, b, xt.view(), t));
            x.row_mut(i).assign(&xt);
            t_col[[i, 0]] = t as f32;
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
    use ndarray::array;
    use proptest::prelude::*;

    #[test]
    fn drift_targets_by_hand() {
        let (x0, x1, xt) = (
            array![0.0f32, 2.0],
            array![4.0f32, -2.0],
            array![1.0f32, 1.0],
        );
        // forward: (x1 − xt)/(1 − t) at t = 0.25: (3, −3)/0.75 = (4, −4)
        let f = drift_target(Direction::Forward, x0.view(), x1.view(), xt.view(), 0.25);
        assert!(
            (f[0] - 4.0).abs() < 1e-6 && (f[1] + 4.0).abs() < 1e-6,
            "{f}"
        );
        // backward: (x0 − xt)/t at t = 0.25: (−1, 1)/0.25 = (−4, 4)
        let b = drift_target(Direction::Backward, x0.view(), x1.view(), xt.view(), 0.25);
        assert!(
            (b[0] + 4.0).abs() < 1e-6 && (b[1] - 4.0).abs() < 1e-6,
            "{b}"
        );
        // With no noise the forward target is the straight line's velocity x1 − x0.
        let xt = bridge_point(x0.view(), x1.view(), 0.3, 0.0, array![0.0f32, 0.0].view());
        let f = drift_target(Direction::Forward, x0.view(), x1.view(), xt.view(), 0.3);
        assert!(
            (f[0] - 4.0).abs() < 1e-5 && (f[1] + 4.0).abs() < 1e-5,
            "{f}"
        );
    }

    #[test]
    fn names_of_the_special_cases() {
        let make = |coupling, sigma| {
            Dsbm::new(
                &DsbmConfig {
                    first_coupling: coupling,
                    ..DsbmConfig::default()
                },
                sigma,
            )
            .unwrap()
        };
        assert_eq!(make(Coupling::Reference, 1.0).name(40), "DSBM-IPF");
        assert_eq!(make(Coupling::Independent, 1.0).name(40), "DSBM-IMF");
        assert_eq!(make(Coupling::Independent, 1.0).name(1), "Bridge matching");
        assert_eq!(make(Coupling::Independent, 0.0).name(1), "Flow matching");
        assert_eq!(make(Coupling::Independent, 0.0).name(3), "Rectified flow");
        assert!(Dsbm::new(
            &DsbmConfig {
                first_coupling: Coupling::Reference,
                ..DsbmConfig::default()
            },
            0.0
        )
        .is_err());
    }

    proptest! {
        /// The bridge at time t has mean (1−t)x0 + t x1 and variance σ² t(1−t) per coordinate.
        #[test]
        fn bridge_point_mean_and_variance(
            a in -3.0f32..3.0, b in -3.0f32..3.0, t in 0.01f64..0.99, sigma in 0.1f64..2.0, seed in 0u64..1000
        ) {
            let mut rng = SbRng::new(seed);
            let n = 20_000;
            let (x0, x1) = (array![a], array![b]);
            let draws: Vec<f64> = (0..n)
                .map(|_| {
                    let z = array![rng.normal() as f32];
                    f64::from(bridge_point(x0.view(), x1.view(), t, sigma, z.view())[0])
                })
                .collect();
            let mean = draws.iter().sum::<f64>() / n as f64;
            let var = draws.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
            let want_mean = (1.0 - t) * f64::from(a) + t * f64::from(b);
            let want_var = sigma * sigma * t * (1.0 - t);
            // 5 standard errors of the mean and of the variance estimate.
            let se_mean = (want_var / n as f64).sqrt();
            let se_var = want_var * (2.0 / (n - 1) as f64).sqrt();
            prop_assert!((mean - want_mean).abs() < 5.0 * se_mean + 1e-5, "mean {} vs {}", mean, want_mean);
            prop_assert!((var - want_var).abs() < 5.0 * se_var + 1e-6, "var {} vs {}", var, want_var);
        }
    }
}
