//! Compaction: space of dead log records (overwritten, deleted, of deleted buckets) comes back.
//!
//! Each core compacts the segments it wrote (and a share of those left by an earlier run) in a
//! background task: it picks a sealed, settled segment with at least half its data area dead
//! (any dead record when the disk is full), copies its live records into its own log under
//! their original sequence numbers (group-committed; on a full disk only when they fit the
//! active segment without its tombstone reserve, so deletes keep working), asks each
//! bucket's owner to point the index at the copies (only where the entry still names the
//! original record), waits for the segment's last reader, and rewrites its header to the next
//! generation: the segment is then free, reused by the next roll-over of any core's log (or
//! kept as this core's reserve segment). On a full disk, a core whose active segment is at
//! least half dead first rolls it into its reserve, so that segment can be compacted as well.
//!
//! Invariants: a copy keeps its record's sequence number, so replay resolves a key the same
//! whichever of the two it finds, and a copy never beats a newer write; the victim is rewritten
//! only after every copy is durable and no index entry or reader names it, so a crash at any
//! step leaves either the victim or its copies (or both: duplicates of one sequence number);
//! a tombstone is copied unless its key has a newer entry, or no other segment holds a dead
//! object record of its key (nothing older could replay), so compaction never brings back a
//! deleted key; write amplification is bounded: a segment is copied only when at least half of
//! its data area is reclaimed (at most one byte copied per byte freed).

use crate::storage::catalog::Catalog;
use crate::storage::entry;
use crate::storage::log::appender::{Appended, Appender};
use crate::storage::log::format::SEGMENT_HEADER_BYTES;
use crate::storage::log::scan::{scan_segment, SegmentScan};
use crate::storage::log::segment::{renew_segment, segment_path};
use crate::storage::log::table::{key_hash, SegmentInfo, FREE_SEGMENTS_PER_CORE_MAX};
use crate::storage::log::RecordLocation;
use crate::storage::owner::Relocation;
use crate::storage::shard::{expect_reply, owner_of, OwnerOp, Shards};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// How often a core looks for a segment worth compacting.
pub(crate) const COMPACTION_POLL_INTERVAL: Duration = Duration::from_millis(100);
/// How often a retirement checks whether the segment's last reader is gone.
const RETIRE_POLL_INTERVAL: Duration = Duration::from_millis(1);
/// Record bytes copied per group of concurrent appends (about one batch).
const COPY_CHUNK_BYTES: usize = 512 * 1024;
/// Most segments one core compacts per poll (so a long backlog yields to the next poll).
const COMPACTIONS_PER_POLL_MAX: usize = 4;

/// Active-segment room that copying `live` record bytes needs: the records, and per batch
/// (at most two per chunk: the first copy flushes alone, the rest of the chunk gathers behind
/// it) a header and a device block of padding.
fn copy_room_bytes(live: u64, batch_overhead_bytes: u64) -> u64 {
    if live == 0 {
        return 0;
    }
    let batches = 2 * (live / COPY_CHUNK_BYTES as u64 + 1);
    live + batches * batch_overhead_bytes
}

/// One record of a victim segment, with what deciding about it needs.
struct Found {
    at: RecordLocation,
    seq: u64,
    kind: u8,
    payload: Vec<u8>,
}

/// A live record of the victim, copied.
struct Copied {
    bucket: String,
    incarnation: u64,
    key: String,
    from: RecordLocation,
    /// `None` for a tombstone (nothing in the index to move).
    is_object: bool,
    appended: Appended,
}

/// A compaction in progress (checkpoints wait until none is); none starts while a checkpoint
/// is being taken.
struct InFlight<'a>(&'a Catalog);

