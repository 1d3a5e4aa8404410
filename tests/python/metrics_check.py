"""Scrapes a bare-grpc `/metrics` endpoint and parses it with prometheus_client's own text
parser, the one Prometheus' Python tooling uses, so a format slip fails here.

Usage: metrics_check.py URL

Prints, one per line, sorted:
  TYPE <family> <type>                      for every family the parser found
  SAMPLE <name> <k=v,k=v,...> <value>       for every sample (labels sorted by key)
  HTTP <method> <path> <status>             for two requests that must be refused
The Rust test (tests/metrics.rs) asserts the exact counts. Exits non-zero when the text does
not parse, when a histogram is not cumulative, or when the content type is wrong.
"""

import sys
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def fetch(url, method="GET"):
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers.get("Content-Type"), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type"), error.read()


def main():
    url = sys.argv[1]
    status, content_type, body = fetch(url)
    if status != 200:
        sys.exit(f"GET {url}: HTTP {status}")
    if not content_type or not content_type.startswith("text/plain; version=0.0.4"):
        sys.exit(f"unexpected content-type {content_type!r}")
    lines = []
    for family in text_string_to_metric_families(body.decode("utf-8")):
        lines.append(f"TYPE {family.name} {family.type}")
        buckets = {}
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            lines.append(f"SAMPLE {sample.name} {labels} {sample.value:g}")
            if sample.name.endswith("_bucket"):
                key = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "le"))
                buckets.setdefault(key, []).append((float(sample.labels["le"]), sample.value))
        for key, series in buckets.items():
            values = [v for _, v in sorted(series)]
            if values != sorted(values):
                sys.exit(f"histogram buckets not cumulative for {key}: {series}")
            if sorted(series)[-1][0] != float("inf"):
                sys.exit(f"histogram without +Inf bucket for {key}")
    base = url.rsplit("/", 1)[0]
    lines.append(f"HTTP GET / {fetch(base + '/')[0]}")
    lines.append(f"HTTP POST /metrics {fetch(url, method='POST')[0]}")
    print("\n".join(sorted(lines)))


if __name__ == "__main__":
    main()
