//! The classic 2-D toy distributions, with the recipes of scikit-learn and FFJORD.

use std::f64::consts::{FRAC_1_SQRT_2, PI};

use crate::SbRng;

/// `make_moons`: two interleaving half circles, then `2x + (-1, -0.2)` as in FFJORD's toys.
pub(crate) fn moons(rng: &mut SbRng, noise: f64) -> [f64; 2] {
    let theta = PI * rng.uniform();
    let (x, y) = if rng.below(2) == 0 {
        (theta.cos(), theta.sin())
    } else {
        (1.0 - theta.cos(), 0.5 - theta.sin())
    };
    [
        2.0 * (x + noise * rng.normal()) - 1.0,
        2.0 * (y + noise * rng.normal()) - 0.2,
    ]
}

/// The noise-free point `i` of `n` of scikit-learn's `make_moons`: the first `⌊n/2⌋` points
/// lie on the outer moon at evenly spaced angles `θ ∈ [0, π]`, the rest on the inner moon.
pub(crate) fn sklearn_moon_point(i: usize, n: usize) -> [f64; 2] {
    let outer = n / 2;
    let spaced = |k: usize, m: usize| {
        if m > 1 {
            PI * k as f64 / (m - 1) as f64
        } else {
            0.0
        }
    };
    if i < outer {
        let theta = spaced(i, outer);
        [theta.cos(), theta.sin()]
    } else {
        let theta = spaced(i - outer, n - outer);
        [1.0 - theta.cos(), 1.0 - theta.sin() - 0.5]
    }
}

/// TorchCFM's moons: a scikit-learn moon point with noise, then `x ↦ 2x − (1, 0)`.
fn torchcfm_moon(point: [f64; 2], rng: &mut SbRng, noise: f64) -> [f64; 2] {
    [
        2.0 * (point[0] + noise * rng.normal()) - 1.0,
        2.0 * (point[1] + noise * rng.normal()),
    ]
}

/// One draw of TorchCFM's moons at a uniformly random angle (the law its finite data sets,
/// [`torchcfm_moons_set`], discretise).
pub(crate) fn torchcfm_moons(rng: &mut SbRng, noise: f64) -> [f64; 2] {
    // A random point of a large even grid on a random moon.
    let n = 1 << 30;
    let i = rng.below(n);
    torchcfm_moon(sklearn_moon_point(i, n), rng, noise)
}

/// TorchCFM's moons data set of `n` points: scikit-learn's `make_moons(n, noise)` (evenly
/// spaced angles, in random order, Gaussian noise), then `x ↦ 2x − (1, 0)`.
pub(crate) fn torchcfm_moons_set(n: usize, noise: f64, rng: &mut SbRng) -> Vec<[f64; 2]> {
    rng.permutation(n)
        .into_iter()
        .map(|i| torchcfm_moon(sklearn_moon_point(i, n), rng, noise))
        .collect()
}

/// The pooled mean and variance of every coordinate of scikit-learn's moons with uniform
/// angles: `3/8` and `0.671875 − 1/(2π) + noise²`.
fn moons_pooled_moments(noise: f64) -> (f64, f64) {
    (0.375, 0.671875 - 0.5 / PI + noise * noise)
}

/// One draw of the DSB code's moons at a uniformly random angle: a scikit-learn moon point
/// with noise, standardised by the limits of the data sets' statistics, times `scale`.
pub(crate) fn dsb_moons(rng: &mut SbRng, noise: f64, scale: f64) -> [f64; 2] {
    let n = 1 << 30;
    let p = sklearn_moon_point(rng.below(n), n);
    let (m, v) = moons_pooled_moments(noise);
    let s = v.sqrt();
    [
        (p[0] + noise * rng.normal() - m) / s * scale,
        (p[1] + noise * rng.normal() - m) / s * scale,
    ]
}

