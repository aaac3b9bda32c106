//! Multipart upload state: one upload in progress, its committed parts, and the rules that turn
//! a client's part list into the completed object's record (ETag of the parts' MD5s, composite
//! checksum, part table). The owner-core operations on uploads are in `owner_uploads`.
//!
//! Invariants:
//! - an upload exists while its `upload.meta` file exists and no object record refers to it;
//! - part bytes never move after their commit: completion writes a header-only object record
//!   naming the upload's part files, renames it into place (atomic), then drops `upload.meta`
//!   and the parts the client did not list;
//! - an object's old multipart data is removed once the object is replaced or deleted.

use crate::storage::error::{StorageError, StorageResult};
use crate::storage::index::WriteCondition;
use crate::storage::locks::KeyedLocks;
use crate::storage::record::{ObjectRecord, PartRef, PartsLayout, StoredChecksum, PARTS_MAX};
use glommio::sync::Semaphore;
use md5::{Digest as _, Md5};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;

/// Smallest size of every part but the last (S3's limit).
pub(crate) const PART_SIZE_MIN_BYTES: u64 = 5 * 1024 * 1024;
/// Permits of an upload's gate: part commits in flight at once per upload.
const UPLOAD_GATE_PERMITS: u64 = 1 << 20;

/// A committed part of an upload in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PartInfo {
    pub(crate) size: u64,
    pub(crate) md5: [u8; 16],
    pub(crate) checksum: Option<StoredChecksum>,
    pub(crate) last_modified_ms: u64,
}

impl PartInfo {
    pub(crate) fn etag(&self) -> String {
        hex::encode(self.md5)
    }
}

/// One multipart upload in progress.
pub(crate) struct UploadState {
    /// Key, initiation time (`last_modified_ms`), metadata and checksum algorithm
    /// (`checksum.algorithm` with an empty value) of the object to be.
    pub(crate) meta: ObjectRecord,
    pub(crate) parts: RefCell<BTreeMap<u32, PartInfo>>,
    /// One FIFO lock per part number: racing uploads of one part commit (rename, sync, record)
    /// one after the other, so the part table always names the file on disk.
    pub(crate) part_locks: Rc<KeyedLocks<u32>>,
    gate: Rc<Semaphore>,
    closed: Cell<bool>,
}

/// A snapshot of an upload for the S3 layer.
#[derive(Debug, Clone)]
pub(crate) struct UploadInfo {
    pub(crate) upload_id: String,
    pub(crate) key: String,
    pub(crate) initiated_ms: u64,
    pub(crate) checksum_algorithm: Option<String>,
    /// `FULL_OBJECT` or `COMPOSITE` with an algorithm.
    pub(crate) checksum_type: Option<&'static str>,
    pub(crate) parts: Vec<(u32, PartInfo)>,
}

/// What CompleteMultipartUpload asks of the owner.
#[derive(Debug)]
pub(crate) struct CompleteRequest {
    pub(crate) key: String,
    pub(crate) upload_id: String,
    /// The parts the client listed, in its order.
    pub(crate) parts: Vec<CompletePart>,
    pub(crate) now_ms: u64,
    pub(crate) condition: WriteCondition,
    /// The object checksum the client sent with the completion (`x-amz-checksum-<algorithm>`;
    /// a COMPOSITE value may carry its `-N` suffix): the completion fails unless it matches.
    pub(crate) expected_checksum: Option<StoredChecksum>,
}

/// A part the client lists in CompleteMultipartUpload.
#[derive(Debug, Clone)]
pub(crate) struct CompletePart {
    pub(crate) number: u32,
    pub(crate) etag: String,
}

/// The error for an upload that does not exist (or no longer does).
pub(crate) fn no_such_upload(upload_id: &str) -> StorageError {
    StorageError::NoSuchUpload {
        upload_id: upload_id.to_string(),
    }
}

