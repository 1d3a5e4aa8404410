//! The four call kinds from the caller's side, on one HTTP/2 stream each.
//!
//! Request HEADERS (PROTOCOL-HTTP2 § Requests), in the order sent:
//!
//! ```text
//!   :method POST  :scheme http  :path /pkg.Service/Method  :authority host:port
//!   content-type: application/grpc     te: trailers     user-agent: bare-grpc-rust/0.1.0
//!   grpc-timeout: 100m      (when the call has a timeout)
//!   grpc-encoding: gzip     (when the call compresses)
//!   grpc-accept-encoding: identity,gzip
//!   <custom metadata>
//! ```
//!
//! Who half-closes when (END_STREAM on the request side):
//!
//! ```text
//!   kind              request side                         response side
//!   unary             HEADERS, DATA(msg, END_STREAM)       HEADERS, DATA(msg), trailers
//!   server streaming  HEADERS, DATA(msg, END_STREAM)       HEADERS, DATA(msg)*, trailers
//!   client streaming  HEADERS, DATA(msg)*, END_STREAM      HEADERS, DATA(msg), trailers
//!   bidi              HEADERS, DATA(msg)*, finish()        HEADERS, DATA(msg)*, trailers
//!   any failure       trailers-only answer, or RST_STREAM from either side
//! ```
//!
//! Why it is shaped this way:
//! - While a request body is going out, the response is watched at the same time: a server may
//!   answer (often with an error) before reading the whole request, and a client that insisted
//!   on finishing its upload first could wait on a window that never reopens.
//! - The deadline covers everything: waiting for a connection, opening the stream, sending,
//!   receiving. On expiry the stream is reset with RST_STREAM(CANCEL) and the call ends with
//!   DEADLINE_EXCEEDED, whatever the server does (PROTOCOL-HTTP2 § Requests, "Timeout").
//! - Dropping a call's future, its `Streaming` or its `RequestSink` before the end resets the
//!   stream with CANCEL, which the server sees as cancellation.
//! - A unary or client-streaming response must hold exactly one message: none, or a second
//!   one, ends the call with INTERNAL (as grpc-go's "cardinality violation").
//!
//! Retries (when the channel has a `RetryPolicy`) wrap the attempts described above; each
//! attempt is a fresh stream, the deadline spans them all, and interceptors see the call once.
//!
//! What it does not do: hedging, per-method service config, load balancing.

use std::sync::Arc;
use std::task::Poll;

use bytes::Bytes;
use futures_core::Stream;
use h2::client::ResponseFuture;
use http::HeaderValue;
use tokio::time::Instant;

use super::connection::deadline_after;
use super::fast::driver::ConnectionDriver;
use super::fast::handoff::Uploader;
use super::request_sink::RequestSink;
use super::response::{Failed, ResponseStream};
use super::retry::Retrier;
use super::send_half::{self, SharedSend};
use super::upload::{Body, Upload, encode_request};
use super::{Channel, ChannelOptions};
use crate::call::{CallKind, Request, Response};
use crate::compression::Encoding;
use crate::headers::{
    APPLICATION_GRPC, CONTENT_TYPE, GRPC_ACCEPT_ENCODING, GRPC_ENCODING, GRPC_TIMEOUT, TE,
    TRAILERS, USER_AGENT,
};
use crate::interceptor::{CallHooks, CallInfo, Chain};
use crate::metadata::Metadata;
use crate::status::Status;
use crate::timeout::encode_timeout;
use crate::transport::error::CallEnd;

/// The resolved options of one call: the request's own settings over the channel defaults.
#[derive(Clone, Copy, Debug)]
struct CallParams {
    /// When the call must be over.
    deadline: Option<Instant>,
    /// Sent as grpc-timeout.
    timeout: Option<std::time::Duration>,
    /// Wait through TRANSIENT_FAILURE instead of failing fast.
    wait_for_ready: bool,
    /// How request messages are compressed.
    encoding: Encoding,
    /// Send limit per message.
    max_send: usize,
    /// Receive limit per message.
    max_recv: usize,
    /// The channel's send stall timeout.
    send_stall_timeout: Option<std::time::Duration>,
}

