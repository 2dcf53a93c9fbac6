//! LightSB (Korotin, Gushchin, Burnaev, ICLR 2024): the Schrödinger bridge with a Gaussian
//! mixture as its adjusted potential, fitted without simulation.
//!
//! ```text
//! v(y)      = Σ_k α_k N(y | r_k, ε S_k)                        (ε = σ², S_k = L_k L_kᵀ)
//! c(x)      = Σ_k α_k exp((xᵀ S_k x + 2 r_kᵀ x) / (2ε))
//! π(y | x)  = Σ_k γ_k(x) N(y | r_k + S_k x, ε S_k),  γ_k(x) ∝ α_k exp((xᵀ S_k x + 2 r_kᵀ x) / (2ε))
//! loss      = E_{x~π0} ln c(x) − E_{y~π1} ln v(y)               (KL(π* ‖ π_θ) up to a constant)
//! ```
//!
//! The bridge at time t is the Brownian bridge between a pair (x, y) of the plan, so samples
//! at any time, and whole trajectories, are exact given the fitted plan. With one
//! full-covariance component the family holds the exact solution between Gaussians.
//!
//! The gradients are written out (they are those of log-sum-exps of quadratic forms) and the
//! parameters are fitted in f64 by Adam: `K·B·d²` work per step, no autograd.

use ndarray::{s, Array1, Array2, Array3, ArrayView1, ArrayView2, Axis};
use sb_data::SbRng;
use serde::{Deserialize, Serialize};

use candle_core::Tensor;

use crate::sampler::{uniform_steps, Step};
use crate::solver::{Batch, BridgeSolver, ExactSampler, PassContext, TrainingSet};
use crate::{Direction, MethodError, Result};

fn default_components() -> usize {
    1
}
fn default_steps() -> usize {
    5000
}
fn default_lr() -> f64 {
    1e-2
}
fn default_batch() -> usize {
    512
}
fn default_num_steps() -> usize {
    20
}

/// The covariance family of the mixture components.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Covariance {
    /// `S_k` diagonal.
    Diagonal,
    /// `S_k = L_k L_kᵀ` with `L_k` lower triangular.
    #[default]
    Full,
}

/// LightSB's configuration (`kind: lightsb`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LightSbConfig {
    /// Mixture components K. Defaults to 1.
    #[serde(default = "default_components")]
    pub components: usize,
    /// Diagonal or full `S_k`. Defaults to `full`.
    #[serde(default)]
    pub covariance: Covariance,
    /// Adam steps per direction. Defaults to 5000.
    #[serde(default = "default_steps")]
    pub steps: usize,
    /// Adam's learning rate. Defaults to 1e-2.
    #[serde(default = "default_lr")]
    pub lr: f64,
    /// Points of each end per step. Defaults to 512.
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    /// Time points of a sampled trajectory (exact Brownian-bridge states, N + 1 of them).
    /// Defaults to 20.
    #[serde(default = "default_num_steps")]
    pub num_steps: usize,
}

impl Default for LightSbConfig {
    fn default() -> Self {
        Self {
            components: default_components(),
            covariance: Covariance::default(),
            steps: default_steps(),
            lr: default_lr(),
            batch_size: default_batch(),
            num_steps: default_num_steps(),
        }
    }
}

impl LightSbConfig {
    /// Checks every value; the error names the key under `method.`.
    ///
    /// # Errors
    /// The first invalid value.
    pub fn validate(&self) -> Result<()> {
        for (key, v) in [
            ("components", self.components),
            ("steps", self.steps),
            ("batch_size", self.batch_size),
            ("num_steps", self.num_steps),
        ] {
            if v == 0 {
                return Err(MethodError::Config(format!(
                    "method.{key} must be ≥ 1, got 0"
                )));
            }
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(MethodError::Config(format!(
                "method.lr must be > 0, got {}",
                self.lr
            )));
        }
        Ok(())
    }
}

/// The loss and its gradients with respect to `(ln α, r, L)`.
type LossAndGradients = (f64, Array1<f64>, Array2<f64>, Array3<f64>);

