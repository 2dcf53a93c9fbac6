//! The `sb` binary: a thin shell around [`sb_cli::main_with_args`].

// candle's CPU backend allocates a fresh buffer for every operation; mimalloc serves those
// many short-lived, same-sized allocations faster than the system allocator
// (docs/performance.md has the measurement).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How long candle's element-wise worker thread busy-waits for more work after each large
/// operation, unless the user sets it. candle's default (25,000 spins) keeps a core busy
/// while the network's own threads want it: a training step of the 3 × 256 network at batch
/// 512 ran at ~390 steps/s with the default and ~480 with 50 (docs/performance.md).
const CANDLE_SPIN_LIMIT: &str = "50";

fn main() {
    if std::env::var_os("CANDLE_BARRIER_POOL_SPIN_LIMIT").is_none() {
        // Before any tensor work: candle reads it when its worker pool starts.
        std::env::set_var("CANDLE_BARRIER_POOL_SPIN_LIMIT", CANDLE_SPIN_LIMIT);
    }
    std::process::exit(sb_cli::main_with_args(std::env::args_os()));
}
