//! The one training loop: pass schedule, Adam, EMA, clipping, NaN checks, observers.

use std::path::Path;

use candle_core::{Device, Tensor};
use ndarray::Array2;
use sb_data::{SbRng, Source};

use crate::net::{DriftNet, NetConfig};
use crate::optim::{clip_grad_norm, Adam, Ema};
use crate::sampler::{simulate, time_column, Drift, Simulation, Step};
use crate::solver::{Epochs, ExactSampler, PassContext, Reference};
use crate::tensor::{to_f32, to_tensor};
use crate::{BridgeSolver, Direction, MethodError, Result, TrainConfig};

/// A drift network together with the EMA of its weights, if one is kept.
#[derive(Debug)]
pub struct Model {
    net: DriftNet,
    ema: Option<Ema>,
}

impl Model {
    /// The network.
    pub fn net(&self) -> &DriftNet {
        &self.net
    }

    /// The EMA of the weights, if one is kept.
    pub fn ema_params(&self) -> Option<&[Tensor]> {
        self.ema.as_ref().map(Ema::params)
    }

    /// Rebuilds a model from saved weights (and EMA), for resuming a run.
    ///
    /// # Errors
    /// Weights whose shapes do not fit the architecture.
    pub fn from_saved(
        net: &NetConfig,
        dim: usize,
        device: &Device,
        saved: SavedModel,
        ema_decay: Option<f64>,
    ) -> Result<Self> {
        let model = DriftNet::new(net, dim, device, &mut SbRng::new(0))?;
        model.set_params(&saved.params)?;
        let ema = match (ema_decay, saved.ema) {
            (Some(decay), Some(shadow)) => Some(Ema::from_params(decay, shadow)),
            (Some(decay), None) => Some(Ema::new(model.vars(), decay)?),
            (None, _) => None,
        };
        Ok(Self { net: model, ema })
    }

    /// The parameters used for sampling: the EMA if kept, else the live weights.
    ///
    /// # Errors
    /// A tensor error.
    pub fn sampling_params(&self) -> Result<Vec<Tensor>> {
        match &self.ema {
            Some(e) => Ok(e.params().to_vec()),
            None => self.net.params(),
        }
    }
}

impl Drift for Model {
    fn drift(&self, x: &Tensor, step: &Step) -> Result<Tensor> {
        let t = time_column(step.t, x.dims2()?.0, x.device())?;
        match &self.ema {
            Some(e) => {
                let params: Vec<&Tensor> = e.params().iter().collect();
                self.net.forward_with(&params, x, &t)
            }
            None => self.net.forward_detached(x, &t),
        }
    }
}

/// The probability-flow drift `sign · (v_f − v_b)` of a DSBM pair (`sign = ±½`).
struct FlowDrift<'a> {
    forward: &'a Model,
    backward: &'a Model,
    sign: f64,
}

impl Drift for FlowDrift<'_> {
    fn drift(&self, x: &Tensor, step: &Step) -> Result<Tensor> {
        let f = self.forward.drift(x, step)?;
        let b = self.backward.drift(x, step)?;
        Ok(((f - b)? * self.sign)?)
    }
}

/// What observers are told after each optimizer step.
#[derive(Clone, Copy, Debug)]
pub struct StepInfo {
    /// Zero-based pass.
    pub pass: usize,
    /// Number of passes in the run.
    pub passes: usize,
    /// The direction being trained.
    pub direction: Direction,
    /// Zero-based step within the pass.
    pub step: usize,
    /// Steps per pass.
    pub steps: usize,
    /// The batch loss (mean squared error).
    pub loss: f64,
}

/// What observers are told at the start and end of a pass.
#[derive(Clone, Copy, Debug)]
pub struct PassInfo {
    /// Zero-based pass.
    pub pass: usize,
    /// Number of passes in the run.
    pub passes: usize,
    /// The direction trained.
    pub direction: Direction,
    /// Mean loss over the pass (at the end; NaN at the start).
    pub mean_loss: f64,
}