/// A fitted (or set) LightSB plan from one end to the other.
#[derive(Clone, Debug, PartialEq)]
pub struct LightSbPlan {
    /// ε = σ².
    pub epsilon: f64,
    /// `ln α_k`, shape `(K)` (only differences matter).
    pub log_alpha: Array1<f64>,
    /// `r_k`, shape `(K, d)`.
    pub r: Array2<f64>,
    /// `L_k`, lower triangular, shape `(K, d, d)`; `S_k = L_k L_kᵀ`.
    pub l: Array3<f64>,
}

fn log_sum_exp(v: ArrayView1<'_, f64>) -> f64 {
    let max = v.fold(f64::NEG_INFINITY, |a, &b| a.max(b));
    if !max.is_finite() {
        return max;
    }
    max + v.iter().map(|x| (x - max).exp()).sum::<f64>().ln()
}

/// Row-wise softmax of `(B, K)` logits, and the row log-sum-exps.
fn softmax_rows(logits: &Array2<f64>) -> (Array2<f64>, Array1<f64>) {
    let lse: Array1<f64> = logits.rows().into_iter().map(log_sum_exp).collect();
    let mut w = logits.clone();
    for (mut row, l) in w.rows_mut().into_iter().zip(&lse) {
        row.mapv_inplace(|v| (v - l).exp());
    }
    (w, lse)
}

/// The inverse and log-determinant of `S = L Lᵀ` from `L` (lower triangular).
fn inverse_from_cholesky(l: ArrayView2<'_, f64>) -> Result<(Array2<f64>, f64)> {
    let d = l.nrows();
    let mut log_det = 0.0;
    for i in 0..d {
        let v = l[[i, i]];
        if !(v.abs() > 0.0 && v.is_finite()) {
            return Err(MethodError::Config(format!(
                "LightSB: a covariance factor has diagonal entry {v}"
            )));
        }
        log_det += 2.0 * v.abs().ln();
    }
    // L⁻¹ by forward substitution, then S⁻¹ = L⁻ᵀ L⁻¹.
    let mut inv = Array2::<f64>::zeros((d, d));
    for j in 0..d {
        inv[[j, j]] = 1.0 / l[[j, j]];
        for i in j + 1..d {
            let mut acc = 0.0;
            for k in j..i {
                acc += l[[i, k]] * inv[[k, j]];
            }
            inv[[i, j]] = -acc / l[[i, i]];
        }
    }
    Ok((inv.t().dot(&inv), log_det))
}

impl LightSbPlan {
    /// The plan's dimension.
    pub fn dim(&self) -> usize {
        self.r.ncols()
    }

    /// `S_k = L_k L_kᵀ`.
    pub fn s(&self, k: usize) -> Array2<f64> {
        let l = self.l.slice(s![k, .., ..]);
        l.dot(&l.t())
    }

    /// The component logits of `π(· | x)` for the rows of `x`, `(B, K)`:
    /// `ln α_k + (xᵀ S_k x + 2 r_kᵀ x)/(2ε)`.
    fn plan_logits(&self, x: ArrayView2<'_, f64>) -> Array2<f64> {
        let k_count = self.log_alpha.len();
        let mut out = Array2::zeros((x.nrows(), k_count));
        for k in 0..k_count {
            // xᵀ S x = ‖Lᵀ x‖².
            let lx = x.dot(&self.l.slice(s![k, .., ..]));
            let lin = x.dot(&self.r.row(k));
            for b in 0..x.nrows() {
                let quad: f64 = lx.row(b).iter().map(|v| v * v).sum();
                out[[b, k]] = self.log_alpha[k] + (quad + 2.0 * lin[b]) / (2.0 * self.epsilon);
            }
        }
        out
    }

    /// The mixture weights `γ_k(x)` of `π(· | x)`, `(B, K)`.
    pub fn weights(&self, x: ArrayView2<'_, f64>) -> Array2<f64> {
        softmax_rows(&self.plan_logits(x)).0
    }

