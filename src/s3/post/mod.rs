//! POST Object (browser form uploads): a `multipart/form-data` POST to a bucket whose fields carry
//! a signed policy, the key (`${filename}` replaced by the file's name), metadata and checksums,
//! and whose last part is the file.
//!
//! Invariants: the policy's signature and expiry are checked, and every condition holds, before
//! the first file byte is read; the file streams through the same ingest pipeline as PutObject
//! (checksums, size limits, staging) and is committed only when it lies within the policy's
//! `content-length-range`; nothing is stored on any refusal.

mod form;
mod policy;

use crate::auth::{PostSignature, Verifier};
use crate::digest::BodyDigests;
use crate::http::body::BodyReader;
use crate::http::head::{Method, RequestHead};
use crate::http::response::Response;
use crate::s3::bucket_name::validate_object_key;
use crate::s3::error::S3Error;
use crate::s3::ingest::{expectations_from_headers, ingest, PUT_OBJECT_MAX_BYTES};
use crate::s3::ops::{metadata_from_headers, quoted};
use crate::storage::{ObjectRecord, Store, WriteCondition};
use form::FormReader;
use policy::Policy;
use std::time::SystemTime;

/// Whether a request is a browser form upload: a POST without query or `Authorization`, with a
/// form body.
pub(crate) fn is_post_object(head: &RequestHead) -> bool {
    head.method == Method::Post
        && head.query.is_empty()
        && head.header("authorization").is_none()
        && head
            .header("content-type")
            .and_then(form::boundary)
            .is_some()
}

fn field<'f>(fields: &'f [(String, String)], name: &str) -> Option<&'f str> {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn missing_field(name: &str) -> S3Error {
    crate::s3err!(
        InvalidArgument,
        "Bucket POST must contain a field named '{name}'.  If it is specified, please check the order of the fields."
    )
    .with_extra("ArgumentName", name.to_string())
    .with_extra("ArgumentValue", "")
}

/// Verifies the policy's signature and parses it (expiry included).
fn authenticate(
    verifier: &Verifier,
    fields: &[(String, String)],
    now: SystemTime,
) -> Result<Policy, S3Error> {
    let f = |n: &str| field(fields, n);
    let sig = match (f("x-amz-signature"), f("signature"), f("awsaccesskeyid")) {
        (Some(signature), _, _) => PostSignature::V4 {
            algorithm: f("x-amz-algorithm").ok_or_else(|| missing_field("x-amz-algorithm"))?,
            credential: f("x-amz-credential").ok_or_else(|| missing_field("x-amz-credential"))?,
            amz_date: f("x-amz-date").ok_or_else(|| missing_field("x-amz-date"))?,
            signature,
        },
        (None, Some(signature), Some(access_key)) => PostSignature::V2 {
            access_key,
            signature,
        },
        _ => {
            return Err(crate::s3err!(
                AccessDenied,
                "Access Denied: anonymous uploads are not allowed; sign the POST policy."
            ))
        }
    };
    let policy_b64 = f("policy").ok_or_else(|| missing_field("policy"))?;
    verifier.verify_post_policy(policy_b64, &sig)?;
    Policy::parse(policy_b64, now)
}

/// The head the ingest pipeline and metadata helpers read: the form fields as headers.
fn fields_as_head(fields: &[(String, String)], path: &str) -> RequestHead {
    RequestHead {
        method: Method::Post,
        method_raw: "POST".into(),
        path: path.to_string(),
        query: String::new(),
        version_minor: 1,
        headers: fields.to_vec(),
    }
}

/// Handles a POST Object to `bucket`.
pub(crate) async fn post_object(
    store: &Store,
    verifier: &Verifier,
    head: &RequestHead,
    body: &mut BodyReader<'_>,
    bucket: &str,
) -> Result<Response, S3Error> {
    let boundary = head
        .header("content-type")
        .and_then(form::boundary)
        .ok_or_else(|| form::malformed("no boundary"))?;
    let mut form = FormReader::new(body, &boundary);
    let (mut fields, file) = form.read_fields().await?;
    let policy = authenticate(verifier, &fields, SystemTime::now())?;
    let key = field(&fields, "key")
        .ok_or_else(|| missing_field("key"))?
        .replace("${filename}", file.filename.as_deref().unwrap_or_default());
    validate_object_key(&key)?;
    fields.retain(|(n, _)| n != "key" && n != "bucket");
    fields.push(("key".into(), key.clone()));
    fields.push(("bucket".into(), bucket.to_string()));
    policy.check(&fields)?;
    if field(&fields, "acl").is_some_and(|acl| !acl.eq_ignore_ascii_case("private")) {
        return Err(crate::s3err!(
            NotImplemented,
            "ringstore objects are always private to their owner; only the private ACL is supported."
        ));
    }
    let synthetic = fields_as_head(&fields, &format!("/{bucket}/{key}"));
    let (system_headers, user_metadata) = metadata_from_headers(&synthetic)?;
    store.bucket_created_ms(bucket).await?;
    let record = ObjectRecord {
        system_headers,
        user_metadata,
        ..ObjectRecord::new(&key)
    };
    let digests = BodyDigests::new(expectations_from_headers(&synthetic)?);
    let (min, max) = policy.length_range().unwrap_or((0, PUT_OBJECT_MAX_BYTES));
    let staged = ingest(
        store,
        record,
        digests,
        &mut form,
        None,
        max.min(PUT_OBJECT_MAX_BYTES),
    )
    .await?;
    if staged.record.size < min {
        return Err(crate::s3err!(
            EntityTooSmall,
            "Your proposed upload is smaller than the minimum allowed size"
        )
        .with_extra("ProposedSize", staged.record.size.to_string())
        .with_extra("MinSizeAllowed", min.to_string()));
    }
    form.drain_epilogue().await;
    let etag = quoted(&staged.record.etag());
    store
        .put_object(bucket, &key, staged, WriteCondition::always())
        .await?;
    Ok(success_response(&fields, bucket, &key, &etag))
}

/// 204 (default), 200, 201 with the PostResponse document, or a 303 to `success_action_redirect`.
fn success_response(fields: &[(String, String)], bucket: &str, key: &str, etag: &str) -> Response {
    use crate::http::percent::aws_uri_encode;
    let location = format!("/{bucket}/{}", aws_uri_encode(key.as_bytes(), false));
    if let Some(url) = field(fields, "success_action_redirect").filter(|u| !u.is_empty()) {
        let sep = if url.contains('?') { '&' } else { '?' };
        let target = format!(
            "{url}{sep}bucket={}&key={}&etag={}",
            aws_uri_encode(bucket.as_bytes(), true),
            aws_uri_encode(key.as_bytes(), true),
            aws_uri_encode(etag.as_bytes(), true)
        );
        return Response::new(303)
            .header("Location", target)
            .header("ETag", etag.to_string());
    }
    match field(fields, "success_action_status") {
        Some("200") => Response::new(200).header("ETag", etag.to_string()),
        Some("201") => {
            let xml = crate::s3::xml::post_response_xml(&location, bucket, key, etag);
            Response::xml(201, xml)
                .header("ETag", etag.to_string())
                .header("Location", location)
        }
        _ => Response::new(204)
            .header("ETag", etag.to_string())
            .header("Location", location),
    }
}
