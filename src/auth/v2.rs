//! AWS Signature Version 2 (the "RESTAuthentication" scheme): `Authorization: AWS AK:SIG` header
//! auth and `AWSAccessKeyId`/`Expires`/`Signature` query auth, as `aws s3 presign`, s3cmd and
//! botocore's `s3` signer send them.
//!
//! Invariants:
//! - the signature is base64(HMAC-SHA1(secret, StringToSign)) and is compared in constant time;
//! - StringToSign = method, Content-MD5, Content-Type, Date (the `Expires` value for query auth),
//!   then the canonicalized `x-amz-*` headers and the canonicalized resource, `\n`-separated;
//! - the canonicalized resource is the raw path (prefixed with `/BUCKET` for virtual-host
//!   requests) plus the sub-resources of [`SUBRESOURCES`] present in the query, sorted by name,
//!   values percent-decoded (botocore's list, a superset of AWS's documented one);
//! - with `x-amz-date`, AWS documents two StringToSign forms (empty Date with `x-amz-date` among the
//!   `x-amz-*` headers, and the worked example with its value in the Date slot instead): both are
//!   accepted, as is `/bucket/` for a path-style `/bucket` (botocore signs it so); header auth is refused beyond [`MAX_SKEW`], query auth once `Expires` has passed.

use super::crypto::{constant_time_eq, hmac_sha1_base64};
use super::error::{auth_err, AuthError};
use super::verify::{distance, too_skewed, unstreamed_payload, MAX_SKEW, UNSIGNED_PAYLOAD};
use super::{AuthOutcome, Credentials};
use crate::http::date::{iso8601_secs, parse_amz_date, parse_http_date, system_time, unix_secs};
use crate::http::head::{virtual_host_bucket, RequestHead};
use crate::http::percent::{percent_decode, percent_decode_bytes, query_segments};
use std::time::SystemTime;

/// The scheme word of a SigV2 `Authorization` header (followed by one space).
pub(crate) const V2_SCHEME_PREFIX: &str = "AWS ";

/// Query parameters that belong to the canonicalized resource (botocore's `QSAOfInterest`).
const SUBRESOURCES: &[&str] = &[
    "accelerate",
    "acl",
    "analytics",
    "cors",
    "defaultObjectAcl",
    "delete",
    "inventory",
    "lifecycle",
    "location",
    "logging",
    "metrics",
    "notification",
    "object-lock",
    "partNumber",
    "policy",
    "replication",
    "requestPayment",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "restore",
    "select",
    "select-type",
    "storageClass",
    "tagging",
    "torrent",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "website",
];

/// True when an `Authorization` value uses the SigV2 scheme.
pub(crate) fn is_v2_header(value: &str) -> bool {
    value.starts_with(V2_SCHEME_PREFIX)
}

/// The canonicalized resources a request may have been signed with: the one AWS documents, and for
/// a path-style bucket request (`/bucket`) also `/bucket/`, which botocore signs.
pub(crate) fn canonical_resources(head: &RequestHead, domain: Option<&str>) -> Vec<String> {
    let vhost = virtual_host_bucket(head.header("host"), domain);
    let mut out = vec![canonical_resource(head, vhost, false)];
    if vhost.is_none() && head.path.len() > 1 && !head.path[1..].contains('/') {
        out.push(canonical_resource(head, None, true));
    }
    out
}

/// The canonicalized resource: `/BUCKET` for virtual-host requests, the raw path (with `/`
/// appended when `bucket_slash`), and the sorted sub-resources (`?acl&versionId=x`).
pub(crate) fn canonical_resource(
    head: &RequestHead,
    vhost_bucket: Option<&str>,
    bucket_slash: bool,
) -> String {
    let mut out = String::with_capacity(head.path.len() + 32);
    if let Some(bucket) = vhost_bucket {
        out.push('/');
        out.push_str(bucket);
    }
    out.push_str(&head.path);
    if bucket_slash {
        out.push('/');
    }
    let mut subs: Vec<String> = Vec::new();
    for seg in head.query.split('&').filter(|s| !s.is_empty()) {
        let (name, value) = match seg.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (seg, None),
        };
        if !SUBRESOURCES.contains(&name) {
            continue;
        }
        subs.push(match value {
            // Values are signed decoded; an invalid escape is signed as sent.
            Some(v) => {
                let decoded = percent_decode_bytes(v).unwrap_or_else(|| v.as_bytes().to_vec());
                format!("{name}={}", String::from_utf8_lossy(&decoded))
            }
            None => name.to_string(),
        });
    }
    subs.sort_by(|a, b| a.split('=').next().cmp(&b.split('=').next()));
    for (i, s) in subs.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(s);
    }
    out
}

