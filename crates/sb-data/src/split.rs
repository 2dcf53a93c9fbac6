//! A fixed data set split into training, validation and test points, as benchmarks fix one.

use ndarray::{s, Array2};
use serde::{Deserialize, Serialize};

use crate::{DataError, SbRng, Source};

fn default_seed() -> u64 {
    42
}

/// How a data end of a problem is fixed and split (plain data, `deny_unknown_fields`).
///
/// One data set of `train + val + test` points is drawn once from the split's own seed (the
/// same for every run seed, as the sources' benchmarks fix theirs), in random order, and cut
/// in that order. Training sees the training points only; evaluation compares with the test
/// points; the validation points give the "same distribution" floor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitSpec {
    /// Training points.
    pub train: usize,
    /// Validation points.
    pub val: usize,
    /// Test points.
    pub test: usize,
    /// Seed of the data set and its order. Defaults to 42.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Whether to put a point cloud's rows in random order before cutting. With `false` its
    /// first `train` rows are the train points, the next `val` the val points, the next `test`
    /// the test points (a split made elsewhere, kept exactly). Defaults to true.
    #[serde(default = "yes")]
    pub shuffle: bool,
}

fn yes() -> bool {
    true
}

/// The three parts of a split data set.
#[derive(Clone, Debug)]
pub struct Split {
    /// Training points.
    pub train: Array2<f64>,
    /// Validation points.
    pub val: Array2<f64>,
    /// Test points.
    pub test: Array2<f64>,
}

impl SplitSpec {
    /// Checks the sizes.
    ///
    /// # Errors
    /// A part with fewer than two points.
    pub fn validate(&self) -> Result<(), DataError> {
        for (name, n) in [
            ("train", self.train),
            ("val", self.val),
            ("test", self.test),
        ] {
            if n < 2 {
                return Err(DataError::Invalid(format!(
                    "split.{name} must be ≥ 2, got {n}"
                )));
            }
        }
        Ok(())
    }

