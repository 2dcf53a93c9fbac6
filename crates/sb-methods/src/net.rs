//! Drift networks: MLPs of `(x, t)` with a sinusoidal or a plain concatenated time input.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor, Var, D};
use sb_data::SbRng;
use serde::{Deserialize, Serialize};

use crate::{MethodError, Result};

/// The activation after each hidden layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// `x · sigmoid(x)` (the default, as in the DSBM code).
    #[default]
    Silu,
    /// `max(x, 0)`.
    Relu,
    /// `tanh(x)`.
    Tanh,
    /// Gaussian error linear unit.
    Gelu,
}

/// How the time enters the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TimeInput {
    /// `[x, sin(ω t), cos(ω t)]` with `time_dim` geometric frequencies (DSB's toy networks).
    #[default]
    Sinusoidal,
    /// `[x, t]`: the time as one extra scalar input (the official DSBM Gaussian code).
    Concat,
}

fn default_hidden() -> Vec<usize> {
    vec![256, 256, 256]
}
fn default_time_dim() -> usize {
    32
}

/// Architecture of a drift network (plain data, `deny_unknown_fields`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetConfig {
    /// Widths of the hidden layers. Defaults to `[256, 256, 256]`.
    #[serde(default = "default_hidden")]
    pub hidden: Vec<usize>,
    /// Activation after each hidden layer. Defaults to `silu`.
    #[serde(default)]
    pub activation: Activation,
    /// How time enters. Defaults to `sinusoidal`.
    #[serde(default)]
    pub time: TimeInput,
    /// Number of sinusoidal features (even). Defaults to 32; ignored for `concat`.
    #[serde(default = "default_time_dim")]
    pub time_dim: usize,
}

impl Default for NetConfig {
    fn default() -> Self {
        Self {
            hidden: default_hidden(),
            activation: Activation::default(),
            time: TimeInput::default(),
            time_dim: default_time_dim(),
        }
    }
}

impl NetConfig {
    /// The official DSBM Gaussian network: `(d+1) → 256 → 256 → d`, SiLU, time concatenated.
    pub fn dsbm_gaussian() -> Self {
        Self {
            hidden: vec![256, 256],
            activation: Activation::Silu,
            time: TimeInput::Concat,
            time_dim: default_time_dim(),
        }
    }

    /// Checks widths and the time embedding size.
    ///
    /// # Errors
    /// A zero width, or an odd or zero `time_dim` with sinusoidal time.
    pub fn validate(&self) -> Result<()> {
        if self.hidden.contains(&0) {
            return Err(MethodError::Config(format!(
                "net.hidden: every width must be ≥ 1, got {:?}",
                self.hidden
            )));
        }
        if self.time == TimeInput::Sinusoidal && (self.time_dim == 0 || self.time_dim % 2 == 1) {
            return Err(MethodError::Config(format!(
                "net.time_dim must be a positive even number, got {}",
                self.time_dim
            )));
        }
        Ok(())
    }

    fn input_width(&self, dim: usize) -> usize {
        match self.time {
            TimeInput::Sinusoidal => dim + self.time_dim,
            TimeInput::Concat => dim + 1,
        }
    }
}

/// An MLP drift network `(x, t) ↦ v`, with `x` of shape `(n, dim)` and `t` of shape `(n, 1)`.
///
/// Weights are initialised from the project's seeded generator with PyTorch's default
/// rule for `nn.Linear`, `U(−1/√fan_in, 1/√fan_in)` for weights and biases.
#[derive(Debug)]
pub struct DriftNet {
    config: NetConfig,
    dim: usize,
    vars: Vec<Var>,
    freqs: Option<Tensor>,
}

