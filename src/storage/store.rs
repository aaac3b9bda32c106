//! The storage API: one [`Store`] per core, the only way the layers above reach stored data.
//!
//! It speaks buckets, keys, records, object writers and readers — no file paths, no staging
//! files, no log records, no cross-core messages (those stay inside storage) and no S3 error
//! codes ([`StorageError`] is typed).
//!
//! Writing an object: [`Store::object_writer`] gives an [`ObjectWriter`] whose buffer the caller
//! fills ([`ObjectWriter::spare`] / [`ObjectWriter::advance`]); [`ObjectWriter::finish`] gives a
//! [`StagedObject`], invisible until [`Store::put_object`] or [`Store::put_part`] commits it. A
//! small object (declared size up to [`INLINE_MAX_BYTES`]) stays in memory and is committed as
//! one record in this core's log (group commit), then installed by the bucket's owner; a larger
//! one is streamed to a durable staging file that the owner moves into the bucket. A writer or
//! staged object dropped without commit removes its file (guards, not manual cleanup).
//!
//! Reading (GET, HEAD, LIST, HeadBucket, ListBuckets) runs on the calling core from the shared
//! catalogue, with no round trip to the owner.

use crate::storage::budget::UploadBudget;
use crate::storage::cache::ReadCache;
use crate::storage::catalog::{Catalog, Floors, SharedBucket};
use crate::storage::compact::Compactor;
use crate::storage::entry::{self, INLINE_MAX_BYTES};
use crate::storage::error::{StorageError, StorageResult};
use crate::storage::index::{Body, IndexEntry, WriteCondition};
use crate::storage::layout::Layout;
use crate::storage::list::{list_page, ListPage, ListParams};
use crate::storage::log::appender::{Appender, EmptySegments, LogConfig};
use crate::storage::log::format::SegmentHeader;
use crate::storage::log::reader::SegmentReaders;
use crate::storage::log::scan::ScanEnd;
use crate::storage::owner::{no_such_bucket, Owner};
use crate::storage::reader::OpenObject;
use crate::storage::record::{ObjectRecord, StoredChecksum};
use crate::storage::recovery::LoadReport;
use crate::storage::shard::{expect_reply, spawn_owner_service, CoreMesh, OwnerOp, Shards};
use crate::storage::uploads::{CompleteRequest, PartInfo, UploadInfo};
use crate::storage::writer::{FilledBody, StagingWriter};
use std::cell::Cell;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

/// Times a GET looks a key up again when the file it found was replaced before it was opened.
const OPEN_ATTEMPTS_MAX: usize = 4;

/// What every core's [`Store`] starts from: the catalogue replayed from the logs, and the log
/// segments with room left, one to be continued by each core that takes one.
pub(crate) struct EngineStart {
    pub(crate) catalog: Arc<Catalog>,
    pub(crate) resume: Mutex<Vec<ScanEnd>>,
    /// Empty segments, one to be taken by each core as its first roll-over target.
    pub(crate) spares: Mutex<Vec<SegmentHeader>>,
    pub(crate) segment_size_bytes: u64,
}

/// How a [`Store`] is opened.
#[derive(Clone)]
pub(crate) struct StoreConfig {
    /// Absolute data directory (see [`prepare_data_dir`](crate::storage::prepare_data_dir)).
    pub(crate) root: PathBuf,
    /// Make every commit durable before it returns.
    pub(crate) fsync: bool,
    pub(crate) engine: Arc<EngineStart>,
    /// Log record bytes between checkpoints taken while serving (0: only at a clean stop).
    pub(crate) checkpoint_interval_bytes: u64,
    /// The read cache every core shares.
    pub(crate) cache: Arc<ReadCache>,
    /// The upload memory budget every core shares.
    pub(crate) budget: Arc<UploadBudget>,
}

/// This core's view of the storage: its own buckets directly, the others' over the core mesh.
pub(crate) struct Store {
    shards: Rc<Shards>,
    /// This core's compactor (stopped when the store is dropped).
    compactor: Rc<Compactor>,
    layout: Layout,
    fsync: bool,
    catalog: Arc<Catalog>,
    log: Appender,
    readers: SegmentReaders,
    /// This core's writes between log and index (shared with its owner).
    floors: Rc<Floors>,
    /// Sequence for staging file names and upload ids, unique per core and run.
    seq: Cell<u64>,
    /// Distinguishes upload ids across process runs.
    run_salt: u64,
    cache: Arc<ReadCache>,
    budget: Arc<UploadBudget>,
}

/// A bucket as ListBuckets sees it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct BucketEntry {
    pub(crate) name: String,
    pub(crate) created_ms: u64,
}

impl Store {
    /// Joins the core mesh, opens this core's log, takes over the buckets this core owns and
    /// starts serving other cores. Startup only: loading uses blocking I/O.
    pub(crate) async fn open(
        core: usize,
        mesh: CoreMesh,
        config: StoreConfig,
    ) -> Result<(Store, LoadReport), String> {
        let (senders, receivers) = mesh
            .join()
            .await
            .ok_or_else(|| format!("core {core}: joining the core mesh failed"))?;
        // Executors are created in core order, so the mesh's peer ids are the core numbers.
        assert_eq!(senders.peer_id(), core, "mesh peer id must equal the core");
        let cores = senders.nr_consumers();
        let layout = Layout::new(config.root.clone());
        let catalog = config.engine.catalog.clone();
        let resume = config.engine.resume.lock().expect("resume list").pop();
        let empty = {
            let mut spares = config.engine.spares.lock().expect("spare list");
            EmptySegments {
                spare: spares.pop(),
                reserve: spares.pop(),
            }
        };
        let log_config = LogConfig {
            dir: layout.log_dir(),
            segment_size_bytes: config.engine.segment_size_bytes,
            fsync: config.fsync,
            keep_reserve: true,
        };
        let log = Appender::open(log_config, core, catalog.counters.clone(), resume, empty)
            .await
            .map_err(|e| format!("core {core}: opening the log failed: {e}"))?;
        let floors = Floors::new(core, catalog.clone());
        let owner = Rc::new(Owner::new(
            layout.clone(),
            config.fsync,
            catalog.clone(),
            log.clone(),
            floors.clone(),
        ));
        let report = owner
            .load(|name| crate::storage::shard::owner_of(name, cores) == core)
            .await
            .map_err(|e| format!("core {core}: loading buckets failed: {e}"))?;
        spawn_owner_service(owner.clone(), receivers);
        let shards = Rc::new(Shards::new(core, senders, owner));
        let compactor = start_background(&config, &layout, &log, &shards, cores);
        let store = Store {
            shards,
            compactor,
            readers: SegmentReaders::new(layout.log_dir()),
            layout,
            fsync: config.fsync,
            catalog,
            log,
            floors,
            seq: Cell::new(0),
            run_salt: crate::clock::now_ms(),
            cache: config.cache.clone(),
            budget: config.budget.clone(),
        };
        Ok((store, report))
    }

    /// Runs one compaction pass on this core now (tests; the background task polls).
    #[cfg(test)]
    pub(crate) async fn compact_now(&self) -> std::io::Result<usize> {
        self.compactor.poll().await
    }

    /// Takes a checkpoint now (tests; the checkpointer takes them by log volume).
    #[cfg(test)]
    pub(crate) async fn checkpoint_now(&self) -> std::io::Result<u64> {
        let root = self.layout.root().to_path_buf();
        let w = crate::storage::checkpoint::take(&self.catalog, &root, self.fsync).await?;
        Ok(w.keys)
    }

    fn next_seq(&self) -> u64 {
        let n = self.seq.get() + 1;
        self.seq.set(n);
        n
    }

    fn next_staging_path(&self) -> PathBuf {
        self.layout.staging_file(self.shards.me(), self.next_seq())
    }

    /// A fresh multipart upload id: 32 lowercase hex chars, unguessable and unique.
    fn next_upload_id(&self) -> String {
        use sha2::{Digest, Sha256};
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let mut h = Sha256::new();
        h.update(nanos.to_le_bytes());
        h.update((self.shards.me() as u64).to_le_bytes());
        h.update(self.next_seq().to_le_bytes());
        h.update(std::process::id().to_le_bytes());
        h.update(self.run_salt.to_le_bytes());
        let id = hex::encode(&h.finalize()[..16]);
        assert!(crate::storage::layout::is_valid_upload_id(&id));
        id
    }

