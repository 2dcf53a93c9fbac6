//! Adam, exponential moving averages and gradient clipping.
//!
//! On the CPU in f32, Adam updates each parameter and its moments in place in one pass
//! (nothing allocated), and the moving average is one operation
//! per tensor; elsewhere both are built from candle's tensor operations, and tests check the
//! two paths agree.

use candle_core::{
    backprop::GradStore, CpuStorage, CustomOp2, InplaceOp2, Layout, Shape, Tensor, Var,
};

use std::sync::Mutex;

use rayon::prelude::*;

use crate::tensor::{host_values, host_values_mut, is_cpu_f32};
use crate::Result;

/// Adam (Kingma & Ba), no weight decay.
///
/// For CPU f32 parameters, [`Adam::step`] keeps the moments as host arrays and updates each
/// parameter in one pass (moments and value together, in place); on other devices, and in
/// [`Adam::step_reference`] (which the tests compare with), the moments are tensors and the
/// step is candle's operations. The moments move between the two forms when the path changes.
#[derive(Debug)]
pub struct Adam {
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    step: i32,
    moments: Vec<Moments>,
}

/// One variable's first and second moments.
#[derive(Debug)]
enum Moments {
    /// Host arrays, updated in place by [`AdamPass`].
    Host { m: Vec<f32>, v: Vec<f32> },
    /// Tensors on the variable's device, replaced at every step.
    Tensors { m: Tensor, v: Tensor },
}

impl Moments {
    /// As host arrays (tensors are copied into host arrays once).
    fn host(&mut self) -> Result<(&mut Vec<f32>, &mut Vec<f32>)> {
        if let Moments::Tensors { m, v } = self {
            let flat = |t: &Tensor| t.flatten_all()?.to_vec1::<f32>();
            let (m, v) = (flat(m)?, flat(v)?);
            *self = Moments::Host { m, v };
        }
        match self {
            Moments::Host { m, v } => Ok((m, v)),
            Moments::Tensors { .. } => unreachable!("converted above"),
        }
    }

    /// As tensors on `like`'s device (host arrays are moved into tensors once).
    fn tensors(&mut self, like: &Tensor) -> Result<(&Tensor, &Tensor)> {
        if let Moments::Host { m, v } = self {
            let m = Tensor::from_slice(m, like.shape(), like.device())?;
            let v = Tensor::from_slice(v, like.shape(), like.device())?;
            *self = Moments::Tensors { m, v };
        }
        match self {
            Moments::Tensors { m, v } => Ok((m, v)),
            Moments::Host { .. } => unreachable!("converted above"),
        }
    }
}

