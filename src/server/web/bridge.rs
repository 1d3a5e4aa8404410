//! The gRPC-Web bridge: gRPC-Web streams caught on the h2 path, the answer to every gRPC-Web
//! request (from here or from `http1.rs`), and the in-memory HTTP/2 connection that turns each
//! gRPC-Web call into a native one on the same server (the module doc of `server::web` draws
//! the whole path).
//!
//! One call, in order: CORS preflight or headers; method and `content-type`; the route looked
//! up (a client-streaming or bidi method ends here with UNIMPLEMENTED); the request body read
//! whole (unary and server-streaming requests are one message; base64 decoded for `-text`;
//! the limit checked on the prefix's length claim before the message is buffered); the native
//! call sent on the loopback connection; its response headers copied, each DATA payload passed
//! on (base64 for `-text`), its trailers turned into the trailer frame. A trailers-only native
//! answer stays trailers-only: the status goes in the response headers with an empty body
//! (PROTOCOL-WEB § Message framing item 4).

use std::future::{Future, poll_fn};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Method, StatusCode};
use hyper::body::Incoming;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

use super::frame::{self, Body, TextDecoder};
use super::{Web, cors};
use crate::call::CallKind;
use crate::first::{First, first};
use crate::headers::{APPLICATION_GRPC, TRAILERS};
use crate::peer::Peer;
use crate::server::router::CallFuture;
use crate::server::{Shared, respond};
use crate::status::Status;
use crate::transport::error::status_from_h2;
use crate::transport::server::{Call, ConnectionConfig, Streams};
use crate::transport::write::poll_write;
use crate::wire::PREFIX_LEN;

/// The header that carries the gRPC-Web caller's address over the loopback connection. The
/// bridge removes it from every incoming request, so only the bridge can set it.
const PEER_HEADER: &str = "bare-grpc-web-peer";

/// Request headers not passed on to the native call: HTTP/1.1 connection fields (RFC 9113
/// §8.2.2 forbids them in HTTP/2), the ones the bridge sets itself, and the CORS ones.
/// Matched against the name as it is (a standard name compares as a tag, the others as short
/// strings), not looked up one by one in the map: each `HeaderMap::remove(&str)` parses and
/// hashes its name.
fn dropped(name: &HeaderName) -> bool {
    *name == header::CONNECTION
        || *name == header::TRANSFER_ENCODING
        || *name == header::UPGRADE
        || *name == header::HOST
        || *name == header::TE
        || *name == header::CONTENT_TYPE
        || *name == header::CONTENT_LENGTH
        || *name == header::ACCEPT
        || *name == header::ORIGIN
        || matches!(
            name.as_str(),
            "keep-alive" | "proxy-connection" | "x-grpc-web" | PEER_HEADER
        )
}

/// What the server keeps for gRPC-Web: the configuration and the loopback connection.
pub(crate) struct WebState {
    config: Web,
    /// The server itself, for the loopback connection's calls (weak: the server owns this).
    shared: Weak<Shared>,
    /// The loopback connection's settings: the server's, with no stream limit of its own (each
    /// real connection's limit already applies to the calls it carries).
    connection: ConnectionConfig,
    /// The client half of the loopback connection, made on the first gRPC-Web call.
    loopback: tokio::sync::Mutex<Option<h2::client::SendRequest<Bytes>>>,
}

impl WebState {
    pub(crate) fn new(config: Web, shared: Weak<Shared>, mut connection: ConnectionConfig) -> Self {
        connection.max_concurrent_streams = None;
        connection.sniff_http1 = false;
        WebState {
            config,
            shared,
            connection,
            loopback: tokio::sync::Mutex::new(None),
        }
    }

    /// A ready sender on the loopback connection, made (again) when there is none or it died.
    async fn sender(&self) -> Result<h2::client::SendRequest<Bytes>, Status> {
        let existing = self.loopback.lock().await.clone();
        if let Some(sender) = existing {
            if let Ok(ready) = sender.ready().await {
                return Ok(ready);
            }
        }
        // None yet, or the old one is gone: make one (a call racing us may make its own; the
        // last one stored is the one kept).
        let mut slot = self.loopback.lock().await;
        let (sender, driver) = self.loopback(Peer::plain(None)).await?;
        tokio::spawn(driver);
        let sender = sender
            .ready()
            .await
            .map_err(|e| Status::internal(format!("gRPC-Web loopback: {e}")))?;
        *slot = Some(sender.clone());
        Ok(sender)
    }

