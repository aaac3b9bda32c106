//! Shards: which core owns a bucket, and the cross-core calls that reach the owner.
//!
//! Every metadata operation on a bucket runs on its owner core ([`crate::storage::owner::Owner`]).
//! A core calls its own owner directly and other owners over glommio's channel mesh; the reply
//! comes back on a oneshot channel (glommio wakes the waiting task across threads).
//! Invariants: only metadata crosses cores (names, keys, summaries, staging paths) — never body
//! bytes; `owner_of` is a pure function of the bucket name and the core count.

use crate::s3::error::S3Error;
use crate::s3::list::{ListPage, ListParams};
use crate::storage::index::{ObjectSummary, WriteCondition};
use crate::storage::owner::Owner;
use crate::storage::record::ObjectRecord;
use crate::storage::uploads::{CompleteRequest, PartInfo, UploadInfo};
use futures_channel::oneshot;
use glommio::channels::channel_mesh::{Receivers, Senders};
use std::path::PathBuf;
use std::rc::Rc;

/// Capacity of each core-to-core channel.
pub const MESH_CHANNEL_CAPACITY: usize = 1024;

/// A metadata operation for a bucket's owner core.
#[derive(Debug)]
pub enum OwnerOp {
    CreateBucket {
        name: String,
        now_ms: u64,
    },
    DeleteBucket {
        name: String,
    },
    HeadBucket {
        name: String,
    },
    ListBuckets,
    Commit {
        bucket: String,
        key: String,
        staging: PathBuf,
        summary: ObjectSummary,
        condition: WriteCondition,
    },
    DeleteObject {
        bucket: String,
        key: String,
    },
    List {
        bucket: String,
        params: ListParams,
    },
    CreateUpload {
        bucket: String,
        upload_id: String,
        meta: ObjectRecord,
    },
    UploadInfo {
        bucket: String,
        key: String,
        upload_id: String,
    },
    CommitPart {
        bucket: String,
        key: String,
        upload_id: String,
        number: u32,
        staging: PathBuf,
        info: PartInfo,
    },
    CompleteUpload {
        bucket: String,
        request: CompleteRequest,
    },
    AbortUpload {
        bucket: String,
        key: String,
        upload_id: String,
    },
    ListUploads {
        bucket: String,
    },
}

/// The owner's answer.
#[derive(Debug)]
pub enum OwnerReply {
    Done,
    Created { created_ms: u64 },
    Buckets(Vec<(String, u64)>),
    Page(ListPage),
    Upload(UploadInfo),
    Uploads(Vec<UploadInfo>),
    Record(ObjectRecord),
}

pub type OwnerResult = Result<OwnerReply, S3Error>;

/// A request travelling to another core.
pub struct Envelope {
    op: OwnerOp,
    reply: oneshot::Sender<OwnerResult>,
}

/// Stable FNV-1a hash of a bucket name (the same on every run and every core).
pub fn bucket_hash(name: &str) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in name.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// The core that owns `bucket` among `cores`.
pub fn owner_of(bucket: &str, cores: usize) -> usize {
    (bucket_hash(bucket) % cores as u64) as usize
}

/// This core's handle on every owner.
pub struct Shards {
    me: usize,
    cores: usize,
    senders: Senders<Envelope>,
    pub owner: Rc<Owner>,
}

impl Shards {
    pub fn new(me: usize, cores: usize, senders: Senders<Envelope>, owner: Rc<Owner>) -> Shards {
        Shards {
            me,
            cores,
            senders,
            owner,
        }
    }

    pub fn me(&self) -> usize {
        self.me
    }

    pub fn cores(&self) -> usize {
        self.cores
    }

    /// Runs `op` on the owner of `bucket`.
    pub async fn call_owner(&self, bucket: &str, op: OwnerOp) -> OwnerResult {
        self.call_core(owner_of(bucket, self.cores), op).await
    }

