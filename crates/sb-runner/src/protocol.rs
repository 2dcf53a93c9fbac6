//! Evaluation protocols: what is measured after training, beyond generated-against-true
//! samples — the closed-form Gaussian metrics (G1, G2) and leave-one-out interpolation
//! with its reference rows (S1, S2).

use std::path::Path;

use ndarray::{s, Array1, Array2, ArrayView2, Axis};
use sb_data::{SbRng, Source, Split, TimeCourse};
use sb_eval::{gaussian_kl, GaussianBridge};
use sb_methods::sampler::state_times;
use sb_methods::tensor::to_f32;
use sb_methods::{Direction, TrainedBridge};

use crate::experiment::{EvalConfig, Experiment, Metric, Problem, Sigma};
use crate::jobs::Reference;
use crate::{Result, RunnerError};

/// What a problem's data are, loaded once per run.
// One value per problem, held for the whole run: the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum ProblemData {
    /// Two distributions, and the closed-form bridge when a metric needs it.
    Pair {
        /// π0 (its training points when split).
        pi0: Source,
        /// π1 (its training points when split).
        pi1: Source,
        /// The split data sets of π0 and π1, for the ends that are split.
        splits: Box<[Option<Split>; 2]>,
        /// The closed-form Gaussian bridge (both ends Gaussian, a Gaussian metric asked for).
        truth: Option<Box<GaussianBridge>>,
        /// The reference's σ (`auto` resolved from the training data).
        sigma: f64,
        /// An inverse problem's posterior and observations (π0 is then the joint of
        /// `[x, y]`, π1 the reference of `x` beside a placeholder `y`).
        inverse: Option<Box<crate::inverse::InverseData>>,
        /// A labelled π0's classifier (`labels`).
        classes: Option<Box<crate::images::Classes>>,
    },
    /// A time course for leave-one-out.
    Course(TimeCourse),
}

/// One held-out time of a leave-one-out problem.
pub struct Part {
    /// The observed time before the held-out one.
    pub before: f64,
    /// The observed time after it.
    pub after: f64,
    /// Where the held-out time lies in `[before, after]`, as a fraction.
    pub fraction: f64,
    /// The cells at `before` (π0 of the bridge).
    pub start: Array2<f64>,
    /// The cells at `after` (π1 of the bridge).
    pub end: Array2<f64>,
    /// The held-out cells.
    pub truth: Array2<f64>,
}

impl Part {
    /// Splits `course` around `held_out`.
    ///
    /// # Errors
    /// The time is not observed, or has no observed time on one side.
    pub fn new(course: &TimeCourse, held_out: f64) -> std::result::Result<Self, String> {
        let times = course.times();
        let truth = course.at(held_out).map_err(|e| e.to_string())?;
        let before = times.iter().copied().rev().find(|t| *t < held_out);
        let after = times.iter().copied().find(|t| *t > held_out);
        let (Some(before), Some(after)) = (before, after) else {
            return Err(format!(
                "held-out time {held_out} needs an observed time on each side; the times are {times:?}"
            ));
        };
        Ok(Self {
            before,
            after,
            fraction: (held_out - before) / (after - before),
            start: course.at(before).map_err(|e| e.to_string())?,
            end: course.at(after).map_err(|e| e.to_string())?,
            truth,
        })
    }
}

/// Loads (or simulates) every problem's data, checking dimensions and held-out times.
///
/// # Errors
/// Unreadable data, mismatched dimensions, or a held-out time without neighbours, naming
/// the file and the key.
pub fn load(exp: &Experiment, file: &Path) -> Result<Vec<ProblemData>> {
    exp.problems
        .iter()
        .enumerate()
        .map(|(i, p)| load_one(exp, exp.problem_key(i), p, file))
        .collect()
}

/// Points drawn from a source that is not data to measure its spread for `sigma: auto`.
const AUTO_DRAWS: usize = 10_000;

/// Per-coordinate variances of a source: of its points, or of [`AUTO_DRAWS`] draws from a
/// fixed stream (so `auto` gives the same σ on every run).
pub fn coordinate_variances(source: &Source) -> Array1<f64> {
    let drawn;
    let x = match source.points() {
        Some(p) => p,
        None => {
            drawn = source.sample(AUTO_DRAWS, &mut SbRng::stream(0, AUTO_STREAM));
            &drawn
        }
    };
    x.var_axis(Axis(0), if x.nrows() > 1 { 1.0 } else { 0.0 })
}

