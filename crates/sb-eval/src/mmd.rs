use ndarray::ArrayView2;

use crate::error::check_pair;
use crate::EvalError;

/// The (biased, V-statistic) squared maximum mean discrepancy with the Gaussian kernel
/// `k(x, y) = exp(−‖x − y‖² / (2 h²))` of bandwidth `h`:
///
/// ```text
/// MMD² = mean k(a, a') + mean k(b, b') − 2 mean k(a, b)
/// ```
///
/// # Errors
/// Empty or non-finite clouds, different dimensions, or `h ≤ 0`.
pub fn mmd_rbf(a: ArrayView2<'_, f64>, b: ArrayView2<'_, f64>, h: f64) -> Result<f64, EvalError> {
    check_pair(a, b)?;
    if !(h > 0.0 && h.is_finite()) {
        return Err(EvalError::ShapeMismatch(format!(
            "bandwidth must be > 0, got {h}"
        )));
    }
    let mean_k = |x: ArrayView2<'_, f64>, y: ArrayView2<'_, f64>| {
        let mut s = 0.0;
        for xi in x.rows() {
            for yj in y.rows() {
                let d2: f64 = xi.iter().zip(yj).map(|(p, q)| (p - q) * (p - q)).sum();
                s += (-d2 / (2.0 * h * h)).exp();
            }
        }
        s / (x.nrows() * y.nrows()) as f64
    };
    Ok(mean_k(a, a) + mean_k(b, b) - 2.0 * mean_k(a, b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn zero_on_identical_and_positive_apart() {
        let a = array![[0.0, 0.0], [1.0, 0.5]];
        assert!(mmd_rbf(a.view(), a.view(), 1.0).unwrap().abs() < 1e-15);
        let b = &a + 3.0;
        assert!(mmd_rbf(a.view(), b.view(), 1.0).unwrap() > 0.5);
    }
}
