//! Time courses as written in an experiment file: a labelled data file, or a simulated
//! differentiation process that needs no files.

use std::path::{Path, PathBuf};

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use crate::io::ReadOptions;
use crate::{DataError, SbRng, TimeCourse};

fn default_cells() -> usize {
    1000
}
fn default_times() -> Vec<f64> {
    vec![0.0, 1.0, 2.0, 3.5, 5.0]
}
fn default_noise() -> f64 {
    0.25
}

/// Where a time course comes from (`kind: file` or `kind: differentiation`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum CourseSpec {
    /// Points with one time label per row: `.npy`/`.npz` data with a `.npy` of labels, or
    /// CSV with a time column. `kind: time_course` is accepted as another name.
    #[serde(alias = "time_course")]
    File {
        /// Points.
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
    },
    /// A simulated 5-D differentiation process (see [`differentiation`]).
    Differentiation {
        /// Cells observed at each time. Defaults to 1000.
        #[serde(default = "default_cells")]
        cells_per_time: usize,
        /// Observation times, increasing. Defaults to `[0, 1, 2, 3.5, 5]` (unevenly spaced).
        #[serde(default = "default_times")]
        times: Vec<f64>,
        /// Standard deviation of the Brownian noise. Defaults to 0.25.
        #[serde(default = "default_noise")]
        noise: f64,
        /// Seed of the simulation: the same seed gives the same cells.
        #[serde(default)]
        seed: u64,
    },
}

impl CourseSpec {
    /// Reads or simulates the time course.
    ///
    /// # Errors
    /// Unreadable files or invalid parameters.
    pub fn load(&self) -> Result<TimeCourse, DataError> {
        match self {
            Self::File {
                data,
                labels,
                time_column,
                key,
                delimiter,
                drop_columns,
            } => TimeCourse::load_with(
                data,
                labels.as_deref(),
                time_column.as_deref(),
                &ReadOptions {
                    key: key.clone(),
                    delimiter: *delimiter,
                    drop_columns: drop_columns.clone(),
                },
            ),
            Self::Differentiation {
                cells_per_time,
                times,
                noise,
                seed,
            } => differentiation(*cells_per_time, times, *noise, *seed),
        }
    }
}

impl CourseSpec {
    /// Makes the file paths absolute against `base` (the experiment file's folder); the
    /// files this course reads, absolute.
    pub fn resolve_paths(&mut self, base: &Path) -> Vec<PathBuf> {
        match self {
            Self::File { data, labels, .. } => {
                *data = crate::io::absolute(base, data);
                let mut files = vec![data.clone()];
                if let Some(l) = labels {
                    *l = crate::io::absolute(base, l);
                    files.push(l.clone());
                }
                files
            }
            Self::Differentiation { .. } => Vec::new(),
        }
    }
}

/// Euler step of the simulation, in time units of the labels.
const DT: f64 = 0.01;

/// Simulates single-cell-like snapshots of a differentiation process in 5 dimensions.
///
/// Cells start at `N(0, noise² I)` and follow `dX = b(X) dt + noise · dW` with
///
/// ```text
/// b₁ = 1                                  progression (x₁ ≈ t)
/// b₂ = (x₁ − 1) x₂ − x₂³                   a pitchfork: one state until t ≈ 1, then two fates ±√(x₁ − 1)
/// b₃,₄,₅ = −(x_j − c_j tanh(2 x₂)),  c = (1.5, −1, 0.5)   fate-dependent programmes
/// ```
///
/// Each time is observed on `cells` fresh cells (sequencing destroys cells), so the
/// snapshots are independent draws of the marginals; labels are the times.
///
/// # Errors
/// No cells, fewer than three times, times not increasing or negative, or noise < 0.
pub fn differentiation(
    cells: usize,
    times: &[f64],
    noise: f64,
    seed: u64,
) -> Result<TimeCourse, DataError> {
    if cells == 0 {
        return Err(DataError::Invalid("cells_per_time must be ≥ 1".into()));
    }
    if times.len() < 3 {
        return Err(DataError::Invalid(format!(
            "a time course needs at least 3 times, got {}",
            times.len()
        )));
    }
    if times.iter().any(|t| !(t.is_finite() && *t >= 0.0)) || times.windows(2).any(|w| w[1] <= w[0])
    {
        return Err(DataError::Invalid(format!(
            "times must be ≥ 0 and strictly increasing, got {times:?}"
        )));
    }
    if !(noise >= 0.0 && noise.is_finite()) {
        return Err(DataError::Invalid(format!(
            "noise must be ≥ 0, got {noise}"
        )));
    }
    const C: [f64; 3] = [1.5, -1.0, 0.5];
    let mut rng = SbRng::new(seed);
    let mut points = Array2::zeros((cells * times.len(), 5));
    let mut labels = Vec::with_capacity(cells * times.len());
    for (k, &t_obs) in times.iter().enumerate() {
        let steps = (t_obs / DT).round() as usize;
        for c in 0..cells {
            let mut x: [f64; 5] = std::array::from_fn(|_| noise * rng.normal());
            for _ in 0..steps {
                let b = [
                    1.0,
                    (x[0] - 1.0) * x[1] - x[1].powi(3),
                    -(x[2] - C[0] * (2.0 * x[1]).tanh()),
                    -(x[3] - C[1] * (2.0 * x[1]).tanh()),
                    -(x[4] - C[2] * (2.0 * x[1]).tanh()),
                ];
                for j in 0..5 {
                    x[j] += b[j] * DT + noise * DT.sqrt() * rng.normal();
                }
            }
            let row = k * cells + c;
            for j in 0..5 {
                points[[row, j]] = x[j];
            }
            labels.push(t_obs);
        }
    }
    TimeCourse::new(points, labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_branching() {
        let a = differentiation(300, &[0.0, 1.0, 2.0, 3.5, 5.0], 0.25, 7).unwrap();
        let b = differentiation(300, &[0.0, 1.0, 2.0, 3.5, 5.0], 0.25, 7).unwrap();
        assert_eq!(a.at(5.0).unwrap(), b.at(5.0).unwrap());
        assert_eq!(a.times(), vec![0.0, 1.0, 2.0, 3.5, 5.0]);
        // Progression: x₁ follows the time.
        let last = a.at(5.0).unwrap();
        let mean1 = last.column(0).mean().unwrap();
        assert!((mean1 - 5.0).abs() < 0.1, "{mean1}");
        // Two fates by t = 5: x₂ is bimodal near ±2, both branches populated.
        let up = last.column(1).iter().filter(|v| **v > 1.0).count();
        let down = last.column(1).iter().filter(|v| **v < -1.0).count();
        assert!(up > 90 && down > 90 && up + down > 280, "{up} {down}");
    }

    #[test]
    fn bad_times_are_refused() {
        let e = differentiation(10, &[0.0, 2.0, 1.0], 0.2, 0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("strictly increasing"), "{e}");
    }
}
