//! Byte layout of log segments: the segment header, batch headers and records.
//!
//! A segment file (`log/seg-<id>`) is [`SEGMENT_HEADER_BYTES`] of header followed by batches.
//! Each batch is what one group commit wrote: it starts on a block boundary (the device's
//! O_DIRECT block, recorded in the segment header, at least [`SECTOR_BYTES`]) with a
//! [`BATCH_HEADER_BYTES`] header, then its records back to back, then zero padding to the next
//! block. All integers are little-endian.
//! ```text
//! segment header: magic "RSLOGSEG" | u32 version | u32 block_bytes | u64 id | u64 generation | u64 nonce
//!                 | u64 created_ms | u64 size_bytes | u32 0 | u32 crc32c(nonce-free bytes 0..60)
//! batch header:   magic "RSLOGBAT" | u64 generation | u64 number | u32 payload_len
//!                 | u32 crc32c(nonce, payload) | u32 record_count | 20 bytes 0
//!                 | u32 crc32c(nonce, bytes 0..60)
//! record:         u32 len | u32 crc32c(nonce, bytes 8..len) | u64 generation | u64 seq
//!                 | u8 kind | 7 bytes 0 | payload
//! ```
//! Invariants: every checksum after the segment header is seeded with the segment's random
//! `nonce` (fresh for each generation), so neither a stale batch of an earlier generation nor
//! bytes a client stored inline can pass for a live batch header; batch numbers within one
//! generation of a segment are consecutive from 1, so a valid batch after an invalid one proves
//! corruption rather than a torn tail.

/// The smallest device block (unit of atomic writes and of O_DIRECT alignment).
pub(crate) const SECTOR_BYTES: u64 = 512;
/// The largest device block a segment may be aligned to.
pub(crate) const BLOCK_MAX_BYTES: u64 = 64 * 1024;
/// Bytes of the segment header area (a whole block on any device). It holds two header slots,
/// each one sector written atomically: a reuse writes the new generation into the slot the
/// current one is not in, so a torn header write leaves the previous header valid.
pub(crate) const SEGMENT_HEADER_BYTES: u64 = BLOCK_MAX_BYTES;
/// Distance between the two header slots (slot 1 starts here), aligned for any device block a
/// reusable segment may have.
pub(crate) const HEADER_SLOT_STRIDE_BYTES: u64 = SEGMENT_HEADER_BYTES / 2;
/// Bytes of a batch header.
pub(crate) const BATCH_HEADER_BYTES: usize = 64;
/// Bytes of a record header before its payload.
pub(crate) const RECORD_HEADER_BYTES: usize = 32;
/// The on-disk version of the segment layout.
pub(crate) const SEGMENT_FORMAT_VERSION: u32 = 2;

const SEGMENT_MAGIC: &[u8; 8] = b"RSLOGSEG";
const BATCH_MAGIC: &[u8; 8] = b"RSLOGBAT";

/// What a segment header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentHeader {
    /// Process-independent id (also the file name); never depends on a core number.
    pub(crate) id: u64,
    /// Bumped each time the segment is reused; records of other generations are stale.
    pub(crate) generation: u64,
    /// Random per generation; seeds every checksum in the segment.
    pub(crate) nonce: u64,
    pub(crate) created_ms: u64,
    /// Alignment of every batch: the device's O_DIRECT block when the segment was created.
    pub(crate) block_bytes: u32,
    /// File size: header plus data area.
    pub(crate) size_bytes: u64,
}

/// What a batch header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchHeader {
    pub(crate) generation: u64,
    /// 1 for the first batch of a generation, then consecutive.
    pub(crate) number: u64,
    /// Bytes of records after the header (padding excluded).
    pub(crate) payload_len: u32,
    pub(crate) payload_crc: u32,
    pub(crate) record_count: u32,
}

/// A record as found in a batch (payload borrowed from the batch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordView<'a> {
    pub(crate) seq: u64,
    pub(crate) kind: u8,
    pub(crate) payload: &'a [u8],
}

fn crc_with_nonce(nonce: u64, bytes: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&nonce.to_le_bytes()), bytes)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Rounds `n` up to a whole number of `block` bytes.
pub(crate) fn align_up(n: u64, block: u64) -> u64 {
    n.div_ceil(block) * block
}