/// Watches training. Every method has a do-nothing default.
pub trait Observer {
    /// A pass is starting.
    fn pass_start(&mut self, _info: &PassInfo) {}
    /// An optimizer step has finished.
    fn step(&mut self, _info: &StepInfo) {}
    /// A pass has finished.
    fn pass_end(&mut self, _info: &PassInfo) {}
    /// Asked after every optimizer step: `true` stops training with
    /// [`MethodError::Interrupted`] (a front end's Ctrl-C). Defaults to `false`.
    fn interrupted(&mut self) -> bool {
        false
    }
}

/// Saved weights of one direction's model.
#[derive(Clone, Debug)]
pub struct SavedModel {
    /// The live weights, in [`DriftNet::vars`] order.
    pub params: Vec<Tensor>,
    /// The EMA of the weights, if one was kept.
    pub ema: Option<Vec<Tensor>>,
}

/// The state of a run at a pass boundary: with the generator's state, enough to continue it
/// exactly (Adam starts afresh every pass, so no optimizer moments are needed).
pub struct Checkpoint<'a> {
    /// Passes completed.
    pub passes_done: usize,
    /// The direction of the next pass.
    pub next_direction: Direction,
    /// The generator, as it stands at the boundary.
    pub rng: &'a SbRng,
    /// The forward model, if trained.
    pub forward: Option<&'a Model>,
    /// The backward model, if trained.
    pub backward: Option<&'a Model>,
    /// The solver (for sampling with the models as they stand).
    pub solver: &'a dyn BridgeSolver,
    /// Where tensors live.
    pub device: &'a Device,
}

impl Checkpoint<'_> {
    /// Transports `start` in `direction` with the models as they stand at this boundary
    /// (the reference process for a direction not yet trained).
    ///
    /// # Errors
    /// A tensor error or non-finite samples.
    pub fn sample(
        &self,
        direction: Direction,
        start: &Array2<f32>,
        rng: &mut SbRng,
    ) -> Result<Simulation> {
        let steps = self.solver.steps(direction);
        let reference = Reference {
            solver: self.solver,
            direction,
        };
        let model = match direction {
            Direction::Forward => self.forward,
            Direction::Backward => self.backward,
        };
        let drift: &dyn Drift = match model {
            Some(m) => m,
            None => &reference,
        };
        simulate(drift, &steps, direction, start, rng, false, self.device)
    }
}

/// Receives a [`Checkpoint`] after every pass; an error stops training.
pub trait Checkpointer {
    /// Saves the checkpoint.
    ///
    /// # Errors
    /// The checkpoint could not be saved.
    fn save(&mut self, checkpoint: &Checkpoint<'_>) -> Result<()>;
}

/// A saved state to continue training from (the generator's state is restored by the caller).
#[derive(Clone, Debug)]
pub struct Resume {
    /// Passes already completed.
    pub passes_done: usize,
    /// The direction of the next pass.
    pub next_direction: Direction,
    /// The forward model, if trained.
    pub forward: Option<SavedModel>,
    /// The backward model, if trained.
    pub backward: Option<SavedModel>,
}

/// Trains a [`BridgeSolver`]'s forward and backward drifts between two data sources.
pub struct Trainer {
    solver: Box<dyn BridgeSolver>,
    net: NetConfig,
    config: TrainConfig,
    device: Device,
}

impl Trainer {
    /// A trainer for `solver` with networks of architecture `net`.
    ///
    /// # Errors
    /// An invalid training or network configuration.
    pub fn new(
        solver: Box<dyn BridgeSolver>,
        net: NetConfig,
        config: TrainConfig,
        device: Device,
    ) -> Result<Self> {
        config.validate()?;
        net.validate()?;
        Ok(Self {
            solver,
            net,
            config,
            device,
        })
    }

