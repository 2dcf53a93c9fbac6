//! Running an experiment: train every (problem, method, seed) job, evaluate it, and write a
//! run directory (see [`crate::layout`]). What the user sees while it runs is the front end's
//! business: it passes a [`Reporter`] (the command line prints a summary, progress bars and a
//! line per job; Python stays silent with [`Silent`]).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::Device;
use ndarray::Array2;
use sb_data::SbRng;
use sb_methods::tensor::to_f32;
use sb_methods::{Direction, Observer, TrainedBridge, Trainer};
use serde::{Deserialize, Serialize};

use crate::checkpoint::{load_latest, DirCheckpointer, EvaluatingCheckpointer};
use crate::experiment::{Experiment, MethodEntry, Metric, Sigma};
use crate::jobs::{jobs, Job, Shard, Work};
use crate::layout::{slug, write_atomic, ModelSpec};
use crate::log::JsonLog;
use crate::plot::{plot_model, trajectory_rows, TRAJECTORIES};
use crate::protocol::{self, part_of, ProblemData};
use crate::results::Row;
use crate::{Result, RunnerError};

/// What a front end is told while a run goes on. Every method does nothing by default.
pub trait Reporter {
    /// The run directory that is about to be written (a new run's or a resumed one's).
    fn run_dir(&mut self, _dir: &Path) {}
    /// The data summary and its warnings (see [`crate::summary`]), before any job runs.
    fn summary(&mut self, _text: &str, _warnings: &[String]) {}
    /// A remark about a job (for example that it resumes after pass k).
    fn note(&mut self, _job: &Job, _text: &str) {}
    /// A training job starts: an observer of its passes and steps, if the front end wants one.
    fn training(&mut self, _job: &Job) -> Option<Box<dyn Observer + '_>> {
        None
    }
    /// A job has finished with these metric values after `wall_s` seconds.
    fn job_done(&mut self, _job: &Job, _values: &[(String, f64)], _wall_s: f64) {}
}

/// A [`Reporter`] that tells nobody anything.
#[derive(Clone, Copy, Debug, Default)]
pub struct Silent;

impl Reporter for Silent {}

/// Options of a run.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// The run directory; defaults to `runs/<name>` (or `runs/<name>-2`, … if taken).
    pub out: Option<PathBuf>,
    /// Run this seed only, instead of the file's seeds.
    pub seed: Option<u64>,
    /// Run only this shard of the jobs.
    pub shard: Option<Shard>,
}

/// What `sb run` records about itself beside `config.yaml`, so `--resume` runs the same jobs.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RunInfo {
    /// The shard this directory holds, if the run was sharded.
    #[serde(default)]
    shard: Option<Shard>,
}

/// Runs an experiment file; returns the run directory and the result rows.
///
/// Nothing already written is overwritten: the default directory gets a numeric suffix if
/// taken, and an explicit `--out` must not already hold results.
///
/// # Errors
/// An invalid experiment, unreadable data, divergence, or a file that cannot be written.
pub fn run(
    path: &Path,
    options: &RunOptions,
    reporter: &mut dyn Reporter,
) -> Result<(PathBuf, Vec<Row>)> {
    run_experiment(Experiment::load(path)?, path, options, reporter)
}

/// Runs an experiment already loaded (for example built in memory by a front end, with its
/// data paths resolved); `file` names it in errors.
///
/// # Errors
/// As [`run()`].
pub fn run_experiment(
    mut exp: Experiment,
    file: &Path,
    options: &RunOptions,
    reporter: &mut dyn Reporter,
) -> Result<(PathBuf, Vec<Row>)> {
    if let Some(seed) = options.seed {
        exp.seeds = vec![seed];
    }
    let data = protocol::load(&exp, file)?;
    crate::memory::check(&exp, &data, file)?;
    let (text, warnings) = crate::summary::summary(&exp, &data);
    reporter.summary(&text, &warnings);
    let name = match options.shard {
        Some(s) => format!("{}-shard{}of{}", exp.name, s.index, s.count),
        None => exp.name.clone(),
    };
    let out = prepare_out_dir(&name, options.out.as_deref())?;
    let _lock = RunLock::acquire(&out)?;
    write_atomic(&out.join("config.yaml"), exp.to_yaml().as_bytes())?;
    let info = RunInfo {
        shard: options.shard,
    };
    let yaml = serde_yaml::to_string(&info).expect("plain data serialises");
    write_atomic(&out.join("run.yaml"), yaml.as_bytes())?;
    execute(
        &exp,
        &data,
        &out,
        Vec::new(),
        options.shard,
        false,
        reporter,
    )
}

