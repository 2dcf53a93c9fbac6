//! Means and covariances of point clouds.

use ndarray::{Array1, Array2, ArrayView2, Axis};

use crate::error::check_cloud;
use crate::EvalError;

/// The mean of the rows.
///
/// # Errors
/// An empty or non-finite cloud.
pub fn mean(x: ArrayView2<'_, f64>) -> Result<Array1<f64>, EvalError> {
    check_cloud("the cloud", x)?;
    Ok(x.mean_axis(Axis(0)).expect("non-empty"))
}

/// The unbiased covariance of the rows, `(1/(n−1)) Σ (x_i − x̄)(x_i − x̄)ᵀ`.
///
/// # Errors
/// An empty or non-finite cloud, or a single point.
pub fn covariance(x: ArrayView2<'_, f64>) -> Result<Array2<f64>, EvalError> {
    let m = mean(x)?;
    if x.nrows() < 2 {
        return Err(EvalError::ShapeMismatch(
            "an unbiased covariance needs at least two points".into(),
        ));
    }
    let c = &x - &m;
    Ok(c.t().dot(&c) / (x.nrows() - 1) as f64)
}