    /// Runs every pass and returns the trained bridge.
    ///
    /// `pi0` and `pi1` are drawn afresh at every cache refresh; all randomness comes from `rng`.
    ///
    /// # Errors
    /// Mismatched dimensions, a tensor error, or divergence (a non-finite loss or
    /// simulation), which names the pass, direction and step.
    pub fn train(
        self,
        pi0: &Source,
        pi1: &Source,
        rng: &mut SbRng,
        observers: &mut [&mut dyn Observer],
    ) -> Result<TrainedBridge> {
        self.train_from(None, pi0, pi1, rng, observers, None)
    }

    /// Runs the passes left after `resume` (all of them if `None`), handing a [`Checkpoint`] to
    /// `checkpointer` after each. Resumed with the generator state saved at a boundary, a run
    /// ends exactly as an uninterrupted one.
    ///
    /// # Errors
    /// As [`Trainer::train`], a resume state that does not fit the configuration, or a failed
    /// checkpoint.
    pub fn train_from(
        self,
        resume: Option<Resume>,
        pi0: &Source,
        pi1: &Source,
        rng: &mut SbRng,
        observers: &mut [&mut dyn Observer],
        mut checkpointer: Option<&mut dyn Checkpointer>,
    ) -> Result<TrainedBridge> {
        let dim = pi0.dim();
        if pi1.dim() != dim {
            return Err(MethodError::Config(format!(
                "π0 has dimension {dim} but π1 has dimension {}",
                pi1.dim()
            )));
        }
        let m = self.solver.observation_dim();
        if m >= dim {
            return Err(MethodError::Config(format!(
                "a conditional bridge's observation has {m} coordinates but the state only {dim}: \
                 nothing would be left to transport"
            )));
        }
        // A solver fitted without networks (LightSB) runs no passes.
        if let Some(fitted) = self.solver.fit_exact(pi0, pi1, rng) {
            return Ok(TrainedBridge {
                exact: Some(fitted?),
                solver: self.solver,
                forward: None,
                backward: None,
                passes: 0,
                device: self.device,
            });
        }
        let cfg = &self.config;
        let solver = self.solver.as_ref();
        let restore = |saved: Option<SavedModel>| -> Result<Option<Model>> {
            saved
                .map(|m| Model::from_saved(&self.net, dim, &self.device, m, cfg.ema_decay))
                .transpose()
        };
        let (start, mut direction, mut forward, mut backward) = match resume {
            Some(r) => {
                if r.passes_done > cfg.passes {
                    return Err(MethodError::Config(format!(
                        "the checkpoint has {} passes done but the run has {}",
                        r.passes_done, cfg.passes
                    )));
                }
                let (f, b) = (restore(r.forward)?, restore(r.backward)?);
                (r.passes_done, r.next_direction, f, b)
            }
            None => (0, solver.first_direction(), None, None),
        };
        for pass in start..cfg.passes {
            let (current, opposite) = match direction {
                Direction::Forward => (&mut forward, &backward),
                Direction::Backward => (&mut backward, &forward),
            };
            let model = match current.take() {
                Some(m) if cfg.warm_start => m,
                Some(m) => {
                    m.net.reinitialize(rng)?;
                    let ema = self.fresh_ema(&m.net)?;
                    Model { net: m.net, ema }
                }
                None => {
                    let net = DriftNet::new(&self.net, dim, &self.device, rng)?;
                    let ema = self.fresh_ema(&net)?;
                    Model { net, ema }
                }
            };
            let reference = Reference {
                solver,
                direction: direction.opposite(),
            };
            let opposite_drift: &dyn Drift = match opposite {
                Some(m) => m,
                None => &reference,
            };
            let mut model = model;
            let mut info = PassInfo {
                pass,
                passes: cfg.passes,
                direction,
                mean_loss: f64::NAN,
            };
            for o in observers.iter_mut() {
                o.pass_start(&info);
            }
            let loss_sum = self.run_pass(
                &mut model,
                opposite_drift,
                opposite.is_some(),
                pi0,
                pi1,
                pass,
                direction,
                rng,
                observers,
            )?;
            info.mean_loss = loss_sum / cfg.steps_per_pass as f64;
            *current = Some(model);
            for o in observers.iter_mut() {
                o.pass_end(&info);
            }
            direction = direction.opposite();
            if let Some(c) = checkpointer.as_deref_mut() {
                c.save(&Checkpoint {
                    passes_done: pass + 1,
                    next_direction: direction,
                    rng,
                    forward: forward.as_ref(),
                    backward: backward.as_ref(),
                    solver,
                    device: &self.device,
                })?;
            }
        }
        Ok(TrainedBridge {
            solver: self.solver,
            forward,
            backward,
            exact: None,
            passes: cfg.passes,
            device: self.device,
        })
    }

