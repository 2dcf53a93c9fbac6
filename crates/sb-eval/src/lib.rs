//! Metrics for Schrödinger-bridge benchmarks, as pure functions on `ndarray` arrays.
//!
//! Independent of candle: points are `ArrayView2<f64>` of shape `(n, d)`, results are
//! plain numbers, so any Rust code can use them and property tests can check them.
//!
//! Here now:
//! - [`assignment`]: an exact linear assignment solver (Hungarian method with
//!   potentials), giving exact optimal transport between two clouds of equal size
//!   with uniform weights, and so [`w2_equal`] and [`w1_equal`];
//! - [`summary`]: means and unbiased covariances;
//! - [`mmd_rbf`]: the maximum mean discrepancy with a Gaussian kernel.
//!
//! ```
//! use ndarray::array;
//! let a = array![[0.0, 0.0], [1.0, 0.0]];
//! let b = array![[0.0, 1.0], [1.0, 1.0]];
//! let w2 = sb_eval::w2_equal(a.view(), b.view()).unwrap();
//! assert!((w2 - 1.0).abs() < 1e-12);
//! ```

pub mod assignment;
mod error;
mod mmd;
pub mod summary;

pub use error::EvalError;
pub use mmd::mmd_rbf;

use ndarray::ArrayView2;

/// Exact W2 between two clouds of equal size with uniform weights:
///
/// ```text
/// W2(a, b) = ( min_σ (1/n) Σ_i ‖a_i − b_σ(i)‖² )^½
/// ```
///
/// # Errors
/// Empty clouds, different sizes or dimensions, or non-finite values.
pub fn w2_equal(a: ArrayView2<'_, f64>, b: ArrayView2<'_, f64>) -> Result<f64, EvalError> {
    let cost = assignment::pairwise_cost(a, b, |d2| d2)?;
    Ok((assignment::solve(&cost).cost / a.nrows() as f64).sqrt())
}

/// Exact W1 between two clouds of equal size with uniform weights (Euclidean cost).
///
/// # Errors
/// As [`w2_equal`].
pub fn w1_equal(a: ArrayView2<'_, f64>, b: ArrayView2<'_, f64>) -> Result<f64, EvalError> {
    let cost = assignment::pairwise_cost(a, b, f64::sqrt)?;
    Ok(assignment::solve(&cost).cost / a.nrows() as f64)
}
