//! Custom metadata: the application's key-value pairs in request headers,
//! response headers and trailers (PROTOCOL-HTTP2 § Requests, Custom-Metadata).
//!
//! ```text
//!   Custom-Metadata -> Binary-Header / ASCII-Header
//!   Binary-Header   -> {Header-Name "-bin" } {base64 encoded value}
//!   ASCII-Header    -> Header-Name ASCII-Value
//!   Header-Name     -> 1*( %x30-39 / %x61-7A / "_" / "-" / ".") ; 0-9 a-z _ - .
//!   ASCII-Value     -> 1*( %x20-%x7E ) ; space and printable ASCII
//!
//!   insert("x-user", "ada")          ->  x-user: ada
//!   insert_bin("x-id-bin", [0xfb])   ->  x-id-bin: +w          (base64, unpadded)
//!   received  x-id-bin: +w==         ->  get_bin("x-id-bin") = [0xfb]
//!   received  x-id-bin: +w,AA        ->  get_all_bin = [[0xfb], [0x00]]
//! ```
//!
//! Why a wrapper over `http::HeaderMap`: the header block h2 hands us *is* the
//! metadata once the reserved names are out of sight, so [`Metadata::from_headers`]
//! takes the map by value and *hides* the reserved names it holds (a bit each in
//! a mask) instead of deleting them: no copy, no second map, and none of the
//! hashing a `HeaderMap::remove` does per name. Every accessor skips hidden
//! names; a reserved name can never be one the program added, since inserting
//! one is refused. Sending is the reverse, [`Metadata::merge_into`] appends the
//! visible entries.
//! The wrapper's job is to keep what the local program adds valid: keys and
//! values are checked on insert, so a bad key fails at the call site with an
//! [`InvalidMetadata`] (INTERNAL, with a clear message, once it becomes a
//! `Status` through `?`), instead of h2 refusing the whole header block later. Keys are lower-cased on insert, as HTTP/2 requires
//! (RFC 9113 §8.2.1).
//!
//! What it rejects and what it does not do:
//!
//! ```text
//!   from the local program                        -> outcome
//!   key empty, or a byte outside 0-9 a-z A-Z _ - .  -> INTERNAL
//!   reserved key (grpc-status, te, connection...)   -> INTERNAL
//!   insert()/append() with a "-bin" key             -> INTERNAL (use insert_bin)
//!   insert_bin()/append_bin() without "-bin"        -> INTERNAL (use insert)
//!   ASCII value with a byte outside 0x20-0x7E       -> INTERNAL
//! ```
//!
//! Received metadata is never an error: "Implementations must not error due
//! to receiving an invalid ASCII-Value". A received value that is not
//! printable ASCII is kept in the map (so it can be echoed back untouched)
//! but [`Metadata::get`] does not return it; a `-bin` value that is not
//! base64 is skipped by [`Metadata::get_bin`]. Empty values are allowed both
//! ways, as grpc-go and grpcio allow them. Other `grpc-` names are "reserved
//! for future GRPC use" but not refused, so a server can still send, say,
//! `grpc-retry-pushback-ms` in trailers.
//!
//! Spec: <https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md>

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::base64;
use crate::headers::{
    CONTENT_TYPE, GRPC_ACCEPT_ENCODING, GRPC_ENCODING, GRPC_MESSAGE, GRPC_STATUS,
    GRPC_STATUS_DETAILS_BIN, GRPC_TIMEOUT, TE,
};

/// Names that are never custom metadata: the protocol's own fields, and the
/// connection-specific fields HTTP/2 forbids (RFC 9113 §8.2.2), which h2
/// would refuse to send. A `static`, not a `const`: `HeaderName` may hold
/// `Bytes`, and a `const` would build a fresh copy at every use.
static RESERVED: [HeaderName; 15] = [
    CONTENT_TYPE,
    TE,
    GRPC_STATUS,
    GRPC_MESSAGE,
    GRPC_STATUS_DETAILS_BIN,
    GRPC_TIMEOUT,
    GRPC_ENCODING,
    GRPC_ACCEPT_ENCODING,
    http::header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    http::header::TRANSFER_ENCODING,
    http::header::UPGRADE,
    http::header::HOST,
    http::header::CONTENT_LENGTH,
];

