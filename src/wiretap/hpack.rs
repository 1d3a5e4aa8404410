//! HPACK, the header compression of HTTP/2 (RFC 7541), decoding side only: what the wiretap
//! needs to turn a HEADERS frame's block back into `name: value` lines.
//!
//! ```text
//!   first byte of a field representation (RFC 7541 §6)
//!   1xxxxxxx  indexed field            index (7-bit prefix)        §6.1
//!   01xxxxxx  literal, add to table    name index (6-bit) | name   §6.2.1
//!   0000xxxx  literal, not added       name index (4-bit) | name   §6.2.2
//!   0001xxxx  literal, never indexed   name index (4-bit) | name   §6.2.3
//!   001xxxxx  dynamic table size update  max size (5-bit)          §6.3
//!
//!   index space (§2.3.3):  1 ..= 61        the static table (Appendix A)
//!                          62 ..           the dynamic table, newest entry first
//! ```
//!
//! Each direction of a connection has its own decoder: the dynamic table is the memory shared
//! by one encoder and one decoder (§2.2), so the wiretap keeps two, one per direction, and
//! must see every header block of the connection in order. An entry's size is its name and
//! value lengths plus 32 (§4.1); adding an entry evicts the oldest until the table fits its
//! maximum (§4.4); a size update may only lower it to at most the SETTINGS value (§4.2).
//!
//! Why our own decoder rather than a crate: `h2` has one, but it is private to h2; the
//! stand-alone `hpack` crate has been unmaintained since 2016; newer ones pull in encoders,
//! allocators and features an inspector does not need. The decoder is about 200 lines, has
//! no dependency, and reads beside the RFC (tested on Appendix C's examples below).
//!
//! What it rejects (each error ends the decoding of the block; the wiretap then prints the
//! block raw and, because the dynamic table can no longer be trusted, every later block of
//! that direction raw too): an index of 0 or past the table, an integer over 2^32, a string
//! running past the block, a bad Huffman string, a size update above the limit.
//!
//! [RFC 7541]: https://www.rfc-editor.org/rfc/rfc7541

use std::collections::VecDeque;

use super::huffman;

/// RFC 7541 Appendix A: the static table, index 1 to 61.
const STATIC_TABLE: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

/// The size of a table entry: its octets plus 32 for the bookkeeping (§4.1).
const ENTRY_OVERHEAD: usize = 32;

/// SETTINGS_HEADER_TABLE_SIZE's initial value (RFC 9113 §6.5.2).
pub const DEFAULT_TABLE_SIZE: usize = 4096;

/// One decoded header field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    /// The name, lower case on HTTP/2.
    pub name: Vec<u8>,
    /// The value, raw octets.
    pub value: Vec<u8>,
}

/// One direction's decoder: the dynamic table and its limits.
#[derive(Debug)]
pub struct Decoder {
    /// Newest entry first, so index 62 is `table[0]`.
    table: VecDeque<Field>,
    /// The sum of the entries' sizes (§4.1).
    size: usize,
    /// The current maximum, lowered or raised by a size update (§6.3).
    max_size: usize,
    /// The most a size update may ask for: the decoder's SETTINGS_HEADER_TABLE_SIZE (§4.2).
    limit: usize,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder {
            table: VecDeque::new(),
            size: 0,
            max_size: DEFAULT_TABLE_SIZE,
            limit: DEFAULT_TABLE_SIZE,
        }
    }
}

