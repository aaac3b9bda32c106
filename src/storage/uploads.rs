//! Multipart uploads on the owner core: the upload table of each bucket, part commits,
//! completion (zero-copy: the object's record lists the part files) and abort.
//!
//! Invariants:
//! - an upload exists while its `upload.meta` file exists and no object record refers to it;
//! - part bytes never move after their commit: completion writes a header-only object record
//!   naming the upload's part files, renames it into place (atomic), then drops `upload.meta`
//!   and the parts the client did not list;
//! - part commits and complete/abort of one upload exclude each other through the upload's
//!   gate (a part commit holds one permit, complete/abort hold them all);
//! - an object's old multipart data is removed once the object is replaced or deleted.

use crate::storage::error::{StorageError, StorageResult};
use crate::storage::index::WriteCondition;
use crate::storage::layout::{is_valid_upload_id, parse_part_file_name, UPLOAD_META_FILE};
use crate::storage::owner::{read_record_blocking, sync_dir, write_durably, BucketState, Owner};
use crate::storage::record::{ObjectRecord, PartRef, PartsLayout, StoredChecksum, PARTS_MAX};
use glommio::sync::Semaphore;
use md5::{Digest as _, Md5};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::rc::Rc;

/// Smallest size of every part but the last (S3's limit).
pub const PART_SIZE_MIN_BYTES: u64 = 5 * 1024 * 1024;
/// Permits of an upload's gate: part commits in flight at once per upload.
const UPLOAD_GATE_PERMITS: u64 = 1 << 20;

/// A committed part of an upload in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartInfo {
    pub size: u64,
    pub md5: [u8; 16],
    pub checksum: Option<StoredChecksum>,
    pub last_modified_ms: u64,
}

impl PartInfo {
    pub fn etag(&self) -> String {
        hex::encode(self.md5)
    }
}

/// One multipart upload in progress.
pub struct UploadState {
    /// Key, initiation time (`last_modified_ms`), metadata and checksum algorithm
    /// (`checksum.algorithm` with an empty value) of the object to be.
    pub meta: ObjectRecord,
    pub parts: RefCell<BTreeMap<u32, PartInfo>>,
    gate: Rc<Semaphore>,
    closed: Cell<bool>,
}

/// A snapshot of an upload for the S3 layer.
#[derive(Debug, Clone)]
pub struct UploadInfo {
    pub upload_id: String,
    pub key: String,
    pub initiated_ms: u64,
    pub checksum_algorithm: Option<String>,
    pub parts: Vec<(u32, PartInfo)>,
}

/// What CompleteMultipartUpload asks of the owner.
#[derive(Debug)]
pub struct CompleteRequest {
    pub key: String,
    pub upload_id: String,
    /// The parts the client listed, in its order.
    pub parts: Vec<CompletePart>,
    pub now_ms: u64,
    pub condition: WriteCondition,
}

/// A part the client lists in CompleteMultipartUpload.
#[derive(Debug, Clone)]
pub struct CompletePart {
    pub number: u32,
    pub etag: String,
}

fn no_such_upload(upload_id: &str) -> StorageError {
    StorageError::NoSuchUpload {
        upload_id: upload_id.to_string(),
    }
}

fn write_err(context: &'static str) -> impl Fn(io::Error) -> StorageError {
    move |e| StorageError::write(context, e)
}

impl Owner {
    fn upload(
        &self,
        b: &BucketState,
        upload_id: &str,
        key: &str,
    ) -> StorageResult<Rc<UploadState>> {
        let u = b
            .uploads
            .borrow()
            .get(upload_id)
            .cloned()
            .ok_or_else(|| no_such_upload(upload_id))?;
        if u.meta.key != key || u.closed.get() {
            return Err(no_such_upload(upload_id));
        }
        Ok(u)
    }

    /// Starts an upload: its directory and `upload.meta` are durable before the id is returned.
    pub async fn create_upload(
        &self,
        bucket: &str,
        upload_id: String,
        meta: ObjectRecord,
    ) -> StorageResult<()> {
        assert!(is_valid_upload_id(&upload_id));
        let b = self.bucket(bucket)?;
        let dir = self.layout.upload_dir(bucket, &upload_id);
        let meta_path = self.layout.upload_meta(bucket, &upload_id);
        let uploads_dir = self.layout.uploads_dir(bucket);
        let mut header = vec![0u8; meta.header_len()];
        meta.encode_header(header.len(), &mut header);
        let fsync = self.fsync;
        glommio::executor()
            .spawn_blocking(move || -> io::Result<()> {
                std::fs::create_dir_all(&dir)?;
                write_durably(&meta_path, &header, fsync)?;
                if fsync {
                    sync_dir(&uploads_dir)?;
                }
                Ok(())
            })
            .await
            .map_err(write_err("creating the upload"))?;
        b.uploads
            .borrow_mut()
            .insert(upload_id, Rc::new(UploadState::new(meta)));
        Ok(())
    }