impl<'a> InFlight<'a> {
    fn enter(catalog: &'a Catalog) -> Option<InFlight<'a>> {
        if catalog.checkpointing.load(Ordering::SeqCst) || catalog.stopping.load(Ordering::SeqCst) {
            return None;
        }
        catalog.compactions_in_flight.fetch_add(1, Ordering::SeqCst);
        let guard = InFlight(catalog);
        // Re-checked after counting: a checkpoint that started meanwhile sees this count.
        (!catalog.checkpointing.load(Ordering::SeqCst)).then_some(guard)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.compactions_in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One core's compactor.
pub(crate) struct Compactor {
    pub(crate) core: usize,
    pub(crate) cores: usize,
    pub(crate) log: Appender,
    pub(crate) shards: Rc<Shards>,
    pub(crate) catalog: Arc<Catalog>,
    pub(crate) dir: PathBuf,
    pub(crate) fsync: bool,
    /// Cleared when the core's store goes away (or a test wants only explicit passes): the
    /// background task ends.
    pub(crate) running: Rc<Cell<bool>>,
    /// A pass is in progress (one at a time per core, so no segment is compacted twice).
    pub(crate) busy: Cell<bool>,
}

impl Compactor {
    /// Runs this core's compaction in the background until the store is dropped.
    pub(crate) fn spawn(self: &Rc<Self>) {
        let me = self.clone();
        glommio::spawn_local(async move {
            let this = &me;
            loop {
                glommio::timer::sleep(COMPACTION_POLL_INTERVAL).await;
                if !this.running.get() {
                    return;
                }
                if let Err(e) = this.poll().await {
                    eprintln!("ringstore: core {}: compaction failed: {e}", this.core);
                }
            }
        })
        .detach();
    }

    /// Compacts the segments worth it now; returns how many were freed.
    pub(crate) async fn poll(&self) -> io::Result<usize> {
        if self.busy.replace(true) {
            return Ok(0);
        }
        let result = self.pass().await;
        self.busy.set(false);
        result
    }

    async fn pass(&self) -> io::Result<usize> {
        let table = &self.catalog.counters.segments;
        self.roll_if_active_mostly_dead().await?;
        let mut freed = 0;
        for info in table.candidates(self.core, self.cores) {
            if freed == COMPACTIONS_PER_POLL_MAX {
                break;
            }
            if !self.worth_compacting(&info) {
                continue;
            }
            let Some(_in_flight) = InFlight::enter(&self.catalog) else {
                break; // a checkpoint is being taken: next poll
            };
            self.compact(&info).await?;
            freed += 1;
        }
        Ok(freed)
    }

    /// On a full disk, a core's active segment may hold most of the dead records (its small
    /// objects all deleted): it is rolled into the log's reserve segment, so the next passes
    /// can compact it once its records are settled.
    async fn roll_if_active_mostly_dead(&self) -> io::Result<()> {
        if !self.log.short_of_space() || !self.log.holds_reserve() {
            return Ok(());
        }
        let table = &self.catalog.counters.segments;
        let Some(info) = self.log.active_segment().and_then(|id| table.get(id)) else {
            return Ok(());
        };
        let (dead, live) = (info.dead_bytes(), info.live_bytes());
        let need = copy_room_bytes(live, self.log.batch_overhead_bytes());
        let fits = need <= self.log.empty_segment_room_bytes();
        if dead == 0 || dead < live || !fits {
            return Ok(());
        }
        if let Some(sealed) = self.log.roll_into_reserve().await? {
            eprintln!(
                "ringstore: core {}: disk full: log segment {sealed} ({dead} dead bytes) rolled \
                 into the reserve to be compacted",
                self.core
            );
        }
        Ok(())
    }

    fn worth_compacting(&self, info: &SegmentInfo) -> bool {
        let header = *info.header.lock().expect("segment header");
        if self.log.active_segment() == Some(header.id) || info.dead_bytes() == 0 {
            return false;
        }
        let area = header.size_bytes - SEGMENT_HEADER_BYTES;
        if !self.log.short_of_space() {
            return info.live_bytes() * 2 <= area;
        }
        // On a full disk every dead byte counts, but the copies must fit the active segment
        // without its tombstone reserve (deletes must keep working).
        let need = copy_room_bytes(info.live_bytes(), self.log.batch_overhead_bytes());
        need <= self.log.room_bytes()
    }

    /// Copies the live records of `victim`, moves the index to the copies, frees the segment.
    async fn compact(&self, victim: &Arc<SegmentInfo>) -> io::Result<()> {
        let id = victim.id();
        let found = self.read_victim(id).await?;
        let live: Vec<_> = found.into_iter().filter_map(|f| self.keep(id, f)).collect();
        let mut copied = Vec::with_capacity(live.len());
        let mut chunk = Vec::new();
        let mut chunk_bytes = 0;
        for item in live {
            chunk_bytes += item.3.payload.len();
            chunk.push(item);
            if chunk_bytes >= COPY_CHUNK_BYTES {
                copied.extend(self.copy_chunk(std::mem::take(&mut chunk)).await?);
                chunk_bytes = 0;
            }
        }
        copied.extend(self.copy_chunk(chunk).await?);
        let copied_bytes: u64 = copied.iter().map(|c| u64::from(c.from.len)).sum();
        self.relocate(copied).await?;
        let table = &self.catalog.counters.segments;
        let Some(header) = table.retire(victim, RETIRE_POLL_INTERVAL).await else {
            return Ok(());
        };
        table.count_compaction(copied_bytes);
        let path = segment_path(&self.dir, id);
        let keep_max = FREE_SEGMENTS_PER_CORE_MAX * self.cores;
        // A freed segment refills this log's reserve first, then the shared free pool.
        let kept = match renew_segment(&self.dir, header, self.fsync).await? {
            Some(next) => match self.log.offer_reserve(next) {
                None => true,
                Some(next) => table.put_free(next, keep_max),
            },
            None => false,
        };
        if !kept {
            glommio::io::remove(&path).await?;
        }
        Ok(())
    }

    /// Every record of segment `id` (read and checked on a blocking thread).
    async fn read_victim(&self, id: u64) -> io::Result<Vec<Found>> {
        let path = segment_path(&self.dir, id);
        glommio::executor()
            .spawn_blocking(move || {
                let mut found = Vec::new();
                let scan = scan_segment(&path, |at, rec| {
                    found.push(Found {
                        at,
                        seq: rec.seq,
                        kind: rec.kind,
                        payload: rec.payload.to_vec(),
                    })
                })?;
                match scan {
                    SegmentScan::Live(_) => Ok(found),
                    SegmentScan::Unused => Ok(Vec::new()),
                }
            })
            .await
    }

    /// The record if it must survive the victim: (bucket, incarnation, key, record, is_object).
    fn keep(&self, victim: u64, f: Found) -> Option<(String, u64, String, Found, bool)> {
        let change = entry::decode(f.kind, f.seq, f.at, &f.payload).ok()?;
        let bucket = self.catalog.bucket(&change.bucket)?;
        if bucket.incarnation != change.incarnation {
            return None;
        }
        let current = bucket.objects.get(&change.key).map(|e| {
            let e = e.value();
            (e.seq, e.location)
        });
        let keep = match (&change.entry, current) {
            (Some(_), Some((seq, at))) => seq == f.seq && at == f.at,
            (Some(_), None) => false,
            // A tombstone: needed while it is the key's newest change and an older version of
            // the key could still replay: from another segment, or from the checkpoint (which
            // may hold one unless the tombstone is older than the checkpoint's floor).
            (None, Some((seq, _))) => seq < f.seq,
            (None, None) => {
                let floor = self.catalog.checkpoint_floor.load(Ordering::SeqCst);
                let hash = key_hash(&change.bucket, &change.key);
                f.seq >= floor
                    || self
                        .catalog
                        .counters
                        .segments
                        .dead_key_elsewhere(victim, hash)
            }
        };
        let is_object = change.entry.is_some();
        keep.then_some((change.bucket, change.incarnation, change.key, f, is_object))
    }

    /// Appends copies of `chunk` concurrently (so they share group commits).
    async fn copy_chunk(
        &self,
        chunk: Vec<(String, u64, String, Found, bool)>,
    ) -> io::Result<Vec<Copied>> {
        let mut tasks = Vec::with_capacity(chunk.len());
        for (bucket, incarnation, key, f, is_object) in chunk {
            let log = self.log.clone();
            tasks.push(glommio::spawn_local(async move {
                let appended = log.append_copy(f.seq, f.kind, &f.payload).await?;
                Ok::<_, io::Error>(Copied {
                    bucket,
                    incarnation,
                    key,
                    from: f.at,
                    is_object,
                    appended,
                })
            }));
        }
        let mut copied = Vec::with_capacity(tasks.len());
        let mut failed = None;
        for t in tasks {
            match t.await {
                Ok(c) => copied.push(c),
                Err(e) => failed = Some(e),
            }
        }
        match failed {
            // The copies made are duplicates of live records: harmless, counted dead.
            Some(e) => {
                let table = &self.catalog.counters.segments;
                for c in copied {
                    table.mark_dead(c.appended.location, Some(key_hash(&c.bucket, &c.key)));
                }
                Err(e)
            }
            None => Ok(copied),
        }
    }

    /// Asks each bucket's owner to point its entries at the copies; a copy whose entry changed
    /// meanwhile is dead. The copies' settle tokens drop only after the owners answered.
    async fn relocate(&self, copied: Vec<Copied>) -> io::Result<()> {
        let mut by_bucket: BTreeMap<(String, u64), Vec<Copied>> = BTreeMap::new();
        for c in copied.into_iter().filter(|c| c.is_object) {
            by_bucket
                .entry((c.bucket.clone(), c.incarnation))
                .or_default()
                .push(c);
        }
        let table = &self.catalog.counters.segments;
        for ((bucket, incarnation), group) in by_bucket {
            let moves = group
                .iter()
                .map(|c| Relocation {
                    key: c.key.clone(),
                    seq: c.appended.seq,
                    from: c.from,
                    to: c.appended.location,
                })
                .collect();
            let op = OwnerOp::Relocate {
                bucket: bucket.clone(),
                incarnation,
                moves,
            };
            let core = owner_of(&bucket, self.cores);
            let reply = self
                .shards
                .call_core(core, op)
                .await
                .map_err(|e| io::Error::other(e.to_string()))?;
            let taken = expect_reply!(reply, Moved(t));
            assert_eq!(taken.len(), group.len(), "one answer per relocation");
            for (c, took) in group.iter().zip(taken) {
                if !took {
                    table.mark_dead(c.appended.location, Some(key_hash(&bucket, &c.key)));
                }
            }
        }
        Ok(())
    }
}
