//! Labelled data ends (images, suite I1): a classifier trained on π0's train split says which
//! classes generated π0 points belong to; a Gaussian fitted to a train split is the simplest
//! generator to beat.

use std::path::Path;

use ndarray::{Array2, ArrayView2};
use sb_data::{SbRng, Split};
use sb_eval::{class_shares, ClassifierOptions, SoftmaxClassifier};

/// The classifier of a labelled π0 and what the floor row reports.
pub struct Classes {
    /// Fitted on π0's train points and their labels.
    pub model: SoftmaxClassifier,
    /// The number of classes (the largest label + 1).
    pub count: usize,
    /// The classes' shares among π0's test points (by their true labels).
    pub test_shares: Vec<f64>,
    /// The classifier's accuracy on π0's test points.
    pub accuracy: f64,
    /// [`Classes::gap`] of π0's validation points (what a perfect generator would score).
    pub val_gap: f64,
    /// The labels of π0's test points, in order.
    pub test_labels: Vec<usize>,
    /// [`Classes::gap_uniform`] of π0's validation points.
    pub val_gap_uniform: f64,
}

impl Classes {
    /// Reads `labels` (one per row of π0's file, in order), splits them as `split` split the rows
    /// (`shuffle: false`: train, val and test are consecutive rows) and fits the classifier.
    ///
    /// # Errors
    /// An unreadable file, a label that is not a non-negative integer, a count that differs
    /// from the data's rows, or a classifier error.
    pub fn load(labels: &Path, rows: usize, split: &Split) -> std::result::Result<Self, String> {
        let raw = sb_data::read_labels(labels).map_err(|e| format!("{}: {e}", labels.display()))?;
        if raw.len() != rows {
            return Err(format!(
                "{}: {} labels but π0's file has {rows} rows (one label per row, in order)",
                labels.display(),
                raw.len()
            ));
        }
        let mut classes = Vec::with_capacity(raw.len());
        for (i, &v) in raw.iter().enumerate() {
            if !(v >= 0.0 && v.fract() == 0.0 && v < 1e6) {
                return Err(format!(
                    "{}: label {v} (row {}) is not a class number 0, 1, 2, …",
                    labels.display(),
                    i + 1
                ));
            }
            classes.push(v as usize);
        }
        let count = classes.iter().max().map_or(1, |m| m + 1);
        let (a, b) = (split.train.nrows(), split.train.nrows() + split.val.nrows());
        let c = b + split.test.nrows();
        let model = SoftmaxClassifier::fit(
            split.train.view(),
            &classes[..a],
            count,
            ClassifierOptions::default(),
        )
        .map_err(|e| format!("the classifier: {e}"))?;
        let test_labels = &classes[b..c];
        let accuracy = model
            .accuracy(split.test.view(), test_labels)
            .map_err(|e| format!("the classifier: {e}"))?;
        let test_shares = class_shares(test_labels, count);
        let mut out = Self {
            model,
            count,
            test_shares,
            accuracy,
            val_gap: 0.0,
            test_labels: test_labels.to_vec(),
            val_gap_uniform: 0.0,
        };
        out.val_gap_uniform = out
            .gap_uniform(split.val.view())
            .map_err(|e| format!("the classifier: {e}"))?;
        out.val_gap = out
            .gap(split.val.view())
            .map_err(|e| format!("the classifier: {e}"))?;
        Ok(out)
    }

    /// The largest difference, in percentage points, between a class's share among `points`
    /// (as classified) and among π0's test points (by label).
    ///
    /// # Errors
    /// Points of the wrong width or non-finite values.
    pub fn gap(&self, points: ArrayView2<'_, f64>) -> Result<f64, sb_eval::EvalError> {
        let shares = class_shares(&self.model.predict(points)?, self.count);
        Ok(shares
            .iter()
            .zip(&self.test_shares)
            .map(|(a, b)| 100.0 * (a - b).abs())
            .fold(0.0, f64::max))
    }
}

impl Classes {
    /// The largest difference, in percentage points, between a class's share among `points`
    /// (as classified) and the uniform share `1 / count`.
    ///
    /// # Errors
    /// Points of the wrong width or non-finite values.
    pub fn gap_uniform(&self, points: ArrayView2<'_, f64>) -> Result<f64, sb_eval::EvalError> {
        let uniform = 1.0 / self.count as f64;
        Ok(class_shares(&self.model.predict(points)?, self.count)
            .iter()
            .map(|a| 100.0 * (a - uniform).abs())
            .fold(0.0, f64::max))
    }
}

/// `n` draws of a Gaussian fitted (mean, unbiased covariance) to `train`, from `rng`.
///
/// # Errors
/// Fewer than two points.
pub fn gaussian_fit_draws(
    train: &Array2<f64>,
    n: usize,
    rng: &mut SbRng,
) -> std::result::Result<Array2<f64>, String> {
    let mean = sb_eval::summary::mean(train.view()).map_err(|e| e.to_string())?;
    let cov = sb_eval::summary::covariance(train.view()).map_err(|e| e.to_string())?;
    crate::inverse::gaussian_source(&mean, &cov)
        .map(|g| g.sample(n, rng))
        .map_err(|e| format!("the Gaussian fitted to the train split: {e}"))
}
