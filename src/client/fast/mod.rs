//! The `block_on` fast paths of the client, fenced into one place behind one check
//! ([`blocking_caller`]).
//!
//! A call is often driven from a thread that is not one of the runtime's workers:
//! `Runtime::block_on`, which is how a `#[tokio::main]` program's calls run. h2's connection
//! task runs on a worker, and h2 wakes whoever waits on a stream while it still holds its
//! connection lock. Between a worker and an outside thread every such hand-off costs a park,
//! a futex and a context switch, and a woken thread that runs into h2's lock sleeps again. A
//! task on the runtime pays none of this (the hand-off is a push onto a run queue), and on a
//! current-thread runtime the caller's thread is the worker; so only a `block_on` caller on a
//! multi-thread runtime takes these paths:
//!
//! | module | what it does instead of the plain path |
//! |---|---|
//! | `relay` | h2 wakes a small relay task, which wakes the caller once h2 has let go of its lock |
//! | `driver` + `direct` | a bidi message that fits the window is written into h2 and flushed from the caller's thread, with h2's wake of its connection task held back |
//! | `handoff` | an upload that has to wait (for window, or for the caller's stream) moves to a task of its own, next to the connection task |
//!
//! What each buys, with the commands that measured it, is in docs/performance.md
//! (§ "The `block_on` fast paths"). The plain path, which a task caller takes, reads as if
//! this module did not exist: the response stream polls h2 with the caller's waker, a bidi
//! message goes to the call's writer task, an upload is polled by the call itself. Only the
//! connection's future is always driven through [`driver::ConnectionDriver`], so that a caller
//! that writes directly can also flush; for every other caller it is a plain task.

pub(crate) mod direct;
pub(crate) mod driver;
pub(crate) mod handoff;
pub(crate) mod relay;

/// The one check: is the caller a thread outside the runtime's tasks on a multi-thread runtime
/// (a `Runtime::block_on` caller)? Only such a caller pays a park and a context switch for
/// every hand-off to a worker (see the module doc).
pub(crate) fn blocking_caller() -> bool {
    tokio::task::try_id().is_none()
        && tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread)
}
