//! The benchmark suites: sharded runs merge into the unsharded table, and every quick tier
//! in `experiments/quick/` runs end to end (the smoke test of each suite's protocol).

use std::path::{Path, PathBuf};

use sb_cli::jobs::Shard;
use sb_cli::report::report;
use sb_cli::run::{run, RunOptions};
use sb_cli::table::Line;
use sb_tests::write;

/// Two problems of different protocols (a Gaussian one with closed-form metrics and a
/// leave-one-out time course with reference rows), two methods, two seeds.
const SWEEP: &str = "
name: sweep
seeds: [1, 2]
problems:
  - name: gauss
    sigma: 1.0
    pi0: {kind: gaussian, dim: 2, mean: -0.5}
    pi1: {kind: gaussian, dim: 2, mean: 0.5, cov: {rotation_seed: 2, scale_min: 0.5, scale_max: 2.0}}
    metrics: [w2, kl, cross_cov, bw_uvp, bw_uvp_mid, cbw_uvp]
    published:
      DSBM-IPF: {kl_e-3: 1.0}
  - name: course
    sigma: 0.5
    leave_one_out:
      course: {kind: differentiation, cells_per_time: 60, times: [0, 1, 2.5, 3], seed: 4}
      held_out: [1, 2.5]
    metrics: [w1, w2]
methods:
  - method: {kind: dsb, num_steps: 4}
    net: {hidden: [16]}
    train: {passes: 2, steps_per_pass: 10, batch_size: 32, lr: 1.0e-3, cache_size: 64}
  - method: {kind: dsbm, num_steps: 4, first_coupling: reference}
    net: {hidden: [16]}
    train: {passes: 2, steps_per_pass: 10, batch_size: 32, lr: 1.0e-3, cache_size: 64}
eval:
  samples: 40
  kl_samples: 200
  cond_inputs: 5
  cond_samples: 20
";

fn options(out: PathBuf, shard: Option<Shard>) -> RunOptions {
    RunOptions {
        out: Some(out),
        quiet: true,
        shard,
        ..RunOptions::default()
    }
}

/// The table without wall times (the only thing allowed to differ between runs).
fn timeless(lines: &[Line]) -> Vec<Line> {
    lines
        .iter()
        .map(|l| Line {
            wall_s: None,
            ..l.clone()
        })
        .collect()
}

#[test]
fn shards_merge_into_the_unsharded_table() {
    let tmp = tempfile::tempdir().unwrap();
    let exp = write(tmp.path(), "sweep.yaml", SWEEP);
    let (whole, rows) = run(&exp, &options(tmp.path().join("whole"), None)).unwrap();
    let mut shards = Vec::new();
    for index in 0..3 {
        let shard = Shard { index, count: 3 };
        let dir = tmp.path().join(format!("shard{index}"));
        run(&exp, &options(dir.clone(), Some(shard))).unwrap();
        shards.push(dir);
    }
    let merged = report(&shards).unwrap();
    let alone = report(std::slice::from_ref(&whole)).unwrap();
    assert!(merged.missing.is_empty(), "{:?}", merged.missing);
    assert_eq!(merged.rows.len(), rows.len());
    assert_eq!(timeless(&merged.lines), timeless(&alone.lines));
    // Every protocol is in the table: closed-form metrics, the optimum, leave-one-out means
    // over both held-out times, both reference rows, and the published value.
    let has = |benchmark: &str, method: &str, metric: &str| {
        merged
            .lines
            .iter()
            .any(|l| l.benchmark == benchmark && l.method == method && l.metric == metric)
    };
    for metric in [
        "w2_forward",
        "kl_e-3",
        "cross_cov",
        "bw_uvp_backward",
        "bw_uvp_mid",
        "cbw_uvp",
    ] {
        assert!(has("gauss", "DSBM-IPF", metric), "{metric}");
    }
    assert!(has("gauss", "Closed form (optimum)", "cross_cov"));
    for b in ["course t=1", "course t=2.5", "course"] {
        assert!(has(b, "DSB", "w1") && has(b, "DSB", "w2"), "{b}");
        assert!(has(b, "OT interpolation (reference)", "w1"), "{b}");
        assert!(has(b, "Previous time (reference)", "w2"), "{b}");
    }
    let kl = merged
        .lines
        .iter()
        .find(|l| l.benchmark == "gauss" && l.method == "DSBM-IPF" && l.metric == "kl_e-3")
        .unwrap();
    assert_eq!((kl.seeds, kl.published), (2, Some(1.0)));

    // Leave-one-out models keep their prediction and a picture of it against the held-out cells.
    let model = whole.join("models/course-t-2.5/DSB/seed1");
    for f in [
        "predicted.npy",
        "held_out.npy",
        "prediction.png",
        "prediction.svg",
    ] {
        assert!(model.join(f).is_file(), "{f}");
    }
    let png = std::fs::read(model.join("prediction.png")).unwrap();
    assert_eq!(&png[..4], b"\x89PNG");

    // A missing shard is reported, not silently averaged over.
    let partial = report(&shards[..2]).unwrap();
    assert!(!partial.missing.is_empty());
}

