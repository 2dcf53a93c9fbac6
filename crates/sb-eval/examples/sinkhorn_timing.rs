//! Iterations and time of Sinkhorn with and without ε-scaling between two Gaussian clouds:
//! `cargo run --release -p sb-eval --example sinkhorn_timing -- N D REG [TOL]`.

use sb_eval::{cost_matrix, sinkhorn, Ground, SinkhornOptions};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let get = |k: usize, default: f64| args.get(k).and_then(|a| a.parse().ok()).unwrap_or(default);
    let (n, d, reg, tol) = (
        get(0, 256.0) as usize,
        get(1, 16.0) as usize,
        get(2, 1.0),
        get(3, 1e-6),
    );
    let mut rng = sb_data::SbRng::new(9);
    let a = ndarray::Array2::from_shape_fn((n, d), |_| rng.normal());
    let b = ndarray::Array2::from_shape_fn((n, d), |_| rng.normal() + 0.3);
    let c = cost_matrix(a.view(), b.view(), Ground::SquaredEuclidean).expect("valid clouds");
    let largest = c.iter().fold(0.0f64, |acc, v| acc.max(*v));
    for eps_scaling in [false, true] {
        let options = SinkhornOptions {
            tol,
            eps_scaling,
            ..SinkhornOptions::default()
        };
        let start = std::time::Instant::now();
        let e = sinkhorn(None, None, c.view(), reg, options).expect("valid costs");
        println!(
            "n = {n}, d = {d}, reg = {reg} (largest cost {largest:.1}), eps_scaling = {eps_scaling}: cost {:.12}, {} iterations, converged = {}, error {:.2e}, {:.3} s",
            e.cost,
            e.iterations,
            e.converged,
            e.marginal_error,
            start.elapsed().as_secs_f64()
        );
    }
}
