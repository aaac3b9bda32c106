//! GetObject, HeadObject and DeleteObject.
//!
//! GET and HEAD open the object's file directly on this core (no owner round trip): the record
//! inside the opened file is the object, so a concurrent overwrite is seen whole or not at all.
//! Invariants: a full-object checksum is returned only on a full (200) response with
//! `x-amz-checksum-mode: ENABLED`, never on a 206; conditional headers follow RFC 7232 precedence
//! as S3 applies it.

use crate::http::date::{http_date, parse_http_date};
use crate::http::head::RequestHead;
use crate::http::response::{BodyChunk, ChunkStream, Response, ResponseBody};
use crate::s3::bucket_name::validate_object_key;
use crate::s3::error::{S3Error, S3ErrorCode};
use crate::s3::ops::quoted;
use crate::s3::params::{parse_part_number, PART_NUMBER_MAX};
use crate::s3::Request;
use crate::storage::{Chunk, ObjectRecord, ObjectStream, Store};
use std::future::Future;
use std::io;
use std::pin::Pin;

/// Content-Type reported for objects stored without one (S3's default).
pub(crate) const DEFAULT_CONTENT_TYPE: &str = "binary/octet-stream";

/// `response-*` query overrides accepted on GET (presigned URLs) and the header each sets.
const RESPONSE_OVERRIDES: &[(&str, &str)] = &[
    ("response-content-type", "Content-Type"),
    ("response-content-language", "Content-Language"),
    ("response-expires", "Expires"),
    ("response-cache-control", "Cache-Control"),
    ("response-content-disposition", "Content-Disposition"),
    ("response-content-encoding", "Content-Encoding"),
];

/// A read that lost a race with an overwrite or delete of a multipart object (its part files
/// were unlinked between opening the record and opening the parts) is retried this often.
const RACED_RETRIES_MAX: usize = 2;

