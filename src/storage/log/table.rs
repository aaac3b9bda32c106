//! The segment table: every log segment of the process with what compaction and segment reuse
//! need — who writes it, how many of its record bytes are dead, which keys its dead object
//! records belong to, how many records are not yet settled (installed in the index) and how
//! many reads are in progress — plus the pool of free (reused) segments.
//!
//! Invariants: a segment is a compaction candidate only when no appender will add to it
//! (sealed, or left by an earlier run) and every record in it is settled, so the index already
//! says whether each record is live; `dead_bytes <= record_bytes` for segments found at
//! startup (clamped there: the running counters may briefly disagree, and a checkpoint can
//! capture that; the counts only steer compaction, which copies what the index names); a
//! segment leaves the table
//! only after its last reader is gone (see [`SegmentTable::retire`]), and only then is it
//! rewritten; a key hash is in a segment's dead keys whenever the segment holds a dead object
//! record of that key, so a tombstone is dropped only while no other segment could replay an
//! older version of its key.

use crate::storage::log::format::{SegmentHeader, SEGMENT_HEADER_BYTES};
use crate::storage::log::RecordLocation;
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

/// `writer` of a segment no appender of this run writes (left by an earlier run).
const NO_WRITER: usize = usize::MAX;
/// Most free segments kept for reuse per core; further freed segments are removed.
pub(crate) const FREE_SEGMENTS_PER_CORE_MAX: usize = 2;

/// The hash compaction knows a key by (its bucket name included).
pub(crate) fn key_hash(bucket: &str, key: &str) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in bucket.bytes().chain([0xff]).chain(key.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// One segment's shared state.
pub(crate) struct SegmentInfo {
    pub(crate) header: Mutex<SegmentHeader>,
    writer: AtomicUsize,
    sealed: AtomicBool,
    record_bytes: AtomicU64,
    dead_bytes: AtomicU64,
    /// Records durable in this segment whose writer has not yet installed (or dropped) them.
    unsettled: AtomicUsize,
    readers: AtomicUsize,
    dead_keys: Mutex<HashSet<u64>>,
    /// Where its next batch goes and that batch's number (what a checkpoint covers).
    position: Mutex<(u64, u64)>,
}

impl SegmentInfo {
    fn new(header: SegmentHeader, writer: Option<usize>) -> SegmentInfo {
        SegmentInfo {
            header: Mutex::new(header),
            writer: AtomicUsize::new(writer.unwrap_or(NO_WRITER)),
            sealed: AtomicBool::new(writer.is_none()),
            record_bytes: AtomicU64::new(0),
            dead_bytes: AtomicU64::new(0),
            unsettled: AtomicUsize::new(0),
            readers: AtomicUsize::new(0),
            dead_keys: Mutex::new(HashSet::new()),
            position: Mutex::new((SEGMENT_HEADER_BYTES, 1)),
        }
    }

    /// The next batch goes at `end` with number `next_batch` (after each write).
    pub(crate) fn set_position(&self, end: u64, next_batch: u64) {
        *self.position.lock().expect("segment position") = (end, next_batch);
    }

    /// (end, next batch number) now.
    pub(crate) fn position(&self) -> (u64, u64) {
        *self.position.lock().expect("segment position")
    }

    /// (record bytes, dead bytes, dead key hashes) now.
    pub(crate) fn stats(&self) -> (u64, u64, Vec<u64>) {
        let keys = self.dead_keys.lock().expect("dead keys");
        (
            self.record_bytes.load(Ordering::Relaxed),
            self.dead_bytes.load(Ordering::Relaxed),
            keys.iter().copied().collect(),
        )
    }

    pub(crate) fn id(&self) -> u64 {
        self.header.lock().expect("segment header").id
    }

    /// Record bytes not known to be dead.
    pub(crate) fn live_bytes(&self) -> u64 {
        let total = self.record_bytes.load(Ordering::Relaxed);
        total.saturating_sub(self.dead_bytes.load(Ordering::Relaxed))
    }

    pub(crate) fn dead_bytes(&self) -> u64 {
        self.dead_bytes.load(Ordering::Relaxed)
    }

    pub(crate) fn add_records(&self, bytes: u64) {
        self.record_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// The appender moved on: no record will be added.
    pub(crate) fn seal(&self) {
        self.sealed.store(true, Ordering::SeqCst);
    }

    pub(crate) fn has_dead_key(&self, hash: u64) -> bool {
        self.dead_keys.lock().expect("dead keys").contains(&hash)
    }

    /// `count` records became durable here and wait to be settled.
    pub(crate) fn unsettle(&self, count: usize) {
        self.unsettled.fetch_add(count, Ordering::SeqCst);
    }

    fn settle(&self) {
        let before = self.unsettled.fetch_sub(1, Ordering::SeqCst);
        assert!(before > 0, "settled more records than were written");
    }

    /// Counts a read of this segment until the guard drops. The caller must check, after this
    /// returns, that the index still names the location it is about to read (see
    /// [`SegmentTable::retire`]).
    pub(crate) fn hold_reader(self: &Arc<Self>) -> ReaderHold {
        self.readers.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        ReaderHold(self.clone())
    }
}

/// A read in progress (see [`SegmentInfo::hold_reader`]).
pub(crate) struct ReaderHold(Arc<SegmentInfo>);

impl Drop for ReaderHold {
    fn drop(&mut self) {
        self.0.readers.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A durable record not yet settled: the writer drops it once the record is installed in the
/// index (or lost its race, or failed); until then compaction leaves the segment alone.
pub(crate) struct Settle(Arc<SegmentInfo>);

impl Settle {
    pub(crate) fn new(info: Arc<SegmentInfo>) -> Settle {
        Settle(info)
    }
}

impl Drop for Settle {
    fn drop(&mut self) {
        self.0.settle();
    }
}

impl std::fmt::Debug for Settle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Settle({})", self.0.id())
    }
}

/// Every segment of the process, and the free ones ready for reuse.
#[derive(Default)]
pub(crate) struct SegmentTable {
    segments: RwLock<BTreeMap<u64, Arc<SegmentInfo>>>,
    free: Mutex<Vec<SegmentHeader>>,
    /// Segments compacted and record bytes copied by compaction since the start.
    compactions: AtomicU64,
    copied_bytes: AtomicU64,
}

impl std::fmt::Debug for SegmentTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (segments, free) = self.counts();
        write!(f, "SegmentTable({segments} segments, {free} free)")
    }
}

