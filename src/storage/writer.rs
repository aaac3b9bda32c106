//! Staging writer: streams an object's bytes into a staging file with O_DIRECT io_uring writes.
//!
//! The caller receives body bytes straight into [`StagingWriter::spare`] (a DMA-aligned buffer),
//! hashes them there, then calls [`StagingWriter::advance`]; full buffers are written with up to
//! [`WRITES_IN_FLIGHT_MAX`] writes outstanding. [`StagingWriter::finish`] writes the header block,
//! fdatasyncs and closes: after it returns the staging file is durable and whole, ready to be
//! renamed into place by the bucket's owner core.
//!
//! The first buffer reserves the header block at its front, so an object that fits in it (every
//! small object) reaches the disk in one write, header included; larger objects write the header
//! block last, over the zeros the first buffer carried.
//!
//! Every buffer is granted by the upload memory budget (`budget.rs`) and given back when its
//! write completes or the writer goes away, and no earlier than the last [`FilledBody`] sharing
//! it is dropped: each full buffer's body bytes are offered, read-only, to the caller (who hashes
//! them on the core's MD5 lanes while the disk writes them).
//!
//! Invariants: every write position and length is a multiple of [`BLOCK_BYTES`]; the final file
//! length is exactly `header_len + size`; a writer that is not finished is aborted (file removed);
//! a writer holds at most one buffer besides the [`WRITES_IN_FLIGHT_MAX`] being written.

use crate::storage::budget::{Grant, UploadBudget};
use crate::storage::record::{round_up, ObjectRecord, BLOCK_BYTES};
use glommio::io::{DmaBuffer, DmaFile, OpenOptions};
use glommio::task::JoinHandle;
use std::collections::VecDeque;
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

/// Size of one DMA write buffer.
pub(crate) const WRITE_BUFFER_BYTES: usize = 1024 * 1024;
/// Buffers being written to disk at once per upload.
pub(crate) const WRITES_IN_FLIGHT_MAX: usize = 4;

pub(crate) struct StagingWriter {
    file: Rc<DmaFile>,
    path: PathBuf,
    header_len: usize,
    /// File offset where `buf` will be written.
    pos: u64,
    /// The buffer being filled and its memory grant (`None` only inside `advance`/`finish`).
    buf: Option<(DmaBuffer, Grant)>,
    budget: Arc<UploadBudget>,
    /// Bytes at the front of `buf` reserved for the header (first buffer only, until written).
    skip: usize,
    /// Body bytes in `buf` after the reserved front.
    fill: usize,
    inflight: VecDeque<JoinHandle<io::Result<usize>>>,
    /// Body bytes of buffers submitted by `advance`, for the caller to take.
    filled: VecDeque<FilledBody>,
    size: u64,
    size_hint: Option<u64>,
}

/// The body bytes of a buffer on its way to disk, shared read-only with the write; holds the
/// buffer's memory grant.
pub(crate) struct FilledBody {
    buf: Rc<DmaBuffer>,
    /// Where the body starts (after the header block reserved in the first buffer).
    start: usize,
    _grant: Rc<Grant>,
}

impl AsRef<[u8]> for FilledBody {
    fn as_ref(&self) -> &[u8] {
        &self.buf.as_bytes()[self.start..]
    }
}

fn to_io(e: glommio::GlommioError<()>) -> io::Error {
    io::Error::from(e)
}

