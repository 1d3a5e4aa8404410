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
cargo clippy --workspace --all-targets --quiet --features tls -- -D warnings
cargo clippy --workspace --all-targets --quiet --features fuzz -- -D warnings

cargo test --workspace --all-targets
# The optional features' own tests (compiled out of the default build).
cargo test --features metrics --test metrics
cargo test --features tls --lib --test tls --test tls_go --test tls_go_server --test tls_python
# Behind nginx with TLS to nginx and h2c or TLS upstream (docs/deploy.md).
cargo test --features tls --test nginx_tls
# Doc tests (not part of --all-targets).
cargo test --workspace --doc
# Publishable, without uploading: both crates package and each package builds from its own
# files (the library's build needs its protos inside it); the docs build with no warning.
cargo package -p bare-grpc-codegen -p bare-grpc --offline --allow-dirty --quiet
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps -p bare-grpc -p bare-grpc-codegen --quiet
# grpc-wiretap (feature wiretap): its clippy gate, its unit tests (HPACK against RFC 7541
# Appendix C), its peer tests (docs/wiretap.md) and the walkthroughs it prints.
cargo clippy --workspace --all-targets --quiet --features wiretap -- -D warnings
cargo test --features wiretap --bin grpc-wiretap --test wiretap --test wire_walkthroughs
# The bounded fuzz run (docs/testing.md § Fuzzing): each target 10 s, coverage-guided, on the
# stable toolchain; fails on any crash.
bash fuzz/run
# tracing (feature tracing): clippy, the interceptor chain's unit tests with the span link, the
# spans and fields a subscriber sees (docs/tracing.md).
cargo clippy --workspace --all-targets --quiet --features tracing -- -D warnings
cargo test --features tracing --lib --test tracing --test interceptors
# gRPC-Web (feature web): clippy, then HTTP/1.1 and HTTP/2 gRPC-Web clients against the server's
# port, CORS and the bad inputs (docs/web.md).
cargo clippy --workspace --all-targets --quiet --features web -- -D warnings
cargo test --features web --lib --test web
# gRPC-Web in Debian's Chromium (feature web): real npm gRPC-Web clients on a page served by the
# test, cross-origin, driven by playwright-core (docs/testing.md § gRPC-Web in a real browser).
cargo test --features web --test browser
# The same page over HTTP/2, which a browser speaks only over TLS: the server with feature tls too.
cargo test --features web,tls --test browser browser_calls_grpc_web_over_tls_h2
