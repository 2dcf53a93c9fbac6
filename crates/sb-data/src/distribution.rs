//! Distribution configurations (plain serde data) and samplers.

use std::path::PathBuf;

use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};

use crate::{io, toys, DataError, SbRng, TimeCourse};

/// A vector given as one number for every coordinate, or in full.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum VectorSpec {
    /// The same value in every coordinate.
    Scalar(f64),
    /// Every coordinate.
    Full(Vec<f64>),
}

impl Default for VectorSpec {
    fn default() -> Self {
        Self::Scalar(0.0)
    }
}

impl VectorSpec {
    /// The vector in dimension `dim`.
    ///
    /// # Errors
    /// A full vector whose length is not `dim`.
    pub fn resolve(&self, dim: usize) -> Result<Array1<f64>, DataError> {
        match self {
            Self::Scalar(v) => Ok(Array1::from_elem(dim, *v)),
            Self::Full(v) if v.len() == dim => Ok(Array1::from(v.clone())),
            Self::Full(v) => Err(DataError::Invalid(format!(
                "the mean has {} entries but the dimension is {dim}",
                v.len()
            ))),
        }
    }
}

/// A covariance given as a scalar (times the identity), a diagonal, or a full matrix.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MatrixSpec {
    /// `s · I`.
    Scalar(f64),
    /// `diag(v)`.
    Diagonal(Vec<f64>),
    /// The full matrix, row by row.
    Full(Vec<Vec<f64>>),
    /// `W Wᵀ` with `W = Q · diag(exp(linspace(ln scale_min, ln scale_max, dim)))` and `Q` a
    /// Haar-random rotation drawn from `rotation_seed` (the ENOT benchmark's covariances).
    Rotated {
        /// Seed of the rotation; two seeds give two independent rotations.
        rotation_seed: u64,
        /// The smallest scale (a standard deviation along one principal axis).
        scale_min: f64,
        /// The largest scale.
        scale_max: f64,
    },
}

impl Default for MatrixSpec {
    fn default() -> Self {
        Self::Scalar(1.0)
    }
}

impl MatrixSpec {
    /// The matrix in dimension `dim`.
    ///
    /// # Errors
    /// Wrong sizes, or an asymmetric full matrix.
    pub fn resolve(&self, dim: usize) -> Result<Array2<f64>, DataError> {
        match self {
            Self::Scalar(s) => Ok(Array2::eye(dim) * *s),
            Self::Diagonal(v) if v.len() == dim => Ok(Array2::from_diag(&Array1::from(v.clone()))),
            Self::Diagonal(v) => Err(DataError::Invalid(format!(
                "the covariance diagonal has {} entries but the dimension is {dim}",
                v.len()
            ))),
            Self::Full(rows) => {
                if rows.len() != dim || rows.iter().any(|r| r.len() != dim) {
                    return Err(DataError::Invalid(format!(
                        "the covariance must be {dim}×{dim}"
                    )));
                }
                let m = Array2::from_shape_fn((dim, dim), |(i, j)| rows[i][j]);
                for i in 0..dim {
                    for j in 0..i {
                        if (m[[i, j]] - m[[j, i]]).abs() > 1e-12 * (1.0 + m[[i, j]].abs()) {
                            return Err(DataError::Invalid(format!(
                                "the covariance is not symmetric at ({i}, {j})"
                            )));
                        }
                    }
                }
                Ok(m)
            }
            Self::Rotated {
                rotation_seed,
                scale_min,
                scale_max,
            } => {
                if !(*scale_min > 0.0 && scale_max >= scale_min && scale_max.is_finite()) {
                    return Err(DataError::Invalid(format!(
                        "the rotated covariance needs 0 < scale_min ≤ scale_max, got {scale_min} and {scale_max}"
                    )));
                }
                let q = haar_rotation(dim, &mut SbRng::new(*rotation_seed));
                let (lo, hi) = (scale_min.ln(), scale_max.ln());
                let scales = Array1::from_shape_fn(dim, |i| {
                    let f = if dim > 1 {
                        i as f64 / (dim - 1) as f64
                    } else {
                        0.0
                    };
                    (lo + f * (hi - lo)).exp()
                });
                let w = &q * &scales;
                Ok(w.dot(&w.t()))
            }
        }
    }
}

