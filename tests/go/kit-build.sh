#!/usr/bin/env bash
# Builds the grpc-go peers of the health and reflection tests (tests/health.rs,
# tests/reflection.rs) and prints their paths, one per line:
#
#   target/go/bin/bare-grpc-health-client
#   target/go/bin/bare-grpc-reflection-client
#   target/go/bin/bare-grpc-auth-peer          (tests/async_auth.rs)
#   target/go/bin/bare-grpc-never-read-server  (tests/slow_readers.rs)
#   target/go/bin/bare-grpc-health-server      (tests/balancing_health.rs)
#
# Both use only packages Debian ships pre-generated (grpc-go 1.33's grpc_health_v1 and
# grpc_reflection_v1alpha, google.golang.org/protobuf's protodesc/descriptorpb), so unlike
# tests/go/build.sh there is no protoc step. GOPATH mode, no network, no module proxy:
#   tests/go/src/bare-grpc-kit/{health-client,reflection-client}   our sources
#   /usr/share/gocode                                              Debian's Go sources
# GOCACHE is shared with tests/go/build.sh (target/go-cache), so a rebuild takes a second.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"

if ! command -v go >/dev/null 2>&1; then
  echo "tests/go/kit-build.sh: 'go' not found; run tests/peers/setup.sh" >&2
  exit 2
fi

bin_dir="$root/target/go/bin"
mkdir -p "$bin_dir" "$root/target/go-cache"
# One build at a time: two test binaries may call this concurrently.
exec 9>"$root/target/go/.kit-build.lock"
flock 9

export GO111MODULE=off
export GOPATH="$root/tests/go:/usr/share/gocode"
export GOCACHE="$root/target/go-cache"
export GOFLAGS=""
# Two cores are shared with cargo; one Go compile job at a time is plenty.
go build -p 1 -o "$bin_dir/bare-grpc-health-client" bare-grpc-kit/health-client
go build -p 1 -o "$bin_dir/bare-grpc-reflection-client" bare-grpc-kit/reflection-client
go build -p 1 -o "$bin_dir/bare-grpc-auth-peer" bare-grpc-kit/auth-peer
go build -p 1 -o "$bin_dir/bare-grpc-never-read-server" bare-grpc-kit/never-read-server
go build -p 1 -o "$bin_dir/bare-grpc-health-server" bare-grpc-kit/health-server

echo "$bin_dir/bare-grpc-health-client"
echo "$bin_dir/bare-grpc-reflection-client"
echo "$bin_dir/bare-grpc-auth-peer"
echo "$bin_dir/bare-grpc-never-read-server"
echo "$bin_dir/bare-grpc-health-server"