/// The canonicalized `x-amz-*` headers: lowercase names, sorted, repeated values joined with
/// `,`, each line ending in `\n`. `skip` leaves one header name out.
pub(crate) fn canonical_amz_headers(headers: &[(String, String)], skip: Option<&str>) -> String {
    let mut names: Vec<&str> = headers
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| n.starts_with("x-amz-") && Some(*n) != skip)
        .collect();
    names.sort_unstable();
    names.dedup();
    let mut out = String::new();
    for name in names {
        out.push_str(name);
        out.push(':');
        let values: Vec<&str> = headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.trim())
            .collect();
        out.push_str(&values.join(","));
        out.push('\n');
    }
    out
}

/// The StringToSign with `date` in the Date slot.
fn string_to_sign(head: &RequestHead, date: &str, amz: &str, resource: &str) -> String {
    format!(
        "{}\n{}\n{}\n{date}\n{amz}{resource}",
        head.method_raw,
        head.header("content-md5").unwrap_or_default(),
        head.header("content-type").unwrap_or_default(),
    )
}

/// Checks `provided` against each candidate StringToSign; the first is reported on mismatch.
fn check_signature(
    creds: &Credentials,
    access_key: &str,
    provided: &str,
    candidates: &[String],
) -> Result<(), AuthError> {
    assert!(!candidates.is_empty(), "at least one StringToSign");
    let mut ok = false;
    for sts in candidates {
        let expected = hmac_sha1_base64(creds.secret_key.as_bytes(), sts.as_bytes());
        ok |= constant_time_eq(expected.as_bytes(), provided.as_bytes());
    }
    if ok {
        return Ok(());
    }
    Err(auth_err!(
        SignatureDoesNotMatch,
        "The request signature we calculated does not match the signature you provided. Check your key and signing method."
    )
    .with_extra("AWSAccessKeyId", access_key)
    .with_extra("StringToSign", candidates[0].clone())
    .with_extra("SignatureProvided", provided))
}

pub(super) fn check_access_key(creds: &Credentials, access_key: &str) -> Result<(), AuthError> {
    if access_key == creds.access_key {
        return Ok(());
    }
    Err(auth_err!(
        InvalidAccessKeyId,
        "The AWS Access Key Id you provided does not exist in our records."
    )
    .with_extra("AWSAccessKeyId", access_key))
}

/// A SigV2 time header: an HTTP date, also with the numeric zone `+0000` for GMT (s3cmd and AWS's
/// examples write it so), or ISO 8601 basic as a courtesy.
fn parse_v2_time(v: &str) -> Option<SystemTime> {
    let gmt = v.strip_suffix(" +0000").map(|d| format!("{d} GMT"));
    parse_http_date(gmt.as_deref().unwrap_or(v))
        .or_else(|| parse_amz_date(v))
        .map(system_time)
}

