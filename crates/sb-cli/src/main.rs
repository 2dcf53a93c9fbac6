//! The `sb` binary: a thin shell around [`sb_cli::main_with_args`].

fn main() {
    std::process::exit(sb_cli::main_with_args(std::env::args_os()));
}
