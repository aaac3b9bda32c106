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

/// Expectations of the body from the signature and the checksum headers.
pub(crate) fn body_expectations(req: &Request<'_>) -> Result<Expectations, S3Error> {
    let mut exp = expectations_from_headers(req.head)?;
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
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut exp = Expectations::default();
    if let Some(v) = head.header("content-md5") {
        let raw = b64
            .decode(v)
            .ok()
            .filter(|d| d.len() == 16)
            .ok_or_else(|| {
                crate::s3err!(InvalidDigest, "The Content-MD5 you specified was invalid.")
            })?;
        exp.content_md5 = Some(raw.try_into().unwrap());
    }
    for algo in ChecksumAlgorithm::ALL {
        if let Some(v) = head.header(algo.header_name()) {
            if exp.checksum.is_some() {
                return Err(crate::s3err!(
                    InvalidRequest,
                    "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed."
                ));
            }
            let raw = b64
                .decode(v)
                .ok()
                .filter(|d| d.len() == algo.digest_len())
                .ok_or_else(|| {
                    crate::s3err!(
                        InvalidRequest,
                        "Value for {} header is invalid.",
                        algo.header_name()
                    )
                })?;
            exp.checksum = Some((algo, Some(raw)));
        }
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
