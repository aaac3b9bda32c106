//! Router: turns a request's method, path and query into the S3 operation it names.
//!
//! Path-style addressing: `/` is the service, `/bucket` a bucket, `/bucket/key...` an object (the
//! key is everything after the first `/` following the bucket, percent-decoded, `+` kept).
//! Invariant: a sub-resource ringstore does not implement is answered `NotImplemented`, never
//! silently treated as the plain operation.

use crate::http::head::{virtual_host_bucket, Method, RequestHead};
use crate::http::percent::{parse_query, percent_decode};
use crate::s3::error::S3Error;
use crate::s3::params::{parse_part_number, PART_NUMBER_MAX};
use crate::storage::{is_valid_upload_id, StorageError};

/// The S3 operations ringstore serves; the multipart ones carry their upload id (and part
/// number), parsed and validated here once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Op {
    ListBuckets,
    CreateBucket,
    HeadBucket,
    DeleteBucket,
    GetBucketLocation,
    GetBucketVersioning,
    PutBucketVersioning,
    ListObjectsV1,
    ListObjectsV2,
    DeleteObjects,
    PutObject,
    CopyObject,
    GetObject,
    GetObjectAttributes,
    HeadObject,
    DeleteObject,
    CreateMultipartUpload,
    UploadPart(PartTarget),
    UploadPartCopy(PartTarget),
    CompleteMultipartUpload { upload_id: String },
    AbortMultipartUpload { upload_id: String },
    ListParts { upload_id: String },
    ListMultipartUploads,
    ListObjectVersions,
    GetBucketAcl,
    PutBucketAcl,
    GetObjectAcl,
    PutObjectAcl,
}

/// Operation names for metrics and the access log, indexed by [`Op::index`]; index 0 is a
/// request that was never routed (an unparsable head, a refused connection, a bad path).
pub(crate) const OP_NAMES: &[&str] = &[
    "None",
    "ListBuckets",
    "CreateBucket",
    "HeadBucket",
    "DeleteBucket",
    "GetBucketLocation",
    "GetBucketVersioning",
    "ListObjectsV1",
    "ListObjectsV2",
    "DeleteObjects",
    "PutObject",
    "CopyObject",
    "GetObject",
    "HeadObject",
    "DeleteObject",
    "CreateMultipartUpload",
    "UploadPart",
    "UploadPartCopy",
    "CompleteMultipartUpload",
    "AbortMultipartUpload",
    "ListParts",
    "ListMultipartUploads",
    "ListObjectVersions",
    "GetBucketAcl",
    "PutBucketAcl",
    "GetObjectAcl",
    "PutObjectAcl",
    "PutBucketVersioning",
    "PostObject",
    "GetObjectAttributes",
];

/// The [`OP_NAMES`] index of a POST Object (browser form upload), which has no [`Op`]: it is
/// recognised by its form before routing and authenticated by its policy.
pub(crate) const POST_OBJECT_OP: usize = 28;

impl Op {
    /// This operation's index in [`OP_NAMES`].
    pub(crate) fn index(&self) -> usize {
        match self {
            Op::ListBuckets => 1,
            Op::CreateBucket => 2,
            Op::HeadBucket => 3,
            Op::DeleteBucket => 4,
            Op::GetBucketLocation => 5,
            Op::GetBucketVersioning => 6,
            Op::ListObjectsV1 => 7,
            Op::ListObjectsV2 => 8,
            Op::DeleteObjects => 9,
            Op::PutObject => 10,
            Op::CopyObject => 11,
            Op::GetObject => 12,
            Op::HeadObject => 13,
            Op::DeleteObject => 14,
            Op::CreateMultipartUpload => 15,
            Op::UploadPart(_) => 16,
            Op::UploadPartCopy(_) => 17,
            Op::CompleteMultipartUpload { .. } => 18,
            Op::AbortMultipartUpload { .. } => 19,
            Op::ListParts { .. } => 20,
            Op::ListMultipartUploads => 21,
            Op::ListObjectVersions => 22,
            Op::GetBucketAcl => 23,
            Op::PutBucketAcl => 24,
            Op::GetObjectAcl => 25,
            Op::PutObjectAcl => 26,
            Op::PutBucketVersioning => 27,
            Op::GetObjectAttributes => 29,
        }
    }
}

/// The part an UploadPart / UploadPartCopy writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PartTarget {
    pub(crate) upload_id: String,
    pub(crate) part_number: u32,
}

