//! Group commit: one core's log appender. Records appended while a write is in flight gather
//! in the open batch; when the write completes, the next write takes all of them at once. One
//! write on an `O_DSYNC` file (so the write is the flush) makes every record of the batch
//! durable, and only then are their appends answered.
//!
//! Invariants: batches are written one at a time, each at the sector after the previous one, so
//! a sector holding acknowledged records is never written again; an append returns Ok only
//! after the write holding its record completed (with `fsync` on, durably); after a failed
//! write the appender moves to a fresh segment, so no batch number or position is ever reused
//! over bytes in an unknown state; the open batch never exceeds [`BATCH_PAYLOAD_MAX_BYTES`].
//!
//! Besides the spare (the next segment, created ahead), each log holds a reserve segment that
//! ordinary roll-overs never take: on a full disk, compaction rolls the active segment into it
//! ([`Appender::roll_into_reserve`]) so the dead records of the segment that was active can be
//! reclaimed too; that segment, once compacted, becomes the next reserve. A roll never happens
//! while a batch is being written: the flusher applies a waiting roll before its next batch.

use crate::storage::log::format::{
    align_up, frame_record, record_len, seal_records, BatchHeader, SegmentHeader,
    BATCH_HEADER_BYTES, BLOCK_MAX_BYTES, SECTOR_BYTES, SEGMENT_HEADER_BYTES,
};
use crate::storage::log::scan::ScanEnd;
use crate::storage::log::segment::{create_segment, segment_path};
use crate::storage::log::table::{SegmentInfo, SegmentTable, Settle};
use crate::storage::log::RecordLocation;
use futures_channel::oneshot;
use glommio::io::{DmaFile, OpenOptions};
use std::cell::{Cell, RefCell};
use std::io;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The last bytes of every segment, kept for records that free space (deletes) when no next
/// segment could be created: so DeleteObject still succeeds on a full disk.
pub(crate) const SEGMENT_RESERVE_BYTES: u64 = 256 * 1024;
/// Most record bytes one batch (one write) carries.
pub(crate) const BATCH_PAYLOAD_MAX_BYTES: usize = 1024 * 1024;

/// Record bytes one batch may carry in segments of `segment_size_bytes`.
fn batch_payload_max_bytes(segment_size_bytes: u64) -> usize {
    let data_area = segment_size_bytes - SEGMENT_HEADER_BYTES;
    let room = data_area - BATCH_HEADER_BYTES as u64 - BLOCK_MAX_BYTES;
    (room as usize).min(BATCH_PAYLOAD_MAX_BYTES)
}

/// How a core's log is written.
#[derive(Debug, Clone)]
pub(crate) struct LogConfig {
    /// The log directory (shared by every core's log).
    pub(crate) dir: PathBuf,
    pub(crate) segment_size_bytes: u64,
    /// Open segments `O_DSYNC` and sync new ones (`--fsync always`).
    pub(crate) fsync: bool,
    /// Keep a reserve segment for compaction on a full disk (the store's logs do).
    pub(crate) keep_reserve: bool,
}

/// Process-wide counters every core's appender shares: segment ids and record sequence numbers
/// (taken when a record is sealed into a batch, so later appends get higher numbers).
#[derive(Debug, Clone)]
pub(crate) struct LogCounters {
    next_segment: Arc<AtomicU64>,
    next_seq: Arc<AtomicU64>,
    /// Records and batches (flushes) written by every core since the start.
    records: Arc<AtomicU64>,
    batches: Arc<AtomicU64>,
    /// Record bytes written by every core since the start.
    record_bytes: Arc<AtomicU64>,
    /// Every segment and what compaction needs of it.
    pub(crate) segments: Arc<SegmentTable>,
}

impl LogCounters {
    /// Counters continuing after the highest segment id and sequence found on disk.
    pub(crate) fn new(
        next_segment: u64,
        next_seq: u64,
        segments: Arc<SegmentTable>,
    ) -> LogCounters {
        LogCounters {
            next_segment: Arc::new(AtomicU64::new(next_segment)),
            next_seq: Arc::new(AtomicU64::new(next_seq)),
            records: Arc::new(AtomicU64::new(0)),
            batches: Arc::new(AtomicU64::new(0)),
            record_bytes: Arc::new(AtomicU64::new(0)),
            segments,
        }
    }

    /// Records and flushes written by every core since the start (commits per flush).
    pub(crate) fn flushes(&self) -> (u64, u64) {
        (
            self.records.load(Ordering::Relaxed),
            self.batches.load(Ordering::Relaxed),
        )
    }

