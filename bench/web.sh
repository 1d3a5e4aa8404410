#!/usr/bin/env bash
# bench/web.sh: the gRPC-Web rows. Unary SayHello as gRPC-Web (application/grpc-web+proto)
# against each server given, over HTTP/1.1 (h2load --h1, 16 connections, one call at a time
# on each: what a browser's connection pool does; no pipelining) and over HTTP/2 (1 connection,
# 100 concurrent streams, as the native 1 x 100 row). Called by bench/run; runs alone too, for
# a targeted measurement:
#
#   bench/web.sh OUT_DIR RESULTS.jsonl MODE REPS ours=BIN tonic=BIN
#
# MODE is `quick` (300 calls per figure) or `full` (3 s after 1 s of warm-up). Each BIN takes
# `--port N --threads 1 --web` (examples/greeter-server.rs built with `--features web`;
# bench/tonic-peer's tonic-server built with `--features web`, tonic-web's layer). Servers run
# on core 0, h2load on core 1; servers interleaved per repetition. Before the load, each server
# answers one call per HTTP version through curl, checked for the reply and `grpc-status: 0`
# in the trailer frame (h2load counts HTTP statuses only). Records go to RESULTS.jsonl as
# kind=web server=<impl>-web scenario=h1-16x1|h2-1x100 rep=N through bench/report.py.
set -euo pipefail
BENCH=$(cd "$(dirname "$0")" && pwd)
OUT=$1 RESULTS=$2 MODE=$3 REPS=$4
shift 4
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
HZ=$(getconf CLK_TCK)
printf '\0\0\0\0\x07\x0a\x05world' > "$OUT/hello.bin" # HelloRequest{name: "world"}
HEADERS=(-H 'content-type: application/grpc-web+proto' -H 'x-grpc-web: 1')
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_port() { # port pid
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    kill -0 "$2" 2>/dev/null || break
    sleep 0.1
  done
  echo "bench/web.sh: nothing listens on $1" >&2
  exit 1
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
report() { python3 "$BENCH/report.py" "$@"; }

# One call through curl: the HelloReply and grpc-status 0 must be in the body.
check() { # impl port http-flag
  local body
  body=$(curl -s --max-time 10 "$3" "${HEADERS[@]}" --data-binary @"$OUT/hello.bin" \
    "http://127.0.0.1:$2/helloworld.Greeter/SayHello" | tr -d '\0' | tr -c '[:print:]\n' '.') || true
  if [[ "$body" != *"Hello world"* || ! "$body" =~ grpc-status:\ ?0 ]]; then
    report record "$RESULTS" kind=web server="$1-web" scenario="check$3" ok=false \
      error="curl $3 got: $(printf '%s' "$body" | cut -c1-200)"
    return 1
  fi
}

load() { # impl port pid scenario rep h2load-args...
  local impl=$1 port=$2 pid=$3 scenario=$4 rep=$5
  shift 5
  local out=$OUT/h2load-web-$impl-$scenario-$rep.txt args=("$@")
  if [ "$MODE" = full ]; then args+=(-D 3 --warm-up-time 1); else args+=(-n 300); fi
  taskset -c 1 h2load "${args[@]}" -d "$OUT/hello.bin" "${HEADERS[@]}" \
    "http://127.0.0.1:$port/helloworld.Greeter/SayHello" > "$out" 2>&1 &
  local h=$! before after
  [ "$MODE" = full ] && sleep 1
  before=$(cpu_ticks "$pid")
  wait "$h" || true
  after=$(cpu_ticks "$pid")
  report h2load "$out" - "$RESULTS" kind=web server="$impl-web" scenario="$scenario" rep="$rep" \
    server_cpu_ticks=$((after - before)) hz="$HZ" \
    warm_up="$([ "$MODE" = full ] && echo true || echo false)"
}

impls=("$@")
for rep in $(seq "$REPS"); do
  for i in "${!impls[@]}"; do
    arg=${impls[$(( (i + rep - 1) % ${#impls[@]} ))]}
    impl=${arg%%=*} bin=${arg#*=}
    port=$(free_port)
    taskset -c 0 "$bin" --port "$port" --threads 1 --web >> "$OUT/server-$impl-web.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    wait_port "$port" "$pid"
    if check "$impl" "$port" --http1.1 && check "$impl" "$port" --http2-prior-knowledge; then
      load "$impl" "$port" "$pid" h1-16x1 "$rep" --h1 -t 1 -c 16 -m 1
      load "$impl" "$port" "$pid" h2-1x100 "$rep" -t 1 -c 1 -m 100
    fi
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
done
