//! `sbridge._core`: the Rust side of the Python package. Every function takes float64
//! arrays (the Python layer, `python/sbridge/__init__.py`, converts and documents) and raises
//! `ValueError` with sb-eval's message on bad input.

// As in the `sb` binary: candle allocates a fresh buffer for every operation, and mimalloc
// serves those faster than the system allocator (docs/performance.md), so that training from
// Python runs as fast as `sb run`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use ndarray::{Array1, Array2};
use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::exceptions::{
    PyFileNotFoundError, PyKeyboardInterrupt, PyOSError, PyRuntimeError, PyValueError,
};
use pyo3::prelude::*;
use pyo3::types::PyDict;

fn value_error(e: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// Weights as given, or `None` for an empty array (POT's convention for uniform).
fn weights(w: &PyReadonlyArray1<'_, f64>) -> Option<Vec<f64>> {
    let w = w.as_array();
    (!w.is_empty()).then(|| w.to_vec())
}

/// A sparse plan as a dense `n × m` array.
fn dense(plan: &[(usize, usize, f64)], n: usize, m: usize) -> Array2<f64> {
    let mut g = Array2::zeros((n, m));
    for &(i, j, p) in plan {
        g[[i, j]] = p;
    }
    g
}

/// Exact OT: `(plan, cost, alpha, beta, converged, pivots)`.
#[pyfunction]
#[pyo3(signature = (a, b, cost, max_pivots=None))]
#[allow(clippy::type_complexity)]
fn emd<'py>(
    py: Python<'py>,
    a: PyReadonlyArray1<'py, f64>,
    b: PyReadonlyArray1<'py, f64>,
    cost: PyReadonlyArray2<'py, f64>,
    max_pivots: Option<u64>,
) -> PyResult<(
    Bound<'py, PyArray2<f64>>,
    f64,
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<f64>>,
    bool,
    u64,
)> {
    let (wa, wb) = (weights(&a), weights(&b));
    let c = cost.as_array().to_owned();
    let (n, m) = c.dim();
    let t = py
        .detach(|| {
            sb_eval::emd(
                wa.as_deref(),
                wb.as_deref(),
                c.view(),
                sb_eval::EmdOptions {
                    max_pivots,
                    ..sb_eval::EmdOptions::default()
                },
            )
        })
        .map_err(value_error)?;
    let (alpha, beta) = t.potentials;
    Ok((
        dense(&t.plan, n, m).into_pyarray(py),
        t.cost,
        Array1::from(alpha).into_pyarray(py),
        Array1::from(beta).into_pyarray(py),
        t.converged,
        t.pivots,
    ))
}

/// Exact W_p (p = 1 or 2) between uniformly weighted clouds: `(value, converged, costs)`.
#[pyfunction]
fn wasserstein<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f64>,
    y: PyReadonlyArray2<'py, f64>,
    p: u32,
) -> PyResult<(f64, bool, String)> {
    let (x, y) = (x.as_array().to_owned(), y.as_array().to_owned());
    let d = py
        .detach(|| match p {
            1 => sb_eval::w1(x.view(), y.view()),
            2 => sb_eval::w2(x.view(), y.view()),
            _ => Err(sb_eval::EvalError::Invalid(format!(
                "p must be 1 or 2, got {p}"
            ))),
        })
        .map_err(value_error)?;
    let costs = match d.transport.costs {
        sb_eval::CostStorage::Dense => "dense",
        sb_eval::CostStorage::OnTheFly => "on_the_fly",
    };
    Ok((d.value, d.transport.converged, costs.to_string()))
}

