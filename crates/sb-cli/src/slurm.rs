//! `sb slurm`: an experiment as a Slurm job array (one shard per task) and a dependent job
//! that merges the shards with `sb report`; and the shard a task runs, read from Slurm's
//! environment when `sb run` is given no `--shard`.

use std::path::{Path, PathBuf};

use crate::experiment::Experiment;
use crate::jobs::{jobs, Shard};
use crate::{CliError, Result};

/// Options of `sb slurm`.
#[derive(Clone, Debug)]
pub struct SlurmOptions {
    /// Array tasks (shards).
    pub jobs: usize,
    /// Where the scripts, the shards' run directories and the merged report go.
    pub out: PathBuf,
    /// `--time` of each task (Slurm's formats, e.g. `2:00:00`).
    pub time: Option<String>,
    /// `--partition`.
    pub partition: Option<String>,
    /// `--cpus-per-task` (also the threads each task uses). Defaults to 2.
    pub cpus: usize,
    /// `--mem` of each task (e.g. `8G`).
    pub mem: Option<String>,
    /// The `sb` executable the tasks run. Defaults to this one.
    pub sb: Option<PathBuf>,
}

/// What `sb slurm` wrote.
#[derive(Clone, Debug)]
pub struct SlurmFiles {
    /// The job array: one `sb run` shard per task.
    pub array: PathBuf,
    /// The merge job: `sb report` over the shards.
    pub merge: PathBuf,
    /// `sh submit.sh` submits both, the merge depending on the array's success.
    pub submit: PathBuf,
}

/// Writes the scripts for `experiment`.
///
/// # Errors
/// An invalid experiment, more tasks than jobs, or a file that cannot be written.
pub fn write_scripts(experiment: &Path, options: &SlurmOptions) -> Result<SlurmFiles> {
    let exp = Experiment::load(experiment)?;
    let total = jobs(&exp)?.len();
    if options.jobs == 0 || options.jobs > total {
        return Err(CliError::Input(format!(
            "--jobs {}: the experiment has {total} job(s), so 1 ≤ --jobs ≤ {total}",
            options.jobs
        )));
    }
    if options.cpus == 0 {
        return Err(CliError::Input("--cpus must be ≥ 1".into()));
    }
    let absolute =
        |p: &Path| -> Result<PathBuf> { std::path::absolute(p).map_err(|e| CliError::io(p, e)) };
    std::fs::create_dir_all(options.out.join("logs")).map_err(|e| CliError::io(&options.out, e))?;
    let out = options
        .out
        .canonicalize()
        .map_err(|e| CliError::io(&options.out, e))?;
    let experiment = experiment
        .canonicalize()
        .map_err(|e| CliError::io(experiment, e))?;
    let sb = match &options.sb {
        Some(p) => absolute(p)?,
        None => std::env::current_exe().map_err(|e| CliError::io(Path::new("sb"), e))?,
    };
    let files = SlurmFiles {
        array: out.join("array.sbatch"),
        merge: out.join("merge.sbatch"),
        submit: out.join("submit.sh"),
    };
    let (array, merge, submit) = scripts(&exp.name, &experiment, &sb, &out, options);
    for (path, text) in [
        (&files.array, array),
        (&files.merge, merge),
        (&files.submit, submit),
    ] {
        crate::layout::write_atomic(path, text.as_bytes())?;
    }
    Ok(files)
}

