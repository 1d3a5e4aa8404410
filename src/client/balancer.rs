//! Load balancing: which subchannel a call goes to, and the channel's aggregate state.
//!
//! The rules: gRPC's load-balancing document (load-balancing.md) and its two standard
//! policies; connectivity states after connectivity-semantics-and-api.md; gRFC A61 for
//! round_robin's sticky TRANSIENT_FAILURE.
//!
//! ```text
//!   Channel
//!     └── Picker
//!           ├── pick_first (default): ONE Subchannel over the resolver's whole list, tried in
//!           │     order at every connect attempt; the first address that answers is used
//!           │     until its connection is lost, then the list is resolved again
//!           │     (rate limited) and tried again from the top
//!           └── round_robin: a Subchannel per resolved address, all kept connected;
//!                 each call takes the next READY one in turn
//!                   └── background task: resolve; reconcile the list (an address that stays
//!                       keeps its subchannel); reconnect subchannels that lost their
//!                       connection; resolve again on a loss, never faster than the interval
//! ```
//!
//! What a call sees (wait-for-ready.md): a READY subchannel gets it. With none READY, a call
//! waits while some subchannel is connecting for the first time since it was last READY (or
//! nothing is resolved yet); when every subchannel is failing (or resolution failed) a
//! fail-fast call ends at once with UNAVAILABLE naming the last connection error, and a
//! `wait_for_ready` call waits on, until its deadline. A pick never returns a subchannel whose
//! state is not READY, so no call goes to a subchannel known to be down; a stream that could
//! not be opened (GOAWAY above it, REFUSED_STREAM) is picked again, skipping that connection.
//!
//! Why pick_first is one subchannel: the single-address path, every default channel's, stays
//! what it was (one read of one watch per call, no allocation, no lock added), and trying the
//! addresses of one list in order is exactly pick_first's contract. round_robin pays one read
//! lock of the subchannel list and one atomic increment per call.
//!
//! Health checking (gRFC A17, `health_check.rs`), when the channel has it, narrows
//! round_robin's view of each subchannel: READY counts only once its Watch said SERVING.
//!
//! The policy comes from `ChannelBuilder::load_balancing` or a service config's
//! `loadBalancingConfig` (`ChannelBuilder::service_config`): the first policy of the list that
//! this library knows, as grpc-go chooses. Only that field is read; the JSON is scanned by hand
//! so the default build needs no JSON crate.
//!
//! Links: <https://github.com/grpc/grpc/blob/master/doc/load-balancing.md>,
//! <https://github.com/grpc/grpc/blob/master/doc/service_config.md>,
//! <https://github.com/grpc/proposal/blob/master/A61-IPv4-IPv6-dualstack-backends.md>.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once, RwLock, Weak};

use tokio::sync::watch;
use tokio::time::Instant;

use super::ChannelOptions;
use super::connection::{Addresses, ConnectivityState, Peek, Ready, Subchannel};
use super::health_check::HealthCheck;
use super::resolver::{Address, Resolution, Target};
use crate::first::{First, first};
use crate::status::Status;

/// A load-balancing policy (the names are gRPC's).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LoadBalancingPolicy {
    /// One connection, to the first address that answers (gRPC's default).
    #[default]
    PickFirst,
    /// A connection to every address; calls take the READY ones in turn.
    RoundRobin,
}

impl LoadBalancingPolicy {
    /// The policy for a name of gRPC's (`pick_first`, `round_robin`).
    pub fn from_name(name: &str) -> Option<LoadBalancingPolicy> {
        match name {
            "pick_first" => Some(LoadBalancingPolicy::PickFirst),
            "round_robin" => Some(LoadBalancingPolicy::RoundRobin),
            _ => None,
        }
    }

