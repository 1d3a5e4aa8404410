#!/bin/sh
# deploy/build-static.sh OUT_DIR: the two binaries of the image (interop-server, health-probe),
# statically linked against musl and stripped, copied into OUT_DIR. deploy/Dockerfile runs this
# script in its build stage, and tests/deploy.rs runs the same script on the host and starts its
# output inside an empty root, so the image's binaries are the tested ones.
#
# Static: Rust's musl target links musl's libc.a (shipped with the target's rust-std) into the
# executable; nothing is loaded at run time, so `scratch` needs no /lib. Neither binary
# resolves names: the server binds an address, the probe dials an IP literal.
set -eu
OUT=$1
TARGET=x86_64-unknown-linux-musl
TARGET_DIR=${CARGO_TARGET_DIR:-target}
# Examples build with the dev-dependencies, and one of them (rcgen's `ring`) compiles C: the
# host's gcc does, as no musl-gcc is needed for that (neither binary links ring; the C objects
# only serve the test certificates' generator). No musl-tools package, on the host or in the
# image's build stage.
CC_x86_64_unknown_linux_musl=gcc \
RUSTFLAGS="-C target-feature=+crt-static" \
  "${CARGO:-cargo}" build --release --locked --target "$TARGET" \
  --example interop-server --example health-probe
mkdir -p "$OUT"
for bin in interop-server health-probe; do
  cp "$TARGET_DIR/$TARGET/release/examples/$bin" "$OUT/$bin"
  strip "$OUT/$bin"
done
