//! The benchmark table: result rows of one or many run directories, aggregated over seeds,
//! next to the published values, as Markdown, CSV or JSON.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, StudentsT};

use crate::experiment::Experiment;
use crate::jobs::{jobs, part_name};
use crate::results::{format_value, mean_std, Row};
use crate::Result;

/// One line of the table: a metric of a method on a benchmark, over seeds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Line {
    /// The benchmark (a leave-one-out problem's name alone is the mean over its held-out times).
    pub benchmark: String,
    /// The method.
    pub method: String,
    /// The metric, as in results.
    pub metric: String,
    /// How many seeds contributed (0 for a published value we did not run).
    pub seeds: usize,
    /// Mean over seeds.
    pub mean: Option<f64>,
    /// Sample standard deviation over seeds (0 for one seed).
    pub std: Option<f64>,
    /// Half-width of the 95% Student-t interval of the mean (two or more seeds).
    pub ci95: Option<f64>,
    /// The published value, where the experiment file gives one.
    pub published: Option<f64>,
    /// Mean wall time per seed, in seconds (for a leave-one-out mean, the sum over times).
    pub wall_s: Option<f64>,
}

/// Half-width of the two-sided 95% interval of the mean of `n` values with sample standard
/// deviation `std`: `t(0.975, n − 1) · std / √n`. `None` below two values.
pub fn ci95(std: f64, n: usize) -> Option<f64> {
    if n < 2 {
        return None;
    }
    let t = StudentsT::new(0.0, 1.0, (n - 1) as f64)
        .expect("n − 1 ≥ 1 degrees of freedom")
        .inverse_cdf(0.975);
    Some(t * std / (n as f64).sqrt())
}

type Key = (String, String, String);

/// Builds the table of `exp` from `rows` (from one run, or merged from several).
///
/// Lines follow the experiment's job order; each leave-one-out problem gets a line per
/// (method, metric) averaging its held-out times, for the seeds that have all of them;
/// published values stand beside ours, or on lines of their own for methods not run.
///
/// # Errors
/// A method of `exp` that cannot be built.
pub fn build(exp: &Experiment, rows: &[Row]) -> Result<Vec<Line>> {
    // (benchmark, method) in job order; metrics in the order the rows give them.
    let mut pairs: Vec<(String, String)> = Vec::new();
    for job in jobs(exp)? {
        let pair = (job.benchmark, job.method);
        if !pairs.contains(&pair) {
            pairs.push(pair);
        }
    }
    let mut values: BTreeMap<Key, Vec<(u64, f64, f64)>> = BTreeMap::new();
    let mut metric_order: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for r in rows {
        let pair = (r.benchmark.clone(), r.method.clone());
        let metrics = metric_order.entry(pair).or_default();
        if !metrics.contains(&r.metric) {
            metrics.push(r.metric.clone());
        }
        values
            .entry((r.benchmark.clone(), r.method.clone(), r.metric.clone()))
            .or_default()
            .push((r.seed, r.value, r.wall_s));
    }
    let mut lines = Vec::new();
    for problem in &exp.problems {
        let mut problem_lines = Vec::new();
        let benchmarks: Vec<String> = match &problem.leave_one_out {
            Some(loo) => loo
                .held_out
                .iter()
                .map(|t| part_name(&problem.name, *t))
                .collect(),
            None => vec![problem.name.clone()],
        };
        for (benchmark, method) in pairs.iter().filter(|(b, _)| benchmarks.contains(b)) {
            let pair = (benchmark.clone(), method.clone());
            for metric in metric_order.get(&pair).into_iter().flatten() {
                let key = (benchmark.clone(), method.clone(), metric.clone());
                problem_lines.push(line(&key, &values[&key]));
            }
        }
        if problem.leave_one_out.is_some() {
            problem_lines.extend(means_over_parts(
                &problem.name,
                &benchmarks,
                &pairs,
                &metric_order,
                &values,
            ));
        }
        for l in &mut problem_lines {
            if l.benchmark == problem.name {
                l.published = problem
                    .published
                    .get(&l.method)
                    .and_then(|m| m.get(&l.metric))
                    .copied();
            }
        }
        // Published values with no line of ours.
        for (method, metrics) in &problem.published {
            for (metric, value) in metrics {
                let ours = problem_lines.iter().any(|l| {
                    l.benchmark == problem.name && &l.method == method && &l.metric == metric
                });
                if !ours {
                    problem_lines.push(Line {
                        benchmark: problem.name.clone(),
                        method: method.clone(),
                        metric: metric.clone(),
                        seeds: 0,
                        mean: None,
                        std: None,
                        ci95: None,
                        published: Some(*value),
                        wall_s: None,
                    });
                }
            }
        }
        lines.extend(problem_lines);
    }
    Ok(lines)
}

