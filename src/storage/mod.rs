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
#[allow(dead_code)] // wired into the engine by the next commits of the engine issue
mod log;
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
///
/// Every directory and the marker are durable before they are relied on (synced whatever
/// `--fsync` says: this happens once per start).
pub(crate) fn prepare_data_dir(dir: &Path) -> std::io::Result<Prepared> {
    std::fs::create_dir_all(dir)?;
    // Absolute, so directory handles never depend on the working directory.
    let root = std::fs::canonicalize(dir)?;
    let layout = layout::Layout::new(root.clone());
    std::fs::create_dir_all(layout.buckets_dir())?;
    std::fs::create_dir_all(layout.tmp_dir())?;
    disk::sync_dir(&root)?;
    check_format_marker(&layout.format_marker())?;
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

/// Checks the format marker, writing it (durably) in a new data directory. An empty marker is
/// what a power cut leaves when the very first start wrote it but it never reached the disk
/// (before markers were synced): that start created the directory, so the marker is rewritten,
/// with a log line. Any other content is a format this build does not understand: refused.
fn check_format_marker(marker: &Path) -> std::io::Result<()> {
    use layout::FORMAT_LINE;
    match std::fs::read_to_string(marker) {
        Ok(s) if s == FORMAT_LINE => Ok(()),
        Ok(s) if s.is_empty() => {
            eprintln!(
                "ringstore: {} is empty (a first start cut off before it reached the disk); rewriting it",
                marker.display()
            );
            disk::write_durably(marker, FORMAT_LINE.as_bytes(), true)
        }
        Ok(s) => Err(std::io::Error::other(format!(
            "{} says {:?}; this ringstore understands {:?}",
            marker.display(),
            s.trim(),
            FORMAT_LINE.trim()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            disk::write_durably(marker, FORMAT_LINE.as_bytes(), true)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir() -> tempfile::TempDir {
        let parent = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/target/unit-tmp"));
        std::fs::create_dir_all(&parent).expect("test parent dir");
        tempfile::tempdir_in(parent).expect("temp dir")
    }

    #[test]
    fn new_directory_gets_a_durable_marker_and_no_leftovers() {
        let dir = temp_dir();
        let p = prepare_data_dir(&dir.path().join("data")).unwrap();
        let marker = p.root.join(layout::FORMAT_FILE);
        assert_eq!(
            std::fs::read_to_string(&marker).unwrap(),
            layout::FORMAT_LINE
        );
        assert!(!layout::tmp_sibling(&marker).exists(), "no temporary left");
        assert_eq!(p.removed_staging_files, 0);
        // Staging leftovers of a crashed run are removed on the next start.
        std::fs::write(p.root.join("tmp").join("0-1-1.tmp"), b"x").unwrap();
        assert_eq!(prepare_data_dir(&p.root).unwrap().removed_staging_files, 1);
    }

    #[test]
    fn empty_marker_is_repaired_and_foreign_marker_refused() {
        let dir = temp_dir();
        let root = prepare_data_dir(dir.path()).unwrap().root;
        let marker = root.join(layout::FORMAT_FILE);
        std::fs::write(&marker, b"").unwrap();
        prepare_data_dir(&root).expect("an empty marker is repaired");
        assert_eq!(
            std::fs::read_to_string(&marker).unwrap(),
            layout::FORMAT_LINE
        );
        std::fs::write(&marker, b"ringstore 9\n").unwrap();
        let err = prepare_data_dir(&root).unwrap_err().to_string();
        assert!(
            err.contains("ringstore 9") && err.contains("ringstore 1"),
            "{err}"
        );
        assert_eq!(std::fs::read_to_string(&marker).unwrap(), "ringstore 9\n");
    }
}
