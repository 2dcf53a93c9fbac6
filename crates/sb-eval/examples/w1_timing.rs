//! Times exact W1 between two Gaussian clouds: `cargo run --release -p sb-eval --example w1_timing -- N D`.

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let (n, d) = (
        args.first().copied().unwrap_or(1000),
        args.get(1).copied().unwrap_or(5),
    );
    let mut rng = sb_data::SbRng::new(0);
    let a = ndarray::Array2::from_shape_fn((n, d), |_| rng.normal());
    let b = ndarray::Array2::from_shape_fn((n, d), |_| rng.normal() + 0.5);
    let start = std::time::Instant::now();
    let w = sb_eval::w1(a.view(), b.view()).expect("valid clouds");
    println!(
        "n = {n}, d = {d}: W1 = {:.12}, converged = {}, pivots = {}, {:.3} s",
        w.value,
        w.transport.converged,
        w.transport.pivots,
        start.elapsed().as_secs_f64()
    );
}