    /// The upload's key, metadata and parts (NoSuchUpload if it is not in progress for `key`).
    pub fn upload_info(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> StorageResult<UploadInfo> {
        let b = self.bucket(bucket)?;
        let u = self.upload(&b, upload_id, key)?;
        Ok(u.info(upload_id))
    }

    /// Moves a durable staged part into the upload, replacing an earlier part with that number.
    pub async fn commit_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        number: u32,
        staging: &Path,
        info: PartInfo,
    ) -> StorageResult<()> {
        let b = self.bucket(bucket)?;
        let u = self.upload(&b, upload_id, key)?;
        let _permit = u
            .gate
            .acquire_permit(1)
            .await
            .map_err(|_| no_such_upload(upload_id))?;
        if u.closed.get() {
            return Err(no_such_upload(upload_id));
        }
        let target = self.layout.part_file(bucket, upload_id, number);
        glommio::io::rename(staging, &target)
            .await
            .map_err(StorageError::glommio_write("committing the part"))?;
        if self.fsync {
            self.sync_path(&self.layout.upload_dir(bucket, upload_id))
                .await?;
        }
        u.parts.borrow_mut().insert(number, info);
        Ok(())
    }

    /// Completes an upload into object `key`; returns the object's record.
    pub async fn complete_upload(
        &self,
        bucket: &str,
        req: CompleteRequest,
        staging: &Path,
    ) -> StorageResult<ObjectRecord> {
        let CompleteRequest {
            key,
            upload_id,
            parts: listed,
            now_ms,
            condition,
        } = req;
        let (key, upload_id) = (key.as_str(), upload_id.as_str());
        let b = self.bucket(bucket)?;
        let u = self.upload(&b, upload_id, key)?;
        let _all = u.exclusive(upload_id).await?;
        let record = u.completed_record(upload_id, &listed, now_ms)?;
        crate::storage::writer::write_record_file(staging, &record, self.fsync)
            .await
            .map_err(write_err("writing the object record"))?;
        let summary = record.summary();
        if let Err(e) = self
            .commit_with(
                &b,
                key,
                staging,
                summary,
                Some(upload_id.to_string()),
                &condition,
            )
            .await
        {
            let _ = glommio::io::remove(staging).await;
            return Err(e);
        }
        u.closed.set(true);
        b.uploads.borrow_mut().remove(upload_id);
        // The upload is now the object's data: drop its meta file and the unlisted parts.
        let dir = self.layout.upload_dir(bucket, upload_id);
        let keep: Vec<u32> = record
            .parts
            .as_ref()
            .map(|p| p.parts.iter().map(|r| r.number).collect())
            .unwrap_or_default();
        let _ = glommio::executor()
            .spawn_blocking(move || prune_completed_upload(&dir, &keep))
            .await;
        Ok(record)
    }

    /// Aborts an upload: removes every part file and the upload directory.
    pub async fn abort_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> StorageResult<()> {
        let b = self.bucket(bucket)?;
        let u = self.upload(&b, upload_id, key)?;
        let _all = u.exclusive(upload_id).await?;
        u.closed.set(true);
        b.uploads.borrow_mut().remove(upload_id);
        self.remove_upload_dir(bucket, upload_id).await
    }

    /// Every upload in progress in `bucket`, sorted by key, then initiation, then id.
    pub fn list_uploads(&self, bucket: &str) -> StorageResult<Vec<UploadInfo>> {
        let b = self.bucket(bucket)?;
        let uploads = b.uploads.borrow();
        let mut all: Vec<UploadInfo> = uploads
            .iter()
            .filter(|(_, u)| !u.closed.get())
            .map(|(id, u)| UploadInfo {
                parts: Vec::new(),
                ..u.info(id)
            })
            .collect();
        all.sort_by(|a, b| {
            (&a.key, a.initiated_ms, &a.upload_id).cmp(&(&b.key, b.initiated_ms, &b.upload_id))
        });
        Ok(all)
    }

    pub(crate) async fn remove_upload_dir(
        &self,
        bucket: &str,
        upload_id: &str,
    ) -> StorageResult<()> {
        let dir = self.layout.upload_dir(bucket, upload_id);
        let parent = self.layout.uploads_dir(bucket);
        let fsync = self.fsync;
        glommio::executor()
            .spawn_blocking(move || -> io::Result<()> {
                match std::fs::remove_dir_all(&dir) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
                if fsync {
                    sync_dir(&parent)?;
                }
                Ok(())
            })
            .await
            .map_err(|e| StorageError::io("removing upload data", e))
    }

