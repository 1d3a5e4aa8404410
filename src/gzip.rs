//! The gzip container (RFC 1952) around raw DEFLATE (RFC 1951): what
//! `grpc-encoding: gzip` means for one message's bytes.
//!
//! ```text
//!   a member (RFC 1952 §2.3); a gzip stream is one or more members (§2.2)
//!
//!   +-----+-----+----+-----+-----+-----+-----+-----+-----+----+
//!   | ID1 | ID2 | CM | FLG |        MTIME          | XFL | OS |  10 bytes
//!   +-----+-----+----+-----+-----+-----+-----+-----+-----+----+
//!    0x1f  0x8b   8    flag bits below, then only the fields they announce:
//!   (FEXTRA)   XLEN, 2 bytes little endian, then XLEN bytes
//!   (FNAME)    file name, zero-terminated
//!   (FCOMMENT) comment, zero-terminated
//!   (FHCRC)    CRC16: low 2 bytes of the CRC-32 of the header up to here
//!   +======================+
//!   | compressed blocks    |  raw DEFLATE (CM 8), ends itself (last-block bit)
//!   +======================+
//!   +-----+-----+-----+-----+-----+-----+-----+-----+
//!   |         CRC32         |         ISIZE         |  little endian
//!   +-----+-----+-----+-----+-----+-----+-----+-----+
//!     CRC-32 of the original data, its length mod 2^32
//!
//!   FLG: bit 0 FTEXT, 1 FHCRC, 2 FEXTRA, 3 FNAME, 4 FCOMMENT, 5-7 reserved
//! ```
//!
//! # What we write
//!
//! One member with the fixed 10-byte header `1f 8b 08 00 00000000 00 ff`: no
//! optional fields, MTIME 0 ("no time stamp is available", §2.3.1), XFL 0 (a
//! level between fastest and best), OS 255 ("unknown"). That is the header grpc-go
//! and flate2 write by default, and it keeps our output independent of the host
//! and the clock. The body is deflated at level 6, the default of zlib, grpc-go
//! and flate2: level 9 buys almost no size for much more CPU, and level 1's
//! output is much larger (measured: docs/performance.md § Measurements behind the code's choices).
//!
//! # What we read
//!
//! §2.3.1.2 Compliance: "A compliant decompressor must check ID1, ID2, and CM,
//! and provide an error indication if any of these have incorrect values. It
//! must examine FEXTRA/XLEN, FNAME, FCOMMENT and FHCRC at least so it can skip
//! over the optional fields if they are present. [...] A compliant decompressor
//! must give an error indication if any reserved bit is non-zero, since such a
//! bit could indicate the presence of a new field that would cause subsequent
//! data to be interpreted incorrectly." We do all of that, and also check the
//! FHCRC value (as Go's reader does) and every trailer: DEFLATE itself carries
//! no checksum, so CRC32 and ISIZE are the only way a corrupt body shows up.
//! Several members back to back are one message (§2.2; Go's reader and
//! `gzip -d` read them the same way); each member is inflated on its own, with
//! no back-references into the one before. MTIME, XFL, OS and FTEXT are
//! ignored, as §2.3.1.2 allows.
//!
//! # Why the limit is enforced while inflating
//!
//! DEFLATE can expand a thousandfold (a 258-byte match costs as little as two
//! bits), so a few KiB of gzip can claim gigabytes, and ISIZE is only the
//! sender's claim. The output buffer therefore never grows past `limit + 1`
//! bytes: reaching the extra byte proves the message too large, and inflating
//! stops there. ISIZE of the last member sizes the first allocation (capped the
//! same way, and at 1032 times the input, deflate's maximum ratio), so an
//! honest one-member message is inflated into one buffer of exactly its size.
//! This is why the streaming `miniz_oxide::inflate::core` API is used rather
//! than `decompress_to_vec_with_limit`: it starts from our own buffer and says
//! where the DEFLATE data ended, which is where the trailer begins.
//!
//! # What it rejects
//!
//! ```text
//!   input                                         -> Error
//!   empty input, a header cut short               -> Corrupt
//!   ID1 ID2 not 1f 8b, CM not 8, reserved FLG bit -> Corrupt
//!   FHCRC that does not match the header          -> Corrupt
//!   invalid or truncated DEFLATE data             -> Corrupt
//!   trailer cut short, CRC32 or ISIZE mismatch    -> Corrupt
//!   bytes after a member that are not a member    -> Corrupt
//!   more than `limit` bytes of output             -> TooLarge, mid-inflate
//! ```
//!
//! [`crate::compression`] maps `Corrupt` to INTERNAL and `TooLarge` to
//! RESOURCE_EXHAUSTED.
//!
//! Spec: <https://www.rfc-editor.org/rfc/rfc1952>,
//! <https://www.rfc-editor.org/rfc/rfc1951>