/// A Haar-distributed `dim × dim` rotation: Gram–Schmidt on a Gaussian matrix (the QR
/// factor whose `R` has a positive diagonal, which is Haar; Mezzadri 2007).
pub fn haar_rotation(dim: usize, rng: &mut SbRng) -> Array2<f64> {
    let mut q =
        Array2::from_shape_vec((dim, dim), rng.normal_f64(dim * dim)).expect("dim × dim values");
    for j in 0..dim {
        for k in 0..j {
            let proj = q.column(j).dot(&q.column(k));
            let prev = q.column(k).to_owned();
            q.column_mut(j).scaled_add(-proj, &prev);
        }
        let norm = q.column(j).dot(&q.column(j)).sqrt();
        q.column_mut(j).mapv_inplace(|v| v / norm);
    }
    q
}

/// One component of a Gaussian mixture.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Component {
    /// Relative weight (need not sum to one over components). Defaults to 1.
    #[serde(default = "one")]
    pub weight: f64,
    /// The mean, which fixes the dimension.
    pub mean: Vec<f64>,
    /// The covariance. Defaults to the identity.
    #[serde(default)]
    pub cov: MatrixSpec,
}

fn one() -> f64 {
    1.0
}
fn default_noise() -> f64 {
    0.1
}
fn torchcfm_noise() -> f64 {
    0.05
}
fn dsb_scale() -> f64 {
    7.0
}
fn swiss_noise() -> f64 {
    1.0
}
fn circles_noise() -> f64 {
    0.08
}
fn circles_factor() -> f64 {
    0.5
}
fn eight_radius() -> f64 {
    2.0 * std::f64::consts::SQRT_2
}
fn eight_std() -> f64 {
    0.5 * std::f64::consts::FRAC_1_SQRT_2
}

/// A distribution to draw points from, as written in an experiment file (`kind: ...`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Distribution {
    /// `N(mean, cov)` in `dim` dimensions.
    Gaussian {
        /// Dimension.
        dim: usize,
        /// Mean. Defaults to 0.
        #[serde(default)]
        mean: VectorSpec,
        /// Covariance. Defaults to the identity.
        #[serde(default)]
        cov: MatrixSpec,
    },
    /// A Gaussian mixture.
    Mixture {
        /// The components, all of one dimension.
        components: Vec<Component>,
    },
    /// Two interleaving half moons (scikit-learn), scaled as in FFJORD.
    Moons {
        /// Standard deviation of the added noise. Defaults to 0.1.
        #[serde(default = "default_noise")]
        noise: f64,
    },
    /// Two interleaving half moons as in TorchCFM's toys (the DSBM paper's 2-D table):
    /// scikit-learn's `make_moons`, then `x ↦ 2x − (1, 0)`. A finite data set (a problem's
    /// `split`) has scikit-learn's evenly spaced angles; single draws take a uniform angle.
    TorchcfmMoons {
        /// Standard deviation of the added noise (before scaling). Defaults to 0.05.
        #[serde(default = "torchcfm_noise")]
        noise: f64,
    },
    /// Two interleaving half moons as in the DSB code's 2-D data (`data_distrib("moon")`):
    /// scikit-learn's `make_moons` (evenly spaced angles), standardised by the mean and
    /// standard deviation of all its coordinates together, then times `scale`. A finite data
    /// set is standardised by its own statistics, as the DSB code does; single draws use
    /// their limits (mean 3/8, variance 0.671875 − 1/(2π) + noise²).
    DsbMoons {
        /// Standard deviation of the added noise (before standardising). Defaults to 0.1.
        #[serde(default = "default_noise")]
        noise: f64,
        /// The factor after standardising. Defaults to 7.
        #[serde(default = "dsb_scale")]
        scale: f64,
    },
    /// The S-curve (scikit-learn), first and third coordinates, times `scale`.
    Scurve {
        /// Standard deviation of the added noise. Defaults to 0.1.
        #[serde(default = "default_noise")]
        noise: f64,
        /// The factor applied last (TorchCFM's toys: 1.5). Defaults to 1.
        #[serde(default = "one")]
        scale: f64,
    },
    /// Eight Gaussians on a circle.
    #[serde(rename = "8gaussians", alias = "eight_gaussians")]
    EightGaussians {
        /// Radius of the circle of centres. Defaults to 2√2 (FFJORD: 4/√2).
        #[serde(default = "eight_radius")]
        radius: f64,
        /// Standard deviation of each component. Defaults to 0.5/√2 (FFJORD).
        #[serde(default = "eight_std")]
        std: f64,
        /// Whether a finite data set has exactly `n/8` points per centre (torchdyn's
        /// `ToyDataset`, TorchCFM's 8 Gaussians) instead of a random centre per point.
        /// Defaults to false.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        balanced: bool,
    },
    /// FFJORD's checkerboard.
    Checkerboard,
    /// The Swiss roll (scikit-learn), first and third coordinates over 5.
    SwissRoll {
        /// Standard deviation of the added noise. Defaults to 1.0.
        #[serde(default = "swiss_noise")]
        noise: f64,
    },
    /// Two concentric circles (scikit-learn), scaled by 3.
    Circles {
        /// Standard deviation of the added noise. Defaults to 0.08.
        #[serde(default = "circles_noise")]
        noise: f64,
        /// Ratio of the inner radius to the outer one. Defaults to 0.5.
        #[serde(default = "circles_factor")]
        factor: f64,
    },
    /// A point cloud from a `.npy`, `.npz` or `.csv` file; draws resample its rows.
    File {
        /// The file (relative to the experiment file's folder).
        path: PathBuf,
        /// The array's name inside an `.npz` archive.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
        /// CSV: the field separator. Defaults to `,` (tab for `.tsv`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        delimiter: Option<char>,
        /// CSV: columns to leave out, by header name (an index column is `""`).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        drop_columns: Vec<String>,
    },
    /// One time of a labelled time course; draws resample its rows.
    TimeCourse {
        /// Points: `.npy`/`.npz`, or CSV with a time column.
        data: PathBuf,
        /// One label per row (`.npy`); omit for CSV with `time_column`.
        #[serde(default)]
        labels: Option<PathBuf>,
        /// The CSV column holding the times.
        #[serde(default)]
        time_column: Option<String>,
        /// The array's name inside an `.npz` archive.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
        /// CSV: the field separator. Defaults to `,` (tab for `.tsv`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        delimiter: Option<char>,
        /// CSV: columns to leave out, by header name (an index column is `""`).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        drop_columns: Vec<String>,
        /// The time (label value) to take.
        time: f64,
    },
}

