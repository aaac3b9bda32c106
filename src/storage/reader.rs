//! Object reader: opens an object file, decodes its header, and streams byte ranges of its data
//! with O_DIRECT io_uring reads, several in flight, handing out slices of the DMA buffers
//! themselves (no copy between disk buffer and socket write). Objects stored inline and
//! objects from the read cache stream from memory; a whole-object stream of a cacheable object
//! copies its bytes aside and fills the cache when it completes.
//!
//! Dropping an [`OpenObject`] or [`ObjectStream`] closes its files (glommio closes a dropped file
//! asynchronously), so no early return needs a manual close.
//!
//! Invariants: the record read is the one inside the opened file, so a concurrent overwrite or
//! delete never mixes two objects (the open file is a consistent snapshot); reads never go past
//! `header_len + size`.

use crate::storage::cache::{CachedObject, ReadCache};
use crate::storage::error::{StorageError, StorageResult};
use crate::storage::layout::Layout;
use crate::storage::log::reader::ReadRecord;
use crate::storage::record::{ObjectRecord, BLOCK_BYTES, HEADER_MAX_BYTES};
use bytes::Bytes;
use glommio::io::{DmaFile, ReadResult};
use glommio::task::JoinHandle;
use std::collections::VecDeque;
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

/// First read of an object: the header plus, for small objects, all of the data.
pub(crate) const FIRST_READ_BYTES: usize = 64 * 1024;
/// Size of each streaming read.
pub(crate) const READ_CHUNK_BYTES: usize = 512 * 1024;
/// Streaming reads outstanding at once.
pub(crate) const READS_IN_FLIGHT_MAX: usize = 4;
/// Part files opened up front per GET (kept open, so a racing overwrite cannot unlink them away).
pub(crate) const PARTS_PINNED_MAX: usize = 256;

fn to_io(e: glommio::GlommioError<()>) -> io::Error {
    io::Error::from(e)
}

/// A piece of an object's bytes: a slice of a DMA read buffer, or of a cached body.
pub(crate) enum Chunk {
    Dma(ReadResult),
    Shared(Bytes),
}

impl std::ops::Deref for Chunk {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Chunk::Dma(r) => r,
            Chunk::Shared(b) => b,
        }
    }
}

/// Where an open object's bytes come from.
enum Source {
    /// A file: `first` is its first read (the header, and the start of the data).
    File {
        file: Rc<DmaFile>,
        first: ReadResult,
    },
    /// Inline in a log record: all of the data.
    Inline(ReadResult),
    /// The read cache: all of the data.
    Cached(Bytes),
}

/// An open object: its record and where its bytes are.
pub(crate) struct OpenObject {
    source: Source,
    /// Shared with the read cache (a hit clones no strings).
    pub(crate) record: Arc<ObjectRecord>,
    header_len: usize,
    /// Directory holding the part files of a multipart object's upload.
    parts_dir: Option<PathBuf>,
    /// Streaming all of it fills the read cache under this version's sequence number.
    fill: Option<(Arc<ReadCache>, u64)>,
}

impl OpenObject {
    /// Opens `path`; `Ok(None)` when it does not exist. `bucket` (the layout and the bucket's
    /// name) locates a multipart object's part files; a part file itself is opened without.
    pub(crate) async fn open(
        path: &Path,
        bucket: Option<(&Layout, &str)>,
    ) -> io::Result<Option<OpenObject>> {
        let file = match DmaFile::open(path).await {
            Ok(f) => f,
            Err(e) => {
                let e = to_io(e);
                if e.kind() == io::ErrorKind::NotFound {
                    return Ok(None);
                }
                return Err(e);
            }
        };
        let mut first = file
            .read_at_aligned(0, FIRST_READ_BYTES)
            .await
            .map_err(to_io)?;
        let header_len = ObjectRecord::peek_header_len(&first).map_err(corrupt)?;
        if header_len > first.len() {
            assert!(header_len <= HEADER_MAX_BYTES);
            first = file.read_at_aligned(0, header_len).await.map_err(to_io)?;
        }
        let (record, header_len) = ObjectRecord::decode_header(&first).map_err(corrupt)?;
        let parts_dir = match (&record.parts, bucket) {
            (Some(p), Some((layout, name))) => Some(layout.upload_dir(name, &p.upload_id)),
            _ => None,
        };
        Ok(Some(OpenObject {
            source: Source::File {
                file: Rc::new(file),
                first,
            },
            record: Arc::new(record),
            header_len,
            parts_dir,
            fill: None,
        }))
    }

    /// An object version served from the read cache.
    pub(crate) fn cached(hit: &CachedObject) -> OpenObject {
        OpenObject {
            source: Source::Cached(hit.data.clone()),
            record: hit.record.clone(),
            header_len: 0,
            parts_dir: None,
            fill: None,
        }
    }

    /// Streaming this object whole puts it into `cache` as version `seq`.
    pub(crate) fn fill_cache(&mut self, cache: &Arc<ReadCache>, seq: u64) {
        if cache.admits(self.record.size) {
            self.fill = Some((cache.clone(), seq));
        }
    }

