//! Method and training configuration: plain serde data with the papers' defaults.

use serde::{Deserialize, Serialize};

use crate::cfm::{Cfm, OtCfmConfig, SbCfmConfig};
use crate::dsb::{Dsb, DsbConfig};
use crate::dsbm::{Dsbm, DsbmConfig};
use crate::lightsb::{LightSb, LightSbConfig};
use crate::{BridgeSolver, MethodError, Result};

/// Which solver, and its parameters (`kind: dsb`, `dsbm`, `ot_cfm`, `sb_cfm`, `sf2m` or `lightsb`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MethodConfig {
    /// Diffusion Schrödinger Bridge (IPF, mean matching).
    Dsb(DsbConfig),
    /// Diffusion Schrödinger Bridge Matching (IMF; DSBM-IPF or DSBM-IMF by first coupling).
    Dsbm(DsbmConfig),
    /// OT-CFM: flow matching on minibatch exact-OT pairs, sampled by an ODE.
    OtCfm(OtCfmConfig),
    /// SB-CFM: the Brownian bridge's probability flow on minibatch entropic-OT pairs (ODE).
    SbCfm(SbCfmConfig),
    /// [SF]2M: the Brownian bridge's drift on minibatch entropic-OT pairs (SDE).
    Sf2m(SbCfmConfig),
    /// LightSB: a Gaussian-mixture potential fitted without simulation or networks.
    #[serde(rename = "lightsb")]
    LightSb(LightSbConfig),
}

impl MethodConfig {
    /// Builds the solver for a reference `dX = σ dW`.
    ///
    /// # Errors
    /// Invalid parameters, named by key.
    pub fn build(&self, sigma: f64) -> Result<Box<dyn BridgeSolver>> {
        if !(sigma >= 0.0 && sigma.is_finite()) {
            return Err(MethodError::Config(format!(
                "sigma must be ≥ 0, got {sigma}"
            )));
        }
        Ok(match self {
            Self::Dsb(c) => Box::new(Dsb::new(c, sigma)?),
            Self::Dsbm(c) => Box::new(Dsbm::new(c, sigma)?),
            Self::OtCfm(c) => Box::new(Cfm::ot_cfm(c, sigma)?),
            Self::SbCfm(c) => Box::new(Cfm::sb_cfm(c, sigma, false)?),
            Self::Sf2m(c) => Box::new(Cfm::sb_cfm(c, sigma, true)?),
            Self::LightSb(c) => Box::new(LightSb::new(c, sigma)?),
        })
    }

    /// Builds the conditional form of the solver: the last `observation_dim` coordinates of
    /// every state are an observation `y` the bridge carries unchanged, and one trained bridge
    /// samples `p(x | y)` for any `y` (see [`BridgeSolver::observation_dim`]).
    ///
    /// # Errors
    /// As [`MethodConfig::build`]; a method other than DSB and DSBM (the minibatch couplings
    /// of the flow-matching peers pair rows with different observations, and LightSB's
    /// potential has no observation input).
    pub fn build_conditional(
        &self,
        sigma: f64,
        observation_dim: usize,
    ) -> Result<Box<dyn BridgeSolver>> {
        let solver = self.build(sigma)?;
        if observation_dim == 0 {
            return Ok(solver);
        }
        Ok(match self {
            Self::Dsb(c) => Box::new(Dsb::new(c, sigma)?.conditional(observation_dim)),
            Self::Dsbm(c) => Box::new(Dsbm::new(c, sigma)?.conditional(observation_dim)),
            _ => {
                return Err(MethodError::Config(format!(
                    "method.kind: {} has no conditional form (conditional bridges are built for dsb and \
                     dsbm: the minibatch couplings of the flow-matching peers pair rows with \
                     different observations, and LightSB's potential takes no observation)",
                    solver.name(1)
                )))
            }
        })
    }
}

fn default_passes() -> usize {
    10
}
fn default_steps() -> usize {
    1000
}
fn default_batch() -> usize {
    256
}
fn default_lr() -> f64 {
    1e-4
}
fn default_cache() -> usize {
    10_000
}
fn one_use() -> usize {
    1
}
fn yes() -> bool {
    true
}

