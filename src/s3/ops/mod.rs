//! S3 operations, one module per family. This module holds what several of them share:
//! bucket existence checks, small-body reading with digest verification, metadata headers.

pub mod acl;
pub mod bucket;
pub mod copy;
pub mod delete_objects;
pub mod listing;
pub mod multipart;
pub mod object;
pub mod put;

use crate::auth::PayloadCheck;
use crate::digest::{BodyDigests, ChecksumAlgorithm, Digests, Expectations};
use crate::http::body::BodyReader;
use crate::http::head::RequestHead;
use crate::s3::error::S3Error;
use crate::s3::Request;

/// Highest part number (S3's limit).
pub const PART_NUMBER_MAX: u32 = 10_000;
// Every part number a client may use fits the record format's part table.
const _: () = assert!(PART_NUMBER_MAX as usize == crate::storage::record::PARTS_MAX);

/// A part number in `1..=PART_NUMBER_MAX`, or `None` (every S3 parameter and element that names
/// a part goes through here).
pub fn parse_part_number(raw: &str) -> Option<u32> {
    raw.parse::<u32>()
        .ok()
        .filter(|n| (1..=PART_NUMBER_MAX).contains(n))
}

/// User metadata limit: sum of UTF-8 bytes of every `x-amz-meta-*` name (without prefix) and value.
pub const USER_METADATA_MAX_BYTES: usize = 2048;
/// System headers stored with an object and returned on GET/HEAD.
pub const STORED_SYSTEM_HEADERS: &[&str] = &[
    "content-type",
    "content-encoding",
    "cache-control",
    "content-disposition",
    "content-language",
    "expires",
];

/// Expectations of the body from the signature and the checksum headers.
pub fn body_expectations(req: &Request<'_>) -> Result<Expectations, S3Error> {
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
pub fn expectations_from_headers(head: &RequestHead) -> Result<Expectations, S3Error> {
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

/// Reads a whole small body (XML documents), verifying its digests.
pub async fn read_small_body(
    req: &Request<'_>,
    body: &mut BodyReader<'_>,
    max_bytes: usize,
) -> Result<(Vec<u8>, Digests), S3Error> {
    let mut digests = BodyDigests::new(body_expectations(req)?);
    let mut out = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = body.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        if out.len() + n > max_bytes {
            return Err(crate::s3err!(
                MalformedXML,
                "The request body is larger than the {max_bytes} bytes this operation accepts."
            ));
        }
        digests.update(&chunk[..n]);
        out.extend_from_slice(&chunk[..n]);
    }
    let d = digests.finish()?;
    Ok((out, d))
}

/// (lowercase name, value) pairs stored with an object.
pub type HeaderPairs = Vec<(String, String)>;

/// Stored system headers and user metadata taken from a request's headers.
pub fn metadata_from_headers(head: &RequestHead) -> Result<(HeaderPairs, HeaderPairs), S3Error> {
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

/// Content-Encoding without the `aws-chunked` transport coding.
pub fn strip_aws_chunked(v: &str) -> String {
    v.split(',')
        .map(|s| s.trim())
        .filter(|s| !s.is_empty() && !s.eq_ignore_ascii_case("aws-chunked"))
        .collect::<Vec<_>>()
        .join(",")
}

pub fn quoted(etag: &str) -> String {
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
    }
}
