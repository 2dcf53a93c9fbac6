//! End-to-end: `sb run` writes a reproducible run directory, `sb sample` uses it.

use clap::CommandFactory;
use sb_cli::run::{run, RunOptions};
use sb_cli::sample::{sample, SampleOptions};
use sb_tests::{values, write, TINY};

fn run_tiny(dir: &std::path::Path, out: &str, seed: Option<u64>) -> std::path::PathBuf {
    let exp = write(dir, "tiny.yaml", TINY);
    let options = RunOptions {
        out: Some(dir.join(out)),
        seed,
        quiet: true,
        ..RunOptions::default()
    };
    run(&exp, &options).expect("tiny run").0
}

#[test]
fn same_seed_same_results_different_seed_different() {
    let tmp = tempfile::tempdir().unwrap();
    let a = values(&run_tiny(tmp.path(), "a", None));
    let b = values(&run_tiny(tmp.path(), "b", None));
    let c = values(&run_tiny(tmp.path(), "c", Some(4)));
    assert_eq!(
        a.len(),
        2 * 2 * 3,
        "two methods × two directions × three metrics"
    );
    assert_eq!(a, b, "same seed must give identical values");
    for (x, y) in a.iter().zip(&c) {
        assert_eq!((&x.0, &x.1), (&y.0, &y.1));
        assert!((x.3 - y.3).abs() > 0.0, "seed 3 and seed 4 agree on {x:?}");
    }
    let methods: Vec<&str> = a.iter().map(|r| r.0.as_str()).collect();
    assert!(
        methods.contains(&"DSB") && methods.contains(&"DSBM-IPF"),
        "{methods:?}"
    );
}

