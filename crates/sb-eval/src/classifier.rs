//! A softmax (multinomial logistic regression) classifier: the measuring instrument that says
//! which class generated images belong to (suite I1).
//!
//! Inputs are standardised with the training set's per-feature mean and spread, then
//! `p(k | x) ∝ exp(w_kᵀ x + b_k)` is fitted by full-batch gradient descent on the mean
//! cross-entropy plus `½ λ ‖W‖²`. Deterministic: no random initialisation (W = 0 is the start).

use ndarray::{Array1, Array2, ArrayView2, Axis};

use crate::EvalError;

/// A fitted softmax classifier.
#[derive(Clone, Debug)]
pub struct SoftmaxClassifier {
    mean: Array1<f64>,
    scale: Array1<f64>,
    weights: Array2<f64>,
    bias: Array1<f64>,
}

/// Gradient-descent settings of [`SoftmaxClassifier::fit`].
#[derive(Clone, Copy, Debug)]
pub struct ClassifierOptions {
    /// Full-batch gradient steps.
    pub iterations: usize,
    /// Step size.
    pub learning_rate: f64,
    /// L2 penalty λ on the weights (not the biases).
    pub l2: f64,
}

impl Default for ClassifierOptions {
    fn default() -> Self {
        Self {
            iterations: 500,
            learning_rate: 0.5,
            l2: 1e-3,
        }
    }
}

impl SoftmaxClassifier {
    /// Fits `classes` classes to the rows of `x` and their `labels` (each `< classes`).
    ///
    /// # Errors
    /// No rows, a label count that differs from the rows, a label out of range, or
    /// non-finite inputs.
    pub fn fit(
        x: ArrayView2<'_, f64>,
        labels: &[usize],
        classes: usize,
        options: ClassifierOptions,
    ) -> Result<Self, EvalError> {
        crate::error::check_cloud("the training images", x)?;
        let (n, d) = x.dim();
        if labels.len() != n {
            return Err(EvalError::ShapeMismatch(format!(
                "{n} training rows but {} labels",
                labels.len()
            )));
        }
        if let Some(bad) = labels.iter().find(|&&l| l >= classes) {
            return Err(EvalError::Invalid(format!(
                "label {bad} is outside the {classes} classes 0…{}",
                classes - 1
            )));
        }
        let mean = x.mean_axis(Axis(0)).expect("rows");
        // Constant features (blank pixels) keep scale 1 so they stay 0 after standardising.
        let scale = x
            .std_axis(Axis(0), 0.0)
            .mapv(|s| if s > 1e-12 { s } else { 1.0 });
        let z = (&x - &mean) / &scale;
        let mut onehot = Array2::<f64>::zeros((n, classes));
        for (i, &l) in labels.iter().enumerate() {
            onehot[[i, l]] = 1.0;
        }
        let mut model = Self {
            mean,
            scale,
            weights: Array2::zeros((d, classes)),
            bias: Array1::zeros(classes),
        };
        for _ in 0..options.iterations {
            let p = softmax(&model.logits_standardised(&z));
            let residual = (p - &onehot) / n as f64;
            let grad_w = z.t().dot(&residual) + &model.weights * options.l2;
            let grad_b = residual.sum_axis(Axis(0));
            model.weights = &model.weights - &(grad_w * options.learning_rate);
            model.bias = &model.bias - &(grad_b * options.learning_rate);
        }
        Ok(model)
    }

    fn logits_standardised(&self, z: &Array2<f64>) -> Array2<f64> {
        z.dot(&self.weights) + &self.bias
    }

