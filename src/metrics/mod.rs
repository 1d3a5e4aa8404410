//! Prometheus metrics for calls, as an interceptor (cargo feature `metrics`): the
//! `grpc_server_*` family on a server, the `grpc_client_*` family on a channel, and a `/metrics`
//! endpoint in Prometheus' text exposition format ([`Metrics::serve`]).
//!
//! | metric | type | labels | counts |
//! |---|---|---|---|
//! | `grpc_{server,client}_started_total` | counter | type, service, method | calls whose interceptor chain reached this one |
//! | `grpc_{server,client}_handled_total` | counter | + `grpc_code` | calls ended, by final status name (`OK`, `NOT_FOUND`, …) |
//! | `grpc_{server,client}_msg_received_total` | counter | type, service, method | messages received (server: requests; client: responses) |
//! | `grpc_{server,client}_msg_sent_total` | counter | type, service, method | messages sent (server: responses; client: requests) |
//! | `grpc_{server,client}_handling_seconds` | histogram | type, service, method | time from the call's start to its end |
//!
//! Labels: `grpc_type` is [`CallKind::name`] (`unary`, `client_stream`, `server_stream`,
//! `bidi_stream`), `grpc_service` the fully qualified service, `grpc_method` the method as in the
//! `.proto` — the names Prometheus users already query from grpc-go and grpcio exporters.
//!
//! The exposition text, as a scrape returns it (one series shown):
//!
//! ```text
//! # HELP grpc_server_started_total RPCs started on the server.
//! # TYPE grpc_server_started_total counter
//! grpc_server_started_total{grpc_type="unary",grpc_service="helloworld.Greeter",grpc_method="SayHello"} 3
//! # TYPE grpc_server_handling_seconds histogram
//! grpc_server_handling_seconds_bucket{grpc_type="unary",…,le="0.005"} 3
//! …
//! grpc_server_handling_seconds_bucket{grpc_type="unary",…,le="+Inf"} 3
//! grpc_server_handling_seconds_sum{grpc_type="unary",…} 0.000412
//! grpc_server_handling_seconds_count{grpc_type="unary",…} 3
//! ```
//!
//! Why it is shaped this way:
//! - It is an [`Interceptor`], so it sees exactly what any interceptor sees, on both sides and
//!   for the four call kinds, and its place in the chain decides what it counts (put it first to
//!   count calls an auth interceptor rejects).
//! - One series per (side, kind, service, method) holds plain atomics; the call's interceptor
//!   state is an `Arc` to its series, so only `on_start` looks anything up (one mutex-guarded
//!   map lookup); messages and the end are atomic adds.
//! - The exposition format is written by hand (~60 lines): the `prometheus` crate would bring a
//!   registry, protobuf support and a lock per metric for five fixed families, and
//!   `metrics`/`metrics-exporter-prometheus` a global recorder plus its own HTTP stack. Neither
//!   fits a small crate; behind this feature we ask only for `hyper` (HTTP/1.1 server, no
//!   runtime, no `hyper-util`) and `http-body-util`, six crates in all with their own needs.
//! - The HTTP side is in `http.rs`: hyper's HTTP/1 connection on a `TcpStream` through a small
//!   adapter of ours from tokio's I/O traits to hyper's.
//!
//! What it does not do: push metrics, expose process metrics, or count calls to unknown methods
//! (they never reach interceptors). Histogram buckets are fixed when the [`Metrics`] is made.
//!
//! Links: exposition format
//! <https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format>.

mod http;

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::call::CallKind;
use crate::interceptor::{CallInfo, Interceptor, MessageView, Side};
use crate::metadata::Metadata;
use crate::status::{Code, Status};

/// The histogram's default bucket bounds, in seconds (Prometheus' customary defaults).
pub const DEFAULT_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Every status code, in number order, for the `grpc_code` label.
const CODES: [Code; 17] = [
    Code::Ok,
    Code::Cancelled,
    Code::Unknown,
    Code::InvalidArgument,
    Code::DeadlineExceeded,
    Code::NotFound,
    Code::AlreadyExists,
    Code::PermissionDenied,
    Code::ResourceExhausted,
    Code::FailedPrecondition,
    Code::Aborted,
    Code::OutOfRange,
    Code::Unimplemented,
    Code::Internal,
    Code::Unavailable,
    Code::DataLoss,
    Code::Unauthenticated,
];

