//! Bucket index: the in-memory sorted map key -> object summary held by a bucket's owner core.
//!
//! Invariant: only the owner core of a bucket mutates its index, and only after the object's
//! record is durable on disk (or its removal is).

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

/// A bucket's objects by key; `String` ordering is UTF-8 byte order, which is S3's listing order.
pub type BucketIndex = BTreeMap<String, ObjectSummary>;

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