    // ---- buckets ----

    pub(crate) async fn create_bucket(&self, name: &str) -> StorageResult<()> {
        let op = OwnerOp::CreateBucket {
            name: name.to_string(),
            now_ms: crate::clock::now_ms(),
        };
        expect_reply!(self.shards.call_owner(name, op).await?, Done);
        Ok(())
    }

    pub(crate) async fn delete_bucket(&self, name: &str) -> StorageResult<()> {
        let op = OwnerOp::DeleteBucket {
            name: name.to_string(),
        };
        expect_reply!(self.shards.call_owner(name, op).await?, Done);
        Ok(())
    }

    /// The bucket's creation time (ms since the epoch), or `NoSuchBucket`.
    pub(crate) async fn bucket_created_ms(&self, name: &str) -> StorageResult<u64> {
        let b = self
            .catalog
            .bucket(name)
            .ok_or_else(|| no_such_bucket(name))?;
        Ok(b.created_ms)
    }

    /// Every bucket, sorted by name.
    pub(crate) async fn list_buckets(&self) -> StorageResult<Vec<BucketEntry>> {
        let all = self.catalog.all().into_iter();
        Ok(all
            .map(|b| BucketEntry {
                name: b.name.clone(),
                created_ms: b.created_ms,
            })
            .collect())
    }

    // ---- objects ----

    /// A writer for a new object whose record will look like `record` (its metadata sizes the
    /// header block); `size_hint` is the expected byte count, when known.
    pub(crate) async fn object_writer(
        &self,
        record: &ObjectRecord,
        size_hint: Option<u64>,
    ) -> StorageResult<ObjectWriter> {
        let header_len = reserved_header_len(record);
        let spill_path = self.next_staging_path();
        let mode = match size_hint {
            // +1: a body of exactly the declared size never fills the buffer; more spills.
            Some(n) if n <= INLINE_MAX_BYTES => Mode::Memory {
                buf: vec![0; n as usize + 1],
                fill: 0,
            },
            _ => Mode::File(
                StagingWriter::create(&spill_path, header_len, size_hint, &self.budget)
                    .await
                    .map_err(|e| StorageError::write("creating the staging file", e))?,
            ),
        };
        Ok(ObjectWriter {
            mode,
            spill_path,
            header_len,
            fsync: self.fsync,
            budget: self.budget.clone(),
        })
    }

    /// Commits a staged object as `bucket/key` if `condition` holds; durable when this returns.
    pub(crate) async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        staged: StagedObject,
        condition: WriteCondition,
    ) -> StorageResult<()> {
        assert_eq!(
            staged.record.key, key,
            "a staged object is committed under its key"
        );
        if let Held::Memory(data) = &staged.held {
            // A condition is checked by the owner, which holds the key until the write lands.
            let reservation = if condition.is_always() {
                None
            } else {
                Some(self.reserve(bucket, key, condition).await?)
            };
            return self
                .put_inline(bucket, &staged.record, data, reservation)
                .await;
        }
        // Conditions are checked by the owner under the key's lock.
        let staged = self.file_backed(staged).await?;
        let op = OwnerOp::Commit {
            bucket: bucket.to_string(),
            key: key.to_string(),
            staging: staged.path().to_path_buf(),
            summary: staged.record.summary(),
            condition,
        };
        let reply = self.shards.call_owner(bucket, op).await;
        expect_reply!(staged.settle(reply).await?, Done);
        Ok(())
    }

    /// Reserves `key` at its owner for a conditional write (see `owner_reserve`).
    async fn reserve(
        &self,
        bucket: &str,
        key: &str,
        condition: WriteCondition,
    ) -> StorageResult<Reserved> {
        let op = OwnerOp::Reserve {
            bucket: bucket.to_string(),
            key: key.to_string(),
            condition,
        };
        let id = expect_reply!(self.shards.call_owner(bucket, op).await?, Reserved(id));
        Ok(Reserved {
            shards: self.shards.clone(),
            core: self.shards.owner_core(bucket),
            id: Some(id),
        })
    }

    /// A small object: one record in this core's log (durable by group commit), then its entry
    /// installed by the owner (under the key's `reservation`, for a conditional write). The
    /// floor keeps the owner from forgetting a tombstone this write could be older than.
    async fn put_inline(
        &self,
        bucket: &str,
        record: &ObjectRecord,
        data: &[u8],
        reservation: Option<Reserved>,
    ) -> StorageResult<()> {
        let b = self
            .catalog
            .bucket(bucket)
            .ok_or_else(|| no_such_bucket(bucket))?;
        let head = entry::put_inline_head(bucket, b.incarnation, record);
        let floor = self.floors.enter();
        let appended = self
            .log
            .append(entry::KIND_PUT_INLINE, &[&head, data])
            .await;
        let result = match appended {
            Ok(a) => {
                let entry = IndexEntry {
                    seq: a.seq,
                    location: a.location,
                    summary: record.summary(),
                    body: Body::Inline,
                };
                let (incarnation, key) = (b.incarnation, record.key.clone());
                let op = match reservation.and_then(|mut r| r.id.take()) {
                    None => OwnerOp::Apply {
                        bucket: bucket.to_string(),
                        incarnation,
                        key,
                        entry,
                    },
                    Some(reservation) => OwnerOp::ApplyReserved {
                        reservation,
                        incarnation,
                        key,
                        entry,
                    },
                };
                self.shards.call_owner(bucket, op).await.map(|_| ())
            }
            Err(e) => Err(StorageError::write("logging the object", e)),
        };
        drop(floor);
        result
    }

    /// The staged object as a durable staging file (a small object held in memory is written).
    async fn file_backed(&self, mut staged: StagedObject) -> StorageResult<StagedObject> {
        if !matches!(staged.held, Held::Memory(_)) {
            return Ok(staged);
        }
        let Held::Memory(data) = std::mem::replace(&mut staged.held, Held::Gone) else {
            unreachable!("checked above");
        };
        let record = staged.record.clone();
        let mut writer = self.object_writer(&record, None).await?;
        let mut at = 0;
        while at < data.len() {
            let spare = writer.spare();
            let n = spare.len().min(data.len() - at);
            spare[..n].copy_from_slice(&data[at..at + n]);
            writer.advance(n).await?;
            at += n;
        }
        writer.finish(record).await
    }

    /// Opens `bucket/key` on this core (no owner round trip): the version the index names now.
    pub(crate) async fn open_object(&self, bucket: &str, key: &str) -> StorageResult<OpenObject> {
        for _ in 0..OPEN_ATTEMPTS_MAX {
            let b = self
                .catalog
                .bucket(bucket)
                .ok_or_else(|| no_such_bucket(bucket))?;
            let current = b.objects.get(key).map(|e| e.value().clone());
            let entry = current.ok_or_else(|| no_such_key(key))?;
            // The version's sequence number names its bytes: a hit needs no other check.
            if let Some(hit) = self.cache.get(entry.seq) {
                assert_eq!(
                    hit.record.key, key,
                    "one sequence number, one object version"
                );
                return Ok(OpenObject::cached(&hit));
            }
            let opened = match &entry.body {
                Body::Inline => self.open_inline(&b, key, &entry).await?,
                Body::File { name, .. } => {
                    let path = self.layout.objects_dir(bucket).join(name);
                    let opened = OpenObject::open(&path, Some((&self.layout, bucket)))
                        .await
                        .map_err(read_err)?;
                    if let Some(mut obj) = opened {
                        check_key(&obj, key, || path.display().to_string())?;
                        obj.fill_cache(&self.cache, entry.seq);
                        Some(obj)
                    } else {
                        None // replaced (and its file removed) since the lookup
                    }
                }
            };
            if let Some(obj) = opened {
                return Ok(obj);
            }
        }
        Err(StorageError::ObjectChanged)
    }

    /// Reads the inline object `entry` names (a whole read of it fills the cache); `None` when
    /// the index moved on meanwhile (look again).
    async fn open_inline(
        &self,
        b: &SharedBucket,
        key: &str,
        entry: &IndexEntry,
    ) -> StorageResult<Option<OpenObject>> {
        let at = entry.location;
        // Hold the segment, then check the index still names this record: either compaction
        // has not moved it yet (and waits for this read before reusing the segment), or it has
        // and the lookup starts again.
        let Some(segment) = self.catalog.counters.segments.get(at.segment) else {
            return Ok(None);
        };
        let _hold = segment.hold_reader();
        let still = b
            .objects
            .get(key)
            .is_some_and(|e| e.value().seq == entry.seq && e.value().location == at);
        if !still {
            return Ok(None);
        }
        let rec = self.readers.read(at, entry.seq).await.map_err(read_err)?;
        let mut obj = OpenObject::inline(rec).map_err(read_err)?;
        // The record verified its checksum and sequence; it must also be this key's.
        check_key(&obj, key, || format!("log record at {at:?}"))?;
        obj.fill_cache(&self.cache, entry.seq);
        Ok(Some(obj))
    }

    /// Removes `bucket/key` (no error when absent); durable when this returns.
    pub(crate) async fn delete_object(&self, bucket: &str, key: &str) -> StorageResult<()> {
        let op = OwnerOp::DeleteObject {
            bucket: bucket.to_string(),
            key: key.to_string(),
        };
        expect_reply!(self.shards.call_owner(bucket, op).await?, Done);
        Ok(())
    }

    /// One page of `bucket`'s keys, read on this core from the shared index.
    pub(crate) async fn list_objects(
        &self,
        bucket: &str,
        params: ListParams,
    ) -> StorageResult<ListPage> {
        let b = self
            .catalog
            .bucket(bucket)
            .ok_or_else(|| no_such_bucket(bucket))?;
        Ok(list_page(&b.objects, &params))
    }

    // ---- multipart uploads ----

    /// Starts an upload of `meta.key` (metadata and checksum algorithm in `meta`); returns its id
    /// once the upload is durable.
    pub(crate) async fn create_upload(
        &self,
        bucket: &str,
        meta: ObjectRecord,
    ) -> StorageResult<String> {
        let upload_id = self.next_upload_id();
        let op = OwnerOp::CreateUpload {
            bucket: bucket.to_string(),
            upload_id: upload_id.clone(),
            meta,
        };
        expect_reply!(self.shards.call_owner(bucket, op).await?, Done);
        Ok(upload_id)
    }

    /// The upload's key, metadata and parts (`NoSuchUpload` unless in progress for `key`).
    pub(crate) async fn upload_info(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> StorageResult<UploadInfo> {
        let op = OwnerOp::UploadInfo {
            bucket: bucket.to_string(),
            key: key.to_string(),
            upload_id: upload_id.to_string(),
        };
        Ok(expect_reply!(
            self.shards.call_owner(bucket, op).await?,
            Upload(u)
        ))
    }

    /// Commits a staged part as part `number` of the upload (replacing an earlier one).
    pub(crate) async fn put_part(
        &self,
        bucket: &str,
        upload_id: &str,
        number: u32,
        staged: StagedObject,
    ) -> StorageResult<()> {
        let staged = self.file_backed(staged).await?;
        let r = &staged.record;
        assert!(r.parts.is_none(), "a part is a plain object file");
        let op = OwnerOp::CommitPart {
            bucket: bucket.to_string(),
            key: r.key.clone(),
            upload_id: upload_id.to_string(),
            number,
            staging: staged.path().to_path_buf(),
            info: PartInfo {
                size: r.size,
                md5: r.md5,
                checksum: r.checksum.clone(),
                last_modified_ms: r.last_modified_ms,
            },
        };
        let reply = self.shards.call_owner(bucket, op).await;
        expect_reply!(staged.settle(reply).await?, Done);
        Ok(())
    }

    /// Completes an upload into its object; returns the object's record.
    pub(crate) async fn complete_upload(
        &self,
        bucket: &str,
        request: CompleteRequest,
    ) -> StorageResult<ObjectRecord> {
        let op = OwnerOp::CompleteUpload {
            bucket: bucket.to_string(),
            request,
            staging: self.next_staging_path(),
        };
        Ok(expect_reply!(
            self.shards.call_owner(bucket, op).await?,
            Record(r)
        ))
    }

    pub(crate) async fn abort_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> StorageResult<()> {
        let op = OwnerOp::AbortUpload {
            bucket: bucket.to_string(),
            key: key.to_string(),
            upload_id: upload_id.to_string(),
        };
        expect_reply!(self.shards.call_owner(bucket, op).await?, Done);
        Ok(())
    }

    /// Every upload in progress in `bucket`, sorted by key, then initiation, then id.
    pub(crate) async fn list_uploads(&self, bucket: &str) -> StorageResult<Vec<UploadInfo>> {
        let op = OwnerOp::ListUploads {
            bucket: bucket.to_string(),
        };
        Ok(expect_reply!(
            self.shards.call_owner(bucket, op).await?,
            Uploads(u)
        ))
    }
}

