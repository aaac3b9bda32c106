//! Owner state: the buckets one core owns, their indexes, and every metadata change to them.
//!
//! Invariants: only the owner core of a bucket (`owner = hash(bucket) % cores`) creates, deletes
//! or commits into it, so its changes are ordered without cross-core locks; changes to one key
//! are applied strictly in arrival order (a per-key FIFO permit), and the index is updated only
//! after the change is durable (rename + directory fsync) — so an acknowledged write is on disk
//! and a listed key is readable.

use crate::storage::disk::{sync_dir, write_durably};
use crate::storage::error::{StorageError, StorageResult};
use crate::storage::group_sync::GroupSync;
use crate::storage::index::{BucketIndex, ObjectSummary, WriteCondition};
use crate::storage::layout::Layout;
use crate::storage::list::{list_page, ListPage, ListParams};
use crate::storage::locks::KeyedLocks;
use crate::storage::recovery::{self, LoadReport};
use crate::storage::uploads::UploadState;
use glommio::io::Directory;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::Path;
use std::rc::Rc;

/// One bucket owned by this core.
pub(crate) struct BucketState {
    pub(crate) name: String,
    pub(crate) created_ms: u64,
    pub(crate) index: RefCell<BucketIndex>,
    dir: GroupSync,
    /// One FIFO lock per key: changes to a key apply in arrival order.
    key_locks: Rc<KeyedLocks<String>>,
    /// Commits and deletes in progress (a bucket with any is not empty).
    in_flight: Cell<usize>,
    /// Multipart uploads in progress, by upload id.
    pub(crate) uploads: RefCell<HashMap<String, Rc<UploadState>>>,
    /// Keys whose current object is multipart -> the upload directory holding its parts.
    pub(crate) multipart_data: RefCell<HashMap<String, String>>,
}

/// The buckets owned by one core.
pub(crate) struct Owner {
    pub(crate) layout: Layout,
    pub(crate) fsync: bool,
    buckets: RefCell<BTreeMap<String, Rc<BucketState>>>,
}

impl Owner {
    pub(crate) fn new(layout: Layout, fsync: bool) -> Owner {
        Owner {
            layout,
            fsync,
            buckets: RefCell::new(BTreeMap::new()),
        }
    }

    /// Loads the buckets for which `is_mine(name)` holds from disk (startup only; blocking I/O).
    pub(crate) async fn load(&self, is_mine: impl Fn(&str) -> bool) -> io::Result<LoadReport> {
        let mut report = LoadReport::default();
        for (name, created_ms) in recovery::my_buckets(&self.layout, is_mine, &mut report)? {
            let loaded = recovery::load_bucket(&self.layout, name, created_ms, &mut report)?;
            let state = self
                .bucket_state(&loaded.name, loaded.created_ms, loaded.index)
                .await?;
            *state.multipart_data.borrow_mut() = loaded.multipart_data;
            *state.uploads.borrow_mut() = loaded.uploads;
            self.buckets.borrow_mut().insert(loaded.name, state);
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
            key_locks: KeyedLocks::new(),
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
    pub(crate) fn head_bucket(&self, name: &str) -> StorageResult<u64> {
        Ok(self.bucket(name)?.created_ms)
    }

    pub(crate) fn list_buckets(&self) -> Vec<(String, u64)> {
        self.buckets
            .borrow()
            .iter()
            .map(|(n, b)| (n.clone(), b.created_ms))
            .collect()
    }

    pub(crate) async fn create_bucket(&self, name: &str, now_ms: u64) -> StorageResult<()> {
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

    pub(crate) async fn delete_bucket(&self, name: &str) -> StorageResult<()> {
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
    pub(crate) async fn commit(
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
        // Only staged files (already synced by their writer) are ever renamed into a bucket.
        assert!(
            self.layout.is_staging_file(staging),
            "commit of a file that was not staged"
        );
        let _inflight = InFlight::new(b);
        let _permit = b.key_locks.lock(key.to_string()).await;
        check_write_condition(&b.index.borrow(), key, condition)?;
        let target = self.layout.object_file(&b.name, key);
        glommio::io::rename(staging, &target)
            .await
            .map_err(StorageError::glommio_write("committing the object"))?;
        let synced = self.sync_bucket_dir(b).await?;
        b.publish(key, Some(summary), synced);
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
    pub(crate) async fn delete_object(&self, bucket: &str, key: &str) -> StorageResult<()> {
        let b = self.bucket(bucket)?;
        let _inflight = InFlight::new(&b);
        let _permit = b.key_locks.lock(key.to_string()).await;
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
        let synced = self.sync_bucket_dir(&b).await?;
        b.publish(key, None, synced);
        let old = b.multipart_data.borrow_mut().remove(key);
        if let Some(old) = old {
            self.remove_upload_dir(&b.name, &old).await?;
        }
        Ok(())
    }

    pub(crate) fn list(&self, bucket: &str, params: &ListParams) -> StorageResult<ListPage> {
        let b = self.bucket(bucket)?;
        let index = b.index.borrow();
        Ok(list_page(&index, params))
    }

    /// Removes an upload's directory (its parts), durably.
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
}

impl Owner {
    /// Makes the bucket directory's entries durable (with `--fsync always`): the step between a
    /// rename or removal and publishing it. The returned proof is what [`BucketState::publish`]
    /// requires, so the index never shows a change that a crash could undo.
    async fn sync_bucket_dir(&self, b: &BucketState) -> StorageResult<DirSynced> {
        if self.fsync {
            b.dir
                .sync()
                .await
                .map_err(|e| StorageError::write("syncing the bucket directory", e))?;
        }
        Ok(DirSynced(()))
    }
}

/// Proof that a bucket directory change is durable; made only by [`Owner::sync_bucket_dir`].
struct DirSynced(());

impl BucketState {
    /// Publishes a durable change of `key` in the index: `Some` puts the object, `None` removes
    /// it. The caller holds the key's lock and counts as in flight.
    fn publish(&self, key: &str, summary: Option<ObjectSummary>, _durable: DirSynced) {
        assert!(
            self.in_flight.get() > 0,
            "publish outside a commit or delete"
        );
        assert!(
            self.key_locks.is_locked(key),
            "publish without the key's lock"
        );
        match summary {
            Some(s) => self.index.borrow_mut().insert(key.to_string(), s),
            None => self.index.borrow_mut().remove(key),
        };
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
        assert!(self.0.in_flight.get() > 0);
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

/// Creates the bucket's directories, then its meta file (whose presence makes the bucket exist).
///
/// `objects/` and `uploads/` exist before `bucket.meta`, whose durable write syncs the bucket
/// directory: so both directory entries are durable once the bucket exists (an upload's
/// directory created later under a never-synced `uploads/` could vanish in a power cut).
fn create_bucket_dirs(layout: &Layout, name: &str, now_ms: u64, fsync: bool) -> io::Result<()> {
    std::fs::create_dir_all(layout.objects_dir(name))?;
    std::fs::create_dir_all(layout.uploads_dir(name))?;
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
