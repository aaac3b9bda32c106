//! Reading one record back by its location, on any core: segment files are opened once per core
//! and kept (no `open()` by path per request).
//!
//! Invariant: a record is returned only after its length, generation and checksum verified
//! against the segment it was read from, and its sequence number against the one the caller
//! expects — a location that went stale (a reused segment) reads as an error, never as another
//! record's bytes. A record that does not verify against the cached header is read once more
//! after the header is read again (the segment may have been reused since it was opened).

use crate::storage::log::format::{decode_record, SegmentHeader, SEGMENT_HEADER_BYTES};
use crate::storage::log::segment::segment_path;
use crate::storage::log::RecordLocation;
use glommio::io::{DmaFile, ReadResult};
use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::rc::Rc;

/// Most segment files one core keeps open for reading.
const OPEN_SEGMENTS_MAX: usize = 4096;

struct OpenSegment {
    file: DmaFile,
    header: SegmentHeader,
}

/// A verified record read from a segment.
pub(crate) struct ReadRecord {
    buf: ReadResult,
    /// The record's kind (the engine's).
    kind: u8,
    payload_start: usize,
}

impl ReadRecord {
    pub(crate) fn kind(&self) -> u8 {
        self.kind
    }

    pub(crate) fn payload(&self) -> &[u8] {
        &self.buf[self.payload_start..]
    }

    /// `len` payload bytes from payload offset `start`, sharing the read buffer (no copy).
    pub(crate) fn payload_slice(&self, start: usize, len: usize) -> Option<ReadResult> {
        ReadResult::slice(&self.buf, self.payload_start + start, len)
    }
}

/// One core's open segment files.
pub(crate) struct SegmentReaders {
    dir: PathBuf,
    open: RefCell<HashMap<u64, Rc<OpenSegment>>>,
}

impl SegmentReaders {
    pub(crate) fn new(dir: PathBuf) -> SegmentReaders {
        SegmentReaders {
            dir,
            open: RefCell::new(HashMap::new()),
        }
    }

    async fn segment(&self, id: u64, fresh: bool) -> io::Result<Rc<OpenSegment>> {
        let cached = self.open.borrow().get(&id).cloned();
        if let (Some(s), false) = (cached, fresh) {
            return Ok(s);
        }
        let file = DmaFile::open(segment_path(&self.dir, id)).await?;
        let head = file
            .read_at_aligned(0, SEGMENT_HEADER_BYTES as usize)
            .await?;
        let header = SegmentHeader::decode_area(&head)
            .map_err(|why| io::Error::new(io::ErrorKind::InvalidData, why))?;
        let seg = Rc::new(OpenSegment { file, header });
        let mut open = self.open.borrow_mut();
        if open.len() >= OPEN_SEGMENTS_MAX {
            open.clear();
        }
        open.insert(id, seg.clone());
        Ok(seg)
    }

    /// The record at `at`, verified, whose sequence number must be `seq`.
    pub(crate) async fn read(&self, at: RecordLocation, seq: u64) -> io::Result<ReadRecord> {
        match self.read_once(at, seq, false).await {
            Err(e) if e.kind() == io::ErrorKind::InvalidData => self.read_once(at, seq, true).await,
            other => other,
        }
    }

    async fn read_once(&self, at: RecordLocation, seq: u64, fresh: bool) -> io::Result<ReadRecord> {
        let seg = self.segment(at.segment, fresh).await?;
        let buf = seg.file.read_at(at.offset, at.len as usize).await?;
        let bad = |why: &str| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "log segment {} offset {}: {why}",
                    segment_path(&self.dir, at.segment).display(),
                    at.offset
                ),
            )
        };
        let (rec_seq, kind, payload_len) = {
            let rec = decode_record(&buf, seg.header.generation, seg.header.nonce).map_err(&bad)?;
            (rec.seq, rec.kind, rec.payload.len())
        };
        if rec_seq != seq {
            return Err(bad("record sequence differs from the index"));
        }
        Ok(ReadRecord {
            payload_start: buf.len() - payload_len,
            buf,
            kind,
        })
    }
}