/// A key reserved at its owner; released (by a message) when dropped unless applied.
struct Reserved {
    shards: Rc<Shards>,
    core: usize,
    /// Taken when the reservation is applied.
    id: Option<u64>,
}

impl Drop for Reserved {
    fn drop(&mut self) {
        let Some(reservation) = self.id.take() else {
            return;
        };
        let (shards, core) = (self.shards.clone(), self.core);
        glommio::spawn_local(async move {
            let _ = shards
                .call_core(core, OwnerOp::Release { reservation })
                .await;
        })
        .detach();
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.compactor.running.set(false);
    }
}

/// Starts this core's compactor and, on core 0, the checkpointer; both stop with the store.
fn start_background(
    config: &StoreConfig,
    layout: &Layout,
    log: &Appender,
    shards: &Rc<Shards>,
    cores: usize,
) -> Rc<Compactor> {
    let catalog = &config.engine.catalog;
    let compactor = Rc::new(Compactor {
        core: shards.me(),
        cores,
        log: log.clone(),
        shards: shards.clone(),
        catalog: catalog.clone(),
        dir: layout.log_dir(),
        fsync: config.fsync,
        running: Rc::new(Cell::new(true)),
        busy: Cell::new(false),
    });
    compactor.spawn();
    if shards.me() == 0 && config.checkpoint_interval_bytes > 0 {
        crate::storage::checkpoint::spawn_checkpointer(
            catalog.clone(),
            layout.root().to_path_buf(),
            config.fsync,
            config.checkpoint_interval_bytes,
            compactor.running.clone(),
        );
    }
    compactor
}

fn read_err(e: std::io::Error) -> StorageError {
    StorageError::io("reading the object", e)
}

/// The opened object must be `key`'s (`what` names where it was read, for the error).
fn check_key(obj: &OpenObject, key: &str, what: impl FnOnce() -> String) -> StorageResult<()> {
    if obj.record.key == key {
        return Ok(());
    }
    Err(read_err(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("{} holds another key", what()),
    )))
}

fn no_such_key(key: &str) -> StorageError {
    StorageError::NoSuchKey {
        key: key.to_string(),
    }
}

/// Header length that fits `record` once its fixed-size fields and a checksum are filled in.
fn reserved_header_len(record: &ObjectRecord) -> usize {
    let mut probe = record.clone();
    probe.checksum = Some(StoredChecksum {
        algorithm: "crc64nvme".into(),
        value_b64: "A".repeat(44),
        full_object: false,
    });
    probe.header_len()
}

enum Mode {
    /// A small object, in memory until it is logged.
    Memory {
        buf: Vec<u8>,
        fill: usize,
    },
    File(StagingWriter),
    Finished,
}

/// A new object's bytes on their way to storage. Dropped unfinished, its file is removed.
pub(crate) struct ObjectWriter {
    mode: Mode,
    /// Where the bytes go if they outgrow memory.
    spill_path: PathBuf,
    header_len: usize,
    fsync: bool,
    budget: Arc<UploadBudget>,
}

impl ObjectWriter {
    /// Abandons the object: waits for writes in flight and removes its file.
    pub(crate) async fn abort(mut self) {
        if let Mode::File(w) = std::mem::replace(&mut self.mode, Mode::Finished) {
            w.abort().await;
        }
    }

    /// Bytes accepted so far.
    pub(crate) fn size(&self) -> u64 {
        match &self.mode {
            Mode::Memory { fill, .. } => *fill as u64,
            Mode::File(w) => w.size(),
            Mode::Finished => 0,
        }
    }

    /// The free tail of the current buffer: read bytes straight into it, then [`Self::advance`].
    pub(crate) fn spare(&mut self) -> &mut [u8] {
        match &mut self.mode {
            Mode::Memory { buf, fill } => &mut buf[*fill..],
            Mode::File(w) => w.spare(),
            Mode::Finished => panic!("writer used after finish"),
        }
    }

