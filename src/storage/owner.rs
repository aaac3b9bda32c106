//! Owner state: the buckets one core owns, their indexes, and every metadata change to them.
//!
//! Invariants: only the owner core of a bucket (`owner = hash(bucket) % cores`) creates, deletes
//! or commits into it, so its changes are ordered without cross-core locks; changes to one key
//! are applied strictly in arrival order (a per-key FIFO permit), and the index is updated only
//! after the change is durable (rename + directory fsync) — so an acknowledged write is on disk
//! and a listed key is readable.

use crate::storage::error::{StorageError, StorageResult};
use crate::storage::group_sync::GroupSync;
use crate::storage::index::{BucketIndex, ObjectSummary, WriteCondition};
use crate::storage::layout::{is_path_safe_bucket_name, object_file_name, tmp_sibling, Layout};
use crate::storage::list::{list_page, ListPage, ListParams};
use crate::storage::uploads::UploadState;
use glommio::io::Directory;
use glommio::sync::Semaphore;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::Path;
use std::rc::Rc;

/// One bucket owned by this core.
pub struct BucketState {
    pub name: String,
    pub created_ms: u64,
    pub index: RefCell<BucketIndex>,
    dir: GroupSync,
    key_locks: RefCell<HashMap<String, Rc<Semaphore>>>,
    /// Commits and deletes in progress (a bucket with any is not empty).
    in_flight: Cell<usize>,
    /// Multipart uploads in progress, by upload id.
    pub(crate) uploads: RefCell<HashMap<String, Rc<UploadState>>>,
    /// Keys whose current object is multipart -> the upload directory holding its parts.
    pub(crate) multipart_data: RefCell<HashMap<String, String>>,
}

/// The buckets owned by one core.
pub struct Owner {
    pub(crate) layout: Layout,
    pub(crate) fsync: bool,
    buckets: RefCell<BTreeMap<String, Rc<BucketState>>>,
}

/// What a core found on disk for the buckets it owns.
#[derive(Debug, Default, Clone, Copy)]
pub struct LoadReport {
    pub buckets: usize,
    pub objects: usize,
    pub corrupt_files: usize,
    pub removed_partial_buckets: usize,
    pub uploads: usize,
}

impl Owner {
    pub fn new(layout: Layout, fsync: bool) -> Owner {
        Owner {
            layout,
            fsync,
            buckets: RefCell::new(BTreeMap::new()),
        }
    }

    /// Loads the buckets for which `is_mine(name)` holds from disk (startup only; blocking I/O).
    pub async fn load(&self, is_mine: impl Fn(&str) -> bool) -> io::Result<LoadReport> {
        let mut report = LoadReport::default();
        let dir = self.layout.buckets_dir();
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !is_path_safe_bucket_name(&name) {
                eprintln!(
                    "ringstore: ignoring {}: not a bucket name",
                    entry.path().display()
                );
                continue;
            }
            if !is_mine(&name) {
                continue;
            }
            let meta_path = self.layout.bucket_meta(&name);
            let created_ms = match std::fs::read_to_string(&meta_path) {
                Ok(s) => s.trim().parse::<u64>().unwrap_or(0),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    // A bucket whose creation or deletion did not finish: it never existed.
                    std::fs::remove_dir_all(entry.path())?;
                    report.removed_partial_buckets += 1;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let mut index = BucketIndex::new();
            let mut multipart = HashMap::new();
            let objects_dir = self.layout.objects_dir(&name);
            for obj in std::fs::read_dir(&objects_dir)? {
                let obj = obj?;
                match read_record_blocking(&obj.path()) {
                    Ok(rec) if object_file_name(&rec.key) == obj.file_name().to_string_lossy() => {
                        if let Some(p) = &rec.parts {
                            // Finish a completion interrupted before its cleanup.
                            let keep: Vec<u32> = p.parts.iter().map(|r| r.number).collect();
                            let dir = self.layout.upload_dir(&name, &p.upload_id);
                            crate::storage::uploads::prune_completed_upload(&dir, &keep)?;
                            multipart.insert(rec.key.clone(), p.upload_id.clone());
                        }
                        index.insert(rec.key.clone(), rec.summary());
                        report.objects += 1;
                    }
                    _ => {
                        eprintln!(
                            "ringstore: ignoring corrupt object file {}",
                            obj.path().display()
                        );
                        report.corrupt_files += 1;
                    }
                }
            }
            let state = self.bucket_state(&name, created_ms, index).await?;
            *state.multipart_data.borrow_mut() = multipart;
            report.uploads += self.load_uploads(&name, &state)?;
            self.buckets.borrow_mut().insert(name, state);
            report.buckets += 1;
        }
        Ok(report)
    }

