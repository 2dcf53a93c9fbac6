//! The Bures–Wasserstein family: BW2²-UVP, cBW2²-UVP, and the Gaussian KL divergence.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2};

use crate::linalg::{inv_pd, log_det_pd, sqrt_psd};
use crate::summary::{covariance, mean};
use crate::EvalError;

/// The squared Bures–Wasserstein distance, W2² between `N(m1, s1)` and `N(m2, s2)`, halved:
///
/// ```text
/// BW2² = ½‖m1 − m2‖² + ½ tr s1 + ½ tr s2 − tr (s1^½ s2 s1^½)^½
/// ```
///
/// # Errors
/// Mismatched sizes or non-finite entries.
pub fn bw2_squared(
    m1: ArrayView1<'_, f64>,
    s1: &Array2<f64>,
    m2: ArrayView1<'_, f64>,
    s2: &Array2<f64>,
) -> Result<f64, EvalError> {
    check_gaussians(m1, s1, m2, s2)?;
    let r1 = sqrt_psd(s1)?;
    let cross = sqrt_psd(&r1.dot(s2).dot(&r1))?;
    let dm = &m1 - &m2;
    Ok(0.5 * dm.dot(&dm) + 0.5 * s1.diag().sum() + 0.5 * s2.diag().sum() - cross.diag().sum())
}

/// BW2²-UVP in percent of samples against `N(mu, cov)`: mean and unbiased covariance are
/// fitted to the samples, then
///
/// ```text
/// BW2²-UVP = 100 · BW2²(N(μ̂, Σ̂), N(μ, Σ)) / (½ tr Σ)
/// ```
///
/// # Errors
/// Fewer than two samples, non-finite values, mismatched sizes, or `tr Σ = 0`.
pub fn bw2_uvp(
    samples: ArrayView2<'_, f64>,
    mu: ArrayView1<'_, f64>,
    cov: &Array2<f64>,
) -> Result<f64, EvalError> {
    check_covariance(cov)?;
    let (m, s) = (mean(samples)?, covariance(samples)?);
    uvp(m.view(), &s, mu, cov)
}

/// A target covariance must be square, symmetric and positive semi-definite (to rounding:
/// eigenvalues ≥ −1e-10 × the largest magnitude).
fn check_covariance(cov: &Array2<f64>) -> Result<(), EvalError> {
    let (r, c) = cov.dim();
    if r != c {
        return Err(EvalError::ShapeMismatch(format!(
            "the target covariance is {r}×{c}, not square"
        )));
    }
    let scale = cov.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    for i in 0..r {
        for j in 0..i {
            if (cov[[i, j]] - cov[[j, i]]).abs() > 1e-9 * scale.max(f64::MIN_POSITIVE) {
                return Err(EvalError::Invalid(format!(
                    "the target covariance is not symmetric: entry ({}, {}) is {} but ({}, {}) is {}",
                    i + 1,
                    j + 1,
                    cov[[i, j]],
                    j + 1,
                    i + 1,
                    cov[[j, i]]
                )));
            }
        }
    }
    let (eigenvalues, _) = crate::linalg::sym_eigen(cov)?;
    let largest = eigenvalues.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    let smallest = eigenvalues.iter().copied().fold(f64::INFINITY, f64::min);
    if smallest < -1e-10 * largest {
        return Err(EvalError::Invalid(format!(
            "the target covariance is not positive semi-definite: its smallest eigenvalue is {smallest:.6e}"
        )));
    }
    Ok(())
}

/// BW2²-UVP in percent of samples against a Gaussian fitted to `target` samples.
///
/// # Errors
/// As [`bw2_uvp`], for either cloud.
pub fn bw2_uvp_samples(
    samples: ArrayView2<'_, f64>,
    target: ArrayView2<'_, f64>,
) -> Result<f64, EvalError> {
    let (mu, cov) = (mean(target)?, covariance(target)?);
    bw2_uvp(samples, mu.view(), &cov)
}

