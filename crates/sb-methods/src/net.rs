//! Drift networks: MLPs of `(x, t)` with a sinusoidal or a plain concatenated time input.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{backprop::GradStore, DType, Device, Tensor, Var, D};
use sb_data::SbRng;
use serde::{Deserialize, Serialize};

use crate::mlp::{Mlp, MlpOp, Params};
use crate::tensor::{is_cpu_f32, with_host_values};
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
    /// `[x, t]`: the time as one extra scalar input (the official DSBM Gaussian code; the
    /// default).
    #[default]
    Concat,
    /// `[x, sin(ω t), cos(ω t)]` with `time_dim / 2` frequencies spread geometrically over
    /// `[1, 16]` radians per unit time: smooth on `t ∈ [0, 1]` (the fastest feature turns by
    /// 0.8 rad between neighbouring times of a 20-step Euler grid).
    Fourier,
    /// `[x, sin(ω t), cos(ω t)]` with `ω_i = 1000 · 10000^(−i/half)`, the embedding of
    /// diffusion step indices 0…1000. On `t ∈ [0, 1]` its fast features turn by radians
    /// between neighbouring Euler times, and DSBM's first backward step at t = 1 lies outside
    /// the training times `[δ, 1 − δ]`; kept so that models trained before 2026-12 load and
    /// run as trained (the default until then).
    Sinusoidal,
}