/// The texts of the array script, the merge script and the submit script.
fn scripts(
    name: &str,
    experiment: &Path,
    sb: &Path,
    out: &Path,
    options: &SlurmOptions,
) -> (String, String, String) {
    let q = |p: &Path| shell_quote(&p.display().to_string());
    let slug = crate::layout::slug(name);
    let mut header = format!(
        "#SBATCH --job-name=sb-{slug}\n#SBATCH --cpus-per-task={}\n",
        options.cpus
    );
    if let Some(t) = &options.time {
        header.push_str(&format!("#SBATCH --time={t}\n"));
    }
    if let Some(p) = &options.partition {
        header.push_str(&format!("#SBATCH --partition={p}\n"));
    }
    if let Some(m) = &options.mem {
        header.push_str(&format!("#SBATCH --mem={m}\n"));
    }
    let shard_dir = format!("{}/shard-${{SLURM_ARRAY_TASK_ID}}", q(out));
    let array = format!(
        "#!/bin/bash
# Written by `sb slurm`: {jobs} shards of {experiment}, one per array task; `sb run` reads
# its shard (task id over array size) from Slurm's environment. A requeued task resumes.
{header}#SBATCH --array=0-{last}
#SBATCH --output={log}/shard-%a.out
set -euo pipefail
export RAYON_NUM_THREADS=\"${{SLURM_CPUS_PER_TASK:-{cpus}}}\"
if [ -f \"{shard_dir}/config.yaml\" ]; then
  exec {sb} run --resume \"{shard_dir}\" --quiet
else
  exec {sb} run {exp} --out \"{shard_dir}\" --quiet
fi
",
        jobs = options.jobs,
        experiment = experiment.display(),
        last = options.jobs - 1,
        log = q(&out.join("logs")),
        cpus = options.cpus,
        sb = q(sb),
        exp = q(experiment),
    );
    let shards: Vec<String> = (0..options.jobs)
        .map(|i| q(&out.join(format!("shard-{i}"))))
        .collect();
    let merge = format!(
        "#!/bin/bash
# Written by `sb slurm`: merges the {jobs} shards into one table once every array task succeeded.
#SBATCH --job-name=sb-{slug}-report
#SBATCH --cpus-per-task=1
#SBATCH --output={log}/report.out
set -euo pipefail
exec {sb} report {shards} --out {report}
",
        jobs = options.jobs,
        log = q(&out.join("logs")),
        sb = q(sb),
        shards = shards.join(" "),
        report = q(&out.join("report")),
    );
    let submit = format!(
        "#!/bin/sh
# Written by `sb slurm`: submits the job array, then the merge to run after it succeeds.
set -eu
array=$(sbatch --parsable {array})
sbatch --parsable --dependency=afterok:\"${{array%%;*}}\" {merge}
echo \"submitted array ${{array%%;*}}; the merged table will be in {report}/report.md\"
",
        array = q(&out.join("array.sbatch")),
        merge = q(&out.join("merge.sbatch")),
        report = q(&out.join("report")),
    );
    (array, merge, submit)
}

/// Quotes a path for the shell when it needs it.
fn shell_quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// The shard of a Slurm array task, from its environment (`get` reads a variable): the task
/// id minus the array's first id, over the array's size. `None` outside an array.
///
/// # Errors
/// Variables that are not numbers, or an id outside the array.
pub fn shard_from_env(get: impl Fn(&str) -> Option<String>) -> Result<Option<Shard>> {
    let Some(id) = get("SLURM_ARRAY_TASK_ID") else {
        return Ok(None);
    };
    let number = |name: &str, text: Option<String>| -> Result<usize> {
        let text = text.ok_or_else(|| {
            CliError::Input(format!(
                "SLURM_ARRAY_TASK_ID is set but {name} is not; give --shard I/N"
            ))
        })?;
        text.trim().parse().map_err(|_| {
            CliError::Input(format!(
                "{name} = `{text}` is not a number; give --shard I/N"
            ))
        })
    };
    let id = number("SLURM_ARRAY_TASK_ID", Some(id))?;
    let min = number("SLURM_ARRAY_TASK_MIN", get("SLURM_ARRAY_TASK_MIN"))?;
    let count = number("SLURM_ARRAY_TASK_COUNT", get("SLURM_ARRAY_TASK_COUNT"))?;
    let index = id.checked_sub(min).filter(|i| *i < count).ok_or_else(|| {
        CliError::Input(format!(
            "Slurm array task {id} is outside the array ({count} tasks from {min}); give --shard I/N"
        ))
    })?;
    Ok(Some(Shard { index, count }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn the_shard_comes_from_the_array_task() {
        assert_eq!(shard_from_env(env(&[])).unwrap(), None);
        let got = shard_from_env(env(&[
            ("SLURM_ARRAY_TASK_ID", "7"),
            ("SLURM_ARRAY_TASK_MIN", "5"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ]))
        .unwrap();
        assert_eq!(got, Some(Shard { index: 2, count: 4 }));
        let e = shard_from_env(env(&[
            ("SLURM_ARRAY_TASK_ID", "9"),
            ("SLURM_ARRAY_TASK_MIN", "5"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(e.contains("outside the array"), "{e}");
        let e = shard_from_env(env(&[("SLURM_ARRAY_TASK_ID", "1")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("SLURM_ARRAY_TASK_MIN is not"), "{e}");
    }

    #[test]
    fn paths_with_spaces_are_quoted() {
        assert_eq!(shell_quote("/a/b-c.yaml"), "/a/b-c.yaml");
        assert_eq!(shell_quote("/my runs/x"), "'/my runs/x'");
    }
}