/// Call metrics for one process: add it as an interceptor to servers and channels (clones share
/// the counters), and expose it with [`Metrics::render`] or [`Metrics::serve`].
///
/// ```
/// use bare_grpc::metrics::Metrics;
///
/// let metrics = Metrics::new();
/// let server = bare_grpc::Server::builder().interceptor(metrics.clone()).build();
/// # let _ = server;
/// assert!(metrics.render().is_empty()); // nothing called yet
/// ```
#[derive(Clone, Debug)]
pub struct Metrics {
    registry: Arc<Registry>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Empty metrics with [`DEFAULT_BUCKETS`].
    pub fn new() -> Metrics {
        Metrics::with_buckets(DEFAULT_BUCKETS)
    }

    /// Empty metrics whose `handling_seconds` histograms use `bounds` (seconds; sorted here,
    /// and non-finite or repeated bounds dropped; `+Inf` is always added).
    pub fn with_buckets(bounds: &[f64]) -> Metrics {
        let mut buckets: Vec<f64> = bounds.iter().copied().filter(|b| b.is_finite()).collect();
        buckets.sort_by(f64::total_cmp);
        buckets.dedup();
        Metrics {
            registry: Arc::new(Registry {
                buckets,
                series: Mutex::new(BTreeMap::new()),
            }),
        }
    }

    /// Everything counted so far, in the Prometheus text exposition format (version 0.0.4).
    /// Empty before the first call.
    pub fn render(&self) -> String {
        self.registry.render()
    }
}

impl Interceptor for Metrics {
    type State = Arc<Series>;

    fn on_start(&self, call: &CallInfo, _metadata: &mut Metadata) -> Result<Arc<Series>, Status> {
        let series = self.registry.series(call);
        series.started.fetch_add(1, Ordering::Relaxed);
        Ok(series)
    }

    fn on_request(&self, series: &mut Arc<Series>, call: &CallInfo, _: MessageView<'_>) {
        match call.side() {
            Side::Server => series.received.fetch_add(1, Ordering::Relaxed),
            Side::Client => series.sent.fetch_add(1, Ordering::Relaxed),
        };
    }

    fn on_response(&self, series: &mut Arc<Series>, call: &CallInfo, _: MessageView<'_>) {
        match call.side() {
            Side::Server => series.sent.fetch_add(1, Ordering::Relaxed),
            Side::Client => series.received.fetch_add(1, Ordering::Relaxed),
        };
    }

    fn on_end(&self, series: Arc<Series>, _: &CallInfo, status: &Status, elapsed: Duration) {
        let code = status.code().as_i32() as usize;
        if let Some(handled) = series.handled.get(code) {
            handled.fetch_add(1, Ordering::Relaxed);
        }
        series.observe(&self.registry.buckets, elapsed);
    }
}

/// Which series a call counts in. Ordered so the exposition lists series stably.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    /// 0 = server, 1 = client.
    side: u8,
    /// `grpc_service`.
    service: &'static str,
    /// `grpc_method`.
    method: &'static str,
    /// `grpc_type`.
    kind: &'static str,
}

/// The counters of one (side, kind, service, method).
#[derive(Debug)]
pub struct Series {
    started: AtomicU64,
    received: AtomicU64,
    sent: AtomicU64,
    /// By code number.
    handled: [AtomicU64; 17],
    /// Observations per bucket (not cumulative), one more than the bounds (`+Inf`).
    buckets: Box<[AtomicU64]>,
    /// Observations.
    count: AtomicU64,
    /// Sum of observations, in nanoseconds (exact; shown in seconds).
    sum_nanos: AtomicU64,
}

impl Series {
    fn new(bounds: usize) -> Series {
        Series {
            started: AtomicU64::new(0),
            received: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            handled: std::array::from_fn(|_| AtomicU64::new(0)),
            buckets: (0..=bounds).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_nanos: AtomicU64::new(0),
        }
    }

