#!/usr/bin/env bash
# Generates the Python message and stub modules for grpc.testing into target/py-gen/,
# from the official contract that Debian's grpc-proto package installs under
# /usr/share/grpc-proto. Nothing generated is committed; run again at will: the output
# directory is rebuilt from scratch in a temporary directory and swapped in whole, so a
# reader never sees a half-written package; when the fresh output equals what is already
# there, the existing tree is left untouched, so a peer already running keeps its files.
#
# The modules land in target/py-gen/grpc/testing/ because protoc names them after the
# .proto paths. There is deliberately no target/py-gen/grpc/__init__.py: the real `grpc`
# package from grpcio owns that name, and the peers append target/py-gen/grpc to
# grpc.__path__ so that `grpc.testing` resolves here while `grpc` stays grpcio.
set -euo pipefail
cd "$(dirname "$0")/../.."

venv=target/venv
protos=/usr/share/grpc-proto
out=target/py-gen

if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import grpc_tools" 2>/dev/null; then
  echo "gen.sh: no grpcio-tools in $venv; run tests/peers/setup.sh" >&2
  exit 1
fi
if [ ! -f "$protos/grpc/testing/test.proto" ]; then
  echo "gen.sh: $protos/grpc/testing/test.proto missing; run tests/peers/setup.sh" >&2
  exit 1
fi

mkdir -p target
tmp=$(mktemp -d target/py-gen.tmp.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
"$venv/bin/python" -m grpc_tools.protoc -I "$protos" \
  --python_out="$tmp" --grpc_python_out="$tmp" \
  "$protos/grpc/testing/empty.proto" \
  "$protos/grpc/testing/messages.proto" \
  "$protos/grpc/testing/test.proto"
touch "$tmp/grpc/testing/__init__.py"
if [ -d "$out" ] && diff -r -x __pycache__ "$tmp" "$out" >/dev/null 2>&1; then
  exit 0
fi
rm -rf "$out"
mv "$tmp" "$out"
trap - EXIT