/// The stream of [`coordinate_variances`]' draws (distinct from every job's streams).
const AUTO_STREAM: u64 = 0x5157_4100;

/// The mean over coordinates of the smaller of the two ends' variances: the data's own
/// per-coordinate variance that `sigma: auto` and the σ warning compare with.
pub fn typical_variance(pi0: &Source, pi1: &Source) -> f64 {
    let (v0, v1) = (coordinate_variances(pi0), coordinate_variances(pi1));
    v0.iter().zip(&v1).map(|(a, b)| a.min(*b)).sum::<f64>() / v0.len().max(1) as f64
}

/// `sigma: auto`: `σ = ½ · √v`, with `v` the [`typical_variance`] of the two ends. The
/// bridge's own noise at mid-interval, `σ² t (1 − t) = σ²/4` per coordinate, is then a
/// sixteenth of the data's variance: the reference is diffuse enough to regularise the
/// coupling and narrow enough not to blur the marginals (docs/methods.md has the sweeps
/// behind the rule).
///
/// # Errors
/// Ends without spread (every coordinate constant).
pub fn auto_sigma(pi0: &Source, pi1: &Source) -> std::result::Result<f64, String> {
    let v = typical_variance(pi0, pi1);
    let sigma = 0.5 * v.sqrt();
    if sigma > 0.0 && sigma.is_finite() {
        Ok(sigma)
    } else {
        Err(format!(
            "sigma: auto measures the data's spread, but the ends have none (typical variance {v}); give sigma a value"
        ))
    }
}

/// The σ of a problem between `pi0` and `pi1` (its training ends): its value, or
/// [`auto_sigma`].
///
/// # Errors
/// As [`auto_sigma`].
pub fn resolve_sigma(sigma: Sigma, pi0: &Source, pi1: &Source) -> std::result::Result<f64, String> {
    match sigma {
        Sigma::Value(v) => Ok(v),
        Sigma::Auto => auto_sigma(pi0, pi1),
    }
}