/// A distribution ready to draw from: parameters checked, files loaded.
#[derive(Clone, Debug)]
pub struct Source {
    kind: SourceKind,
    dim: usize,
}

#[derive(Clone, Debug)]
enum SourceKind {
    Gaussian {
        mean: Array1<f64>,
        chol: Array2<f64>,
    },
    Mixture {
        weights: Vec<f64>,
        means: Vec<Array1<f64>>,
        chols: Vec<Array2<f64>>,
    },
    Toy(Distribution),
    Empirical(Array2<f64>),
}

impl Distribution {
    /// Checks the parameters and loads files, giving something to draw from.
    ///
    /// # Errors
    /// Invalid parameters (negative noise, a covariance that is not positive definite,
    /// wrong sizes) or a file that cannot be read.
    pub fn load(&self) -> Result<Source, DataError> {
        let nonneg = |name: &str, v: f64| {
            if v >= 0.0 && v.is_finite() {
                Ok(())
            } else {
                Err(DataError::Invalid(format!("{name} must be ≥ 0, got {v}")))
            }
        };
        let toy = |d: &Distribution| Source {
            kind: SourceKind::Toy(d.clone()),
            dim: 2,
        };
        Ok(match self {
            Self::Gaussian { dim, mean, cov } => {
                if *dim == 0 {
                    return Err(DataError::Invalid("dim must be ≥ 1, got 0".into()));
                }
                let mean = mean.resolve(*dim)?;
                let chol = cholesky(&cov.resolve(*dim)?)?;
                Source {
                    kind: SourceKind::Gaussian { mean, chol },
                    dim: *dim,
                }
            }
            Self::Mixture { components } => {
                let Some(first) = components.first() else {
                    return Err(DataError::Invalid(
                        "a mixture needs at least one component".into(),
                    ));
                };
                let dim = first.mean.len();
                let mut means = Vec::new();
                let mut chols = Vec::new();
                for (i, c) in components.iter().enumerate() {
                    if c.mean.len() != dim {
                        return Err(DataError::Invalid(format!(
                            "component {i} has dimension {} but component 0 has {dim}",
                            c.mean.len()
                        )));
                    }
                    if !(c.weight > 0.0 && c.weight.is_finite()) {
                        return Err(DataError::Invalid(format!(
                            "component {i}: weight must be > 0, got {}",
                            c.weight
                        )));
                    }
                    means.push(Array1::from(c.mean.clone()));
                    chols.push(cholesky(&c.cov.resolve(dim)?)?);
                }
                Source {
                    kind: SourceKind::Mixture {
                        weights: components.iter().map(|c| c.weight).collect(),
                        means,
                        chols,
                    },
                    dim,
                }
            }
            Self::Moons { noise } | Self::TorchcfmMoons { noise } | Self::SwissRoll { noise } => {
                nonneg("noise", *noise)?;
                toy(self)
            }
            Self::DsbMoons { noise, scale } | Self::Scurve { noise, scale } => {
                nonneg("noise", *noise)?;
                nonneg("scale", *scale)?;
                toy(self)
            }
            Self::EightGaussians { radius, std, .. } => {
                nonneg("radius", *radius)?;
                nonneg("std", *std)?;
                toy(self)
            }
            Self::Circles { noise, factor } => {
                nonneg("noise", *noise)?;
                nonneg("factor", *factor)?;
                toy(self)
            }
            Self::Checkerboard => toy(self),
            Self::File {
                path,
                key,
                delimiter,
                drop_columns,
            } => {
                let options = io::ReadOptions {
                    key: key.clone(),
                    delimiter: *delimiter,
                    drop_columns: drop_columns.clone(),
                };
                Source::empirical(io::read_points_with(path, &options)?)
            }
            Self::TimeCourse {
                data,
                labels,
                time_column,
                key,
                delimiter,
                drop_columns,
                time,
            } => {
                let options = io::ReadOptions {
                    key: key.clone(),
                    delimiter: *delimiter,
                    drop_columns: drop_columns.clone(),
                };
                let course = TimeCourse::load_with(
                    data,
                    labels.as_deref(),
                    time_column.as_deref(),
                    &options,
                )?;
                Source::empirical(course.at(*time)?)
            }
        })
    }
}