impl UploadState {
    /// Holds one permit of the upload's gate while a part is committed (many at once), or
    /// `NoSuchUpload` once the upload is closed.
    pub(crate) async fn part_permit(
        &self,
        upload_id: &str,
    ) -> StorageResult<glommio::sync::Permit<'_>> {
        let permit = self
            .gate
            .acquire_permit(1)
            .await
            .map_err(|_| no_such_upload(upload_id))?;
        if self.closed.get() {
            return Err(no_such_upload(upload_id));
        }
        Ok(permit)
    }

    /// Waits until no part commit is in flight and holds the upload exclusively (complete/abort).
    pub(crate) async fn exclusive(
        &self,
        upload_id: &str,
    ) -> StorageResult<glommio::sync::Permit<'_>> {
        let permit = self
            .gate
            .acquire_permit(UPLOAD_GATE_PERMITS)
            .await
            .map_err(|_| no_such_upload(upload_id))?;
        if self.closed.get() {
            return Err(no_such_upload(upload_id));
        }
        Ok(permit)
    }

    /// Whether the upload was completed or aborted (it then accepts nothing more).
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.get()
    }

    /// Marks the upload completed or aborted; the caller holds [`Self::exclusive`].
    pub(crate) fn close(&self) {
        assert!(!self.closed.get(), "an upload is closed once");
        self.closed.set(true);
    }

    pub(crate) fn new(meta: ObjectRecord) -> UploadState {
        UploadState {
            meta,
            parts: RefCell::new(BTreeMap::new()),
            part_locks: KeyedLocks::new(),
            gate: Rc::new(Semaphore::new(UPLOAD_GATE_PERMITS)),
            closed: Cell::new(false),
        }
    }

    pub(crate) fn info(&self, upload_id: &str) -> UploadInfo {
        UploadInfo {
            upload_id: upload_id.to_string(),
            key: self.meta.key.clone(),
            initiated_ms: self.meta.last_modified_ms,
            checksum_algorithm: self.meta.checksum.as_ref().map(|c| c.algorithm.clone()),
            checksum_type: self.meta.checksum.as_ref().map(|c| c.type_name()),
            parts: self
                .parts
                .borrow()
                .iter()
                .map(|(n, p)| (*n, p.clone()))
                .collect(),
        }
    }

    /// Checks the client's part list against the committed parts and builds the object record.
    pub(crate) fn completed_record(
        &self,
        upload_id: &str,
        listed: &[CompletePart],
        now_ms: u64,
        expected_checksum: Option<&StoredChecksum>,
    ) -> StorageResult<ObjectRecord> {
        let parts = self.parts.borrow();
        let found = check_listed_parts(upload_id, listed, &parts)?;
        assert_eq!(found.len(), listed.len());
        let mut md5_of_md5s = Md5::new();
        let mut refs = Vec::with_capacity(listed.len());
        for (l, p) in listed.iter().zip(&found) {
            md5_of_md5s.update(p.md5);
            refs.push(PartRef {
                number: l.number,
                size: p.size,
                md5: p.md5,
            });
        }
        let checksum = self
            .meta
            .checksum
            .as_ref()
            .and_then(|c| object_checksum(c, &found));
        check_expected_checksum(
            self.meta.checksum.as_ref(),
            checksum.as_ref(),
            expected_checksum,
        )?;
        Ok(ObjectRecord {
            key: self.meta.key.clone(),
            size: found.iter().map(|p| p.size).sum(),
            md5: md5_of_md5s.finalize().into(),
            last_modified_ms: now_ms,
            system_headers: self.meta.system_headers.clone(),
            user_metadata: self.meta.user_metadata.clone(),
            checksum,
            parts: Some(PartsLayout {
                upload_id: upload_id.to_string(),
                parts: refs,
            }),
        })
    }
}