/// Entropic OT: the plan and a dict of the solve.
#[pyfunction]
#[pyo3(signature = (a, b, cost, reg, tol, max_iter, eps_scaling))]
#[allow(clippy::too_many_arguments)]
fn sinkhorn<'py>(
    py: Python<'py>,
    a: PyReadonlyArray1<'py, f64>,
    b: PyReadonlyArray1<'py, f64>,
    cost: PyReadonlyArray2<'py, f64>,
    reg: f64,
    tol: f64,
    max_iter: usize,
    eps_scaling: bool,
) -> PyResult<(Bound<'py, PyArray2<f64>>, Bound<'py, PyDict>)> {
    let (wa, wb) = (weights(&a), weights(&b));
    let c = cost.as_array().to_owned();
    let options = sb_eval::SinkhornOptions {
        tol,
        max_iter,
        eps_scaling,
    };
    let e = py
        .detach(|| sb_eval::sinkhorn(wa.as_deref(), wb.as_deref(), c.view(), reg, options))
        .map_err(value_error)?;
    let log = PyDict::new(py);
    log.set_item("cost", e.cost)?;
    log.set_item("f", Array1::from(e.potentials.0).into_pyarray(py))?;
    log.set_item("g", Array1::from(e.potentials.1).into_pyarray(py))?;
    log.set_item("iterations", e.iterations)?;
    log.set_item("converged", e.converged)?;
    log.set_item("marginal_error", e.marginal_error)?;
    Ok((e.plan.into_pyarray(py), log))
}

/// BW2²-UVP (%) of samples against `N(mean, cov)`.
#[pyfunction]
fn bw_uvp(
    samples: PyReadonlyArray2<'_, f64>,
    mean: PyReadonlyArray1<'_, f64>,
    cov: PyReadonlyArray2<'_, f64>,
) -> PyResult<f64> {
    sb_eval::bw2_uvp(
        samples.as_array(),
        mean.as_array(),
        &cov.as_array().to_owned(),
    )
    .map_err(value_error)
}

/// cBW2²-UVP (%) over conditioning inputs.
#[pyfunction]
fn cbw_uvp(
    samples: Vec<PyReadonlyArray2<'_, f64>>,
    means: Vec<PyReadonlyArray1<'_, f64>>,
    covs: Vec<PyReadonlyArray2<'_, f64>>,
    target_var_trace: f64,
) -> PyResult<f64> {
    if samples.len() != means.len() || samples.len() != covs.len() {
        return Err(value_error(format!(
            "{} sample sets, {} means and {} covariances: give one of each per input",
            samples.len(),
            means.len(),
            covs.len()
        )));
    }
    let covs: Vec<Array2<f64>> = covs.iter().map(|c| c.as_array().to_owned()).collect();
    let conditionals: Vec<_> = samples
        .iter()
        .zip(&means)
        .zip(&covs)
        .map(|((s, m), c)| (s.as_array(), m.as_array(), c))
        .collect();
    sb_eval::cbw2_uvp(&conditionals, target_var_trace).map_err(value_error)
}

/// `KL(N(m1, s1) ‖ N(m2, s2))`.
#[pyfunction]
fn gaussian_kl(
    m1: PyReadonlyArray1<'_, f64>,
    s1: PyReadonlyArray2<'_, f64>,
    m2: PyReadonlyArray1<'_, f64>,
    s2: PyReadonlyArray2<'_, f64>,
) -> PyResult<f64> {
    sb_eval::gaussian_kl(
        m1.as_array(),
        &s1.as_array().to_owned(),
        m2.as_array(),
        &s2.as_array().to_owned(),
    )
    .map_err(value_error)
}

/// Biased MMD² with the kernel `exp(−‖x − y‖²/(2h²))`.
#[pyfunction]
fn mmd_rbf(x: PyReadonlyArray2<'_, f64>, y: PyReadonlyArray2<'_, f64>, h: f64) -> PyResult<f64> {
    sb_eval::mmd_rbf(x.as_array(), y.as_array(), h).map_err(value_error)
}

/// The closed-form Gaussian Schrödinger bridge.
#[pyclass(name = "GaussianBridge", module = "sbridge")]
struct PyGaussianBridge {
    inner: sb_eval::GaussianBridge,
}