/// A routed request.
#[derive(Debug, Clone)]
pub(crate) struct Routed {
    pub(crate) op: Op,
    pub(crate) bucket: String,
    pub(crate) key: String,
    /// Decoded query parameters in wire order.
    pub(crate) query: Vec<(String, String)>,
}

impl Routed {
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
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
];

fn not_implemented(what: &str) -> S3Error {
    crate::s3err!(
        NotImplemented,
        "A header or query you provided implies functionality that is not implemented: {what}."
    )
}

/// Routes a request. With `domain` set, `Host: bucket.DOMAIN` selects virtual-host addressing
/// (the whole path is then the key); otherwise, and for `Host: DOMAIN`, path-style.
pub(crate) fn route(head: &RequestHead, domain: Option<&str>) -> Result<Routed, S3Error> {
    let query = parse_query(&head.query)?;
    let (bucket, key) = bucket_and_key(head, domain)?;
    check_version_id(&query)?;
    // Bucket names become directory names: only valid S3 names ever reach storage (no `/`,
    // `..` or anything else a path could be made of). No bucket with another name can exist.
    if !bucket.is_empty() {
        crate::s3::bucket_name::validate_bucket_name(&bucket)?;
    }
    let q = QueryFlags::of(&query);
    let op = if bucket.is_empty() {
        match head.method {
            Method::Get => Op::ListBuckets,
            _ => return Err(method_not_allowed()),
        }
    } else if key.is_empty() {
        bucket_op(head.method, &q)?
    } else {
        object_op(head, &q)?
    };
    Ok(Routed {
        op,
        bucket,
        key,
        query,
    })
}

/// The (percent-decoded) bucket and key a request addresses.
pub(crate) fn bucket_and_key(
    head: &RequestHead,
    domain: Option<&str>,
) -> Result<(String, String), S3Error> {
    let path = head.path.strip_prefix('/').unwrap_or(&head.path);
    if let Some(b) = virtual_host_bucket(head.header("host"), domain) {
        return Ok((b.to_ascii_lowercase(), percent_decode(path)?));
    }
    let (bucket_raw, key_raw) = match path.find('/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (path, ""),
    };
    Ok((percent_decode(bucket_raw)?, percent_decode(key_raw)?))
}

/// Buckets are never versioned: the only version of an object is `null`.
fn check_version_id(query: &[(String, String)]) -> Result<(), S3Error> {
    match query.iter().find(|(k, _)| k == "versionId") {
        Some((_, v)) if v != "null" => Err(crate::s3err!(
            InvalidArgument,
            "Invalid version id specified"
        )
        .with_extra("ArgumentName", "versionId")
        .with_extra("ArgumentValue", v.clone())),
        _ => Ok(()),
    }
}

/// What the query string says about the operation.
struct QueryFlags<'q> {
    query: &'q [(String, String)],
    /// The first sub-resource S3 has and ringstore does not implement.
    unsupported: Option<&'q str>,
}

