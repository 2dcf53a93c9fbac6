//! The runner's front-end contract: what a `Reporter` is told, in which order, and that an
//! observer it hands out can stop a run (a front end's Ctrl-C), leaving a resumable directory.

use std::path::Path;

use sb_methods::{Observer, StepInfo};
use sb_runner::{Job, Reporter, RunOptions, RunnerError};

const EXPERIMENT: &str = "
name: reporter
seeds: [0]
problems:
  - name: g
    sigma: 1.0
    pi0: {kind: gaussian, dim: 2, mean: -1.0, cov: 1.0}
    pi1: {kind: gaussian, dim: 2, mean: 1.0, cov: 1.0}
methods:
  - method: {kind: dsbm, num_steps: 5, first_coupling: independent}
    net: {hidden: [8]}
    train: {passes: 2, steps_per_pass: 20, batch_size: 32, cache_size: 64}
eval:
  samples: 50
  metrics: [w2]
";

/// Records every call; its observers count steps and ask to stop after `stop_after` of them.
#[derive(Default)]
struct Recorder {
    events: Vec<String>,
    steps: usize,
    stop_after: Option<usize>,
}

struct Steps<'a> {
    steps: &'a mut usize,
    stop_after: Option<usize>,
}

impl Observer for Steps<'_> {
    fn step(&mut self, _info: &StepInfo) {
        *self.steps += 1;
    }
    fn interrupted(&mut self) -> bool {
        self.stop_after.is_some_and(|n| *self.steps >= n)
    }
}

impl Reporter for Recorder {
    fn run_dir(&mut self, dir: &Path) {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        self.events.push(format!("run_dir {name}"));
    }
    fn summary(&mut self, text: &str, _warnings: &[String]) {
        assert!(!text.is_empty());
        self.events.push("summary".into());
    }
    fn training(&mut self, job: &Job) -> Option<Box<dyn Observer + '_>> {
        self.events
            .push(format!("training {} {}", job.method, job.seed));
        Some(Box::new(Steps {
            steps: &mut self.steps,
            stop_after: self.stop_after,
        }))
    }
    fn job_done(&mut self, job: &Job, values: &[(String, f64)], _wall_s: f64) {
        let names: Vec<&str> = values.iter().map(|(k, _)| k.as_str()).collect();
        self.events
            .push(format!("done {} {}", job.method, names.join(",")));
    }
}

fn experiment_file(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("exp.yaml");
    std::fs::write(&path, EXPERIMENT).unwrap();
    path
}

#[test]
fn a_reporter_hears_the_summary_each_job_and_every_step() {
    let tmp = tempfile::tempdir().unwrap();
    let options = RunOptions {
        out: Some(tmp.path().join("run")),
        ..RunOptions::default()
    };
    let mut recorder = Recorder::default();
    let (_, rows) = sb_runner::run(&experiment_file(tmp.path()), &options, &mut recorder).unwrap();
    assert_eq!(
        recorder.events,
        [
            "summary",
            "run_dir run",
            "training DSBM-IMF 0",
            "done DSBM-IMF w2_forward,w2_backward",
        ]
    );
    assert_eq!(recorder.steps, 40); // 2 passes × 20 steps
    assert_eq!(rows.len(), 2);
}

#[test]
fn an_observer_that_asks_to_stop_ends_the_run_and_it_resumes_to_the_same_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let file = experiment_file(tmp.path());
    let run = |out: &str, stop_after| {
        let options = RunOptions {
            out: Some(tmp.path().join(out)),
            ..RunOptions::default()
        };
        let mut recorder = Recorder {
            stop_after,
            ..Recorder::default()
        };
        sb_runner::run(&file, &options, &mut recorder)
    };
    let whole = run("whole", None).unwrap().1;
    let err = run("stopped", Some(25)).unwrap_err();
    assert!(
        matches!(
            err,
            RunnerError::Method(sb_methods::MethodError::Interrupted { pass: 1, step: 4 })
        ),
        "{err}"
    );
    let stopped = tmp.path().join("stopped");
    let (_, resumed) = sb_runner::resume(&stopped, &mut sb_runner::Silent).unwrap();
    let values = |rows: &[sb_runner::Row]| -> Vec<(String, u64)> {
        rows.iter()
            .map(|r| (r.metric.clone(), r.value.to_bits()))
            .collect()
    };
    assert_eq!(values(&resumed), values(&whole));
}
