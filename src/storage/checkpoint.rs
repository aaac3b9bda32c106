//! Checkpoints: the whole index written to one file while serving (and at a clean stop), so a
//! start reads it sequentially and replays only the log written after it.
//!
//! A checkpoint holds, for every bucket, its entries and the tombstones an older write could
//! still need, plus for every log segment the position it covers (generation, end, next batch
//! number) and its compaction counters (record bytes, dead bytes, dead key hashes), and the
//! floor `F`: every record with a sequence number below `F` is installed in (or superseded
//! within) the checkpoint. How one is taken:
//! 1. set `checkpointing` (owners stop pruning tombstones, compaction starts nothing new) and
//!    wait until no compaction is in progress (so no copy is half relocated);
//! 2. read `F` from the sequence counter, then every segment's position: a record sealed after
//!    `F` was read lies after these positions (the log tail);
//! 3. read the counter again (`F1`) and wait until every core's floor passed it: every record
//!    before the positions is then installed;
//! 4. write the buckets' entries and tombstones (seq >= `F`), then the segments' counters;
//!    file written under a temporary name, synced, renamed, directory synced.
//!
//! Replay then reads the tail only: records at or above `F` are changes as usual; records
//! below `F` in the tail are compaction copies (or writes already installed at the snapshot)
//! and only move an entry that has exactly their sequence number.
//!
//! Invariants: a checkpoint is used only whole (a trailer with its length and CRC32C); one
//! that does not verify is ignored with a warning (the full log is replayed); the file is
//! replaced atomically, so a crash leaves the previous checkpoint or the new one.

use crate::storage::catalog::Catalog;
use crate::storage::disk::sync_dir;
use crate::storage::index::{Body, IndexEntry, ObjectSummary};
use crate::storage::log::RecordLocation;
use crate::storage::record::{put_str, Cursor};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// File name of the checkpoint in the data directory.
pub(crate) const CHECKPOINT_FILE_NAME: &str = "checkpoint";
const MAGIC: &[u8; 8] = b"RSCHKPT1";
const TRAILER_MAGIC: &[u8; 8] = b"RSCKEND1";
/// Trailer: magic, u64 length of everything before it, u32 CRC32C of it.
const TRAILER_BYTES: usize = 8 + 8 + 4;
/// How often a checkpoint re-checks compaction and the floors it waits for.
const WAIT_POLL: Duration = Duration::from_millis(1);
/// Buffer of the checkpoint writer.
const WRITE_BUFFER_BYTES: usize = 1024 * 1024;

/// One segment as a checkpoint saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CheckpointSegment {
    pub(crate) id: u64,
    pub(crate) generation: u64,
    pub(crate) end: u64,
    pub(crate) next_batch: u64,
    pub(crate) record_bytes: u64,
    pub(crate) dead_bytes: u64,
    pub(crate) dead_keys: Vec<u64>,
}

/// One bucket's part of a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CheckpointBucket {
    pub(crate) name: String,
    pub(crate) incarnation: u64,
    pub(crate) entries: Vec<(String, IndexEntry)>,
    pub(crate) tombstones: Vec<(String, u64, RecordLocation)>,
}

/// A checkpoint as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Checkpoint {
    pub(crate) floor: u64,
    pub(crate) next_segment: u64,
    pub(crate) next_seq: u64,
    pub(crate) segments: Vec<CheckpointSegment>,
    pub(crate) buckets: Vec<CheckpointBucket>,
}

/// What writing a checkpoint produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Written {
    pub(crate) keys: u64,
    pub(crate) bytes: u64,
}

/// The checkpoint file of the data directory `root`.
pub(crate) fn checkpoint_path(root: &Path) -> PathBuf {
    root.join(CHECKPOINT_FILE_NAME)
}

/// Clears `checkpointing` when dropped.
struct Checkpointing<'a>(&'a Catalog);

