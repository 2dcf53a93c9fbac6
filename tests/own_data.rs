//! A researcher's own data (issue 13): sweeps, `sigma: auto`, the data summary of `sb check`
//! and its warnings, relative paths, and the file options of real data sets.

use std::path::Path;

use ndarray::Array2;
use sb_cli::jobs::Shard;
use sb_cli::report::report;
use sb_cli::run::{check_with_summary, run, RunOptions};
use sb_tests::{write, TINY};

fn options(out: &Path, shard: Option<Shard>) -> RunOptions {
    RunOptions {
        out: Some(out.to_path_buf()),
        quiet: true,
        shard,
        ..RunOptions::default()
    }
}

/// TINY with one method and a list where one value was.
fn swept() -> String {
    TINY.replace("sigma: 1.0", "sigma: [0.5, 1.0]")
        .replace(
            "train: {passes: 2, steps_per_pass: 20, batch_size: 32, lr: 1.0e-3, cache_size: 64}\n  - method: {kind: dsbm",
            "train: {passes: 2, steps_per_pass: 20, batch_size: 32, lr: [1.0e-3, 1.0e-2], cache_size: 64}\n  - method: {kind: dsbm",
        )
        .replace("metrics: [w2, w1, mmd]", "metrics: [w2]")
}

#[test]
fn a_sweep_expands_into_rows_that_carry_the_value_and_shards_merge() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write(tmp.path(), "sweep.yaml", &swept());
    let (_, rows) = run(&file, &options(&tmp.path().join("all"), None)).unwrap();
    let mut seen: Vec<(String, String, String, String)> = rows
        .iter()
        .map(|r| {
            (
                r.benchmark.clone(),
                r.method.clone(),
                r.params["sigma"].clone(),
                r.params["lr"].clone(),
            )
        })
        .collect();
    seen.dedup();
    let expected = [
        ("gauss sigma=0.5", "DSB lr=0.001", "0.5", "0.001"),
        ("gauss sigma=0.5", "DSB lr=0.01", "0.5", "0.01"),
        ("gauss sigma=0.5", "DSBM-IPF", "0.5", "0.001"),
        ("gauss sigma=1.0", "DSB lr=0.001", "1", "0.001"),
        ("gauss sigma=1.0", "DSB lr=0.01", "1", "0.01"),
        ("gauss sigma=1.0", "DSBM-IPF", "1", "0.001"),
    ];
    let expected: Vec<(String, String, String, String)> = expected
        .iter()
        .map(|(a, b, c, d)| (a.to_string(), b.to_string(), c.to_string(), d.to_string()))
        .collect();
    assert_eq!(seen, expected);
    // Two shards and `sb report` give the same table as the unsharded run.
    let shards: Vec<_> = (0..2)
        .map(|index| {
            let out = tmp.path().join(format!("shard{index}"));
            run(&file, &options(&out, Some(Shard { index, count: 2 }))).unwrap();
            out
        })
        .collect();
    let merged = report(&shards).unwrap();
    let whole = report(&[tmp.path().join("all")]).unwrap();
    assert!(merged.missing.is_empty(), "{:?}", merged.missing);
    let values = |r: &sb_cli::report::Report| -> Vec<(String, String, String, Option<f64>)> {
        r.lines
            .iter()
            .map(|l| {
                (
                    l.benchmark.clone(),
                    l.method.clone(),
                    l.metric.clone(),
                    l.mean,
                )
            })
            .collect()
    };
    assert_eq!(values(&merged), values(&whole));
}

