//! What gRPC means by each header and each error code: the wiretap's dictionary, read by the
//! call tracker (`tap.rs`) to name a header's role and write its value in plain words.
//!
//! ```text
//!   header                 role (PROTOCOL-HTTP2 § Requests / § Responses)   shown as
//!   :path                  "/" Service-Name "/" method name                  service, method
//!   grpc-timeout           1-8 digits + H M S m u n                          the deadline, plain units
//!   grpc-encoding          Message-Encoding of compressed messages          compression.md
//!   grpc-accept-encoding   what the sender can decompress                   compression.md
//!   *-bin                  binary metadata, base64 on the wire              the bytes, decoded
//!   :status                HTTP-Status (200, or a mapped HTTP error)         http-grpc-status-mapping.md
//!   grpc-status            the call's Status code, decimal                   its name (statuscodes.md)
//!   grpc-message           Status-Message, percent-encoded UTF-8            decoded
//! ```
//!
//! Everything here is lenient on purpose: an inspector must show a peer's mistake, not stop at
//! it. A value that does not parse is shown as it is, with a note saying why.
//!
//! [PROTOCOL-HTTP2]: https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md

use bare_grpc::Code;

/// The rule a kind of line illustrates, printed with `--explain`.
pub fn rule_for_header(name: &str, response: bool) -> &'static str {
    match name {
        "content-type" if response => "PROTOCOL-HTTP2 § Responses (Content-Type)",
        "grpc-encoding" if response => "PROTOCOL-HTTP2 § Responses (Message-Encoding)",
        "grpc-accept-encoding" if response => {
            "PROTOCOL-HTTP2 § Responses (Message-Accept-Encoding)"
        }
        _ if response
            && !name.starts_with(':')
            && !name.starts_with("grpc-")
            && !name.ends_with("-bin") =>
        {
            "PROTOCOL-HTTP2 § Responses (Custom-Metadata)"
        }
        ":path" => "PROTOCOL-HTTP2 § Requests (Path)",
        ":method" | ":scheme" | ":authority" => "PROTOCOL-HTTP2 § Requests; RFC 9113 §8.3.1",
        "content-type" => "PROTOCOL-HTTP2 § Requests (Content-Type)",
        "te" => "PROTOCOL-HTTP2 § Requests (TE); RFC 9113 §8.2.2",
        "grpc-timeout" => "PROTOCOL-HTTP2 § Requests (Timeout)",
        "grpc-encoding" => "PROTOCOL-HTTP2 § Requests (Message-Encoding); compression.md",
        "grpc-accept-encoding" => "PROTOCOL-HTTP2 § Requests (Message-Accept-Encoding)",
        "user-agent" => "PROTOCOL-HTTP2 § User Agents",
        ":status" => "PROTOCOL-HTTP2 § Responses (HTTP-Status); http-grpc-status-mapping.md",
        "grpc-status" => "PROTOCOL-HTTP2 § Responses (Status); statuscodes.md",
        "grpc-message" => "PROTOCOL-HTTP2 § Responses (Status-Message)",
        "grpc-status-details-bin" => "PROTOCOL-HTTP2 § Responses (Status-Details); gRFC A54",
        _ if name.ends_with("-bin") => "PROTOCOL-HTTP2 § Requests (Binary-Header)",
        _ => "PROTOCOL-HTTP2 § Requests (Custom-Metadata)",
    }
}