    /// The body bytes of the next buffer sent to disk since the last call, in order (shared
    /// read-only while the write runs). Every accepted byte is offered once: here, or at the end
    /// by [`Self::pending_body`].
    pub(crate) fn take_filled(&mut self) -> Option<FilledBody> {
        match &mut self.mode {
            Mode::File(w) => w.take_filled(),
            Mode::Memory { .. } | Mode::Finished => None,
        }
    }

    /// The accepted body bytes not offered by [`Self::take_filled`].
    pub(crate) fn pending_body(&self) -> &[u8] {
        match &self.mode {
            Mode::Memory { buf, fill } => &buf[..*fill],
            Mode::File(w) => w.pending_body(),
            Mode::Finished => &[],
        }
    }

    /// Accepts `n` bytes just placed into [`Self::spare`].
    pub(crate) async fn advance(&mut self, n: usize) -> StorageResult<()> {
        let write_err = |e| StorageError::write("writing the object", e);
        match &mut self.mode {
            Mode::Memory { buf, fill } => {
                assert!(*fill + n <= buf.len());
                *fill += n;
                if *fill == buf.len() {
                    // More bytes than declared: continue in a staging file.
                    let data = std::mem::take(buf);
                    self.spill(&data).await.map_err(write_err)?;
                }
                Ok(())
            }
            Mode::File(w) => w.advance(n).await.map_err(write_err),
            Mode::Finished => panic!("writer used after finish"),
        }
    }

    async fn spill(&mut self, data: &[u8]) -> std::io::Result<()> {
        let mut w =
            StagingWriter::create(&self.spill_path, self.header_len, None, &self.budget).await?;
        self.mode = Mode::Finished;
        let mut at = 0;
        while at < data.len() {
            let spare = w.spare();
            let n = spare.len().min(data.len() - at);
            spare[..n].copy_from_slice(&data[at..at + n]);
            if let Err(e) = w.advance(n).await {
                w.abort().await;
                return Err(e);
            }
            at += n;
        }
        self.mode = Mode::File(w);
        Ok(())
    }

    /// Seals the object with `record` (whose `size` must equal the bytes accepted): a file is
    /// made durable but not yet visible; a small object stays in memory until committed.
    pub(crate) async fn finish(mut self, record: ObjectRecord) -> StorageResult<StagedObject> {
        assert_eq!(record.size, self.size(), "the record sizes the object");
        match std::mem::replace(&mut self.mode, Mode::Finished) {
            Mode::Memory { mut buf, fill } => {
                buf.truncate(fill);
                Ok(StagedObject {
                    record,
                    held: Held::Memory(buf),
                })
            }
            Mode::File(writer) => {
                let path = writer.path().to_path_buf();
                match writer.finish(&record, self.fsync).await {
                    Ok(path) => Ok(StagedObject {
                        record,
                        held: Held::File {
                            path,
                            settled: false,
                        },
                    }),
                    Err(e) => {
                        let _ = glommio::io::remove(&path).await;
                        Err(StorageError::write("writing the object", e))
                    }
                }
            }
            Mode::Finished => panic!("finish once"),
        }
    }
}

impl Drop for ObjectWriter {
    fn drop(&mut self) {
        if let Mode::File(w) = std::mem::replace(&mut self.mode, Mode::Finished) {
            glommio::spawn_local(w.abort()).detach();
        }
    }
}

enum Held {
    /// A small object's bytes.
    Memory(Vec<u8>),
    /// A durable staging file. `settled`: a commit was attempted and its outcome handled (the
    /// file belongs to the object, or it was removed).
    File {
        path: PathBuf,
        settled: bool,
    },
    Gone,
}

/// An object ready to commit: its record and (privately) its bytes or staging file. Dropped
/// without a successful commit, a staging file is removed.
pub(crate) struct StagedObject {
    pub(crate) record: ObjectRecord,
    held: Held,
}

impl StagedObject {
    fn path(&self) -> &std::path::Path {
        match &self.held {
            Held::File { path, .. } => path,
            _ => unreachable!("only file-backed objects are committed by path"),
        }
    }

    /// After a commit attempt: on success the file now belongs to the object; on failure it is
    /// removed before the error is returned (so a client that sees the error sees no leftover).
    async fn settle<T>(mut self, reply: StorageResult<T>) -> StorageResult<T> {
        if let Held::File { path, settled } = &mut self.held {
            if reply.is_err() {
                let _ = glommio::io::remove(&*path).await;
            }
            *settled = true;
        }
        reply
    }
}

impl Drop for StagedObject {
    /// A staged file dropped without a commit attempt (an error or a cancelled request between
    /// staging and commit) is removed.
    fn drop(&mut self) {
        if let Held::File {
            path,
            settled: false,
        } = &mut self.held
        {
            remove_detached(std::mem::take(path));
        }
    }
}