impl Adam {
    /// Fresh moments for `vars`, learning rate `lr`, β = (0.9, 0.999), ε = 1e-8.
    ///
    /// # Errors
    /// A tensor error.
    pub fn new(vars: &[Var], lr: f64) -> Result<Self> {
        let moments = vars
            .iter()
            .map(|var| {
                let t = var.as_tensor();
                Ok(if fusable(t) {
                    Moments::Host {
                        m: vec![0.0; t.elem_count()],
                        v: vec![0.0; t.elem_count()],
                    }
                } else {
                    Moments::Tensors {
                        m: t.zeros_like()?,
                        v: t.zeros_like()?,
                    }
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            step: 0,
            moments,
        })
    }

    /// One update of `vars` from `grads`; variables without a gradient are left alone.
    ///
    /// # Errors
    /// A tensor error.
    pub fn step(&mut self, vars: &[Var], grads: &GradStore) -> Result<()> {
        self.update(vars, grads, true)
    }

    /// [`Adam::step`] by candle's tensor operations on every device: the reference the
    /// in-place CPU path is tested against.
    ///
    /// # Errors
    /// A tensor error.
    pub fn step_reference(&mut self, vars: &[Var], grads: &GradStore) -> Result<()> {
        self.update(vars, grads, false)
    }

    fn update(&mut self, vars: &[Var], grads: &GradStore, fused: bool) -> Result<()> {
        self.step += 1;
        let c1 = 1.0 / (1.0 - self.beta1.powi(self.step));
        let c2 = 1.0 / (1.0 - self.beta2.powi(self.step));
        let mut in_place = Vec::new();
        for (var, moments) in vars.iter().zip(&mut self.moments) {
            let Some(g) = grads.get(var.as_tensor()) else {
                continue;
            };
            // Gradients can record the operations that made them (and so keep the whole
            // forward pass alive); the moments must hold values only, or every step's graph
            // would stay in memory until the optimizer is dropped.
            let g = &g.detach();
            if fused && fusable(var.as_tensor()) {
                let g = g.contiguous()?;
                let (m, v) = moments.host()?;
                in_place.push((var, g, m, v));
                continue;
            }
            let (m, v) = moments.tensors(var.as_tensor())?;
            let m = ((m * self.beta1)? + (g * (1.0 - self.beta1))?)?;
            let v = ((v * self.beta2)? + (g.sqr()? * (1.0 - self.beta2))?)?;
            let denom = ((&v * c2)?.sqrt()? + self.eps)?;
            let update = ((&m * (c1 * self.lr))? / denom)?;
            var.set(&(var.as_tensor() - update)?)?;
            *moments = Moments::Tensors { m, v };
        }
        // The in-place updates in one parallel region (each large tensor cut into chunks).
        let update = AdamUpdate {
            b1: self.beta1 as f32,
            r1: (1.0 - self.beta1) as f32,
            b2: self.beta2 as f32,
            r2: (1.0 - self.beta2) as f32,
            step: (c1 * self.lr) as f32,
            c2: c2 as f32,
            eps: self.eps as f32,
        };
        in_place.into_par_iter().try_for_each(|(var, g, m, v)| {
            var.as_tensor().inplace_op2(
                &g,
                &AdamPass {
                    moments: Mutex::new((m, v)),
                    update,
                },
            )
        })?;
        Ok(())
    }

    /// The first and second moments of variable `i`, flattened (for tests).
    #[cfg(test)]
    fn moments_of(&self, i: usize) -> (Vec<f32>, Vec<f32>) {
        match &self.moments[i] {
            Moments::Host { m, v } => (m.clone(), v.clone()),
            Moments::Tensors { m, v } => {
                let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                (flat(m), flat(v))
            }
        }
    }
}

/// Whether the in-place CPU kernels below can take the tensor.
fn fusable(t: &Tensor) -> bool {
    is_cpu_f32(t) && t.is_contiguous()
}

/// One Adam step of one parameter tensor in a single pass, in place ([`AdamUpdate`]).
struct AdamPass<'a> {
    moments: Mutex<(&'a mut Vec<f32>, &'a mut Vec<f32>)>,
    update: AdamUpdate,
}

impl InplaceOp2 for AdamPass<'_> {
    fn name(&self) -> &'static str {
        "adam"
    }

    fn cpu_fwd(
        &self,
        param: &mut CpuStorage,
        param_layout: &Layout,
        grad: &CpuStorage,
        grad_layout: &Layout,
    ) -> candle_core::Result<()> {
        let p = host_values_mut(param, param_layout, "parameter")?;
        let g = host_values(grad, grad_layout, "gradient")?;
        let mut moments = self
            .moments
            .lock()
            .expect("Adam's moments' lock is never poisoned");
        let (m, v) = &mut *moments;
        if m.len() != p.len() || g.len() != p.len() {
            candle_core::bail!(
                "adam: {} parameters, {} gradients, {} moments",
                p.len(),
                g.len(),
                m.len()
            );
        }
        let update = self.update;
        // The square root and the division bound this pass: large tensors are cut into
        // chunks over rayon's threads (each element's arithmetic is the same either way).
        if p.len() >= 2 * ADAM_CHUNK {
            p.par_chunks_mut(ADAM_CHUNK)
                .zip(g.par_chunks(ADAM_CHUNK))
                .zip(m.par_chunks_mut(ADAM_CHUNK))
                .zip(v.par_chunks_mut(ADAM_CHUNK))
                .for_each(|(((p, g), m), v)| update.apply(p, g, m, v));
        } else {
            update.apply(p, g, m, v);
        }
        Ok(())
    }
}

/// Elements per parallel chunk of [`AdamPass`].
const ADAM_CHUNK: usize = 1 << 14;

/// Adam's per-element arithmetic with the step's constants, in f32:
/// `m ← β₁m + (1 − β₁)g`, `v ← β₂v + (1 − β₂)g²`, `θ ← θ − step · m / (√(c2 · v) + ε)`.
#[derive(Clone, Copy)]
struct AdamUpdate {
    b1: f32,
    r1: f32,
    b2: f32,
    r2: f32,
    step: f32,
    c2: f32,
    eps: f32,
}