mod crc32;

use bytes::BytesMut;
use miniz_oxide::DataFormat;
use miniz_oxide::deflate::core::{CompressorOxide, TDEFLFlush, TDEFLStatus, compress_to_output};
use miniz_oxide::inflate::TINFLStatus;
use miniz_oxide::inflate::core::{
    DecompressorOxide, decompress as inflate,
    inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF,
};

use self::crc32::crc32;

/// The header we write (§2.3.1): magic, CM 8, no flags, MTIME 0, XFL 0, OS 255.
const HEADER: [u8; 10] = [ID1, ID2, CM_DEFLATE, 0, 0, 0, 0, 0, 0, OS_UNKNOWN];

/// First magic byte (§2.3.1, ID1).
const ID1: u8 = 0x1f;
/// Second magic byte (§2.3.1, ID2).
const ID2: u8 = 0x8b;
/// CM 8: "deflate" (§2.3.1); 0-7 are reserved.
const CM_DEFLATE: u8 = 8;
/// OS 255: "unknown" (§2.3.1).
const OS_UNKNOWN: u8 = 255;

/// FLG bit 1: a CRC16 of the header follows the other optional fields.
const FHCRC: u8 = 1 << 1;
/// FLG bit 2: an "extra field" (XLEN, then XLEN bytes) follows the fixed header.
const FEXTRA: u8 = 1 << 2;
/// FLG bit 3: a zero-terminated original file name follows.
const FNAME: u8 = 1 << 3;
/// FLG bit 4: a zero-terminated comment follows.
const FCOMMENT: u8 = 1 << 4;
/// FLG bits 5-7: "reserved", must be zero (§2.3.1.2).
const RESERVED: u8 = 0b1110_0000;

/// Bytes of a trailer: CRC32 and ISIZE, 4 each (§2.3.1).
const TRAILER_LEN: usize = 8;

/// The deflate level: zlib's, grpc-go's and flate2's default.
const LEVEL: u8 = 6;

/// DEFLATE's largest expansion: one 258-byte match per 2 bits, about 1032:1.
const MAX_RATIO: usize = 1032;

/// The output buffer's first size when the claimed size says nothing useful,
/// and its smallest growth step.
const MIN_GROWTH: usize = 256;

/// Why a gzip stream was not decoded.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Error {
    /// The bytes break a rule of RFC 1952 (or of RFC 1951 in the body); the
    /// text names the rule, for the status message.
    Corrupt(&'static str),
    /// The data inflates to more than the caller's limit.
    TooLarge,
}

/// The compressor stopped before the end of its input. Not expected: its
/// output goes straight into a growable buffer, so it has nothing to wait for.
#[derive(Debug)]
pub(crate) struct DeflateFailed;

/// Appends one gzip member holding `data` to `out`: [`HEADER`], `data`
/// deflated at [`LEVEL`], CRC32 and ISIZE.
pub(crate) fn compress(data: &[u8], out: &mut BytesMut) -> Result<(), DeflateFailed> {
    out.extend_from_slice(&HEADER);
    // Boxed: the compressor holds a 64 KiB buffer of LZ codes inline.
    let mut deflater = Box::<CompressorOxide>::default();
    deflater.set_format_and_level(DataFormat::Raw, LEVEL);
    let (status, read) = compress_to_output(&mut deflater, data, TDEFLFlush::Finish, |chunk| {
        out.extend_from_slice(chunk);
        true
    });
    if status != TDEFLStatus::Done || read != data.len() {
        return Err(DeflateFailed);
    }
    out.extend_from_slice(&crc32(data).to_le_bytes());
    // ISIZE is the length mod 2^32 (§2.3.1): the truncation is the rule.
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    Ok(())
}