    /// The id the next new segment gets.
    pub(crate) fn peek_segment(&self) -> u64 {
        self.next_segment.load(Ordering::SeqCst)
    }

    /// Record bytes written by every core since the start.
    pub(crate) fn record_bytes(&self) -> u64 {
        self.record_bytes.load(Ordering::Relaxed)
    }

    fn segment_id(&self) -> u64 {
        self.next_segment.fetch_add(1, Ordering::Relaxed)
    }

    /// A fresh sequence number, higher than every one taken before it anywhere in the process.
    pub(crate) fn seq(&self) -> u64 {
        self.next_seq.fetch_add(1, Ordering::SeqCst)
    }

    /// The sequence number the next [`LogCounters::seq`] returns at the earliest.
    pub(crate) fn peek(&self) -> u64 {
        self.next_seq.load(Ordering::SeqCst)
    }
}

/// A durable record: its sequence number and where it is. Keep it until the record is
/// installed in the index (or given up): its segment is not compacted before it drops.
#[derive(Debug)]
pub(crate) struct Appended {
    pub(crate) seq: u64,
    pub(crate) location: RecordLocation,
    /// Held for its drop (see [`Settle`]).
    _settle: Settle,
}

/// Empty segments a log starts with (left by an earlier run, or `None`).
#[derive(Debug, Default)]
pub(crate) struct EmptySegments {
    pub(crate) spare: Option<SegmentHeader>,
    pub(crate) reserve: Option<SegmentHeader>,
}

/// Batches and records written so far (commits per flush = records / batches).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct LogStats {
    pub(crate) batches: u64,
    pub(crate) records: u64,
    pub(crate) segments_created: u64,
}

/// Where a batch's records landed.
#[derive(Clone)]
struct BatchPlace {
    segment: u64,
    payload_start: u64,
    info: Arc<SegmentInfo>,
}

type BatchOutcome = Result<(BatchPlace, Settle), (io::ErrorKind, String)>;

struct Active {
    file: DmaFile,
    header: SegmentHeader,
    info: Arc<SegmentInfo>,
    /// Where the next batch goes.
    pos: u64,
    next_batch: u64,
}

#[derive(Default)]
struct OpenBatch {
    records: Vec<u8>,
    waiters: Vec<oneshot::Sender<BatchOutcome>>,
}

struct Inner {
    config: LogConfig,
    /// The core this log belongs to (the writer of its segments in the segment table).
    core: usize,
    /// The device's O_DIRECT block: every batch starts on one.
    block_bytes: u32,
    /// Largest open batch (and so largest record).
    payload_max_bytes: usize,
    counters: LogCounters,
    active: RefCell<Option<Active>>,
    open: RefCell<OpenBatch>,
    flushing: Cell<bool>,
    /// Appends waiting for room in the open batch.
    room: RefCell<Vec<oneshot::Sender<()>>>,
    /// A segment created ahead, so rolling over does not wait for its zero fill.
    spare: RefCell<Option<SegmentHeader>>,
    preparing_spare: Cell<bool>,
    /// The last attempt to create a spare failed (disk full?): the reserve is for deletes.
    spare_failed: Cell<bool>,
    /// A free segment only [`Appender::roll_into_reserve`] takes (never an ordinary roll-over).
    reserve: RefCell<Option<SegmentHeader>>,
    preparing_reserve: Cell<bool>,
    /// The reserve, opened, waiting for the flusher to be idle to become the active segment.
    pending_roll: RefCell<Option<(SegmentHeader, DmaFile)>>,
    stats: Cell<LogStats>,
    /// Test hook: creating a new segment file fails as on a full disk (reuse still works).
    #[cfg(test)]
    refuse_new_segments: Cell<bool>,
}

/// One core's log writer.
#[derive(Clone)]
pub(crate) struct Appender(Rc<Inner>);

