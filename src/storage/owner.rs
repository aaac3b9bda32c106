//! Owner state: the buckets one core owns, and every change to their indexes.
//!
//! Two ways a change reaches the index, both ending in [`BucketState::install`] under the key's
//! lock:
//! - *apply*: a small unconditional PUT sealed its record into the accepting core's log, and
//!   that core sends the owner the resulting index entry (bytes never cross cores);
//! - *owner writes*: file-backed PUTs, conditional PUTs, deletes and multipart completions,
//!   whose conditions are checked and whose record is appended to this core's log while the
//!   owner holds the key's lock.
//!
//! Invariants: only the owner core of a bucket (`owner = hash(bucket) % cores`) changes its
//! index; an entry is installed only after its log record is durable (the [`Durable`] proof);
//! between two changes of a key the higher sequence number wins — the rule replay applies — and
//! tombstones are kept in memory while an older change could still arrive (the catalogue's
//! floor); a file or upload directory is removed only once no index entry names it.

use crate::storage::catalog::{Catalog, Floors, SharedBucket};
use crate::storage::disk::{sync_dir, write_durably};
use crate::storage::entry;
use crate::storage::error::{StorageError, StorageResult};
use crate::storage::group_sync::GroupSync;
use crate::storage::index::{Body, IndexEntry, ObjectSummary, SharedIndex, WriteCondition};
use crate::storage::layout::Layout;
use crate::storage::locks::KeyedLocks;
use crate::storage::log::appender::{Appended, Appender};
use crate::storage::log::table::key_hash;
use crate::storage::log::RecordLocation;
use crate::storage::recovery::{self, LoadReport};
use crate::storage::uploads::UploadState;
use glommio::io::Directory;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

/// Tombstones a bucket keeps before it first prunes those no older write can overtake.
const TOMBSTONES_PRUNE_MIN: usize = 1024;

/// A key reserved for a conditional write in progress (see `owner_reserve`): its lock and
/// in-flight count are held until the write is applied or released.
pub(crate) struct Reservation {
    pub(crate) bucket: Rc<BucketState>,
    pub(crate) key: String,
    /// Held for their drops.
    pub(crate) _permit: crate::storage::locks::KeyedPermit<String>,
    pub(crate) _inflight: InFlight,
}

/// One bucket owned by this core.
pub(crate) struct BucketState {
    pub(crate) shared: Arc<SharedBucket>,
    dir: GroupSync,
    /// One FIFO lock per key: changes to a key apply in arrival order.
    pub(crate) key_locks: Rc<KeyedLocks<String>>,
    /// Changes in progress (a bucket with any is not empty).
    in_flight: Cell<usize>,
    /// Multipart uploads in progress, by upload id.
    pub(crate) uploads: RefCell<HashMap<String, Rc<UploadState>>>,
    prune_tombstones_at: Cell<usize>,
}

/// The buckets owned by one core.
pub(crate) struct Owner {
    pub(crate) layout: Layout,
    pub(crate) fsync: bool,
    pub(crate) catalog: Arc<Catalog>,
    pub(crate) log: Appender,
    /// This core's writes between log and index (shared with its [`Store`]).
    ///
    /// [`Store`]: crate::storage::Store
    pub(crate) floors: Rc<Floors>,
    buckets: RefCell<BTreeMap<String, Rc<BucketState>>>,
    /// Keys reserved for conditional writes in progress on some core, by reservation id.
    pub(crate) reservations: RefCell<HashMap<u64, Reservation>>,
    pub(crate) next_reservation: Cell<u64>,
}

/// Proof that a change's log record is durable (and where it is); made only from an
/// [`Appended`] record or an entry another core made durable.
pub(crate) struct Durable {
    seq: u64,
    location: RecordLocation,
}

impl Durable {
    /// For an entry whose record another core made durable (an apply).
    pub(crate) fn of_entry(entry: &IndexEntry) -> Durable {
        Durable {
            seq: entry.seq,
            location: entry.location,
        }
    }

    pub(crate) fn of(appended: &Appended) -> Durable {
        Durable {
            seq: appended.seq,
            location: appended.location,
        }
    }
}

/// A record compaction copied: the owner points the key's entry at `to` if it still names
/// the record at `from`.
#[derive(Debug)]
pub(crate) struct Relocation {
    pub(crate) key: String,
    pub(crate) seq: u64,
    pub(crate) from: RecordLocation,
    pub(crate) to: RecordLocation,
}

