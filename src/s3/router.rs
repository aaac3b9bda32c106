//! Router: turns a request's method, path and query into the S3 operation it names.
//!
//! Path-style addressing: `/` is the service, `/bucket` a bucket, `/bucket/key...` an object (the
//! key is everything after the first `/` following the bucket, percent-decoded, `+` kept).
//! Invariant: a sub-resource ringstore does not implement is answered `NotImplemented`, never
//! silently treated as the plain operation.

use crate::http::head::{Method, RequestHead};
use crate::http::percent::{parse_query, percent_decode};
use crate::s3::error::S3Error;

/// The S3 operations ringstore serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    ListBuckets,
    CreateBucket,
    HeadBucket,
    DeleteBucket,
    GetBucketLocation,
    GetBucketVersioning,
    ListObjectsV1,
    ListObjectsV2,
    DeleteObjects,
    PutObject,
    CopyObject,
    GetObject,
    HeadObject,
    DeleteObject,
    CreateMultipartUpload,
    UploadPart,
    UploadPartCopy,
    CompleteMultipartUpload,
    AbortMultipartUpload,
    ListParts,
    ListMultipartUploads,
}

/// A routed request.
#[derive(Debug, Clone)]
pub struct Routed {
    pub op: Op,
    pub bucket: String,
    pub key: String,
    /// Decoded query parameters in wire order.
    pub query: Vec<(String, String)>,
}

impl Routed {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn has_param(&self, name: &str) -> bool {
        self.query.iter().any(|(n, _)| n == name)
    }
}

/// Bucket and object sub-resources that exist in S3 but are not implemented here.
const UNSUPPORTED_SUBRESOURCES: &[&str] = &[
    "accelerate",
    "acl",
    "analytics",
    "cors",
    "encryption",
    "intelligent-tiering",
    "inventory",
    "legal-hold",
    "lifecycle",
    "logging",
    "metrics",
    "notification",
    "object-lock",
    "ownershipControls",
    "policy",
    "policyStatus",
    "publicAccessBlock",
    "replication",
    "requestPayment",
    "restore",
    "retention",
    "select",
    "tagging",
    "torrent",
    "versions",
    "website",
    "attributes",
    "versionId",
];

fn not_implemented(what: &str) -> S3Error {
    crate::s3err!(
        NotImplemented,
        "A header or query you provided implies functionality that is not implemented: {what}."
    )
}

pub fn route(head: &RequestHead) -> Result<Routed, S3Error> {
    let query = parse_query(&head.query)?;
    let path = head.path.strip_prefix('/').unwrap_or(&head.path);
    let (bucket_raw, key_raw) = match path.find('/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (path, ""),
    };
    let bucket = percent_decode(bucket_raw)?;
    let key = percent_decode(key_raw)?;
    let has = |n: &str| query.iter().any(|(k, _)| k == n);
    let unsupported = query
        .iter()
        .find(|(k, _)| UNSUPPORTED_SUBRESOURCES.contains(&k.as_str()))
        .map(|(k, _)| k.clone());
    let m = head.method;
    let op = if bucket.is_empty() {
        match m {
            Method::Get => Op::ListBuckets,
            _ => return Err(method_not_allowed()),
        }
    } else if key.is_empty() {
        if m == Method::Post && has("delete") {
            Op::DeleteObjects
        } else if m == Method::Get && has("uploads") && unsupported.is_none() {
            Op::ListMultipartUploads
        } else if let Some(sub) = unsupported {
            return Err(not_implemented(&sub));
        } else {
            match m {
                Method::Put => Op::CreateBucket,
                Method::Head => Op::HeadBucket,
                Method::Delete => Op::DeleteBucket,
                Method::Get if has("location") => Op::GetBucketLocation,
                Method::Get if has("versioning") => Op::GetBucketVersioning,
                Method::Get if query.iter().any(|(k, v)| k == "list-type" && v == "2") => {
                    Op::ListObjectsV2
                }
                Method::Get => Op::ListObjectsV1,
                _ => return Err(method_not_allowed()),
            }
        }
    } else if let Some(sub) = unsupported {
        return Err(not_implemented(&sub));
    } else if has("uploadId") {
        match m {
            Method::Put if head.header("x-amz-copy-source").is_some() => Op::UploadPartCopy,
            Method::Put => Op::UploadPart,
            Method::Post => Op::CompleteMultipartUpload,
            Method::Delete => Op::AbortMultipartUpload,
            Method::Get => Op::ListParts,
            _ => return Err(method_not_allowed()),
        }
    } else {
        match m {
            Method::Post if has("uploads") => Op::CreateMultipartUpload,
            Method::Put if head.header("x-amz-copy-source").is_some() => Op::CopyObject,
            Method::Put => Op::PutObject,
            Method::Get => Op::GetObject,
            Method::Head => Op::HeadObject,
            Method::Delete => Op::DeleteObject,
            _ => return Err(method_not_allowed()),
        }
    };
    Ok(Routed {
        op,
        bucket,
        key,
        query,
    })
}

fn method_not_allowed() -> S3Error {
    crate::s3err!(
        MethodNotAllowed,
        "The specified method is not allowed against this resource."
    )
}
