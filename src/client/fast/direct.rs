//! A bidi message written into h2 and onto the socket from a `block_on` caller's own thread.
//!
//! ```text
//!   plain:   caller: queue msg -> park (futex, switch) ... worker: writer task -> h2 -> writev
//!   direct:  caller: send_data (h2's wake held back) -> poll connection -> writev -> park
//! ```
//!
//! Why: a bidi ping-pong is latency-bound, and handing each message to a task on a worker puts
//! a park, a context switch and two task polls between the message and its `writev`. Writing
//! into h2 from the caller is only cheap if h2's wake of its connection task does not unpark
//! the worker while the caller holds h2's lock, so the write runs under
//! [`super::driver::queueing`] and the connection is then polled here, outside the lock.
//!
//! The rule that keeps the plain path's guarantees: only a message that the stream's window
//! takes whole, with nothing of the call queued before it, goes this way. Anything else is
//! queued for the writer task as on the plain path, so messages keep their order and `send`
//! never stalls on a peer that is not reading.

use bytes::Bytes;

use super::driver::{ConnectionDriver, queueing};
use crate::client::send_half::SharedSend;

/// Writes `data` into `send` and flushes the connection from this thread when the window
/// takes all of it: `Ok(None)` once sent, `Ok(Some(data))` when the caller must queue it
/// instead, `Err` when the stream can no longer send.
pub(crate) fn try_write(
    send: &SharedSend,
    driver: &ConnectionDriver,
    data: Bytes,
) -> Result<Option<Bytes>, h2::Error> {
    let sent = {
        let mut send = crate::lock::lock(send);
        send.reserve_capacity(data.len());
        if send.capacity() < data.len() {
            return Ok(Some(data));
        }
        let _queueing = queueing();
        send.send_data(data, false)
    };
    driver.flush();
    sent.map(|()| None)
}