fn uvp(
    m: ArrayView1<'_, f64>,
    s: &Array2<f64>,
    mu: ArrayView1<'_, f64>,
    cov: &Array2<f64>,
) -> Result<f64, EvalError> {
    let half_trace = 0.5 * cov.diag().sum();
    if half_trace <= 0.0 {
        return Err(EvalError::ShapeMismatch(
            "the target covariance has zero trace".into(),
        ));
    }
    Ok(100.0 * bw2_squared(m, s, mu, cov)? / half_trace)
}

/// cBW2²-UVP in percent: for each conditioning input, samples of `X1 | X0 = x` from a
/// model against the exact conditional `N(mean_x, cov_x)`; BW2² averaged over inputs,
/// divided by `½ tr Var(π1)`, times 100.
///
/// `conditionals[k]` is `(samples, exact mean, exact covariance)` for input `k`.
///
/// # Errors
/// No inputs, `tr Var(π1) ≤ 0`, or any error of the per-input BW2².
pub fn cbw2_uvp(
    conditionals: &[(ArrayView2<'_, f64>, ArrayView1<'_, f64>, &Array2<f64>)],
    target_var_trace: f64,
) -> Result<f64, EvalError> {
    if conditionals.is_empty() {
        return Err(EvalError::EmptyInput("the list of conditioning inputs"));
    }
    if !(target_var_trace > 0.0 && target_var_trace.is_finite()) {
        return Err(EvalError::ShapeMismatch(format!(
            "tr Var(π1) must be > 0, got {target_var_trace}"
        )));
    }
    let mut total = 0.0;
    for (samples, m, c) in conditionals {
        let (mh, sh) = (mean(*samples)?, covariance(*samples)?);
        total += bw2_squared(mh.view(), &sh, *m, c)?;
    }
    Ok(100.0 * total / conditionals.len() as f64 / (0.5 * target_var_trace))
}

/// `KL(N(m1, s1) ‖ N(m2, s2))`:
///
/// ```text
/// ½ [ tr(s2⁻¹ s1) + (m2 − m1)ᵀ s2⁻¹ (m2 − m1) − d + ln det s2 − ln det s1 ]
/// ```
///
/// # Errors
/// Mismatched sizes, or a covariance that is not positive definite.
pub fn gaussian_kl(
    m1: ArrayView1<'_, f64>,
    s1: &Array2<f64>,
    m2: ArrayView1<'_, f64>,
    s2: &Array2<f64>,
) -> Result<f64, EvalError> {
    let d = check_gaussians(m1, s1, m2, s2)?;
    let s2_inv = inv_pd(s2)?;
    let dm: Array1<f64> = &m2 - &m1;
    let trace = s2_inv.dot(s1).diag().sum();
    Ok(0.5 * (trace + dm.dot(&s2_inv.dot(&dm)) - d as f64 + log_det_pd(s2)? - log_det_pd(s1)?))
}

/// Checks that two Gaussians have one dimension; returns it.
fn check_gaussians(
    m1: ArrayView1<'_, f64>,
    s1: &Array2<f64>,
    m2: ArrayView1<'_, f64>,
    s2: &Array2<f64>,
) -> Result<usize, EvalError> {
    let d = m1.len();
    if m2.len() != d || s1.dim() != (d, d) || s2.dim() != (d, d) {
        return Err(EvalError::ShapeMismatch(format!(
            "means of length {d} and {}, covariances {:?} and {:?}",
            m2.len(),
            s1.dim(),
            s2.dim()
        )));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn zero_against_itself_and_mean_shift_alone() {
        let s = array![[2.0, 0.3], [0.3, 1.0]];
        let m = array![1.0, -1.0];
        assert!(bw2_squared(m.view(), &s, m.view(), &s).unwrap().abs() < 1e-12);
        assert!(gaussian_kl(m.view(), &s, m.view(), &s).unwrap().abs() < 1e-12);
        let m2 = array![2.0, -1.0];
        assert!((bw2_squared(m.view(), &s, m2.view(), &s).unwrap() - 0.5).abs() < 1e-12);
    }
}