/// Bits of the reserved names the server's header walk also reads (`server::head`), as
/// [`reserved_bit`] gives them: one `match` per received name serves both jobs.
pub(crate) mod bit {
    pub(crate) const CONTENT_TYPE: u16 = 1 << 0;
    pub(crate) const TE: u16 = 1 << 1;
    pub(crate) const GRPC_TIMEOUT: u16 = 1 << 5;
    pub(crate) const GRPC_ENCODING: u16 = 1 << 6;
    pub(crate) const GRPC_ACCEPT_ENCODING: u16 = 1 << 7;
}

/// The bit of `name` in a mask of [`RESERVED`] names (0 when it is not reserved).
pub(crate) fn reserved_bit(name: &HeaderName) -> u16 {
    // A `match` on the text compiles to a switch on the length and one comparison, where a
    // walk over RESERVED compared each name in turn; this runs for every received header.
    let index = match name.as_str() {
        "content-type" => 0,
        "te" => 1,
        "grpc-status" => 2,
        "grpc-message" => 3,
        "grpc-status-details-bin" => 4,
        "grpc-timeout" => 5,
        "grpc-encoding" => 6,
        "grpc-accept-encoding" => 7,
        "connection" => 8,
        "keep-alive" => 9,
        "proxy-connection" => 10,
        "transfer-encoding" => 11,
        "upgrade" => 12,
        "host" => 13,
        "content-length" => 14,
        _ => return 0,
    };
    1 << index
}

/// A key or value the local program gave that cannot go on the wire as custom metadata (the
/// module doc lists what is refused). It says what is wrong and nothing else: it is its own
/// type, not a `Status`, because a `Status` carries metadata and so sits above this module;
/// `?` turns it into an INTERNAL status with the same message (`status.rs`), since a bad key
/// is a bug of the local program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidMetadata {
    pub(crate) message: String,
}

impl InvalidMetadata {
    fn new(message: String) -> InvalidMetadata {
        InvalidMetadata { message }
    }

    /// What is wrong with the key or the value, naming the key.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl std::fmt::Display for InvalidMetadata {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for InvalidMetadata {}

/// The suffix that marks a binary key.
const BIN_SUFFIX: &str = "-bin";

/// Custom metadata of one header block: ASCII and `-bin` entries, in the
/// order added, repeated keys allowed.
#[derive(Clone, Default)]
pub struct Metadata {
    /// The entries, exactly as they go on the wire (`-bin` values in base64), plus any
    /// reserved names of a received block, which `hidden` keeps out of sight.
    headers: HeaderMap,
    /// The reserved names `headers` still holds (bits as [`reserved_bit`] gives them); 0 for
    /// metadata built by the program, which cannot insert reserved names.
    hidden: u16,
}

impl std::fmt::Debug for Metadata {
    /// The visible entries only, as every other accessor shows them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.entries()).finish()
    }
}

impl Metadata {
    /// Empty metadata.
    pub fn new() -> Metadata {
        Metadata::default()
    }

    /// From a received header block: leaves out pseudo-headers and reserved
    /// headers (content-type, te, grpc-status, grpc-message,
    /// grpc-status-details-bin, grpc-timeout, grpc-encoding,
    /// grpc-accept-encoding, connection-specific ones); keeps user-agent.
    ///
    /// Pseudo-headers never reach a `HeaderMap` (`http` keeps them in the
    /// request/response parts), so only the reserved names are hidden.
    pub(crate) fn from_headers(headers: HeaderMap) -> Metadata {
        let present = headers
            .keys()
            .fold(0, |mask, name| mask | reserved_bit(name));
        Metadata::from_headers_without(headers, present)
    }

