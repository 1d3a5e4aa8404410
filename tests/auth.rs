//! Bearer-token auth end to end: `BearerAuth` on our server, `BearerToken` on our client, and
//! the bad inputs a server must turn away with UNAUTHENTICATED before any handler runs
//! (docs/auth.md).

#[path = "kit_support/mod.rs"]
mod kit_support;

use bare_grpc::interceptor::auth::{BearerAuth, BearerToken};
use bare_grpc::{Channel, Code, Request, Response, ResponseStream, Server, Status};
use kit_support::{CHAT, CONCAT, COUNT, ECHO, FLAKY, IterStream, KitServer, STEP};
use tokio::time::timeout;

const TOKEN: &str = "s3cret-token";

async fn guarded() -> KitServer {
    kit_support::start(Server::builder().interceptor(BearerAuth::new([TOKEN, "second.token"])))
        .await
}

async fn channel_with(server: &KitServer, token: Option<&str>) -> Channel {
    let mut builder = Channel::builder(&server.url()).unwrap();
    if let Some(token) = token {
        builder = builder.interceptor(
            BearerToken::new(token)
                .expect("valid token")
                .allow_plaintext(),
        );
    }
    builder.connect().await.expect("connect")
}

/// One call of each kind; the first error, if any.
async fn each_kind(channel: &Channel) -> Vec<Result<String, Status>> {
    let unary = channel
        .unary::<String, String>(ECHO, Request::new("u".to_owned()))
        .await
        .map(Response::into_inner);
    let server_streaming = async {
        let mut stream: ResponseStream<String> = channel
            .server_streaming(COUNT, Request::new("1:s".to_owned()))
            .await?;
        let mut all = String::new();
        while let Some(message) = stream.message().await? {
            all.push_str(&message);
        }
        Ok(all)
    }
    .await;
    let client_streaming = channel
        .client_streaming::<String, String, _>(
            CONCAT,
            Request::new(IterStream(["c".to_owned()].into_iter())),
        )
        .await
        .map(Response::into_inner);
    let bidi = async {
        let (mut sink, mut stream) = channel
            .bidi::<String, String>(CHAT, Request::new(()))
            .await?;
        // A rejected call may already be over when this is sent; the status comes from the
        // response side either way.
        let _ = sink.send("b".to_owned()).await;
        sink.finish();
        let mut all = String::new();
        while let Some(message) = stream.message().await? {
            all.push_str(&message);
        }
        Ok(all)
    }
    .await;
    vec![unary, server_streaming, client_streaming, bidi]
}

fn assert_rejected(results: Vec<Result<String, Status>>, message: &str) {
    for (kind, result) in ["unary", "server streaming", "client streaming", "bidi"]
        .iter()
        .zip(results)
    {
        let status = result.expect_err(kind);
        assert_eq!(status.code(), Code::Unauthenticated, "{kind}: {status}");
        assert_eq!(status.message(), message, "{kind}");
    }
}

#[tokio::test]
async fn the_right_token_opens_every_kind_of_call() {
    let server = guarded().await;
    for token in [TOKEN, "second.token"] {
        let channel = channel_with(&server, Some(token)).await;
        let results = timeout(STEP, each_kind(&channel)).await.expect("in time");
        let got: Vec<String> = results.into_iter().map(|r| r.expect("allowed")).collect();
        assert_eq!(got, ["u;", "s-0", "c", "b"]);
    }
}

#[tokio::test]
async fn no_token_is_unauthenticated_and_no_handler_runs() {
    let server = guarded().await;
    let channel = channel_with(&server, None).await;
    let results = timeout(STEP, each_kind(&channel)).await.expect("in time");
    assert_rejected(results, "missing bearer token");
    let flaky = channel
        .unary::<String, String>(FLAKY, Request::new("f".to_owned()))
        .await;
    assert_eq!(flaky.unwrap_err().code(), Code::Unauthenticated);
    assert_eq!(server.state.attempts(), 0, "the handler must not run");
}

#[tokio::test]
async fn a_wrong_token_is_unauthenticated() {
    let server = guarded().await;
    for wrong in ["s3cret-toke", "s3cret-token2", "S3CRET-TOKEN", "x"] {
        let channel = channel_with(&server, Some(wrong)).await;
        let results = timeout(STEP, each_kind(&channel)).await.expect("in time");
        assert_rejected(results, "invalid bearer token");
    }
}

#[tokio::test]
async fn malformed_credentials_are_unauthenticated() {
    let server = guarded().await;
    let channel = channel_with(&server, None).await;
    let call = |values: &'static [&'static str]| {
        let channel = channel.clone();
        async move {
            let mut request = Request::new("m".to_owned());
            for value in values {
                request
                    .metadata_mut()
                    .append("authorization", value)
                    .unwrap();
            }
            channel.unary::<String, String>(ECHO, request).await
        }
    };
    let rows: &[(&[&str], &str)] = &[
        (&["Basic czNjcmV0LXRva2Vu"], "expected a Bearer token"),
        (&["Bearer"], "expected a Bearer token"),
        (&[TOKEN], "expected a Bearer token"),
        (&["Bearer s3cret-token trailing"], "expected a Bearer token"),
        (
            &["Bearer s3cret-token", "Bearer s3cret-token"],
            "more than one authorization entry",
        ),
    ];
    for (values, message) in rows {
        let status = timeout(STEP, call(values)).await.unwrap().unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{values:?}");
        assert_eq!(status.message(), *message, "{values:?}");
    }
    // The scheme is case-insensitive.
    let ok = timeout(STEP, call(&["bearer s3cret-token"])).await.unwrap();
    assert_eq!(ok.unwrap().into_inner(), "m;");
}

#[tokio::test]
async fn a_request_may_carry_its_own_token() {
    let server = guarded().await;
    let channel = channel_with(&server, Some("wrong-token")).await;
    let mut request = Request::new("own".to_owned());
    request
        .metadata_mut()
        .insert("authorization", &format!("Bearer {TOKEN}"))
        .unwrap();
    let reply: Response<String> = timeout(STEP, channel.unary(ECHO, request))
        .await
        .unwrap()
        .expect("the request's own token is used");
    assert_eq!(reply.into_inner(), "own;");
    let denied = channel
        .unary::<String, String>(ECHO, Request::new("x".to_owned()))
        .await;
    assert_eq!(denied.unwrap_err().code(), Code::Unauthenticated);
}

#[tokio::test]
async fn a_validator_decides_and_bad_client_tokens_fail_early() {
    let auth = BearerAuth::with_validator(|token| token.starts_with("user-") && token.len() > 5);
    let server = kit_support::start(Server::builder().interceptor(auth)).await;
    let ok = channel_with(&server, Some("user-42")).await;
    let reply: Response<String> = ok.unary(ECHO, Request::new("v".to_owned())).await.unwrap();
    assert_eq!(reply.into_inner(), "v;");
    let no = channel_with(&server, Some("admin-1")).await;
    let err = no
        .unary::<String, String>(ECHO, Request::new("v".to_owned()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);

    for bad in ["", "two words", "line\nbreak"] {
        let err = BearerToken::new(bad).unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{bad:?}");
    }
}
