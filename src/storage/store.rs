//! The storage API: one [`Store`] per core, the only way the layers above reach stored data.
//!
//! It speaks buckets, keys, records, object writers and readers — no file paths, no staging
//! files, no cross-core messages (those stay inside storage) and no S3 error codes
//! ([`StorageError`] is typed).
//!
//! Writing an object: [`Store::object_writer`] gives an [`ObjectWriter`] whose DMA buffer the
//! caller fills ([`ObjectWriter::spare`] / [`ObjectWriter::advance`]);
//! [`ObjectWriter::finish`] makes the bytes and their record durable as a [`StagedObject`],
//! invisible until [`Store::put_object`] or [`Store::put_part`] commits it on the bucket's owner
//! core. A writer or staged object dropped without commit removes its file (guards, not manual
//! cleanup), so no failure path leaves an orphan behind.

use crate::storage::error::{StorageError, StorageResult};
use crate::storage::index::WriteCondition;
use crate::storage::layout::Layout;
use crate::storage::list::{ListPage, ListParams};
use crate::storage::owner::Owner;
use crate::storage::reader::OpenObject;
use crate::storage::record::{ObjectRecord, StoredChecksum};
use crate::storage::recovery::LoadReport;
use crate::storage::shard::{expect_reply, spawn_owner_service, CoreMesh, OwnerOp, Shards};
use crate::storage::uploads::{CompleteRequest, PartInfo, UploadInfo};
use crate::storage::writer::StagingWriter;
use std::cell::Cell;
use std::path::PathBuf;
use std::rc::Rc;

/// How a [`Store`] is opened.
#[derive(Debug, Clone)]
pub(crate) struct StoreConfig {
    /// Absolute data directory (see [`prepare_data_dir`](crate::storage::prepare_data_dir)).
    pub(crate) root: PathBuf,
    /// fdatasync objects and fsync directories before a commit returns.
    pub(crate) fsync: bool,
}

/// This core's view of the storage: its own buckets directly, the others' over the core mesh.
pub(crate) struct Store {
    shards: Shards,
    layout: Layout,
    fsync: bool,
    /// Sequence for staging file names and upload ids, unique per core and run.
    seq: Cell<u64>,
    /// Distinguishes upload ids across process runs.
    run_salt: u64,
}

/// A bucket as ListBuckets sees it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct BucketEntry {
    pub(crate) name: String,
    pub(crate) created_ms: u64,
}

