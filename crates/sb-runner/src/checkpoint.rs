//! Checkpoints on disk: one folder per pass boundary, written atomically, the last few kept.
//!
//! ```text
//! <model dir>/checkpoints/pass0003/state.json          passes done, next direction, generator state
//!                                  /forward.safetensors  live weights (and forward_ema.safetensors)
//!                                  /backward.safetensors
//! ```

use std::path::{Path, PathBuf};

use candle_core::Device;
use sb_data::SbRng;
use sb_methods::net::{DriftNet, NetConfig};
use sb_methods::{Checkpoint, Checkpointer, Direction, MethodError, Resume, SavedModel};
use serde::{Deserialize, Serialize};

use crate::{Result, RunnerError};

#[derive(Serialize, Deserialize)]
struct State {
    passes_done: usize,
    next_direction: Direction,
    rng: SbRng,
}

/// Writes each checkpoint to `<dir>/passNNNN` through a temporary folder and a rename, and
/// keeps the last `keep`.
pub struct DirCheckpointer {
    dir: PathBuf,
    keep: usize,
}

impl DirCheckpointer {
    /// Checkpoints under `dir`, keeping the last `keep` (at least one).
    pub fn new(dir: PathBuf, keep: usize) -> Self {
        Self {
            dir,
            keep: keep.max(1),
        }
    }

    fn write(&self, c: &Checkpoint<'_>) -> Result<()> {
        std::fs::create_dir_all(&self.dir).map_err(|e| RunnerError::io(&self.dir, e))?;
        let name = format!("pass{:04}", c.passes_done);
        let tmp = self.dir.join(format!("{name}.tmp"));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(|e| RunnerError::io(&tmp, e))?;
        }
        std::fs::create_dir(&tmp).map_err(|e| RunnerError::io(&tmp, e))?;
        for (d, model) in [
            (Direction::Forward, c.forward),
            (Direction::Backward, c.backward),
        ] {
            if let Some(m) = model {
                m.net()
                    .save(&m.net().params()?, &tmp.join(format!("{d}.safetensors")))?;
                if let Some(ema) = m.ema_params() {
                    m.net()
                        .save(ema, &tmp.join(format!("{d}_ema.safetensors")))?;
                }
            }
        }
        let state = State {
            passes_done: c.passes_done,
            next_direction: c.next_direction,
            rng: c.rng.clone(),
        };
        let json = serde_json::to_string(&state).expect("plain data serialises");
        crate::layout::write_atomic(&tmp.join("state.json"), json.as_bytes())?;
        let done = self.dir.join(&name);
        if done.exists() {
            std::fs::remove_dir_all(&done).map_err(|e| RunnerError::io(&done, e))?;
        }
        std::fs::rename(&tmp, &done).map_err(|e| RunnerError::io(&done, e))?;
        let all = list(&self.dir);
        for old in all.iter().take(all.len().saturating_sub(self.keep)) {
            std::fs::remove_dir_all(old).map_err(|e| RunnerError::io(old, e))?;
        }
        Ok(())
    }
}

impl Checkpointer for DirCheckpointer {
    fn save(&mut self, checkpoint: &Checkpoint<'_>) -> std::result::Result<(), MethodError> {
        self.write(checkpoint)
            .map_err(|e| MethodError::Config(format!("writing a checkpoint: {e}")))
    }
}

