//! Entropic optimal transport by Sinkhorn iterations in the log domain.

use ndarray::{Array2, ArrayView2, Axis};
use rayon::prelude::*;

use crate::EvalError;

/// Options for [`sinkhorn`].
#[derive(Clone, Copy, Debug)]
pub struct SinkhornOptions {
    /// Stop when the L1 error of the first marginal is below this. Defaults to 1e-9.
    pub tol: f64,
    /// Give up after this many iterations, reporting `converged: false`. Defaults to 100 000.
    pub max_iter: usize,
    /// ε-scaling: when the largest cost exceeds [`EPS_SCALING_FROM`] · `reg`, solve first at a
    /// regularisation of the cost's scale and divide it by [`EPS_SCALING_FACTOR`] level by
    /// level down to `reg`, each level starting from the previous one's potentials. Defaults to
    /// true. The answer is the same (the last level runs to `tol` at `reg`); at small `reg` it
    /// needs far fewer iterations.
    pub eps_scaling: bool,
}

impl Default for SinkhornOptions {
    fn default() -> Self {
        Self {
            tol: 1e-9,
            max_iter: 100_000,
            eps_scaling: true,
        }
    }
}

/// How much the regularisation shrinks from one ε-scaling level to the next.
pub const EPS_SCALING_FACTOR: f64 = 4.0;

/// ε-scaling applies when the largest cost exceeds this many `reg` (below it plain iterations
/// converge fast and the levels cost more than they save: measured on the POT fixtures).
pub const EPS_SCALING_FROM: f64 = 500.0;

