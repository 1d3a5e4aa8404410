//! CRC-32 of the gzip trailer and of the optional header CRC (RFC 1952 §8, the
//! same CRC as ISO 3309, ITU-T V.42, Ethernet and PNG).
//!
//! ```text
//!   polynomial  x^32 + x^26 + x^23 + x^22 + x^16 + x^12 + x^11 + x^10 + x^8
//!               + x^7 + x^5 + x^4 + x^2 + x + 1
//!   reflected   bits enter least significant first, so the polynomial is
//!               written bit-reversed: 0xEDB88320
//!   register    starts at 0xFFFFFFFF, is inverted at the end
//!   check       crc32(b"123456789") = 0xCBF43926
//!
//!   one byte:   crc = T[0][(crc ^ byte) & 0xFF] ^ (crc >> 8)
//!   8 bytes:    crc ^= first 4 bytes (little endian); then one lookup per byte
//!               in T[7] .. T[0], xored together ("slicing-by-8")
//! ```
//!
//! Why hand-written, and why this shape: RFC 1952 §8 gives the whole algorithm
//! in twenty lines of C, and a crate for it (crc32fast) brought a second one
//! (cfg-if). The tables are built at compile time, so they cost no start-up
//! work, no `unsafe` and no lazy initialisation. Eight tables (8 KiB), not one:
//! a byte at a time the CRC took most of the time to inflate a large message,
//! more than flate2's whole inflate; eight independent lookups per 8 bytes
//! bring it to a fraction of that (the figures are in
//! docs/performance.md § Measurements behind the code's choices). `T[k][n]` is the remainder of byte `n` followed by
//! `k` zero bytes, which is what lets the eight bytes be looked up at once.
//!
//! Spec: <https://www.rfc-editor.org/rfc/rfc1952#section-8>

/// The CRC-32 polynomial, bit-reversed (RFC 1952 §8: `0xedb88320L`).
const POLY: u32 = 0xEDB8_8320;

/// `TABLES[0][n]` is the CRC remainder of the byte `n`: eight shift-and-xor
/// steps done once, at compile time (RFC 1952 §8, `make_crc_table`).
/// `TABLES[k][n]` is the remainder of `n` followed by `k` zero bytes.
const TABLES: [[u32; 256]; 8] = {
    let mut tables = [[0; 256]; 8];
    let mut n = 0;
    while n < 256 {
        let mut c = n as u32;
        let mut bit = 0;
        while bit < 8 {
            c = if c & 1 == 1 { POLY ^ (c >> 1) } else { c >> 1 };
            bit += 1;
        }
        tables[0][n] = c;
        n += 1;
    }
    let mut k = 1;
    while k < 8 {
        let mut n = 0;
        while n < 256 {
            let prev = tables[k - 1][n];
            tables[k][n] = tables[0][(prev & 0xFF) as usize] ^ (prev >> 8);
            n += 1;
        }
        k += 1;
    }
    tables
};

/// The CRC-32 of `data` (RFC 1952 §8, `crc(buf, len)`), eight bytes per step.
pub(crate) fn crc32(data: &[u8]) -> u32 {
    let t = &TABLES;
    let mut crc = !0u32;
    let mut chunks = data.chunks_exact(8);
    for chunk in &mut chunks {
        let lo = crc ^ u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        let hi = u32::from_le_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]);
        crc = t[7][(lo & 0xFF) as usize]
            ^ t[6][((lo >> 8) & 0xFF) as usize]
            ^ t[5][((lo >> 16) & 0xFF) as usize]
            ^ t[4][(lo >> 24) as usize]
            ^ t[3][(hi & 0xFF) as usize]
            ^ t[2][((hi >> 8) & 0xFF) as usize]
            ^ t[1][((hi >> 16) & 0xFF) as usize]
            ^ t[0][(hi >> 24) as usize];
    }
    for &byte in chunks.remainder() {
        crc = t[0][usize::from(crc as u8 ^ byte)] ^ (crc >> 8);
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition, one bit at a time: what the table must reproduce.
    fn bitwise(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &byte in data {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    POLY ^ (crc >> 1)
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[test]
    fn known_vectors() {
        let rows: &[(&[u8], u32)] = &[
            // The standard check value of CRC-32/ISO-HDLC.
            (b"123456789", 0xCBF4_3926),
            // Nothing in, nothing changed: the two inversions cancel.
            (b"", 0),
            (b"a", 0xE8B7_BE43),
            (b"hello", 0x3610_A686),
            (b"The quick brown fox jumps over the lazy dog", 0x414F_A339),
        ];
        for (data, expected) in rows {
            assert_eq!(crc32(data), *expected, "{}", String::from_utf8_lossy(data));
        }
    }

    #[test]
    fn table_matches_rfc_1952() {
        // First and last entries of the table printed in zlib's crc32.h.
        assert_eq!(TABLES[0][0], 0);
        assert_eq!(TABLES[0][1], 0x7707_3096);
        assert_eq!(TABLES[0][128], 0xEDB8_8320);
        assert_eq!(TABLES[0][255], 0x2D02_EF8D);
    }

    #[test]
    fn table_matches_the_bitwise_definition() {
        let data: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        // Every length from 0 to 40 (each remainder after the 8-byte steps, at several
        // alignments), then longer runs.
        for len in (0..=40).chain([255, 256, 1000, 4095, 4096]) {
            assert_eq!(crc32(&data[..len]), bitwise(&data[..len]), "len {len}");
        }
    }
}