    /// Records one handling time.
    fn observe(&self, bounds: &[f64], elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let index = bounds.partition_point(|bound| *bound < seconds);
        self.buckets[index].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }
}

/// What clones of a [`Metrics`] share.
#[derive(Debug)]
struct Registry {
    /// Histogram bucket upper bounds, sorted.
    buckets: Vec<f64>,
    /// Every series seen so far.
    series: Mutex<BTreeMap<Key, Arc<Series>>>,
}

impl Registry {
    /// The series of `call`, made on first use.
    fn series(&self, call: &CallInfo) -> Arc<Series> {
        let key = Key {
            side: match call.side() {
                Side::Server => 0,
                Side::Client => 1,
            },
            service: call.service(),
            method: call.method(),
            kind: CallKind::name(call.kind()),
        };
        let mut map = crate::lock::lock(&self.series);
        map.entry(key)
            .or_insert_with(|| Arc::new(Series::new(self.buckets.len())))
            .clone()
    }

    /// The exposition text.
    fn render(&self) -> String {
        let snapshot: Vec<(Key, Arc<Series>)> = {
            let map = crate::lock::lock(&self.series);
            map.iter().map(|(k, v)| (*k, v.clone())).collect()
        };
        let mut out = String::new();
        for (side, prefix, who) in [
            (0, "grpc_server", "the server"),
            (1, "grpc_client", "the client"),
        ] {
            let rows: Vec<_> = snapshot.iter().filter(|(k, _)| k.side == side).collect();
            if rows.is_empty() {
                continue;
            }
            let counter =
                |out: &mut String, name: &str, help: &str, get: &dyn Fn(&Series) -> u64| {
                    let _ = writeln!(out, "# HELP {prefix}_{name} {help}");
                    let _ = writeln!(out, "# TYPE {prefix}_{name} counter");
                    for (key, series) in &rows {
                        let _ = writeln!(out, "{prefix}_{name}{{{}}} {}", labels(key), get(series));
                    }
                };
            counter(
                &mut out,
                "started_total",
                &format!("RPCs started on {who}."),
                &|s| s.started.load(Ordering::Relaxed),
            );
            let _ = writeln!(
                out,
                "# HELP {prefix}_handled_total RPCs completed on {who}, by final status code."
            );
            let _ = writeln!(out, "# TYPE {prefix}_handled_total counter");
            for (key, series) in &rows {
                for code in CODES {
                    let n = series.handled[code.as_i32() as usize].load(Ordering::Relaxed);
                    if n > 0 {
                        let _ = writeln!(
                            out,
                            "{prefix}_handled_total{{{},grpc_code=\"{}\"}} {n}",
                            labels(key),
                            code.name()
                        );
                    }
                }
            }
            counter(
                &mut out,
                "msg_received_total",
                &format!("Messages received by {who}."),
                &|s| s.received.load(Ordering::Relaxed),
            );
            counter(
                &mut out,
                "msg_sent_total",
                &format!("Messages sent by {who}."),
                &|s| s.sent.load(Ordering::Relaxed),
            );
            let _ = writeln!(
                out,
                "# HELP {prefix}_handling_seconds Seconds from the start of an RPC to its end on {who}."
            );
            let _ = writeln!(out, "# TYPE {prefix}_handling_seconds histogram");
            for (key, series) in &rows {
                let labels = labels(key);
                let mut cumulative = 0;
                for (i, bucket) in series.buckets.iter().enumerate() {
                    cumulative += bucket.load(Ordering::Relaxed);
                    let le = match self.buckets.get(i) {
                        Some(bound) => format!("{bound}"),
                        None => "+Inf".to_owned(),
                    };
                    let _ = writeln!(
                        out,
                        "{prefix}_handling_seconds_bucket{{{labels},le=\"{le}\"}} {cumulative}"
                    );
                }
                let sum = series.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
                let _ = writeln!(out, "{prefix}_handling_seconds_sum{{{labels}}} {sum}");
                let count = series.count.load(Ordering::Relaxed);
                let _ = writeln!(out, "{prefix}_handling_seconds_count{{{labels}}} {count}");
            }
        }
        out
    }
}

