//! Exact W1/W2 against POT's values, and the identities a Wasserstein distance must satisfy.

use ndarray::{Array2, Axis};
use proptest::prelude::*;
use sb_data::SbRng;
use sb_eval::{cost_matrix, emd, emd_points, w1, w2, CostStorage, EmdOptions, Ground};

mod common;
use common::{fixtures, load};

/// POT 0.9.7 `ot.emd2` values (tests/fixtures/wasserstein_reference.json), to 1e-9 relative.
#[test]
fn agrees_with_pot() {
    let text = std::fs::read_to_string(fixtures().join("wasserstein_reference.json")).unwrap();
    let reference: serde_json::Value = serde_json::from_str(&text).unwrap();
    let cases = reference["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 4);
    for case in cases {
        let a = load(case["a"].as_str().unwrap());
        let b = load(case["b"].as_str().unwrap());
        for (name, got) in [
            ("w1", w1(a.view(), b.view()).unwrap()),
            ("w2", w2(a.view(), b.view()).unwrap()),
        ] {
            let want = case[name].as_f64().unwrap();
            assert!(got.transport.converged);
            let rel = (got.value - want).abs() / want;
            assert!(
                rel < 1e-9,
                "{} {name}: {} vs POT {want} (rel {rel:e})",
                case["a"],
                got.value
            );
        }
    }
}

/// Exact OT with costs computed from the points (no dense matrix) against POT's values.
#[test]
fn costs_on_the_fly_agree_with_pot() {
    let text = std::fs::read_to_string(fixtures().join("wasserstein_reference.json")).unwrap();
    let reference: serde_json::Value = serde_json::from_str(&text).unwrap();
    for case in reference["cases"].as_array().unwrap() {
        let a = load(case["a"].as_str().unwrap());
        let b = load(case["b"].as_str().unwrap());
        for (name, ground) in [("w1", Ground::Euclidean), ("w2", Ground::SquaredEuclidean)] {
            let t = emd_points(a.view(), b.view(), ground, EmdOptions::default()).unwrap();
            assert!(t.converged);
            assert_eq!(t.costs, CostStorage::OnTheFly);
            let got = if name == "w2" { t.cost.sqrt() } else { t.cost };
            let want = case[name].as_f64().unwrap();
            let rel = (got - want).abs() / want;
            assert!(rel < 1e-9, "{} {name}: {got} vs POT {want}", case["a"]);
        }
    }
}

/// Asserts that `t` is optimal for the costs `c` with uniform weights: a basic plan with the
/// right marginals, potentials dual feasible on every pair, complementary slackness and a zero
/// duality gap.
fn certify(t: &sb_eval::Transport, c: &Array2<f64>) {
    let (n, m) = c.dim();
    assert!(t.converged);
    assert!(
        t.plan.len() < n + m,
        "a basic solution has at most n + m − 1 entries"
    );
    let mut rows = vec![0.0; n];
    let mut cols = vec![0.0; m];
    for &(i, j, p) in &t.plan {
        rows[i] += p;
        cols[j] += p;
    }
    assert!(rows.iter().all(|r| (r - 1.0 / n as f64).abs() < 1e-12));
    assert!(cols.iter().all(|r| (r - 1.0 / m as f64).abs() < 1e-12));
    let (alpha, beta) = &t.potentials;
    let scale = c.iter().fold(1e-300f64, |x, v| x.max(*v));
    for i in 0..n {
        for j in 0..m {
            assert!(
                alpha[i] + beta[j] <= c[[i, j]] + 1e-9 * scale,
                "dual infeasible at ({i}, {j})"
            );
        }
    }
    for &(i, j, _) in &t.plan {
        assert!((alpha[i] + beta[j] - c[[i, j]]).abs() < 1e-9 * scale);
    }
    let dual: f64 = alpha.iter().sum::<f64>() / n as f64 + beta.iter().sum::<f64>() / m as f64;
    assert!((dual - t.cost).abs() < 1e-9 * scale);
}

/// Marginals, complementary slackness and a zero duality gap on the 5-D fixture, for the
/// dense matrix and for costs on the fly (whose candidate lists start at one neighbour, so
/// the scans of all arcs do most of the work).
#[test]
fn plan_and_potentials_certify_optimality() {
    let (a, b) = (load("w_5d_300x500_a.npy"), load("w_5d_300x500_b.npy"));
    let c = cost_matrix(a.view(), b.view(), Ground::SquaredEuclidean).unwrap();
    certify(
        &emd(None, None, c.view(), EmdOptions::default()).unwrap(),
        &c,
    );
    for k in [1, 32] {
        let options = EmdOptions {
            neighbours: Some(k),
            ..EmdOptions::default()
        };
        let t = emd_points(a.view(), b.view(), Ground::SquaredEuclidean, options).unwrap();
        assert!(t.scans >= 1);
        certify(&t, &c);
    }
}

/// Clouds spanning several tiles of sinks, in clusters far apart (so whole tiles are skipped
/// by their bounding balls): costs on the fly reach the dense path's optimum, certified.
#[test]
fn tiles_skipped_by_their_balls_lose_no_arc() {
    let mut rng = SbRng::new(7);
    let clustered = |rng: &mut SbRng, n: usize| {
        Array2::from_shape_fn((n, 3), |(i, k)| {
            rng.normal() * 0.3 + if k == 0 { 8.0 * (i % 4) as f64 } else { 0.0 }
        })
    };
    let (a, b) = (clustered(&mut rng, 700), clustered(&mut rng, 1100));
    for ground in [Ground::Euclidean, Ground::SquaredEuclidean] {
        let c = cost_matrix(a.view(), b.view(), ground).unwrap();
        let dense = emd(None, None, c.view(), EmdOptions::default()).unwrap();
        for k in [1, 8] {
            let options = EmdOptions {
                neighbours: Some(k),
                ..EmdOptions::default()
            };
            let fly = emd_points(a.view(), b.view(), ground, options).unwrap();
            assert!((dense.cost - fly.cost).abs() <= 1e-12 * dense.cost);
            certify(&fly, &c);
        }
    }
}

#[test]
fn an_iteration_cap_is_reported_not_hidden() {
    let (a, b) = (load("w_2d_200_a.npy"), load("w_2d_200_b.npy"));
    let c = cost_matrix(a.view(), b.view(), Ground::Euclidean).unwrap();
    let t = emd(
        None,
        None,
        c.view(),
        EmdOptions {
            max_pivots: Some(10),
            ..EmdOptions::default()
        },
    )
    .unwrap();
    assert!(!t.converged);
    assert_eq!(t.pivots, 10);
}

fn cloud(rng: &mut SbRng, n: usize, d: usize, shift: f64) -> Array2<f64> {
    Array2::from_shape_fn((n, d), |_| rng.normal() + shift)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Costs computed from the points give the dense path's optimum: the same cost (to
    /// rounding; the costs are bitwise equal but the pivots differ) and a certified plan, for
    /// both grounds, unequal sizes, few or many candidate neighbours, and coordinates on a
    /// coarse grid (many ties, many optimal plans).
    #[test]
    fn costs_on_the_fly_equal_the_dense_path(
        n in 1usize..40, m in 1usize..40, d in 1usize..4, seed in 0u64..10_000, coarse in proptest::bool::ANY,
        k in 1usize..6,
    ) {
        let mut rng = SbRng::new(seed);
        let mut a = cloud(&mut rng, n, d, 0.0);
        let mut b = cloud(&mut rng, m, d, 0.5);
        if coarse {
            a.mapv_inplace(f64::round);
            b.mapv_inplace(f64::round);
        }
        for ground in [Ground::Euclidean, Ground::SquaredEuclidean] {
            let c = cost_matrix(a.view(), b.view(), ground).unwrap();
            let dense = emd(None, None, c.view(), EmdOptions::default()).unwrap();
            let options = EmdOptions { neighbours: Some(k), ..EmdOptions::default() };
            let fly = emd_points(a.view(), b.view(), ground, options).unwrap();
            let scale = c.iter().fold(1.0f64, |x, v| x.max(*v));
            prop_assert!((dense.cost - fly.cost).abs() <= 1e-12 * scale, "{} vs {}", dense.cost, fly.cost);
            certify(&fly, &c);
            prop_assert_eq!((dense.costs, fly.costs), (CostStorage::Dense, CostStorage::OnTheFly));
        }
    }

    /// W1 is a metric on empirical measures: zero on identical clouds, symmetric, and
    /// satisfies the triangle inequality; it is translation equivariant
    /// (W1(a + s, b + s) = W1(a, b)).
    #[test]
    fn w1_is_a_metric(n in 1usize..25, m in 1usize..25, k in 1usize..25, d in 1usize..4, seed in 0u64..10_000) {
        let mut rng = SbRng::new(seed);
        let (a, b, c) = (cloud(&mut rng, n, d, 0.0), cloud(&mut rng, m, d, 1.0), cloud(&mut rng, k, d, -0.5));
        let ab = w1(a.view(), b.view()).unwrap().value;
        let ba = w1(b.view(), a.view()).unwrap().value;
        let bc = w1(b.view(), c.view()).unwrap().value;
        let ac = w1(a.view(), c.view()).unwrap().value;
        prop_assert!(w1(a.view(), a.view()).unwrap().value.abs() < 1e-12);
        prop_assert!((ab - ba).abs() < 1e-12 * (1.0 + ab));
        prop_assert!(ac <= ab + bc + 1e-12 * (1.0 + ac));
        let s = ndarray::Array1::from_shape_fn(d, |_| rng.normal() * 3.0);
        let moved = w1((&a + &s).view(), (&b + &s).view()).unwrap().value;
        prop_assert!((moved - ab).abs() < 1e-9 * (1.0 + ab));
    }

    /// In 1-D with equal sizes, W1 and W2 pair the sorted samples.
    #[test]
    fn one_dimension_is_sorting(n in 1usize..60, seed in 0u64..10_000) {
        let mut rng = SbRng::new(seed);
        let (a, b) = (cloud(&mut rng, n, 1, 0.0), cloud(&mut rng, n, 1, 0.7));
        let mut sa: Vec<f64> = a.iter().copied().collect();
        let mut sb: Vec<f64> = b.iter().copied().collect();
        sa.sort_by(f64::total_cmp);
        sb.sort_by(f64::total_cmp);
        let want1: f64 = sa.iter().zip(&sb).map(|(x, y)| (x - y).abs()).sum::<f64>() / n as f64;
        let want2: f64 = (sa.iter().zip(&sb).map(|(x, y)| (x - y).powi(2)).sum::<f64>() / n as f64).sqrt();
        prop_assert!((w1(a.view(), b.view()).unwrap().value - want1).abs() < 1e-12 * (1.0 + want1));
        prop_assert!((w2(a.view(), b.view()).unwrap().value - want2).abs() < 1e-12 * (1.0 + want2));
    }

    /// On equal sizes, exact OT equals the independent assignment solver (Hungarian method).
    #[test]
    fn equals_the_assignment_solver(n in 1usize..40, d in 1usize..6, seed in 0u64..10_000) {
        let mut rng = SbRng::new(seed);
        let (a, b) = (cloud(&mut rng, n, d, 0.0), cloud(&mut rng, n, d, 0.5));
        let c = cost_matrix(a.view(), b.view(), Ground::SquaredEuclidean).unwrap();
        let ours = emd(None, None, c.view(), EmdOptions::default()).unwrap().cost;
        let hungarian = sb_eval::assignment::solve(&c).cost / n as f64;
        prop_assert!((ours - hungarian).abs() < 1e-10 * (1.0 + ours), "{} vs {}", ours, hungarian);
    }

    /// Given weights: moving all mass of a point to another cloud costs the weighted distances.
    #[test]
    fn given_weights_to_a_single_point(n in 1usize..20, seed in 0u64..10_000) {
        let mut rng = SbRng::new(seed);
        let a = cloud(&mut rng, n, 2, 0.0);
        let w: Vec<f64> = (0..n).map(|_| rng.uniform() + 0.1).collect();
        let total: f64 = w.iter().sum();
        let target = a.mean_axis(Axis(0)).unwrap().insert_axis(Axis(0));
        let c = cost_matrix(a.view(), target.view(), Ground::Euclidean).unwrap();
        let t = emd(Some(&w), Some(&[total]), c.view(), EmdOptions::default()).unwrap();
        let want: f64 = (0..n).map(|i| w[i] * c[[i, 0]]).sum();
        prop_assert!((t.cost - want).abs() < 1e-12 * (1.0 + want));
    }
}

/// A case the property test found (n = 52, seed 410): with a pricing tolerance scaled to the
/// artificial arcs' cost (1e-12 × 5,200 here) the simplex stopped 2e-11 above the sorted
/// pairing's cost. It must reach it to rounding.
#[test]
fn a_near_optimal_basis_is_not_taken_for_the_optimum() {
    let mut rng = SbRng::new(410);
    let n = 52;
    let (a, b) = (cloud(&mut rng, n, 1, 0.0), cloud(&mut rng, n, 1, 0.7));
    let mut sa: Vec<f64> = a.iter().copied().collect();
    let mut sb: Vec<f64> = b.iter().copied().collect();
    sa.sort_by(f64::total_cmp);
    sb.sort_by(f64::total_cmp);
    let want: f64 = sa
        .iter()
        .zip(&sb)
        .map(|(x, y)| (x - y).powi(2))
        .sum::<f64>()
        / n as f64;
    let c = cost_matrix(a.view(), b.view(), Ground::SquaredEuclidean).unwrap();
    let got = emd(None, None, c.view(), EmdOptions::default()).unwrap();
    assert!(got.converged);
    assert!((got.cost - want).abs() < 1e-14, "{} vs {want}", got.cost);
}
