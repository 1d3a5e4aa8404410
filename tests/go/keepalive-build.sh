#!/usr/bin/env bash
# Builds the grpc-go peer of the keepalive tests (tests/keepalive_go.rs) and prints its path:
#
#   target/go/bin/bare-grpc-keepalive-peer
#
# Like tests/go/kit-build.sh: only packages Debian ships pre-generated (grpc-go 1.33's
# keepalive, stats and grpc_health_v1), GOPATH mode, no network, no module proxy:
#   tests/go/src/bare-grpc-kit/keepalive-peer   our source
#   /usr/share/gocode                           Debian's Go sources
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"

if ! command -v go >/dev/null 2>&1; then
  echo "tests/go/keepalive-build.sh: 'go' not found; run tests/peers/setup.sh" >&2
  exit 2
fi

bin_dir="$root/target/go/bin"
mkdir -p "$bin_dir" "$root/target/go-cache"
exec 9>"$root/target/go/.keepalive-build.lock"
flock 9

export GO111MODULE=off
export GOPATH="$root/tests/go:/usr/share/gocode"
export GOCACHE="$root/target/go-cache"
export GOFLAGS=""
go build -p 1 -o "$bin_dir/bare-grpc-keepalive-peer" bare-grpc-kit/keepalive-peer

echo "$bin_dir/bare-grpc-keepalive-peer"