    /// A new in-memory HTTP/2 connection to this server: its client half, and the future that
    /// drives both ends (h2's client connection, then the server's connection task), for the
    /// caller to run. Calls on it see `peer` unless their request names another.
    pub(super) async fn loopback(
        &self,
        peer: Peer,
    ) -> Result<
        (
            h2::client::SendRequest<Bytes>,
            impl Future<Output = ()> + Send + use<>,
        ),
        Status,
    > {
        let (near, far) = tokio::io::duplex(LOOPBACK_BUFFER);
        let streams = Arc::new(Loopback {
            config: self.connection,
            shared: self.shared.clone(),
        });
        let (keep, shutdown) = watch::channel(false);
        let server = async move {
            let _keep = keep;
            crate::transport::server::serve_connection(far, peer, streams, shutdown).await;
        };
        let mut builder = h2::client::Builder::new();
        builder
            .initial_window_size(1 << 20)
            .initial_connection_window_size(1 << 24)
            .max_frame_size(1 << 17);
        // The preface and SETTINGS go into the pipe's buffer: no answer is awaited here.
        let (sender, connection) = builder
            .handshake::<_, Bytes>(near)
            .await
            .map_err(|e| Status::internal(format!("gRPC-Web loopback: {e}")))?;
        let driver = async move {
            let mut client = std::pin::pin!(connection);
            let mut server = std::pin::pin!(server);
            let (mut client_done, mut server_done) = (false, false);
            poll_fn(|cx| {
                // The client first: what a call queued on it reaches the server in this pass.
                if !client_done {
                    client_done = client.as_mut().poll(cx).is_ready();
                }
                if !server_done {
                    server_done = server.as_mut().poll(cx).is_ready();
                }
                if client_done && server_done {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            })
            .await;
        };
        Ok((sender, driver))
    }
}

/// The loopback pipe's buffer each way: a few frames, so a burst does not wait on the reader.
const LOOPBACK_BUFFER: usize = 256 * 1024;

/// The loopback connection's server side: the real server's calls, with the gRPC-Web caller's
/// address taken from [`PEER_HEADER`].
struct Loopback {
    config: ConnectionConfig,
    shared: Weak<Shared>,
}

impl Streams for Loopback {
    fn config(&self) -> &ConnectionConfig {
        &self.config
    }

    fn start_call(
        &self,
        mut request: http::Request<h2::RecvStream>,
        respond: h2::server::SendResponse<Bytes>,
        peer: &Peer,
    ) -> Option<Call> {
        let shared = self.shared.upgrade()?;
        // The server-wide loopback (HTTP/2 gRPC-Web) names each call's peer in a header; an
        // HTTP/1.1 connection's own loopback was made with its peer.
        match request.headers_mut().remove(PEER_HEADER) {
            Some(value) => {
                let addr = value
                    .to_str()
                    .ok()
                    .and_then(|v| v.parse::<SocketAddr>().ok());
                crate::server::start_call(request, respond, &Peer::plain(addr), &shared)
            }
            None => crate::server::start_call(request, respond, peer, &shared),
        }
    }

    /// Never called: the loopback connection does not sniff (its client is h2).
    fn serve_http1<IO>(
        self: Arc<Self>,
        _io: IO,
        _peer: Peer,
        _shutdown: watch::Receiver<bool>,
    ) -> impl Future<Output = ()> + Send
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        std::future::ready(())
    }
}

/// A request body from either HTTP version.
pub(super) enum Inbound {
    /// From hyper (HTTP/1.1).
    H1(Incoming),
    /// From h2 (gRPC-Web on an HTTP/2 connection).
    H2(h2::RecvStream),
}

impl Inbound {
    /// The next piece of the body; `Err` when the peer broke it off.
    async fn chunk(&mut self) -> Option<Result<Bytes, ()>> {
        match self {
            Inbound::H1(body) => loop {
                let frame = poll_fn(|cx| hyper::body::Body::poll_frame(Pin::new(body), cx)).await;
                match frame {
                    None => return None,
                    Some(Err(_)) => return Some(Err(())),
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            return Some(Ok(data));
                        }
                    }
                }
            },
            Inbound::H2(body) => match body.data().await {
                None => None,
                Some(Err(_)) => Some(Err(())),
                Some(Ok(data)) => {
                    let _ = body.flow_control().release_capacity(data.len());
                    Some(Ok(data))
                }
            },
        }
    }
}