/// The committed part for each listed part, in the client's order; S3 reports order first, then
/// unknown parts, then undersized parts.
fn check_listed_parts<'p>(
    upload_id: &str,
    listed: &[CompletePart],
    parts: &'p BTreeMap<u32, PartInfo>,
) -> StorageResult<Vec<&'p PartInfo>> {
    if listed.is_empty() {
        return Err(StorageError::NoPartsListed);
    }
    if listed.len() > PARTS_MAX {
        return Err(StorageError::TooManyParts { max: PARTS_MAX });
    }
    if listed.windows(2).any(|w| w[1].number <= w[0].number) {
        return Err(StorageError::PartsOutOfOrder {
            upload_id: upload_id.to_string(),
        });
    }
    let mut found = Vec::with_capacity(listed.len());
    for l in listed {
        match parts
            .get(&l.number)
            .filter(|p| p.etag() == l.etag.trim_matches('"'))
        {
            Some(p) => found.push(p),
            None => {
                return Err(StorageError::PartNotFound {
                    upload_id: upload_id.to_string(),
                    part_number: l.number,
                    etag: l.etag.clone(),
                })
            }
        }
    }
    let last = listed.len() - 1;
    for (i, (l, p)) in listed.iter().zip(&found).enumerate() {
        if i < last && p.size < PART_SIZE_MIN_BYTES {
            return Err(StorageError::PartTooSmall {
                size: p.size,
                min_bytes: PART_SIZE_MIN_BYTES,
                part_number: l.number,
                etag: l.etag.clone(),
            });
        }
    }
    Ok(found)
}

/// The completed object's checksum when every part has one of the upload's algorithm: the CRC
/// of the whole object (FULL_OBJECT uploads) or the algorithm over the parts' checksums,
/// `value-N` (COMPOSITE).
fn object_checksum(upload: &StoredChecksum, parts: &[&PartInfo]) -> Option<StoredChecksum> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let algorithm = upload.algorithm.as_str();
    let mut raw_parts = Vec::with_capacity(parts.len());
    for p in parts {
        let c = p.checksum.as_ref().filter(|c| c.algorithm == algorithm)?;
        raw_parts.push((b64.decode(&c.value_b64).ok()?, p.size));
    }
    let value_b64 = match upload.full_object {
        true => {
            let algo = crate::digest::ChecksumAlgorithm::from_name(algorithm)?;
            let refs: Vec<(&[u8], u64)> =
                raw_parts.iter().map(|(c, n)| (c.as_slice(), *n)).collect();
            b64.encode(crate::digest::combine::combine_crcs(algo, &refs)?)
        }
        false => {
            let digests: Vec<Vec<u8>> = raw_parts.into_iter().map(|(c, _)| c).collect();
            let v = composite_checksum(algorithm, &digests)?;
            format!("{v}-{}", digests.len())
        }
    };
    Some(StoredChecksum {
        algorithm: algorithm.to_string(),
        value_b64,
        full_object: upload.full_object,
    })
}

/// The client's checksum for the completed object must name the upload's algorithm and match
/// the computed value (a COMPOSITE value with or without its `-N` suffix).
fn check_expected_checksum(
    upload: Option<&StoredChecksum>,
    computed: Option<&StoredChecksum>,
    expected: Option<&StoredChecksum>,
) -> StorageResult<()> {
    let Some(expected) = expected else {
        return Ok(());
    };
    if upload.is_none_or(|u| u.algorithm != expected.algorithm) {
        return Err(StorageError::ChecksumAlgorithmMismatch {
            upload: upload.map(|u| u.algorithm.clone()),
            sent: expected.algorithm.clone(),
        });
    }
    let matches = computed.is_some_and(|c| {
        let bare = c.value_b64.split('-').next().unwrap_or("");
        expected.value_b64 == c.value_b64 || (!c.full_object && expected.value_b64 == bare)
    });
    match matches {
        true => Ok(()),
        false => Err(StorageError::ChecksumMismatch {
            algorithm: expected.algorithm.clone(),
        }),
    }
}

/// S3's composite ("checksum of checksums") value: the algorithm over the parts' raw digests.
fn composite_checksum(algorithm: &str, parts: &[Vec<u8>]) -> Option<String> {
    use crate::digest::{BodyDigests, ChecksumAlgorithm, Expectations};
    let algo = ChecksumAlgorithm::from_name(algorithm)?;
    let mut d = BodyDigests::new(Expectations {
        checksum: Some((algo, None)),
        ..Default::default()
    });
    for p in parts {
        d.update(p);
    }
    d.finish().ok()?.checksum.map(|(_, v)| v)
}
