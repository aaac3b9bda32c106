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

use crate::s3::error::S3Error;
use crate::storage::index::WriteCondition;
use crate::storage::layout::{is_valid_upload_id, UPLOAD_META_FILE};
use crate::storage::owner::{read_record_blocking, sync_dir, BucketState, Owner};
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
    /// Where to write the object's record before renaming it into place.
    pub staging: std::path::PathBuf,
    pub now_ms: u64,
    pub condition: WriteCondition,
}

/// A part the client lists in CompleteMultipartUpload.
#[derive(Debug, Clone)]
pub struct CompletePart {
    pub number: u32,
    pub etag: String,
}

pub fn no_such_upload(upload_id: &str) -> S3Error {
    crate::s3err!(
        NoSuchUpload,
        "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed."
    )
    .with_extra("UploadId", upload_id)
}

fn io_s3(context: &'static str) -> impl Fn(io::Error) -> S3Error {
    move |e| S3Error::from_write_io(context, &e)
}

impl Owner {
    fn upload(
        &self,
        b: &BucketState,
        upload_id: &str,
        key: &str,
    ) -> Result<Rc<UploadState>, S3Error> {
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
    ) -> Result<(), S3Error> {
        assert!(is_valid_upload_id(&upload_id));
        let b = self.bucket(bucket)?;
        let dir = self.layout.upload_dir(bucket, &upload_id);
        let uploads_dir = self.layout.uploads_dir(bucket);
        let mut header = vec![0u8; meta.header_len()];
        meta.encode_header(header.len(), &mut header);
        let fsync = self.fsync;
        glommio::executor()
            .spawn_blocking(move || -> io::Result<()> {
                std::fs::create_dir_all(&dir)?;
                let tmp = dir.join("upload.meta.tmp");
                std::fs::write(&tmp, &header)?;
                if fsync {
                    std::fs::File::open(&tmp)?.sync_all()?;
                }
                std::fs::rename(&tmp, dir.join(UPLOAD_META_FILE))?;
                if fsync {
                    sync_dir(&dir)?;
                    sync_dir(&uploads_dir)?;
                }
                Ok(())
            })
            .await
            .map_err(io_s3("creating the upload"))?;
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
    ) -> Result<UploadInfo, S3Error> {
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
    ) -> Result<(), S3Error> {
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
            .map_err(|e| S3Error::from_write_io("committing the part", &io::Error::from(e)))?;
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
    ) -> Result<ObjectRecord, S3Error> {
        let CompleteRequest {
            key,
            upload_id,
            parts: listed,
            staging,
            now_ms,
            condition,
        } = req;
        let (key, upload_id, staging) = (key.as_str(), upload_id.as_str(), staging.as_path());
        let b = self.bucket(bucket)?;
        let u = self.upload(&b, upload_id, key)?;
        let _all = u.exclusive(upload_id).await?;
        let record = u.completed_record(upload_id, &listed, now_ms)?;
        crate::storage::writer::write_record_file(staging, &record, self.fsync)
            .await
            .map_err(io_s3("writing the object record"))?;
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
    ) -> Result<(), S3Error> {
        let b = self.bucket(bucket)?;
        let u = self.upload(&b, upload_id, key)?;
        let _all = u.exclusive(upload_id).await?;
        u.closed.set(true);
        b.uploads.borrow_mut().remove(upload_id);
        self.remove_upload_dir(bucket, upload_id).await
    }

    /// Every upload in progress in `bucket`, sorted by key, then initiation, then id.
    pub fn list_uploads(&self, bucket: &str) -> Result<Vec<UploadInfo>, S3Error> {
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
    ) -> Result<(), S3Error> {
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
            .map_err(|e| S3Error::internal("removing upload data", e))
    }