impl Owner {
    pub(crate) fn new(
        layout: Layout,
        fsync: bool,
        catalog: Arc<Catalog>,
        log: Appender,
        floors: Rc<Floors>,
    ) -> Owner {
        Owner {
            layout,
            fsync,
            catalog,
            log,
            floors,
            buckets: RefCell::new(BTreeMap::new()),
            reservations: RefCell::new(HashMap::new()),
            next_reservation: Cell::new(0),
        }
    }

    /// Takes over the catalogue's buckets for which `is_mine(name)` holds: their uploads in
    /// progress, and cleanup of what no index entry names (startup only; blocking I/O).
    pub(crate) async fn load(&self, is_mine: impl Fn(&str) -> bool) -> io::Result<LoadReport> {
        let mut report = LoadReport::default();
        for shared in self.catalog.all() {
            if !is_mine(&shared.name) {
                continue;
            }
            let uploads = recovery::load_bucket_files(&self.layout, &shared, &mut report)?;
            let state = self.bucket_state(shared.clone()).await?;
            *state.uploads.borrow_mut() = uploads;
            self.buckets.borrow_mut().insert(shared.name.clone(), state);
        }
        Ok(report)
    }

    async fn bucket_state(&self, shared: Arc<SharedBucket>) -> io::Result<Rc<BucketState>> {
        let objects_dir = self.layout.objects_dir(&shared.name);
        let dir = Directory::open(&objects_dir)
            .await
            .map_err(io::Error::from)?;
        Ok(Rc::new(BucketState {
            shared,
            dir: GroupSync::new(Rc::new(dir)),
            key_locks: KeyedLocks::new(),
            in_flight: Cell::new(0),
            uploads: RefCell::new(HashMap::new()),
            prune_tombstones_at: Cell::new(TOMBSTONES_PRUNE_MIN),
        }))
    }

    pub(crate) fn bucket(&self, name: &str) -> StorageResult<Rc<BucketState>> {
        self.buckets
            .borrow()
            .get(name)
            .cloned()
            .ok_or_else(|| no_such_bucket(name))
    }

    pub(crate) async fn create_bucket(&self, name: &str, now_ms: u64) -> StorageResult<()> {
        let exists = || StorageError::BucketExists {
            bucket: name.to_string(),
        };
        if self.buckets.borrow().contains_key(name) {
            return Err(exists());
        }
        let incarnation = self.catalog.counters.seq();
        let (layout, owned_name, fsync) = (self.layout.clone(), name.to_string(), self.fsync);
        glommio::executor()
            .spawn_blocking(move || {
                create_bucket_dirs(&layout, &owned_name, now_ms, incarnation, fsync)
            })
            .await
            .map_err(|e| StorageError::write("creating the bucket", e))?;
        // Re-check: a concurrent create of the same name may have finished while we awaited.
        if self.buckets.borrow().contains_key(name) {
            return Err(exists());
        }
        let shared = Arc::new(SharedBucket::new(name, now_ms, incarnation));
        let state = self
            .bucket_state(shared.clone())
            .await
            .map_err(|e| StorageError::io("opening the bucket", e))?;
        self.buckets.borrow_mut().insert(name.to_string(), state);
        self.catalog.insert(shared);
        Ok(())
    }

    pub(crate) async fn delete_bucket(&self, name: &str) -> StorageResult<()> {
        let b = self.bucket(name)?;
        if !b.shared.objects.is_empty() || b.in_flight.get() > 0 {
            return Err(StorageError::BucketNotEmpty {
                bucket: name.to_string(),
            });
        }
        self.buckets.borrow_mut().remove(name);
        let shared = self
            .catalog
            .remove(name)
            .expect("an owned bucket is catalogued");
        let (layout, owned_name, fsync) = (self.layout.clone(), name.to_string(), self.fsync);
        let result = glommio::executor()
            .spawn_blocking(move || remove_bucket_dirs(&layout, &owned_name, fsync))
            .await;
        if let Err(e) = result {
            // The bucket record may still be on disk: keep serving it rather than lose track.
            self.buckets.borrow_mut().insert(name.to_string(), b);
            self.catalog.insert(shared);
            return Err(StorageError::io("deleting the bucket", e));
        }
        Ok(())
    }