/// The marginal error at which an intermediate ε-scaling level stops (the last level runs to
/// `tol`).
const LEVEL_TOL: f64 = 1e-3;

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
/// default). The iterations are those of log-domain Sinkhorn,
///
/// ```text
/// f_i = reg ln a_i − reg LSE_j((g_j − C_ij)/reg)
/// g_j = reg ln b_j − reg LSE_i((f_i − C_ij)/reg)
/// ```
///
/// computed as scalings of the kernel `exp((f_i + g_j − C_ij)/reg)` with the scalings
/// absorbed into `(f, g)` whenever they leave `[e^-50, e^50]` (stabilised Sinkhorn,
/// Schmitzer 2019): stable for small `reg`, with no exponential inside the loop.
///
/// Stopping rule: after each iteration the second marginal is exact, and the solver stops
/// when the first marginal's L1 error `Σ_i |Σ_j P_ij − a_i|` is below `tol` (or after
/// `max_iter` iterations, reported as `converged: false`). With `eps_scaling`, when the largest
/// cost `R` exceeds `500 · reg`, the iterations run on a decreasing sequence
/// `reg_k = max(reg, R / 4^(k+1))`, each level to an error of 1e-3 but the last, which runs to
/// `tol`; `iterations` counts them all.
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
        return Err(EvalError::Invalid(format!("reg must be > 0, got {reg}")));
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
    crate::memory::ensure_fits(
        &format!("the Sinkhorn kernel of {n} × {m} points"),
        (n as u64).saturating_mul(m as u64).saturating_mul(8),
    )?;
    let mut level = Level {
        cost,
        a: &a,
        b: &b,
        log_a: &log_a,
        log_b: &log_b,
        kernel: Array2::zeros((n, m)),
        buf: vec![0.0; n.max(m)],
    };
    let mut regs = Vec::new();
    let largest = cost.iter().fold(0.0f64, |acc, v| acc.max(v.abs()));
    if options.eps_scaling && largest > EPS_SCALING_FROM * reg {
        let mut r = largest / EPS_SCALING_FACTOR;
        while r > reg {
            regs.push(r);
            r /= EPS_SCALING_FACTOR;
        }
    }
    regs.push(reg);
    let mut iterations = 0;
    let mut error = f64::INFINITY;
    for (k, &r) in regs.iter().enumerate() {
        let last = k + 1 == regs.len();
        let tol = if last {
            options.tol
        } else {
            options.tol.max(LEVEL_TOL)
        };
        let (done, e) = level.solve(r, &mut f, &mut g, tol, options.max_iter - iterations);
        iterations += done;
        error = e;
        if iterations >= options.max_iter {
            break;
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

/// One regularisation level of [`sinkhorn`]: the problem's data and the kernel's storage.
struct Level<'c> {
    cost: ArrayView2<'c, f64>,
    a: &'c [f64],
    b: &'c [f64],
    log_a: &'c [f64],
    log_b: &'c [f64],
    kernel: Array2<f64>,
    buf: Vec<f64>,
}

impl Level<'_> {
    /// Stabilised Sinkhorn at `reg` from the potentials `(f, g)`, until the first marginal's
    /// L1 error is below `tol` or `max_iter` iterations; returns the iterations and the error.
    fn solve(
        &mut self,
        reg: f64,
        f: &mut [f64],
        g: &mut [f64],
        tol: f64,
        max_iter: usize,
    ) -> (usize, f64) {
        let (cost, a, b, log_a, log_b) = (self.cost, self.a, self.b, self.log_a, self.log_b);
        let (n, m) = cost.dim();

        // One exact log-domain iteration: afterwards every column of the kernel below holds an
        // entry of at least b_j / n, whatever the scale of cost / reg.
        log_domain_iteration(cost, reg, log_a, log_b, f, g, &mut self.buf);
        let mut iterations = 1;
        let mut error = f64::INFINITY;
        // Then scaling iterations on the kernel K_ij = exp((f_i + g_j − C_ij)/reg): u = a / K v,
        // v = b / Kᵀu, matrix–vector products without exponentials. When a scaling leaves
        // [e^-ABSORB, e^ABSORB] it is absorbed into the potentials and the kernel rebuilt; a
        // product that underflows to zero falls back to one log-domain iteration.
        const ABSORB: f64 = 50.0;
        let kernel = &mut self.kernel;
        let mut rebuild = true;
        let (mut u, mut v) = (vec![1.0; n], vec![1.0; m]);
        let (mut kv, mut ktu) = (vec![0.0; n], vec![0.0; m]);
        let mut partials = Vec::new();
        // Whether `kv` holds K v for the current kernel and v (the error's product is the next
        // u update's: one product saved per iteration).
        let mut fresh = false;
        while iterations < max_iter {
            if rebuild {
                rebuild_kernel(kernel, cost, f, g, reg);
                u.fill(1.0);
                v.fill(1.0);
                rebuild = false;
                fresh = false;
            }
            if !fresh {
                kernel_times(kernel, &v, &mut kv);
            }
            for ((ui, kvi), ai) in u.iter_mut().zip(&kv).zip(a) {
                *ui = ai / kvi;
            }
            kernel_t_times(kernel, &u, &mut partials, &mut ktu);
            for (vj, (kt, bj)) in v.iter_mut().zip(ktu.iter().zip(b)) {
                *vj = bj / kt;
            }
            iterations += 1;
            let finite = u.iter().chain(&v).all(|x| x.is_finite() && *x > 0.0);
            if !finite {
                // Undo this iteration's scalings and take an exact step instead.
                log_domain_iteration(cost, reg, log_a, log_b, f, g, &mut self.buf);
                rebuild = true;
                continue;
            }
            // The second marginal is exact after the v update; measure the first.
            kernel_times(kernel, &v, &mut kv);
            fresh = true;
            error = u
                .iter()
                .zip(&kv)
                .zip(a)
                .map(|((ui, kvi), ai)| (ui * kvi - ai).abs())
                .sum();
            let converged = error < tol;
            let out_of_range = u.iter().chain(&v).any(|x| x.ln().abs() > ABSORB);
            if converged || out_of_range || iterations == max_iter {
                for (fi, ui) in f.iter_mut().zip(&u) {
                    *fi += reg * ui.ln();
                }
                for (gj, vj) in g.iter_mut().zip(&v) {
                    *gj += reg * vj.ln();
                }
                rebuild = true;
            }
            if converged {
                break;
            }
        }
        (iterations, error)
    }
}