fn line(key: &Key, per_seed: &[(u64, f64, f64)]) -> Line {
    let v: Vec<f64> = per_seed.iter().map(|x| x.1).collect();
    let w: Vec<f64> = per_seed.iter().map(|x| x.2).collect();
    let (mean, std) = mean_std(&v);
    Line {
        benchmark: key.0.clone(),
        method: key.1.clone(),
        metric: key.2.clone(),
        seeds: v.len(),
        mean: Some(mean),
        std: Some(std),
        ci95: ci95(std, v.len()),
        published: None,
        wall_s: Some(mean_std(&w).0),
    }
}

/// For a leave-one-out problem: per (method, metric), the per-seed mean over held-out
/// times, for seeds present at every time.
fn means_over_parts(
    name: &str,
    parts: &[String],
    pairs: &[(String, String)],
    metric_order: &BTreeMap<(String, String), Vec<String>>,
    values: &BTreeMap<Key, Vec<(u64, f64, f64)>>,
) -> Vec<Line> {
    let mut methods: Vec<&String> = Vec::new();
    for (b, m) in pairs {
        if parts.contains(b) && !methods.contains(&m) {
            methods.push(m);
        }
    }
    let mut out = Vec::new();
    for method in methods {
        let first = (parts[0].clone(), method.clone());
        for metric in metric_order.get(&first).into_iter().flatten() {
            let per_part: Vec<BTreeMap<u64, (f64, f64)>> = parts
                .iter()
                .map(|b| {
                    values
                        .get(&(b.clone(), method.clone(), metric.clone()))
                        .map(|v| v.iter().map(|(s, x, w)| (*s, (*x, *w))).collect())
                        .unwrap_or_default()
                })
                .collect();
            let seeds: BTreeSet<u64> = per_part[0]
                .keys()
                .filter(|s| per_part.iter().all(|p| p.contains_key(s)))
                .copied()
                .collect();
            if seeds.is_empty() {
                continue;
            }
            let per_seed: Vec<(u64, f64, f64)> = seeds
                .iter()
                .map(|s| {
                    let k = per_part.len() as f64;
                    let value = per_part.iter().map(|p| p[s].0).sum::<f64>() / k;
                    let wall = per_part.iter().map(|p| p[s].1).sum::<f64>();
                    (*s, value, wall)
                })
                .collect();
            out.push(line(
                &(name.to_string(), method.clone(), metric.clone()),
                &per_seed,
            ));
        }
    }
    out
}

fn opt(v: Option<f64>) -> String {
    v.map_or_else(|| "—".to_string(), format_value)
}

/// The table in Markdown.
pub fn markdown(lines: &[Line]) -> String {
    let mut out = String::from(
        "| benchmark | method | metric | ours: mean ± std | 95% CI | published | seeds | wall s |\n|---|---|---|---|---|---|---|---|\n",
    );
    for l in lines {
        let ours = match (l.mean, l.std) {
            (Some(m), Some(s)) if l.seeds > 1 => {
                format!("{} ± {}", format_value(m), format_value(s))
            }
            (Some(m), _) => format_value(m),
            _ => "—".into(),
        };
        let ci = match (l.mean, l.ci95) {
            (Some(m), Some(h)) => format!("[{}, {}]", format_value(m - h), format_value(m + h)),
            _ => "—".into(),
        };
        let wall = l
            .wall_s
            .map_or_else(|| "—".to_string(), |w| format!("{w:.1}"));
        out.push_str(&format!(
            "| {} | {} | {} | {ours} | {ci} | {} | {} | {wall} |\n",
            l.benchmark,
            l.method,
            l.metric,
            opt(l.published),
            l.seeds
        ));
    }
    out
}

/// The σ that `sigma: auto` chose, one line per benchmark, for under the table (empty when
/// no problem used `auto`). Every method and seed of a benchmark share its value.
pub fn auto_sigma_note(rows: &[Row]) -> String {
    let mut chosen: Vec<(String, String)> = Vec::new();
    for r in rows {
        if r.params.get("sigma_rule").map(String::as_str) != Some("auto") {
            continue;
        }
        let Some(sigma) = r.params.get("sigma") else {
            continue;
        };
        if !chosen.iter().any(|(b, _)| *b == r.benchmark) {
            chosen.push((r.benchmark.clone(), sigma.clone()));
        }
    }
    if chosen.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "\nσ chosen by `sigma: auto` (half the typical per-coordinate spread of the two ends):\n\n",
    );
    for (benchmark, sigma) in chosen {
        let v: f64 = sigma.parse().unwrap_or(f64::NAN);
        out.push_str(&format!("- {benchmark}: σ = {}\n", format_value(v)));
    }
    out
}

/// The table as CSV (full precision; empty cells where there is no value).
pub fn csv(lines: &[Line]) -> String {
    let mut w = ::csv::Writer::from_writer(Vec::new());
    w.write_record([
        "benchmark",
        "method",
        "metric",
        "seeds",
        "mean",
        "std",
        "ci95",
        "published",
        "wall_s",
    ])
    .expect("in memory");
    let num = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
    for l in lines {
        w.write_record([
            l.benchmark.clone(),
            l.method.clone(),
            l.metric.clone(),
            l.seeds.to_string(),
            num(l.mean),
            num(l.std),
            num(l.ci95),
            num(l.published),
            num(l.wall_s),
        ])
        .expect("in memory");
    }
    String::from_utf8(w.into_inner().expect("in memory")).expect("UTF-8 fields")
}