    /// Installs `entry` for `key`, whose record (of bucket incarnation `incarnation`) another
    /// core made durable in its log.
    pub(crate) async fn apply(
        &self,
        bucket: &str,
        incarnation: u64,
        key: &str,
        entry: IndexEntry,
    ) -> StorageResult<()> {
        let b = self.bucket(bucket)?;
        if b.shared.incarnation != incarnation {
            // The bucket was deleted (and maybe recreated) while the write was in flight.
            return Err(no_such_bucket(bucket));
        }
        let _inflight = InFlight::new(&b);
        let _permit = b.key_locks.lock(key.to_string()).await;
        let durable = Durable::of_entry(&entry);
        let displaced = b.install(key, Some(entry), durable, &self.catalog);
        self.discard(&b, displaced).await;
        Ok(())
    }

    /// Moves a durable staging file into the bucket as `key`'s new version if `condition`
    /// holds: renamed to a fresh name, the directory synced, then its record logged.
    pub(crate) async fn commit_file(
        &self,
        bucket: &str,
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
        let b = self.bucket(bucket)?;
        let _inflight = InFlight::new(&b);
        let _permit = b.key_locks.lock(key.to_string()).await;
        check_write_condition(&b.shared.objects, key, condition)?;
        let name = format!("o-{:016x}", self.catalog.counters.seq());
        let target = self.layout.objects_dir(bucket).join(&name);
        glommio::io::rename(staging, &target)
            .await
            .map_err(StorageError::glommio_write("committing the object"))?;
        if self.fsync {
            if let Err(e) = b.dir.sync().await {
                let _ = glommio::io::remove(&target).await;
                return Err(StorageError::write("syncing the bucket directory", e));
            }
        }
        let payload = entry::put_file(
            bucket,
            b.shared.incarnation,
            key,
            &summary,
            &name,
            upload_id.as_deref(),
        );
        let _floor = self.floors.enter();
        let appended = match self.log.append(entry::KIND_PUT_FILE, &[&payload]).await {
            Ok(a) => a,
            Err(e) => {
                let _ = glommio::io::remove(&target).await;
                return Err(StorageError::write("logging the object", e));
            }
        };
        let body = Body::File { name, upload_id };
        let new = IndexEntry {
            seq: appended.seq,
            location: appended.location,
            summary,
            body,
        };
        let displaced = b.install(key, Some(new), Durable::of(&appended), &self.catalog);
        self.discard(&b, displaced).await;
        Ok(())
    }

    /// Deletes `key` (no error when absent): a durable tombstone, then the index entry.
    pub(crate) async fn delete_object(&self, bucket: &str, key: &str) -> StorageResult<()> {
        let b = self.bucket(bucket)?;
        let _inflight = InFlight::new(&b);
        let _permit = b.key_locks.lock(key.to_string()).await;
        if !b.shared.objects.contains_key(key) {
            return Ok(());
        }
        let payload = entry::delete(bucket, b.shared.incarnation, key);
        let _floor = self.floors.enter();
        let appended = self
            .log
            .append_freeing(entry::KIND_DELETE, &[&payload])
            .await
            .map_err(|e| StorageError::write("logging the delete", e))?;
        let displaced = b.install(key, None, Durable::of(&appended), &self.catalog);
        self.discard(&b, displaced).await;
        Ok(())
    }

    /// Points entries at the copies compaction made of their records, where the entry still
    /// names the copied record; returns, per relocation, whether it took. Synchronous, so no
    /// install of this core interleaves.
    pub(crate) fn relocate(
        &self,
        bucket: &str,
        incarnation: u64,
        moves: &[Relocation],
    ) -> Vec<bool> {
        let b = match self.bucket(bucket) {
            Ok(b) if b.shared.incarnation == incarnation => b,
            _ => return vec![false; moves.len()],
        };
        let table = &self.catalog.counters.segments;
        let objects = &b.shared.objects;
        moves
            .iter()
            .map(|m| {
                let current = objects.get(&m.key).map(|e| e.value().clone());
                match current {
                    Some(e) if e.seq == m.seq && e.location == m.from => {
                        b.shared.relocate(m.key.clone(), e, m.to);
                        table.mark_dead(m.from, Some(key_hash(bucket, &m.key)));
                        true
                    }
                    _ => false,
                }
            })
            .collect()
    }

