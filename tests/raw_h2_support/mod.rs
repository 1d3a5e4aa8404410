//! Support for the client tests that need a server the client library does not write: raw
//! `h2::server` servers on `127.0.0.1:0` and the frame builders they answer with, so a test
//! controls every HEADERS, DATA and trailer block the client sees.

use std::future::Future;
use std::net::SocketAddr;

use bytes::{BufMut, Bytes, BytesMut};
use h2::RecvStream;
use h2::server::SendResponse;
use prost::Message;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

// ---- a small frame builder -------------------------------------------------------------

/// Response HEADERS: `:status` and the given fields.
pub fn head(status: u16, fields: &[(&str, &str)]) -> http::Response<()> {
    let mut response = http::Response::builder().status(status);
    for (name, value) in fields {
        response = response.header(*name, *value);
    }
    response.body(()).expect("response head")
}

/// The usual good response HEADERS.
pub fn grpc_head() -> http::Response<()> {
    head(200, &[("content-type", "application/grpc")])
}

/// A trailer block.
pub fn trailers(fields: &[(&str, &str)]) -> http::HeaderMap {
    let mut map = http::HeaderMap::new();
    for (name, value) in fields {
        map.append(
            http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
            http::HeaderValue::from_str(value).expect("value"),
        );
    }
    map
}

/// A prefix claiming `len` bytes (compressed or not), with `body` after it (which may be
/// shorter, to build truncated messages).
pub fn framed(compressed: bool, len: u32, body: &[u8]) -> Bytes {
    let mut buf = BytesMut::new();
    // The 5-byte prefix (PROTOCOL-HTTP2 § Requests): compressed flag, big-endian length.
    buf.put_u8(u8::from(compressed));
    buf.put_u32(len);
    buf.put_slice(body);
    buf.freeze()
}

/// One well-formed message holding `text` (a `StringValue`).
pub fn message(text: &str) -> Bytes {
    let body = text.to_owned().encode_to_vec();
    framed(false, body.len() as u32, &body)
}

/// The good answer: one message holding `text`, then grpc-status 0.
pub fn answer(mut respond: SendResponse<Bytes>, text: &str) {
    let mut body = respond.send_response(grpc_head(), false).unwrap();
    body.send_data(message(text), false).unwrap();
    body.send_trailers(trailers(&[("grpc-status", "0")]))
        .unwrap();
}

// ---- servers ---------------------------------------------------------------------------

/// Serves one connection with `behave` run for every stream. The task ends with the test's
/// runtime.
pub async fn bad_server<F, Fut>(behave: F) -> SocketAddr
where
    F: Fn(http::Request<RecvStream>, SendResponse<Bytes>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let Ok((tcp, _)) = listener.accept().await else {
            return;
        };
        serve(tcp, behave).await;
    });
    addr
}

/// Speaks HTTP/2 on `io` (a socket, or a test's wrapper around one) with `behave` run for
/// every stream, until the connection ends.
pub async fn serve<T, F, Fut>(io: T, behave: F)
where
    T: AsyncRead + AsyncWrite + Unpin,
    F: Fn(http::Request<RecvStream>, SendResponse<Bytes>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Ok(mut connection) = h2::server::handshake(io).await else {
        return;
    };
    while let Some(Ok((request, respond))) = connection.accept().await {
        tokio::spawn(behave(request, respond));
    }
}
