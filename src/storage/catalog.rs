//! The catalogue: every bucket of the process and its shared index, plus the process-wide state
//! of the log engine (counters, per-core floors of unapplied records).
//!
//! Invariants: a bucket is in the catalogue exactly while its `bucket.meta` exists on disk (the
//! owner inserts it after the meta file is durable and removes it before deleting the file); its
//! incarnation never repeats, so records of a deleted bucket never apply to a recreated one; a
//! core's floor is at most the sequence number of any record it sealed and has not applied yet.

use crate::storage::index::{IndexEntry, SharedIndex};
use crate::storage::log::appender::LogCounters;
use crate::storage::log::RecordLocation;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

/// Recent deletes of a bucket by key: (sequence number, record). Kept while an older write of
/// the key could still arrive (see [`Catalog::global_floor`]), and while a checkpoint runs.
pub(crate) type Tombstones = HashMap<String, (u64, RecordLocation)>;

/// One bucket as every core sees it.
pub(crate) struct SharedBucket {
    pub(crate) name: String,
    pub(crate) created_ms: u64,
    /// Unique per creation: the sequence number taken when the bucket was created.
    pub(crate) incarnation: u64,
    /// Read by every core; written only through [`SharedBucket::set`],
    /// [`SharedBucket::relocate`] and [`SharedBucket::unset`] (and by replay, which sets
    /// `object_bytes` with it), so the byte total stays the sum of the entries' sizes.
    pub(crate) objects: SharedIndex,
    /// Sum of the sizes of the objects in `objects` (what `/metrics` reports as stored bytes).
    pub(crate) object_bytes: AtomicU64,
    /// Written by the owner only; read by checkpoints.
    pub(crate) tombstones: Mutex<Tombstones>,
}

impl SharedBucket {
    pub(crate) fn new(name: &str, created_ms: u64, incarnation: u64) -> SharedBucket {
        SharedBucket {
            name: name.to_string(),
            created_ms,
            incarnation,
            objects: SharedIndex::new(),
            object_bytes: AtomicU64::new(0),
            tombstones: Mutex::new(Tombstones::new()),
        }
    }

    /// Makes `entry` the key's current version in place of `replaced`, the entry the caller
    /// read as current (it is the bucket's single writer: the owner core under the key's lock,
    /// so that is still the current one), and keeps the byte total.
    pub(crate) fn set(&self, key: String, entry: IndexEntry, replaced: Option<&IndexEntry>) {
        debug_assert_eq!(
            self.objects.get(&key).map(|e| e.value().seq),
            replaced.map(|r| r.seq),
            "replaced entry is the current one"
        );
        let old = replaced.map_or(0, |e| e.summary.size);
        let new = entry.summary.size;
        self.objects.insert(key, entry);
        self.add_bytes(new, old);
    }

    /// Points the key's current entry (`current`, as its single writer just read it) at a copy
    /// of its record (compaction; replay of compaction copies): same object, same byte total.
    pub(crate) fn relocate(&self, key: String, current: IndexEntry, to: RecordLocation) {
        let moved = IndexEntry {
            location: to,
            ..current
        };
        self.objects.insert(key, moved);
    }

    /// Removes the key's current version (if any) and keeps the byte total.
    pub(crate) fn unset(&self, key: &str) {
        if let Some(e) = self.objects.remove(key) {
            self.add_bytes(0, e.value().summary.size);
        }
    }

    /// Sum of the stored objects' sizes.
    pub(crate) fn object_bytes(&self) -> u64 {
        self.object_bytes.load(Ordering::Relaxed)
    }

    /// The byte total counted afresh from the entries (what `object_bytes` must equal).
    #[cfg(test)]
    pub(crate) fn object_bytes_recounted(&self) -> u64 {
        self.objects.iter().map(|e| e.value().summary.size).sum()
    }

    fn add_bytes(&self, plus: u64, minus: u64) {
        // Wrapping add of the difference: one atomic step whichever is larger.
        self.object_bytes
            .fetch_add(plus.wrapping_sub(minus), Ordering::Relaxed);
    }
}

