#!/usr/bin/env bash
# Instructions per unary call of our client through one plain channel, through round_robin
# over 2 backends, and through round_robin over the first alone (docs/performance.md,
# § "What round_robin costs"), from callgrind: two greeter-servers on core 0, the bench
# client under `valgrind --tool=callgrind` on core 1 making 2,000 and then (a second run)
# 22,000 sequential SayHello calls; per call = (total of 22,000 - total of 2,000) / 20,000,
# which cancels start-up (as bench/callgrind-client-unary.sh does for one backend).
#
#   bench/callgrind-client-lb.sh [BIN_DIR]     BIN_DIR holds greeter-server and bench-client
#                                              (default target/release/examples)
#
# The .out files stay in target/callgrind/ for `callgrind_annotate`.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bins=${1:-$root/target/release/examples}
dir="$root/target/callgrind"
mkdir -p "$dir"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pids=()
trap 'for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done' EXIT
ports=()
for _ in 1 2; do
  port=$(free_port)
  taskset -c 0 "$bins/greeter-server" --port "$port" --threads 1 &
  pids+=($!)
  for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  ports+=("$port")
done
t() { label=$1; n=$2; shift 2
  taskset -c 1 valgrind --tool=callgrind --callgrind-out-file="$dir/client-lb.$label.$n.out" \
    "$bins/bench-client" unary --count "$n" --streams 1 --threads 1 "$@" \
    >/dev/null 2>"$dir/client-lb.$label.$n.log"
  grep -E "^(summary|totals):" "$dir/client-lb.$label.$n.out" | head -1 | awk '{print $2}'
}
per_call() { label=$1; shift
  a=$(t "$label" 2000 "$@"); b=$(t "$label" 22000 "$@")
  echo "$label: 2000 calls $a, 22000 calls $b, per call $(( (b - a) / 20000 ))"
}
per_call plain --port "${ports[0]}"
per_call round_robin --target "ipv4:127.0.0.1:${ports[0]},127.0.0.1:${ports[1]}" --lb round_robin
# The pick alone: round_robin over the first backend only (one connection, as plain).
per_call round_robin_1 --target "ipv4:127.0.0.1:${ports[0]}" --lb round_robin
