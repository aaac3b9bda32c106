//! Startup scan of one segment file: every record of every whole batch, in order, and where the
//! next batch goes (blocking I/O; startup only).
//!
//! Invariants: the scan yields a prefix of the segment's batches; it ends quietly at the first
//! batch that is not whole (a torn or never-written tail), but if any valid batch of the same
//! generation follows that point the segment is corrupt and the scan fails naming the segment
//! and offset — it never truncates acknowledged data silently. A segment whose header is not
//! valid is accepted as unused only if its data area was never written (all zeros): that is
//! what a creation cut off before its sync leaves.

use crate::storage::log::format::{
    for_each_record, BatchHeader, RecordView, SegmentHeader, BATCH_HEADER_BYTES,
    SEGMENT_HEADER_BYTES,
};
use crate::storage::log::{LogError, RecordLocation};
use std::io::Read;
use std::path::Path;

/// What the scan of a segment found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SegmentScan {
    /// Header invalid and nothing written after it: a creation that never completed.
    Unused,
    Live(ScanEnd),
}

/// The state of a live segment after its last whole batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScanEnd {
    pub(crate) header: SegmentHeader,
    /// File offset where the next batch goes (sector-aligned).
    pub(crate) end: u64,
    /// Number the next batch carries.
    pub(crate) next_batch: u64,
    /// Whole records found.
    pub(crate) records: u64,
    /// Whether bytes of an incomplete batch were found after `end` (a torn last flush).
    pub(crate) torn_tail: bool,
}

/// Where a scan may start instead of the first batch: a checkpoint covered the segment's
/// generation `generation` up to `end`, where batch `next_batch` goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ScanFrom {
    pub(crate) generation: u64,
    pub(crate) end: u64,
    pub(crate) next_batch: u64,
}