#[test]
fn sigma_auto_is_chosen_from_the_data_and_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let text = TINY
        .replace("sigma: 1.0", "sigma: auto")
        .replace("metrics: [w2, w1, mmd]", "metrics: [w2]");
    let file = write(tmp.path(), "auto.yaml", &text);
    let (dir, rows) = run(&file, &options(&tmp.path().join("run"), None)).unwrap();
    // Half the root of the smaller end's variance: ½ · √0.5 (pi0 has variance 0.5 per
    // coordinate), measured on 10,000 fixed draws.
    let sigma: f64 = rows[0].params["sigma"].parse().unwrap();
    assert!((sigma - 0.5 * 0.5f64.sqrt()).abs() < 0.01, "{sigma}");
    assert!(rows.iter().all(|r| r.params["sigma_rule"] == "auto"));
    let table = std::fs::read_to_string(dir.join("results.md")).unwrap();
    assert!(
        table.contains("σ chosen by `sigma: auto`") && table.contains("- gauss: σ = 0.35"),
        "{table}"
    );
    let model = std::fs::read_to_string(dir.join("models/gauss/DSB/seed3/model.yaml")).unwrap();
    assert!(
        model.contains("sigma_rule: auto") && model.contains(&format!("sigma: {sigma}")),
        "{model}"
    );
    // The same file gives the same σ again.
    let (_, again) = run(&file, &options(&tmp.path().join("again"), None)).unwrap();
    assert_eq!(again[0].params["sigma"], rows[0].params["sigma"]);
}

/// A small time course as a CSV, as pandas writes it (an unnamed index column), with a
/// metadata column and the time column; its coordinates spread about 0.1.
fn course_csv(dir: &Path) -> std::path::PathBuf {
    let mut text = String::from(",day,x,y,batch\n");
    for (row, day) in [0.0, 1.0, 2.0].iter().flat_map(|d| [*d; 6]).enumerate() {
        let x = 0.1 * day + 0.02 * ((row * 7 % 5) as f64 - 2.0);
        let y = 0.05 * ((row * 3 % 4) as f64 - 1.5);
        text.push_str(&format!("{row},{day},{x},{y},b{}\n", row % 2));
    }
    write(dir, "course.csv", &text)
}

const COURSE: &str = "
name: mine
problems:
  - name: cells
    sigma: 0.5
    leave_one_out:
      course: {kind: file, data: data/course.csv, time_column: day, drop_columns: ['', batch]}
      held_out: [1]
    metrics: [w1]
methods:
  - method: {kind: dsbm, num_steps: 5}
    net: {hidden: [16]}
    train: {passes: 2, steps_per_pass: 20, batch_size: 8, lr: 1.0e-3, cache_size: 12}
";

#[test]
fn check_summarises_the_data_and_warns_about_sigma() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();
    course_csv(&data);
    // Relative paths are read from the experiment file's folder, wherever sb runs.
    let file = write(tmp.path(), "mine.yaml", COURSE);
    let (_, jobs, (summary, warnings)) = check_with_summary(&file).unwrap();
    assert_eq!(jobs, 3);
    let root = tmp.path().canonicalize().unwrap().display().to_string();
    let text = format!("{summary}{}", warnings.join("\n")).replace(&root, "<tmp>");
    insta::assert_snapshot!("course_summary", text);
}

#[test]
fn the_csv_failures_of_real_files_name_the_way_out() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();
    course_csv(&data);
    let err = |text: &str| {
        let file = write(tmp.path(), "bad.yaml", text);
        check_with_summary(&file).unwrap_err().to_string().replace(
            &tmp.path().canonicalize().unwrap().display().to_string(),
            "<tmp>",
        )
    };
    let cases = [
        (
            "index_column",
            COURSE.replace("drop_columns: ['', batch]", "drop_columns: [batch]"),
        ),
        (
            "text_column",
            COURSE.replace("drop_columns: ['', batch]", "drop_columns: ['']"),
        ),
        (
            "missing_relative",
            COURSE.replace("data/course.csv", "elsewhere/course.csv"),
        ),
        (
            "dropped_absent",
            COURSE.replace(
                "drop_columns: ['', batch]",
                "drop_columns: ['', batch, cell_type]",
            ),
        ),
    ];
    for (name, text) in cases {
        insta::assert_snapshot!(name, err(&text));
    }
}

