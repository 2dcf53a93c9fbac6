//! Result rows (one number of one job) and how numbers are printed; [`crate::table`]
//! aggregates them.

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

    #[test]
    fn mean_std_of_two() {
        let (m, s) = mean_std(&[1.0, 3.0]);
        assert!((m - 2.0).abs() < 1e-12 && (s - 2f64.sqrt()).abs() < 1e-12);
    }

    /// `sb report` and `sbridge.report` read results.json back: every value must come back
    /// bit for bit (serde_json's default float parser can miss by one ulp; this value did).
    #[test]
    fn values_survive_results_json_bit_for_bit() {
        let values = [
            0.17652127989772579,
            0.1765212798977258,
            1e-300,
            0.1 + 0.2,
            2.0f64.sqrt(),
        ];
        let rows: Vec<Row> = values
            .iter()
            .map(|&value| Row {
                benchmark: "b".into(),
                method: "m".into(),
                params: BTreeMap::new(),
                metric: "w2_forward".into(),
                value,
                seed: 0,
                wall_s: 0.1,
            })
            .collect();
        let text = serde_json::to_string_pretty(&rows).unwrap();
        let back: Vec<Row> = serde_json::from_str(&text).unwrap();
        for (a, b) in rows.iter().zip(&back) {
            assert_eq!(
                a.value.to_bits(),
                b.value.to_bits(),
                "{} came back as {}",
                a.value,
                b.value
            );
        }
    }
}