/// The answer to one request, for either HTTP version to write.
pub(super) struct Answer {
    pub(super) status: StatusCode,
    pub(super) headers: HeaderMap,
    pub(super) body: Outbound,
}

/// A response body.
pub(super) enum Outbound {
    /// Nothing (trailers-only, preflight).
    Empty,
    /// A fixed body (a refusal's text).
    Full(Option<Bytes>),
    /// The native call's response, translated as it arrives.
    Stream(ResponseBody),
}

/// A native response body turned into gRPC-Web: DATA payloads as they are (or base64), the
/// trailers as the trailer frame.
pub(super) struct ResponseBody {
    recv: h2::RecvStream,
    body: Body,
    pub(super) done: bool,
}

impl ResponseBody {
    pub(super) fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        if self.done {
            return Poll::Ready(None);
        }
        let trailers = match ready!(self.recv.poll_data(cx)) {
            Some(Ok(data)) => {
                let _ = self.recv.flow_control().release_capacity(data.len());
                return Poll::Ready(Some(match self.body {
                    Body::Binary => data,
                    Body::Text => {
                        let mut text = Vec::new();
                        frame::encode_text(&data, &mut text);
                        Bytes::from(text)
                    }
                }));
            }
            Some(Err(error)) => status_headers(&status_from_h2(&error)),
            None => match ready!(self.recv.poll_trailers(cx)) {
                Ok(Some(trailers)) => trailers,
                Ok(None) => status_headers(&Status::internal("the call ended without trailers")),
                Err(error) => status_headers(&status_from_h2(&error)),
            },
        };
        self.done = true;
        let mut block = Vec::with_capacity(64);
        frame::encode_trailers(&trailers, &mut block);
        Poll::Ready(Some(match self.body {
            Body::Binary => Bytes::from(block),
            Body::Text => {
                let mut text = Vec::new();
                frame::encode_text(&block, &mut text);
                Bytes::from(text)
            }
        }))
    }
}

/// `grpc-status`, `grpc-message` (and details) as header fields.
fn status_headers(status: &Status) -> HeaderMap {
    respond::trailers(status, &crate::metadata::Metadata::new())
}

/// Serves one gRPC-Web request (or CORS preflight) that arrived on an HTTP/2 connection; the
/// future runs among the connection's calls.
pub(crate) fn serve_h2(
    shared: &Shared,
    request: http::Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
    peer: &Peer,
) -> Option<CallFuture> {
    let web = shared.web.as_ref()?;
    let shared = web.shared.upgrade()?;
    let peer = peer.clone();
    Some(Box::pin(async move {
        let (parts, body) = request.into_parts();
        // The client may reset the stream at any time (a page cancelling its call): stop then,
        // which drops the loopback call and so cancels the handler.
        let work = answer(&shared, parts, Inbound::H2(body), &peer, None);
        let reset = poll_fn(|cx| respond.poll_reset(cx));
        let answer = match first(work, reset).await {
            First::A(answer) => answer,
            First::B(_) => return,
        };
        let mut response = http::Response::new(());
        *response.status_mut() = answer.status;
        *response.headers_mut() = answer.headers;
        let (mut data, mut stream) = match answer.body {
            Outbound::Empty | Outbound::Full(None) => {
                let _ = respond.send_response(response, true);
                return;
            }
            Outbound::Full(Some(text)) => (Some(text), None),
            Outbound::Stream(body) => (None, Some(body)),
        };
        let Ok(mut send) = respond.send_response(response, false) else {
            return;
        };
        loop {
            let mut chunk = match (data.take(), stream.as_mut()) {
                (Some(text), _) => text,
                (None, Some(body)) => {
                    let next = poll_fn(|cx| match send.poll_reset(cx) {
                        Poll::Ready(_) => Poll::Ready(None),
                        Poll::Pending => body.poll_chunk(cx).map(Some),
                    });
                    match next.await {
                        Some(Some(chunk)) => chunk,
                        Some(None) => break,
                        None => return,
                    }
                }
                (None, None) => break,
            };
            // The trailer frame is the last chunk: it carries END_STREAM itself.
            let last = stream.as_ref().is_none_or(|body| body.done);
            if poll_fn(|cx| poll_write(&mut send, &mut chunk, last, cx))
                .await
                .is_err()
                || last
            {
                return;
            }
        }
        let _ = send.send_data(Bytes::new(), true);
    }))
}