#[pymethods]
impl PyGaussianBridge {
    #[new]
    fn new(
        mu0: PyReadonlyArray1<'_, f64>,
        sigma0: PyReadonlyArray2<'_, f64>,
        mu1: PyReadonlyArray1<'_, f64>,
        sigma1: PyReadonlyArray2<'_, f64>,
        eps: f64,
    ) -> PyResult<Self> {
        let inner = sb_eval::GaussianBridge::new(
            mu0.as_array().to_owned(),
            sigma0.as_array().to_owned(),
            mu1.as_array().to_owned(),
            sigma1.as_array().to_owned(),
            eps,
        )
        .map_err(value_error)?;
        Ok(Self { inner })
    }

    /// The dimension.
    #[getter]
    fn dim(&self) -> usize {
        self.inner.dim()
    }

    /// `C = Cov(X0, X1)` of the optimal plan.
    #[getter]
    fn cross_covariance<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray2<f64>> {
        self.inner.cross_covariance().clone().into_pyarray(py)
    }

    /// The covariance `[[Σ0, C], [Cᵀ, Σ1]]` of the plan.
    fn plan_covariance<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray2<f64>> {
        self.inner.plan_covariance().into_pyarray(py)
    }

    /// `(mean, cov)` of the marginal at time `t`.
    fn marginal<'py>(
        &self,
        py: Python<'py>,
        t: f64,
    ) -> (Bound<'py, PyArray1<f64>>, Bound<'py, PyArray2<f64>>) {
        let (m, c) = self.inner.marginal(t);
        (m.into_pyarray(py), c.into_pyarray(py))
    }

    /// `(mean, cov)` of `X1 | X0 = x`.
    fn conditional<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray1<'py, f64>,
    ) -> PyResult<(Bound<'py, PyArray1<f64>>, Bound<'py, PyArray2<f64>>)> {
        if x.len()? != self.inner.dim() {
            return Err(value_error(format!(
                "x has {} entries, the bridge dimension {}",
                x.len()?,
                self.inner.dim()
            )));
        }
        let (m, c) = self.inner.conditional(x.as_array());
        Ok((m.into_pyarray(py), c.into_pyarray(py)))
    }

    /// `n` exact draws of the marginal at time `t` (the project's seeded generator).
    #[pyo3(signature = (t, n, seed=0))]
    fn sample_marginal<'py>(
        &self,
        py: Python<'py>,
        t: f64,
        n: usize,
        seed: u64,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let mut rng = sb_data::SbRng::new(seed);
        let x = self
            .inner
            .sample_marginal(t, n, &mut rng)
            .map_err(value_error)?;
        Ok(x.into_pyarray(py))
    }

    /// `n` exact draws `(X0, X1)` of the optimal plan.
    #[pyo3(signature = (n, seed=0))]
    fn sample_plan<'py>(
        &self,
        py: Python<'py>,
        n: usize,
        seed: u64,
    ) -> PyResult<(Bound<'py, PyArray2<f64>>, Bound<'py, PyArray2<f64>>)> {
        let mut rng = sb_data::SbRng::new(seed);
        let (x0, x1) = self.inner.sample_plan(n, &mut rng).map_err(value_error)?;
        Ok((x0.into_pyarray(py), x1.into_pyarray(py)))
    }
}

/// Maps a runner error to the Python exception a user expects: a missing file is
/// `FileNotFoundError`, Ctrl-C is `KeyboardInterrupt`, another I/O failure `OSError`, a
/// diverged training `RuntimeError`, anything else (a key, a value, an input) `ValueError`.
/// The message is the command line's.
fn runner_error(e: sb_runner::RunnerError) -> PyErr {
    use sb_methods::MethodError;
    use sb_runner::RunnerError;
    let text = e.to_string();
    match e {
        RunnerError::Io { path, .. } if !path.exists() => PyFileNotFoundError::new_err(text),
        RunnerError::Io { .. } => PyOSError::new_err(text),
        RunnerError::Method(MethodError::Interrupted { .. }) => PyKeyboardInterrupt::new_err(text),
        RunnerError::Method(MethodError::Diverged { .. } | MethodError::NonFiniteSample { .. }) => {
            PyRuntimeError::new_err(text)
        }
        _ => PyValueError::new_err(text),
    }
}

