//! The catalogue: every bucket of the process and its shared index, plus the process-wide state
//! of the log engine (counters, per-core floors of unapplied records).
//!
//! Invariants: a bucket is in the catalogue exactly while its `bucket.meta` exists on disk (the
//! owner inserts it after the meta file is durable and removes it before deleting the file); its
//! incarnation never repeats, so records of a deleted bucket never apply to a recreated one; a
//! core's floor is at most the sequence number of any record it sealed and has not applied yet.

use crate::storage::index::SharedIndex;
use crate::storage::log::appender::LogCounters;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// One bucket as every core sees it.
pub(crate) struct SharedBucket {
    pub(crate) name: String,
    pub(crate) created_ms: u64,
    /// Unique per creation: the sequence number taken when the bucket was created.
    pub(crate) incarnation: u64,
    pub(crate) objects: SharedIndex,
}

/// Every bucket, by name.
pub(crate) struct Catalog {
    buckets: RwLock<BTreeMap<String, Arc<SharedBucket>>>,
    pub(crate) counters: LogCounters,
    /// Per core: lowest sequence number any record it sealed but has not yet applied may have
    /// (`u64::MAX` when none is in flight).
    floors: Vec<AtomicU64>,
}

impl Catalog {
    pub(crate) fn new(counters: LogCounters, cores: usize) -> Catalog {
        Catalog {
            buckets: RwLock::new(BTreeMap::new()),
            counters,
            floors: (0..cores).map(|_| AtomicU64::new(u64::MAX)).collect(),
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
