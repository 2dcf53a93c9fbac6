//! The data summary `sb check` and `sb run` print before anything trains: per problem, the
//! files read, the dimension, the times and cells per time or the split, the per-coordinate
//! mean and spread, and warnings for what a user would want to know first (σ larger than the
//! data's spread at the evaluated time; a coordinate that is a row index or the time label).

use ndarray::{Array1, ArrayView2, Axis};
use sb_data::Source;

use crate::experiment::{Experiment, Sigma};
use crate::protocol::{self, Part, ProblemData};
use crate::results::format_value;

/// Coordinates shown one by one; beyond them, the range of the rest.
const SHOWN: usize = 8;

/// The summary text and the warnings (each one line, without the `warning: ` prefix).
pub fn summary(exp: &Experiment, data: &[ProblemData]) -> (String, Vec<String>) {
    let mut out = String::new();
    let mut warnings = Vec::new();
    for (i, (p, d)) in exp.problems.iter().zip(data).enumerate() {
        let key = format!("problems[{}] `{}`", exp.problem_key(i), p.name);
        // A sweep's problems share their data: describe it once.
        let again = i > 0 && exp.problem_key(i - 1) == exp.problem_key(i);
        match d {
            ProblemData::Pair {
                pi0,
                pi1,
                splits,
                sigma,
                ..
            } => {
                let sigma_text = match p.sigma {
                    Sigma::Auto => format!("σ = auto → {}", format_value(*sigma)),
                    Sigma::Value(v) => format!("σ = {v}"),
                };
                out.push_str(&format!("{key}: π0 → π1, {sigma_text}\n"));
                if again {
                    continue;
                }
                for (k, (name, dist, source)) in
                    [("pi0", p.pi0.as_ref(), pi0), ("pi1", p.pi1.as_ref(), pi1)]
                        .into_iter()
                        .enumerate()
                {
                    let what = match (&p.inverse, k) {
                        (Some(inv), 0) => match (&inv.operator, inv.noise, inv.observed_columns) {
                            (Some(op), Some(noise), _) => format!(
                                "the joint of [x, y]: x ~ {}, y = A x + η (operator: {}; noise std {noise})",
                                describe(&inv.prior),
                                operator_name(op),
                            ),
                            (_, _, Some([a, b])) => format!(
                                "the train rows of {} as [x, y]: y = columns {a}..{b}, x = the others",
                                describe(&inv.prior),
                            ),
                            _ => unreachable!("validated: an inverse problem has one form"),
                        },
                        (Some(inv), _) => format!(
                            "[x, y]: x ~ {}, y taken from a π0 draw in training (drawn N(0, I) in the lines below)",
                            inv.reference.as_ref().map_or_else(|| "N(0, I)".to_string(), describe)
                        ),
                        (None, _) => dist.map_or_else(String::new, describe),
                    };
                    let split = match &splits[k] {
                        Some(s) => format!(
                            "; split: train {} / val {} / test {} points",
                            s.train.nrows(),
                            s.val.nrows(),
                            s.test.nrows()
                        ),
                        None => String::new(),
                    };
                    let size = match source.points() {
                        Some(x) => format!("{} points × {}", x.nrows(), x.ncols()),
                        None => format!("{} coordinates", source.dim()),
                    };
                    out.push_str(&format!("  {name}: {what}, {size}{split}\n"));
                    let (mean, spread) = moments(source);
                    out.push_str(&coordinates(&format!("  {name} "), &mean, &spread));
                    if let Some(x) = source.points() {
                        warnings.extend(
                            index_columns(x.view())
                                .into_iter()
                                .map(|w| format!("{key}.{name}: {w}")),
                        );
                    }
                }
            }
            ProblemData::Course(course) => {
                let loo = p
                    .leave_one_out
                    .as_ref()
                    .expect("a course comes from leave_one_out");
                out.push_str(&format!("{key}: leave-one-out, σ = {}\n", p.sigma));
                if again {
                    out.push_str("  the data of the problem above\n");
                }
                if let (
                    false,
                    sb_data::CourseSpec::File {
                        data: file, labels, ..
                    },
                ) = (again, &loo.course)
                {
                    let labels = labels
                        .as_ref()
                        .map_or_else(String::new, |l| format!(", labels {}", l.display()));
                    out.push_str(&format!("  course: {}{labels}\n", file.display()));
                }
                let x = course.points();
                if !again {
                    let counts: Vec<String> = course
                        .times()
                        .iter()
                        .map(|t| {
                            let n = course.at(*t).map_or(0, |a| a.nrows());
                            format!("{t} ({n})")
                        })
                        .collect();
                    out.push_str(&format!(
                        "  {} cells × {} coordinates; times (cells): {}\n",
                        x.nrows(),
                        x.ncols(),
                        counts.join(", ")
                    ));
                    let (mean, spread) = moments(&Source::empirical(x.clone()));
                    out.push_str(&coordinates("  ", &mean, &spread));
                    warnings.extend(
                        index_columns(x.view())
                            .into_iter()
                            .chain(label_columns(x.view(), course.labels()))
                            .map(|w| format!("{key}: {w}")),
                    );
                }
                for t in &loo.held_out {
                    let Ok(part) = Part::new(course, *t) else {
                        continue;
                    };
                    let (start, end) = (
                        Source::empirical(part.start.clone()),
                        Source::empirical(part.end.clone()),
                    );
                    let v = protocol::typical_variance(&start, &end);
                    let f = part.fraction;
                    let sigma = match protocol::resolve_sigma(p.sigma, &start, &end) {
                        Ok(s) => s,
                        Err(e) => {
                            warnings.push(format!("{key} t={t}: {e}"));
                            continue;
                        }
                    };
                    let noise = sigma * sigma * f * (1.0 - f);
                    let chosen = match p.sigma {
                        Sigma::Auto => format!(", σ = auto → {}", format_value(sigma)),
                        Sigma::Value(_) => String::new(),
                    };
                    out.push_str(&format!(
                        "  held out t = {t}: a bridge {} → {}, predicted at fraction {}{chosen}\n",
                        part.before,
                        part.after,
                        format_value(f)
                    ));
                    if noise > v {
                        let best = protocol::auto_sigma(&start, &end).unwrap_or(f64::NAN);
                        warnings.push(format!(
                            "{key} t={t}: σ² t(1−t) = {} at t = {} exceeds the data's per-coordinate variance {} (the mean over coordinates of the smaller end's variance): the bridge's own noise will blur the prediction; try σ ≤ {}, or `sigma: auto` (σ = {} here)",
                            format_value(noise),
                            format_value(f),
                            format_value(v),
                            format_value((v / (f * (1.0 - f))).sqrt()),
                            format_value(best)
                        ));
                    }
                }
            }
        }
    }
    (out, warnings)
}