/// Decodes a gzip stream of one or more members into their concatenated data,
/// never holding more than `limit + 1` bytes of output: [`Error::TooLarge`] as
/// soon as the data passes `limit`.
pub(crate) fn decompress(input: &[u8], limit: usize) -> Result<Vec<u8>, Error> {
    if input.is_empty() {
        // Not a member at all: gzip of even an empty message is 20 bytes.
        return Err(Error::Corrupt("empty input"));
    }
    let cap = limit.saturating_add(1);
    let mut out = vec![0; first_size(input, cap)];
    let mut len = 0;
    // Boxed, as miniz_oxide's own helpers do: its Huffman tables are 10 KiB.
    let mut inflater = Box::<DecompressorOxide>::default();
    let mut rest = input;
    while !rest.is_empty() {
        let body = skip_header(rest)?;
        let start = len;
        inflater.init();
        let trailer = inflate_member(&mut inflater, body, &mut out, &mut len, cap)?;
        if len > limit {
            return Err(Error::TooLarge);
        }
        let ([c0, c1, c2, c3, s0, s1, s2, s3], after) = trailer
            .split_first_chunk::<TRAILER_LEN>()
            .map(|(head, after)| (*head, after))
            .ok_or(Error::Corrupt("truncated trailer"))?;
        let member = &out[start..len];
        if u32::from_le_bytes([c0, c1, c2, c3]) != crc32(member) {
            return Err(Error::Corrupt("CRC-32 mismatch"));
        }
        if u32::from_le_bytes([s0, s1, s2, s3]) != member.len() as u32 {
            return Err(Error::Corrupt("ISIZE mismatch"));
        }
        rest = after;
    }
    out.truncate(len);
    Ok(out)
}

/// The output buffer's first size: what the last member's ISIZE claims, but
/// no more than `cap` and than DEFLATE could possibly produce from `input`.
fn first_size(input: &[u8], cap: usize) -> usize {
    let claimed = input
        .last_chunk::<4>()
        .map_or(0, |size| u32::from_le_bytes(*size));
    usize::try_from(claimed)
        .unwrap_or(usize::MAX)
        .min(input.len().saturating_mul(MAX_RATIO))
        .min(cap)
}

/// Checks one member's header (§2.3.1, §2.3.1.2) and returns what follows it:
/// the DEFLATE data.
fn skip_header(member: &[u8]) -> Result<&[u8], Error> {
    const TRUNCATED: Error = Error::Corrupt("truncated header");
    // The magic first, on however many bytes there are: bytes after a member
    // that are not gzip at all are told apart from a member cut short.
    if !member.iter().zip([ID1, ID2]).all(|(&got, id)| got == id) {
        return Err(Error::Corrupt("not a gzip member (bad magic)"));
    }
    let (fixed, mut rest) = member.split_first_chunk::<10>().ok_or(TRUNCATED)?;
    let [_, _, cm, flags, ..] = *fixed;
    if cm != CM_DEFLATE {
        return Err(Error::Corrupt("compression method is not deflate"));
    }
    if flags & RESERVED != 0 {
        return Err(Error::Corrupt("reserved header flag set"));
    }
    if flags & FEXTRA != 0 {
        let (xlen, after) = rest.split_first_chunk::<2>().ok_or(TRUNCATED)?;
        rest = after
            .get(usize::from(u16::from_le_bytes(*xlen))..)
            .ok_or(TRUNCATED)?;
    }
    for field in [FNAME, FCOMMENT] {
        if flags & field != 0 {
            let end = rest.iter().position(|&b| b == 0).ok_or(TRUNCATED)?;
            rest = &rest[end + 1..];
        }
    }
    if flags & FHCRC != 0 {
        let covered = &member[..member.len() - rest.len()];
        let (crc16, after) = rest.split_first_chunk::<2>().ok_or(TRUNCATED)?;
        if u16::from_le_bytes(*crc16) != crc32(covered) as u16 {
            return Err(Error::Corrupt("header CRC mismatch"));
        }
        rest = after;
    }
    Ok(rest)
}