fn load_one(exp: &Experiment, i: usize, p: &Problem, file: &Path) -> Result<ProblemData> {
    let bad = |message: String| RunnerError::Config {
        file: file.to_path_buf(),
        message,
    };
    if let Some(loo) = &p.leave_one_out {
        if let sb_data::CourseSpec::File { data, .. } = &loo.course {
            if !data.exists() {
                return Err(bad(format!(
                    "problems[{i}].leave_one_out.course: {}: no such file (relative paths are read from the experiment file's folder); point `data` and `labels` at the course's files",
                    data.display()
                )));
            }
        }
        let course = loo
            .course
            .load()
            .map_err(|e| bad(format!("problems[{i}].leave_one_out.course: {e}")))?;
        for t in &loo.held_out {
            Part::new(&course, *t)
                .map_err(|e| bad(format!("problems[{i}].leave_one_out.held_out: {e}")))?;
        }
        return Ok(ProblemData::Course(course));
    }
    if let Some(spec) = &p.inverse {
        let (data, pi0, pi1) = crate::inverse::load(spec, exp.eval.cond_inputs)
            .map_err(|e| bad(format!("problems[{i}].{e}")))?;
        let sigma = p
            .sigma
            .value()
            .expect("validated: an inverse problem has a σ value");
        return Ok(ProblemData::Pair {
            pi0,
            pi1,
            splits: Box::new([None, None]),
            truth: None,
            sigma,
            inverse: Some(Box::new(data)),
            classes: None,
        });
    }
    let (Some(d0), Some(d1)) = (&p.pi0, &p.pi1) else {
        unreachable!("validated: a problem has pi0 and pi1, or leave_one_out");
    };
    let load = |key: &str, d: &sb_data::Distribution| {
        d.load()
            .map_err(|e| bad(format!("problems[{i}].{key}: {e}")))
    };
    let (mut pi0, mut pi1) = (load("pi0", d0)?, load("pi1", d1)?);
    let pi0_rows = pi0.points().map_or(0, ndarray::ArrayBase::nrows);
    let mut splits = [None, None];
    if let Some(spec) = &p.split {
        for (k, (key, d, source)) in [("pi0", d0, &mut pi0), ("pi1", d1, &mut pi1)]
            .into_iter()
            .enumerate()
        {
            if is_prior(d) {
                continue;
            }
            // Stream k of the split's seed: π0 and π1 get independent data sets.
            let split = spec
                .apply(source, k as u64)
                .map_err(|e| bad(format!("problems[{i}].{key} with problems[{i}].{e}")))?;
            *source = Source::empirical(split.train.clone());
            splits[k] = Some(split);
        }
        if splits.iter().all(Option::is_none) {
            return Err(bad(format!(
                "problems[{i}].split: pi0 and pi1 are both priors (gaussian or mixture), so there is no data set to split"
            )));
        }
    }
    if exp.metrics_for(p).contains(&Metric::W2Train) {
        let block = |k: usize| {
            splits[k]
                .as_ref()
                .map_or(exp.eval.samples, |s| s.test.nrows())
        };
        let (have, want) = (
            exp.eval.blocks * block(0).min(block(1)),
            exp.eval.train_points,
        );
        if have < want {
            return Err(bad(format!(
                "problems[{i}]: w2_train needs eval.train_points = {want} generated points but the {} evaluation block(s) give {have}; raise eval.blocks",
                exp.eval.blocks
            )));
        }
    }
    if pi0.dim() != pi1.dim() {
        return Err(bad(format!(
            "problems[{i}]: pi0 has dimension {} but pi1 has dimension {}",
            pi0.dim(),
            pi1.dim()
        )));
    }
    let sigma =
        resolve_sigma(p.sigma, &pi0, &pi1).map_err(|e| bad(format!("problems[{i}].{e}")))?;
    let classes = match (&p.labels, &splits[0]) {
        (Some(labels), Some(split)) => Some(Box::new(
            crate::images::Classes::load(labels, pi0_rows, split)
                .map_err(|e| bad(format!("problems[{i}].labels: {e}")))?,
        )),
        _ => None,
    };
    let truth = if exp.metrics_for(p).iter().any(|m| m.needs_gaussians()) {
        let params = |d: &sb_data::Distribution| {
            d.gaussian_parameters()
                .ok()
                .flatten()
                .expect("validated: Gaussian metrics have Gaussian ends")
        };
        let ((m0, s0), (m1, s1)) = (params(d0), params(d1));
        Some(Box::new(
            GaussianBridge::new(m0, s0, m1, s1, sigma * sigma)
                .map_err(|e| bad(format!("problems[{i}]: the closed-form bridge: {e}")))?,
        ))
    } else {
        None
    };
    Ok(ProblemData::Pair {
        pi0,
        pi1,
        splits: Box::new(splits),
        truth,
        sigma,
        inverse: None,
        classes,
    })
}

/// Whether a distribution is a prior drawn afresh (Gaussian, mixture) rather than data that
/// a split fixes.
fn is_prior(d: &sb_data::Distribution) -> bool {
    matches!(
        d,
        sb_data::Distribution::Gaussian { .. } | sb_data::Distribution::Mixture { .. }
    )
}

/// Rows of particles simulated at once for `cbw_uvp` (bounds memory).
const CHUNK_ROWS: usize = 1 << 17;