#[test]
fn time_and_index_columns_kept_as_features_are_flagged() {
    let tmp = tempfile::tempdir().unwrap();
    // 30 cells at times 0, 1, 2; column 1 counts the rows, column 2 repeats the time.
    let labels: Vec<f64> = (0..30).map(|r| f64::from(r / 10)).collect();
    let points = Array2::from_shape_fn((30, 3), |(r, j)| match j {
        0 => r as f64,
        1 => labels[r],
        _ => (r as f64 * 0.37).sin(),
    });
    ndarray_npy::write_npy(tmp.path().join("x.npy"), &points).unwrap();
    let l = ndarray::Array1::from(labels.iter().map(|v| *v as i64).collect::<Vec<_>>());
    ndarray_npy::write_npy(tmp.path().join("t.npy"), &l).unwrap();
    let text = COURSE
        .replace(
            "{kind: file, data: data/course.csv, time_column: day, drop_columns: ['', batch]}",
            "{kind: time_course, data: x.npy, labels: t.npy}",
        )
        .replace("sigma: 0.5", "sigma: auto");
    let file = write(tmp.path(), "flags.yaml", &text);
    let (_, _, (_, warnings)) = check_with_summary(&file).unwrap();
    let all = warnings.join("\n");
    assert!(
        all.contains("coordinate x1 counts the rows (0, 1, 2, …)"),
        "{all}"
    );
    assert!(
        all.contains("coordinate x2 equals the time label on every row"),
        "{all}"
    );
    // `auto` never warns about σ.
    assert!(!all.contains("σ² t(1−t)"), "{all}");
}

#[test]
fn a_course_reads_an_npz_member_named_by_key() {
    let tmp = tempfile::tempdir().unwrap();
    let points = Array2::from_shape_fn((30, 2), |(r, j)| ((r * (j + 2)) as f64 * 0.31).sin());
    let path = tmp.path().join("cells.npz");
    let mut npz = ndarray_npy::NpzWriter::new(std::fs::File::create(&path).unwrap());
    npz.add_array("pca", &points).unwrap();
    npz.add_array("raw", &points.mapv(|v| 10.0 * v)).unwrap();
    npz.finish().unwrap();
    let labels = ndarray::Array1::from((0..30).map(|r| (r / 10) as u8).collect::<Vec<_>>());
    ndarray_npy::write_npy(tmp.path().join("t.npy"), &labels).unwrap();
    let course = "{kind: file, data: cells.npz, labels: t.npy, key: pca}";
    let text = COURSE.replace(
        "{kind: file, data: data/course.csv, time_column: day, drop_columns: ['', batch]}",
        course,
    );
    let file = write(tmp.path(), "npz.yaml", &text);
    let (_, jobs, (summary, _)) = check_with_summary(&file).unwrap();
    assert_eq!(jobs, 3);
    assert!(summary.contains("30 cells × 2 coordinates"), "{summary}");
    let without = write(tmp.path(), "nokey.yaml", &text.replace(", key: pca", ""));
    let e = check_with_summary(&without).unwrap_err().to_string();
    assert!(e.contains("name one with `key`"), "{e}");
}

/// Issue 13, §4: sizes that passed `sb check` and then aborted in the allocator are refused
/// up front, with the number and the limit.
#[test]
fn allocations_that_cannot_fit_are_refused_before_anything_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let refused = |name: &str, text: String| {
        let file = write(tmp.path(), &format!("{name}.yaml"), &text);
        let e = check_with_summary(&file).unwrap_err().to_string();
        assert!(
            e.contains("of memory available") && e.contains("needs about"),
            "{name}: {e}"
        );
        e
    };
    let e = refused(
        "hidden",
        TINY.replace("hidden: [16]}", "hidden: [100000000, 100000000]}"),
    );
    assert!(
        e.contains("the two networks (hidden [100000000, 100000000])"),
        "{e}"
    );
    let e = refused("samples", TINY.replace("samples: 50", "samples: 100000000"));
    assert!(e.contains("the evaluation's particles"), "{e}");
    // A dense cost matrix that cannot fit is refused (10⁶ × 10⁶ points: 8 TB); exact OT at
    // that size computes its costs from the points instead (`sb_eval::exact`).
    let big = Array2::<f64>::zeros((1_000_000, 1));
    let e = sb_eval::cost_matrix(big.view(), big.view(), sb_eval::Ground::Euclidean)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("the exact-OT cost matrix of 1000000 × 1000000 points needs 8000.0 GB but"),
        "{e}"
    );
}
