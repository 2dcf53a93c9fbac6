//! The trainer's options and failure paths: divergence is reported with its place,
//! EMA / clipping / re-initialisation run and stay deterministic.

use candle_core::Device;
use sb_data::{Distribution, MatrixSpec, SbRng, VectorSpec};
use sb_methods::dsbm::DsbmConfig;
use sb_methods::net::NetConfig;
use sb_methods::tensor::to_f32;
use sb_methods::{Direction, MethodConfig, MethodError, TrainConfig, Trainer};

fn gaussians(scale: f64) -> (sb_data::Source, sb_data::Source) {
    let g = |m: f64| {
        Distribution::Gaussian {
            dim: 2,
            mean: VectorSpec::Scalar(m * scale),
            cov: MatrixSpec::Scalar(scale * scale),
        }
        .load()
        .unwrap()
    };
    (g(-1.0), g(1.0))
}

fn small_net() -> NetConfig {
    NetConfig {
        hidden: vec![16],
        ..NetConfig::default()
    }
}

/// Two passes of five steps on batches of 8 from caches of 16.
fn tiny_config() -> TrainConfig {
    TrainConfig {
        passes: 2,
        steps_per_pass: 5,
        batch_size: 8,
        cache_size: 16,
        ..TrainConfig::default()
    }
}

fn train(config: TrainConfig, scale: f64, seed: u64) -> Result<Vec<f32>, MethodError> {
    let (pi0, pi1) = gaussians(scale);
    let solver = MethodConfig::Dsbm(DsbmConfig::default()).build(1.0)?;
    let trainer = Trainer::new(solver, small_net(), config, Device::Cpu)?;
    let mut rng = SbRng::new(seed);
    let bridge = trainer.train(&pi0, &pi1, &mut rng, &mut [])?;
    let start = to_f32(&pi0.sample(64, &mut rng));
    let out = bridge.sample(Direction::Forward, &start, &mut rng, false)?;
    Ok(out.end().iter().copied().collect())
}

#[test]
fn divergence_names_pass_direction_and_step() {
    // Data at 1e30 makes the squared error overflow f32 at the first step.
    let config = tiny_config();
    let err = train(config, 1e30, 0).unwrap_err();
    match &err {
        MethodError::Diverged {
            pass,
            direction,
            step,
            ..
        } => {
            assert_eq!((*pass, *direction, *step), (0, Direction::Backward, 0));
        }
        other => panic!("expected divergence, got {other}"),
    }
    let text = err.to_string();
    assert!(
        text.starts_with(
            "training diverged in iteration 1, pass 1 (backward), step 1: the loss is"
        ),
        "{text}"
    );
}

#[test]
fn ema_clipping_and_reinitialisation_are_deterministic_and_matter() {
    let base = TrainConfig {
        passes: 3,
        steps_per_pass: 30,
        batch_size: 32,
        lr: 1e-2,
        cache_size: 64,
        ..TrainConfig::default()
    };
    let variant = TrainConfig {
        ema_decay: Some(0.9),
        grad_clip: Some(0.5),
        warm_start: false,
        ..base.clone()
    };
    let a = train(variant.clone(), 1.0, 7).unwrap();
    let b = train(variant, 1.0, 7).unwrap();
    let plain = train(base, 1.0, 7).unwrap();
    assert!(a.iter().all(|v| v.is_finite()));
    assert_eq!(a, b, "same seed, same samples");
    assert_ne!(a, plain, "the options change the result");
}

#[test]
fn invalid_training_values_are_refused_by_key() {
    let cases = [
        (
            TrainConfig {
                lr: -1.0,
                ..TrainConfig::default()
            },
            "train.lr must be > 0, got -1",
        ),
        (
            TrainConfig {
                passes: 0,
                ..TrainConfig::default()
            },
            "train.passes must be ≥ 1, got 0",
        ),
        (
            TrainConfig {
                ema_decay: Some(1.0),
                ..TrainConfig::default()
            },
            "train.ema_decay must be in (0, 1), got 1",
        ),
        (
            TrainConfig {
                grad_clip: Some(0.0),
                ..TrainConfig::default()
            },
            "train.grad_clip must be > 0, got 0",
        ),
    ];
    for (config, message) in cases {
        assert_eq!(config.validate().unwrap_err().to_string(), message);
    }
}

/// Keeps the checkpoint taken after a chosen number of passes.
struct Keep {
    at: usize,
    kept: Option<(sb_methods::Resume, SbRng)>,
}

impl sb_methods::Checkpointer for Keep {
    fn save(&mut self, c: &sb_methods::Checkpoint<'_>) -> Result<(), MethodError> {
        if c.passes_done == self.at {
            let saved = |m: Option<&sb_methods::Model>| {
                m.map(|m| sb_methods::SavedModel {
                    params: m.net().params().unwrap(),
                    ema: m.ema_params().map(<[_]>::to_vec),
                })
            };
            self.kept = Some((
                sb_methods::Resume {
                    passes_done: c.passes_done,
                    next_direction: c.next_direction,
                    forward: saved(c.forward),
                    backward: saved(c.backward),
                },
                c.rng.clone(),
            ));
        }
        Ok(())
    }
}