impl SegmentTable {
    /// Adds a segment found at startup with `record_bytes` of records, `dead_bytes` of them
    /// known dead; `resumed` when an appender will continue it (not a candidate until sealed).
    pub(crate) fn register_scanned(
        &self,
        header: SegmentHeader,
        record_bytes: u64,
        dead_bytes: u64,
        resumed: bool,
        position: (u64, u64),
    ) {
        // A checkpoint reads a segment's two counters one after the other while writers run, so
        // it can hold more dead than written bytes (seen after a power cut in tests/powercut.rs:
        // the start then panicked). The counts only choose compaction victims and size copies;
        // which records are live is the index's word, so clamping loses nothing.
        let dead_bytes = dead_bytes.min(record_bytes);
        let info = SegmentInfo::new(header, None);
        info.set_position(position.0, position.1);
        info.record_bytes.store(record_bytes, Ordering::Relaxed);
        info.dead_bytes.store(dead_bytes, Ordering::Relaxed);
        info.sealed.store(!resumed, Ordering::SeqCst);
        let mut all = self.segments.write().expect("segment table");
        let previous = all.insert(header.id, Arc::new(info));
        assert!(previous.is_none(), "a segment is scanned once");
    }

    /// Adds (or takes over) the segment `header` describes, written by `writer` in this run.
    pub(crate) fn register(
        &self,
        header: SegmentHeader,
        writer: Option<usize>,
    ) -> Arc<SegmentInfo> {
        let mut all = self.segments.write().expect("segment table");
        let info = all
            .entry(header.id)
            .or_insert_with(|| Arc::new(SegmentInfo::new(header, writer)));
        *info.header.lock().expect("segment header") = header;
        if let Some(core) = writer {
            info.writer.store(core, Ordering::SeqCst);
            info.sealed.store(false, Ordering::SeqCst);
        }
        info.clone()
    }

    pub(crate) fn get(&self, id: u64) -> Option<Arc<SegmentInfo>> {
        self.segments
            .read()
            .expect("segment table")
            .get(&id)
            .cloned()
    }

    /// The record at `at` is dead; `key` is its key's hash when it is an object record (whose
    /// replay a later tombstone must keep covering).
    pub(crate) fn mark_dead(&self, at: RecordLocation, key: Option<u64>) {
        let Some(info) = self.get(at.segment) else {
            return;
        };
        info.dead_bytes
            .fetch_add(u64::from(at.len), Ordering::Relaxed);
        if let Some(hash) = key {
            info.dead_keys.lock().expect("dead keys").insert(hash);
        }
    }

    /// Adds dead key hashes a checkpoint recorded for segment `id`.
    pub(crate) fn add_dead_keys(&self, id: u64, keys: Vec<u64>) {
        if let Some(info) = self.get(id) {
            info.dead_keys.lock().expect("dead keys").extend(keys);
        }
    }

    /// Whether a segment other than `except` holds a dead object record of the key `hash`.
    pub(crate) fn dead_key_elsewhere(&self, except: u64, hash: u64) -> bool {
        let all = self.segments.read().expect("segment table");
        all.iter()
            .any(|(id, info)| *id != except && info.has_dead_key(hash))
    }

