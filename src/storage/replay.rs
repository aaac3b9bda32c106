//! Startup: the catalogue rebuilt by replaying every log segment (blocking I/O, before any core
//! serves), and the migration of a format-1 data directory (one file per object) into it.
//!
//! Invariants: replay applies each record of a known bucket incarnation and keeps, per key, the
//! change with the highest sequence number — so the order in which segments and cores' logs
//! are read does not matter, and a record of a deleted bucket never resurfaces; a segment that
//! is corrupt (not merely torn at its tail) stops the start with its name and offset; the
//! counters continue above every sequence number and segment id found, so none is reused.

use crate::storage::catalog::{Catalog, SharedBucket};
use crate::storage::checkpoint::{self, Checkpoint, CheckpointBucket, CheckpointSegment};
use crate::storage::disk::read_record_blocking;
use crate::storage::entry::{self, Change};
use crate::storage::index::{IndexEntry, SharedIndex};
use crate::storage::layout::{object_file_name, Layout};
use crate::storage::log::appender::LogCounters;
use crate::storage::log::format::RecordView;
use crate::storage::log::format::SegmentHeader;
use crate::storage::log::format::{
    align_up, frame_record, record_len, seal_records, BatchHeader, BATCH_HEADER_BYTES,
    SEGMENT_HEADER_BYTES,
};
use crate::storage::log::scan::{scan_segment_from, ScanEnd, ScanFrom, SegmentScan};
use crate::storage::log::segment::{create_segment, list_segments, segment_path};
use crate::storage::log::table::{key_hash, SegmentTable};
use crate::storage::log::RecordLocation;
use crate::storage::recovery::{read_buckets, BucketMeta};
use crate::storage::store::EngineStart;
use std::collections::{HashMap, HashSet};
use std::io;
use std::sync::{Arc, Mutex};

/// A segment is continued after a restart only if at least this fraction of it is free.
const RESUME_FREE_FRACTION_MIN: u64 = 4;
/// Block alignment of segments written by the migration (valid on every supported device).
const MIGRATION_BLOCK_BYTES: u32 = 4096;
/// Objects between two progress lines of the migration.
const MIGRATION_PROGRESS_OBJECTS: usize = 10_000;

/// What replay found.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ReplayReport {
    pub(crate) segments: usize,
    pub(crate) records: u64,
    /// Segments whose last flush was cut off (its records were never acknowledged).
    pub(crate) torn_tails: usize,
    pub(crate) removed_partial_buckets: usize,
    /// Index entries read from a checkpoint (`None`: no usable checkpoint).
    pub(crate) checkpoint_keys: Option<u64>,
    /// Segments scanned wholly, or with records after the checkpoint's position.
    pub(crate) tail_segments: usize,
}

/// One change of a key: (key, sequence number, its record, the entry or `None` for a delete).
/// The last element says whether the change was read from the log (true) or the checkpoint:
/// of two changes with one sequence number (a record and its compaction copy) the log's wins.
type KeyChange = (String, u64, RecordLocation, Option<IndexEntry>, bool);
/// Per bucket: its incarnation and every change of its incarnation found (sorted at the end:
/// cheaper than hashing every key while scanning).
type Changes = HashMap<String, (u64, Vec<KeyChange>)>;

/// Replays the logs under `layout` into a catalogue for `cores` cores: from the checkpoint and
/// the log tail after it when there is a usable checkpoint, else from every record.
pub(crate) fn replay(
    layout: &Layout,
    cores: usize,
    segment_size_bytes: u64,
) -> io::Result<(EngineStart, ReplayReport)> {
    let mut report = ReplayReport::default();
    let buckets = read_buckets(layout, &mut report.removed_partial_buckets)?;
    let mut checkpoint = load_checkpoint(layout);
    let mut changes: Changes = buckets
        .iter()
        .map(|b| (b.name.clone(), (b.incarnation, Vec::new())))
        .collect();
    let scan = scan_logs(layout, checkpoint.as_ref(), &mut changes, &mut report)?;
    if let Some(c) = &mut checkpoint {
        let buckets = std::mem::take(&mut c.buckets);
        report.checkpoint_keys = Some(merge_checkpoint(buckets, &mut changes));
    }
    let (resume, spares) = resumable(layout, scan.ends, cores, segment_size_bytes)?;
    let table = Arc::new(SegmentTable::default());
    for u in scan.used {
        let resumed = resume.iter().any(|e| e.header.id == u.header.id);
        table.register_scanned(u.header, u.bytes, u.dead, resumed, u.position);
        if let Some(keys) = u.dead_keys {
            table.add_dead_keys(u.header.id, keys);
        }
    }
    let max_incarnation = buckets.iter().map(|b| b.incarnation).max().unwrap_or(0);
    let (ck_segment, ck_seq) = checkpoint
        .as_ref()
        .map_or((0, 0), |c| (c.next_segment, c.next_seq));
    let next_seq = (scan.max_seq.max(max_incarnation) + 1).max(ck_seq);
    let next_segment = (scan.max_segment + 1).max(ck_segment);
    let counters = LogCounters::new(next_segment, next_seq, table.clone());
    let catalog = Arc::new(Catalog::new(counters, cores));
    if let Some(c) = &checkpoint {
        catalog
            .checkpoint_floor
            .store(c.floor, std::sync::atomic::Ordering::SeqCst);
    }
    let marks = Marks {
        table: &table,
        stale: scan.stale,
    };
    for b in buckets {
        let (_, keys) = changes
            .remove(&b.name)
            .expect("every bucket has a change map");
        catalog.insert(Arc::new(shared_bucket(b, keys, &marks)));
    }
    apply_copies(&catalog, &marks, scan.copies);
    let engine = EngineStart {
        catalog,
        resume: Mutex::new(resume),
        spares: Mutex::new(spares),
        segment_size_bytes,
    };
    Ok((engine, report))
}