impl DriftNet {
    /// A freshly initialised network for points of dimension `dim`.
    ///
    /// # Errors
    /// An invalid configuration, or a tensor error.
    pub fn new(config: &NetConfig, dim: usize, device: &Device, rng: &mut SbRng) -> Result<Self> {
        config.validate()?;
        let mut vars = Vec::new();
        for (fan_in, fan_out) in Self::layer_shapes(config, dim) {
            let (w, b) = init_layer(fan_in, fan_out, device, rng)?;
            vars.push(Var::from_tensor(&w)?);
            vars.push(Var::from_tensor(&b)?);
        }
        let freqs = match config.time {
            TimeInput::Sinusoidal => {
                let half = config.time_dim / 2;
                // ω_i = 1000 · 10000^(−i/half): t ∈ [0, 1] is read like a diffusion step index.
                let f: Vec<f32> = (0..half)
                    .map(|i| 1000.0 * (-(10000f32.ln()) * i as f32 / half as f32).exp())
                    .collect();
                Some(Tensor::from_vec(f, (1, half), device)?)
            }
            TimeInput::Concat => None,
        };
        Ok(Self {
            config: config.clone(),
            dim,
            vars,
            freqs,
        })
    }

    fn layer_shapes(config: &NetConfig, dim: usize) -> Vec<(usize, usize)> {
        let mut widths = vec![config.input_width(dim)];
        widths.extend(&config.hidden);
        widths.push(dim);
        widths.windows(2).map(|w| (w[0], w[1])).collect()
    }

    /// Re-draws every weight, as for a network trained from scratch.
    ///
    /// # Errors
    /// A tensor error.
    pub fn reinitialize(&self, rng: &mut SbRng) -> Result<()> {
        let device = self.device();
        for (pair, (fan_in, fan_out)) in self
            .vars
            .chunks(2)
            .zip(Self::layer_shapes(&self.config, self.dim))
        {
            let (w, b) = init_layer(fan_in, fan_out, &device, rng)?;
            pair[0].set(&w)?;
            pair[1].set(&b)?;
        }
        Ok(())
    }

    /// The architecture.
    pub fn config(&self) -> &NetConfig {
        &self.config
    }

    /// The dimension of `x`.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The device holding the weights.
    pub fn device(&self) -> Device {
        self.vars[0].device().clone()
    }

    /// The trainable parameters, in layer order (weight, bias, weight, bias, …).
    pub fn vars(&self) -> &[Var] {
        &self.vars
    }

    /// A snapshot of the current parameter values (copied: a `Var` is updated in place, so
    /// a plain clone of its tensor would keep changing with training).
    ///
    /// # Errors
    /// A tensor error.
    pub fn params(&self) -> Result<Vec<Tensor>> {
        self.vars
            .iter()
            .map(|v| Ok(v.as_tensor().copy()?))
            .collect()
    }

    /// Evaluates the network with its own parameters.
    ///
    /// # Errors
    /// Shape mismatches.
    pub fn forward(&self, x: &Tensor, t: &Tensor) -> Result<Tensor> {
        let params: Vec<&Tensor> = self.vars.iter().map(|v| v.as_tensor()).collect();
        self.forward_with(&params, x, t)
    }

    /// Evaluates the network with other parameter values of the same shapes (an EMA copy).
    ///
    /// # Errors
    /// Shape mismatches.
    pub fn forward_with(&self, params: &[&Tensor], x: &Tensor, t: &Tensor) -> Result<Tensor> {
        let input = match &self.freqs {
            Some(freqs) => {
                let arg = t.broadcast_mul(freqs)?;
                Tensor::cat(&[x, &arg.sin()?, &arg.cos()?], D::Minus1)?
            }
            None => Tensor::cat(&[x, t], D::Minus1)?,
        };
        let layers = params.len() / 2;
        let mut h = input;
        for (i, pair) in params.chunks(2).enumerate() {
            h = h.matmul(&pair[0].t()?)?.broadcast_add(pair[1])?;
            if i + 1 < layers {
                h = match self.config.activation {
                    Activation::Silu => h.silu()?,
                    Activation::Relu => h.relu()?,
                    Activation::Tanh => h.tanh()?,
                    Activation::Gelu => h.gelu()?,
                };
            }
        }
        Ok(h)
    }

