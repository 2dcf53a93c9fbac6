//! Labelled time courses: points with one time label per row.

use std::path::Path;

use ndarray::{Array2, Axis};

use crate::{io, DataError};

/// Points observed at several times (for example single cells by day).
///
/// Times are label values, possibly unevenly spaced; [`TimeCourse::times`] lists the
/// distinct ones in increasing order.
#[derive(Clone, Debug)]
pub struct TimeCourse {
    points: Array2<f64>,
    labels: Vec<f64>,
}

impl TimeCourse {
    /// Builds a time course from points and one label per row.
    ///
    /// # Errors
    /// The number of labels differs from the number of rows, or there are no rows.
    pub fn new(points: Array2<f64>, labels: Vec<f64>) -> Result<Self, DataError> {
        if points.nrows() != labels.len() {
            return Err(DataError::Invalid(format!(
                "{} points but {} labels",
                points.nrows(),
                labels.len()
            )));
        }
        if points.nrows() == 0 {
            return Err(DataError::Empty {
                what: "the time course".into(),
            });
        }
        Ok(Self { points, labels })
    }

    /// Loads points from `data` and labels from `labels` (`.npy`), or from the CSV
    /// column `time_column` of `data`.
    ///
    /// # Errors
    /// Unreadable files, a mismatch between rows and labels, or neither (or both of)
    /// `labels` and `time_column` given.
    pub fn load(
        data: &Path,
        labels: Option<&Path>,
        time_column: Option<&str>,
    ) -> Result<Self, DataError> {
        Self::load_with(data, labels, time_column, &io::ReadOptions::default())
    }

    /// [`TimeCourse::load`] with reading options (an `.npz` member, a CSV separator,
    /// columns to leave out).
    ///
    /// # Errors
    /// As [`TimeCourse::load`].
    pub fn load_with(
        data: &Path,
        labels: Option<&Path>,
        time_column: Option<&str>,
        options: &io::ReadOptions,
    ) -> Result<Self, DataError> {
        match (labels, time_column) {
            (Some(labels_path), None) => {
                let points = io::read_points_with(data, options)?;
                let labels = io::read_labels(labels_path)?;
                if points.nrows() != labels.len() {
                    return Err(DataError::format(
                        labels_path,
                        format!(
                            "{} labels but {} has {} rows",
                            labels.len(),
                            data.display(),
                            points.nrows()
                        ),
                    ));
                }
                Self::new(points, labels)
            }
            (None, Some(column)) => {
                let csv = io::read_csv_with(data, Some(column), options)?;
                let labels = csv.labels.unwrap_or_default();
                Self::new(csv.points, labels)
            }
            _ => Err(DataError::Invalid(format!(
                "{}: give exactly one of `labels` (a .npy of one label per row) or `time_column` (a CSV column)",
                data.display()
            ))),
        }
    }

    /// The distinct times, increasing.
    pub fn times(&self) -> Vec<f64> {
        let mut t = self.labels.clone();
        t.sort_by(f64::total_cmp);
        t.dedup_by(|a, b| a.total_cmp(b).is_eq());
        t
    }

    /// Every point, one row per cell, in file order.
    pub fn points(&self) -> &Array2<f64> {
        &self.points
    }

    /// The label of every row.
    pub fn labels(&self) -> &[f64] {
        &self.labels
    }

    /// The dimension of the points.
    pub fn dim(&self) -> usize {
        self.points.ncols()
    }

    /// The points observed at `time`.
    ///
    /// # Errors
    /// No row has that time; the message lists the times there are.
    pub fn at(&self, time: f64) -> Result<Array2<f64>, DataError> {
        let rows: Vec<usize> = self
            .labels
            .iter()
            .enumerate()
            .filter(|(_, t)| (**t - time).abs() <= 1e-9 * (1.0 + time.abs()))
            .map(|(i, _)| i)
            .collect();
        if rows.is_empty() {
            return Err(DataError::Invalid(format!(
                "no points at time {time}; the times are {:?}",
                self.times()
            )));
        }
        Ok(self.points.select(Axis(0), &rows))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn picks_days_and_lists_times() {
        let tc =
            TimeCourse::new(array![[0.0], [1.0], [2.0], [3.0]], vec![0.0, 2.5, 0.0, 2.5]).unwrap();
        assert_eq!(tc.times(), vec![0.0, 2.5]);
        assert_eq!(tc.at(2.5).unwrap(), array![[1.0], [3.0]]);
        let e = tc.at(1.0).unwrap_err().to_string();
        assert!(e.contains("the times are [0.0, 2.5]"), "{e}");
    }
}