impl CallParams {
    /// Before another attempt: its `grpc-timeout` is what is left of the call's deadline.
    fn refresh_timeout(&mut self) {
        if let Some(deadline) = self.deadline {
            self.timeout = Some(deadline.saturating_duration_since(Instant::now()));
        }
    }

    /// Merges a request's settings with the channel's defaults; the clock starts here.
    fn new<T>(request: &Request<T>, options: &ChannelOptions) -> CallParams {
        let timeout = request.timeout();
        CallParams {
            deadline: timeout.map(deadline_after),
            timeout,
            wait_for_ready: request.wait_for_ready(),
            encoding: request.compression().unwrap_or(options.compression),
            max_send: request
                .max_send_message_size()
                .unwrap_or(options.max_send_message_size),
            max_recv: request
                .max_receive_message_size()
                .unwrap_or(options.max_receive_message_size),
            send_stall_timeout: options.send_stall_timeout,
        }
    }
}

/// An open call: the request HEADERS are sent.
struct OpenCall {
    /// The send half, shared with the `ResponseStream`.
    send: SharedSend,
    /// The inbound half.
    streaming_response: ResponseFuture,
    /// The connection, which a `block_on` caller's bidi sink flushes itself (`fast::direct`).
    driver: Arc<ConnectionDriver>,
}

impl OpenCall {
    /// The two halves of a call whose single request message is `data`: the response stream,
    /// and the upload that sends `data` (a copy: the retry loop keeps the original).
    fn single<Out>(self, params: &CallParams, data: &Bytes) -> (ResponseStream<Out>, Uploader) {
        let streaming = ResponseStream::new(
            self.streaming_response,
            self.send.clone(),
            params.max_recv,
            params.deadline,
        );
        (
            streaming,
            Uploader::new(
                Upload::bytes(self.send, data.clone()).stall_timeout(params.send_stall_timeout),
            ),
        )
    }
}

/// Encodes the single request message of a unary or server-streaming call (checking the send
/// limit) and shows it to the interceptors; the message itself is not needed after this.
fn encode_single_request<In: prost::Message + 'static>(
    request: Request<In>,
    params: &CallParams,
    hooks: Option<&Arc<CallHooks>>,
) -> Result<(Metadata, Bytes), Status> {
    let (metadata, message) = request.into_parts();
    let data = encode_request(
        &message,
        params.encoding,
        params.max_send,
        hooks.map(Arc::as_ref),
    )?;
    Ok((metadata, data))
}

/// Runs `fut` under the call's deadline.
async fn with_deadline<F, T, E>(deadline: Option<Instant>, what: &str, fut: F) -> Result<T, E>
where
    F: Future<Output = Result<T, E>>,
    E: From<Status>,
{
    match deadline {
        None => fut.await,
        Some(deadline) => tokio::time::timeout_at(deadline, fut)
            .await
            .unwrap_or_else(|_| {
                Err(Status::deadline_exceeded(format!("deadline exceeded {what}")).into())
            }),
    }
}