    /// [`Metadata::from_headers`] when the caller has already walked the map and knows which
    /// reserved names it holds (`present`, bits as [`reserved_bit`] gives them).
    ///
    /// Why hide rather than remove: a request carries two to four of the fifteen reserved
    /// names (content-type, te, often content-length and grpc-timeout), and each
    /// `HeaderMap::remove` hashes its name, probes the table and shifts the entries after it,
    /// on every request (the instructions hiding saves are in
    /// docs/performance.md § Measurements behind the code's choices). Hiding costs nothing here; the accessors pay a comparison per
    /// entry, and only for a map that has hidden names.
    pub(crate) fn from_headers_without(headers: HeaderMap, present: u16) -> Metadata {
        if present != 0 && present.count_ones() as usize == headers.keys_len() {
            // Nothing but reserved names (the usual request): drop the map now, not with the
            // call, and give the handler an empty one.
            return Metadata::new();
        }
        Metadata {
            headers,
            hidden: present,
        }
    }

    /// Is `name` one of the hidden reserved names?
    fn hides(&self, name: &HeaderName) -> bool {
        self.hidden != 0 && reserved_bit(name) & self.hidden != 0
    }

    /// Would a lookup of `key` land on a hidden name? Any reserved key would: the program
    /// cannot add one, so in this map it can only be a hidden received one.
    fn hides_key(&self, key: &str) -> bool {
        self.hidden != 0 && Metadata::is_reserved(key)
    }

    /// The visible entries, in order, one per value.
    fn entries(&self) -> impl Iterator<Item = (&HeaderName, &HeaderValue)> {
        self.headers
            .iter()
            .filter(move |(name, _)| !self.hides(name))
    }

    /// Sets an ASCII entry, replacing every earlier value of `key`.
    pub fn insert(&mut self, key: &str, value: &str) -> Result<(), InvalidMetadata> {
        let (name, value) = ascii_entry(key, value)?;
        self.headers.insert(name, value);
        Ok(())
    }

    /// Adds an ASCII entry, keeping earlier values of `key`.
    pub fn append(&mut self, key: &str, value: &str) -> Result<(), InvalidMetadata> {
        let (name, value) = ascii_entry(key, value)?;
        self.headers.append(name, value);
        Ok(())
    }

    /// Sets a binary entry (`key` must end in `-bin`), replacing earlier
    /// values; sent as unpadded base64.
    pub fn insert_bin(&mut self, key: &str, value: &[u8]) -> Result<(), InvalidMetadata> {
        let (name, value) = bin_entry(key, value)?;
        self.headers.insert(name, value);
        Ok(())
    }

    /// Adds a binary entry (`key` must end in `-bin`), keeping earlier values.
    pub fn append_bin(&mut self, key: &str, value: &[u8]) -> Result<(), InvalidMetadata> {
        let (name, value) = bin_entry(key, value)?;
        self.headers.append(name, value);
        Ok(())
    }

