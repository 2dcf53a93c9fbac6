//! `sb bench`: the units of work of SPEC §4, timed the way `../shared/peer/torch_bench.py`
//! times PyTorch, so the two print comparable JSON lines.
//!
//! - `train-step`: a fresh batch (x ~ N(0, I), t ~ U(0, 1), target ~ N(0, I)), the MLP on
//!   `[x, t]`, mean squared error, backward, Adam (lr 1e-4); steps per second after 20 warm-up
//!   steps.
//! - `sample`: Euler–Maruyama `x ← x + f(x, t) dt + √dt z` over `num_steps` steps on `batch`
//!   particles, no gradients; particle-steps per second after one warm-up pass.
//! - `w1`: exact W1 between `a ~ N(0, I)` and `b ~ N(0.5·1, I)` by the network simplex.

use std::time::Instant;

use candle_core::{Device, Tensor};
use sb_data::SbRng;
use sb_methods::net::{Activation, DriftNet, NetConfig, TimeInput};
use sb_methods::optim::Adam;
use sb_methods::sampler::{simulate, Drift, Step};
use sb_methods::tensor::normal;
use sb_methods::Direction;
use serde::Serialize;

use crate::Result;

/// The network of the peer: `layers` hidden Linear + SiLU of width `hidden` on `[x, t]`.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct NetShape {
    /// Dimension of the points.
    pub dim: usize,
    /// Width of each hidden layer.
    pub hidden: usize,
    /// Number of hidden layers.
    pub layers: usize,
}

impl NetShape {
    fn build(self, rng: &mut SbRng) -> Result<DriftNet> {
        let config = NetConfig {
            hidden: vec![self.hidden; self.layers],
            activation: Activation::Silu,
            time: TimeInput::Concat,
            ..NetConfig::default()
        };
        Ok(DriftNet::new(&config, self.dim, &Device::Cpu, rng)?)
    }
}

/// One JSON line of `sb bench train-step`.
#[derive(Debug, Serialize)]
pub struct TrainStepLine {
    /// `train-step`.
    pub kind: &'static str,
    /// `sb`.
    pub r#impl: &'static str,
    /// Optimizer steps per second.
    pub steps_per_sec: f64,
    /// The network.
    #[serde(flatten)]
    pub net: NetShape,
    /// Batch size.
    pub batch: usize,
    /// Worker threads.
    pub threads: usize,
}

/// Times `steps` training steps after 20 warm-up steps.
///
/// # Errors
/// A tensor error.
pub fn train_step(
    net: NetShape,
    batch: usize,
    steps: usize,
    threads: usize,
) -> Result<TrainStepLine> {
    let mut rng = SbRng::new(0);
    let model = net.build(&mut rng)?;
    let mut adam = Adam::new(model.vars(), 1e-4)?;
    let dev = Device::Cpu;
    let mut step = |rng: &mut SbRng| -> sb_methods::Result<()> {
        let x = normal(batch, net.dim, rng, &dev)?;
        let t: Vec<f32> = (0..batch).map(|_| rng.uniform() as f32).collect();
        let t = Tensor::from_vec(t, (batch, 1), &dev)?;
        let target = normal(batch, net.dim, rng, &dev)?;
        let (_, grads) = model.mse_gradients(&x, &t, &target)?;
        adam.step(model.vars(), &grads)?;
        Ok(())
    };
    // On a worker thread, as `sb run` trains (see there).
    let start = rayon::scope(|_| -> sb_methods::Result<Instant> {
        for _ in 0..20 {
            step(&mut rng)?;
        }
        let start = Instant::now();
        for _ in 0..steps {
            step(&mut rng)?;
        }
        Ok(start)
    })?;
    Ok(TrainStepLine {
        kind: "train-step",
        r#impl: "sb",
        steps_per_sec: steps as f64 / start.elapsed().as_secs_f64(),
        net,
        batch,
        threads,
    })
}

/// One JSON line of `sb bench sample`.
#[derive(Debug, Serialize)]
pub struct SampleLine {
    /// `sample`.
    pub kind: &'static str,
    /// `sb`.
    pub r#impl: &'static str,
    /// Particles × Euler steps per second.
    pub particle_steps_per_sec: f64,
    /// The network.
    #[serde(flatten)]
    pub net: NetShape,
    /// Particles.
    pub batch: usize,
    /// Euler steps.
    pub num_steps: usize,
    /// Worker threads.
    pub threads: usize,
}

struct NetDrift<'a>(&'a DriftNet);

impl Drift for NetDrift<'_> {
    fn drift(&self, x: &Tensor, step: &Step) -> sb_methods::Result<Tensor> {
        let t = sb_methods::sampler::time_column(step.t, x.dims2()?.0, x.device())?;
        self.0.forward_detached(x, &t)
    }
}