    fn fresh_ema(&self, net: &DriftNet) -> Result<Option<Ema>> {
        self.config
            .ema_decay
            .map(|d| Ema::new(net.vars(), d))
            .transpose()
    }

    #[allow(clippy::too_many_arguments)]
    fn run_pass(
        &self,
        model: &mut Model,
        opposite: &dyn Drift,
        opposite_trained: bool,
        pi0: &Source,
        pi1: &Source,
        pass: usize,
        direction: Direction,
        rng: &mut SbRng,
        observers: &mut [&mut dyn Observer],
    ) -> Result<f64> {
        let cfg = &self.config;
        let diverged = |step: usize, what: String| MethodError::Diverged {
            pass,
            direction,
            step,
            what,
        };
        let vars = model.net.vars().to_vec();
        let mut adam = Adam::new(&vars, cfg.lr)?;
        let mut set = None;
        let mut epochs = None;
        let mut refresh_at = 0;
        let mut loss_sum = 0.0;
        for step in 0..cfg.steps_per_pass {
            if step == refresh_at {
                let x0 = to_f32(&pi0.sample(cfg.cache_size, rng));
                let mut x1 = to_f32(&pi1.sample(cfg.cache_size, rng));
                let m = self.solver.observation_dim();
                if m > 0 {
                    // π1 = reference ⊗ p(y): each π1 draw takes the observation of its row's π0 draw.
                    crate::sampler::copy_tail(&mut x1, &x0, m);
                }
                let ctx = PassContext {
                    direction,
                    pass,
                    x0: &x0,
                    x1: &x1,
                    opposite,
                    opposite_trained,
                    device: &self.device,
                };
                let fresh = self.solver.training_set(&ctx, rng).map_err(|e| match e {
                    MethodError::NonFiniteSample { direction: d, step: k } => diverged(
                        step,
                        format!("refreshing the cache, the {d} simulation became non-finite at Euler step {k}"),
                    ),
                    other => other,
                })?;
                // Rows (DSB) or pairs (DSBM) come once per epoch, in a new order each epoch;
                // the set is renewed after `cache_reuse` epochs.
                refresh_at = step + cfg.refresh_every(fresh.len());
                epochs = Some(Epochs::new(fresh.len(), rng));
                set = Some(fresh);
            }
            let set = set.as_ref().expect("filled at step 0");
            let rows = epochs
                .as_mut()
                .expect("filled at step 0")
                .take(cfg.batch_size, rng);
            let batch = self.solver.batch(set, direction, &rows, rng)?;
            let x = to_tensor(&batch.x, &self.device)?;
            let t = to_tensor(&batch.t, &self.device)?;
            let target = to_tensor(&batch.target, &self.device)?;
            let (loss_value, mut grads) = model.net.mse_gradients(&x, &t, &target)?;
            if !loss_value.is_finite() {
                return Err(diverged(step, format!("the loss is {loss_value}")));
            }
            if let Some(max) = cfg.grad_clip {
                clip_grad_norm(&vars, &mut grads, max)?;
            }
            adam.step(&vars, &grads)?;
            if let Some(ema) = model.ema.as_mut() {
                ema.update(&vars)?;
            }
            loss_sum += loss_value;
            let info = StepInfo {
                pass,
                passes: cfg.passes,
                direction,
                step,
                steps: cfg.steps_per_pass,
                loss: loss_value,
            };
            for o in observers.iter_mut() {
                o.step(&info);
            }
            if observers.iter_mut().any(|o| o.interrupted()) {
                return Err(MethodError::Interrupted { pass, step });
            }
        }
        Ok(loss_sum)
    }
}

/// A trained bridge: the solver and its forward and backward drift networks, or the exact
/// sampler of a solver fitted without networks.
///
/// A direction that was never trained runs the reference process.
pub struct TrainedBridge {
    solver: Box<dyn BridgeSolver>,
    forward: Option<Model>,
    backward: Option<Model>,
    exact: Option<Box<dyn ExactSampler>>,
    passes: usize,
    device: Device,
}

impl TrainedBridge {
    /// The method's name in results (e.g. `DSBM-IMF`, `SGM`).
    pub fn name(&self) -> String {
        self.solver.name(self.passes)
    }

