//! A run killed with SIGKILL and resumed ends with the same results as an uninterrupted run.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const EXPERIMENT: &str = "
name: killed
seeds: [5]
problems:
  - name: gauss
    sigma: 1.0
    pi0: {kind: gaussian, dim: 2, mean: -1.0, cov: 0.5}
    pi1: {kind: gaussian, dim: 2, mean: 1.0, cov: 1.0}
methods:
  - method: {kind: dsb, num_steps: 5}
    net: {hidden: [32]}
    train: {passes: 4, steps_per_pass: 600, batch_size: 64, lr: 1.0e-3, cache_size: 128, ema_decay: 0.99}
  - method: {kind: dsbm, num_steps: 5, first_coupling: reference}
    net: {hidden: [32]}
    train: {passes: 4, steps_per_pass: 600, batch_size: 64, lr: 1.0e-3, cache_size: 128}
eval:
  samples: 100
  metrics: [w2, mmd]
";

fn sb(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_sb"))
        .args(args)
        .arg("--quiet")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sb")
}

fn finish(child: Child) {
    let out = child.wait_with_output().expect("wait for sb");
    assert!(
        out.status.success(),
        "sb failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Waits for `path` to exist, then kills the process with SIGKILL.
fn kill_when(mut child: Child, path: &Path) {
    let start = Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "{} never appeared",
            path.display()
        );
        if let Some(status) = child.try_wait().expect("poll sb") {
            panic!("sb ended ({status}) before {} appeared", path.display());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();
}

fn values(dir: &Path) -> Vec<(String, String, u64, f64)> {
    let text = std::fs::read_to_string(dir.join("results.json")).expect("results.json");
    let rows: Vec<serde_json::Value> = serde_json::from_str(&text).expect("json");
    rows.iter()
        .map(|r| {
            (
                r["method"].as_str().unwrap().to_string(),
                r["metric"].as_str().unwrap().to_string(),
                r["seed"].as_u64().unwrap(),
                r["value"].as_f64().unwrap(),
            )
        })
        .collect()
}

fn checkpoint(run: &Path, method: &str, pass: usize) -> PathBuf {
    run.join(format!(
        "models/gauss/{method}/seed5/checkpoints/pass{pass:04}"
    ))
}

#[test]
fn killed_twice_and_resumed_equals_uninterrupted() {
    let tmp = tempfile::tempdir().unwrap();
    let exp = tmp.path().join("killed.yaml");
    std::fs::write(&exp, EXPERIMENT).unwrap();
    let (exp_s, whole, cut) = (
        exp.to_str().unwrap(),
        tmp.path().join("whole"),
        tmp.path().join("cut"),
    );

    // Killed during the first job's second pass...
    kill_when(
        sb(&["run", exp_s, "--out", cut.to_str().unwrap()]),
        &checkpoint(&cut, "DSB", 1),
    );
    assert!(
        !cut.join("results.json").exists(),
        "the first job must not have finished"
    );
    // ...resumed, and killed again during the second job's third pass...
    kill_when(
        sb(&["run", "--resume", cut.to_str().unwrap()]),
        &checkpoint(&cut, "DSBM-IPF", 2),
    );
    let partial = values(&cut);
    assert!(
        !partial.is_empty() && partial.iter().all(|r| r.0 == "DSB"),
        "{partial:?}"
    );
    // ...and resumed to the end.
    finish(sb(&["run", "--resume", cut.to_str().unwrap()]));

    finish(sb(&["run", exp_s, "--out", whole.to_str().unwrap()]));
    let (a, b) = (values(&whole), values(&cut));
    assert_eq!(a.len(), 2 * 2 * 2);
    assert_eq!(
        a, b,
        "a resumed run must end with the uninterrupted run's values"
    );
    // The training logs too: the interrupted passes' lines are dropped on resume, so each
    // logged step appears once, with the uninterrupted run's loss.
    for method in ["DSB", "DSBM-IPF"] {
        let log = |run: &Path| {
            std::fs::read_to_string(
                run.join(format!("models/gauss/{method}/seed5/train_log.jsonl")),
            )
            .unwrap()
        };
        assert_eq!(log(&whole), log(&cut), "{method}");
    }
}

#[test]
fn ctrl_c_says_how_to_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let exp = tmp.path().join("killed.yaml");
    std::fs::write(&exp, EXPERIMENT).unwrap();
    let cut = tmp.path().join("cut");
    let child = sb(&["run", exp.to_str().unwrap(), "--out", cut.to_str().unwrap()]);
    let start = Instant::now();
    while !checkpoint(&cut, "DSB", 1).exists() {
        assert!(start.elapsed() < Duration::from_secs(300), "no checkpoint");
        std::thread::sleep(Duration::from_millis(5));
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "continue with `sb run --resume {}`",
            cut.display()
        )),
        "{stderr}"
    );
    finish(sb(&["run", "--resume", cut.to_str().unwrap()]));
    assert_eq!(values(&cut).len(), 8);
}

#[test]
fn a_truncated_latest_checkpoint_falls_back_to_the_one_before() {
    let tmp = tempfile::tempdir().unwrap();
    let exp = tmp.path().join("killed.yaml");
    std::fs::write(&exp, EXPERIMENT).unwrap();
    let (exp_s, whole, cut) = (
        exp.to_str().unwrap(),
        tmp.path().join("whole"),
        tmp.path().join("cut"),
    );
    kill_when(
        sb(&["run", exp_s, "--out", cut.to_str().unwrap()]),
        &checkpoint(&cut, "DSB", 2),
    );
    // A crash that left the latest checkpoint's weights half written.
    let latest = checkpoint(&cut, "DSB", 2);
    for entry in std::fs::read_dir(&latest).unwrap().flatten() {
        let p = entry.path();
        if p.extension().is_some_and(|e| e == "safetensors") {
            let bytes = std::fs::read(&p).unwrap();
            std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
        }
    }
    let out = sb(&["run", "--resume", cut.to_str().unwrap()])
        .wait_with_output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("pass0002/") && stderr.contains("cannot be read"),
        "{stderr}"
    );
    assert!(
        stderr.contains("resuming from the older checkpoint") && stderr.contains("pass0001"),
        "{stderr}"
    );
    finish(sb(&["run", exp_s, "--out", whole.to_str().unwrap()]));
    assert_eq!(values(&whole), values(&cut));
}

#[test]
fn a_run_directory_in_use_is_locked() {
    let tmp = tempfile::tempdir().unwrap();
    let exp = tmp.path().join("killed.yaml");
    std::fs::write(&exp, EXPERIMENT).unwrap();
    let cut = tmp.path().join("cut");
    let running = sb(&["run", exp.to_str().unwrap(), "--out", cut.to_str().unwrap()]);
    let start = Instant::now();
    while !checkpoint(&cut, "DSB", 1).exists() {
        assert!(start.elapsed() < Duration::from_secs(300), "no checkpoint");
        std::thread::sleep(Duration::from_millis(5));
    }
    // A second process on the same directory is refused, naming the holder.
    let second = sb(&["run", "--resume", cut.to_str().unwrap()])
        .wait_with_output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("is in use by process {}", running.id())),
        "{stderr}"
    );
    // Once the holder is gone (killed: its lock is left behind), resuming takes over.
    let mut running = running;
    running.kill().unwrap();
    let _ = running.wait();
    assert!(cut.join("run.lock").exists());
    finish(sb(&["run", "--resume", cut.to_str().unwrap()]));
    assert!(!cut.join("run.lock").exists());
    assert_eq!(values(&cut).len(), 8);
}
