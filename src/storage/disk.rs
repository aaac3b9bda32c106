//! Blocking file helpers of the storage layer: reading a record header from a path, durable
//! small-file writes, directory syncs, pruning a completed upload's directory. Used at startup
//! and on the blocking-thread pool (bucket and upload creation), never on the request path.
//!
//! Invariant: a metadata file appears under its final name only whole and synced (written to a
//! temporary sibling, synced, renamed, directory synced).

use crate::storage::layout::{parse_part_file_name, tmp_sibling};
use crate::storage::record::{ObjectRecord, HEADER_MAX_BYTES};
use std::io;
use std::path::Path;

/// Reads and checks the record of the object (or part) file at `path`: its header CRC and that
/// the file is exactly as long as the record says.
pub(crate) fn read_record_blocking(path: &Path) -> io::Result<ObjectRecord> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; HEADER_MAX_BYTES];
    let mut n = 0;
    while n < buf.len() {
        let r = f.read(&mut buf[n..])?;
        if r == 0 {
            break;
        }
        n += r;
    }
    let (rec, header_len) = ObjectRecord::decode_header(&buf[..n])
        .map_err(|m| io::Error::new(io::ErrorKind::InvalidData, m))?;
    let len = f.metadata()?.len();
    let data_len = if rec.parts.is_some() { 0 } else { rec.size };
    if len != header_len as u64 + data_len {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "object file length does not match its record",
        ));
    }
    Ok(rec)
}

/// fsyncs a directory (blocking; startup and bucket/upload creation only).
pub(crate) fn sync_dir(path: &Path) -> io::Result<()> {
    std::fs::File::open(path)?.sync_all()
}

/// Writes a small metadata file atomically: a temporary sibling, synced, renamed over `path`,
/// then the directory synced (blocking; bucket and upload creation only).
pub(crate) fn write_durably(path: &Path, bytes: &[u8], fsync: bool) -> io::Result<()> {
    let tmp = tmp_sibling(path);
    std::fs::write(&tmp, bytes)?;
    if fsync {
        std::fs::File::open(&tmp)?.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if fsync {
        sync_dir(path.parent().expect("a metadata file has a directory"))?;
    }
    Ok(())
}

/// Removes `upload.meta` and every part not in `keep` from a completed upload's directory;
/// with `sync`, durably (else a power cut can bring `upload.meta` back, and once the object is
/// deleted the completed upload would reappear as one in progress).
pub(crate) fn prune_completed_upload(dir: &Path, keep: &[u32], sync: bool) -> io::Result<()> {
    let mut removed = false;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let listed = parse_part_file_name(&name).is_some_and(|n| keep.contains(&n));
        if !listed {
            std::fs::remove_file(entry.path())?;
            removed = true;
        }
    }
    if sync && removed {
        sync_dir(dir)?;
    }
    Ok(())
}
