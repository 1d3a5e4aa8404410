#!/usr/bin/env bash
# Builds the grpc-go interop peers used by tests/interop_go.rs and tests/interop_go_server.rs.
#
#   tests/go/build.sh        -> prints the two binary paths, one per line:
#                               target/go/bin/bare-grpc-interop-client
#                               target/go/bin/bare-grpc-interop-server
#
# What it uses, all from Debian packages (tests/peers/setup.sh installs them), no network:
#   - /usr/bin/protoc with protoc-gen-go and protoc-gen-go-grpc, run on the official
#     contracts in /usr/share/grpc-proto/grpc/testing/{empty,messages,test}.proto;
#   - grpc-go 1.33 and its dependencies as source under /usr/share/gocode (GOPATH mode:
#     no go.mod, no module proxy, GO111MODULE=off).
#
# Layout (nothing generated is committed; everything below target/ is rebuilt on demand):
#   tests/go/src/bare-grpc-interop/{client,server,interop}   our Go sources (GOPATH entry 2)
#   target/go/src/generated/grpc_testing/*.pb.go             generated code  (GOPATH entry 1)
#   target/go/bin/                                           the binaries
#   target/go-cache/                                         GOCACHE, so a rebuild is quick
#
# Idempotent: the generated code is rewritten only when a .proto or a generator is newer
# than it, and `go build` reuses GOCACHE, so a second run takes about a second.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"

for tool in go protoc protoc-gen-go protoc-gen-go-grpc; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "tests/go/build.sh: '$tool' not found; run tests/peers/setup.sh" >&2
    exit 2
  fi
done

proto_root=/usr/share/grpc-proto
protos=(grpc/testing/empty.proto grpc/testing/messages.proto grpc/testing/test.proto)
gen_pkg=generated/grpc_testing
gen_dir="$root/target/go/src/$gen_pkg"
bin_dir="$root/target/go/bin"

# The official contracts carry no go_package option; M options give each file the Go
# import path (and package name) we want, so the .proto files stay untouched.
m_opts=""
for p in "${protos[@]}"; do
  m_opts+="M$p=$gen_pkg;grpc_testing,"
done
m_opts="${m_opts%,}"

# One build at a time: test binaries (or two checkouts of CI) may call this concurrently.
mkdir -p "$root/target/go"
exec 9>"$root/target/go/.build.lock"
flock 9

stale=0
stamp="$gen_dir/.generated"
if [ ! -f "$stamp" ]; then
  stale=1
else
  for input in "${protos[@]/#/$proto_root/}" "$(command -v protoc-gen-go)" \
               "$(command -v protoc-gen-go-grpc)" "$0"; do
    if [ "$input" -nt "$stamp" ]; then stale=1; fi
  done
fi

if [ "$stale" -eq 1 ]; then
  tmp="$(mktemp -d "$root/target/go-gen.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  protoc -I "$proto_root" \
    --go_out="$tmp" --go_opt=paths=source_relative,"$m_opts" \
    --go-grpc_out="$tmp" --go-grpc_opt=paths=source_relative,"$m_opts" \
    "${protos[@]}"
  rm -rf "$gen_dir"
  mkdir -p "$gen_dir"
  mv "$tmp"/grpc/testing/*.go "$gen_dir"/
  touch "$stamp"
fi

mkdir -p "$bin_dir" "$root/target/go-cache"
export GO111MODULE=off
export GOPATH="$root/target/go:$root/tests/go:/usr/share/gocode"
export GOCACHE="$root/target/go-cache"
export GOFLAGS=""
# Two cores are shared with cargo; one Go compile job at a time is plenty.
go build -p 1 -o "$bin_dir/bare-grpc-interop-client" bare-grpc-interop/client
go build -p 1 -o "$bin_dir/bare-grpc-interop-server" bare-grpc-interop/server

echo "$bin_dir/bare-grpc-interop-client"
echo "$bin_dir/bare-grpc-interop-server"
