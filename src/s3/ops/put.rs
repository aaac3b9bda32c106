//! PutObject: the body goes through the ingest pipeline into a staged object on this core, then
//! the bucket's owner commits it.
//!
//! Invariants: nothing is visible or listed until the staged object is durable and committed;
//! any failure (bad digest, short body, I/O error, missing bucket) leaves nothing behind; the
//! 200 is sent only after the commit is durable.

use crate::http::head::RequestHead;
use crate::http::response::Response;
use crate::s3::bucket_name::validate_object_key;
use crate::s3::error::S3Error;
use crate::s3::ingest::{ingest_request_body, PUT_OBJECT_MAX_BYTES};
use crate::s3::ops::{metadata_from_headers, quoted};
use crate::s3::Request;
use crate::storage::{EntityTag, EtagMatch, ObjectRecord, Store, WriteCondition};

pub(crate) async fn put_object(
    store: &Store,
    req: &Request<'_>,
    body: &mut crate::http::body::BodyReader<'_>,
) -> Result<Response, S3Error> {
    let (bucket, key) = (&req.routed.bucket, &req.routed.key);
    validate_object_key(key)?;
    let (system_headers, user_metadata) = metadata_from_headers(req.head)?;
    store.bucket_created_ms(bucket).await?;
    let record = ObjectRecord {
        system_headers,
        user_metadata,
        ..ObjectRecord::new(key)
    };
    let condition = write_condition(req.head)?;
    let staged = ingest_request_body(store, req, body, record, PUT_OBJECT_MAX_BYTES, None).await?;
    let mut response = stored_response(&staged.record);
    if let Some(c) = &staged.record.checksum {
        response.push_header("x-amz-checksum-type", c.type_name());
    }
    store.put_object(bucket, key, staged, condition).await?;
    Ok(response)
}

/// 200 with the ETag and the checksum the client sent (echoed, as S3 does).
pub(crate) fn stored_response(record: &ObjectRecord) -> Response {
    let mut resp = Response::new(200).header("ETag", quoted(&record.etag()));
    if let Some(c) = &record.checksum {
        resp.push_header(
            &format!("x-amz-checksum-{}", c.algorithm),
            c.value_b64.clone(),
        );
    }
    resp
}

/// The conditional-write headers of PutObject / CompleteMultipartUpload: `If-Match` (replace
/// only a current object it matches) and `If-None-Match` (write only if the current object, if
/// any, does not match), each `*` or a list of ETags.
pub(crate) fn write_condition(head: &RequestHead) -> Result<WriteCondition, S3Error> {
    Ok(WriteCondition {
        if_match: head.header("if-match").map(parse_etag_match),
        if_none_match: head.header("if-none-match").map(parse_etag_match),
    })
}

/// An `If-Match` / `If-None-Match` value (RFC 9110): `*`, or a comma-separated list of entity
/// tags, each `"opaque"` or weak `W/"opaque"`. Leniently, a bare token without quotes is taken
/// as a strong tag (some clients send ETags unquoted); an unterminated quote runs to the end.
pub(crate) fn parse_etag_match(value: &str) -> EtagMatch {
    if value.trim() == "*" {
        return EtagMatch::Any;
    }
    let mut tags = Vec::new();
    let mut rest = value;
    loop {
        rest = rest.trim_start_matches([',', ' ', '\t']);
        if rest.is_empty() {
            return EtagMatch::Tags(tags);
        }
        let weak = rest.starts_with("W/");
        if weak {
            rest = &rest[2..];
        }
        let opaque;
        if let Some(quoted) = rest.strip_prefix('"') {
            let end = quoted.find('"').unwrap_or(quoted.len());
            opaque = &quoted[..end];
            rest = quoted.get(end + 1..).unwrap_or("");
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            opaque = rest[..end].trim();
            rest = &rest[end..];
        }
        tags.push(EntityTag {
            opaque: opaque.to_string(),
            weak,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strong(s: &str) -> EntityTag {
        EntityTag {
            opaque: s.to_string(),
            weak: false,
        }
    }

    #[test]
    fn etag_lists() {
        assert_eq!(parse_etag_match(" * "), EtagMatch::Any);
        assert_eq!(
            parse_etag_match("\"a\""),
            EtagMatch::Tags(vec![strong("a")])
        );
        let weak_b = EntityTag {
            opaque: "b".into(),
            weak: true,
        };
        assert_eq!(
            parse_etag_match("\"a\", W/\"b\",c ,\"d,e\""),
            EtagMatch::Tags(vec![strong("a"), weak_b, strong("c"), strong("d,e")])
        );
        assert_eq!(parse_etag_match(" , "), EtagMatch::Tags(vec![]));
        assert_eq!(
            parse_etag_match("\"open"),
            EtagMatch::Tags(vec![strong("open")])
        );
    }

    #[test]
    fn strong_and_weak_comparison() {
        let m = parse_etag_match("W/\"x\", \"y\"");
        assert!(!m.matches("x", true), "a weak tag never matches strongly");
        assert!(m.matches("x", false));
        assert!(m.matches("y", true));
        assert!(!m.matches("z", false));
        assert!(EtagMatch::Any.matches("anything", true));
    }
}