impl Decoder {
    /// Follows the peer's SETTINGS_HEADER_TABLE_SIZE: the bound on later size updates.
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit;
    }

    /// The entries of the dynamic table, newest first, with the table's size.
    #[cfg(test)]
    fn entries(&self) -> (Vec<&Field>, usize) {
        (self.table.iter().collect(), self.size)
    }

    /// Decodes one complete header block (HEADERS plus any CONTINUATION fragments).
    pub fn decode(&mut self, mut block: &[u8]) -> Result<Vec<Field>, String> {
        let mut fields = Vec::new();
        while let Some(&first) = block.first() {
            if first & 0x80 != 0 {
                // §6.1 Indexed Header Field.
                let index = integer(&mut block, 7)?;
                fields.push(self.get(index)?);
            } else if first & 0x40 != 0 {
                // §6.2.1 Literal with Incremental Indexing: decoded, then added to the table.
                let field = self.literal(&mut block, 6)?;
                self.insert(field.clone());
                fields.push(field);
            } else if first & 0x20 != 0 {
                // §6.3 Dynamic Table Size Update.
                let size = integer(&mut block, 5)?;
                if size > self.limit {
                    return Err(format!(
                        "table size update to {size} exceeds the limit {}",
                        self.limit
                    ));
                }
                self.max_size = size;
                self.evict();
            } else {
                // §6.2.2 without indexing (0000) and §6.2.3 never indexed (0001): same layout.
                fields.push(self.literal(&mut block, 4)?);
            }
        }
        Ok(fields)
    }

    /// A field by its index in the combined space (§2.3.3).
    fn get(&self, index: usize) -> Result<Field, String> {
        let field = match index {
            0 => return Err("index 0".into()),
            1..=61 => {
                let (name, value) = STATIC_TABLE[index - 1];
                Field {
                    name: name.as_bytes().to_vec(),
                    value: value.as_bytes().to_vec(),
                }
            }
            _ => self
                .table
                .get(index - 62)
                .cloned()
                .ok_or_else(|| format!("index {index} is past the dynamic table"))?,
        };
        Ok(field)
    }

    /// A literal field whose name is an index (`prefix` bits) or, when that index is 0, a
    /// string; then the value string (§6.2).
    fn literal(&self, block: &mut &[u8], prefix: u8) -> Result<Field, String> {
        let index = integer(block, prefix)?;
        let name = if index == 0 {
            string(block)?
        } else {
            self.get(index)?.name
        };
        let value = string(block)?;
        Ok(Field { name, value })
    }

    /// Adds an entry at the front, evicting from the back (§4.4). An entry larger than the
    /// whole table empties it and is not added.
    fn insert(&mut self, field: Field) {
        let size = field.name.len() + field.value.len() + ENTRY_OVERHEAD;
        if size > self.max_size {
            self.table.clear();
            self.size = 0;
            return;
        }
        self.size += size;
        self.table.push_front(field);
        self.evict();
    }

    fn evict(&mut self) {
        while self.size > self.max_size {
            let Some(old) = self.table.pop_back() else {
                break;
            };
            self.size -= old.name.len() + old.value.len() + ENTRY_OVERHEAD;
        }
    }
}

/// A prefixed integer (§5.1): the low `prefix` bits of the first byte, and when they are all
/// ones, continuation bytes of 7 bits each, least significant first.
fn integer(block: &mut &[u8], prefix: u8) -> Result<usize, String> {
    let (&first, rest) = block.split_first().ok_or("integer past the block")?;
    *block = rest;
    let max = (1usize << prefix) - 1;
    let mut value = usize::from(first) & max;
    if value < max {
        return Ok(value);
    }
    let mut shift = 0;
    loop {
        let (&byte, rest) = block.split_first().ok_or("integer past the block")?;
        *block = rest;
        value += usize::from(byte & 0x7f) << shift;
        if value > u32::MAX as usize {
            return Err("integer over 2^32".into());
        }
        if byte & 0x80 == 0 {
            return Ok(value);
        }
        shift += 7;
    }
}

/// A string literal (§5.2): the Huffman bit, a 7-bit-prefix length, the octets.
fn string(block: &mut &[u8]) -> Result<Vec<u8>, String> {
    let huffman_coded = block.first().is_some_and(|b| b & 0x80 != 0);
    let len = integer(block, 7)?;
    if len > block.len() {
        return Err(format!(
            "string of {len} octets, {} left in the block",
            block.len()
        ));
    }
    let (octets, rest) = block.split_at(len);
    *block = rest;
    if huffman_coded {
        huffman::decode(octets).map_err(str::to_owned)
    } else {
        Ok(octets.to_vec())
    }
}