/// The closed-form metrics of a trained bridge on a Gaussian problem, in the order asked.
///
/// `generated` holds the ends already simulated from `eval.samples` points, forward and
/// backward, for `bw_uvp`.
///
/// # Errors
/// A simulation or metric error.
pub fn gaussian_metrics(
    bridge: &TrainedBridge,
    truth: &GaussianBridge,
    pi0: &Source,
    metrics: &[Metric],
    eval: &EvalConfig,
    generated: (&Array2<f32>, &Array2<f32>),
    rng: &mut SbRng,
) -> Result<Vec<(String, f64)>> {
    let mut out = Vec::new();
    let wants = |m: Metric| metrics.contains(&m);
    let (mu0, s0) = truth.marginal(0.0);
    let (mu1, s1) = truth.marginal(1.0);
    // Forward paths serve kl, kl_diag and cross_cov, simulated in chunks whose moments are
    // merged, so `kl_samples` particles are never held at every time at once.
    let path = if wants(Metric::Kl) || wants(Metric::KlDiag) || wants(Metric::CrossCov) {
        Some(path_moments(bridge, pi0, eval.kl_samples, rng)?)
    } else {
        None
    };
    let times = state_times(
        &bridge.solver().steps(Direction::Forward),
        Direction::Forward,
    );
    for &metric in metrics {
        match metric {
            Metric::Kl | Metric::KlDiag => {
                let (states, _) = path.as_ref().expect("simulated above");
                let value = mean_kl(metric, states, &times, truth)?;
                out.push((kl_name(metric).to_string(), value));
            }
            Metric::CrossCov => {
                let (_, ends) = path.as_ref().expect("simulated above");
                out.push(("cross_cov".into(), ends.mean_cross_covariance()));
            }
            Metric::BwUvp => {
                let (fwd, bwd) = generated;
                out.push((
                    "bw_uvp_forward".into(),
                    sb_eval::bw2_uvp(fwd.mapv(f64::from).view(), mu1.view(), &s1)?,
                ));
                out.push((
                    "bw_uvp_backward".into(),
                    sb_eval::bw2_uvp(bwd.mapv(f64::from).view(), mu0.view(), &s0)?,
                ));
            }
            Metric::BwUvpMid => {
                let start = to_f32(&pi0.sample(eval.samples, rng));
                let mid = bridge.sample_until(Direction::Forward, &start, rng, 0.5)?;
                let (mt, ct) = truth.marginal(0.5);
                out.push((
                    "bw_uvp_mid".into(),
                    sb_eval::bw2_uvp(mid.mapv(f64::from).view(), mt.view(), &ct)?,
                ));
            }
            Metric::BwUvpPlan => {
                let start = pi0.sample(eval.samples, rng);
                let end = bridge.sample(Direction::Forward, &to_f32(&start), rng, false)?;
                let joint = ndarray::concatenate(
                    Axis(1),
                    &[start.view(), end.end().mapv(f64::from).view()],
                )
                .expect("two ends of one simulation");
                let plan_mean = ndarray::concatenate(Axis(0), &[mu0.view(), mu1.view()])
                    .expect("two means of one dimension");
                out.push((
                    "bw_uvp_plan".into(),
                    sb_eval::bw2_uvp(joint.view(), plan_mean.view(), &truth.plan_covariance())?,
                ));
            }
            Metric::CbwUvp => {
                let value = conditional_uvp(bridge, truth, pi0, eval, rng)?;
                out.push(("cbw_uvp".into(), value));
            }
            Metric::W1
            | Metric::W2
            | Metric::Mmd
            | Metric::W2Train
            | Metric::XMean
            | Metric::ClassGap
            | Metric::ClassGapUniform
            | Metric::PosteriorCbwUvp
            | Metric::PosteriorMeanUvp
            | Metric::PosteriorW2
            | Metric::InpaintRmse
            | Metric::InpaintMeanRmse
            | Metric::InpaintAgreement => {}
        }
    }
    if wants(Metric::Kl) || wants(Metric::KlDiag) {
        for &n in &eval.kl_at {
            let (states, _) = path_moments(bridge, pi0, n, rng)?;
            for &metric in metrics {
                if matches!(metric, Metric::Kl | Metric::KlDiag) {
                    let value = mean_kl(metric, &states, &times, truth)?;
                    out.push((format!("{}@n={n}", kl_name(metric)), value));
                }
            }
        }
    }
    Ok(out)
}

/// Particles simulated at once for the path metrics (kl, kl_diag, cross_cov): 50,000
/// particles at 21 times in d = 50 are 210 MB of f32.
const PATH_CHUNK: usize = 50_000;

/// The moments of `n` forward paths from π0 at every state time, and of the joint
/// `[x0, x1]` of their ends, accumulated over chunks of [`PATH_CHUNK`] particles.
fn path_moments(
    bridge: &TrainedBridge,
    pi0: &Source,
    n: usize,
    rng: &mut SbRng,
) -> Result<(Vec<Moments>, Moments)> {
    let d = pi0.dim();
    let mut states: Vec<Moments> = Vec::new();
    let mut ends = Moments::new(2 * d);
    for rows in chunks(n) {
        let start = to_f32(&pi0.sample(rows, rng));
        let sim = bridge.sample(Direction::Forward, &start, rng, true)?;
        if states.is_empty() {
            states = (0..sim.states.len()).map(|_| Moments::new(d)).collect();
        }
        for (m, state) in states.iter_mut().zip(&sim.states) {
            m.add(state.mapv(f64::from).view());
        }
        let joint = ndarray::concatenate(Axis(1), &[sim.states[0].view(), sim.end().view()])
            .expect("two ends of one simulation");
        ends.add(joint.mapv(f64::from).view());
    }
    Ok((states, ends))
}

