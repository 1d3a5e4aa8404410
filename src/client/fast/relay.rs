//! A wake-up relay between h2 and a caller that reads a stream from outside the runtime.
//!
//! ```text
//!   without:  connection task (worker) --h2 lock held--> wake caller thread (futex)
//!             caller thread preempts the worker, poll_data --> h2 lock contended (futex x3)
//!
//!   with:     connection task (worker) --h2 lock held--> wake relay task (local run queue)
//!             connection task returns, lock released; relay task --> wake caller thread
//!             caller thread: poll_data, lock free
//! ```
//!
//! Why: h2 wakes the task reading a stream while it still holds the connection's internal
//! lock (`Streams::recv_data` notifies under it). When that reader is a thread outside the
//! runtime (`Runtime::block_on`, as a `#[tokio::main]` program's calls are) sharing a core
//! with the worker, the woken thread runs at once, calls `poll_data`, finds the lock held
//! and sleeps on it; the worker wakes it again on unlock. `strace -f` of a bidi ping-pong
//! showed that exchange (futex WAKE, WAIT, WAKE, WAKE) on every message. Handing the wake to
//! a small task on the worker that received the frame delays it until the connection task
//! has let go of the lock: h2's wake becomes a push onto the worker's own run queue, and the
//! caller is woken by a thread that holds nothing.
//!
//! What it buys is measured in docs/performance.md (§ "The `block_on` fast paths").
//!
//! The relay forwards wakes only; the caller still reads h2 itself, so flow control, the
//! receive buffer and every error path are unchanged. It ends with the stream it serves
//! (closed when the `Streaming` ends or is dropped); after that, or if its task is gone
//! (a runtime shutting down), a wake goes straight to the caller, so none is ever lost.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use crate::lock::lock;

/// A response stream's relay, for a caller that [`super::blocking_caller`] says pays for
/// h2's wakes: every poll of h2 for that stream goes through [`WakeRelay::poll`].
pub(crate) struct WakeRelay {
    /// The shared state.
    relay: Arc<Relay>,
    /// The waker h2 is given: it wakes the relay task, not the caller.
    waker: Waker,
}

impl WakeRelay {
    /// A relay for the calling thread's stream when it is a `block_on` caller; `None` (h2
    /// wakes the caller directly) otherwise.
    pub(crate) fn for_caller() -> Option<WakeRelay> {
        if !super::blocking_caller() {
            return None;
        }
        let (relay, waker) = Relay::spawn();
        Some(WakeRelay { relay, waker })
    }

    /// Runs `poll_h2` with the relay's waker in place of the caller's, which is kept for the
    /// relayed wake.
    pub(crate) fn poll<R>(
        &self,
        cx: &Context<'_>,
        poll_h2: impl FnOnce(&mut Context<'_>) -> R,
    ) -> R {
        self.relay.register(cx);
        poll_h2(&mut Context::from_waker(&self.waker))
    }
}

impl Drop for WakeRelay {
    /// The stream is over or its reader is gone: the relay task ends.
    fn drop(&mut self) {
        self.relay.close();
    }
}

/// The state shared by the waker handed to h2, the relay task and the caller.
struct Relay {
    /// The waker of the caller's last poll: what a relayed wake wakes.
    caller: Mutex<Option<Waker>>,
    /// The relay task's waker, once it has been polled.
    task: Mutex<Option<Waker>>,
    /// h2 has woken the relay since the task last looked.
    woken: AtomicBool,
    /// The stream is over or its reader is gone: the task exits, wakes go direct.
    closed: AtomicBool,
}

impl Relay {
    /// A relay and its task, spawned on the current runtime; returns the waker to hand h2.
    fn spawn() -> (Arc<Relay>, Waker) {
        let relay = Arc::new(Relay {
            caller: Mutex::new(None),
            task: Mutex::new(None),
            woken: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        });
        tokio::spawn(RelayTask(relay.clone()));
        let waker = Waker::from(relay.clone());
        (relay, waker)
    }

    /// Remembers the caller's waker for the next relayed wake (before h2 is polled with the
    /// relay's waker, so a wake between the two cannot be lost).
    fn register(&self, cx: &Context<'_>) {
        let mut caller = lock(&self.caller);
        match caller.as_ref() {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            _ => *caller = Some(cx.waker().clone()),
        }
    }

    /// The stream is over (or its reader dropped): stops the task.
    fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        if let Some(task) = lock(&self.task).take() {
            task.wake();
        }
    }

    /// Wakes the caller.
    fn wake_caller(&self) {
        let caller = lock(&self.caller).clone();
        if let Some(waker) = caller {
            waker.wake();
        }
    }

    /// The relay task: forwards each wake from h2 to the caller, until closed.
    fn poll_task(&self, cx: &mut Context<'_>) -> Poll<()> {
        {
            let mut task = lock(&self.task);
            match task.as_ref() {
                Some(waker) if waker.will_wake(cx.waker()) => {}
                _ => *task = Some(cx.waker().clone()),
            }
        }
        if self.woken.swap(false, Ordering::SeqCst) {
            self.wake_caller();
        }
        if self.closed.load(Ordering::SeqCst) {
            lock(&self.task).take();
            // A wake may have been handed to this task just before it saw `closed`.
            self.wake_caller();
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

/// The relay's task; if the runtime drops it before the stream is over (shutting down), the
/// relay is closed so that later wakes go to the caller directly.
struct RelayTask(Arc<Relay>);

impl std::future::Future for RelayTask {
    type Output = ();

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.poll_task(cx)
    }
}

impl Drop for RelayTask {
    fn drop(&mut self) {
        if !self.0.closed.swap(true, Ordering::SeqCst) {
            self.0.wake_caller();
        }
    }
}

impl Wake for Relay {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.closed.load(Ordering::SeqCst) {
            self.wake_caller();
            return;
        }
        self.woken.store(true, Ordering::SeqCst);
        // No waker yet means the task has not been polled: it looks at `woken` when it is.
        let task = lock(&self.task).clone();
        if let Some(task) = task {
            task.wake();
        }
        if self.closed.load(Ordering::SeqCst) {
            // The task may have exited between the two checks: do not rely on it.
            self.wake_caller();
        }
    }
}
