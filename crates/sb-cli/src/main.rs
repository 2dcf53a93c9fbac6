//! The `sb` binary: a thin shell around [`sb_cli::main_with_args`].

// candle's CPU backend allocates a fresh buffer for every operation; mimalloc serves those
// many short-lived, same-sized allocations faster than the system allocator
// (docs/performance.md has the measurement).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(sb_cli::main_with_args(std::env::args_os()));
}
