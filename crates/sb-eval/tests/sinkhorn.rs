//! Sinkhorn against POT's log-domain solver (tests/fixtures/sinkhorn_reference.json, made by
//! tests/fixtures/make_sinkhorn.py).

use sb_eval::{cost_matrix, sinkhorn, Ground, SinkhornOptions};

mod common;
use common::{fixtures, load};

/// The transport cost ⟨P, C⟩ to 1e-7 relative and the first row of the plan to 1e-7 of its
/// largest entry, for regularisations from 0.1 to 2, with and without ε-scaling; with it,
/// never more iterations.
#[test]
fn agrees_with_pot() {
    let mut counts = Vec::new();
    for eps_scaling in [false, true] {
        counts.push(agrees_with_pot_at(eps_scaling));
    }
    for (plain, scaled) in counts[0].iter().zip(&counts[1]) {
        assert!(
            scaled <= plain,
            "ε-scaling {scaled} against {plain} iterations: {counts:?}"
        );
    }
}

/// The iterations of each case.
fn agrees_with_pot_at(eps_scaling: bool) -> Vec<usize> {
    let mut iterations = Vec::new();
    let text = std::fs::read_to_string(fixtures().join("sinkhorn_reference.json")).unwrap();
    let reference: serde_json::Value = serde_json::from_str(&text).unwrap();
    let cases = reference["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 4);
    for case in cases {
        let a = load(case["a"].as_str().unwrap());
        let b = load(case["b"].as_str().unwrap());
        let reg = case["reg"].as_f64().unwrap();
        let c = cost_matrix(a.view(), b.view(), Ground::SquaredEuclidean).unwrap();
        let options = SinkhornOptions {
            tol: 1e-11,
            max_iter: 1_000_000,
            eps_scaling,
        };
        let got = sinkhorn(None, None, c.view(), reg, options).unwrap();
        iterations.push(got.iterations);
        assert!(got.converged, "reg {reg}: error {}", got.marginal_error);
        let want = case["cost"].as_f64().unwrap();
        let rel = (got.cost - want).abs() / want;
        assert!(
            rel < 1e-7,
            "reg {reg}: {} vs POT {want} (rel {rel:e})",
            got.cost
        );
        let row: Vec<f64> = case["row0"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let scale = got.plan.row(0).iter().copied().fold(0.0, f64::max);
        for (j, w) in row.iter().enumerate() {
            assert!(
                (got.plan[[0, j]] - w).abs() < 1e-7 * scale,
                "reg {reg}: P[0, {j}] = {} vs POT {w}",
                got.plan[[0, j]]
            );
        }
    }
    iterations
}

/// At a small regularisation (the largest cost ~ 1000 × reg, a minibatch coupling's regime
/// at small σ) ε-scaling converges in 28,375 iterations; plain iterations have not converged
/// after 40,000 (nor after 100,000: `examples/sinkhorn_timing.rs`).
#[test]
fn eps_scaling_saves_iterations_at_small_reg() {
    let mut rng = sb_data::SbRng::new(9);
    let a = ndarray::Array2::from_shape_fn((256, 16), |_| rng.normal());
    let b = ndarray::Array2::from_shape_fn((256, 16), |_| rng.normal() + 0.3);
    let c = cost_matrix(a.view(), b.view(), Ground::SquaredEuclidean).unwrap();
    let solve = |eps_scaling| {
        let options = SinkhornOptions {
            tol: 1e-6,
            max_iter: 40_000,
            eps_scaling,
        };
        sinkhorn(None, None, c.view(), 0.1, options).unwrap()
    };
    let (plain, scaled) = (solve(false), solve(true));
    assert!(!plain.converged && plain.iterations == 40_000);
    assert!(scaled.converged, "{}", scaled.marginal_error);
    assert!((plain.cost - scaled.cost).abs() < 1e-6 * scaled.cost);
}

/// Large kernels run on rayon's threads in fixed blocks: the same bits on one thread as on two.
#[test]
fn threads_do_not_change_the_numbers() {
    let mut rng = sb_data::SbRng::new(4);
    let a = ndarray::Array2::from_shape_fn((700, 3), |_| rng.normal());
    let b = ndarray::Array2::from_shape_fn((500, 3), |_| rng.normal() + 0.5);
    let c = cost_matrix(a.view(), b.view(), Ground::SquaredEuclidean).unwrap();
    let solve = |threads| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| sinkhorn(None, None, c.view(), 0.5, SinkhornOptions::default()).unwrap())
    };
    let (one, two) = (solve(1), solve(2));
    assert!(one.converged);
    assert_eq!(one.iterations, two.iterations);
    assert_eq!(one.cost.to_bits(), two.cost.to_bits());
    assert!(one
        .plan
        .iter()
        .zip(&two.plan)
        .all(|(x, y)| x.to_bits() == y.to_bits()));
}
