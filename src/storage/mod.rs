//! Storage: everything on disk, behind one typed API ([`Store`]) that knows nothing of HTTP,
//! XML or S3 error codes.
//!
//! Inside: the on-disk object record format ([`record`]), DMA staging writes and reads, the
//! per-core owner state (bucket indexes, commits, deletes, multipart uploads), the data directory
//! layout, and the cross-core calls that carry metadata operations to a bucket's owner core.
//! Only [`Store`] and the value types it takes and returns are visible above this module.
//!
//! Invariants: only a bucket's owner core changes it; a commit renames a staging file only after
//! it was synced, and publishes it in the index only after the rename (and directory sync) —
//! so an acknowledged write is durable and a listed key is readable.

mod disk;
mod error;
mod group_sync;
mod index;
mod layout;
mod list;
mod locks;
mod owner;
mod owner_uploads;
mod reader;
pub mod record;
mod recovery;
mod shard;
mod store;
mod uploads;
mod writer;

pub(crate) use error::StorageError;
pub use index::BucketIndex;
pub use index::{ObjectSummary, WriteCondition};
pub(crate) use layout::is_valid_upload_id;
pub use list::{list_page, ListEntry, ListPage, ListParams};
pub(crate) use reader::{ObjectStream, OpenObject};
pub(crate) use record::{ObjectRecord, StoredChecksum};
pub(crate) use recovery::LoadReport;
pub use shard::owner_of;
pub(crate) use shard::CoreMesh;
pub(crate) use store::{ObjectWriter, StagedObject, Store, StoreConfig};
pub(crate) use uploads::{CompletePart, CompleteRequest, PartInfo, UploadInfo};

pub(crate) use crate::clock::now_ms;

use std::path::{Path, PathBuf};

/// What preparing the data directory found.
#[derive(Debug)]
pub(crate) struct Prepared {
    /// The absolute data directory every core opens its [`Store`] on.
    pub(crate) root: PathBuf,
    /// Staging files of an earlier run that were removed (writes never acknowledged).
    pub(crate) removed_staging_files: usize,
}

/// Creates the data directory if missing, checks its format marker, and removes staging
/// leftovers of an earlier run. Call once, before any [`Store::open`].
pub(crate) fn prepare_data_dir(dir: &Path) -> std::io::Result<Prepared> {
    use layout::FORMAT_LINE;
    std::fs::create_dir_all(dir)?;
    // Absolute, so directory handles never depend on the working directory.
    let root = std::fs::canonicalize(dir)?;
    let layout = layout::Layout::new(root.clone());
    std::fs::create_dir_all(layout.buckets_dir())?;
    std::fs::create_dir_all(layout.tmp_dir())?;
    let marker = layout.format_marker();
    match std::fs::read_to_string(&marker) {
        Ok(s) if s == FORMAT_LINE => {}
        Ok(s) => {
            return Err(std::io::Error::other(format!(
                "{} says {:?}; this ringstore understands {:?}",
                marker.display(),
                s.trim(),
                FORMAT_LINE.trim()
            )))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::write(&marker, FORMAT_LINE)?;
        }
        Err(e) => return Err(e),
    }
    let mut removed_staging_files = 0;
    for entry in std::fs::read_dir(layout.tmp_dir())? {
        std::fs::remove_file(entry?.path())?;
        removed_staging_files += 1;
    }
    Ok(Prepared {
        root,
        removed_staging_files,
    })
}