/// Times one Euler–Maruyama pass after one warm-up pass.
///
/// # Errors
/// A tensor error.
pub fn sample(net: NetShape, batch: usize, num_steps: usize, threads: usize) -> Result<SampleLine> {
    let mut rng = SbRng::new(0);
    let model = net.build(&mut rng)?;
    let dt = 1.0 / num_steps as f64;
    let steps: Vec<Step> = (0..num_steps)
        .map(|k| Step {
            t: k as f64 * dt,
            drift_scale: dt,
            noise_std: dt.sqrt(),
            index: k,
            frozen: 0,
        })
        .collect();
    let drift = NetDrift(&model);
    let run = |rng: &mut SbRng| -> Result<()> {
        let start = ndarray::Array2::from_shape_fn((batch, net.dim), |_| rng.normal() as f32);
        simulate(
            &drift,
            &steps,
            Direction::Forward,
            &start,
            rng,
            false,
            &Device::Cpu,
        )?;
        Ok(())
    };
    run(&mut rng)?;
    let start = Instant::now();
    run(&mut rng)?;
    Ok(SampleLine {
        kind: "sample",
        r#impl: "sb",
        particle_steps_per_sec: (batch * num_steps) as f64 / start.elapsed().as_secs_f64(),
        net,
        batch,
        num_steps,
        threads,
    })
}

/// One JSON line of `sb bench w1`.
#[derive(Debug, Serialize)]
pub struct W1Line {
    /// `w1`.
    pub kind: &'static str,
    /// `sb`.
    pub r#impl: &'static str,
    /// Seconds for the cost matrix and the exact solve.
    pub seconds: f64,
    /// The value.
    pub value: f64,
    /// Whether the simplex proved optimality.
    pub converged: bool,
    /// Points per cloud.
    pub n: usize,
    /// Dimension.
    pub dim: usize,
}

/// Times exact W1 between two Gaussian clouds of `n` points.
///
/// # Errors
/// A metric error.
pub fn w1(n: usize, dim: usize) -> Result<W1Line> {
    let mut rng = SbRng::new(0);
    let a = ndarray::Array2::from_shape_fn((n, dim), |_| rng.normal());
    let b = ndarray::Array2::from_shape_fn((n, dim), |_| rng.normal() + 0.5);
    let start = Instant::now();
    let w = sb_eval::w1(a.view(), b.view())?;
    Ok(W1Line {
        kind: "w1",
        r#impl: "sb",
        seconds: start.elapsed().as_secs_f64(),
        value: w.value,
        converged: w.transport.converged,
        n,
        dim,
    })
}

/// One JSON line of `sb bench matmul`.
#[derive(Debug, Serialize)]
pub struct MatmulLine {
    /// `matmul`.
    pub kind: &'static str,
    /// `sb`.
    pub r#impl: &'static str,
    /// Billions of floating-point operations (2n³ per product) per second.
    pub gflops: f64,
    /// Matrix size.
    pub n: usize,
    /// Worker threads.
    pub threads: usize,
}

/// Times `repeats` products of two n × n f32 matrices after one warm-up product, the rows of
/// the result split evenly across rayon's threads, each block one sequential faer product
/// (as the network's fused kernels do).
pub fn matmul(n: usize, repeats: usize, threads: usize) -> MatmulLine {
    use faer::{linalg::matmul::matmul as product, Accum, MatMut, MatRef, Par};
    use rayon::prelude::*;
    let mut rng = SbRng::new(0);
    let a = rng.normal_f32(n * n);
    let b = rng.normal_f32(n * n);
    let mut c = vec![0f32; n * n];
    let rows = n.div_ceil(threads.max(1)).max(1);
    let mut run = || {
        c.par_chunks_mut(rows * n)
            .zip(a.par_chunks(rows * n))
            .for_each(|(c, a)| {
                let r = c.len() / n;
                product(
                    MatMut::from_row_major_slice_mut(c, r, n),
                    Accum::Replace,
                    MatRef::from_row_major_slice(a, r, n),
                    MatRef::from_row_major_slice(&b, n, n),
                    1.0f32,
                    Par::Seq,
                );
            });
    };
    run();
    let start = Instant::now();
    for _ in 0..repeats {
        run();
    }
    let seconds = start.elapsed().as_secs_f64();
    MatmulLine {
        kind: "matmul",
        r#impl: "sb",
        gflops: 2.0 * (n as f64).powi(3) * repeats as f64 / seconds / 1e9,
        n,
        threads,
    }
}

/// Sets the number of worker threads of candle's CPU kernels (and rayon's global pool);
/// call before any tensor work.
pub fn set_threads(threads: usize) {
    // candle's CPU backend reads RAYON_NUM_THREADS for its matrix products.
    std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_bench_runs_and_reports_a_rate() {
        let net = NetShape {
            dim: 3,
            hidden: 8,
            layers: 2,
        };
        let t = train_step(net, 16, 5, 1).unwrap();
        assert!(t.steps_per_sec > 0.0);
        let s = sample(net, 32, 4, 1).unwrap();
        assert!(s.particle_steps_per_sec > 0.0);
        let m = matmul(64, 2, 1);
        assert!(m.gflops > 0.0);
        let w = w1(50, 2).unwrap();
        assert!(w.converged && w.value > 0.0);
        let line = serde_json::to_string(&t).unwrap();
        assert!(
            line.starts_with(r#"{"kind":"train-step","impl":"sb","#),
            "{line}"
        );
        assert!(line.contains(r#""dim":3,"hidden":8,"layers":2"#), "{line}");
    }
}