    async fn bucket_state(
        &self,
        name: &str,
        created_ms: u64,
        index: BucketIndex,
    ) -> io::Result<Rc<BucketState>> {
        let objects_dir = self.layout.objects_dir(name);
        let dir = Directory::open(&objects_dir)
            .await
            .map_err(io::Error::from)?;
        Ok(Rc::new(BucketState {
            name: name.to_string(),
            created_ms,
            index: RefCell::new(index),
            dir: GroupSync::new(Rc::new(dir)),
            key_locks: RefCell::new(HashMap::new()),
            in_flight: Cell::new(0),
            uploads: RefCell::new(HashMap::new()),
            multipart_data: RefCell::new(HashMap::new()),
        }))
    }

    pub(crate) fn bucket(&self, name: &str) -> StorageResult<Rc<BucketState>> {
        self.buckets
            .borrow()
            .get(name)
            .cloned()
            .ok_or_else(|| no_such_bucket(name))
    }

    /// Creation time of a bucket, or NoSuchBucket.
    pub fn head_bucket(&self, name: &str) -> StorageResult<u64> {
        Ok(self.bucket(name)?.created_ms)
    }

    pub fn list_buckets(&self) -> Vec<(String, u64)> {
        self.buckets
            .borrow()
            .iter()
            .map(|(n, b)| (n.clone(), b.created_ms))
            .collect()
    }

    pub async fn create_bucket(&self, name: &str, now_ms: u64) -> StorageResult<()> {
        let exists = || StorageError::BucketExists {
            bucket: name.to_string(),
        };
        if self.buckets.borrow().contains_key(name) {
            return Err(exists());
        }
        let (layout, owned_name, fsync) = (self.layout.clone(), name.to_string(), self.fsync);
        glommio::executor()
            .spawn_blocking(move || create_bucket_dirs(&layout, &owned_name, now_ms, fsync))
            .await
            .map_err(|e| StorageError::write("creating the bucket", e))?;
        // Re-check: a concurrent create of the same name may have finished while we awaited.
        if self.buckets.borrow().contains_key(name) {
            return Err(exists());
        }
        let state = self
            .bucket_state(name, now_ms, BucketIndex::new())
            .await
            .map_err(|e| StorageError::io("opening the bucket", e))?;
        self.buckets.borrow_mut().insert(name.to_string(), state);
        Ok(())
    }

    pub async fn delete_bucket(&self, name: &str) -> StorageResult<()> {
        let b = self.bucket(name)?;
        if !b.index.borrow().is_empty() || b.in_flight.get() > 0 {
            return Err(StorageError::BucketNotEmpty {
                bucket: name.to_string(),
            });
        }
        self.buckets.borrow_mut().remove(name);
        let (layout, owned_name, fsync) = (self.layout.clone(), name.to_string(), self.fsync);
        let result = glommio::executor()
            .spawn_blocking(move || remove_bucket_dirs(&layout, &owned_name, fsync))
            .await;
        if let Err(e) = result {
            // The bucket record may still be on disk: keep serving it rather than lose track.
            self.buckets.borrow_mut().insert(name.to_string(), b);
            return Err(StorageError::io("deleting the bucket", e));
        }
        Ok(())
    }