#[test]
fn report_refuses_different_experiments() {
    let tmp = tempfile::tempdir().unwrap();
    let a = write(tmp.path(), "a.yaml", sb_tests::TINY);
    let b = write(
        tmp.path(),
        "b.yaml",
        &sb_tests::TINY.replace("mean: 1.0", "mean: 2.0"),
    );
    let (da, _) = run(&a, &options(tmp.path().join("a"), None)).unwrap();
    let (db, _) = run(&b, &options(tmp.path().join("b"), None)).unwrap();
    let e = report(&[da, db]).unwrap_err().to_string();
    assert!(e.contains("hold different experiments"), "{e}");
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Runs one quick tier of `experiments/quick/`, writing its run directory in a temporary
/// folder.
fn quick(name: &str) -> Vec<Line> {
    quick_file(
        &format!("experiments/quick/{name}.yaml"),
        &format!("{name}-quick"),
    )
}

/// Runs the quick tier `path` (from the repository root), whose experiment is called `name`.
fn quick_file(path: &str, name: &str) -> Vec<Line> {
    let root = repo_root();
    let tmp = tempfile::tempdir().unwrap();
    let file = root.join(path);
    // Relative data paths are read from the experiment file's folder: run it in place.
    let exp = sb_cli::experiment::Experiment::load(&file).unwrap();
    let (dir, _) = run(&file, &options(tmp.path().join("run"), None)).unwrap();
    let r = report(&[dir]).unwrap();
    assert!(r.missing.is_empty(), "{name}: {:?}", r.missing);
    let ours: Vec<&Line> = r.lines.iter().filter(|l| l.seeds > 0).collect();
    assert!(!ours.is_empty(), "{name}: empty table");
    for l in &ours {
        let v = l.mean.unwrap();
        // Every metric is non-negative but the mean x-coordinate.
        assert!(
            v.is_finite() && (v >= 0.0 || l.metric.starts_with("x_mean")),
            "{name}: {l:?}"
        );
    }
    assert_eq!(exp.name, name);
    r.lines
}

/// The mean of one row of a table, if it has one.
fn value(lines: &[Line], problem: &str, method: &str, metric: &str) -> Option<f64> {
    lines
        .iter()
        .find(|l| l.benchmark == problem && l.method == method && l.metric == metric)
        .and_then(|l| l.mean)
}

/// Every experiment file (`experiments/`, its quick tiers, the peers' and the papers' files)
/// passes `sb check`.
#[test]
fn experiment_files_pass_check() {
    let root = repo_root().join("experiments");
    let mut files = Vec::new();
    for dir in ["", "quick", "peers", "sweeps", "paper", "paper/quick"].map(|d| root.join(d)) {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yaml") {
                files.push(path);
            }
        }
    }
    assert!(files.len() >= 30, "{files:?}");
    for f in &files {
        if let Err(e) = sb_cli::run::check(f) {
            panic!("{}: {e}", f.display());
        }
    }
}

#[test]
fn quick_paper_t() {
    let lines = quick_file("experiments/paper/quick/t.yaml", "paper-t-quick");
    let get = |problem: &str, method: &str, metric: &str| value(&lines, problem, method, metric);
    for problem in [
        "gaussian-moons",
        "gaussian-scurve",
        "gaussian-8gaussians",
        "moons-8gaussians",
    ] {
        // The floor stands beside every step count, with one value.
        let floor = "Same distribution (floor)";
        let f = get(problem, floor, "w2_forward").unwrap();
        assert_eq!(get(problem, floor, "w2_forward@100"), Some(f));
        assert_eq!(get(problem, floor, "w2_forward@20"), Some(f));
        // DSBM samples with any number of steps; DSB only on its own 20-step grid.
        for metric in ["w2_forward@100", "w2_forward@20", "w2_backward@100"] {
            assert!(
                get(problem, "DSBM-IPF", metric).is_some(),
                "{problem} {metric}"
            );
        }
        assert!(get(problem, "DSB", "w2_forward@20").is_some(), "{problem}");
        assert!(get(problem, "DSB", "w2_forward@100").is_none(), "{problem}");
        // The probability-flow ODE is DSBM's alone; every method can leave out the last noise.
        assert!(
            get(problem, "DSBM-IMF", "w2_backward@ode").is_some(),
            "{problem}"
        );
        assert!(get(problem, "DSB", "w2_forward@ode").is_none(), "{problem}");
        assert!(
            get(problem, "DSB", "w2_forward@quiet_end").is_some(),
            "{problem}"
        );
        assert_eq!(get(problem, floor, "w2_forward@ode"), Some(f));
    }
}