impl StagingWriter {
    /// Creates the staging file; the body will start at offset `header_len`.
    /// `size_hint` (the declared body length, when known) sizes the first buffer.
    pub(crate) async fn create(
        path: &Path,
        header_len: usize,
        size_hint: Option<u64>,
        budget: &Arc<UploadBudget>,
    ) -> io::Result<StagingWriter> {
        assert!(header_len.is_multiple_of(BLOCK_BYTES));
        // The first buffer reserves the header block at its front: a small object then goes to
        // disk in a single write, header included, once its digests are known.
        // (+1: a body of exactly the hinted size must not fill it, or it would be written early.)
        let len = header_len + budget.buffer_len(buffer_len_for(size_hint.map(|h| h + 1)));
        let grant = budget.acquire(len).await;
        let file = create_new_dma(path).await?;
        let file = Rc::new(file);
        let mut buf = file.alloc_dma_buffer(len);
        buf.as_bytes_mut()[..header_len].fill(0);
        Ok(StagingWriter {
            file,
            path: path.to_path_buf(),
            header_len,
            pos: 0,
            buf: Some((buf, grant)),
            budget: budget.clone(),
            skip: header_len,
            fill: 0,
            inflight: VecDeque::new(),
            filled: VecDeque::new(),
            size: 0,
            size_hint,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes accepted so far.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// The free tail of the current DMA buffer: read body bytes straight into it.
    pub(crate) fn spare(&mut self) -> &mut [u8] {
        let start = self.skip + self.fill;
        let (buf, _) = self.buf.as_mut().expect("a buffer to fill");
        &mut buf.as_bytes_mut()[start..]
    }

    /// Accepts `n` bytes just placed into [`Self::spare`]; writes the buffer out when full,
    /// then waits for the upload memory budget to grant the next one (backpressure: no more of
    /// the body is read meanwhile). The full buffer goes first, so waiting holds no buffer.
    pub(crate) async fn advance(&mut self, n: usize) -> io::Result<()> {
        let len = self.buf.as_ref().expect("a buffer").0.len();
        assert!(self.skip + self.fill + n <= len);
        self.fill += n;
        self.size += n as u64;
        if self.skip + self.fill == len {
            let full = self.buf.take().expect("a buffer");
            let body_start = self.skip;
            self.fill = 0;
            self.skip = 0;
            let (buf, grant) = self.submit(full).await?;
            self.filled.push_back(FilledBody {
                buf,
                start: body_start,
                _grant: grant,
            });
            let remaining = self.size_hint.map(|h| h.saturating_sub(self.size));
            let len = self
                .budget
                .buffer_len(buffer_len_for(remaining.filter(|r| *r > 0)));
            let grant = self.budget.acquire(len).await;
            self.buf = Some((self.file.alloc_dma_buffer(len), grant));
        }
        Ok(())
    }

    /// The body bytes of the next buffer written by [`Self::advance`], in order. Buffers not
    /// taken stay (with their grants) until the writer finishes or is dropped, so a caller that
    /// writes more than a buffer takes them.
    pub(crate) fn take_filled(&mut self) -> Option<FilledBody> {
        self.filled.pop_front()
    }

    /// The body bytes accepted but not yet offered by [`Self::take_filled`] (the current
    /// buffer's).
    pub(crate) fn pending_body(&self) -> &[u8] {
        let (buf, _) = self.buf.as_ref().expect("a buffer");
        &buf.as_bytes()[self.skip..self.skip + self.fill]
    }

    /// Writes `buf` at the next position; returns it and its grant, shared with the write.
    async fn submit(
        &mut self,
        (buf, grant): (DmaBuffer, Grant),
    ) -> io::Result<(Rc<DmaBuffer>, Rc<Grant>)> {
        while self.inflight.len() >= WRITES_IN_FLIGHT_MAX {
            self.wait_oldest().await?;
        }
        let len = buf.len();
        let pos = self.pos;
        assert!(pos.is_multiple_of(BLOCK_BYTES as u64) && len.is_multiple_of(BLOCK_BYTES));
        self.pos += len as u64;
        let file = self.file.clone();
        let (buf, grant) = (Rc::new(buf), Rc::new(grant));
        let shared = (buf.clone(), grant.clone());
        let task = glommio::spawn_local(async move {
            // The grant goes back when the buffer is freed: after the write and after any
            // FilledBody sharing it.
            let _grant = grant;
            let written = file.write_rc_at(buf, pos).await.map_err(to_io)?;
            if written != len {
                // O_DIRECT writes come back short when the filesystem fills up.
                return Err(io::Error::new(
                    io::ErrorKind::StorageFull,
                    "short write: no space left on device",
                ));
            }
            Ok(written)
        })
        .detach();
        self.inflight.push_back(task);
        Ok(shared)
    }

    async fn wait_oldest(&mut self) -> io::Result<()> {
        if let Some(t) = self.inflight.pop_front() {
            match t.await {
                Some(r) => {
                    r?;
                }
                None => return Err(io::Error::other("write task cancelled")),
            }
        }
        Ok(())
    }

    /// Flushes the tail, writes the header for `record`, fdatasyncs and closes the file.
    /// `record.size` must equal the bytes accepted.
    pub(crate) async fn finish(mut self, record: &ObjectRecord, sync: bool) -> io::Result<PathBuf> {
        assert_eq!(record.size, self.size);
        assert!(record.header_len() <= self.header_len);
        if self.skip > 0 {
            // Nothing written yet: header and body leave in one write at offset 0.
            let used = self.skip + self.fill;
            let padded = round_up(used, BLOCK_BYTES);
            let (mut only, grant) = self.buf.take().expect("a buffer");
            record.encode_header(self.header_len, &mut only.as_bytes_mut()[..self.header_len]);
            only.as_bytes_mut()[used..padded].fill(0);
            only.trim_to_size(padded);
            self.skip = 0;
            self.fill = 0;
            self.submit((only, grant)).await?;
            while !self.inflight.is_empty() {
                self.wait_oldest().await?;
            }
        } else {
            let (mut tail, grant) = self.buf.take().expect("a buffer");
            if self.fill > 0 {
                let padded = round_up(self.fill, BLOCK_BYTES);
                tail.as_bytes_mut()[self.fill..padded].fill(0);
                tail.trim_to_size(padded);
                self.fill = 0;
                self.submit((tail, grant)).await?;
            }
            while !self.inflight.is_empty() {
                self.wait_oldest().await?;
            }
            // The header block last: the first buffer carried zeros in its place.
            let mut header = self.file.alloc_dma_buffer(self.header_len);
            record.encode_header(self.header_len, header.as_bytes_mut());
            let written = self.file.write_at(header, 0).await.map_err(to_io)?;
            if written != self.header_len {
                return Err(io::Error::new(
                    io::ErrorKind::StorageFull,
                    "short header write",
                ));
            }
        }
        let final_len = self.header_len as u64 + self.size;
        if self.pos != final_len {
            self.file.truncate(final_len).await.map_err(to_io)?;
        }
        if sync {
            self.file.fdatasync().await.map_err(to_io)?;
        }
        let path = self.path.clone();
        close_rc(self.file).await?;
        Ok(path)
    }

    /// Abandons the upload: waits for writes in flight, closes and removes the staging file.
    pub(crate) async fn abort(mut self) {
        while !self.inflight.is_empty() {
            let _ = self.wait_oldest().await;
        }
        let _ = glommio::io::remove(&self.path).await;
        let _ = close_rc(self.file).await;
    }
}

async fn close_rc(file: Rc<DmaFile>) -> io::Result<()> {
    match Rc::try_unwrap(file) {
        Ok(f) => f.close().await.map_err(to_io),
        Err(_) => Err(io::Error::other("file still shared at close")),
    }
}

/// Creates `path` (which must not exist) for O_DIRECT writing.
async fn create_new_dma(path: &Path) -> io::Result<DmaFile> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .dma_open(path)
        .await
        .map_err(to_io)
}

fn buffer_len_for(remaining: Option<u64>) -> usize {
    match remaining {
        Some(r) => round_up((r as usize).clamp(1, WRITE_BUFFER_BYTES), BLOCK_BYTES),
        None => WRITE_BUFFER_BYTES,
    }
}

/// Writes a file that holds only a record header (a multipart object's record), durably.
pub(crate) async fn write_record_file(
    path: &Path,
    record: &ObjectRecord,
    sync: bool,
) -> io::Result<()> {
    let header_len = record.header_len();
    let file = create_new_dma(path).await?;
    let mut header = file.alloc_dma_buffer(header_len);
    record.encode_header(header_len, header.as_bytes_mut());
    let result = async {
        let written = file.write_at(header, 0).await.map_err(to_io)?;
        if written != header_len {
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "short header write",
            ));
        }
        if sync {
            file.fdatasync().await.map_err(to_io)?;
        }
        Ok(())
    }
    .await;
    let _ = file.close().await;
    if result.is_err() {
        let _ = glommio::io::remove(path).await;
    }
    result
}
