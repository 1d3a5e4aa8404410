#!/usr/bin/env python3
"""Parsing and reporting for bench/run (standard library only, system python3).

  report.py h2load OUT LOG RESULTS key=value...   parse one h2load run, append a JSON line
  report.py client OUT RESULTS key=value...       parse one RESULT line of a bench client
  report.py record RESULTS key=value...           append a JSON line as given (numbers parsed)
  report.py timed OUT SECS -- COMMAND...          run COMMAND (killed after SECS), its output to
                                                  OUT, then a line `CPU user_s=.. sys_s=..`:
                                                  the CPU time it used, for per-call figures
  report.py render RESULTS OUT.md                 write the report between its markers

Every parser checks what it reads: an h2load run is `ok` only when every request finished
with a 2xx and the DATA bytes add up to one expected answer per request (so a server that
answered with an empty body or an error status is caught), a client run only when the
client printed its RESULT line (the clients compare answers themselves).
"""

import json
import re
import resource
import statistics
import subprocess
import sys

BEGIN = "<!-- bench/run: begin generated section -->"
END = "<!-- bench/run: end generated section -->"


def value(text):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    if text in ("true", "false"):
        return text == "true"
    return text


def pairs(args):
    out = {}
    for arg in args:
        key, _, val = arg.partition("=")
        out[key] = value(val)
    return out


def append(results, record):
    with open(results, "a") as f:
        f.write(json.dumps(record) + "\n")


def percentile(sorted_values, p):
    if not sorted_values:
        return None
    k = min(len(sorted_values) - 1, max(0, round(p / 100 * (len(sorted_values) - 1))))
    return sorted_values[k]