impl Appender {
    /// An appender continuing the segment `resume` describes, or starting a new segment;
    /// `spare` is an empty segment to roll over to, `reserve` one kept for compaction on a full
    /// disk (created in the background when not given).
    pub(crate) async fn open(
        config: LogConfig,
        core: usize,
        counters: LogCounters,
        resume: Option<ScanEnd>,
        empty: EmptySegments,
    ) -> io::Result<Appender> {
        let block_bytes = match &resume {
            Some(end) => end.header.block_bytes,
            None => device_block_bytes(&config.dir).await?,
        };
        let inner = Rc::new(Inner {
            payload_max_bytes: batch_payload_max_bytes(config.segment_size_bytes),
            block_bytes,
            config,
            core,
            counters,
            active: RefCell::new(None),
            open: RefCell::new(OpenBatch::default()),
            flushing: Cell::new(false),
            room: RefCell::new(Vec::new()),
            spare: RefCell::new(empty.spare),
            preparing_spare: Cell::new(false),
            spare_failed: Cell::new(false),
            reserve: RefCell::new(empty.reserve),
            preparing_reserve: Cell::new(false),
            pending_roll: RefCell::new(None),
            stats: Cell::new(LogStats::default()),
            #[cfg(test)]
            refuse_new_segments: Cell::new(false),
        });
        let active = match resume {
            Some(end) => open_active(&inner, end.header, end.end, end.next_batch).await?,
            None => new_segment(&inner).await?,
        };
        *inner.active.borrow_mut() = Some(active);
        prepare_reserve(&inner);
        Ok(Appender(inner))
    }

    /// Whether a reserve segment is held.
    pub(crate) fn holds_reserve(&self) -> bool {
        self.0.reserve.borrow().is_some()
    }

    /// Test hook: new segment files fail to be created (as on a full disk) while `on`.
    #[cfg(test)]
    pub(crate) fn refuse_new_segments(&self, on: bool) {
        self.0.refuse_new_segments.set(on);
    }

    /// Seals the active segment and continues in the reserve (compaction on a full disk, so the
    /// sealed segment's dead records can be reclaimed). If a batch is being written, the roll
    /// waits for the flusher, which applies it before its next batch. Returns the sealed
    /// segment's id when the roll happened now; `None` when there is no reserve or it waits.
    pub(crate) async fn roll_into_reserve(&self) -> io::Result<Option<u64>> {
        let inner = &self.0;
        if inner.pending_roll.borrow().is_none() {
            let Some(header) = inner.reserve.borrow_mut().take() else {
                return Ok(None);
            };
            match open_segment_file(&inner.config, header.id).await {
                Ok(file) => *inner.pending_roll.borrow_mut() = Some((header, file)),
                Err(e) => {
                    *inner.reserve.borrow_mut() = Some(header);
                    return Err(e);
                }
            }
        }
        if inner.flushing.get() {
            return Ok(None);
        }
        Ok(swap_in_pending_roll(inner))
    }

    /// Offers a freed segment as the reserve; gives it back when one is held (or it does not
    /// fit this log: another size or device block).
    pub(crate) fn offer_reserve(&self, header: SegmentHeader) -> Option<SegmentHeader> {
        let inner = &self.0;
        let fits = header.size_bytes == inner.config.segment_size_bytes
            && header.block_bytes == inner.block_bytes;
        let mut reserve = inner.reserve.borrow_mut();
        if !fits || reserve.is_some() || inner.pending_roll.borrow().is_some() {
            return Some(header);
        }
        *reserve = Some(header);
        None
    }

    #[cfg(test)]
    pub(crate) fn stats(&self) -> LogStats {
        self.0.stats.get()
    }

    /// Appends a record of `kind` whose payload is the concatenation of `parts`; returns once
    /// it is durable (with `fsync` on), with its sequence number and location.
    pub(crate) async fn append(&self, kind: u8, parts: &[&[u8]]) -> io::Result<Appended> {
        self.append_with(kind, parts, false, None).await
    }

    /// Appends a copy of a live record under its own sequence number `seq` (compaction). Like
    /// any record that frees nothing, it may not enter the segment's tombstone reserve when no
    /// next segment can be created (the compactor checks [`Appender::room_bytes`] first).
    pub(crate) async fn append_copy(
        &self,
        seq: u64,
        kind: u8,
        payload: &[u8],
    ) -> io::Result<Appended> {
        self.append_with(kind, &[payload], false, Some(seq)).await
    }

    /// Record bytes the active segment still takes from records that free nothing, once no
    /// next segment can be created (its tombstone reserve left out); 0 while a batch is being
    /// written (ask again later).
    pub(crate) fn room_bytes(&self) -> u64 {
        let inner = &self.0;
        let active = inner.active.borrow();
        let Some(a) = active.as_ref() else {
            return 0;
        };
        let queued = inner.open.borrow().records.len() as u64;
        let used = a.pos + queued + SEGMENT_RESERVE_BYTES;
        a.header.size_bytes.saturating_sub(used)
    }