    /// The mean and covariance of `π(· | x)` for one point `x`.
    pub fn conditional_moments(&self, x: ArrayView1<'_, f64>) -> (Array1<f64>, Array2<f64>) {
        let d = self.dim();
        let gamma = self.weights(x.insert_axis(Axis(0)));
        let k_count = self.log_alpha.len();
        let means: Vec<Array1<f64>> = (0..k_count)
            .map(|k| &self.r.row(k) + &self.s(k).dot(&x))
            .collect();
        let mut mean = Array1::zeros(d);
        for (k, m) in means.iter().enumerate() {
            mean.scaled_add(gamma[[0, k]], m);
        }
        let mut cov = Array2::zeros((d, d));
        for (k, m) in means.iter().enumerate() {
            let g = gamma[[0, k]];
            let dev = m - &mean;
            cov.scaled_add(g * self.epsilon, &self.s(k));
            let outer = dev
                .view()
                .insert_axis(Axis(1))
                .dot(&dev.view().insert_axis(Axis(0)));
            cov.scaled_add(g, &outer);
        }
        (mean, cov)
    }

    /// Draws `y ~ π(· | x)` for each row of `x`.
    pub fn sample(&self, x: ArrayView2<'_, f64>, rng: &mut SbRng) -> Array2<f64> {
        let d = self.dim();
        let gamma = self.weights(x);
        let sqrt_eps = self.epsilon.sqrt();
        let mut out = Array2::zeros((x.nrows(), d));
        for b in 0..x.nrows() {
            let k = rng.categorical(gamma.row(b).as_slice().expect("rows are contiguous"));
            let l = self.l.slice(s![k, .., ..]);
            let z = Array1::from(rng.normal_f64(d));
            // r + S x + √ε L z: L Lᵀ x = L (Lᵀ x).
            let y = &self.r.row(k) + &l.dot(&l.t().dot(&x.row(b))) + &(l.dot(&z) * sqrt_eps);
            out.row_mut(b).assign(&y);
        }
        out
    }

    /// The loss `mean ln c(x) − mean ln v(y)` and its gradients with respect to
    /// `(ln α, r, L)` (L's restricted to the lower triangle, or the diagonal).
    fn loss_and_gradients(
        &self,
        x: ArrayView2<'_, f64>,
        y: ArrayView2<'_, f64>,
        covariance: Covariance,
    ) -> Result<LossAndGradients> {
        let (k_count, d) = self.r.dim();
        let eps = self.epsilon;
        let (bx, by) = (x.nrows() as f64, y.nrows() as f64);
        let (gamma, lse_c) = softmax_rows(&self.plan_logits(x));
        // ln v(y): component log densities of N(r_k, ε S_k).
        let mut logits_v = Array2::zeros((y.nrows(), k_count));
        let mut precisions = Vec::with_capacity(k_count);
        let log_2pi_eps = (2.0 * std::f64::consts::PI * eps).ln();
        for k in 0..k_count {
            let (p, log_det) = inverse_from_cholesky(self.l.slice(s![k, .., ..]))?;
            let u = &y - &self.r.row(k);
            let pu = u.dot(&p);
            for b in 0..y.nrows() {
                let q: f64 = u.row(b).dot(&pu.row(b));
                logits_v[[b, k]] =
                    self.log_alpha[k] - 0.5 * (d as f64 * log_2pi_eps + log_det) - q / (2.0 * eps);
            }
            precisions.push((p, pu));
        }
        let (beta, lse_v) = softmax_rows(&logits_v);
        let loss = lse_c.sum() / bx - lse_v.sum() / by;

        let g_alpha = gamma.sum_axis(Axis(0)) / bx - beta.sum_axis(Axis(0)) / by;
        let mut g_r = Array2::zeros((k_count, d));
        let mut g_l = Array3::zeros((k_count, d, d));
        for (k, (p, pu)) in precisions.iter().enumerate() {
            let gk = gamma.column(k);
            let bk = beta.column(k);
            // ∂/∂r_k = E[γ_k x]/ε − E[β_k P_k (y − r_k)]/ε
            let gr = x.t().dot(&gk) / (bx * eps) - pu.t().dot(&bk) / (by * eps);
            g_r.row_mut(k).assign(&gr);
            // ∂/∂S_k = E[γ_k x xᵀ]/(2ε) + ½ E[β_k] P_k − P_k E[β_k u uᵀ] P_k/(2ε)
            let xw = &x * &gk.insert_axis(Axis(1));
            let mut g_s = x.t().dot(&xw) / (2.0 * eps * bx);
            g_s.scaled_add(0.5 * bk.sum() / by, p);
            let puw = pu * &bk.insert_axis(Axis(1));
            g_s.scaled_add(-1.0 / (2.0 * eps * by), &pu.t().dot(&puw));
            // S = L Lᵀ with G symmetric: ∂/∂L = 2 G L, kept on L's free entries.
            let mut gl = g_s.dot(&self.l.slice(s![k, .., ..])) * 2.0;
            for i in 0..d {
                for j in 0..d {
                    let free = match covariance {
                        Covariance::Full => j <= i,
                        Covariance::Diagonal => j == i,
                    };
                    if !free {
                        gl[[i, j]] = 0.0;
                    }
                }
            }
            g_l.slice_mut(s![k, .., ..]).assign(&gl);
        }
        Ok((loss, g_alpha, g_r, g_l))
    }
}