impl AdamUpdate {
    /// Updates `p`, `m` and `v` from `g`, compiled for the widest vector instructions the
    /// CPU has (`pulp`'s dispatch).
    fn apply(self, p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
        pulp::Arch::new().dispatch(
            #[inline(always)]
            || {
                for (((p, g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
                    *m = self.b1 * *m + self.r1 * g;
                    *v = self.b2 * *v + self.r2 * (g * g);
                    *p -= self.step * *m / ((self.c2 * *v).sqrt() + self.eps);
                }
            },
        );
    }
}

/// Scales all gradients so that their joint Euclidean norm is at most `max_norm`.
/// Returns the norm before clipping.
///
/// # Errors
/// A tensor error.
pub fn clip_grad_norm(vars: &[Var], grads: &mut GradStore, max_norm: f64) -> Result<f64> {
    let mut total = 0.0f64;
    for var in vars {
        if let Some(g) = grads.get(var.as_tensor()) {
            total += f64::from(g.sqr()?.sum_all()?.to_scalar::<f32>()?);
        }
    }
    let norm = total.sqrt();
    if norm > max_norm {
        let scale = max_norm / (norm + 1e-6);
        for var in vars {
            if let Some(g) = grads.remove(var.as_tensor()) {
                grads.insert(var.as_tensor(), (g * scale)?);
            }
        }
    }
    Ok(norm)
}

/// `decay · average + (1 − decay) · value`, as a new tensor.
struct Average {
    decay: f64,
}

impl CustomOp2 for Average {
    fn name(&self) -> &'static str {
        "ema"
    }

    fn cpu_fwd(
        &self,
        average: &CpuStorage,
        average_layout: &Layout,
        value: &CpuStorage,
        value_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let a = host_values(average, average_layout, "average")?;
        let v = host_values(value, value_layout, "parameter")?;
        let (keep, take) = (self.decay as f32, (1.0 - self.decay) as f32);
        let out = a.iter().zip(v).map(|(a, v)| keep * a + take * v).collect();
        Ok((CpuStorage::F32(out), average_layout.shape().clone()))
    }
}

/// An exponential moving average of parameters: `ema ← decay · ema + (1 − decay) · θ`.
#[derive(Debug)]
pub struct Ema {
    decay: f64,
    shadow: Vec<Tensor>,
}

impl Ema {
    /// Starts the average at the current values of `vars`.
    ///
    /// # Errors
    /// A tensor error.
    pub fn new(vars: &[Var], decay: f64) -> Result<Self> {
        let shadow = vars
            .iter()
            .map(|v| Ok(v.as_tensor().copy()?))
            .collect::<Result<_>>()?;
        Ok(Self { decay, shadow })
    }

    /// Continues an average from saved values.
    pub fn from_params(decay: f64, shadow: Vec<Tensor>) -> Self {
        Self { decay, shadow }
    }

    /// Folds the current values of `vars` into the average.
    ///
    /// # Errors
    /// A tensor error.
    pub fn update(&mut self, vars: &[Var]) -> Result<()> {
        for (s, v) in self.shadow.iter_mut().zip(vars) {
            // A new tensor each time (a copy handed out earlier stays a snapshot), made
            // without recording the operation: a recorded average would keep the previous
            // one alive, a graph and memory growing with every step.
            *s = if fusable(s) && fusable(v.as_tensor()) {
                s.apply_op2_no_bwd(v.as_tensor(), &Average { decay: self.decay })?
            } else {
                ((&*s * self.decay)? + (v.as_tensor() * (1.0 - self.decay))?)?.detach()
            };
        }
        Ok(())
    }