/// Stops training when the interpreter has a pending signal (Ctrl-C): every 16 optimizer
/// steps it takes the GIL for a moment and asks; the signal's exception is kept to be raised.
struct Signals<'a> {
    pending: &'a mut Option<PyErr>,
    steps: usize,
}

impl sb_methods::Observer for Signals<'_> {
    fn interrupted(&mut self) -> bool {
        self.steps += 1;
        if self.steps % 16 != 0 {
            return false;
        }
        match Python::attach(|py| py.check_signals()) {
            Ok(()) => false,
            Err(e) => {
                *self.pending = Some(e);
                true
            }
        }
    }
}

/// What a run from Python shows: nothing, but Ctrl-C stops it (finished passes stay
/// checkpointed, so `run` with `resume=` continues it).
#[derive(Default)]
struct Quiet {
    pending: Option<PyErr>,
}

impl sb_runner::Reporter for Quiet {
    fn training(&mut self, _job: &sb_runner::Job) -> Option<Box<dyn sb_methods::Observer + '_>> {
        Some(Box::new(Signals {
            pending: &mut self.pending,
            steps: 0,
        }))
    }
}

/// The pending signal's exception if training was interrupted, else the error itself.
fn interrupted_or(pending: Option<PyErr>, e: sb_runner::RunnerError) -> PyErr {
    match (pending, &e) {
        (
            Some(signal),
            sb_runner::RunnerError::Method(sb_methods::MethodError::Interrupted { .. }),
        ) => signal,
        _ => runner_error(e),
    }
}

/// Runs an experiment: from the file `path`, or from `text` (YAML or JSON, its relative data
/// paths read from `base`); `resume` continues a run directory instead. Returns the run
/// directory and the result rows as JSON.
#[pyfunction]
#[pyo3(signature = (path=None, text=None, base=None, out=None, seeds=None, shard=None, resume=None))]
#[allow(clippy::too_many_arguments)]
fn run(
    py: Python<'_>,
    path: Option<std::path::PathBuf>,
    text: Option<String>,
    base: Option<std::path::PathBuf>,
    out: Option<std::path::PathBuf>,
    seeds: Option<Vec<u64>>,
    shard: Option<String>,
    resume: Option<std::path::PathBuf>,
) -> PyResult<(String, String)> {
    let shard = shard
        .map(|s| s.parse::<sb_runner::Shard>())
        .transpose()
        .map_err(|e| value_error(format!("shard: {e}")))?;
    let mut quiet = Quiet::default();
    let result = py.detach(|| -> sb_runner::Result<_> {
        if let Some(dir) = resume {
            return sb_runner::resume(&dir, &mut quiet);
        }
        let (mut exp, file) = match (path, text) {
            (Some(path), _) => (sb_runner::Experiment::load(&path)?, path),
            (None, Some(text)) => {
                let file = std::path::PathBuf::from("<experiment given to sbridge.run>");
                let base = base.unwrap_or_else(|| std::path::PathBuf::from("."));
                (sb_runner::Experiment::parse_in(&text, &file, &base)?, file)
            }
            (None, None) => {
                return Err(sb_runner::RunnerError::Input(
                    "give an experiment file's path or its contents".into(),
                ))
            }
        };
        if let Some(seeds) = seeds {
            exp.seeds = seeds;
            exp.validate(&file)?;
        }
        let options = sb_runner::RunOptions {
            out,
            seed: None,
            shard,
        };
        sb_runner::run_experiment(exp, &file, &options, &mut quiet)
    });
    let (dir, rows) = result.map_err(|e| interrupted_or(quiet.pending.take(), e))?;
    let rows = serde_json::to_string(&rows).expect("rows serialise");
    Ok((dir.display().to_string(), rows))
}