/// Adam's moments for one parameter array, flattened.
struct Moments {
    m: Vec<f64>,
    v: Vec<f64>,
}

impl Moments {
    fn new(n: usize) -> Self {
        Self {
            m: vec![0.0; n],
            v: vec![0.0; n],
        }
    }

    fn step<'a>(
        &mut self,
        params: impl Iterator<Item = &'a mut f64>,
        grads: impl Iterator<Item = f64>,
        lr: f64,
        t: i32,
    ) {
        let (b1, b2, eps): (f64, f64, f64) = (0.9, 0.999, 1e-8);
        let (c1, c2) = (1.0 - b1.powi(t), 1.0 - b2.powi(t));
        for (((p, g), m), v) in params
            .zip(grads)
            .zip(self.m.iter_mut())
            .zip(self.v.iter_mut())
        {
            *m = b1 * *m + (1.0 - b1) * g;
            *v = b2 * *v + (1.0 - b2) * g * g;
            *p -= lr * (*m / c1) / ((*v / c2).sqrt() + eps);
        }
    }
}

/// What a fit reports at the end.
#[derive(Clone, Debug)]
pub struct FitReport {
    /// The loss of the last step's batch.
    pub final_loss: f64,
    /// Steps run.
    pub steps: usize,
}

/// Fits the plan from `source` to `target` by Adam on the LightSB objective, drawing a
/// batch of each end from the given point sets every step (with replacement).
///
/// # Errors
/// As [`fit_with`].
pub fn fit(
    config: &LightSbConfig,
    sigma: f64,
    source: ArrayView2<'_, f64>,
    target: ArrayView2<'_, f64>,
    rng: &mut SbRng,
) -> Result<(LightSbPlan, FitReport)> {
    if source.nrows() == 0 || target.nrows() == 0 {
        return Err(MethodError::Config(
            "LightSB needs two non-empty point sets".into(),
        ));
    }
    fit_with(
        config,
        sigma,
        |n: usize, rng: &mut SbRng| pick_rows(source, n, rng),
        |n: usize, rng: &mut SbRng| pick_rows(target, n, rng),
        rng,
    )
}

/// `n` rows of `set` drawn with replacement.
fn pick_rows(set: ArrayView2<'_, f64>, n: usize, rng: &mut SbRng) -> Array2<f64> {
    let rows: Vec<usize> = (0..n).map(|_| rng.below(set.nrows())).collect();
    set.select(Axis(0), &rows)
}