    /// An object stored inline in the log record `rec` (verified by the log reader).
    pub(crate) fn inline(rec: ReadRecord) -> io::Result<OpenObject> {
        if rec.kind() != crate::storage::entry::KIND_PUT_INLINE {
            return Err(corrupt("index names a record that is not an object".into()));
        }
        let (record, data_at) = crate::storage::entry::decode_inline(rec.payload())
            .map_err(|m| corrupt(format!("inline record: {m}")))?;
        let first = rec
            .payload_slice(data_at, record.size as usize)
            .ok_or_else(|| corrupt("inline record shorter than its object".into()))?;
        Ok(OpenObject {
            source: Source::Inline(first),
            record: Arc::new(record),
            header_len: 0,
            parts_dir: None,
            fill: None,
        })
    }

    /// Streams `len` data bytes starting at data offset `start` (across part files if needed).
    ///
    /// The first [`PARTS_PINNED_MAX`] part files of the range are opened now, so a concurrent
    /// overwrite or delete (which unlinks them) cannot cut the response short; a part that is
    /// already gone gives `NotFound` before any byte is sent (the caller re-opens the object).
    ///
    /// A vanished part file means the object changed under us: [`StorageError::ObjectChanged`].
    pub(crate) async fn stream(self, start: u64, len: u64) -> StorageResult<ObjectStream> {
        self.stream_io(start, len).await.map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                StorageError::ObjectChanged
            } else {
                StorageError::io("reading the object", e)
            }
        })
    }

    async fn stream_io(self, start: u64, len: u64) -> io::Result<ObjectStream> {
        assert!(start + len <= self.record.size);
        let whole = start == 0 && len == self.record.size && len > 0;
        let fill = match self.fill {
            Some((cache, seq)) if whole => Some(Filler {
                cache,
                seq,
                record: self.record.clone(),
                data: Vec::with_capacity(len as usize),
            }),
            _ => None,
        };
        let mut pending = VecDeque::new();
        let (file, first) = match self.source {
            Source::File { file, first } => (file, first),
            Source::Inline(data) => {
                let bytes = ReadResult::slice(&data, start as usize, len as usize)
                    .ok_or_else(|| io::Error::other("slice"))?;
                if len > 0 {
                    pending.push_back(Segment::Bytes(Chunk::Dma(bytes)));
                }
                return Ok(ObjectStream::new(None, pending, len, fill));
            }
            Source::Cached(data) => {
                let (a, b) = (start as usize, (start + len) as usize);
                if len > 0 {
                    pending.push_back(Segment::Bytes(Chunk::Shared(data.slice(a..b))));
                }
                return Ok(ObjectStream::new(None, pending, len, fill));
            }
        };
        let current = match (&self.record.parts, &self.parts_dir) {
            (Some(layout), Some(dir)) => {
                let (mut offset, end) = (0u64, start + len);
                for part in &layout.parts {
                    let (p_start, p_end) = (offset, offset + part.size);
                    offset = p_end;
                    if p_end <= start || p_start >= end || part.size == 0 {
                        continue;
                    }
                    let from = start.max(p_start) - p_start;
                    let to = end.min(p_end) - p_start;
                    let seg = PartSegment {
                        path: crate::storage::layout::part_path(dir, part.number),
                        size: part.size,
                        start: from,
                        len: to - from,
                    };
                    if pending.len() < PARTS_PINNED_MAX {
                        pending.push_back(Segment::Open(seg.open().await?));
                    } else {
                        pending.push_back(Segment::Lazy(seg));
                    }
                }
                None
            }
            _ => Some(FileRange::new(
                file,
                Some(first),
                self.header_len as u64,
                start,
                len,
            )),
        };
        Ok(ObjectStream::new(current, pending, len, fill))
    }

    /// The object's data size (`record.size`).
    pub(crate) fn size(&self) -> u64 {
        self.record.size
    }
}

fn corrupt(msg: String) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("corrupt object file: {msg}"),
    )
}

/// A stretch of one part file still to be streamed.
struct PartSegment {
    path: PathBuf,
    size: u64,
    start: u64,
    len: u64,
}

impl PartSegment {
    /// Opens the part file and checks it is the part the record names.
    async fn open(self) -> io::Result<FileRange> {
        let part = OpenObject::open(&self.path, None).await?.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "part file is gone (object replaced?)",
            )
        })?;
        if part.record.size != self.size || part.record.parts.is_some() {
            return Err(corrupt(format!(
                "part file {} does not match the object record",
                self.path.display()
            )));
        }
        let Source::File { file, first } = part.source else {
            unreachable!("a part is opened from its file");
        };
        Ok(FileRange::new(
            file,
            Some(first),
            part.header_len as u64,
            self.start,
            self.len,
        ))
    }
}

/// A part of the range: already open (pinned), to be opened when reached, or bytes in memory.
enum Segment {
    Open(FileRange),
    Lazy(PartSegment),
    Bytes(Chunk),
}