    /// Most bytes a batch adds beyond its records: its header and a device block of padding.
    pub(crate) fn batch_overhead_bytes(&self) -> u64 {
        BATCH_HEADER_BYTES as u64 + u64::from(self.0.block_bytes)
    }

    /// [`Appender::room_bytes`] of an empty segment (what a roll into the reserve offers).
    pub(crate) fn empty_segment_room_bytes(&self) -> u64 {
        let size = self.0.config.segment_size_bytes;
        size.saturating_sub(SEGMENT_HEADER_BYTES + SEGMENT_RESERVE_BYTES)
    }

    /// The segment this log appends to now.
    pub(crate) fn active_segment(&self) -> Option<u64> {
        self.0.active.borrow().as_ref().map(|a| a.header.id)
    }

    /// Whether the last attempt to create a segment failed (the disk is full).
    pub(crate) fn short_of_space(&self) -> bool {
        self.0.spare_failed.get() && self.0.spare.borrow().is_none()
    }

    /// [`Appender::append`] for a record that frees space (a delete): it may use the segment's
    /// reserve, which other records may not once no next segment can be created.
    pub(crate) async fn append_freeing(&self, kind: u8, parts: &[&[u8]]) -> io::Result<Appended> {
        self.append_with(kind, parts, true, None).await
    }

    /// Whether a record of `len` bytes must be refused: it would enter the reserve while no
    /// next segment could be created (the last attempt failed; this one retries it).
    fn refused_for_space(&self, len: usize) -> bool {
        let inner = &self.0;
        let no_next = inner.spare_failed.get() && inner.spare.borrow().is_none();
        if !no_next || inner.active.borrow().is_none() {
            return false;
        }
        let refused = len as u64 + self.batch_overhead_bytes() > self.room_bytes();
        if refused {
            prepare_spare(inner);
        }
        refused
    }

    async fn append_with(
        &self,
        kind: u8,
        parts: &[&[u8]],
        may_use_reserve: bool,
        copy_of: Option<u64>,
    ) -> io::Result<Appended> {
        let len = record_len(parts.iter().map(|p| p.len()).sum());
        if !may_use_reserve && self.refused_for_space(len) {
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "no space left on device for a new log segment",
            ));
        }
        let max = self.0.payload_max_bytes;
        assert!(
            len <= max,
            "record of {len} bytes exceeds the maximum {max}"
        );
        loop {
            let full = {
                let open = self.0.open.borrow();
                !open.records.is_empty() && open.records.len() + len > max
            };
            if !full {
                break;
            }
            let (tx, rx) = oneshot::channel();
            self.0.room.borrow_mut().push(tx);
            let _ = rx.await;
        }
        let (seq, offset, rx) = {
            let mut open = self.0.open.borrow_mut();
            let offset = open.records.len();
            let seq = copy_of.unwrap_or_else(|| self.0.counters.seq());
            open.records.resize(offset + len, 0);
            frame_record(&mut open.records[offset..], seq, kind, parts);
            let (tx, rx) = oneshot::channel();
            open.waiters.push(tx);
            (seq, offset, rx)
        };
        if !self.0.flushing.replace(true) {
            glommio::spawn_local(flush_loop(self.0.clone())).detach();
        }
        let (place, settle) = rx
            .await
            .map_err(|_| io::Error::other("log flusher stopped"))?
            .map_err(|(kind, msg)| io::Error::new(kind, msg))?;
        let location = RecordLocation {
            segment: place.segment,
            offset: place.payload_start + offset as u64,
            len: u32::try_from(len).expect("record length fits u32"),
        };
        Ok(Appended {
            seq,
            location,
            _settle: settle,
        })
    }
}

/// Writes open batches until none is left.
async fn flush_loop(inner: Rc<Inner>) {
    loop {
        let batch = std::mem::take(&mut *inner.open.borrow_mut());
        for tx in inner.room.borrow_mut().drain(..) {
            let _ = tx.send(());
        }
        if batch.records.is_empty() {
            inner.flushing.set(false);
            return;
        }
        let outcome = write_batch(&inner, batch.records)
            .await
            .map_err(|e| (e.kind(), e.to_string()));
        if let Ok(place) = &outcome {
            place.info.unsettle(batch.waiters.len());
        }
        for tx in batch.waiters {
            // A waiter that gave up drops its token with the failed send: settled.
            let _ = tx.send(match &outcome {
                Ok(place) => Ok((place.clone(), Settle::new(place.info.clone()))),
                Err(e) => Err(e.clone()),
            });
        }
    }
}