/// Fits the plan from the distribution `source` samples to the one `target` samples by Adam
/// on the LightSB objective, with a fresh batch of each end every step.
///
/// Initialisation as in the authors' code: `r_k` at random target points, `S_k = I`, equal
/// weights.
///
/// # Errors
/// An invalid configuration, empty or mismatched point sets, σ ≤ 0, or a non-finite loss.
pub fn fit_with(
    config: &LightSbConfig,
    sigma: f64,
    mut source: impl FnMut(usize, &mut SbRng) -> Array2<f64>,
    mut target: impl FnMut(usize, &mut SbRng) -> Array2<f64>,
    rng: &mut SbRng,
) -> Result<(LightSbPlan, FitReport)> {
    config.validate()?;
    if !(sigma > 0.0 && sigma.is_finite()) {
        return Err(MethodError::Config(format!(
            "sigma must be > 0 for LightSB, got {sigma}"
        )));
    }
    let init = target(config.components, rng);
    let d = init.ncols();
    let k_count = config.components;
    let mut plan = LightSbPlan {
        epsilon: sigma * sigma,
        log_alpha: Array1::from_elem(k_count, -(k_count as f64).ln()),
        r: init,
        l: Array3::from_shape_fn((k_count, d, d), |(_, i, j)| f64::from(u8::from(i == j))),
    };
    let (mut ma, mut mr, mut ml) = (
        Moments::new(k_count),
        Moments::new(k_count * d),
        Moments::new(k_count * d * d),
    );
    let mut final_loss = f64::NAN;
    for step in 0..config.steps {
        let (x, y) = (
            source(config.batch_size, rng),
            target(config.batch_size, rng),
        );
        if x.ncols() != d || y.ncols() != d {
            return Err(MethodError::Config(format!(
                "LightSB: the two ends have dimensions {} and {}",
                x.ncols(),
                y.ncols()
            )));
        }
        let (loss, ga, gr, gl) = plan.loss_and_gradients(x.view(), y.view(), config.covariance)?;
        if !loss.is_finite() {
            return Err(MethodError::Config(format!(
                "LightSB diverged at step {}: the loss is {loss} (try a smaller method.lr)",
                step + 1
            )));
        }
        final_loss = loss;
        let t = i32::try_from(step + 1).unwrap_or(i32::MAX);
        ma.step(plan.log_alpha.iter_mut(), ga.iter().copied(), config.lr, t);
        mr.step(plan.r.iter_mut(), gr.iter().copied(), config.lr, t);
        ml.step(plan.l.iter_mut(), gl.iter().copied(), config.lr, t);
    }
    Ok((
        plan,
        FitReport {
            final_loss,
            steps: config.steps,
        },
    ))
}

/// A point of each Brownian bridge from `x` to `y` at time `t` (rows paired).
pub fn bridge_at(
    x: ArrayView2<'_, f64>,
    y: ArrayView2<'_, f64>,
    t: f64,
    sigma: f64,
    rng: &mut SbRng,
) -> Array2<f64> {
    let std = sigma * (t * (1.0 - t)).sqrt();
    let mut out = &x * (1.0 - t) + &y * t;
    out.zip_mut_with(
        &Array2::from_shape_vec(x.dim(), rng.normal_f64(x.len())).expect("sizes agree"),
        |o, z| *o += std * z,
    );
    out
}

/// LightSB as a solver of the runner (`kind: lightsb`): it fits a forward plan (π0 → π1) and
/// a backward plan (π1 → π0) in [`BridgeSolver::fit_exact`] and trains no networks.
#[derive(Clone, Debug)]
pub struct LightSb {
    config: LightSbConfig,
    sigma: f64,
}

impl LightSb {
    /// The solver for a reference `dX = σ dW`.
    ///
    /// # Errors
    /// An invalid configuration or σ ≤ 0.
    pub fn new(config: &LightSbConfig, sigma: f64) -> Result<Self> {
        config.validate()?;
        if !(sigma > 0.0 && sigma.is_finite()) {
            return Err(MethodError::Config(format!(
                "sigma must be > 0 for LightSB, got {sigma}"
            )));
        }
        Ok(Self {
            config: config.clone(),
            sigma,
        })
    }
}