impl SegmentHeader {
    /// The header sector (zero-padded to [`SEGMENT_HEADER_BYTES`]).
    /// The header sector.
    pub(crate) fn encode(&self) -> [u8; SECTOR_BYTES as usize] {
        assert!(self.block_bytes.is_power_of_two() && u64::from(self.block_bytes) >= SECTOR_BYTES);
        let mut b = [0u8; SECTOR_BYTES as usize];
        b[0..8].copy_from_slice(SEGMENT_MAGIC);
        b[8..12].copy_from_slice(&SEGMENT_FORMAT_VERSION.to_le_bytes());
        b[12..16].copy_from_slice(&self.block_bytes.to_le_bytes());
        b[16..24].copy_from_slice(&self.id.to_le_bytes());
        b[24..32].copy_from_slice(&self.generation.to_le_bytes());
        b[32..40].copy_from_slice(&self.nonce.to_le_bytes());
        b[40..48].copy_from_slice(&self.created_ms.to_le_bytes());
        b[48..56].copy_from_slice(&self.size_bytes.to_le_bytes());
        let crc = crc32c::crc32c(&b[0..60]);
        b[60..64].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// The header in `b`, or why it is not one.
    pub(crate) fn decode(b: &[u8]) -> Result<SegmentHeader, &'static str> {
        if b.len() < 64 || &b[0..8] != SEGMENT_MAGIC {
            return Err("no segment magic");
        }
        if crc32c::crc32c(&b[0..60]) != u32_at(b, 60) {
            return Err("segment header checksum mismatch");
        }
        if u32_at(b, 8) != SEGMENT_FORMAT_VERSION {
            return Err("unknown segment format version");
        }
        let block_bytes = u32_at(b, 12);
        let block = u64::from(block_bytes);
        if !block_bytes.is_power_of_two() || !(SECTOR_BYTES..=BLOCK_MAX_BYTES).contains(&block) {
            return Err("segment block size out of range");
        }
        Ok(SegmentHeader {
            block_bytes,
            id: u64_at(b, 16),
            generation: u64_at(b, 24),
            nonce: u64_at(b, 32),
            created_ms: u64_at(b, 40),
            size_bytes: u64_at(b, 48),
        })
    }

    /// The file offset of the slot generation `generation` is written to (generation 1, the
    /// creation, in slot 0; each reuse alternates).
    pub(crate) fn slot_offset(generation: u64) -> u64 {
        assert!(generation >= 1, "generations count from 1");
        ((generation - 1) % 2) * HEADER_SLOT_STRIDE_BYTES
    }

    /// The current header of a segment whose header area is `area`: the valid slot with the
    /// highest generation, or why neither slot is valid.
    pub(crate) fn decode_area(area: &[u8]) -> Result<SegmentHeader, &'static str> {
        let first = SegmentHeader::decode(area);
        let stride = HEADER_SLOT_STRIDE_BYTES as usize;
        let second = area
            .get(stride..)
            .map_or(Err("header area cut short"), SegmentHeader::decode);
        match (first, second) {
            (Ok(a), Ok(b)) => Ok(if b.generation > a.generation { b } else { a }),
            (Ok(a), Err(_)) => Ok(a),
            (Err(_), Ok(b)) => Ok(b),
            (Err(why), Err(_)) => Err(why),
        }
    }
}

impl BatchHeader {
    /// The header for `payload` (the batch's records) as batch `number` of `generation`.
    pub(crate) fn for_payload(generation: u64, number: u64, nonce: u64, payload: &[u8]) -> Self {
        let record_count = count_records(payload);
        BatchHeader {
            generation,
            number,
            payload_len: u32::try_from(payload.len()).expect("batch payload fits u32"),
            payload_crc: crc_with_nonce(nonce, payload),
            record_count,
        }
    }

