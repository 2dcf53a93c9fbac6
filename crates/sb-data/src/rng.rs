use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution as _, StandardNormal};
use serde::{Deserialize, Serialize};

/// The project's one seeded random generator (ChaCha8).
///
/// All noise, shuffles, data draws and initial weights come from here: the same
/// seed gives the same numbers on every machine. Independent streams of the same
/// seed ([`SbRng::stream`]) keep, for example, evaluation draws apart from training
/// draws so that changing one does not shift the other.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SbRng {
    inner: ChaCha8Rng,
}

impl SbRng {
    /// A generator for `seed`, stream 0.
    pub fn new(seed: u64) -> Self {
        Self::stream(seed, 0)
    }

    /// A generator for `seed` on an independent `stream`.
    pub fn stream(seed: u64, stream: u64) -> Self {
        let mut inner = ChaCha8Rng::seed_from_u64(seed);
        inner.set_stream(stream);
        Self { inner }
    }

    /// One standard normal draw.
    pub fn normal(&mut self) -> f64 {
        StandardNormal.sample(&mut self.inner)
    }

    /// `n` standard normal draws in `f32`.
    pub fn normal_f32(&mut self, n: usize) -> Vec<f32> {
        (0..n)
            .map(|_| StandardNormal.sample(&mut self.inner))
            .collect()
    }

    /// `n` standard normal draws in `f64`.
    pub fn normal_f64(&mut self, n: usize) -> Vec<f64> {
        (0..n)
            .map(|_| StandardNormal.sample(&mut self.inner))
            .collect()
    }

    /// One uniform draw on `[0, 1)`.
    pub fn uniform(&mut self) -> f64 {
        self.inner.random::<f64>()
    }

    /// One uniform draw on `[lo, hi)`.
    pub fn uniform_in(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }

    /// A uniform integer in `0..n`.
    ///
    /// # Panics
    /// If `n == 0`.
    pub fn below(&mut self, n: usize) -> usize {
        self.inner.random_range(0..n)
    }

    /// A uniformly random permutation of `0..n` (Fisher–Yates).
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut p: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = self.below(i + 1);
            p.swap(i, j);
        }
        p
    }

    /// A category drawn with the given non-negative weights (need not sum to one).
    pub fn categorical(&mut self, weights: &[f64]) -> usize {
        let total: f64 = weights.iter().sum();
        let mut u = self.uniform() * total;
        for (i, w) in weights.iter().enumerate() {
            if u < *w {
                return i;
            }
            u -= w;
        }
        weights.len() - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_numbers_and_streams_differ() {
        let a = SbRng::new(3).normal_f64(5);
        let b = SbRng::new(3).normal_f64(5);
        let c = SbRng::stream(3, 1).normal_f64(5);
        let d = SbRng::new(4).normal_f64(5);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
    }

    #[test]
    fn normal_moments() {
        let x = SbRng::new(1).normal_f64(200_000);
        let n = x.len() as f64;
        let mean = x.iter().sum::<f64>() / n;
        let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        assert!(mean.abs() < 0.01, "{mean}");
        assert!((var - 1.0).abs() < 0.01, "{var}");
    }

    #[test]
    fn permutation_is_a_permutation() {
        let mut p = SbRng::new(9).permutation(100);
        p.sort_unstable();
        assert_eq!(p, (0..100).collect::<Vec<_>>());
    }
}
