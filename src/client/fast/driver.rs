//! The HTTP/2 connection future, polled by its task and, right after a bidi message was
//! queued, by the caller that queued it, so that the frame leaves from the caller's thread.
//!
//! ```text
//!   before:  caller: queue msg -> park (futex, switch) ... worker: writer task -> h2 -> writev
//!   now:     caller: send_data (h2's wake held back) -> poll connection -> writev -> park
//! ```
//!
//! Why: a bidi ping-pong is latency-bound, and a caller outside the runtime's tasks
//! (`block_on`, as a `#[tokio::main]` program's calls are: see [`super::blocking_caller`]) that hands its message to a task on
//! a worker puts a park, a context switch and two task polls between the message and its
//! `writev`. Writing into h2 from the caller is only cheap if h2's wake of its connection task
//! does not unpark the worker while the caller holds h2's lock (otherwise the woken worker
//! preempts the caller and sleeps on the lock: docs/performance.md has the count).
//! So every poll of the connection, by its task or by a caller, uses one waker we own
//! ([`DriverWake`]): woken while the caller is queueing (a thread-local flag), it only notes
//! that the connection needs a poll, which the caller then does itself, outside h2's lock.
//!
//! What it buys is measured in docs/performance.md (§ "The `block_on` fast paths").
//!
//! The rules that keep it sound:
//! - The future sits behind a mutex that is only ever `try_lock`ed: a caller never waits for
//!   the connection task, and the connection task never sleeps on a caller. Whoever finds it
//!   taken sets `dirty`; whoever holds it looks at `dirty` after letting go and polls again
//!   (the task) or wakes the task (a caller). So a needed poll is never lost.
//! - Every registration h2 and tokio keep (socket readiness, h2's connection-task waker) is
//!   the one [`DriverWake`] waker, whoever polled last, so events always reach the task.
//! - When the connection ends in a caller's poll, the task is woken to report it.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use crate::lock::lock;

/// An h2 client connection, boxed so one driver type serves any byte stream.
type ConnectionFuture = Pin<Box<dyn Future<Output = Result<(), h2::Error>> + Send>>;

thread_local! {
    /// Set while this thread queues a message it will flush itself ([`queueing`]).
    static QUEUEING: Cell<bool> = const { Cell::new(false) };
}

/// The connection future and who polls it.
pub(crate) struct ConnectionDriver {
    /// The connection; `None` once it has ended. Only ever `try_lock`ed.
    conn: Mutex<Option<ConnectionFuture>>,
    /// What wakes the connection's task.
    wake: Arc<DriverWake>,
    /// `wake` as a waker, the one every poll of the connection uses.
    waker: Waker,
}

/// The waker of every poll of the connection.
struct DriverWake {
    /// The connection task's own waker.
    task: Mutex<Option<Waker>>,
    /// The connection needs a poll that its current holder (or a queueing caller) owes it.
    dirty: AtomicBool,
}

impl Wake for DriverWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if QUEUEING.with(Cell::get) {
            // h2 holds its lock: the caller polls the connection itself once out of it.
            self.dirty.store(true, Ordering::SeqCst);
            return;
        }
        self.wake_task();
    }
}

impl DriverWake {
    /// Wakes the connection task.
    fn wake_task(&self) {
        let task = lock(&self.task).clone();
        if let Some(task) = task {
            task.wake();
        }
    }
}

/// Resets [`QUEUEING`] when dropped (also when h2 panics).
pub(crate) struct Queueing(());

impl Drop for Queueing {
    fn drop(&mut self) {
        QUEUEING.with(|q| q.set(false));
    }
}

/// Marks this thread as queueing into h2 until the guard is dropped: h2's wake of the
/// connection task is held back, and the caller must call [`ConnectionDriver::flush`] after.
pub(crate) fn queueing() -> Queueing {
    QUEUEING.with(|q| q.set(true));
    Queueing(())
}

impl ConnectionDriver {
    /// Wraps `connection`; run [`ConnectionDriver::run`] in a task to drive it.
    pub(crate) fn new<F>(connection: F) -> Arc<ConnectionDriver>
    where
        F: Future<Output = Result<(), h2::Error>> + Send + 'static,
    {
        let wake = Arc::new(DriverWake {
            task: Mutex::new(None),
            dirty: AtomicBool::new(false),
        });
        Arc::new(ConnectionDriver {
            conn: Mutex::new(Some(Box::pin(connection))),
            waker: Waker::from(wake.clone()),
            wake,
        })
    }

    /// Makes the connection task poll the connection (keepalive: a killed connection then
    /// reads its error and ends).
    pub(crate) fn wake(&self) {
        self.wake.wake_task();
    }

    /// The connection task: polls the connection until it ends. (The error, if any, reaches
    /// every open stream through h2.)
    pub(crate) async fn run(self: Arc<Self>) {
        std::future::poll_fn(|cx| self.poll_task(cx)).await;
    }

    /// One wake of the connection task.
    fn poll_task(&self, cx: &mut Context<'_>) -> Poll<()> {
        {
            let mut task = lock(&self.wake.task);
            match task.as_ref() {
                Some(waker) if waker.will_wake(cx.waker()) => {}
                _ => *task = Some(cx.waker().clone()),
            }
        }
        loop {
            self.wake.dirty.store(true, Ordering::SeqCst);
            let Ok(mut conn) = self.conn.try_lock() else {
                // A caller is polling it and will wake this task if it has to.
                return Poll::Pending;
            };
            self.wake.dirty.store(false, Ordering::SeqCst);
            let Some(future) = conn.as_mut() else {
                return Poll::Ready(());
            };
            if future
                .as_mut()
                .poll(&mut Context::from_waker(&self.waker))
                .is_ready()
            {
                *conn = None;
                return Poll::Ready(());
            }
            drop(conn);
            if !self.wake.dirty.swap(false, Ordering::SeqCst) {
                return Poll::Pending;
            }
        }
    }

    /// From a caller that has just queued a message under [`queueing`]: polls the connection
    /// on this thread so the frame is written now. When the task holds the connection, it
    /// polls again after letting go (it sees `dirty`); when the task found it held by us, it
    /// is woken here.
    pub(crate) fn flush(&self) {
        self.wake.dirty.store(true, Ordering::SeqCst);
        let Ok(mut conn) = self.conn.try_lock() else {
            return;
        };
        self.wake.dirty.store(false, Ordering::SeqCst);
        let ended = match conn.as_mut() {
            Some(future) => future
                .as_mut()
                .poll(&mut Context::from_waker(&self.waker))
                .is_ready(),
            None => false,
        };
        if ended {
            *conn = None;
        }
        drop(conn);
        if self.wake.dirty.swap(false, Ordering::SeqCst) || ended {
            self.wake.wake_task();
        }
    }
}

impl std::fmt::Debug for ConnectionDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionDriver").finish_non_exhaustive()
    }
}