    /// The solver.
    pub fn solver(&self) -> &dyn BridgeSolver {
        self.solver.as_ref()
    }

    /// The trained model of `direction`, if that direction was trained.
    pub fn model(&self, direction: Direction) -> Option<&Model> {
        match direction {
            Direction::Forward => self.forward.as_ref(),
            Direction::Backward => self.backward.as_ref(),
        }
    }

    /// Transports `start` in `direction` with Euler–Maruyama (from π0 when forward, from π1
    /// when backward). With `keep_trajectory`, every intermediate state is returned.
    ///
    /// # Errors
    /// A tensor error or non-finite samples.
    pub fn sample(
        &self,
        direction: Direction,
        start: &Array2<f32>,
        rng: &mut SbRng,
        keep_trajectory: bool,
    ) -> Result<Simulation> {
        self.simulate_steps(
            direction,
            &self.solver.steps(direction),
            start,
            rng,
            keep_trajectory,
        )
    }

    /// Transports `start` in `direction` only as far as time `t_stop ∈ [0, 1]` (for example
    /// to predict a held-out snapshot between the two ends); see [`crate::sampler::steps_until`]
    /// for a stop between grid times. Returns the state at `t_stop`.
    ///
    /// # Errors
    /// `t_stop` outside `[0, 1]`, a tensor error, or non-finite samples.
    pub fn sample_until(
        &self,
        direction: Direction,
        start: &Array2<f32>,
        rng: &mut SbRng,
        t_stop: f64,
    ) -> Result<Array2<f32>> {
        self.sample_until_on(&self.solver.steps(direction), direction, start, rng, t_stop)
    }

    /// Transports `start` along the grid `steps` as far as `t_stop ∈ [0, 1]`.
    fn sample_until_on(
        &self,
        steps: &[Step],
        direction: Direction,
        start: &Array2<f32>,
        rng: &mut SbRng,
        t_stop: f64,
    ) -> Result<Array2<f32>> {
        if !(0.0..=1.0).contains(&t_stop) {
            return Err(MethodError::Config(format!(
                "the stopping time must be in [0, 1], got {t_stop}"
            )));
        }
        let steps = crate::sampler::steps_until(steps, direction, t_stop);
        let sim = self.simulate_steps(direction, &steps, start, rng, false)?;
        Ok(sim.end().clone())
    }

    /// The grid of a simulation in `direction` with `n` uniform Euler steps instead of the
    /// trained number (see [`BridgeSolver::steps_with`]).
    ///
    /// # Errors
    /// `n = 0`, or a solver whose networks belong to their own grid (DSB) with another `n`.
    pub fn steps_with(&self, direction: Direction, n: usize) -> Result<Vec<Step>> {
        if n == 0 {
            return Err(MethodError::Config(
                "the number of sampling steps must be ≥ 1, got 0".into(),
            ));
        }
        self.solver.steps_with(direction, n).ok_or_else(|| {
            MethodError::Config(format!(
                "{} samples only on its own {}-step grid (its networks output one grid step's \
                 displacement), not with {n} steps",
                self.name(),
                self.solver.steps(direction).len()
            ))
        })
    }

