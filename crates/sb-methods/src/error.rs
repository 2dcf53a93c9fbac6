use crate::Direction;

/// Everything that can go wrong while building, training or sampling a bridge.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MethodError {
    /// An error from candle (shapes, devices, files of weights).
    #[error("tensor error: {0}")]
    Candle(#[from] candle_core::Error),
    /// An error from the data layer.
    #[error(transparent)]
    Data(#[from] sb_data::DataError),
    /// A configuration value is invalid; the message names the key.
    #[error("{0}")]
    Config(String),
    /// Training produced a non-finite loss or sample.
    /// Shown 1-based, with the iteration (a pair of passes, one per direction) it belongs to,
    /// counted as in `metrics_log.jsonl`.
    #[error(
        "training diverged in iteration {iteration}, pass {shown_pass} ({direction}), step {shown_step}: {what}",
        iteration = .pass / 2 + 1,
        shown_pass = .pass + 1,
        shown_step = .step + 1
    )]
    Diverged {
        /// Zero-based pass.
        pass: usize,
        /// The direction the pass was training.
        direction: Direction,
        /// Zero-based optimizer step within the pass.
        step: usize,
        /// What was non-finite.
        what: String,
    },
    /// An observer stopped training (the user pressed Ctrl-C).
    #[error("interrupted in pass {shown_pass}, step {shown_step}", shown_pass = .pass + 1, shown_step = .step + 1)]
    Interrupted {
        /// Zero-based pass.
        pass: usize,
        /// Zero-based optimizer step within the pass.
        step: usize,
    },
    /// Sampling produced non-finite values.
    #[error("sampling {direction} produced non-finite values at Euler step {step}")]
    NonFiniteSample {
        /// The direction sampled.
        direction: Direction,
        /// Zero-based Euler step.
        step: usize,
    },
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, MethodError>;
