//! PutObject: streams the body into a staging file on this core (hashing it in the DMA buffer
//! it is written from), verifies every digest, then asks the bucket's owner to commit it.
//!
//! Invariants: nothing is visible or listed until the staging file is durable and renamed by
//! the owner; any failure (bad digest, short body, I/O error, missing bucket) removes the staging
//! file; the 200 is sent only after the owner has made the commit durable.

use crate::auth::PayloadCheck;
use crate::digest::{BodyDigests, Digests};
use crate::http::aws_chunked::{AwsChunkedDecoder, ChunkMode};
use crate::http::body::BodyReader;
use crate::http::response::Response;
use crate::runtime::shard::OwnerOp;
use crate::runtime::{CoreCtx, FsyncPolicy};
use crate::s3::bucket_name::validate_object_key;
use crate::s3::error::S3Error;
use crate::s3::ops::{body_expectations, ensure_bucket, metadata_from_headers, quoted};
use crate::s3::Request;
use crate::storage::index::WriteCondition;
use crate::storage::reader::ObjectStream;
use crate::storage::record::{ObjectRecord, StoredChecksum};
use crate::storage::writer::StagingWriter;
use glommio::io::ReadResult;

/// Largest object a single PutObject may carry (S3's limit).
pub const PUT_OBJECT_MAX_BYTES: u64 = 5 * 1024 * 1024 * 1024;

pub async fn put_object(
    ctx: &CoreCtx,
    req: &Request<'_>,
    body: &mut BodyReader<'_>,
) -> Result<Response, S3Error> {
    let (bucket, key) = (&req.routed.bucket, &req.routed.key);
    validate_object_key(key)?;
    let (system_headers, user_metadata) = metadata_from_headers(req.head)?;
    ensure_bucket(ctx, bucket).await?;
    let record = ObjectRecord {
        system_headers,
        user_metadata,
        ..ObjectRecord::new(key)
    };
    let condition = write_condition(req.head)?;
    let staged = stage_request_body(ctx, req, body, record).await?;
    commit(ctx, bucket, key, &staged, condition).await?;
    Ok(stored_response(&staged.record))
}

/// 200 with the ETag and the checksum the client sent (echoed, as S3 does).
pub fn stored_response(record: &ObjectRecord) -> Response {
    let mut resp = Response::new(200).header("ETag", quoted(&record.etag()));
    if let Some(c) = &record.checksum {
        resp.push_header(
            &format!("x-amz-checksum-{}", c.algorithm),
            c.value_b64.clone(),
        );
    }
    resp
}