    /// As [`TrainedBridge::sample_until`], with `n` uniform Euler steps over `[0, 1]` instead of
    /// the trained grid (see [`TrainedBridge::steps_with`]); `t_stop = 1` (or 0 backward)
    /// transports the whole way.
    ///
    /// # Errors
    /// As [`TrainedBridge::steps_with`] and [`TrainedBridge::sample_until`].
    pub fn sample_until_with(
        &self,
        direction: Direction,
        start: &Array2<f32>,
        rng: &mut SbRng,
        t_stop: f64,
        n: usize,
    ) -> Result<Array2<f32>> {
        let steps = self.steps_with(direction, n)?;
        self.sample_until_on(&steps, direction, start, rng, t_stop)
    }

    /// Whether [`TrainedBridge::sample_ode`] can run: both directions trained, and a solver
    /// whose two networks are the drifts of one SDE pair.
    pub fn has_probability_flow(&self) -> bool {
        self.forward.is_some() && self.backward.is_some() && self.solver.probability_flow()
    }

    /// Transports `start` in `direction` along the probability-flow ODE of the learned SDE
    /// pair with `n` uniform Euler steps: drift `(v_f − v_b)/2` forward (the official DSBM
    /// code's `sample_ode`), its negative backward. Deterministic.
    ///
    /// # Errors
    /// A solver without a probability flow (only DSBM has one), a direction not trained,
    /// `n = 0`, a tensor error or non-finite samples.
    pub fn sample_ode(
        &self,
        direction: Direction,
        start: &Array2<f32>,
        n: usize,
    ) -> Result<Array2<f32>> {
        let (Some(forward), Some(backward), true) = (
            self.forward.as_ref(),
            self.backward.as_ref(),
            self.has_probability_flow(),
        ) else {
            return Err(MethodError::Config(format!(
                "{} has no probability-flow ODE (it needs the drifts of a trained forward–backward SDE pair, as DSBM's)",
                self.name()
            )));
        };
        if n == 0 {
            return Err(MethodError::Config(
                "the number of sampling steps must be ≥ 1, got 0".into(),
            ));
        }
        let flow = FlowDrift {
            forward,
            backward,
            sign: match direction {
                Direction::Forward => 0.5,
                Direction::Backward => -0.5,
            },
        };
        // The SDE's grid (a conditional bridge's frozen observation included), without noise.
        let mut steps = self.steps_with(direction, n)?;
        for s in &mut steps {
            s.noise_std = 0.0;
        }
        // No noise is drawn: any generator will do.
        let mut unused = SbRng::new(0);
        let sim = simulate(
            &flow,
            &steps,
            direction,
            start,
            &mut unused,
            false,
            &self.device,
        )?;
        Ok(sim.end().clone())
    }

    /// As [`TrainedBridge::sample`] without the trajectory, but the last Euler step adds no
    /// noise (its mean is the end point): a common choice in diffusion samplers, measured
    /// against the noisy last step.
    ///
    /// # Errors
    /// As [`TrainedBridge::sample`].
    pub fn sample_quiet_end(
        &self,
        direction: Direction,
        start: &Array2<f32>,
        rng: &mut SbRng,
    ) -> Result<Array2<f32>> {
        let mut steps = self.solver.steps(direction);
        if let Some(last) = steps.last_mut() {
            last.noise_std = 0.0;
        }
        Ok(self
            .simulate_steps(direction, &steps, start, rng, false)?
            .end()
            .clone())
    }

