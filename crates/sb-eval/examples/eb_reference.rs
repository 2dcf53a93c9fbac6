//! The two reference rows of the single-cell leave-one-out benchmark (SPEC §3 S1) on a labelled
//! time course: exact-OT displacement interpolation, and "previous time as the prediction".
//!
//! `cargo run --release -p sb-eval --example eb_reference -- [DATA.npy LABELS.npy]`
//! (default: datasets/eb/data.npy and sample_labels.npy). For each interior time t, the
//! cells of the previous and next times are joined by the exact W2 plan and interpolated at t's
//! true fraction of the interval; W1 against the cells at t is reported.

use std::path::PathBuf;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let base = PathBuf::from("datasets/eb");
    let (data, labels) = match args.as_slice() {
        [d, l] => (PathBuf::from(d), PathBuf::from(l)),
        _ => (base.join("data.npy"), base.join("sample_labels.npy")),
    };
    if !data.exists() {
        eprintln!(
            "error: {} not found; pass DATA.npy LABELS.npy (the EB data lives in datasets/eb)",
            data.display()
        );
        std::process::exit(1);
    }
    let course = sb_data::TimeCourse::load(&data, Some(&labels), None).unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(1)
    });
    let times = course.times();
    let (mut ot_sum, mut prev_sum) = (0.0, 0.0);
    println!("| held-out time | OT interpolation W1 | previous time W1 |");
    println!("|---|---|---|");
    for k in 1..times.len() - 1 {
        let (t0, t, t1) = (times[k - 1], times[k], times[k + 1]);
        let (x0, x, x1) = (
            course.at(t0).expect("listed time"),
            course.at(t).expect("listed time"),
            course.at(t1).expect("listed time"),
        );
        let s = (t - t0) / (t1 - t0);
        let (mid, w) = sb_eval::ot_interpolate(x0.view(), x1.view(), s).expect("valid clouds");
        let ot = sb_eval::w1_weighted(mid.view(), &w, x.view()).expect("valid clouds");
        let prev = sb_eval::w1(x0.view(), x.view())
            .expect("valid clouds")
            .value;
        println!("| {t} | {ot:.4} | {prev:.4} |");
        ot_sum += ot;
        prev_sum += prev;
    }
    let k = (times.len() - 2) as f64;
    println!("| mean | {:.4} | {:.4} |", ot_sum / k, prev_sum / k);
}