/// The checkpoint, if one exists and verifies (a bad one is reported and ignored: the whole
/// log is replayed instead).
fn load_checkpoint(layout: &Layout) -> Option<Checkpoint> {
    match checkpoint::read(layout.root()) {
        Ok(c) => c,
        Err(why) => {
            eprintln!("ringstore: ignoring the checkpoint ({why}); replaying the whole log");
            None
        }
    }
}

/// A segment with records, for the segment table.
struct Used {
    header: SegmentHeader,
    position: (u64, u64),
    bytes: u64,
    dead: u64,
    /// Dead key hashes of its part a checkpoint covered.
    dead_keys: Option<Vec<u64>>,
}

/// A tail record below the checkpoint's floor: it only moves an entry of its sequence number.
struct CopyFound {
    bucket: String,
    incarnation: u64,
    key: String,
    seq: u64,
    at: RecordLocation,
}

/// What scanning the logs found.
#[derive(Default)]
struct LogScan {
    ends: Vec<ScanEnd>,
    used: Vec<Used>,
    copies: Vec<CopyFound>,
    /// Segments the checkpoint covered that were reused since (or are gone).
    stale: HashSet<u64>,
    max_seq: u64,
    max_segment: u64,
}

/// Scans every segment (only the tail after the checkpoint's position where it still holds),
/// collecting changes at or above the checkpoint's floor and copies below it.
fn scan_logs(
    layout: &Layout,
    checkpoint: Option<&Checkpoint>,
    changes: &mut Changes,
    report: &mut ReplayReport,
) -> io::Result<LogScan> {
    let floor = checkpoint.map_or(0, |c| c.floor);
    let covered: HashMap<u64, &CheckpointSegment> = checkpoint
        .map(|c| c.segments.iter().map(|s| (s.id, s)).collect())
        .unwrap_or_default();
    let mut out = LogScan {
        stale: covered.keys().copied().collect(),
        ..LogScan::default()
    };
    for (id, path) in list_segments(&layout.log_dir())? {
        out.max_segment = out.max_segment.max(id);
        let from = covered.get(&id).map(|c| ScanFrom {
            generation: c.generation,
            end: c.end,
            next_batch: c.next_batch,
        });
        let mut bad = None;
        let (mut bytes, mut dead) = (0u64, 0u64);
        let (scan, resumed) = scan_segment_from(&path, from, |at, rec| {
            out.max_seq = out.max_seq.max(rec.seq);
            report.records += 1;
            bytes += u64::from(at.len);
            match collect(changes, &mut out.copies, floor, at, rec) {
                Ok(true) => {}
                Ok(false) => dead += u64::from(at.len),
                Err(why) => bad = bad.take().or(Some((at.offset, why))),
            }
        })?;
        if let Some((offset, why)) = bad {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: record at offset {offset}: {why}", path.display()),
            ));
        }
        let end = match scan {
            SegmentScan::Unused => {
                std::fs::remove_file(&path)?;
                continue;
            }
            SegmentScan::Live(end) => end,
        };
        report.segments += 1;
        report.tail_segments += usize::from(!resumed || end.records > 0);
        report.torn_tails += usize::from(end.torn_tail);
        let ck = covered.get(&id).filter(|_| resumed);
        if ck.is_some() {
            out.stale.remove(&id);
        }
        if end.records > 0 || ck.is_some_and(|c| c.record_bytes > 0) {
            out.used.push(Used {
                header: end.header,
                position: (end.end, end.next_batch),
                bytes: bytes + ck.map_or(0, |c| c.record_bytes),
                dead: dead + ck.map_or(0, |c| c.dead_bytes),
                dead_keys: ck.map(|c| c.dead_keys.clone()),
            });
        }
        out.ends.push(end);
    }
    Ok(out)
}