impl Drop for Checkpointing<'_> {
    fn drop(&mut self) {
        self.0.checkpointing.store(false, Ordering::SeqCst);
    }
}

/// Takes a checkpoint while serving (steps 1-3 of the module doc on this executor, the
/// writing on a blocking thread).
pub(crate) async fn take(catalog: &Arc<Catalog>, root: &Path, fsync: bool) -> io::Result<Written> {
    if catalog.stopping.load(Ordering::SeqCst) {
        return Err(io::Error::other("the server is stopping"));
    }
    if catalog.checkpointing.swap(true, Ordering::SeqCst) {
        return Err(io::Error::other("a checkpoint is already being taken"));
    }
    let _clear = Checkpointing(catalog);
    while catalog.compactions_in_flight.load(Ordering::SeqCst) > 0 {
        glommio::timer::sleep(WAIT_POLL).await;
    }
    let floor = catalog.counters.peek();
    let positions = catalog.counters.segments.positions();
    let after = catalog.counters.peek();
    while catalog.global_floor() < after {
        glommio::timer::sleep(WAIT_POLL).await;
    }
    let (shared, path) = (catalog.clone(), checkpoint_path(root));
    let written = glommio::executor()
        .spawn_blocking(move || write_file(&shared, &path, floor, &positions, fsync))
        .await?;
    // Durable now (and compaction still paused): tombstones below `floor` are reflected in it.
    catalog.checkpoint_floor.store(floor, Ordering::SeqCst);
    Ok(written)
}

/// How often the checkpointer checks how much log was written since the last checkpoint.
const CHECKPOINTER_POLL: Duration = Duration::from_millis(100);

/// Takes a checkpoint whenever `interval_bytes` of log records were written since the last
/// one, until `running` is cleared (runs on one core).
pub(crate) fn spawn_checkpointer(
    catalog: Arc<Catalog>,
    root: PathBuf,
    fsync: bool,
    interval_bytes: u64,
    running: std::rc::Rc<std::cell::Cell<bool>>,
) {
    assert!(interval_bytes > 0, "a zero interval means no checkpointer");
    glommio::spawn_local(async move {
        let mut last = catalog.counters.record_bytes();
        loop {
            glommio::timer::sleep(CHECKPOINTER_POLL).await;
            if !running.get() {
                return;
            }
            let now = catalog.counters.record_bytes();
            if now - last < interval_bytes || catalog.stopping.load(Ordering::SeqCst) {
                continue;
            }
            last = now;
            if let Err(e) = take(&catalog, &root, fsync).await {
                eprintln!("ringstore: checkpoint failed (the log keeps everything): {e}");
            }
        }
    })
    .detach();
}

/// Takes a checkpoint when nothing is in flight (a clean stop, every core stopped).
pub(crate) fn take_quiescent(catalog: &Catalog, root: &Path, fsync: bool) -> io::Result<Written> {
    let floor = catalog.counters.peek();
    let positions = catalog.counters.segments.positions();
    write_file(catalog, &checkpoint_path(root), floor, &positions, fsync)
}

/// A writer that checksums and counts what it writes.
struct Summed<W: Write> {
    inner: W,
    crc: u32,
    len: u64,
}

