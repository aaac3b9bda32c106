//! The read cache: object bodies (and their records) kept in memory across requests and cores,
//! so re-reads skip the disk (ringstore reads with O_DIRECT, so the page cache never holds
//! them). `--cache-size` bounds it (total for the process).
//!
//! Entries are keyed by the object version's sequence number, which names one immutable body:
//! an overwrite or delete installs a different sequence number, so no entry is ever invalidated
//! for correctness (a compaction copy keeps the number and the bytes). The entry of a replaced
//! or deleted version is never asked for again; the cache's policy (CLOCK-Pro-like, scan
//! resistant: new entries start cold and only re-read ones turn hot) evicts it first.
//!
//! Invariants: the weighed bytes of all entries stay within the capacity (the cache evicts to
//! insert); an entry's data is exactly its record's `size` bytes; objects above
//! [`ReadCache::object_max_bytes`] are never cached, so one object cannot flush a shard.

use crate::storage::record::ObjectRecord;
use bytes::Bytes;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Default `--cache-size`: total memory for cached bodies.
pub(crate) const CACHE_SIZE_DEFAULT_BYTES: u64 = 1024 * 1024 * 1024;
/// Shards of the cache (each with its own lock and a share of the capacity).
const CACHE_SHARDS: usize = 8;
/// Largest object cached, as a fraction of one shard's capacity (1 / this).
const OBJECT_SHARE_OF_SHARD_DIVISOR: u64 = 4;
/// Bytes an entry is weighed at beyond its data (record, key, bookkeeping).
const ENTRY_OVERHEAD_BYTES: u64 = 512;
/// Typical cached object, for sizing the cache's tables.
const TYPICAL_ENTRY_BYTES: u64 = 64 * 1024;

/// A cached object version: its record and all of its bytes.
pub(crate) struct CachedObject {
    pub(crate) record: Arc<ObjectRecord>,
    pub(crate) data: Bytes,
}

#[derive(Clone)]
struct Weigh;

impl quick_cache::Weighter<u64, Arc<CachedObject>> for Weigh {
    fn weight(&self, _seq: &u64, v: &Arc<CachedObject>) -> u64 {
        v.data.len() as u64 + v.record.key.len() as u64 + ENTRY_OVERHEAD_BYTES
    }
}

type Inner = quick_cache::sync::Cache<u64, Arc<CachedObject>, Weigh>;

/// Lookups and fills since the start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CacheStats {
    pub(crate) hits: u64,
    pub(crate) misses: u64,
    pub(crate) inserts: u64,
    /// Bytes held now (weighed).
    pub(crate) held_bytes: u64,
}

/// The process-wide read cache (shared by every core's store).
pub(crate) struct ReadCache {
    /// `None` when disabled (`--cache-size 0`).
    inner: Option<Inner>,
    object_max_bytes: u64,
    hits: AtomicU64,
    misses: AtomicU64,
    inserts: AtomicU64,
}

impl ReadCache {
    /// A cache of `capacity_bytes` in all (0 disables it).
    pub(crate) fn new(capacity_bytes: u64) -> ReadCache {
        let inner = (capacity_bytes > 0).then(|| {
            let options = quick_cache::OptionsBuilder::new()
                .shards(CACHE_SHARDS)
                .weight_capacity(capacity_bytes)
                .estimated_items_capacity((capacity_bytes / TYPICAL_ENTRY_BYTES).max(16) as usize)
                .build()
                .expect("cache options");
            Inner::with_options(options, Weigh, Default::default(), Default::default())
        });
        let object_max_bytes = inner.as_ref().map_or(0, |c| {
            (c.shard_capacity() / OBJECT_SHARE_OF_SHARD_DIVISOR)
                .saturating_sub(ENTRY_OVERHEAD_BYTES)
        });
        ReadCache {
            inner,
            object_max_bytes,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            inserts: AtomicU64::new(0),
        }
    }

    /// Largest object body the cache takes (0 when disabled).
    #[cfg(test)]
    pub(crate) fn object_max_bytes(&self) -> u64 {
        self.object_max_bytes
    }

    /// Whether an object of `size` bytes would be cached once read.
    pub(crate) fn admits(&self, size: u64) -> bool {
        size <= self.object_max_bytes && self.inner.is_some()
    }

    /// The cached version `seq`, if held.
    pub(crate) fn get(&self, seq: u64) -> Option<Arc<CachedObject>> {
        let found = self.inner.as_ref()?.get(&seq);
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Caches version `seq` of an object: `data` must be all of `record.size` bytes.
    pub(crate) fn insert(&self, seq: u64, record: Arc<ObjectRecord>, data: Bytes) {
        let Some(inner) = &self.inner else {
            return;
        };
        assert_eq!(data.len() as u64, record.size, "a cached body is whole");
        if !self.admits(record.size) {
            return;
        }
        inner.insert(seq, Arc::new(CachedObject { record, data }));
        self.inserts.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            inserts: self.inserts.load(Ordering::Relaxed),
            held_bytes: self.inner.as_ref().map_or(0, |c| c.weight()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(key: &str, size: usize, fill: u8) -> (ObjectRecord, Bytes) {
        let mut rec = ObjectRecord::new(key);
        rec.size = size as u64;
        (rec, Bytes::from(vec![fill; size]))
    }

    #[test]
    fn holds_at_most_its_capacity_and_evicts_to_insert() {
        const CAPACITY: u64 = 8 * 1024 * 1024;
        let cache = ReadCache::new(CAPACITY);
        let size = 64 * 1024;
        assert!(cache.admits(size as u64));
        for seq in 0..1000u64 {
            let (rec, data) = object(&format!("k{seq}"), size, seq as u8);
            cache.insert(seq, Arc::new(rec), data);
            assert!(
                cache.stats().held_bytes <= CAPACITY,
                "over capacity at {seq}"
            );
        }
        let held = (0..1000u64).filter(|s| cache.get(*s).is_some()).count();
        assert!(held > 0 && held < 1000, "{held} of 1000 held");
        // What is held is what was inserted under that number.
        for seq in 0..1000u64 {
            if let Some(hit) = cache.get(seq) {
                assert_eq!(hit.record.key, format!("k{seq}"));
                assert!(hit.data.iter().all(|b| *b == seq as u8));
            }
        }
        let s = cache.stats();
        assert_eq!(s.inserts, 1000);
        assert_eq!(s.hits + s.misses, 2000);
    }

    #[test]
    fn large_objects_are_refused_and_a_disabled_cache_holds_nothing() {
        let cache = ReadCache::new(64 * 1024 * 1024);
        let max = cache.object_max_bytes();
        assert!(max >= 1024 * 1024, "{max}");
        assert!(!cache.admits(max + 1));
        let (rec, data) = object("big", max as usize + 1, 1);
        cache.insert(1, Arc::new(rec), data);
        assert!(cache.get(1).is_none());
        let (rec, data) = object("fits", max as usize, 2);
        cache.insert(2, Arc::new(rec), data);
        assert!(cache.get(2).is_some());
        let off = ReadCache::new(0);
        assert!(!off.admits(1));
        let (rec, data) = object("k", 10, 3);
        off.insert(3, Arc::new(rec), data);
        assert!(off.get(3).is_none());
        assert_eq!(off.stats().held_bytes, 0);
    }
}
