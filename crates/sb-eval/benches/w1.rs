//! Exact W1 by the network simplex at n = m = 1000, 2000, 4000, d = 5, with the dense cost
//! matrix (`w1_d5`) and with costs computed from the points (`w1_on_the_fly_d5`):
//! `cargo bench -p sb-eval --bench w1`. The side-by-side comparison with POT is
//! `python3 benchmarks/w1_vs_pot.py`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use ndarray::Array2;
use sb_data::SbRng;

fn clouds(n: usize, d: usize) -> (Array2<f64>, Array2<f64>) {
    let mut rng = SbRng::new(0);
    let a = Array2::from_shape_fn((n, d), |_| rng.normal());
    let b = Array2::from_shape_fn((n, d), |_| rng.normal() + 0.5);
    (a, b)
}

fn bench_w1(c: &mut Criterion) {
    let mut group = c.benchmark_group("w1_d5");
    group.sample_size(10);
    for n in [1000usize, 2000, 4000] {
        let (a, b) = clouds(n, 5);
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |bench, _| {
            bench.iter(|| sb_eval::w1(a.view(), b.view()).expect("valid clouds").value)
        });
    }
    group.finish();
}

fn bench_w1_on_the_fly(c: &mut Criterion) {
    let mut group = c.benchmark_group("w1_on_the_fly_d5");
    group.sample_size(10);
    for n in [1000usize, 2000, 4000] {
        let (a, b) = clouds(n, 5);
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |bench, _| {
            bench.iter(|| {
                sb_eval::emd_points(
                    a.view(),
                    b.view(),
                    sb_eval::Ground::Euclidean,
                    sb_eval::EmdOptions::default(),
                )
                .expect("valid clouds")
                .cost
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_w1, bench_w1_on_the_fly);
criterion_main!(benches);