#[test]
fn quick_tier_g1() {
    let lines = quick("g1");
    let optimum = lines
        .iter()
        .find(|l| l.metric == "cross_cov" && l.method.starts_with("Closed form"))
        .unwrap();
    assert!((optimum.mean.unwrap() - 0.618).abs() < 1e-3);
    // Even a short run learns most of the coupling: the cross-covariance of the SDE methods is
    // near the optimum. SB-CFM samples an ODE, whose coupling is a deterministic map (here
    // close to a translation, cross-covariance ≈ 1): right marginals, not the bridge's plan.
    for l in lines.iter().filter(|l| l.metric == "cross_cov") {
        if l.method == "SB-CFM" {
            assert!(l.mean.unwrap() > 0.9, "{l:?}");
        } else {
            assert!((l.mean.unwrap() - 0.618).abs() < 0.15, "{l:?}");
        }
    }
}

#[test]
fn quick_tier_g2() {
    let lines = quick("g2");
    for l in lines.iter().filter(|l| l.metric.starts_with("bw_uvp")) {
        // A trained bridge is far better than nothing (the identity map from π0 gives ~50 %).
        assert!(l.mean.unwrap() < 25.0, "{l:?}");
    }
}

#[test]
fn quick_tier_t() {
    let lines = quick("t");
    for l in lines
        .iter()
        .filter(|l| l.metric == "w2_forward" && l.seeds > 0)
    {
        assert!(l.mean.unwrap() < 1.0, "{l:?}");
    }
}

#[test]
fn quick_tier_moons() {
    let lines = quick("moons");
    let get = |method: &str, metric: &str| {
        lines
            .iter()
            .find(|l| l.method == method && l.metric == metric)
            .and_then(|l| l.mean)
            .unwrap()
    };
    // The floor row on the official side's data set: W2 of its val split against its test
    // split, 0.26724463 by POT (ot.emd2, datasets/torchcfm/make.py's data), and the train
    // split's x-mean (numpy: -0.00155).
    let floor = "Same distribution (floor)";
    assert!((get(floor, "w2_forward") - 0.267_244_63).abs() < 1e-6);
    assert!((get(floor, "x_mean_forward") + 0.001_554).abs() < 1e-5);
    // A short run already puts the samples near the moons (W2 of N(0, I) itself is ~1.2).
    assert!(get("DSBM-IPF", "w2_forward") < 0.8);
    assert!(get("DSBM-IPF", "w2_train_forward") < 0.8);
    assert!(get("DSBM-IPF", "x_mean_forward").abs() < 0.5);
}

#[test]
fn quick_tier_s2() {
    let lines = quick("s2");
    let get = |method: &str| {
        lines
            .iter()
            .find(|l| l.benchmark == "s2" && l.method == method)
            .and_then(|l| l.mean)
            .unwrap()
    };
    // The trained bridges beat "nothing moves" on the simulated course.
    let previous = get("Previous time (reference)");
    assert!(get("DSBM-IPF") < previous && get("DSB") < previous);
}

#[test]
fn quick_tier_s1_on_the_embryoid_body_data() {
    // The data ship with the repository (datasets/eb, with its notice): no skipping.
    assert!(repo_root().join("datasets/eb/data.npy").is_file());
    let lines = quick("s1");
    let get = |method: &str| {
        lines
            .iter()
            .find(|l| l.benchmark == "eb" && l.method == method)
            .and_then(|l| l.mean)
            .unwrap()
    };
    // The reference rows of SPEC §3 S1 at the held-out day 2.
    assert!((get("OT interpolation (reference)") - 0.728).abs() < 0.01);
    assert!((get("Previous time (reference)") - 1.251).abs() < 0.01);
}

