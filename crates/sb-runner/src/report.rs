//! `sb report`: merge run directories (shards of one sweep, or runs of the same experiment
//! with different seeds) into one table.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::experiment::Experiment;
use crate::jobs::jobs;
use crate::results::Row;
use crate::table::{build, Line};
use crate::{Result, RunnerError};

/// What `sb report` found in the directories.
#[derive(Debug)]
pub struct Report {
    /// The experiment, with the union of the directories' seeds.
    pub experiment: Experiment,
    /// The merged rows, one per (benchmark, method, seed, metric).
    pub rows: Vec<Row>,
    /// The table.
    pub lines: Vec<Line>,
    /// Jobs of the experiment that no directory holds, as `benchmark / method / seed N`.
    pub missing: Vec<String>,
}

/// Reads a run directory's experiment (`config.yaml`) and finished rows (`results.json`,
/// none yet if absent); `command` names the subcommand in the error for a non-run directory.
pub(crate) fn read_run(dir: &Path, command: &str) -> Result<(Experiment, Vec<Row>)> {
    let config = dir.join("config.yaml");
    if !config.is_file() {
        return Err(RunnerError::Input(format!(
            "{}: not a run directory (no config.yaml); `{command}` takes directories written by `sb run`",
            dir.display()
        )));
    }
    let exp = Experiment::load(&config)?;
    let results = dir.join("results.json");
    let rows: Vec<Row> =
        crate::error::read_if_present(&results, |t| serde_json::from_str(t))?.unwrap_or_default();
    Ok((exp, rows))
}

/// Merges `dirs` into one table.
///
/// The directories must hold the same experiment, up to its seeds (shards of one sweep, or
/// `--seed` runs); their seeds are united. A job found in two directories is counted once.
///
/// # Errors
/// No directory, a directory that is not a run, or runs of different experiments (naming
/// the two directories).
pub fn report(dirs: &[PathBuf]) -> Result<Report> {
    let Some(first) = dirs.first() else {
        return Err(RunnerError::Input("give at least one run directory".into()));
    };
    let (mut experiment, mut rows) = read_run(first, "sb report")?;
    let strip = |e: &Experiment| {
        let mut e = e.clone();
        e.seeds.clear();
        e
    };
    let mut seen: BTreeMap<(String, String, u64, String), f64> = rows
        .iter()
        .map(|r| {
            (
                (
                    r.benchmark.clone(),
                    r.method.clone(),
                    r.seed,
                    r.metric.clone(),
                ),
                r.value,
            )
        })
        .collect();
    for dir in &dirs[1..] {
        let (exp, more) = read_run(dir, "sb report")?;
        if strip(&exp) != strip(&experiment) {
            return Err(RunnerError::Input(format!(
                "{} and {} hold different experiments (their config.yaml differ beyond seeds); report them separately",
                first.display(),
                dir.display()
            )));
        }
        for s in exp.seeds {
            if !experiment.seeds.contains(&s) {
                experiment.seeds.push(s);
            }
        }
        for r in more {
            let key = (
                r.benchmark.clone(),
                r.method.clone(),
                r.seed,
                r.metric.clone(),
            );
            if seen.contains_key(&key) {
                continue;
            }
            seen.insert(key, r.value);
            rows.push(r);
        }
    }
    let missing = jobs(&experiment)?
        .into_iter()
        .filter(|j| {
            !rows
                .iter()
                .any(|r| r.benchmark == j.benchmark && r.method == j.method && r.seed == j.seed)
        })
        .map(|j| format!("{} / {} / seed {}", j.benchmark, j.method, j.seed))
        .collect();
    let lines = build(&experiment, &rows)?;
    Ok(Report {
        experiment,
        rows,
        lines,
        missing,
    })
}

impl Report {
    /// The Markdown table, with the note listing σ chosen by `sigma: auto` (what `sb report`
    /// prints).
    pub fn markdown(&self) -> String {
        format!(
            "{}{}",
            crate::table::markdown(&self.lines),
            crate::table::auto_sigma_note(&self.rows)
        )
    }

    /// Writes `report.md`, `report.csv`, `report.json` and the merged `results.json` in `dir`
    /// (created if needed), each replaced atomically.
    ///
    /// # Errors
    /// The folder or a file cannot be written.
    pub fn write(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| RunnerError::io(dir, e))?;
        let rows = serde_json::to_string_pretty(&self.rows).expect("rows serialise");
        for (name, text) in [
            ("report.md", self.markdown()),
            ("report.csv", crate::table::csv(&self.lines)),
            ("report.json", crate::table::json(&self.lines)),
            ("results.json", rows),
        ] {
            crate::layout::write_atomic(&dir.join(name), text.as_bytes())?;
        }
        Ok(())
    }
}
