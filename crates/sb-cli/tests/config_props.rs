//! The experiment loader never panics on arbitrary input, and configurations round-trip
//! through YAML unchanged.

use std::path::Path;

use proptest::prelude::*;
use sb_cli::experiment::{EvalConfig, Experiment, MethodEntry, Metric, Problem, Sigma};
use sb_data::{Distribution, MatrixSpec, VectorSpec};
use sb_methods::cfm::{MinibatchCoupling, OtCfmConfig, SbCfmConfig};
use sb_methods::dsb::{DsbConfig, DsbReference};
use sb_methods::dsbm::{Coupling, DsbmConfig};
use sb_methods::lightsb::{Covariance, LightSbConfig};
use sb_methods::net::{Activation, NetConfig, TimeInput};
use sb_methods::{Direction, MethodConfig, TrainConfig};

const VALID: &str = "
name: t
seeds: [0, 1]
problems:
  - name: p
    sigma: 1.0
    pi0: {kind: moons, noise: 0.1}
    pi1: {kind: gaussian, dim: 2, mean: [0.0, 1.0], cov: [[1.0, 0.2], [0.2, 1.0]]}
methods:
  - method: {kind: dsb, num_steps: 10, reference: ou}
    train: {passes: 2, steps_per_pass: 5, lr: 1.0e-3}
  - method: {kind: dsbm, first_coupling: reference}
    net: {hidden: [8, 8], activation: relu, time: concat}
eval: {samples: 10, metrics: [w2, mmd]}
";

fn distribution() -> impl Strategy<Value = Distribution> {
    prop_oneof![
        (1usize..4, -3.0f64..3.0, 0.1f64..4.0).prop_map(|(dim, m, v)| Distribution::Gaussian {
            dim,
            mean: VectorSpec::Scalar(m),
            cov: MatrixSpec::Scalar(v),
        }),
        (0.0f64..1.0).prop_map(|noise| Distribution::Moons { noise }),
        (0.5f64..4.0, 0.01f64..1.0, any::<bool>()).prop_map(|(radius, std, balanced)| {
            Distribution::EightGaussians {
                radius,
                std,
                balanced,
            }
        }),
        (0.0f64..0.3, 0.5f64..8.0)
            .prop_map(|(noise, scale)| Distribution::DsbMoons { noise, scale }),
        (0.0f64..0.3, 0.5f64..8.0).prop_map(|(noise, scale)| Distribution::Scurve { noise, scale }),
        Just(Distribution::Checkerboard),
        (0.0f64..0.3, 0.1f64..0.9)
            .prop_map(|(noise, factor)| Distribution::Circles { noise, factor }),
    ]
}

fn method() -> impl Strategy<Value = MethodConfig> {
    prop_oneof![
        (
            1usize..50,
            prop::option::of(0.001f64..0.5),
            any::<bool>(),
            0.1f64..3.0
        )
            .prop_map(
                |(num_steps, gamma, ou, prior_var)| MethodConfig::Dsb(DsbConfig {
                    num_steps,
                    gamma,
                    reference: if ou {
                        DsbReference::Ou
                    } else {
                        DsbReference::Brownian
                    },
                    prior_var,
                })
            ),
        (1usize..50, any::<bool>(), 0.0f64..0.4, any::<bool>()).prop_map(
            |(num_steps, reference, t_epsilon, forward)| MethodConfig::Dsbm(DsbmConfig {
                num_steps,
                first_coupling: if reference {
                    Coupling::Reference
                } else {
                    Coupling::Independent
                },
                t_epsilon,
                first_direction: if forward {
                    Direction::Forward
                } else {
                    Direction::Backward
                },
            })
        ),
        (1usize..50, 0.0f64..1.0, 0usize..3, 0.0f64..0.4).prop_map(
            |(num_steps, sigma_min, coupling, t_epsilon)| MethodConfig::OtCfm(OtCfmConfig {
                num_steps,
                sigma_min,
                coupling: couplings()[coupling],
                t_epsilon,
            })
        ),
        (1usize..50, 0usize..3, 0.0f64..0.4, any::<bool>()).prop_map(
            |(num_steps, coupling, t_epsilon, sde)| {
                let c = SbCfmConfig {
                    num_steps,
                    coupling: couplings()[coupling],
                    t_epsilon,
                };
                if sde {
                    MethodConfig::Sf2m(c)
                } else {
                    MethodConfig::SbCfm(c)
                }
            }
        ),
        lightsb(),
    ]
}

fn lightsb() -> impl Strategy<Value = MethodConfig> {
    (
        1usize..8,
        any::<bool>(),
        1usize..5000,
        1e-4f64..0.1,
        1usize..1024,
        1usize..50,
    )
        .prop_map(|(components, full, steps, lr, batch_size, num_steps)| {
            MethodConfig::LightSb(LightSbConfig {
                components,
                covariance: if full {
                    Covariance::Full
                } else {
                    Covariance::Diagonal
                },
                steps,
                lr,
                batch_size,
                num_steps,
            })
        })
}