/// `grpc_type="…",grpc_service="…",grpc_method="…"`.
fn labels(key: &Key) -> String {
    format!(
        "grpc_type=\"{}\",grpc_service=\"{}\",grpc_method=\"{}\"",
        escape(key.kind),
        escape(key.service),
        escape(key.method)
    )
}

/// A label value as the text format wants it: `\`, `"` and line feed escaped.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(side: Side, kind: CallKind) -> CallInfo {
        match side {
            Side::Client => CallInfo::client(kind, "/pkg.Svc/Do", None, false),
            Side::Server => CallInfo::server(
                kind,
                "/pkg.Svc/Do",
                "pkg.Svc",
                "Do",
                Default::default(),
                None,
            ),
        }
    }

    #[test]
    fn counts_and_histogram() {
        let metrics = Metrics::with_buckets(&[0.1, 1.0, f64::NAN, 0.1]);
        let info = call(Side::Server, CallKind::Bidi);
        let mut md = Metadata::new();
        for (elapsed, status) in [
            (Duration::from_millis(50), Status::ok()),
            (Duration::from_millis(100), Status::ok()),
            (Duration::from_millis(500), Status::not_found("x")),
            (Duration::from_secs(3), Status::ok()),
        ] {
            let mut state = metrics.on_start(&info, &mut md).unwrap();
            metrics.on_request(&mut state, &info, MessageView::new(&(), 1));
            metrics.on_request(&mut state, &info, MessageView::new(&(), 1));
            metrics.on_response(&mut state, &info, MessageView::new(&(), 1));
            metrics.on_end(state, &info, &status, elapsed);
        }
        let text = metrics.render();
        let labels = r#"grpc_type="bidi_stream",grpc_service="pkg.Svc",grpc_method="Do""#;
        for line in [
            format!("grpc_server_started_total{{{labels}}} 4"),
            format!("grpc_server_handled_total{{{labels},grpc_code=\"OK\"}} 3"),
            format!("grpc_server_handled_total{{{labels},grpc_code=\"NOT_FOUND\"}} 1"),
            format!("grpc_server_msg_received_total{{{labels}}} 8"),
            format!("grpc_server_msg_sent_total{{{labels}}} 4"),
            // le is inclusive: 100 ms lands in the 0.1 bucket.
            format!("grpc_server_handling_seconds_bucket{{{labels},le=\"0.1\"}} 2"),
            format!("grpc_server_handling_seconds_bucket{{{labels},le=\"1\"}} 3"),
            format!("grpc_server_handling_seconds_bucket{{{labels},le=\"+Inf\"}} 4"),
            format!("grpc_server_handling_seconds_sum{{{labels}}} 3.65"),
            format!("grpc_server_handling_seconds_count{{{labels}}} 4"),
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert!(!text.contains("grpc_client_"), "no client calls were made");
        assert!(
            !text.contains("UNAVAILABLE"),
            "codes never seen are not listed"
        );
    }

    #[test]
    fn sides_count_messages_in_their_own_direction() {
        let metrics = Metrics::new();
        let info = call(Side::Client, CallKind::ClientStreaming);
        let mut state = metrics.on_start(&info, &mut Metadata::new()).unwrap();
        for _ in 0..3 {
            metrics.on_request(&mut state, &info, MessageView::new(&(), 1));
        }
        metrics.on_response(&mut state, &info, MessageView::new(&(), 1));
        metrics.on_end(state, &info, &Status::ok(), Duration::ZERO);
        let text = metrics.render();
        let labels = r#"grpc_type="client_stream",grpc_service="pkg.Svc",grpc_method="Do""#;
        assert!(text.contains(&format!("grpc_client_msg_sent_total{{{labels}}} 3\n")));
        assert!(text.contains(&format!("grpc_client_msg_received_total{{{labels}}} 1\n")));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape("line\nfeed"), "line\\nfeed");
    }
}
