//! Times exact W1 between two Gaussian clouds, with the dense cost matrix and with costs
//! computed on the fly: `cargo run --release -p sb-eval --example w1_timing -- N D [dense|points|both]`.

use sb_eval::{cost_matrix, emd, emd_points, EmdOptions, Ground};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number =
        |k: usize, default: usize| args.get(k).and_then(|a| a.parse().ok()).unwrap_or(default);
    let (n, d) = (number(0, 1000), number(1, 5));
    let mode = args.get(2).map_or("both", String::as_str);
    let mut rng = sb_data::SbRng::new(0);
    let a = ndarray::Array2::from_shape_fn((n, d), |_| rng.normal());
    let b = ndarray::Array2::from_shape_fn((n, d), |_| rng.normal() + 0.5);
    let report = |name: &str, t: &sb_eval::Transport, s: f64| {
        println!(
            "n = {n}, d = {d}, {name}: W1 = {:.15}, converged = {}, pivots = {}, scans = {}, {s:.3} s",
            t.cost, t.converged, t.pivots, t.scans
        );
    };
    if mode == "dense" || mode == "both" {
        let start = std::time::Instant::now();
        let c = cost_matrix(a.view(), b.view(), Ground::Euclidean).expect("valid clouds");
        let t = emd(None, None, c.view(), EmdOptions::default()).expect("valid costs");
        report("dense", &t, start.elapsed().as_secs_f64());
    }
    if mode == "points" || mode == "both" {
        let start = std::time::Instant::now();
        let options = EmdOptions {
            neighbours: args.get(3).and_then(|k| k.parse().ok()),
            ..EmdOptions::default()
        };
        let t = emd_points(a.view(), b.view(), Ground::Euclidean, options).expect("valid clouds");
        report("on the fly", &t, start.elapsed().as_secs_f64());
    }
}