/// Finished checkpoint folders under `dir`, oldest first (temporary ones are ignored).
fn list(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.is_dir()
                        && p.file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(|n| n.starts_with("pass") && !n.ends_with(".tmp"))
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

/// Loads the latest readable checkpoint under `dir`, if any: the resume state and the
/// generator to continue with. A checkpoint that cannot be read (a truncated file after a
/// crash) is skipped with a warning naming it, and the one before it is used.
///
/// # Errors
/// No checkpoint is readable though some exist (the error names the latest one's file), or a
/// checkpoint does not fit the network.
pub fn load_latest(
    dir: &Path,
    net: &NetConfig,
    dim: usize,
    device: &Device,
) -> Result<Option<(Resume, SbRng)>> {
    let mut found = list(dir);
    let mut first_error = None;
    while let Some(latest) = found.pop() {
        match load_one(&latest, net, dim, device) {
            Ok(loaded) => {
                if let Some(e) = &first_error {
                    eprintln!(
                        "warning: {e}; resuming from the older checkpoint {} instead",
                        latest.display()
                    );
                }
                return Ok(Some(loaded));
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(RunnerError::Input(format!(
            "{e}; no older checkpoint is readable, so the job cannot resume: delete {} to start it afresh",
            dir.display()
        ))),
        None => Ok(None),
    }
}

/// One checkpoint folder; errors name the file that could not be read.
fn load_one(
    folder: &Path,
    net: &NetConfig,
    dim: usize,
    device: &Device,
) -> Result<(Resume, SbRng)> {
    let state_path = folder.join("state.json");
    let text = std::fs::read_to_string(&state_path).map_err(|e| RunnerError::io(&state_path, e))?;
    let state: State = serde_json::from_str(&text).map_err(|e| RunnerError::io(&state_path, e))?;
    let load = |file: PathBuf| -> Result<Option<Vec<candle_core::Tensor>>> {
        if !file.exists() {
            return Ok(None);
        }
        let holder = DriftNet::new(net, dim, device, &mut SbRng::new(0))?;
        holder
            .load(&file)
            .map_err(|e| RunnerError::Input(format!("{}: cannot be read: {e}", file.display())))?;
        Ok(Some(holder.params()?))
    };
    let saved = |d: Direction| -> Result<Option<SavedModel>> {
        let Some(params) = load(folder.join(format!("{d}.safetensors")))? else {
            return Ok(None);
        };
        let ema = load(folder.join(format!("{d}_ema.safetensors")))?;
        Ok(Some(SavedModel { params, ema }))
    };
    let resume = Resume {
        passes_done: state.passes_done,
        next_direction: state.next_direction,
        forward: saved(Direction::Forward)?,
        backward: saved(Direction::Backward)?,
    };
    Ok((resume, state.rng))
}

/// Fixed evaluation points: (starts in π0, true π1 samples, starts in π1, true π0 samples).
pub type EvalPoints = (
    ndarray::Array2<f32>,
    ndarray::Array2<f64>,
    ndarray::Array2<f32>,
    ndarray::Array2<f64>,
);

/// Saves checkpoints through a [`DirCheckpointer`], then evaluates the models as they stand:
/// exact W2 in both directions on fixed evaluation points, one JSON line per pass in
/// `metrics_log.jsonl` (the data of the metric-against-iteration chart). Its draws come from
/// their own generator, so training and the final metrics are unaffected.
pub struct EvaluatingCheckpointer {
    inner: DirCheckpointer,
    log: PathBuf,
    points: EvalPoints,
    rng: SbRng,
}

impl EvaluatingCheckpointer {
    /// Checkpoints in `inner`, evaluation lines appended to `log`.
    pub fn new(inner: DirCheckpointer, log: PathBuf, points: EvalPoints, rng: SbRng) -> Self {
        Self {
            inner,
            log,
            points,
            rng,
        }
    }

    fn evaluate(&mut self, c: &Checkpoint<'_>) -> Result<()> {
        let (start0, true1, start1, true0) = &self.points;
        // Each pass uses the same noise, so the curve shows the models, not the sampling noise.
        let mut rng = self.rng.clone();
        let fwd = c.sample(Direction::Forward, start0, &mut rng)?;
        let bwd = c.sample(Direction::Backward, start1, &mut rng)?;
        let w2 = |g: &ndarray::Array2<f32>, t: &ndarray::Array2<f64>| -> Result<f64> {
            Ok(sb_eval::w2(g.mapv(f64::from).view(), t.view())?.value)
        };
        let line = serde_json::json!({
            "pass": c.passes_done,
            "iteration": c.passes_done.div_ceil(2),
            "w2_forward": w2(fwd.end(), true1)?,
            "w2_backward": w2(bwd.end(), true0)?,
        });
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| RunnerError::io(&self.log, e))?;
        writeln!(f, "{line}").map_err(|e| RunnerError::io(&self.log, e))
    }
}

impl Checkpointer for EvaluatingCheckpointer {
    fn save(&mut self, checkpoint: &Checkpoint<'_>) -> std::result::Result<(), MethodError> {
        self.inner.save(checkpoint)?;
        self.evaluate(checkpoint)
            .map_err(|e| MethodError::Config(format!("evaluating after a pass: {e}")))
    }
}