    async fn sync_path(&self, dir: &Path) -> StorageResult<()> {
        let d = glommio::io::Directory::open(dir)
            .await
            .map_err(|e| StorageError::io("opening a directory to sync", io::Error::from(e)))?;
        let r = d.sync().await;
        let _ = d.close().await;
        r.map_err(|e| StorageError::write("syncing a directory", io::Error::from(e)))
    }

    /// Loads the uploads of bucket `name` at startup (blocking I/O): in-progress uploads go to
    /// the table; data of completed uploads is pruned to its listed parts; leftovers are removed.
    pub(crate) fn load_uploads(&self, name: &str, state: &BucketState) -> io::Result<usize> {
        let dir = self.layout.uploads_dir(name);
        std::fs::create_dir_all(&dir)?;
        let referenced = state
            .multipart_data
            .borrow()
            .values()
            .cloned()
            .collect::<std::collections::HashSet<_>>();
        let mut loaded = 0;
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let id = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if referenced.contains(&id) {
                continue; // pruned by load() which knows the listed parts
            }
            let meta_path = self.layout.upload_meta(name, &id);
            let meta = match is_valid_upload_id(&id).then(|| read_record_blocking(&meta_path)) {
                Some(Ok(m)) => m,
                _ => {
                    std::fs::remove_dir_all(&path)?;
                    continue;
                }
            };
            let mut parts = BTreeMap::new();
            for p in std::fs::read_dir(&path)? {
                let p = p?;
                let fname = p.file_name().to_string_lossy().into_owned();
                let Some(n) = parse_part_file_name(&fname) else {
                    if fname != UPLOAD_META_FILE {
                        std::fs::remove_file(p.path())?;
                    }
                    continue;
                };
                match read_record_blocking(&p.path()) {
                    Ok(rec) => {
                        parts.insert(
                            n,
                            PartInfo {
                                size: rec.size,
                                md5: rec.md5,
                                checksum: rec.checksum,
                                last_modified_ms: rec.last_modified_ms,
                            },
                        );
                    }
                    Err(_) => std::fs::remove_file(p.path())?,
                }
            }
            let u = UploadState::new(meta);
            *u.parts.borrow_mut() = parts;
            state.uploads.borrow_mut().insert(id, Rc::new(u));
            loaded += 1;
        }
        Ok(loaded)
    }
}

impl UploadState {
    /// Waits until no part commit is in flight and holds the upload exclusively (complete/abort).
    async fn exclusive(&self, upload_id: &str) -> StorageResult<glommio::sync::Permit<'_>> {
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

    fn new(meta: ObjectRecord) -> UploadState {
        UploadState {
            meta,
            parts: RefCell::new(BTreeMap::new()),
            gate: Rc::new(Semaphore::new(UPLOAD_GATE_PERMITS)),
            closed: Cell::new(false),
        }
    }

    fn info(&self, upload_id: &str) -> UploadInfo {
        UploadInfo {
            upload_id: upload_id.to_string(),
            key: self.meta.key.clone(),
            initiated_ms: self.meta.last_modified_ms,
            checksum_algorithm: self.meta.checksum.as_ref().map(|c| c.algorithm.clone()),
            parts: self
                .parts
                .borrow()
                .iter()
                .map(|(n, p)| (*n, p.clone()))
                .collect(),
        }
    }

    /// Checks the client's part list against the committed parts and builds the object record.
    fn completed_record(
        &self,
        upload_id: &str,
        listed: &[CompletePart],
        now_ms: u64,
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
        let algorithm = self.meta.checksum.as_ref().map(|c| c.algorithm.as_str());
        Ok(ObjectRecord {
            key: self.meta.key.clone(),
            size: found.iter().map(|p| p.size).sum(),
            md5: md5_of_md5s.finalize().into(),
            last_modified_ms: now_ms,
            system_headers: self.meta.system_headers.clone(),
            user_metadata: self.meta.user_metadata.clone(),
            checksum: algorithm.and_then(|a| object_checksum(a, &found)),
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

/// The completed object's checksum (`composite-N`) when every part has one of `algorithm`.
fn object_checksum(algorithm: &str, parts: &[&PartInfo]) -> Option<StoredChecksum> {
    use base64::Engine;
    let mut raw_parts = Vec::with_capacity(parts.len());
    for p in parts {
        let c = p.checksum.as_ref().filter(|c| c.algorithm == algorithm)?;
        raw_parts.push(
            base64::engine::general_purpose::STANDARD
                .decode(&c.value_b64)
                .ok()?,
        );
    }
    composite_checksum(algorithm, &raw_parts).map(|v| StoredChecksum {
        algorithm: algorithm.to_string(),
        value_b64: format!("{v}-{}", raw_parts.len()),
    })
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

/// Removes `upload.meta` and every part not in `keep` from a completed upload's directory.
pub(crate) fn prune_completed_upload(dir: &Path, keep: &[u32]) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let listed = parse_part_file_name(&name).is_some_and(|n| keep.contains(&n));
        if !listed {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}