impl TimeInput {
    /// The frequencies `ω_i` of the sinusoidal inputs (`time_dim / 2` of them), or none for
    /// `concat`.
    pub fn frequencies(self, time_dim: usize) -> Option<Vec<f32>> {
        let half = time_dim / 2;
        match self {
            Self::Concat => None,
            Self::Fourier => Some(
                (0..half)
                    .map(|i| {
                        let f = if half > 1 {
                            i as f32 / (half - 1) as f32
                        } else {
                            0.0
                        };
                        16f32.powf(f)
                    })
                    .collect(),
            ),
            Self::Sinusoidal => Some(
                (0..half)
                    .map(|i| 1000.0 * (-(10000f32.ln()) * i as f32 / half as f32).exp())
                    .collect(),
            ),
        }
    }
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
    /// How time enters. Defaults to `concat`.
    #[serde(default)]
    pub time: TimeInput,
    /// Number of sinusoidal features (even) for `fourier` and `sinusoidal`. Defaults to 32;
    /// ignored for `concat`.
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
        if self.time != TimeInput::Concat && (self.time_dim == 0 || self.time_dim % 2 == 1) {
            return Err(MethodError::Config(format!(
                "net.time_dim must be a positive even number, got {}",
                self.time_dim
            )));
        }
        Ok(())
    }

    fn input_width(&self, dim: usize) -> usize {
        match self.time {
            TimeInput::Concat => dim + 1,
            TimeInput::Fourier | TimeInput::Sinusoidal => dim + self.time_dim,
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
        let freqs = config
            .time
            .frequencies(config.time_dim)
            .map(|f| {
                let half = f.len();
                Tensor::from_vec(f, (1, half), device)
            })
            .transpose()?;
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

    /// The number of trainable values.
    pub fn param_count(&self) -> usize {
        self.vars.iter().map(|v| v.elem_count()).sum()
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

    /// Evaluates the network with its own parameters, recording nothing for a backward pass
    /// (as sampling needs: no activations are kept).
    ///
    /// # Errors
    /// Shape mismatches.
    pub fn forward_detached(&self, x: &Tensor, t: &Tensor) -> Result<Tensor> {
        let params: Vec<Tensor> = self.vars.iter().map(|v| v.as_tensor().detach()).collect();
        let params: Vec<&Tensor> = params.iter().collect();
        self.forward_with(&params, x, t)
    }

    /// Evaluates the network with other parameter values of the same shapes (an EMA copy).
    ///
    /// On the CPU in f32 this is one fused operation (faer products, bias and activation in
    /// one pass, rows across rayon's threads, a hand-written backward pass); elsewhere it is
    /// [`DriftNet::forward_reference`]. Both compute the same function and gradients (tested
    /// to f32 rounding). Activations for a backward pass are kept only when `x`, `t` or a
    /// parameter records operations.
    ///
    /// # Errors
    /// Shape mismatches.
    pub fn forward_with(&self, params: &[&Tensor], x: &Tensor, t: &Tensor) -> Result<Tensor> {
        let input = self.input(x, t)?;
        if !(is_cpu_f32(&input) && params.iter().all(|p| is_cpu_f32(p))) {
            return self.layers_reference(params, input);
        }
        let flat = params
            .iter()
            .map(|p| Ok(p.flatten_all()?))
            .collect::<Result<Vec<_>>>()?;
        let flat = Tensor::cat(&flat, 0)?;
        let keep = input.track_op() || flat.track_op();
        let op = MlpOp::new(self.mlp(), keep);
        Ok(input.contiguous()?.apply_op2(&flat, op)?)
    }

    fn mlp(&self) -> Mlp {
        let widths = Self::layer_shapes(&self.config, self.dim)
            .iter()
            .map(|&(fan_in, _)| fan_in)
            .chain([self.dim])
            .collect();
        Mlp::new(widths, self.config.activation)
    }

    /// The mean squared error of the network's output against `target` (all `(n, ·)`), and
    /// its gradient for every variable, as `loss.backward()` would give them.
    ///
    /// On the CPU in f32 this is one fused forward and backward pass that builds no graph
    /// (the training step's hot path); elsewhere it is
    /// [`DriftNet::mse_gradients_reference`]. Both agree to f32 rounding (tested).
    ///
    /// # Errors
    /// Shape mismatches.
    pub fn mse_gradients(
        &self,
        x: &Tensor,
        t: &Tensor,
        target: &Tensor,
    ) -> Result<(f64, GradStore)> {
        let input = self.input(x, t)?.contiguous()?;
        let target = target.contiguous()?;
        let vars: Vec<&Tensor> = self.vars.iter().map(|v| v.as_tensor()).collect();
        if !(is_cpu_f32(&input) && is_cpu_f32(&target) && vars.iter().all(|v| is_cpu_f32(v))) {
            return self.mse_gradients_reference(x, t, &target);
        }
        let (rows, _) = input.dims2()?;
        if target.dims2()? != (rows, self.dim) {
            return Err(MethodError::Config(format!(
                "the target has shape {:?}, the network gives ({rows}, {})",
                target.dims(),
                self.dim
            )));
        }
        let (loss, grads) = with_host_values(&[&input, &target], "input and target", |io| {
            with_host_values(&vars, "network parameters", |params| {
                Ok(self.mlp().mse_gradients(io[0], &Params(params), io[1]))
            })
        })?;
        // One buffer for all the gradients; each variable's is a view into it (no copy).
        let flat = Tensor::from_vec(grads, self.param_count(), &self.device())?;
        let mut store = GradStore::default();
        let mut offset = 0;
        for var in &self.vars {
            let len = var.elem_count();
            store.insert(
                var.as_tensor(),
                flat.narrow(0, offset, len)?.reshape(var.shape())?,
            );
            offset += len;
        }
        Ok((loss, store))
    }

    /// [`DriftNet::mse_gradients`] through candle's autograd over
    /// [`DriftNet::forward_reference`].
    ///
    /// # Errors
    /// Shape mismatches.
    pub fn mse_gradients_reference(
        &self,
        x: &Tensor,
        t: &Tensor,
        target: &Tensor,
    ) -> Result<(f64, GradStore)> {
        let params: Vec<&Tensor> = self.vars.iter().map(|v| v.as_tensor()).collect();
        let loss = (self.forward_reference(&params, x, t)? - target)?
            .sqr()?
            .mean_all()?;
        let value = f64::from(loss.to_dtype(DType::F32)?.to_scalar::<f32>()?);
        Ok((value, loss.backward()?))
    }

    /// The network built from candle's own tensor operations, one per product, bias and
    /// activation: the reference the fused CPU path of [`DriftNet::forward_with`] is tested
    /// against, and the path on other devices.
    ///
    /// # Errors
    /// Shape mismatches.
    pub fn forward_reference(&self, params: &[&Tensor], x: &Tensor, t: &Tensor) -> Result<Tensor> {
        let input = self.input(x, t)?;
        self.layers_reference(params, input)
    }

    /// The first layer's input: `[x, sin(ω t), cos(ω t)]` or `[x, t]`.
    fn input(&self, x: &Tensor, t: &Tensor) -> Result<Tensor> {
        Ok(match &self.freqs {
            Some(freqs) => {
                let arg = t.broadcast_mul(freqs)?;
                Tensor::cat(&[x, &arg.sin()?, &arg.cos()?], D::Minus1)?
            }
            None => Tensor::cat(&[x, t], D::Minus1)?,
        })
    }

    fn layers_reference(&self, params: &[&Tensor], input: Tensor) -> Result<Tensor> {
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

    /// Values and gradients (of the parameters and of `x`) of the network on `rows` points,
    /// by the fused path or the reference.
    /// Points `x ~ N(0, I)`, times `t ~ U(0, 1)` and a third `(rows, dim)` normal tensor.
    fn random_batch(rows: usize, dim: usize, seed: u64) -> (Tensor, Tensor, Tensor) {
        let dev = Device::Cpu;
        let mut rng = SbRng::new(seed);
        let x = crate::tensor::normal(rows, dim, &mut rng, &dev).unwrap();
        let t: Vec<f32> = (0..rows).map(|_| rng.uniform() as f32).collect();
        let t = Tensor::from_vec(t, (rows, 1), &dev).unwrap();
        let third = crate::tensor::normal(rows, dim, &mut rng, &dev).unwrap();
        (x, t, third)
    }

    fn evaluate(
        net: &DriftNet,
        rows: usize,
        fused: bool,
        seed: u64,
    ) -> (Vec<f32>, Vec<Vec<f32>>, Vec<f32>) {
        let (x, t, weights) = random_batch(rows, net.dim(), seed);
        let x = Var::from_tensor(&x).unwrap();
        let params: Vec<&Tensor> = net.vars().iter().map(|v| v.as_tensor()).collect();
        let out = if fused {
            net.forward_with(&params, x.as_tensor(), &t)
        } else {
            net.forward_reference(&params, x.as_tensor(), &t)
        }
        .unwrap();
        let grads = (&out * &weights)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let param_grads = net
            .vars()
            .iter()
            .map(|v| {
                flat(
                    grads
                        .get(v.as_tensor())
                        .expect("every parameter has a gradient"),
                )
            })
            .collect();
        (
            flat(&out),
            param_grads,
            flat(grads.get(x.as_tensor()).unwrap()),
        )
    }

    fn assert_close(what: &str, fused: &[f32], reference: &[f32]) {
        assert_eq!(fused.len(), reference.len(), "{what}");
        let scale = reference.iter().fold(1f32, |m, v| m.max(v.abs()));
        for (i, (a, b)) in fused.iter().zip(reference).enumerate() {
            assert!(
                (a - b).abs() <= 2e-5 * scale,
                "{what}[{i}]: fused {a}, reference {b} (scale {scale})"
            );
        }
    }

    fn check_agreement(config: &NetConfig, dim: usize, rows: usize, seed: u64) {
        let net = DriftNet::new(config, dim, &Device::Cpu, &mut SbRng::new(seed)).unwrap();
        let (out_f, grads_f, gx_f) = evaluate(&net, rows, true, seed);
        let (out_r, grads_r, gx_r) = evaluate(&net, rows, false, seed);
        assert_close("output", &out_f, &out_r);
        for (i, (f, r)) in grads_f.iter().zip(&grads_r).enumerate() {
            assert_close(&format!("gradient of parameter {i}"), f, r);
        }
        assert_close("gradient of x", &gx_f, &gx_r);
    }

    /// The fused CPU path and candle's own operations agree, values and gradients, for every
    /// activation and time input, at row counts that fill several blocks unevenly.
    #[test]
    fn fused_path_agrees_with_the_reference() {
        for activation in [
            Activation::Silu,
            Activation::Relu,
            Activation::Tanh,
            Activation::Gelu,
        ] {
            for time in [TimeInput::Sinusoidal, TimeInput::Fourier, TimeInput::Concat] {
                let config = NetConfig {
                    hidden: vec![64, 48, 64],
                    activation,
                    time,
                    time_dim: 16,
                };
                for rows in [1, 37, 700] {
                    check_agreement(&config, 3, rows, rows as u64);
                }
            }
        }
        // More blocks than partial gradients: blocks that add into a partial, not only
        // overwrite it.
        let config = NetConfig {
            hidden: vec![32, 24],
            ..NetConfig::default()
        };
        check_agreement(&config, 3, 4200, 11);
    }

    /// Sampling asks for no gradient: the fused path keeps no activations then, and gives
    /// the same values.
    #[test]
    fn detached_evaluation_gives_the_same_values() {
        let net =
            DriftNet::new(&NetConfig::default(), 2, &Device::Cpu, &mut SbRng::new(4)).unwrap();
        let x = crate::tensor::normal(600, 2, &mut SbRng::new(5), &Device::Cpu).unwrap();
        let t = Tensor::full(0.25f32, (600, 1), &Device::Cpu).unwrap();
        let a = net.forward(&x, &t).unwrap();
        let b = net.forward_detached(&x, &t).unwrap();
        assert!(a.track_op() && !b.track_op());
        assert_eq!(
            a.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            b.flatten_all().unwrap().to_vec1::<f32>().unwrap()
        );
    }

    /// The number of threads changes how rows are split, never the numbers: every output
    /// and gradient entry is summed in the same order.
    #[test]
    fn fused_results_do_not_depend_on_the_thread_count() {
        let config = NetConfig {
            hidden: vec![96, 96],
            ..NetConfig::default()
        };
        let net = DriftNet::new(&config, 4, &Device::Cpu, &mut SbRng::new(9)).unwrap();
        let run = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| evaluate(&net, 531, true, 3))
        };
        let one = run(1);
        assert_eq!(one, run(2));
        assert_eq!(one, run(3));
        // The training step's loss and gradients too, with more blocks than partials.
        let (x, t, target) = random_batch(4200, 4, 12);
        let step = |threads: usize| {
            let (loss, grads) = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| net.mse_gradients(&x, &t, &target))
                .unwrap();
            let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let grads: Vec<Vec<f32>> = net
                .vars()
                .iter()
                .map(|v| flat(grads.get(v.as_tensor()).unwrap()))
                .collect();
            (loss.to_bits(), grads)
        };
        let one = step(1);
        assert_eq!(one, step(2));
        assert_eq!(one, step(3));
    }

    /// The training step's fused loss-and-gradient pass agrees with candle's autograd.
    #[test]
    fn fused_mse_gradients_agree_with_autograd() {
        for (config, rows) in [
            (NetConfig::default(), 300),
            (
                NetConfig {
                    hidden: vec![],
                    ..NetConfig::default()
                },
                7,
            ),
            (
                NetConfig {
                    activation: Activation::Tanh,
                    ..NetConfig::dsbm_gaussian()
                },
                129,
            ),
            // More blocks than partial gradients (blocks that add into a partial).
            (
                NetConfig {
                    hidden: vec![32, 24],
                    ..NetConfig::default()
                },
                4200,
            ),
        ] {
            let net = DriftNet::new(&config, 3, &Device::Cpu, &mut SbRng::new(2)).unwrap();
            let (x, t, target) = random_batch(rows, 3, 8);
            let (loss_f, grads_f) = net.mse_gradients(&x, &t, &target).unwrap();
            let (loss_r, grads_r) = net.mse_gradients_reference(&x, &t, &target).unwrap();
            assert!(
                (loss_f - loss_r).abs() <= 1e-5 * loss_r,
                "{loss_f} vs {loss_r}"
            );
            let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            for (i, v) in net.vars().iter().enumerate() {
                let f = flat(grads_f.get(v.as_tensor()).unwrap());
                let r = flat(grads_r.get(v.as_tensor()).unwrap());
                assert_close(&format!("gradient of parameter {i}"), &f, &r);
            }
        }
        let net =
            DriftNet::new(&NetConfig::default(), 2, &Device::Cpu, &mut SbRng::new(2)).unwrap();
        let x = Tensor::zeros((4, 2), DType::F32, &Device::Cpu).unwrap();
        let t = Tensor::zeros((4, 1), DType::F32, &Device::Cpu).unwrap();
        let wrong = Tensor::zeros((4, 3), DType::F32, &Device::Cpu).unwrap();
        assert!(net.mse_gradients(&x, &t, &wrong).is_err());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
        /// Agreement on random architectures: no hidden layer up to three, widths from 1.
        #[test]
        fn fused_path_agrees_on_random_shapes(
            hidden in proptest::collection::vec(1usize..40, 0..4),
            dim in 1usize..6,
            rows in 1usize..300,
            concat in proptest::bool::ANY,
            seed in 0u64..1000,
        ) {
            let config = NetConfig {
                hidden,
                time: if concat { TimeInput::Concat } else { TimeInput::Sinusoidal },
                time_dim: 4,
                ..NetConfig::default()
            };
            check_agreement(&config, dim, rows, seed);
        }
    }

    /// Issue 11: the default time input is smooth on t ∈ [0, 1]. The old default
    /// (frequencies 1000 · 10000^(−i/half), made for step indices 0…1000) turned its fastest
    /// features by 50 rad between neighbouring times of a 20-step Euler grid, so DSBM's
    /// networks saw unrelated inputs at neighbouring times and at t = 1, outside the training
    /// times [δ, 1 − δ].
    #[test]
    fn time_inputs_are_smooth_on_the_unit_interval() {
        let turn = |time: TimeInput| {
            // The largest change of a time feature between neighbouring times of a 20-step grid.
            time.frequencies(32)
                .map_or(0.05, |f| f.iter().fold(0f32, |m, w| m.max(*w)) * 0.05)
        };
        assert_eq!(NetConfig::default().time, TimeInput::Concat);
        assert!(turn(NetConfig::default().time) <= 1.0);
        assert!(
            turn(TimeInput::Fourier) <= 1.0,
            "{}",
            turn(TimeInput::Fourier)
        );
        assert!(
            turn(TimeInput::Sinusoidal) > 10.0,
            "the legacy embedding is the fast one"
        );
        // Fourier frequencies: geometric from 1 to 16 rad per unit time.
        let f = TimeInput::Fourier.frequencies(8).unwrap();
        assert_eq!(f.len(), 4);
        assert!(
            (f[0] - 1.0).abs() < 1e-6 && (f[3] - 16.0).abs() < 1e-4,
            "{f:?}"
        );
        assert!((f[1] / f[0] - f[2] / f[1]).abs() < 1e-5, "{f:?}");
    }
}
