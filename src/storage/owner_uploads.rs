//! Multipart uploads on the owner core: creating an upload, committing parts, completing
//! (zero-copy: the object's record lists the part files) and aborting.
//!
//! Invariants:
//! - part commits and complete/abort of one upload exclude each other through the upload's
//!   gate (a part commit holds one permit, complete/abort hold them all);
//! - a part file is renamed into the upload only after it was synced, and recorded in the
//!   part table only after the rename (and directory sync);
//! - completion logs the object's record (the atomic step) before the upload is closed and its
//!   leftovers pruned.

use crate::storage::disk::{prune_completed_upload, sync_dir, write_durably};
use crate::storage::error::{StorageError, StorageResult};
use crate::storage::layout::is_valid_upload_id;
use crate::storage::owner::{BucketState, Owner};
use crate::storage::record::{ObjectRecord, PARTS_MAX};
use crate::storage::uploads::{no_such_upload, CompleteRequest, PartInfo, UploadInfo, UploadState};
use std::io;
use std::path::Path;
use std::rc::Rc;

fn write_err(context: &'static str) -> impl Fn(io::Error) -> StorageError {
    move |e| StorageError::write(context, e)
}

impl Owner {
    fn upload(
        &self,
        b: &BucketState,
        upload_id: &str,
        key: &str,
    ) -> StorageResult<Rc<UploadState>> {
        let u = b
            .uploads
            .borrow()
            .get(upload_id)
            .cloned()
            .ok_or_else(|| no_such_upload(upload_id))?;
        if u.meta.key != key || u.is_closed() {
            return Err(no_such_upload(upload_id));
        }
        Ok(u)
    }

    /// Starts an upload: its directory and `upload.meta` are durable before the id is returned.
    pub(crate) async fn create_upload(
        &self,
        bucket: &str,
        upload_id: String,
        meta: ObjectRecord,
    ) -> StorageResult<()> {
        assert!(is_valid_upload_id(&upload_id));
        let b = self.bucket(bucket)?;
        let dir = self.layout.upload_dir(bucket, &upload_id);
        let meta_path = self.layout.upload_meta(bucket, &upload_id);
        let uploads_dir = self.layout.uploads_dir(bucket);
        let mut header = vec![0u8; meta.header_len()];
        meta.encode_header(header.len(), &mut header);
        let fsync = self.fsync;
        glommio::executor()
            .spawn_blocking(move || -> io::Result<()> {
                std::fs::create_dir_all(&dir)?;
                write_durably(&meta_path, &header, fsync)?;
                if fsync {
                    sync_dir(&uploads_dir)?;
                }
                Ok(())
            })
            .await
            .map_err(write_err("creating the upload"))?;
        b.uploads
            .borrow_mut()
            .insert(upload_id, Rc::new(UploadState::new(meta)));
        Ok(())
    }

    /// The upload's key, metadata and parts (NoSuchUpload if it is not in progress for `key`).
    pub(crate) fn upload_info(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> StorageResult<UploadInfo> {
        let b = self.bucket(bucket)?;
        let u = self.upload(&b, upload_id, key)?;
        Ok(u.info(upload_id))
    }

    /// Moves a durable staged part into the upload, replacing an earlier part with that number.
    pub(crate) async fn commit_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        number: u32,
        staging: &Path,
        info: PartInfo,
    ) -> StorageResult<()> {
        assert!((1..=PARTS_MAX).contains(&(number as usize)));
        assert!(
            self.layout.is_staging_file(staging),
            "commit of a part that was not staged"
        );
        let b = self.bucket(bucket)?;
        let u = self.upload(&b, upload_id, key)?;
        let _permit = u.part_permit(upload_id).await?;
        let _part = u.part_locks.lock(number).await;
        let target = self.layout.part_file(bucket, upload_id, number);
        glommio::io::rename(staging, &target)
            .await
            .map_err(StorageError::glommio_write("committing the part"))?;
        if self.fsync {
            self.sync_path(&self.layout.upload_dir(bucket, upload_id))
                .await?;
        }
        assert!(
            u.part_locks.is_locked(&number),
            "part recorded under its lock"
        );
        u.parts.borrow_mut().insert(number, info);
        Ok(())
    }

    /// Completes an upload into object `key`; returns the object's record.
    pub(crate) async fn complete_upload(
        &self,
        bucket: &str,
        req: CompleteRequest,
        staging: &Path,
    ) -> StorageResult<ObjectRecord> {
        let CompleteRequest {
            key,
            upload_id,
            parts: listed,
            now_ms,
            condition,
            expected_checksum,
        } = req;
        let (key, upload_id) = (key.as_str(), upload_id.as_str());
        let b = self.bucket(bucket)?;
        let u = self.upload(&b, upload_id, key)?;
        let _all = u.exclusive(upload_id).await?;
        let record = u.completed_record(upload_id, &listed, now_ms, expected_checksum.as_ref())?;
        assert_eq!(
            record.parts.as_ref().map(|p| p.parts.len()),
            Some(listed.len()),
            "a completed record names exactly the listed parts"
        );
        crate::storage::writer::write_record_file(staging, &record, self.fsync)
            .await
            .map_err(write_err("writing the object record"))?;
        let summary = record.summary();
        if let Err(e) = self
            .commit_file(
                bucket,
                key,
                staging,
                summary,
                Some(upload_id.to_string()),
                &condition,
            )
            .await
        {
            let _ = glommio::io::remove(staging).await;
            return Err(e);
        }
        u.close();
        b.uploads.borrow_mut().remove(upload_id);
        // The upload is now the object's data: drop its meta file and the unlisted parts.
        let dir = self.layout.upload_dir(bucket, upload_id);
        let keep: Vec<u32> = record
            .parts
            .as_ref()
            .map(|p| p.parts.iter().map(|r| r.number).collect())
            .unwrap_or_default();
        let sync = self.fsync;
        let _ = glommio::executor()
            .spawn_blocking(move || prune_completed_upload(&dir, &keep, sync))
            .await;
        Ok(record)
    }

    /// Aborts an upload: removes every part file and the upload directory.
    pub(crate) async fn abort_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> StorageResult<()> {
        let b = self.bucket(bucket)?;
        let u = self.upload(&b, upload_id, key)?;
        let _all = u.exclusive(upload_id).await?;
        u.close();
        b.uploads.borrow_mut().remove(upload_id);
        self.remove_upload_dir(bucket, upload_id).await
    }

    /// Every upload in progress in `bucket`, sorted by key, then initiation, then id.
    pub(crate) fn list_uploads(&self, bucket: &str) -> StorageResult<Vec<UploadInfo>> {
        let b = self.bucket(bucket)?;
        let uploads = b.uploads.borrow();
        let mut all: Vec<UploadInfo> = uploads
            .iter()
            .filter(|(_, u)| !u.is_closed())
            .map(|(id, u)| UploadInfo {
                parts: Vec::new(),
                ..u.info(id)
            })
            .collect();
        all.sort_by(|a, b| {
            (&a.key, a.initiated_ms, &a.upload_id).cmp(&(&b.key, b.initiated_ms, &b.upload_id))
        });
        Ok(all)
    }

    async fn sync_path(&self, dir: &Path) -> StorageResult<()> {
        let d = glommio::io::Directory::open(dir)
            .await
            .map_err(|e| StorageError::io("opening a directory to sync", io::Error::from(e)))?;
        let r = d.sync().await;
        let _ = d.close().await;
        r.map_err(|e| StorageError::write("syncing a directory", io::Error::from(e)))
    }
}