    /// Named parameter tensors (`layer{i}.weight`, `layer{i}.bias`) for saving.
    pub fn named_params(&self, params: &[Tensor]) -> HashMap<String, Tensor> {
        params
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let kind = if i % 2 == 0 { "weight" } else { "bias" };
                (format!("layer{}.{kind}", i / 2), t.clone())
            })
            .collect()
    }

    /// Writes `params` (this network's shapes) as safetensors.
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn save(&self, params: &[Tensor], path: &Path) -> Result<()> {
        candle_core::safetensors::save(&self.named_params(params), path)?;
        Ok(())
    }

    /// Loads weights written by [`DriftNet::save`] into this network.
    ///
    /// # Errors
    /// The file cannot be read, or a tensor is missing or has the wrong shape.
    pub fn load(&self, path: &Path) -> Result<()> {
        let tensors = candle_core::safetensors::load(path, &self.device())?;
        let params = (0..self.vars.len())
            .map(|i| {
                let kind = if i % 2 == 0 { "weight" } else { "bias" };
                let name = format!("layer{}.{kind}", i / 2);
                tensors.get(&name).cloned().ok_or_else(|| {
                    MethodError::Config(format!("{}: no tensor `{name}`", path.display()))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        self.set_params(&params).map_err(|e| match e {
            MethodError::Config(m) => MethodError::Config(format!("{}: {m}", path.display())),
            other => other,
        })
    }

    /// Sets every weight from `params` (in [`DriftNet::vars`] order).
    ///
    /// # Errors
    /// The wrong number of tensors, or a tensor of the wrong shape.
    pub fn set_params(&self, params: &[Tensor]) -> Result<()> {
        if params.len() != self.vars.len() {
            return Err(MethodError::Config(format!(
                "{} tensors given for a network of {}",
                params.len(),
                self.vars.len()
            )));
        }
        for (i, (var, t)) in self.vars.iter().zip(params).enumerate() {
            if t.dims() != var.dims() {
                return Err(MethodError::Config(format!(
                    "tensor {i} has shape {:?}, the network expects {:?}",
                    t.dims(),
                    var.dims()
                )));
            }
            var.set(&t.to_dtype(DType::F32)?)?;
        }
        Ok(())
    }
}

fn init_layer(
    fan_in: usize,
    fan_out: usize,
    device: &Device,
    rng: &mut SbRng,
) -> Result<(Tensor, Tensor)> {
    let bound = 1.0 / (fan_in as f64).sqrt();
    let mut draw = |n: usize| -> Vec<f32> {
        (0..n)
            .map(|_| rng.uniform_in(-bound, bound) as f32)
            .collect()
    };
    let w = Tensor::from_vec(draw(fan_in * fan_out), (fan_out, fan_in), device)?;
    let b = Tensor::from_vec(draw(fan_out), fan_out, device)?;
    Ok((w, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_and_determinism() {
        let cfg = NetConfig {
            hidden: vec![8, 8],
            ..NetConfig::default()
        };
        let a = DriftNet::new(&cfg, 3, &Device::Cpu, &mut SbRng::new(1)).unwrap();
        let b = DriftNet::new(&cfg, 3, &Device::Cpu, &mut SbRng::new(1)).unwrap();
        let x = Tensor::ones((5, 3), DType::F32, &Device::Cpu).unwrap();
        let t = Tensor::full(0.3f32, (5, 1), &Device::Cpu).unwrap();
        let ya = a
            .forward(&x, &t)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let yb = b
            .forward(&x, &t)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(ya.len(), 15);
        assert_eq!(ya, yb);
    }

    #[test]
    fn save_load_roundtrip() {
        let cfg = NetConfig {
            hidden: vec![4],
            time: TimeInput::Concat,
            ..NetConfig::default()
        };
        let a = DriftNet::new(&cfg, 2, &Device::Cpu, &mut SbRng::new(1)).unwrap();
        let b = DriftNet::new(&cfg, 2, &Device::Cpu, &mut SbRng::new(2)).unwrap();
        let dir = std::env::temp_dir().join(format!("sb-net-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("w.safetensors");
        a.save(&a.params().unwrap(), &p).unwrap();
        b.load(&p).unwrap();
        let x = Tensor::ones((1, 2), DType::F32, &Device::Cpu).unwrap();
        let t = Tensor::zeros((1, 1), DType::F32, &Device::Cpu).unwrap();
        let ya = a.forward(&x, &t).unwrap().to_vec2::<f32>().unwrap();
        let yb = b.forward(&x, &t).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(ya, yb);
        std::fs::remove_dir_all(dir).ok();
    }
}