/// The sizes of the chunks of [`PATH_CHUNK`] rows that make up `n` rows.
fn chunks(n: usize) -> impl Iterator<Item = usize> {
    (0..n)
        .step_by(PATH_CHUNK)
        .map(move |first| PATH_CHUNK.min(n - first))
}

fn kl_name(metric: Metric) -> &'static str {
    if metric == Metric::Kl {
        "kl_e-3"
    } else {
        "kl_diag_e-3"
    }
}

/// The mean over `times` of the Gaussian KL (full or diagonal) between the fitted moments
/// of each time and the true marginal, in units of 10⁻³.
fn mean_kl(
    metric: Metric,
    states: &[Moments],
    times: &[f64],
    truth: &GaussianBridge,
) -> Result<f64> {
    let mut total = 0.0;
    for (m, &t) in states.iter().zip(times) {
        let (mean, cov) = (m.mean(), m.covariance());
        let (mt, ct) = truth.marginal(t);
        total += if metric == Metric::Kl {
            gaussian_kl(mean.view(), &cov, mt.view(), &ct)?
        } else {
            diagonal_kl(mean, &cov, &mt, &ct)
        };
    }
    Ok(1e3 * total / times.len() as f64)
}

/// The estimator's floor: `kl`/`kl_diag` of `n` exact draws of the true marginal at each of
/// 21 uniform times (what a perfect model scores with `n` particles).
fn exact_kl_floor(
    metric: Metric,
    truth: &GaussianBridge,
    n: usize,
    rng: &mut SbRng,
) -> Result<f64> {
    let times: Vec<f64> = (0..=20).map(|k| f64::from(k) / 20.0).collect();
    let mut states = Vec::with_capacity(times.len());
    for &t in &times {
        let mut m = Moments::new(truth.dim());
        for rows in chunks(n) {
            m.add(truth.sample_marginal(t, rows, rng)?.view());
        }
        states.push(m);
    }
    mean_kl(metric, &states, &times, truth)
}

/// Running mean and covariance of rows added chunk by chunk: each chunk's mean and scatter
/// are merged with the pairwise update of Chan, Golub and LeVeque, so a long evaluation
/// never holds its particles at once.
#[derive(Clone, Debug)]
pub struct Moments {
    n: usize,
    mean: Array1<f64>,
    scatter: Array2<f64>,
}

impl Moments {
    /// No rows yet, in `d` dimensions.
    pub fn new(d: usize) -> Self {
        Self {
            n: 0,
            mean: Array1::zeros(d),
            scatter: Array2::zeros((d, d)),
        }
    }

    /// Adds the rows of `x`.
    pub fn add(&mut self, x: ArrayView2<'_, f64>) {
        let k = x.nrows();
        if k == 0 {
            return;
        }
        let chunk_mean = x.mean_axis(Axis(0)).expect("rows");
        let centred = &x - &chunk_mean;
        let chunk_scatter = centred.t().dot(&centred);
        let total = self.n + k;
        let delta = &chunk_mean - &self.mean;
        let w = (self.n as f64) * (k as f64) / total as f64;
        let outer = delta
            .view()
            .insert_axis(Axis(1))
            .dot(&delta.view().insert_axis(Axis(0)));
        self.scatter = &self.scatter + &chunk_scatter + &(outer * w);
        self.mean = &self.mean + &(delta * (k as f64 / total as f64));
        self.n = total;
    }

    /// The rows added.
    pub fn count(&self) -> usize {
        self.n
    }

    /// The mean of the rows.
    pub fn mean(&self) -> &Array1<f64> {
        &self.mean
    }

    /// The unbiased covariance (divided by n − 1).
    pub fn covariance(&self) -> Array2<f64> {
        &self.scatter / (self.n as f64 - 1.0)
    }

    /// For the moments of joint rows `[x0, x1]` (2d columns): the mean over coordinates of
    /// the covariance of `x0_j` with `x1_j`.
    pub fn mean_cross_covariance(&self) -> f64 {
        let d = self.mean.len() / 2;
        let c = self.covariance();
        (0..d).map(|j| c[[j, d + j]]).sum::<f64>() / d as f64
    }
}