/// Continues a run directory written by `sb run`: jobs already in its `results.json` are kept,
/// an interrupted job continues from its latest checkpoint, the others run from the start.
/// The final values equal those of an uninterrupted run with the same seeds.
///
/// # Errors
/// A directory without `config.yaml`, or any error of [`run`].
pub fn resume(run_dir: &Path, reporter: &mut dyn Reporter) -> Result<(PathBuf, Vec<Row>)> {
    let (exp, _) = crate::report::read_run(run_dir, "sb run --resume")?;
    let _lock = RunLock::acquire(run_dir)?;
    // Read the finished rows under the lock: a run that just ended has written them all.
    let (_, done) = crate::report::read_run(run_dir, "sb run --resume")?;
    let config = run_dir.join("config.yaml");
    let data = protocol::load(&exp, &config)?;
    let info_path = run_dir.join("run.yaml");
    let info: RunInfo =
        crate::error::read_if_present(&info_path, |t| serde_yaml::from_str(t))?.unwrap_or_default();
    execute(&exp, &data, run_dir, done, info.shard, true, reporter)
}

/// A run directory held by one `sb run` process: `run.lock` holds its process id, is
/// created exclusively, and is removed when the run ends. A lock left by a process that no
/// longer exists (killed, or stopped with Ctrl-C) is taken over.
struct RunLock {
    path: PathBuf,
}