/// What a header means, in words, or `None` when its value speaks for itself.
pub fn explain_header(name: &str, value: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(value);
    match name {
        ":path" => Some(match split_path(&text) {
            Some((service, method)) => format!("service {service}, method {method}"),
            None => "not /Service/Method: the server answers UNIMPLEMENTED".to_owned(),
        }),
        "grpc-timeout" => Some(match decode_timeout(&text) {
            Some(nanos) => format!("deadline {} from now", plain_duration(nanos)),
            None => "not a valid timeout (1-8 digits and one of H M S m u n)".to_owned(),
        }),
        "grpc-encoding" => Some(match &*text {
            "identity" => "messages flagged compressed would be sent as they are".to_owned(),
            other => format!("messages with the compressed flag set are {other}-compressed"),
        }),
        "grpc-accept-encoding" => Some(format!("the sender can decompress: {text}")),
        "content-type" => Some(
            if text == "application/grpc" || text.starts_with("application/grpc+") {
                "a gRPC call (protobuf unless +suffix says otherwise)".to_owned()
            } else if text.starts_with("application/grpc") {
                "a gRPC call".to_owned()
            } else {
                "not application/grpc: a server answers HTTP 415".to_owned()
            },
        ),
        ":status" => Some(match text.parse::<u16>() {
            Ok(200) => "HTTP OK; the gRPC status comes in grpc-status".to_owned(),
            Ok(other) => {
                let code = code_for_http_status(other);
                format!(
                    "HTTP {other}: a client without grpc-status reads it as {}",
                    code.name()
                )
            }
            Err(_) => "not a number".to_owned(),
        }),
        "grpc-status" => Some(match text.parse::<i32>() {
            Ok(n) if (0..=16).contains(&n) => Code::from_i32(n).name().to_owned(),
            Ok(n) => format!("{n} is not a known code: a client reads it as UNKNOWN"),
            Err(_) => "not a decimal code: a client reads it as UNKNOWN".to_owned(),
        }),
        "grpc-message" => {
            let decoded = percent_decode(value);
            (decoded != text).then(|| format!("decoded: {decoded:?}"))
        }
        _ if name.ends_with("-bin") => Some(match base64_decode(value) {
            Some(bytes) => format!("{} bytes: {}", bytes.len(), show_bytes(&bytes)),
            None => "not valid base64".to_owned(),
        }),
        _ => None,
    }
}

/// `/Service/Method` → (service, method) (PROTOCOL-HTTP2 § Requests, Path).
pub fn split_path(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix('/')?;
    let (service, method) = rest.split_once('/')?;
    (!service.is_empty() && !method.is_empty() && !method.contains('/'))
        .then_some((service, method))
}

