//! Ingest: the one pipeline every object write takes — PutObject, UploadPart, CopyObject and
//! UploadPartCopy alike:
//!
//! ```text
//! body source (HTTP framing | aws-chunked decoding | a stored object)
//!     -> hashing (signed SHA-256, client checksum) in the DMA buffer as it is read
//!     -> storage's ObjectWriter (O_DIRECT staging) -> verified -> StagedObject -> commit
//!          \-> each full buffer, shared while the disk writes it -> the core's MD5 lanes
//! ```
//!
//! Invariants: bytes are read straight into the writer's DMA buffer and hashed there (no copy
//! between socket and disk buffer for plain bodies); MD5 sees every full buffer the writer
//! offers and then the rest it holds, in order, so it covers the body exactly once; nothing is staged past the size limit; a
//! source that ends short, or any digest that does not match, aborts the writer (its file is
//! removed) and nothing becomes visible; the record's size, MD5, time and checksum are filled
//! in from the bytes actually received.

pub mod aws_chunked;
pub(crate) mod expectations;

pub(crate) use expectations::{body_expectations, expectations_from_headers};

use crate::auth::PayloadCheck;
use crate::digest::{BodyDigests, ChecksumAlgorithm, Digests, Expectations};
use crate::http::body::BodyReader;
use crate::s3::error::S3Error;
use crate::s3::Request;
use crate::storage::{Chunk, ObjectRecord, ObjectStream, StagedObject, Store, StoredChecksum};
use aws_chunked::{AwsChunkedDecoder, ChunkMode};

/// Largest object a single PutObject may carry (S3's limit).
pub(crate) const PUT_OBJECT_MAX_BYTES: u64 = 5 * 1024 * 1024 * 1024;
/// Largest single part of a multipart upload (S3's limit).
pub(crate) const PART_SIZE_MAX_BYTES: u64 = 5 * 1024 * 1024 * 1024;
/// Read size while collecting a small (XML) request body.
const SMALL_BODY_READ_BYTES: usize = 64 * 1024;

/// Anything that yields an object's bytes in order.
#[allow(async_fn_in_trait)]
pub trait BodySource {
    /// Reads up to `dst.len()` bytes; `Ok(0)` means the end.
    async fn read(&mut self, dst: &mut [u8]) -> Result<usize, S3Error>;

    /// A checksum that arrived after the bytes (an aws-chunked trailer); asked once `read`
    /// returned 0.
    fn trailer_checksum(&self) -> Option<(ChecksumAlgorithm, Vec<u8>)> {
        None
    }
}

impl BodySource for BodyReader<'_> {
    async fn read(&mut self, dst: &mut [u8]) -> Result<usize, S3Error> {
        Ok(BodyReader::read(self, dst).await?)
    }
}

/// An `aws-chunked` request body, decoded on the fly (payload bytes land directly in `dst`).
pub(crate) struct AwsChunkedBody<'a, 'c> {
    body: &'a mut BodyReader<'c>,
    decoder: Box<AwsChunkedDecoder>,
}

impl BodySource for AwsChunkedBody<'_, '_> {
    async fn read(&mut self, dst: &mut [u8]) -> Result<usize, S3Error> {
        self.decoder.read(self.body, dst).await
    }

    fn trailer_checksum(&self) -> Option<(ChecksumAlgorithm, Vec<u8>)> {
        self.decoder.trailer_checksum()
    }
}

/// A byte range of a stored object (the source of a copy).
pub(crate) struct ObjectSource {
    stream: ObjectStream,
    /// The slice being handed out and how much of it is gone.
    pending: Option<(Chunk, usize)>,
}

impl ObjectSource {
    pub(crate) fn new(stream: ObjectStream) -> ObjectSource {
        ObjectSource {
            stream,
            pending: None,
        }
    }
}

impl BodySource for ObjectSource {
    async fn read(&mut self, dst: &mut [u8]) -> Result<usize, S3Error> {
        if self.pending.is_none() {
            let chunk = self
                .stream
                .next_chunk()
                .await
                .map_err(|e| S3Error::internal("reading the copy source", e))?;
            match chunk {
                Some(chunk) => self.pending = Some((chunk, 0)),
                None => return Ok(0),
            }
        }
        let (chunk, off) = self.pending.as_mut().expect("a pending chunk");
        let n = (chunk.len() - *off).min(dst.len());
        dst[..n].copy_from_slice(&chunk[*off..*off + n]);
        *off += n;
        if *off == chunk.len() {
            self.pending = None;
        }
        Ok(n)
    }
}

fn too_large(size_max_bytes: u64) -> S3Error {
    crate::s3err!(
        EntityTooLarge,
        "Your proposed upload exceeds the maximum allowed object size of {size_max_bytes} bytes."
    )
}

