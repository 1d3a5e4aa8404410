//! Client-side health checking (gRFC A17): under round_robin, each READY subchannel keeps one
//! `grpc.health.v1.Health/Watch` stream open on its own connection, and only a subchannel
//! whose last answer was SERVING gets calls.
//!
//! ```text
//!   subchannel READY (connection g)
//!     └── Watch(service) on connection g ──▶ SERVING              -> usable
//!                                        ──▶ NOT_SERVING, UNKNOWN,
//!                                            SERVICE_UNKNOWN      -> failing, no calls
//!                                        ──▶ ends UNIMPLEMENTED  -> usable, not asked again
//!                                        ──▶ ends otherwise      -> failing; asked again
//!                                                                    after a back-off
//!   connection g lost -> the Watch is dropped (RST_STREAM CANCEL); the next READY
//!                        connection starts over, not usable until its first answer
//! ```
//!
//! The rules taken from A17 ("Client Workflow"): the Watch starts as soon as a connection is
//! READY and the subchannel is not used until the first answer (so calls queued while
//! connecting do not all land on a backend that is about to say NOT_SERVING); any answer but
//! SERVING is TRANSIENT_FAILURE; a Watch ending with UNIMPLEMENTED means "no health checking
//! here", the subchannel is used and the call is not retried; any other end is
//! TRANSIENT_FAILURE and the call is retried with exponential back-off, reset by every
//! message received (the first retry after a message comes at once). A Watch that breaks
//! keeps the subchannel failing until the next answer (gRFC A61's sticky TRANSIENT_FAILURE,
//! as round_robin treats connect failures) rather than A17's brief CONNECTING.
//!
//! Why a state per connection (`generation`): a health answer is about the connection that
//! carried it. Tying the state to the connection number means a new connection is never used
//! on the strength of the old one's answer, and a late answer about a dead connection changes
//! nothing.
//!
//! Why the pick reads two atomics: the call path must stay as cheap as round_robin without
//! health checking; the usable connection number is one atomic load, and the failure status
//! is only read (under a mutex) when that subchannel is not usable.
//!
//! What it does not do: pick_first ignores health checking (A17: "We do not plan to support
//! health checking with pick_first"), and the Watch carries no call credentials or
//! interceptors of the channel (A17 sends call credentials; ours are interceptors, which would
//! also see every health stream).
//!
//! Links: <https://github.com/grpc/proposal/blob/master/A17-client-side-health-checking.md>,
//! <https://github.com/grpc/grpc/blob/master/doc/health-checking.md>.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{oneshot, watch};

use super::connection::{Backoff, ConnState, Peek, Ready, Subchannel};
use super::resolver::Target;
use super::{Channel, ChannelOptions};
use crate::call::Request;
use crate::first::first;
use crate::status::{Code, Status};

/// The Watch method's path (health-checking.md).
const WATCH: &str = "/grpc.health.v1.Health/Watch";

/// `grpc.health.v1.HealthCheckRequest`, written here: the client layer sits below
/// `services::health`, and two fields do not need the generated code.
#[derive(Clone, PartialEq, prost::Message)]
struct WatchRequest {
    /// The service asked about; empty for the server as a whole.
    #[prost(string, tag = "1")]
    service: String,
}

/// `grpc.health.v1.HealthCheckResponse`.
#[derive(Clone, PartialEq, prost::Message)]
struct WatchResponse {
    /// UNKNOWN = 0, SERVING = 1, NOT_SERVING = 2, SERVICE_UNKNOWN = 3.
    #[prost(int32, tag = "1")]
    status: i32,
}

/// `ServingStatus.SERVING`.
const SERVING: i32 = 1;

/// The name of a `ServingStatus` number, for error messages.
fn status_name(status: i32) -> &'static str {
    match status {
        0 => "UNKNOWN",
        1 => "SERVING",
        2 => "NOT_SERVING",
        3 => "SERVICE_UNKNOWN",
        _ => "an unknown serving status",
    }
}

/// What the pick reads of one subchannel's health.
#[derive(Debug, Default)]
struct Shared {
    /// The connection (generation) whose Watch said SERVING last, or answered UNIMPLEMENTED;
    /// 0 (no connection has that number) while none did.
    usable: AtomicU64,
    /// The connection whose Watch said otherwise, and why.
    failing: Mutex<Option<(u64, Status)>>,
}

/// One round_robin subchannel's health checker: dropping it stops the Watch task.
#[derive(Debug)]
pub(crate) struct HealthCheck {
    /// Written by the task, read by picks.
    shared: Arc<Shared>,
    /// Dropped with the checker, which ends the task.
    _stop: oneshot::Sender<()>,
}