#[cfg(test)]
mod tests {
    //! RFC 7541 Appendix C: each example's bytes, the fields they decode to, and the dynamic
    //! table after each block.
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
        digits
            .chunks(2)
            .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
            .collect()
    }

    fn pairs(fields: &[Field]) -> Vec<(String, String)> {
        fields
            .iter()
            .map(|f| {
                (
                    String::from_utf8(f.name.clone()).unwrap(),
                    String::from_utf8(f.value.clone()).unwrap(),
                )
            })
            .collect()
    }

    fn owned(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    fn table(decoder: &Decoder) -> (Vec<(String, String)>, usize) {
        let (entries, size) = decoder.entries();
        let entries = entries
            .into_iter()
            .map(|f| {
                (
                    String::from_utf8(f.name.clone()).unwrap(),
                    String::from_utf8(f.value.clone()).unwrap(),
                )
            })
            .collect();
        (entries, size)
    }

    /// C.1: integers 10 (5-bit prefix), 1337 (5-bit prefix), 42 (8-bit prefix).
    #[test]
    fn c1_integers() {
        assert_eq!(integer(&mut &[0b0000_1010][..], 5).unwrap(), 10);
        assert_eq!(
            integer(&mut &[0b0001_1111, 0b1001_1010, 0b0000_1010][..], 5).unwrap(),
            1337
        );
        assert_eq!(integer(&mut &[42][..], 8 - 1).unwrap(), 42);
    }

    /// C.2.1 literal with indexing; C.2.2 without; C.2.3 never indexed; C.2.4 indexed.
    #[test]
    fn c2_single_fields() {
        let mut d = Decoder::default();
        let f = d
            .decode(&hex(
                "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572",
            ))
            .unwrap();
        assert_eq!(pairs(&f), owned(&[("custom-key", "custom-header")]));
        assert_eq!(table(&d), (owned(&[("custom-key", "custom-header")]), 55));

        let mut d = Decoder::default();
        let f = d
            .decode(&hex("040c 2f73 616d 706c 652f 7061 7468"))
            .unwrap();
        assert_eq!(pairs(&f), owned(&[(":path", "/sample/path")]));
        assert_eq!(table(&d).1, 0);

        let mut d = Decoder::default();
        let f = d
            .decode(&hex("1008 7061 7373 776f 7264 0673 6563 7265 74"))
            .unwrap();
        assert_eq!(pairs(&f), owned(&[("password", "secret")]));
        assert_eq!(table(&d).1, 0);

        let mut d = Decoder::default();
        let f = d.decode(&hex("82")).unwrap();
        assert_eq!(pairs(&f), owned(&[(":method", "GET")]));
    }

    const C3_FIRST: &[(&str, &str)] = &[
        (":method", "GET"),
        (":scheme", "http"),
        (":path", "/"),
        (":authority", "www.example.com"),
    ];
    const C3_SECOND: &[(&str, &str)] = &[
        (":method", "GET"),
        (":scheme", "http"),
        (":path", "/"),
        (":authority", "www.example.com"),
        ("cache-control", "no-cache"),
    ];
    const C3_THIRD: &[(&str, &str)] = &[
        (":method", "GET"),
        (":scheme", "https"),
        (":path", "/index.html"),
        (":authority", "www.example.com"),
        ("custom-key", "custom-value"),
    ];

    /// C.3 (plain literals) and C.4 (Huffman): three requests on one connection.
    fn three_requests(blocks: [&str; 3]) {
        let mut d = Decoder::default();
        let f = d.decode(&hex(blocks[0])).unwrap();
        assert_eq!(pairs(&f), owned(C3_FIRST));
        assert_eq!(table(&d), (owned(&[(":authority", "www.example.com")]), 57));
        let f = d.decode(&hex(blocks[1])).unwrap();
        assert_eq!(pairs(&f), owned(C3_SECOND));
        assert_eq!(
            table(&d),
            (
                owned(&[
                    ("cache-control", "no-cache"),
                    (":authority", "www.example.com")
                ]),
                110
            )
        );
        let f = d.decode(&hex(blocks[2])).unwrap();
        assert_eq!(pairs(&f), owned(C3_THIRD));
        assert_eq!(
            table(&d),
            (
                owned(&[
                    ("custom-key", "custom-value"),
                    ("cache-control", "no-cache"),
                    (":authority", "www.example.com")
                ]),
                164
            )
        );
    }

    #[test]
    fn c3_requests_without_huffman() {
        three_requests([
            "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
            "8286 84be 5808 6e6f 2d63 6163 6865",
            "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
        ]);
    }

    #[test]
    fn c4_requests_with_huffman() {
        three_requests([
            "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
            "8286 84be 5886 a8eb 1064 9cbf",
            "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
        ]);
    }

    /// C.5 (plain) and C.6 (Huffman): three responses with a 256-octet table, so entries are
    /// evicted.
    fn three_responses(blocks: [&str; 3]) {
        let mut d = Decoder {
            max_size: 256,
            ..Default::default()
        };
        let f = d.decode(&hex(blocks[0])).unwrap();
        assert_eq!(
            pairs(&f),
            owned(&[
                (":status", "302"),
                ("cache-control", "private"),
                ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
                ("location", "https://www.example.com"),
            ])
        );
        assert_eq!(table(&d).1, 222);
        let f = d.decode(&hex(blocks[1])).unwrap();
        assert_eq!(pairs(&f)[0], (":status".into(), "307".into()));
        assert_eq!(table(&d).1, 222);
        let f = d.decode(&hex(blocks[2])).unwrap();
        assert_eq!(
            pairs(&f),
            owned(&[
                (":status", "200"),
                ("cache-control", "private"),
                ("date", "Mon, 21 Oct 2013 20:13:22 GMT"),
                ("location", "https://www.example.com"),
                ("content-encoding", "gzip"),
                (
                    "set-cookie",
                    "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"
                ),
            ])
        );
        assert_eq!(
            table(&d),
            (
                owned(&[
                    (
                        "set-cookie",
                        "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"
                    ),
                    ("content-encoding", "gzip"),
                    ("date", "Mon, 21 Oct 2013 20:13:22 GMT"),
                ]),
                215
            )
        );
    }

    #[test]
    fn c5_responses_without_huffman() {
        three_responses([
            "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133
             2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70
             6c65 2e63 6f6d",
            "4803 3330 37c1 c0bf",
            "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d
             54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049
             5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e
             3d31",
        ]);
    }

    #[test]
    fn c6_responses_with_huffman() {
        three_responses([
            "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
             2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
            "4883 640e ffc1 c0bf",
            "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
             77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
             9587 3160 65c0 03ed 4ee5 b106 3d50 07",
        ]);
    }

    /// What the decoder refuses instead of guessing.
    #[test]
    fn bad_blocks_are_errors() {
        let mut d = Decoder::default();
        assert!(d.decode(&[0x80]).is_err(), "index 0");
        assert!(d.decode(&[0xbe]).is_err(), "index 62 of an empty table");
        assert!(
            d.decode(&[0x40, 0x05, b'a']).is_err(),
            "string past the block"
        );
        assert!(
            d.decode(&[0x3f, 0xe2, 0x1f]).is_err(),
            "size update to 4097"
        );
        assert!(
            d.decode(&[0x1f, 0xff, 0xff, 0xff, 0xff, 0x7f]).is_err(),
            "huge int"
        );
    }
}