impl Distribution {
    /// Makes the file paths absolute against `base` (the experiment file's folder); the
    /// files this distribution reads, absolute.
    pub fn resolve_paths(&mut self, base: &std::path::Path) -> Vec<PathBuf> {
        match self {
            Self::File { path, .. } => {
                *path = crate::io::absolute(base, path);
                vec![path.clone()]
            }
            Self::TimeCourse { data, labels, .. } => {
                *data = crate::io::absolute(base, data);
                let mut files = vec![data.clone()];
                if let Some(l) = labels {
                    *l = crate::io::absolute(base, l);
                    files.push(l.clone());
                }
                files
            }
            _ => Vec::new(),
        }
    }
}

fn rows_to_array(rows: &[[f64; 2]]) -> Array2<f64> {
    Array2::from_shape_fn((rows.len(), 2), |(i, j)| rows[i][j])
}

/// A Gaussian's mean and covariance.
pub type GaussianParameters = (Array1<f64>, Array2<f64>);

impl Distribution {
    /// The mean and covariance of a `kind: gaussian` distribution (for closed-form truths),
    /// `None` for every other kind.
    ///
    /// # Errors
    /// Invalid sizes, as [`Distribution::load`].
    pub fn gaussian_parameters(&self) -> Result<Option<GaussianParameters>, DataError> {
        match self {
            Self::Gaussian { dim, mean, cov } => {
                Ok(Some((mean.resolve(*dim)?, cov.resolve(*dim)?)))
            }
            _ => Ok(None),
        }
    }
}

impl Source {
    /// A source that resamples the rows of `points`.
    pub fn empirical(points: Array2<f64>) -> Self {
        let dim = points.ncols();
        Self {
            kind: SourceKind::Empirical(points),
            dim,
        }
    }

    /// The dimension of the points.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The points of an empirical source (a file or a time-course day), `None` otherwise.
    pub fn points(&self) -> Option<&Array2<f64>> {
        match &self.kind {
            SourceKind::Empirical(p) => Some(p),
            _ => None,
        }
    }