impl<'q> QueryFlags<'q> {
    fn of(query: &'q [(String, String)]) -> QueryFlags<'q> {
        let unsupported = query
            .iter()
            .map(|(k, _)| k.as_str())
            .find(|k| UNSUPPORTED_SUBRESOURCES.contains(k));
        QueryFlags { query, unsupported }
    }

    fn has(&self, name: &str) -> bool {
        self.query.iter().any(|(k, _)| k == name)
    }

    /// The first value of `name`, or `""` when absent.
    fn value(&self, name: &str) -> &'q str {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// `name` is present and no unsupported sub-resource rides along with it.
    fn only(&self, name: &str) -> bool {
        self.has(name) && self.unsupported.is_none()
    }

    fn reject_unsupported(&self) -> Result<(), S3Error> {
        self.unsupported
            .map_or(Ok(()), |sub| Err(not_implemented(sub)))
    }
}

fn bucket_op(m: Method, q: &QueryFlags<'_>) -> Result<Op, S3Error> {
    if m == Method::Post && q.has("delete") {
        return Ok(Op::DeleteObjects);
    }
    if m == Method::Get && q.only("uploads") {
        return Ok(Op::ListMultipartUploads);
    }
    if m == Method::Get && q.only("versions") {
        return Ok(Op::ListObjectVersions);
    }
    if q.only("acl") {
        return match m {
            Method::Get => Ok(Op::GetBucketAcl),
            Method::Put => Ok(Op::PutBucketAcl),
            _ => Err(method_not_allowed()),
        };
    }
    q.reject_unsupported()?;
    if q.has("attributes") {
        return Err(not_implemented("attributes")); // an object's, never a bucket's
    }
    let list_v2 = q.query.iter().any(|(k, v)| k == "list-type" && v == "2");
    match m {
        Method::Put if q.has("versioning") => Ok(Op::PutBucketVersioning),
        Method::Put => Ok(Op::CreateBucket),
        Method::Delete if q.has("versioning") => Err(method_not_allowed()),
        Method::Head => Ok(Op::HeadBucket),
        Method::Delete => Ok(Op::DeleteBucket),
        Method::Get if q.has("location") => Ok(Op::GetBucketLocation),
        Method::Get if q.has("versioning") => Ok(Op::GetBucketVersioning),
        Method::Get if list_v2 => Ok(Op::ListObjectsV2),
        Method::Get => Ok(Op::ListObjectsV1),
        _ => Err(method_not_allowed()),
    }
}

fn object_op(head: &RequestHead, q: &QueryFlags<'_>) -> Result<Op, S3Error> {
    q.reject_unsupported()?;
    if q.has("uploadId") && !q.has("acl") {
        return upload_op(head, q);
    }
    let copy = head.header("x-amz-copy-source").is_some();
    let op = match head.method {
        Method::Get if q.has("acl") => Op::GetObjectAcl,
        Method::Get if q.has("attributes") => Op::GetObjectAttributes,
        _ if q.has("attributes") => return Err(method_not_allowed()),
        Method::Put if q.has("acl") => Op::PutObjectAcl,
        _ if q.has("acl") => return Err(method_not_allowed()),
        Method::Post if q.has("uploads") => Op::CreateMultipartUpload,
        Method::Put if copy => Op::CopyObject,
        Method::Put => Op::PutObject,
        Method::Get => Op::GetObject,
        Method::Head => Op::HeadObject,
        Method::Delete => Op::DeleteObject,
        _ => return Err(method_not_allowed()),
    };
    Ok(op)
}

/// An operation on one multipart upload (`?uploadId=`), with its parameters parsed: the part
/// number first, then the upload id (an id this server never issued cannot exist).
fn upload_op(head: &RequestHead, q: &QueryFlags<'_>) -> Result<Op, S3Error> {
    let copy = head.header("x-amz-copy-source").is_some();
    let part = || -> Result<PartTarget, S3Error> {
        let part_number = part_number_param(q.value("partNumber"))?;
        let upload_id = upload_id_param(q.value("uploadId"))?;
        Ok(PartTarget {
            upload_id,
            part_number,
        })
    };
    let upload_id = || upload_id_param(q.value("uploadId"));
    match head.method {
        Method::Put if copy => Ok(Op::UploadPartCopy(part()?)),
        Method::Put => Ok(Op::UploadPart(part()?)),
        Method::Post => Ok(Op::CompleteMultipartUpload {
            upload_id: upload_id()?,
        }),
        Method::Delete => Ok(Op::AbortMultipartUpload {
            upload_id: upload_id()?,
        }),
        Method::Get => Ok(Op::ListParts {
            upload_id: upload_id()?,
        }),
        _ => Err(method_not_allowed()),
    }
}

/// The `uploadId` query parameter, validated (an id we never issued cannot exist).
fn upload_id_param(raw: &str) -> Result<String, S3Error> {
    if !is_valid_upload_id(raw) {
        let upload_id = raw.to_string();
        return Err(StorageError::NoSuchUpload { upload_id }.into());
    }
    Ok(raw.to_string())
}

/// The `partNumber` query parameter of UploadPart / UploadPartCopy.
fn part_number_param(raw: &str) -> Result<u32, S3Error> {
    parse_part_number(raw).ok_or_else(|| {
        crate::s3err!(
            InvalidArgument,
            "Part number must be an integer between 1 and {PART_NUMBER_MAX}, inclusive"
        )
        .with_extra("ArgumentName", "partNumber")
        .with_extra("ArgumentValue", raw)
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
    use crate::s3::error::S3ErrorCode;

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
        let r = route(
            &head("PUT /bkt?versioning HTTP/1.1\r\nHost: x\r\n\r\n"),
            None,
        );
        assert_eq!(r.unwrap().op, Op::PutBucketVersioning);
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

    #[test]
    fn multipart_operations_carry_their_parameters() {
        let id = "0123456789abcdef0123456789abcdef";
        let r = route(
            &head(&format!(
                "PUT /bkt/k?partNumber=7&uploadId={id} HTTP/1.1\r\nHost: x\r\n\r\n"
            )),
            None,
        )
        .unwrap();
        let target = PartTarget {
            upload_id: id.to_string(),
            part_number: 7,
        };
        assert_eq!(r.op, Op::UploadPart(target.clone()));
        let copy = format!(
            "PUT /bkt/k?partNumber=7&uploadId={id} HTTP/1.1\r\nHost: x\r\nx-amz-copy-source: b/k\r\n\r\n"
        );
        assert_eq!(
            route(&head(&copy), None).unwrap().op,
            Op::UploadPartCopy(target)
        );
        let get = format!("GET /bkt/k?uploadId={id} HTTP/1.1\r\nHost: x\r\n\r\n");
        let upload_id = id.to_string();
        assert_eq!(
            route(&head(&get), None).unwrap().op,
            Op::ListParts { upload_id }
        );
        let acl = format!("GET /bkt/k?acl&uploadId={id} HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(route(&head(&acl), None).unwrap().op, Op::GetObjectAcl);
    }

    #[test]
    fn multipart_parameter_errors() {
        let code = |raw: &str| route(&head(raw), None).unwrap_err().code;
        let id = "0123456789abcdef0123456789abcdef";
        assert_eq!(
            code(&format!(
                "PUT /bkt/k?partNumber=0&uploadId={id} HTTP/1.1\r\nHost: x\r\n\r\n"
            )),
            S3ErrorCode::InvalidArgument
        );
        // The part number is checked before the upload id.
        assert_eq!(
            code("PUT /bkt/k?partNumber=10001&uploadId=nope HTTP/1.1\r\nHost: x\r\n\r\n"),
            S3ErrorCode::InvalidArgument
        );
        assert_eq!(
            code("PUT /bkt/k?partNumber=1&uploadId=nope HTTP/1.1\r\nHost: x\r\n\r\n"),
            S3ErrorCode::NoSuchUpload
        );
        assert_eq!(
            code("DELETE /bkt/k?uploadId=ABC HTTP/1.1\r\nHost: x\r\n\r\n"),
            S3ErrorCode::NoSuchUpload
        );
        assert_eq!(
            code("HEAD /bkt/k?uploadId=nope HTTP/1.1\r\nHost: x\r\n\r\n"),
            S3ErrorCode::MethodNotAllowed
        );
    }

    #[test]
    fn op_names_match_the_variants() {
        let t = PartTarget {
            upload_id: String::new(),
            part_number: 1,
        };
        let id = String::new();
        let all = [
            Op::ListBuckets,
            Op::CreateBucket,
            Op::HeadBucket,
            Op::DeleteBucket,
            Op::GetBucketLocation,
            Op::GetBucketVersioning,
            Op::ListObjectsV1,
            Op::ListObjectsV2,
            Op::DeleteObjects,
            Op::PutObject,
            Op::CopyObject,
            Op::GetObject,
            Op::HeadObject,
            Op::DeleteObject,
            Op::CreateMultipartUpload,
            Op::UploadPart(t.clone()),
            Op::UploadPartCopy(t.clone()),
            Op::CompleteMultipartUpload {
                upload_id: id.clone(),
            },
            Op::AbortMultipartUpload {
                upload_id: id.clone(),
            },
            Op::ListParts {
                upload_id: id.clone(),
            },
            Op::ListMultipartUploads,
            Op::ListObjectVersions,
            Op::GetBucketAcl,
            Op::PutBucketAcl,
            Op::GetObjectAcl,
            Op::PutObjectAcl,
            Op::PutBucketVersioning,
            Op::GetObjectAttributes,
        ];
        // Plus "None" (never routed) and "PostObject" (routed by its form, not by `Op`).
        assert_eq!(all.len() + 2, OP_NAMES.len());
        assert_eq!(OP_NAMES[POST_OBJECT_OP], "PostObject");
        for op in all {
            let debug = format!("{op:?}");
            let name: String = debug.chars().take_while(|c| c.is_alphanumeric()).collect();
            assert_eq!(OP_NAMES[op.index()], name);
        }
    }
}