/// Writes one batch after the active segment's last one (rolling to a new segment when it does
/// not fit); on failure, the next batch goes to a new segment.
async fn write_batch(inner: &Rc<Inner>, mut records: Vec<u8>) -> io::Result<BatchPlace> {
    swap_in_pending_roll(inner);
    let span = align_up(
        (BATCH_HEADER_BYTES + records.len()) as u64,
        u64::from(inner.block_bytes),
    );
    let fits = {
        let active = inner.active.borrow();
        active
            .as_ref()
            .is_some_and(|a| a.pos + span <= a.header.size_bytes)
    };
    if !fits {
        let next = new_segment(inner).await?;
        assert!(
            next.pos + span <= next.header.size_bytes,
            "batch fits a segment"
        );
        if let Some(old) = inner.active.borrow_mut().replace(next) {
            old.info.seal();
        }
    }
    let active = inner.active.borrow_mut().take().expect("an active segment");
    let h = active.header;
    seal_records(&mut records, h.generation, h.nonce);
    let batch = BatchHeader::for_payload(h.generation, active.next_batch, h.nonce, &records);
    let mut buf = active.file.alloc_dma_buffer(span as usize);
    let bytes = buf.as_bytes_mut();
    bytes[..BATCH_HEADER_BYTES].copy_from_slice(&batch.encode(h.nonce));
    bytes[BATCH_HEADER_BYTES..BATCH_HEADER_BYTES + records.len()].copy_from_slice(&records);
    bytes[BATCH_HEADER_BYTES + records.len()..].fill(0);
    let write_started = std::time::Instant::now();
    let written = active.file.write_at(buf, active.pos).await;
    crate::obs::record_log_commit(write_started.elapsed());
    let place = BatchPlace {
        segment: h.id,
        payload_start: active.pos + BATCH_HEADER_BYTES as u64,
        info: active.info.clone(),
    };
    if (active.pos + span) * 2 > h.size_bytes {
        prepare_spare(inner);
        prepare_reserve(inner);
    }
    match written {
        Ok(n) if n as u64 == span => {
            count_batch(inner, u64::from(batch.record_count), records.len() as u64);
            active.info.add_records(records.len() as u64);
            active
                .info
                .set_position(active.pos + span, active.next_batch + 1);
            *inner.active.borrow_mut() = Some(Active {
                pos: active.pos + span,
                next_batch: active.next_batch + 1,
                ..active
            });
            Ok(place)
        }
        // The active segment is dropped (sealed): the next batch starts a new one.
        Ok(n) => {
            active.info.seal();
            Err(io::Error::other(format!(
                "short log write: {n} of {span} bytes"
            )))
        }
        Err(e) => {
            active.info.seal();
            Err(io::Error::from(e))
        }
    }
}

/// Opens the spare segment, or creates, syncs and opens a fresh one.
async fn new_segment(inner: &Rc<Inner>) -> io::Result<Active> {
    let spare = inner.spare.borrow_mut().take();
    let header = match spare {
        Some(h) => h,
        None => {
            let created = create(inner).await;
            inner.spare_failed.set(created.is_err());
            created?
        }
    };
    open_active(inner, header, SEGMENT_HEADER_BYTES, 1).await
}

/// Counts a written batch of `records` records and `bytes` record bytes.
fn count_batch(inner: &Inner, records: u64, bytes: u64) {
    let mut s = inner.stats.get();
    s.batches += 1;
    s.records += records;
    inner.stats.set(s);
    let c = &inner.counters;
    c.batches.fetch_add(1, Ordering::Relaxed);
    c.records.fetch_add(records, Ordering::Relaxed);
    c.record_bytes.fetch_add(bytes, Ordering::Relaxed);
}

/// Makes the waiting reserve the active segment and seals the one it replaces (whose id it
/// returns). Only while no batch is being written (the caller makes sure).
fn swap_in_pending_roll(inner: &Inner) -> Option<u64> {
    let (header, file) = inner.pending_roll.borrow_mut().take()?;
    let next = activate(inner, header, file, SEGMENT_HEADER_BYTES, 1);
    let old = inner.active.borrow_mut().replace(next)?;
    old.info.seal();
    Some(old.header.id)
}