/// The hidden-style check of issue 13: a time course whose coordinates are scaled by 0.1
/// (spread about 0.1, as normalised single-cell features). With `sigma: auto` the bridge
/// beats "previous time"; with a σ fitted to unit-scale data (0.5) it does not come close.
#[test]
fn sigma_auto_fits_a_course_at_a_tenth_of_the_scale() {
    let tmp = tempfile::tempdir().unwrap();
    let course = sb_data::differentiation(400, &[0.0, 1.0, 2.0, 3.5, 5.0], 0.25, 0).unwrap();
    let points = course.points().mapv(|v| 0.1 * v);
    ndarray_npy::write_npy(tmp.path().join("x.npy"), &points).unwrap();
    let labels = ndarray::Array1::from(course.labels().to_vec());
    ndarray_npy::write_npy(tmp.path().join("t.npy"), &labels).unwrap();
    let text = "
name: scaled
seeds: [0]
problems:
  - name: scaled
    sigma: [auto, 0.5]
    leave_one_out:
      course: {kind: file, data: x.npy, labels: t.npy}
      held_out: [2]
    metrics: [w1]
methods:
  - method: {kind: dsbm, num_steps: 20, first_coupling: reference}
    net: {hidden: [64, 64]}
    train: {passes: 4, steps_per_pass: 500, batch_size: 256, lr: 1.0e-3, cache_size: 400}
eval:
  samples: 400
";
    let file = write(tmp.path(), "scaled.yaml", text);
    let (dir, _) = run(&file, &options(tmp.path().join("run"), None)).unwrap();
    let lines = report(&[dir]).unwrap().lines;
    let get = |benchmark: &str, method: &str| {
        lines
            .iter()
            .find(|l| l.benchmark == benchmark && l.method == method)
            .and_then(|l| l.mean)
            .unwrap()
    };
    let previous = get("scaled sigma=auto", "Previous time (reference)");
    let auto = get("scaled sigma=auto", "DSBM-IPF");
    let fixed = get("scaled sigma=0.5", "DSBM-IPF");
    assert!(auto < previous, "auto {auto} vs previous time {previous}");
    assert!(fixed > auto, "σ = 0.5 {fixed} vs auto {auto}");
}

#[test]
fn quick_paper_g1() {
    let lines = quick_file("experiments/paper/quick/g1.yaml", "paper-g1-quick");
    let get = |problem: &str, method: &str, metric: &str| value(&lines, problem, method, metric);
    for (problem, d) in [("g1-d5", 5.0), ("g1-d20", 20.0), ("g1-d50", 50.0)] {
        // The closed-form row measures the estimator on exact samples: ≈ d(d + 3)/(4n).
        for (metric, n) in [("kl_e-3", 2000.0), ("kl_e-3@n=60000", 60_000.0)] {
            let floor = get(problem, "Closed form (optimum)", metric).unwrap();
            let expected = 1e3 * d * (d + 3.0) / (4.0 * n);
            assert!(
                (floor / expected - 1.0).abs() < 0.25,
                "{problem} {metric}: {floor} against {expected}"
            );
        }
        // The streamed estimate (60,000 particles, two chunks) exists for every method.
        for method in ["DSB", "DSBM-IPF", "DSBM-IMF"] {
            let v = get(problem, method, "kl_e-3@n=60000").unwrap();
            assert!(v.is_finite() && v > 0.0, "{problem} {method}");
        }
    }
}

/// C1 quick tier: conditional bridges against the exact posterior. The closed-form row (exact
/// draws) sits at the estimator's floor, the prior row (y ignored) far above, and a conditional
/// DSBM trained for 2,000 steps far below the prior row.
#[test]
fn quick_c1() {
    let lines = quick_file("experiments/quick/c1.yaml", "c1-quick");
    let get = |problem: &str, method: &str, metric: &str| value(&lines, problem, method, metric);
    for problem in ["c1-d2-partial", "c1-d2-noisy"] {
        for metric in ["posterior_cbw_uvp", "posterior_cbw_uvp@100"] {
            let floor = get(problem, "Closed form (optimum)", metric).unwrap();
            let prior = get(problem, "Prior, y ignored (reference)", metric).unwrap();
            let dsbm = get(problem, "DSBM-IMF", metric).unwrap();
            assert!(
                floor < 2.0 && prior > 100.0,
                "{problem} {metric}: {floor}, {prior}"
            );
            assert!(
                dsbm < 0.1 * prior,
                "{problem} {metric}: DSBM {dsbm}, prior {prior}"
            );
        }
        // DSB's networks belong to their grid: no @100 rows.
        assert!(
            get(problem, "DSB", "posterior_cbw_uvp").unwrap()
                < get(problem, "Prior, y ignored (reference)", "posterior_cbw_uvp").unwrap()
        );
        assert!(get(problem, "DSB", "posterior_cbw_uvp@100").is_none());
    }
    // The mixture prior: W2 against rejection-sampled posterior draws; the prior row (y ignored)
    // lies far above the exact draws' row, and the conditional DSBM well below the prior row.
    let floor = get("c1-d2-mixture", "Exact posterior (floor)", "posterior_w2").unwrap();
    let prior = get(
        "c1-d2-mixture",
        "Prior, y ignored (reference)",
        "posterior_w2",
    )
    .unwrap();
    let dsbm = get("c1-d2-mixture", "DSBM-IMF", "posterior_w2").unwrap();
    assert!(
        prior > 2.0 * floor && dsbm < 0.5 * prior,
        "{floor}, {prior}, {dsbm}"
    );
}