impl RunLock {
    /// Takes the lock of `dir`.
    ///
    /// # Errors
    /// Another live process holds it (the error names its process id), or the lock file
    /// cannot be written.
    fn acquire(dir: &Path) -> Result<Self> {
        let path = dir.join("run.lock");
        for _ in 0..2 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    f.write_all(std::process::id().to_string().as_bytes())
                        .map_err(|e| RunnerError::io(&path, e))?;
                    return Ok(Self { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let holder = std::fs::read_to_string(&path).unwrap_or_default();
                    let pid: Option<u32> = holder.trim().parse().ok();
                    if pid.is_some_and(process_alive) {
                        return Err(RunnerError::Input(format!(
                            "{} is in use by process {} (an `sb run` writing it); wait for it to end or stop it, then continue with `sb run --resume {}`",
                            dir.display(),
                            holder.trim(),
                            dir.display()
                        )));
                    }
                    // Stale: its process is gone.
                    std::fs::remove_file(&path).map_err(|e| RunnerError::io(&path, e))?;
                }
                Err(e) => return Err(RunnerError::io(&path, e)),
            }
        }
        Err(RunnerError::Input(format!(
            "{}: another process took the lock while a stale one was removed",
            path.display()
        )))
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Whether process `pid` exists (Linux: `/proc/<pid>`; elsewhere every holder counts as
/// alive, so a stale lock is removed by hand).
fn process_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    let proc_root = Path::new("/proc");
    if proc_root.join("self").exists() {
        proc_root.join(pid.to_string()).exists()
    } else {
        true
    }
}

fn execute(
    exp: &Experiment,
    data: &[ProblemData],
    out: &Path,
    done: Vec<Row>,
    shard: Option<Shard>,
    resuming: bool,
    reporter: &mut dyn Reporter,
) -> Result<(PathBuf, Vec<Row>)> {
    reporter.run_dir(out);
    let mut rows = Vec::new();
    for (position, job) in jobs(exp)?.into_iter().enumerate() {
        if shard.is_some_and(|s| !s.contains(position)) {
            continue;
        }
        let finished: Vec<Row> = done
            .iter()
            .filter(|r| {
                r.benchmark == job.benchmark && r.method == job.method && r.seed == job.seed
            })
            .cloned()
            .collect();
        if !finished.is_empty() {
            rows.extend(finished);
            continue;
        }
        let new_rows = match job.work {
            Work::Train(_) => run_one(exp, &job, &data[job.problem], out, resuming, reporter)?,
            Work::Reference(r) => run_reference(exp, &job, r, &data[job.problem], reporter)?,
        };
        rows.extend(new_rows);
        // Results so far are always on disk, so a later failure loses nothing.
        write_results(exp, out, &rows)?;
    }
    write_results(exp, out, &rows)?;
    Ok((out.to_path_buf(), rows))
}

fn run_reference(
    exp: &Experiment,
    job: &Job,
    reference: crate::jobs::Reference,
    data: &ProblemData,
    reporter: &mut dyn Reporter,
) -> Result<Vec<Row>> {
    let start = Instant::now();
    let problem = &exp.problems[job.problem];
    let values = protocol::reference_values(
        reference,
        data,
        job.held_out,
        exp.metrics_for(problem),
        &exp.eval,
    )?;
    // A floor does not depend on how the model samples: it stands beside every variant.
    let mut values = values;
    for variant in Variant::all(&exp.eval) {
        let suffixed: Vec<(String, f64)> = values
            .iter()
            .filter(|(name, _)| !name.contains('@') && is_sample_metric(name))
            .map(|(name, v)| (format!("{name}{}", variant.suffix()), *v))
            .collect();
        values.extend(suffixed);
    }
    let wall_s = start.elapsed().as_secs_f64();
    reporter.job_done(job, &values, wall_s);
    Ok(rows_of(job, &BTreeMap::new(), values, wall_s))
}

/// Whether a result's metric compares generated points with true ones (w1, w2, mmd, in
/// either direction, the class gaps of labelled images, and the posterior and inpainting
/// metrics of inverse problems), as the `@n` step variants do.
fn is_sample_metric(name: &str) -> bool {
    let base = name.split('_').next().unwrap_or(name);
    (matches!(base, "w1" | "w2" | "mmd") && !name.starts_with("w2_train"))
        || ["posterior_", "inpaint_", "class_gap"]
            .iter()
            .any(|p| name.starts_with(p))
}

fn rows_of(
    job: &Job,
    params: &BTreeMap<String, String>,
    values: Vec<(String, f64)>,
    wall_s: f64,
) -> Vec<Row> {
    values
        .into_iter()
        .map(|(metric, value)| Row {
            benchmark: job.benchmark.clone(),
            method: job.method.clone(),
            params: params.clone(),
            metric,
            value,
            seed: job.seed,
            wall_s,
        })
        .collect()
}

/// Validates an experiment file without training: keys, values, data files and dimensions.
/// Returns the experiment and the number of jobs (problems × methods × seeds).
///
/// # Errors
/// As [`run`], before anything is trained or written.
pub fn check(path: &Path) -> Result<(Experiment, usize)> {
    let (exp, n, _) = check_with_summary(path)?;
    Ok((exp, n))
}

/// [`check`], with the data summary and its warnings (see [`crate::summary`]).
///
/// # Errors
/// As [`check`].
pub fn check_with_summary(path: &Path) -> Result<(Experiment, usize, (String, Vec<String>))> {
    let exp = Experiment::load(path)?;
    let data = protocol::load(&exp, path)?;
    crate::memory::check(&exp, &data, path)?;
    let n = jobs(&exp)?.len();
    let summary = crate::summary::summary(&exp, &data);
    Ok((exp, n, summary))
}

fn run_one(
    exp: &Experiment,
    job: &Job,
    data: &ProblemData,
    out: &Path,
    resuming: bool,
    reporter: &mut dyn Reporter,
) -> Result<Vec<Row>> {
    let Work::Train(m) = job.work else {
        unreachable!("run_one trains")
    };
    let (problem, entry, seed) = (&exp.problems[job.problem], &exp.methods[m], job.seed);
    let eval = &exp.eval;
    let metrics = exp.metrics_for(problem);
    let part = match data {
        ProblemData::Course(course) => Some(part_of(course, job.held_out)?),
        ProblemData::Pair { .. } => None,
    };
    // A pair problem's sources are used as loaded; a held-out split gets its own two.
    let split;
    let no_splits = [None, None];
    let (pi0, pi1, truth, splits, sigma) = match (data, &part) {
        (
            ProblemData::Pair {
                pi0,
                pi1,
                splits,
                truth,
                sigma,
                ..
            },
            _,
        ) => (pi0, pi1, truth.as_deref(), &**splits, *sigma),
        (ProblemData::Course(_), Some(p)) => {
            split = (
                sb_data::Source::empirical(p.start.clone()),
                sb_data::Source::empirical(p.end.clone()),
            );
            let sigma = protocol::resolve_sigma(problem.sigma, &split.0, &split.1)
                .map_err(|e| RunnerError::Input(format!("{}: {e}", job.benchmark)))?;
            (&split.0, &split.1, None, &no_splits, sigma)
        }
        (ProblemData::Course(_), None) => unreachable!("a course job has its part"),
    };
    // A fixed training set per prior end, drawn once for this seed (stream 7 + end).
    let fixed: Option<[sb_data::Source; 2]> = match (problem.train_set, data) {
        (Some(n), ProblemData::Pair { .. }) => {
            let fix = |k: usize, source: &sb_data::Source| -> Result<sb_data::Source> {
                Ok(match splits[k] {
                    Some(_) => source.clone(),
                    None => sb_data::Source::empirical(
                        source.data_set(n, &mut SbRng::stream(seed, 7 + k as u64))?,
                    ),
                })
            };
            Some([fix(0, pi0)?, fix(1, pi1)?])
        }
        _ => None,
    };
    let (train0, train1) = match &fixed {
        Some([a, b]) => (a, b),
        None => (pi0, pi1),
    };
    let method = job.method.clone();
    let start = Instant::now();
    let (inverse, classes) = match data {
        ProblemData::Pair {
            inverse, classes, ..
        } => (inverse.as_deref(), classes.as_deref()),
        ProblemData::Course(_) => (None, None),
    };
    let observation_dim = inverse.map_or(0, crate::inverse::InverseData::observation_dim);
    let solver = entry.method.build_conditional(sigma, observation_dim)?;
    let passes = entry.train.passes;
    let mut params: BTreeMap<String, String> = solver.params().into_iter().collect();
    params.insert("sigma".into(), sigma.to_string());
    if problem.sigma == Sigma::Auto {
        params.insert("sigma_rule".into(), "auto".into());
    }
    if let Some(p) = &part {
        params.insert("fraction".into(), p.fraction.to_string());
    }
    if let Some(n) = problem.train_set {
        params.insert("train_set".into(), n.to_string());
    }
    params.insert("passes".into(), passes.to_string());
    params.insert(
        "steps_per_pass".into(),
        entry.train.steps_per_pass.to_string(),
    );
    params.insert("batch_size".into(), entry.train.batch_size.to_string());
    params.insert("lr".into(), entry.train.lr.to_string());
    params.insert("hidden".into(), format!("{:?}", entry.net.hidden));
    if observation_dim > 0 {
        params.insert("observation_dim".into(), observation_dim.to_string());
    }
    let trainer = Trainer::new(solver, entry.net.clone(), entry.train.clone(), Device::Cpu)?;
    let model_dir = crate::layout::model_dir(out, &job.benchmark, &method, seed);
    std::fs::create_dir_all(&model_dir).map_err(|e| RunnerError::io(&model_dir, e))?;
    let checkpoints = model_dir.join("checkpoints");
    // Stream 0 trains; stream 1 evaluates, so evaluation draws never shift training.
    let (resume_from, mut rng) = match resuming
        .then(|| load_latest(&checkpoints, &entry.net, pi0.dim(), &Device::Cpu))
        .transpose()?
        .flatten()
    {
        Some((state, rng)) => {
            reporter.note(job, &format!("resuming after pass {}", state.passes_done));
            (Some(state), rng)
        }
        None => (None, SbRng::stream(seed, 0)),
    };
    let log_path = model_dir.join("train_log.jsonl");
    let mut log = JsonLog::open(&log_path, 50, resume_from.as_ref().map(|r| r.passes_done))?;
    let metrics_log = model_dir.join("metrics_log.jsonl");
    if resume_from.is_none() && metrics_log.exists() {
        std::fs::remove_file(&metrics_log).map_err(|e| RunnerError::io(&metrics_log, e))?;
    }
    // Per-pass evaluation: its own stream (4), at most 500 points, the same points every pass.
    let mut pass_rng = SbRng::stream(seed, 4);
    let n_pass = eval.samples.min(500);
    let mut pass_points = (
        to_f32(&pi0.sample(n_pass, &mut pass_rng)),
        pi1.sample(n_pass, &mut pass_rng),
        to_f32(&pi1.sample(n_pass, &mut pass_rng)),
        pi0.sample(n_pass, &mut pass_rng),
    );
    if observation_dim > 0 {
        // π1 = reference ⊗ p(y): its points take observations drawn from the joint.
        let m = observation_dim;
        sb_methods::sampler::copy_tail(&mut pass_points.1, &pass_points.3, m);
        sb_methods::sampler::copy_tail(&mut pass_points.2, &pass_points.0, m);
    }
    let mut saver = EvaluatingCheckpointer::new(
        DirCheckpointer::new(checkpoints, 2),
        metrics_log,
        pass_points,
        pass_rng,
    );
    let bridge = {
        let mut watching = reporter.training(job);
        let mut observers: Vec<&mut dyn Observer> = vec![&mut log];
        if let Some(o) = watching.as_deref_mut() {
            observers.push(o);
        }
        trainer.train_from(
            resume_from,
            train0,
            train1,
            &mut rng,
            &mut observers,
            Some(&mut saver),
        )?
    };
    log.finish(&log_path)?;

    let mut eval_rng = SbRng::stream(seed, 1);
    let blocks = evaluation_blocks(&bridge, [pi0, pi1], splits, eval, &mut eval_rng)?;
    let (forward, backward) = (&blocks[0].generated[0], &blocks[0].generated[1]);
    let (start0, start1) = (&blocks[0].start[0], &blocks[0].start[1]);
    let (true0, true1) = (&blocks[0].truth[0], &blocks[0].truth[1]);
    let all_generated = |k: usize| {
        let views: Vec<_> = blocks.iter().map(|b| b.generated[k].view()).collect();
        ndarray::concatenate(ndarray::Axis(0), &views).expect("blocks of one dimension")
    };
    let (forward_all, backward_all) = (all_generated(0), all_generated(1));

    let context = ModelContext {
        sigma,
        auto: problem.sigma == Sigma::Auto,
        fraction: part.as_ref().map(|p| p.fraction),
        observation_dim,
    };
    save_model(&bridge, &context, entry, job, pi0.dim(), &model_dir)?;
    sb_data::write_points(&model_dir.join("forward.npy"), forward_all.view())?;
    sb_data::write_points(&model_dir.join("backward.npy"), backward_all.view())?;
    sb_data::write_points(&model_dir.join("truth_forward.npy"), to_f32(true1).view())?;
    sb_data::write_points(&model_dir.join("truth_backward.npy"), to_f32(true0).view())?;

    let mut values = Vec::new();
    match (&part, inverse) {
        // Leave-one-out: every cell of the earlier time, carried to the held-out fraction.
        (Some(p), _) => {
            let predicted = bridge
                .sample_until(
                    Direction::Forward,
                    &to_f32(&p.start),
                    &mut eval_rng,
                    p.fraction,
                )?
                .mapv(f64::from);
            sb_data::write_points(&model_dir.join("predicted.npy"), to_f32(&predicted).view())?;
            sb_data::write_points(&model_dir.join("held_out.npy"), to_f32(&p.truth).view())?;
            let mut push = |predicted: &Array2<f64>, suffix: &str| -> Result<()> {
                for &metric in metrics {
                    let v = protocol::sample_metric(
                        metric,
                        predicted.view(),
                        p.truth.view(),
                        eval.mmd_bandwidth,
                    )?;
                    if let Some(v) = v {
                        values.push((format!("{}{suffix}", metric.as_str()), v));
                    }
                }
                Ok(())
            };
            push(&predicted, "")?;
            let mut steps_rng = SbRng::stream(seed, 5);
            for &n in &eval.steps {
                if let Err(e) = bridge.steps_with(Direction::Forward, n) {
                    reporter.note(job, &format!("no @{n} metrics: {e}"));
                    continue;
                }
                let predicted = bridge
                    .sample_until_with(
                        Direction::Forward,
                        &to_f32(&p.start),
                        &mut steps_rng,
                        p.fraction,
                        n,
                    )?
                    .mapv(f64::from);
                push(&predicted, &format!("@{n}"))?;
            }
            if eval.ode || eval.quiet_end {
                reporter.note(
                    job,
                    "eval.ode and eval.quiet_end apply to two-distribution problems; a held-out time is reached mid-interval, with eval.steps only",
                );
            }
        }
        (None, Some(inverse)) => {
            let samples = crate::inverse::conditional_samples(
                &bridge,
                inverse,
                eval.cond_samples,
                None,
                &mut eval_rng,
            )?;
            values.extend(crate::inverse::posterior_metrics(
                &samples, inverse, metrics,
            )?);
            // Other step counts (`@n` metrics), from their own stream as for pair problems.
            let mut steps_rng = SbRng::stream(seed, 5);
            for &n in &eval.steps {
                if let Err(e) = bridge.steps_with(Direction::Backward, n) {
                    reporter.note(job, &format!("no @{n} metrics: {e}"));
                    continue;
                }
                let at_n = crate::inverse::conditional_samples(
                    &bridge,
                    inverse,
                    eval.cond_samples,
                    Some(n),
                    &mut steps_rng,
                )?;
                for (name, v) in crate::inverse::posterior_metrics(&at_n, inverse, metrics)? {
                    values.push((format!("{name}@{n}"), v));
                }
            }
            // The picture's backward panel: x | y for the first observation, beside exact
            // posterior draws.
            let exact = crate::inverse::first_posterior(inverse, samples[0].nrows(), &mut eval_rng)
                .map_err(RunnerError::Input)?;
            sb_data::write_points(&model_dir.join("backward.npy"), to_f32(&samples[0]).view())?;
            sb_data::write_points(&model_dir.join("truth_backward.npy"), to_f32(&exact).view())?;
            if let Some(held) = &inverse.held {
                // Whole rows for the picture: completions of the first observations beside
                // their true rows.
                let (inputs, draws) = crate::plot::INPAINT_GRID;
                let k = inputs.min(samples.len());
                let mut generated = Vec::new();
                let mut truth = Vec::new();
                for (j, x) in samples.iter().take(k).enumerate() {
                    let y = inverse.observations.row(j);
                    // A full row of the picture per observation (draws repeat if fewer).
                    let picks: Vec<usize> = (0..draws).map(|i| i % x.nrows()).collect();
                    let few = x.select(ndarray::Axis(0), &picks);
                    generated.push(held.rows(few.view(), y));
                    truth.push(held.rows(held.truth.slice(ndarray::s![j..=j, ..]), y));
                }
                let stack = |parts: &[Array2<f64>]| {
                    let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
                    ndarray::concatenate(ndarray::Axis(0), &views).expect("rows of one width")
                };
                sb_data::write_points(
                    &model_dir.join("inpaint_generated.npy"),
                    to_f32(&stack(&generated)).view(),
                )?;
                sb_data::write_points(
                    &model_dir.join("inpaint_truth.npy"),
                    to_f32(&stack(&truth)).view(),
                )?;
            }
        }
        (None, None) => {
            for (k, direction, target) in
                [(0, Direction::Forward, pi1), (1, Direction::Backward, pi0)]
            {
                for &metric in metrics {
                    let value = match metric {
                        Metric::XMean => {
                            let all = if k == 0 { &forward_all } else { &backward_all };
                            Some(
                                all.column(0).iter().map(|&v| f64::from(v)).sum::<f64>()
                                    / all.nrows() as f64,
                            )
                        }
                        Metric::ClassGap => match (classes, k) {
                            (Some(c), 1) => Some(c.gap(backward_all.mapv(f64::from).view())?),
                            _ => None,
                        },
                        Metric::ClassGapUniform => match (classes, k) {
                            (Some(c), 1) => {
                                Some(c.gap_uniform(backward_all.mapv(f64::from).view())?)
                            }
                            _ => None,
                        },
                        Metric::W2Train => {
                            let all = if k == 0 { &forward_all } else { &backward_all };
                            let n = eval.train_points.min(all.nrows());
                            let generated = all.slice(ndarray::s![..n, ..]).mapv(f64::from);
                            let reference = training_points(target, n, &mut eval_rng);
                            Some(sb_eval::w2(generated.view(), reference.view())?.value)
                        }
                        _ => {
                            let mut sum = 0.0;
                            let mut any = false;
                            for b in &blocks {
                                let g = b.generated[k].mapv(f64::from);
                                let truth = &b.truth[1 - k];
                                if let Some(v) = protocol::sample_metric(
                                    metric,
                                    g.view(),
                                    truth.view(),
                                    eval.mmd_bandwidth,
                                )? {
                                    sum += v;
                                    any = true;
                                }
                            }
                            any.then(|| sum / blocks.len() as f64)
                        }
                    };
                    if let Some(v) = value {
                        values.push((format!("{}_{direction}", metric.as_str()), v));
                    }
                }
            }
            values.extend(step_variants(
                &bridge,
                &blocks,
                metrics,
                eval,
                classes,
                &mut SbRng::stream(seed, 5),
                &mut |text| reporter.note(job, text),
            )?);
            if let Some(truth) = truth {
                values.extend(protocol::gaussian_metrics(
                    &bridge,
                    truth,
                    pi0,
                    metrics,
                    eval,
                    (forward, backward),
                    &mut eval_rng,
                )?);
            }
        }
    }

    // Whole trajectories for the pictures, from their own stream (metrics are unaffected).
    let mut picture_rng = SbRng::stream(seed, 3);
    for (direction, start) in [(Direction::Forward, start0), (Direction::Backward, start1)] {
        let k = TRAJECTORIES.min(start.nrows());
        let mut few = start.slice(ndarray::s![..k, ..]).to_owned();
        // An inverse problem's backward panel shows x | y for the first observation.
        let conditional = match inverse {
            Some(inv) if direction == Direction::Backward => {
                let d = inv.dim();
                let y = inv.observations.row(0).mapv(|v| v as f32);
                few.slice_mut(ndarray::s![.., d..])
                    .assign(&y.broadcast((k, y.len())).expect("one row per start"));
                Some(d)
            }
            _ => None,
        };
        let sim = bridge.sample(direction, &few, &mut picture_rng, true)?;
        let states: Vec<_> = match conditional {
            Some(d) => sim
                .states
                .iter()
                .map(|s| s.slice(ndarray::s![.., ..d]).to_owned())
                .collect(),
            None => sim.states,
        };
        let rows = trajectory_rows(&states);
        sb_data::write_points(
            &model_dir.join(format!("trajectories_{direction}.npy")),
            rows.view(),
        )?;
    }
    plot_model(&model_dir)?;
    crate::plot::progress_chart(out, &job.benchmark)?;

    let wall_s = start.elapsed().as_secs_f64();
    reporter.job_done(job, &values, wall_s);
    Ok(rows_of(job, &params, values, wall_s))
}

/// Another way to transport the evaluation blocks, for the metrics named with its suffix.
#[derive(Clone, Copy, Debug)]
enum Variant {
    /// `n` uniform Euler steps (`@n`).
    Steps(usize),
    /// The probability-flow ODE of a DSBM pair (`@ode`).
    Ode,
    /// The last Euler step without noise (`@quiet_end`).
    QuietEnd,
}

impl Variant {
    fn all(eval: &crate::experiment::EvalConfig) -> Vec<Self> {
        let mut out: Vec<Self> = eval.steps.iter().map(|&n| Self::Steps(n)).collect();
        if eval.ode {
            out.push(Self::Ode);
        }
        if eval.quiet_end {
            out.push(Self::QuietEnd);
        }
        out
    }