#[test]
fn run_directory_layout_and_sampling() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = run_tiny(tmp.path(), "run", None);
    for f in ["config.yaml", "results.json", "results.md"] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    let model = dir.join("models/gauss/DSBM-IPF/seed3");
    for f in [
        "model.yaml",
        "forward.safetensors",
        "backward.safetensors",
        "forward.npy",
        "backward.npy",
    ] {
        assert!(model.join(f).is_file(), "{f} missing");
    }
    // Per-pass evaluation: one line per pass, and the run-level chart of W2 against pass.
    let passes = std::fs::read_to_string(model.join("metrics_log.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = passes
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{passes}");
    assert_eq!(
        (lines[1]["pass"].as_u64(), lines[1]["iteration"].as_u64()),
        (Some(2), Some(1))
    );
    assert!(lines.iter().all(|l| l["w2_backward"]
        .as_f64()
        .is_some_and(|v| v.is_finite() && v > 0.0)));
    assert!(dir.join("progress_gauss.png").is_file() && dir.join("progress_gauss.svg").is_file());
    // The pictures are real images, redrawn by `sb plot`.
    let png = std::fs::read(model.join("samples.png")).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
    let svg = std::fs::read_to_string(model.join("samples.svg")).unwrap();
    assert!(
        svg.contains("<svg") && svg.contains("backward: π1 → π0"),
        "svg without its title"
    );
    std::fs::remove_file(model.join("samples.png")).unwrap();
    assert_eq!(
        sb_cli::main_with_args(["sb", "plot", dir.to_str().unwrap()]),
        0
    );
    assert!(model.join("samples.png").is_file());
    // The resolved config is a valid experiment with every default written out.
    let resolved = std::fs::read_to_string(dir.join("config.yaml")).unwrap();
    assert!(
        resolved.contains("steps_per_pass: 20") && resolved.contains("t_epsilon"),
        "{resolved}"
    );

    // Two models in the run: sampling without --model names them.
    let from = dir.join("models/gauss/DSB/seed3/backward.npy");
    let mut opts = SampleOptions {
        run_dir: dir.clone(),
        model: None,
        direction: sb_methods::Direction::Forward,
        from: from.clone(),
        out: tmp.path().join("moved.npy"),
        steps: None,
        seed: 0,
        given: None,
    };
    let err = sample(&opts).unwrap_err().to_string();
    assert!(
        err.contains("holds 2 models") && err.contains("gauss/DSB/seed3"),
        "{err}"
    );

    opts.model = Some("gauss/DSBM-IPF/seed3".into());
    opts.steps = Some(10);
    sample(&opts).expect("sampling with a chosen model");
    let moved = sb_data::read_points(&opts.out, None).unwrap();
    let start = sb_data::read_points(&from, None).unwrap();
    assert_eq!(moved.dim(), start.dim());
    // CSV out writes CSV (the same points, to float32's printed precision); other names are refused.
    let npy_out = opts.out.clone();
    opts.out = tmp.path().join("moved.csv");
    sample(&opts).expect("sampling to CSV");
    let csv = sb_data::read_points(&opts.out, None).unwrap();
    let npy = sb_data::read_points(&npy_out, None).unwrap();
    assert!(
        (&csv - &npy).iter().all(|d| d.abs() < 1e-6),
        "CSV and npy differ"
    );
    opts.out = tmp.path().join("moved.txt");
    let err = sample(&opts).unwrap_err().to_string();
    assert!(err.contains("name a .npy (float32) or .csv file"), "{err}");
    opts.out = npy_out;

    // DSB is tied to its training grid.
    opts.model = Some("gauss/DSB/seed3".into());
    let err = sample(&opts).unwrap_err().to_string();
    assert!(err.contains("tied to the time grid"), "{err}");
}

/// A conditional bridge end to end: trained on an inverse problem, it is saved with its
/// observation size, `sb sample --given` samples x | y, and the observations are checked.
#[test]
fn conditional_bridges_sample_with_given_observations() {
    let tmp = tempfile::tempdir().unwrap();
    let text = TINY
        .replace(
            "    pi0: {kind: gaussian, dim: 2, mean: -1.0, cov: 0.5}\n    pi1: {kind: gaussian, dim: 2, mean: 1.0, cov: 1.0}",
            "    inverse: {prior: {kind: gaussian, dim: 2, mean: 1.0, cov: 1.0}, operator: {kind: partial, observed: 1}, noise: 0.3}",
        )
        .replace("metrics: [w2, w1, mmd]", "metrics: [posterior_cbw_uvp, posterior_mean_uvp]\n  cond_inputs: 4\n  cond_samples: 50");
    let file = write(tmp.path(), "inverse.yaml", &text);
    let (dir, _) = run(
        &file,
        &RunOptions {
            out: Some(tmp.path().join("run")),
            seed: None,
            quiet: true,
            ..RunOptions::default()
        },
    )
    .unwrap();
    let rows = values(&dir);
    for method in [
        "Closed form (optimum)",
        "Prior, y ignored (reference)",
        "DSB",
        "DSBM-IPF",
    ] {
        assert!(
            rows.iter().any(|(m, metric, _, v)| m == method
                && metric == "posterior_cbw_uvp"
                && v.is_finite()),
            "{method}: {rows:?}"
        );
    }
    let model = dir.join("models/gauss/DSBM-IPF/seed3");
    let spec = std::fs::read_to_string(model.join("model.yaml")).unwrap();
    assert!(spec.contains("observation_dim: 1"), "{spec}");
    let z = write_npy(tmp.path(), "z.npy", &ndarray::Array2::<f64>::zeros((30, 2)));
    let y = write_npy(tmp.path(), "y.npy", &ndarray::array![[2.0f64]]);
    let mut opts = SampleOptions {
        run_dir: dir.clone(),
        model: Some("gauss/DSBM-IPF/seed3".into()),
        direction: sb_methods::Direction::Backward,
        from: z.clone(),
        out: tmp.path().join("x.npy"),
        steps: None,
        seed: 0,
        given: Some(y),
    };
    sample(&opts).expect("conditional sampling");
    let x = sb_data::read_points(&opts.out, None).unwrap();
    assert_eq!(x.dim(), (30, 2), "x alone comes back");
    // Without the observations, or with the wrong number of rows, the error says what to pass.
    opts.given = None;
    let err = sample(&opts).unwrap_err().to_string();
    assert!(
        err.contains("--given") && err.contains("1 observed value(s)"),
        "{err}"
    );
    opts.given = Some(write_npy(
        tmp.path(),
        "y3.npy",
        &ndarray::Array2::<f64>::zeros((3, 1)),
    ));
    let err = sample(&opts).unwrap_err().to_string();
    assert!(err.contains("1 or 30 rows"), "{err}");
}

fn write_npy(dir: &std::path::Path, name: &str, a: &ndarray::Array2<f64>) -> std::path::PathBuf {
    let p = dir.join(name);
    ndarray_npy::write_npy(&p, a).unwrap();
    p
}

#[test]
fn existing_results_are_never_overwritten() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = run_tiny(tmp.path(), "run", None);
    let before = std::fs::read_to_string(dir.join("results.json")).unwrap();
    let exp = write(tmp.path(), "tiny.yaml", TINY);
    let err = run(
        &exp,
        &RunOptions {
            out: Some(dir.clone()),
            seed: None,
            quiet: true,
            ..RunOptions::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("already holds a run") && err.contains("--resume"),
        "{err}"
    );
    assert_eq!(
        before,
        std::fs::read_to_string(dir.join("results.json")).unwrap()
    );
}

#[test]
fn bad_experiment_files_name_file_and_key() {
    let tmp = tempfile::tempdir().unwrap();
    let nan = tmp.path().join("nan.npy");
    ndarray_npy::write_npy(&nan, &ndarray::array![[0.0f64, 1.0], [2.0, f64::INFINITY]]).unwrap();
    let empty = tmp.path().join("empty.npy");
    ndarray_npy::write_npy(&empty, &ndarray::Array2::<f64>::zeros((0, 2))).unwrap();
    let cases = [
        ("unknown_key", TINY.replace("lr: 1.0e-3, cache_size: 64}\n  - method: {kind: dsbm", "lr: 1.0e-3, cache_size: 64, speed: 3}\n  - method: {kind: dsbm")),
        ("zero_steps", TINY.replace("{kind: dsb, num_steps: 5}", "{kind: dsb, num_steps: 0}")),
        ("unknown_method", TINY.replace("{kind: dsb, num_steps: 5}", "{kind: sgm}")),
        ("negative_lr", TINY.replace("steps_per_pass: 20, batch_size: 32, lr: 1.0e-3, cache_size: 64}\n  - method: {kind: dsbm", "steps_per_pass: 20, batch_size: 32, lr: -1, cache_size: 64}\n  - method: {kind: dsbm")),
        ("missing_file", TINY.replace("{kind: gaussian, dim: 2, mean: -1.0, cov: 0.5}", "{kind: file, path: /nonexistent/cells.npy}")),
        ("wrong_type", TINY.replace("steps_per_pass: 20, batch_size: 32, lr: 1.0e-3, cache_size: 64}\n  - method: {kind: dsbm", "steps_per_pass: twenty, batch_size: 32, lr: 1.0e-3, cache_size: 64}\n  - method: {kind: dsbm")),
        ("nan_in_data", TINY.replace("{kind: gaussian, dim: 2, mean: -1.0, cov: 0.5}", &format!("{{kind: file, path: {}}}", nan.display()))),
        ("empty_data", TINY.replace("{kind: gaussian, dim: 2, mean: -1.0, cov: 0.5}", &format!("{{kind: file, path: {}}}", empty.display()))),
        ("mismatched_dims", TINY.replace("{kind: gaussian, dim: 2, mean: 1.0, cov: 1.0}", "{kind: gaussian, dim: 3, mean: 1.0, cov: 1.0}")),
        ("negative_sigma", TINY.replace("sigma: 1.0", "sigma: -0.5")),
        ("gaussian_metric_on_data", TINY.replace("{kind: gaussian, dim: 2, mean: -1.0, cov: 0.5}", "{kind: moons}").replace("metrics: [w2, w1, mmd]", "metrics: [w2, kl]")),
        ("pair_and_course", TINY.replace("    pi1: {kind: gaussian, dim: 2, mean: 1.0, cov: 1.0}", "    pi1: {kind: gaussian, dim: 2, mean: 1.0, cov: 1.0}\n    leave_one_out: {course: {kind: differentiation}, held_out: [1]}")),
        ("held_out_at_the_edge", TINY.replace("    pi0: {kind: gaussian, dim: 2, mean: -1.0, cov: 0.5}\n    pi1: {kind: gaussian, dim: 2, mean: 1.0, cov: 1.0}", "    leave_one_out: {course: {kind: differentiation, cells_per_time: 10}, held_out: [5]}")),
        ("held_out_not_observed", TINY.replace("    pi0: {kind: gaussian, dim: 2, mean: -1.0, cov: 0.5}\n    pi1: {kind: gaussian, dim: 2, mean: 1.0, cov: 1.0}", "    leave_one_out: {course: {kind: differentiation, cells_per_time: 10}, held_out: [1.5]}")),
        ("course_absent", TINY.replace("    pi0: {kind: gaussian, dim: 2, mean: -1.0, cov: 0.5}\n    pi1: {kind: gaussian, dim: 2, mean: 1.0, cov: 1.0}", "    leave_one_out: {course: {kind: file, data: /nonexistent/eb/data.npy, labels: /nonexistent/eb/sample_labels.npy}, held_out: [2]}")),
        ("empty_eval_metrics", TINY.replace("metrics: [w2, w1, mmd]", "metrics: []")),
        ("duplicate_seeds", TINY.replace("seeds: [3]", "seeds: [3, 3]")),
        ("empty_name", TINY.replace("name: tiny", "name: \"\"")),
        ("zero_eval_steps", TINY.replace("  samples: 50\n", "  samples: 50\n  steps: [100, 0]\n")),
        ("repeated_eval_steps", TINY.replace("  samples: 50\n", "  samples: 50\n  steps: [20, 20]\n")),
        ("tiny_kl_at", TINY.replace("  samples: 50\n", "  samples: 50\n  kl_at: [1]\n")),
        ("tiny_train_set", TINY.replace("    sigma: 1.0\n", "    sigma: 1.0\n    train_set: 1\n")),
        ("inverse_with_w2", TINY.replace("    pi0: {kind: gaussian, dim: 2, mean: -1.0, cov: 0.5}\n    pi1: {kind: gaussian, dim: 2, mean: 1.0, cov: 1.0}", "    inverse: {prior: {kind: gaussian, dim: 2, mean: 1.0, cov: 1.0}, operator: {kind: partial, observed: 1}, noise: 0.3}")),
        ("inverse_prior_not_gaussian", TINY.replace("    pi0: {kind: gaussian, dim: 2, mean: -1.0, cov: 0.5}\n    pi1: {kind: gaussian, dim: 2, mean: 1.0, cov: 1.0}", &"    inverse: {prior: {kind: gaussian, dim: 2, mean: 1.0, cov: 1.0}, operator: {kind: partial, observed: 1}, noise: 0.3}".replace("{kind: gaussian, dim: 2, mean: 1.0, cov: 1.0}", "{kind: moons}")).replace("metrics: [w2, w1, mmd]", "metrics: [posterior_cbw_uvp]")),
        ("inverse_observed_too_many", TINY.replace("    pi0: {kind: gaussian, dim: 2, mean: -1.0, cov: 0.5}\n    pi1: {kind: gaussian, dim: 2, mean: 1.0, cov: 1.0}", &"    inverse: {prior: {kind: gaussian, dim: 2, mean: 1.0, cov: 1.0}, operator: {kind: partial, observed: 1}, noise: 0.3}".replace("observed: 1", "observed: 3")).replace("metrics: [w2, w1, mmd]", "metrics: [posterior_cbw_uvp]")),
        ("posterior_metric_on_pair", TINY.replace("metrics: [w2, w1, mmd]", "metrics: [w2, posterior_mean_uvp]")),
        ("inverse_with_a_peer", TINY.replace("    pi0: {kind: gaussian, dim: 2, mean: -1.0, cov: 0.5}\n    pi1: {kind: gaussian, dim: 2, mean: 1.0, cov: 1.0}", "    inverse: {prior: {kind: gaussian, dim: 2, mean: 1.0, cov: 1.0}, operator: {kind: partial, observed: 1}, noise: 0.3}").replace("metrics: [w2, w1, mmd]", "metrics: [posterior_cbw_uvp]").replace("{kind: dsb, num_steps: 5}", "{kind: ot_cfm}")),
        ("class_gap_without_labels", TINY.replace("metrics: [w2, w1, mmd]", "metrics: [w2, class_gap]")),
        ("labels_on_a_gaussian_end", TINY.replace("    sigma: 1.0\n", "    sigma: 1.0\n    labels: labels.npy\n")),
        ("gaussian_row_without_split", TINY.replace("    sigma: 1.0\n", "    sigma: 1.0\n    gaussian_row: true\n")),
        ("gaussian_metric_on_a_mixture_prior", TINY.replace("    pi0: {kind: gaussian, dim: 2, mean: -1.0, cov: 0.5}\n    pi1: {kind: gaussian, dim: 2, mean: 1.0, cov: 1.0}", "    inverse: {prior: {kind: mixture, components: [{mean: [0.0, 1.0]}, {mean: [0.0, -1.0]}]}, operator: {kind: partial, observed: 1}, noise: 0.3}").replace("metrics: [w2, w1, mmd]", "metrics: [posterior_cbw_uvp]")),
        ("inverse_with_both_forms", TINY.replace("    pi0: {kind: gaussian, dim: 2, mean: -1.0, cov: 0.5}\n    pi1: {kind: gaussian, dim: 2, mean: 1.0, cov: 1.0}", "    inverse: {prior: {kind: gaussian, dim: 2, mean: 1.0, cov: 1.0}, operator: {kind: partial, observed: 1}, noise: 0.3, observed_columns: [0, 1]}").replace("metrics: [w2, w1, mmd]", "metrics: [posterior_cbw_uvp]")),
        ("inverse_rows_without_split", TINY.replace("    pi0: {kind: gaussian, dim: 2, mean: -1.0, cov: 0.5}\n    pi1: {kind: gaussian, dim: 2, mean: 1.0, cov: 1.0}", "    inverse: {prior: {kind: file, path: rows.npy}, observed_columns: [0, 1]}").replace("metrics: [w2, w1, mmd]", "metrics: [inpaint_rmse]")),
        ("inpaint_metric_on_a_model", TINY.replace("    pi0: {kind: gaussian, dim: 2, mean: -1.0, cov: 0.5}\n    pi1: {kind: gaussian, dim: 2, mean: 1.0, cov: 1.0}", "    inverse: {prior: {kind: gaussian, dim: 2, mean: 1.0, cov: 1.0}, operator: {kind: partial, observed: 1}, noise: 0.3}").replace("metrics: [w2, w1, mmd]", "metrics: [inpaint_rmse]")),
        ("inpaint_agreement_without_labels", TINY.replace("    pi0: {kind: gaussian, dim: 2, mean: -1.0, cov: 0.5}\n    pi1: {kind: gaussian, dim: 2, mean: 1.0, cov: 1.0}", "    inverse: {prior: {kind: file, path: rows.npy}, observed_columns: [0, 1], split: {train: 10, val: 5, test: 5}}").replace("metrics: [w2, w1, mmd]", "metrics: [inpaint_agreement]")),
        ("bad_rotation", TINY.replace("{kind: gaussian, dim: 2, mean: 1.0, cov: 1.0}", "{kind: gaussian, dim: 2, cov: {rotation_seed: 1, scale_min: 2.0, scale_max: 0.5}}")),
    ];
    for (name, text) in cases {
        let file = write(tmp.path(), "bad.yaml", &text);
        let err = run(
            &file,
            &RunOptions {
                out: Some(tmp.path().join(name)),
                seed: None,
                quiet: true,
                ..RunOptions::default()
            },
        )
        .unwrap_err()
        .to_string();
        let err = err.replace(&tmp.path().display().to_string(), "<tmp>");
        insta::assert_snapshot!(name, err);
    }
}

#[test]
fn check_validates_without_running() {
    let tmp = tempfile::tempdir().unwrap();
    let exp = write(tmp.path(), "tiny.yaml", TINY);
    let (parsed, jobs) = sb_cli::run::check(&exp).unwrap();
    assert_eq!((parsed.name.as_str(), jobs), ("tiny", 2));
    let bad = write(
        tmp.path(),
        "bad.yaml",
        &TINY.replace(
            "num_steps: 5}\n    net: {hidden: [16]}\n",
            "num_steps: 5}\n    net: {hidden: [0]}\n",
        ),
    );
    let err = sb_cli::run::check(&bad).unwrap_err().to_string();
    assert!(
        err.contains("methods[0].net.hidden: every width must be ≥ 1"),
        "{err}"
    );
}

#[test]
fn help_texts() {
    let mut cmd = sb_cli::Cli::command();
    insta::assert_snapshot!("help", cmd.render_help().to_string());
    for sub in [
        "run", "report", "check", "plot", "sample", "metric", "bench", "slurm",
    ] {
        let help = cmd
            .find_subcommand_mut(sub)
            .unwrap()
            .render_help()
            .to_string();
        insta::assert_snapshot!(format!("help_{sub}"), help);
    }
}

#[test]
fn slurm_scripts() {
    let tmp = tempfile::tempdir().unwrap();
    let exp = write(tmp.path(), "tiny.yaml", TINY);
    let options = sb_cli::slurm::SlurmOptions {
        jobs: 2,
        out: tmp.path().join("cluster"),
        time: Some("1:00:00".into()),
        partition: Some("short".into()),
        cpus: 4,
        mem: Some("8G".into()),
        sb: Some("/opt/sb/bin/sb".into()),
    };
    let files = sb_cli::slurm::write_scripts(&exp, &options).unwrap();
    let root = tmp.path().canonicalize().unwrap().display().to_string();
    for (name, path) in [
        ("slurm_array", &files.array),
        ("slurm_merge", &files.merge),
        ("slurm_submit", &files.submit),
    ] {
        let text = std::fs::read_to_string(path)
            .unwrap()
            .replace(&root, "<tmp>");
        insta::assert_snapshot!(name, text);
    }
    let too_many = sb_cli::slurm::SlurmOptions { jobs: 3, ..options };
    let e = sb_cli::slurm::write_scripts(&exp, &too_many)
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "--jobs 3: the experiment has 2 job(s), so 1 ≤ --jobs ≤ 2"
    );
}

