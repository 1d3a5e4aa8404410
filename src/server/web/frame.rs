//! gRPC-Web's body, byte by byte: the content types, the trailer frame, and the base64 of the
//! `-text` variants (PROTOCOL-WEB § Message framing, § Text-encoded (response) streams). Pure:
//! no I/O, tested below without a socket.
//!
//! ```text
//!  data frame:     0x00 | len u32 BE | message bytes           (as in application/grpc)
//!  trailer frame:  0x80 | len u32 BE | "grpc-status: 0\r\n"
//!                                      "grpc-message: ...\r\n" (HTTP/1 header lines, lower case,
//!                                      no terminating empty line)
//!
//!  -text:  every byte above, base64 (standard alphabet, padded). A sender may flush a padded
//!          chunk at any 4-character boundary, so "AAAAAAo=gAAAAA9ncnBj..." is two chunks; the
//!          decoder takes `=` as the end of one group, not the end of the body.
//! ```
//!
//! Why a streaming decoder: a request body arrives in pieces cut wherever the network cut it,
//! so a 4-character group may span two pieces; the decoder keeps at most 3 characters between
//! pushes.
//!
//!   input                                      -> outcome
//!   a byte outside the alphabet (or `=`)       -> error "invalid base64"
//!   `=` before the third character of a group  -> error "invalid base64 padding"
//!   the body ends inside a group               -> error "truncated base64"

use http::HeaderMap;

use crate::base64;

/// The flag byte of the frame that carries the trailers (the most significant bit set).
pub(crate) const TRAILER_FLAG: u8 = 0x80;

/// The two body encodings, named by the request's `content-type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Body {
    /// `application/grpc-web[+proto]`: the frames as bytes.
    Binary,
    /// `application/grpc-web-text[+proto]`: the frames in base64.
    Text,
}

impl Body {
    /// Reads a `content-type` value: `Some` for the gRPC-Web types, `None` for anything else
    /// (native `application/grpc` included). Suffix (`+proto`) and parameters (`;…`) are
    /// allowed, as for `application/grpc` (PROTOCOL-HTTP2 § Requests, Content-Type).
    pub(crate) fn from_content_type(value: &[u8]) -> Option<Body> {
        const WEB: &[u8] = b"application/grpc-web";
        if value.len() < WEB.len() || !value[..WEB.len()].eq_ignore_ascii_case(WEB) {
            return None;
        }
        let rest = &value[WEB.len()..];
        let (body, rest) = if rest.len() >= 5 && rest[..5].eq_ignore_ascii_case(b"-text") {
            (Body::Text, &rest[5..])
        } else {
            (Body::Binary, rest)
        };
        match rest.first() {
            None | Some(b'+' | b';' | b' ' | b'\t') => Some(body),
            _ => None,
        }
    }

    /// The response's `content-type`.
    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Body::Binary => "application/grpc-web+proto",
            Body::Text => "application/grpc-web-text+proto",
        }
    }
}

/// Appends the trailer frame for `trailers` to `out`: each field as `name: value\r\n`, behind
/// a prefix whose flag byte is [`TRAILER_FLAG`] (PROTOCOL-WEB § Message framing, items 1-2).
/// `-bin` values stay base64 as they are in HTTP/2 trailers: browsers read this block as text.
pub(crate) fn encode_trailers(trailers: &HeaderMap, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[TRAILER_FLAG, 0, 0, 0, 0]);
    for (name, value) in trailers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let len = (out.len() - start - 5) as u32;
    out[start + 1..start + 5].copy_from_slice(&len.to_be_bytes());
}

/// A base64 decoder for `-text` request bodies that takes the body in pieces.
#[derive(Default)]
pub(crate) struct TextDecoder {
    /// The characters of the group not yet complete.
    group: [u8; 4],
    /// How many of `group` are filled.
    filled: usize,
}

impl TextDecoder {
    /// Decodes `input` onto `out`; a group cut by the end of `input` waits for the next push.
    pub(crate) fn push(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), &'static str> {
        out.reserve(input.len() / 4 * 3 + 3);
        for &c in input {
            self.group[self.filled] = c;
            self.filled += 1;
            if self.filled == 4 {
                self.filled = 0;
                decode_group(&self.group, out)?;
            }
        }
        Ok(())
    }

    /// At the end of the body: every group must be complete.
    pub(crate) fn finish(&self) -> Result<(), &'static str> {
        match self.filled {
            0 => Ok(()),
            _ => Err("truncated base64 in the grpc-web-text request body"),
        }
    }
}

