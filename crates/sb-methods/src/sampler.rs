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
    /// How many trailing coordinates the step leaves unchanged (no drift, no noise): the
    /// observation `y` a conditional bridge carries beside its state (0 otherwise).
    pub frozen: usize,
}

/// `steps` with their last `m` coordinates frozen (see [`Step::frozen`]).
pub fn freeze(mut steps: Vec<Step>, m: usize) -> Vec<Step> {
    for s in &mut steps {
        s.frozen = m;
    }
    steps
}

/// Sets the last `m` columns of `a` to zero (a conditional bridge's regression targets on
/// its frozen observation coordinates).
pub fn zero_tail(a: &mut Array2<f32>, m: usize) {
    let d = a.ncols();
    a.slice_mut(ndarray::s![.., d - m..]).fill(0.0);
}

/// Copies the last `m` columns of `from` into `to` (rows matched one to one).
pub fn copy_tail<A: Clone>(to: &mut Array2<A>, from: &Array2<A>, m: usize) {
    let d = to.ncols();
    to.slice_mut(ndarray::s![.., d - m..])
        .assign(&from.slice(ndarray::s![.., d - m..]));
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
        // Detached: a drift computed with trainable weights records its operations, and the
        // whole simulation's graph would stay in memory until the end (gigabytes for 10⁵
        // particles); sampling never needs gradients.
        let mut disp = (drift.drift(&x, step)? * step.drift_scale)?.detach();
        let mut next = (&x + &disp)?;
        if step.noise_std > 0.0 {
            next = (next + (normal(n, d, rng, device)? * step.noise_std)?)?;
        }
        if step.frozen > 0 {
            // The observation coordinates stay as they were (the noise for them is drawn
            // all the same, so a frozen tail does not shift the other draws).
            let (free, m) = (d - step.frozen, step.frozen);
            next = Tensor::cat(&[next.narrow(1, 0, free)?, x.narrow(1, free, m)?], 1)?;
            disp = Tensor::cat(
                &[
                    disp.narrow(1, 0, free)?,
                    disp.narrow(1, free, m)?.zeros_like()?,
                ],
                1,
            )?;
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

/// The time of each state of a simulation along `steps`: `times[k]` is the time before
/// step `k`, and the last entry the end (1 forward, 0 backward).
pub fn state_times(steps: &[Step], direction: Direction) -> Vec<f64> {
    let end = match direction {
        Direction::Forward => 1.0,
        Direction::Backward => 0.0,
    };
    steps.iter().map(|s| s.t).chain([end]).collect()
}

/// The steps that take a simulation from its start to time `t_stop` (inside `[0, 1]`).
///
/// Whole steps are kept while they end on or before `t_stop`; the step that crosses it is
/// shortened to end there: its drift is scaled by the fraction `f` of the step taken and its
/// noise standard deviation by `√f` (exact for DSBM's Euler steps; for DSB, whose networks
/// predict a whole step's displacement, the mean is interpolated linearly within the step).
pub fn steps_until(steps: &[Step], direction: Direction, t_stop: f64) -> Vec<Step> {
    let times = state_times(steps, direction);
    // Progress along the direction of travel, so one comparison serves both directions.
    let along = |t: f64| match direction {
        Direction::Forward => t,
        Direction::Backward => 1.0 - t,
    };
    let stop = along(t_stop);
    let mut out = Vec::new();
    for (k, step) in steps.iter().enumerate() {
        let (a, b) = (along(times[k]), along(times[k + 1]));
        if b <= stop + 1e-12 {
            out.push(*step);
            continue;
        }
        if a < stop - 1e-12 {
            let f = (stop - a) / (b - a);
            out.push(Step {
                drift_scale: step.drift_scale * f,
                noise_std: step.noise_std * f.sqrt(),
                ..*step
            });
        }
        break;
    }
    out
}

/// `n` uniform Euler–Maruyama steps of size `dt = 1/n` in `direction`, each with drift scale
/// `dt` and noise `σ √dt` (σ = 0: an ODE), from t = 0 forward or from t = 1 backward.
pub fn uniform_steps(n: usize, direction: Direction, sigma: f64) -> Vec<Step> {
    let dt = 1.0 / n as f64;
    (0..n)
        .map(|j| match direction {
            Direction::Forward => Step {
                t: j as f64 * dt,
                drift_scale: dt,
                noise_std: sigma * dt.sqrt(),
                index: j,
                frozen: 0,
            },
            Direction::Backward => Step {
                t: 1.0 - j as f64 * dt,
                drift_scale: dt,
                noise_std: sigma * dt.sqrt(),
                index: n - 1 - j,
                frozen: 0,
            },
        })
        .collect()
}

/// A time column `(n, 1)` filled with `t`.
///
/// # Errors
/// A tensor error.
pub fn time_column(t: f64, n: usize, device: &Device) -> Result<Tensor> {
    Ok(Tensor::full(t as f32, (n, 1), device)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(n: usize, direction: Direction) -> Vec<Step> {
        let dt = 1.0 / n as f64;
        (0..n)
            .map(|j| Step {
                t: match direction {
                    Direction::Forward => j as f64 * dt,
                    Direction::Backward => 1.0 - j as f64 * dt,
                },
                drift_scale: dt,
                noise_std: dt.sqrt(),
                index: j,
                frozen: 0,
            })
            .collect()
    }

    #[test]
    fn stopping_on_the_grid_keeps_whole_steps() {
        let f = grid(20, Direction::Forward);
        assert_eq!(steps_until(&f, Direction::Forward, 0.5), f[..10].to_vec());
        assert_eq!(steps_until(&f, Direction::Forward, 1.0), f);
        assert!(steps_until(&f, Direction::Forward, 0.0).is_empty());
        let b = grid(20, Direction::Backward);
        assert_eq!(steps_until(&b, Direction::Backward, 0.5), b[..10].to_vec());
        assert_eq!(state_times(&b, Direction::Backward).last(), Some(&0.0));
    }

    #[test]
    fn stopping_between_grid_times_shortens_the_last_step() {
        let f = grid(10, Direction::Forward);
        let s = steps_until(&f, Direction::Forward, 0.44);
        assert_eq!(s.len(), 5);
        let last = s[4];
        // 0.04 of a 0.1 step: 40 %.
        assert!((last.drift_scale - 0.04).abs() < 1e-12);
        assert!((last.noise_std - (0.4f64 * 0.1).sqrt()).abs() < 1e-12);
        // The total time and noise variance equal those of the shortened interval.
        let time: f64 = s.iter().map(|s| s.drift_scale).sum();
        let var: f64 = s.iter().map(|s| s.noise_std * s.noise_std).sum();
        assert!((time - 0.44).abs() < 1e-12 && (var - 0.44).abs() < 1e-12);
        let b = grid(10, Direction::Backward);
        let s = steps_until(&b, Direction::Backward, 0.44);
        let time: f64 = s.iter().map(|s| s.drift_scale).sum();
        assert!((time - 0.56).abs() < 1e-12, "{time}");
    }
}
