//! On-disk object record: the header block at the front of every object file.
//!
//! File layout (format version 1):
//! ```text
//! [0 .. header_len)            header block, zero-padded to a multiple of BLOCK_BYTES
//!     magic "RINGOBJ\0" | u32 version | u32 header_len | u32 record_len
//!     | u32 crc32c(version, header_len, record_len, record) | record
//! [header_len .. header_len+size)   object bytes (for an inline object)
//! ```
//! The record holds the key and every piece of metadata, so the file is self-describing: the
//! index is rebuilt from these headers at startup. Invariants: `header_len` is a multiple of
//! [`BLOCK_BYTES`] (data starts aligned for O_DIRECT); a header whose CRC does not match is never
//! trusted; the encoding is versioned so later formats can migrate.

use crate::storage::index::ObjectSummary;

/// Alignment unit of O_DIRECT I/O and of the header block.
pub const BLOCK_BYTES: usize = 4096;
/// Magic bytes at offset 0 of every object file.
pub const MAGIC: &[u8; 8] = b"RINGOBJ\0";
/// Current on-disk format version.
pub(crate) const FORMAT_VERSION: u32 = 1;
/// Bytes before the encoded record inside the header block.
const PREAMBLE_BYTES: usize = 8 + 4 + 4 + 4 + 4;
/// Upper bound of a header block: key 1 KiB + metadata 2 KiB + system headers + a part
/// table of up to [`PARTS_MAX`] entries of [`PART_REF_ENCODED_BYTES`].
pub(crate) const HEADER_MAX_BYTES: usize = 512 * 1024;
/// Encoded size of one part-table entry: number (u32), size (u64), MD5.
pub(crate) const PART_REF_ENCODED_BYTES: usize = 4 + 8 + 16;
/// Most parts a multipart object may have (S3's limit).
pub(crate) const PARTS_MAX: usize = 10_000;

/// An object's checksum (`x-amz-checksum-<algorithm>`), base64 value; in an upload's record
/// the algorithm and type the upload was created with (value empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredChecksum {
    /// Lowercase algorithm name: crc32, crc32c, crc64nvme, sha1, sha256.
    pub algorithm: String,
    pub value_b64: String,
    /// S3's checksum type: `FULL_OBJECT` (the algorithm over the whole body: PutObject, and
    /// multipart uploads created so) when true, `COMPOSITE` (over the parts' checksums; the
    /// value ends in `-N`) when false.
    pub full_object: bool,
}

impl StoredChecksum {
    /// `FULL_OBJECT` or `COMPOSITE`, as the `x-amz-checksum-type` header and the
    /// `ChecksumType` element name it.
    pub fn type_name(&self) -> &'static str {
        match self.full_object {
            true => "FULL_OBJECT",
            false => "COMPOSITE",
        }
    }
}

/// Record tags of the checksum field: none; one whose type follows from its value (written by
/// earlier versions, which knew no types: `-N` composite, empty (an upload's) composite, else
/// full object); one of each type (what this version writes). Earlier versions read every
/// non-zero tag as "a checksum follows", so they still read records written now.
const CHECKSUM_TAG_NONE: u8 = 0;
const CHECKSUM_TAG_DERIVED: u8 = 1;
const CHECKSUM_TAG_FULL_OBJECT: u8 = 2;
const CHECKSUM_TAG_COMPOSITE: u8 = 3;

/// One part of a completed multipart object, stored in its own file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartRef {
    pub number: u32,
    pub size: u64,
    pub md5: [u8; 16],
}

/// Where a multipart object's bytes live: the part files of its (completed) upload, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartsLayout {
    pub upload_id: String,
    pub parts: Vec<PartRef>,
}

/// Everything ringstore knows about one stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRecord {
    pub key: String,
    pub size: u64,
    /// MD5 of the body (single PUT).
    pub md5: [u8; 16],
    pub last_modified_ms: u64,
    /// Stored system headers (lowercase name, value): content-type, content-encoding,
    /// cache-control, content-disposition, content-language, expires.
    pub system_headers: Vec<(String, String)>,
    /// User metadata (lowercase name without the `x-amz-meta-` prefix, value).
    pub user_metadata: Vec<(String, String)>,
    pub checksum: Option<StoredChecksum>,
    /// `None`: the bytes follow the header in this file. `Some`: they are in part files.
    pub parts: Option<PartsLayout>,
}

