//! `sb sample`: transport points with a trained bridge.

use std::path::{Path, PathBuf};

use candle_core::Device;
use sb_data::SbRng;
use sb_methods::{Direction, MethodConfig, TrainedBridge};

use crate::layout::{find_models, ModelSpec};
use crate::{Result, RunnerError};

/// Options of `sb sample`.
#[derive(Clone, Debug)]
pub struct SampleOptions {
    /// A run directory (or one model directory inside it).
    pub run_dir: PathBuf,
    /// Which model of the run, as a path relative to `run_dir/models` (needed when the run
    /// holds several).
    pub model: Option<PathBuf>,
    /// Forward (from π0) or backward (from π1).
    pub direction: Direction,
    /// The starting points (`.npy`, `.npz` or `.csv`).
    pub from: PathBuf,
    /// Where to write the transported points (`.npy` as float32, or `.csv`).
    pub out: PathBuf,
    /// Euler–Maruyama steps; defaults to the trained number.
    pub steps: Option<usize>,
    /// Seed of the noise. Defaults to 0.
    pub seed: u64,
    /// A conditional bridge's observations `y` (`.npy`, `.npz` or `.csv`): one row per
    /// starting point, or one row for all of them. The points are then `x` alone, and so is
    /// the output.
    pub given: Option<PathBuf>,
}

fn choose_model(opts: &SampleOptions) -> Result<PathBuf> {
    if let Some(m) = &opts.model {
        let dir = opts.run_dir.join("models").join(m);
        if dir.join("model.yaml").is_file() {
            return Ok(dir);
        }
        return Err(RunnerError::Input(format!(
            "{}: no model.yaml there; --model is a path under {}",
            dir.display(),
            opts.run_dir.join("models").display()
        )));
    }
    let models = find_models(&opts.run_dir);
    match models.len() {
        1 => Ok(models.into_iter().next().expect("one")),
        0 => Err(RunnerError::Input(format!(
            "{}: no trained model (model.yaml) found; pass the directory written by `sb run`",
            opts.run_dir.display()
        ))),
        _ => {
            let base = opts.run_dir.join("models");
            let names: Vec<String> = models
                .iter()
                .map(|m| m.strip_prefix(&base).unwrap_or(m).display().to_string())
                .collect();
            Err(RunnerError::Input(format!(
                "{} holds {} models; choose one with --model, one of: {}",
                opts.run_dir.display(),
                names.len(),
                names.join(", ")
            )))
        }
    }
}

/// Reads the model in `dir` (its `model.yaml` and weights, as written by a run or by
/// [`crate::layout::write_model`]), to sample with `steps` Euler steps instead of the trained
/// number if given.
///
/// # Errors
/// No or an unreadable `model.yaml`, missing weights, or `steps` that the method cannot use.
pub fn load_model(dir: &Path, steps: Option<usize>) -> Result<(TrainedBridge, ModelSpec)> {
    let spec_path = dir.join("model.yaml");
    let text = std::fs::read_to_string(&spec_path).map_err(|e| RunnerError::io(&spec_path, e))?;
    let spec: ModelSpec = serde_yaml::from_str(&text).map_err(|e| RunnerError::Config {
        file: spec_path.clone(),
        message: e.to_string(),
    })?;
    let mut method = spec.entry.method.clone();
    if let Some(n) = steps {
        if n == 0 {
            return Err(RunnerError::Input("--steps must be ≥ 1, got 0".into()));
        }
        match &mut method {
            MethodConfig::Dsbm(c) => c.num_steps = n,
            MethodConfig::OtCfm(c) => c.num_steps = n,
            MethodConfig::SbCfm(c) | MethodConfig::Sf2m(c) => c.num_steps = n,
            MethodConfig::LightSb(c) => c.num_steps = n,
            MethodConfig::Dsb(c) if c.num_steps == n => {}
            MethodConfig::Dsb(c) => {
                return Err(RunnerError::Input(format!(
                    "--steps {n}: DSB's networks are tied to the time grid they were trained on (N = {}); \
                     the other methods can sample with another number of steps",
                    c.num_steps
                )))
            }
        }
    }
    let solver = method.build_conditional(spec.sigma, spec.observation_dim)?;
    let bridge = TrainedBridge::load(
        solver,
        &spec.entry.net,
        spec.dim,
        spec.passes,
        dir,
        Device::Cpu,
    )?;
    Ok((bridge, spec))
}

