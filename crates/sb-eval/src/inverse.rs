//! Linear-Gaussian inverse problems: the exact posterior that scores conditional bridges.
//!
//! `x ~ N(m, Σ)`, `y = A x + η`, `η ~ N(0, Γ)`. The posterior is Gaussian (SPEC §8):
//!
//! ```text
//! Σ_post = (Σ⁻¹ + AᵀΓ⁻¹A)⁻¹,    m_post(y) = Σ_post (Σ⁻¹ m + AᵀΓ⁻¹ y)
//! ```
//!
//! and the joint of `(x, y)` is `N([m, A m], [[Σ, ΣAᵀ], [AΣ, AΣAᵀ + Γ]])`.

use ndarray::{Array1, Array2, ArrayView1};

use crate::linalg::inv_pd;
use crate::EvalError;

/// A linear-Gaussian inverse problem with its exact posterior.
#[derive(Clone, Debug)]
pub struct LinearGaussian {
    mean: Array1<f64>,
    cov: Array2<f64>,
    operator: Array2<f64>,
    noise_cov: Array2<f64>,
    post_cov: Array2<f64>,
    /// `Σ_post Σ⁻¹ m`, the part of the posterior mean that does not depend on `y`.
    post_offset: Array1<f64>,
    /// `Σ_post AᵀΓ⁻¹`, the posterior mean's gain on `y`.
    gain: Array2<f64>,
}

impl LinearGaussian {
    /// The problem with prior `N(mean, cov)` (d coordinates), observation operator
    /// `operator` (m × d) and observation noise `N(0, noise_cov)` (m × m).
    ///
    /// # Errors
    /// Mismatched sizes, or a prior or noise covariance that is not positive definite.
    pub fn new(
        mean: Array1<f64>,
        cov: Array2<f64>,
        operator: Array2<f64>,
        noise_cov: Array2<f64>,
    ) -> Result<Self, EvalError> {
        let d = mean.len();
        let m = operator.nrows();
        if cov.dim() != (d, d) || operator.ncols() != d || noise_cov.dim() != (m, m) || m == 0 {
            return Err(EvalError::ShapeMismatch(format!(
                "a prior of {d} coordinates needs a {d}×{d} covariance and an m×{d} operator (m ≥ 1) \
                 with an m×m noise covariance; got {:?}, {:?} and {:?}",
                cov.dim(),
                operator.dim(),
                noise_cov.dim()
            )));
        }
        let cov_inv = inv_pd(&cov)?;
        let noise_inv = inv_pd(&noise_cov)?;
        let at_gi = operator.t().dot(&noise_inv);
        let post_cov = symmetric(inv_pd(&(&cov_inv + &at_gi.dot(&operator)))?);
        let post_offset = post_cov.dot(&cov_inv.dot(&mean));
        let gain = post_cov.dot(&at_gi);
        Ok(Self {
            mean,
            cov,
            operator,
            noise_cov,
            post_cov,
            post_offset,
            gain,
        })
    }

    /// The number of unknowns `d`.
    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// The number of observed values `m`.
    pub fn observation_dim(&self) -> usize {
        self.operator.nrows()
    }

    /// The observation operator `A` (m × d).
    pub fn operator(&self) -> &Array2<f64> {
        &self.operator
    }

    /// The prior `(m, Σ)`.
    pub fn prior(&self) -> (&Array1<f64>, &Array2<f64>) {
        (&self.mean, &self.cov)
    }

    /// The joint distribution of `[x, y]` (d + m coordinates): mean and covariance.
    pub fn joint(&self) -> (Array1<f64>, Array2<f64>) {
        let (d, m) = (self.dim(), self.observation_dim());
        let mut mean = Array1::zeros(d + m);
        mean.slice_mut(ndarray::s![..d]).assign(&self.mean);
        mean.slice_mut(ndarray::s![d..])
            .assign(&self.operator.dot(&self.mean));
        let sa = self.cov.dot(&self.operator.t());
        let mut cov = Array2::zeros((d + m, d + m));
        cov.slice_mut(ndarray::s![..d, ..d]).assign(&self.cov);
        cov.slice_mut(ndarray::s![..d, d..]).assign(&sa);
        cov.slice_mut(ndarray::s![d.., ..d]).assign(&sa.t());
        cov.slice_mut(ndarray::s![d.., d..])
            .assign(&(self.operator.dot(&sa) + &self.noise_cov));
        (mean, symmetric(cov))
    }

