//! Multipart upload operations: CreateMultipartUpload, UploadPart, UploadPartCopy,
//! CompleteMultipartUpload, AbortMultipartUpload, ListParts, ListMultipartUploads.
//!
//! A part's bytes are staged on the core that received them (like PutObject) and only the
//! commit travels to the bucket's owner, which keeps the upload's part table. Invariant: every
//! operation names an upload that exists for exactly this bucket and key, else NoSuchUpload;
//! the one exception is a repeated CompleteMultipartUpload of an upload that completed into
//! the key's current version, answered as the first was.

use crate::digest::ChecksumAlgorithm;
use crate::http::body::BodyReader;
use crate::http::head::RequestHead;
use crate::http::response::Response;
use crate::s3::bucket_name::validate_object_key;
use crate::s3::error::S3Error;
use crate::s3::ingest::expectations::{
    checksum_header, decode_checksum, expectations_of, ChecksumHeaders,
};
use crate::s3::ingest::{ingest_request_body, read_small_body_expecting, PART_SIZE_MAX_BYTES};
use crate::s3::ops::copy::{copy_range, copy_source_header, open_copy_source};
use crate::s3::ops::put::stored_response;
use crate::s3::ops::{metadata_from_headers, quoted};
use crate::s3::params::parse_max_keys;
use crate::s3::router::PartTarget;
use crate::s3::xml;
use crate::s3::xml::multipart as mxml;
use crate::s3::Request;
use crate::storage::{
    CompletePart, CompleteRequest, ObjectRecord, PartInfo, StorageError, Store, StoredChecksum,
};

pub(crate) async fn create_upload(store: &Store, req: &Request<'_>) -> Result<Response, S3Error> {
    let (bucket, key) = (&req.routed.bucket, &req.routed.key);
    validate_object_key(key)?;
    let (system_headers, user_metadata) = metadata_from_headers(req.head)?;
    let checksum = upload_checksum(req.head)?;
    store.bucket_created_ms(bucket).await?;
    let meta = ObjectRecord {
        last_modified_ms: crate::clock::now_ms(),
        system_headers,
        user_metadata,
        checksum,
        ..ObjectRecord::new(key)
    };
    let upload_id = store.create_upload(bucket, meta.clone()).await?;
    let mut resp = Response::xml(200, mxml::initiate_result_xml(bucket, key, &upload_id));
    if let Some(c) = &meta.checksum {
        resp.push_header("x-amz-checksum-algorithm", c.algorithm.to_ascii_uppercase());
        resp.push_header("x-amz-checksum-type", c.type_name());
    }
    Ok(resp)
}

/// The checksum algorithm and type of a new upload (`x-amz-checksum-algorithm`,
/// `x-amz-checksum-type`), checked as S3 does: FULL_OBJECT only for the CRCs, COMPOSITE not
/// for CRC64NVME, a type only with an algorithm. Without a type, CRC64NVME uploads are
/// FULL_OBJECT and the others COMPOSITE (S3's defaults).
fn upload_checksum(head: &RequestHead) -> Result<Option<StoredChecksum>, S3Error> {
    let kind = match head.header("x-amz-checksum-type") {
        None => None,
        Some(t) if t.eq_ignore_ascii_case("FULL_OBJECT") => Some(true),
        Some(t) if t.eq_ignore_ascii_case("COMPOSITE") => Some(false),
        Some(_) => {
            return Err(crate::s3err!(
                InvalidRequest,
                "Value for x-amz-checksum-type header is invalid."
            ))
        }
    };
    let Some(name) = head.header("x-amz-checksum-algorithm") else {
        return match kind {
            None => Ok(None),
            Some(_) => Err(crate::s3err!(
                InvalidRequest,
                "The x-amz-checksum-type header can only be used with the x-amz-checksum-algorithm header."
            )),
        };
    };
    let algorithm = ChecksumAlgorithm::from_name(name).ok_or_else(|| {
        crate::s3err!(
            InvalidRequest,
            "Checksum algorithm {name} is not supported."
        )
    })?;
    let is_crc = matches!(
        algorithm,
        ChecksumAlgorithm::Crc32 | ChecksumAlgorithm::Crc32c | ChecksumAlgorithm::Crc64Nvme
    );
    let full_object = kind.unwrap_or(algorithm == ChecksumAlgorithm::Crc64Nvme);
    let allowed = match full_object {
        true => is_crc,
        false => algorithm != ChecksumAlgorithm::Crc64Nvme,
    };
    let checksum = StoredChecksum {
        algorithm: algorithm.name().to_string(),
        value_b64: String::new(),
        full_object,
    };
    if !allowed {
        return Err(crate::s3err!(
            InvalidRequest,
            "The {} checksum type cannot be used with the {} checksum algorithm.",
            checksum.type_name(),
            checksum.algorithm
        ));
    }
    Ok(Some(checksum))
}

