//! Schrödinger-bridge solvers on candle: DSB and DSBM behind one [`BridgeSolver`] trait.
//!
//! Both methods learn a forward drift (π0 → π1) and a backward drift (π1 → π0) for the
//! bridge with reference `dX = σ dW` on `[0, 1]` (entropic coefficient ε = σ²), and both
//! sample with Euler–Maruyama in either direction.
//!
//! - [`dsb`]: Diffusion Schrödinger Bridge (De Bortoli et al. 2021), iterative
//!   proportional fitting with mean matching.
//! - [`dsbm`]: Diffusion Schrödinger Bridge Matching (Shi et al. 2023), iterative Markovian
//!   fitting with Brownian-bridge reciprocal projections, as DSBM-IPF or DSBM-IMF.
//!
//! A solver says only what differs between methods: how a pass builds its training data
//! from the other direction, and the regression target. [`Trainer`] owns the loop (pass
//! schedule, Adam, EMA, gradient clipping, NaN checks, [`Observer`]s) and returns a
//! [`TrainedBridge`] to sample from.
//!
//! ```no_run
//! use candle_core::Device;
//! use sb_data::{Distribution, SbRng};
//! use sb_methods::{MethodConfig, NetConfig, TrainConfig, Trainer, Direction};
//!
//! let pi0 = Distribution::Moons { noise: 0.1 }.load()?;
//! let pi1 = Distribution::Gaussian { dim: 2, mean: Default::default(), cov: Default::default() }.load()?;
//! let solver = MethodConfig::Dsbm(Default::default()).build(1.0)?;
//! let trainer = Trainer::new(solver, NetConfig::default(), TrainConfig::default(), Device::Cpu)?;
//! let mut rng = SbRng::new(0);
//! let bridge = trainer.train(&pi0, &pi1, &mut rng, &mut [])?;
//! let noise = sb_methods::tensor::to_f32(&pi1.sample(1000, &mut rng));
//! let generated = bridge.sample(Direction::Backward, &noise, &mut rng, false)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! All randomness (noise, batches, initial weights) comes from one seeded [`sb_data::SbRng`]:
//! the same seed gives the same numbers.

pub mod cfm;
mod config;
mod direction;
pub mod dsb;
pub mod dsbm;
mod error;
pub mod lightsb;
mod mlp;
pub mod net;
pub mod optim;
pub mod sampler;
pub mod solver;
pub mod tensor;
mod trainer;

pub use config::{MethodConfig, TrainConfig};
pub use direction::Direction;
pub use error::{MethodError, Result};
pub use net::NetConfig;
pub use solver::BridgeSolver;
pub use trainer::{
    Checkpoint, Checkpointer, Model, Observer, PassInfo, Resume, SavedModel, StepInfo,
    TrainedBridge, Trainer,
};