    pub(crate) fn encode(&self, nonce: u64) -> [u8; BATCH_HEADER_BYTES] {
        let mut b = [0u8; BATCH_HEADER_BYTES];
        b[0..8].copy_from_slice(BATCH_MAGIC);
        b[8..16].copy_from_slice(&self.generation.to_le_bytes());
        b[16..24].copy_from_slice(&self.number.to_le_bytes());
        b[24..28].copy_from_slice(&self.payload_len.to_le_bytes());
        b[28..32].copy_from_slice(&self.payload_crc.to_le_bytes());
        b[32..36].copy_from_slice(&self.record_count.to_le_bytes());
        let crc = crc_with_nonce(nonce, &b[0..60]);
        b[60..64].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// The batch header at the front of `b` if it is one of this segment generation's (the
    /// payload is checked separately with [`BatchHeader::payload_matches`]).
    pub(crate) fn decode(b: &[u8], generation: u64, nonce: u64) -> Option<BatchHeader> {
        if b.len() < BATCH_HEADER_BYTES || &b[0..8] != BATCH_MAGIC {
            return None;
        }
        if crc_with_nonce(nonce, &b[0..60]) != u32_at(b, 60) || u64_at(b, 8) != generation {
            return None;
        }
        Some(BatchHeader {
            generation,
            number: u64_at(b, 16),
            payload_len: u32_at(b, 24),
            payload_crc: u32_at(b, 28),
            record_count: u32_at(b, 32),
        })
    }

    /// Whether `payload` is this batch's, whole: checksum and record framing both hold.
    pub(crate) fn payload_matches(&self, nonce: u64, payload: &[u8]) -> bool {
        payload.len() == self.payload_len as usize
            && crc_with_nonce(nonce, payload) == self.payload_crc
            && count_records(payload) == self.record_count
    }

    /// Bytes the whole batch occupies (header, records, padding to `block`).
    pub(crate) fn span_bytes(&self, block: u64) -> u64 {
        align_up(
            BATCH_HEADER_BYTES as u64 + u64::from(self.payload_len),
            block,
        )
    }
}

/// Records framed back to back in `payload`; `u32::MAX` if the framing does not add up.
fn count_records(payload: &[u8]) -> u32 {
    let mut at = 0usize;
    let mut n = 0u32;
    while at < payload.len() {
        if payload.len() - at < RECORD_HEADER_BYTES {
            return u32::MAX;
        }
        let len = u32_at(payload, at) as usize;
        if len < RECORD_HEADER_BYTES || len > payload.len() - at {
            return u32::MAX;
        }
        at += len;
        n += 1;
    }
    n
}

/// Bytes a record with `payload_len` payload bytes occupies.
pub(crate) fn record_len(payload_len: usize) -> usize {
    RECORD_HEADER_BYTES + payload_len
}

/// Frames a record of `kind` and `seq` carrying the concatenation of `parts` into `out` (exactly
/// [`record_len`] of the parts' total length). Its generation and checksum are filled in by
/// [`seal_records`] once the segment it lands in is known.
pub(crate) fn frame_record(out: &mut [u8], seq: u64, kind: u8, parts: &[&[u8]]) {
    let payload_len: usize = parts.iter().map(|p| p.len()).sum();
    assert_eq!(out.len(), record_len(payload_len), "record buffer size");
    let len = u32::try_from(out.len()).expect("record fits u32");
    out[0..4].copy_from_slice(&len.to_le_bytes());
    out[4..16].fill(0);
    out[16..24].copy_from_slice(&seq.to_le_bytes());
    out[24] = kind;
    out[25..32].fill(0);
    let mut at = RECORD_HEADER_BYTES;
    for p in parts {
        out[at..at + p.len()].copy_from_slice(p);
        at += p.len();
    }
}

/// Fills in generation and checksum of every framed record in `records` (back to back).
pub(crate) fn seal_records(records: &mut [u8], generation: u64, nonce: u64) {
    let mut at = 0usize;
    while at < records.len() {
        let len = u32_at(records, at) as usize;
        assert!(
            len >= RECORD_HEADER_BYTES && at + len <= records.len(),
            "framing"
        );
        let rec = &mut records[at..at + len];
        rec[8..16].copy_from_slice(&generation.to_le_bytes());
        let crc = crc_with_nonce(nonce, &rec[8..]);
        rec[4..8].copy_from_slice(&crc.to_le_bytes());
        at += len;
    }
}

/// A framed and sealed record (one step; tests and single-record writers).
#[cfg(test)]
pub(crate) fn encode_record(
    out: &mut [u8],
    generation: u64,
    nonce: u64,
    seq: u64,
    kind: u8,
    parts: &[&[u8]],
) {
    frame_record(out, seq, kind, parts);
    seal_records(out, generation, nonce);
}

/// The record that `b` starts with and exactly spans, verified against its segment generation.
pub(crate) fn decode_record(
    b: &[u8],
    generation: u64,
    nonce: u64,
) -> Result<RecordView<'_>, &'static str> {
    if b.len() < RECORD_HEADER_BYTES {
        return Err("record shorter than its header");
    }
    let len = u32_at(b, 0) as usize;
    if len != b.len() {
        return Err("record length does not match its location");
    }
    if crc_with_nonce(nonce, &b[8..]) != u32_at(b, 4) {
        return Err("record checksum mismatch");
    }
    if u64_at(b, 8) != generation {
        return Err("record of another segment generation");
    }
    Ok(RecordView {
        seq: u64_at(b, 16),
        kind: b[24],
        payload: &b[RECORD_HEADER_BYTES..],
    })
}

/// Calls `f(offset_in_payload, record)` for each record of a verified batch payload.
pub(crate) fn for_each_record<'a>(
    payload: &'a [u8],
    generation: u64,
    nonce: u64,
    mut f: impl FnMut(usize, RecordView<'a>),
) -> Result<(), &'static str> {
    let mut at = 0usize;
    while at < payload.len() {
        let len = u32_at(payload, at) as usize;
        let rec = decode_record(&payload[at..at + len], generation, nonce)?;
        f(at, rec);
        at += len;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seq: u64, kind: u8, parts: &[&[u8]]) -> Vec<u8> {
        let n: usize = parts.iter().map(|p| p.len()).sum();
        let mut out = vec![0u8; record_len(n)];
        encode_record(&mut out, 7, 99, seq, kind, parts);
        out
    }