    /// Removes what a displaced (or losing) version occupied: its file and its upload's parts.
    /// Failures leave orphans that the next startup removes; they never fail the request.
    pub(crate) async fn discard(&self, b: &BucketState, body: Option<Body>) {
        let Some(Body::File { name, upload_id }) = body else {
            return;
        };
        let path = self.layout.objects_dir(&b.shared.name).join(&name);
        let _ = glommio::io::remove(&path).await;
        if let Some(id) = upload_id {
            let _ = self.remove_upload_dir(&b.shared.name, &id).await;
        }
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

impl BucketState {
    /// Makes a durable change of `key` current unless a newer one already is: `Some` puts the
    /// entry, `None` deletes. Returns the body no entry names any more (the displaced version's,
    /// or the change's own when it lost), for the caller to discard. The caller holds the key's
    /// lock and counts as in flight.
    pub(crate) fn install(
        &self,
        key: &str,
        entry: Option<IndexEntry>,
        durable: Durable,
        catalog: &Catalog,
    ) -> Option<Body> {
        assert!(self.in_flight.get() > 0, "install outside a change");
        assert!(
            self.key_locks.is_locked(key),
            "install without the key's lock"
        );
        let Durable { seq, location } = durable;
        assert!(
            entry
                .as_ref()
                .is_none_or(|e| e.seq == seq && e.location == location),
            "entry is its record"
        );
        let table = &catalog.counters.segments;
        let hash = key_hash(&self.shared.name, key);
        let current = self.shared.objects.get(key).map(|e| e.value().clone());
        let newest = current
            .as_ref()
            .map(|c| c.seq)
            .max(self.tombstones().get(key).map(|t| t.0))
            .unwrap_or(0);
        if seq < newest {
            // A newer change was installed first: this one is already history.
            table.mark_dead(location, entry.is_some().then_some(hash));
            return entry.map(|e| e.body);
        }
        match entry {
            Some(e) => {
                let displaced_tombstone = self.tombstones().remove(key);
                if let Some((_, at)) = displaced_tombstone {
                    table.mark_dead(at, None);
                }
                self.shared.set(key.to_string(), e, current.as_ref());
            }
            None => {
                self.shared.unset(key);
                self.remember_tombstone(key, seq, location, catalog);
            }
        }
        if let Some(c) = &current {
            table.mark_dead(c.location, Some(hash));
        }
        current.map(|c| c.body)
    }

    fn tombstones(&self) -> std::sync::MutexGuard<'_, crate::storage::catalog::Tombstones> {
        self.shared.tombstones.lock().expect("tombstones")
    }

    fn remember_tombstone(&self, key: &str, seq: u64, at: RecordLocation, catalog: &Catalog) {
        let mut t = self.tombstones();
        t.insert(key.to_string(), (seq, at));
        let checkpointing = catalog
            .checkpointing
            .load(std::sync::atomic::Ordering::SeqCst);
        if t.len() >= self.prune_tombstones_at.get() && !checkpointing {
            let floor = catalog.global_floor();
            t.retain(|_, s| s.0 >= floor);
            self.prune_tombstones_at
                .set((t.len() * 2).max(TOMBSTONES_PRUNE_MIN));
        }
    }
}

pub(crate) struct InFlight(Rc<BucketState>);

impl InFlight {
    pub(crate) fn new(b: &Rc<BucketState>) -> InFlight {
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
pub(crate) fn check_write_condition(
    index: &SharedIndex,
    key: &str,
    condition: &WriteCondition,
) -> StorageResult<()> {
    let failed = |condition| Err(StorageError::ConditionFailed { condition });
    let current = index.get(key);
    let etag = current.as_ref().map(|e| e.value().summary.etag.as_str());
    if let Some(want) = &condition.if_match {
        // S3: If-Match on a key without an object is NoSuchKey, not 412.
        let etag = etag.ok_or_else(|| StorageError::NoSuchKey {
            key: key.to_string(),
        })?;
        if !want.matches(etag, true) {
            return failed("If-Match");
        }
    }
    if let (Some(unwanted), Some(etag)) = (&condition.if_none_match, etag) {
        if unwanted.matches(etag, false) {
            return failed("If-None-Match");
        }
    }
    Ok(())
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
fn create_bucket_dirs(
    layout: &Layout,
    name: &str,
    now_ms: u64,
    incarnation: u64,
    fsync: bool,
) -> io::Result<()> {
    std::fs::create_dir_all(layout.objects_dir(name))?;
    std::fs::create_dir_all(layout.uploads_dir(name))?;
    write_durably(
        &layout.bucket_meta(name),
        format!("{now_ms} {incarnation}\n").as_bytes(),
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
