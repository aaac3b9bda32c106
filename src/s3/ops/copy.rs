//! CopyObject: reads the source object on this core and stages a new object from its bytes,
//! then commits it through the destination bucket's owner like a PutObject.
//!
//! Invariants: the source is read from one opened file (a consistent snapshot); the copy's
//! ETag is the MD5 of the bytes actually copied; metadata is copied unless
//! `x-amz-metadata-directive: REPLACE`.

use crate::digest::{BodyDigests, ChecksumAlgorithm, Expectations};
use crate::http::percent::percent_decode;
use crate::http::response::Response;
use crate::runtime::CoreCtx;
use crate::s3::bucket_name::validate_object_key;
use crate::s3::error::S3Error;
use crate::s3::ops::object::{check_conditions_with, open_object, stream_error};
use crate::s3::ops::put::{commit, stage_body, ByteSource};
use crate::s3::ops::{ensure_bucket, metadata_from_headers, quoted};
use crate::s3::{xml, Request};
use crate::storage::index::WriteCondition;
use crate::storage::record::ObjectRecord;

/// Parses `x-amz-copy-source` (`bucket/key`, optional leading `/`, key percent-encoded).
pub fn parse_copy_source(raw: &str) -> Result<(String, String), S3Error> {
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

pub async fn copy_object(ctx: &CoreCtx, req: &Request<'_>) -> Result<Response, S3Error> {
    let (bucket, key) = (&req.routed.bucket, &req.routed.key);
    validate_object_key(key)?;
    let (src_bucket, src_key) =
        parse_copy_source(req.head.header("x-amz-copy-source").unwrap_or(""))?;
    ensure_bucket(ctx, bucket).await?;
    let replace = match req.head.header("x-amz-metadata-directive") {
        None => false,
        Some(v) if v.eq_ignore_ascii_case("COPY") => false,
        Some(v) if v.eq_ignore_ascii_case("REPLACE") => true,
        Some(_) => {
            return Err(crate::s3err!(
                InvalidArgument,
                "Unknown metadata directive."
            ))
        }
    };
    if &src_bucket == bucket && &src_key == key && !replace {
        return Err(crate::s3err!(
            InvalidRequest,
            "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes."
        ));
    }
    let src = open_object(ctx, &src_bucket, &src_key).await?;
    if let Err(e) = check_conditions_with(req.head, "x-amz-copy-source-", &src.record, true) {
        src.close().await;
        return Err(e);
    }
    let (system_headers, user_metadata) = if replace {
        metadata_from_headers(req.head)?
    } else {
        (
            src.record.system_headers.clone(),
            src.record.user_metadata.clone(),
        )
    };
    let algo = src
        .record
        .checksum
        .as_ref()
        .and_then(|c| ChecksumAlgorithm::from_name(&c.algorithm));
    let expectations = Expectations {
        checksum: algo.map(|a| (a, None)),
        ..Default::default()
    };
    let size = src.record.size;
    let record = ObjectRecord {
        system_headers,
        user_metadata,
        ..ObjectRecord::new(key)
    };
    let source = ByteSource::object(src.stream(0, size).await.map_err(stream_error)?);
    let staged = stage_body(
        ctx,
        record,
        BodyDigests::new(expectations),
        source,
        Some(size),
    )
    .await?;
    commit(ctx, bucket, key, &staged, WriteCondition::Always).await?;
    let body = xml::copy_object_result_xml(
        &quoted(&staged.record.etag()),
        staged.record.last_modified_ms,
    );
    Ok(Response::xml(200, body))
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
