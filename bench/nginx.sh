#!/usr/bin/env bash
# bench/nginx.sh: the "behind nginx" row. For each implementation given, two instances behind
# one nginx (the config tests/nginx_support generates and docs/deploy.md shows: grpc_pass to an
# upstream block, keepalive 128), then h2load's unary 1 x 100 through nginx. Called by bench/run;
# runs alone too, for a targeted measurement:
#
#   bench/nginx.sh OUT_DIR RESULTS.jsonl CALLS ours=BIN tonic=BIN go=BIN
#
# nginx runs unprivileged as in the tests: under root, master and worker as `nobody` through
# util-linux's setpriv, with its prefix (config, pid, logs, temp paths) chowned to nobody.
#
# Each BIN takes `--port N --threads 1`. Instances and nginx (one worker) run on core 0,
# h2load on core 1. Records go to RESULTS.jsonl as kind=unary server=nginx-<impl>
# scenario=1x100 rep=$REP (default 1) through bench/report.py; server_cpu_ticks is both instances' CPU and
# nginx_cpu_ticks nginx's (master and worker).
set -euo pipefail
BENCH=$(cd "$(dirname "$0")" && pwd)
OUT=$1 RESULTS=$2 CALLS=$3
shift 3
NGINX=${NGINX:-/usr/sbin/nginx}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
HZ=$(getconf CLK_TCK)
printf '\0\0\0\0\x07\x0a\x05world' > "$OUT/hello.bin" # HelloRequest{name: "world"}
HELLO_REPLY_BYTES=18
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
  echo "bench/nginx.sh: nothing listens on $1" >&2
  exit 1
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

for arg in "$@"; do
  impl=${arg%%=*} bin=${arg#*=}
  dir=$OUT/nginx-$impl
  mkdir -p "$dir/logs"
  ports=() pids=()
  for _ in 1 2; do
    port=$(free_port)
    taskset -c 0 "$bin" --port "$port" --threads 1 >> "$dir/server.log" 2>&1 &
    pids+=($!)
    PIDS+=($!)
    wait_port "$port" "$!"
    ports+=("$port")
  done
  nport=$(free_port)
  cat > "$dir/nginx.conf" <<CONF
daemon off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path $dir/client_body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    upstream grpc_backends {
        server 127.0.0.1:${ports[0]};
        server 127.0.0.1:${ports[1]};
        keepalive 128;
    }
    server {
        listen 127.0.0.1:$nport http2;
        client_max_body_size 8m;
        keepalive_requests 1000000;
        location / {
            grpc_pass grpc://grpc_backends;
            grpc_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
        }
    }
}
CONF
  as=()
  if [ "$(id -u)" = 0 ]; then
    chown -R nobody: "$dir"
    as=(setpriv --reuid="$(id -u nobody)" --regid="$(id -g nobody)" --clear-groups)
    "${as[@]}" test -r "$dir/nginx.conf" || {
      echo "bench/nginx.sh: nobody cannot read $dir/nginx.conf (directories above need o+x)" >&2
      exit 1
    }
  fi
  taskset -c 0 "${as[@]}" "$NGINX" -p "$dir" -c "$dir/nginx.conf" -e "$dir/logs/error.log" &
  npid=$!
  PIDS+=("$npid")
  wait_port "$nport" "$npid"
  for p in $npid $(pgrep -P "$npid"); do
    echo "nginx-$impl: pid $p $(grep '^Uid:' "/proc/$p/status" | tr '\t' ' ')"
  done
  nginx_ticks() { local t=0 p; for p in $npid $(pgrep -P "$npid"); do t=$((t + $(cpu_ticks "$p"))); done; echo $t; }
  out=$OUT/h2load-nginx-$impl.txt
  # A call count, not a duration: h2load's warm-up boundary miscounts status codes of calls
  # in flight across it, and a proxy keeps more of them in flight.
  taskset -c 1 h2load -t 1 -c 1 -m 100 -n "$CALLS" -d "$OUT/hello.bin" \
    -H 'content-type: application/grpc' -H 'te: trailers' \
    "http://127.0.0.1:$nport/helloworld.Greeter/SayHello" > "$out" 2>&1 &
  load=$!
  before=$(( $(cpu_ticks "${pids[0]}") + $(cpu_ticks "${pids[1]}") ))
  nbefore=$(nginx_ticks)
  wait "$load" || true
  after=$(( $(cpu_ticks "${pids[0]}") + $(cpu_ticks "${pids[1]}") ))
  nafter=$(nginx_ticks)
  python3 "$BENCH/report.py" h2load "$out" - "$RESULTS" kind=unary server="nginx-$impl" \
    scenario=1x100 rep="${REP:-1}" bytes_per_request=$HELLO_REPLY_BYTES server_cpu_ticks=$((after - before)) \
    nginx_cpu_ticks=$((nafter - nbefore)) hz="$HZ" warm_up=false
  kill -QUIT "$npid" 2>/dev/null || true
  wait "$npid" 2>/dev/null || true
  kill "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
done