/// What a distribution is, in a few words (its resolved file for files).
fn describe(d: &sb_data::Distribution) -> String {
    use sb_data::Distribution as D;
    match d {
        D::File { path, .. } => format!("file {}", path.display()),
        D::TimeCourse { data, time, .. } => format!("time {time} of {}", data.display()),
        D::Gaussian { .. } => "gaussian (drawn afresh)".into(),
        D::Mixture { components } => {
            format!("mixture of {} (drawn afresh)", components.len())
        }
        other => {
            let yaml = serde_yaml::to_string(other).unwrap_or_default();
            let kind = yaml
                .lines()
                .find_map(|l| l.strip_prefix("kind: "))
                .unwrap_or("toy")
                .to_string();
            format!("{kind} (drawn afresh)")
        }
    }
}

/// Per-coordinate mean and standard deviation (of the points, or of fixed draws).
fn moments(source: &Source) -> (Array1<f64>, Array1<f64>) {
    let variances = protocol::coordinate_variances(source);
    let mean = match source.points() {
        Some(x) => x.mean_axis(Axis(0)).expect("points have rows"),
        None => {
            let draws = source.sample(10_000, &mut sb_data::SbRng::stream(0, 0x5157_4101));
            draws.mean_axis(Axis(0)).expect("draws have rows")
        }
    };
    (mean, variances.mapv(f64::sqrt))
}

/// The per-coordinate table: a header of coordinate names, then mean and spread rows.
fn coordinates(indent: &str, mean: &Array1<f64>, spread: &Array1<f64>) -> String {
    let d = mean.len();
    let shown = d.min(SHOWN);
    let cell = |s: String| format!(" {s:>10}");
    let mut header = format!("{indent}{:<8}", "coord");
    let mut means = format!("{indent}{:<8}", "mean");
    let mut spreads = format!("{indent}{:<8}", "spread");
    for j in 0..shown {
        header.push_str(&cell(format!("x{}", j + 1)));
        // Means at rounding level of the spread (standardised data) print as 0.
        let m = if mean[j].abs() < 1e-9 * spread[j] {
            0.0
        } else {
            mean[j]
        };
        means.push_str(&cell(format_value(m)));
        spreads.push_str(&cell(format_value(spread[j])));
    }
    let mut out = format!("{header}\n{means}\n{spreads}\n");
    if d > shown {
        let rest = spread.slice(ndarray::s![shown..]);
        let lo = rest.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = rest.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        out.push_str(&format!(
            "{indent}… and {} more coordinates, spread {} to {}\n",
            d - shown,
            format_value(lo),
            format_value(hi)
        ));
    }
    out
}

/// Coordinates that count the rows (0, 1, 2, … or 1, 2, 3, …): an index column kept as a
/// feature.
fn index_columns(x: ArrayView2<'_, f64>) -> Vec<String> {
    if x.nrows() < 3 {
        return Vec::new();
    }
    (0..x.ncols())
        .filter(|&j| {
            let c = x.column(j);
            let first = c[0];
            (same(first, 0.0) || same(first, 1.0))
                && c.iter()
                    .enumerate()
                    .all(|(r, v)| same(*v, first + r as f64))
        })
        .map(|j| {
            format!(
                "coordinate x{} counts the rows ({}, {}, {}, …): an index column kept as a feature? leave it out (CSV: `drop_columns`)",
                j + 1,
                x[[0, j]],
                x[[1, j]],
                x[[2, j]]
            )
        })
        .collect()
}

/// Equal up to rounding (the values compared are integers or labels written as numbers).
fn same(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * (1.0 + b.abs())
}

/// Coordinates equal to the time label on every row: a time column kept as a feature.
fn label_columns(x: ArrayView2<'_, f64>, labels: &[f64]) -> Vec<String> {
    let distinct = {
        let mut t = labels.to_vec();
        t.sort_by(f64::total_cmp);
        t.dedup();
        t.len()
    };
    if distinct < 2 {
        return Vec::new();
    }
    (0..x.ncols())
        .filter(|&j| x.column(j).iter().zip(labels).all(|(v, t)| same(*v, *t)))
        .map(|j| {
            format!(
                "coordinate x{} equals the time label on every row: a time column kept as a feature? leave it out (CSV: `drop_columns`, or `time_column` instead of `labels`)",
                j + 1
            )
        })
        .collect()
}

fn operator_name(op: &crate::inverse::Operator) -> String {
    use crate::inverse::Operator;
    match op {
        Operator::Identity => "identity".into(),
        Operator::Partial { observed } => format!("partial, {observed} observed"),
        Operator::Blur { width } => format!("blur, width {width}"),
        Operator::Random { rows, seed } => format!("random, {rows} rows, seed {seed}"),
    }
}