impl<W: Write> Write for Summed<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc = crc32c::crc32c_append(self.crc, &buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes the checkpoint file (step 4 of the module doc): temporary name, synced, renamed.
fn write_file(
    catalog: &Catalog,
    path: &Path,
    floor: u64,
    positions: &[(u64, u64, u64, u64)],
    fsync: bool,
) -> io::Result<Written> {
    let _one_writer = catalog.checkpoint_write.lock().expect("checkpoint writer");
    let tmp = path.with_extension("tmp");
    let file = std::fs::File::create(&tmp)?;
    let mut w = Summed {
        inner: io::BufWriter::with_capacity(WRITE_BUFFER_BYTES, file),
        crc: 0,
        len: 0,
    };
    let mut head = MAGIC.to_vec();
    head.extend_from_slice(&floor.to_le_bytes());
    head.extend_from_slice(&catalog.counters.peek_segment().to_le_bytes());
    head.extend_from_slice(&catalog.counters.peek().to_le_bytes());
    w.write_all(&head)?;
    let keys = write_buckets(&mut w, catalog, floor)?;
    write_segments(&mut w, catalog, positions)?;
    let (crc, len) = (w.crc, w.len);
    let mut file = w.inner.into_inner().map_err(|e| e.into_error())?;
    file.write_all(TRAILER_MAGIC)?;
    file.write_all(&len.to_le_bytes())?;
    file.write_all(&crc.to_le_bytes())?;
    if fsync {
        file.sync_all()?;
    }
    drop(file);
    std::fs::rename(&tmp, path)?;
    if fsync {
        sync_dir(path.parent().expect("a data directory"))?;
    }
    Ok(Written {
        keys,
        bytes: len + TRAILER_BYTES as u64,
    })
}

/// Every bucket: tag 1, name, incarnation, entries (tag 1 each, then 0), tombstones at or
/// above `floor` (likewise); then tag 0. Returns the entries written.
fn write_buckets(w: &mut impl Write, catalog: &Catalog, floor: u64) -> io::Result<u64> {
    let mut keys = 0;
    let mut buf = Vec::new();
    for b in catalog.all() {
        buf.clear();
        buf.push(1);
        put_str(&mut buf, &b.name);
        buf.extend_from_slice(&b.incarnation.to_le_bytes());
        w.write_all(&buf)?;
        for e in b.objects.iter() {
            buf.clear();
            buf.push(1);
            encode_entry(&mut buf, e.key(), e.value());
            w.write_all(&buf)?;
            keys += 1;
        }
        let tombstones: Vec<_> = {
            let t = b.tombstones.lock().expect("tombstones");
            let kept = t.iter().filter(|(_, (seq, _))| *seq >= floor);
            kept.map(|(k, v)| (k.clone(), *v)).collect()
        };
        buf.clear();
        buf.push(0);
        for (key, (seq, at)) in tombstones {
            buf.push(1);
            put_str(&mut buf, &key);
            buf.extend_from_slice(&seq.to_le_bytes());
            encode_location(&mut buf, at);
        }
        buf.push(0);
        w.write_all(&buf)?;
    }
    w.write_all(&[0])?;
    Ok(keys)
}

/// Every segment of `positions` with its counters now: u32 count, then each.
fn write_segments(
    w: &mut impl Write,
    catalog: &Catalog,
    positions: &[(u64, u64, u64, u64)],
) -> io::Result<()> {
    let table = &catalog.counters.segments;
    let mut buf = (positions.len() as u32).to_le_bytes().to_vec();
    for &(id, generation, end, next_batch) in positions {
        let (record_bytes, dead_bytes, dead_keys) =
            table.get(id).map_or((0, 0, Vec::new()), |i| i.stats());
        for v in [id, generation, end, next_batch, record_bytes, dead_bytes] {
            buf.extend_from_slice(&v.to_le_bytes());
        }
        buf.extend_from_slice(&(dead_keys.len() as u32).to_le_bytes());
        for k in dead_keys {
            buf.extend_from_slice(&k.to_le_bytes());
        }
        w.write_all(&buf)?;
        buf.clear();
    }
    Ok(())
}

fn encode_location(buf: &mut Vec<u8>, at: RecordLocation) {
    buf.extend_from_slice(&at.segment.to_le_bytes());
    buf.extend_from_slice(&at.offset.to_le_bytes());
    buf.extend_from_slice(&at.len.to_le_bytes());
}

fn decode_location(c: &mut Cursor<'_>) -> Result<RecordLocation, String> {
    Ok(RecordLocation {
        segment: c.u64()?,
        offset: c.u64()?,
        len: c.u32()?,
    })
}

fn encode_entry(buf: &mut Vec<u8>, key: &str, e: &IndexEntry) {
    put_str(buf, key);
    buf.extend_from_slice(&e.seq.to_le_bytes());
    encode_location(buf, e.location);
    buf.extend_from_slice(&e.summary.size.to_le_bytes());
    put_str(buf, &e.summary.etag);
    buf.extend_from_slice(&e.summary.last_modified_ms.to_le_bytes());
    match &e.body {
        Body::Inline => buf.push(0),
        Body::File { name, upload_id } => {
            buf.push(1 + u8::from(upload_id.is_some()));
            put_str(buf, name);
            if let Some(id) = upload_id {
                put_str(buf, id);
            }
        }
    }
}

fn decode_entry(c: &mut Cursor<'_>) -> Result<(String, IndexEntry), String> {
    let key = c.str()?;
    let seq = c.u64()?;
    let location = decode_location(c)?;
    let summary = ObjectSummary {
        size: c.u64()?,
        etag: c.str()?,
        last_modified_ms: c.u64()?,
    };
    let body = match c.bytes(1)?[0] {
        0 => Body::Inline,
        tag @ (1 | 2) => Body::File {
            name: c.str()?,
            upload_id: if tag == 2 { Some(c.str()?) } else { None },
        },
        other => return Err(format!("unknown body tag {other}")),
    };
    let entry = IndexEntry {
        seq,
        location,
        summary,
        body,
    };
    Ok((key, entry))
}

/// The checkpoint at `root`: `Ok(None)` when there is none, `Err` saying why when one exists
/// but cannot be used (the caller replays the whole log).
pub(crate) fn read(root: &Path) -> Result<Option<Checkpoint>, String> {
    let path = checkpoint_path(root);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let body_len = bytes
        .len()
        .checked_sub(TRAILER_BYTES)
        .ok_or("shorter than its trailer")?;
    let (body, trailer) = bytes.split_at(body_len);
    let mut t = Cursor::new(trailer);
    if t.bytes(8)? != TRAILER_MAGIC || t.u64()? != body_len as u64 {
        return Err("trailer missing or length mismatch (cut short?)".into());
    }
    if t.u32()? != crc32c::crc32c(body) {
        return Err("checksum mismatch".into());
    }
    decode(body).map(Some)
}

fn decode(body: &[u8]) -> Result<Checkpoint, String> {
    let mut c = Cursor::new(body);
    if c.bytes(8)? != MAGIC {
        return Err("not a ringstore checkpoint (or another version)".into());
    }
    let (floor, next_segment, next_seq) = (c.u64()?, c.u64()?, c.u64()?);
    let mut buckets = Vec::new();
    while c.bytes(1)?[0] == 1 {
        let mut b = CheckpointBucket {
            name: c.str()?,
            incarnation: c.u64()?,
            entries: Vec::new(),
            tombstones: Vec::new(),
        };
        while c.bytes(1)?[0] == 1 {
            b.entries.push(decode_entry(&mut c)?);
        }
        while c.bytes(1)?[0] == 1 {
            let key = c.str()?;
            let seq = c.u64()?;
            b.tombstones.push((key, seq, decode_location(&mut c)?));
        }
        buckets.push(b);
    }
    let mut segments = Vec::new();
    for _ in 0..c.u32()? {
        let mut s = CheckpointSegment {
            id: c.u64()?,
            generation: c.u64()?,
            end: c.u64()?,
            next_batch: c.u64()?,
            record_bytes: c.u64()?,
            dead_bytes: c.u64()?,
            dead_keys: Vec::new(),
        };
        for _ in 0..c.u32()? {
            s.dead_keys.push(c.u64()?);
        }
        segments.push(s);
    }
    if !c.rest().is_empty() {
        return Err("trailing bytes".into());
    }
    Ok(Checkpoint {
        floor,
        next_segment,
        next_seq,
        segments,
        buckets,
    })
}
