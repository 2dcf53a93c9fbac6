//! Result rows and their rendering as a Markdown table.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One number of a run: a metric of one method on one benchmark for one seed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// The problem's name.
    pub benchmark: String,
    /// The method's name (DSB, DSBM-IPF, DSBM-IMF, or the entry's label).
    pub method: String,
    /// The parameters that identify the configuration.
    pub params: BTreeMap<String, String>,
    /// The metric's name, with the direction evaluated (e.g. `w2_backward`).
    pub metric: String,
    /// The value.
    pub value: f64,
    /// The seed.
    pub seed: u64,
    /// Wall time of training and evaluation for this (benchmark, method, seed), in seconds.
    pub wall_s: f64,
}

/// Mean and sample standard deviation (0 for a single value).
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    if values.len() < 2 {
        return (mean, 0.0);
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

/// Renders rows as a Markdown table, one line per (benchmark, method, metric), values as
/// mean ± std over seeds, in the order the rows first appear.
pub fn markdown(rows: &[Row]) -> String {
    let mut order: Vec<(String, String, String)> = Vec::new();
    let mut groups: BTreeMap<(String, String, String), Vec<&Row>> = BTreeMap::new();
    for r in rows {
        let key = (r.benchmark.clone(), r.method.clone(), r.metric.clone());
        if !groups.contains_key(&key) {
            order.push(key.clone());
        }
        groups.entry(key).or_default().push(r);
    }
    let mut out = String::from(
        "| benchmark | method | metric | value (mean ± std) | seeds | wall s (mean) |\n|---|---|---|---|---|---|\n",
    );
    for key in order {
        let g = &groups[&key];
        let values: Vec<f64> = g.iter().map(|r| r.value).collect();
        let walls: Vec<f64> = g.iter().map(|r| r.wall_s).collect();
        let (m, s) = mean_std(&values);
        let (w, _) = mean_std(&walls);
        out.push_str(&format!(
            "| {} | {} | {} | {} ± {} | {} | {:.1} |\n",
            key.0,
            key.1,
            key.2,
            format_value(m),
            format_value(s),
            g.len(),
            w
        ));
    }
    out
}

/// Four significant digits, plain notation for ordinary magnitudes.
pub fn format_value(v: f64) -> String {
    if v == 0.0 || (1e-3..1e5).contains(&v.abs()) {
        let digits = if v == 0.0 {
            3
        } else {
            (3 - v.abs().log10().floor() as i32).max(0) as usize
        };
        format!("{v:.digits$}")
    } else {
        format!("{v:.3e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(method: &str, metric: &str, value: f64, seed: u64) -> Row {
        Row {
            benchmark: "moons".into(),
            method: method.into(),
            params: BTreeMap::new(),
            metric: metric.into(),
            value,
            seed,
            wall_s: 2.0,
        }
    }

    #[test]
    fn table_layout() {
        let rows = vec![
            row("DSB", "w2_backward", 0.25, 0),
            row("DSB", "w2_backward", 0.35, 1),
            row("DSBM-IMF", "w2_backward", 0.123456, 0),
            row("DSBM-IMF", "w2_backward", 0.0001234, 1),
        ];
        insta::assert_snapshot!(markdown(&rows));
    }

    #[test]
    fn mean_std_of_two() {
        let (m, s) = mean_std(&[1.0, 3.0]);
        assert!((m - 2.0).abs() < 1e-12 && (s - 2f64.sqrt()).abs() < 1e-12);
    }
}
