#!/usr/bin/env bash
# Generates the Python message and stub modules of the seed protos (proto/person.proto,
# proto/route_guide.proto, proto/chat.proto: the very files the Rust build compiles) into
# target/py-seeds/, the way the seeds do it (`python -m grpc_tools.protoc`). Prints that
# directory. Nothing generated is committed; the output is built in a temporary directory and
# swapped in whole, and left alone when it would not change, so a client already running keeps
# its files.
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
cd "$root"

venv=target/venv
out=target/py-seeds
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import grpc_tools" 2>/dev/null; then
  echo "gen.sh: no grpcio-tools in $venv; run tests/peers/setup.sh" >&2
  exit 1
fi

mkdir -p target
exec 9>target/.py-seeds.lock
flock 9
tmp=$(mktemp -d target/py-seeds.tmp.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
"$venv/bin/python" -m grpc_tools.protoc -I proto --python_out="$tmp" --grpc_python_out="$tmp" \
  proto/person.proto proto/route_guide.proto proto/chat.proto
if [ -d "$out" ] && diff -r -x __pycache__ "$tmp" "$out" >/dev/null 2>&1; then
  echo "$root/$out"
  exit 0
fi
rm -rf "$out"
mv "$tmp" "$out"
trap - EXIT
echo "$root/$out"