impl Store {
    /// Joins the core mesh, loads the buckets this core owns from disk and starts serving other
    /// cores. Startup only: loading uses blocking I/O.
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
        let layout = Layout::new(config.root);
        let owner = Rc::new(Owner::new(layout.clone(), config.fsync));
        let report = owner
            .load(|name| crate::storage::shard::owner_of(name, cores) == core)
            .await
            .map_err(|e| format!("core {core}: loading buckets failed: {e}"))?;
        spawn_owner_service(owner.clone(), receivers);
        let store = Store {
            shards: Shards::new(core, senders, owner),
            layout,
            fsync: config.fsync,
            seq: Cell::new(0),
            run_salt: crate::clock::now_ms(),
        };
        Ok((store, report))
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
        let op = OwnerOp::HeadBucket {
            name: name.to_string(),
        };
        Ok(expect_reply!(
            self.shards.call_owner(name, op).await?,
            Created(c)
        ))
    }

    /// Every bucket of every core, sorted by name.
    pub(crate) async fn list_buckets(&self) -> StorageResult<Vec<BucketEntry>> {
        let mut all = Vec::new();
        for core in 0..self.shards.cores() {
            let reply = self.shards.call_core(core, OwnerOp::ListBuckets).await?;
            let buckets = expect_reply!(reply, Buckets(b));
            all.extend(
                buckets
                    .into_iter()
                    .map(|(name, created_ms)| BucketEntry { name, created_ms }),
            );
        }
        all.sort();
        Ok(all)
    }

    // ---- objects ----

    /// A writer for a new object whose record will look like `record` (its metadata sizes the
    /// header block); `size_hint` is the expected byte count, when known.
    pub(crate) async fn object_writer(
        &self,
        record: &ObjectRecord,
        size_hint: Option<u64>,
    ) -> StorageResult<ObjectWriter> {
        let path = self.next_staging_path();
        let header_len = reserved_header_len(record);
        let writer = StagingWriter::create(&path, header_len, size_hint)
            .await
            .map_err(|e| StorageError::write("creating the staging file", e))?;
        Ok(ObjectWriter {
            writer: Some(writer),
            fsync: self.fsync,
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
        let op = OwnerOp::Commit {
            bucket: bucket.to_string(),
            key: key.to_string(),
            staging: staged.path.clone(),
            summary: staged.record.summary(),
            condition,
        };
        let reply = self.shards.call_owner(bucket, op).await;
        expect_reply!(staged.settle(reply).await?, Done);
        Ok(())
    }

    /// Opens `bucket/key` on this core (no owner round trip): the record inside the opened file
    /// is the object, so a concurrent overwrite is seen whole or not at all.
    pub(crate) async fn open_object(&self, bucket: &str, key: &str) -> StorageResult<OpenObject> {
        let path = self.layout.object_file(bucket, key);
        let opened = OpenObject::open(&path, Some((&self.layout, bucket)))
            .await
            .map_err(|e| StorageError::io("reading the object", e))?;
        match opened {
            Some(obj) if obj.record.key == key => Ok(obj),
            // Another key with the same file-name hash: not this object.
            Some(_) => Err(no_such_key(key)),
            None => {
                self.bucket_created_ms(bucket).await?;
                Err(no_such_key(key))
            }
        }
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

    /// One page of `bucket`'s keys, computed on its owner core from its index.
    pub(crate) async fn list_objects(
        &self,
        bucket: &str,
        params: ListParams,
    ) -> StorageResult<ListPage> {
        let op = OwnerOp::List {
            bucket: bucket.to_string(),
            params,
        };
        Ok(expect_reply!(
            self.shards.call_owner(bucket, op).await?,
            Page(p)
        ))
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
        let r = &staged.record;
        assert!(r.parts.is_none(), "a part is a plain object file");
        let op = OwnerOp::CommitPart {
            bucket: bucket.to_string(),
            key: r.key.clone(),
            upload_id: upload_id.to_string(),
            number,
            staging: staged.path.clone(),
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
    });
    probe.header_len()
}

/// A new object's bytes on their way to disk. Dropped unfinished, its file is removed.
pub(crate) struct ObjectWriter {
    writer: Option<StagingWriter>,
    fsync: bool,
}

impl ObjectWriter {
    /// Abandons the object: waits for writes in flight and removes its file.
    pub(crate) async fn abort(mut self) {
        if let Some(w) = self.writer.take() {
            w.abort().await;
        }
    }

    fn inner(&mut self) -> &mut StagingWriter {
        self.writer.as_mut().expect("writer used after finish")
    }

    /// Bytes accepted so far.
    pub(crate) fn size(&self) -> u64 {
        self.writer.as_ref().map_or(0, |w| w.size())
    }

    /// The free tail of the current DMA buffer: read bytes straight into it, then [`Self::advance`].
    pub(crate) fn spare(&mut self) -> &mut [u8] {
        self.inner().spare()
    }

    /// Accepts `n` bytes just placed into [`Self::spare`].
    pub(crate) async fn advance(&mut self, n: usize) -> StorageResult<()> {
        self.inner()
            .advance(n)
            .await
            .map_err(|e| StorageError::write("writing the object", e))
    }

    /// Writes `record` (whose `size` must equal the bytes accepted) and makes the object durable
    /// but not yet visible.
    pub(crate) async fn finish(mut self, record: ObjectRecord) -> StorageResult<StagedObject> {
        let writer = self.writer.take().expect("finish once");
        let path = writer.path().to_path_buf();
        match writer.finish(&record, self.fsync).await {
            Ok(path) => Ok(StagedObject {
                record,
                path,
                settled: false,
            }),
            Err(e) => {
                let _ = glommio::io::remove(&path).await;
                Err(StorageError::write("writing the object", e))
            }
        }
    }
}

impl Drop for ObjectWriter {
    fn drop(&mut self) {
        if let Some(w) = self.writer.take() {
            glommio::spawn_local(w.abort()).detach();
        }
    }
}

/// A durable object not yet committed: its record and (privately) its staging file. Dropped
/// without a successful commit, the staging file is removed.
pub(crate) struct StagedObject {
    pub(crate) record: ObjectRecord,
    path: PathBuf,
    /// A commit was attempted and its outcome handled: the file belongs to the object, or it
    /// was removed.
    settled: bool,
}

impl StagedObject {
    /// After a commit attempt: on success the file now belongs to the object; on failure it is
    /// removed before the error is returned (so a client that sees the error sees no leftover).
    async fn settle<T>(mut self, reply: StorageResult<T>) -> StorageResult<T> {
        if reply.is_err() {
            let _ = glommio::io::remove(&self.path).await;
        }
        self.settled = true;
        reply
    }
}

impl Drop for StagedObject {
    /// A staged object dropped without a commit attempt (an error or a cancelled request
    /// between staging and commit) removes its file.
    fn drop(&mut self) {
        if !self.settled {
            remove_detached(std::mem::take(&mut self.path));
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
    use crate::storage::index::WriteCondition;

    /// Runs `f` on a one-core store over a fresh data directory on a disk filesystem.
    fn with_store<F, Fut>(f: F)
    where
        F: FnOnce(Store, PathBuf) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()>,
    {
        let parent = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/target/unit-tmp"));
        std::fs::create_dir_all(&parent).expect("test parent dir");
        let dir = tempfile::tempdir_in(&parent).expect("temp dir");
        let prepared = crate::storage::prepare_data_dir(dir.path()).expect("prepare");
        let root = prepared.root.clone();
        glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .spawn(move || async move {
                let config = StoreConfig {
                    root: root.clone(),
                    fsync: true,
                };
                let (store, _) = Store::open(0, CoreMesh::new(1), config).await.unwrap();
                f(store, Layout::new(root).tmp_dir()).await;
            })
            .expect("executor")
            .join()
            .expect("test body");
    }

    fn staging_files(tmp: &std::path::Path) -> usize {
        std::fs::read_dir(tmp).map_or(0, |d| d.count())
    }

    async fn staged(store: &Store, key: &str, body: &[u8]) -> StagedObject {
        let mut rec = ObjectRecord::new(key);
        let mut w = store
            .object_writer(&rec, Some(body.len() as u64))
            .await
            .unwrap();
        w.spare()[..body.len()].copy_from_slice(body);
        w.advance(body.len()).await.unwrap();
        rec.size = body.len() as u64;
        w.finish(rec).await.unwrap()
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
                .put_object("no-bucket", "k", s, WriteCondition::Always)
                .await
                .unwrap_err();
            assert!(matches!(err, StorageError::NoSuchBucket { .. }), "{err}");
            assert_eq!(staging_files(&tmp), 0, "failed commit left its file");
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
                .put_object("bkt", "k", s, WriteCondition::IfAbsent)
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
                .put_object("bkt", "k", s, WriteCondition::IfAbsent)
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
}
