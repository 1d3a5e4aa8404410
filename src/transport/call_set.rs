//! The calls of one connection, polled inside the connection's own task.
//!
//! ```text
//!  connection task ── poll ──▶ CallSet::poll_calls ── polls only the calls that were woken
//!        ▲                           │
//!        └──── woken by any call ◀───┘  (each call has its own waker: it pushes its slot
//!                                         index onto the ready list and wakes the task)
//! ```
//!
//! Why not one tokio task per stream: every call of a connection must go through that
//! connection's h2 state anyway (one lock, one socket), so a task per stream buys parallelism
//! that h2 serialises again, and pays for it with a task allocation, a cross-task wake for each
//! frame and a context switch per call. Polling the calls where the connection is polled keeps a
//! call's frames in the task that writes them. The benchmark harness (`bench/`, see
//! `docs/performance.md`) measured this against a task per stream.
//!
//! The cost: one connection's calls share one worker thread. A handler that needs a CPU for
//! long should `spawn_blocking` or `spawn` its heavy part, as in any async server; calls on
//! other connections are unaffected.
//!
//! A call that panics outside its handler (the handler's own panics are caught and answered
//! INTERNAL by `server::drive`) is dropped on its own; h2 resets its stream.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use crate::lock::lock;

/// One call's future.
pub(crate) type Call = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Slot indices whose call was woken, and the connection task's waker.
#[derive(Default)]
struct ReadyList {
    indices: Mutex<Vec<usize>>,
    task: Mutex<Option<Waker>>,
}

/// The waker of one slot.
struct SlotWaker {
    index: usize,
    ready: Arc<ReadyList>,
}

impl Wake for SlotWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        lock(&self.ready.indices).push(self.index);
        if let Some(task) = lock(&self.ready.task).as_ref() {
            task.wake_by_ref();
        }
    }
}

/// A set of calls polled only when woken: a small `FuturesUnordered`.
#[derive(Default)]
pub(crate) struct CallSet {
    /// Running calls; `None` marks a free slot.
    slots: Vec<Option<Call>>,
    /// One waker per slot, made once and reused by the slot's next occupants.
    wakers: Vec<Waker>,
    /// Free slot indices.
    free: Vec<usize>,
    /// Woken slots, shared with the wakers.
    ready: Arc<ReadyList>,
    /// Scratch buffer swapped with the ready list on each poll.
    batch: Vec<usize>,
}

impl CallSet {
    /// Adds a call; it is polled on the next `poll_calls`.
    pub(crate) fn push(&mut self, call: Call) {
        let index = match self.free.pop() {
            Some(index) => {
                self.slots[index] = Some(call);
                index
            }
            None => {
                let index = self.slots.len();
                self.slots.push(Some(call));
                self.wakers.push(Waker::from(Arc::new(SlotWaker {
                    index,
                    ready: Arc::clone(&self.ready),
                })));
                index
            }
        };
        lock(&self.ready.indices).push(index);
    }

    /// How many calls are running.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.slots.iter().filter(|slot| slot.is_some()).count()
    }

    /// Polls every call woken since the last poll; finished calls leave the set. Registers
    /// `cx`'s waker so that any call's wake-up wakes the connection task. Returns how many
    /// calls were polled.
    pub(crate) fn poll_calls(&mut self, cx: &mut Context<'_>) -> usize {
        {
            let mut task = lock(&self.ready.task);
            if !task.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *task = Some(cx.waker().clone());
            }
        }
        std::mem::swap(&mut *lock(&self.ready.indices), &mut self.batch);
        let mut polled = 0;
        for i in 0..self.batch.len() {
            let index = self.batch[i];
            // A slot can be listed twice, or woken by a call that already finished there.
            let Some(call) = self.slots[index].as_mut() else {
                continue;
            };
            polled += 1;
            let mut call_cx = Context::from_waker(&self.wakers[index]);
            let done = match catch_unwind(AssertUnwindSafe(|| call.as_mut().poll(&mut call_cx))) {
                Ok(Poll::Pending) => false,
                Ok(Poll::Ready(())) | Err(_) => true,
            };
            if done {
                self.slots[index] = None;
                self.free.push(index);
            }
        }
        self.batch.clear();
        polled
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A future that is pending until its counter says it was polled `after` times.
    struct CountDown {
        left: usize,
        polls: Arc<AtomicUsize>,
    }

    impl Future for CountDown {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            self.polls.fetch_add(1, Ordering::SeqCst);
            if self.left == 0 {
                return Poll::Ready(());
            }
            self.left -= 1;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }

    fn noop_cx() -> Context<'static> {
        Context::from_waker(Waker::noop())
    }

    #[test]
    fn calls_run_to_completion_and_slots_are_reused() {
        let mut set = CallSet::default();
        let polls = Arc::new(AtomicUsize::new(0));
        for left in [0, 2, 5] {
            set.push(Box::pin(CountDown {
                left,
                polls: Arc::clone(&polls),
            }));
        }
        let mut cx = noop_cx();
        let mut rounds = 0;
        while set.len() > 0 {
            set.poll_calls(&mut cx);
            rounds += 1;
            assert!(rounds < 10, "calls did not finish");
        }
        // Each call is polled once per wake-up: 1 + 3 + 6 polls, no more.
        assert_eq!(polls.load(Ordering::SeqCst), 10);
        set.push(Box::pin(CountDown {
            left: 0,
            polls: Arc::clone(&polls),
        }));
        assert_eq!(set.slots.len(), 3, "a free slot was reused");
        set.poll_calls(&mut cx);
        assert_eq!(set.len(), 0);
    }

    #[test]
    fn a_call_not_woken_is_not_polled() {
        let mut set = CallSet::default();
        let polls = Arc::new(AtomicUsize::new(0));
        let polls2 = Arc::clone(&polls);
        set.push(Box::pin(std::future::poll_fn(move |_| {
            polls2.fetch_add(1, Ordering::SeqCst);
            Poll::<()>::Pending
        })));
        let mut cx = noop_cx();
        for _ in 0..5 {
            set.poll_calls(&mut cx);
        }
        assert_eq!(polls.load(Ordering::SeqCst), 1);
        assert_eq!(set.len(), 1);
    }

    #[test]
    fn a_panicking_call_is_dropped_alone() {
        let mut set = CallSet::default();
        set.push(Box::pin(async { panic!("call panics") }));
        let polls = Arc::new(AtomicUsize::new(0));
        set.push(Box::pin(CountDown {
            left: 1,
            polls: Arc::clone(&polls),
        }));
        let mut cx = noop_cx();
        set.poll_calls(&mut cx);
        set.poll_calls(&mut cx);
        assert_eq!(set.len(), 0);
        assert_eq!(polls.load(Ordering::SeqCst), 2);
    }
}
