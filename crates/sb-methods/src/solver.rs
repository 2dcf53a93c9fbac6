//! The `BridgeSolver` trait: what differs between Schrödinger-bridge methods, and nothing else.

use candle_core::{Device, Tensor};
use ndarray::Array2;
use sb_data::SbRng;

use crate::sampler::{Drift, Step};
use crate::{Direction, Result};

/// Training data for one pass, made from the other direction's process.
#[derive(Clone, Debug)]
pub enum TrainingSet {
    /// Ready-made regression rows: input point, input time, target (DSB's mean matching).
    Regression {
        /// Input points, `(rows, d)`.
        x: Array2<f32>,
        /// Input times, one per row.
        t: Vec<f32>,
        /// Regression targets, `(rows, d)`.
        target: Array2<f32>,
    },
    /// Endpoint pairs of a coupling, from which each batch draws bridges (DSBM).
    Pairs {
        /// Points at t = 0, `(pairs, d)`.
        x0: Array2<f32>,
        /// Points at t = 1, `(pairs, d)`.
        x1: Array2<f32>,
    },
}

impl TrainingSet {
    /// How many rows or pairs the set holds.
    pub fn len(&self) -> usize {
        match self {
            Self::Regression { x, .. } => x.nrows(),
            Self::Pairs { x0, .. } => x0.nrows(),
        }
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One regression batch: the network at `(x, t)` is trained onto `target` by mean squared error.
#[derive(Clone, Debug)]
pub struct Batch {
    /// Input points, `(b, d)`.
    pub x: Array2<f32>,
    /// Input times, `(b, 1)`.
    pub t: Array2<f32>,
    /// Targets, `(b, d)`.
    pub target: Array2<f32>,
}

/// What a pass gets to build its training set.
pub struct PassContext<'a> {
    /// The direction this pass trains.
    pub direction: Direction,
    /// Zero-based pass number.
    pub pass: usize,
    /// Fresh draws from π0, `(cache_size, d)`.
    pub x0: &'a Array2<f32>,
    /// Fresh draws from π1, `(cache_size, d)`.
    pub x1: &'a Array2<f32>,
    /// The process in the other direction: the trained network, or the reference
    /// process when `opposite_trained` is false.
    pub opposite: &'a dyn Drift,
    /// Whether the other direction has been trained yet.
    pub opposite_trained: bool,
    /// Where tensors live.
    pub device: &'a Device,
}

/// A Schrödinger-bridge method: how a pass makes its training data from the other
/// direction, and what the network regresses onto.
///
/// The loop around it (pass schedule, Adam, EMA, clipping, NaN checks, observers) is
/// written once, in [`crate::Trainer`]; sampling is shared too ([`crate::sampler`]).
/// The trait is object safe: solvers travel as `Box<dyn BridgeSolver>`.
pub trait BridgeSolver: Send + Sync {
    /// The name in results; special cases have their own names (SGM, bridge matching,
    /// flow matching, rectified flow) given the number of passes trained.
    fn name(&self, passes: usize) -> String;

    /// The parameters that define the method, as `(key, value)` pairs for results.
    fn params(&self) -> Vec<(String, String)>;

    /// The direction of the first pass.
    fn first_direction(&self) -> Direction;

    /// The Euler–Maruyama steps of a simulation in `direction`, in the order applied.
    fn steps(&self, direction: Direction) -> Vec<Step>;

    /// The steps of a simulation with `n` uniform steps instead of the trained grid, for
    /// solvers whose networks take continuous time (DSBM, the flow-matching peers, LightSB).
    /// The default, for networks that belong to their grid (DSB's mean-matching networks
    /// output one grid step's whole displacement): the grid itself when `n` is its length,
    /// `None` otherwise.
    fn steps_with(&self, direction: Direction, n: usize) -> Option<Vec<Step>> {
        let grid = self.steps(direction);
        (grid.len() == n).then_some(grid)
    }

    /// The reference process's drift, used in place of an untrained network.
    ///
    /// # Errors
    /// A tensor error.
    fn reference_drift(&self, direction: Direction, x: &Tensor, step: &Step) -> Result<Tensor>;

    /// Whether the two directions' networks are the drifts of one forward–backward SDE pair
    /// (DSBM), so that `(v_f − v_b)/2` is the drift of the probability-flow ODE (see
    /// [`crate::TrainedBridge::sample_ode`]). Defaults to false.
    fn probability_flow(&self) -> bool {
        false
    }