/// I1 quick tier: the digits end to end. The classifier fitted on the train split recognises
/// held-out writers' digits, the floor and Gaussian rows exist for both problems, and every
/// method gets a pixel-space W2 and a class gap.
#[test]
fn quick_i1() {
    let lines = quick_file("experiments/quick/i1.yaml", "i1-quick");
    let get = |problem: &str, method: &str, metric: &str| value(&lines, problem, method, metric);
    for problem in ["noise-digits", "digits-translation"] {
        let accuracy = get(problem, "Same distribution (floor)", "classifier_accuracy").unwrap();
        assert!(accuracy > 0.8, "{problem}: classifier accuracy {accuracy}");
        let floor = get(problem, "Same distribution (floor)", "w2_backward").unwrap();
        let gaussian = get(problem, "Gaussian fit (reference)", "w2_backward").unwrap();
        assert!(
            floor < gaussian,
            "{problem}: floor {floor}, Gaussian {gaussian}"
        );
        for method in ["DSB", "DSBM-IMF"] {
            let w2 = get(problem, method, "w2_backward").unwrap();
            let gap = get(problem, method, "class_gap_backward").unwrap();
            assert!(
                w2 > floor && (0.0..=100.0).contains(&gap),
                "{problem} {method}: {w2}, {gap}"
            );
        }
    }
}

#[test]
fn quick_i1_inpaint() {
    let lines = quick_file("experiments/quick/i1-inpaint.yaml", "i1-inpaint-quick");
    let get = |method: &str, metric: &str| value(&lines, "inpaint-digits", method, metric).unwrap();
    // The true bottom halves have no error and are recognised; y-blind draws are far off; the
    // nearest train row and the bridges use y.
    let truth = "Same distribution (floor)";
    assert!(get(truth, "inpaint_rmse").abs() < 1e-12);
    assert!(get(truth, "inpaint_agreement") > 80.0);
    let blind = "Prior, y ignored (reference)";
    let (blind_mean, blind_agree) = (
        get(blind, "inpaint_mean_rmse"),
        get(blind, "inpaint_agreement"),
    );
    let nearest = get("Nearest train row (reference)", "inpaint_mean_rmse");
    assert!(
        nearest < blind_mean,
        "nearest row {nearest}, y ignored {blind_mean}"
    );
    for method in ["DSB", "DSBM-IMF"] {
        let (mean, agree) = (
            get(method, "inpaint_mean_rmse"),
            get(method, "inpaint_agreement"),
        );
        assert!(
            mean < blind_mean - 0.2 && agree > blind_agree + 5.0,
            "{method}: mean draw error {mean} (y ignored {blind_mean}), agreement {agree} (y ignored {blind_agree})"
        );
    }
}

#[test]
fn quick_paper_s1() {
    let lines = quick_file("experiments/paper/quick/s1.yaml", "paper-s1-quick");
    for metric in ["w1", "w1@100", "w1@20"] {
        for method in ["DSBM-IPF", "OT-CFM", "OT interpolation (reference)"] {
            let l = lines
                .iter()
                .find(|l| l.benchmark == "eb" && l.method == method && l.metric == metric);
            assert!(
                l.is_some_and(|l| l.mean.unwrap() < 1.2),
                "{method} {metric}"
            );
        }
    }
}

#[test]
fn quick_paper_g2() {
    let lines = quick_file("experiments/paper/quick/g2.yaml", "paper-g2-quick");
    for problem in ["g2-d2-eps1", "g2-d16-eps0.1"] {
        for method in ["DSB", "DSBM-IPF", "DSBM-IMF"] {
            for metric in ["bw_uvp_forward", "bw_uvp_plan", "bw_uvp_mid", "cbw_uvp"] {
                let v = value(&lines, problem, method, metric);
                assert!(
                    v.is_some_and(|v| v.is_finite() && v >= 0.0),
                    "{problem} {method} {metric}"
                );
            }
        }
    }
}