/// Checks the request's length headers and streams its body into a staging file.
pub async fn stage_request_body(
    ctx: &CoreCtx,
    req: &Request<'_>,
    body: &mut BodyReader<'_>,
    record: ObjectRecord,
) -> Result<Staged, S3Error> {
    let declared = body.declared_length();
    if declared.is_none() && !body.is_chunked() {
        return Err(crate::s3err!(
            MissingContentLength,
            "You must provide the Content-Length HTTP header."
        ));
    }
    if declared.is_some_and(|n| n > PUT_OBJECT_MAX_BYTES) {
        return Err(crate::s3err!(
            EntityTooLarge,
            "Your proposed upload exceeds the maximum allowed object size of {PUT_OBJECT_MAX_BYTES} bytes."
        ));
    }
    let expectations = body_expectations(req)?;
    let (source, size_hint) = match &req.auth.payload {
        PayloadCheck::StreamingUnsignedTrailer | PayloadCheck::StreamingSigned(_) => {
            let decoded = decoded_content_length(req)?;
            if decoded.is_some_and(|n| n > PUT_OBJECT_MAX_BYTES) {
                return Err(crate::s3err!(
                    EntityTooLarge,
                    "Your proposed upload exceeds the maximum allowed object size of {PUT_OBJECT_MAX_BYTES} bytes."
                ));
            }
            let mode = match &req.auth.payload {
                PayloadCheck::StreamingSigned(signer) => ChunkMode::Signed(signer.clone()),
                _ => ChunkMode::Unsigned,
            };
            let trailer = req
                .head
                .header("x-amz-trailer")
                .map(|t| t.to_ascii_lowercase());
            let decoder = Box::new(AwsChunkedDecoder::new(mode, trailer, decoded));
            (ByteSource::AwsChunked { body, decoder }, decoded)
        }
        _ => (ByteSource::Body(body), declared),
    };
    stage_body(
        ctx,
        record,
        BodyDigests::new(expectations),
        source,
        size_hint,
    )
    .await
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

/// A durable staging file and the record inside it.
pub struct Staged {
    pub record: ObjectRecord,
    pub path: std::path::PathBuf,
}

/// Header length that fits `record` once its fixed-size fields and a checksum are filled in.
fn reserved_header_len(record: &ObjectRecord) -> usize {
    let mut probe = record.clone();
    probe.checksum = Some(StoredChecksum {
        algorithm: "crc64nvme".into(),
        value_b64: "A".repeat(44),
    });
    probe.header_len()
}

/// Where staged bytes come from: a request body, or another object (CopyObject).
pub enum ByteSource<'a, 'c> {
    Body(&'a mut BodyReader<'c>),
    /// An `aws-chunked` body, decoded on the fly (payload bytes land directly in the buffer).
    AwsChunked {
        body: &'a mut BodyReader<'c>,
        decoder: Box<AwsChunkedDecoder>,
    },
    Object {
        stream: Box<ObjectStream>,
        pending: Option<(ReadResult, usize)>,
    },
}

impl ByteSource<'_, '_> {
    pub fn object(stream: ObjectStream) -> Self {
        ByteSource::Object {
            stream: Box::new(stream),
            pending: None,
        }
    }

    async fn read(&mut self, dst: &mut [u8]) -> Result<usize, S3Error> {
        match self {
            ByteSource::Body(b) => Ok(b.read(dst).await?),
            ByteSource::AwsChunked { body, decoder } => decoder.read(*body, dst).await,
            ByteSource::Object { stream, pending } => {
                if pending.is_none() {
                    match stream
                        .next_chunk()
                        .await
                        .map_err(|e| S3Error::internal("reading the copy source", e))?
                    {
                        Some(chunk) => *pending = Some((chunk, 0)),
                        None => return Ok(0),
                    }
                }
                let (chunk, off) = pending.as_mut().expect("pending chunk");
                let n = (chunk.len() - *off).min(dst.len());
                dst[..n].copy_from_slice(&chunk[*off..*off + n]);
                *off += n;
                if *off == chunk.len() {
                    *pending = None;
                }
                Ok(n)
            }
        }
    }
}

/// Streams `source` into a new staging file with `record`'s metadata; verifies digests; fsyncs.
pub async fn stage_body(
    ctx: &CoreCtx,
    mut record: ObjectRecord,
    mut digests: BodyDigests,
    mut source: ByteSource<'_, '_>,
    size_hint: Option<u64>,
) -> Result<Staged, S3Error> {
    let path = ctx.next_staging_path();
    let header_len = reserved_header_len(&record);
    let mut writer = StagingWriter::create(&path, header_len, size_hint)
        .await
        .map_err(|e| S3Error::from_write_io("creating the staging file", &e))?;
    let streamed = stream_into(&mut writer, &mut digests, &mut source).await;
    let digests: Digests = match streamed.and_then(|_| Ok(digests.finish()?)) {
        Ok(d) => d,
        Err(e) => {
            writer.abort().await;
            return Err(e);
        }
    };
    record.size = writer.size();
    record.md5 = digests.md5;
    record.last_modified_ms = crate::http::date::now_ms();
    record.checksum = digests.checksum.map(|(algo, value_b64)| StoredChecksum {
        algorithm: algo.name().to_string(),
        value_b64,
    });
    if let Err(e) = writer
        .finish(&record, ctx.fsync == FsyncPolicy::Always)
        .await
    {
        let _ = glommio::io::remove(&path).await;
        return Err(S3Error::from_write_io("writing the object", &e));
    }
    Ok(Staged { record, path })
}

async fn stream_into(
    writer: &mut StagingWriter,
    digests: &mut BodyDigests,
    body: &mut ByteSource<'_, '_>,
) -> Result<(), S3Error> {
    loop {
        let spare = writer.spare();
        let n = body.read(spare).await?;
        if n == 0 {
            if let ByteSource::AwsChunked { decoder, .. } = body {
                if let Some((algo, value)) = decoder.trailer_checksum() {
                    digests.set_trailer_checksum(algo, value);
                }
            }
            return Ok(());
        }
        digests.update(&spare[..n]);
        if writer.size() + n as u64 > PUT_OBJECT_MAX_BYTES {
            return Err(crate::s3err!(
                EntityTooLarge,
                "Your proposed upload exceeds the maximum allowed object size of {PUT_OBJECT_MAX_BYTES} bytes."
            ));
        }
        writer
            .advance(n)
            .await
            .map_err(|e| S3Error::from_write_io("writing the object", &e))?;
    }
}

/// The conditional-write headers of PutObject / CompleteMultipartUpload: `If-None-Match: *`
/// (create only) and `If-Match: "etag"` (replace only that version).
pub fn write_condition(head: &crate::http::head::RequestHead) -> Result<WriteCondition, S3Error> {
    match (head.header("if-none-match"), head.header("if-match")) {
        (None, None) => Ok(WriteCondition::Always),
        (Some("*"), None) => Ok(WriteCondition::IfAbsent),
        (None, Some(etag)) if !etag.contains(',') && etag != "*" => Ok(WriteCondition::IfEtag(
            etag.trim().trim_matches('"').to_string(),
        )),
        _ => Err(crate::s3err!(
            NotImplemented,
            "Only If-None-Match: * or a single If-Match ETag is supported on writes."
        )),
    }
}

/// Hands a staged object to the owner core; removes the staging file if the commit fails.
pub async fn commit(
    ctx: &CoreCtx,
    bucket: &str,
    key: &str,
    staged: &Staged,
    condition: WriteCondition,
) -> Result<(), S3Error> {
    let op = OwnerOp::Commit {
        bucket: bucket.to_string(),
        key: key.to_string(),
        staging: staged.path.clone(),
        summary: staged.record.summary(),
        condition,
    };
    if let Err(e) = ctx.shards.call_owner(bucket, op).await {
        let _ = glommio::io::remove(&staged.path).await;
        return Err(e);
    }
    Ok(())
}
