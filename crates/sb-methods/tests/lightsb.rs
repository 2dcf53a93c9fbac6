//! LightSB with one full-covariance component between Gaussians recovers the closed-form
//! Schrödinger bridge (SPEC §1.3).

use ndarray::{Array1, Array2, Axis};
use sb_data::SbRng;
use sb_eval::{bw2_squared, GaussianBridge};
use sb_methods::lightsb::{fit, LightSbConfig};

fn rotated(d: usize, seed: u64) -> Array2<f64> {
    let mut rng = SbRng::new(seed);
    let a = Array2::from_shape_fn((d, d), |_| rng.normal());
    a.dot(&a.t()) / d as f64 + Array2::<f64>::eye(d) * 0.5
}

fn draws(mean: &Array1<f64>, cov: &Array2<f64>, n: usize, rng: &mut SbRng) -> Array2<f64> {
    sb_eval::gaussian_draws(mean, cov, n, rng).unwrap()
}

/// cBW2²-UVP (%) of the fitted plan's exact conditionals over 50 inputs x ~ π0; the error of
/// the cross-covariance as the tables' `cross_cov` metric measures it, `tr Cov(x, y) / d`
/// (one component: Cov(x, y) = Σ0 S); and the largest entry of `Σ0 S − C`.
fn fitted(d: usize) -> (f64, f64, f64) {
    let sigma = 1.0;
    let (s0, s1) = (rotated(d, 1), rotated(d, 2));
    let mu0 = Array1::from_shape_fn(d, |i| 0.1 * i as f64);
    let mu1 = Array1::from_shape_fn(d, |i| 1.0 - 0.05 * i as f64);
    let bridge =
        GaussianBridge::new(mu0.clone(), s0.clone(), mu1.clone(), s1.clone(), 1.0).unwrap();
    let mut rng = SbRng::new(0);
    let (x, y) = (
        draws(&mu0, &s0, 200_000, &mut rng),
        draws(&mu1, &s1, 200_000, &mut rng),
    );
    let config = LightSbConfig {
        steps: 10_000,
        batch_size: 1024,
        lr: 3e-3,
        ..LightSbConfig::default()
    };
    let (plan, _) = fit(&config, sigma, x.view(), y.view(), &mut rng).unwrap();
    let inputs = draws(&mu0, &s0, 50, &mut rng);
    let total: f64 = inputs
        .axis_iter(Axis(0))
        .map(|xi| {
            let (m, c) = plan.conditional_moments(xi);
            let (wm, wc) = bridge.conditional(xi);
            bw2_squared(m.view(), &c, wm.view(), &wc).unwrap()
        })
        .sum();
    let var_trace: f64 = s1.diag().sum();
    let cbw = 100.0 * total / 50.0 / (0.5 * var_trace);
    let cross = s0.dot(&plan.s(0));
    let c = bridge.cross_covariance();
    let trace_error = (cross.diag().sum() - c.diag().sum()).abs() / d as f64;
    let entry_error = (&cross - c).mapv(f64::abs).fold(0.0, |a: f64, &b| a.max(b));
    (cbw, trace_error, entry_error)
}

#[test]
fn one_full_component_recovers_the_gaussian_bridge() {
    for d in [2, 16] {
        let (cbw, cross, entry) = fitted(d);
        eprintln!(
            "d = {d}: cBW2²-UVP {cbw:.4} %, cross_cov error {cross:.4}, largest entry error {entry:.4}"
        );
        assert!(cbw < 1.0, "d = {d}: cBW2²-UVP {cbw} %");
        assert!(cross < 0.01, "d = {d}: cross_cov off by {cross}");
        // Entry by entry the fitted cross-covariance is within a few hundredths.
        assert!(
            entry < 0.05,
            "d = {d}: a cross-covariance entry off by {entry}"
        );
    }
}