pub(crate) async fn upload_part(
    store: &Store,
    req: &Request<'_>,
    target: &PartTarget,
    body: &mut BodyReader<'_>,
) -> Result<Response, S3Error> {
    let (bucket, key) = (&req.routed.bucket, &req.routed.key);
    let (upload_id, number) = (&target.upload_id, target.part_number);
    if body
        .declared_length()
        .is_some_and(|n| n > PART_SIZE_MAX_BYTES)
    {
        return Err(crate::s3err!(EntityTooLarge, "Your proposed upload exceeds the maximum allowed part size of {PART_SIZE_MAX_BYTES} bytes."));
    }
    let info = store.upload_info(bucket, key, upload_id).await?;
    let record = ObjectRecord::new(key);
    // A part sent without a checksum still gets the upload's, so the object's can be computed.
    let algorithm = info.checksum_algorithm.as_deref();
    let default = algorithm.and_then(ChecksumAlgorithm::from_name);
    let max = PART_SIZE_MAX_BYTES;
    let staged = ingest_request_body(store, req, body, record, max, default).await?;
    let response = stored_response(&staged.record);
    store.put_part(bucket, upload_id, number, staged).await?;
    Ok(response)
}

pub(crate) async fn upload_part_copy(
    store: &Store,
    req: &Request<'_>,
    target: &PartTarget,
) -> Result<Response, S3Error> {
    let (bucket, key) = (&req.routed.bucket, &req.routed.key);
    let (upload_id, number) = (&target.upload_id, target.part_number);
    let (src_bucket, src_key) = copy_source_header(req)?;
    let info = store.upload_info(bucket, key, upload_id).await?;
    let src = open_copy_source(store, req, &src_bucket, &src_key).await?;
    let (start, len) = match req.head.header("x-amz-copy-source-range") {
        None => (0, src.size()),
        Some(h) => parse_copy_range(h, src.size())?,
    };
    if len > PART_SIZE_MAX_BYTES {
        return Err(crate::s3err!(
            EntityTooLarge,
            "A copied part may be at most {PART_SIZE_MAX_BYTES} bytes."
        ));
    }
    let record = ObjectRecord::new(key);
    let algorithm = info.checksum_algorithm.as_deref();
    let staged = copy_range(store, record, src, (start, len), algorithm).await?;
    let r = &staged.record;
    let body =
        mxml::copy_part_result_xml(&quoted(&r.etag()), r.last_modified_ms, r.checksum.as_ref());
    store.put_part(bucket, upload_id, number, staged).await?;
    Ok(Response::xml(200, body))
}

/// Parses `x-amz-copy-source-range`: exactly `bytes=first-last` inside the source (S3 accepts no
/// open-ended, suffix or clamped ranges here). Returns (start, length).
pub(crate) fn parse_copy_range(h: &str, size: u64) -> Result<(u64, u64), S3Error> {
    let invalid = || {
        crate::s3err!(
            InvalidArgument,
            "Range specified is not valid for source object of size: {size}"
        )
        .with_extra("ArgumentName", "x-amz-copy-source-range")
        .with_extra("ArgumentValue", h)
    };
    let spec = h.trim().strip_prefix("bytes=").ok_or_else(invalid)?;
    let (a, b) = spec.split_once('-').ok_or_else(invalid)?;
    let num = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match (num(a), num(b)) {
        (Some(a), Some(b)) if a <= b && b < size => Ok((a, b - a + 1)),
        _ => Err(invalid()),
    }
}

pub(crate) async fn complete_upload(
    store: &Store,
    req: &Request<'_>,
    upload_id: &str,
    body: &mut BodyReader<'_>,
) -> Result<Response, S3Error> {
    let (bucket, key) = (&req.routed.bucket, &req.routed.key);
    let expected_checksum = completion_checksum(req.head)?;
    let exp = expectations_of(req, ChecksumHeaders::OfObject)?;
    let max = xml::COMPLETE_MULTIPART_BODY_MAX_BYTES;
    let (doc, _) = read_small_body_expecting(body, max, exp).await?;
    let listed = xml::parse_complete_multipart(&doc)?;
    let parts = listed
        .into_iter()
        .map(|p| CompletePart {
            number: p.part_number,
            etag: p.etag,
        })
        .collect();
    let condition = crate::s3::ops::put::write_condition(req.head)?;
    let request = CompleteRequest {
        key: key.clone(),
        upload_id: upload_id.to_string(),
        parts,
        now_ms: crate::clock::now_ms(),
        condition,
        expected_checksum,
    };
    let record = match store.complete_upload(bucket, request).await {
        Ok(record) => record,
        Err(e @ StorageError::NoSuchUpload { .. }) => {
            completed_earlier(store, bucket, key, upload_id)
                .await
                .ok_or(e)?
        }
        Err(e) => return Err(e.into()),
    };
    let location = format!(
        "/{bucket}/{}",
        crate::http::percent::aws_uri_encode(key.as_bytes(), false)
    );
    let body = mxml::complete_result_xml(
        &location,
        bucket,
        key,
        &quoted(&record.etag()),
        record.checksum.as_ref(),
    );
    Ok(Response::xml(200, body))
}

