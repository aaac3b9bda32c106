//! Bucket indexes: key -> where the current version of the object is, readable from every core.
//!
//! Each bucket's index is a lock-free ordered map ([`SharedIndex`], a skip list) shared by all
//! cores: GET, HEAD and LIST read it on the core that accepted the request, with no round trip.
//!
//! Invariants: only the bucket's owner core writes its index, under the key's lock; an entry is
//! inserted only after the log record it names is durable (so a read after an acknowledged write
//! sees it, and a listed key is readable); a change replaces an entry only if its sequence number
//! is higher (last writer by sequence wins, the same rule replay applies at startup).

use crate::storage::log::RecordLocation;
use std::collections::BTreeMap;

/// What listing needs of one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectSummary {
    pub size: u64,
    /// ETag without quotes: hex MD5, or `hex-N` for multipart objects.
    pub etag: String,
    /// Last-Modified, milliseconds since the Unix epoch.
    pub last_modified_ms: u64,
}

/// A bucket's objects by key as a plain sorted map (listing tests and tools); `String` ordering
/// is UTF-8 byte order, which is S3's listing order.
pub type BucketIndex = BTreeMap<String, ObjectSummary>;

/// Where an object version's bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Body {
    /// In its log record (small objects): record and bytes in one read.
    Inline,
    /// In its own file in the bucket's `objects/` directory (a record header, then the bytes;
    /// for a multipart object, only the record, naming the parts of `upload_id`).
    File {
        name: String,
        upload_id: Option<String>,
    },
}

/// The current version of one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IndexEntry {
    /// Sequence number of the log record that made this version.
    pub(crate) seq: u64,
    /// Where that record is (compaction moves it; the sequence number stays).
    pub(crate) location: RecordLocation,
    pub(crate) summary: ObjectSummary,
    pub(crate) body: Body,
}

/// A bucket's live index, shared by every core.
pub(crate) type SharedIndex = crossbeam_skiplist::SkipMap<String, IndexEntry>;

/// A conditional write (`If-None-Match: *` / `If-Match: "etag"` on PutObject and
/// CompleteMultipartUpload), checked by the owner under the key's lock, so it is race-free.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum WriteCondition {
    #[default]
    Always,
    /// Only if no object has the key.
    IfAbsent,
    /// Only if the current object has this ETag (without quotes).
    IfEtag(String),
}