/// cBW2²-UVP: `cond_inputs` inputs from π0, `cond_samples` forward draws from each.
fn conditional_uvp(
    bridge: &TrainedBridge,
    truth: &GaussianBridge,
    pi0: &Source,
    eval: &EvalConfig,
    rng: &mut SbRng,
) -> Result<f64> {
    let inputs = pi0.sample(eval.cond_inputs, rng);
    let k = eval.cond_samples;
    let per_chunk = (CHUNK_ROWS / k).max(1);
    let mut samples: Vec<Array2<f64>> = Vec::with_capacity(inputs.nrows());
    for first in (0..inputs.nrows()).step_by(per_chunk) {
        let chunk = inputs.slice(s![first..(first + per_chunk).min(inputs.nrows()), ..]);
        let mut start = Array2::<f32>::zeros((chunk.nrows() * k, chunk.ncols()));
        for (i, x) in chunk.rows().into_iter().enumerate() {
            let x = x.mapv(|v| v as f32);
            for r in 0..k {
                start.row_mut(i * k + r).assign(&x);
            }
        }
        let end = bridge.sample(Direction::Forward, &start, rng, false)?;
        for i in 0..chunk.nrows() {
            samples.push(end.end().slice(s![i * k..(i + 1) * k, ..]).mapv(f64::from));
        }
    }
    let exact: Vec<(Array1<f64>, Array2<f64>)> = inputs
        .rows()
        .into_iter()
        .map(|x| truth.conditional(x))
        .collect();
    let conditionals: Vec<_> = samples
        .iter()
        .zip(&exact)
        .map(|(x, (m, c))| (x.view(), m.view(), c))
        .collect();
    let (_, s1) = truth.marginal(1.0);
    Ok(sb_eval::cbw2_uvp(&conditionals, s1.diag().sum())?)
}

/// The sum over coordinates of `KL(N(m_j, c_jj) ‖ N(mt_j, ct_jj))`.
fn diagonal_kl(m: &Array1<f64>, c: &Array2<f64>, mt: &Array1<f64>, ct: &Array2<f64>) -> f64 {
    (0..m.len())
        .map(|j| {
            let (v, vt) = (c[[j, j]], ct[[j, j]]);
            0.5 * (v / vt + (m[j] - mt[j]).powi(2) / vt - 1.0 + (vt / v).ln())
        })
        .sum()
}

/// Generated against true points, for the sample metrics (w1, w2, mmd).
///
/// # Errors
/// A metric error.
pub fn sample_metric(
    metric: Metric,
    generated: ArrayView2<'_, f64>,
    truth: ArrayView2<'_, f64>,
    h: f64,
) -> Result<Option<f64>> {
    Ok(match metric {
        Metric::W2 => Some(sb_eval::w2(generated, truth)?.value),
        Metric::W1 => Some(sb_eval::w1(generated, truth)?.value),
        Metric::Mmd => Some(sb_eval::mmd_rbf(generated, truth, h)?),
        _ => None,
    })
}