impl Channel {
    /// Builds the request HEADERS for `path`.
    fn request_head(
        &self,
        path: &'static str,
        metadata: &Metadata,
        params: &CallParams,
    ) -> Result<http::Request<()>, Status> {
        let uri = http::Uri::builder()
            .scheme(self.inner.options.scheme())
            .authority(self.inner.target.authority.clone())
            .path_and_query(path)
            .build()
            .map_err(|e| Status::internal(format!("bad method path {path:?}: {e}")))?;
        let mut request = http::Request::builder()
            .method(http::Method::POST)
            .uri(uri)
            .body(())
            .map_err(|e| Status::internal(format!("cannot build the request: {e}")))?;
        let headers = request.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(APPLICATION_GRPC));
        headers.insert(TE, HeaderValue::from_static(TRAILERS));
        headers.insert(USER_AGENT, self.inner.options.user_agent.clone());
        if let Some(timeout) = params.timeout {
            let value = HeaderValue::try_from(encode_timeout(timeout))
                .map_err(|e| Status::internal(format!("bad grpc-timeout: {e}")))?;
            headers.insert(GRPC_TIMEOUT, value);
        }
        if params.encoding != Encoding::Identity {
            headers.insert(
                GRPC_ENCODING,
                HeaderValue::from_static(params.encoding.name()),
            );
        }
        headers.insert(
            GRPC_ACCEPT_ENCODING,
            HeaderValue::from_static(Encoding::accept_header()),
        );
        metadata.merge_into(headers);
        Ok(request)
    }

    /// Waits for a connection and opens a stream with the request HEADERS (never END_STREAM:
    /// every gRPC request has a body, even if it is only the END_STREAM of client streaming).
    async fn open(
        &self,
        path: &'static str,
        metadata: &Metadata,
        params: &CallParams,
    ) -> Result<OpenCall, Failed> {
        // Checked once up front, so a bad path or header fails before any waiting.
        self.request_head(path, metadata, params)?;
        let picker = &self.inner.picker;
        with_deadline(params.deadline, "while waiting for a connection", async {
            // A stream that could not even be opened never left this process, so trying once
            // more on a fresh connection (round_robin: another subchannel) is safe (gRPC's
            // "transparent retry").
            let mut attempts_left = 2;
            let mut broken = None;
            loop {
                attempts_left -= 1;
                let (ready, picked) = picker.pick(params.wait_for_ready, broken).await?;
                let driver = ready.driver.clone();
                let opened = match ready.send_request.ready().await {
                    Ok(mut send_request) => {
                        let head = self.request_head(path, metadata, params)?;
                        send_request.send_request(head, false)
                    }
                    Err(e) => Err(e),
                };
                match opened.map_err(|e| CallEnd::opening(&e)) {
                    Ok((response, send)) => {
                        return Ok(OpenCall {
                            send: send_half::share(send),
                            streaming_response: response,
                            driver,
                        });
                    }
                    Err(CallEnd::NeverProcessed(status)) => {
                        picked.report_broken(ready.generation);
                        broken = Some(ready.generation);
                        if attempts_left == 0 {
                            return Err(Failed::NeverProcessed(status));
                        }
                    }
                    Err(end) => return Err(Failed::Uncommitted(end.into_status())),
                }
            }
        })
        .await
    }

    /// Starts the channel's interceptors for a call: `Ok(None)` at once when it has none. A
    /// chain with an async interceptor is awaited under the call's deadline; nothing is sent
    /// before it decides.
    async fn start_hooks<T>(
        &self,
        kind: CallKind,
        path: &'static str,
        request: &mut Request<T>,
        params: &CallParams,
    ) -> Result<Option<Arc<CallHooks>>, Status> {
        let deadline = params.deadline;
        let chain = &self.inner.interceptors;
        let options = &self.inner.options;
        let info = move || {
            CallInfo::client(kind, path, deadline, options.is_secure())
                .with_plaintext_credentials(options.plaintext_credentials)
                .with_authority(self.inner.target.authority.clone())
        };
        if !chain.waits() {
            return chain.start(info, request.metadata_mut());
        }
        let Some(hooks) = chain.begin(info()) else {
            return Ok(None);
        };
        // Boxed: the waiting start (its timer, the hooks' futures) then takes no room in the
        // future of every call on a channel without async interceptors.
        let started = Box::pin(with_deadline(
            deadline,
            "while the interceptors started the call",
            Chain::start_waiting(&hooks, request.metadata_mut()),
        ));
        match started.await {
            Ok(()) => Ok(Some(hooks)),
            Err(status) => {
                // The deadline cut a start short: the interceptors that had started learn why.
                hooks.end(&status);
                Err(status)
            }
        }
    }

    /// This call's retry bookkeeping, when the channel has a policy.
    fn retrier(&self) -> Option<Retrier> {
        self.retry
            .as_ref()
            .map(|policy| Retrier::new(policy.clone()))
    }

    /// Unary: one request message, one response message.
    pub async fn unary<In, Out>(
        &self,
        path: &'static str,
        mut request: Request<In>,
    ) -> Result<Response<Out>, Status>
    where
        In: prost::Message + 'static,
        Out: prost::Message + Default + 'static,
    {
        let mut params = CallParams::new(&request, &self.inner.options);
        let hooks = self
            .start_hooks(CallKind::Unary, path, &mut request, &params)
            .await?;
        let result = self
            .unary_attempts(path, request, &mut params, hooks.as_ref())
            .await;
        if let Some(hooks) = &hooks {
            hooks.end_with(&result);
        }
        result
    }

    /// The attempts of a unary call, up to its one response message.
    async fn unary_attempts<In, Out>(
        &self,
        path: &'static str,
        request: Request<In>,
        params: &mut CallParams,
        hooks: Option<&Arc<CallHooks>>,
    ) -> Result<Response<Out>, Status>
    where
        In: prost::Message + 'static,
        Out: prost::Message + Default + 'static,
    {
        self.single_request_attempts(
            path,
            request,
            params,
            hooks,
            |mut streaming: ResponseStream<Out>, mut upload| {
                streaming.observe(hooks.cloned(), false);
                async move {
                    single_response(&mut streaming, &mut upload)
                        .await
                        .map_err(|status| streaming.failure(status, true))
                }
            },
        )
        .await
    }

    /// The attempts of a call with one request message (unary, server streaming): the encoded
    /// request is kept and sent again as the retry policy allows, and once more at once when
    /// the server never processed it ([`TransparentRetry`]). `finish` takes an attempt from its
    /// opened stream to the call's result, or to where its failure may go ([`Failed`]).
    async fn single_request_attempts<In, Out, T, Fut>(
        &self,
        path: &'static str,
        request: Request<In>,
        params: &mut CallParams,
        hooks: Option<&Arc<CallHooks>>,
        mut finish: impl FnMut(ResponseStream<Out>, Uploader) -> Fut,
    ) -> Result<T, Status>
    where
        In: prost::Message + 'static,
        Out: prost::Message + Default + 'static,
        Fut: Future<Output = Result<T, Failed>>,
    {
        let (metadata, data) = encode_single_request(request, params, hooks)?;
        let mut retrier = self.retrier();
        let mut transparent = TransparentRetry::default();
        loop {
            let failed = match self.open(path, &metadata, params).await {
                Err(failed) => failed,
                Ok(call) => {
                    let (streaming, upload) = call.single::<Out>(params, &data);
                    match finish(streaming, upload).await {
                        Ok(result) => return Ok(result),
                        Err(failed) => failed,
                    }
                }
            };
            if transparent.allows(&failed, params) {
                continue;
            }
            wait_to_retry(&mut retrier, failed, params).await?;
        }
    }

    /// Server streaming: one request message, a stream of response messages. Returns once the
    /// response HEADERS arrived, so a trailers-only failure is this call's `Err` (and, under a
    /// retry policy, may be retried; the stream handed out is committed).
    pub async fn server_streaming<In, Out>(
        &self,
        path: &'static str,
        mut request: Request<In>,
    ) -> Result<ResponseStream<Out>, Status>
    where
        In: prost::Message + 'static,
        Out: prost::Message + Default + 'static,
    {
        let mut params = CallParams::new(&request, &self.inner.options);
        let hooks = self
            .start_hooks(CallKind::ServerStreaming, path, &mut request, &params)
            .await?;
        match self
            .server_streaming_attempts(path, request, &mut params, hooks.as_ref())
            .await
        {
            Ok(mut streaming) => {
                // From here the stream reports the call's end, whenever the caller reaches it.
                streaming.observe(hooks, true);
                streaming.hand_to_caller();
                Ok(streaming)
            }
            Err(status) => {
                crate::interceptor::end(hooks.as_deref(), &status);
                Err(status)
            }
        }
    }

    /// The attempts of a server-streaming call, up to the response HEADERS.
    async fn server_streaming_attempts<In, Out>(
        &self,
        path: &'static str,
        request: Request<In>,
        params: &mut CallParams,
        hooks: Option<&Arc<CallHooks>>,
    ) -> Result<ResponseStream<Out>, Status>
    where
        In: prost::Message + 'static,
        Out: prost::Message + Default + 'static,
    {
        self.single_request_attempts(
            path,
            request,
            params,
            hooks,
            |mut streaming: ResponseStream<Out>, mut upload: Uploader| async move {
                let headers = std::future::poll_fn(|cx| {
                    upload.poll_upload(cx)?;
                    match streaming.poll_headers(cx) {
                        Poll::Ready(Ok(())) if !upload.is_done() => Poll::Pending,
                        other => other,
                    }
                })
                .await;
                match headers {
                    Ok(()) => Ok(streaming),
                    Err(status) => Err(streaming.failure(status, true)),
                }
            },
        )
        .await
    }

    /// Client streaming: a stream of request messages, one response message. The request
    /// stream is read as the window allows; the call ends as soon as the response does (a
    /// server may answer before reading everything). Under a retry policy, the call is sent
    /// again only while the messages read so far are buffered (see `retry.rs`).
    pub async fn client_streaming<In, Out, S>(
        &self,
        path: &'static str,
        mut request: Request<S>,
    ) -> Result<Response<Out>, Status>
    where
        In: prost::Message + 'static,
        Out: prost::Message + Default + 'static,
        S: Stream<Item = In> + Send + 'static,
    {
        let mut params = CallParams::new(&request, &self.inner.options);
        let hooks = self
            .start_hooks(CallKind::ClientStreaming, path, &mut request, &params)
            .await?;
        let result = self
            .client_streaming_attempts(path, request, &mut params, hooks.as_ref())
            .await;
        if let Some(hooks) = &hooks {
            hooks.end_with(&result);
        }
        result
    }

    /// The attempts of a client-streaming call.
    async fn client_streaming_attempts<In, Out, S>(
        &self,
        path: &'static str,
        request: Request<S>,
        params: &mut CallParams,
        hooks: Option<&Arc<CallHooks>>,
    ) -> Result<Response<Out>, Status>
    where
        In: prost::Message + 'static,
        Out: prost::Message + Default + 'static,
        S: Stream<Item = In> + Send + 'static,
    {
        let (metadata, messages) = request.into_parts();
        let mut retrier = self.retrier();
        let buffer = retrier.as_ref().and_then(|r| r.policy().buffer_limit());
        let mut body = Body::stream(
            messages,
            params.encoding,
            params.max_send,
            hooks.cloned(),
            buffer,
        );
        loop {
            let failed = match self.open(path, &metadata, params).await {
                Err(failed) => failed,
                Ok(call) => {
                    let mut streaming = ResponseStream::<Out>::new(
                        call.streaming_response,
                        call.send.clone(),
                        params.max_recv,
                        params.deadline,
                    );
                    streaming.observe(hooks.cloned(), false);
                    let mut upload = Uploader::new(
                        Upload::resume(call.send, body).stall_timeout(params.send_stall_timeout),
                    );
                    let result = single_response(&mut streaming, &mut upload).await;
                    // The upload may still run in its own task: stopped and taken back before
                    // the call ends, so interceptors see no request after the end, and a retry
                    // gets the recorded messages.
                    let (upload, failure) = upload.finish().await;
                    match (result, upload) {
                        (Ok(response), _) => return Ok(response),
                        (Err(status), None) => return Err(status),
                        (Err(status), Some(upload)) => {
                            // A failure of the upload's own (a message over the send limit)
                            // is why the call ended, whatever the reset it caused looked like.
                            let status = failure.unwrap_or(status);
                            let failed = streaming.failure(status, upload.replayable());
                            body = upload.into_body();
                            failed
                        }
                    }
                }
            };
            wait_to_retry(&mut retrier, failed, params).await?;
        }
    }

    /// Bidi: returns at once with the request sink and the response stream; the response
    /// HEADERS are read on the first `ResponseStream::message` (servers may hold them back until
    /// they have something to say). A retry policy applies only to opening the stream.
    pub async fn bidi<In, Out>(
        &self,
        path: &'static str,
        mut request: Request<()>,
    ) -> Result<(RequestSink<In>, ResponseStream<Out>), Status>
    where
        In: prost::Message + 'static,
        Out: prost::Message + Default + 'static,
    {
        let mut params = CallParams::new(&request, &self.inner.options);
        let hooks = self
            .start_hooks(CallKind::Bidi, path, &mut request, &params)
            .await?;
        let (metadata, ()) = request.into_parts();
        let mut retrier = self.retrier();
        let call = loop {
            match self.open(path, &metadata, &params).await {
                Ok(call) => break call,
                Err(failed) => {
                    if let Err(status) = wait_to_retry(&mut retrier, failed, &mut params).await {
                        crate::interceptor::end(hooks.as_deref(), &status);
                        return Err(status);
                    }
                }
            }
        };
        let mut streaming = ResponseStream::new(
            call.streaming_response,
            call.send.clone(),
            params.max_recv,
            params.deadline,
        );
        let sink = RequestSink::new(
            call.send,
            call.driver,
            params.encoding,
            params.max_send,
            params.deadline,
            params.send_stall_timeout,
            hooks.clone(),
        );
        streaming.observe(hooks, true);
        streaming.hand_to_caller();
        Ok((sink, streaming))
    }
}