    /// Moves a durable staging file into place as `key` and publishes it in the index.
    pub async fn commit(
        &self,
        bucket: &str,
        key: &str,
        staging: &Path,
        summary: ObjectSummary,
        condition: &WriteCondition,
    ) -> StorageResult<()> {
        let b = self.bucket(bucket)?;
        self.commit_with(&b, key, staging, summary, None, condition)
            .await
    }

    /// Commit of a single-part (`upload_id = None`) or multipart object record; removes the
    /// replaced object's part files, if it had any, once the new record is durable.
    pub(crate) async fn commit_with(
        &self,
        b: &Rc<BucketState>,
        key: &str,
        staging: &Path,
        summary: ObjectSummary,
        upload_id: Option<String>,
        condition: &WriteCondition,
    ) -> StorageResult<()> {
        let _inflight = InFlight::new(b);
        let _permit = b.lock_key(key).await;
        check_write_condition(&b.index.borrow(), key, condition)?;
        let target = self.layout.object_file(&b.name, key);
        glommio::io::rename(staging, &target)
            .await
            .map_err(StorageError::glommio_write("committing the object"))?;
        if self.fsync {
            b.dir
                .sync()
                .await
                .map_err(|e| StorageError::write("syncing the bucket directory", e))?;
        }
        b.index.borrow_mut().insert(key.to_string(), summary);
        let replaced = match upload_id {
            Some(id) => b.multipart_data.borrow_mut().insert(key.to_string(), id),
            None => b.multipart_data.borrow_mut().remove(key),
        };
        if let Some(old) = replaced {
            self.remove_upload_dir(&b.name, &old).await?;
        }
        Ok(())
    }

    /// Removes `key` (no error when absent), durably, then drops it from the index.
    pub async fn delete_object(&self, bucket: &str, key: &str) -> StorageResult<()> {
        let b = self.bucket(bucket)?;
        let _inflight = InFlight::new(&b);
        let _permit = b.lock_key(key).await;
        if !b.index.borrow().contains_key(key) {
            return Ok(());
        }
        let target = self.layout.object_file(&b.name, key);
        match glommio::io::remove(&target).await {
            Ok(()) => {}
            Err(e) => {
                let e = io::Error::from(e);
                if e.kind() != io::ErrorKind::NotFound {
                    return Err(StorageError::io("deleting the object", e));
                }
            }
        }
        if self.fsync {
            b.dir
                .sync()
                .await
                .map_err(|e| StorageError::write("syncing the bucket directory", e))?;
        }
        b.index.borrow_mut().remove(key);
        let old = b.multipart_data.borrow_mut().remove(key);
        if let Some(old) = old {
            self.remove_upload_dir(&b.name, &old).await?;
        }
        Ok(())
    }

    pub fn list(&self, bucket: &str, params: &ListParams) -> StorageResult<ListPage> {
        let b = self.bucket(bucket)?;
        let index = b.index.borrow();
        Ok(list_page(&index, params))
    }
}

impl BucketState {
    /// Waits for this key's turn (FIFO) and holds it until the returned permit drops.
    async fn lock_key(self: &Rc<Self>, key: &str) -> KeyPermit {
        let sem = self
            .key_locks
            .borrow_mut()
            .entry(key.to_string())
            .or_insert_with(|| Rc::new(Semaphore::new(1)))
            .clone();
        sem.acquire(1).await.expect("key semaphore is never closed");
        KeyPermit {
            bucket: self.clone(),
            key: key.to_string(),
            sem,
        }
    }
}

struct KeyPermit {
    bucket: Rc<BucketState>,
    key: String,
    sem: Rc<Semaphore>,
}

impl Drop for KeyPermit {
    fn drop(&mut self) {
        self.sem.signal(1);
        // Drop the lock entry when nobody else holds or waits for it (map + our clone).
        if Rc::strong_count(&self.sem) == 2 && self.sem.available() == 1 {
            self.bucket.key_locks.borrow_mut().remove(&self.key);
        }
    }
}

