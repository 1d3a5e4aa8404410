//! One way to take the runtime's internal mutexes.
//!
//! Every `Mutex` inside bare-grpc guards a few plain values (wakers, flags, a stream handle, an
//! `Option`) and none of them runs user code while held, so a panic elsewhere cannot leave what
//! it guards half-changed: a poisoned lock is taken as it is instead of spreading the panic to
//! every other call on the connection.

use std::sync::{Mutex, MutexGuard};

/// Locks `mutex`, ignoring poisoning (see the module docs for why that is sound here).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