    /// The posterior covariance `Σ_post` (the same for every `y`).
    pub fn posterior_cov(&self) -> &Array2<f64> {
        &self.post_cov
    }

    /// The posterior mean `m_post(y)`.
    ///
    /// # Errors
    /// `y` without `m` entries.
    pub fn posterior_mean(&self, y: ArrayView1<'_, f64>) -> Result<Array1<f64>, EvalError> {
        if y.len() != self.observation_dim() {
            return Err(EvalError::ShapeMismatch(format!(
                "an observation has {} values, not {}",
                self.observation_dim(),
                y.len()
            )));
        }
        Ok(&self.post_offset + &self.gain.dot(&y))
    }
}

fn symmetric(a: Array2<f64>) -> Array2<f64> {
    let t = a.t().to_owned();
    (a + t) * 0.5
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, s};

    /// The posterior by conditioning the joint Gaussian directly (Schur complement):
    /// `m_x + Σ_xy Σ_yy⁻¹ (y − m_y)`, `Σ_xx − Σ_xy Σ_yy⁻¹ Σ_yx`.
    fn by_conditioning(p: &LinearGaussian, y: &Array1<f64>) -> (Array1<f64>, Array2<f64>) {
        let d = p.dim();
        let (mean, cov) = p.joint();
        let (sxx, sxy, syy) = (
            cov.slice(s![..d, ..d]).to_owned(),
            cov.slice(s![..d, d..]).to_owned(),
            cov.slice(s![d.., d..]).to_owned(),
        );
        let k = sxy.dot(&inv_pd(&syy).unwrap());
        let dy = y - &mean.slice(s![d..]);
        (&mean.slice(s![..d]) + &k.dot(&dy), &sxx - &k.dot(&sxy.t()))
    }

    fn close(a: &Array2<f64>, b: &Array2<f64>, tol: f64) -> bool {
        a.iter().zip(b).all(|(u, v)| (u - v).abs() < tol)
    }

    #[test]
    fn posterior_formulas_equal_direct_conditioning() {
        // d = 3 unknowns, m = 2 observations, correlated prior and noise.
        let p = LinearGaussian::new(
            array![0.5, -1.0, 2.0],
            array![[2.0, 0.3, 0.1], [0.3, 1.0, -0.2], [0.1, -0.2, 0.5]],
            array![[1.0, 0.5, 0.0], [0.0, -1.0, 2.0]],
            array![[0.2, 0.05], [0.05, 0.1]],
        )
        .unwrap();
        for y in [array![0.0, 0.0], array![1.5, -2.0], array![-3.0, 4.0]] {
            let (m_direct, c_direct) = by_conditioning(&p, &y);
            let m = p.posterior_mean(y.view()).unwrap();
            assert!(m.iter().zip(&m_direct).all(|(u, v)| (u - v).abs() < 1e-10));
            assert!(close(p.posterior_cov(), &c_direct, 1e-10));
        }
    }

    #[test]
    fn partial_observation_without_noise_pins_the_observed_coordinate() {
        // Observing x₁ with tiny noise leaves x₁ | y ≈ y and x₂ | y as the prior conditional.
        let p = LinearGaussian::new(
            array![0.0, 0.0],
            array![[1.0, 0.5], [0.5, 1.0]],
            array![[1.0, 0.0]],
            array![[1e-8]],
        )
        .unwrap();
        let m = p.posterior_mean(array![2.0].view()).unwrap();
        assert!((m[0] - 2.0).abs() < 1e-6 && (m[1] - 1.0).abs() < 1e-6);
        let c = p.posterior_cov();
        assert!(c[[0, 0]].abs() < 1e-6 && (c[[1, 1]] - 0.75).abs() < 1e-6);
    }

    #[test]
    fn mismatched_sizes_are_refused() {
        let e = LinearGaussian::new(
            array![0.0, 0.0],
            Array2::eye(2),
            array![[1.0, 0.0, 0.0]],
            array![[1.0]],
        );
        assert!(matches!(e, Err(EvalError::ShapeMismatch(_))));
    }
}
