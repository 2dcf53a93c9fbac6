//! Entropic optimal transport by Sinkhorn iterations in the log domain.

use ndarray::{Array2, ArrayView2};

use crate::EvalError;

/// Options for [`sinkhorn`].
#[derive(Clone, Copy, Debug)]
pub struct SinkhornOptions {
    /// Stop when the L1 error of the first marginal is below this. Defaults to 1e-9.
    pub tol: f64,
    /// Give up after this many iterations, reporting `converged: false`. Defaults to 100 000.
    pub max_iter: usize,
}

impl Default for SinkhornOptions {
    fn default() -> Self {
        Self {
            tol: 1e-9,
            max_iter: 100_000,
        }
    }
}

/// The entropic optimal plan and its potentials.
#[derive(Clone, Debug)]
pub struct EntropicTransport {
    /// The plan `P_ij = exp((f_i + g_j − C_ij)/reg)`.
    pub plan: Array2<f64>,
    /// `Σ_ij P_ij C_ij` (the transport cost of the plan, without the entropy term).
    pub cost: f64,
    /// The dual potentials `(f, g)`.
    pub potentials: (Vec<f64>, Vec<f64>),
    /// Iterations run (one iteration updates both potentials).
    pub iterations: usize,
    /// Whether the marginal error fell below `tol`.
    pub converged: bool,
    /// The final L1 error of the first marginal.
    pub marginal_error: f64,
}

/// Solves `min_P ⟨P, C⟩ − reg · H(P)` subject to the marginals `a` and `b` (uniform by
/// default), by alternating log-sum-exp updates, stable for small `reg`:
///
/// ```text
/// f_i = reg ln a_i − reg LSE_j((g_j − C_ij)/reg)
/// g_j = reg ln b_j − reg LSE_i((f_i − C_ij)/reg)
/// ```
///
/// # Errors
/// An empty or non-finite cost, `reg ≤ 0`, or invalid weights.
pub fn sinkhorn(
    a: Option<&[f64]>,
    b: Option<&[f64]>,
    cost: ArrayView2<'_, f64>,
    reg: f64,
    options: SinkhornOptions,
) -> Result<EntropicTransport, EvalError> {
    let (n, m) = cost.dim();
    crate::error::check_cost(cost)?;
    if !(reg > 0.0 && reg.is_finite()) {
        return Err(EvalError::ShapeMismatch(format!(
            "reg must be > 0, got {reg}"
        )));
    }
    let weights =
        |w: Option<&[f64]>, k: usize, name: &'static str| -> Result<Vec<f64>, EvalError> {
            let w = w.map_or_else(|| vec![1.0 / k as f64; k], <[f64]>::to_vec);
            if w.len() != k {
                return Err(EvalError::ShapeMismatch(format!(
                    "weights {name} have {} entries for {k} points",
                    w.len()
                )));
            }
            if let Some(row) = w.iter().position(|v| !(v.is_finite() && *v > 0.0)) {
                return Err(EvalError::NonFinite { what: name, row });
            }
            Ok(w)
        };
    let (a, b) = (weights(a, n, "a")?, weights(b, m, "b")?);
    let (log_a, log_b): (Vec<f64>, Vec<f64>) = (
        a.iter().map(|v| v.ln()).collect(),
        b.iter().map(|v| v.ln()).collect(),
    );
    let mut f = vec![0.0; n];
    let mut g = vec![0.0; m];
    let mut buf = vec![0.0; n.max(m)];
    let mut iterations = 0;
    let mut error = f64::INFINITY;
    while iterations < options.max_iter {
        for (i, fi) in f.iter_mut().enumerate() {
            for j in 0..m {
                buf[j] = (g[j] - cost[[i, j]]) / reg;
            }
            *fi = reg * (log_a[i] - log_sum_exp(&buf[..m]));
        }
        for (j, gj) in g.iter_mut().enumerate() {
            for i in 0..n {
                buf[i] = (f[i] - cost[[i, j]]) / reg;
            }
            *gj = reg * (log_b[j] - log_sum_exp(&buf[..n]));
        }
        iterations += 1;
        // After the g update the second marginal is exact; measure the first.
        if iterations % 10 == 0 || iterations == options.max_iter {
            error = (0..n)
                .map(|i| {
                    let row: f64 = (0..m)
                        .map(|j| ((f[i] + g[j] - cost[[i, j]]) / reg).exp())
                        .sum();
                    (row - a[i]).abs()
                })
                .sum();
            if error < options.tol {
                break;
            }
        }
    }
    let plan = Array2::from_shape_fn((n, m), |(i, j)| ((f[i] + g[j] - cost[[i, j]]) / reg).exp());
    let transport_cost = (&plan * &cost).sum();
    Ok(EntropicTransport {
        plan,
        cost: transport_cost,
        potentials: (f, g),
        iterations,
        converged: error < options.tol,
        marginal_error: error,
    })
}

fn log_sum_exp(v: &[f64]) -> f64 {
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY {
        return max;
    }
    max + v.iter().map(|x| (x - max).exp()).sum::<f64>().ln()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{cost_matrix, emd, EmdOptions, Ground};

    #[test]
    fn small_reg_approaches_exact_ot_and_marginals_hold() {
        let mut rng = sb_data::SbRng::new(2);
        let a = Array2::from_shape_fn((30, 2), |_| rng.normal());
        let b = Array2::from_shape_fn((40, 2), |_| rng.normal() + 1.0);
        let c = cost_matrix(a.view(), b.view(), Ground::SquaredEuclidean).unwrap();
        let exact = emd(None, None, c.view(), EmdOptions::default())
            .unwrap()
            .cost;
        let reg = 0.02;
        let e = sinkhorn(None, None, c.view(), reg, SinkhornOptions::default()).unwrap();
        assert!(e.converged, "error {}", e.marginal_error);
        // ⟨P_ε, C⟩ − ε H(P_ε) ≤ ⟨P*, C⟩ − ε H(P*) gives 0 ≤ ⟨P_ε, C⟩ − OT ≤ ε ln(nm).
        assert!(e.cost >= exact - 1e-9, "{} < exact {exact}", e.cost);
        assert!(
            e.cost - exact <= reg * 1200f64.ln(),
            "{} vs exact {exact}",
            e.cost
        );
        let cols = e.plan.sum_axis(ndarray::Axis(0));
        assert!(cols.iter().all(|v| (v - 1.0 / 40.0).abs() < 1e-12));
        // A larger regularisation spreads the plan: its cost rises.
        let wide = sinkhorn(None, None, c.view(), 1.0, SinkhornOptions::default()).unwrap();
        assert!(wide.cost > e.cost);
    }

    #[test]
    fn the_iteration_cap_is_reported() {
        let c = ndarray::array![[0.0, 1.0], [1.0, 0.0]];
        let e = sinkhorn(
            None,
            Some(&[0.9, 0.1]),
            c.view(),
            1e-3,
            SinkhornOptions {
                tol: 1e-300,
                max_iter: 3,
            },
        )
        .unwrap();
        assert!(!e.converged && e.iterations == 3);
    }
}