mod metric {
    use ndarray::array;
    use sb_cli::metric::{bw_uvp, wasserstein, BwTarget};
    use std::path::Path;

    fn fixture(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../crates/sb-eval/tests/fixtures")
            .join(name)
    }

    #[test]
    fn json_lines() {
        let line = wasserstein(
            &fixture("w_5d_300x500_a.npy"),
            &fixture("w_5d_300x500_b.npy"),
            false,
        )
        .unwrap();
        assert_eq!(
            (line.metric, line.n, line.m, line.converged),
            ("w1", 300, Some(500), Some(true))
        );
        assert!(
            (line.value - 1.6109394673776158).abs() < 1e-9 * 1.61,
            "POT's value"
        );
        let text = serde_json::to_string(&line).unwrap();
        assert!(
            text.starts_with(r#"{"metric":"w1","value":1.61093946737761"#),
            "{text}"
        );
        let bw = bw_uvp(
            &fixture("bw_uvp_d2_samples.npy"),
            &BwTarget::Moments {
                mean: fixture("bw_uvp_d2_mean.npy"),
                cov: fixture("bw_uvp_d2_cov.npy"),
            },
        )
        .unwrap();
        assert_eq!(
            serde_json::to_value(&bw).unwrap()["m"],
            serde_json::Value::Null
        );
        assert!((bw.value - 3.6375732044428424).abs() < 1e-9 * 3.64);
        // `sb metric sinkhorn` against POT's log-domain Sinkhorn (sinkhorn_reference.json).
        let text = std::fs::read_to_string(fixture("sinkhorn_reference.json")).unwrap();
        let reference: serde_json::Value = serde_json::from_str(&text).unwrap();
        let case = &reference["cases"][0];
        let line = sb_cli::metric::sinkhorn(
            &fixture(case["a"].as_str().unwrap()),
            &fixture(case["b"].as_str().unwrap()),
            case["reg"].as_f64().unwrap(),
            1e-11,
        )
        .unwrap();
        let want = case["cost"].as_f64().unwrap();
        assert!(
            (line.value - want).abs() < 1e-7 * want,
            "{} vs {want}",
            line.value
        );
        let json = serde_json::to_value(&line).unwrap();
        assert_eq!(json["converged"], serde_json::Value::Bool(true));
        assert!(
            json["iterations"].as_u64().unwrap() > 0
                && json["marginal_error"].as_f64().unwrap() < 1e-11
        );
    }

    #[test]
    fn bad_inputs_give_one_clear_error() {
        let tmp = tempfile::tempdir().unwrap();
        let nan = tmp.path().join("nan.npy");
        ndarray_npy::write_npy(&nan, &array![[0.0f32, 1.0], [f32::NAN, 2.0]]).unwrap();
        let empty = tmp.path().join("empty.npy");
        ndarray_npy::write_npy(&empty, &ndarray::Array2::<f64>::zeros((0, 2))).unwrap();
        let ok = tmp.path().join("ok.npy");
        ndarray_npy::write_npy(&ok, &array![[0.0f64, 1.0], [1.0, 2.0]]).unwrap();
        let three = tmp.path().join("three.npy");
        ndarray_npy::write_npy(&three, &array![[0.0f64, 1.0, 2.0]]).unwrap();
        let ints = tmp.path().join("ints.npy");
        ndarray_npy::write_npy(&ints, &array![[1i64, 2]]).unwrap();
        let zero_mean = tmp.path().join("mean.npy");
        ndarray_npy::write_npy(&zero_mean, &array![0.0f64, 0.0]).unwrap();
        let indefinite = tmp.path().join("indefinite.npy");
        ndarray_npy::write_npy(&indefinite, &array![[1.0f64, 2.0], [2.0, 1.0]]).unwrap();
        let moments = |cov: &Path| BwTarget::Moments {
            mean: zero_mean.clone(),
            cov: cov.to_path_buf(),
        };
        let cases = [
            // Issue 13: a covariance that is not positive semi-definite gave a value.
            ("metric_not_psd", bw_uvp(&ok, &moments(&indefinite))),
            ("metric_nan", wasserstein(&nan, &ok, true)),
            ("metric_empty", wasserstein(&ok, &empty, true)),
            ("metric_dims", wasserstein(&ok, &three, false)),
            ("metric_dtype", wasserstein(&ints, &ok, false)),
            (
                "metric_missing",
                wasserstein(&tmp.path().join("none.npy"), &ok, false),
            ),
        ];
        for (name, result) in cases {
            let err = result
                .unwrap_err()
                .to_string()
                .replace(&tmp.path().display().to_string(), "<tmp>");
            insta::assert_snapshot!(name, err);
        }
    }
}