    #[test]
    fn records_round_trip_and_reject_any_change() {
        let r = record(42, 3, &[b"key", b"", b"data"]);
        let v = decode_record(&r, 7, 99).unwrap();
        assert_eq!((v.seq, v.kind, v.payload), (42, 3, &b"keydata"[..]));
        assert!(decode_record(&r, 8, 99).is_err(), "other generation");
        assert!(decode_record(&r, 7, 98).is_err(), "other nonce");
        for i in 0..r.len() {
            let mut bad = r.clone();
            bad[i] ^= 0x10;
            assert!(decode_record(&bad, 7, 99).is_err(), "flip at {i} accepted");
        }
        assert!(decode_record(&r[..r.len() - 1], 7, 99).is_err());
    }

    #[test]
    fn batch_headers_are_bound_to_generation_and_nonce() {
        let payload = [record(1, 1, &[b"a"]), record(2, 1, &[b"bc"])].concat();
        let h = BatchHeader::for_payload(7, 1, 99, &payload);
        assert_eq!(h.record_count, 2);
        let enc = h.encode(99);
        let d = BatchHeader::decode(&enc, 7, 99).unwrap();
        assert_eq!(d, h);
        assert!(d.payload_matches(99, &payload));
        assert!(!d.payload_matches(99, &payload[..payload.len() - 1]));
        assert!(
            BatchHeader::decode(&enc, 6, 99).is_none(),
            "stale generation"
        );
        assert!(BatchHeader::decode(&enc, 7, 98).is_none(), "other nonce");
        let mut n = 0;
        for_each_record(&payload, 7, 99, |_, r| {
            n += 1;
            assert_eq!(r.seq, n);
        })
        .unwrap();
        assert_eq!(n, 2);
        assert_eq!(h.span_bytes(SECTOR_BYTES), SECTOR_BYTES);
        assert_eq!(h.span_bytes(4096), 4096);
    }

    #[test]
    fn segment_header_round_trips_and_detects_damage() {
        let h = SegmentHeader {
            id: 5,
            generation: 2,
            nonce: 0xdead_beef,
            created_ms: 1,
            block_bytes: 4096,
            size_bytes: 1 << 20,
        };
        let b = h.encode();
        assert_eq!(SegmentHeader::decode(&b), Ok(h));
        let mut bad = b;
        bad[20] ^= 1;
        assert!(SegmentHeader::decode(&bad).is_err());
        assert!(SegmentHeader::decode(&[0u8; 512]).is_err());
    }
}
