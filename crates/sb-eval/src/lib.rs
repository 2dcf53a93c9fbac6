//! Metrics for Schrödinger-bridge benchmarks, as pure functions on `ndarray` arrays.
//!
//! Independent of candle: points are `ArrayView2<f64>` of shape `(n, d)`, results are
//! plain numbers, so any Rust code can use them and property tests can check them.
//!
//! Here now:
//! - [`emd`]: exact optimal transport by a network simplex (any sizes, uniform or
//!   given weights), with the plan, dual potentials and a convergence flag; [`w1`] and
//!   [`w2`] on top of it;
//! - [`assignment`]: an exact linear assignment solver (Hungarian method with
//!   potentials), an independent check of the network simplex on square problems;
//! - [`ot_interpolate`], [`w1_weighted`]: displacement interpolation along the exact plan
//!   (the OT reference row of single-cell benchmarks);
//! - [`sinkhorn`]: entropic optimal transport in the log domain;
//! - [`GaussianBridge`]: the closed-form Gaussian Schrödinger bridge (plan, marginals,
//!   conditionals, exact samplers);
//! - [`bw2_uvp`], [`cbw2_uvp`], [`gaussian_kl`]: the Bures–Wasserstein family;
//! - [`LinearGaussian`]: linear-Gaussian inverse problems and their exact posteriors (the
//!   truth that scores conditional bridges);
//! - [`summary`]: means and unbiased covariances;
//! - [`mmd_rbf`]: the maximum mean discrepancy with a Gaussian kernel.
//!
//! ```
//! use ndarray::array;
//! let a = array![[0.0, 0.0], [1.0, 0.0]];
//! let b = array![[0.0, 1.0], [1.0, 1.0]];
//! let w2 = sb_eval::w2(a.view(), b.view()).unwrap();
//! assert!((w2.value - 1.0).abs() < 1e-12 && w2.transport.converged);
//! ```

pub mod assignment;
mod bures;
mod classifier;
mod error;
mod gaussian;
mod interpolation;
mod inverse;
pub mod linalg;
pub mod memory;
mod mmd;
mod simplex;
mod sinkhorn;
pub mod summary;
mod wasserstein;

pub use bures::{bw2_squared, bw2_uvp, bw2_uvp_samples, cbw2_uvp, gaussian_kl};
pub use classifier::{class_shares, ClassifierOptions, SoftmaxClassifier};
pub use error::EvalError;
pub use gaussian::{gaussian_draws, GaussianBridge};
pub use interpolation::{ot_interpolate, w1_weighted, w2_weighted};
pub use inverse::LinearGaussian;
pub use mmd::mmd_rbf;
pub use simplex::{emd, emd_points, CostStorage, EmdOptions, Transport, DEFAULT_NEIGHBOURS};
pub use sinkhorn::{sinkhorn, EntropicTransport, SinkhornOptions};
pub use wasserstein::{cost_matrix, exact, w1, w2, Distance, Ground, DENSE_MAX_PAIRS};