fn couplings() -> [MinibatchCoupling; 3] {
    [
        MinibatchCoupling::Independent,
        MinibatchCoupling::Exact,
        MinibatchCoupling::Sinkhorn,
    ]
}

fn entry() -> impl Strategy<Value = MethodEntry> {
    (
        prop::option::of("[A-Za-z][A-Za-z0-9 -]{0,8}"),
        method(),
        prop::collection::vec(1usize..300, 0..4),
        prop::sample::select(vec![
            Activation::Silu,
            Activation::Relu,
            Activation::Tanh,
            Activation::Gelu,
        ]),
        any::<bool>(),
        (
            1usize..20,
            1usize..5000,
            1usize..1024,
            1e-6f64..1.0,
            1usize..20000,
        ),
        (
            prop::option::of(1usize..100),
            any::<bool>(),
            prop::option::of(0.5f64..0.9999),
            prop::option::of(0.1f64..10.0),
        ),
    )
        .prop_map(
            |(
                label,
                method,
                hidden,
                activation,
                concat,
                (passes, steps, batch, lr, cache),
                (refresh, warm, ema, clip),
            )| MethodEntry {
                label,
                method,
                net: NetConfig {
                    hidden,
                    activation,
                    time: if concat {
                        TimeInput::Concat
                    } else {
                        TimeInput::Sinusoidal
                    },
                    time_dim: 16,
                },
                train: TrainConfig {
                    passes,
                    steps_per_pass: steps,
                    batch_size: batch,
                    lr,
                    cache_size: cache,
                    cache_reuse: 1 + cache % 3,
                    cache_refresh: refresh,
                    warm_start: warm,
                    ema_decay: ema,
                    grad_clip: clip,
                },
            },
        )
}

fn experiment() -> impl Strategy<Value = Experiment> {
    (
        "[a-z][a-z0-9-]{0,10}",
        // Distinct seeds (a repeated seed is refused).
        prop::collection::btree_set(any::<u64>(), 1..4)
            .prop_map(|s| s.into_iter().collect::<Vec<u64>>()),
        prop::collection::vec((distribution(), distribution(), 0.0f64..3.0), 1..3),
        prop::collection::vec(entry(), 1..3),
        (
            2usize..5000,
            prop::collection::vec(
                prop::sample::select(vec![Metric::W1, Metric::W2, Metric::Mmd]),
                0..3,
            ),
            0.1f64..5.0,
        ),
    )
        .prop_map(
            |(name, seeds, problems, methods, (samples, metrics, mmd_bandwidth))| {
                Experiment::new(
                    name,
                    seeds,
                    problems
                        .into_iter()
                        .enumerate()
                        .map(|(i, (pi0, pi1, sigma))| Problem {
                            name: format!("p{i}"),
                            sigma: Sigma::Value(sigma),
                            pi0: Some(pi0),
                            pi1: Some(pi1),
                            leave_one_out: None,
                            inverse: None,
                            labels: None,
                            gaussian_row: false,
                            split: (i % 2 == 1).then_some(sb_data::SplitSpec {
                                train: 100,
                                val: 20,
                                test: 20,
                                seed: i as u64,
                                shuffle: true,
                            }),
                            train_set: (i % 3 == 2).then_some(50 + i),
                            metrics: None,
                            published: Default::default(),
                        })
                        .collect(),
                    methods,
                    EvalConfig {
                        samples,
                        metrics,
                        mmd_bandwidth,
                        ..EvalConfig::default()
                    },
                )
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Arbitrary text gives an experiment or an error, never a panic.
    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,300}") {
        let _ = Experiment::parse(&text, Path::new("x.yaml"));
    }

    /// A valid file with one span replaced by arbitrary text: still no panic.
    #[test]
    fn damaged_files_never_panic(start in 0usize..VALID.len(), len in 0usize..40, junk in "[ -~\n]{0,20}") {
        let start = (0..=start).rev().find(|&i| VALID.is_char_boundary(i)).unwrap_or(0);
        let end = (start + len).min(VALID.len());
        let end = (end..=VALID.len()).find(|&i| VALID.is_char_boundary(i)).unwrap_or(VALID.len());
        let text = format!("{}{}{}", &VALID[..start], junk, &VALID[end..]);
        let _ = Experiment::parse(&text, Path::new("x.yaml"));
    }

    /// Serialising a configuration and reading it back gives the same configuration.
    #[test]
    fn configs_round_trip_through_yaml(exp in experiment()) {
        let yaml = exp.to_yaml();
        let back: Experiment = serde_yaml::from_str(&yaml).map_err(|e| TestCaseError::fail(format!("{e}\n{yaml}")))?;
        prop_assert_eq!(back, exp);
    }
}

#[test]
fn the_valid_file_is_valid() {
    Experiment::parse(VALID, Path::new("x.yaml")).unwrap();
}
