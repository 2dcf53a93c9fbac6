//! DSB: Diffusion Schrödinger Bridge by iterative proportional fitting with mean matching
//! (De Bortoli, Thornton, Heng, Doucet, NeurIPS 2021).
//!
//! ```text
//! forward  step k:  X_{k+1} = F_k(X_k)     + √(2γ_{k+1}) Z
//! backward step k:  X_k     = B_{k+1}(X_{k+1}) + √(2γ_{k+1}) Z
//! backward half-step regresses B_{k+1}(X_{k+1}) onto X_{k+1} + F_k(X_k) − F_k(X_{k+1})
//! forward  half-step regresses F_k(X_k)         onto X_k + B_{k+1}(X_{k+1}) − B_{k+1}(X_k)
//! ```
//!
//! Deviation from the paper, in parametrisation only: the networks output the
//! displacement `F_k(x) − x` (and `B_{k+1}(x) − x`) rather than the mean itself, so the
//! regression targets above are shifted by the input point. The function class and the
//! fixed point are the same; an untrained network starts near the Brownian reference.

use candle_core::Tensor;
use ndarray::{concatenate, Array2, Axis};
use sb_data::SbRng;
use serde::{Deserialize, Serialize};

use crate::sampler::{simulate, zero_tail, Step};
use crate::solver::{Batch, BridgeSolver, PassContext, TrainingSet};
use crate::tensor::{to_array, to_tensor};
use crate::{Direction, MethodError, Result};

/// The reference process of DSB's first iteration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DsbReference {
    /// Brownian motion, `F_k(x) = x` (data-to-data problems; the reference of SPEC §1).
    #[default]
    Brownian,
    /// Ornstein–Uhlenbeck / Langevin towards `N(0, prior_var · I)`:
    /// `F_k(x) = x − γ_{k+1} x / prior_var`. One pass of it is score-based generative modelling.
    Ou,
}

fn default_steps() -> usize {
    20
}
fn one() -> f64 {
    1.0
}

/// DSB's configuration (plain data).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DsbConfig {
    /// Number of time steps N. Defaults to 20.
    #[serde(default = "default_steps")]
    pub num_steps: usize,
    /// Constant step size γ. Defaults to σ²/(2N), so that the reference has variance σ² over the
    /// whole horizon, as the reference `dX = σ dW` on [0, 1] of the other solvers.
    #[serde(default)]
    pub gamma: Option<f64>,
    /// Reference of the first iteration. Defaults to `brownian`.
    #[serde(default)]
    pub reference: DsbReference,
    /// Variance of the OU reference's stationary law. Defaults to 1.
    #[serde(default = "one")]
    pub prior_var: f64,
}

impl Default for DsbConfig {
    fn default() -> Self {
        Self {
            num_steps: default_steps(),
            gamma: None,
            reference: DsbReference::default(),
            prior_var: 1.0,
        }
    }
}

/// The DSB solver (mean matching), built from a [`DsbConfig`] and the reference's σ.
#[derive(Clone, Debug)]
pub struct Dsb {
    gammas: Vec<f64>,
    /// τ_k = Σ_{j<k} γ_j / Σ γ, the network time of grid point k.
    taus: Vec<f64>,
    reference: DsbReference,
    prior_var: f64,
    observation_dim: usize,
}