def parse_h2load(out_path, log_path, meta):
    text = open(out_path, errors="replace").read()
    record = dict(meta)
    record["ok"] = False
    m = re.search(r"finished in ([\d.]+)(ms|s|us), ([\d.]+) req/s", text)
    req = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                    r"(\d+) failed, (\d+) errored, (\d+) timeout", text)
    status = re.search(r"status codes: (\d+) 2xx", text)
    data = re.search(r"traffic: .*?\((\d+)\) total, .*?\((\d+)\) headers.*?\((\d+)\) data", text)
    if not (m and req and status and data):
        record["error"] = "h2load output not understood: " + text.strip()[-300:]
        return record
    secs = float(m.group(1)) / {"s": 1, "ms": 1e3, "us": 1e6}[m.group(2)]
    done, succeeded = int(req.group(3)), int(req.group(4))
    failed, errored = int(req.group(5)), int(req.group(6))
    total, header_bytes, data_bytes = (int(data.group(i)) for i in (1, 2, 3))
    # Every frame has a 9-byte header: what is neither header block nor DATA payload is
    # (almost all) DATA frame headers, so this estimates how many DATA frames arrived.
    record.update(secs=secs, rps=float(m.group(3)), done=done, succeeded=succeeded,
                  data_bytes=data_bytes, frames=(total - header_bytes - data_bytes) // 9)
    expected = meta.get("bytes_per_request")
    problems = []
    if done == 0 or succeeded != done or failed or errored:
        problems.append(f"{done} done, {succeeded} succeeded, {failed} failed, {errored} errored")
    if int(status.group(1)) != succeeded:
        problems.append(f"{status.group(1)} 2xx of {succeeded}")
    # With --warm-up-time, h2load counts the warm-up's bytes in `traffic` but not its requests
    # in `done`: every answer is still exactly `expected` bytes, and there are at least `done`.
    answers, rest = divmod(data_bytes, expected) if expected else (done, 0)
    if rest or answers < done or (not meta.get("warm_up") and answers != done):
        problems.append(f"{data_bytes} DATA bytes for {done} requests of {expected} bytes each")
    if log_path and log_path != "-":
        lat = sorted(int(line.split("\t")[2]) for line in open(log_path) if line.count("\t") >= 2)
        record.update(p50_us=percentile(lat, 50), p99_us=percentile(lat, 99))
    cpu = meta.get("server_cpu_ticks")
    if cpu is not None and done:
        record["server_cpu_us_per_request"] = cpu * 1e6 / meta.get("hz", 100) / done
    if "count" in meta and done:
        record["msgs_per_s"] = meta["count"] * done / secs
        if cpu is not None:
            record["server_cpu_us_per_msg"] = cpu * 1e6 / meta.get("hz", 100) / (meta["count"] * done)
    record["ok"] = not problems
    if problems:
        record["error"] = "; ".join(problems)
    return record


def parse_client(out_path, meta):
    text = open(out_path, errors="replace").read()
    record = dict(meta)
    m = re.search(r"RESULT scenario=(\S+) count=(\d+) bytes=(\d+) secs=([\d.]+)", text)
    if not m:
        record.update(ok=False, error=text.strip()[-300:] or "no RESULT line")
        return record
    count, nbytes, secs = int(m.group(2)), int(m.group(3)), float(m.group(4))
    record.update(ok=True, count=count, bytes=nbytes, secs=secs,
                  per_s=count / secs, mb_per_s=nbytes / secs / 1e6)
    cpu = re.search(r"^CPU user_s=([\d.]+) sys_s=([\d.]+)", text, re.M)
    if cpu and count:
        # The client's whole run (start-up included) over its calls.
        record["cpu_us_per_call"] = (float(cpu.group(1)) + float(cpu.group(2))) * 1e6 / count
        record["user_us_per_call"] = float(cpu.group(1)) * 1e6 / count
    return record


def timed(out_path, limit, command):
    """Runs `command` with its output to `out_path`, then appends the CPU it used."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(out_path, "w") as out:
        try:
            code = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT,
                                  timeout=limit).returncode
        except subprocess.TimeoutExpired:
            code = "timeout"
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(out_path, "a") as out:
        out.write(f"CPU user_s={after.ru_utime - before.ru_utime:.6f} "
                  f"sys_s={after.ru_stime - before.ru_stime:.6f} exit={code}\n")
    return 0


# ---------------------------------------------------------------------------------------------
# rendering

SERVERS = [("ceiling", "raw-h2 ceiling"), ("ours", "bare-grpc"), ("tonic", "tonic"),
           ("go", "grpc-go")]


def load(results):
    return [json.loads(line) for line in open(results) if line.strip()]


def runs(records, **match):
    return [r for r in records if all(r.get(k) == v for k, v in match.items())]


def summary(records, field, **match):
    """(median, min, max, n_ok, n_failed) of `field` over the ok runs that match."""
    chosen = runs(records, **match)
    values = [r[field] for r in chosen if r.get("ok") and r.get(field) is not None]
    failed = sum(1 for r in chosen if not r.get("ok"))
    if not values:
        return None, None, None, 0, failed
    return statistics.median(values), min(values), max(values), len(values), failed


def fmt(x, digits=0):
    if x is None:
        return "—"
    if digits == 0:
        return f"{x:,.0f}"
    return f"{x:,.{digits}f}"


def cell(records, field, digits=0, scale=1.0, **match):
    med, lo, hi, n, failed = summary(records, field, **match)
    if med is None:
        return "failed" if failed else "—"
    text = f"{fmt(med * scale, digits)} ({fmt(lo * scale, digits)}–{fmt(hi * scale, digits)})"
    if failed:
        text += f", {failed} failed"
    return text


def median(records, field, **match):
    return summary(records, field, **match)[0]


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def render(results_path, out_path):
    records = load(results_path)
    meta = next((r for r in records if r.get("kind") == "meta"), {})
    lines = [BEGIN, ""]
    say = lines.append
    say(f"## Results of {meta.get('date', '?')} ({meta.get('mode', '?')} run, "
        f"bare-grpc at `{meta.get('revision', '?')}`)")
    say("")
    say(f"Machine: {meta.get('nproc', '?')} cores, `{meta.get('cpu', '?')}`, "
        f"{meta.get('kernel', '?')}; rustc {meta.get('rustc', '?')}, {meta.get('go', '?')}, "
        f"{meta.get('h2load', '?')}; load average {meta.get('load_before', '?')} at the start, "
        f"{meta.get('load_after', '?')} at the end. Runs per figure: {meta.get('reps', '?')}, interleaved "
        f"across servers; cells are the median (min–max). Servers run pinned to core 0 "
        f"(`taskset -c 0`) with {meta.get('threads', 1)} tokio worker(s) / GOMAXPROCS, load "
        f"pinned to core 1.")
    say("")

    # --- targets ------------------------------------------------------------------------------
    u = lambda srv, sc: median(records, "rps", kind="unary", server=srv, scenario=sc)
    lat = lambda srv, q: median(records, q, kind="unary", server=srv, scenario="1x1")
    pump = lambda srv: median(records, "msgs_per_s", kind="pump", server=srv)
    cl = lambda pair, sc, f: median(records, f, kind="client", pair=pair, scenario=sc)
    foot = {r["impl"]: r for r in records if r.get("kind") == "footprint"}
    mem = lambda srv, st: median(records, "rss_kb", kind="memory", server=srv, state=st)

    rows = []

    def target(figure, measured, goal_text, passed, detail):
        verdict = "—" if passed is None else ("**met**" if passed else "**missed**")
        rows.append(f"| {figure} | {fmt(measured, 2)} | {goal_text} | {verdict} | {detail} |")

    for sc in ("1x100", "4x64"):
        r = ratio(u("ours", sc), u("ceiling", sc))
        t = ratio(u("tonic", sc), u("ceiling", sc))
        target(f"unary req/s {sc.replace('x', ' × ')}, ours / ceiling", r, "≥ 0.90",
               None if r is None else r >= 0.9, f"tonic / ceiling {fmt(t, 2)}")
    for q, name in (("p50_us", "p50"), ("p99_us", "p99")):
        o, t, c = lat("ours", q), lat("tonic", q), lat("ceiling", q)
        r = ratio(o, c)
        passed = None if r is None or t is None else (o <= t and r <= 1.10)
        target(f"unary latency 1 × 1 {name}, ours / ceiling", r, "≤ 1.10 and ours ≤ tonic",
               passed, f"ours {fmt(o)} µs, tonic {fmt(t)} µs, ceiling {fmt(c)} µs")
    r = ratio(pump("ours"), pump("ceiling"))
    target(f"server-streaming msgs/s (h2load, 1 Pump of {fmt(meta.get('pump_count'))}), "
           "ours / ceiling", r,
           "≥ 0.85", None if r is None else r >= 0.85,
           f"tonic / ceiling {fmt(ratio(pump('tonic'), pump('ceiling')), 2)}")
    for sc, name in (("h1-16x1", "HTTP/1.1 16 × 1"), ("h2-1x100", "HTTP/2 1 × 100")):
        wr = ratio(median(records, "rps", kind="web", server="ours-web", scenario=sc),
                   median(records, "rps", kind="web", server="tonic-web", scenario=sc))
        if wr is not None:
            target(f"gRPC-Web unary req/s {name}, ours / tonic-web", wr, "≥ 1.00", wr >= 1.0,
                   "bench/web.sh, docs/web.md")
    ours_pp, tonic_pp = cl("ours", "pingpong", "per_s"), cl("tonic", "pingpong", "per_s")
    r = ratio(ours_pp, tonic_pp)
    floor = cl("floor", "pingpong", "per_s")
    detail = "each client against its own server"
    if floor:
        # What the target asks for, against what plain blocking TCP does on this machine.
        need = None if tonic_pp is None else 1.3 * tonic_pp
        detail += (f"; plain-TCP floor {fmt(floor)}/s, ours {fmt(ratio(ours_pp, floor), 2)}"
                   f" of it, 1.3 × tonic would be {fmt(ratio(need, floor), 2)} of it")
    target("bidi ping-pong round trips/s, ours / tonic", r, "≥ 1.30",
           None if r is None else r >= 1.3, detail)
    for sc, name in (("big-down", "server → client"), ("big-up", "client → server")):
        r = ratio(cl("ours", sc, "mb_per_s"), cl("tonic", sc, "mb_per_s"))
        target(f"1 MiB messages MB/s, {name}, ours / tonic", r, "≥ 1.20",
               None if r is None else r >= 1.2, "each client against its own server")
    lb = lambda pair, f: median(records, f, kind="balancer", pair=pair)
    r = ratio(lb("ours-rr", "cpu_us_per_call"), lb("ours-plain", "cpu_us_per_call"))
    if r is not None:
        target("unary 1 × 100, client CPU per call, round_robin over 2 / one plain channel",
               r, "≤ 1.05", r <= 1.05,
               f"ours {fmt(lb('ours-rr', 'cpu_us_per_call'), 1)} vs "
               f"{fmt(lb('ours-plain', 'cpu_us_per_call'), 1)} µs; tonic balance_list / plain "
               f"{fmt(ratio(lb('tonic-balance', 'cpu_us_per_call'), lb('tonic-plain', 'cpu_us_per_call')), 2)}")
        r = ratio(lb("ours-rr", "per_s"), lb("tonic-balance", "per_s"))
        cpu = ratio(lb("tonic-balance", "cpu_us_per_call"), lb("ours-rr", "cpu_us_per_call"))
        target("unary 1 × 100 calls/s over 2 backends, ours round_robin / tonic balance_list",
               r, "> 1.00", None if r is None else r > 1.0,
               f"tonic's client CPU per call / ours {fmt(cpu, 2)}")
    t, c = foot.get("tonic", {}), foot.get("ceiling", {})
    for impl, what in (("ours", "default features (gzip on)"),
                       ("ours-no-gzip", "no gzip, like tonic's default build")):
        f = foot.get(impl)
        if not f:
            continue
        r = ratio(f.get("normal_crates"), t.get("normal_crates"))
        target(f"runtime crates in the hello server's tree, ours ({what}) / tonic", r, "≤ 0.50",
               None if r is None else r <= 0.5,
               f"{f.get('normal_crates', '—')} vs {t.get('normal_crates', '—')}")
        r = ratio(f.get("stripped_bytes"), c.get("stripped_bytes"))
        target(f"stripped hello-server binary, ours ({what}) / ceiling", r, "≤ 1.15",
               None if r is None else r <= 1.15,
               f"tonic / ceiling {fmt(ratio(t.get('stripped_bytes'), c.get('stripped_bytes')), 2)}")
    r = ratio(mem("ours", "streams"), mem("tonic", "streams"))
    target("RSS with 10,000 idle streams, ours / tonic", r, "≤ 0.70",
           None if r is None else r <= 0.7,
           f"ours {fmt(mem('ours', 'streams'))} KiB, tonic {fmt(mem('tonic', 'streams'))} KiB")

    say("### Targets (issue 6)")
    say("")
    say("| figure | ratio | target | verdict | detail |")
    say("|---|---|---|---|---|")
    lines.extend(rows)
    say("")

    checks = runs(records, kind="check")
    if checks:
        bad = [c for c in checks if not c.get("ok")]
        say(f"Correctness first: each client's `check` (one call of every RPC, answers compared) "
            f"against each server: {len(checks) - len(bad)} passed, {len(bad)} failed.")
        for c in bad:
            say(f"- {c.get('client')} client → {c.get('server')} server: `{c.get('error', '?')}`")
        say("")

    # --- unary -------------------------------------------------------------------------------
    say("### Unary `helloworld.Greeter/SayHello` under h2load")
    say("")
    say("Requests/s; in brackets the ratio of the median to the ceiling's. "
        "`CPU µs/call` is the server's user+system CPU time divided by the calls it answered.")
    say("")
    say("| server | 1 × 1 | 1 × 100 | 4 × 64 | p50 1 × 1 (µs) | p99 1 × 1 (µs) | CPU µs/call, 1 × 100 |")
    say("|---|---|---|---|---|---|---|")
    for srv, name in SERVERS + [("ceiling-spawn", "raw-h2, task per stream")]:
        if not runs(records, kind="unary", server=srv):
            continue
        cells = []
        for sc in ("1x1", "1x100", "4x64"):
            text = cell(records, "rps", kind="unary", server=srv, scenario=sc)
            rr = ratio(u(srv, sc), u("ceiling", sc))
            cells.append(text + (f" [{rr:.2f}]" if rr is not None else ""))
        cells.append(cell(records, "p50_us", kind="unary", server=srv, scenario="1x1"))
        cells.append(cell(records, "p99_us", kind="unary", server=srv, scenario="1x1"))
        cells.append(cell(records, "server_cpu_us_per_request", 1, kind="unary", server=srv,
                          scenario="1x100"))
        say(f"| {name} | " + " | ".join(cells) + " |")
    say("")

    # --- streaming under h2load ---------------------------------------------------------------
    say("### Server streaming `bench.Stream/Pump` under h2load")
    say("")
    say(f"One request for {fmt(meta.get('pump_count'))} Chunks of {meta.get('pump_size', '?')} "
        "bytes; messages/s over the whole call, and the DATA frames h2load received "
        "(fewer = messages packed together). The ceiling packs messages into 16 KiB DATA "
        "frames; the last row is the same server writing one frame per message.")
    say("")
    say("| server | messages/s | vs ceiling | DATA frames | CPU µs/message |")
    say("|---|---|---|---|---|")
    for srv, name in SERVERS + [("ceiling-per-message", "raw-h2, one DATA frame per message")]:
        if not runs(records, kind="pump", server=srv):
            continue
        rr = ratio(pump(srv), pump("ceiling"))
        frames = median(records, "frames", kind="pump", server=srv)
        cpu = median(records, "server_cpu_us_per_msg", kind="pump", server=srv)
        say(f"| {name} | {cell(records, 'msgs_per_s', kind='pump', server=srv)} | {fmt(rr, 2)} "
            f"| {fmt(frames)} | {fmt(cpu, 3)} |")
    say("")

    # --- TLS ----------------------------------------------------------------------------------
    tls_servers = [("ours-tls", "bare-grpc (`tls`)"), ("tonic-tls", "tonic (`tls-ring`)")]
    if any(runs(records, kind="tls-connect", server=s) for s, _ in tls_servers):
        say("### TLS 1.3: unary, server streaming, new connections")
        say("")
        say("Both servers on rustls with the ring provider, a self-signed P-256 certificate. "
            "The unary and streaming figures leave the handshake out (h2load connects during "
            "its warm-up); the last columns open "
            f"{fmt(median(records, 'done', kind='tls-connect'))} TLS connections at once, one "
            "call on each, and give connections per second and the server's CPU per "
            "connection (handshake and call).")
        say("")
        say("| server | unary 1 × 100 (calls/s) | CPU µs/call | server streaming (messages/s) "
            "| new TLS connections/s | CPU µs/connection |")
        say("|---|---|---|---|---|---|")
        for srv, name in tls_servers:
            say(f"| {name} | {cell(records, 'rps', kind='unary', server=srv, scenario='1x100')} "
                f"| {cell(records, 'server_cpu_us_per_request', 1, kind='unary', server=srv, scenario='1x100')} "
                f"| {cell(records, 'msgs_per_s', kind='pump', server=srv)} "
                f"| {cell(records, 'rps', kind='tls-connect', server=srv)} "
                f"| {cell(records, 'server_cpu_us_per_request', 0, kind='tls-connect', server=srv)} |")
        ours_t = lambda k, f, **m: median(records, f, kind=k, server="ours-tls", **m)
        tonic_t = lambda k, f, **m: median(records, f, kind=k, server="tonic-tls", **m)
        say(f"| ours / tonic | {fmt(ratio(ours_t('unary', 'rps', scenario='1x100'), tonic_t('unary', 'rps', scenario='1x100')), 2)} "
            f"| — | {fmt(ratio(ours_t('pump', 'msgs_per_s'), tonic_t('pump', 'msgs_per_s')), 2)} "
            f"| {fmt(ratio(ours_t('tls-connect', 'rps'), tonic_t('tls-connect', 'rps')), 2)} | — |")
        say("")

    # --- gRPC-Web (bench/web.sh) ----------------------------------------------------------------
    web_servers = [("ours-web", "bare-grpc (`web`)"), ("tonic-web", "tonic + tonic-web")]
    if any(runs(records, kind="web", server=s) for s, _ in web_servers):
        say("### gRPC-Web: unary over HTTP/1.1 and HTTP/2")
        say("")
        say("SayHello as `application/grpc-web+proto` (docs/web.md). HTTP/1.1: h2load `--h1`, "
            "16 connections, one call at a time on each (a browser's pool, no pipelining). "
            "HTTP/2: one connection, 100 concurrent streams. Each server first answers one call "
            "per version through curl, checked for the reply and `grpc-status: 0`.")
        say("")
        say("| server | HTTP/1.1 16 × 1 (calls/s) | CPU µs/call | HTTP/2 1 × 100 (calls/s) "
            "| CPU µs/call |")
        say("|---|---|---|---|---|")
        for srv, name in web_servers:
            say(f"| {name} | {cell(records, 'rps', kind='web', server=srv, scenario='h1-16x1')} "
                f"| {cell(records, 'server_cpu_us_per_request', 1, kind='web', server=srv, scenario='h1-16x1')} "
                f"| {cell(records, 'rps', kind='web', server=srv, scenario='h2-1x100')} "
                f"| {cell(records, 'server_cpu_us_per_request', 1, kind='web', server=srv, scenario='h2-1x100')} |")
        w = lambda srv, sc: median(records, "rps", kind="web", server=srv, scenario=sc)
        say(f"| ours / tonic-web | {fmt(ratio(w('ours-web', 'h1-16x1'), w('tonic-web', 'h1-16x1')), 2)} "
            f"| — | {fmt(ratio(w('ours-web', 'h2-1x100'), w('tonic-web', 'h2-1x100')), 2)} | — |")
        say("")

    # --- behind nginx (bench/nginx.sh) ----------------------------------------------------------
    nginx_servers = [("nginx-ours", "bare-grpc"), ("nginx-tonic", "tonic"), ("nginx-go", "grpc-go")]
    if any(runs(records, kind="unary", server=s) for s, _ in nginx_servers):
        say("### Behind nginx: unary 1 × 100 through nginx to 2 instances")
        say("")
        say("Debian's nginx, one worker, the config of docs/deploy.md (`grpc_pass` to an "
            "`upstream` block of two instances, `keepalive 128`), the same for every "
            "implementation; h2load sends to nginx. CPU per call: both instances together, "
            "then nginx.")
        say("")
        say("| instances | calls/s | instances' CPU µs/call | nginx CPU µs/call |")
        say("|---|---|---|---|")
        for srv, name in nginx_servers:
            ngx = median(records, "nginx_cpu_ticks", kind="unary", server=srv)
            done = median(records, "done", kind="unary", server=srv)
            hz = median(records, "hz", kind="unary", server=srv) or 100
            ngx_us = ngx * 1e6 / hz / done if ngx is not None and done else None
            say(f"| 2 × {name} | {cell(records, 'rps', kind='unary', server=srv, scenario='1x100')} "
                f"| {cell(records, 'server_cpu_us_per_request', 1, kind='unary', server=srv, scenario='1x100')} "
                f"| {fmt(ngx_us, 1)} |")
        say("")

    # --- client side --------------------------------------------------------------------------
    say("### Client and server together (our client ↔ our server, tonic's ↔ tonic's)")
    say("")
    say("| scenario | unit | bare-grpc | tonic | ours / tonic |")
    say("|---|---|---|---|---|")
    for sc, unit, field, label in (
        ("server-stream", "messages/s", "per_s", "server streaming, 1 call"),
        ("client-stream", "messages/s", "per_s", "client streaming, 1 call"),
        ("pingpong", "round trips/s", "per_s", "bidi ping-pong"),
        ("big-down", "MB/s", "mb_per_s", "1 MiB messages, server → client"),
        ("big-up", "MB/s", "mb_per_s", "1 MiB messages, client → server"),
    ):
        if not runs(records, kind="client", scenario=sc):
            continue
        digits = 1 if field == "mb_per_s" else 0
        o = cell(records, field, digits, kind="client", pair="ours", scenario=sc)
        t = cell(records, field, digits, kind="client", pair="tonic", scenario=sc)
        rr = ratio(cl("ours", sc, field), cl("tonic", sc, field))
        count = median(records, "count", kind="client", scenario=sc)
        say(f"| {label} ({fmt(count)} messages) | {unit} | {o} | {t} | {fmt(rr, 2)} |")
    if runs(records, kind="client", pair="floor"):
        f = cell(records, "per_s", 0, kind="client", pair="floor", scenario="pingpong")
        say(f"| floor: the same round trips over plain blocking TCP (`tcp-pingpong`) | "
            f"round trips/s | {f} | {f} | — |")
    failures = [r for r in records if r.get("kind") == "client" and not r.get("ok")]
    if failures:
        say("")
        say("Failed client runs (first of each):")
        say("")
        seen = set()
        for r in failures:
            key = (r.get("pair"), r.get("scenario"))
            if key in seen:
                continue
            seen.add(key)
            say(f"- {r.get('pair')} {r.get('scenario')}: `{r.get('error', '?')}`")
    say("")

    # --- the balancer ---------------------------------------------------------------------------
    if runs(records, kind="balancer"):
        say("### Balancer: unary 1 × 100 through 2 backends")
        say("")
        say("100 tasks calling SayHello in turn (as the client's `unary` scenario), against two "
            "bare-grpc greeter-servers (both on core 0) or the first of them alone; the client "
            "on core 1. Client CPU is the client process's user + system time over the calls.")
        say("")
        say("| client | calls/s | client CPU µs/call | of which user | CPU vs its plain channel |")
        say("|---|---|---|---|---|")
        for pair, name, plain in (
            ("ours-plain", "bare-grpc, one plain channel (1 backend)", "ours-plain"),
            ("ours-rr", "bare-grpc, round_robin over 2", "ours-plain"),
            ("tonic-plain", "tonic, one plain `Channel` (1 backend)", "tonic-plain"),
            ("tonic-balance", "tonic, `Channel::balance_list` over 2", "tonic-plain"),
        ):
            if not runs(records, kind="balancer", pair=pair):
                continue
            rr = ratio(lb(pair, "cpu_us_per_call"), lb(plain, "cpu_us_per_call"))
            say(f"| {name} | {cell(records, 'per_s', kind='balancer', pair=pair)} "
                f"| {cell(records, 'cpu_us_per_call', 1, kind='balancer', pair=pair)} "
                f"| {cell(records, 'user_us_per_call', 1, kind='balancer', pair=pair)} "
                f"| {fmt(rr, 3)} |")
        say("")

    # --- memory -------------------------------------------------------------------------------
    say("### Memory (server RSS, KiB)")
    say("")
    say(f"A fresh server per state. Connections: {fmt(meta.get('idle_conns'))} idle h2c "
        f"connections; streams: {fmt(meta.get('idle_streams_total'))} open `bench.Echo/PingPong` "
        f"calls ({meta.get('idle_stream_conns', '?')} connections × "
        f"{meta.get('idle_streams_per_conn', '?')}), each with its request open and no message.")
    say("")
    say("| server | idle | with connections | with streams | vs tonic (streams) |")
    say("|---|---|---|---|---|")
    for srv, name in SERVERS:
        cells = [cell(records, "rss_kb", kind="memory", server=srv, state=st)
                 for st in ("idle", "conns", "streams")]
        rr = ratio(mem(srv, "streams"), mem("tonic", "streams"))
        say(f"| {name} | " + " | ".join(cells) + f" | {fmt(rr, 2)} |")
    say("")

    # --- footprint ----------------------------------------------------------------------------
    say("### Footprint of the hello server")
    say("")
    say("| implementation | runtime crates (`cargo tree -e normal`) | build-only crates | "
        "stripped binary | clean release build |")
    say("|---|---|---|---|---|")
    for impl, name in SERVERS[:2] + [("ours-no-gzip", "bare-grpc, no gzip")] + SERVERS[2:]:
        f = foot.get(impl)
        if not f:
            continue
        size = f.get("stripped_bytes")
        build = f.get("clean_build_s")
        say(f"| {name} | {f.get('normal_crates', '—')} | {f.get('build_crates', '—')} | "
            f"{fmt(size / 1024 if size else None)} KiB | "
            f"{fmt(build, 1) + ' s' if build else 'not measured'} |")
    say("")

    # --- commands -----------------------------------------------------------------------------
    say("### Exact commands")
    say("")
    say("```text")
    for command in meta.get("commands", []):
        say(command)
    say("```")
    say("")
    say(END)

    generated = "\n".join(lines) + "\n"
    try:
        current = open(out_path).read()
    except FileNotFoundError:
        current = ""
    if BEGIN in current and END in current:
        head, rest = current.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        text = head + generated.rstrip("\n") + tail
    else:
        text = ("# Performance\n\n`bench/run` writes the section below; the text around it is "
                "written by hand.\n\n" + generated)
    with open(out_path, "w") as f:
        f.write(text)


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ""
    if cmd == "h2load":
        append(argv[4], parse_h2load(argv[2], argv[3], pairs(argv[5:])))
    elif cmd == "client":
        append(argv[3], parse_client(argv[2], pairs(argv[4:])))
    elif cmd == "record":
        append(argv[2], pairs(argv[3:]))
    elif cmd == "timed" and len(argv) > 5 and argv[4] == "--":
        return timed(argv[2], float(argv[3]), argv[5:])
    elif cmd == "meta":
        record = pairs(argv[3:])
        record["kind"] = "meta"
        record["commands"] = [line.rstrip("\n") for line in sys.stdin if line.strip()]
        append(argv[2], record)
    elif cmd == "render":
        render(argv[2], argv[3])
    elif cmd == "check":
        bad = [r for r in load(argv[2]) if r.get("ok") is False]
        for r in bad:
            print(f"FAILED {r.get('kind')} {r.get('server', r.get('pair'))} "
                  f"{r.get('scenario', r.get('state', ''))}: {r.get('error')}", file=sys.stderr)
        return 1 if bad else 0
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