/// Files one scanned record: a change at or above `floor`, a copy below it. Returns false when
/// its bucket incarnation is gone, or why the record does not decode.
fn collect(
    changes: &mut Changes,
    copies: &mut Vec<CopyFound>,
    floor: u64,
    at: RecordLocation,
    rec: RecordView<'_>,
) -> Result<bool, String> {
    let change = entry::decode(rec.kind, rec.seq, at, rec.payload)?;
    if change.seq >= floor {
        return Ok(apply(changes, change, at));
    }
    if let Some(copy) = copy_found(changes, change, at) {
        copies.push(copy);
    }
    Ok(true)
}

/// A tail object record below the floor, if its bucket incarnation lives.
fn copy_found(changes: &Changes, change: Change, at: RecordLocation) -> Option<CopyFound> {
    let (incarnation, _) = changes.get(&change.bucket)?;
    (*incarnation == change.incarnation && change.entry.is_some()).then_some(CopyFound {
        bucket: change.bucket,
        incarnation: change.incarnation,
        key: change.key,
        seq: change.seq,
        at,
    })
}

/// Adds the checkpoint's entries and tombstones of live bucket incarnations to `changes`;
/// returns the entries added.
fn merge_checkpoint(buckets: Vec<CheckpointBucket>, changes: &mut Changes) -> u64 {
    let mut keys = 0;
    for b in buckets {
        let Some((incarnation, list)) = changes.get_mut(&b.name) else {
            continue;
        };
        if *incarnation != b.incarnation {
            continue;
        }
        list.reserve(b.entries.len() + b.tombstones.len());
        for (key, e) in b.entries {
            list.push((key, e.seq, e.location, Some(e), false));
            keys += 1;
        }
        for (key, seq, at) in b.tombstones {
            list.push((key, seq, at, None, false));
        }
    }
    keys
}

/// Counts dead records in the segment table, except at locations a checkpoint named in
/// segments reused since (whose counters are the new generation's).
struct Marks<'a> {
    table: &'a SegmentTable,
    stale: HashSet<u64>,
}

impl Marks<'_> {
    fn dead(&self, at: RecordLocation, key: Option<u64>) {
        if !self.stale.contains(&at.segment) {
            self.table.mark_dead(at, key);
        }
    }
}

/// Points entries at the tail copies of their records (the originals may be gone).
fn apply_copies(catalog: &Catalog, marks: &Marks, copies: Vec<CopyFound>) {
    for c in copies {
        let hash = key_hash(&c.bucket, &c.key);
        let bucket = catalog
            .bucket(&c.bucket)
            .filter(|b| b.incarnation == c.incarnation);
        let current = bucket
            .as_ref()
            .and_then(|b| b.objects.get(&c.key).map(|e| e.value().clone()));
        match (bucket, current) {
            (Some(b), Some(e)) if e.seq == c.seq => {
                marks.dead(e.location, Some(hash));
                b.relocate(c.key, e, c.at);
            }
            _ => marks.dead(c.at, Some(hash)),
        }
    }
}

/// Collects `change` (whose record is at `at`) if its bucket incarnation lives; false if not.
fn apply(changes: &mut Changes, change: Change, at: RecordLocation) -> bool {
    let Some((incarnation, keys)) = changes.get_mut(&change.bucket) else {
        return false;
    };
    if *incarnation != change.incarnation {
        return false;
    }
    keys.push((change.key, change.seq, at, change.entry, true));
    true
}