pub(crate) async fn get_object(
    store: &Store,
    req: &Request<'_>,
    is_head: bool,
) -> Result<Response, S3Error> {
    let mut attempt = 0;
    loop {
        match get_object_once(store, req, is_head).await {
            Err(e) if e.code == S3ErrorCode::ServiceUnavailable && attempt < RACED_RETRIES_MAX => {
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// The `partNumber` query parameter of GET/HEAD, if any.
fn part_number_query(req: &Request<'_>) -> Result<Option<u32>, S3Error> {
    let Some(raw) = req.routed.param("partNumber") else {
        return Ok(None);
    };
    parse_part_number(raw).map(Some).ok_or_else(|| {
        crate::s3err!(
            InvalidArgument,
            "Part number must be an integer between 1 and {PART_NUMBER_MAX}, inclusive"
        )
    })
}

async fn get_object_once(
    store: &Store,
    req: &Request<'_>,
    is_head: bool,
) -> Result<Response, S3Error> {
    let (bucket, key) = (&req.routed.bucket, &req.routed.key);
    validate_object_key(key)?;
    let part_number = part_number_query(req)?;
    let obj = store.open_object(bucket, key).await?;
    if let Err(e) = check_conditions(req, &obj.record) {
        return not_modified_or(e, &obj.record);
    }
    let range = requested_range(req, &obj.record, part_number)?;
    let mut resp = Response::new(if range.is_some() { 206 } else { 200 });
    object_headers(&mut resp, &obj.record);
    if let (Some(_), Some(layout)) = (part_number, &obj.record.parts) {
        resp.push_header("x-amz-mp-parts-count", layout.parts.len().to_string());
    }
    if let Some((a, b)) = range {
        let size = obj.record.size;
        resp.push_header("Content-Range", format!("bytes {a}-{b}/{size}"));
    } else if checksum_mode_enabled(req.head) {
        if let Some(c) = &obj.record.checksum {
            resp.push_header(
                &format!("x-amz-checksum-{}", c.algorithm),
                c.value_b64.clone(),
            );
            resp.push_header("x-amz-checksum-type", c.type_name());
        }
    }
    apply_response_overrides(&mut resp, req);
    let (start, len) = match range {
        Some((a, b)) => (a, b - a + 1),
        None => (0, obj.record.size),
    };
    if is_head {
        resp.head_content_length = Some(len);
    } else {
        let stream = obj.stream(start, len).await?;
        resp.body = ResponseBody::Stream(Box::new(StreamBody(stream)));
    }
    Ok(resp)
}

/// A stored object's bytes as an HTTP response body.
struct StreamBody(ObjectStream);

impl ChunkStream for StreamBody {
    fn remaining(&self) -> u64 {
        self.0.remaining()
    }

    fn next_chunk(&mut self) -> Pin<Box<dyn Future<Output = io::Result<Option<BodyChunk>>> + '_>> {
        Box::pin(async move {
            Ok(self.0.next_chunk().await?.map(|c| match c {
                Chunk::Dma(r) => BodyChunk::Dma(r),
                Chunk::Shared(b) => BodyChunk::Shared(b),
            }))
        })
    }
}

/// A failed GET condition: 304 with the object's validators, or the error itself.
fn not_modified_or(e: S3Error, rec: &ObjectRecord) -> Result<Response, S3Error> {
    if e.code != S3ErrorCode::NotModified {
        return Err(e);
    }
    let mut r = Response::new(304);
    r.push_header("ETag", quoted(&rec.etag()));
    r.push_header("Last-Modified", http_date(rec.last_modified_ms));
    Ok(r)
}

/// The inclusive byte range a GET asks for: a part, a `Range` header, or the whole object.
fn requested_range(
    req: &Request<'_>,
    rec: &ObjectRecord,
    part_number: Option<u32>,
) -> Result<Option<(u64, u64)>, S3Error> {
    if let Some(n) = part_number {
        return part_range(rec, n).map(Some).ok_or_else(|| {
            crate::s3err!(
                InvalidPartNumber,
                "The requested partnumber is not satisfiable"
            )
        });
    }
    let Some(h) = req.head.header("range") else {
        return Ok(None);
    };
    match parse_range(h, rec.size) {
        RangeSpec::Satisfiable(a, b) => Ok(Some((a, b))),
        RangeSpec::Ignore => Ok(None),
        RangeSpec::Unsatisfiable => Err(crate::s3err!(
            InvalidRange,
            "The requested range is not satisfiable"
        )
        .with_extra("RangeRequested", h)
        .with_extra("ActualObjectSize", rec.size.to_string())),
    }
}

fn checksum_mode_enabled(head: &RequestHead) -> bool {
    head.header("x-amz-checksum-mode")
        .is_some_and(|v| v.eq_ignore_ascii_case("enabled"))
}

/// `response-*` query parameters replace the matching response headers.
fn apply_response_overrides(resp: &mut Response, req: &Request<'_>) {
    for (param, header) in RESPONSE_OVERRIDES {
        if let Some(v) = req.routed.param(param) {
            resp.headers
                .retain(|(n, _)| !n.eq_ignore_ascii_case(header));
            resp.push_header(header, v.to_string());
        }
    }
}

/// Inclusive byte range of part `n` (a single-part object is its own part 1).
fn part_range(rec: &ObjectRecord, n: u32) -> Option<(u64, u64)> {
    let (start, len) = match &rec.parts {
        None if n == 1 => (0, rec.size),
        None => return None,
        Some(layout) => {
            let mut start = 0;
            let mut found = None;
            for p in &layout.parts {
                if p.number == n {
                    found = Some((start, p.size));
                    break;
                }
                start += p.size;
            }
            // Parts are addressed by position (1-based), as S3 does after completion.
            match found {
                Some(f) => f,
                None => {
                    let idx = (n as usize).checked_sub(1)?;
                    let p = layout.parts.get(idx)?;
                    let start: u64 = layout.parts[..idx].iter().map(|p| p.size).sum();
                    (start, p.size)
                }
            }
        }
    };
    (len > 0).then(|| (start, start + len - 1))
}

/// Headers every GET/HEAD of `rec` carries.
fn object_headers(resp: &mut Response, rec: &ObjectRecord) {
    resp.push_header("ETag", quoted(&rec.etag()));
    resp.push_header("Last-Modified", http_date(rec.last_modified_ms));
    resp.push_header("Accept-Ranges", "bytes");
    if rec.system_header("content-type").is_none() {
        resp.push_header("Content-Type", DEFAULT_CONTENT_TYPE);
    }
    for (n, v) in &rec.system_headers {
        resp.push_header(&canonical_header_name(n), v.clone());
    }
    for (n, v) in &rec.user_metadata {
        resp.push_header(&format!("x-amz-meta-{n}"), v.clone());
    }
}

/// `content-type` -> `Content-Type` (one allocation: this runs for every stored header of
/// every GET and HEAD).
fn canonical_header_name(lower: &str) -> String {
    let mut out = String::with_capacity(lower.len());
    let mut word_start = true;
    for c in lower.chars() {
        out.push(if word_start {
            c.to_ascii_uppercase()
        } else {
            c
        });
        word_start = c == '-';
    }
    out
}

/// Whether an If-Match / If-None-Match list matches `etag` (`*` matches anything).
fn etag_matches(list: &str, etag: &str) -> bool {
    list.split(',').map(|t| t.trim()).any(|t| {
        let t = t.strip_prefix("W/").unwrap_or(t);
        t == "*" || t.trim_matches('"') == etag
    })
}

/// Applies If-Match, If-Unmodified-Since, If-None-Match, If-Modified-Since (S3 precedence).
fn check_conditions(req: &Request<'_>, rec: &ObjectRecord) -> Result<(), S3Error> {
    check_conditions_with(req.head, "", rec, false)
}

/// Applies the four conditional headers, each named `{prefix}if-...` (`x-amz-copy-source-` for
/// CopyObject / UploadPartCopy sources). For a copy source every failed condition is
/// PreconditionFailed (S3 never answers 304 to a copy).
pub(crate) fn check_conditions_with(
    head: &RequestHead,
    prefix: &str,
    rec: &ObjectRecord,
    copy_source: bool,
) -> Result<(), S3Error> {
    let get = |name: &str| head.header(&format!("{prefix}{name}"));
    let etag = rec.etag();
    let modified_s = rec.last_modified_ms / 1000;
    if let Some(list) = get("if-match") {
        if !etag_matches(list, &etag) {
            return Err(precondition_failed("If-Match"));
        }
    } else if let Some(since) = get("if-unmodified-since").and_then(parse_http_date) {
        if modified_s > since {
            return Err(precondition_failed("If-Unmodified-Since"));
        }
    }
    let not_modified = |condition: &str| {
        if copy_source {
            precondition_failed(condition)
        } else {
            crate::s3err!(NotModified, "Not Modified")
        }
    };
    if let Some(list) = get("if-none-match") {
        if etag_matches(list, &etag) {
            return Err(not_modified("If-None-Match"));
        }
    } else if let Some(since) = get("if-modified-since").and_then(parse_http_date) {
        if modified_s <= since {
            return Err(not_modified("If-Modified-Since"));
        }
    }
    Ok(())
}

fn precondition_failed(condition: &str) -> S3Error {
    crate::s3err!(
        PreconditionFailed,
        "At least one of the pre-conditions you specified did not hold"
    )
    .with_extra("Condition", condition)
}

/// A parsed `Range` header against an object of known size.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RangeSpec {
    /// Inclusive byte positions.
    Satisfiable(u64, u64),
    /// Syntactically invalid or multi-range: serve the whole object.
    Ignore,
    Unsatisfiable,
}

pub(crate) fn parse_range(header: &str, size: u64) -> RangeSpec {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return RangeSpec::Ignore;
    };
    if spec.contains(',') {
        return RangeSpec::Ignore;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeSpec::Ignore;
    };
    let parse = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
            None
        } else {
            s.parse().ok()
        }
    };
    match (a.trim(), b.trim()) {
        ("", n) => match parse(n) {
            None => RangeSpec::Ignore,
            Some(0) => RangeSpec::Unsatisfiable,
            Some(_) if size == 0 => RangeSpec::Unsatisfiable,
            Some(n) => RangeSpec::Satisfiable(size.saturating_sub(n), size - 1),
        },
        (a, "") => match parse(a) {
            Some(a) if a < size => RangeSpec::Satisfiable(a, size - 1),
            Some(_) => RangeSpec::Unsatisfiable,
            None => RangeSpec::Ignore,
        },
        (a, b) => match (parse(a), parse(b)) {
            (Some(a), Some(b)) if a > b => RangeSpec::Ignore,
            (Some(a), Some(_)) if a >= size => RangeSpec::Unsatisfiable,
            (Some(a), Some(b)) => RangeSpec::Satisfiable(a, b.min(size - 1)),
            _ => RangeSpec::Ignore,
        },
    }
}