impl Dsb {
    /// Builds the solver; `sigma` is the reference's noise level (ε = σ²).
    ///
    /// # Errors
    /// `num_steps = 0`, a non-positive γ or `prior_var`, or σ = 0 without an explicit γ.
    pub fn new(config: &DsbConfig, sigma: f64) -> Result<Self> {
        let n = config.num_steps;
        if n == 0 {
            return Err(MethodError::Config(
                "method.num_steps must be ≥ 1, got 0".into(),
            ));
        }
        let gamma = match config.gamma {
            Some(g) => g,
            None => sigma * sigma / (2.0 * n as f64),
        };
        if !(gamma > 0.0 && gamma.is_finite()) {
            return Err(MethodError::Config(format!(
                "method.gamma must be > 0, got {gamma} (DSB needs σ > 0 or an explicit gamma)"
            )));
        }
        if !(config.prior_var > 0.0 && config.prior_var.is_finite()) {
            return Err(MethodError::Config(format!(
                "method.prior_var must be > 0, got {}",
                config.prior_var
            )));
        }
        let gammas = vec![gamma; n];
        let total: f64 = gammas.iter().sum();
        let mut taus = vec![0.0];
        for g in &gammas {
            taus.push(taus.last().expect("non-empty") + g / total);
        }
        Ok(Self {
            gammas,
            taus,
            reference: config.reference,
            prior_var: config.prior_var,
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

    /// The step sizes γ_1, …, γ_N.
    pub fn gammas(&self) -> &[f64] {
        &self.gammas
    }
}

/// DSB's mean-matching regression target for one generating step.
///
/// For a step `s → s'` of the generating process with mean map `m` (so `s' = m(s) + noise`),
/// the opposite network, evaluated at `s'`, is trained to output the displacement
///
/// ```text
/// m(s) − m(s')
/// ```
///
/// which is `[s' + m(s) − m(s')] − s'`: the paper's target minus the input point.
pub fn mean_matching_target(mean_at_prev: &Array2<f32>, mean_at_next: &Array2<f32>) -> Array2<f32> {
    mean_at_prev - mean_at_next
}

impl BridgeSolver for Dsb {
    fn name(&self, passes: usize) -> String {
        match (self.reference, passes) {
            (DsbReference::Ou, 1) => "SGM".into(),
            _ => "DSB".into(),
        }
    }

    fn params(&self) -> Vec<(String, String)> {
        vec![
            ("num_steps".into(), self.gammas.len().to_string()),
            ("gamma".into(), format!("{}", self.gammas[0])),
            (
                "reference".into(),
                match self.reference {
                    DsbReference::Brownian => "brownian".into(),
                    DsbReference::Ou => format!("ou(prior_var={})", self.prior_var),
                },
            ),
        ]
    }

    fn first_direction(&self) -> Direction {
        // The reference runs forward from π0: IPF starts by fitting its time reversal.
        Direction::Backward
    }

    fn steps(&self, direction: Direction) -> Vec<Step> {
        let n = self.gammas.len();
        let step = |k: usize| Step {
            t: match direction {
                Direction::Forward => self.taus[k],
                Direction::Backward => self.taus[k + 1],
            },
            drift_scale: 1.0,
            noise_std: (2.0 * self.gammas[k]).sqrt(),
            index: k,
            frozen: self.observation_dim,
        };
        match direction {
            Direction::Forward => (0..n).map(step).collect(),
            Direction::Backward => (0..n).rev().map(step).collect(),
        }
    }

    fn reference_drift(&self, direction: Direction, x: &Tensor, step: &Step) -> Result<Tensor> {
        Ok(match (self.reference, direction) {
            (DsbReference::Ou, Direction::Forward) => {
                (x * (-self.gammas[step.index] / self.prior_var))?
            }
            // Brownian motion has no drift; the OU time reversal is never simulated
            // (the backward network is always trained before it is used).
            _ => x.zeros_like()?,
        })
    }

    fn observation_dim(&self) -> usize {
        self.observation_dim
    }

    fn training_set(&self, ctx: &PassContext<'_>, rng: &mut SbRng) -> Result<TrainingSet> {
        let generating = ctx.direction.opposite();
        let gen_steps = self.steps(generating);
        let trained_steps = self.steps(ctx.direction);
        let start = match generating {
            Direction::Forward => ctx.x0,
            Direction::Backward => ctx.x1,
        };
        let sim = simulate(
            ctx.opposite,
            &gen_steps,
            generating,
            start,
            rng,
            true,
            ctx.device,
        )?;
        let n = gen_steps.len();
        let mut xs = Vec::with_capacity(n);
        let mut ts = Vec::with_capacity(n * start.nrows());
        let mut targets = Vec::with_capacity(n);
        for (j, step) in gen_steps.iter().enumerate() {
            let prev = &sim.states[j];
            let next = &sim.states[j + 1];
            let mean_prev = prev + &sim.displacements[j];
            let next_t = to_tensor(next, ctx.device)?;
            let disp_next = to_array(&(ctx.opposite.drift(&next_t, step)? * step.drift_scale)?)?;
            let mean_next = next + &disp_next;
            let mut target = mean_matching_target(&mean_prev, &mean_next);
            if self.observation_dim > 0 {
                zero_tail(&mut target, self.observation_dim);
            }
            targets.push(target);
            xs.push(next.clone());
            let t = trained_steps[n - 1 - j].t as f32;
            ts.extend(std::iter::repeat_n(t, next.nrows()));
        }
        let views = |v: &[Array2<f32>]| -> Array2<f32> {
            let vs: Vec<_> = v.iter().map(|a| a.view()).collect();
            concatenate(Axis(0), &vs).expect("equal widths")
        };
        Ok(TrainingSet::Regression {
            x: views(&xs),
            t: ts,
            target: views(&targets),
        })
    }

    fn batch(
        &self,
        set: &TrainingSet,
        _direction: Direction,
        rows: &[usize],
        _rng: &mut SbRng,
    ) -> Result<Batch> {
        let TrainingSet::Regression { x, t, target } = set else {
            unreachable!("DSB builds regression sets");
        };
        Ok(Batch {
            x: x.select(Axis(0), rows),
            t: Array2::from_shape_fn((rows.len(), 1), |(i, _)| t[rows[i]]),
            target: target.select(Axis(0), rows),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampler::Drift;
    use candle_core::Device;
    use ndarray::array;

    /// A linear "network" F_k(x) − x = a·x, to check targets by hand.
    struct Linear(f64);
    impl Drift for Linear {
        fn drift(&self, x: &Tensor, _step: &Step) -> Result<Tensor> {
            Ok((x * self.0)?)
        }
    }

    #[test]
    fn steps_cover_the_grid_in_both_directions() {
        let dsb = Dsb::new(
            &DsbConfig {
                num_steps: 4,
                ..DsbConfig::default()
            },
            1.0,
        )
        .unwrap();
        let f = dsb.steps(Direction::Forward);
        let b = dsb.steps(Direction::Backward);
        let ft: Vec<f64> = f.iter().map(|s| s.t).collect();
        let bt: Vec<f64> = b.iter().map(|s| s.t).collect();
        assert_eq!(ft, vec![0.0, 0.25, 0.5, 0.75]);
        assert_eq!(bt, vec![1.0, 0.75, 0.5, 0.25]);
        // γ = σ²/(2N): the total noise variance 2Σγ equals σ².
        let var: f64 = f.iter().map(|s| s.noise_std * s.noise_std).sum();
        assert!((var - 1.0).abs() < 1e-12);
    }

    /// One step, one point, F(x) − x = 0.5 x, forward from x0 = 2 with noise giving x1 = 3.5:
    /// m(x0) = 3, m(x1) = 5.25, so B at x1 must output 3 − 5.25 = −2.25 (paper: B(x1) = 1.25).
    #[test]
    fn mean_matching_target_by_hand() {
        let prev = array![[2.0f32]];
        let next = array![[3.5f32]];
        let target = mean_matching_target(&(&prev + &(&prev * 0.5)), &(&next + &(&next * 0.5)));
        assert_eq!(target, array![[-2.25f32]]);
        // The paper's form X_{k+1} + F(X_k) − F(X_{k+1}) with F(x) = 1.5x.
        assert!((3.5 + 1.5 * 2.0 - 1.5 * 3.5 - (3.5 + target[[0, 0]])).abs() < 1e-6);
    }

    #[test]
    fn training_set_rows_match_targets_from_the_trajectory() {
        let dsb = Dsb::new(
            &DsbConfig {
                num_steps: 3,
                ..DsbConfig::default()
            },
            1.0,
        )
        .unwrap();
        let x0 = array![[1.0f32, -1.0], [0.5, 2.0]];
        let ctx = PassContext {
            direction: Direction::Backward,
            pass: 0,
            x0: &x0,
            x1: &x0,
            opposite: &Linear(0.5),
            opposite_trained: true,
            device: &Device::Cpu,
        };
        let set = dsb.training_set(&ctx, &mut SbRng::new(0)).unwrap();
        let TrainingSet::Regression { x, t, target } = set else {
            panic!()
        };
        assert_eq!(x.dim(), (6, 2));
        // Rows of step j: input X_{j+1}, target 1.5 X_j − 1.5 X_{j+1}, time τ_{j+1}.
        let (x1, x2) = (
            x.slice(ndarray::s![0..2, ..]),
            x.slice(ndarray::s![2..4, ..]),
        );
        let expect = (&x1.to_owned() * 1.5) - (&x2.to_owned() * 1.5);
        let got = target.slice(ndarray::s![2..4, ..]);
        for (a, b) in expect.iter().zip(got.iter()) {
            assert!((a - b).abs() < 1e-5, "{expect} vs {got}");
        }
        let first = target.slice(ndarray::s![0..2, ..]);
        let expect0 = (&x0 * 1.5) - (&x1.to_owned() * 1.5);
        for (a, b) in expect0.iter().zip(first.iter()) {
            assert!((a - b).abs() < 1e-5);
        }
        assert_eq!(
            &t[..],
            &[1.0 / 3.0, 1.0 / 3.0, 2.0 / 3.0, 2.0 / 3.0, 1.0, 1.0].map(|v: f64| v as f32)
        );
    }
}