/// gRPC's transparent retry (gRFC A6) for calls whose whole request is in hand (unary and
/// server streaming): an attempt whose stream the server never processed — refused by a
/// graceful GOAWAY racing with the call, or by RST_STREAM(REFUSED_STREAM) — is sent again at
/// once, on the fresh connection that `open` finds, without the retry policy's back-off and
/// without counting against it. Once per call, so a server that refuses everything still
/// ends the call. (`open` itself already tries twice when the stream could not be opened.)
#[derive(Default)]
struct TransparentRetry {
    used: bool,
}

impl TransparentRetry {
    fn allows(&mut self, failed: &Failed, params: &mut CallParams) -> bool {
        if self.used || !matches!(failed, Failed::NeverProcessed(_)) {
            return false;
        }
        if params
            .deadline
            .is_some_and(|deadline| deadline <= Instant::now())
        {
            return false;
        }
        self.used = true;
        params.refresh_timeout();
        true
    }
}

/// After a failed attempt: waits out the back-off and returns `Ok(())` when the retry policy
/// allows another attempt, or gives back the attempt's status when the failure is final. The
/// next attempt's `grpc-timeout` is what is left of the call's deadline.
async fn wait_to_retry(
    retrier: &mut Option<Retrier>,
    failed: Failed,
    params: &mut CallParams,
) -> Result<(), Status> {
    let committed = matches!(failed, Failed::Committed(_));
    let status = failed.into_status();
    let Some(retrier) = retrier else {
        return Err(status);
    };
    let Some(delay) = retrier.after_failure(&status, committed, params.deadline) else {
        return Err(status);
    };
    tokio::time::sleep(delay).await;
    params.refresh_timeout();
    Ok(())
}

/// Reads the single response message of a unary or client-streaming call while `upload`
/// finishes sending the request.
async fn single_response<Out>(
    streaming: &mut ResponseStream<Out>,
    upload: &mut Uploader,
) -> Result<Response<Out>, Status>
where
    Out: prost::Message + Default + 'static,
{
    let Some(message) = next_message(streaming, upload).await? else {
        return Err(Status::internal(
            "the server ended a unary response with OK but without a message",
        ));
    };
    if next_message(streaming, upload).await?.is_some() {
        return Err(Status::internal(
            "the server sent more than one message on a unary response",
        ));
    }
    let metadata = streaming.headers().cloned().unwrap_or_default();
    let trailers = streaming.trailers().cloned().unwrap_or_default();
    Ok(Response::from_parts(metadata, message, trailers))
}

/// The next response message, while the upload makes progress alongside.
async fn next_message<Out>(
    streaming: &mut ResponseStream<Out>,
    upload: &mut Uploader,
) -> Result<Option<Out>, Status>
where
    Out: prost::Message + Default + 'static,
{
    std::future::poll_fn(|cx| {
        upload.poll_upload(cx)?;
        streaming.poll_message(cx)
    })
    .await
}
