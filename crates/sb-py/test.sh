#!/usr/bin/env bash
# Builds the Python package `sbridge` with maturin (abi3 wheel, Python ≥ 3.9), installs it and runs its
# tests against the fixtures of crates/sb-eval (POT and SciPy values). Called by .ci/run.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
python3 -m pip install -q -r "$here/requirements-test.txt"
rm -rf "$here/target/wheels"
(cd "$here" && python3 -m maturin build --release --locked -o target/wheels)
python3 -m pip install -q --force-reinstall --no-deps "$here"/target/wheels/sbridge-*.whl
# The `sb` binary, for the test that `sb sample` reads a model saved from Python. Built with the
# workspace's test features (as `cargo test --workspace` built it): `-p sb-cli` alone unifies
# features differently and would rebuild candle and everything above it.
root=$(cd "$here/../.." && pwd)
(cd "$root" && cargo build -q --workspace --all-targets)
SB_BIN="$root/target/debug/sb" python3 -m pytest -q "$here/tests"
