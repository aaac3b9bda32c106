//! PutObject: the body goes through the ingest pipeline into a staged object on this core, then
//! the bucket's owner commits it.
//!
//! Invariants: nothing is visible or listed until the staged object is durable and committed;
//! any failure (bad digest, short body, I/O error, missing bucket) leaves nothing behind; the
//! 200 is sent only after the commit is durable.

use crate::http::head::RequestHead;
use crate::http::response::Response;
use crate::s3::bucket_name::validate_object_key;
use crate::s3::error::S3Error;
use crate::s3::ingest::{ingest_request_body, PUT_OBJECT_MAX_BYTES};
use crate::s3::ops::{metadata_from_headers, quoted};
use crate::s3::Request;
use crate::storage::{ObjectRecord, Store, WriteCondition};

pub(crate) async fn put_object(
    store: &Store,
    req: &Request<'_>,
    body: &mut crate::http::body::BodyReader<'_>,
) -> Result<Response, S3Error> {
    let (bucket, key) = (&req.routed.bucket, &req.routed.key);
    validate_object_key(key)?;
    let (system_headers, user_metadata) = metadata_from_headers(req.head)?;
    store.bucket_created_ms(bucket).await?;
    let record = ObjectRecord {
        system_headers,
        user_metadata,
        ..ObjectRecord::new(key)
    };
    let condition = write_condition(req.head)?;
    let staged = ingest_request_body(store, req, body, record, PUT_OBJECT_MAX_BYTES).await?;
    let response = stored_response(&staged.record);
    store.put_object(bucket, key, staged, condition).await?;
    Ok(response)
}

/// 200 with the ETag and the checksum the client sent (echoed, as S3 does).
pub(crate) fn stored_response(record: &ObjectRecord) -> Response {
    let mut resp = Response::new(200).header("ETag", quoted(&record.etag()));
    if let Some(c) = &record.checksum {
        resp.push_header(
            &format!("x-amz-checksum-{}", c.algorithm),
            c.value_b64.clone(),
        );
    }
    resp
}

/// The conditional-write headers of PutObject / CompleteMultipartUpload: `If-None-Match: *`
/// (create only) and `If-Match: "etag"` (replace only that version).
pub(crate) fn write_condition(head: &RequestHead) -> Result<WriteCondition, S3Error> {
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
