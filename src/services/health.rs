//! `grpc.health.v1.Health`: is this server, or one of its services, taking calls
//! (health-checking.md, contract in `proto/grpc/health/v1/health.proto`).
//!
//! ```text
//!  Check(service)  ─▶ SERVING | NOT_SERVING | UNKNOWN       one answer
//!                  ─▶ status NOT_FOUND                      no status was ever set
//!
//!  Watch(service)  ─▶ current status, sent at once          SERVICE_UNKNOWN when none is set
//!                  ─▶ the new status, at every change        until the client cancels
//!
//!  HealthReporter::set_serving("pkg.Svc") ──▶ watch::Sender ──▶ every Watch of "pkg.Svc"
//! ```
//!
//! The empty service name stands for the server as a whole. [`health_service`] starts with it
//! `SERVING`, the way grpc-go's health server does, so a Kubernetes-style probe (`Check("")`
//! under a short deadline) passes as soon as the listener is up.
//!
//! Why a `tokio::sync::watch` channel per service: Watch must report the *latest* status, not
//! every intermediate one, and a watch channel holds exactly that: one slot, overwritten by each
//! change, read by any number of watchers. A Watch that falls behind skips to the newest value
//! and never loses it; a reporter never waits for a slow watcher. A change to the same value is
//! not sent again (health-checking.md: "whenever the service's serving status changes").
//!
//! What it rejects or does not do:
//!
//! | input | answer |
//! |---|---|
//! | `Check` of a service with no status | `NOT_FOUND` (health-checking.md) |
//! | `Watch` of a service with no status | `SERVICE_UNKNOWN`, then keeps watching |
//! | a Watch of a never-set name ends | its entry is dropped, so peers cannot grow the table |
//!
//! It does not end open Watch streams when the server shuts down: graceful shutdown gives them
//! the drain timeout like every other call. Set the statuses to `NOT_SERVING` first so that
//! watchers learn why.
//!
//! [health-checking.md]: https://github.com/grpc/grpc/blob/master/doc/health-checking.md

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

use crate::call::{Request, Response};
use crate::server::ResponseSink;
use crate::status::Status;

#[allow(clippy::all)]
mod pb {
    include!(concat!(env!("OUT_DIR"), "/grpc.health.v1.rs"));
}

pub use pb::health_check_response::ServingStatus;
pub use pb::health_grpc::{CHECK, Health, HealthClient, HealthServer, WATCH};
pub use pb::{HealthCheckRequest, HealthCheckResponse};

/// The fully qualified name of the health service.
pub const SERVICE_NAME: &str = "grpc.health.v1.Health";

/// One service's status: `None` while no status is set (Check: NOT_FOUND, Watch:
/// SERVICE_UNKNOWN).
type Slot = watch::Sender<Option<ServingStatus>>;

/// Sets the status each service reports through `Check` and `Watch`. Cheap to clone; every
/// clone changes the same table.
#[derive(Clone, Default)]
pub struct HealthReporter {
    slots: Arc<Mutex<HashMap<String, Slot>>>,
}

impl std::fmt::Debug for HealthReporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let slots = self.lock();
        let mut map = f.debug_map();
        for (name, slot) in slots.iter() {
            if let Some(status) = *slot.borrow() {
                map.entry(name, &status.as_str_name());
            }
        }
        map.finish()
    }
}

impl HealthReporter {
    /// A reporter with no status set for any service, not even the server as a whole.
    pub fn new() -> HealthReporter {
        HealthReporter::default()
    }

    /// Reports `service` as `SERVING` (`""` is the whole server).
    pub fn set_serving(&self, service: &str) {
        self.set_status(service, ServingStatus::Serving);
    }

    /// Reports `service` as `NOT_SERVING` (`""` is the whole server).
    pub fn set_not_serving(&self, service: &str) {
        self.set_status(service, ServingStatus::NotServing);
    }

    /// Reports `status` for `service`. `SERVICE_UNKNOWN` is the same as
    /// [`HealthReporter::clear_status`]: that value only describes a missing status.
    pub fn set_status(&self, service: &str, status: ServingStatus) {
        if status == ServingStatus::ServiceUnknown {
            self.clear_status(service);
            return;
        }
        let mut slots = self.lock();
        match slots.get(service) {
            Some(slot) => {
                slot.send_if_modified(|current| replace(current, Some(status)));
            }
            None => {
                slots.insert(service.to_owned(), watch::channel(Some(status)).0);
            }
        }
    }

    /// Forgets `service`'s status: `Check` answers `NOT_FOUND` again, watchers get
    /// `SERVICE_UNKNOWN`.
    pub fn clear_status(&self, service: &str) {
        let mut slots = self.lock();
        if let Some(slot) = slots.get(service) {
            slot.send_if_modified(|current| replace(current, None));
            if slot.receiver_count() == 0 {
                slots.remove(service);
            }
        }
    }

    /// The status set for `service`, if any.
    pub fn status(&self, service: &str) -> Option<ServingStatus> {
        self.lock().get(service).and_then(|slot| *slot.borrow())
    }

    /// A [`HealthServer`] answering from this reporter's table, for `Server::add_service`.
    pub fn service(&self) -> HealthServer<HealthService> {
        HealthServer::new(HealthService {
            reporter: self.clone(),
        })
    }

    /// Subscribes to `service`, creating an empty slot when nobody has set or watched it yet.
    fn subscribe(&self, service: &str) -> watch::Receiver<Option<ServingStatus>> {
        let mut slots = self.lock();
        slots
            .entry(service.to_owned())
            .or_insert_with(|| watch::channel(None).0)
            .subscribe()
    }

