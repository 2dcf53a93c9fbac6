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
    let trainer = short_trainer(solver, passes, 600);
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

/// The short training of every test body: [64, 64] networks, batch 512, lr 2e-3.
fn short_trainer(
    solver: Box<dyn sb_methods::BridgeSolver>,
    passes: usize,
    steps_per_pass: usize,
) -> Trainer {
    let net = NetConfig {
        hidden: vec![64, 64],
        ..NetConfig::default()
    };
    let train = TrainConfig {
        passes,
        steps_per_pass,
        batch_size: 512,
        lr: 2e-3,
        cache_size: 2048,
        ..TrainConfig::default()
    };
    Trainer::new(solver, net, train, Device::Cpu).unwrap()
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

/// The conditional case (SPEC §8): x ~ N(−0.5, 1), y = x + η, η ~ N(0, 1); the state is
/// `[x, y]` with y frozen, π1 = N(0.5, 1.5) ⊗ p(y). Backward from `[z, y]` the bridge must
/// sample the exact posterior N((y − 0.5)/2, 1/2) for each y (the two y's below are 1.25
/// apart in posterior mean); forward, x must reach π1 whatever y; y must never move.
/// (A posterior much narrower than the last Euler step's noise variance σ²/N would measure the
/// sampler, not the conditioning: at σ = 1, N = 20 that variance is 0.05.)
fn check_conditional(method: MethodConfig) {
    let problem = sb_eval::LinearGaussian::new(
        ndarray::array![-0.5],
        ndarray::array![[1.0]],
        ndarray::array![[1.0]],
        ndarray::array![[1.0]],
    )
    .unwrap();
    let (jm, jc) = problem.joint();
    let pi0 = Distribution::Gaussian {
        dim: 2,
        mean: VectorSpec::Full(jm.to_vec()),
        cov: MatrixSpec::Full(jc.rows().into_iter().map(|r| r.to_vec()).collect()),
    }
    .load()
    .unwrap();
    // The second coordinate of π1's draws is replaced by the observation of π0's draw.
    let pi1 = Distribution::Gaussian {
        dim: 2,
        mean: VectorSpec::Full(vec![0.5, 0.0]),
        cov: MatrixSpec::Diagonal(vec![1.5, 1.0]),
    }
    .load()
    .unwrap();
    let solver = method.build_conditional(1.0, 1).unwrap();
    let name = format!("conditional {}", solver.name(8));
    // The network learns a drift for every y: more steps than the unconditional body.
    let trainer = short_trainer(solver, 8, 1000);
    let mut rng = SbRng::new(12);
    let bridge = trainer.train(&pi0, &pi1, &mut rng, &mut []).unwrap();
    for y in [-1.0f32, 1.5] {
        let start = Array2::from_shape_fn((4000, 2), |(_, j)| {
            if j == 0 {
                (0.5 + 1.5f64.sqrt() * rng.normal()) as f32
            } else {
                y
            }
        });
        let out = bridge
            .sample(Direction::Backward, &start, &mut rng, false)
            .unwrap();
        assert!(
            out.end()
                .column(1)
                .iter()
                .all(|&v| v.to_bits() == y.to_bits()),
            "{name}: y moved"
        );
        let x = out.end().slice(ndarray::s![.., ..1]).to_owned();
        let m = problem
            .posterior_mean(ndarray::array![f64::from(y)].view())
            .unwrap();
        let v = problem.posterior_cov()[[0, 0]];
        check_moments(&format!("{name} backward | y = {y}"), &x, [m[0]], [v]);
    }
    let start = to_f32(&pi0.sample(4000, &mut rng));
    let out = bridge
        .sample(Direction::Forward, &start, &mut rng, false)
        .unwrap();
    assert_eq!(out.end().column(1), start.column(1), "{name}: y moved");
    let x = out.end().slice(ndarray::s![.., ..1]).to_owned();
    check_moments(&format!("{name} forward"), &x, [0.5], [1.5]);
}

#[test]
fn conditional_dsb_samples_the_posterior() {
    check_conditional(MethodConfig::Dsb(DsbConfig::default()));
}

#[test]
fn conditional_dsbm_samples_the_posterior() {
    check_conditional(MethodConfig::Dsbm(DsbmConfig::default()));
}

#[test]
fn conditional_form_is_refused_for_the_peers() {
    let e = MethodConfig::OtCfm(OtCfmConfig::default())
        .build_conditional(1.0, 1)
        .err()
        .unwrap();
    assert!(e.to_string().contains("no conditional form"), "{e}");
}