/// A gRPC-Web request or a CORS preflight on an HTTP/2 connection: OPTIONS, or a
/// `content-type` starting `application/grpc-w` (no native type does).
pub(crate) fn is_web(request: &http::Request<h2::RecvStream>) -> bool {
    request.method() == Method::OPTIONS
        || request
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc-w"))
}

/// The answer to one request on the gRPC-Web side of the port.
pub(super) async fn answer(
    shared: &Shared,
    parts: http::request::Parts,
    body: Inbound,
    peer: &Peer,
    loopback: Option<h2::client::SendRequest<Bytes>>,
) -> Answer {
    let Some(web) = shared.web.as_ref() else {
        return refusal(StatusCode::NOT_FOUND, "gRPC-Web is not enabled");
    };
    let cors = web.config.cors.as_ref();
    let origin = parts.headers.get(header::ORIGIN).cloned();
    if parts.method == Method::OPTIONS {
        return match cors::preflight(cors, &parts.headers) {
            Ok(headers) => Answer {
                status: StatusCode::NO_CONTENT,
                headers,
                body: Outbound::Empty,
            },
            Err((status, why)) => refusal(status, &why),
        };
    }
    let mut answer = call(shared, web, parts, body, peer, loopback).await;
    if let (Some(cors), Some(origin)) = (cors, origin) {
        if cors.origin_allowed(origin.as_bytes()) {
            cors::allow_origin(cors, origin, &mut answer.headers);
            if let Ok(value) = HeaderValue::from_str(&cors.expose_headers.join(", ")) {
                answer
                    .headers
                    .insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, value);
            }
        }
    }
    answer
}

/// An HTTP-level refusal with its reason as plain text.
fn refusal(status: StatusCode, why: &str) -> Answer {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Answer {
        status,
        headers,
        body: Outbound::Full(Some(Bytes::from(format!("{why}\n")))),
    }
}

/// A gRPC answer with no body: the status in the response headers, under `http` status.
fn status_answer(http: StatusCode, body: Body, status: &Status) -> Answer {
    let mut headers = status_headers(status);
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(body.content_type()),
    );
    Answer {
        status: http,
        headers,
        body: Outbound::Empty,
    }
}

/// One gRPC-Web call: checks, the request body, the native call on the loopback connection.
async fn call(
    shared: &Shared,
    web: &WebState,
    parts: http::request::Parts,
    mut inbound: Inbound,
    peer: &Peer,
    loopback: Option<h2::client::SendRequest<Bytes>>,
) -> Answer {
    let body = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| Body::from_content_type(v.as_bytes()));
    let Some(body) = body else {
        let status = Status::internal(format!(
            "invalid gRPC-Web request content-type {:?}",
            parts.headers.get(header::CONTENT_TYPE)
        ));
        return status_answer(StatusCode::UNSUPPORTED_MEDIA_TYPE, Body::Binary, &status);
    };
    if parts.method != Method::POST {
        let status = Status::internal(format!("gRPC-Web requires POST, got {}", parts.method));
        return status_answer(StatusCode::METHOD_NOT_ALLOWED, body, &status);
    }
    let route = match shared.router.lookup(parts.uri.path()) {
        Ok(route) => route,
        Err(status) => return status_answer(StatusCode::OK, body, &status),
    };
    if matches!(route.kind, CallKind::ClientStreaming | CallKind::Bidi) {
        let status = Status::unimplemented(format!(
            "{} is a {} method: gRPC-Web carries unary and server-streaming calls only; \
             call it with native gRPC over HTTP/2",
            route.path,
            if route.kind == CallKind::Bidi {
                "bidi-streaming"
            } else {
                "client-streaming"
            }
        ));
        return status_answer(StatusCode::OK, body, &status);
    }
    let limit = route.max_recv.unwrap_or(shared.config.max_recv);
    let message = match read_body(&mut inbound, body, limit).await {
        Ok(message) => message,
        Err(status) => return status_answer(StatusCode::OK, body, &status),
    };
    // The shared loopback (HTTP/2 gRPC-Web) learns each call's peer from a header; a
    // connection's own loopback was made with its peer.
    let request = loopback_request(parts, loopback.is_none().then_some(peer));
    let response = async {
        let mut sender = match loopback {
            Some(sender) => sender.ready().await.map_err(|e| status_from_h2(&e))?,
            None => web.sender().await?,
        };
        let (response, mut send) = sender
            .send_request(request, false)
            .map_err(|e| status_from_h2(&e))?;
        send.send_data(message, true)
            .map_err(|e| status_from_h2(&e))?;
        response.await.map_err(|e| status_from_h2(&e))
    };
    let response = match response.await {
        Ok(response) => response,
        Err(status) => return status_answer(StatusCode::OK, body, &status),
    };
    let (head, recv) = response.into_parts();
    let mut headers = head.headers;
    headers.remove(header::CONTENT_LENGTH);
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(body.content_type()),
    );
    if headers.contains_key(crate::headers::GRPC_STATUS) || recv.is_end_stream() {
        return Answer {
            status: StatusCode::OK,
            headers,
            body: Outbound::Empty,
        };
    }
    Answer {
        status: StatusCode::OK,
        headers,
        body: Outbound::Stream(ResponseBody {
            recv,
            body,
            done: false,
        }),
    }
}

