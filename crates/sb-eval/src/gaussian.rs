//! The closed-form Schrödinger bridge between two Gaussians (ground truth for benchmarks).
//!
//! For π0 = N(μ0, Σ0), π1 = N(μ1, Σ1) and a Brownian reference of variance ε per unit time:
//!
//! ```text
//! D   = (4 Σ0^½ Σ1 Σ0^½ + ε² I)^½
//! C   = ½ (Σ0^½ D Σ0^-½ − ε I)                     the plan's cross-covariance
//! μ_t = (1−t) μ0 + t μ1
//! Σ_t = (1−t)² Σ0 + t² Σ1 + t(1−t)(C + Cᵀ) + ε t(1−t) I
//! X1 | X0 = x  ~  N(μ1 + Cᵀ Σ0⁻¹ (x − μ0),  Σ1 − Cᵀ Σ0⁻¹ C)
//! ```
//!
//! Matrix square roots come from symmetric eigendecompositions, with tiny negative
//! eigenvalues clamped.

use ndarray::{concatenate, s, Array1, Array2, ArrayView1, Axis};
use sb_data::SbRng;

use crate::linalg::{inv_pd, inv_sqrt_pd, sqrt_psd};
use crate::EvalError;

/// The Gaussian Schrödinger bridge, with its static plan and marginals.
#[derive(Clone, Debug)]
pub struct GaussianBridge {
    mu0: Array1<f64>,
    mu1: Array1<f64>,
    sigma0: Array2<f64>,
    sigma1: Array2<f64>,
    eps: f64,
    c: Array2<f64>,
    sigma0_inv: Array2<f64>,
}

impl GaussianBridge {
    /// The bridge between `N(mu0, sigma0)` and `N(mu1, sigma1)` with reference variance `eps`.
    ///
    /// # Errors
    /// Mismatched sizes, `eps ≤ 0`, or `sigma0` not positive definite.
    pub fn new(
        mu0: Array1<f64>,
        sigma0: Array2<f64>,
        mu1: Array1<f64>,
        sigma1: Array2<f64>,
        eps: f64,
    ) -> Result<Self, EvalError> {
        let d = mu0.len();
        if mu1.len() != d || sigma0.dim() != (d, d) || sigma1.dim() != (d, d) {
            return Err(EvalError::ShapeMismatch(format!(
                "means of length {} and {}, covariances {:?} and {:?}",
                d,
                mu1.len(),
                sigma0.dim(),
                sigma1.dim()
            )));
        }
        if !(eps > 0.0 && eps.is_finite()) {
            return Err(EvalError::ShapeMismatch(format!(
                "ε must be > 0, got {eps}"
            )));
        }
        let s0h = sqrt_psd(&sigma0)?;
        let s0ih = inv_sqrt_pd(&sigma0)?;
        let inner = s0h.dot(&sigma1).dot(&s0h) * 4.0 + Array2::<f64>::eye(d) * (eps * eps);
        let dm = sqrt_psd(&inner)?;
        let c = (s0h.dot(&dm).dot(&s0ih) - Array2::<f64>::eye(d) * eps) * 0.5;
        let sigma0_inv = inv_pd(&sigma0)?;
        Ok(Self {
            mu0,
            mu1,
            sigma0,
            sigma1,
            eps,
            c,
            sigma0_inv,
        })
    }

    /// The dimension.
    pub fn dim(&self) -> usize {
        self.mu0.len()
    }

    /// The cross-covariance `C = Cov(X0, X1)` of the optimal plan.
    pub fn cross_covariance(&self) -> &Array2<f64> {
        &self.c
    }

    /// The covariance `[[Σ0, C], [Cᵀ, Σ1]]` of the plan `(X0, X1)`.
    pub fn plan_covariance(&self) -> Array2<f64> {
        let top = concatenate(Axis(1), &[self.sigma0.view(), self.c.view()]).expect("d×d blocks");
        let ct = self.c.t().to_owned();
        let bottom = concatenate(Axis(1), &[ct.view(), self.sigma1.view()]).expect("d×d blocks");
        concatenate(Axis(0), &[top.view(), bottom.view()]).expect("d×2d blocks")
    }

    /// Mean and covariance of the bridge's marginal at time `t ∈ [0, 1]`.
    pub fn marginal(&self, t: f64) -> (Array1<f64>, Array2<f64>) {
        let d = self.dim();
        let mean = &self.mu0 * (1.0 - t) + &self.mu1 * t;
        let cov = &self.sigma0 * (1.0 - t).powi(2)
            + &self.sigma1 * (t * t)
            + (&self.c + &self.c.t()) * (t * (1.0 - t))
            + Array2::<f64>::eye(d) * (self.eps * t * (1.0 - t));
        (mean, cov)
    }

    /// Mean and covariance of `X1 | X0 = x`.
    pub fn conditional(&self, x: ArrayView1<'_, f64>) -> (Array1<f64>, Array2<f64>) {
        let gain = self.c.t().dot(&self.sigma0_inv);
        let mean = &self.mu1 + &gain.dot(&(&x - &self.mu0));
        let cov = &self.sigma1 - &gain.dot(&self.c);
        (mean, cov)
    }

    /// `n` exact draws of the marginal at time `t`.
    ///
    /// # Errors
    /// A covariance that is not positive semi-definite (cannot happen for valid inputs).
    pub fn sample_marginal(
        &self,
        t: f64,
        n: usize,
        rng: &mut SbRng,
    ) -> Result<Array2<f64>, EvalError> {
        let (mean, cov) = self.marginal(t);
        gaussian_draws(&mean, &cov, n, rng)
    }

    /// `n` exact draws `(X0, X1)` of the optimal plan.
    ///
    /// # Errors
    /// As [`GaussianBridge::sample_marginal`].
    pub fn sample_plan(
        &self,
        n: usize,
        rng: &mut SbRng,
    ) -> Result<(Array2<f64>, Array2<f64>), EvalError> {
        let mean = concatenate(Axis(0), &[self.mu0.view(), self.mu1.view()]).expect("vectors");
        let joint = gaussian_draws(&mean, &self.plan_covariance(), n, rng)?;
        let d = self.dim();
        Ok((
            joint.slice(s![.., ..d]).to_owned(),
            joint.slice(s![.., d..]).to_owned(),
        ))
    }
}

/// `n` draws of `N(mean, cov)` through the symmetric square root of `cov`.
///
/// # Errors
/// A non-finite covariance.
pub fn gaussian_draws(
    mean: &Array1<f64>,
    cov: &Array2<f64>,
    n: usize,
    rng: &mut SbRng,
) -> Result<Array2<f64>, EvalError> {
    let root = sqrt_psd(cov)?;
    let d = mean.len();
    let z = Array2::from_shape_vec((n, d), rng.normal_f64(n * d)).expect("n·d draws");
    Ok(z.dot(&root) + mean)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isotropic_case_is_the_golden_ratio_at_unit_eps() {
        let d = 3;
        let g = GaussianBridge::new(
            Array1::zeros(d),
            Array2::eye(d),
            Array1::zeros(d),
            Array2::eye(d),
            1.0,
        )
        .unwrap();
        let want = 0.5 * (5f64.sqrt() - 1.0);
        for ((i, j), v) in g.cross_covariance().indexed_iter() {
            let w = if i == j { want } else { 0.0 };
            assert!((v - w).abs() < 1e-12, "C[{i},{j}] = {v}");
        }
    }
}
