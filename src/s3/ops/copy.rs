//! CopyObject: reads the source object on this core and stages a new object from its bytes,
//! then commits it through the destination bucket's owner like a PutObject.
//!
//! Invariants: the source is read from one opened file (a consistent snapshot); the copy's
//! ETag is the MD5 of the bytes actually copied; metadata is copied unless
//! `x-amz-metadata-directive: REPLACE`.

use crate::digest::{BodyDigests, ChecksumAlgorithm, Expectations};
use crate::http::percent::percent_decode;
use crate::http::response::Response;
use crate::s3::bucket_name::validate_object_key;
use crate::s3::error::S3Error;
use crate::s3::ingest::{ingest, ObjectSource, PUT_OBJECT_MAX_BYTES};
use crate::s3::ops::object::check_conditions_with;
use crate::s3::ops::{metadata_from_headers, quoted, refuse_unsupported_write_features};
use crate::s3::{xml, Request};
use crate::storage::{ObjectRecord, OpenObject, StagedObject, Store, WriteCondition};

/// Parses `x-amz-copy-source` (`bucket/key`, optional leading `/`, key percent-encoded).
pub(crate) fn parse_copy_source(raw: &str) -> Result<(String, String), S3Error> {
    let raw = raw.strip_prefix('/').unwrap_or(raw);
    let (path, version) = match raw.split_once("?versionId=") {
        Some((p, v)) => (p, Some(v)),
        None => (raw, None),
    };
    if version.is_some_and(|v| v != "null") {
        return Err(crate::s3err!(
            NotImplemented,
            "Versioned copy sources are not supported."
        ));
    }
    let decoded = percent_decode(path)?;
    match decoded.split_once('/') {
        Some((b, k)) if !b.is_empty() && !k.is_empty() => {
            // The source bucket becomes a directory name: it must be a valid bucket name.
            crate::s3::bucket_name::validate_bucket_name(b)?;
            Ok((b.to_string(), k.to_string()))
        }
        _ => Err(crate::s3err!(
            InvalidArgument,
            "Copy Source must mention the source bucket and key: sourcebucket/sourcekey."
        )),
    }
}

/// `x-amz-metadata-directive`: whether the copy takes the request's metadata (REPLACE) instead
/// of the source's (COPY, the default).
fn replaces_metadata(req: &Request<'_>) -> Result<bool, S3Error> {
    match req.head.header("x-amz-metadata-directive") {
        None => Ok(false),
        Some(v) if v.eq_ignore_ascii_case("COPY") => Ok(false),
        Some(v) if v.eq_ignore_ascii_case("REPLACE") => Ok(true),
        Some(_) => Err(crate::s3err!(
            InvalidArgument,
            "Unknown metadata directive."
        )),
    }
}

pub(crate) async fn copy_object(store: &Store, req: &Request<'_>) -> Result<Response, S3Error> {
    let (bucket, key) = (&req.routed.bucket, &req.routed.key);
    validate_object_key(key)?;
    let (src_bucket, src_key) = copy_source_header(req)?;
    store.bucket_created_ms(bucket).await?;
    let replace = replaces_metadata(req)?;
    refuse_unsupported_write_features(req.head)?;
    if &src_bucket == bucket && &src_key == key && !replace {
        return Err(crate::s3err!(
            InvalidRequest,
            "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes."
        ));
    }
    let src = open_copy_source(store, req, &src_bucket, &src_key).await?;
    let (system_headers, user_metadata) = if replace {
        metadata_from_headers(req.head)?
    } else {
        (
            src.record.system_headers.clone(),
            src.record.user_metadata.clone(),
        )
    };
    let algorithm = src.record.checksum.as_ref().map(|c| c.algorithm.clone());
    let record = ObjectRecord {
        system_headers,
        user_metadata,
        ..ObjectRecord::new(key)
    };
    let size = src.size();
    let staged = copy_range(store, record, src, (0, size), algorithm.as_deref()).await?;
    let body = xml::copy_object_result_xml(
        &quoted(&staged.record.etag()),
        staged.record.last_modified_ms,
    );
    store
        .put_object(bucket, key, staged, WriteCondition::always())
        .await?;
    Ok(Response::xml(200, body))
}

/// The `x-amz-copy-source` header, parsed into (bucket, key).
pub(crate) fn copy_source_header(req: &Request<'_>) -> Result<(String, String), S3Error> {
    parse_copy_source(req.head.header("x-amz-copy-source").unwrap_or(""))
}

/// Opens a copy source and applies the `x-amz-copy-source-if-*` conditions to it.
pub(crate) async fn open_copy_source(
    store: &Store,
    req: &Request<'_>,
    bucket: &str,
    key: &str,
) -> Result<OpenObject, S3Error> {
    let src = store.open_object(bucket, key).await?;
    check_conditions_with(req.head, "x-amz-copy-source-", &src.record, true)?;
    Ok(src)
}

/// Stages `(start, len)` of `src` as a new object with `record`'s metadata, hashing it for
/// `checksum_algorithm` (lowercase name) when given.
pub(crate) async fn copy_range(
    store: &Store,
    record: ObjectRecord,
    src: OpenObject,
    (start, len): (u64, u64),
    checksum_algorithm: Option<&str>,
) -> Result<StagedObject, S3Error> {
    let expectations = Expectations {
        checksum: checksum_algorithm
            .and_then(ChecksumAlgorithm::from_name)
            .map(|a| (a, None)),
        ..Default::default()
    };
    let mut source = ObjectSource::new(src.stream(start, len).await?);
    let digests = BodyDigests::new(expectations);
    ingest(
        store,
        record,
        digests,
        &mut source,
        Some(len),
        PUT_OBJECT_MAX_BYTES,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_source_forms() {
        assert_eq!(
            parse_copy_source("bkt/a%20dir/%C3%BC%2Bx%3D1%26y.txt").unwrap(),
            ("bkt".to_string(), "a dir/ü+x=1&y.txt".to_string())
        );
        assert_eq!(
            parse_copy_source("/bkt/k?versionId=null").unwrap(),
            ("bkt".into(), "k".into())
        );
        assert!(parse_copy_source("bkt").is_err());
        assert!(parse_copy_source("..%2Fbuckets%2Fvictim/secret").is_err());
        assert!(
            parse_copy_source("a/b/../../x").is_err()
                || parse_copy_source("a/b/../../x").unwrap().0 == "a"
        );
    }
}
