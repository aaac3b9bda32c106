//! Storage: everything on disk, behind one typed API ([`Store`]) that knows nothing of HTTP,
//! XML or S3 error codes.
//!
//! Inside: the on-disk object record format ([`record`]), DMA staging writes and reads, the
//! per-core owner state (bucket indexes, commits, deletes, multipart uploads), the data directory
//! layout, and the cross-core calls that carry metadata operations to a bucket's owner core.
//! Only [`Store`] and the value types it takes and returns are visible above this module.
//!
//! On disk (format 2): per-core append-only logs ([`log`]) hold every object change as a record
//! (small objects inline, larger ones and multipart objects as a reference to their own file);
//! the bucket indexes are rebuilt from them at startup ([`replay`]) and shared by every core.
//!
//! Invariants: only a bucket's owner core changes its index; an index entry appears only after
//! its log record is durable (and a file it names was synced and renamed, with its directory
//! synced, before that record was written) — so an acknowledged write is durable and a listed
//! key is readable.

mod budget;
mod cache;
mod catalog;
mod checkpoint;
mod compact;
mod disk;
mod entry;
mod error;
mod group_sync;
mod index;
mod layout;
mod list;
mod locks;
mod log;
mod owner;
mod owner_reserve;
mod owner_uploads;
mod reader;
pub mod record;
mod recovery;
mod replay;
mod shard;
mod store;
mod uploads;
mod writer;

pub(crate) use budget::{UploadBudget, UPLOAD_MEMORY_DEFAULT_BYTES};
pub(crate) use cache::{ReadCache, CACHE_SIZE_DEFAULT_BYTES};
pub(crate) use error::StorageError;
pub use index::BucketIndex;
pub use index::{EntityTag, EtagMatch, ObjectSummary, WriteCondition};
pub(crate) use layout::is_valid_upload_id;
pub use list::{list_page, ListEntry, ListPage, ListParams, ListSource};
pub(crate) use reader::{Chunk, ObjectStream, OpenObject};
pub(crate) use record::{ObjectRecord, StoredChecksum};
pub(crate) use recovery::LoadReport;
pub use shard::owner_of;
pub(crate) use shard::CoreMesh;
pub(crate) use store::{EngineStart, ObjectWriter, StagedObject, Store, StoreConfig};
pub(crate) use uploads::{CompletePart, CompleteRequest, PartInfo, UploadInfo};

use std::path::{Path, PathBuf};

/// Default size of new log segments.
pub(crate) const LOG_SEGMENT_SIZE_BYTES: u64 = log::segment::SEGMENT_SIZE_DEFAULT_BYTES;
/// Smallest log segment size.
pub(crate) const LOG_SEGMENT_SIZE_MIN_BYTES: u64 = log::segment::SEGMENT_SIZE_MIN_BYTES;
/// Log segment sizes are whole multiples of this (the segment header area).
pub(crate) const LOG_SEGMENT_UNIT_BYTES: u64 = log::format::SEGMENT_HEADER_BYTES;

