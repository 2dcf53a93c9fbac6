//! The drift network's hot paths, fused CPU path against candle's own operations:
//! `cargo bench -p sb-methods --bench net`.
//!
//! - `forward`: the 3 × 256 SiLU network on `[x, t]`, no gradient (one Euler step's work), at
//!   batch 10,000, d = 2.
//! - `loss_and_gradients`: mean squared error and its gradient for every weight (a training
//!   step without the optimizer), at (d = 2, batch 512) and (d = 50, batch 128).
//! - `adam`: one Adam update of the network's weights from those gradients.
//!
//! The side-by-side comparison with PyTorch is `python3 benchmarks/speed.py`.

use candle_core::{Device, Tensor};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use sb_data::SbRng;
use sb_methods::net::{Activation, DriftNet, NetConfig, TimeInput};
use sb_methods::optim::Adam;
use sb_methods::tensor::normal;

fn network(dim: usize) -> DriftNet {
    let config = NetConfig {
        hidden: vec![256; 3],
        activation: Activation::Silu,
        time: TimeInput::Concat,
        ..NetConfig::default()
    };
    DriftNet::new(&config, dim, &Device::Cpu, &mut SbRng::new(0)).expect("valid network")
}

fn batch(rows: usize, dim: usize) -> (Tensor, Tensor, Tensor) {
    let mut rng = SbRng::new(1);
    let x = normal(rows, dim, &mut rng, &Device::Cpu).expect("noise");
    let t: Vec<f32> = (0..rows).map(|_| rng.uniform() as f32).collect();
    let t = Tensor::from_vec(t, (rows, 1), &Device::Cpu).expect("times");
    let target = normal(rows, dim, &mut rng, &Device::Cpu).expect("noise");
    (x, t, target)
}

fn bench_forward(c: &mut Criterion) {
    let mut group = c.benchmark_group("forward_d2_b10000");
    group.sample_size(10);
    let net = network(2);
    let (x, t, _) = batch(10_000, 2);
    let params: Vec<Tensor> = net.vars().iter().map(|v| v.as_tensor().detach()).collect();
    let params: Vec<&Tensor> = params.iter().collect();
    group.bench_function("fused", |b| {
        b.iter(|| net.forward_with(&params, &x, &t).expect("forward"))
    });
    group.bench_function("reference", |b| {
        b.iter(|| net.forward_reference(&params, &x, &t).expect("forward"))
    });
    group.finish();
}

fn bench_gradients(c: &mut Criterion) {
    let mut group = c.benchmark_group("loss_and_gradients");
    group.sample_size(20);
    for (dim, rows) in [(2usize, 512usize), (50, 128)] {
        let net = network(dim);
        let (x, t, target) = batch(rows, dim);
        let id = format!("d{dim}_b{rows}");
        group.bench_with_input(BenchmarkId::new("fused", &id), &id, |b, _| {
            b.iter(|| net.mse_gradients(&x, &t, &target).expect("gradients"))
        });
        group.bench_with_input(BenchmarkId::new("reference", &id), &id, |b, _| {
            b.iter(|| {
                net.mse_gradients_reference(&x, &t, &target)
                    .expect("gradients")
            })
        });
    }
    group.finish();
}

fn bench_adam(c: &mut Criterion) {
    let mut group = c.benchmark_group("adam_3x256");
    let net = network(2);
    let (x, t, target) = batch(64, 2);
    let (_, grads) = net.mse_gradients(&x, &t, &target).expect("gradients");
    let mut fused = Adam::new(net.vars(), 1e-4).expect("optimizer");
    let mut reference = Adam::new(net.vars(), 1e-4).expect("optimizer");
    group.bench_function("fused", |b| {
        b.iter(|| fused.step(net.vars(), &grads).expect("step"))
    });
    group.bench_function("reference", |b| {
        b.iter(|| reference.step_reference(net.vars(), &grads).expect("step"))
    });
    group.finish();
}

criterion_group!(benches, bench_forward, bench_gradients, bench_adam);
criterion_main!(benches);