    fn simulate_steps(
        &self,
        direction: Direction,
        steps: &[crate::sampler::Step],
        start: &Array2<f32>,
        rng: &mut SbRng,
        keep_trajectory: bool,
    ) -> Result<Simulation> {
        if let Some(exact) = &self.exact {
            return Ok(exact_simulation(
                exact.as_ref(),
                direction,
                steps,
                start,
                rng,
                keep_trajectory,
            ));
        }
        let reference = Reference {
            solver: self.solver.as_ref(),
            direction,
        };
        let drift: &dyn Drift = match self.model(direction) {
            Some(m) => m,
            None => &reference,
        };
        simulate(
            drift,
            steps,
            direction,
            start,
            rng,
            keep_trajectory,
            &self.device,
        )
    }

    /// Writes the sampling weights of each trained direction as `forward.safetensors` and
    /// `backward.safetensors` in `dir`.
    ///
    /// # Errors
    /// A file cannot be written.
    pub fn save(&self, dir: &Path) -> Result<()> {
        if let Some(exact) = &self.exact {
            return exact.save(dir);
        }
        for d in [Direction::Forward, Direction::Backward] {
            if let Some(m) = self.model(d) {
                m.net
                    .save(&m.sampling_params()?, &dir.join(format!("{d}.safetensors")))?;
            }
        }
        Ok(())
    }

    /// Rebuilds a bridge saved by [`TrainedBridge::save`]: each direction whose file exists is
    /// loaded, the others run the reference.
    ///
    /// # Errors
    /// An unreadable or mismatched weight file.
    pub fn load(
        solver: Box<dyn BridgeSolver>,
        net: &NetConfig,
        dim: usize,
        passes: usize,
        dir: &Path,
        device: Device,
    ) -> Result<Self> {
        let load = |d: Direction| -> Result<Option<Model>> {
            let path = dir.join(format!("{d}.safetensors"));
            if !path.exists() {
                return Ok(None);
            }
            // Weights are overwritten by the file; the seed of the throwaway init does not matter.
            let model = DriftNet::new(net, dim, &device, &mut SbRng::new(0))?;
            model.load(&path)?;
            Ok(Some(Model {
                net: model,
                ema: None,
            }))
        };
        if let Some(exact) = solver.load_exact(dir) {
            return Ok(Self {
                exact: Some(exact?),
                forward: None,
                backward: None,
                solver,
                passes,
                device,
            });
        }
        Ok(Self {
            forward: load(Direction::Forward)?,
            backward: load(Direction::Backward)?,
            exact: None,
            solver,
            passes,
            device,
        })
    }
}

/// A simulation along `steps` of a bridge known through its plan: the other end is drawn
/// first, then each state is the reference's Brownian bridge between the last state and that
/// end, `X_t' | X_t, X_end ~ N(X_t + (t'−t)/(T−t) (X_end − X_t), σ² (t'−t)(T−t')/(T−t))` in
/// the direction's own clock (T the end). States are exact samples of the bridge at the
/// step times (a shortened last step stops at its own time).
fn exact_simulation(
    exact: &dyn ExactSampler,
    direction: Direction,
    steps: &[Step],
    start: &Array2<f32>,
    rng: &mut SbRng,
    keep_trajectory: bool,
) -> Simulation {
    let sigma = exact.sigma();
    let mut x = start.mapv(f64::from);
    let end = exact.end(direction, x.view(), rng);
    // Elapsed time along the direction of travel.
    let mut s = 0.0f64;
    let mut states = vec![start.clone()];
    for step in steps {
        let next = (s + step.drift_scale).min(1.0);
        let left = 1.0 - s;
        let w = if left > 0.0 { (next - s) / left } else { 1.0 };
        let var = if left > 0.0 {
            sigma * sigma * (next - s) * (1.0 - next) / left
        } else {
            0.0
        };
        let std = var.max(0.0).sqrt();
        let z = Array2::from_shape_vec(x.dim(), rng.normal_f64(x.len())).expect("sizes agree");
        x = &x + &((&end - &x) * w) + &(z * std);
        s = next;
        if keep_trajectory {
            states.push(to_f32(&x));
        }
    }
    if !keep_trajectory {
        states.push(to_f32(&x));
    }
    Simulation {
        states,
        displacements: Vec::new(),
    }
}
