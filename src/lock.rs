//! One way to take the runtime's internal mutexes.
//!
//! Every `Mutex` inside bare-grpc guards a few plain values (wakers, flags, a stream handle, an
//! `Option`) and, with one exception, none of them runs user code while held, so a panic
//! elsewhere cannot leave what it guards half-changed: a poisoned lock is taken as it is instead
//! of spreading the panic to every other call on the connection.
//!
//! The exception is one call's interceptor states (`interceptor::CallHooks`): the `request` and
//! `response` hooks run while it is held, so that the hooks of one call see its messages one at
//! a time and a concurrent end waits for them (taking the states out for the hook would let a
//! bidi call's other half, or its end, find them missing). A hook that panics there poisons
//! only that call's lock and leaves its own state as it left it; the call's other pieces go on
//! with that state, which is what the interceptor's own code made of it. The `end` hooks run
//! after the states have been taken out, with no lock held.

use std::sync::{Mutex, MutexGuard};

/// Locks `mutex`, ignoring poisoning (see the module docs for why that is sound here).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Read-locks `lock`, ignoring poisoning (as [`lock`]).
pub(crate) fn read<T>(lock: &std::sync::RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Write-locks `lock`, ignoring poisoning (as [`lock`]).
pub(crate) fn write<T>(lock: &std::sync::RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
