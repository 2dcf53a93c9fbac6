//! `sb run`: train every (problem, method, seed) of an experiment and write a run directory.

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
use crate::plot::{plot_model, trajectory_rows, TRAJECTORIES};
use crate::progress::{JsonLog, Progress};
use crate::protocol::{self, part_of, ProblemData};
use crate::results::Row;
use crate::{CliError, Result};

/// What a saved model needs to be rebuilt by `sb sample`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// The method's name in results.
    pub method: String,
    /// The benchmark it was trained on.
    pub benchmark: String,
    /// The reference's σ.
    pub sigma: f64,
    /// The dimension of the points.
    pub dim: usize,
    /// The seed it was trained with.
    pub seed: u64,
    /// The number of passes trained.
    pub passes: usize,
    /// Leave-one-out: where the held-out time lies between the two observed ones (the
    /// fraction of the bridge's interval its predictions were made at).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fraction: Option<f64>,
    /// `auto` when σ was chosen from the data (its value is `sigma`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sigma_rule: Option<String>,
    /// The solver, its networks and schedule, as in the experiment file.
    pub entry: MethodEntry,
}

/// Options of `sb run`.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// The run directory; defaults to `runs/<name>` (or `runs/<name>-2`, … if taken).
    pub out: Option<PathBuf>,
    /// Run this seed only, instead of the file's seeds.
    pub seed: Option<u64>,
    /// No progress lines.
    pub quiet: bool,
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
pub fn run(path: &Path, options: &RunOptions) -> Result<(PathBuf, Vec<Row>)> {
    let mut exp = Experiment::load(path)?;
    if let Some(seed) = options.seed {
        exp.seeds = vec![seed];
    }
    let data = protocol::load(&exp, path)?;
    crate::memory::check(&exp, &data, path)?;
    if !options.quiet {
        print_summary(&exp, &data);
    }
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
    execute(&exp, &data, &out, Vec::new(), options, false)
}

/// Continues a run directory written by `sb run`: jobs already in its `results.json` are kept,
/// an interrupted job continues from its latest checkpoint, the others run from the start.
/// The final values equal those of an uninterrupted run with the same seeds.
///
/// # Errors
/// A directory without `config.yaml`, or any error of [`run`].
pub fn resume(run_dir: &Path, quiet: bool) -> Result<(PathBuf, Vec<Row>)> {
    let (exp, _) = crate::report::read_run(run_dir, "sb run --resume")?;
    let _lock = RunLock::acquire(run_dir)?;
    // Read the finished rows under the lock: a run that just ended has written them all.
    let (_, done) = crate::report::read_run(run_dir, "sb run --resume")?;
    let config = run_dir.join("config.yaml");
    let data = protocol::load(&exp, &config)?;
    let info_path = run_dir.join("run.yaml");
    let info: RunInfo =
        crate::error::read_if_present(&info_path, |t| serde_yaml::from_str(t))?.unwrap_or_default();
    let options = RunOptions {
        quiet,
        shard: info.shard,
        ..RunOptions::default()
    };
    execute(&exp, &data, run_dir, done, &options, true)
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
                        .map_err(|e| CliError::io(&path, e))?;
                    return Ok(Self { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let holder = std::fs::read_to_string(&path).unwrap_or_default();
                    let pid: Option<u32> = holder.trim().parse().ok();
                    if pid.is_some_and(process_alive) {
                        return Err(CliError::Input(format!(
                            "{} is in use by process {} (an `sb run` writing it); wait for it to end or stop it, then continue with `sb run --resume {}`",
                            dir.display(),
                            holder.trim(),
                            dir.display()
                        )));
                    }
                    // Stale: its process is gone.
                    std::fs::remove_file(&path).map_err(|e| CliError::io(&path, e))?;
                }
                Err(e) => return Err(CliError::io(&path, e)),
            }
        }
        Err(CliError::Input(format!(
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

/// The run directory in progress, for the Ctrl-C message.
static CURRENT_RUN: std::sync::Mutex<Option<PathBuf>> = std::sync::Mutex::new(None);

/// Installs (once per process) a Ctrl-C handler that says how to resume the run in progress
/// and exits with status 130. Any moment is a clean point: checkpoints and results are only
/// ever replaced by an atomic rename.
pub fn stop_cleanly_on_ctrl_c() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let installed = ctrlc::set_handler(|| {
            let dir = CURRENT_RUN.lock().ok().and_then(|d| d.clone());
            match dir {
                Some(d) => eprintln!(
                    "\ninterrupted: every finished pass is checkpointed; continue with `sb run --resume {}`",
                    d.display()
                ),
                None => eprintln!("\ninterrupted"),
            }
            std::process::exit(130);
        });
        if let Err(e) = installed {
            eprintln!("warning: Ctrl-C will not print how to resume: {e}");
        }
    });
}

