//! Waiting for whichever of two futures finishes first: the one thing this crate used tokio's
//! `select!` macro for, written out so the library does not need tokio's `macros` feature (and
//! its proc-macro crates) in its dependency tree.
//!
//! Polling order is fixed, `a` before `b`: where both are ready at once, `a` wins. Every caller
//! passes the event that matters more (new work, a shutdown signal) as `a`.

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::task::Poll;

/// Which future finished first, with its output.
pub(crate) enum First<A, B> {
    /// The first argument finished (or both did).
    A(A),
    /// The second argument finished.
    B(B),
}

/// Runs `a` and `b` concurrently until one finishes; the other is dropped.
pub(crate) async fn first<A: Future, B: Future>(a: A, b: B) -> First<A::Output, B::Output> {
    let mut a = pin!(a);
    let mut b = pin!(b);
    poll_fn(|cx| {
        if let Poll::Ready(output) = a.as_mut().poll(cx) {
            return Poll::Ready(First::A(output));
        }
        if let Poll::Ready(output) = b.as_mut().poll(cx) {
            return Poll::Ready(First::B(output));
        }
        Poll::Pending
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_ready_one_wins_and_a_wins_ties() {
        let pending = std::future::pending::<u8>;
        assert!(matches!(first(pending(), async { 2 }).await, First::B(2)));
        assert!(matches!(first(async { 1 }, pending()).await, First::A(1)));
        assert!(matches!(first(async { 1 }, async { 2 }).await, First::A(1)));
    }
}