/// The bucket's index from its changes; every superseded record is counted dead in `table`.
fn shared_bucket(b: BucketMeta, mut changes: Vec<KeyChange>, marks: &Marks) -> SharedBucket {
    // By key, then sequence: the last change of each key is its current state. Inserting in key
    // order also walks the nodes the last insertion just touched (cached), which builds a large
    // index several times faster than inserting in hash order.
    changes.sort_unstable_by(|a, b| (&a.0, a.1, a.4).cmp(&(&b.0, b.1, b.4)));
    let objects = SharedIndex::new();
    let mut object_bytes = 0;
    let mut changes = changes.into_iter().peekable();
    // Whether the change at hand has older ones of its key (which a tombstone must cover).
    let mut has_older = false;
    while let Some((key, _, at, entry, _)) = changes.next() {
        let superseded = changes.peek().is_some_and(|next| next.0 == key);
        match (superseded, entry) {
            (false, Some(e)) => {
                object_bytes += e.summary.size;
                objects.insert(key, e);
            }
            // The key's tombstone: needed while older records of the key exist.
            (false, None) if has_older => {}
            (false, None) => marks.dead(at, None),
            (true, e) => marks.dead(at, e.map(|_| key_hash(&b.name, &key))),
        }
        has_older = superseded;
    }
    let mut bucket = SharedBucket::new(&b.name, b.created_ms, b.incarnation);
    bucket.objects = objects;
    *bucket.object_bytes.get_mut() = object_bytes;
    bucket
}

/// Empty segments kept per core at startup: its spare and its reserve.
const EMPTY_SEGMENTS_PER_CORE_KEPT: usize = 2;

/// The segments the cores continue: per core at most one with records and room left (the
/// fullest first, so less space is stranded) and two empty ones (its spare and its reserve).
/// Empty segments beyond those hold nothing and are removed.
fn resumable(
    layout: &Layout,
    ends: Vec<ScanEnd>,
    cores: usize,
    segment_size_bytes: u64,
) -> io::Result<(Vec<ScanEnd>, Vec<SegmentHeader>)> {
    let (empty, mut used): (Vec<ScanEnd>, Vec<ScanEnd>) =
        ends.into_iter().partition(|e| e.next_batch == 1);
    let mut spares = Vec::new();
    for e in empty {
        let kept_max = cores * EMPTY_SEGMENTS_PER_CORE_KEPT;
        if spares.len() < kept_max && e.header.size_bytes == segment_size_bytes {
            spares.push(e.header);
        } else {
            std::fs::remove_file(segment_path(&layout.log_dir(), e.header.id))?;
        }
    }
    used.retain(|e| {
        let size = e.header.size_bytes;
        size == segment_size_bytes && (size - e.end) * RESUME_FREE_FRACTION_MIN >= size
    });
    used.sort_by_key(|e| std::cmp::Reverse(e.end));
    used.truncate(cores);
    used.reverse(); // cores pop from the end: the fullest first
    Ok((used, spares))
}

/// Converts a format-1 data directory: every object file becomes a PUT_FILE record naming it
/// (its bytes do not move), written to new segments and synced. Returns the objects migrated.
/// Safe to repeat after a crash: a second run logs the same files again under newer numbers.
pub(crate) fn migrate_v1(layout: &Layout, segment_size_bytes: u64) -> io::Result<usize> {
    let mut ignored = 0;
    let buckets = read_buckets(layout, &mut ignored)?;
    let mut payloads = Vec::new();
    for b in &buckets {
        for obj in std::fs::read_dir(layout.objects_dir(&b.name))? {
            let obj = obj?;
            let name = obj.file_name().to_string_lossy().into_owned();
            let rec = match read_record_blocking(&obj.path()) {
                Ok(rec) if object_file_name(&rec.key) == name => rec,
                _ => {
                    eprintln!(
                        "ringstore: migration skips unreadable {}",
                        obj.path().display()
                    );
                    continue;
                }
            };
            let upload = rec.parts.as_ref().map(|p| p.upload_id.as_str());
            let summary = rec.summary();
            let p = entry::put_file(&b.name, b.incarnation, &rec.key, &summary, &name, upload);
            payloads.push(p);
            if payloads.len() % MIGRATION_PROGRESS_OBJECTS == 0 {
                eprintln!(
                    "ringstore: migrating to format 2: {} objects",
                    payloads.len()
                );
            }
        }
    }
    let first_id = list_segments(&layout.log_dir())?
        .last()
        .map_or(1, |(id, _)| id + 1);
    write_segments_blocking(layout, first_id, segment_size_bytes, &payloads)?;
    Ok(payloads.len())
}

/// Most record bytes per batch the migration writes.
const MIGRATION_BATCH_PAYLOAD_BYTES: usize = 512 * 1024;

