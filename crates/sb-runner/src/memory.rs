//! Memory estimated before anything runs: an experiment whose networks, caches or exact-OT
//! evaluations cannot fit in this machine's memory is refused with the number and the
//! limit, instead of aborting in the allocator hours later.
//!
//! The estimates are upper bounds of the large allocations, not of every byte: the networks
//! (weights, gradients, two Adam moments and an EMA copy, two networks), the training cache,
//! one batch's activations and the particles of an evaluation. Exact OT needs no estimate:
//! above [`sb_eval::DENSE_MAX_PAIRS`] (18 MB of costs) it computes costs from the points
//! instead of holding the dense matrix.

use std::path::Path;

use sb_eval::memory::{available_bytes, human_bytes};

use crate::experiment::Experiment;
use crate::protocol::ProblemData;
use crate::{Result, RunnerError};

/// Copies of the network parameters alive in training: weights, gradients, Adam's two
/// moments, the EMA copy.
const PARAMETER_COPIES: u64 = 5;

/// The largest allocations of one (problem, method), in bytes, with what they are.
pub fn estimates(exp: &Experiment, data: &[ProblemData]) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let b = |x: usize| x as u64;
    for (i, (p, d)) in exp.problems.iter().zip(data).enumerate() {
        let pi = exp.problem_key(i);
        let dim = match d {
            ProblemData::Pair { pi0, .. } => pi0.dim(),
            ProblemData::Course(course) => course.dim(),
        };
        for (j, m) in exp.methods.iter().enumerate() {
            let mj = exp.method_key(j);
            let steps = m
                .method
                .build(p.sigma.for_checks())
                .map_or(1, |s| s.steps(sb_methods::Direction::Forward).len());
            let mut widths = vec![dim + m.net.time_dim.max(1)];
            widths.extend(&m.net.hidden);
            widths.push(dim);
            let params: u64 = widths
                .windows(2)
                .map(|w| (b(w[0]) + 1).saturating_mul(b(w[1])))
                .fold(0, u64::saturating_add);
            let key = format!("problems[{pi}] × methods[{mj}]");
            out.push((
                format!("{key}: the two networks (hidden {:?})", m.net.hidden),
                params.saturating_mul(4 * PARAMETER_COPIES * 2),
            ));
            let widest = b(*widths.iter().max().unwrap_or(&1));
            out.push((
                format!(
                    "{key}: one batch's activations (train.batch_size = {})",
                    m.train.batch_size
                ),
                b(m.train.batch_size)
                    .saturating_mul(widest)
                    .saturating_mul(b(widths.len()))
                    .saturating_mul(4 * 3),
            ));
            out.push((
                format!(
                    "{key}: the training cache (train.cache_size = {})",
                    m.train.cache_size
                ),
                b(m.train.cache_size)
                    .saturating_mul(b(steps + 1))
                    .saturating_mul(b(dim))
                    .saturating_mul(4 * 2),
            ));
            let particles = exp.eval.samples.max(exp.eval.kl_samples);
            out.push((
                format!(
                    "{key}: the evaluation's particles and paths (eval.samples, eval.kl_samples)"
                ),
                b(particles)
                    .saturating_mul(b(steps + 1))
                    .saturating_mul(b(dim).max(widest))
                    .saturating_mul(4),
            ));
        }
    }
    out
}

/// Refuses the experiment when one of its allocations exceeds the available memory.
///
/// # Errors
/// The largest allocation that does not fit, with its size and the limit.
pub fn check(exp: &Experiment, data: &[ProblemData], file: &Path) -> Result<()> {
    let Some(available) = available_bytes() else {
        return Ok(());
    };
    let largest = estimates(exp, data)
        .into_iter()
        .max_by_key(|(_, bytes)| *bytes);
    match largest {
        Some((what, bytes)) if bytes > available => Err(RunnerError::Config {
            file: file.to_path_buf(),
            message: format!(
                "{what} needs about {} but this machine has {} of memory available; reduce it (or run on a larger machine)",
                human_bytes(bytes),
                human_bytes(available)
            ),
        }),
        _ => Ok(()),
    }
}