/// Inflates one member's DEFLATE data from `body` into `out[*len..]`, growing
/// `out` up to `cap` bytes, and returns the input after the DEFLATE data.
/// Back-references may not reach before this member's first byte.
fn inflate_member<'a>(
    inflater: &mut DecompressorOxide,
    mut body: &'a [u8],
    out: &mut Vec<u8>,
    len: &mut usize,
    cap: usize,
) -> Result<&'a [u8], Error> {
    let start = *len;
    loop {
        let (status, read, written) = inflate(
            inflater,
            body,
            &mut out[start..],
            *len - start,
            TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF,
        );
        *len += written;
        body = &body[read..];
        match status {
            TINFLStatus::Done => return Ok(body),
            TINFLStatus::HasMoreOutput => {
                if out.len() >= cap {
                    return Err(Error::TooLarge);
                }
                let grown = out.len().saturating_mul(2).max(MIN_GROWTH).min(cap);
                out.resize(grown, 0);
            }
            TINFLStatus::FailedCannotMakeProgress | TINFLStatus::NeedsMoreInput => {
                return Err(Error::Corrupt("truncated deflate data"));
            }
            _ => return Err(Error::Corrupt("invalid deflate data")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `gzip.compress(b"hello", mtime=0)` from Python 3.11: level 9, so XFL 2,
    /// and OS 3 (Unix).
    const PYTHON_HELLO: &[u8] = &[
        0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03, 0xcb, 0x48, 0xcd, 0xc9, 0xc9,
        0x07, 0x00, 0x86, 0xa6, 0x10, 0x36, 0x05, 0x00, 0x00, 0x00,
    ];

    /// `gzip -c hello.txt` (GNU gzip 1.12) of a file holding "hello", MTIME
    /// 1700000000: FNAME "hello.txt".
    const GZIP_CLI_HELLO: &[u8] = &[
        0x1f, 0x8b, 0x08, 0x08, 0x00, 0xf1, 0x53, 0x65, 0x00, 0x03, 0x68, 0x65, 0x6c, 0x6c, 0x6f,
        0x2e, 0x74, 0x78, 0x74, 0x00, 0xcb, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x86, 0xa6, 0x10,
        0x36, 0x05, 0x00, 0x00, 0x00,
    ];

    /// "hello, header fields" in a member built by hand in Python with every
    /// optional field: FEXTRA (subfield "AP", 3 bytes "abc"), FNAME "name.bin",
    /// FCOMMENT "a comment", FHCRC from `zlib.crc32`; zlib's own gzip reader
    /// (`zlib.decompress(m, 31)`, which checks FHCRC) accepts it.
    const PYTHON_ALL_FIELDS: &[u8] = &[
        0x1f, 0x8b, 0x08, 0x1e, 0x00, 0x10, 0x5e, 0x5f, 0x00, 0x03, 0x07, 0x00, 0x41, 0x50, 0x03,
        0x00, 0x61, 0x62, 0x63, 0x6e, 0x61, 0x6d, 0x65, 0x2e, 0x62, 0x69, 0x6e, 0x00, 0x61, 0x20,
        0x63, 0x6f, 0x6d, 0x6d, 0x65, 0x6e, 0x74, 0x00, 0xf8, 0x3b, 0xcb, 0x48, 0xcd, 0xc9, 0xc9,
        0xd7, 0x51, 0xc8, 0x48, 0x4d, 0x4c, 0x49, 0x2d, 0x52, 0x48, 0xcb, 0x4c, 0xcd, 0x49, 0x29,
        0x06, 0x00, 0xd6, 0xf7, 0x70, 0x17, 0x14, 0x00, 0x00, 0x00,
    ];

    /// Where the FHCRC bytes sit in [`PYTHON_ALL_FIELDS`].
    const PYTHON_ALL_FIELDS_FHCRC: usize = 38;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut out = BytesMut::new();
        compress(data, &mut out).unwrap();
        out.to_vec()
    }

    /// A member of `data` with the given flag bits and optional fields (already
    /// encoded, in header order); FHCRC is computed when `flags` asks for it.
    fn member(data: &[u8], flags: u8, fields: &[u8]) -> Vec<u8> {
        let plain = gzip(data);
        let mut out = vec![ID1, ID2, CM_DEFLATE, flags, 1, 2, 3, 4, 0, 3];
        out.extend_from_slice(fields);
        if flags & FHCRC != 0 {
            let crc16 = crc32(&out) as u16;
            out.extend_from_slice(&crc16.to_le_bytes());
        }
        out.extend_from_slice(&plain[HEADER.len()..]);
        out
    }

    /// `len` bytes that deflate cannot shrink (xorshift).
    fn noise(len: usize) -> Vec<u8> {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect()
    }

    /// `len` bytes that look like a batch of protobuf records: repetitive,
    /// but not a single run.
    fn records(len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len);
        let mut i = 0u32;
        while out.len() < len {
            out.extend_from_slice(
                format!("\n\x07order-{i}\x12\x0bSeattle, WA\x18{}", i % 97).as_bytes(),
            );
            i += 1;
        }
        out.truncate(len);
        out
    }

    #[test]
    fn round_trip_many_sizes() {
        let inputs: &[(&str, Vec<u8>)] = &[
            ("empty", Vec::new()),
            ("one byte", b"x".to_vec()),
            ("1000 bytes of records", records(1000)),
            ("1 MiB of noise", noise(1 << 20)),
            ("1 MiB of records", records(1 << 20)),
            ("1 MiB of zeros", vec![0; 1 << 20]),
        ];
        for (what, data) in inputs {
            let mut out = BytesMut::from(&b"kept|"[..]);
            compress(data, &mut out).unwrap();
            assert_eq!(&out[..5], b"kept|", "{what}: appends after existing bytes");
            let encoded = &out[5..];
            assert_eq!(encoded[..10], HEADER, "{what}");
            let trailer = &encoded[encoded.len() - TRAILER_LEN..];
            assert_eq!(trailer[..4], crc32(data).to_le_bytes(), "{what}");
            assert_eq!(trailer[4..], (data.len() as u32).to_le_bytes(), "{what}");
            // Stored blocks bound the growth of data that does not compress.
            assert!(
                encoded.len() <= data.len() + data.len() / 1000 + 32,
                "{what}"
            );
            let back = decompress(encoded, data.len()).unwrap();
            assert!(back == *data, "{what}");
        }
        assert!(
            gzip(&records(1 << 20)).len() < (1 << 20) / 4,
            "records compress"
        );
    }

    #[test]
    fn an_honest_member_is_inflated_into_one_exact_buffer() {
        for data in [records(1 << 20), noise(100_000), b"hello".to_vec()] {
            let back = decompress(&gzip(&data), 4 << 20).unwrap();
            assert_eq!(back.len(), data.len());
            assert_eq!(back.capacity(), data.len(), "no regrowth, no slack");
        }
    }

    #[test]
    fn decodes_what_other_implementations_write() {
        assert_eq!(decompress(PYTHON_HELLO, 1024).unwrap(), b"hello");
        assert_eq!(decompress(GZIP_CLI_HELLO, 1024).unwrap(), b"hello");
        assert_eq!(
            decompress(PYTHON_ALL_FIELDS, 1024).unwrap(),
            b"hello, header fields"
        );
    }

    #[test]
    fn skips_every_optional_header_field() {
        let rows: &[(&str, u8, &[u8])] = &[
            ("FTEXT is only a hint", 1, b""),
            ("FEXTRA", FEXTRA, b"\x06\x00AP\x02\x00hi"),
            ("FEXTRA, empty", FEXTRA, b"\x00\x00"),
            ("FNAME", FNAME, b"message.bin\0"),
            ("FNAME, empty", FNAME, b"\0"),
            ("FCOMMENT", FCOMMENT, b"sent by a test\0"),
            ("FHCRC", FHCRC, b""),
            (
                "all of them, in order",
                FEXTRA | FNAME | FCOMMENT | FHCRC,
                b"\x01\x00\xffname\0comment\0",
            ),
        ];
        for (what, flags, fields) in rows {
            let input = member(b"payload", *flags, fields);
            assert_eq!(decompress(&input, 1024).unwrap(), b"payload", "{what}");
        }
    }

    #[test]
    fn concatenated_members_are_one_message() {
        // §2.2: "A gzip file consists of a series of members".
        let mut input = PYTHON_HELLO.to_vec();
        input.extend(gzip(b""));
        input.extend(member(b", ", FNAME, b"second\0"));
        input.extend(gzip(&records(5000)));
        let mut expected = b"hello, ".to_vec();
        expected.extend(records(5000));
        assert_eq!(decompress(&input, expected.len()).unwrap(), expected);
    }

    #[test]
    fn a_member_cannot_refer_back_into_the_one_before() {
        // Fixed-Huffman blocks (BFINAL 1, BTYPE 01) written out by hand: the
        // literal 'o' (10011111), a match of length 3 (code 257, 0000001) at
        // distance 1 (code 0, 00000), end of block (0000000).
        let with_literal = [0xcb, 0x07, 0x02, 0x00];
        // The same match with no literal before it: valid only with earlier
        // output to copy from.
        let match_only = [0x03, 0x02, 0x00];
        let member_of = |body: &[u8], data: &[u8]| {
            let mut out = HEADER.to_vec();
            out.extend_from_slice(body);
            out.extend_from_slice(&crc32(data).to_le_bytes());
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out
        };
        // The match itself is well formed: after a literal it copies.
        let alone = member_of(&with_literal, b"oooo");
        assert_eq!(decompress(&alone, 1024).unwrap(), b"oooo");
        // After another member it still has nothing to copy from.
        let mut input = PYTHON_HELLO.to_vec();
        input.extend(member_of(&match_only, b"ooo"));
        assert_eq!(
            decompress(&input, 1024),
            Err(Error::Corrupt("invalid deflate data"))
        );
    }

    #[test]
    fn rejects_corrupt_input() {
        let good = gzip(b"payload");
        let with = |at: usize, byte: u8| {
            let mut input = good.clone();
            input[at] = byte;
            input
        };
        let flip = |at: usize| with(at, good[at] ^ 0xff);
        let end = good.len();
        let mut bad_fhcrc = PYTHON_ALL_FIELDS.to_vec();
        bad_fhcrc[PYTHON_ALL_FIELDS_FHCRC] ^= 1;
        let mut extra_too_long = member(b"payload", FEXTRA, b"\x00\x00");
        extra_too_long[10..12].copy_from_slice(&[0xff, 0xff]);
        let mut invalid_block = HEADER.to_vec();
        // BFINAL 1, BTYPE 11: the reserved block type (RFC 1951 §3.2.3).
        invalid_block.extend_from_slice(&[0x07, 0, 0, 0, 0, 0, 0, 0, 0]);
        let mut trailing = good.clone();
        trailing.extend_from_slice(b"garbage!");
        let mut padded = good.clone();
        padded.push(0);
        let mut second_cut = good.clone();
        second_cut.extend_from_slice(&good[..end - 1]);

        let rows: Vec<(&str, Vec<u8>, &str)> = vec![
            ("empty input", vec![], "empty input"),
            ("header cut short", good[..9].to_vec(), "truncated header"),
            ("wrong ID1", with(0, 0x1e), "not a gzip member (bad magic)"),
            ("wrong ID2", with(1, 0x8c), "not a gzip member (bad magic)"),
            (
                "not gzip at all",
                b"plain text, not gzip".to_vec(),
                "not a gzip member (bad magic)",
            ),
            (
                "CM 7 is reserved",
                with(2, 7),
                "compression method is not deflate",
            ),
            (
                "CM 0 is reserved",
                with(2, 0),
                "compression method is not deflate",
            ),
            (
                "reserved FLG bit 5",
                with(3, 0x20),
                "reserved header flag set",
            ),
            (
                "reserved FLG bit 6",
                with(3, 0x40),
                "reserved header flag set",
            ),
            (
                "reserved FLG bit 7",
                with(3, 0x80),
                "reserved header flag set",
            ),
            (
                "FNAME without its zero",
                member(b"", FNAME, b"")[..10].to_vec(),
                "truncated header",
            ),
            (
                "FEXTRA longer than the input",
                extra_too_long,
                "truncated header",
            ),
            ("FHCRC mismatch", bad_fhcrc, "header CRC mismatch"),
            ("reserved block type", invalid_block, "invalid deflate data"),
            (
                "body cut short",
                good[..12].to_vec(),
                "truncated deflate data",
            ),
            (
                "trailer cut short",
                good[..end - 1].to_vec(),
                "truncated trailer",
            ),
            ("CRC32 byte 0 wrong", flip(end - 8), "CRC-32 mismatch"),
            ("CRC32 byte 3 wrong", flip(end - 5), "CRC-32 mismatch"),
            ("ISIZE byte 0 wrong", flip(end - 4), "ISIZE mismatch"),
            ("ISIZE byte 3 wrong", flip(end - 1), "ISIZE mismatch"),
            (
                "bytes after the last member",
                trailing,
                "not a gzip member (bad magic)",
            ),
            (
                "one zero byte of padding",
                padded,
                "not a gzip member (bad magic)",
            ),
            ("second member cut short", second_cut, "truncated trailer"),
        ];
        for (what, input, reason) in rows {
            assert_eq!(
                decompress(&input, 1024),
                Err(Error::Corrupt(reason)),
                "{what}"
            );
        }
    }

    #[test]
    fn every_truncation_is_an_error() {
        let mut two = PYTHON_ALL_FIELDS.to_vec();
        two.extend(gzip(&records(3000)));
        let rows: &[(&[u8], &[usize])] = &[
            (PYTHON_ALL_FIELDS, &[]),
            (GZIP_CLI_HELLO, &[]),
            // Cut exactly after the first member, what is left is valid.
            (&two, &[PYTHON_ALL_FIELDS.len()]),
        ];
        for (input, boundaries) in rows {
            for cut in (0..input.len()).filter(|cut| !boundaries.contains(cut)) {
                let result = decompress(&input[..cut], 1 << 20);
                assert!(
                    matches!(result, Err(Error::Corrupt(_))),
                    "cut at {cut} of {}: {result:?}",
                    input.len()
                );
            }
        }
    }

    #[test]
    fn the_limit_is_exact() {
        let inputs = [
            vec![7; 100],
            records(5000),
            // Two stored blocks (deflate's are at most 65535 bytes).
            noise(70_000),
        ];
        for data in inputs {
            let encoded = gzip(&data);
            let n = data.len();
            assert_eq!(decompress(&encoded, n).unwrap(), data, "{n} at limit {n}");
            assert_eq!(decompress(&encoded, n - 1), Err(Error::TooLarge), "{n}");
            assert_eq!(decompress(&encoded, 0), Err(Error::TooLarge), "{n}");
        }
        assert_eq!(decompress(&gzip(b""), 0).unwrap(), b"");
    }

    #[test]
    fn the_limit_counts_every_member() {
        let mut input = gzip(&[1; 600]);
        input.extend(gzip(&[2; 600]));
        assert_eq!(decompress(&input, 1200).unwrap().len(), 1200);
        assert_eq!(decompress(&input, 1199), Err(Error::TooLarge));
        assert_eq!(decompress(&input, 1000), Err(Error::TooLarge));
    }

    #[test]
    fn a_bomb_stops_at_the_limit_mid_inflate() {
        // 16 MiB of zeros deflate to about 16 KiB; the limit is 1 MiB.
        let limit = 1 << 20;
        let bomb = gzip(&vec![0; 16 * limit]);
        assert!(bomb.len() < 64 * 1024, "bomb is {} bytes", bomb.len());
        assert_eq!(decompress(&bomb, limit), Err(Error::TooLarge));

        // Inflating stops with limit + 1 bytes held, ISIZE claim or not.
        let mut lying = bomb.clone();
        let at = lying.len() - 4;
        lying[at..].copy_from_slice(&0u32.to_le_bytes());
        for input in [&bomb, &lying] {
            let body = skip_header(input).unwrap();
            let mut out = vec![0; first_size(input, limit + 1)];
            let mut len = 0;
            let mut inflater = Box::<DecompressorOxide>::default();
            let result = inflate_member(&mut inflater, body, &mut out, &mut len, limit + 1);
            assert_eq!(result, Err(Error::TooLarge));
            assert_eq!(out.len(), limit + 1, "the buffer never outgrows the cap");
            assert_eq!(len, limit + 1, "inflated exactly one byte too many");
        }
        assert_eq!(decompress(&lying, limit), Err(Error::TooLarge));
    }

    #[test]
    fn a_claimed_size_cannot_force_a_large_allocation() {
        // 25 bytes claiming 4 GiB, with no receive limit: the first buffer is
        // bounded by what 25 bytes can inflate to, and the lie is caught.
        let mut lying = PYTHON_HELLO.to_vec();
        let at = lying.len() - 4;
        lying[at..].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(first_size(&lying, usize::MAX), 25 * MAX_RATIO);
        assert_eq!(
            decompress(&lying, usize::MAX),
            Err(Error::Corrupt("ISIZE mismatch"))
        );
    }
}
