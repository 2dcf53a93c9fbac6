//! Displacement interpolation along an exact optimal transport plan (McCann's interpolant).

use ndarray::{Array2, ArrayView2};

use crate::wasserstein::{cost_matrix, Ground};
use crate::{emd, EmdOptions, EvalError};

/// The weighted point cloud at time `s ∈ [0, 1]` between `x0` and `x1` along the exact
/// W2-optimal plan `P` (uniform weights):
///
/// ```text
/// { (1 − s) x0_i + s x1_j  with weight P_ij  :  P_ij > 0 }
/// ```
///
/// Returns the points and their weights (summing to one). This is the "exact OT
/// interpolation" reference of single-cell leave-one-out benchmarks.
///
/// # Errors
/// Empty or non-finite clouds, different dimensions, or `s` outside `[0, 1]`.
pub fn ot_interpolate(
    x0: ArrayView2<'_, f64>,
    x1: ArrayView2<'_, f64>,
    s: f64,
) -> Result<(Array2<f64>, Vec<f64>), EvalError> {
    if !(0.0..=1.0).contains(&s) {
        return Err(EvalError::ShapeMismatch(format!(
            "s must be in [0, 1], got {s}"
        )));
    }
    let cost = cost_matrix(x0, x1, Ground::SquaredEuclidean)?;
    let plan = emd(None, None, cost.view(), EmdOptions::default())?.plan;
    let d = x0.ncols();
    let mut points = Array2::zeros((plan.len(), d));
    let mut weights = Vec::with_capacity(plan.len());
    for (k, &(i, j, p)) in plan.iter().enumerate() {
        let mut row = points.row_mut(k);
        row.assign(&(&x0.row(i) * (1.0 - s) + &x1.row(j) * s));
        weights.push(p);
    }
    Ok((points, weights))
}

/// Exact W1 between a weighted cloud and a uniformly weighted one.
///
/// # Errors
/// As [`crate::w1`], or weights that do not match the points.
pub fn w1_weighted(
    a: ArrayView2<'_, f64>,
    weights_a: &[f64],
    b: ArrayView2<'_, f64>,
) -> Result<f64, EvalError> {
    weighted_cost(a, weights_a, b, Ground::Euclidean)
}

/// Exact W2 between a weighted cloud and a uniformly weighted one.
///
/// # Errors
/// As [`crate::w2`], or weights that do not match the points.
pub fn w2_weighted(
    a: ArrayView2<'_, f64>,
    weights_a: &[f64],
    b: ArrayView2<'_, f64>,
) -> Result<f64, EvalError> {
    Ok(weighted_cost(a, weights_a, b, Ground::SquaredEuclidean)?
        .max(0.0)
        .sqrt())
}

fn weighted_cost(
    a: ArrayView2<'_, f64>,
    weights_a: &[f64],
    b: ArrayView2<'_, f64>,
    ground: Ground,
) -> Result<f64, EvalError> {
    let cost = cost_matrix(a, b, ground)?;
    let total: f64 = weights_a.iter().sum();
    let uniform = vec![total / b.nrows() as f64; b.nrows()];
    Ok(emd(
        Some(weights_a),
        Some(&uniform),
        cost.view(),
        EmdOptions::default(),
    )?
    .cost
        / total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn midpoint_of_a_translation_is_the_translated_cloud() {
        let x0 = array![[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]];
        let x1 = &x0 + 2.0;
        let (mid, w) = ot_interpolate(x0.view(), x1.view(), 0.5).unwrap();
        assert_eq!(mid.nrows(), 3);
        assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        let d = w1_weighted(mid.view(), &w, (&x0 + 1.0).view()).unwrap();
        assert!(d.abs() < 1e-12, "{d}");
        // Against the unshifted cloud every point moves by (1, 1): W1 = W2 = √2.
        let d1 = w1_weighted(mid.view(), &w, x0.view()).unwrap();
        let d2 = w2_weighted(mid.view(), &w, x0.view()).unwrap();
        assert!((d1 - 2f64.sqrt()).abs() < 1e-12 && (d2 - 2f64.sqrt()).abs() < 1e-12);
    }
}
