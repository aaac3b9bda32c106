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
    ListObjectVersions,
    GetBucketAcl,
    PutBucketAcl,
    GetObjectAcl,
    PutObjectAcl,
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
    "website",
    "attributes",
];

fn not_implemented(what: &str) -> S3Error {
    crate::s3err!(
        NotImplemented,
        "A header or query you provided implies functionality that is not implemented: {what}."
    )
}

/// The bucket named by a virtual-host style `Host` (`bucket.DOMAIN[:port]`), if any.
fn virtual_host_bucket<'h>(host: Option<&'h str>, domain: Option<&str>) -> Option<&'h str> {
    let domain = domain?;
    let host = host?;
    let name = match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    };
    let bucket = name.strip_suffix(domain)?.strip_suffix('.')?;
    (!bucket.is_empty()).then_some(bucket)
}

/// Routes a request. With `domain` set, `Host: bucket.DOMAIN` selects virtual-host addressing
/// (the whole path is then the key); otherwise, and for `Host: DOMAIN`, path-style.
pub fn route(head: &RequestHead, domain: Option<&str>) -> Result<Routed, S3Error> {
    let query = parse_query(&head.query)?;
    let path = head.path.strip_prefix('/').unwrap_or(&head.path);
    let (bucket, key) = match virtual_host_bucket(head.header("host"), domain) {
        Some(b) => (b.to_ascii_lowercase(), percent_decode(path)?),
        None => {
            let (bucket_raw, key_raw) = match path.find('/') {
                Some(i) => (&path[..i], &path[i + 1..]),
                None => (path, ""),
            };
            (percent_decode(bucket_raw)?, percent_decode(key_raw)?)
        }
    };
    // Buckets are never versioned: the only version of an object is `null`.
    if let Some((_, v)) = query.iter().find(|(k, _)| k == "versionId") {
        if v != "null" {
            return Err(
                crate::s3err!(InvalidArgument, "Invalid version id specified")
                    .with_extra("ArgumentName", "versionId")
                    .with_extra("ArgumentValue", v.clone()),
            );
        }
    }
    // Bucket names become directory names: only valid S3 names ever reach storage (no `/`,
    // `..` or anything else a path could be made of). No bucket with another name can exist.
    if !bucket.is_empty() {
        crate::s3::bucket_name::validate_bucket_name(&bucket)?;
    }
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
        } else if m == Method::Get && has("versions") && unsupported.is_none() {
            Op::ListObjectVersions
        } else if has("acl") && unsupported.is_none() {
            match m {
                Method::Get => Op::GetBucketAcl,
                Method::Put => Op::PutBucketAcl,
                _ => return Err(method_not_allowed()),
            }
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
    } else if has("acl") {
        match m {
            Method::Get => Op::GetObjectAcl,
            Method::Put => Op::PutObjectAcl,
            _ => return Err(method_not_allowed()),
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::head::HeadParse;

    fn head(raw: &str) -> RequestHead {
        match RequestHead::parse(raw.as_bytes()).unwrap() {
            HeadParse::Complete(h, _) => h,
            HeadParse::Partial => panic!("partial"),
        }
    }

    #[test]
    fn path_style() {
        let r = route(
            &head("GET /bkt/a%20b/c?x HTTP/1.1\r\nHost: 127.0.0.1:9000\r\n\r\n"),
            None,
        )
        .unwrap();
        assert_eq!(
            (r.op, r.bucket.as_str(), r.key.as_str()),
            (Op::GetObject, "bkt", "a b/c")
        );
        let r = route(
            &head("GET /bkt?list-type=2 HTTP/1.1\r\nHost: x\r\n\r\n"),
            None,
        )
        .unwrap();
        assert_eq!(r.op, Op::ListObjectsV2);
        let r = route(
            &head("POST /bkt/k?uploads HTTP/1.1\r\nHost: x\r\n\r\n"),
            None,
        )
        .unwrap();
        assert_eq!(r.op, Op::CreateMultipartUpload);
        assert!(route(&head("GET /bkt?tagging HTTP/1.1\r\nHost: x\r\n\r\n"), None).is_err());
    }

    #[test]
    fn virtual_host_style() {
        let d = Some("s3.local");
        let r = route(
            &head("PUT /addr.txt HTTP/1.1\r\nHost: bkt.s3.local:9000\r\n\r\n"),
            d,
        )
        .unwrap();
        assert_eq!(
            (r.op, r.bucket.as_str(), r.key.as_str()),
            (Op::PutObject, "bkt", "addr.txt")
        );
        let r = route(
            &head("GET /?list-type=2 HTTP/1.1\r\nHost: bkt.s3.local\r\n\r\n"),
            d,
        )
        .unwrap();
        assert_eq!((r.op, r.bucket.as_str()), (Op::ListObjectsV2, "bkt"));
        let r = route(
            &head("GET /bkt/k HTTP/1.1\r\nHost: s3.local:9000\r\n\r\n"),
            d,
        )
        .unwrap();
        assert_eq!((r.bucket.as_str(), r.key.as_str()), ("bkt", "k"));
    }
}