    /// The first policy this library knows in a service config's `loadBalancingConfig`
    /// (`{"loadBalancingConfig": [{"round_robin": {}}]}`). `Ok(None)` when the config has no
    /// such field; INVALID_ARGUMENT when the field is not a list of one-key objects, or names
    /// no policy this library knows.
    pub fn from_service_config(json: &str) -> Result<Option<LoadBalancingPolicy>, Status> {
        let bad = |why: &str| Status::invalid_argument(format!("bad service config: {why}"));
        let Some(at) = json.find("\"loadBalancingConfig\"") else {
            return Ok(None);
        };
        let rest = json[at + "\"loadBalancingConfig\"".len()..].trim_start();
        let rest = rest
            .strip_prefix(':')
            .ok_or_else(|| bad("expected ':' after \"loadBalancingConfig\""))?
            .trim_start();
        let mut rest = rest
            .strip_prefix('[')
            .ok_or_else(|| bad("\"loadBalancingConfig\" must be a list"))?;
        let mut names = Vec::new();
        loop {
            rest = rest.trim_start();
            if let Some(after) = rest.strip_prefix(']') {
                let _ = after;
                break;
            }
            rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
            let body = rest
                .strip_prefix('{')
                .ok_or_else(|| bad("each loadBalancingConfig entry must be an object"))?
                .trim_start();
            let body = body
                .strip_prefix('"')
                .ok_or_else(|| bad("expected a policy name"))?;
            let (name, after) = body
                .split_once('"')
                .ok_or_else(|| bad("unterminated policy name"))?;
            names.push(name.to_owned());
            // Skip the policy's own config: to the '}' that closes this entry.
            let mut depth = 1usize;
            let mut in_string = false;
            let mut escaped = false;
            let mut end = None;
            for (i, c) in after.char_indices() {
                if in_string {
                    match (escaped, c) {
                        (true, _) => escaped = false,
                        (false, '\\') => escaped = true,
                        (false, '"') => in_string = false,
                        _ => {}
                    }
                    continue;
                }
                match c {
                    '"' => in_string = true,
                    '{' | '[' => depth += 1,
                    '}' | ']' => {
                        depth -= 1;
                        if depth == 0 {
                            end = Some(i + 1);
                            break;
                        }
                    }
                    _ => {}
                }
            }
            rest = &after[end.ok_or_else(|| bad("unclosed loadBalancingConfig entry"))?..];
        }
        match names.iter().find_map(|n| LoadBalancingPolicy::from_name(n)) {
            Some(policy) => Ok(Some(policy)),
            None if names.is_empty() => Err(bad("\"loadBalancingConfig\" is empty")),
            None => Err(bad(&format!(
                "no supported policy in loadBalancingConfig {names:?} (pick_first, round_robin)"
            ))),
        }
    }
}

/// Where a channel's calls go.
#[derive(Debug)]
pub(crate) enum Picker {
    /// pick_first: one subchannel.
    Single(Subchannel),
    /// round_robin.
    RoundRobin(Arc<RoundRobin>),
    /// One given connection: the channel a health check's Watch runs on (`health_check.rs`).
    Pinned(Ready),
}

/// The subchannel a pick chose, to report a broken connection to.
pub(crate) enum Picked<'a> {
    /// pick_first's one subchannel.
    Single(&'a Subchannel),
    /// One of round_robin's.
    Shared(Arc<Subchannel>),
    /// A pinned connection, which has no subchannel to tell.
    Pinned,
}

impl Picked<'_> {
    /// Tells the subchannel that its connection `generation` refused a stream.
    pub(crate) fn report_broken(&self, generation: u64) {
        match self {
            Picked::Single(subchannel) => subchannel.report_broken(generation),
            Picked::Shared(subchannel) => subchannel.report_broken(generation),
            Picked::Pinned => {}
        }
    }
}

impl Picker {
    /// The picker for `policy` over `resolution`; `health_check` names the service each
    /// round_robin subchannel watches (gRFC A17; pick_first ignores it, as A17 says).
    pub(crate) fn new(
        policy: LoadBalancingPolicy,
        resolution: Arc<Resolution>,
        target: &Target,
        options: Arc<ChannelOptions>,
        health_check: Option<String>,
    ) -> Picker {
        let authority = target.authority.clone();
        match policy {
            LoadBalancingPolicy::PickFirst => Picker::Single(Subchannel::new(
                Addresses::Resolved(resolution),
                authority,
                options,
                None,
            )),
            LoadBalancingPolicy::RoundRobin => {
                let (changed, _) = watch::channel(0u64);
                Picker::RoundRobin(Arc::new(RoundRobin {
                    resolution,
                    authority,
                    options,
                    list: RwLock::new(Arc::new(Vec::new())),
                    next: AtomicUsize::new(0),
                    changed: Arc::new(changed),
                    started: Once::new(),
                    resolve_error: Mutex::new(None),
                    health_check: health_check.map(|service| (service, target.clone())),
                }))
            }
        }
    }