/// Creates a reserve segment in the background, unless one is held or on its way.
fn prepare_reserve(inner: &Rc<Inner>) {
    if !inner.config.keep_reserve
        || inner.reserve.borrow().is_some()
        || inner.pending_roll.borrow().is_some()
        || inner.preparing_reserve.replace(true)
    {
        return;
    }
    let inner = inner.clone();
    glommio::spawn_local(async move {
        // Without one (disk full), the log works as before; a compaction refills it.
        if let Ok(h) = create(&inner).await {
            // A compaction offered one meanwhile: the extra joins the free pool (one beyond
            // its bound at most), so its file is reused rather than left unused.
            if let Some(extra) = inner.reserve.borrow_mut().replace(h) {
                let pooled = inner.counters.segments.put_free(extra, usize::MAX);
                assert!(pooled, "an unbounded pool takes every segment");
            }
        }
        inner.preparing_reserve.set(false);
    })
    .detach();
}

/// Creates the next segment in the background, unless one is ready or on its way.
fn prepare_spare(inner: &Rc<Inner>) {
    if inner.spare.borrow().is_some() || inner.preparing_spare.replace(true) {
        return;
    }
    let inner = inner.clone();
    glommio::spawn_local(async move {
        // A failure here is retried by the roll itself, which then reports it.
        match create(&inner).await {
            Ok(h) => {
                let mut spare = inner.spare.borrow_mut();
                assert!(spare.is_none(), "one spare at a time");
                *spare = Some(h);
                inner.spare_failed.set(false);
            }
            Err(_) => inner.spare_failed.set(true),
        }
        inner.preparing_spare.set(false);
    })
    .detach();
}

/// A free segment to reuse (its header already names its next generation), or a fresh one
/// created and synced on a blocking thread.
async fn create(inner: &Rc<Inner>) -> io::Result<SegmentHeader> {
    let table = &inner.counters.segments;
    if let Some(h) = table.take_free(inner.config.segment_size_bytes, inner.block_bytes) {
        return Ok(h);
    }
    #[cfg(test)]
    if inner.refuse_new_segments.get() {
        return Err(io::Error::new(
            io::ErrorKind::StorageFull,
            "test: disk full",
        ));
    }
    let config = inner.config.clone();
    let id = inner.counters.segment_id();
    let block = inner.block_bytes;
    let header = glommio::executor()
        .spawn_blocking(move || {
            create_segment(
                &config.dir,
                id,
                config.segment_size_bytes,
                block,
                config.fsync,
            )
        })
        .await?;
    let mut s = inner.stats.get();
    s.segments_created += 1;
    inner.stats.set(s);
    Ok(header)
}

async fn open_active(
    inner: &Inner,
    header: SegmentHeader,
    pos: u64,
    next_batch: u64,
) -> io::Result<Active> {
    let file = open_segment_file(&inner.config, header.id).await?;
    Ok(activate(inner, header, file, pos, next_batch))
}

/// Opens segment `id` for appending (`O_DSYNC` with fsync on).
async fn open_segment_file(config: &LogConfig, id: u64) -> io::Result<DmaFile> {
    let path = segment_path(&config.dir, id);
    let flags = if config.fsync { libc::O_DSYNC } else { 0 };
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(flags)
        .dma_open(&path)
        .await?;
    Ok(file)
}

/// The active segment state for `file`, registered in the segment table as this core's.
fn activate(
    inner: &Inner,
    header: SegmentHeader,
    file: DmaFile,
    pos: u64,
    next_batch: u64,
) -> Active {
    let block = u64::from(header.block_bytes);
    assert!(
        block.is_multiple_of(file.alignment()) && pos.is_multiple_of(block),
        "batches start on device blocks"
    );
    let info = inner.counters.segments.register(header, Some(inner.core));
    info.set_position(pos, next_batch);
    Active {
        file,
        header,
        info,
        pos,
        next_batch,
    }
}

/// The O_DIRECT block of the device holding `dir` (a probe file of a unique name, opened and
/// removed; a leftover is removed at the next start like any `seg-*.tmp`).
async fn device_block_bytes(dir: &std::path::Path) -> io::Result<u32> {
    let unique = crate::storage::log::segment::fresh_nonce(u64::from(std::process::id()));
    let probe = dir.join(format!("seg-probe-{unique:016x}.tmp"));
    let file = DmaFile::create(&probe).await?;
    let block = file.alignment().max(SECTOR_BYTES);
    file.close().await?;
    glommio::io::remove(&probe).await?;
    assert!(block <= BLOCK_MAX_BYTES, "device block of {block} bytes");
    Ok(block as u32)
}