    /// A finite data set of `n` points, as a benchmark fixes one before splitting it: a
    /// data source's rows in random order (its first `n`), the moons of TorchCFM and of the
    /// DSB code with scikit-learn's evenly spaced angles (the latter standardised by the
    /// set's own statistics), balanced 8 Gaussians with `n/8` points per centre (the
    /// remainder at random centres), and `n` independent draws otherwise.
    ///
    /// # Errors
    /// A point cloud with fewer than `n` rows.
    pub fn data_set(&self, n: usize, rng: &mut SbRng) -> Result<Array2<f64>, DataError> {
        match &self.kind {
            SourceKind::Empirical(points) => {
                if points.nrows() < n {
                    return Err(DataError::Invalid(format!(
                        "the split needs {n} points but the data have {} rows",
                        points.nrows()
                    )));
                }
                let order = rng.permutation(points.nrows());
                Ok(points.select(ndarray::Axis(0), &order[..n]))
            }
            SourceKind::Toy(Distribution::TorchcfmMoons { noise }) => {
                Ok(rows_to_array(&toys::torchcfm_moons_set(n, *noise, rng)))
            }
            SourceKind::Toy(Distribution::DsbMoons { noise, scale }) => {
                Ok(rows_to_array(&toys::dsb_moons_set(n, *noise, *scale, rng)))
            }
            SourceKind::Toy(Distribution::EightGaussians {
                radius,
                std,
                balanced: true,
            }) => Ok(rows_to_array(&toys::eight_gaussians_balanced(
                n, *radius, *std, rng,
            ))),
            _ => Ok(self.sample(n, rng)),
        }
    }

    /// Draws `n` points, shape `(n, dim)`; empirical sources resample rows with replacement.
    pub fn sample(&self, n: usize, rng: &mut SbRng) -> Array2<f64> {
        let mut out = Array2::zeros((n, self.dim));
        for mut row in out.rows_mut() {
            match &self.kind {
                SourceKind::Gaussian { mean, chol } => {
                    row.assign(&gaussian_draw(mean, chol, rng));
                }
                SourceKind::Mixture {
                    weights,
                    means,
                    chols,
                } => {
                    let c = rng.categorical(weights);
                    row.assign(&gaussian_draw(&means[c], &chols[c], rng));
                }
                SourceKind::Toy(d) => {
                    let p = match *d {
                        Distribution::Moons { noise } => toys::moons(rng, noise),
                        Distribution::TorchcfmMoons { noise } => toys::torchcfm_moons(rng, noise),
                        Distribution::DsbMoons { noise, scale } => {
                            toys::dsb_moons(rng, noise, scale)
                        }
                        Distribution::Scurve { noise, scale } => {
                            let p = toys::scurve(rng, noise);
                            [scale * p[0], scale * p[1]]
                        }
                        Distribution::EightGaussians { radius, std, .. } => {
                            toys::eight_gaussians(rng, radius, std)
                        }
                        Distribution::Checkerboard => toys::checkerboard(rng),
                        Distribution::SwissRoll { noise } => toys::swiss_roll(rng, noise),
                        Distribution::Circles { noise, factor } => {
                            toys::circles(rng, noise, factor)
                        }
                        _ => unreachable!("only 2-D toys are stored as Toy"),
                    };
                    row[0] = p[0];
                    row[1] = p[1];
                }
                SourceKind::Empirical(points) => {
                    row.assign(&points.row(rng.below(points.nrows())));
                }
            }
        }
        out
    }
}

impl Distribution {
    /// Loads and draws `n` points in one call.
    ///
    /// # Errors
    /// As [`Distribution::load`].
    pub fn sample(&self, n: usize, rng: &mut SbRng) -> Result<Array2<f64>, DataError> {
        Ok(self.load()?.sample(n, rng))
    }
}

fn gaussian_draw(mean: &Array1<f64>, chol: &Array2<f64>, rng: &mut SbRng) -> Array1<f64> {
    let z = Array1::from(rng.normal_f64(mean.len()));
    mean + &chol.dot(&z)
}