    /// A connection for a call (see the module docs for the waiting rules); `not` is a
    /// connection the caller just saw refuse its stream.
    pub(crate) async fn pick(
        &self,
        wait_for_ready: bool,
        not: Option<u64>,
    ) -> Result<(Ready, Picked<'_>), Status> {
        match self {
            Picker::Single(subchannel) => {
                let ready = subchannel.ready(wait_for_ready, not).await?;
                Ok((ready, Picked::Single(subchannel)))
            }
            Picker::RoundRobin(rr) => {
                let (ready, subchannel) = rr.pick(wait_for_ready, not).await?;
                Ok((ready, Picked::Shared(subchannel)))
            }
            Picker::Pinned(ready) if Some(ready.generation) == not => {
                Err(Status::unavailable("the health check's connection is gone"))
            }
            Picker::Pinned(ready) => Ok((ready.clone(), Picked::Pinned)),
        }
    }

    /// Eager connect: the first pick's outcome, fail-fast.
    pub(crate) async fn connect_now(&self) -> Result<(), Status> {
        match self {
            Picker::Single(subchannel) => subchannel.connect_now().await,
            Picker::RoundRobin(rr) => rr.pick(false, None).await.map(|_| ()),
            Picker::Pinned(_) => Ok(()),
        }
    }

    /// The aggregate state; `try_to_connect` starts connecting an IDLE channel.
    pub(crate) fn state(&self, try_to_connect: bool) -> ConnectivityState {
        match self {
            Picker::Single(subchannel) => {
                if try_to_connect {
                    subchannel.request_connection();
                }
                subchannel.connectivity()
            }
            Picker::RoundRobin(rr) => {
                if try_to_connect {
                    rr.ensure_started();
                }
                rr.state()
            }
            Picker::Pinned(_) => ConnectivityState::Ready,
        }
    }

    /// Waits until the state differs from `source` or `deadline` passes; false on timeout.
    pub(crate) async fn wait_for_state_change(
        &self,
        source: ConnectivityState,
        deadline: Instant,
    ) -> bool {
        let changed = async {
            match self {
                Picker::Single(subchannel) => {
                    let mut watch = subchannel.watch();
                    while subchannel.connectivity() == source {
                        if watch.changed().await.is_err() {
                            return;
                        }
                    }
                }
                Picker::RoundRobin(rr) => {
                    let mut watch = rr.changed.subscribe();
                    while rr.state() == source {
                        if watch.changed().await.is_err() {
                            return;
                        }
                    }
                }
                Picker::Pinned(_) if source != ConnectivityState::Ready => {}
                Picker::Pinned(_) => std::future::pending().await,
            }
        };
        tokio::time::timeout_at(deadline, changed).await.is_ok()
    }
}

/// round_robin's subchannels, one per address, in the resolver's order, each with its health
/// checker when the channel has health checking on.
type SubchannelList = Vec<(Address, Arc<Subchannel>, Option<Arc<HealthCheck>>)>;

/// round_robin's shared state.
#[derive(Debug)]
pub(crate) struct RoundRobin {
    /// The channel's resolver and its last answer.
    resolution: Arc<Resolution>,
    /// For new subchannels.
    authority: http::uri::Authority,
    /// For new subchannels.
    options: Arc<ChannelOptions>,
    /// One subchannel per address, in the resolver's order; replaced whole on a new list.
    list: RwLock<Arc<SubchannelList>>,
    /// The next index to try.
    next: AtomicUsize,
    /// Bumped on every subchannel state change and every new list.
    changed: Arc<watch::Sender<u64>>,
    /// The background task is spawned once.
    started: Once,
    /// Why the last resolution failed, until one succeeds.
    resolve_error: Mutex<Option<Status>>,
    /// The service each subchannel watches (gRFC A17), and the target its Watch is sent to.
    health_check: Option<(String, Target)>,
}