    /// How many trailing coordinates of the state are an observation `y` that the bridge
    /// carries unchanged (a conditional bridge, SPEC §8): its networks see `[x, y, t]`, its
    /// steps freeze `y`, and the trainer gives each π1 draw the `y` of the π0 draw in the same
    /// row, so π1 = reference ⊗ p(y). Defaults to 0 (an ordinary bridge).
    fn observation_dim(&self) -> usize {
        0
    }

    /// Builds the training set of a pass from the other direction's process.
    ///
    /// # Errors
    /// A tensor error or a non-finite simulation.
    fn training_set(&self, ctx: &PassContext<'_>, rng: &mut SbRng) -> Result<TrainingSet>;

    /// Builds the regression batch of the given `rows` of `set` for training `direction`
    /// (the trainer chooses the rows: every row once per epoch, in random order; DSBM draws
    /// each pair's bridge time and noise here; the minibatch-OT methods couple the rows).
    ///
    /// # Errors
    /// A coupling that cannot be computed.
    fn batch(
        &self,
        set: &TrainingSet,
        direction: Direction,
        rows: &[usize],
        rng: &mut SbRng,
    ) -> Result<Batch>;

    /// Solvers fitted without drift networks or passes (LightSB) fit here and return an
    /// exact sampler of their plan; the trainer then runs no passes. Others return `None`.
    ///
    /// # Errors
    /// Inside the option: the fit failed.
    fn fit_exact(
        &self,
        _pi0: &sb_data::Source,
        _pi1: &sb_data::Source,
        _rng: &mut SbRng,
    ) -> Option<Result<Box<dyn ExactSampler>>> {
        None
    }

    /// Reads back what [`ExactSampler::save`] wrote in `dir`, for solvers that have one.
    ///
    /// # Errors
    /// Inside the option: an unreadable file.
    fn load_exact(&self, _dir: &std::path::Path) -> Option<Result<Box<dyn ExactSampler>>> {
        None
    }
}

/// A bridge known through its plan: the other end is drawn exactly given a start, and the
/// path between them is the Brownian bridge of the reference.
pub trait ExactSampler: Send + Sync {
    /// The reference's σ.
    fn sigma(&self) -> f64;

    /// Draws the other end for each row of `start` (π0 points when `direction` is forward).
    fn end(
        &self,
        direction: Direction,
        start: ndarray::ArrayView2<'_, f64>,
        rng: &mut SbRng,
    ) -> Array2<f64>;

    /// Writes the fitted parameters into `dir`.
    ///
    /// # Errors
    /// A file cannot be written.
    fn save(&self, dir: &std::path::Path) -> Result<()>;
}

/// The reference process of a solver in one direction, as a [`Drift`].
pub struct Reference<'a> {
    /// The solver whose reference this is.
    pub solver: &'a dyn BridgeSolver,
    /// The direction it runs.
    pub direction: Direction,
}

impl Drift for Reference<'_> {
    fn drift(&self, x: &Tensor, step: &Step) -> Result<Tensor> {
        self.solver.reference_drift(self.direction, x, step)
    }
}

/// The rows of a training set in epochs, as a shuffling data loader gives them: each epoch
/// visits every row once, in a new random order.
#[derive(Clone, Debug)]
pub struct Epochs {
    order: Vec<usize>,
    next: usize,
}

impl Epochs {
    /// Epochs over `len` rows (at least one), the first in random order.
    pub fn new(len: usize, rng: &mut SbRng) -> Self {
        Self {
            order: rng.permutation(len.max(1)),
            next: 0,
        }
    }

    /// The next `size` rows, starting a new epoch (a new order) whenever one ends.
    pub fn take(&mut self, size: usize, rng: &mut SbRng) -> Vec<usize> {
        (0..size)
            .map(|_| {
                if self.next == self.order.len() {
                    self.order = rng.permutation(self.order.len());
                    self.next = 0;
                }
                self.next += 1;
                self.order[self.next - 1]
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_visit_every_row_once_before_repeating() {
        let mut rng = SbRng::new(5);
        let mut epochs = Epochs::new(10, &mut rng);
        let mut rows = epochs.take(7, &mut rng);
        rows.extend(epochs.take(3, &mut rng));
        let mut first = rows.clone();
        first.sort_unstable();
        assert_eq!(first, (0..10).collect::<Vec<_>>());
        // The second epoch is a new order of the same rows.
        let mut second = epochs.take(10, &mut rng);
        assert_ne!(second, rows);
        second.sort_unstable();
        assert_eq!(second, (0..10).collect::<Vec<_>>());
    }
}