/// Removes a file in the background (cleanup after a failure; errors are irrelevant).
fn remove_detached(path: PathBuf) {
    if path.as_os_str().is_empty() {
        return;
    }
    glommio::spawn_local(async move {
        let _ = glommio::io::remove(&path).await;
    })
    .detach();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::index::ObjectSummary;
    use crate::storage::index::WriteCondition;
    use crate::storage::log::format::SEGMENT_HEADER_BYTES;
    use crate::storage::replay::ReplayReport;
    use std::collections::BTreeMap;

    /// Runs `f` on a one-core store over a fresh data directory on a disk filesystem.
    fn with_store<F, Fut>(f: F)
    where
        F: FnOnce(Store, PathBuf) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()>,
    {
        let dir = crate::storage::unit_temp_dir();
        run_store(dir.path(), crate::storage::LOG_SEGMENT_SIZE_BYTES, f);
    }

    /// Every key's (seq, summary, body) in `bucket` (locations left out: copies move them).
    fn index_dump(store: &Store, bucket: &str) -> Vec<(String, u64, ObjectSummary, Body)> {
        let b = store.catalog.bucket(bucket).expect("bucket");
        b.objects
            .iter()
            .map(|e| {
                let v = e.value();
                (e.key().clone(), v.seq, v.summary.clone(), v.body.clone())
            })
            .collect()
    }

    /// Runs `f` on a one-core store over the data directory `dir` with segments of `segment_size`
    /// (no clean-stop checkpoint: as after a crash); returns what the replay read.
    /// The read cache is off, so every read goes to the log or the file.
    fn run_store<F, Fut>(dir: &std::path::Path, segment_size: u64, f: F) -> ReplayReport
    where
        F: FnOnce(Store, PathBuf) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()>,
    {
        run_store_cached(dir, segment_size, 0, f)
    }

    /// [`run_store`] with a read cache of `cache_bytes`.
    fn run_store_cached<F, Fut>(
        dir: &std::path::Path,
        segment_size: u64,
        cache_bytes: u64,
        f: F,
    ) -> ReplayReport
    where
        F: FnOnce(Store, PathBuf) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()>,
    {
        let prepared = crate::storage::prepare_data_dir(dir, 1, segment_size).expect("prepare");
        let root = prepared.root.clone();
        let engine = prepared.engine.clone();
        let report = prepared.replay;
        glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .spawn(move || async move {
                let config = StoreConfig {
                    root: root.clone(),
                    fsync: true,
                    engine,
                    checkpoint_interval_bytes: 0,
                    cache: Arc::new(ReadCache::new(cache_bytes)),
                    budget: UploadBudget::new(crate::storage::UPLOAD_MEMORY_DEFAULT_BYTES),
                };
                let (store, _) = Store::open(0, CoreMesh::new(1), config).await.unwrap();
                f(store, Layout::new(root).tmp_dir()).await;
            })
            .expect("executor")
            .join()
            .expect("test body");
        report
    }

    fn staging_files(tmp: &std::path::Path) -> usize {
        std::fs::read_dir(tmp).map_or(0, |d| d.count())
    }

    /// A staged object: held in memory (a declared small size) or in a staging file (no size).
    async fn staged_as(store: &Store, key: &str, body: &[u8], in_memory: bool) -> StagedObject {
        let mut rec = ObjectRecord::new(key);
        let hint = in_memory.then_some(body.len() as u64);
        let mut w = store.object_writer(&rec, hint).await.unwrap();
        w.spare()[..body.len()].copy_from_slice(body);
        w.advance(body.len()).await.unwrap();
        rec.size = body.len() as u64;
        w.finish(rec).await.unwrap()
    }

    async fn staged(store: &Store, key: &str, body: &[u8]) -> StagedObject {
        staged_as(store, key, body, false).await
    }

    #[test]
    fn uncommitted_writes_leave_nothing_behind() {
        with_store(|store, tmp| async move {
            // A writer dropped half-way removes its file (in the background).
            let rec = ObjectRecord::new("k");
            let mut w = store.object_writer(&rec, None).await.unwrap();
            w.spare()[..3].copy_from_slice(b"abc");
            w.advance(3).await.unwrap();
            assert_eq!(staging_files(&tmp), 1);
            drop(w);
            glommio::timer::sleep(std::time::Duration::from_millis(200)).await;
            assert_eq!(staging_files(&tmp), 0, "dropped writer left its file");
            // A staged object dropped without a commit attempt, likewise.
            let s = staged(&store, "k", b"hello").await;
            assert_eq!(staging_files(&tmp), 1);
            drop(s);
            glommio::timer::sleep(std::time::Duration::from_millis(200)).await;
            assert_eq!(
                staging_files(&tmp),
                0,
                "dropped staged object left its file"
            );
            // A failed commit removes the file before the error is returned.
            let s = staged(&store, "k", b"hello").await;
            let err = store
                .put_object("no-bucket", "k", s, WriteCondition::always())
                .await
                .unwrap_err();
            assert!(matches!(err, StorageError::NoSuchBucket { .. }), "{err}");
            assert_eq!(staging_files(&tmp), 0, "failed commit left its file");
            // A small object with a declared size stays in memory: no file at all.
            let s = staged_as(&store, "k", b"hello", true).await;
            assert_eq!(staging_files(&tmp), 0);
            drop(s);
        });
    }

    #[test]
    fn small_objects_go_through_the_log_and_spill_when_they_outgrow_memory() {
        with_store(|store, tmp| async move {
            store.create_bucket("bkt").await.unwrap();
            let s = staged_as(&store, "small", b"tiny body", true).await;
            store
                .put_object("bkt", "small", s, WriteCondition::always())
                .await
                .unwrap();
            let root = tmp.parent().expect("data dir").to_path_buf();
            let objects = Layout::new(root).objects_dir("bkt");
            assert_eq!(std::fs::read_dir(&objects).unwrap().count(), 0, "inline");
            let obj = store.open_object("bkt", "small").await.unwrap();
            let mut stream = obj.stream(5, 4).await.unwrap();
            assert_eq!(&stream.next_chunk().await.unwrap().unwrap()[..], b"body");
            // Declared 3 bytes, sent 5000: the writer spills to a staging file.
            let mut rec = ObjectRecord::new("grown");
            let mut w = store.object_writer(&rec, Some(3)).await.unwrap();
            let mut sent = 0;
            while sent < 5000 {
                let spare = w.spare();
                let n = spare.len().min(5000 - sent);
                spare[..n].fill(b'x');
                w.advance(n).await.unwrap();
                sent += n;
            }
            assert_eq!(staging_files(&tmp), 1, "spilled to a file");
            rec.size = 5000;
            let s = w.finish(rec).await.unwrap();
            store
                .put_object("bkt", "grown", s, WriteCondition::always())
                .await
                .unwrap();
            assert_eq!(std::fs::read_dir(&objects).unwrap().count(), 1, "a file");
            assert_eq!(
                store.open_object("bkt", "grown").await.unwrap().size(),
                5000
            );
            // Overwrite the file-backed key with a small object: its file goes.
            let s = staged_as(&store, "grown", b"now small", true).await;
            store
                .put_object("bkt", "grown", s, WriteCondition::always())
                .await
                .unwrap();
            assert_eq!(std::fs::read_dir(&objects).unwrap().count(), 0, "replaced");
            assert_eq!(store.open_object("bkt", "grown").await.unwrap().size(), 9);
            store.delete_object("bkt", "grown").await.unwrap();
            store.delete_object("bkt", "small").await.unwrap();
            store.delete_bucket("bkt").await.unwrap();
        });
    }

    #[test]
    fn committed_object_reads_back_and_conditions_hold() {
        with_store(|store, tmp| async move {
            store.create_bucket("bkt").await.unwrap();
            let root = tmp.parent().expect("data dir").to_path_buf();
            // Both directories exist (and are durable) as soon as the bucket does.
            assert!(Layout::new(root.clone()).objects_dir("bkt").is_dir());
            assert!(Layout::new(root).uploads_dir("bkt").is_dir());
            let s = staged(&store, "k", b"hello").await;
            store
                .put_object("bkt", "k", s, WriteCondition::if_absent())
                .await
                .unwrap();
            assert_eq!(staging_files(&tmp), 0);
            let obj = store.open_object("bkt", "k").await.unwrap();
            assert_eq!(obj.size(), 5);
            let mut stream = obj.stream(1, 3).await.unwrap();
            let chunk = stream.next_chunk().await.unwrap().expect("a chunk");
            assert_eq!(&chunk[..], b"ell");
            // If-None-Match: * on an existing key fails and stores nothing.
            let s = staged(&store, "k", b"other").await;
            let err = store
                .put_object("bkt", "k", s, WriteCondition::if_absent())
                .await
                .unwrap_err();
            assert!(matches!(
                err,
                StorageError::ConditionFailed {
                    condition: "If-None-Match"
                }
            ));
            assert_eq!(store.open_object("bkt", "k").await.unwrap().size(), 5);
            assert_eq!(staging_files(&tmp), 0);
            let missing = store.open_object("bkt", "nope").await;
            assert!(matches!(missing, Err(StorageError::NoSuchKey { .. })));
            let page = store
                .list_objects(
                    "bkt",
                    ListParams {
                        prefix: String::new(),
                        delimiter: None,
                        start_after: None,
                        max_keys: 10,
                    },
                )
                .await
                .unwrap();
            assert_eq!(page.contents.len(), 1);
            assert!(matches!(
                store.delete_bucket("bkt").await.unwrap_err(),
                StorageError::BucketNotEmpty { .. }
            ));
        });
    }

    const SMALL_SEGMENT_BYTES: u64 = 256 * 1024;

    /// Body of version `v` of key number `k`: distinct per key and version, 3 KiB.
    fn version_body(k: usize, v: usize) -> Vec<u8> {
        let mut b = format!("key {k} version {v} ").into_bytes();
        b.resize(3 * 1024, b'a' + (v % 26) as u8);
        b
    }

    async fn put_small(store: &Store, key: &str, body: &[u8]) {
        let s = staged_as(store, key, body, true).await;
        store
            .put_object("bkt", key, s, WriteCondition::always())
            .await
            .unwrap();
    }

    async fn read_all(store: &Store, key: &str) -> Option<Vec<u8>> {
        let obj = match store.open_object("bkt", key).await {
            Ok(o) => o,
            Err(StorageError::NoSuchKey { .. }) => return None,
            Err(e) => panic!("{key}: {e}"),
        };
        let size = obj.size();
        let mut stream = obj.stream(0, size).await.unwrap();
        let mut out = Vec::new();
        while let Some(chunk) = stream.next_chunk().await.unwrap() {
            out.extend_from_slice(&chunk);
        }
        Some(out)
    }

    fn segment_files(root: &std::path::Path) -> usize {
        let log = Layout::new(root.to_path_buf()).log_dir();
        std::fs::read_dir(log).unwrap().count()
    }

    /// Compacts until a pass frees nothing (the background task may take some passes).
    async fn compact_fully(store: &Store) -> u64 {
        let table = &store.catalog.counters.segments;
        for _ in 0..200 {
            store.compact_now().await.unwrap();
            let worth = table
                .candidates(0, 1)
                .iter()
                .any(|i| i.dead_bytes() * 2 >= SMALL_SEGMENT_BYTES - SEGMENT_HEADER_BYTES);
            if !worth && !store.compactor.busy.get() {
                break;
            }
            glommio::timer::sleep(std::time::Duration::from_millis(10)).await;
        }
        table.compaction_totals().0
    }

    #[test]
    fn compaction_reuses_segments_and_keeps_every_current_version() {
        const KEYS: usize = 12;
        const ROUNDS: usize = 40;
        const COLD: usize = 50;
        let dir = crate::storage::unit_temp_dir();
        let root = dir.path().to_path_buf();
        run_store(&root, SMALL_SEGMENT_BYTES, |store, tmp| async move {
            let root = tmp.parent().unwrap().to_path_buf();
            store.create_bucket("bkt").await.unwrap();
            // Cold keys fill the first segment, which stays mostly live (never compacted) and
            // also holds the only version of "x": deleted below, its dead record stays there.
            for c in 0..COLD {
                put_small(&store, &format!("cold{c}"), &version_body(100 + c, 0)).await;
            }
            put_small(&store, "x", b"gone soon").await;
            for v in 0..ROUNDS {
                for k in 0..KEYS {
                    put_small(&store, &format!("k{k}"), &version_body(k, v)).await;
                }
                if v == 1 {
                    // Its tombstone lands in a segment that is compacted: it must survive.
                    store.delete_object("bkt", "x").await.unwrap();
                }
                // Delete key 0 in odd rounds: tombstones among the overwrites.
                if v % 2 == 1 {
                    store.delete_object("bkt", "k0").await.unwrap();
                }
            }
            // 12 keys x 40 versions x 3 KiB = 1.4 MiB of records: 6+ segments without reuse.
            let freed = compact_fully(&store).await;
            assert!(freed >= 3, "only {freed} segments compacted");
            // (Active, first, spare, reserve and up to two free ones.)
            let files = segment_files(&root);
            assert!(files <= 6, "{files} segment files after compaction");
            for k in 1..KEYS {
                let got = read_all(&store, &format!("k{k}")).await;
                assert_eq!(got, Some(version_body(k, ROUNDS - 1)), "key {k}");
            }
            assert_eq!(read_all(&store, "k0").await, None, "deleted key came back");
            // More writes go into reused segments: the file count stays bounded.
            for v in ROUNDS..2 * ROUNDS {
                for k in 1..KEYS {
                    put_small(&store, &format!("k{k}"), &version_body(k, v)).await;
                }
            }
            compact_fully(&store).await;
            assert!(segment_files(&root) <= 6, "segments are reused, not added");
        });
        // Replay after compaction and reuse: the same state, nothing resurrected.
        run_store(&root, SMALL_SEGMENT_BYTES, |store, _| async move {
            for k in 1..KEYS {
                let got = read_all(&store, &format!("k{k}")).await;
                assert_eq!(got, Some(version_body(k, 2 * ROUNDS - 1)), "key {k}");
            }
            assert_eq!(read_all(&store, "k0").await, None, "deleted key came back");
            assert_eq!(
                read_all(&store, "x").await,
                None,
                "tombstone dropped too early"
            );
            for c in 0..COLD {
                let got = read_all(&store, &format!("cold{c}")).await;
                assert_eq!(got, Some(version_body(100 + c, 0)), "cold key {c}");
            }
        });
    }

    #[test]
    fn reads_racing_compaction_always_see_the_current_version() {
        let dir = crate::storage::unit_temp_dir();
        run_store(dir.path(), SMALL_SEGMENT_BYTES, |store, _| async move {
            let store = Rc::new(store);
            store.create_bucket("bkt").await.unwrap();
            let done = Rc::new(Cell::new(false));
            let reader = {
                let (store, done) = (store.clone(), done.clone());
                glommio::spawn_local(async move {
                    let mut reads = 0;
                    while !done.get() {
                        for k in 0..4 {
                            if let Some(b) = read_all(&store, &format!("k{k}")).await {
                                let head = format!("key {k} version ");
                                assert!(b.starts_with(head.as_bytes()), "torn read of k{k}");
                                reads += 1;
                            }
                        }
                        glommio::yield_if_needed().await;
                    }
                    reads
                })
            };
            for v in 0..150 {
                for k in 0..4 {
                    put_small(&store, &format!("k{k}"), &version_body(k, v)).await;
                }
                if v % 25 == 0 {
                    store.compact_now().await.unwrap();
                }
            }
            compact_fully(&store).await;
            done.set(true);
            assert!(reader.await > 0);
            let table = &store.catalog.counters.segments;
            assert!(table.compaction_totals().0 > 0, "compaction ran");
        });
    }

    type Files = BTreeMap<String, Vec<u8>>;

    fn snapshot(dir: &std::path::Path) -> Files {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let name = e.file_name().to_string_lossy().into_owned();
                (name, std::fs::read(e.path()).unwrap())
            })
            .collect()
    }

    /// Every bucket's running byte total equals the sum of its entries' sizes.
    fn assert_object_bytes_kept(store: &Store, what: &str) {
        for b in store.catalog.all() {
            let kept = b.object_bytes();
            assert_eq!(
                kept,
                b.object_bytes_recounted(),
                "{what}: bucket {}",
                b.name
            );
        }
    }

    fn restore(dir: &std::path::Path, files: &Files) {
        std::fs::remove_dir_all(dir).unwrap();
        std::fs::create_dir_all(dir).unwrap();
        for (name, bytes) in files {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }

    /// Keys 0..12: key `k` holds its version 29 unless `k % 4 == 0` (deleted at the end).
    fn expected(k: usize) -> Option<Vec<u8>> {
        (!k.is_multiple_of(4)).then(|| version_body(k, 29))
    }

    /// Puts `key` as a small object; false when the disk is full.
    async fn try_put_small(store: &Store, key: &str, body: &[u8]) -> bool {
        let s = staged_as(store, key, body, true).await;
        match store
            .put_object("bkt", key, s, WriteCondition::always())
            .await
        {
            Ok(_) => true,
            Err(StorageError::NoSpace { .. }) => false,
            Err(e) => panic!("PUT {key}: {e}"),
        }
    }

    /// Reads `key` whole, and bytes `a..b` of it.
    async fn read_whole_and_range(store: &Store, key: &str, a: u64, b: u64) -> (Vec<u8>, Vec<u8>) {
        let whole = read_all(store, key).await.expect("present");
        let obj = store.open_object("bkt", key).await.unwrap();
        let mut stream = obj.stream(a, b - a).await.unwrap();
        let mut part = Vec::new();
        while let Some(chunk) = stream.next_chunk().await.unwrap() {
            part.extend_from_slice(&chunk);
        }
        (whole, part)
    }

    #[test]
    fn the_read_cache_serves_re_reads_and_never_a_replaced_version() {
        const CACHE_BYTES: u64 = 8 * 1024 * 1024;
        let dir = crate::storage::unit_temp_dir();
        run_store_cached(
            dir.path(),
            SMALL_SEGMENT_BYTES,
            CACHE_BYTES,
            |store, _| async move {
                store.create_bucket("bkt").await.unwrap();
                let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
                put_small(&store, "small", &version_body(1, 0)).await;
                let s = staged(&store, "file", &big).await; // a file, not inline
                store
                    .put_object("bkt", "file", s, WriteCondition::always())
                    .await
                    .unwrap();
                let before = store.cache.stats();
                for _ in 0..3 {
                    let (whole, part) = read_whole_and_range(&store, "file", 5, 70_000).await;
                    assert!(whole == big && part[..] == big[5..70_000], "file body");
                    let (whole, part) = read_whole_and_range(&store, "small", 3, 9).await;
                    assert_eq!(
                        (whole, part),
                        (version_body(1, 0), version_body(1, 0)[3..9].to_vec())
                    );
                }
                let after = store.cache.stats();
                assert_eq!(after.inserts - before.inserts, 2, "each body cached once");
                assert!(after.hits - before.hits >= 10, "{before:?} -> {after:?}");
                assert!(after.held_bytes >= big.len() as u64);
                // Overwrites and deletes are seen at once, whatever the cache holds.
                let big2: Vec<u8> = big.iter().map(|b| b ^ 0x5a).collect();
                let s = staged(&store, "file", &big2).await;
                store
                    .put_object("bkt", "file", s, WriteCondition::always())
                    .await
                    .unwrap();
                assert_eq!(read_all(&store, "file").await, Some(big2.clone()));
                assert_eq!(read_all(&store, "file").await, Some(big2), "from the cache");
                store.delete_object("bkt", "small").await.unwrap();
                assert_eq!(read_all(&store, "small").await, None, "deleted, yet cached");
                // Reads racing overwrites: every read is one whole version, never older than the
                // last one read, and the last write wins.
                let store = Rc::new(store);
                let writer = {
                    let store = store.clone();
                    glommio::spawn_local(async move {
                        for v in 0..200 {
                            put_small(&store, "hot", &version_body(7, v)).await;
                        }
                    })
                };
                let mut last = 0;
                put_small(&store, "hot", &version_body(7, 0)).await;
                for _ in 0..2000 {
                    let got = read_all(&store, "hot").await.expect("present");
                    let v = (0..200)
                        .find(|v| got == version_body(7, *v))
                        .expect("a whole version");
                    assert!(v >= last, "version {v} read after {last}");
                    last = v;
                    glommio::yield_if_needed().await;
                }
                writer.await;
                assert_eq!(read_all(&store, "hot").await, Some(version_body(7, 199)));
            },
        );
    }

    /// Waits until `log` made its reserve segment (in the background at open).
    async fn wait_for_reserve(log: &Appender) {
        for _ in 0..500 {
            if log.holds_reserve() {
                return;
            }
            glommio::timer::sleep(std::time::Duration::from_millis(2)).await;
        }
        panic!("no reserve segment created at open");
    }

    /// Runs compaction passes until segment `id` left the segment table (or gives up).
    async fn compact_until_gone(store: &Store, id: u64) {
        for _ in 0..100 {
            store.compact_now().await.unwrap();
            if store.catalog.counters.segments.get(id).is_none() {
                return;
            }
            glommio::timer::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    #[test]
    fn on_a_full_disk_the_dead_active_segment_comes_back_through_the_reserve() {
        const KEPT: usize = 3;
        // Large enough that a segment's tombstone reserve leaves room for objects.
        const FULL_DISK_SEGMENT_BYTES: u64 = 1024 * 1024;
        let dir = crate::storage::unit_temp_dir();
        let root = dir.path().to_path_buf();
        run_store(&root, FULL_DISK_SEGMENT_BYTES, |store, _| async move {
            store.compactor.running.set(false); // only explicit passes below
            let log = store.compactor.log.clone();
            wait_for_reserve(&log).await;
            let first = log.active_segment().expect("active segment");
            // The disk is full from now on: every small object lands in the first segment.
            log.refuse_new_segments(true);
            store.create_bucket("bkt").await.unwrap();
            let mut stored = 0;
            while try_put_small(&store, &format!("k{stored}"), &version_body(stored, 0)).await {
                stored += 1;
                assert!(stored < 1000, "the log never filled");
            }
            assert!(stored > 40, "only {stored} objects fit one segment");
            assert_eq!(log.active_segment(), Some(first), "rolled over");
            assert!(log.short_of_space());
            // Deletes still succeed (the segment's own reserve); all but a few keys go.
            for k in KEPT..stored {
                store.delete_object("bkt", &format!("k{k}")).await.unwrap();
            }
            assert!(
                !try_put_small(&store, "again", b"x").await,
                "space from nowhere"
            );
            // Compaction rolls the dead active segment into the reserve, then frees it.
            compact_until_gone(&store, first).await;
            assert_ne!(
                log.active_segment(),
                Some(first),
                "active segment not rolled"
            );
            let table = &store.catalog.counters.segments;
            assert!(table.get(first).is_none(), "segment {first} not compacted");
            assert!(log.holds_reserve(), "the freed segment is the next reserve");
            // Space is back: most of a segment's worth of objects fits again.
            let mut again = 0;
            while again < stored / 2
                && try_put_small(&store, &format!("n{again}"), &version_body(again, 1)).await
            {
                again += 1;
            }
            assert_eq!(again, stored / 2, "space did not come back");
            for k in 0..KEPT {
                let got = read_all(&store, &format!("k{k}")).await;
                assert_eq!(got, Some(version_body(k, 0)), "kept key {k}");
            }
            assert_eq!(read_all(&store, &format!("k{KEPT}")).await, None);
        });
        // Replay: the kept keys, the new ones, none of the deleted.
        run_store(&root, FULL_DISK_SEGMENT_BYTES, |store, _| async move {
            for k in 0..KEPT {
                let got = read_all(&store, &format!("k{k}")).await;
                assert_eq!(got, Some(version_body(k, 0)), "kept key {k}");
            }
            assert_eq!(
                read_all(&store, &format!("k{KEPT}")).await,
                None,
                "deleted key came back"
            );
            assert_eq!(read_all(&store, "n0").await, Some(version_body(0, 1)));
        });
    }

    #[test]
    fn a_crash_at_any_compaction_step_replays_the_same_objects() {
        use crate::storage::log::scan::{scan_segment, SegmentScan};
        let dir = crate::storage::unit_temp_dir();
        let root = dir.path().to_path_buf();
        let log_dir = Layout::new(std::fs::canonicalize(&root).unwrap()).log_dir();
        let (before, after) = {
            let log_dir = log_dir.clone();
            let (tx, rx) = std::sync::mpsc::channel();
            run_store(&root, SMALL_SEGMENT_BYTES, move |store, _| async move {
                store.compactor.running.set(false); // only explicit passes below
                store.create_bucket("bkt").await.unwrap();
                for v in 0..30 {
                    for k in 0..12 {
                        put_small(&store, &format!("k{k}"), &version_body(k, v)).await;
                    }
                    store.delete_object("bkt", "k4").await.unwrap();
                }
                for k in (0..12).step_by(4) {
                    store.delete_object("bkt", &format!("k{k}")).await.unwrap();
                }
                let before = snapshot(&log_dir);
                let freed = compact_fully(&store).await;
                assert!(freed >= 2, "compaction freed {freed} segments");
                assert_object_bytes_kept(&store, "after compaction");
                tx.send((before, snapshot(&log_dir))).unwrap();
            });
            rx.recv().unwrap()
        };
        // Segments the compaction renewed: records before, none after.
        let renewed: Vec<String> = after
            .iter()
            .filter(|(name, bytes)| {
                let path = log_dir.join(name.as_str());
                std::fs::write(&path, bytes).unwrap();
                let empty = matches!(
                    scan_segment(&path, |_, _| {}).unwrap(),
                    SegmentScan::Live(end) if end.records == 0
                );
                empty && before.get(name.as_str()).is_some_and(|b| b != *bytes)
            })
            .map(|(name, _)| name.clone())
            .collect();
        assert!(renewed.len() >= 2, "renewed segments: {renewed:?}");
        let mut states = vec![
            ("before compaction", before.clone()),
            ("after", after.clone()),
        ];
        // Copies durable and relocated, but a renewal never reached the disk (or tore).
        for name in &renewed {
            let mut s = after.clone();
            s.insert(name.clone(), before[name].clone());
            states.push(("a renewal lost", s.clone()));
            let mut torn = before[name].clone();
            let new_header = &after[name];
            let slot = crate::storage::log::format::HEADER_SLOT_STRIDE_BYTES as usize;
            let at = if new_header[slot..slot + 8] == *b"RSLOGSEG" {
                slot
            } else {
                0
            };
            torn[at..at + 40].copy_from_slice(&new_header[at..at + 40]);
            s.insert(name.clone(), torn);
            states.push(("a renewal torn", s));
        }
        for (what, files) in states {
            restore(&log_dir, &files);
            run_store(&root, SMALL_SEGMENT_BYTES, move |store, _| async move {
                for k in 0..12 {
                    let got = read_all(&store, &format!("k{k}")).await;
                    assert_eq!(got, expected(k), "{what}: key {k}");
                }
                assert_object_bytes_kept(&store, what);
                let sizes: u64 = (0..12).filter_map(expected).map(|b| b.len() as u64).sum();
                let bucket = store.catalog.bucket("bkt").expect("bucket");
                assert_eq!(bucket.object_bytes(), sizes, "{what}");
            });
        }
    }

    /// Keys 0..16 after [`checkpoint_workload`]: key `k` holds version `v_k`, or is deleted.
    fn after_workload(k: usize) -> Option<Vec<u8>> {
        match k % 4 {
            0 => None,
            1 => Some(version_body(k, 9)),
            _ => Some(version_body(k, 19)),
        }
    }

    /// Writes with a checkpoint in the middle: before it, versions 0..10 of every key (and
    /// deletes of keys 4n); after it, versions 10..20 of keys 4n+2 and 4n+3, a re-put and a
    /// delete of key 0, and compaction (copies of covered records land in the tail).
    async fn checkpoint_workload(store: &Store) -> u64 {
        store.create_bucket("bkt").await.unwrap();
        for v in 0..10 {
            for k in 0..16 {
                put_small(store, &format!("k{k}"), &version_body(k, v)).await;
            }
        }
        for k in (0..16).step_by(4) {
            store.delete_object("bkt", &format!("k{k}")).await.unwrap();
        }
        // A file-backed object, and one overwritten by a file after the checkpoint.
        let s = staged(store, "file", b"in its own file").await;
        store
            .put_object("bkt", "file", s, WriteCondition::always())
            .await
            .unwrap();
        put_small(store, "doomed", b"in the checkpoint, deleted after it").await;
        let keys = store.checkpoint_now().await.unwrap();
        // Its tombstone lands in a segment that compaction empties: the checkpoint still holds
        // the old version, so the tombstone must survive.
        store.delete_object("bkt", "doomed").await.unwrap();
        for v in 10..20 {
            for k in (0..16).filter(|k| k % 4 >= 2) {
                put_small(store, &format!("k{k}"), &version_body(k, v)).await;
            }
        }
        put_small(store, "k0", b"back for a moment").await;
        store.delete_object("bkt", "k0").await.unwrap();
        let s = staged(store, "k1", &version_body(1, 9)).await;
        store
            .put_object("bkt", "k1", s, WriteCondition::always())
            .await
            .unwrap();
        compact_fully(store).await;
        keys
    }

    async fn check_workload(store: &Store) {
        for k in 0..16 {
            let got = read_all(store, &format!("k{k}")).await;
            assert_eq!(got, after_workload(k), "key {k}");
        }
        let file = read_all(store, "file").await;
        assert_eq!(file.as_deref(), Some(&b"in its own file"[..]));
        assert_eq!(
            read_all(store, "doomed").await,
            None,
            "a deleted key came back"
        );
    }

    #[test]
    fn a_checkpoint_plus_the_log_tail_gives_the_same_index_as_the_whole_log() {
        let dir = crate::storage::unit_temp_dir();
        let root = dir.path().to_path_buf();
        let first = run_store(&root, SMALL_SEGMENT_BYTES, |store, _| async move {
            let keys = checkpoint_workload(&store).await;
            assert_eq!(keys, 16 - 4 + 2, "live keys in the checkpoint");
            check_workload(&store).await;
        });
        assert_eq!(first.checkpoint_keys, None);
        // No clean stop: the checkpoint from the middle plus the tail.
        let (tx, rx) = std::sync::mpsc::channel();
        let report = run_store(&root, SMALL_SEGMENT_BYTES, move |store, _| async move {
            store.compactor.running.set(false);
            check_workload(&store).await;
            tx.send(index_dump(&store, "bkt")).unwrap();
        });
        assert_eq!(report.checkpoint_keys, Some(14), "{report:?}");
        let from_checkpoint = rx.recv().unwrap();
        // Without the checkpoint: the whole log, the same index.
        let data = std::fs::canonicalize(&root).unwrap();
        std::fs::remove_file(crate::storage::checkpoint::checkpoint_path(&data)).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let report = run_store(&root, SMALL_SEGMENT_BYTES, move |store, _| async move {
            store.compactor.running.set(false);
            check_workload(&store).await;
            tx.send(index_dump(&store, "bkt")).unwrap();
        });
        assert_eq!(report.checkpoint_keys, None);
        assert_eq!(rx.recv().unwrap(), from_checkpoint);
    }

    #[test]
    fn a_damaged_checkpoint_is_ignored_and_the_whole_log_replayed() {
        let dir = crate::storage::unit_temp_dir();
        let root = dir.path().to_path_buf();
        run_store(&root, SMALL_SEGMENT_BYTES, |store, _| async move {
            checkpoint_workload(&store).await;
        });
        let data = std::fs::canonicalize(&root).unwrap();
        let path = crate::storage::checkpoint::checkpoint_path(&data);
        let good = std::fs::read(&path).unwrap();
        let mut flipped = good.clone();
        flipped[good.len() / 2] ^= 0x10;
        let damaged = [
            good[..good.len() - 1].to_vec(),
            good[..good.len() / 3].to_vec(),
            flipped,
            Vec::new(),
        ];
        for bytes in damaged {
            std::fs::write(&path, &bytes).unwrap();
            let report = run_store(&root, SMALL_SEGMENT_BYTES, |store, _| async move {
                check_workload(&store).await;
            });
            assert_eq!(
                report.checkpoint_keys, None,
                "a damaged checkpoint was used"
            );
        }
        // A leftover temporary checkpoint (a cut before its rename) is removed, not used.
        std::fs::write(&path, &good).unwrap();
        std::fs::write(path.with_extension("tmp"), b"partial").unwrap();
        let report = run_store(&root, SMALL_SEGMENT_BYTES, |store, _| async move {
            check_workload(&store).await;
        });
        assert!(report.checkpoint_keys.is_some());
        assert!(!path.with_extension("tmp").exists());
    }

    #[test]
    fn after_a_clean_stop_checkpoint_the_start_scans_no_log() {
        let dir = crate::storage::unit_temp_dir();
        let root = dir.path().to_path_buf();
        run_store(&root, SMALL_SEGMENT_BYTES, |store, _| async move {
            checkpoint_workload(&store).await;
        });
        let data = std::fs::canonicalize(&root).unwrap();
        let prepared =
            crate::storage::prepare_data_dir(&data, 1, SMALL_SEGMENT_BYTES).expect("prepare");
        crate::storage::checkpoint_at_stop(&prepared.engine, &data, true).unwrap();
        drop(prepared);
        let report = run_store(&root, SMALL_SEGMENT_BYTES, |store, _| async move {
            check_workload(&store).await;
        });
        assert_eq!(report.checkpoint_keys, Some(13), "{report:?}");
        assert_eq!(
            report.records, 0,
            "records replayed after a clean stop: {report:?}"
        );
    }

    #[test]
    fn conditional_small_writes_reserve_the_key_and_stay_inline() {
        with_store(|store, tmp| async move {
            let store = Rc::new(store);
            store.create_bucket("bkt").await.unwrap();
            let root = tmp.parent().expect("data dir").to_path_buf();
            let objects = Layout::new(root).objects_dir("bkt");
            let put = |key: &'static str, body: &'static [u8], c: WriteCondition| {
                let store = store.clone();
                async move {
                    let s = staged_as(&store, key, body, true).await;
                    store.put_object("bkt", key, s, c).await
                }
            };
            put("k", b"first", WriteCondition::if_absent())
                .await
                .unwrap();
            assert_eq!(std::fs::read_dir(&objects).unwrap().count(), 0, "inline");
            let err = put("k", b"second", WriteCondition::if_absent())
                .await
                .unwrap_err();
            assert!(matches!(err, StorageError::ConditionFailed { .. }), "{err}");
            let etag = store.open_object("bkt", "k").await.unwrap().record.etag();
            let wrong = WriteCondition::if_etag("f".repeat(32));
            let err = put("k", b"third", wrong).await.unwrap_err();
            assert!(matches!(err, StorageError::ConditionFailed { .. }), "{err}");
            put("k", b"fourth", WriteCondition::if_etag(etag))
                .await
                .unwrap();
            assert_eq!(read_all(&store, "k").await.as_deref(), Some(&b"fourth"[..]));
            let err = put("nope", b"x", WriteCondition::if_etag("0".repeat(32)))
                .await
                .unwrap_err();
            assert!(matches!(err, StorageError::NoSuchKey { .. }), "{err}");
            // Racing creates of one key: exactly one wins.
            let racers: Vec<_> = (0..8)
                .map(|_| glommio::spawn_local(put("race", b"mine", WriteCondition::if_absent())))
                .collect();
            let mut won = 0;
            for r in racers {
                won += usize::from(r.await.is_ok());
            }
            assert_eq!(won, 1, "If-None-Match: * let {won} writers through");
            // An abandoned reservation is released: the key stays writable.
            let reserved = store.reserve("bkt", "k", WriteCondition::if_absent()).await;
            assert!(reserved.is_err(), "k exists");
            let held = store
                .reserve("bkt", "free", WriteCondition::if_absent())
                .await;
            drop(held.unwrap());
            let late = glommio::timer::timeout(std::time::Duration::from_secs(5), async {
                Ok(put("free", b"after", WriteCondition::if_absent()).await)
            });
            late.await.expect("the key's lock was released").unwrap();
        });
    }
}
