//! Shards: which core owns a bucket, and the cross-core calls that reach the owner.
//!
//! Every change to a bucket's index and uploads runs on its owner core ([`Owner`]); reads use
//! the shared index and need no call. A core calls its own
//! owner directly and other owners over glommio's channel mesh; the reply comes back on a oneshot
//! channel (glommio wakes the waiting task across threads). This module is private to storage:
//! callers see [`crate::storage::Store`] methods, never an [`OwnerOp`].
//!
//! Invariants: only metadata crosses cores (names, keys, index entries, staging file names) — never
//! body bytes; [`owner_of`] is a pure function of the bucket name and the core count; the owner
//! answers every op with the reply variant documented on it (a mismatch is a bug and panics).

use crate::storage::error::{StorageError, StorageResult};
use crate::storage::index::{IndexEntry, ObjectSummary, WriteCondition};
use crate::storage::owner::{Owner, Relocation};
use crate::storage::record::ObjectRecord;
use crate::storage::uploads::{CompleteRequest, PartInfo, UploadInfo};
use futures_channel::oneshot;
use glommio::channels::channel_mesh::{Full, MeshBuilder, Receivers, Senders};
use std::path::PathBuf;
use std::rc::Rc;

/// Capacity of each core-to-core channel.
const MESH_CHANNEL_CAPACITY: usize = 1024;

/// A metadata operation for a bucket's owner core; each names its reply variant.
#[derive(Debug)]
pub(crate) enum OwnerOp {
    /// -> `Done`
    CreateBucket { name: String, now_ms: u64 },
    /// -> `Done`
    DeleteBucket { name: String },
    /// -> `Done`: installs the entry of a record another core made durable.
    Apply {
        bucket: String,
        incarnation: u64,
        key: String,
        entry: IndexEntry,
    },
    /// -> `Done`
    Commit {
        bucket: String,
        key: String,
        staging: PathBuf,
        summary: ObjectSummary,
        condition: WriteCondition,
    },
    /// -> `Done`
    DeleteObject { bucket: String, key: String },
    /// -> `Reserved`: checks the condition and holds the key for a conditional small write.
    Reserve {
        bucket: String,
        key: String,
        condition: WriteCondition,
    },
    /// -> `Done`: installs the entry of a reserved write (the reserving core logged it).
    ApplyReserved {
        reservation: u64,
        incarnation: u64,
        key: String,
        entry: IndexEntry,
    },
    /// -> `Done`: ends a reservation without a write.
    Release { reservation: u64 },
    /// -> `Moved`: points entries at compaction's copies of their records.
    Relocate {
        bucket: String,
        incarnation: u64,
        moves: Vec<Relocation>,
    },
    /// -> `Done`
    CreateUpload {
        bucket: String,
        upload_id: String,
        meta: ObjectRecord,
    },
    /// -> `Upload`
    UploadInfo {
        bucket: String,
        key: String,
        upload_id: String,
    },
    /// -> `Done`
    CommitPart {
        bucket: String,
        key: String,
        upload_id: String,
        number: u32,
        staging: PathBuf,
        info: PartInfo,
    },
    /// -> `Record`
    CompleteUpload {
        bucket: String,
        request: CompleteRequest,
        staging: PathBuf,
    },
    /// -> `Done`
    AbortUpload {
        bucket: String,
        key: String,
        upload_id: String,
    },
    /// -> `Uploads`
    ListUploads { bucket: String },
}

/// The owner's answer.
#[derive(Debug)]
pub(crate) enum OwnerReply {
    Done,
    Upload(UploadInfo),
    Uploads(Vec<UploadInfo>),
    Record(ObjectRecord),
    /// Per relocation, whether the entry now names the copy.
    Moved(Vec<bool>),
    /// A reservation id.
    Reserved(u64),
}

/// Unwraps the reply variant an op is documented to produce.
macro_rules! expect_reply {
    ($reply:expr, $variant:ident $( ( $v:ident ) )? ) => {
        match $reply {
            $crate::storage::shard::OwnerReply::$variant $( ($v) )? => ( $( $v )? ),
            other => unreachable!(concat!("owner answered {:?} where ", stringify!($variant), " belongs"), other),
        }
    };
}
pub(crate) use expect_reply;

type OwnerResult = StorageResult<OwnerReply>;

/// A request travelling to another core.
pub(crate) struct Envelope {
    op: OwnerOp,
    reply: oneshot::Sender<OwnerResult>,
}

/// The channels between all cores, built once before the executors start; each core joins it.
#[derive(Clone)]
pub(crate) struct CoreMesh(MeshBuilder<Envelope, Full>);

impl CoreMesh {
    pub(crate) fn new(cores: usize) -> CoreMesh {
        assert!(cores >= 1);
        CoreMesh(MeshBuilder::full(cores, MESH_CHANNEL_CAPACITY))
    }