pub(crate) async fn delete_object(store: &Store, req: &Request<'_>) -> Result<Response, S3Error> {
    let (bucket, key) = (&req.routed.bucket, &req.routed.key);
    validate_object_key(key)?;
    store.delete_object(bucket, key).await?;
    Ok(Response::new(204))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_header_names_are_canonical() {
        for (lower, want) in [
            ("content-type", "Content-Type"),
            ("cache-control", "Cache-Control"),
            (
                "x-amz-website-redirect-location",
                "X-Amz-Website-Redirect-Location",
            ),
            ("expires", "Expires"),
            ("a--b", "A--B"),
            ("-x", "-X"),
            ("", ""),
        ] {
            assert_eq!(canonical_header_name(lower), want);
        }
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), RangeSpec::Satisfiable(0, 9));
        assert_eq!(
            parse_range("bytes=10-", 100),
            RangeSpec::Satisfiable(10, 99)
        );
        assert_eq!(parse_range("bytes=-5", 100), RangeSpec::Satisfiable(95, 99));
        assert_eq!(
            parse_range("bytes=-500", 100),
            RangeSpec::Satisfiable(0, 99)
        );
        assert_eq!(
            parse_range("bytes=90-200", 100),
            RangeSpec::Satisfiable(90, 99)
        );
        assert_eq!(parse_range("bytes=100-", 100), RangeSpec::Unsatisfiable);
        assert_eq!(parse_range("bytes=100-200", 100), RangeSpec::Unsatisfiable);
        assert_eq!(parse_range("bytes=0-", 0), RangeSpec::Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 100), RangeSpec::Unsatisfiable);
        assert_eq!(parse_range("bytes=5-1", 100), RangeSpec::Ignore);
        assert_eq!(parse_range("bytes=0-1,3-4", 100), RangeSpec::Ignore);
        assert_eq!(parse_range("items=0-1", 100), RangeSpec::Ignore);
        assert_eq!(parse_range("bytes=x-1", 100), RangeSpec::Ignore);
    }

    #[test]
    fn etag_lists() {
        assert!(etag_matches("\"abc\"", "abc"));
        assert!(etag_matches("\"x\", \"abc\"", "abc"));
        assert!(etag_matches("*", "abc"));
        assert!(!etag_matches("\"abd\"", "abc"));
    }
}