    fn suffix(self) -> String {
        match self {
            Self::Steps(n) => format!("@{n}"),
            Self::Ode => "@ode".into(),
            Self::QuietEnd => "@quiet_end".into(),
        }
    }

    /// Transports `start` all the way in `direction`.
    fn transport(
        self,
        bridge: &sb_methods::TrainedBridge,
        direction: Direction,
        start: &Array2<f32>,
        rng: &mut SbRng,
    ) -> sb_methods::Result<Array2<f32>> {
        let t_end = match direction {
            Direction::Forward => 1.0,
            Direction::Backward => 0.0,
        };
        match self {
            Self::Steps(n) => bridge.sample_until_with(direction, start, rng, t_end, n),
            Self::Ode => {
                let n = bridge.solver().steps(direction).len();
                bridge.sample_ode(direction, start, n)
            }
            Self::QuietEnd => bridge.sample_quiet_end(direction, start, rng),
        }
    }

    /// Why `bridge` cannot transport this way, if it cannot.
    fn unavailable(
        self,
        bridge: &sb_methods::TrainedBridge,
        direction: Direction,
    ) -> Option<String> {
        match self {
            Self::Steps(n) => bridge.steps_with(direction, n).err().map(|e| e.to_string()),
            Self::Ode => (!bridge.has_probability_flow())
                .then(|| format!("{} has no probability-flow ODE (DSBM only)", bridge.name())),
            Self::QuietEnd => None,
        }
    }
}

/// The sample metrics of the evaluation blocks transported again in each of the variants of
/// `eval` (`eval.steps`, `eval.ode`, `eval.quiet_end`), `(metric_direction@variant, value)`,
/// means over blocks (the class gaps of a labelled π0: over all blocks' generated π0 points); a
/// variant the method cannot do is passed to `note` and skipped.
fn step_variants(
    bridge: &sb_methods::TrainedBridge,
    blocks: &[Block],
    metrics: &[Metric],
    eval: &crate::experiment::EvalConfig,
    classes: Option<&crate::images::Classes>,
    rng: &mut SbRng,
    note: &mut dyn FnMut(&str),
) -> Result<Vec<(String, f64)>> {
    let mut values = Vec::new();
    for variant in Variant::all(eval) {
        for (k, direction) in [(0, Direction::Forward), (1, Direction::Backward)] {
            if let Some(why) = variant.unavailable(bridge, direction) {
                note(&format!(
                    "no {} metrics {direction}: {why}",
                    variant.suffix()
                ));
                continue;
            }
            let mut generated = Vec::with_capacity(blocks.len());
            for b in blocks {
                let g = variant.transport(bridge, direction, &b.start[k], rng)?;
                generated.push(g.mapv(f64::from));
            }
            for &metric in metrics {
                let mut sum = 0.0;
                let mut any = false;
                for (b, g) in blocks.iter().zip(&generated) {
                    let truth = &b.truth[1 - k];
                    if let Some(v) =
                        protocol::sample_metric(metric, g.view(), truth.view(), eval.mmd_bandwidth)?
                    {
                        sum += v;
                        any = true;
                    }
                }
                if any {
                    values.push((
                        format!("{}_{direction}{}", metric.as_str(), variant.suffix()),
                        sum / blocks.len() as f64,
                    ));
                }
            }
            if let (Some(c), Direction::Backward) = (classes, direction) {
                let views: Vec<_> = generated.iter().map(|g| g.view()).collect();
                let all = ndarray::concatenate(ndarray::Axis(0), &views).expect("one width");
                for &metric in metrics {
                    let value = match metric {
                        Metric::ClassGap => c.gap(all.view())?,
                        Metric::ClassGapUniform => c.gap_uniform(all.view())?,
                        _ => continue,
                    };
                    values.push((
                        format!("{}_{direction}{}", metric.as_str(), variant.suffix()),
                        value,
                    ));
                }
            }
        }
    }
    Ok(values)
}

/// One evaluation block: start points, generated ends and true points, each indexed by
/// end (`[0]`: π0's side, `[1]`: π1's side; `generated[0]` is the forward end).
struct Block {
    start: [Array2<f32>; 2],
    truth: [Array2<f64>; 2],
    generated: [Array2<f32>; 2],
}

/// Draws `eval.blocks` evaluation blocks: each starts from `eval.samples` fresh points of
/// each end (a split end's test points instead), transports them both ways, and keeps as
/// many fresh true points of each end (a split end's test points).
fn evaluation_blocks(
    bridge: &sb_methods::TrainedBridge,
    sources: [&sb_data::Source; 2],
    splits: &[Option<sb_data::Split>; 2],
    eval: &crate::experiment::EvalConfig,
    rng: &mut SbRng,
) -> Result<Vec<Block>> {
    let mut out = Vec::with_capacity(eval.blocks);
    for _ in 0..eval.blocks {
        let mut draw = |k: usize| match &splits[k] {
            Some(s) => s.test.clone(),
            None => sources[k].sample(eval.samples, rng),
        };
        let start = [to_f32(&draw(0)), to_f32(&draw(1))];
        let truth = [draw(0), draw(1)];
        let forward = bridge.sample(Direction::Forward, &start[0], rng, false)?;
        let backward = bridge.sample(Direction::Backward, &start[1], rng, false)?;
        out.push(Block {
            start,
            truth,
            generated: [forward.end().clone(), backward.end().clone()],
        });
    }
    Ok(out)
}

/// `n` points of a training source without replacement (its training points when split;
/// fresh draws from a distribution).
fn training_points(source: &sb_data::Source, n: usize, rng: &mut SbRng) -> Array2<f64> {
    match source.points() {
        Some(points) if points.nrows() >= n => {
            let order = rng.permutation(points.nrows());
            points.select(ndarray::Axis(0), &order[..n])
        }
        _ => source.sample(n, rng),
    }
}

/// What a job's model was trained with beyond its method entry.
struct ModelContext {
    /// The reference's σ (resolved).
    sigma: f64,
    /// Whether σ came from `sigma: auto`.
    auto: bool,
    /// Leave-one-out: the held-out time's fraction of the interval.
    fraction: Option<f64>,
    /// A conditional bridge's observation size (0 otherwise).
    observation_dim: usize,
}

fn save_model(
    bridge: &TrainedBridge,
    context: &ModelContext,
    entry: &MethodEntry,
    job: &Job,
    dim: usize,
    dir: &Path,
) -> Result<()> {
    let spec = ModelSpec {
        method: job.method.clone(),
        benchmark: job.benchmark.clone(),
        sigma: context.sigma,
        dim,
        seed: job.seed,
        passes: entry.train.passes,
        fraction: context.fraction,
        sigma_rule: context.auto.then(|| "auto".to_string()),
        observation_dim: context.observation_dim,
        entry: entry.clone(),
    };
    crate::layout::write_model(bridge, &spec, dir)
}

fn write_results(exp: &Experiment, out: &Path, rows: &[Row]) -> Result<()> {
    let json = serde_json::to_string_pretty(rows).expect("rows serialise");
    write_atomic(&out.join("results.json"), json.as_bytes())?;
    let table = crate::table::build(exp, rows)?;
    write_atomic(
        &out.join("results.md"),
        format!(
            "{}{}",
            crate::table::markdown(&table),
            crate::table::auto_sigma_note(rows)
        )
        .as_bytes(),
    )?;
    write_atomic(
        &out.join("results.csv"),
        crate::table::csv(&table).as_bytes(),
    )
}

fn prepare_out_dir(name: &str, out: Option<&Path>) -> Result<PathBuf> {
    let dir = match out {
        Some(dir) => {
            if dir.join("results.json").exists() || dir.join("config.yaml").exists() {
                return Err(RunnerError::Input(format!(
                    "{} already holds a run; choose another --out, or continue it with `sb run --resume {}`",
                    dir.display(),
                    dir.display()
                )));
            }
            dir.to_path_buf()
        }
        None => {
            let base = Path::new("runs").join(slug(name));
            let mut dir = base.clone();
            let mut k = 2;
            while dir.exists() {
                dir = PathBuf::from(format!("{}-{k}", base.display()));
                k += 1;
            }
            dir
        }
    };
    std::fs::create_dir_all(&dir).map_err(|e| RunnerError::io(&dir, e))?;
    Ok(dir)
}