/// Verifies `Authorization: AWS AK:SIG`.
pub(crate) fn verify_header(
    creds: &Credentials,
    domain: Option<&str>,
    head: &RequestHead,
    value: &str,
    now: SystemTime,
) -> Result<AuthOutcome, AuthError> {
    let rest = value[V2_SCHEME_PREFIX.len()..].trim();
    let Some((access_key, signature)) = rest
        .split_once(':')
        .filter(|(a, s)| !a.is_empty() && !s.is_empty() && !s.contains(':'))
    else {
        return Err(auth_err!(
            InvalidArgument,
            "AWS authorization header is invalid.  Expected AwsAccessKeyId:signature"
        )
        .with_extra("ArgumentName", "Authorization")
        .with_extra("ArgumentValue", value));
    };
    check_access_key(creds, access_key)?;
    let amz_date = head.header("x-amz-date");
    let (raw_time, time) = match amz_date.or(head.header("date")) {
        Some(v) => (v, parse_v2_time(v)),
        None => ("", None),
    };
    let time = time.ok_or_else(|| {
        auth_err!(
            AccessDenied,
            "AWS authentication requires a valid Date or x-amz-date header"
        )
    })?;
    if distance(time, now) > MAX_SKEW {
        return Err(too_skewed(raw_time, now));
    }
    let all = canonical_amz_headers(&head.headers, None);
    let mut candidates = Vec::with_capacity(4);
    for resource in canonical_resources(head, domain) {
        match amz_date {
            Some(d) => {
                candidates.push(string_to_sign(head, "", &all, &resource));
                let rest = canonical_amz_headers(&head.headers, Some("x-amz-date"));
                candidates.push(string_to_sign(head, d, &rest, &resource));
            }
            None => candidates.push(string_to_sign(head, raw_time, &all, &resource)),
        }
    }
    check_signature(creds, access_key, signature, &candidates)?;
    let payload_hash = head
        .header("x-amz-content-sha256")
        .unwrap_or(UNSIGNED_PAYLOAD);
    Ok(AuthOutcome {
        access_key: access_key.to_string(),
        payload: unstreamed_payload(payload_hash)?,
        presigned: false,
    })
}

/// The decoded `AWSAccessKeyId`, `Signature` and `Expires` query parameters.
fn v2_query_params(raw_query: &str) -> Result<[String; 3], AuthError> {
    const NAMES: [&str; 3] = ["AWSAccessKeyId", "Signature", "Expires"];
    let mut found: [Option<String>; 3] = Default::default();
    for (name, value) in query_segments(raw_query) {
        let Some(i) = NAMES.iter().position(|n| *n == name) else {
            continue;
        };
        let value = percent_decode(value).map_err(|_| {
            auth_err!(
                AuthorizationQueryParametersError,
                "The {} query parameter has invalid percent-encoding.",
                name
            )
        })?;
        if found[i].replace(value).is_some() {
            return Err(auth_err!(
                AuthorizationQueryParametersError,
                "The {} query parameter is given more than once.",
                name
            ));
        }
    }
    match found {
        [Some(ak), Some(sig), Some(exp)] => Ok([ak, sig, exp]),
        _ => Err(auth_err!(
            AccessDenied,
            "Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters"
        )),
    }
}

/// Verifies a SigV2 presigned URL (`AWSAccessKeyId`, `Expires`, `Signature`).
pub(crate) fn verify_query(
    creds: &Credentials,
    domain: Option<&str>,
    head: &RequestHead,
    now: SystemTime,
) -> Result<AuthOutcome, AuthError> {
    let [access_key, signature, expires] = v2_query_params(&head.query)?;
    check_access_key(creds, &access_key)?;
    let expiry_secs: u64 = expires
        .parse()
        .ok()
        .filter(|_| expires.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| {
            auth_err!(
                AccessDenied,
                "Invalid date (should be seconds since epoch): {}",
                expires
            )
        })?;
    if unix_secs(now) > expiry_secs {
        return Err(auth_err!(AccessDenied, "Request has expired")
            .with_extra("Expires", iso8601_secs(expiry_secs))
            .with_extra("ServerTime", iso8601_secs(unix_secs(now))));
    }
    let amz = canonical_amz_headers(&head.headers, None);
    let candidates: Vec<String> = canonical_resources(head, domain)
        .iter()
        .map(|resource| string_to_sign(head, &expires, &amz, resource))
        .collect();
    check_signature(creds, &access_key, &signature, &candidates)?;
    let payload_hash = head
        .header("x-amz-content-sha256")
        .unwrap_or(UNSIGNED_PAYLOAD);
    Ok(AuthOutcome {
        access_key,
        payload: unstreamed_payload(payload_hash)?,
        presigned: true,
    })
}