impl RoundRobin {
    /// Spawns the background task (inside a runtime) the first time.
    fn ensure_started(self: &Arc<Self>) {
        if self.started.is_completed() {
            return;
        }
        self.started.call_once(|| {
            tokio::spawn(run(Arc::downgrade(self), self.changed.subscribe()));
        });
    }

    /// The next READY subchannel, waiting as the module docs say.
    async fn pick(
        self: &Arc<Self>,
        wait_for_ready: bool,
        not: Option<u64>,
    ) -> Result<(Ready, Arc<Subchannel>), Status> {
        self.ensure_started();
        loop {
            // Subscribed before looking, so a change between the look and the wait is seen.
            let mut changed = self.changed.subscribe();
            let list = crate::lock::read(&self.list).clone();
            let mut failing = None;
            let mut pending = list.is_empty();
            let start = self.next.fetch_add(1, Ordering::Relaxed);
            for i in 0..list.len() {
                let (_, subchannel, health) = &list[start.wrapping_add(i) % list.len()];
                match peek(subchannel, health, not) {
                    Peek::Ready(ready) => return Ok((ready, subchannel.clone())),
                    Peek::Pending => pending = true,
                    Peek::Failing(status) => failing = Some(status),
                }
            }
            if list.is_empty() {
                if let Some(status) = crate::lock::lock(&self.resolve_error).clone() {
                    failing = Some(status);
                    pending = false;
                }
            }
            if !pending && !wait_for_ready {
                let why = failing.map(|s| s.message().to_owned()).unwrap_or_default();
                return Err(Status::unavailable(format!(
                    "round_robin: no READY subchannel for {}: {why}",
                    self.authority
                )));
            }
            if changed.changed().await.is_err() {
                return Err(Status::unavailable("channel is shutting down"));
            }
        }
    }

    /// READY if any subchannel is; else CONNECTING if any is connecting for the first time
    /// or IDLE (or nothing is resolved yet); else TRANSIENT_FAILURE (gRFC A61).
    fn state(&self) -> ConnectivityState {
        if !self.started.is_completed() {
            return ConnectivityState::Idle;
        }
        let list = crate::lock::read(&self.list).clone();
        let mut pending = list.is_empty() && crate::lock::lock(&self.resolve_error).is_none();
        for (_, subchannel, health) in list.iter() {
            match peek(subchannel, health, None) {
                Peek::Ready(_) => return ConnectivityState::Ready,
                Peek::Pending => pending = true,
                Peek::Failing(_) => {}
            }
        }
        if pending {
            ConnectivityState::Connecting
        } else {
            ConnectivityState::TransientFailure
        }
    }

