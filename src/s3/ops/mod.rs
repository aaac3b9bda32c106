//! S3 operations, one module per family (each function takes the [`Store`](crate::storage::Store)
//! and the routed request, returns the response). This module holds what several share: the
//! object metadata taken from request headers, and ETag quoting.

pub(crate) mod acl;
pub(crate) mod attributes;
pub(crate) mod bucket;
pub(crate) mod copy;
pub(crate) mod delete_objects;
pub(crate) mod listing;
pub(crate) mod multipart;
pub(crate) mod object;
pub(crate) mod put;

use crate::http::head::RequestHead;
use crate::s3::error::S3Error;

/// User metadata limit: sum of UTF-8 bytes of every `x-amz-meta-*` name (without prefix) and value.
pub(crate) const USER_METADATA_MAX_BYTES: usize = 2048;
// The largest record the limits allow fits the record format's header block: the longest key,
// full user metadata, stored system headers and checksum (all from one request head, so at
// most a head's size) and a full part table.
const _: () = {
    use crate::storage::record::{HEADER_MAX_BYTES, PARTS_MAX, PART_REF_ENCODED_BYTES};
    let largest = crate::s3::bucket_name::OBJECT_KEY_MAX_BYTES
        + USER_METADATA_MAX_BYTES
        + crate::http::head::HEAD_SIZE_MAX_BYTES
        + PARTS_MAX * PART_REF_ENCODED_BYTES;
    assert!(largest <= HEADER_MAX_BYTES);
};
/// System headers stored with an object and returned on GET/HEAD.
pub(crate) const STORED_SYSTEM_HEADERS: &[&str] = &[
    "content-type",
    "content-encoding",
    "cache-control",
    "content-disposition",
    "content-language",
    "expires",
];

/// (lowercase name, value) pairs stored with an object.
pub(crate) type HeaderPairs = Vec<(String, String)>;

/// Stored system headers and user metadata taken from a request's headers.
pub(crate) fn metadata_from_headers(
    head: &RequestHead,
) -> Result<(HeaderPairs, HeaderPairs), S3Error> {
    refuse_unsupported_write_features(head)?;
    let mut system = Vec::new();
    for name in STORED_SYSTEM_HEADERS {
        if let Some(v) = head.header(name) {
            let v = if *name == "content-encoding" {
                strip_aws_chunked(v)
            } else {
                v.to_string()
            };
            if !v.is_empty() {
                system.push((name.to_string(), v));
            }
        }
    }
    let mut user: Vec<(String, String)> = Vec::new();
    let mut total = 0usize;
    for (n, v) in &head.headers {
        if let Some(meta) = n.strip_prefix("x-amz-meta-") {
            total += meta.len() + v.len();
            if let Some(existing) = user.iter_mut().find(|(k, _)| k == meta) {
                existing.1.push(',');
                existing.1.push_str(v);
            } else {
                user.push((meta.to_string(), v.clone()));
            }
        }
    }
    if total > USER_METADATA_MAX_BYTES {
        return Err(crate::s3err!(
            MetadataTooLarge,
            "Your metadata headers exceed the maximum allowed metadata size ({total} > {USER_METADATA_MAX_BYTES} bytes)."
        ));
    }
    Ok((system, user))
}

/// Object tags and server-side encryption are not implemented: a write asking for them is
/// refused with 501 NotImplemented rather than stored without them (a client would believe its
/// object tagged or encrypted). Checked by every write that takes new metadata (PutObject,
/// CreateMultipartUpload, CopyObject).
pub(crate) fn refuse_unsupported_write_features(head: &RequestHead) -> Result<(), S3Error> {
    if head.header("x-amz-tagging").is_some() {
        return Err(crate::s3err!(
            NotImplemented,
            "Object tagging is not implemented by ringstore; send the object without x-amz-tagging."
        ));
    }
    if let Some((name, _)) = head
        .headers
        .iter()
        .find(|(n, _)| n.starts_with("x-amz-server-side-encryption"))
    {
        return Err(crate::s3err!(
            NotImplemented,
            "Server-side encryption is not implemented by ringstore ({name} was sent); the data directory is stored as written."
        ));
    }
    Ok(())
}

/// Content-Encoding without the `aws-chunked` transport coding: the client's other codings in
/// their order (`aws-chunked,gzip` is `gzip`, `aws-chunked` alone is empty). A value without
/// `aws-chunked` is kept exactly as sent.
pub(crate) fn strip_aws_chunked(v: &str) -> String {
    let is_chunked = |s: &str| s.trim().eq_ignore_ascii_case("aws-chunked");
    if !v.split(',').any(is_chunked) {
        return v.to_string();
    }
    // The other codings keep their own spelling and spacing (`gzip, br,aws-chunked` is
    // `gzip, br`), only empty list elements are dropped.
    v.split(',')
        .filter(|s| !s.trim().is_empty() && !is_chunked(s))
        .collect::<Vec<_>>()
        .join(",")
        .trim()
        .to_string()
}

pub(crate) fn quoted(etag: &str) -> String {
    format!("\"{etag}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_chunked_is_stripped() {
        assert_eq!(strip_aws_chunked("aws-chunked"), "");
        assert_eq!(strip_aws_chunked("gzip,aws-chunked"), "gzip");
        assert_eq!(strip_aws_chunked("gzip"), "gzip");
        assert_eq!(strip_aws_chunked("aws-chunked, gzip, br"), "gzip, br");
        assert_eq!(strip_aws_chunked("gzip, br,aws-chunked"), "gzip, br");
        assert_eq!(strip_aws_chunked("gzip, aws-chunked ,br"), "gzip,br");
        assert_eq!(strip_aws_chunked("AWS-Chunked"), "");
        assert_eq!(strip_aws_chunked("gzip, br"), "gzip, br");
    }
}