/// The server is stopping: no compaction or checkpoint starts from now on.
pub(crate) fn stop_background(engine: &EngineStart) {
    let c = &engine.catalog;
    c.stopping.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// Whether a checkpoint or a compaction is still running (a core waits for them before it
/// stops, so no blocking helper outlives its executor).
pub(crate) fn background_busy(engine: &EngineStart) -> bool {
    use std::sync::atomic::Ordering;
    let c = &engine.catalog;
    c.checkpointing.load(Ordering::SeqCst) || c.compactions_in_flight.load(Ordering::SeqCst) > 0
}

/// Writes a checkpoint of `engine` into the data directory `root` once every core stopped;
/// returns (index entries, bytes).
pub(crate) fn checkpoint_at_stop(
    engine: &EngineStart,
    root: &Path,
    fsync: bool,
) -> std::io::Result<(u64, u64)> {
    let w = checkpoint::take_quiescent(&engine.catalog, root, fsync)?;
    Ok((w.keys, w.bytes))
}

/// What `/metrics` reports of the stored data: counts kept anyway, cheap to read at any time.
pub(crate) struct Usage {
    pub(crate) buckets: u64,
    pub(crate) objects: u64,
    /// Sum of the sizes of all stored objects (current versions; parts of uploads in progress
    /// not included).
    pub(crate) object_bytes: u64,
    pub(crate) log_segments: u64,
    /// Log record bytes not known to be dead (inline bodies and metadata).
    pub(crate) log_live_bytes: u64,
    pub(crate) log_records: u64,
    pub(crate) log_flushes: u64,
}

/// The stored data's [`Usage`] now (one pass over the buckets and the segment table).
pub(crate) fn usage(engine: &EngineStart) -> Usage {
    let c = &engine.catalog;
    let buckets = c.all();
    let (log_records, log_flushes) = c.counters.flushes();
    Usage {
        buckets: buckets.len() as u64,
        objects: buckets.iter().map(|b| b.objects.len() as u64).sum(),
        object_bytes: buckets.iter().map(|b| b.object_bytes()).sum(),
        log_segments: c.counters.segments.counts().0 as u64,
        log_live_bytes: c.counters.segments.live_bytes_total(),
        log_records,
        log_flushes,
    }
}

/// What preparing the data directory found.
pub(crate) struct Prepared {
    /// The absolute data directory every core opens its [`Store`] on.
    pub(crate) root: PathBuf,
    /// Staging files of an earlier run that were removed (writes never acknowledged).
    pub(crate) removed_staging_files: usize,
    /// The replayed catalogue and logs every core's [`Store`] starts from.
    pub(crate) engine: std::sync::Arc<EngineStart>,
    /// What the replay read.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) replay: replay::ReplayReport,
}

/// Creates the data directory if missing, checks its format marker (migrating a format-1
/// directory), removes staging leftovers of an earlier run and replays the logs. Call once,
/// before any [`Store::open`], with the number of cores that will serve.
///
/// Every directory and the marker are durable before they are relied on (synced whatever
/// `--fsync` says: this happens once per start).
pub(crate) fn prepare_data_dir(
    dir: &Path,
    cores: usize,
    segment_size_bytes: u64,
) -> std::io::Result<Prepared> {
    std::fs::create_dir_all(dir)?;
    // Absolute, so directory handles never depend on the working directory.
    let root = std::fs::canonicalize(dir)?;
    let layout = layout::Layout::new(root.clone());
    std::fs::create_dir_all(layout.buckets_dir())?;
    std::fs::create_dir_all(layout.tmp_dir())?;
    std::fs::create_dir_all(layout.log_dir())?;
    disk::sync_dir(&root)?;
    check_format_marker(&layout)?;
    let mut removed_staging_files = 0;
    for entry in std::fs::read_dir(layout.tmp_dir())? {
        std::fs::remove_file(entry?.path())?;
        removed_staging_files += 1;
    }
    // A checkpoint cut off before its rename: the previous one (if any) stands.
    match std::fs::remove_file(checkpoint::checkpoint_path(&root).with_extension("tmp")) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let started = std::time::Instant::now();
    let (engine, r) = replay::replay(&layout, cores, segment_size_bytes)?;
    let from = match r.checkpoint_keys {
        Some(keys) => format!("checkpoint of {keys} keys + log tail"),
        None => "log (no checkpoint)".to_string(),
    };
    eprintln!(
        "ringstore: log replay from {from}: {} of {} segments scanned, {} records ({} torn tails) in {} ms; {} partial buckets removed",
        r.tail_segments,
        r.segments,
        r.records,
        r.torn_tails,
        started.elapsed().as_millis(),
        r.removed_partial_buckets
    );
    Ok(Prepared {
        root,
        removed_staging_files,
        engine: std::sync::Arc::new(engine),
        replay: r,
    })
}

/// Checks the format marker, writing it (durably) in a new data directory and migrating a
/// format-1 directory. An empty marker is what a power cut leaves when the very first start
/// wrote it but it never reached the disk (before markers were synced): a directory with buckets
/// but no log is then format 1, otherwise it is new. Anything else is refused.
fn check_format_marker(layout: &layout::Layout) -> std::io::Result<()> {
    use layout::{FORMAT_LINE, FORMAT_LINE_V1};
    let marker = layout.format_marker();
    let found = match std::fs::read_to_string(&marker) {
        Ok(s) => Some(s),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let is_v1 = match found.as_deref() {
        Some(s) if s == FORMAT_LINE => return Ok(()),
        Some(s) if s == FORMAT_LINE_V1 => true,
        Some("") => {
            eprintln!(
                "ringstore: {} is empty (a first start cut off before it reached the disk); rewriting it",
                marker.display()
            );
            looks_like_v1(layout)?
        }
        None => false,
        Some(s) => {
            return Err(std::io::Error::other(format!(
                "{} says {:?}; this ringstore understands {:?} (and migrates {:?})",
                marker.display(),
                s.trim(),
                FORMAT_LINE.trim(),
                FORMAT_LINE_V1.trim()
            )))
        }
    };
    if is_v1 {
        eprintln!("ringstore: migrating the data directory from format 1 to format 2");
        let n = replay::migrate_v1(layout, LOG_SEGMENT_SIZE_BYTES)?;
        eprintln!("ringstore: migrated {n} objects to format 2");
    }
    disk::write_durably(&marker, FORMAT_LINE.as_bytes(), true)
}

/// A directory with buckets and no log segments was written by format 1.
fn looks_like_v1(layout: &layout::Layout) -> std::io::Result<bool> {
    let no_log = log::segment::list_segments(&layout.log_dir())?.is_empty();
    let buckets = std::fs::read_dir(layout.buckets_dir())?.next().is_some();
    Ok(no_log && buckets)
}

/// A fresh directory for a unit test, on the disk (under `target/`), not tmpfs: O_DIRECT and
/// fsync behave as in production there.
#[cfg(test)]
pub(crate) fn unit_temp_dir() -> tempfile::TempDir {
    let parent = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/target/unit-tmp"));
    std::fs::create_dir_all(&parent).expect("test parent dir");
    tempfile::tempdir_in(parent).expect("temp dir")
}

#[cfg(test)]
mod tests {
    use super::*;
    use unit_temp_dir as temp_dir;

    #[test]
    fn new_directory_gets_a_durable_marker_and_no_leftovers() {
        let dir = temp_dir();
        let p = prepare_data_dir(
            &dir.path().join("data"),
            1,
            crate::storage::LOG_SEGMENT_SIZE_BYTES,
        )
        .unwrap();
        let marker = p.root.join(layout::FORMAT_FILE);
        assert_eq!(
            std::fs::read_to_string(&marker).unwrap(),
            layout::FORMAT_LINE
        );
        assert!(!layout::tmp_sibling(&marker).exists(), "no temporary left");
        assert_eq!(p.removed_staging_files, 0);
        // Staging leftovers of a crashed run are removed on the next start.
        std::fs::write(p.root.join("tmp").join("0-1-1.tmp"), b"x").unwrap();
        assert_eq!(
            prepare_data_dir(&p.root, 1, crate::storage::LOG_SEGMENT_SIZE_BYTES)
                .unwrap()
                .removed_staging_files,
            1
        );
    }

    #[test]
    fn empty_marker_is_repaired_and_foreign_marker_refused() {
        let dir = temp_dir();
        let root = prepare_data_dir(dir.path(), 1, crate::storage::LOG_SEGMENT_SIZE_BYTES)
            .unwrap()
            .root;
        let marker = root.join(layout::FORMAT_FILE);
        std::fs::write(&marker, b"").unwrap();
        prepare_data_dir(&root, 1, crate::storage::LOG_SEGMENT_SIZE_BYTES)
            .expect("an empty marker is repaired");
        assert_eq!(
            std::fs::read_to_string(&marker).unwrap(),
            layout::FORMAT_LINE
        );
        std::fs::write(&marker, b"ringstore 9\n").unwrap();
        let err = prepare_data_dir(&root, 1, crate::storage::LOG_SEGMENT_SIZE_BYTES)
            .err()
            .expect("refused")
            .to_string();
        assert!(
            err.contains("ringstore 9") && err.contains("ringstore 2"),
            "{err}"
        );
        assert_eq!(std::fs::read_to_string(&marker).unwrap(), "ringstore 9\n");
    }
}
