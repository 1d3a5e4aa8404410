#!/usr/bin/env bash
# Builds bench/go-peer into $1/bin/go-server (GOPATH mode, Debian's grpc-go 1.33).
# The Go code for the protos is generated here, under $1, and never committed.
set -euo pipefail
out=${1:?usage: build-go.sh OUT_DIR}
here=$(cd "$(dirname "$0")" && pwd)
proto=$here/../proto
mkdir -p "$out/src/benchpeer" "$out/bin"
for p in helloworld bench; do
  protoc -I "$proto" \
    --go_out="$out/src" --go_opt="M$p.proto=benchpeer/$p" \
    --go-grpc_out="$out/src" --go-grpc_opt="M$p.proto=benchpeer/$p" \
    "$proto/$p.proto"
done
rm -rf "$out/src/benchpeer/server"
mkdir -p "$out/src/benchpeer/server"
cp "$here/go-peer/server.go" "$out/src/benchpeer/server/"
GO111MODULE=off GOPATH="$out:/usr/share/gocode" GOCACHE="$out/cache" \
  go build -o "$out/bin/go-server" benchpeer/server