/// The object checksum a CompleteMultipartUpload names (`x-amz-checksum-<algorithm>`: the
/// whole object's CRC for a FULL_OBJECT upload, the composite value, with or without its `-N`
/// suffix, for a COMPOSITE one); at most one.
fn completion_checksum(head: &RequestHead) -> Result<Option<StoredChecksum>, S3Error> {
    let Some((algo, value)) = checksum_header(head)? else {
        return Ok(None);
    };
    let bare = match value.split_once('-') {
        Some((v, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => v,
        Some(_) => "",
        None => value,
    };
    decode_checksum(algo, bare)?;
    Ok(Some(StoredChecksum {
        algorithm: algo.name().to_string(),
        value_b64: value.to_string(),
        full_object: bare == value,
    }))
}

/// The record of `key` if its current version is what `upload_id` completed into: a repeated
/// CompleteMultipartUpload (an SDK retrying after a lost response) then answers as the first
/// did. The upload id is part of the completed object's record (its part table), in the log
/// and checkpoints, so this holds across restarts; once the key was overwritten or deleted the
/// upload is gone (`None`: NoSuchUpload).
async fn completed_earlier(
    store: &Store,
    bucket: &str,
    key: &str,
    upload_id: &str,
) -> Option<ObjectRecord> {
    let current = store.open_object(bucket, key).await.ok()?;
    let record = &current.record;
    let completed_here = record
        .parts
        .as_ref()
        .is_some_and(|p| p.upload_id == upload_id);
    completed_here.then(|| ObjectRecord::clone(record))
}

pub(crate) async fn abort_upload(
    store: &Store,
    req: &Request<'_>,
    upload_id: &str,
) -> Result<Response, S3Error> {
    let (bucket, key) = (&req.routed.bucket, &req.routed.key);
    store.abort_upload(bucket, key, upload_id).await?;
    Ok(Response::new(204))
}

pub(crate) async fn list_parts(
    store: &Store,
    req: &Request<'_>,
    upload_id: &str,
) -> Result<Response, S3Error> {
    let (bucket, key) = (&req.routed.bucket, &req.routed.key);
    let max_parts = parse_max_keys(req.routed.param("max-parts"))?;
    let marker: u32 = match req.routed.param("part-number-marker") {
        None | Some("") => 0,
        Some(v) => v.parse().map_err(|_| {
            crate::s3err!(
                InvalidArgument,
                "Provided part-number-marker not an integer or within integer range"
            )
        })?,
    };
    let info = store.upload_info(bucket, key, upload_id).await?;
    let after: Vec<&(u32, PartInfo)> = info.parts.iter().filter(|(n, _)| *n > marker).collect();
    let truncated = after.len() > max_parts;
    let page: Vec<&(u32, PartInfo)> = after.into_iter().take(max_parts).collect();
    let next_marker = page.last().map(|(n, _)| *n).unwrap_or(marker);
    let body = mxml::list_parts_xml(&mxml::ListPartsView {
        bucket,
        key,
        upload_id,
        marker,
        next_marker,
        max_parts,
        truncated,
        checksum_algorithm: info.checksum_algorithm.as_deref(),
        checksum_type: info.checksum_type,
        parts: &page,
    });
    Ok(Response::xml(200, body))
}

pub(crate) async fn list_uploads(store: &Store, req: &Request<'_>) -> Result<Response, S3Error> {
    let r = &req.routed;
    let bucket = &r.bucket;
    store.bucket_created_ms(bucket).await?;
    let url_encoding = crate::s3::params::parse_encoding_type(r.param("encoding-type"))?;
    let max_uploads = parse_max_keys(r.param("max-uploads"))?;
    let prefix = r.param("prefix").unwrap_or("");
    let delimiter = r.param("delimiter").filter(|d| !d.is_empty());
    let key_marker = r.param("key-marker").unwrap_or("");
    let id_marker = r.param("upload-id-marker").unwrap_or("");
    let all = store.list_uploads(bucket).await?;
    let page = mxml::paginate_uploads(&all, prefix, delimiter, key_marker, id_marker, max_uploads);
    let body = mxml::list_uploads_xml(&mxml::ListUploadsView {
        bucket,
        prefix,
        delimiter,
        key_marker,
        upload_id_marker: id_marker,
        max_uploads,
        url_encoding,
        page: &page,
    });
    Ok(Response::xml(200, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_ranges_are_strict() {
        assert_eq!(parse_copy_range("bytes=0-9", 10).unwrap(), (0, 10));
        assert_eq!(parse_copy_range("bytes=5-5", 10).unwrap(), (5, 1));
        for bad in [
            "bytes=5-20",
            "bytes=0-10",
            "bytes=4-",
            "bytes=-4",
            "bytes=5-4",
            "items=0-1",
            "0-1",
        ] {
            assert!(parse_copy_range(bad, 10).is_err(), "{bad}");
        }
    }
}