    async fn sync_path(&self, dir: &Path) -> Result<(), S3Error> {
        let d = glommio::io::Directory::open(dir)
            .await
            .map_err(|e| S3Error::internal("opening a directory to sync", io::Error::from(e)))?;
        let r = d.sync().await;
        let _ = d.close().await;
        r.map_err(|e| S3Error::from_write_io("syncing a directory", &io::Error::from(e)))
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
            let meta_path = path.join(UPLOAD_META_FILE);
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
                let Some(n) = fname
                    .strip_prefix("part-")
                    .and_then(|n| n.parse::<u32>().ok())
                else {
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
    async fn exclusive(&self, upload_id: &str) -> Result<glommio::sync::Permit<'_>, S3Error> {
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
    ) -> Result<ObjectRecord, S3Error> {
        if listed.is_empty() {
            return Err(crate::s3err!(
                MalformedXML,
                "You must specify at least one part."
            ));
        }
        if listed.len() > PARTS_MAX {
            return Err(crate::s3err!(
                InvalidArgument,
                "An upload may have at most {PARTS_MAX} parts."
            ));
        }
        let parts = self.parts.borrow();
        let mut refs = Vec::with_capacity(listed.len());
        let mut md5_of_md5s = Md5::new();
        let mut total = 0u64;
        let mut checksum_parts: Vec<Vec<u8>> = Vec::new();
        let algo = self.meta.checksum.as_ref().map(|c| c.algorithm.clone());
        let mut all_have_checksum = true;
        // S3 reports order first, then unknown parts, then undersized parts.
        for w in listed.windows(2) {
            if w[1].number <= w[0].number {
                return Err(crate::s3err!(
                    InvalidPartOrder,
                    "The list of parts was not in ascending order. Parts must be ordered by part number."
                )
                .with_extra("UploadId", upload_id));
            }
        }
        let mut found = Vec::with_capacity(listed.len());
        for l in listed {
            match parts.get(&l.number).filter(|p| p.etag() == l.etag.trim_matches('"')) {
                Some(p) => found.push(p),
                None => {
                    return Err(crate::s3err!(
                        InvalidPart,
                        "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag."
                    )
                    .with_extra("UploadId", upload_id)
                    .with_extra("PartNumber", l.number.to_string())
                    .with_extra("ETag", l.etag.clone()))
                }
            }
        }
        for (i, (l, p)) in listed.iter().zip(&found).enumerate() {
            if i + 1 < listed.len() && p.size < PART_SIZE_MIN_BYTES {
                return Err(crate::s3err!(
                    EntityTooSmall,
                    "Your proposed upload is smaller than the minimum allowed size"
                )
                .with_extra("ProposedSize", p.size.to_string())
                .with_extra("MinSizeAllowed", PART_SIZE_MIN_BYTES.to_string())
                .with_extra("PartNumber", l.number.to_string())
                .with_extra("ETag", l.etag.clone()));
            }
        }
        for (l, p) in listed.iter().zip(found) {
            md5_of_md5s.update(p.md5);
            total += p.size;
            match (&p.checksum, &algo) {
                (Some(c), Some(a)) if &c.algorithm == a => {
                    use base64::Engine;
                    match base64::engine::general_purpose::STANDARD.decode(&c.value_b64) {
                        Ok(raw) => checksum_parts.push(raw),
                        Err(_) => all_have_checksum = false,
                    }
                }
                _ => all_have_checksum = false,
            }
            refs.push(PartRef {
                number: l.number,
                size: p.size,
                md5: p.md5,
            });
        }
        let checksum = match algo {
            Some(a) if all_have_checksum => {
                composite_checksum(&a, &checksum_parts).map(|v| StoredChecksum {
                    algorithm: a.clone(),
                    value_b64: format!("{v}-{}", checksum_parts.len()),
                })
            }
            _ => None,
        };
        Ok(ObjectRecord {
            key: self.meta.key.clone(),
            size: total,
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
        let listed = name
            .strip_prefix("part-")
            .and_then(|n| n.parse::<u32>().ok())
            .is_some_and(|n| keep.contains(&n));
        if !listed {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}