    /// The first value of an ASCII key; `None` when absent or when the
    /// received value is not printable ASCII. For a `-bin` key this is the
    /// base64 text; use [`Metadata::get_bin`] for the bytes.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.raw_values(key).find_map(ascii_str)
    }

    /// Every printable-ASCII value of `key`, in the order received.
    pub fn get_all(&self, key: &str) -> Vec<&str> {
        self.raw_values(key).filter_map(ascii_str).collect()
    }

    /// The first value of a `-bin` key that decodes as base64 (padded or
    /// unpadded); equal to the first item of [`Metadata::get_all_bin`].
    pub fn get_bin(&self, key: &str) -> Option<Vec<u8>> {
        self.bin_values(key).next()
    }

    /// Every value of a `-bin` key, decoded. "Implementations must split
    /// Binary-Headers on "," before decoding", since a proxy may have joined
    /// repeated values; values that are not base64 are skipped.
    pub fn get_all_bin(&self, key: &str) -> Vec<Vec<u8>> {
        self.bin_values(key).collect()
    }

    /// Removes every value of `key`; a key that is absent, reserved or
    /// invalid is a no-op.
    pub fn remove(&mut self, key: &str) {
        if !self.hides_key(key) {
            self.headers.remove(key);
        }
    }

    /// The number of values (a key with two values counts twice).
    pub fn len(&self) -> usize {
        if self.hidden == 0 {
            self.headers.len()
        } else {
            self.entries().count()
        }
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Each distinct key once.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.headers
            .keys()
            .filter(move |name| !self.hides(name))
            .map(HeaderName::as_str)
    }

    /// Appends every entry of `other` whose key `self` does not hold yet (the entries a
    /// request set itself win over ones added for it, such as call credentials).
    pub(crate) fn add_missing(&mut self, other: &Metadata) {
        for name in other.headers.keys().filter(|name| !other.hides(name)) {
            if self.headers.contains_key(name) && !self.hides(name) {
                continue;
            }
            for value in other.headers.get_all(name) {
                self.headers.append(name.clone(), value.clone());
            }
        }
    }

    /// Appends every entry to `headers` (for sending).
    pub(crate) fn merge_into(&self, headers: &mut HeaderMap) {
        for (name, value) in self.entries() {
            headers.append(name.clone(), value.clone());
        }
    }

    /// Every value of `key` as received, printable or not (`-bin` values still in base64);
    /// nothing for a reserved key.
    pub(crate) fn get_all_raw<'a>(
        &'a self,
        key: &str,
    ) -> impl Iterator<Item = &'a HeaderValue> + use<'a> {
        self.raw_values(key)
    }

    /// The values of `key`, none when it is a hidden name.
    fn raw_values<'a>(&'a self, key: &str) -> impl Iterator<Item = &'a HeaderValue> + use<'a> {
        let values = (!self.hides_key(key)).then(|| self.headers.get_all(key));
        values.into_iter().flatten()
    }

    /// Is `name` reserved by gRPC or HTTP/2, so never custom metadata?
    /// Compared case-insensitively.
    pub(crate) fn is_reserved(name: &str) -> bool {
        RESERVED
            .iter()
            .any(|r| r.as_str().eq_ignore_ascii_case(name))
    }

    /// Decoded values of a `-bin` key, split on "," and trimmed.
    fn bin_values<'a>(&'a self, key: &str) -> impl Iterator<Item = Vec<u8>> + 'a {
        self.raw_values(key)
            .flat_map(|v| v.as_bytes().split(|&b| b == b','))
            .filter_map(|part| base64::decode(part.trim_ascii()))
    }
}

/// The value as `&str` when it is printable ASCII (ASCII-Value).
fn ascii_str(value: &HeaderValue) -> Option<&str> {
    let bytes = value.as_bytes();
    if bytes.iter().all(|b| (0x20..=0x7E).contains(b)) {
        value.to_str().ok()
    } else {
        None
    }
}

/// Checks a key given by the local program: Header-Name, not reserved.
fn key_name(key: &str) -> Result<HeaderName, InvalidMetadata> {
    let valid = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.');
    if key.is_empty() || !key.bytes().all(|b| valid(&b)) {
        return Err(InvalidMetadata::new(format!(
            "invalid metadata key {key:?}: keys are 1 or more of 0-9 a-z _ - ."
        )));
    }
    if Metadata::is_reserved(key) {
        return Err(InvalidMetadata::new(format!(
            "metadata key {key:?} is reserved for the gRPC protocol or HTTP/2"
        )));
    }
    // Upper-case letters are lower-cased here; every other byte was checked above.
    HeaderName::from_bytes(key.as_bytes())
        .map_err(|_| InvalidMetadata::new(format!("invalid metadata key {key:?}")))
}

