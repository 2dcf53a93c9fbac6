//! Sinkhorn against POT's log-domain solver (tests/fixtures/sinkhorn_reference.json, made by
//! tests/fixtures/make_sinkhorn.py).

use sb_eval::{cost_matrix, sinkhorn, Ground, SinkhornOptions};

mod common;
use common::{fixtures, load};

/// The transport cost ⟨P, C⟩ to 1e-7 relative and the first row of the plan to 1e-7 of its
/// largest entry, for regularisations from 0.1 to 2.
#[test]
fn agrees_with_pot() {
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
        };
        let got = sinkhorn(None, None, c.view(), reg, options).unwrap();
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
}