    /// Installs a new address list: addresses kept keep their subchannel, new ones get one
    /// (connecting at once), dropped ones are dropped (their connections drain and close).
    fn update(&self, addresses: Vec<Address>) {
        let old = crate::lock::read(&self.list).clone();
        let mut by_address: HashMap<&Address, (&Arc<Subchannel>, &Option<Arc<HealthCheck>>)> =
            old.iter().map(|(a, s, h)| (a, (s, h))).collect();
        let mut list: SubchannelList = Vec::with_capacity(addresses.len());
        for address in addresses {
            if list.iter().any(|(a, _, _)| *a == address) {
                continue;
            }
            let (subchannel, health) = match by_address.remove(&address) {
                Some((subchannel, health)) => (subchannel.clone(), health.clone()),
                None => {
                    let subchannel = Arc::new(Subchannel::new(
                        Addresses::One(address.clone()),
                        self.authority.clone(),
                        self.options.clone(),
                        Some(self.changed.clone()),
                    ));
                    let health = self.health_check.as_ref().map(|(service, target)| {
                        Arc::new(HealthCheck::start(
                            service.clone(),
                            &subchannel,
                            target.clone(),
                            self.options.clone(),
                            self.changed.clone(),
                        ))
                    });
                    (subchannel, health)
                }
            };
            subchannel.request_connection();
            list.push((address, subchannel, health));
        }
        *crate::lock::write(&self.list) = Arc::new(list);
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// What a pick sees of one round_robin subchannel: its connection state, narrowed by its
/// health when health checking is on.
fn peek(subchannel: &Subchannel, health: &Option<Arc<HealthCheck>>, not: Option<u64>) -> Peek {
    let peek = subchannel.peek(not);
    match health {
        Some(health) => health.narrow(peek),
        None => peek,
    }
}

/// round_robin's background task: resolve, reconcile, reconnect lost subchannels, resolve
/// again after a loss (never faster than the minimum interval). Holds the balancer weakly, so
/// dropping the channel ends it.
async fn run(rr: Weak<RoundRobin>, mut changed: watch::Receiver<u64>) {
    let Some(resolution) = rr.upgrade().map(|rr| rr.resolution.clone()) else {
        return;
    };
    let mut fresh = false;
    loop {
        let outcome = resolution.addresses(fresh).await;
        fresh = true;
        {
            let Some(rr) = rr.upgrade() else { return };
            match outcome {
                Ok(list) => {
                    *crate::lock::lock(&rr.resolve_error) = None;
                    rr.update(list);
                }
                Err(status) => {
                    *crate::lock::lock(&rr.resolve_error) = Some(status);
                    rr.changed.send_modify(|n| *n = n.wrapping_add(1));
                }
            }
        }
        // Wait for a reason to resolve again: a lost connection (or a failed resolution),
        // once the minimum interval allows it. Lost subchannels reconnect meanwhile.
        let mut want = {
            let Some(rr) = rr.upgrade() else { return };
            crate::lock::lock(&rr.resolve_error).is_some()
        };
        loop {
            if want && resolution.next_allowed().is_none() {
                break;
            }
            let wake = async {
                match resolution.next_allowed() {
                    Some(at) if want => tokio::time::sleep_until(at).await,
                    _ => std::future::pending().await,
                }
            };
            match first(changed.changed(), wake).await {
                First::A(Err(_)) => return,
                First::A(Ok(())) => {}
                First::B(()) => continue,
            }
            let Some(rr) = rr.upgrade() else { return };
            let list = crate::lock::read(&rr.list).clone();
            for (_, subchannel, _) in list.iter() {
                if subchannel.connectivity() == ConnectivityState::Idle {
                    subchannel.request_connection();
                    want = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_config_load_balancing() {
        let rows: &[(&str, Option<LoadBalancingPolicy>)] = &[
            ("{}", None),
            (
                r#"{"loadBalancingConfig": [{"round_robin": {}}]}"#,
                Some(LoadBalancingPolicy::RoundRobin),
            ),
            (
                r#"{"loadBalancingConfig":[{"grpclb":{"childPolicy":[{"x":{}}]}},{"pick_first":{"shuffleAddressList":true}}],"methodConfig":[]}"#,
                Some(LoadBalancingPolicy::PickFirst),
            ),
            (
                r#"{"methodConfig": [{"name": [{"service": "a}b"}]}], "loadBalancingConfig": [ { "xds" : {} } , { "round_robin" : { } } ] }"#,
                Some(LoadBalancingPolicy::RoundRobin),
            ),
        ];
        for (json, want) in rows {
            assert_eq!(
                LoadBalancingPolicy::from_service_config(json).unwrap(),
                *want,
                "{json}"
            );
        }
        for (json, names) in [
            (r#"{"loadBalancingConfig": {"round_robin": {}}}"#, "a list"),
            (r#"{"loadBalancingConfig": [{"grpclb": {}}]}"#, "grpclb"),
            (r#"{"loadBalancingConfig": []}"#, "empty"),
            (r#"{"loadBalancingConfig": [{"round_robin": {}"#, "unclosed"),
        ] {
            let status = LoadBalancingPolicy::from_service_config(json).unwrap_err();
            assert!(status.message().contains(names), "{json}: {status:?}");
        }
    }
}