/// The rows of a reference job, `(metric, value)`.
///
/// # Errors
/// A metric error.
pub fn reference_values(
    reference: Reference,
    data: &ProblemData,
    held_out: Option<f64>,
    metrics: &[Metric],
    eval: &EvalConfig,
) -> Result<Vec<(String, f64)>> {
    let h = eval.mmd_bandwidth;
    let mut out = Vec::new();
    match (reference, data) {
        (
            Reference::ClosedForm
            | Reference::ExactPosterior
            | Reference::Prior
            | Reference::SameDistribution
            | Reference::NearestRow,
            ProblemData::Pair {
                inverse: Some(inverse),
                ..
            },
        ) => {
            out.extend(crate::inverse::reference_values(
                reference, inverse, metrics, eval,
            )?);
        }
        (Reference::ClosedForm, ProblemData::Pair { truth: Some(t), .. }) => {
            let c = t.cross_covariance();
            out.push(("cross_cov".into(), c.diag().sum() / c.nrows() as f64));
            // The KL estimator's floor on exact samples, from the reference's own stream.
            let mut rng = SbRng::stream(0, 6);
            for &m in metrics {
                if matches!(m, Metric::Kl | Metric::KlDiag) {
                    let v = exact_kl_floor(m, t, eval.kl_samples, &mut rng)?;
                    out.push((kl_name(m).to_string(), v));
                    for &n in &eval.kl_at {
                        let v = exact_kl_floor(m, t, n, &mut rng)?;
                        out.push((format!("{}@n={n}", kl_name(m)), v));
                    }
                }
            }
        }
        (
            Reference::GaussianFit,
            ProblemData::Pair {
                splits, classes, ..
            },
        ) => {
            let mut rng = SbRng::stream(0, 9);
            for (k, direction) in [(1, "forward"), (0, "backward")] {
                let Some(split) = &splits[k] else { continue };
                let drawn =
                    crate::images::gaussian_fit_draws(&split.train, split.test.nrows(), &mut rng)
                        .map_err(RunnerError::Input)?;
                for &m in metrics {
                    let v = match (m, classes.as_deref(), k) {
                        (Metric::ClassGap, Some(c), 0) => Some(c.gap(drawn.view())?),
                        (Metric::ClassGapUniform, Some(c), 0) => Some(c.gap_uniform(drawn.view())?),
                        _ => sample_metric(m, drawn.view(), split.test.view(), h)?,
                    };
                    if let Some(v) = v {
                        out.push((format!("{}_{direction}", m.as_str()), v));
                    }
                }
            }
        }
        (
            Reference::SameDistribution,
            ProblemData::Pair {
                splits, classes, ..
            },
        ) => {
            if let Some(c) = classes {
                out.push(("classifier_accuracy".into(), c.accuracy));
                if metrics.contains(&Metric::ClassGap) {
                    out.push(("class_gap_backward".into(), c.val_gap));
                }
                if metrics.contains(&Metric::ClassGapUniform) {
                    out.push(("class_gap_uniform_backward".into(), c.val_gap_uniform));
                }
            }
            // π1's parts give the forward rows, π0's the backward rows; two-sample metrics
            // compare the val points with the test points.
            for (split, direction) in [(&splits[1], "forward"), (&splits[0], "backward")] {
                let Some(split) = split else { continue };
                for &m in metrics {
                    let v = match m {
                        // The data's own value, from the most points: the train part.
                        Metric::XMean => Some(split.train.column(0).mean().unwrap_or(f64::NAN)),
                        _ => sample_metric(m, split.val.view(), split.test.view(), h)?,
                    };
                    if let Some(v) = v {
                        out.push((format!("{}_{direction}", m.as_str()), v));
                    }
                }
            }
        }
        (Reference::PreviousTime, ProblemData::Course(course)) => {
            let part = part_of(course, held_out)?;
            for &m in metrics {
                if let Some(v) = sample_metric(m, part.start.view(), part.truth.view(), h)? {
                    out.push((m.as_str().to_string(), v));
                }
            }
        }
        (Reference::OtInterpolation, ProblemData::Course(course)) => {
            let part = part_of(course, held_out)?;
            let (points, weights) =
                sb_eval::ot_interpolate(part.start.view(), part.end.view(), part.fraction)?;
            for &m in metrics {
                let v = match m {
                    Metric::W1 => sb_eval::w1_weighted(points.view(), &weights, part.truth.view())?,
                    Metric::W2 => sb_eval::w2_weighted(points.view(), &weights, part.truth.view())?,
                    // The interpolant is a weighted cloud; MMD is reported for trained models only.
                    _ => continue,
                };
                out.push((m.as_str().to_string(), v));
            }
        }
        _ => unreachable!("reference jobs are made only for problems that have them"),
    }
    Ok(out)
}