/// The DSB code's moons data set of `n` points: scikit-learn's `make_moons(n, noise)` in
/// random order, minus the mean of all `2n` coordinates, over their standard deviation
/// (unbiased, as `torch.std`), times `scale`.
pub(crate) fn dsb_moons_set(n: usize, noise: f64, scale: f64, rng: &mut SbRng) -> Vec<[f64; 2]> {
    let raw: Vec<[f64; 2]> = rng
        .permutation(n)
        .into_iter()
        .map(|i| {
            let p = sklearn_moon_point(i, n);
            [p[0] + noise * rng.normal(), p[1] + noise * rng.normal()]
        })
        .collect();
    let count = (2 * n) as f64;
    let mean = raw.iter().map(|p| p[0] + p[1]).sum::<f64>() / count;
    let var = raw
        .iter()
        .map(|p| (p[0] - mean).powi(2) + (p[1] - mean).powi(2))
        .sum::<f64>()
        / (count - 1.0);
    let s = var.sqrt();
    raw.into_iter()
        .map(|p| [(p[0] - mean) / s * scale, (p[1] - mean) / s * scale])
        .collect()
}

/// `make_s_curve` projected on its first and third coordinates.
pub(crate) fn scurve(rng: &mut SbRng, noise: f64) -> [f64; 2] {
    let t = 3.0 * PI * (rng.uniform() - 0.5);
    let x = t.sin();
    let z = t.signum() * (t.cos() - 1.0);
    [x + noise * rng.normal(), z + noise * rng.normal()]
}

/// The unit directions of the eight centres.
const CENTRES: [(f64, f64); 8] = [
    (1.0, 0.0),
    (-1.0, 0.0),
    (0.0, 1.0),
    (0.0, -1.0),
    (FRAC_1_SQRT_2, FRAC_1_SQRT_2),
    (FRAC_1_SQRT_2, -FRAC_1_SQRT_2),
    (-FRAC_1_SQRT_2, FRAC_1_SQRT_2),
    (-FRAC_1_SQRT_2, -FRAC_1_SQRT_2),
];

/// Eight Gaussians with centres evenly on a circle.
pub(crate) fn eight_gaussians(rng: &mut SbRng, radius: f64, std: f64) -> [f64; 2] {
    let centre = rng.below(8);
    eight_gaussians_at(centre, rng, radius, std)
}

fn eight_gaussians_at(centre: usize, rng: &mut SbRng, radius: f64, std: f64) -> [f64; 2] {
    let (cx, cy) = CENTRES[centre];
    [
        radius * cx + std * rng.normal(),
        radius * cy + std * rng.normal(),
    ]
}

/// A data set of `n` points of eight Gaussians with `⌊n/8⌋` points per centre (the
/// remainder at random centres), in random order, as torchdyn's `ToyDataset` makes them.
pub(crate) fn eight_gaussians_balanced(
    n: usize,
    radius: f64,
    std: f64,
    rng: &mut SbRng,
) -> Vec<[f64; 2]> {
    let mut centres: Vec<usize> = (0..n - n % 8).map(|i| i % 8).collect();
    centres.extend((0..n % 8).map(|_| rng.below(8)));
    rng.permutation(n)
        .into_iter()
        .map(|i| eight_gaussians_at(centres[i], rng, radius, std))
        .collect()
}

/// FFJORD's checkerboard on `[-4, 4]²`.
pub(crate) fn checkerboard(rng: &mut SbRng) -> [f64; 2] {
    let x1 = 4.0 * rng.uniform() - 2.0;
    let x2 = rng.uniform() - 2.0 * rng.below(2) as f64;
    let x2 = x2 + (x1.floor().rem_euclid(2.0));
    [2.0 * x1, 2.0 * x2]
}

/// `make_swiss_roll` on its first and third coordinates, divided by 5 (FFJORD).
pub(crate) fn swiss_roll(rng: &mut SbRng, noise: f64) -> [f64; 2] {
    let t = 1.5 * PI * (1.0 + 2.0 * rng.uniform());
    [
        (t * t.cos() + noise * rng.normal()) / 5.0,
        (t * t.sin() + noise * rng.normal()) / 5.0,
    ]
}

/// `make_circles`: two concentric circles (radii 1 and `factor`), then scaled by 3 (FFJORD).
pub(crate) fn circles(rng: &mut SbRng, noise: f64, factor: f64) -> [f64; 2] {
    let theta = 2.0 * PI * rng.uniform();
    let r = if rng.below(2) == 0 { 1.0 } else { factor };
    [
        3.0 * (r * theta.cos() + noise * rng.normal()),
        3.0 * (r * theta.sin() + noise * rng.normal()),
    ]
}
