//! What the engine writes into the log: one record per object change.
//!
//! Payload layouts (after the log's own record header; strings length-prefixed):
//! ```text
//! PUT_INLINE  bucket | u64 incarnation | u32 record_len | ObjectRecord (compact) | object bytes
//! PUT_FILE    bucket | u64 incarnation | key | u64 size | etag | u64 last_modified_ms
//!             | file name | u8 has_upload | [upload id]
//! DELETE      bucket | u64 incarnation | key
//! ```
//! Invariants: every record names its bucket's incarnation, so records of a deleted bucket never
//! apply to a bucket created later under the same name; a PUT_FILE record is written only after
//! its file (and the directory entry) is durable; a record decodes whole or not at all.

use crate::storage::index::{Body, IndexEntry, ObjectSummary};
use crate::storage::log::RecordLocation;
use crate::storage::record::{put_str, Cursor, ObjectRecord};

/// Record kinds of the engine.
pub(crate) const KIND_PUT_INLINE: u8 = 1;
pub(crate) const KIND_PUT_FILE: u8 = 2;
pub(crate) const KIND_DELETE: u8 = 3;

/// Largest object stored inline in its log record (larger ones get their own file).
pub(crate) const INLINE_MAX_BYTES: u64 = 64 * 1024;

/// The bucket and incarnation every record starts with.
pub(crate) fn prefix(bucket: &str, incarnation: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + bucket.len() + 8);
    put_str(&mut out, bucket);
    out.extend_from_slice(&incarnation.to_le_bytes());
    out
}

/// The parts of a PUT_INLINE payload before the object bytes.
pub(crate) fn put_inline_head(bucket: &str, incarnation: u64, record: &ObjectRecord) -> Vec<u8> {
    assert!(record.parts.is_none(), "inline objects are single-part");
    let rec = record.encode_compact();
    let mut out = prefix(bucket, incarnation);
    out.extend_from_slice(&(rec.len() as u32).to_le_bytes());
    out.extend_from_slice(&rec);
    out
}

/// A PUT_FILE payload.
pub(crate) fn put_file(
    bucket: &str,
    incarnation: u64,
    key: &str,
    summary: &ObjectSummary,
    file: &str,
    upload_id: Option<&str>,
) -> Vec<u8> {
    let mut out = prefix(bucket, incarnation);
    put_str(&mut out, key);
    out.extend_from_slice(&summary.size.to_le_bytes());
    put_str(&mut out, &summary.etag);
    out.extend_from_slice(&summary.last_modified_ms.to_le_bytes());
    put_str(&mut out, file);
    match upload_id {
        None => out.push(0),
        Some(id) => {
            out.push(1);
            put_str(&mut out, id);
        }
    }
    out
}

/// A DELETE payload.
pub(crate) fn delete(bucket: &str, incarnation: u64, key: &str) -> Vec<u8> {
    let mut out = prefix(bucket, incarnation);
    put_str(&mut out, key);
    out
}

/// A decoded record: which bucket incarnation and key it changes, and to what (`None`: deleted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Change {
    /// The record's sequence number (also for a delete, which has no entry).
    pub(crate) seq: u64,
    pub(crate) bucket: String,
    pub(crate) incarnation: u64,
    pub(crate) key: String,
    pub(crate) entry: Option<IndexEntry>,
}

/// Decodes the record of `kind` and `seq` at `at`.
pub(crate) fn decode(
    kind: u8,
    seq: u64,
    at: RecordLocation,
    payload: &[u8],
) -> Result<Change, String> {
    let mut c = Cursor::new(payload);
    let bucket = c.str()?;
    let incarnation = c.u64()?;
    let (key, version) = match kind {
        KIND_PUT_INLINE => {
            let record = decode_inline_record(&mut c)?;
            if c.rest().len() as u64 != record.size {
                return Err("inline object length differs from its record".into());
            }
            let summary = record.summary();
            (record.key, Some((summary, Body::Inline)))
        }
        KIND_PUT_FILE => {
            let key = c.str()?;
            let summary = ObjectSummary {
                size: c.u64()?,
                etag: c.str()?,
                last_modified_ms: c.u64()?,
            };
            let name = c.str()?;
            let upload_id = match c.bytes(1)?[0] {
                0 => None,
                _ => Some(c.str()?),
            };
            (key, Some((summary, Body::File { name, upload_id })))
        }
        KIND_DELETE => (c.str()?, None),
        other => return Err(format!("unknown record kind {other}")),
    };
    if kind != KIND_PUT_INLINE && !c.rest().is_empty() {
        return Err("trailing bytes after the record".into());
    }
    let entry = version.map(|(summary, body)| IndexEntry {
        seq,
        location: at,
        summary,
        body,
    });
    Ok(Change {
        seq,
        bucket,
        incarnation,
        key,
        entry,
    })
}

fn decode_inline_record(c: &mut Cursor<'_>) -> Result<ObjectRecord, String> {
    let len = c.u32()? as usize;
    ObjectRecord::decode_compact(c.bytes(len)?)
}

/// An inline object's record and the offset of its bytes within the payload.
pub(crate) fn decode_inline(payload: &[u8]) -> Result<(ObjectRecord, usize), String> {
    let mut c = Cursor::new(payload);
    c.str()?;
    c.u64()?;
    let record = decode_inline_record(&mut c)?;
    let data_at = payload.len() - c.rest().len();
    if (payload.len() - data_at) as u64 != record.size {
        return Err("inline object length differs from its record".into());
    }
    Ok((record, data_at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips() {
        let at = RecordLocation {
            segment: 1,
            offset: 2,
            len: 3,
        };
        let mut rec = ObjectRecord::new("k/é");
        rec.size = 3;
        let payload = [put_inline_head("b", 9, &rec), b"abc".to_vec()].concat();
        let ch = decode(KIND_PUT_INLINE, 5, at, &payload).unwrap();
        assert_eq!(
            (ch.bucket.as_str(), ch.incarnation, ch.key.as_str()),
            ("b", 9, "k/é")
        );
        assert_eq!(ch.entry.as_ref().unwrap().body, Body::Inline);
        assert_eq!(ch.entry.as_ref().unwrap().location, at);
        let (back, data_at) = decode_inline(&payload).unwrap();
        assert_eq!((back, &payload[data_at..]), (rec, &b"abc"[..]));
        assert!(decode(KIND_PUT_INLINE, 5, at, &payload[..payload.len() - 1]).is_err());

        let s = ObjectSummary {
            size: 7,
            etag: "e-2".into(),
            last_modified_ms: 11,
        };
        let p = put_file("b", 9, "key", &s, "o-1", Some("up"));
        let ch = decode(KIND_PUT_FILE, 6, at, &p).unwrap();
        let e = ch.entry.unwrap();
        assert_eq!((e.seq, e.summary), (6, s));
        assert_eq!(
            e.body,
            Body::File {
                name: "o-1".into(),
                upload_id: Some("up".into())
            }
        );
        let ch = decode(KIND_DELETE, 7, at, &delete("b", 9, "key")).unwrap();
        assert_eq!((ch.key.as_str(), ch.entry), ("key", None));
        assert!(decode(9, 7, at, &delete("b", 9, "key")).is_err());
    }
}