/// Lower Cholesky factor of a symmetric positive semi-definite matrix.
///
/// Zero pivots (a singular but semi-definite matrix) give zero columns.
fn cholesky(a: &Array2<f64>) -> Result<Array2<f64>, DataError> {
    let n = a.nrows();
    let mut l = Array2::<f64>::zeros((n, n));
    let scale = (0..n).map(|i| a[[i, i]].abs()).fold(0.0, f64::max).max(1.0);
    for j in 0..n {
        let d = a[[j, j]] - (0..j).map(|k| l[[j, k]] * l[[j, k]]).sum::<f64>();
        if d < -1e-10 * scale || !d.is_finite() {
            return Err(DataError::Invalid(
                "the covariance is not positive semi-definite".into(),
            ));
        }
        let d = d.max(0.0).sqrt();
        l[[j, j]] = d;
        for i in j + 1..n {
            let s = a[[i, j]] - (0..j).map(|k| l[[i, k]] * l[[j, k]]).sum::<f64>();
            l[[i, j]] = if d > 0.0 { s / d } else { 0.0 };
        }
    }
    Ok(l)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moments(x: &Array2<f64>) -> (Array1<f64>, Array2<f64>) {
        let n = x.nrows() as f64;
        let mean = x.mean_axis(ndarray::Axis(0)).unwrap();
        let c = x - &mean;
        (mean, c.t().dot(&c) / (n - 1.0))
    }

    #[test]
    fn gaussian_moments_match() {
        let d = Distribution::Gaussian {
            dim: 2,
            mean: VectorSpec::Full(vec![1.0, -2.0]),
            cov: MatrixSpec::Full(vec![vec![2.0, 0.6], vec![0.6, 0.5]]),
        };
        let x = d.sample(100_000, &mut SbRng::new(0)).unwrap();
        let (m, c) = moments(&x);
        assert!(
            (m[0] - 1.0).abs() < 0.02 && (m[1] + 2.0).abs() < 0.02,
            "{m}"
        );
        assert!((c[[0, 0]] - 2.0).abs() < 0.04, "{c}");
        assert!((c[[0, 1]] - 0.6).abs() < 0.02, "{c}");
        assert!((c[[1, 1]] - 0.5).abs() < 0.01, "{c}");
    }

    #[test]
    fn rotated_covariance_has_the_asked_spectrum_and_an_orthogonal_rotation() {
        let q = haar_rotation(6, &mut SbRng::new(3));
        let qtq = q.t().dot(&q);
        for i in 0..6 {
            for j in 0..6 {
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((qtq[[i, j]] - want).abs() < 1e-12, "{qtq}");
            }
        }
        let spec = MatrixSpec::Rotated {
            rotation_seed: 3,
            scale_min: 0.5,
            scale_max: 2.0,
        };
        let s = spec.resolve(6).unwrap();
        // tr Σ = Σ s_i² and Σ Q = Q diag(s²) for the same rotation.
        let scales: Vec<f64> = (0..6)
            .map(|i| (0.5f64.ln() + i as f64 / 5.0 * (4.0f64.ln())).exp())
            .collect();
        let trace: f64 = scales.iter().map(|v| v * v).sum();
        assert!((s.diag().sum() - trace).abs() < 1e-10);
        let sq = s.dot(&q);
        for (j, v) in scales.iter().enumerate() {
            let col = &q.column(j) * (v * v);
            assert!((&sq.column(j) - &col).iter().all(|e| e.abs() < 1e-10));
        }
        assert_ne!(
            s,
            MatrixSpec::Rotated {
                rotation_seed: 4,
                scale_min: 0.5,
                scale_max: 2.0
            }
            .resolve(6)
            .unwrap()
        );
    }

    #[test]
    fn not_positive_definite_is_refused() {
        let d = Distribution::Gaussian {
            dim: 2,
            mean: VectorSpec::Scalar(0.0),
            cov: MatrixSpec::Full(vec![vec![1.0, 2.0], vec![2.0, 1.0]]),
        };
        assert!(d.load().unwrap_err().to_string().contains("positive"));
    }

    #[test]
    fn toys_are_two_dimensional_and_centred_roughly() {
        for d in [
            Distribution::Moons { noise: 0.1 },
            Distribution::TorchcfmMoons { noise: 0.05 },
            Distribution::Scurve {
                noise: 0.1,
                scale: 1.0,
            },
            Distribution::EightGaussians {
                radius: eight_radius(),
                std: eight_std(),
                balanced: false,
            },
            Distribution::Checkerboard,
            Distribution::SwissRoll { noise: 1.0 },
            Distribution::Circles {
                noise: 0.08,
                factor: 0.5,
            },
        ] {
            let x = d.sample(20_000, &mut SbRng::new(1)).unwrap();
            let (m, c) = moments(&x);
            assert_eq!(x.ncols(), 2);
            assert!(m.iter().all(|v| v.abs() < 1.0), "{d:?}: mean {m}");
            assert!(c[[0, 0]] > 0.1 && c[[1, 1]] > 0.1, "{d:?}: cov {c}");
        }
    }
}
