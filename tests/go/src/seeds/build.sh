#!/usr/bin/env bash
# Builds the grpc-go peers of the seed services, used by tests/seeds_go.rs:
#
#   tests/go/src/seeds/build.sh   -> prints the two binary paths, one per line:
#                                    target/go-seeds/bin/seeds-client
#                                    target/go-seeds/bin/seeds-server
#
# From Debian packages only (tests/peers/setup.sh installs them), no network: /usr/bin/protoc
# with protoc-gen-go and protoc-gen-go-grpc on proto/ecommerce/*.proto (the very files the
# Rust build compiles), and grpc-go 1.33 as source under /usr/share/gocode, in GOPATH mode.
#
# Layout (nothing generated is committed):
#   tests/go/src/seeds/{client,server}          our Go sources (GOPATH entry 2)
#   target/go-seeds/src/generated/ecommerce/    generated code (GOPATH entry 1)
#   target/go-seeds/bin/                        the binaries
#   target/go-seeds-cache/                      GOCACHE, so a rebuild takes a second
set -euo pipefail

root="$(cd "$(dirname "$0")/../../../.." && pwd)"
cd "$root"

for tool in go protoc protoc-gen-go protoc-gen-go-grpc; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "seeds build.sh: '$tool' not found; run tests/peers/setup.sh" >&2
    exit 2
  fi
done

protos=(ecommerce/product_info.proto ecommerce/order_management.proto)
gen_pkg=generated/ecommerce
out="$root/target/go-seeds"
gen_dir="$out/src/$gen_pkg"

# The seed protos carry no go_package option; M options give each file its Go import path
# and package name, so the .proto files stay exactly the seeds'.
m_opts=""
for p in "${protos[@]}"; do
  m_opts+="M$p=$gen_pkg;ecommerce,"
done
m_opts="${m_opts%,}"

mkdir -p "$out"
exec 9>"$out/.build.lock"
flock 9

tmp="$(mktemp -d "$out/gen.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
protoc -I proto \
  --go_out="$tmp" --go_opt=paths=source_relative,"$m_opts" \
  --go-grpc_out="$tmp" --go-grpc_opt=paths=source_relative,"$m_opts" \
  "${protos[@]}"
# Swap in only on change, so go build's cache stays warm.
if ! diff -r "$tmp/ecommerce" "$gen_dir" >/dev/null 2>&1; then
  rm -rf "$gen_dir"
  mkdir -p "$(dirname "$gen_dir")"
  mv "$tmp/ecommerce" "$gen_dir"
fi

mkdir -p "$out/bin" "$root/target/go-seeds-cache"
export GO111MODULE=off
export GOPATH="$out:$root/tests/go:/usr/share/gocode"
export GOCACHE="$root/target/go-seeds-cache"
export GOFLAGS=""
# Two cores are shared with cargo; one Go compile job at a time is plenty.
go build -p 1 -o "$out/bin/seeds-client" seeds/client
go build -p 1 -o "$out/bin/seeds-server" seeds/server

echo "$out/bin/seeds-client"
echo "$out/bin/seeds-server"