/// The two fitted plans of a LightSB bridge.
#[derive(Clone, Debug, PartialEq)]
pub struct LightSbBridge {
    /// `π(x1 | x0)`.
    pub forward: LightSbPlan,
    /// `π(x0 | x1)`.
    pub backward: LightSbPlan,
    /// The reference's σ.
    pub sigma: f64,
}

/// The file a LightSB bridge is saved to, in a model directory.
pub const LIGHTSB_FILE: &str = "lightsb.json";

#[derive(Serialize, Deserialize)]
struct SavedPlan {
    epsilon: f64,
    log_alpha: Vec<f64>,
    r: Vec<Vec<f64>>,
    l: Vec<Vec<Vec<f64>>>,
}

#[derive(Serialize, Deserialize)]
struct SavedBridge {
    sigma: f64,
    forward: SavedPlan,
    backward: SavedPlan,
}

impl SavedPlan {
    fn of(p: &LightSbPlan) -> Self {
        Self {
            epsilon: p.epsilon,
            log_alpha: p.log_alpha.to_vec(),
            r: p.r.rows().into_iter().map(|r| r.to_vec()).collect(),
            l: p.l
                .outer_iter()
                .map(|m| m.rows().into_iter().map(|r| r.to_vec()).collect())
                .collect(),
        }
    }

    fn plan(self) -> Result<LightSbPlan> {
        let k = self.log_alpha.len();
        let d = self.r.first().map_or(0, Vec::len);
        let bad = || MethodError::Config(format!("{LIGHTSB_FILE}: arrays of inconsistent sizes"));
        let r = Array2::from_shape_vec((k, d), self.r.concat()).map_err(|_| bad())?;
        let flat: Vec<f64> = self.l.into_iter().flatten().flatten().collect();
        let l = Array3::from_shape_vec((k, d, d), flat).map_err(|_| bad())?;
        Ok(LightSbPlan {
            epsilon: self.epsilon,
            log_alpha: Array1::from(self.log_alpha),
            r,
            l,
        })
    }
}

impl LightSbBridge {
    /// Reads a bridge written by [`ExactSampler::save`].
    ///
    /// # Errors
    /// An unreadable or malformed file.
    pub fn load(dir: &std::path::Path) -> Result<Self> {
        let path = dir.join(LIGHTSB_FILE);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| MethodError::Config(format!("cannot read {}: {e}", path.display())))?;
        let saved: SavedBridge = serde_json::from_str(&text)
            .map_err(|e| MethodError::Config(format!("{}: {e}", path.display())))?;
        Ok(Self {
            sigma: saved.sigma,
            forward: saved.forward.plan()?,
            backward: saved.backward.plan()?,
        })
    }
}

impl ExactSampler for LightSbBridge {
    fn sigma(&self) -> f64 {
        self.sigma
    }

    fn end(
        &self,
        direction: Direction,
        start: ArrayView2<'_, f64>,
        rng: &mut SbRng,
    ) -> Array2<f64> {
        match direction {
            Direction::Forward => self.forward.sample(start, rng),
            Direction::Backward => self.backward.sample(start, rng),
        }
    }

    fn save(&self, dir: &std::path::Path) -> Result<()> {
        let saved = SavedBridge {
            sigma: self.sigma,
            forward: SavedPlan::of(&self.forward),
            backward: SavedPlan::of(&self.backward),
        };
        let path = dir.join(LIGHTSB_FILE);
        let text = serde_json::to_string(&saved).expect("plain numbers serialise");
        std::fs::write(&path, text)
            .map_err(|e| MethodError::Config(format!("cannot write {}: {e}", path.display())))
    }
}

impl BridgeSolver for LightSb {
    fn name(&self, _passes: usize) -> String {
        "LightSB".into()
    }

