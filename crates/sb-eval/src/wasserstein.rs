//! Exact W1 and W2 between empirical clouds, on top of the network simplex.

use ndarray::parallel::prelude::*;
use ndarray::{Array2, ArrayView2, Axis};

use crate::error::check_pair;
use crate::simplex::{emd, EmdOptions, Transport};
use crate::EvalError;

/// The ground cost between points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ground {
    /// `‖x − y‖` (for W1).
    Euclidean,
    /// `‖x − y‖²` (for W2).
    SquaredEuclidean,
}

/// The cost matrix `C_ij = c(a_i, b_j)`.
///
/// # Errors
/// Empty or non-finite clouds, or different dimensions.
pub fn cost_matrix(
    a: ArrayView2<'_, f64>,
    b: ArrayView2<'_, f64>,
    ground: Ground,
) -> Result<Array2<f64>, EvalError> {
    check_pair(a, b)?;
    let (n, m) = (a.nrows(), b.nrows());
    crate::memory::ensure_fits(
        &format!("the exact-OT cost matrix of {n} × {m} points"),
        (n as u64).saturating_mul(m as u64).saturating_mul(8),
    )?;
    let mut c = Array2::<f64>::zeros((n, m));
    // Rows in parallel: every entry is computed alone, so the numbers never depend on the
    // number of threads.
    c.axis_iter_mut(Axis(0))
        .into_par_iter()
        .zip(a.axis_iter(Axis(0)).into_par_iter())
        .for_each(|(mut row, x)| {
            for (c, y) in row.iter_mut().zip(b.outer_iter()) {
                let d2: f64 = x.iter().zip(&y).map(|(x, y)| (x - y) * (x - y)).sum();
                *c = match ground {
                    Ground::Euclidean => d2.sqrt(),
                    Ground::SquaredEuclidean => d2,
                };
            }
        });
    Ok(c)
}

/// The most pairs `n·m` for which [`w1`] and [`w2`] build the dense cost matrix (18 MB);
/// above it, costs computed from the points with candidate pricing ([`crate::emd_points`])
/// are faster. Measured with `examples/w1_timing.rs` at d = 5: n = m = 1000, dense 0.027 s
/// against 0.032 s; 2000, 0.199 s against 0.123 s; 4000, 1.10 s against 0.38 s (d = 64: 1.69 s
/// against 0.70 s).
pub const DENSE_MAX_PAIRS: u64 = 2_250_000;

/// Exact OT between uniformly weighted clouds, with the faster of the two cost storages: the
/// dense matrix up to [`DENSE_MAX_PAIRS`] pairs, costs computed from the points above (memory
/// `O((n + m)·(d + k))`, no `n × m` array). Both give the optimal cost; `Transport::costs`
/// says which ran.
///
/// # Errors
/// Empty or non-finite clouds, or different dimensions.
pub fn exact(
    a: ArrayView2<'_, f64>,
    b: ArrayView2<'_, f64>,
    ground: Ground,
) -> Result<Transport, EvalError> {
    check_pair(a, b)?;
    let pairs = (a.nrows() as u64).saturating_mul(b.nrows() as u64);
    if pairs <= DENSE_MAX_PAIRS {
        let c = cost_matrix(a, b, ground)?;
        emd(None, None, c.view(), EmdOptions::default())
    } else {
        crate::simplex::emd_points(a, b, ground, EmdOptions::default())
    }
}

/// A Wasserstein distance with the transport that gives it.
#[derive(Clone, Debug)]
pub struct Distance {
    /// The distance (W1, or the root of the optimal squared cost for W2).
    pub value: f64,
    /// The optimal transport (cost, plan, potentials, convergence).
    pub transport: Transport,
}

/// Exact W1 between two clouds with uniform weights (sizes may differ).
///
/// ```text
/// W1(a, b) = min_P Σ_ij P_ij ‖a_i − b_j‖
/// ```
///
/// # Errors
/// Empty or non-finite clouds, or different dimensions.
pub fn w1(a: ArrayView2<'_, f64>, b: ArrayView2<'_, f64>) -> Result<Distance, EvalError> {
    let transport = exact(a, b, Ground::Euclidean)?;
    Ok(Distance {
        value: transport.cost,
        transport,
    })
}

/// Exact W2 between two clouds with uniform weights (sizes may differ).
///
/// ```text
/// W2(a, b) = ( min_P Σ_ij P_ij ‖a_i − b_j‖² )^½
/// ```
///
/// # Errors
/// Empty or non-finite clouds, or different dimensions.
pub fn w2(a: ArrayView2<'_, f64>, b: ArrayView2<'_, f64>) -> Result<Distance, EvalError> {
    let transport = exact(a, b, Ground::SquaredEuclidean)?;
    Ok(Distance {
        value: transport.cost.max(0.0).sqrt(),
        transport,
    })
}