    /// The most probable class of each row.
    ///
    /// # Errors
    /// Rows of another width than the training rows, or non-finite values.
    pub fn predict(&self, x: ArrayView2<'_, f64>) -> Result<Vec<usize>, EvalError> {
        crate::error::check_cloud("the images to classify", x)?;
        if x.ncols() != self.mean.len() {
            return Err(EvalError::ShapeMismatch(format!(
                "the classifier was fitted on {} features, not {}",
                self.mean.len(),
                x.ncols()
            )));
        }
        let z = (&x - &self.mean) / &self.scale;
        let logits = self.logits_standardised(&z);
        Ok(logits
            .rows()
            .into_iter()
            .map(|r| {
                r.iter()
                    .enumerate()
                    .fold((0, f64::NEG_INFINITY), |best, (k, &v)| {
                        if v > best.1 {
                            (k, v)
                        } else {
                            best
                        }
                    })
                    .0
            })
            .collect())
    }

    /// The fraction of rows classified as their label.
    ///
    /// # Errors
    /// As [`SoftmaxClassifier::predict`], or a label count that differs from the rows.
    pub fn accuracy(&self, x: ArrayView2<'_, f64>, labels: &[usize]) -> Result<f64, EvalError> {
        if labels.len() != x.nrows() {
            return Err(EvalError::ShapeMismatch(format!(
                "{} rows but {} labels",
                x.nrows(),
                labels.len()
            )));
        }
        let predicted = self.predict(x)?;
        let right = predicted.iter().zip(labels).filter(|(p, l)| p == l).count();
        Ok(right as f64 / labels.len() as f64)
    }
}

/// The share of each class among `predicted` (fractions summing to 1).
pub fn class_shares(predicted: &[usize], classes: usize) -> Vec<f64> {
    let mut counts = vec![0.0; classes];
    for &p in predicted {
        if p < classes {
            counts[p] += 1.0;
        }
    }
    let n = predicted.len().max(1) as f64;
    counts.into_iter().map(|c| c / n).collect()
}

fn softmax(logits: &Array2<f64>) -> Array2<f64> {
    let mut p = logits.clone();
    for mut row in p.rows_mut() {
        let max = row.fold(f64::NEG_INFINITY, |a, &b| a.max(b));
        row.mapv_inplace(|v| (v - max).exp());
        let total = row.sum();
        row /= total;
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three separated Gaussian clusters in 4-D: near-perfect accuracy on fresh points.
    #[test]
    fn separates_clusters_and_counts_shares() {
        let mut sb = sb_data::SbRng::new(7);
        let mut rng = move || sb.normal();
        let centres = [
            [0.0, 0.0, 0.0, 0.0],
            [4.0, 0.0, 0.0, 0.0],
            [0.0, 4.0, 0.0, 0.0],
        ];
        let draw = |n: usize, rng: &mut dyn FnMut() -> f64| {
            let mut x = Array2::zeros((3 * n, 4));
            let mut labels = Vec::new();
            for (k, c) in centres.iter().enumerate() {
                for i in 0..n {
                    for j in 0..4 {
                        x[[k * n + i, j]] = c[j] + rng();
                    }
                    labels.push(k);
                }
            }
            (x, labels)
        };
        let (x, labels) = draw(200, &mut rng);
        let model =
            SoftmaxClassifier::fit(x.view(), &labels, 3, ClassifierOptions::default()).unwrap();
        let (xt, lt) = draw(100, &mut rng);
        let acc = model.accuracy(xt.view(), &lt).unwrap();
        // The Bayes error here is about 3 % (neighbouring centres 4 apart, unit noise).
        assert!(acc > 0.93, "accuracy {acc}");
        let shares = class_shares(&model.predict(xt.view()).unwrap(), 3);
        assert!(
            shares.iter().all(|s| (s - 1.0 / 3.0).abs() < 0.03),
            "{shares:?}"
        );
        assert!(
            SoftmaxClassifier::fit(x.view(), &labels[1..], 3, ClassifierOptions::default())
                .is_err()
        );
        assert!(SoftmaxClassifier::fit(
            x.view(),
            &vec![3; x.nrows()],
            3,
            ClassifierOptions::default()
        )
        .is_err());
    }
}