/// Merges run directories of one experiment into one table, as `sb report`; writes the
/// report's files in `out` if given. Returns (Markdown, table lines as JSON, rows as JSON,
/// missing jobs).
#[pyfunction]
#[pyo3(signature = (dirs, out=None))]
fn report(
    py: Python<'_>,
    dirs: Vec<std::path::PathBuf>,
    out: Option<std::path::PathBuf>,
) -> PyResult<(String, String, String, Vec<String>)> {
    py.detach(|| -> sb_runner::Result<_> {
        let report = sb_runner::report(&dirs)?;
        if let Some(dir) = out {
            report.write(&dir)?;
        }
        let rows = serde_json::to_string(&report.rows).expect("rows serialise");
        Ok((
            report.markdown(),
            sb_runner::table::json(&report.lines),
            rows,
            report.missing,
        ))
    })
    .map_err(runner_error)
}

/// A trained Schrödinger bridge (any method of the `sb` runner).
#[pyclass(name = "Bridge", module = "sbridge", unsendable)]
struct PyBridge {
    bridge: sb_methods::TrainedBridge,
    spec: sb_runner::layout::ModelSpec,
}

fn to_f32(x: &PyReadonlyArray2<'_, f64>) -> Array2<f32> {
    x.as_array().mapv(|v| v as f32)
}

fn direction(name: &str) -> PyResult<sb_methods::Direction> {
    match name {
        "forward" => Ok(sb_methods::Direction::Forward),
        "backward" => Ok(sb_methods::Direction::Backward),
        other => Err(value_error(format!(
            "direction must be \"forward\" or \"backward\", got {other:?}"
        ))),
    }
}

#[pymethods]
impl PyBridge {
    /// Trains `entry` (JSON of an experiment file's method entry) between the rows of `x0`
    /// and `x1` with a reference of noise `sigma`; every random draw from `seed`, as `sb run`
    /// trains a problem of two files (the same weights for the same entry and seed).
    #[staticmethod]
    fn fit(
        py: Python<'_>,
        x0: PyReadonlyArray2<'_, f64>,
        x1: PyReadonlyArray2<'_, f64>,
        entry: &str,
        sigma: f64,
        seed: u64,
    ) -> PyResult<Self> {
        let entry: sb_runner::experiment::MethodEntry =
            serde_json::from_str(entry).map_err(value_error)?;
        let (x0, x1) = (x0.as_array().to_owned(), x1.as_array().to_owned());
        for (name, x) in [("x0", &x0), ("x1", &x1)] {
            if x.nrows() < 2 || x.iter().any(|v| !v.is_finite()) {
                return Err(value_error(format!(
                    "{name} must hold at least two rows of finite numbers"
                )));
            }
        }
        if x0.ncols() != x1.ncols() {
            return Err(value_error(format!(
                "x0 has {} columns but x1 has {}",
                x0.ncols(),
                x1.ncols()
            )));
        }
        let dim = x0.ncols();
        let solver = entry.method.build(sigma).map_err(value_error)?;
        let trainer = sb_methods::Trainer::new(
            solver,
            entry.net.clone(),
            entry.train.clone(),
            candle_core::Device::Cpu,
        )
        .map_err(value_error)?;
        let mut pending = None;
        let trained = py.detach(|| {
            let (pi0, pi1) = (
                sb_data::Source::empirical(x0),
                sb_data::Source::empirical(x1),
            );
            let mut rng = sb_data::SbRng::stream(seed, 0);
            let mut signals = Signals {
                pending: &mut pending,
                steps: 0,
            };
            trainer.train(&pi0, &pi1, &mut rng, &mut [&mut signals])
        });
        let bridge =
            trained.map_err(|e| interrupted_or(pending.take(), sb_runner::RunnerError::from(e)))?;
        let spec = sb_runner::layout::ModelSpec {
            method: entry.label.clone().unwrap_or_else(|| bridge.name()),
            benchmark: "sbridge".into(),
            sigma,
            dim,
            seed,
            passes: entry.train.passes,
            fraction: None,
            sigma_rule: None,
            observation_dim: 0,
            entry,
        };
        Ok(Self { bridge, spec })
    }

