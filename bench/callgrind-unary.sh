#!/usr/bin/env bash
# Instructions per unary call of a server binary, from callgrind (docs/performance.md,
# § "What an interceptor costs"): the server under `valgrind --tool=callgrind` on core 0,
# h2load on core 1 sending 2,000 then 20,000 SayHello calls (-c 1 -m 100); prints the
# program's instruction total divided by the 22,000 calls (startup included, the same in
# every variant, so differences between variants are the per-call cost).
#
#   bench/callgrind-unary.sh LABEL SERVER_BINARY [server args...]
#   bench/callgrind-unary.sh async target/release/examples/greeter-server --interceptor async
#
# Instruction counts do not move with other load on the machine, so this runs beside builds.
set -euo pipefail
label=$1; shift
bin=$1; shift
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="$root/target/callgrind"
mkdir -p "$dir"
# HelloRequest{name: "world"} with its 5-byte prefix.
printf '\x00\x00\x00\x00\x07\x0a\x05world' > "$dir/hello.bin"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
out="$dir/callgrind.$label.out"
taskset -c 0 valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" --port "$port" --threads 1 "$@" \
  2>"$dir/valgrind.$label.log" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  sleep 0.1
done
headers=(-H 'content-type: application/grpc' -H 'te: trailers')
url="http://127.0.0.1:$port/helloworld.Greeter/SayHello"
for n in 2000 20000; do
  taskset -c 1 h2load -t 1 -c 1 -m 100 -n "$n" -d "$dir/hello.bin" "${headers[@]}" "$url" \
    | grep -E "^requests:" >&2
done
# SIGTERM, not SIGINT: a background job of a non-interactive shell ignores SIGINT.
kill -TERM "$pid"
wait "$pid" || true
trap - EXIT
total=$(grep -E "^(summary|totals):" "$out" | head -1 | awk '{print $2}')
echo "$label: $total instructions, $((total / 22000)) per call"