    /// Segments core `core` of `cores` compacts now (sealed, settled, not being read by a
    /// retirement), most dead bytes first: those it wrote, and those of earlier runs by id.
    pub(crate) fn candidates(&self, core: usize, cores: usize) -> Vec<Arc<SegmentInfo>> {
        let all = self.segments.read().expect("segment table");
        let mut mine: Vec<_> = all
            .iter()
            .filter(|(id, info)| {
                let writer = info.writer.load(Ordering::SeqCst);
                let owner = if writer == NO_WRITER {
                    (**id % cores as u64) as usize
                } else {
                    writer
                };
                owner == core
                    && info.sealed.load(Ordering::SeqCst)
                    && info.unsettled.load(Ordering::SeqCst) == 0
            })
            .map(|(_, info)| info.clone())
            .collect();
        mine.sort_by_key(|info| std::cmp::Reverse(info.dead_bytes()));
        mine
    }

    /// Takes `id` out of the table once no index entry names it any more, and waits until its
    /// last reader is gone. A reader holds the segment ([`SegmentInfo::hold_reader`]) and then
    /// re-checks the index: either it sees the entry already moved (and looks again), or its
    /// hold is visible here and is waited for.
    /// `None` if the table no longer holds this very segment.
    pub(crate) async fn retire(
        &self,
        info: &Arc<SegmentInfo>,
        poll: std::time::Duration,
    ) -> Option<SegmentHeader> {
        {
            let mut all = self.segments.write().expect("segment table");
            let id = info.id();
            if !all.get(&id).is_some_and(|held| Arc::ptr_eq(held, info)) {
                return None;
            }
            all.remove(&id);
        }
        fence(Ordering::SeqCst);
        while info.readers.load(Ordering::SeqCst) > 0 {
            glommio::timer::sleep(poll).await;
        }
        let header = *info.header.lock().expect("segment header");
        Some(header)
    }

    /// A freed segment (header already rewritten to its next generation) kept for reuse; false
    /// when the pool holds `keep_max` already (the caller removes the file instead).
    pub(crate) fn put_free(&self, header: SegmentHeader, keep_max: usize) -> bool {
        let mut free = self.free.lock().expect("free segments");
        if free.len() >= keep_max {
            return false;
        }
        free.push(header);
        true
    }

    /// A free segment of `size_bytes` and device block `block_bytes`, if one is ready.
    pub(crate) fn take_free(&self, size_bytes: u64, block_bytes: u32) -> Option<SegmentHeader> {
        let mut free = self.free.lock().expect("free segments");
        let at = free
            .iter()
            .position(|h| h.size_bytes == size_bytes && h.block_bytes == block_bytes)?;
        Some(free.swap_remove(at))
    }

    /// A compaction retired its segment after copying `copied_bytes` of live records.
    pub(crate) fn count_compaction(&self, copied_bytes: u64) {
        self.compactions.fetch_add(1, Ordering::Relaxed);
        self.copied_bytes.fetch_add(copied_bytes, Ordering::Relaxed);
    }

    /// (segments compacted, record bytes they copied) since the start.
    pub(crate) fn compaction_totals(&self) -> (u64, u64) {
        (
            self.compactions.load(Ordering::Relaxed),
            self.copied_bytes.load(Ordering::Relaxed),
        )
    }

    /// Every segment's (id, generation, end, next batch number) now, by id.
    pub(crate) fn positions(&self) -> Vec<(u64, u64, u64, u64)> {
        let all = self.segments.read().expect("segment table");
        all.values()
            .map(|info| {
                let h = *info.header.lock().expect("segment header");
                let (end, next_batch) = info.position();
                (h.id, h.generation, end, next_batch)
            })
            .collect()
    }

    /// Record bytes not known to be dead, over every segment.
    pub(crate) fn live_bytes_total(&self) -> u64 {
        let all = self.segments.read().expect("segment table");
        all.values().map(|info| info.live_bytes()).sum()
    }

    /// (segments in the table, free segments in the pool).
    pub(crate) fn counts(&self) -> (usize, usize) {
        let n = self.segments.read().expect("segment table").len();
        (n, self.free.lock().expect("free segments").len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scanned_segment_with_more_dead_than_written_bytes_is_clamped() {
        let table = SegmentTable::default();
        let header = SegmentHeader {
            id: 7,
            generation: 1,
            nonce: 3,
            created_ms: 0,
            block_bytes: 4096,
            size_bytes: 1 << 20,
        };
        table.register_scanned(header, 1000, 1500, false, (4096, 1));
        let all = table.segments.read().unwrap();
        let info = all.get(&7).expect("registered");
        assert_eq!(info.dead_bytes(), 1000);
        assert_eq!(info.live_bytes(), 0);
    }
}