    /// The method's name in results (DSBM-IMF, SB-CFM, …).
    #[getter]
    fn name(&self) -> String {
        self.bridge.name()
    }

    /// The method entry trained, as JSON.
    #[getter]
    fn config(&self) -> String {
        serde_json::to_string(&self.spec.entry).expect("plain data serialises")
    }

    /// The reference's σ.
    #[getter]
    fn sigma(&self) -> f64 {
        self.spec.sigma
    }

    /// Transports the rows of `x` with noise from `seed` (the stream `sb sample --seed`
    /// uses, so both give the same points): the end points, or with `trajectories` every
    /// Euler state (shape (steps + 1, n, d)).
    fn sample<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray2<'py, f64>,
        direction_name: &str,
        seed: u64,
        trajectories: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let d = direction(direction_name)?;
        let columns = x.as_array().ncols();
        if columns != self.spec.dim {
            return Err(value_error(format!(
                "x has {columns} columns but the bridge was trained in dimension {}",
                self.spec.dim
            )));
        }
        let start = to_f32(&x);
        let bridge = &self.bridge;
        let sim = py
            .detach(|| {
                let mut rng = sb_data::SbRng::stream(seed, 2);
                bridge.sample(d, &start, &mut rng, trajectories)
            })
            .map_err(value_error)?;
        if trajectories {
            let n = start.nrows();
            let states = &sim.states;
            let mut out = ndarray::Array3::<f64>::zeros((states.len(), n, self.spec.dim));
            for (k, s) in states.iter().enumerate() {
                out.index_axis_mut(ndarray::Axis(0), k)
                    .assign(&s.mapv(f64::from));
            }
            Ok(out.into_pyarray(py).into_any())
        } else {
            Ok(sim.end().mapv(f64::from).into_pyarray(py).into_any())
        }
    }

    /// Writes the weights (or LightSB's plan) and `model.yaml` in `dir`, as a run directory's
    /// model: `sb sample` reads it.
    fn save(&self, dir: std::path::PathBuf) -> PyResult<()> {
        sb_runner::layout::write_model(&self.bridge, &self.spec, &dir).map_err(runner_error)
    }

    /// Reads a model folder written by `save` or by `sb run` (`<run>/models/<problem>/<method>/seed<k>`).
    #[staticmethod]
    fn load(dir: std::path::PathBuf) -> PyResult<Self> {
        let (bridge, spec) = sb_runner::sample::load_model(&dir, None).map_err(runner_error)?;
        Ok(Self { bridge, spec })
    }
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyBridge>()?;
    m.add_function(wrap_pyfunction!(run, m)?)?;
    m.add_function(wrap_pyfunction!(report, m)?)?;
    m.add_function(wrap_pyfunction!(emd, m)?)?;
    m.add_function(wrap_pyfunction!(wasserstein, m)?)?;
    m.add_function(wrap_pyfunction!(sinkhorn, m)?)?;
    m.add_function(wrap_pyfunction!(bw_uvp, m)?)?;
    m.add_function(wrap_pyfunction!(cbw_uvp, m)?)?;
    m.add_function(wrap_pyfunction!(gaussian_kl, m)?)?;
    m.add_function(wrap_pyfunction!(mmd_rbf, m)?)?;
    m.add_class::<PyGaussianBridge>()?;
    Ok(())
}