impl HealthCheck {
    /// Starts watching `service` on each connection of `subchannel`; `changed` is bumped on
    /// every change of health (the balancer's "look again" signal). Needs a runtime.
    pub(crate) fn start(
        service: String,
        subchannel: &Subchannel,
        target: Target,
        options: Arc<ChannelOptions>,
        changed: Arc<watch::Sender<u64>>,
    ) -> HealthCheck {
        let shared = Arc::new(Shared::default());
        let (stop_tx, stop_rx) = oneshot::channel();
        let task = Task {
            service,
            target,
            options,
            changed,
            shared: shared.clone(),
        };
        tokio::spawn(task.run(subchannel.watch(), stop_rx));
        HealthCheck {
            shared,
            _stop: stop_tx,
        }
    }

    /// What a pick sees: the subchannel's own view, narrowed by health. A READY connection is
    /// usable only once its Watch said SERVING (or UNIMPLEMENTED); until its first answer it
    /// is worth waiting for, and after a bad answer it is failing, with the answer as reason.
    pub(crate) fn narrow(&self, peek: Peek) -> Peek {
        let Peek::Ready(ready) = peek else {
            return peek;
        };
        if self.shared.usable.load(Ordering::Acquire) == ready.generation {
            return Peek::Ready(ready);
        }
        match &*crate::lock::lock(&self.shared.failing) {
            Some((generation, status)) if *generation == ready.generation => {
                Peek::Failing(status.clone())
            }
            _ => Peek::Pending,
        }
    }
}

/// The task behind a [`HealthCheck`].
struct Task {
    /// The service name sent in every Watch.
    service: String,
    /// For the one-connection channel the Watch runs on.
    target: Target,
    /// For the one-connection channel the Watch runs on.
    options: Arc<ChannelOptions>,
    /// The balancer's change signal.
    changed: Arc<watch::Sender<u64>>,
    /// What picks read.
    shared: Arc<Shared>,
}

impl Task {
    /// Watches each READY connection in turn until the checker is dropped (or the
    /// subchannel's driver ends).
    async fn run(self, state: watch::Receiver<ConnState>, stop: oneshot::Receiver<()>) {
        let _ = first(self.each_connection(state), stop).await;
    }

    /// For every READY connection: Watch it until it is replaced.
    async fn each_connection(&self, mut state: watch::Receiver<ConnState>) {
        loop {
            let current = state.borrow_and_update().clone();
            if let ConnState::Ready(ready) = current {
                let generation = ready.generation;
                // The Watch ends with the connection: when the published state moves on.
                let replaced = async {
                    loop {
                        if state.changed().await.is_err() {
                            return;
                        }
                        match &*state.borrow_and_update() {
                            ConnState::Ready(r) if r.generation == generation => {}
                            _ => return,
                        }
                    }
                };
                // After UNIMPLEMENTED the Watch is over but the connection is not: wait for it.
                let watching = async {
                    self.watch_connection(ready).await;
                    std::future::pending::<()>().await
                };
                let _ = first(watching, replaced).await;
                continue;
            }
            if state.changed().await.is_err() {
                return;
            }
        }
    }

    /// Runs Watch on one connection, again after each failure (with back-off), until the
    /// server answers UNIMPLEMENTED; the caller drops it when the connection goes.
    async fn watch_connection(&self, ready: Ready) {
        let generation = ready.generation;
        let channel = Channel::pinned(self.target.clone(), self.options.clone(), ready);
        let mut backoff = Backoff::new(&self.options.backoff);
        loop {
            // A17 gives the Watch no deadline: it lives as long as the connection.
            let request = Request::new(WatchRequest {
                service: self.service.clone(),
            });
            let outcome = async {
                let mut stream = channel
                    .server_streaming::<WatchRequest, WatchResponse>(WATCH, request)
                    .await?;
                loop {
                    match stream.message().await? {
                        Some(answer) => {
                            backoff.reset();
                            self.answer(generation, answer.status);
                        }
                        None => return Ok::<(), Status>(()),
                    }
                }
            }
            .await;
            let status = match outcome {
                Err(status) if status.code() == Code::Unimplemented => {
                    // A17: the server has no health checking; use it, do not ask again.
                    self.set_usable(generation);
                    return;
                }
                Err(status) => status,
                Ok(()) => Status::unavailable("the server ended the Watch with OK"),
            };
            self.set_failing(
                generation,
                Status::unavailable(format!(
                    "health check of service {:?} failed: {}",
                    self.service,
                    status.message()
                )),
            );
            tokio::time::sleep(backoff.next_delay()).await;
        }
    }