/// A whole object being streamed, copied aside to enter the read cache once complete.
struct Filler {
    cache: Arc<ReadCache>,
    seq: u64,
    record: Arc<ObjectRecord>,
    data: Vec<u8>,
}

/// A byte range of an object, delivered as buffer slices in order.
pub(crate) struct ObjectStream {
    current: Option<FileRange>,
    pending: VecDeque<Segment>,
    remaining: u64,
    fill: Option<Filler>,
}

impl ObjectStream {
    fn new(
        current: Option<FileRange>,
        pending: VecDeque<Segment>,
        remaining: u64,
        fill: Option<Filler>,
    ) -> ObjectStream {
        ObjectStream {
            current,
            pending,
            remaining,
            fill,
        }
    }

    /// Bytes not yet handed out.
    pub(crate) fn remaining(&self) -> u64 {
        self.remaining
    }

    /// The next slice of the range, or `None` at the end.
    pub(crate) async fn next_chunk(&mut self) -> io::Result<Option<Chunk>> {
        let chunk = self.next_chunk_inner().await?;
        if let (Some(fill), Some(c)) = (&mut self.fill, &chunk) {
            fill.data.extend_from_slice(c);
            if self.remaining == 0 {
                let f = self.fill.take().expect("filling");
                let data = Bytes::from(f.data);
                f.cache.insert(f.seq, f.record, data);
            }
        }
        Ok(chunk)
    }

    async fn next_chunk_inner(&mut self) -> io::Result<Option<Chunk>> {
        loop {
            if let Some(cur) = &mut self.current {
                if let Some(chunk) = cur.next_chunk().await? {
                    self.remaining -= chunk.len() as u64;
                    return Ok(Some(Chunk::Dma(chunk)));
                }
                self.current = None;
            }
            self.current = match self.pending.pop_front() {
                None => return Ok(None),
                Some(Segment::Open(range)) => Some(range),
                Some(Segment::Lazy(seg)) => Some(seg.open().await?),
                Some(Segment::Bytes(bytes)) => {
                    self.remaining -= bytes.len() as u64;
                    return Ok(Some(bytes));
                }
            };
        }
    }
}

/// A byte range of the data in one file, read ahead with several DMA reads in flight.
struct FileRange {
    file: Rc<DmaFile>,
    first: Option<ReadResult>,
    header_len: u64,
    /// Next data offset to hand out.
    next: u64,
    end: u64,
    /// Next aligned file position to issue a read for (0 = not started).
    next_read_pos: u64,
    inflight: VecDeque<(u64, JoinHandle<io::Result<ReadResult>>)>,
}

impl FileRange {
    fn new(
        file: Rc<DmaFile>,
        first: Option<ReadResult>,
        header_len: u64,
        start: u64,
        len: u64,
    ) -> FileRange {
        FileRange {
            file,
            first,
            header_len,
            next: start,
            end: start + len,
            next_read_pos: 0,
            inflight: VecDeque::new(),
        }
    }

    async fn next_chunk(&mut self) -> io::Result<Option<ReadResult>> {
        if self.next >= self.end {
            return Ok(None);
        }
        let file_pos = self.header_len + self.next;
        let want = self.end - self.next;
        // Served from the first read when it covers this position.
        if let Some(first) = &self.first {
            if file_pos < first.len() as u64 {
                let off = file_pos as usize;
                let n = (first.len() - off).min(want as usize);
                let slice =
                    ReadResult::slice(first, off, n).ok_or_else(|| io::Error::other("slice"))?;
                self.next += n as u64;
                return Ok(Some(slice));
            }
            self.first = None;
        }
        if self.next_read_pos == 0 {
            self.next_read_pos = file_pos & !(BLOCK_BYTES as u64 - 1);
        }
        self.fill_pipeline();
        let (chunk_pos, task) = self.inflight.pop_front().expect("pipeline has a read");
        let chunk = task
            .await
            .ok_or_else(|| io::Error::other("read task cancelled"))??;
        self.fill_pipeline();
        let off = (file_pos - chunk_pos) as usize;
        if off >= chunk.len() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "object file shorter than its record",
            ));
        }
        let n = (chunk.len() - off).min(want as usize);
        let slice = ReadResult::slice(&chunk, off, n).ok_or_else(|| io::Error::other("slice"))?;
        self.next += n as u64;
        Ok(Some(slice))
    }

    fn fill_pipeline(&mut self) {
        let file_end = self.header_len + self.end;
        while self.inflight.len() < READS_IN_FLIGHT_MAX && self.next_read_pos < file_end {
            let pos = self.next_read_pos;
            let len = ((file_end - pos) as usize).min(READ_CHUNK_BYTES);
            let len = (len + BLOCK_BYTES - 1) & !(BLOCK_BYTES - 1);
            assert!(
                pos.is_multiple_of(BLOCK_BYTES as u64),
                "O_DIRECT reads are block aligned"
            );
            self.next_read_pos += len as u64;
            let file = self.file.clone();
            let task =
                glommio::spawn_local(
                    async move { file.read_at_aligned(pos, len).await.map_err(to_io) },
                )
                .detach();
            self.inflight.push_back((pos, task));
        }
    }
}
