//! CORS for gRPC-Web (Fetch standard § CORS protocol; PROTOCOL-WEB § CORS preflight): the
//! answer to a preflight, and the headers that let a page read a cross-origin answer. Pure:
//! header maps in and out, tested below.
//!
//! ```text
//!  OPTIONS /pkg.Svc/Method                       204
//!  origin: https://app.example           ──▶     access-control-allow-origin: https://app.example
//!  access-control-request-method: POST           access-control-allow-methods: POST, OPTIONS
//!  access-control-request-headers:               access-control-allow-headers: content-type, …
//!    content-type,x-grpc-web                     access-control-max-age: 86400
//!                                                vary: origin
//! ```
//!
//! Off unless configured: a server without [`Cors`] refuses every preflight with 403 and says
//! so, rather than answering in a way a browser would read as permission.

use http::header::{self, HeaderValue};
use http::{HeaderMap, StatusCode};

use super::Cors;

/// `Access-Control-Allow-Origin` (the origin itself, or `*` for any origin without
/// credentials), `Vary: Origin`, and `Allow-Credentials` when configured.
pub(crate) fn allow_origin(cors: &Cors, origin: HeaderValue, headers: &mut HeaderMap) {
    let value = if cors.any_origin && !cors.allow_credentials {
        HeaderValue::from_static("*")
    } else {
        origin
    };
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
    headers.append(header::VARY, HeaderValue::from_static("origin"));
    if cors.allow_credentials {
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
}

/// A CORS preflight (Fetch standard § CORS-preflight request): allowed only when CORS is
/// configured and the origin, the method (POST) and every requested header are allowed. `Ok`
/// holds the answer's headers (its status is 204); every refusal says why, for HTTP 403 (400
/// for an OPTIONS that is no preflight).
pub(crate) fn preflight(
    cors: Option<&Cors>,
    headers: &HeaderMap,
) -> Result<HeaderMap, (StatusCode, String)> {
    let (Some(origin), Some(method)) = (
        headers.get(header::ORIGIN),
        headers.get(header::ACCESS_CONTROL_REQUEST_METHOD),
    ) else {
        return Err((
            StatusCode::BAD_REQUEST,
            "OPTIONS without Origin and Access-Control-Request-Method is not a CORS preflight"
                .to_owned(),
        ));
    };
    let Some(cors) = cors else {
        return Err((
            StatusCode::FORBIDDEN,
            "CORS is not enabled on this gRPC-Web server: cross-origin calls are refused"
                .to_owned(),
        ));
    };
    if !cors.origin_allowed(origin.as_bytes()) {
        return Err((
            StatusCode::FORBIDDEN,
            format!("CORS: origin {origin:?} is not allowed"),
        ));
    }
    if method.as_bytes() != b"POST" {
        return Err((
            StatusCode::FORBIDDEN,
            format!("CORS: method {method:?} is not allowed (gRPC-Web uses POST)"),
        ));
    }
    let requested = headers
        .get_all(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|name| name.trim().to_ascii_lowercase())
        .filter(|name| !name.is_empty())
        .collect::<Vec<_>>();
    if let Some(name) = requested
        .iter()
        .find(|name| !cors.allow_headers.contains(name))
    {
        return Err((
            StatusCode::FORBIDDEN,
            format!("CORS: request header {name:?} is not allowed"),
        ));
    }
    let mut h = HeaderMap::new();
    allow_origin(cors, origin.clone(), &mut h);
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST, OPTIONS"),
    );
    if let Ok(value) = HeaderValue::from_str(&cors.allow_headers.join(", ")) {
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, value);
    }
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from(cors.max_age.as_secs()),
    );
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn preflight_headers(origin: &str, method: &str, names: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ORIGIN, origin.parse().unwrap());
        h.insert(
            header::ACCESS_CONTROL_REQUEST_METHOD,
            method.parse().unwrap(),
        );
        h.insert(
            header::ACCESS_CONTROL_REQUEST_HEADERS,
            names.parse().unwrap(),
        );
        h
    }

    #[test]
    fn preflight_rows() {
        let cors = Cors::new()
            .allow_origin("https://a.test")
            .allow_headers(["x-t"]);
        let ok = preflight(
            Some(&cors),
            &preflight_headers("https://a.test", "POST", "X-T, content-type"),
        );
        let h = ok.unwrap();
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://a.test");
        assert_eq!(h[header::ACCESS_CONTROL_MAX_AGE], "86400");
        // One row per refusal: CORS off, origin, method, header, not a preflight.
        let rows: &[(Option<&Cors>, HeaderMap, StatusCode, &str)] = &[
            (
                None,
                preflight_headers("https://a.test", "POST", "content-type"),
                StatusCode::FORBIDDEN,
                "not enabled",
            ),
            (
                Some(&cors),
                preflight_headers("https://b.test", "POST", "content-type"),
                StatusCode::FORBIDDEN,
                "origin",
            ),
            (
                Some(&cors),
                preflight_headers("https://a.test", "GET", "content-type"),
                StatusCode::FORBIDDEN,
                "method",
            ),
            (
                Some(&cors),
                preflight_headers("https://a.test", "POST", "x-other"),
                StatusCode::FORBIDDEN,
                "x-other",
            ),
            (
                Some(&cors),
                HeaderMap::new(),
                StatusCode::BAD_REQUEST,
                "not a CORS preflight",
            ),
        ];
        for (cors, headers, status, why) in rows {
            let (got, text) = preflight(*cors, headers).unwrap_err();
            assert_eq!(got, *status, "{why}");
            assert!(text.contains(why), "{text}");
        }
    }

    #[test]
    fn any_origin_is_a_star_unless_credentials() {
        let origin = HeaderValue::from_static("https://a.test");
        let mut h = HeaderMap::new();
        allow_origin(&Cors::new().allow_any_origin(), origin.clone(), &mut h);
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        let mut h = HeaderMap::new();
        let cors = Cors::new().allow_any_origin().allow_credentials(true);
        allow_origin(&cors, origin, &mut h);
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://a.test");
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
    }
}