    /// One Watch answer about connection `generation`.
    fn answer(&self, generation: u64, status: i32) {
        if status == SERVING {
            self.set_usable(generation);
        } else {
            self.set_failing(
                generation,
                Status::unavailable(format!(
                    "health check: service {:?} is {}",
                    self.service,
                    status_name(status)
                )),
            );
        }
    }

    /// Connection `generation` may take calls.
    fn set_usable(&self, generation: u64) {
        *crate::lock::lock(&self.shared.failing) = None;
        self.shared.usable.store(generation, Ordering::Release);
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Connection `generation` must not take calls, for `why`.
    fn set_failing(&self, generation: u64, why: Status) {
        self.shared.usable.store(0, Ordering::Release);
        *crate::lock::lock(&self.shared.failing) = Some((generation, why));
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// The `healthCheckConfig.serviceName` of a service config (A17 § "Service Config Changes":
/// `{"healthCheckConfig": {"serviceName": "pkg.Svc"}}`), as grpc-go reads it: `Ok(None)`
/// without the field, the empty name when the object has no `serviceName`. INVALID_ARGUMENT
/// when the field is not an object or the name not a string.
pub(crate) fn from_service_config(json: &str) -> Result<Option<String>, Status> {
    let bad = |why: &str| Status::invalid_argument(format!("bad service config: {why}"));
    let Some(at) = json.find("\"healthCheckConfig\"") else {
        return Ok(None);
    };
    let rest = json[at + "\"healthCheckConfig\"".len()..].trim_start();
    let rest = rest
        .strip_prefix(':')
        .ok_or_else(|| bad("expected ':' after \"healthCheckConfig\""))?
        .trim_start();
    let body = rest
        .strip_prefix('{')
        .ok_or_else(|| bad("\"healthCheckConfig\" must be an object"))?;
    // The object is flat in A17 (one string field); its end is the first '}' outside a string.
    let end = object_end(body).ok_or_else(|| bad("unclosed \"healthCheckConfig\""))?;
    let body = &body[..end];
    let Some(at) = body.find("\"serviceName\"") else {
        return Ok(Some(String::new()));
    };
    let value = body[at + "\"serviceName\"".len()..].trim_start();
    let value = value
        .strip_prefix(':')
        .ok_or_else(|| bad("expected ':' after \"serviceName\""))?
        .trim_start();
    let value = value
        .strip_prefix('"')
        .ok_or_else(|| bad("\"serviceName\" must be a string"))?;
    let close = value
        .find('"')
        .ok_or_else(|| bad("unterminated \"serviceName\""))?;
    let name = &value[..close];
    if name.contains('\\') {
        return Err(bad("escapes in \"serviceName\" are not supported"));
    }
    Ok(Some(name.to_owned()))
}

/// The index of the '}' closing an object whose body starts at `body`, strings skipped.
fn object_end(body: &str) -> Option<usize> {
    let mut in_string = false;
    let mut escaped = false;
    for (i, c) in body.char_indices() {
        match (in_string, escaped, c) {
            (true, true, _) => escaped = false,
            (true, false, '\\') => escaped = true,
            (true, false, '"') => in_string = false,
            (false, _, '"') => in_string = true,
            (false, _, '}') => return Some(i),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_config_health_check() {
        let rows: &[(&str, Option<&str>)] = &[
            ("{}", None),
            (r#"{"loadBalancingConfig": [{"round_robin": {}}]}"#, None),
            (
                r#"{"loadBalancingConfig": [{"round_robin": {}}], "healthCheckConfig": {"serviceName": "pkg.Svc"}}"#,
                Some("pkg.Svc"),
            ),
            (
                r#"{"healthCheckConfig" : { "serviceName" : "" } }"#,
                Some(""),
            ),
            (r#"{"healthCheckConfig": {}}"#, Some("")),
            (
                r#"{"healthCheckConfig": {}, "x": {"serviceName": "not this"}}"#,
                Some(""),
            ),
        ];
        for (json, want) in rows {
            assert_eq!(
                from_service_config(json).unwrap().as_deref(),
                *want,
                "{json}"
            );
        }
        for (json, why) in [
            (r#"{"healthCheckConfig": "x"}"#, "an object"),
            (r#"{"healthCheckConfig": {"serviceName": 3}}"#, "a string"),
            (r#"{"healthCheckConfig": {"serviceName": "a"#, "unclosed"),
            (
                r#"{"healthCheckConfig": {"serviceName": "a\"b"}}"#,
                "escapes",
            ),
        ] {
            let status = from_service_config(json).unwrap_err();
            assert_eq!(status.code(), Code::InvalidArgument);
            assert!(status.message().contains(why), "{json}: {status:?}");
        }
    }
}