    fn params(&self) -> Vec<(String, String)> {
        let c = &self.config;
        vec![
            ("components".into(), c.components.to_string()),
            (
                "covariance".into(),
                match c.covariance {
                    Covariance::Full => "full".into(),
                    Covariance::Diagonal => "diagonal".into(),
                },
            ),
            ("fit_steps".into(), c.steps.to_string()),
            ("fit_lr".into(), c.lr.to_string()),
            ("fit_batch_size".into(), c.batch_size.to_string()),
            ("num_steps".into(), c.num_steps.to_string()),
        ]
    }

    fn first_direction(&self) -> Direction {
        Direction::Forward
    }

    fn steps(&self, direction: Direction) -> Vec<Step> {
        // The time grid of sampled trajectories: the states are exact bridge points.
        uniform_steps(self.config.num_steps, direction, self.sigma)
    }

    fn steps_with(&self, direction: Direction, n: usize) -> Option<Vec<Step>> {
        Some(uniform_steps(n, direction, self.sigma))
    }

    fn reference_drift(&self, _direction: Direction, x: &Tensor, _step: &Step) -> Result<Tensor> {
        Ok(x.zeros_like()?)
    }

    fn training_set(&self, _ctx: &PassContext<'_>, _rng: &mut SbRng) -> Result<TrainingSet> {
        Err(MethodError::Config(
            "LightSB is fitted without passes (BridgeSolver::fit_exact)".into(),
        ))
    }

    fn batch(
        &self,
        _set: &TrainingSet,
        _direction: Direction,
        _rows: &[usize],
        _rng: &mut SbRng,
    ) -> Result<Batch> {
        Err(MethodError::Config(
            "LightSB is fitted without passes (BridgeSolver::fit_exact)".into(),
        ))
    }

    fn fit_exact(
        &self,
        pi0: &sb_data::Source,
        pi1: &sb_data::Source,
        rng: &mut SbRng,
    ) -> Option<Result<Box<dyn ExactSampler>>> {
        let mut fitted = || -> Result<Box<dyn ExactSampler>> {
            let (forward, _) = fit_with(
                &self.config,
                self.sigma,
                |n: usize, rng: &mut SbRng| pi0.sample(n, rng),
                |n: usize, rng: &mut SbRng| pi1.sample(n, rng),
                rng,
            )?;
            let (backward, _) = fit_with(
                &self.config,
                self.sigma,
                |n: usize, rng: &mut SbRng| pi1.sample(n, rng),
                |n: usize, rng: &mut SbRng| pi0.sample(n, rng),
                rng,
            )?;
            Ok(Box::new(LightSbBridge {
                forward,
                backward,
                sigma: self.sigma,
            }))
        };
        Some(fitted())
    }