struct InFlight(Rc<BucketState>);

impl InFlight {
    fn new(b: &Rc<BucketState>) -> InFlight {
        b.in_flight.set(b.in_flight.get() + 1);
        InFlight(b.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.set(self.0.in_flight.get() - 1);
    }
}

/// Whether `condition` lets a write to `key` proceed given the bucket's current index.
fn check_write_condition(
    index: &BucketIndex,
    key: &str,
    condition: &WriteCondition,
) -> StorageResult<()> {
    let failed = |condition| Err(StorageError::ConditionFailed { condition });
    match (condition, index.get(key)) {
        (WriteCondition::Always, _) => Ok(()),
        (WriteCondition::IfAbsent, None) => Ok(()),
        (WriteCondition::IfAbsent, Some(_)) => failed("If-None-Match"),
        (WriteCondition::IfEtag(_), None) => Err(StorageError::NoSuchKey {
            key: key.to_string(),
        }),
        (WriteCondition::IfEtag(want), Some(cur)) if &cur.etag == want => Ok(()),
        (WriteCondition::IfEtag(_), Some(_)) => failed("If-Match"),
    }
}

pub(crate) fn no_such_bucket(name: &str) -> StorageError {
    StorageError::NoSuchBucket {
        bucket: name.to_string(),
    }
}

pub(crate) fn read_record_blocking(
    path: &Path,
) -> io::Result<crate::storage::record::ObjectRecord> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; crate::storage::record::HEADER_MAX_BYTES];
    let mut n = 0;
    while n < buf.len() {
        let r = f.read(&mut buf[n..])?;
        if r == 0 {
            break;
        }
        n += r;
    }
    let (rec, header_len) = crate::storage::record::ObjectRecord::decode_header(&buf[..n])
        .map_err(|m| io::Error::new(io::ErrorKind::InvalidData, m))?;
    let len = f.metadata()?.len();
    let data_len = if rec.parts.is_some() { 0 } else { rec.size };
    if len != header_len as u64 + data_len {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "object file length does not match its record",
        ));
    }
    Ok(rec)
}

/// fsyncs a directory (blocking; startup and bucket/upload creation only).
pub(crate) fn sync_dir(path: &Path) -> io::Result<()> {
    std::fs::File::open(path)?.sync_all()
}

/// Writes a small metadata file atomically: a temporary sibling, synced, renamed over `path`,
/// then the directory synced (blocking; bucket and upload creation only).
pub(crate) fn write_durably(path: &Path, bytes: &[u8], fsync: bool) -> io::Result<()> {
    let tmp = tmp_sibling(path);
    std::fs::write(&tmp, bytes)?;
    if fsync {
        std::fs::File::open(&tmp)?.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if fsync {
        sync_dir(path.parent().expect("a metadata file has a directory"))?;
    }
    Ok(())
}

/// Creates the bucket's directories, then its meta file (whose presence makes the bucket exist).
fn create_bucket_dirs(layout: &Layout, name: &str, now_ms: u64, fsync: bool) -> io::Result<()> {
    std::fs::create_dir_all(layout.objects_dir(name))?;
    write_durably(
        &layout.bucket_meta(name),
        format!("{now_ms}\n").as_bytes(),
        fsync,
    )?;
    if fsync {
        sync_dir(&layout.buckets_dir())?;
    }
    Ok(())
}

/// Removes the meta file first (the bucket stops existing durably), then the directories.
fn remove_bucket_dirs(layout: &Layout, name: &str, fsync: bool) -> io::Result<()> {
    let bucket_dir = layout.bucket_dir(name);
    std::fs::remove_file(layout.bucket_meta(name))?;
    if fsync {
        sync_dir(&bucket_dir)?;
    }
    std::fs::remove_dir_all(&bucket_dir)?;
    if fsync {
        sync_dir(&layout.buckets_dir())?;
    }
    Ok(())
}
