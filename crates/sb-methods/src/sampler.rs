//! Euler–Maruyama simulation in either direction, shared by every solver.

use candle_core::{Device, Tensor};
use ndarray::Array2;
use sb_data::SbRng;

use crate::tensor::{normal, to_array, to_tensor};
use crate::{Direction, MethodError, Result};

/// One Euler–Maruyama step: `x ← x + drift_scale · drift(x, t) + noise_std · Z`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Step {
    /// The time fed to the drift network, in `[0, 1]`.
    pub t: f64,
    /// What the drift output is multiplied by (the step size `dt` for DSBM, 1 for DSB's
    /// mean-matching networks, which output the whole displacement).
    pub drift_scale: f64,
    /// Standard deviation of the added Gaussian noise.
    pub noise_std: f64,
    /// Which interval of the time grid the step covers: `[τ_index, τ_index+1]`.
    pub index: usize,
}

/// The drift term of a process: a trained network, an EMA copy of one, or a reference.
pub trait Drift {
    /// The drift at points `x` (shape `(n, d)`) for `step`, before `drift_scale`.
    ///
    /// # Errors
    /// A tensor error.
    fn drift(&self, x: &Tensor, step: &Step) -> Result<Tensor>;
}

/// The result of a simulation: the visited states and, if recorded, each step's displacement.
#[derive(Clone, Debug)]
pub struct Simulation {
    /// `states[0]` is the start and `states[k + 1]` the state after step `k` when the whole
    /// trajectory was kept; otherwise only `[start, end]`.
    pub states: Vec<Array2<f32>>,
    /// `drift_scale · drift(states[k], step k)` for each step, when the trajectory was kept.
    pub displacements: Vec<Array2<f32>>,
}

impl Simulation {
    /// The final state.
    pub fn end(&self) -> &Array2<f32> {
        self.states
            .last()
            .expect("a simulation has at least its start")
    }
}

/// Runs Euler–Maruyama through `steps` from `start`, drawing noise from `rng`.
///
/// With `keep_trajectory`, every state and displacement is kept on the host (as DSB's
/// mean matching needs); otherwise only the start and the end.
///
/// # Errors
/// A tensor error, or non-finite values (naming the step).
pub fn simulate(
    drift: &dyn Drift,
    steps: &[Step],
    direction: Direction,
    start: &Array2<f32>,
    rng: &mut SbRng,
    keep_trajectory: bool,
    device: &Device,
) -> Result<Simulation> {
    let (n, d) = start.dim();
    let mut x = to_tensor(start, device)?;
    let mut states = vec![start.clone()];
    let mut displacements = Vec::new();
    for (k, step) in steps.iter().enumerate() {
        let disp = (drift.drift(&x, step)? * step.drift_scale)?;
        let mut next = (&x + &disp)?;
        if step.noise_std > 0.0 {
            next = (next + (normal(n, d, rng, device)? * step.noise_std)?)?;
        }
        if keep_trajectory {
            displacements.push(to_array(&disp)?);
            let host = to_array(&next)?;
            if !crate::tensor::all_finite(&host) {
                return Err(MethodError::NonFiniteSample { direction, step: k });
            }
            states.push(host);
        }
        x = next;
    }
    if !keep_trajectory {
        let end = to_array(&x)?;
        if !crate::tensor::all_finite(&end) {
            return Err(MethodError::NonFiniteSample {
                direction,
                step: steps.len().saturating_sub(1),
            });
        }
        states.push(end);
    }
    Ok(Simulation {
        states,
        displacements,
    })
}

/// A time column `(n, 1)` filled with `t`.
///
/// # Errors
/// A tensor error.
pub fn time_column(t: f64, n: usize, device: &Device) -> Result<Tensor> {
    Ok(Tensor::full(t as f32, (n, 1), device)?)
}