    /// Runs `op` on core `core`.
    pub async fn call_core(&self, core: usize, op: OwnerOp) -> OwnerResult {
        if core == self.me {
            return handle(&self.owner, op).await;
        }
        let (tx, rx) = oneshot::channel();
        if self
            .senders
            .send_to(core, Envelope { op, reply: tx })
            .await
            .is_err()
        {
            return Err(crate::s3err!(
                ServiceUnavailable,
                "The server is shutting down."
            ));
        }
        rx.await.unwrap_or_else(|_| {
            Err(crate::s3err!(
                ServiceUnavailable,
                "The server is shutting down."
            ))
        })
    }

    /// Every core's buckets, merged and sorted by name.
    pub async fn all_buckets(&self) -> Result<Vec<(String, u64)>, S3Error> {
        let mut all = Vec::new();
        for core in 0..self.cores {
            if let OwnerReply::Buckets(mut b) = self.call_core(core, OwnerOp::ListBuckets).await? {
                all.append(&mut b);
            }
        }
        all.sort();
        Ok(all)
    }
}

/// Serves requests arriving from other cores until every peer hangs up.
pub fn spawn_owner_service(owner: Rc<Owner>, mut receivers: Receivers<Envelope>) {
    for (_peer, stream) in receivers.streams() {
        let owner = owner.clone();
        glommio::spawn_local(async move {
            while let Some(env) = stream.recv().await {
                let owner = owner.clone();
                glommio::spawn_local(async move {
                    let result = handle(&owner, env.op).await;
                    let _ = env.reply.send(result);
                })
                .detach();
            }
        })
        .detach();
    }
}

async fn handle(owner: &Owner, op: OwnerOp) -> OwnerResult {
    match op {
        OwnerOp::CreateBucket { name, now_ms } => {
            owner.create_bucket(&name, now_ms).await?;
            Ok(OwnerReply::Done)
        }
        OwnerOp::DeleteBucket { name } => {
            owner.delete_bucket(&name).await?;
            Ok(OwnerReply::Done)
        }
        OwnerOp::HeadBucket { name } => Ok(OwnerReply::Created {
            created_ms: owner.head_bucket(&name)?,
        }),
        OwnerOp::ListBuckets => Ok(OwnerReply::Buckets(owner.list_buckets())),
        OwnerOp::Commit {
            bucket,
            key,
            staging,
            summary,
            condition,
        } => {
            owner
                .commit(&bucket, &key, &staging, summary, &condition)
                .await?;
            Ok(OwnerReply::Done)
        }
        OwnerOp::DeleteObject { bucket, key } => {
            owner.delete_object(&bucket, &key).await?;
            Ok(OwnerReply::Done)
        }
        OwnerOp::List { bucket, params } => Ok(OwnerReply::Page(owner.list(&bucket, &params)?)),
        OwnerOp::CreateUpload {
            bucket,
            upload_id,
            meta,
        } => {
            owner.create_upload(&bucket, upload_id, meta).await?;
            Ok(OwnerReply::Done)
        }
        OwnerOp::UploadInfo {
            bucket,
            key,
            upload_id,
        } => Ok(OwnerReply::Upload(
            owner.upload_info(&bucket, &key, &upload_id)?,
        )),
        OwnerOp::CommitPart {
            bucket,
            key,
            upload_id,
            number,
            staging,
            info,
        } => {
            owner
                .commit_part(&bucket, &key, &upload_id, number, &staging, info)
                .await?;
            Ok(OwnerReply::Done)
        }
        OwnerOp::CompleteUpload { bucket, request } => {
            let rec = owner.complete_upload(&bucket, request).await?;
            Ok(OwnerReply::Record(rec))
        }
        OwnerOp::AbortUpload {
            bucket,
            key,
            upload_id,
        } => {
            owner.abort_upload(&bucket, &key, &upload_id).await?;
            Ok(OwnerReply::Done)
        }
        OwnerOp::ListUploads { bucket } => Ok(OwnerReply::Uploads(owner.list_uploads(&bucket)?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ownership_is_stable_and_spread() {
        assert_eq!(owner_of("my-bucket", 4), owner_of("my-bucket", 4));
        let mut seen = [0usize; 4];
        for i in 0..400 {
            seen[owner_of(&format!("bucket-{i}"), 4)] += 1;
        }
        assert!(seen.iter().all(|&n| n > 50), "{seen:?}");
    }
}