/// Rows per task of the kernel products: fixed, so the sums (and the results) do not depend
/// on the number of threads.
const ROWS_PER_TASK: usize = 64;

/// Kernel entries from which the products run on rayon's threads (below, one thread runs the
/// same arithmetic).
const PARALLEL_FROM: usize = 1 << 18;

/// `K_ij = exp((f_i + g_j − C_ij)/reg)`, rows in parallel for large kernels.
fn rebuild_kernel(
    kernel: &mut Array2<f64>,
    cost: ArrayView2<'_, f64>,
    f: &[f64],
    g: &[f64],
    reg: f64,
) {
    let fill = |(i, mut row): (usize, ndarray::ArrayViewMut1<'_, f64>)| {
        for (j, k) in row.iter_mut().enumerate() {
            *k = ((f[i] + g[j] - cost[[i, j]]) / reg).exp();
        }
    };
    if kernel.len() >= PARALLEL_FROM {
        kernel
            .axis_iter_mut(Axis(0))
            .into_par_iter()
            .enumerate()
            .for_each(fill);
    } else {
        kernel.axis_iter_mut(Axis(0)).enumerate().for_each(fill);
    }
}

/// `out = K v`, each entry one row's sum in order.
fn kernel_times(kernel: &Array2<f64>, v: &[f64], out: &mut [f64]) {
    let row_dot = |(i, o): (usize, &mut f64)| {
        *o = kernel.row(i).iter().zip(v).map(|(k, vj)| k * vj).sum();
    };
    if kernel.len() >= PARALLEL_FROM {
        out.par_iter_mut()
            .enumerate()
            .with_min_len(ROWS_PER_TASK)
            .for_each(row_dot);
    } else {
        out.iter_mut().enumerate().for_each(row_dot);
    }
}

/// `out = Kᵀ u`: partial sums over fixed blocks of [`ROWS_PER_TASK`] rows (in parallel for
/// large kernels), then the blocks' sums in block order.
fn kernel_t_times(kernel: &Array2<f64>, u: &[f64], partials: &mut Vec<f64>, out: &mut [f64]) {
    let (n, m) = kernel.dim();
    let blocks = n.div_ceil(ROWS_PER_TASK);
    partials.clear();
    partials.resize(blocks * m, 0.0);
    let block_sum = |(c, acc): (usize, &mut [f64])| {
        let rows = c * ROWS_PER_TASK..((c + 1) * ROWS_PER_TASK).min(n);
        for i in rows {
            let ui = u[i];
            for (a, k) in acc.iter_mut().zip(kernel.row(i)) {
                *a += k * ui;
            }
        }
    };
    if kernel.len() >= PARALLEL_FROM {
        partials.par_chunks_mut(m).enumerate().for_each(block_sum);
        let partials = &*partials;
        out.par_iter_mut()
            .enumerate()
            .with_min_len(256)
            .for_each(|(j, o)| {
                *o = (0..blocks).map(|c| partials[c * m + j]).sum();
            });
    } else {
        partials.chunks_mut(m).enumerate().for_each(block_sum);
        let partials = &*partials;
        out.iter_mut().enumerate().for_each(|(j, o)| {
            *o = (0..blocks).map(|c| partials[c * m + j]).sum();
        });
    }
}

/// One Sinkhorn iteration in the log domain, exact for any `cost / reg`:
/// `f_i = reg ln a_i − reg LSE_j((g_j − C_ij)/reg)`, then the same for `g`.
fn log_domain_iteration(
    cost: ArrayView2<'_, f64>,
    reg: f64,
    log_a: &[f64],
    log_b: &[f64],
    f: &mut [f64],
    g: &mut [f64],
    buf: &mut [f64],
) {
    let (n, m) = cost.dim();
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
                ..SinkhornOptions::default()
            },
        )
        .unwrap();
        assert!(!e.converged && e.iterations == 3);
    }
}