/// How to train: the pass schedule and the optimizer (plain data).
///
/// A pass trains one direction; passes alternate, starting with the solver's first
/// direction (backward for DSB). One IPF or IMF iteration is two passes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Number of passes. Defaults to 10 (five iterations).
    #[serde(default = "default_passes")]
    pub passes: usize,
    /// Optimizer steps per pass. Defaults to 1000.
    #[serde(default = "default_steps")]
    pub steps_per_pass: usize,
    /// Batch size. Defaults to 256.
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    /// Adam learning rate. Defaults to 1e-4 (both papers).
    #[serde(default = "default_lr")]
    pub lr: f64,
    /// Trajectories (DSB) or endpoint pairs (DSBM) per cache. Defaults to 10 000.
    #[serde(default = "default_cache")]
    pub cache_size: usize,
    /// Uses of each cached row or pair before the cache is renewed: the cache is refreshed
    /// every `cache_reuse · rows / batch_size` optimizer steps, where `rows` is what one
    /// refresh yields (DSB: every Euler step of every trajectory, `N · cache_size` rows; DSBM:
    /// `cache_size` endpoint pairs). Defaults to 1: each row or pair is used about once, as the
    /// official DSB and DSBM code do (they re-simulate every epoch). Larger values trade
    /// accuracy for speed: a refresh costs `N · cache_size` network evaluations of simulation
    /// (docs/methods.md has the measured cost). Ignored when `cache_refresh` is given.
    #[serde(default = "one_use")]
    pub cache_reuse: usize,
    /// Optimizer steps between cache refreshes, overriding `cache_reuse`. Defaults to none.
    #[serde(default)]
    pub cache_refresh: Option<usize>,
    /// Keep training the previous pass's network (true) or start each pass from fresh
    /// weights (false; DSB's `use_prev_net = False`). Defaults to true.
    #[serde(default = "yes")]
    pub warm_start: bool,
    /// EMA decay of the weights used for sampling (e.g. 0.999), or none. Defaults to none.
    #[serde(default)]
    pub ema_decay: Option<f64>,
    /// Maximum gradient norm, or none. Defaults to none.
    #[serde(default)]
    pub grad_clip: Option<f64>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            passes: default_passes(),
            steps_per_pass: default_steps(),
            batch_size: default_batch(),
            lr: default_lr(),
            cache_size: default_cache(),
            cache_reuse: one_use(),
            cache_refresh: None,
            warm_start: true,
            ema_decay: None,
            grad_clip: None,
        }
    }
}

impl TrainConfig {
    /// Optimizer steps between cache refreshes for a training set of `rows` rows or pairs:
    /// `cache_refresh` if given, else `cache_reuse` passes over the rows (at least one step).
    pub fn refresh_every(&self, rows: usize) -> usize {
        self.cache_refresh
            .unwrap_or((self.cache_reuse * rows / self.batch_size.max(1)).max(1))
    }

    /// Checks every value; the error names the key under `train.`.
    ///
    /// # Errors
    /// The first invalid value found.
    pub fn validate(&self) -> Result<()> {
        let positive = |key: &str, v: usize| {
            if v == 0 {
                Err(MethodError::Config(format!(
                    "train.{key} must be ≥ 1, got 0"
                )))
            } else {
                Ok(())
            }
        };
        positive("passes", self.passes)?;
        positive("steps_per_pass", self.steps_per_pass)?;
        positive("batch_size", self.batch_size)?;
        positive("cache_size", self.cache_size)?;
        positive("cache_reuse", self.cache_reuse)?;
        if let Some(r) = self.cache_refresh {
            positive("cache_refresh", r)?;
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(MethodError::Config(format!(
                "train.lr must be > 0, got {}",
                self.lr
            )));
        }
        if let Some(d) = self.ema_decay {
            if !(d > 0.0 && d < 1.0) {
                return Err(MethodError::Config(format!(
                    "train.ema_decay must be in (0, 1), got {d}"
                )));
            }
        }
        if let Some(c) = self.grad_clip {
            if !(c > 0.0 && c.is_finite()) {
                return Err(MethodError::Config(format!(
                    "train.grad_clip must be > 0, got {c}"
                )));
            }
        }
        Ok(())
    }
}