/// One 4-character group, `=` allowed in the last one or two places only.
fn decode_group(group: &[u8; 4], out: &mut Vec<u8>) -> Result<(), &'static str> {
    let pads = match *group {
        [a, b, b'=', b'='] if a != b'=' && b != b'=' => 2,
        [a, b, c, b'='] if a != b'=' && b != b'=' && c != b'=' => 1,
        _ if group.contains(&b'=') => {
            return Err("invalid base64 padding in the grpc-web-text request body");
        }
        _ => 0,
    };
    let mut acc: u32 = 0;
    for &c in &group[..4 - pads] {
        let v = base64::sextet(c).ok_or("invalid base64 in the grpc-web-text request body")?;
        acc = acc << 6 | u32::from(v);
    }
    acc <<= 6 * pads as u32;
    let bytes = [(acc >> 16) as u8, (acc >> 8) as u8, acc as u8];
    out.extend_from_slice(&bytes[..3 - pads]);
    Ok(())
}

/// Appends `data` as padded base64 (the `-text` response body; each flushed chunk is whole).
pub(crate) fn encode_text(data: &[u8], out: &mut Vec<u8>) {
    base64::encode_padded_into(data, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        // One row per spelling PROTOCOL-WEB § Content-Type names, and what is not one.
        let rows: &[(&str, Option<Body>)] = &[
            ("application/grpc-web", Some(Body::Binary)),
            ("application/grpc-web+proto", Some(Body::Binary)),
            ("application/grpc-web-text", Some(Body::Text)),
            ("application/grpc-web-text+proto", Some(Body::Text)),
            ("Application/GRPC-Web-Text+proto", Some(Body::Text)),
            ("application/grpc-web; charset=utf-8", Some(Body::Binary)),
            ("application/grpc", None),
            ("application/grpc+proto", None),
            ("application/grpc-webx", None),
            ("application/grpc-web-textual", None),
            ("text/plain", None),
        ];
        for (value, want) in rows {
            assert_eq!(Body::from_content_type(value.as_bytes()), *want, "{value}");
        }
    }

    #[test]
    fn trailer_frame_bytes() {
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", "0".parse().unwrap());
        trailers.insert("grpc-message", "ok%20then".parse().unwrap());
        let mut out = Vec::new();
        encode_trailers(&trailers, &mut out);
        let block = b"grpc-status: 0\r\ngrpc-message: ok%20then\r\n";
        assert_eq!(out[0], 0x80);
        assert_eq!(
            u32::from_be_bytes(out[1..5].try_into().unwrap()) as usize,
            block.len()
        );
        assert_eq!(&out[5..], block);
    }

    fn decode_all(pieces: &[&[u8]]) -> Result<Vec<u8>, &'static str> {
        let mut decoder = TextDecoder::default();
        let mut out = Vec::new();
        for piece in pieces {
            decoder.push(piece, &mut out)?;
        }
        decoder.finish()?;
        Ok(out)
    }

    #[test]
    fn text_round_trip_split_at_every_offset() {
        let data: Vec<u8> = (0u8..=255).chain(0..7).collect();
        let mut text = Vec::new();
        // Two chunks, each padded: padding in the middle of the body (§ Text-encoded streams).
        encode_text(&data[..100], &mut text);
        encode_text(&data[100..], &mut text);
        assert!(text[..136].ends_with(b"="), "the first chunk ends padded");
        for split in 0..=text.len() {
            let (a, b) = text.split_at(split);
            assert_eq!(decode_all(&[a, b]).unwrap(), data, "split at {split}");
        }
    }

    #[test]
    fn text_rejects() {
        assert!(decode_all(&[b"AAA"]).unwrap_err().contains("truncated"));
        assert!(
            decode_all(&[b"AA*A"])
                .unwrap_err()
                .contains("invalid base64")
        );
        assert!(decode_all(&[b"A=AA"]).unwrap_err().contains("padding"));
        assert!(decode_all(&[b"AA=A"]).unwrap_err().contains("padding"));
        assert!(decode_all(&[b"AAAA\r\n"]).is_err());
        assert_eq!(decode_all(&[b"AA==", b"AAA="]).unwrap(), vec![0, 0, 0]);
    }

    #[test]
    fn encode_text_pads() {
        let mut out = Vec::new();
        encode_text(b"f", &mut out);
        encode_text(b"fo", &mut out);
        encode_text(b"foo", &mut out);
        assert_eq!(out, b"Zg==Zm8=Zm9v");
    }
}