    /// Called when a Watch ends: drops the slot if it holds no status and nobody watches it.
    fn release(&self, service: &str) {
        let mut slots = self.lock();
        if slots
            .get(service)
            .is_some_and(|slot| slot.borrow().is_none() && slot.receiver_count() == 0)
        {
            slots.remove(service);
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Slot>> {
        // No code that can panic runs under this lock, so a poisoned lock still guards a
        // consistent table.
        crate::lock::lock(&self.slots)
    }
}

/// Stores `new` in `current`; true when that changed it (so watchers are woken).
fn replace(current: &mut Option<ServingStatus>, new: Option<ServingStatus>) -> bool {
    let changed = *current != new;
    *current = new;
    changed
}

/// A health service whose server-wide status (`""`) starts as `SERVING`, and the reporter that
/// changes it and every other service's status.
///
/// ```no_run
/// # async fn run(listener: tokio::net::TcpListener) -> std::io::Result<()> {
/// let (reporter, health) = bare_grpc::services::health::health_service();
/// reporter.set_serving("helloworld.Greeter");
/// bare_grpc::Server::builder().add_service(health).build().serve(listener).await
/// # }
/// ```
pub fn health_service() -> (HealthReporter, HealthServer<HealthService>) {
    let reporter = HealthReporter::new();
    reporter.set_serving("");
    let service = reporter.service();
    (reporter, service)
}

/// The [`Health`] implementation behind [`HealthReporter::service`].
#[derive(Clone, Debug)]
pub struct HealthService {
    reporter: HealthReporter,
}

/// Ends a Watch's subscription when the Watch ends, however it ends (the client cancels, the
/// deadline fires, the connection drops: the handler future is dropped in each case).
struct Subscription {
    reporter: HealthReporter,
    service: String,
    receiver: Option<watch::Receiver<Option<ServingStatus>>>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        // The receiver goes first, so `release` sees the count without it.
        self.receiver = None;
        self.reporter.release(&self.service);
    }
}

impl Health for HealthService {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        let service = request.into_inner().service;
        match self.reporter.status(&service) {
            Some(status) => Ok(Response::new(HealthCheckResponse {
                status: status as i32,
            })),
            // health-checking.md: "If the service name is not registered, the server returns
            // a NOT_FOUND GRPC status."
            None => Err(Status::not_found(format!("unknown service {service:?}"))),
        }
    }

    async fn watch(
        &self,
        request: Request<HealthCheckRequest>,
        mut sink: ResponseSink<HealthCheckResponse>,
    ) -> Result<(), Status> {
        let service = request.into_inner().service;
        let receiver = self.reporter.subscribe(&service);
        let mut subscription = Subscription {
            reporter: self.reporter.clone(),
            service,
            receiver: Some(receiver),
        };
        let Some(receiver) = subscription.receiver.as_mut() else {
            return Ok(());
        };
        loop {
            // `borrow_and_update` marks this value seen, so `changed` waits for a newer one;
            // a change made between the two calls is never missed.
            let status = receiver
                .borrow_and_update()
                .unwrap_or(ServingStatus::ServiceUnknown);
            sink.send(HealthCheckResponse {
                status: status as i32,
            })
            .await?;
            if receiver.changed().await.is_err() {
                // The reporter dropped the slot (the table is shared by every clone, so this
                // only happens when the server itself is going away).
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_set_changed_and_cleared() {
        let (reporter, _service) = health_service();
        // grpc-go's convention: the server as a whole starts SERVING.
        assert_eq!(reporter.status(""), Some(ServingStatus::Serving));
        assert_eq!(reporter.status("a.B"), None);
        reporter.set_not_serving("a.B");
        assert_eq!(reporter.status("a.B"), Some(ServingStatus::NotServing));
        reporter.set_serving("a.B");
        assert_eq!(reporter.status("a.B"), Some(ServingStatus::Serving));
        reporter.set_status("a.B", ServingStatus::ServiceUnknown);
        assert_eq!(reporter.status("a.B"), None);
        assert!(
            reporter.lock().get("a.B").is_none(),
            "unwatched slot dropped"
        );
    }

    #[test]
    fn watchers_see_changes_only() {
        let reporter = HealthReporter::new();
        let mut rx = reporter.subscribe("a.B");
        assert_eq!(*rx.borrow_and_update(), None);
        reporter.set_serving("a.B");
        assert!(rx.has_changed().unwrap());
        assert_eq!(*rx.borrow_and_update(), Some(ServingStatus::Serving));
        // Setting the same value again wakes nobody.
        reporter.set_serving("a.B");
        assert!(!rx.has_changed().unwrap());
        // Clearing a watched slot keeps it (the watcher must see the next set).
        reporter.clear_status("a.B");
        assert_eq!(*rx.borrow_and_update(), None);
        reporter.set_not_serving("a.B");
        assert_eq!(*rx.borrow_and_update(), Some(ServingStatus::NotServing));
    }

    #[test]
    fn an_ended_watch_of_an_unknown_name_leaves_nothing_behind() {
        let reporter = HealthReporter::new();
        let subscription = Subscription {
            reporter: reporter.clone(),
            service: "no.Such".into(),
            receiver: Some(reporter.subscribe("no.Such")),
        };
        assert!(reporter.lock().contains_key("no.Such"));
        drop(subscription);
        assert!(!reporter.lock().contains_key("no.Such"));
        // A slot with a status survives its watchers.
        reporter.set_serving("kept");
        drop(Subscription {
            reporter: reporter.clone(),
            service: "kept".into(),
            receiver: Some(reporter.subscribe("kept")),
        });
        assert_eq!(reporter.status("kept"), Some(ServingStatus::Serving));
    }
}
