//! Segment files: creation (preallocated and written through once), names, listing.
//!
//! Invariants: a segment file appears under its final name only whole — header and zeroed data
//! area written and synced under a temporary name, renamed, directory synced — so its first
//! records' flushes never carry file-metadata updates (no unwritten extents) and a creation cut
//! off by a crash leaves at most a `.tmp` file, removed by [`list_segments`]. Segment ids are
//! never reused within a data directory.

use crate::storage::log::format::{SegmentHeader, SEGMENT_HEADER_BYTES};
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Default size of a segment file (header included).
pub(crate) const SEGMENT_SIZE_DEFAULT_BYTES: u64 = 8 * 1024 * 1024;
/// Smallest segment size accepted (tests use small segments to exercise rolling).
pub(crate) const SEGMENT_SIZE_MIN_BYTES: u64 = 256 * 1024;
/// Zeros written per call while creating a segment.
const ZERO_FILL_CHUNK_BYTES: usize = 1024 * 1024;
const SEGMENT_PREFIX: &str = "seg-";
const TMP_SUFFIX: &str = ".tmp";

/// The file of segment `id` in the log directory `dir`.
pub(crate) fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{SEGMENT_PREFIX}{id:016x}"))
}

/// The id in a segment file name, if it is one.
fn parse_segment_name(name: &str) -> Option<u64> {
    let hex = name.strip_prefix(SEGMENT_PREFIX)?;
    if hex.len() != 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// A fresh random nonce (seeds the checksums of one segment generation).
pub(crate) fn fresh_nonce(id: u64) -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(id);
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

/// Creates segment `id` of `size_bytes` in `dir`, durable before it returns (blocking: run it
/// on a blocking thread). `sync` false skips the syncs (`--fsync never`).
pub(crate) fn create_segment(
    dir: &Path,
    id: u64,
    size_bytes: u64,
    block_bytes: u32,
    sync: bool,
) -> io::Result<SegmentHeader> {
    assert!(
        size_bytes >= SEGMENT_SIZE_MIN_BYTES && size_bytes.is_multiple_of(SEGMENT_HEADER_BYTES)
    );
    let header = SegmentHeader {
        id,
        generation: 1,
        nonce: fresh_nonce(id),
        created_ms: crate::clock::now_ms(),
        block_bytes,
        size_bytes,
    };
    let path = segment_path(dir, id);
    let tmp = path.with_extension(TMP_SUFFIX.trim_start_matches('.'));
    let written = write_segment_file(&tmp, &header, sync);
    if let Err(e) = written {
        // A full disk must not keep the partial file's space.
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, &path)?;
    if sync {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(header)
}

/// Turns segment `old` (every live record of which was copied elsewhere, and which no reader
/// holds) into an empty segment of the next generation with a fresh nonce: one header-slot
/// write, durable before this returns when `sync`. The previous generation's records no longer
/// verify. `None` when the device block does not fit a header slot (remove the file instead).
pub(crate) async fn renew_segment(
    dir: &Path,
    old: SegmentHeader,
    sync: bool,
) -> io::Result<Option<SegmentHeader>> {
    use crate::storage::log::format::HEADER_SLOT_STRIDE_BYTES;
    let block = u64::from(old.block_bytes);
    if block > HEADER_SLOT_STRIDE_BYTES {
        return Ok(None);
    }
    let next = SegmentHeader {
        generation: old.generation + 1,
        nonce: fresh_nonce(old.id ^ old.generation),
        ..old
    };
    let flags = if sync { libc::O_DSYNC } else { 0 };
    let file = glommio::io::OpenOptions::new()
        .write(true)
        .custom_flags(flags)
        .dma_open(segment_path(dir, old.id))
        .await?;
    let mut buf = file.alloc_dma_buffer(block as usize);
    buf.as_bytes_mut().fill(0);
    let sector = next.encode();
    buf.as_bytes_mut()[..sector.len()].copy_from_slice(&sector);
    let at = SegmentHeader::slot_offset(next.generation);
    let written = file.write_at(buf, at).await?;
    file.close().await?;
    if written as u64 != block {
        return Err(io::Error::other("short segment header write"));
    }
    Ok(Some(next))
}

/// Writes a whole segment file at `tmp`: header, then zeros up to its size.
fn write_segment_file(tmp: &Path, header: &SegmentHeader, sync: bool) -> io::Result<()> {
    let mut f = std::fs::File::create(tmp)?;
    f.write_all(&header.encode())?;
    let zeros = vec![0u8; ZERO_FILL_CHUNK_BYTES];
    let mut left = header.size_bytes - header.encode().len() as u64;
    while left > 0 {
        let n = left.min(ZERO_FILL_CHUNK_BYTES as u64) as usize;
        f.write_all(&zeros[..n])?;
        left -= n as u64;
    }
    if sync {
        f.sync_all()?;
    }
    Ok(())
}

/// The segments in `dir` by ascending id; removes `.tmp` leftovers of cut-off creations.
pub(crate) fn list_segments(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(id) = parse_segment_name(&name) {
            found.push((id, entry.path()));
        } else if name.starts_with(SEGMENT_PREFIX) && name.ends_with(TMP_SUFFIX) {
            std::fs::remove_file(entry.path())?;
        }
    }
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let p = segment_path(Path::new("/x"), 0xab);
        let name = p.file_name().unwrap().to_str().unwrap();
        assert_eq!(name, "seg-00000000000000ab");
        assert_eq!(parse_segment_name(name), Some(0xab));
        assert_eq!(parse_segment_name("seg-00000000000000ab.tmp"), None);
        assert_eq!(parse_segment_name("seg-xyz"), None);
        assert_ne!(fresh_nonce(1), fresh_nonce(1), "nonces are random");
    }
}