/// Checks an ASCII entry: a non-`-bin` key and a printable-ASCII value.
fn ascii_entry(key: &str, value: &str) -> Result<(HeaderName, HeaderValue), InvalidMetadata> {
    let name = key_name(key)?;
    if name.as_str().ends_with(BIN_SUFFIX) {
        return Err(InvalidMetadata::new(format!(
            "metadata key {key:?} ends in \"-bin\": binary values go through insert_bin/append_bin"
        )));
    }
    if let Some(bad) = value.bytes().find(|b| !(0x20..=0x7E).contains(b)) {
        return Err(InvalidMetadata::new(format!(
            "metadata value for {key:?} has byte 0x{bad:02X}: ASCII values are 0x20-0x7E; \
             use a \"-bin\" key for other bytes"
        )));
    }
    let value = HeaderValue::from_str(value)
        .map_err(|_| InvalidMetadata::new(format!("invalid metadata value for {key:?}")))?;
    Ok((name, value))
}

/// Checks a binary entry: a `-bin` key; the value becomes unpadded base64.
fn bin_entry(key: &str, value: &[u8]) -> Result<(HeaderName, HeaderValue), InvalidMetadata> {
    let name = key_name(key)?;
    if !name.as_str().ends_with(BIN_SUFFIX) {
        return Err(InvalidMetadata::new(format!(
            "binary metadata key {key:?} must end in \"-bin\""
        )));
    }
    let value = HeaderValue::try_from(base64::encode(value))
        .map_err(|_| InvalidMetadata::new(format!("invalid metadata value for {key:?}")))?;
    Ok((name, value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{Code, Status};

    /// The visible entries as a header map: what a received map would look like sent on.
    fn into_headers(mut md: Metadata) -> HeaderMap {
        for (i, name) in RESERVED.iter().enumerate() {
            if md.hidden & (1 << i) != 0 {
                md.headers.remove(name);
            }
        }
        md.headers
    }

    /// Header-Name and ASCII-Value rules for what the local program inserts;
    /// `None` means accepted.
    #[test]
    fn insert_checks() {
        let rows: &[(&str, &str, Option<&str>)] = &[
            ("x-user", "ada lovelace", None),
            ("a.b_c-9", "~!@#$%^&*()", None),
            // keys are lower-cased, not refused
            ("X-User", "ada", None),
            // empty values are allowed (grpc-go and grpcio accept them)
            ("x-empty", "", None),
            ("", "v", Some("invalid metadata key")),
            ("x user", "v", Some("invalid metadata key")),
            ("x:user", "v", Some("invalid metadata key")),
            (":path", "v", Some("invalid metadata key")),
            ("x-ü", "v", Some("invalid metadata key")),
            ("grpc-status", "0", Some("reserved")),
            ("Grpc-Timeout", "1S", Some("reserved")),
            ("content-type", "text/plain", Some("reserved")),
            ("te", "trailers", Some("reserved")),
            ("connection", "close", Some("reserved")),
            ("keep-alive", "1", Some("reserved")),
            ("x-data-bin", "AAAA", Some("insert_bin")),
            ("x-v", "tab\there", Some("0x09")),
            ("x-v", "line\nbreak", Some("0x0A")),
            ("x-v", "del\x7f", Some("0x7F")),
            ("x-v", "café", Some("0xC3")),
        ];
        for &(key, value, want_error) in rows {
            let mut md = Metadata::new();
            let got = md.insert(key, value);
            match (got, want_error) {
                (Ok(()), None) => assert_eq!(md.get(key), Some(value), "{key:?}"),
                (Err(invalid), Some(part)) => {
                    let status = Status::from(invalid);
                    assert_eq!(status.code(), Code::Internal);
                    assert!(
                        status.message().contains(part),
                        "{key:?}: {}",
                        status.message()
                    );
                    assert!(md.is_empty());
                }
                (got, want) => panic!("{key:?}={value:?}: got {got:?}, want error {want:?}"),
            }
        }
    }

    /// Keys are stored lower-case, as HTTP/2 requires (RFC 9113 §8.2.1).
    #[test]
    fn keys_are_lowercased() {
        let mut md = Metadata::new();
        md.insert("X-Trace-ID", "1").unwrap();
        assert_eq!(md.keys().collect::<Vec<_>>(), ["x-trace-id"]);
        assert_eq!(md.get("x-trace-id"), Some("1"));
    }

    /// insert replaces, append keeps; get returns the first value.
    #[test]
    fn insert_and_append() {
        let mut md = Metadata::new();
        md.append("k", "1").unwrap();
        md.append("k", "2").unwrap();
        assert_eq!(md.get_all("k"), ["1", "2"]);
        assert_eq!(md.get("k"), Some("1"));
        assert_eq!(md.len(), 2);
        md.insert("k", "3").unwrap();
        assert_eq!(md.get_all("k"), ["3"]);
        md.remove("k");
        assert!(md.is_empty());
        assert_eq!(md.get("k"), None);
        // removing an absent or invalid key is a no-op
        md.remove("absent");
        md.remove("not a key");
    }

    /// Binary values: "should emit un-padded values", "MUST accept padded and
    /// un-padded", "must split Binary-Headers on ","" (PROTOCOL-HTTP2 § Requests).
    #[test]
    fn binary_values() {
        let mut md = Metadata::new();
        md.insert_bin("x-id-bin", b"\xfb").unwrap();
        assert_eq!(md.get_all_raw("x-id-bin").next().unwrap(), "+w");
        assert_eq!(md.get_bin("x-id-bin"), Some(vec![0xfb]));
        md.append_bin("x-id-bin", b"").unwrap();
        assert_eq!(md.get_all_bin("x-id-bin"), [vec![0xfb], vec![]]);

        let rows: &[(&[&'static str], &[&[u8]])] = &[
            (&["+w"], &[b"\xfb"]),
            (&["+w=="], &[b"\xfb"]),
            (&["+w,AA"], &[b"\xfb", b"\x00"]),
            (&["+w==, AA=="], &[b"\xfb", b"\x00"]),
            (&["+w", "AA"], &[b"\xfb", b"\x00"]),
            // not base64: skipped, never an error
            (&["!!", "AA"], &[b"\x00"]),
            (&["+w="], &[]),
        ];
        for &(wire, want) in rows {
            let mut headers = HeaderMap::new();
            for &v in wire {
                headers.append("x-id-bin", HeaderValue::from_static(v));
            }
            let md = Metadata::from_headers(headers);
            assert_eq!(md.get_all_bin("x-id-bin"), want, "{wire:?}");
            assert_eq!(
                md.get_bin("x-id-bin").as_deref(),
                want.first().copied(),
                "{wire:?}"
            );
        }
    }

    /// The "-bin" suffix decides which insert is legal.
    #[test]
    fn bin_suffix_rules() {
        let mut md = Metadata::new();
        let err = Status::from(md.insert_bin("x-id", b"1").unwrap_err());
        assert_eq!(err.code(), Code::Internal);
        assert!(err.message().contains("-bin"));
        let err = Status::from(md.append("x-id-bin", "AA").unwrap_err());
        assert_eq!(err.code(), Code::Internal);
        assert!(md.insert_bin("grpc-status-details-bin", b"1").is_err());
        assert!(md.is_empty());
    }

    /// from_headers drops exactly the reserved names and keeps the rest,
    /// user-agent included.
    #[test]
    fn from_headers_filters_reserved() {
        let rows: &[(&str, bool)] = &[
            ("content-type", false),
            ("te", false),
            ("grpc-status", false),
            ("grpc-message", false),
            ("grpc-status-details-bin", false),
            ("grpc-timeout", false),
            ("grpc-encoding", false),
            ("grpc-accept-encoding", false),
            ("connection", false),
            ("keep-alive", false),
            ("proxy-connection", false),
            ("transfer-encoding", false),
            ("upgrade", false),
            ("host", false),
            ("content-length", false),
            ("user-agent", true),
            ("grpc-retry-pushback-ms", true),
            ("authorization", true),
            ("x-custom", true),
            ("x-custom-bin", true),
        ];
        let mut headers = HeaderMap::new();
        for &(name, _) in rows {
            headers.append(HeaderName::from_static(name), HeaderValue::from_static("v"));
        }
        let md = Metadata::from_headers(headers);
        // The reserved names are hidden, not removed: every way of reading the map must agree.
        let mut merged = HeaderMap::new();
        md.merge_into(&mut merged);
        let keys: Vec<&str> = md.keys().collect();
        let debug = format!("{md:?}");
        let sent = into_headers(md.clone());
        for &(name, kept) in rows {
            assert_eq!(md.get_all_raw(name).count() == 1, kept, "{name}");
            assert_eq!(md.get(name).is_some(), kept, "{name}");
            assert_eq!(md.get_all(&name.to_uppercase()).len() == 1, kept, "{name}");
            assert_eq!(keys.contains(&name), kept, "{name}");
            assert_eq!(merged.contains_key(name), kept, "{name}");
            assert_eq!(sent.contains_key(name), kept, "{name}");
            assert_eq!(debug.contains(&format!("\"{name}\"")), kept, "{name}");
            assert_eq!(Metadata::is_reserved(name), !kept, "{name}");
        }
        let visible = rows.iter().filter(|r| r.1).count();
        assert_eq!(md.len(), visible);
        assert_eq!(keys.len(), visible);
        assert!(!md.is_empty());

        // Removing a hidden name is a no-op; a block of nothing but reserved names is empty.
        let mut md = md;
        md.remove("content-type");
        assert_eq!(md.len(), visible);
        let mut only_reserved = HeaderMap::new();
        only_reserved.insert("content-type", HeaderValue::from_static("application/grpc"));
        only_reserved.insert("te", HeaderValue::from_static("trailers"));
        let md = Metadata::from_headers(only_reserved);
        assert!(md.is_empty());
        assert_eq!(md.keys().count(), 0);
    }

    /// reserved_bit's `match` and RESERVED agree, name by name.
    #[test]
    fn reserved_bits_follow_the_table() {
        for (i, name) in RESERVED.iter().enumerate() {
            assert_eq!(reserved_bit(name), 1 << i, "{name}");
        }
        assert_eq!(reserved_bit(&CONTENT_TYPE), bit::CONTENT_TYPE);
        assert_eq!(reserved_bit(&TE), bit::TE);
        assert_eq!(reserved_bit(&GRPC_TIMEOUT), bit::GRPC_TIMEOUT);
        assert_eq!(reserved_bit(&GRPC_ENCODING), bit::GRPC_ENCODING);
        assert_eq!(
            reserved_bit(&GRPC_ACCEPT_ENCODING),
            bit::GRPC_ACCEPT_ENCODING
        );
        assert_eq!(reserved_bit(&HeaderName::from_static("user-agent")), 0);
        assert_eq!(
            reserved_bit(&HeaderName::from_static("grpc-retry-pushback-ms")),
            0
        );
    }

    /// A block of nothing but reserved names gives empty metadata; a block with none keeps
    /// everything; the mask a caller computed gives what from_headers gives.
    #[test]
    fn reserved_mask_cases() {
        let block = |names: &[&'static str]| {
            let mut headers = HeaderMap::new();
            for name in names {
                headers.append(HeaderName::from_static(name), HeaderValue::from_static("v"));
            }
            headers
        };
        assert!(Metadata::from_headers(block(&["content-type", "te", "grpc-timeout"])).is_empty());
        assert_eq!(
            Metadata::from_headers(block(&["x-a", "x-b", "x-b"])).len(),
            3
        );
        let headers = block(&["te", "x-a", "content-type", "user-agent"]);
        let mask = headers.keys().fold(0, |m, k| m | reserved_bit(k));
        assert_eq!(mask.count_ones(), 2);
        let md = Metadata::from_headers_without(headers, mask);
        // (Removal may reorder keys; only the order of one key's values is meaningful.)
        let mut keys = md.keys().collect::<Vec<_>>();
        keys.sort();
        assert_eq!(keys, ["user-agent", "x-a"]);
    }

    /// "Implementations must not error due to receiving an invalid
    /// ASCII-Value": such a value is kept (to echo back) but not returned
    /// by get.
    #[test]
    fn received_non_ascii_value() {
        let mut headers = HeaderMap::new();
        headers.append("x-v", HeaderValue::from_bytes(b"caf\xe9").unwrap());
        headers.append("x-v", HeaderValue::from_static("plain"));
        let md = Metadata::from_headers(headers);
        assert_eq!(md.get("x-v"), Some("plain"));
        assert_eq!(md.get_all("x-v"), ["plain"]);
        let mut echoed = HeaderMap::new();
        md.merge_into(&mut echoed);
        assert_eq!(echoed.get_all("x-v").iter().count(), 2);
    }

    /// merge_into appends; it never replaces what the block already holds.
    #[test]
    fn merge_into_appends() {
        let mut md = Metadata::new();
        md.append("k", "a").unwrap();
        md.append("k", "b").unwrap();
        md.insert_bin("k-bin", b"\x01").unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("k", HeaderValue::from_static("existing"));
        md.merge_into(&mut headers);
        let values: Vec<_> = headers.get_all("k").iter().collect();
        assert_eq!(values, ["existing", "a", "b"]);
        assert_eq!(headers.get("k-bin").unwrap(), "AQ");
        let mut keys: Vec<_> = md.keys().collect();
        keys.sort_unstable();
        assert_eq!(keys, ["k", "k-bin"]);
        assert_eq!(into_headers(md.clone()).len(), 3);
    }

    use crate::test_rng::Rng;

    /// Property: random ASCII and `-bin` entries survive the trip through a header block.
    #[test]
    fn property_metadata_round_trips() {
        for seed in 1..=200u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let mut md = Metadata::new();
            let mut expected: Vec<(String, Result<String, Vec<u8>>)> = Vec::new();
            for i in 0..rng.below(10) {
                let key: String = (0..1 + rng.below(12))
                    .map(|_| {
                        char::from(
                            b"abcdefghijklmnopqrstuvwxyz0123456789-_."[rng.below(39) as usize],
                        )
                    })
                    .collect();
                let key = format!("k{i}{key}");
                if rng.below(2) == 0 {
                    let key = format!("{key}-bin");
                    let value: Vec<u8> = (0..rng.below(40)).map(|_| rng.next() as u8).collect();
                    md.insert_bin(&key, &value).unwrap();
                    expected.push((key, Err(value)));
                } else {
                    let key = if key.ends_with("-bin") {
                        format!("{key}x")
                    } else {
                        key
                    };
                    let value: String = (0..rng.below(40))
                        .map(|_| char::from(0x20 + rng.below(0x5f) as u8))
                        .collect();
                    let value = value.trim().to_owned();
                    md.insert(&key, &value).unwrap();
                    expected.push((key, Ok(value)));
                }
            }
            let back = Metadata::from_headers(into_headers(md));
            for (key, value) in expected {
                match value {
                    Ok(text) => assert_eq!(back.get(&key), Some(text.as_str()), "seed {seed}"),
                    Err(bytes) => assert_eq!(back.get_bin(&key), Some(bytes), "seed {seed}"),
                }
            }
        }
    }
}
