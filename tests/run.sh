#!/usr/bin/env bash
# The test command: installs the real peers when missing (Debian's grpc-go and protoc, grpcio
# from PyPI into target/venv), then runs every test of the workspace, interop included.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tests/peers/setup.sh

# Style gates first: they are cheap and fail fast.
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
cargo clippy --workspace --all-targets --quiet --features metrics -- -D warnings
cargo clippy --workspace --all-targets --quiet --features fuzz -- -D warnings

cargo test --workspace --all-targets
# The optional features' own tests (compiled out of the default build).
cargo test --features metrics --test metrics
# Doc tests (not part of --all-targets).
cargo test --workspace --doc
# The bounded fuzz run (docs/testing.md § Fuzzing): each target 10 s, coverage-guided, on the
# stable toolchain; fails on any crash.
bash fuzz/run
