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

/// An entity tag of a conditional header: its opaque value (without quotes) and whether it was
/// marked weak (`W/"..."`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityTag {
    pub opaque: String,
    pub weak: bool,
}

/// The value of an `If-Match` / `If-None-Match` header: `*` or a list of entity tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EtagMatch {
    /// `*`: any current object.
    Any,
    Tags(Vec<EntityTag>),
}

impl EtagMatch {
    /// Whether the current object's `etag` (without quotes) matches, by RFC 9110's strong
    /// comparison (a weak tag never matches; If-Match) or its weak one (the `W/` is ignored;
    /// If-None-Match). ringstore's own ETags are all strong.
    pub(crate) fn matches(&self, etag: &str, strong: bool) -> bool {
        match self {
            EtagMatch::Any => true,
            EtagMatch::Tags(tags) => tags.iter().any(|t| t.opaque == etag && !(strong && t.weak)),
        }
    }
}

/// A conditional write (`If-Match` / `If-None-Match` on PutObject and CompleteMultipartUpload),
/// checked by the owner under the key's lock, so it is race-free. If-Match is evaluated first
/// (RFC 9110 section 13.2.2); with neither header the write always happens.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WriteCondition {
    pub if_match: Option<EtagMatch>,
    pub if_none_match: Option<EtagMatch>,
}

impl WriteCondition {
    /// No condition.
    pub fn always() -> WriteCondition {
        WriteCondition::default()
    }

    /// `If-None-Match: *`: only if no object has the key.
    pub fn if_absent() -> WriteCondition {
        WriteCondition {
            if_none_match: Some(EtagMatch::Any),
            ..WriteCondition::default()
        }
    }

    /// `If-Match: "etag"`: only if the current object has this ETag (without quotes).
    pub fn if_etag(etag: impl Into<String>) -> WriteCondition {
        let tag = EntityTag {
            opaque: etag.into(),
            weak: false,
        };
        WriteCondition {
            if_match: Some(EtagMatch::Tags(vec![tag])),
            ..WriteCondition::default()
        }
    }

    pub(crate) fn is_always(&self) -> bool {
        self.if_match.is_none() && self.if_none_match.is_none()
    }
}