/// Every bucket, by name.
pub(crate) struct Catalog {
    buckets: RwLock<BTreeMap<String, Arc<SharedBucket>>>,
    pub(crate) counters: LogCounters,
    /// Per core: lowest sequence number any record it sealed but has not yet applied may have
    /// (`u64::MAX` when none is in flight).
    floors: Vec<AtomicU64>,
    /// A checkpoint is being taken: tombstones are not pruned and compaction does not start.
    pub(crate) checkpointing: AtomicBool,
    /// Compactions between their first copy and their last relocation.
    pub(crate) compactions_in_flight: AtomicUsize,
    /// The server is stopping: no compaction or checkpoint starts.
    pub(crate) stopping: AtomicBool,
    /// Held while a checkpoint file is written (one writer of `checkpoint.tmp` at a time).
    pub(crate) checkpoint_write: Mutex<()>,
    /// The floor of the checkpoint a start would read (`u64::MAX` without one): a tombstone at
    /// or above it may cover an older entry in that checkpoint, so compaction keeps it.
    pub(crate) checkpoint_floor: AtomicU64,
}

impl Catalog {
    pub(crate) fn new(counters: LogCounters, cores: usize) -> Catalog {
        Catalog {
            buckets: RwLock::new(BTreeMap::new()),
            counters,
            floors: (0..cores).map(|_| AtomicU64::new(u64::MAX)).collect(),
            checkpointing: AtomicBool::new(false),
            compactions_in_flight: AtomicUsize::new(0),
            stopping: AtomicBool::new(false),
            checkpoint_write: Mutex::new(()),
            checkpoint_floor: AtomicU64::new(u64::MAX),
        }
    }

    pub(crate) fn bucket(&self, name: &str) -> Option<Arc<SharedBucket>> {
        self.buckets
            .read()
            .expect("catalog lock")
            .get(name)
            .cloned()
    }

    pub(crate) fn insert(&self, bucket: Arc<SharedBucket>) {
        let mut all = self.buckets.write().expect("catalog lock");
        let previous = all.insert(bucket.name.clone(), bucket);
        assert!(previous.is_none(), "a bucket is created once");
    }

    pub(crate) fn remove(&self, name: &str) -> Option<Arc<SharedBucket>> {
        self.buckets.write().expect("catalog lock").remove(name)
    }

    /// Every bucket, sorted by name.
    pub(crate) fn all(&self) -> Vec<Arc<SharedBucket>> {
        let all = self.buckets.read().expect("catalog lock");
        all.values().cloned().collect()
    }

    /// Publishes `core`'s floor (see [`Catalog`]).
    pub(crate) fn set_floor(&self, core: usize, floor: u64) {
        self.floors[core].store(floor, Ordering::SeqCst);
    }

    /// No record with a sequence number below this is sealed and still waiting to be applied:
    /// a tombstone below it can no longer be overtaken by an older write and may be forgotten.
    pub(crate) fn global_floor(&self) -> u64 {
        let lowest = self.floors.iter().map(|f| f.load(Ordering::SeqCst)).min();
        lowest.unwrap_or(u64::MAX).min(self.counters.peek())
    }
}

/// One core's writes between log and index: each holds a floor (the sequence counter's value
/// before its record was sealed, so at most its sequence number) from before it appends until
/// it installed or gave up; the lowest is published as the core's floor.
pub(crate) struct Floors {
    core: usize,
    catalog: Arc<Catalog>,
    held: RefCell<BTreeMap<u64, usize>>,
}

/// A held floor; released on drop.
pub(crate) struct FloorGuard {
    floors: Rc<Floors>,
    floor: u64,
}

impl Floors {
    pub(crate) fn new(core: usize, catalog: Arc<Catalog>) -> Rc<Floors> {
        Rc::new(Floors {
            core,
            catalog,
            held: RefCell::new(BTreeMap::new()),
        })
    }

    /// Holds a floor for a write about to seal its record.
    pub(crate) fn enter(self: &Rc<Self>) -> FloorGuard {
        let floor = self.catalog.counters.peek();
        let mut held = self.held.borrow_mut();
        *held.entry(floor).or_insert(0) += 1;
        let lowest = *held.keys().next().expect("a floor");
        self.catalog.set_floor(self.core, lowest);
        FloorGuard {
            floors: self.clone(),
            floor,
        }
    }
}

impl Drop for FloorGuard {
    fn drop(&mut self) {
        let f = &self.floors;
        let mut held = f.held.borrow_mut();
        let n = held.get_mut(&self.floor).expect("an entered floor");
        *n -= 1;
        if *n == 0 {
            held.remove(&self.floor);
        }
        let lowest = held.keys().next().copied().unwrap_or(u64::MAX);
        f.catalog.set_floor(f.core, lowest);
    }
}