/// Transports the points of `opts.from` and writes them to `opts.out`; returns the model used.
///
/// # Errors
/// No or several models, unreadable files, a dimension mismatch, or an invalid `--steps`.
pub fn sample(opts: &SampleOptions) -> Result<PathBuf> {
    let format = out_format(&opts.out)?;
    let dir = choose_model(opts)?;
    let (bridge, spec) = load_model(&dir, opts.steps)?;
    let points = sb_data::read_points(&opts.from, None)?;
    let m = spec.observation_dim;
    let free = spec.dim - m;
    if points.ncols() != free {
        return Err(RunnerError::Input(format!(
            "{}: points have dimension {} but the model was trained in dimension {free}{}",
            opts.from.display(),
            points.ncols(),
            if m > 0 {
                " (x, beside an observation given by --given)"
            } else {
                ""
            }
        )));
    }
    let points = match (&opts.given, m) {
        (None, 0) => points,
        (Some(given), 0) => {
            return Err(RunnerError::Input(format!(
                "--given {}: the model in {} is not a conditional bridge (it was trained on pi0 and pi1, not on an inverse problem)",
                given.display(),
                dir.display()
            )))
        }
        (None, _) => {
            return Err(RunnerError::Input(format!(
                "the model in {} is a conditional bridge with {m} observed value(s) per point: pass the observations with --given Y.npy",
                dir.display()
            )))
        }
        (Some(given), _) => with_observations(points, given, m)?,
    };
    let start = sb_methods::tensor::to_f32(&points);
    let mut rng = SbRng::stream(opts.seed, 2);
    let sim = bridge.sample(opts.direction, &start, &mut rng, false)?;
    let end = sim.end().slice(ndarray::s![.., ..free]).to_owned();
    match format {
        OutFormat::Npy => sb_data::write_points(&opts.out, end.view())?,
        OutFormat::Csv => write_csv(&opts.out, &end)?,
    }
    Ok(dir)
}

/// `[x, y]` rows: the points beside the observations of `given` (one row per point, or one
/// row for all).
fn with_observations(
    points: ndarray::Array2<f64>,
    given: &Path,
    m: usize,
) -> Result<ndarray::Array2<f64>> {
    let y = sb_data::read_points(given, None)?;
    let n = points.nrows();
    if y.ncols() != m || !(y.nrows() == n || y.nrows() == 1) {
        return Err(RunnerError::Input(format!(
            "--given {}: expected {m} values per row and 1 or {n} rows (one per starting point), got {} × {}",
            given.display(),
            y.nrows(),
            y.ncols()
        )));
    }
    let y = y
        .broadcast((n, m))
        .expect("1 or n rows broadcast to n")
        .to_owned();
    Ok(ndarray::concatenate(ndarray::Axis(1), &[points.view(), y.view()]).expect("n rows each"))
}

/// How `--out` is written, from its extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OutFormat {
    Npy,
    Csv,
}

fn out_format(path: &Path) -> Result<OutFormat> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "npy" => Ok(OutFormat::Npy),
        "csv" => Ok(OutFormat::Csv),
        _ => Err(RunnerError::Input(format!(
            "--out {}: name a .npy (float32) or .csv file",
            path.display()
        ))),
    }
}

/// Writes points as CSV (header x0, x1, …; one row a point), through a temporary file so
/// an interrupted write leaves no partial file.
fn write_csv(path: &Path, points: &ndarray::Array2<f32>) -> Result<()> {
    let mut text = (0..points.ncols())
        .map(|j| format!("x{j}"))
        .collect::<Vec<_>>()
        .join(",");
    text.push('\n');
    for row in points.rows() {
        let line: Vec<String> = row.iter().map(|v| v.to_string()).collect();
        text.push_str(&line.join(","));
        text.push('\n');
    }
    crate::layout::write_atomic(path, text.as_bytes())
}
