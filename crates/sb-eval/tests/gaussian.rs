//! The closed-form Gaussian bridge and the BW2²-UVP family against SciPy references.

use std::fs::File;
use std::path::{Path, PathBuf};

use ndarray::{s, Array1, Array2};
use ndarray_npy::NpzReader;
use proptest::prelude::*;
use sb_data::SbRng;
use sb_eval::{bw2_uvp, gaussian_kl, GaussianBridge};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn rel_err(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
    let diff = (a - b).mapv(|v| v * v).sum().sqrt();
    diff / b.mapv(|v| v * v).sum().sqrt()
}

/// C and Σ_t for d ∈ {2, 16, 64}, ε ∈ {0.1, 1, 10}, t ∈ {0.25, 0.5, 0.75}, to 1e-8 relative
/// (Frobenius), against tests/fixtures/gaussian_sb_reference.npz.
#[test]
fn closed_form_agrees_with_reference() {
    let mut npz =
        NpzReader::new(File::open(fixtures().join("gaussian_sb_reference.npz")).unwrap()).unwrap();
    let mut get2 = |k: &str| -> Array2<f64> { npz.by_name(k).unwrap() };
    let mut checked = 0;
    for d in [2, 16, 64] {
        let sigma0 = get2(&format!("d{d}_Sigma0"));
        let sigma1 = get2(&format!("d{d}_Sigma1"));
        let mut npz1 =
            NpzReader::new(File::open(fixtures().join("gaussian_sb_reference.npz")).unwrap())
                .unwrap();
        let mu0: Array1<f64> = npz1.by_name(&format!("d{d}_mu0")).unwrap();
        let mu1: Array1<f64> = npz1.by_name(&format!("d{d}_mu1")).unwrap();
        for eps in ["0.1", "1", "10"] {
            let e: f64 = eps.parse().unwrap();
            let g =
                GaussianBridge::new(mu0.clone(), sigma0.clone(), mu1.clone(), sigma1.clone(), e)
                    .unwrap();
            let c = get2(&format!("d{d}_eps{eps}_C"));
            let err = rel_err(g.cross_covariance(), &c);
            assert!(err < 1e-8, "d{d} eps{eps} C: relative error {err:e}");
            for t in ["0.25", "0.5", "0.75"] {
                let want = get2(&format!("d{d}_eps{eps}_Sigma_t{t}"));
                let (_, got) = g.marginal(t.parse().unwrap());
                let err = rel_err(&got, &want);
                assert!(err < 1e-8, "d{d} eps{eps} Σ_t{t}: relative error {err:e}");
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 27);
}

/// BW2²-UVP of the fixture samples, to 1e-9 relative (tests/fixtures/bw_uvp_reference.json).
#[test]
fn bw_uvp_agrees_with_reference() {
    let text = std::fs::read_to_string(fixtures().join("bw_uvp_reference.json")).unwrap();
    let reference: serde_json::Value = serde_json::from_str(&text).unwrap();
    for case in reference["cases"].as_array().unwrap() {
        let load = |k: &str| {
            sb_data::read_points(&fixtures().join(case[k].as_str().unwrap()), None).unwrap()
        };
        let samples = load("samples");
        let mean = load("mean").column(0).to_owned();
        let cov = load("cov");
        let got = bw2_uvp(samples.view(), mean.view(), &cov).unwrap();
        let want = case["bw2_uvp_percent"].as_f64().unwrap();
        assert!(
            (got - want).abs() < 1e-9 * want,
            "{}: {got} vs {want}",
            case["samples"]
        );
    }
}

fn random_spd(d: usize, rng: &mut SbRng) -> Array2<f64> {
    let w = Array2::from_shape_fn((d, d), |_| rng.normal());
    w.dot(&w.t()) + Array2::<f64>::eye(d) * 0.5
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// The plan's precision matrix has off-diagonal block −I/ε.
    #[test]
    fn plan_precision_off_diagonal_is_minus_identity_over_eps(d in 1usize..6, eps in 0.05f64..5.0, seed in 0u64..10_000) {
        let mut rng = SbRng::new(seed);
        let (s0, s1) = (random_spd(d, &mut rng), random_spd(d, &mut rng));
        let g = GaussianBridge::new(Array1::zeros(d), s0, Array1::zeros(d), s1, eps).unwrap();
        let precision = sb_eval::linalg::inv_pd(&g.plan_covariance()).unwrap();
        let block = precision.slice(s![..d, d..]);
        let scale = precision.iter().fold(1.0f64, |m, v| m.max(v.abs()));
        for ((i, j), v) in block.indexed_iter() {
            let want = if i == j { -1.0 / eps } else { 0.0 };
            prop_assert!((v - want).abs() < 1e-7 * scale, "({}, {}): {} vs {}", i, j, v, want);
        }
    }

    /// Exact samplers: the plan's empirical cross-covariance and the marginal's moments match.
    #[test]
    fn exact_samplers_match_their_moments(seed in 0u64..1000) {
        let mut rng = SbRng::new(seed);
        let d = 2;
        let (s0, s1) = (random_spd(d, &mut rng), random_spd(d, &mut rng));
        let g = GaussianBridge::new(Array1::zeros(d), s0, Array1::ones(d), s1, 1.0).unwrap();
        let n = 40_000;
        let x = g.sample_marginal(0.5, n, &mut rng).unwrap();
        let (m, c) = g.marginal(0.5);
        let mh = sb_eval::summary::mean(x.view()).unwrap();
        let ch = sb_eval::summary::covariance(x.view()).unwrap();
        // KL between fitted and exact is O(d²/n) for exact draws.
        let kl = gaussian_kl(mh.view(), &ch, m.view(), &c).unwrap();
        prop_assert!(kl < 5e-3, "KL {}", kl);
        let (x0, x1) = g.sample_plan(n, &mut rng).unwrap();
        let cross = (&x0 - &x0.mean_axis(ndarray::Axis(0)).unwrap()).t().dot(&(&x1 - &x1.mean_axis(ndarray::Axis(0)).unwrap())) / (n - 1) as f64;
        let err = (&cross - g.cross_covariance()).mapv(f64::abs).sum();
        let scale = g.cross_covariance().mapv(f64::abs).sum().max(0.1);
        prop_assert!(err < 0.1 * scale + 0.05, "cross-covariance {} vs {}", cross, g.cross_covariance());
    }
}

/// cBW2²-UVP: exact conditional draws score near zero; draws that ignore the conditioning
/// (from the marginal π1) score far higher.
#[test]
fn cbw_uvp_separates_exact_from_unconditional() {
    let mut rng = SbRng::new(4);
    let d = 3;
    let (s0, s1) = (random_spd(d, &mut rng), random_spd(d, &mut rng));
    let g = GaussianBridge::new(Array1::zeros(d), s0, Array1::ones(d), s1.clone(), 0.5).unwrap();
    let inputs = g.sample_marginal(0.0, 20, &mut rng).unwrap();
    let mut exact = Vec::new();
    let mut blind = Vec::new();
    for x in inputs.rows() {
        let (m, c) = g.conditional(x);
        exact.push((
            sb_eval::gaussian_draws(&m, &c, 2000, &mut rng).unwrap(),
            m.clone(),
            c.clone(),
        ));
        blind.push((g.sample_marginal(1.0, 2000, &mut rng).unwrap(), m, c));
    }
    let view = |v: &Vec<(Array2<f64>, Array1<f64>, Array2<f64>)>| -> f64 {
        let items: Vec<_> = v.iter().map(|(s, m, c)| (s.view(), m.view(), c)).collect();
        sb_eval::cbw2_uvp(&items, s1.diag().sum()).unwrap()
    };
    let (good, bad) = (view(&exact), view(&blind));
    assert!(good < 1.0, "exact conditionals: {good}%");
    assert!(
        bad > 10.0 * good.max(0.1),
        "unconditional draws: {bad}% vs {good}%"
    );
}