fn execute(
    exp: &Experiment,
    data: &[ProblemData],
    out: &Path,
    done: Vec<Row>,
    options: &RunOptions,
    resuming: bool,
) -> Result<(PathBuf, Vec<Row>)> {
    if let Ok(mut current) = CURRENT_RUN.lock() {
        *current = Some(out.to_path_buf());
    }
    let mut rows = Vec::new();
    for (position, job) in jobs(exp)?.into_iter().enumerate() {
        if options.shard.is_some_and(|s| !s.contains(position)) {
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
            Work::Train(_) => run_one(exp, &job, &data[job.problem], out, options.quiet, resuming)?,
            Work::Reference(r) => run_reference(exp, &job, r, &data[job.problem], options.quiet)?,
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
    quiet: bool,
) -> Result<Vec<Row>> {
    let start = Instant::now();
    let problem = &exp.problems[job.problem];
    let values = protocol::reference_values(
        reference,
        data,
        job.held_out,
        exp.metrics_for(problem),
        exp.eval.mmd_bandwidth,
    )?;
    let wall_s = start.elapsed().as_secs_f64();
    report_job(job, &values, wall_s, quiet);
    Ok(rows_of(job, &BTreeMap::new(), values, wall_s))
}

fn report_job(job: &Job, values: &[(String, f64)], wall_s: f64, quiet: bool) {
    if quiet {
        return;
    }
    let summary: Vec<String> = values
        .iter()
        .map(|(k, v)| format!("{k} = {v:.4}"))
        .collect();
    eprintln!(
        "[{} / {} / seed {}] {} ({wall_s:.1} s)",
        job.benchmark,
        job.method,
        job.seed,
        summary.join(", ")
    );
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

/// Prints the data summary and its warnings to stderr.
fn print_summary(exp: &Experiment, data: &[ProblemData]) {
    let (text, warnings) = crate::summary::summary(exp, data);
    eprint!("{text}");
    for w in warnings {
        eprintln!("warning: {w}");
    }
}

fn run_one(
    exp: &Experiment,
    job: &Job,
    data: &ProblemData,
    out: &Path,
    quiet: bool,
    resuming: bool,
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
            },
            _,
        ) => (pi0, pi1, truth.as_deref(), &**splits, *sigma),
        (ProblemData::Course(_), Some(p)) => {
            split = (
                sb_data::Source::empirical(p.start.clone()),
                sb_data::Source::empirical(p.end.clone()),
            );
            let sigma = protocol::resolve_sigma(problem.sigma, &split.0, &split.1)
                .map_err(|e| CliError::Input(format!("{}: {e}", job.benchmark)))?;
            (&split.0, &split.1, None, &no_splits, sigma)
        }
        (ProblemData::Course(_), None) => unreachable!("a course job has its part"),
    };
    let method = job.method.clone();
    let start = Instant::now();
    let solver = entry.method.build(sigma)?;
    let passes = entry.train.passes;
    let mut params: BTreeMap<String, String> = solver.params().into_iter().collect();
    params.insert("sigma".into(), sigma.to_string());
    if problem.sigma == Sigma::Auto {
        params.insert("sigma_rule".into(), "auto".into());
    }
    if let Some(p) = &part {
        params.insert("fraction".into(), p.fraction.to_string());
    }
    params.insert("passes".into(), passes.to_string());
    params.insert(
        "steps_per_pass".into(),
        entry.train.steps_per_pass.to_string(),
    );
    params.insert("batch_size".into(), entry.train.batch_size.to_string());
    params.insert("lr".into(), entry.train.lr.to_string());
    params.insert("hidden".into(), format!("{:?}", entry.net.hidden));
    let trainer = Trainer::new(solver, entry.net.clone(), entry.train.clone(), Device::Cpu)?;
    let model_dir = out
        .join("models")
        .join(slug(&job.benchmark))
        .join(slug(&method))
        .join(format!("seed{seed}"));
    std::fs::create_dir_all(&model_dir).map_err(|e| CliError::io(&model_dir, e))?;
    let checkpoints = model_dir.join("checkpoints");
    // Stream 0 trains; stream 1 evaluates, so evaluation draws never shift training.
    let (resume_from, mut rng) = match resuming
        .then(|| load_latest(&checkpoints, &entry.net, pi0.dim(), &Device::Cpu))
        .transpose()?
        .flatten()
    {
        Some((state, rng)) => {
            if !quiet {
                eprintln!(
                    "[{} / {method} / seed {seed}] resuming after pass {}",
                    job.benchmark, state.passes_done
                );
            }
            (Some(state), rng)
        }
        None => (None, SbRng::stream(seed, 0)),
    };
    let log_path = model_dir.join("train_log.jsonl");
    let mut log = JsonLog::open(&log_path, 50, resume_from.as_ref().map(|r| r.passes_done))?;
    let mut progress = Progress::new(format!("[{} / {method} / seed {seed}]", job.benchmark));
    let metrics_log = model_dir.join("metrics_log.jsonl");
    if resume_from.is_none() && metrics_log.exists() {
        std::fs::remove_file(&metrics_log).map_err(|e| CliError::io(&metrics_log, e))?;
    }
    // Per-pass evaluation: its own stream (4), at most 500 points, the same points every pass.
    let mut pass_rng = SbRng::stream(seed, 4);
    let n_pass = eval.samples.min(500);
    let pass_points = (
        to_f32(&pi0.sample(n_pass, &mut pass_rng)),
        pi1.sample(n_pass, &mut pass_rng),
        to_f32(&pi1.sample(n_pass, &mut pass_rng)),
        pi0.sample(n_pass, &mut pass_rng),
    );
    let mut saver = EvaluatingCheckpointer::new(
        DirCheckpointer::new(checkpoints, 2),
        metrics_log,
        pass_points,
        pass_rng,
    );
    let bridge = {
        let mut observers: Vec<&mut dyn Observer> = vec![&mut log];
        if !quiet {
            observers.push(&mut progress);
        }
        trainer.train_from(
            resume_from,
            pi0,
            pi1,
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
    };
    save_model(&bridge, &context, entry, job, pi0.dim(), &model_dir)?;
    sb_data::write_points(&model_dir.join("forward.npy"), forward_all.view())?;
    sb_data::write_points(&model_dir.join("backward.npy"), backward_all.view())?;
    sb_data::write_points(&model_dir.join("truth_forward.npy"), to_f32(true1).view())?;
    sb_data::write_points(&model_dir.join("truth_backward.npy"), to_f32(true0).view())?;

    let mut values = Vec::new();
    match &part {
        // Leave-one-out: every cell of the earlier time, carried to the held-out fraction.
        Some(p) => {
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
            for &metric in metrics {
                let v = protocol::sample_metric(
                    metric,
                    predicted.view(),
                    p.truth.view(),
                    eval.mmd_bandwidth,
                )?;
                if let Some(v) = v {
                    values.push((metric.as_str().to_string(), v));
                }
            }
        }
        None => {
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
        let few = start.slice(ndarray::s![..k, ..]).to_owned();
        let sim = bridge.sample(direction, &few, &mut picture_rng, true)?;
        let rows = trajectory_rows(&sim.states);
        sb_data::write_points(
            &model_dir.join(format!("trajectories_{direction}.npy")),
            rows.view(),
        )?;
    }
    plot_model(&model_dir)?;
    crate::plot::progress_chart(out, &job.benchmark)?;

    let wall_s = start.elapsed().as_secs_f64();
    report_job(job, &values, wall_s, quiet);
    Ok(rows_of(job, &params, values, wall_s))
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
}

fn save_model(
    bridge: &TrainedBridge,
    context: &ModelContext,
    entry: &MethodEntry,
    job: &Job,
    dim: usize,
    dir: &Path,
) -> Result<()> {
    bridge.save(dir)?;
    let spec = ModelSpec {
        method: job.method.clone(),
        benchmark: job.benchmark.clone(),
        sigma: context.sigma,
        dim,
        seed: job.seed,
        passes: entry.train.passes,
        fraction: context.fraction,
        sigma_rule: context.auto.then(|| "auto".to_string()),
        entry: entry.clone(),
    };
    let yaml = serde_yaml::to_string(&spec).expect("plain data serialises");
    write_atomic(&dir.join("model.yaml"), yaml.as_bytes())
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

/// Writes a file through a temporary file and a rename, so a reader never sees half of it.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(|e| CliError::io(&tmp, e))?;
    f.write_all(bytes).map_err(|e| CliError::io(&tmp, e))?;
    f.sync_all().map_err(|e| CliError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| CliError::io(path, e))
}

fn prepare_out_dir(name: &str, out: Option<&Path>) -> Result<PathBuf> {
    let dir = match out {
        Some(dir) => {
            if dir.join("results.json").exists() || dir.join("config.yaml").exists() {
                return Err(CliError::Input(format!(
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
    std::fs::create_dir_all(&dir).map_err(|e| CliError::io(&dir, e))?;
    Ok(dir)
}

/// A file-name-safe version of a name: letters, digits, `-`, `_`, `.`; others become `-`.
pub fn slug(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect()
}
