//! `sb metric`: one metric between point clouds in `.npy` files, printed as one JSON line.

use std::path::{Path, PathBuf};

use ndarray::{Array1, Array2};
use serde::Serialize;

use crate::{CliError, Result};

/// What `sb metric` prints: fields that do not apply are left out.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MetricLine {
    /// `w1`, `w2` or `bw_uvp`.
    pub metric: &'static str,
    /// The value (BW2²-UVP in percent).
    pub value: f64,
    /// Points in the first (or only) cloud.
    pub n: usize,
    /// Points in the second cloud, where there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub m: Option<usize>,
    /// Whether the exact solver converged (W1, W2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub converged: Option<bool>,
    /// How the exact solver held the costs: `dense`, or `on_the_fly` from the points (W1,
    /// W2; chosen automatically, see `sb_eval::exact`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub costs: Option<sb_eval::CostStorage>,
    /// Sinkhorn: the regularisation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reg: Option<f64>,
    /// Sinkhorn: iterations run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iterations: Option<usize>,
    /// Sinkhorn: the final L1 error of the first marginal (the second is exact).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub marginal_error: Option<f64>,
}

/// Entropic OT between the clouds in two files: `⟨P, C⟩` of the Sinkhorn plan for the squared
/// Euclidean cost, uniform weights, stopped when the first marginal's L1 error is below `tol`.
///
/// # Errors
/// Unreadable files, empty or non-finite arrays, different dimensions, or `reg ≤ 0`.
pub fn sinkhorn(a: &Path, b: &Path, reg: f64, tol: f64) -> Result<MetricLine> {
    let (xa, xb) = (
        sb_data::read_points(a, None)?,
        sb_data::read_points(b, None)?,
    );
    same_dim(&xa, a, &xb, b)?;
    let c = sb_eval::cost_matrix(xa.view(), xb.view(), sb_eval::Ground::SquaredEuclidean)?;
    let options = sb_eval::SinkhornOptions {
        tol,
        ..sb_eval::SinkhornOptions::default()
    };
    let e = sb_eval::sinkhorn(None, None, c.view(), reg, options)?;
    Ok(MetricLine {
        metric: "sinkhorn",
        value: e.cost,
        n: xa.nrows(),
        m: Some(xb.nrows()),
        converged: Some(e.converged),
        costs: None,
        reg: Some(reg),
        iterations: Some(e.iterations),
        marginal_error: Some(e.marginal_error),
    })
}

/// The target of `sb metric bw-uvp`.
#[derive(Clone, Debug)]
pub enum BwTarget {
    /// A Gaussian given by a mean vector and a covariance matrix (`.npy` files).
    Moments {
        /// Mean, shape `(d,)`.
        mean: PathBuf,
        /// Covariance, shape `(d, d)`.
        cov: PathBuf,
    },
    /// A Gaussian fitted to samples.
    Samples(PathBuf),
}

fn same_dim(a: &Array2<f64>, pa: &Path, b: &Array2<f64>, pb: &Path) -> Result<()> {
    if a.ncols() != b.ncols() {
        return Err(CliError::Input(format!(
            "{} has dimension {} but {} has dimension {}",
            pa.display(),
            a.ncols(),
            pb.display(),
            b.ncols()
        )));
    }
    Ok(())
}

/// Exact W1 (`squared = false`) or W2 (`squared = true`) between the clouds in two files.
///
/// # Errors
/// Unreadable files, empty or non-finite arrays, or different dimensions.
pub fn wasserstein(a: &Path, b: &Path, squared: bool) -> Result<MetricLine> {
    let (xa, xb) = (
        sb_data::read_points(a, None)?,
        sb_data::read_points(b, None)?,
    );
    same_dim(&xa, a, &xb, b)?;
    let d = if squared {
        sb_eval::w2(xa.view(), xb.view())?
    } else {
        sb_eval::w1(xa.view(), xb.view())?
    };
    Ok(MetricLine {
        metric: if squared { "w2" } else { "w1" },
        value: d.value,
        n: xa.nrows(),
        m: Some(xb.nrows()),
        converged: Some(d.transport.converged),
        costs: Some(d.transport.costs),
        reg: None,
        iterations: None,
        marginal_error: None,
    })
}

/// BW2²-UVP (percent) of the samples in a file against a Gaussian target.
///
/// # Errors
/// Unreadable files, wrong shapes, non-finite values, or fewer than two samples.
pub fn bw_uvp(samples: &Path, target: &BwTarget) -> Result<MetricLine> {
    let x = sb_data::read_points(samples, None)?;
    let value = match target {
        BwTarget::Samples(t) => {
            let y = sb_data::read_points(t, None)?;
            same_dim(&x, samples, &y, t)?;
            sb_eval::bw2_uvp_samples(x.view(), y.view())?
        }
        BwTarget::Moments { mean, cov } => {
            let mu: Array1<f64> = {
                let m = sb_data::read_points(mean, None)?;
                if m.ncols() != 1 {
                    return Err(CliError::Input(format!(
                        "{}: the mean must be a vector of shape (d,), got {:?}",
                        mean.display(),
                        m.dim()
                    )));
                }
                m.column(0).to_owned()
            };
            let c = sb_data::read_points(cov, None)?;
            let d = x.ncols();
            if mu.len() != d || c.dim() != (d, d) {
                return Err(CliError::Input(format!(
                    "{} has dimension {d}, but the mean {} has {} entries and the covariance {} is {}×{}",
                    samples.display(),
                    mean.display(),
                    mu.len(),
                    cov.display(),
                    c.nrows(),
                    c.ncols()
                )));
            }
            sb_eval::bw2_uvp(x.view(), mu.view(), &c).map_err(|e| match e {
                sb_eval::EvalError::Invalid(m) => {
                    CliError::Input(format!("{}: {m}", cov.display()))
                }
                other => other.into(),
            })?
        }
    };
    Ok(MetricLine {
        metric: "bw_uvp",
        value,
        n: x.nrows(),
        m: None,
        converged: None,
        costs: None,
        reg: None,
        iterations: None,
        marginal_error: None,
    })
}