/// The held-out split of a leave-one-out job.
///
/// # Errors
/// As [`Part::new`] (checked when the data were loaded).
pub fn part_of(course: &TimeCourse, held_out: Option<f64>) -> Result<Part> {
    let t = held_out.expect("leave-one-out jobs carry their held-out time");
    Part::new(course, t).map_err(RunnerError::Input)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sb_eval::summary::{covariance, mean};

    /// The mean diagonal entry of the sample cross-covariance of paired rows.
    fn mean_cross_covariance(x0: ArrayView2<'_, f64>, x1: ArrayView2<'_, f64>) -> f64 {
        let n = x0.nrows() as f64;
        let (m0, m1) = (
            x0.mean_axis(Axis(0)).expect("rows"),
            x1.mean_axis(Axis(0)).expect("rows"),
        );
        let d = x0.ncols();
        (0..d)
            .map(|j| {
                x0.column(j)
                    .iter()
                    .zip(x1.column(j))
                    .map(|(a, b)| (a - m0[j]) * (b - m1[j]))
                    .sum::<f64>()
                    / (n - 1.0)
            })
            .sum::<f64>()
            / d as f64
    }

    #[test]
    fn moments_merged_over_chunks_equal_the_direct_computation() {
        let mut rng = SbRng::new(5);
        let x = Array2::from_shape_fn((1003, 4), |(i, j)| {
            rng.normal() * (1.0 + j as f64) + 0.3 * (i % 7) as f64 + 10.0
        });
        let mut m = Moments::new(4);
        for chunk in [0..1, 1..400, 400..400, 400..1003] {
            m.add(x.slice(s![chunk, ..]));
        }
        assert_eq!(m.count(), 1003);
        let (want_mean, want_cov) = (mean(x.view()).unwrap(), covariance(x.view()).unwrap());
        assert!((m.mean() - &want_mean).iter().all(|e| e.abs() < 1e-12));
        assert!((m.covariance() - &want_cov).iter().all(|e| e.abs() < 1e-10));
        // Joint moments of [x0, x1] give the direct cross-covariance.
        let (x0, x1) = (x.slice(s![.., ..2]), x.slice(s![.., 2..]));
        let mut joint = Moments::new(4);
        joint.add(x.slice(s![..500, ..]));
        joint.add(x.slice(s![500.., ..]));
        let direct = mean_cross_covariance(x0, x1);
        assert!((joint.mean_cross_covariance() - direct).abs() < 1e-12);
    }

    #[test]
    fn the_kl_floor_is_the_estimators_bias_on_exact_samples() {
        // G1 at d = 5: the expected full-covariance KL of n exact samples is ≈ d(d + 3)/(4n).
        let d = 5;
        let truth = GaussianBridge::new(
            Array1::from_elem(d, -0.1),
            Array2::eye(d),
            Array1::from_elem(d, 0.1),
            Array2::eye(d),
            1.0,
        )
        .unwrap();
        let n = 4000;
        let expected = 1e3 * (d * (d + 3)) as f64 / (4.0 * n as f64);
        let floor = exact_kl_floor(Metric::Kl, &truth, n, &mut SbRng::new(1)).unwrap();
        assert!(
            (floor / expected - 1.0).abs() < 0.3,
            "floor {floor} against {expected}"
        );
        // Chunked and whole draws of one time agree with the direct estimator.
        let mut rng = SbRng::new(2);
        let x = truth.sample_marginal(0.5, 3000, &mut rng).unwrap();
        let mut m = Moments::new(d);
        m.add(x.slice(s![..1234, ..]));
        m.add(x.slice(s![1234.., ..]));
        let (mt, ct) = truth.marginal(0.5);
        let streamed = gaussian_kl(m.mean().view(), &m.covariance(), mt.view(), &ct).unwrap();
        let direct = gaussian_kl(
            mean(x.view()).unwrap().view(),
            &covariance(x.view()).unwrap(),
            mt.view(),
            &ct,
        )
        .unwrap();
        assert!((streamed - direct).abs() < 1e-12 * direct.abs().max(1.0));
    }

    #[test]
    fn the_plan_metric_is_zero_on_the_exact_plan_and_not_on_the_product() {
        // The assembly bw_uvp_plan uses: joint [x0, x1] against [μ0; μ1] and the plan's
        // covariance. Exact plan draws score near 0; independent ends (the product coupling,
        // right marginals, no cross-covariance) do not.
        let d = 3;
        let sigma0 = Array2::from_shape_fn((d, d), |(i, j)| if i == j { 1.5 } else { 0.2 });
        let truth = GaussianBridge::new(
            Array1::from_elem(d, -0.3),
            sigma0,
            Array1::from_elem(d, 0.4),
            Array2::eye(d) * 0.7,
            1.0,
        )
        .unwrap();
        let mut rng = SbRng::new(9);
        let (x0, x1) = truth.sample_plan(100_000, &mut rng).unwrap();
        let (mu0, _) = truth.marginal(0.0);
        let (mu1, _) = truth.marginal(1.0);
        let mean = ndarray::concatenate(Axis(0), &[mu0.view(), mu1.view()]).unwrap();
        let joint = ndarray::concatenate(Axis(1), &[x0.view(), x1.view()]).unwrap();
        let exact = sb_eval::bw2_uvp(joint.view(), mean.view(), &truth.plan_covariance()).unwrap();
        assert!(exact < 0.1, "{exact}");
        let shuffled = x1.select(Axis(0), &rng.permutation(x1.nrows()));
        let product = ndarray::concatenate(Axis(1), &[x0.view(), shuffled.view()]).unwrap();
        let uvp = sb_eval::bw2_uvp(product.view(), mean.view(), &truth.plan_covariance()).unwrap();
        assert!(uvp > 1.0, "{uvp}");
    }
}