    /// The averaged parameters.
    pub fn params(&self) -> &[Tensor] {
        &self.shadow
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// Adam's first step moves every coordinate by lr · sign(g) (bias correction makes m̂/√v̂ = ±1).
    #[test]
    fn adam_first_step_is_signed_lr() {
        let v = Var::from_vec(vec![1.0f32, -2.0], 2, &Device::Cpu).unwrap();
        let loss = (v.as_tensor() * 3.0).unwrap().sum_all().unwrap();
        let grads = loss.backward().unwrap();
        let mut adam = Adam::new(std::slice::from_ref(&v), 0.1).unwrap();
        adam.step(std::slice::from_ref(&v), &grads).unwrap();
        let got = v.as_tensor().to_vec1::<f32>().unwrap();
        assert!(
            (got[0] - 0.9).abs() < 1e-6 && (got[1] + 2.1).abs() < 1e-6,
            "{got:?}"
        );
    }

    /// Neither the moving average nor Adam's moments may record operations: each would keep
    /// the previous step's tensors (and graph) alive, and memory would grow with every step
    /// (a 32,000-step run with EMA reached 14 GB before this was fixed).
    #[test]
    fn averages_and_moments_hold_no_graph() {
        let v = Var::from_vec(vec![1.0f32, -2.0], 2, &Device::Cpu).unwrap();
        let mut ema = Ema::new(std::slice::from_ref(&v), 0.9).unwrap();
        let mut adam = Adam::new(std::slice::from_ref(&v), 0.1).unwrap();
        for _ in 0..3 {
            let loss = (v.as_tensor().sqr().unwrap() * 3.0)
                .unwrap()
                .sum_all()
                .unwrap();
            let grads = loss.backward().unwrap();
            adam.step(std::slice::from_ref(&v), &grads).unwrap();
            ema.update(std::slice::from_ref(&v)).unwrap();
        }
        assert!(!ema.params()[0].track_op());
        // The tensor path's moments too.
        let loss = v.as_tensor().sqr().unwrap().sum_all().unwrap();
        adam.step_reference(std::slice::from_ref(&v), &loss.backward().unwrap())
            .unwrap();
        let Moments::Tensors { m, v } = &adam.moments[0] else {
            panic!("the reference step keeps tensors")
        };
        assert!(!m.track_op() && !v.track_op());
    }

    #[test]
    fn clipping_bounds_the_norm() {
        let v = Var::from_vec(vec![0.0f32, 0.0], 2, &Device::Cpu).unwrap();
        let loss = (v.as_tensor() * 10.0).unwrap().sum_all().unwrap();
        let mut grads = loss.backward().unwrap();
        let before = clip_grad_norm(std::slice::from_ref(&v), &mut grads, 1.0).unwrap();
        assert!((before - 200f64.sqrt()).abs() < 1e-4);
        let g = grads.get(v.as_tensor()).unwrap().to_vec1::<f32>().unwrap();
        let after = (g[0] * g[0] + g[1] * g[1]).sqrt();
        assert!((after - 1.0).abs() < 1e-4, "{after}");
    }

    /// Trains two copies of the same parameters on the same losses, one with the in-place
    /// CPU path and one with the reference tensor operations; both must end at the same values.
    #[test]
    fn fused_adam_and_average_agree_with_the_reference() {
        let dev = Device::Cpu;
        let mut rng = sb_data::SbRng::new(3);
        // The last tensor is large enough to be cut into parallel chunks (a short one last).
        let shapes = [(7usize, 5usize), (1, 9), (33, 2), (200, 170)];
        const { assert!(200 * 170 >= 2 * ADAM_CHUNK && 200 * 170 % ADAM_CHUNK != 0) };
        let make = |rng: &mut sb_data::SbRng| -> Vec<Var> {
            shapes
                .iter()
                .map(|&(a, b)| {
                    Var::from_tensor(&crate::tensor::normal(a, b, rng, &dev).unwrap()).unwrap()
                })
                .collect()
        };
        let fused = make(&mut rng.clone());
        let reference = make(&mut rng);
        let targets: Vec<Tensor> = shapes
            .iter()
            .map(|&(a, b)| crate::tensor::normal(a, b, &mut rng, &dev).unwrap())
            .collect();
        let loss = |vars: &[Var], k: usize| {
            let mut total = Tensor::zeros((), candle_core::DType::F32, &dev).unwrap();
            for (v, t) in vars.iter().zip(&targets) {
                let d = (v.as_tensor() - (t * (1.0 + k as f64 * 0.1)).unwrap()).unwrap();
                total = (total + d.sqr().unwrap().sum_all().unwrap()).unwrap();
            }
            total.backward().unwrap()
        };
        let mut adam_f = Adam::new(&fused, 0.05).unwrap();
        let mut adam_r = Adam::new(&reference, 0.05).unwrap();
        let mut ema_f = Ema::new(&fused, 0.9).unwrap();
        let mut ema_r = Ema::new(&reference, 0.9).unwrap();
        for k in 0..6 {
            adam_f.step(&fused, &loss(&fused, k)).unwrap();
            adam_r
                .step_reference(&reference, &loss(&reference, k))
                .unwrap();
            ema_f.update(&fused).unwrap();
            // The reference average: candle's own operations.
            for (s, v) in ema_r.shadow.iter_mut().zip(&reference) {
                *s = ((&*s * 0.9).unwrap() + (v.as_tensor() * 0.1).unwrap())
                    .unwrap()
                    .detach();
            }
        }
        let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        for i in 0..shapes.len() {
            for (what, a, b) in [
                (
                    "parameter",
                    flat(fused[i].as_tensor()),
                    flat(reference[i].as_tensor()),
                ),
                (
                    "average",
                    flat(&ema_f.params()[i]),
                    flat(&ema_r.params()[i]),
                ),
                (
                    "first moment",
                    adam_f.moments_of(i).0,
                    adam_r.moments_of(i).0,
                ),
                (
                    "second moment",
                    adam_f.moments_of(i).1,
                    adam_r.moments_of(i).1,
                ),
            ] {
                for (x, y) in a.iter().zip(&b) {
                    assert!(
                        (x - y).abs() <= 1e-5 * (1.0 + y.abs()),
                        "{what} {i}: {x} vs {y}"
                    );
                }
            }
        }
        // The fused update really changed the parameters (the comparison is not vacuous).
        assert!(flat(fused[0].as_tensor()) != flat(&ema_f.params()[0]));
    }
}