/// Streams a request's body (plain or aws-chunked) into a staged object with `record`'s
/// metadata, after checking its declared lengths against `size_max_bytes`.
pub(crate) async fn ingest_request_body(
    store: &Store,
    req: &Request<'_>,
    body: &mut BodyReader<'_>,
    record: ObjectRecord,
    size_max_bytes: u64,
    default_checksum: Option<ChecksumAlgorithm>,
) -> Result<StagedObject, S3Error> {
    let declared = body.declared_length();
    if declared.is_none() && !body.is_chunked() {
        return Err(crate::s3err!(
            MissingContentLength,
            "You must provide the Content-Length HTTP header."
        ));
    }
    if declared.is_some_and(|n| n > size_max_bytes) {
        return Err(too_large(size_max_bytes));
    }
    let mut expectations = body_expectations(req)?;
    if expectations.checksum.is_none() {
        expectations.checksum = default_checksum.map(|a| (a, None));
    }
    let digests = BodyDigests::new(expectations);
    let mode = match &req.auth.payload {
        PayloadCheck::StreamingSigned(signer) => ChunkMode::Signed(signer.clone()),
        PayloadCheck::StreamingUnsignedTrailer => ChunkMode::Unsigned,
        PayloadCheck::Sha256(_) | PayloadCheck::Unsigned => {
            return ingest(store, record, digests, body, declared, size_max_bytes).await;
        }
    };
    let decoded = decoded_content_length(req)?;
    if decoded.is_some_and(|n| n > size_max_bytes) {
        return Err(too_large(size_max_bytes));
    }
    let trailer = req
        .head
        .header("x-amz-trailer")
        .map(|t| t.to_ascii_lowercase());
    let mut source = AwsChunkedBody {
        body,
        decoder: Box::new(AwsChunkedDecoder::new(mode, trailer, decoded)),
    };
    ingest(store, record, digests, &mut source, decoded, size_max_bytes).await
}

/// `X-Amz-Decoded-Content-Length` of an aws-chunked body (the object's size).
fn decoded_content_length(req: &Request<'_>) -> Result<Option<u64>, S3Error> {
    match req.head.header("x-amz-decoded-content-length") {
        None => Ok(None),
        Some(v) => v.parse::<u64>().map(Some).map_err(|_| {
            crate::s3err!(
                InvalidArgument,
                "Invalid x-amz-decoded-content-length header."
            )
        }),
    }
}

/// Streams `source` into a new staged object with `record`'s metadata, verifying `digests`.
/// `size_hint` is the expected size when known (it sizes the first DMA buffer).
pub(crate) async fn ingest<S: BodySource>(
    store: &Store,
    mut record: ObjectRecord,
    mut digests: BodyDigests,
    source: &mut S,
    size_hint: Option<u64>,
    size_max_bytes: u64,
) -> Result<StagedObject, S3Error> {
    let mut writer = store.object_writer(&record, size_hint).await?;
    let streamed = stream_into(&mut writer, &mut digests, source, size_max_bytes).await;
    if streamed.is_ok() {
        digests.settle_md5(writer.pending_body()).await;
    }
    let digests: Digests = match streamed.and_then(|()| Ok(digests.finish()?)) {
        Ok(d) => d,
        Err(e) => {
            writer.abort().await;
            return Err(e);
        }
    };
    assert!(writer.size() <= size_max_bytes);
    record.size = writer.size();
    record.md5 = digests.md5;
    record.last_modified_ms = crate::clock::now_ms();
    record.checksum = digests.checksum.map(|(algo, value_b64)| StoredChecksum {
        algorithm: algo.name().to_string(),
        value_b64,
        full_object: true,
    });
    Ok(writer.finish(record).await?)
}

async fn stream_into<S: BodySource>(
    writer: &mut crate::storage::ObjectWriter,
    digests: &mut BodyDigests,
    source: &mut S,
    size_max_bytes: u64,
) -> Result<(), S3Error> {
    loop {
        let spare = writer.spare();
        let n = source.read(spare).await?;
        if n == 0 {
            if let Some((algo, value)) = source.trailer_checksum() {
                digests.set_trailer_checksum(algo, value);
            }
            return Ok(());
        }
        digests.update_checks(&spare[..n]);
        if writer.size() + n as u64 > size_max_bytes {
            return Err(too_large(size_max_bytes));
        }
        writer.advance(n).await?;
        while let Some(filled) = writer.take_filled() {
            digests.push_md5(Box::new(filled)).await;
        }
    }
}

/// Reads a whole small body (XML documents), verifying its digests.
pub(crate) async fn read_small_body(
    req: &Request<'_>,
    body: &mut BodyReader<'_>,
    max_bytes: usize,
) -> Result<(Vec<u8>, Digests), S3Error> {
    read_small_body_expecting(body, max_bytes, body_expectations(req)?).await
}

/// [`read_small_body`] checked against `expectations` (CompleteMultipartUpload: its
/// `x-amz-checksum-*` headers are the object's checksum, not the request body's).
pub(crate) async fn read_small_body_expecting(
    body: &mut BodyReader<'_>,
    max_bytes: usize,
    expectations: Expectations,
) -> Result<(Vec<u8>, Digests), S3Error> {
    let mut digests = BodyDigests::new(expectations);
    let mut out = Vec::new();
    let mut chunk = vec![0u8; SMALL_BODY_READ_BYTES];
    loop {
        let n = body.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        if out.len() + n > max_bytes {
            return Err(crate::s3err!(
                MalformedXML,
                "The request body is larger than the {max_bytes} bytes this operation accepts."
            ));
        }
        digests.update(&chunk[..n]);
        out.extend_from_slice(&chunk[..n]);
    }
    let d = digests.finish()?;
    Ok((out, d))
}