    fn load_exact(&self, dir: &std::path::Path) -> Option<Result<Box<dyn ExactSampler>>> {
        Some(LightSbBridge::load(dir).map(|b| Box::new(b) as Box<dyn ExactSampler>))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sb_eval::GaussianBridge;

    fn rotated(d: usize, seed: u64) -> Array2<f64> {
        let mut rng = SbRng::new(seed);
        let a = Array2::from_shape_fn((d, d), |_| rng.normal());
        a.dot(&a.t()) / d as f64 + Array2::<f64>::eye(d) * 0.5
    }

    /// The closed-form solution set as parameters: `S = Cᵀ Σ0⁻¹`, `r = μ1 − S μ0`.
    fn exact_plan(
        bridge: &GaussianBridge,
        mu0: &Array1<f64>,
        mu1: &Array1<f64>,
        s0: &Array2<f64>,
        eps: f64,
    ) -> LightSbPlan {
        let d = mu0.len();
        let p0 = sb_eval::linalg::inv_pd(s0).unwrap();
        let s = bridge.cross_covariance().t().dot(&p0);
        let s = (&s + &s.t()) * 0.5;
        // Cholesky of S.
        let mut l = Array2::<f64>::zeros((d, d));
        for i in 0..d {
            for j in 0..=i {
                let mut acc = s[[i, j]];
                for k in 0..j {
                    acc -= l[[i, k]] * l[[j, k]];
                }
                l[[i, j]] = if i == j { acc.sqrt() } else { acc / l[[j, j]] };
            }
        }
        let r = mu1 - &s.dot(mu0);
        LightSbPlan {
            epsilon: eps,
            log_alpha: Array1::zeros(1),
            r: r.insert_axis(Axis(0)),
            l: l.insert_axis(Axis(0)),
        }
    }

    #[test]
    fn the_exact_parameters_give_the_closed_form_conditionals() {
        for (d, eps) in [(2, 1.0), (5, 0.1), (16, 10.0)] {
            let (s0, s1) = (rotated(d, 1), rotated(d, 2));
            let mu0 = Array1::from_shape_fn(d, |i| 0.1 * i as f64);
            let mu1 = Array1::from_shape_fn(d, |i| -0.2 * i as f64 + 1.0);
            let bridge =
                GaussianBridge::new(mu0.clone(), s0.clone(), mu1.clone(), s1.clone(), eps).unwrap();
            let plan = exact_plan(&bridge, &mu0, &mu1, &s0, eps);
            let mut rng = SbRng::new(4);
            for _ in 0..5 {
                let x = Array1::from(rng.normal_f64(d));
                let (m, c) = plan.conditional_moments(x.view());
                let (want_m, want_c) = bridge.conditional(x.view());
                let dm = (&m - &want_m)
                    .mapv(f64::abs)
                    .fold(0.0, |a: f64, &b| a.max(b));
                let dc = (&c - &want_c)
                    .mapv(f64::abs)
                    .fold(0.0, |a: f64, &b| a.max(b));
                assert!(
                    dm < 1e-3 && dc < 1e-3,
                    "d = {d}, ε = {eps}: mean {dm:e}, cov {dc:e}"
                );
            }
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        let d = 3;
        let mut rng = SbRng::new(9);
        let x = Array2::from_shape_vec((40, d), rng.normal_f64(40 * d)).unwrap();
        let y = Array2::from_shape_vec((30, d), rng.normal_f64(30 * d)).unwrap() + 0.5;
        let plan = LightSbPlan {
            epsilon: 0.7,
            log_alpha: Array1::from(vec![0.1, -0.3]),
            r: Array2::from_shape_vec((2, d), rng.normal_f64(2 * d)).unwrap(),
            l: Array3::from_shape_fn((2, d, d), |(_, i, j)| match i.cmp(&j) {
                std::cmp::Ordering::Equal => 1.0 + 0.1 * i as f64,
                std::cmp::Ordering::Greater => 0.2,
                std::cmp::Ordering::Less => 0.0,
            }),
        };
        let (_, ga, gr, gl) = plan
            .loss_and_gradients(x.view(), y.view(), Covariance::Full)
            .unwrap();
        let loss = |p: &LightSbPlan| {
            p.loss_and_gradients(x.view(), y.view(), Covariance::Full)
                .unwrap()
                .0
        };
        let h = 1e-6;
        let check = |analytic: f64, numeric: f64, what: &str| {
            assert!(
                (analytic - numeric).abs() < 1e-5 * (1.0 + numeric.abs()),
                "{what}: {analytic} vs {numeric}"
            );
        };
        for k in 0..2 {
            let mut p = plan.clone();
            p.log_alpha[k] += h;
            check(ga[k], (loss(&p) - loss(&plan)) / h, "alpha");
            for i in 0..d {
                let mut p = plan.clone();
                p.r[[k, i]] += h;
                let mut q = plan.clone();
                q.r[[k, i]] -= h;
                check(gr[[k, i]], (loss(&p) - loss(&q)) / (2.0 * h), "r");
                for j in 0..=i {
                    let mut p = plan.clone();
                    p.l[[k, i, j]] += h;
                    let mut q = plan.clone();
                    q.l[[k, i, j]] -= h;
                    check(gl[[k, i, j]], (loss(&p) - loss(&q)) / (2.0 * h), "L");
                }
            }
        }
    }
}
