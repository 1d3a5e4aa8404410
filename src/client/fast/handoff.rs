//! An upload that has to wait moves to a task of its own, next to the HTTP/2 connection task,
//! for a `block_on` caller ([`super::blocking_caller`]).
//!
//! ```text
//!   plain (a task caller):  the call's task polls the upload and the response together
//!   hand-off:               the call's task polls the upload until it first has to wait
//!                           (for window, or for the caller's stream), then spawns it
//! ```
//!
//! Why: every WINDOW_UPDATE the connection task reads wakes whoever waits for window. When that
//! is an outside thread, its `send_data` wakes the connection task back and contends on h2's
//! internal lock, for every window opened. Run on a worker, the wake-ups between the upload and
//! the connection are queue pushes on one thread (docs/performance.md has the figures). A body
//! that goes out in one poll (a small unary request, a short client stream within the window)
//! never pays for the spawn.
//!
//! The task is told to stop when the call ends first (the server answered early, failed, or
//! the call was dropped) and hands the upload back, so a retry can replay what it recorded and
//! the call reports an upload failure of its own (a message over the send limit) rather than
//! the reset that failure caused. A panic in the caller's stream is raised again in the call.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use crate::client::upload::Upload;
use crate::status::Status;

/// Where a call's [`Upload`] runs (see the module doc).
pub(crate) struct Uploader {
    /// Where the upload is now.
    run: Run,
    /// May the upload move to a task of its own ([`super::blocking_caller`], taken when the
    /// call starts)? A task caller polls it itself: that is the plain path.
    hand_off: bool,
}

/// The places an [`Uploader`]'s upload can be.
enum Run {
    /// Polled by the call's task.
    Inline(Upload),
    /// Polled by its own task; dropping `stop` makes the task hand the upload back.
    Spawned {
        /// The task, which returns the upload and how it ended.
        task: tokio::task::JoinHandle<(Upload, Result<(), Status>)>,
        /// Held while the call wants the upload to go on.
        stop: Option<tokio::sync::oneshot::Sender<()>>,
    },
    /// Back from its task, with the failure it ended with, if any.
    Returned(Upload, Option<Status>),
    /// The task was cancelled by a runtime shutting down: the upload is gone.
    Lost,
}

impl Uploader {
    /// Starts with `upload` in the call's task.
    pub(crate) fn new(upload: Upload) -> Uploader {
        Uploader {
            run: Run::Inline(upload),
            hand_off: super::blocking_caller(),
        }
    }

    /// Makes progress, as [`Upload::poll_upload`]: `Err` ends the call.
    pub(crate) fn poll_upload(&mut self, cx: &mut std::task::Context<'_>) -> Result<(), Status> {
        loop {
            match &mut self.run {
                Run::Inline(upload) => {
                    upload.poll_upload(cx)?;
                    if upload.is_done() || !self.hand_off {
                        return Ok(());
                    }
                    // It has to wait: from here on it runs next to the connection task.
                    let Run::Inline(upload) = std::mem::replace(&mut self.run, Run::Lost) else {
                        unreachable!("matched Inline above");
                    };
                    let (stop, stopped) = tokio::sync::oneshot::channel();
                    let task = tokio::spawn(upload_in_background(upload, stopped));
                    self.run = Run::Spawned {
                        task,
                        stop: Some(stop),
                    };
                }
                Run::Spawned { task, .. } => {
                    let joined = match Pin::new(task).poll(cx) {
                        Poll::Pending => return Ok(()),
                        Poll::Ready(joined) => joined,
                    };
                    return match joined {
                        Ok((upload, result)) => {
                            self.run = Run::Returned(upload, result.clone().err());
                            result
                        }
                        Err(error) => {
                            self.run = Run::Lost;
                            if error.is_panic() {
                                std::panic::resume_unwind(error.into_panic());
                            }
                            Err(Status::cancelled(
                                "the request upload was cancelled: the runtime is shutting down",
                            ))
                        }
                    };
                }
                Run::Returned(..) | Run::Lost => return Ok(()),
            }
        }
    }

    /// Is the whole body handed to h2 (or abandoned after an error)?
    pub(crate) fn is_done(&self) -> bool {
        match &self.run {
            Run::Inline(upload) | Run::Returned(upload, _) => upload.is_done(),
            Run::Spawned { .. } => false,
            Run::Lost => true,
        }
    }

    /// Stops the upload where it is and takes it back, with the failure of its own it ended
    /// with, if any (the call's status then). `None` for the upload when its task was lost.
    pub(crate) async fn finish(mut self) -> (Option<Upload>, Option<Status>) {
        match std::mem::replace(&mut self.run, Run::Lost) {
            Run::Inline(upload) => (Some(upload), None),
            Run::Returned(upload, failure) => (Some(upload), failure),
            Run::Lost => (None, None),
            Run::Spawned { task, stop } => {
                drop(stop);
                match task.await {
                    Ok((upload, result)) => (Some(upload), result.err()),
                    Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
                    Err(_) => (None, None),
                }
            }
        }
    }
}

/// The task of an [`Uploader`]: the upload until it is done, fails, or the call drops `stop`.
async fn upload_in_background(
    mut upload: Upload,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) -> (Upload, Result<(), Status>) {
    let result = std::future::poll_fn(|cx| {
        if let Err(status) = upload.poll_upload(cx) {
            return Poll::Ready(Err(status));
        }
        if upload.is_done() || Pin::new(&mut stop).poll(cx).is_ready() {
            return Poll::Ready(Ok(()));
        }
        Poll::Pending
    })
    .await;
    (upload, result)
}