/// Scans the segment at `path`, calling `f` for each record of each whole batch in order.
pub(crate) fn scan_segment(
    path: &Path,
    f: impl FnMut(RecordLocation, RecordView<'_>),
) -> Result<SegmentScan, LogError> {
    scan_segment_from(path, None, f).map(|(scan, _)| scan)
}

/// [`scan_segment`] that reads and scans only what follows `from` when the segment is still
/// in that generation (the header area is read either way); also returns whether it did.
pub(crate) fn scan_segment_from(
    path: &Path,
    from: Option<ScanFrom>,
    mut f: impl FnMut(RecordLocation, RecordView<'_>),
) -> Result<(SegmentScan, bool), LogError> {
    let (bytes, from) = read_image(path, from)?;
    let header = match SegmentHeader::decode_area(&bytes) {
        Ok(h) => h,
        Err(_) if is_zero(&bytes[SEGMENT_HEADER_BYTES.min(bytes.len() as u64) as usize..]) => {
            return Ok((SegmentScan::Unused, false));
        }
        Err(why) => return Err(LogError::corrupt(path, 0, why)),
    };
    if header.size_bytes != bytes.len() as u64 {
        return Err(LogError::corrupt(
            path,
            0,
            "segment file size differs from its header",
        ));
    }
    let from = from.filter(|c| c.generation == header.generation);
    if from.is_some_and(|c| c.end > header.size_bytes || c.end < SEGMENT_HEADER_BYTES) {
        return Err(LogError::corrupt(
            path,
            0,
            "checkpoint position outside the segment",
        ));
    }
    let mut end = ScanEnd {
        header,
        end: from.map_or(SEGMENT_HEADER_BYTES, |c| c.end),
        next_batch: from.map_or(1, |c| c.next_batch),
        records: 0,
        torn_tail: false,
    };
    while let Some(batch) = whole_batch_at(&bytes, &end) {
        let start = end.end as usize + BATCH_HEADER_BYTES;
        let payload = &bytes[start..start + batch.payload_len as usize];
        for_each_record(payload, header.generation, header.nonce, |at, rec| {
            let location = RecordLocation {
                segment: header.id,
                offset: (start + at) as u64,
                len: (crate::storage::log::format::record_len(rec.payload.len())) as u32,
            };
            f(location, rec);
        })
        .map_err(|why| LogError::corrupt(path, end.end, why))?;
        end.records += u64::from(batch.record_count);
        end.end += batch.span_bytes(u64::from(header.block_bytes));
        end.next_batch += 1;
    }
    check_tail(path, &bytes, &mut end)?;
    Ok((SegmentScan::Live(end), from.is_some()))
}

/// The batch at `end.end` if it is the next one of this generation and whole.
fn whole_batch_at(bytes: &[u8], end: &ScanEnd) -> Option<BatchHeader> {
    let h = &end.header;
    let at = end.end as usize;
    let batch = BatchHeader::decode(bytes.get(at..)?, h.generation, h.nonce)?;
    if batch.number != end.next_batch {
        return None;
    }
    let start = at + BATCH_HEADER_BYTES;
    let payload = bytes.get(start..start + batch.payload_len as usize)?;
    batch.payload_matches(h.nonce, payload).then_some(batch)
}

/// After the last whole batch: a torn or never-written tail is the clean end of the log, but a
/// valid batch header of this generation further on means a flushed batch was lost: corruption.
fn check_tail(path: &Path, bytes: &[u8], end: &mut ScanEnd) -> Result<(), LogError> {
    let h = end.header;
    let tail_start = end.end as usize;
    if tail_start >= bytes.len() {
        return Ok(());
    }
    let block = h.block_bytes as usize;
    // Bytes after the end of a reused segment may be an earlier generation's (not torn).
    let written = !is_zero(&bytes[tail_start..(tail_start + block).min(bytes.len())]);
    let ours = h.generation == 1
        || BatchHeader::decode(&bytes[tail_start..], h.generation, h.nonce).is_some();
    end.torn_tail = written && ours;
    let mut at = tail_start;
    while at < bytes.len() {
        if let Some(later) = BatchHeader::decode(&bytes[at..], h.generation, h.nonce) {
            if at != tail_start || later.number != end.next_batch {
                return Err(LogError::corrupt(
                    path,
                    end.end,
                    "invalid batch followed by a valid later batch (data after it was flushed)",
                ));
            }
        }
        at += block;
    }
    Ok(())
}

/// The segment file as an image of its full size: all of it, or (when `from` matches its
/// header's generation) the header area and the bytes from `from.end` on — the rest stays
/// zero (a zeroed allocation of that size is not touched, so it costs no memory).
fn read_image(
    path: &Path,
    from: Option<ScanFrom>,
) -> Result<(Vec<u8>, Option<ScanFrom>), LogError> {
    use std::io::{Seek, SeekFrom};
    let io = |e| LogError::io(path, e);
    let mut f = std::fs::File::open(path).map_err(io)?;
    let len = f.metadata().map_err(io)?.len();
    let Some(from) = from.filter(|c| c.end <= len && c.end >= SEGMENT_HEADER_BYTES) else {
        let mut bytes = Vec::with_capacity(len as usize);
        f.read_to_end(&mut bytes).map_err(io)?;
        return Ok((bytes, None));
    };
    let mut bytes = vec![0u8; len as usize];
    let head = SEGMENT_HEADER_BYTES.min(len) as usize;
    f.read_exact(&mut bytes[..head]).map_err(io)?;
    match SegmentHeader::decode_area(&bytes[..head]) {
        Ok(h) if h.generation == from.generation => {}
        // Reused since (or unreadable): read it all.
        _ => {
            f.read_exact(&mut bytes[head..]).map_err(io)?;
            return Ok((bytes, None));
        }
    }
    f.seek(SeekFrom::Start(from.end)).map_err(io)?;
    f.read_exact(&mut bytes[from.end as usize..]).map_err(io)?;
    Ok((bytes, Some(from)))
}

fn is_zero(b: &[u8]) -> bool {
    b.iter().all(|&x| x == 0)
}