    pub(crate) async fn join(self) -> Option<(Senders<Envelope>, Receivers<Envelope>)> {
        self.0.join().await.ok()
    }
}

/// Stable FNV-1a hash of a bucket name (the same on every run and every core).
fn bucket_hash(name: &str) -> u64 {
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
pub(crate) struct Shards {
    me: usize,
    cores: usize,
    senders: Senders<Envelope>,
    owner: Rc<Owner>,
}

impl Shards {
    pub(crate) fn new(me: usize, senders: Senders<Envelope>, owner: Rc<Owner>) -> Shards {
        let cores = senders.nr_consumers();
        assert!(me < cores);
        Shards {
            me,
            cores,
            senders,
            owner,
        }
    }

    pub(crate) fn me(&self) -> usize {
        self.me
    }

    /// Runs `op` on the owner of `bucket`.
    pub(crate) async fn call_owner(&self, bucket: &str, op: OwnerOp) -> OwnerResult {
        self.call_core(self.owner_core(bucket), op).await
    }

    /// The core that owns `bucket`.
    pub(crate) fn owner_core(&self, bucket: &str) -> usize {
        owner_of(bucket, self.cores)
    }

    /// Runs `op` on core `core`.
    pub(crate) async fn call_core(&self, core: usize, op: OwnerOp) -> OwnerResult {
        assert!(core < self.cores);
        if core == self.me {
            return handle(&self.owner, op).await;
        }
        let (tx, rx) = oneshot::channel();
        let envelope = Envelope { op, reply: tx };
        if self.senders.send_to(core, envelope).await.is_err() {
            return Err(StorageError::ShuttingDown);
        }
        rx.await.unwrap_or(Err(StorageError::ShuttingDown))
    }
}

/// Serves requests arriving from other cores until every peer hangs up.
pub(crate) fn spawn_owner_service(owner: Rc<Owner>, mut receivers: Receivers<Envelope>) {
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
    use OwnerOp as Op;
    let done = |_| OwnerReply::Done;
    match op {
        Op::CreateBucket { name, now_ms } => owner.create_bucket(&name, now_ms).await.map(done),
        Op::DeleteBucket { name } => owner.delete_bucket(&name).await.map(done),
        Op::Apply {
            bucket,
            incarnation,
            key,
            entry,
        } => owner
            .apply(&bucket, incarnation, &key, entry)
            .await
            .map(done),
        Op::Commit {
            bucket,
            key,
            staging,
            summary,
            condition,
        } => owner
            .commit_file(&bucket, &key, &staging, summary, None, &condition)
            .await
            .map(done),
        Op::DeleteObject { bucket, key } => owner.delete_object(&bucket, &key).await.map(done),
        Op::Relocate {
            bucket,
            incarnation,
            moves,
        } => Ok(OwnerReply::Moved(owner.relocate(
            &bucket,
            incarnation,
            &moves,
        ))),
        Op::Reserve {
            bucket,
            key,
            condition,
        } => owner
            .reserve(&bucket, &key, &condition)
            .await
            .map(OwnerReply::Reserved),
        Op::ApplyReserved {
            reservation,
            incarnation,
            key,
            entry,
        } => owner
            .apply_reserved(reservation, incarnation, &key, entry)
            .await
            .map(done),
        Op::Release { reservation } => {
            owner.release(reservation);
            Ok(OwnerReply::Done)
        }
        upload_op => handle_upload(owner, upload_op).await,
    }
}

/// The multipart-upload ops of [`handle`].
async fn handle_upload(owner: &Owner, op: OwnerOp) -> OwnerResult {
    use OwnerOp as Op;
    let done = |_| OwnerReply::Done;
    match op {
        Op::CreateUpload {
            bucket,
            upload_id,
            meta,
        } => owner
            .create_upload(&bucket, upload_id, meta)
            .await
            .map(done),
        Op::UploadInfo {
            bucket,
            key,
            upload_id,
        } => owner
            .upload_info(&bucket, &key, &upload_id)
            .map(OwnerReply::Upload),
        Op::CommitPart {
            bucket,
            key,
            upload_id,
            number,
            staging,
            info,
        } => owner
            .commit_part(&bucket, &key, &upload_id, number, &staging, info)
            .await
            .map(done),
        Op::CompleteUpload {
            bucket,
            request,
            staging,
        } => owner
            .complete_upload(&bucket, request, &staging)
            .await
            .map(OwnerReply::Record),
        Op::AbortUpload {
            bucket,
            key,
            upload_id,
        } => owner
            .abort_upload(&bucket, &key, &upload_id)
            .await
            .map(done),
        Op::ListUploads { bucket } => owner.list_uploads(&bucket).map(OwnerReply::Uploads),
        other => unreachable!("{other:?} is not an upload op"),
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