/// Reads the whole request body (one message for the call kinds gRPC-Web carries), base64
/// decoded for `-text`. The limit is checked on the prefix's length claim as soon as the
/// prefix has arrived, so an oversized claim buffers nothing more (wire.rs does the same).
async fn read_body(inbound: &mut Inbound, body: Body, limit: usize) -> Result<Bytes, Status> {
    let mut only: Option<Bytes> = None;
    let mut gathered: Vec<u8> = Vec::new();
    let mut text = TextDecoder::default();
    while let Some(chunk) = inbound.chunk().await {
        let chunk = chunk.map_err(|()| Status::cancelled("the gRPC-Web request body broke off"))?;
        match body {
            Body::Binary if only.is_none() && gathered.is_empty() => only = Some(chunk),
            Body::Binary => {
                if let Some(first) = only.take() {
                    gathered.extend_from_slice(&first);
                }
                gathered.extend_from_slice(&chunk);
            }
            Body::Text => text.push(&chunk, &mut gathered).map_err(Status::internal)?,
        }
        let seen: &[u8] = only.as_deref().unwrap_or(&gathered);
        if seen.len() >= PREFIX_LEN {
            let claim = u32::from_be_bytes([seen[1], seen[2], seen[3], seen[4]]) as usize;
            if claim > limit {
                return Err(Status::resource_exhausted(format!(
                    "message of {claim} bytes exceeds the receive limit of {limit} bytes"
                )));
            }
            if seen.len() > PREFIX_LEN + limit {
                return Err(Status::resource_exhausted(format!(
                    "gRPC-Web request body of more than {} bytes exceeds the receive limit of \
                     {limit} bytes",
                    PREFIX_LEN + limit
                )));
            }
        }
    }
    if body == Body::Text {
        text.finish().map_err(Status::internal)?;
    }
    Ok(only.unwrap_or_else(|| Bytes::from(gathered)))
}

/// The native request for a gRPC-Web one: the same path and metadata, `application/grpc`,
/// `te: trailers`, and (for the shared loopback) the caller's address for the handler.
fn loopback_request(parts: http::request::Parts, peer: Option<&Peer>) -> http::Request<()> {
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let uri = http::Uri::builder()
        .scheme("http")
        .authority("loopback")
        .path_and_query(path)
        .build()
        .unwrap_or_else(|_| http::Uri::from_static("http://loopback/"));
    let mut headers = HeaderMap::with_capacity(parts.headers.len() + 3);
    let mut last: Option<HeaderName> = None;
    for (name, value) in parts.headers {
        // `into_iter` names each field's first value only; later ones follow with `None`.
        if let Some(name) = name {
            last = Some(name);
        }
        if let Some(name) = last.as_ref().filter(|name| !dropped(name)) {
            headers.append(name.clone(), value);
        }
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(APPLICATION_GRPC),
    );
    headers.insert(header::TE, HeaderValue::from_static(TRAILERS));
    if let Some(addr) = peer.and_then(Peer::addr) {
        if let Ok(value) = HeaderValue::from_str(&addr.to_string()) {
            headers.insert(HeaderName::from_static(PEER_HEADER), value);
        }
    }
    let mut request = http::Request::new(());
    *request.method_mut() = Method::POST;
    *request.uri_mut() = uri;
    *request.headers_mut() = headers;
    request
}
