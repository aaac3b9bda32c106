//! What a request body must hash to: the signed payload SHA-256, `Content-MD5`, and the
//! `x-amz-checksum-*` value (from a header now, or from an aws-chunked trailer later).
//!
//! Invariant: at most one checksum algorithm per request; a malformed digest header is refused
//! before any byte of the body is read.

use crate::auth::PayloadCheck;
use crate::digest::{ChecksumAlgorithm, Expectations};
use crate::http::head::RequestHead;
use crate::s3::error::S3Error;
use crate::s3::Request;

/// Whether the request's `x-amz-checksum-*` headers describe its body (every operation but
/// CompleteMultipartUpload, where they are the completed object's checksum).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChecksumHeaders {
    OfBody,
    OfObject,
}

/// Expectations of the body from the signature and the checksum headers.
pub(crate) fn body_expectations(req: &Request<'_>) -> Result<Expectations, S3Error> {
    expectations_of(req, ChecksumHeaders::OfBody)
}

/// Expectations of the body from the signature, `Content-MD5` and, when they are the body's,
/// the checksum headers.
pub(crate) fn expectations_of(
    req: &Request<'_>,
    checksums: ChecksumHeaders,
) -> Result<Expectations, S3Error> {
    let mut exp = match checksums {
        ChecksumHeaders::OfBody => expectations_from_headers(req.head)?,
        ChecksumHeaders::OfObject => Expectations {
            content_md5: content_md5(req.head)?,
            ..Default::default()
        },
    };
    match &req.auth.payload {
        PayloadCheck::Sha256(h) => exp.payload_sha256 = Some(*h),
        PayloadCheck::Unsigned => {}
        PayloadCheck::StreamingUnsignedTrailer | PayloadCheck::StreamingSigned(_) => {
            // The checksum named in x-amz-trailer arrives after the data: hash for it now.
            if let Some(name) = req.head.header("x-amz-trailer") {
                let algo = name
                    .trim()
                    .to_ascii_lowercase()
                    .strip_prefix("x-amz-checksum-")
                    .and_then(ChecksumAlgorithm::from_name);
                if let Some(algo) = algo {
                    exp.checksum = Some((algo, None));
                }
            }
        }
    }
    Ok(exp)
}

/// Reads `Content-MD5` and `x-amz-checksum-*` from the request headers.
pub(crate) fn expectations_from_headers(head: &RequestHead) -> Result<Expectations, S3Error> {
    let mut exp = Expectations {
        content_md5: content_md5(head)?,
        ..Default::default()
    };
    if let Some((algo, v)) = checksum_header(head)? {
        exp.checksum = Some((algo, Some(decode_checksum(algo, v)?)));
    }
    if exp.checksum.is_none() {
        if let Some(name) = head.header("x-amz-sdk-checksum-algorithm") {
            let algo = ChecksumAlgorithm::from_name(name).ok_or_else(|| {
                crate::s3err!(
                    InvalidRequest,
                    "Checksum algorithm {name} is not supported."
                )
            })?;
            exp.checksum = Some((algo, None));
        }
    }
    Ok(exp)
}

/// The `Content-MD5` header's digest, if sent.
fn content_md5(head: &RequestHead) -> Result<Option<[u8; 16]>, S3Error> {
    use base64::Engine as _;
    let Some(v) = head.header("content-md5") else {
        return Ok(None);
    };
    let raw = base64::engine::general_purpose::STANDARD
        .decode(v)
        .ok()
        .and_then(|d| <[u8; 16]>::try_from(d).ok());
    match raw {
        Some(d) => Ok(Some(d)),
        None => Err(crate::s3err!(
            InvalidDigest,
            "The Content-MD5 you specified was invalid."
        )),
    }
}

/// The request's one `x-amz-checksum-<algorithm>` header, if any: (algorithm, value).
pub(crate) fn checksum_header(
    head: &RequestHead,
) -> Result<Option<(ChecksumAlgorithm, &str)>, S3Error> {
    let mut found = None;
    for algo in ChecksumAlgorithm::ALL {
        if let Some(v) = head.header(algo.header_name()) {
            if found.is_some() {
                return Err(crate::s3err!(
                    InvalidRequest,
                    "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed."
                ));
            }
            found = Some((algo, v));
        }
    }
    Ok(found)
}

/// The raw digest of a checksum header's base64 value, which must have the algorithm's length.
pub(crate) fn decode_checksum(algo: ChecksumAlgorithm, v: &str) -> Result<Vec<u8>, S3Error> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(v)
        .ok()
        .filter(|d| d.len() == algo.digest_len())
        .ok_or_else(|| {
            crate::s3err!(
                InvalidRequest,
                "Value for {} header is invalid.",
                algo.header_name()
            )
        })
}
