#!/usr/bin/env bash
# Instructions per unary call of our client, from callgrind (docs/performance.md,
# § "What an interceptor costs"): our greeter-server on core 0, the bench client under
# `valgrind --tool=callgrind` on core 1 making 2,000 and then (a second run) 22,000 sequential
# SayHello calls; per call = (total of 22,000 - total of 2,000) / 20,000, which cancels startup.
#
#   bench/callgrind-client-unary.sh LABEL CLIENT_BIN [--interceptor sync|async]
#   bench/callgrind-client-unary.sh async target/release/examples/bench-client --interceptor async
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="$root/target/callgrind"
mkdir -p "$dir"
label=$1; shift; bin=$1; shift
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
taskset -c 0 "$root/target/release/examples/greeter-server" --port $port --threads 1 &
spid=$!
trap 'kill -TERM $spid' EXIT
for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
t() { n=$1; shift;
  taskset -c 1 valgrind --tool=callgrind --callgrind-out-file=$dir/client.$label.$n.out "$bin" unary --port $port --count "$n" --streams 1 --threads 1 "${extra[@]}" >/dev/null 2>$dir/client.$label.$n.log
  grep -E "^(summary|totals):" $dir/client.$label.$n.out | head -1 | awk '{print $2}'
}
extra=("$@"); a=$(t 2000); b=$(t 22000)
echo "$label: 2000 calls $a, 22000 calls $b, per call $(( (b - a) / 20000 ))"