impl ObjectRecord {
    /// An empty record for `key` (metadata filled in by the caller).
    pub(crate) fn new(key: &str) -> ObjectRecord {
        ObjectRecord {
            key: key.to_string(),
            size: 0,
            md5: [0; 16],
            last_modified_ms: 0,
            system_headers: Vec::new(),
            user_metadata: Vec::new(),
            checksum: None,
            parts: None,
        }
    }

    /// ETag without quotes: hex MD5, or for multipart objects hex MD5-of-part-MD5s + `-N`.
    pub(crate) fn etag(&self) -> String {
        match &self.parts {
            None => hex::encode(self.md5),
            Some(p) => format!("{}-{}", hex::encode(self.md5), p.parts.len()),
        }
    }

    pub(crate) fn summary(&self) -> ObjectSummary {
        ObjectSummary {
            size: self.size,
            etag: self.etag(),
            last_modified_ms: self.last_modified_ms,
        }
    }

    pub(crate) fn system_header(&self, name: &str) -> Option<&str> {
        self.system_headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Size of the header block this record needs, rounded up to [`BLOCK_BYTES`].
    pub fn header_len(&self) -> usize {
        round_up(PREAMBLE_BYTES + self.encoded_len(), BLOCK_BYTES)
    }

    fn encoded_len(&self) -> usize {
        let pairs =
            |v: &Vec<(String, String)>| v.iter().map(|(a, b)| 8 + a.len() + b.len()).sum::<usize>();
        4 + self.key.len()
            + 8
            + 16
            + 8
            + 4
            + pairs(&self.system_headers)
            + 4
            + pairs(&self.user_metadata)
            + 1
            + self
                .checksum
                .as_ref()
                .map_or(0, |c| 8 + c.algorithm.len() + c.value_b64.len())
            + 1
            + self.parts.as_ref().map_or(0, |p| {
                4 + p.upload_id.len() + 4 + p.parts.len() * PART_REF_ENCODED_BYTES
            })
    }

    /// The record's compact encoding (what the header block and log records carry).
    pub(crate) fn encode_compact(&self) -> Vec<u8> {
        let mut rec = Vec::with_capacity(self.encoded_len());
        put_str(&mut rec, &self.key);
        rec.extend_from_slice(&self.size.to_le_bytes());
        rec.extend_from_slice(&self.md5);
        rec.extend_from_slice(&self.last_modified_ms.to_le_bytes());
        put_pairs(&mut rec, &self.system_headers);
        put_pairs(&mut rec, &self.user_metadata);
        match &self.checksum {
            None => rec.push(CHECKSUM_TAG_NONE),
            Some(c) => {
                rec.push(match c.full_object {
                    true => CHECKSUM_TAG_FULL_OBJECT,
                    false => CHECKSUM_TAG_COMPOSITE,
                });
                put_str(&mut rec, &c.algorithm);
                put_str(&mut rec, &c.value_b64);
            }
        }
        match &self.parts {
            None => rec.push(0),
            Some(p) => {
                rec.push(1);
                put_str(&mut rec, &p.upload_id);
                rec.extend_from_slice(&(p.parts.len() as u32).to_le_bytes());
                for part in &p.parts {
                    rec.extend_from_slice(&part.number.to_le_bytes());
                    rec.extend_from_slice(&part.size.to_le_bytes());
                    rec.extend_from_slice(&part.md5);
                }
            }
        }
        debug_assert_eq!(rec.len(), self.encoded_len());
        rec
    }

    /// Writes the header block (exactly `header_len` bytes, zero padded) into `out`.
    pub fn encode_header(&self, header_len: usize, out: &mut [u8]) {
        assert!(header_len.is_multiple_of(BLOCK_BYTES) && header_len >= self.header_len());
        assert!(out.len() >= header_len);
        let rec = self.encode_compact();
        let out = &mut out[..header_len];
        out.fill(0);
        out[0..8].copy_from_slice(MAGIC);
        out[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        out[12..16].copy_from_slice(&(header_len as u32).to_le_bytes());
        out[16..20].copy_from_slice(&(rec.len() as u32).to_le_bytes());
        let crc = header_crc(&out[8..20], &rec);
        out[20..24].copy_from_slice(&crc.to_le_bytes());
        out[PREAMBLE_BYTES..PREAMBLE_BYTES + rec.len()].copy_from_slice(&rec);
    }

    /// Reads the header length from the first bytes of a file (needs [`PREAMBLE_BYTES`]).
    pub fn peek_header_len(first: &[u8]) -> Result<usize, String> {
        if first.len() < PREAMBLE_BYTES || &first[0..8] != MAGIC {
            return Err("not a ringstore object file (bad magic)".into());
        }
        let version = u32::from_le_bytes(first[8..12].try_into().unwrap());
        if version != FORMAT_VERSION {
            return Err(format!("unsupported object format version {version}"));
        }
        let header_len = u32::from_le_bytes(first[12..16].try_into().unwrap()) as usize;
        if !header_len.is_multiple_of(BLOCK_BYTES)
            || header_len == 0
            || header_len > HEADER_MAX_BYTES
        {
            return Err(format!("corrupt header length {header_len}"));
        }
        Ok(header_len)
    }

    /// Decodes a header block; returns the record and the header length (data offset).
    pub fn decode_header(block: &[u8]) -> Result<(ObjectRecord, usize), String> {
        let header_len = Self::peek_header_len(block)?;
        let rec_len = u32::from_le_bytes(block[16..20].try_into().unwrap()) as usize;
        let crc = u32::from_le_bytes(block[20..24].try_into().unwrap());
        if PREAMBLE_BYTES + rec_len > header_len || block.len() < PREAMBLE_BYTES + rec_len {
            return Err("corrupt record length".into());
        }
        let rec = &block[PREAMBLE_BYTES..PREAMBLE_BYTES + rec_len];
        if header_crc(&block[8..20], rec) != crc {
            return Err("record checksum mismatch".into());
        }
        Ok((Self::decode_compact(rec)?, header_len))
    }

    /// Decodes [`ObjectRecord::encode_compact`]'s output (all of `rec`).
    pub(crate) fn decode_compact(rec: &[u8]) -> Result<ObjectRecord, String> {
        let mut r = Cursor { buf: rec, pos: 0 };
        let key = r.str()?;
        let size = r.u64()?;
        let md5: [u8; 16] = r.bytes(16)?.try_into().unwrap();
        let last_modified_ms = r.u64()?;
        let system_headers = r.pairs()?;
        let user_metadata = r.pairs()?;
        let checksum = match r.bytes(1)?[0] {
            CHECKSUM_TAG_NONE => None,
            tag => {
                let (algorithm, value_b64) = (r.str()?, r.str()?);
                let full_object = match tag {
                    CHECKSUM_TAG_FULL_OBJECT => true,
                    CHECKSUM_TAG_COMPOSITE => false,
                    CHECKSUM_TAG_DERIVED => !value_b64.is_empty() && !value_b64.contains('-'),
                    _ => return Err(format!("unknown checksum tag {tag}")),
                };
                Some(StoredChecksum {
                    algorithm,
                    full_object,
                    value_b64,
                })
            }
        };
        let parts = match r.bytes(1)?[0] {
            0 => None,
            _ => {
                let upload_id = r.str()?;
                let n = r.u32()? as usize;
                if n > PARTS_MAX {
                    return Err("too many parts in record".into());
                }
                let mut parts = Vec::with_capacity(n);
                for _ in 0..n {
                    parts.push(PartRef {
                        number: r.u32()?,
                        size: r.u64()?,
                        md5: r.bytes(16)?.try_into().unwrap(),
                    });
                }
                Some(PartsLayout { upload_id, parts })
            }
        };
        if r.pos != rec.len() {
            return Err("trailing bytes after the record".into());
        }
        Ok(ObjectRecord {
            key,
            size,
            md5,
            last_modified_ms,
            system_headers,
            user_metadata,
            checksum,
            parts,
        })
    }
}

/// CRC32C over the version, header length and record length fields and the record itself, so a
/// flipped bit anywhere that decides what is read is detected.
fn header_crc(fields: &[u8], record: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(fields), record)
}

/// Rounds `v` up to a multiple of `align` (a power of two).
pub(crate) fn round_up(v: usize, align: usize) -> usize {
    debug_assert!(align.is_power_of_two());
    (v + align - 1) & !(align - 1)
}

/// Appends a length-prefixed string.
pub(crate) fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_pairs(out: &mut Vec<u8>, pairs: &[(String, String)]) {
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (a, b) in pairs {
        put_str(out, a);
        put_str(out, b);
    }
}

/// Reads what [`put_str`] and little-endian integers wrote, failing on truncation.
pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Cursor<'a> {
        Cursor { buf, pos: 0 }
    }
    /// Bytes not read yet.
    pub(crate) fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }
    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let end = end.ok_or_else(|| "truncated record".to_string())?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    pub(crate) fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.bytes(4)?.try_into().unwrap()))
    }
    pub(crate) fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.bytes(8)?.try_into().unwrap()))
    }
    pub(crate) fn str(&mut self) -> Result<String, String> {
        let n = self.u32()? as usize;
        String::from_utf8(self.bytes(n)?.to_vec())
            .map_err(|_| "record string not UTF-8".to_string())
    }
    pub(crate) fn pairs(&mut self) -> Result<Vec<(String, String)>, String> {
        let n = self.u32()? as usize;
        if n > 1024 {
            return Err("too many pairs in record".into());
        }
        (0..n).map(|_| Ok((self.str()?, self.str()?))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ObjectRecord {
        ObjectRecord {
            key: "a/ü b+c".into(),
            size: 12345,
            md5: [7; 16],
            last_modified_ms: 1_700_000_000_123,
            system_headers: vec![("content-type".into(), "text/plain".into())],
            user_metadata: vec![("foo".into(), "bar".into())],
            checksum: Some(StoredChecksum {
                algorithm: "crc32".into(),
                value_b64: "rwg7LQ==".into(),
                full_object: true,
            }),
            parts: None,
        }
    }

    #[test]
    fn checksum_types_round_trip_and_legacy_records_derive_theirs() {
        let cases = [
            ("rwg7LQ==", true),    // PutObject
            ("Z+ry2Q==-3", false), // composite multipart object
            ("", false),           // upload created COMPOSITE
            ("", true),            // upload created FULL_OBJECT
            ("WgDhBQ==", true),    // full-object multipart object
        ];
        for (value, full_object) in cases {
            let mut rec = sample();
            rec.checksum = Some(StoredChecksum {
                algorithm: "crc32".into(),
                value_b64: value.into(),
                full_object,
            });
            let bytes = rec.encode_compact();
            assert_eq!(
                ObjectRecord::decode_compact(&bytes).unwrap(),
                rec,
                "{value}"
            );
            // A record of an earlier version (tag 1 for every checksum) reads back with the
            // type its value implies; only a FULL_OBJECT upload's record needs the new tag.
            let without = ObjectRecord {
                checksum: None,
                ..rec.clone()
            };
            let tag_at = (without.encode_compact().iter().zip(&bytes))
                .position(|(a, b)| a != b)
                .expect("the checksum tag differs");
            let tag = [CHECKSUM_TAG_COMPOSITE, CHECKSUM_TAG_FULL_OBJECT][usize::from(full_object)];
            assert_eq!(bytes[tag_at], tag);
            // Written by an earlier version (tag 1 for every checksum): the type follows from
            // the value, so only an upload created FULL_OBJECT (new here) could not be told.
            let mut legacy = bytes.clone();
            legacy[tag_at] = CHECKSUM_TAG_DERIVED;
            let back = ObjectRecord::decode_compact(&legacy).unwrap();
            let derived = back.checksum.unwrap().full_object;
            let knowable = !(value.is_empty() && full_object);
            assert!(derived == full_object || !knowable, "{value}");
            legacy[tag_at] = 4;
            assert!(ObjectRecord::decode_compact(&legacy).is_err(), "tag 4");
        }
    }

    #[test]
    fn multipart_round_trip() {
        let mut rec = sample();
        rec.parts = Some(PartsLayout {
            upload_id: "u1".into(),
            parts: (1..=3)
                .map(|n| PartRef {
                    number: n,
                    size: 5 << 20,
                    md5: [n as u8; 16],
                })
                .collect(),
        });
        let mut buf = vec![0; rec.header_len()];
        rec.encode_header(rec.header_len(), &mut buf);
        let (back, _) = ObjectRecord::decode_header(&buf).unwrap();
        assert_eq!(back, rec);
        assert!(back.etag().ends_with("-3"));
    }

    #[test]
    fn round_trip() {
        let rec = sample();
        let h = rec.header_len();
        assert_eq!(h, BLOCK_BYTES);
        let mut buf = vec![0xAA; h];
        rec.encode_header(h, &mut buf);
        let (back, len) = ObjectRecord::decode_header(&buf).unwrap();
        assert_eq!(back, rec);
        assert_eq!(len, h);
    }

    #[test]
    fn corruption_detected() {
        let rec = sample();
        let mut buf = vec![0; rec.header_len()];
        rec.encode_header(rec.header_len(), &mut buf);
        buf[30] ^= 1;
        assert!(ObjectRecord::decode_header(&buf).is_err());
        assert!(ObjectRecord::decode_header(&[0u8; 10]).is_err());
    }

    #[test]
    fn big_metadata_grows_header() {
        let mut rec = sample();
        rec.key = "k".repeat(1024);
        rec.user_metadata = vec![("m".into(), "v".repeat(5000))];
        assert_eq!(rec.header_len(), 2 * BLOCK_BYTES);
    }
}