/// `grpc-timeout` (Timeout → TimeoutValue TimeoutUnit) in nanoseconds.
pub fn decode_timeout(text: &str) -> Option<u128> {
    let (digits, unit) = text.split_at(text.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u128 = digits.parse().ok()?;
    let scale: u128 = match unit {
        "H" => 3_600_000_000_000,
        "M" => 60_000_000_000,
        "S" => 1_000_000_000,
        "m" => 1_000_000,
        "u" => 1_000,
        "n" => 1,
        _ => return None,
    };
    Some(n * scale)
}

/// Nanoseconds in the largest unit that keeps the figure readable.
pub fn plain_duration(nanos: u128) -> String {
    let units = [
        (3_600_000_000_000, "h"),
        (60_000_000_000, "min"),
        (1_000_000_000, "s"),
        (1_000_000, "ms"),
        (1_000, "µs"),
    ];
    for (scale, unit) in units {
        if nanos >= scale {
            // Rounded to a tenth: 9998117u reads "10 s", not "9.9 s".
            let tenths = (nanos * 10 + scale / 2) / scale;
            let (whole, tenth) = (tenths / 10, tenths % 10);
            return if tenth == 0 {
                format!("{whole} {unit}")
            } else {
                format!("{whole}.{tenth} {unit}")
            };
        }
    }
    format!("{nanos} ns")
}

/// `grpc-message`'s Percent-Byte-Unencoded decoding, lenient as the spec asks: a `%` not
/// followed by two hex digits stays as it is; invalid UTF-8 is replaced.
pub fn percent_decode(value: &[u8]) -> String {
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while i < value.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        let escaped = if value[i] == b'%' && i + 2 < value.len() {
            hex(value[i + 1]).zip(hex(value[i + 2]))
        } else {
            None
        };
        if let Some((h, l)) = escaped {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(value[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Base64 of a `-bin` value: standard alphabet, padding optional (PROTOCOL-HTTP2 § Requests).
pub fn base64_decode(text: &[u8]) -> Option<Vec<u8>> {
    let text: Vec<u8> = text.iter().copied().filter(|&b| b != b'=').collect();
    let value = |b: u8| -> Option<u32> {
        Some(match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        } as u32)
    };
    if text.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for chunk in text.chunks(4) {
        let mut acc = 0u32;
        for &b in chunk {
            acc = (acc << 6) | value(b)?;
        }
        acc <<= 6 * (4 - chunk.len() as u32);
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

/// Bytes as text when they are printable ASCII, as hex otherwise (at most 64 shown).
pub fn show_bytes(bytes: &[u8]) -> String {
    if !bytes.is_empty() && bytes.iter().all(|b| (0x20..0x7f).contains(b)) {
        return format!("{:?}", String::from_utf8_lossy(bytes));
    }
    let shown: Vec<String> = bytes.iter().take(64).map(|b| format!("{b:02x}")).collect();
    let more = if bytes.len() > 64 { " …" } else { "" };
    format!("{}{more}", shown.join(" "))
}

/// http-grpc-status-mapping.md: the code a client reads from an HTTP status without
/// `grpc-status`.
pub fn code_for_http_status(status: u16) -> Code {
    match status {
        400 => Code::Internal,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::Unimplemented,
        429 | 502 | 503 | 504 => Code::Unavailable,
        _ => Code::Unknown,
    }
}

/// RFC 9113 §7: an HTTP/2 error code's name.
pub fn reason_name(code: u32) -> String {
    let name = match code {
        0x0 => "NO_ERROR",
        0x1 => "PROTOCOL_ERROR",
        0x2 => "INTERNAL_ERROR",
        0x3 => "FLOW_CONTROL_ERROR",
        0x4 => "SETTINGS_TIMEOUT",
        0x5 => "STREAM_CLOSED",
        0x6 => "FRAME_SIZE_ERROR",
        0x7 => "REFUSED_STREAM",
        0x8 => "CANCEL",
        0x9 => "COMPRESSION_ERROR",
        0xa => "CONNECT_ERROR",
        0xb => "ENHANCE_YOUR_CALM",
        0xc => "INADEQUATE_SECURITY",
        0xd => "HTTP_1_1_REQUIRED",
        other => return format!("unknown error code {other:#x}"),
    };
    name.to_owned()
}

/// PROTOCOL-HTTP2 § Errors: the gRPC code a client reports for a RST_STREAM it receives.
pub fn code_for_reset(code: u32) -> Code {
    match code {
        0x0 | 0x1 | 0x2 | 0x3 | 0x4 | 0x5 | 0x6 | 0x9 | 0xa => Code::Internal,
        0x7 => Code::Unavailable,
        0x8 => Code::Cancelled,
        0xb => Code::ResourceExhausted,
        0xc => Code::PermissionDenied,
        _ => Code::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_timeouts_messages_and_bin_values() {
        assert_eq!(
            split_path("/grpc.testing.TestService/UnaryCall"),
            Some(("grpc.testing.TestService", "UnaryCall"))
        );
        assert_eq!(split_path("/nope"), None);
        assert_eq!(decode_timeout("1m"), Some(1_000_000));
        assert_eq!(decode_timeout("123456789S"), None, "9 digits");
        assert_eq!(decode_timeout("5x"), None);
        assert_eq!(plain_duration(1_000_000), "1 ms");
        assert_eq!(plain_duration(19_999_000_000), "20 s");
        assert_eq!(plain_duration(1_250_000), "1.3 ms");
        assert_eq!(plain_duration(936_025), "936 µs");
        assert_eq!(percent_decode(b"a%20b%zz%e2%98%ba"), "a b%zz☺");
        assert_eq!(percent_decode(b"100%"), "100%");
        assert_eq!(base64_decode(b"q83v").unwrap(), vec![0xab, 0xcd, 0xef]);
        assert_eq!(base64_decode(b"YQ").unwrap(), b"a");
        assert_eq!(base64_decode(b"YQ==").unwrap(), b"a");
        assert!(base64_decode(b"Y").is_none());
        assert_eq!(code_for_reset(8), Code::Cancelled);
        assert_eq!(code_for_http_status(404), Code::Unimplemented);
    }
}