/// The table as pretty JSON (an array of lines).
pub fn json(lines: &[Line]) -> String {
    serde_json::to_string_pretty(lines).expect("plain data serialises")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const EXP: &str = "
name: t
seeds: [0, 1, 2]
problems:
  - name: moons
    sigma: 1.0
    pi0: {kind: gaussian, dim: 2}
    pi1: {kind: moons}
    published:
      DSBM-IPF: {w2_forward: 0.140}
      DSB: {w2_forward: 0.190}
  - name: cells
    sigma: 1.0
    leave_one_out:
      course: {kind: differentiation}
      held_out: [1, 2]
    metrics: [w1]
    published:
      OT-CFM: {w1: 0.790}
      DSBM-IPF: {w1: 0.862}
methods:
  - method: {kind: dsbm, first_coupling: reference}
";

    fn row(benchmark: &str, method: &str, metric: &str, value: f64, seed: u64) -> Row {
        Row {
            benchmark: benchmark.into(),
            method: method.into(),
            params: BTreeMap::new(),
            metric: metric.into(),
            value,
            seed,
            wall_s: 2.0 + seed as f64,
        }
    }

    fn rows() -> Vec<Row> {
        let mut rows = Vec::new();
        for seed in 0..3 {
            let s = seed as f64;
            rows.push(row(
                "moons",
                "DSBM-IPF",
                "w2_forward",
                0.15 + 0.01 * s,
                seed,
            ));
            rows.push(row(
                "moons",
                "DSBM-IPF",
                "w2_backward",
                0.2 + 0.02 * s,
                seed,
            ));
            rows.push(row("cells t=1", "DSBM-IPF", "w1", 0.5 + 0.1 * s, seed));
        }
        // Seed 2 has not finished its second held-out time: the mean uses seeds 0 and 1.
        rows.push(row("cells t=2", "DSBM-IPF", "w1", 0.7, 0));
        rows.push(row("cells t=2", "DSBM-IPF", "w1", 0.9, 1));
        for b in ["cells t=1", "cells t=2"] {
            rows.push(row(b, "OT interpolation (reference)", "w1", 0.75, 0));
            rows.push(row(b, "Previous time (reference)", "w1", 1.25, 0));
        }
        rows
    }

    #[test]
    fn table_layout() {
        let exp = Experiment::parse(EXP, Path::new("t.yaml")).unwrap();
        let lines = build(&exp, &rows()).unwrap();
        insta::assert_snapshot!("markdown", markdown(&lines));
        insta::assert_snapshot!("csv", csv(&lines));
    }

    #[test]
    fn merged_rows_in_any_order_give_the_same_table() {
        let exp = Experiment::parse(EXP, Path::new("t.yaml")).unwrap();
        // Shards deliver whole jobs in any order; within a job, metrics keep their order.
        let mut jobs: Vec<Vec<Row>> = Vec::new();
        for r in rows() {
            match jobs.last_mut() {
                Some(j)
                    if (&j[0].benchmark, &j[0].method, j[0].seed)
                        == (&r.benchmark, &r.method, r.seed) =>
                {
                    j.push(r)
                }
                _ => jobs.push(vec![r]),
            }
        }
        jobs.reverse();
        let reordered: Vec<Row> = jobs.into_iter().flatten().collect();
        assert_ne!(reordered, rows());
        assert_eq!(
            build(&exp, &rows()).unwrap(),
            build(&exp, &reordered).unwrap()
        );
    }

    #[test]
    fn leave_one_out_mean_uses_complete_seeds() {
        let exp = Experiment::parse(EXP, Path::new("t.yaml")).unwrap();
        let lines = build(&exp, &rows()).unwrap();
        let mean = lines
            .iter()
            .find(|l| l.benchmark == "cells" && l.method == "DSBM-IPF")
            .unwrap();
        assert_eq!(mean.seeds, 2);
        // Seed 0: (0.5 + 0.7)/2 = 0.6; seed 1: (0.6 + 0.9)/2 = 0.75.
        assert!((mean.mean.unwrap() - 0.675).abs() < 1e-12);
        assert_eq!(mean.published, Some(0.862));
        let ot_cfm = lines.iter().find(|l| l.method == "OT-CFM").unwrap();
        assert_eq!((ot_cfm.seeds, ot_cfm.mean), (0, None));
    }

    #[test]
    fn ci95_matches_the_t_table() {
        // t(0.975, 2) = 4.302653; std 1, n = 3.
        let h = ci95(1.0, 3).unwrap();
        assert!((h - 4.302_653 / 3f64.sqrt()).abs() < 1e-5, "{h}");
        assert_eq!(ci95(1.0, 1), None);
    }
}