#[test]
fn resuming_from_a_pass_boundary_equals_the_uninterrupted_run() {
    let (pi0, pi1) = gaussians(1.0);
    let config = TrainConfig {
        passes: 4,
        steps_per_pass: 25,
        batch_size: 32,
        lr: 1e-2,
        cache_size: 64,
        ema_decay: Some(0.9),
        ..TrainConfig::default()
    };
    let trainer = || {
        let solver = MethodConfig::Dsbm(DsbmConfig::default())
            .build(1.0)
            .unwrap();
        Trainer::new(solver, small_net(), config.clone(), Device::Cpu).unwrap()
    };
    let finish = |bridge: sb_methods::TrainedBridge, rng: &mut SbRng| -> Vec<f32> {
        let start = to_f32(&pi0.sample(64, rng));
        let out = bridge
            .sample(Direction::Forward, &start, rng, false)
            .unwrap();
        out.end().iter().copied().collect()
    };
    let mut keep = Keep { at: 2, kept: None };
    let mut rng = SbRng::new(3);
    let whole = trainer()
        .train_from(None, &pi0, &pi1, &mut rng, &mut [], Some(&mut keep))
        .unwrap();
    let uninterrupted = finish(whole, &mut rng);

    let (resume, mut rng) = keep.kept.expect("a checkpoint after pass 2");
    assert_eq!(resume.next_direction, Direction::Backward);
    let resumed = trainer()
        .train_from(Some(resume), &pi0, &pi1, &mut rng, &mut [], None)
        .unwrap();
    assert_eq!(finish(resumed, &mut rng), uninterrupted);
}

/// A solver that counts how often the trainer renews its training set.
struct CountingRefreshes {
    inner: Box<dyn sb_methods::BridgeSolver>,
    refreshes: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl sb_methods::BridgeSolver for CountingRefreshes {
    fn name(&self, passes: usize) -> String {
        self.inner.name(passes)
    }
    fn params(&self) -> Vec<(String, String)> {
        self.inner.params()
    }
    fn first_direction(&self) -> Direction {
        self.inner.first_direction()
    }
    fn steps(&self, direction: Direction) -> Vec<sb_methods::sampler::Step> {
        self.inner.steps(direction)
    }
    fn reference_drift(
        &self,
        direction: Direction,
        x: &candle_core::Tensor,
        step: &sb_methods::sampler::Step,
    ) -> sb_methods::Result<candle_core::Tensor> {
        self.inner.reference_drift(direction, x, step)
    }
    fn training_set(
        &self,
        ctx: &sb_methods::solver::PassContext<'_>,
        rng: &mut SbRng,
    ) -> sb_methods::Result<sb_methods::solver::TrainingSet> {
        self.refreshes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner.training_set(ctx, rng)
    }
    fn batch(
        &self,
        set: &sb_methods::solver::TrainingSet,
        direction: Direction,
        rows: &[usize],
        rng: &mut SbRng,
    ) -> sb_methods::Result<sb_methods::solver::Batch> {
        self.inner.batch(set, direction, rows, rng)
    }
}

/// Cache refreshes in a 2-pass run of `method` with 40 steps per pass and batches of 32.
fn refreshes(method: MethodConfig, cache_size: usize, cache_reuse: usize) -> usize {
    let (pi0, pi1) = gaussians(1.0);
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let solver = CountingRefreshes {
        inner: method.build(1.0).unwrap(),
        refreshes: count.clone(),
    };
    let config = TrainConfig {
        passes: 2,
        steps_per_pass: 40,
        batch_size: 32,
        cache_size,
        cache_reuse,
        ..TrainConfig::default()
    };
    let trainer = Trainer::new(Box::new(solver), small_net(), config, Device::Cpu).unwrap();
    trainer
        .train(&pi0, &pi1, &mut SbRng::new(0), &mut [])
        .unwrap();
    count.load(std::sync::atomic::Ordering::Relaxed)
}

/// Issue 11: by default each DSBM pair is used about once, as the official code re-simulates
/// its pairs every epoch. The old default renewed 128 pairs every N · 128 / 32 = 80 steps
/// (one refresh a pass, each pair used N = 20 times), and DSBM then got worse with more
/// training on the moons.
#[test]
fn by_default_each_cached_pair_or_row_is_used_about_once() {
    let dsbm = MethodConfig::Dsbm(DsbmConfig::default());
    // 128 pairs, batches of 32: a refresh every 4 steps, 10 a pass.
    assert_eq!(refreshes(dsbm.clone(), 128, 1), 20);
    // The explicit faster reuse: each pair used twice, a refresh every 8 steps.
    assert_eq!(refreshes(dsbm, 128, 2), 10);
    // DSB keeps every Euler step of 16 trajectories: 320 rows, a refresh every 10 steps.
    let dsb = MethodConfig::Dsb(sb_methods::dsb::DsbConfig::default());
    assert_eq!(refreshes(dsb, 16, 1), 8);
}

/// Counts steps and asks to stop after `after` of them (a front end's Ctrl-C).
struct StopAfter {
    after: usize,
    seen: usize,
}

impl sb_methods::Observer for StopAfter {
    fn step(&mut self, _info: &sb_methods::StepInfo) {
        self.seen += 1;
    }
    fn interrupted(&mut self) -> bool {
        self.seen >= self.after
    }
}

#[test]
fn an_observer_stops_training_after_the_step_it_asks() {
    let (pi0, pi1) = gaussians(1.0);
    let config = tiny_config();
    let solver = MethodConfig::Dsbm(DsbmConfig::default())
        .build(1.0)
        .unwrap();
    let trainer = Trainer::new(solver, small_net(), config, Device::Cpu).unwrap();
    let mut stop = StopAfter { after: 7, seen: 0 };
    let err = match trainer.train(&pi0, &pi1, &mut SbRng::new(0), &mut [&mut stop]) {
        Err(e) => e,
        Ok(_) => panic!("training should have stopped"),
    };
    // Seven steps: the five of pass 1 and two of pass 2.
    assert!(
        matches!(err, MethodError::Interrupted { pass: 1, step: 1 }),
        "{err}"
    );
    assert_eq!(err.to_string(), "interrupted in pass 2, step 2");
    assert_eq!(stop.seen, 7);
}
