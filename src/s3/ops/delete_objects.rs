//! DeleteObjects (`POST /bucket?delete`): parses the key list, deletes each key through the
//! bucket's owner, reports per-key results.
//!
//! Invariants: the XML body is verified against its signed hash and its checksum (current boto3
//! sends `x-amz-checksum-crc32`, not `Content-MD5`) before anything is deleted; at most
//! [`xml::DELETE_OBJECTS_MAX`] keys per request (the parser enforces it).

use crate::http::body::BodyReader;
use crate::http::response::Response;
use crate::s3::bucket_name::validate_object_key;
use crate::s3::error::S3Error;
use crate::s3::ingest::read_small_body;
use crate::s3::{xml, Request};
use crate::storage::Store;

pub(crate) async fn delete_objects(
    store: &Store,
    req: &Request<'_>,
    body: &mut BodyReader<'_>,
) -> Result<Response, S3Error> {
    let bucket = &req.routed.bucket;
    let (doc, _) = read_small_body(req, body, xml::DELETE_BODY_MAX_BYTES).await?;
    let (keys, quiet) = xml::parse_delete_request(&doc)?;
    store.bucket_created_ms(bucket).await?;
    let mut deleted = Vec::with_capacity(keys.len());
    let mut errors = Vec::new();
    for key in keys {
        let result = match validate_object_key(&key) {
            Ok(()) => store
                .delete_object(bucket, &key)
                .await
                .map_err(S3Error::from),
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => deleted.push(key),
            Err(e) => errors.push((key, e.code.as_str().to_string(), e.message)),
        }
    }
    Ok(Response::xml(
        200,
        xml::delete_result_xml(&deleted, &errors, quiet),
    ))
}
