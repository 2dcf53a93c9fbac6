//! One test body run against every solver: a short training run between two 1-D Gaussians
//! must transport means and variances to the targets in both directions.

use candle_core::Device;
use ndarray::{Array1, Array2, Axis};
use sb_data::{Distribution, MatrixSpec, SbRng, VectorSpec};
use sb_methods::cfm::{OtCfmConfig, SbCfmConfig};
use sb_methods::dsb::DsbConfig;
use sb_methods::dsbm::{Coupling, DsbmConfig};
use sb_methods::lightsb::LightSbConfig;
use sb_methods::net::NetConfig;
use sb_methods::tensor::to_f32;
use sb_methods::{Direction, MethodConfig, TrainConfig, Trainer};

/// Tolerances, stated once: absolute error of each mean coordinate, and relative error of
/// each variance, of 4000 transported samples after 8 short passes (four IPF/IMF iterations).
///
/// Why 8: for these Gaussians exact IPF closes the gap between means by a factor 3 per pass
/// (pass 6 still lags by 0.04, pass 8 by 0.01), and DSB's mean-matching targets carry step
/// noise √(2γ) ≈ 0.22 against a drift of ≈ 0.05 per step, so it needs the extra passes and
/// the larger batch to average that noise out.
///
/// The problem is 1-D: N(−0.5, 0.5) → N(0.5, 1.5), σ = 1. (In 2-D, DSB's means still lag
/// exact IPF after 8 passes; see the closing note of the foundation issue.)
const MEAN_TOL: f64 = 0.15;
const VAR_REL_TOL: f64 = 0.25;

fn gaussian(mean: [f64; 1], var: [f64; 1]) -> Distribution {
    Distribution::Gaussian {
        dim: 1,
        mean: VectorSpec::Full(mean.to_vec()),
        cov: MatrixSpec::Diagonal(var.to_vec()),
    }
}

fn moments(x: &Array2<f32>) -> (Array1<f64>, Array1<f64>) {
    let x = x.mapv(f64::from);
    let mean = x.mean_axis(Axis(0)).unwrap();
    let var = x.var_axis(Axis(0), 1.0);
    (mean, var)
}

fn check_solver(method: MethodConfig) {
    check_solver_with(method, 8);
}

/// The test body with `passes` passes (the minibatch-OT methods' passes do not build on each
/// other: two train both directions).
fn check_solver_with(method: MethodConfig, passes: usize) {
    let (mu0, var0) = ([-0.5], [0.5]);
    let (mu1, var1) = ([0.5], [1.5]);
    let pi0 = gaussian(mu0, var0).load().unwrap();
    let pi1 = gaussian(mu1, var1).load().unwrap();
    let solver = method.build(1.0).unwrap();
    let name = solver.name(passes);
    let net = NetConfig {
        hidden: vec![64, 64],
        ..NetConfig::default()
    };
    let train = TrainConfig {
        passes,
        steps_per_pass: 600,
        batch_size: 512,
        lr: 2e-3,
        cache_size: 2048,
        ..TrainConfig::default()
    };
    let trainer = Trainer::new(solver, net, train, Device::Cpu).unwrap();
    let mut rng = SbRng::new(11);
    let bridge = trainer.train(&pi0, &pi1, &mut rng, &mut []).unwrap();
    for (direction, from, (mu, var)) in [
        (Direction::Forward, &pi0, (mu1, var1)),
        (Direction::Backward, &pi1, (mu0, var0)),
    ] {
        let start = to_f32(&from.sample(4000, &mut rng));
        let out = bridge.sample(direction, &start, &mut rng, false).unwrap();
        check_moments(&format!("{name} {direction}"), out.end(), mu, var);
        // Continuous-time networks sample with any step count; grid-bound ones (DSB) refuse.
        let end = if direction == Direction::Forward {
            1.0
        } else {
            0.0
        };
        match bridge.steps_with(direction, 100) {
            Ok(_) => {
                let out = bridge
                    .sample_until_with(direction, &start, &mut rng, end, 100)
                    .unwrap();
                check_moments(&format!("{name} {direction} @100"), &out, mu, var);
            }
            Err(e) => assert!(e.to_string().contains("own"), "{name}: {e}"),
        }
        // The probability-flow ODE (v_f − v_b)/2 carries the same marginals (DSBM only).
        match bridge.sample_ode(direction, &start, 20) {
            Ok(out) => check_moments(&format!("{name} {direction} @ode"), &out, mu, var),
            Err(e) => {
                assert!(!bridge.solver().probability_flow(), "{name}: {e}");
                assert!(e.to_string().contains("probability-flow"), "{name}: {e}");
            }
        }
    }
}

fn check_moments(what: &str, x: &Array2<f32>, mu: [f64; 1], var: [f64; 1]) {
    let (m, v) = moments(x);
    for i in 0..1 {
        assert!(
            (m[i] - mu[i]).abs() < MEAN_TOL,
            "{what}: mean[{i}] = {:.3}, target {}",
            m[i],
            mu[i]
        );
        assert!(
            (v[i] / var[i] - 1.0).abs() < VAR_REL_TOL,
            "{what}: var[{i}] = {:.3}, target {}",
            v[i],
            var[i]
        );
    }
}

#[test]
fn dsb_transports_gaussians() {
    check_solver(MethodConfig::Dsb(DsbConfig::default()));
}

#[test]
fn dsbm_ipf_transports_gaussians() {
    check_solver(MethodConfig::Dsbm(DsbmConfig {
        first_coupling: Coupling::Reference,
        ..DsbmConfig::default()
    }));
}

#[test]
fn dsbm_imf_transports_gaussians() {
    check_solver(MethodConfig::Dsbm(DsbmConfig {
        first_coupling: Coupling::Independent,
        ..DsbmConfig::default()
    }));
}

#[test]
fn ot_cfm_transports_gaussians() {
    check_solver_with(MethodConfig::OtCfm(OtCfmConfig::default()), 2);
}

#[test]
fn sb_cfm_transports_gaussians() {
    check_solver_with(MethodConfig::SbCfm(SbCfmConfig::default()), 2);
}

#[test]
fn sf2m_transports_gaussians() {
    check_solver_with(MethodConfig::Sf2m(SbCfmConfig::default()), 2);
}

#[test]
fn lightsb_transports_gaussians() {
    // Fitted without passes: the trainer's pass settings do not apply.
    check_solver_with(MethodConfig::LightSb(LightSbConfig::default()), 2);
}