    /// Draws the data set from `source` (stream `stream` of the split's seed) and cuts it.
    ///
    /// # Errors
    /// Invalid sizes, or a point cloud with too few rows.
    pub fn apply(&self, source: &Source, stream: u64) -> Result<Split, DataError> {
        self.validate()?;
        let n = self.train + self.val + self.test;
        let all = match (self.shuffle, source.points()) {
            (true, _) => source.data_set(n, &mut SbRng::stream(self.seed, stream))?,
            (false, Some(points)) if points.nrows() >= n => points.slice(s![..n, ..]).to_owned(),
            (false, Some(points)) => {
                return Err(DataError::Invalid(format!(
                    "the split needs {n} points but the data have {} rows",
                    points.nrows()
                )))
            }
            (false, None) => {
                return Err(DataError::Invalid(
                    "split.shuffle: false keeps a point cloud's order; this end is drawn, not read"
                        .into(),
                ))
            }
        };
        let (a, b) = (self.train, self.train + self.val);
        Ok(Split {
            train: all.slice(s![..a, ..]).to_owned(),
            val: all.slice(s![a..b, ..]).to_owned(),
            test: all.slice(s![b.., ..]).to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Distribution;

    #[test]
    fn parts_have_their_sizes_and_are_disjoint() {
        let source = Source::empirical(Array2::from_shape_fn((50, 2), |(i, j)| (i * 2 + j) as f64));
        let spec = SplitSpec {
            train: 30,
            val: 8,
            test: 7,
            seed: 3,
            shuffle: true,
        };
        let split = spec.apply(&source, 0).unwrap();
        assert_eq!(
            (split.train.nrows(), split.val.nrows(), split.test.nrows()),
            (30, 8, 7)
        );
        let mut firsts: Vec<i64> = [&split.train, &split.val, &split.test]
            .iter()
            .flat_map(|p| p.column(0).to_vec())
            .map(|v| v as i64)
            .collect();
        firsts.sort_unstable();
        firsts.dedup();
        assert_eq!(firsts.len(), 45, "a row appears in two parts");
        // The same seed gives the same split; another seed another order.
        let again = spec.apply(&source, 0).unwrap();
        assert_eq!(split.test, again.test);
        let other = SplitSpec { seed: 4, ..spec }.apply(&source, 0).unwrap();
        assert_ne!(split.test, other.test);
        let too_many = SplitSpec { train: 40, ..spec }.apply(&source, 0);
        assert!(too_many.unwrap_err().to_string().contains("50 rows"));
        // Unshuffled: the rows in order.
        let kept = SplitSpec {
            shuffle: false,
            ..spec
        }
        .apply(&source, 0)
        .unwrap();
        assert_eq!(kept.train.row(0).to_vec(), vec![0.0, 1.0]);
        assert_eq!(kept.val.row(0).to_vec(), vec![60.0, 61.0]);
        assert_eq!(kept.test.row(6).to_vec(), vec![88.0, 89.0]);
    }

    #[test]
    fn torchcfm_moons_without_noise_lie_on_the_two_arcs() {
        let d = Distribution::TorchcfmMoons { noise: 0.0 };
        let spec = SplitSpec {
            train: 1000,
            val: 100,
            test: 101,
            seed: 0,
            shuffle: true,
        };
        let split = spec.apply(&d.load().unwrap(), 0).unwrap();
        let mut outer = 0;
        for x in [&split.train, &split.val, &split.test]
            .iter()
            .flat_map(|p| p.rows().into_iter().collect::<Vec<_>>())
        {
            // Undo 2x − (1, 0): the outer moon is the unit upper half circle around 0, the
            // inner one the lower half circle of radius 1 around (1, 0.5).
            let (u, v) = ((x[0] + 1.0) / 2.0, x[1] / 2.0);
            let r_outer = (u * u + v * v).sqrt();
            let r_inner = ((u - 1.0).powi(2) + (v - 0.5).powi(2)).sqrt();
            if (r_outer - 1.0).abs() < 1e-12 && v >= -1e-12 {
                outer += 1;
            } else {
                assert!((r_inner - 1.0).abs() < 1e-12 && v <= 0.5 + 1e-12, "{x}");
            }
        }
        // scikit-learn: ⌊n/2⌋ outer points, the rest inner.
        assert_eq!(outer, 1201 / 2);
    }

    #[test]
    fn torchcfm_moons_have_evenly_spaced_angles() {
        let n = 9;
        let angles: Vec<f64> = (0..n / 2)
            .map(|i| {
                let p = crate::toys::sklearn_moon_point(i, n);
                p[1].atan2(p[0])
            })
            .collect();
        for (k, a) in angles.iter().enumerate() {
            assert!(
                (a - std::f64::consts::PI * k as f64 / 3.0).abs() < 1e-12,
                "{a}"
            );
        }
    }

    fn all_rows(split: &Split) -> Array2<f64> {
        ndarray::concatenate(
            ndarray::Axis(0),
            &[split.train.view(), split.val.view(), split.test.view()],
        )
        .unwrap()
    }

    fn paper_spec(train: usize) -> SplitSpec {
        SplitSpec {
            train,
            val: 100,
            test: 100,
            seed: 7,
            shuffle: true,
        }
    }

    #[test]
    fn dsb_moons_are_the_standardised_scikit_learn_moons() {
        let d = Distribution::DsbMoons {
            noise: 0.0,
            scale: 7.0,
        };
        let all = all_rows(&paper_spec(1000).apply(&d.load().unwrap(), 0).unwrap());
        // Standardised over all coordinates together: pooled mean 0, pooled std 7.
        let flat: Vec<f64> = all.iter().copied().collect();
        let n = flat.len() as f64;
        let mean = flat.iter().sum::<f64>() / n;
        let var = flat.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
        assert!(mean.abs() < 1e-12, "{mean}");
        assert!((var.sqrt() - 7.0).abs() < 1e-12, "{}", var.sqrt());
        // Undoing the standardisation with the noise-free set's own statistics gives the
        // scikit-learn arcs: recompute them from the formula of the points.
        let raw: Vec<[f64; 2]> = (0..1200)
            .map(|i| crate::toys::sklearn_moon_point(i, 1200))
            .collect();
        let m = raw.iter().map(|p| p[0] + p[1]).sum::<f64>() / 2400.0;
        let s = (raw
            .iter()
            .map(|p| (p[0] - m).powi(2) + (p[1] - m).powi(2))
            .sum::<f64>()
            / 2399.0)
            .sqrt();
        let mut outer = 0;
        for x in all.rows() {
            let (u, v) = (x[0] / 7.0 * s + m, x[1] / 7.0 * s + m);
            if ((u * u + v * v).sqrt() - 1.0).abs() < 1e-9 && v >= -1e-9 {
                outer += 1;
            } else {
                let r = ((u - 1.0).powi(2) + (v - 0.5).powi(2)).sqrt();
                assert!((r - 1.0).abs() < 1e-9 && v <= 0.5 + 1e-9, "{x}");
            }
        }
        assert_eq!(outer, 600);
        // The single-draw limits agree with a large set's statistics.
        let noisy = Distribution::DsbMoons {
            noise: 0.1,
            scale: 7.0,
        }
        .sample(200_000, &mut SbRng::new(2))
        .unwrap();
        let flat: Vec<f64> = noisy.iter().copied().collect();
        let mean = flat.iter().sum::<f64>() / flat.len() as f64;
        let sd = (flat.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / flat.len() as f64).sqrt();
        assert!(mean.abs() < 0.03 && (sd - 7.0).abs() < 0.03, "{mean} {sd}");
    }

    #[test]
    fn torchcfm_scurve_is_the_scaled_s_curve() {
        let d = Distribution::Scurve {
            noise: 0.0,
            scale: 1.5,
        };
        let x = d.sample(2000, &mut SbRng::new(3)).unwrap();
        for p in x.rows() {
            // x = 1.5 sin t, z = 1.5 sign(t)(cos t − 1), t ∈ [−3π/2, 3π/2].
            let (a, z) = (p[0] / 1.5, p[1] / 1.5);
            assert!(a.abs() <= 1.0 + 1e-12 && z.abs() <= 2.0 + 1e-12, "{p}");
            // cos t = 1 ∓ z and sin t = a lie on the unit circle.
            let c = 1.0 - z.abs();
            assert!((a * a + c * c - 1.0).abs() < 1e-9, "{p}");
        }
    }

    #[test]
    fn balanced_eight_gaussians_have_an_eighth_per_centre() {
        let d = Distribution::EightGaussians {
            radius: 5.0,
            std: 1e-9,
            balanced: true,
        };
        let all = all_rows(&paper_spec(1000).apply(&d.load().unwrap(), 0).unwrap());
        let mut counts = std::collections::BTreeMap::new();
        for p in all.rows() {
            assert!(
                ((p[0] * p[0] + p[1] * p[1]).sqrt() - 5.0).abs() < 1e-6,
                "{p}"
            );
            let angle = p[1].atan2(p[0]).rem_euclid(std::f64::consts::TAU);
            let k = (angle / std::f64::consts::FRAC_PI_4).round() as usize % 8;
            *counts.entry(k).or_insert(0) += 1;
        }
        assert_eq!(counts.len(), 8);
        assert!(counts.values().all(|&c| c == 150), "{counts:?}");
        // Their moments: mean 0, covariance (r²/2 + std²) I.
        let d = Distribution::EightGaussians {
            radius: 5.0,
            std: 1.0,
            balanced: true,
        };
        let set = d
            .load()
            .unwrap()
            .data_set(80_000, &mut SbRng::new(4))
            .unwrap();
        let (m, c) = (
            set.mean_axis(ndarray::Axis(0)).unwrap(),
            set.t().dot(&set) / 80_000.0,
        );
        assert!(m.iter().all(|v| v.abs() < 0.05), "{m}");
        assert!(
            (c[[0, 0]] - 13.5).abs() < 0.2 && (c[[1, 1]] - 13.5).abs() < 0.2,
            "{c}"
        );
        assert!(c[[0, 1]].abs() < 0.2, "{c}");
    }
}