/// Writes PUT_FILE `payloads` as records (sequence numbers from 1) into new segments, many
/// records per batch, each segment synced.
fn write_segments_blocking(
    layout: &Layout,
    mut id: u64,
    segment_size_bytes: u64,
    payloads: &[Vec<u8>],
) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    let dir = layout.log_dir();
    let block = u64::from(MIGRATION_BLOCK_BYTES);
    let room = |pos: u64, len: usize| {
        align_up((BATCH_HEADER_BYTES + len) as u64, block) + pos <= segment_size_bytes
    };
    let mut rest = payloads.iter().enumerate().peekable();
    while rest.peek().is_some() {
        let h = create_segment(&dir, id, segment_size_bytes, MIGRATION_BLOCK_BYTES, true)?;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(segment_path(&dir, id))?;
        let (mut pos, mut number) = (SEGMENT_HEADER_BYTES, 1u64);
        loop {
            let mut records = Vec::new();
            while let Some((i, p)) = rest.next_if(|(_, p)| {
                let len = records.len() + record_len(p.len());
                len <= MIGRATION_BATCH_PAYLOAD_BYTES && room(pos, len)
            }) {
                let at = records.len();
                records.resize(at + record_len(p.len()), 0);
                frame_record(&mut records[at..], i as u64 + 1, entry::KIND_PUT_FILE, &[p]);
            }
            if records.is_empty() {
                break;
            }
            seal_records(&mut records, h.generation, h.nonce);
            let batch = BatchHeader::for_payload(h.generation, number, h.nonce, &records);
            let span = align_up((BATCH_HEADER_BYTES + records.len()) as u64, block);
            let mut buf = vec![0u8; span as usize];
            buf[..BATCH_HEADER_BYTES].copy_from_slice(&batch.encode(h.nonce));
            buf[BATCH_HEADER_BYTES..BATCH_HEADER_BYTES + records.len()].copy_from_slice(&records);
            file.write_all_at(&buf, pos)?;
            pos += span;
            number += 1;
        }
        file.sync_data()?;
        id += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::storage::index::Body;
    use crate::storage::layout::{object_file_name, Layout, FORMAT_LINE};
    use crate::storage::record::ObjectRecord;
    use crate::storage::{prepare_data_dir, unit_temp_dir as temp_dir, Prepared};
    use std::path::Path;

    /// A data directory as format 1 left it: one file per object, named by the key's hash.
    fn write_v1(root: &Path, objects: &[(&str, &[u8])]) {
        let layout = Layout::new(root.to_path_buf());
        std::fs::create_dir_all(layout.objects_dir("old")).unwrap();
        std::fs::create_dir_all(layout.uploads_dir("old")).unwrap();
        std::fs::write(layout.bucket_meta("old"), b"1700000000000\n").unwrap();
        for (key, body) in objects {
            let mut rec = ObjectRecord::new(key);
            rec.size = body.len() as u64;
            let mut file = vec![0u8; rec.header_len()];
            let n = file.len();
            rec.encode_header(n, &mut file);
            file.extend_from_slice(body);
            let path = layout.objects_dir("old").join(object_file_name(key));
            std::fs::write(path, file).unwrap();
        }
        std::fs::write(layout.format_marker(), b"ringstore 1\n").unwrap();
    }

    fn indexed(p: &Prepared) -> Vec<(String, u64, Body)> {
        let b = p.engine.catalog.bucket("old").expect("bucket kept");
        assert_eq!((b.created_ms, b.incarnation), (1_700_000_000_000, 0));
        let all = b.objects.iter();
        all.map(|e| {
            (
                e.key().clone(),
                e.value().summary.size,
                e.value().body.clone(),
            )
        })
        .collect()
    }

    #[test]
    fn a_format_1_directory_is_migrated_once_and_its_objects_stay_in_place() {
        let dir = temp_dir();
        let root = dir.path().join("data");
        std::fs::create_dir_all(&root).unwrap();
        write_v1(&root, &[("a", b"hello"), ("dir/b", b"")]);
        let p = prepare_data_dir(&root, 2, crate::storage::LOG_SEGMENT_SIZE_BYTES).unwrap();
        let marker = std::fs::read_to_string(root.join("ringstore.format")).unwrap();
        assert_eq!(marker, FORMAT_LINE);
        let file = |k: &str| Body::File {
            name: object_file_name(k),
            upload_id: None,
        };
        let want = vec![
            ("a".to_string(), 5, file("a")),
            ("dir/b".to_string(), 0, file("dir/b")),
        ];
        assert_eq!(indexed(&p), want);
        drop(p);
        // The next start replays; nothing is migrated twice.
        let segments = std::fs::read_dir(root.join("log")).unwrap().count();
        let p = prepare_data_dir(&root, 1, crate::storage::LOG_SEGMENT_SIZE_BYTES).unwrap();
        assert_eq!(indexed(&p), want);
        assert_eq!(
            std::fs::read_dir(root.join("log")).unwrap().count(),
            segments
        );
    }
}
