//! Bucket operations: ListBuckets, CreateBucket, HeadBucket, DeleteBucket, GetBucketLocation,
//! GetBucketVersioning, PutBucketVersioning. Each runs on the bucket's owner core through the
//! shard layer. The server is one region (`--region`): every bucket is in it, so the location
//! a bucket reports is the server's, and CreateBucket refuses a constraint naming another.

use crate::http::body::BodyReader;
use crate::http::response::Response;
use crate::s3::bucket_name::validate_bucket_name;
use crate::s3::error::S3Error;
use crate::s3::ingest::read_small_body;
use crate::s3::params::{decode_continuation_token, encode_continuation_token};
use crate::s3::{xml, Request};
use crate::storage::{StorageError, Store};

/// Most buckets one ListBuckets page may return (S3's limit for `max-buckets`).
pub(crate) const MAX_BUCKETS_LIMIT: usize = 10_000;

pub(crate) async fn list_buckets(store: &Store, req: &Request<'_>) -> Result<Response, S3Error> {
    let r = &req.routed;
    let prefix = r.param("prefix");
    let max = match r.param("max-buckets") {
        None => MAX_BUCKETS_LIMIT,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=MAX_BUCKETS_LIMIT).contains(&n) => n,
            _ => {
                return Err(crate::s3err!(
                    InvalidArgument,
                    "max-buckets must be an integer between 1 and {MAX_BUCKETS_LIMIT}"
                ))
            }
        },
    };
    let after = match r.param("continuation-token") {
        None | Some("") => None,
        Some(t) => Some(decode_continuation_token(t)?),
    };
    let mut page: Vec<(String, u64)> = store
        .list_buckets()
        .await?
        .into_iter()
        .map(|b| (b.name, b.created_ms))
        .filter(|(name, _)| prefix.is_none_or(|p| name.starts_with(p)))
        .filter(|(name, _)| after.as_ref().is_none_or(|a| name > a))
        .take(max + 1)
        .collect();
    let next = (page.len() > max).then(|| {
        page.truncate(max);
        encode_continuation_token(&page[max - 1].0)
    });
    let body = xml::list_buckets_page_xml(xml::SERVER_OWNER, &page, next.as_deref(), prefix);
    Ok(Response::xml(200, body))
}

pub(crate) async fn create_bucket(
    store: &Store,
    req: &Request<'_>,
    body: &mut BodyReader<'_>,
) -> Result<Response, S3Error> {
    let name = &req.routed.bucket;
    validate_bucket_name(name)?;
    let (doc, _) = read_small_body(req, body, xml::CREATE_BUCKET_BODY_MAX_BYTES).await?;
    let constraint = xml::parse_create_bucket_configuration(&doc)?;
    check_location_constraint(req.region, constraint.as_deref())?;
    match store.create_bucket(name).await {
        Ok(()) => {}
        // AWS's legacy rule: in us-east-1 re-creating a bucket you own answers 200 (and changes
        // nothing here: ringstore has no bucket ACLs to reset); every other region says 409.
        Err(StorageError::BucketExists { .. }) if req.region == crate::s3::REGION_DEFAULT => {}
        Err(e) => return Err(e.into()),
    }
    Ok(Response::new(200).header("Location", format!("/{name}")))
}

/// A CreateBucket's LocationConstraint against the server's `region`, as a regional S3 endpoint
/// judges it: us-east-1 takes none (or an empty one) and refuses `us-east-1` spelled out
/// (InvalidLocationConstraint); any other region takes only its own name; the rest is
/// IllegalLocationConstraintException.
fn check_location_constraint(region: &str, constraint: Option<&str>) -> Result<(), S3Error> {
    let us_east_1 = region == crate::s3::REGION_DEFAULT;
    match constraint {
        None | Some("") if us_east_1 => Ok(()),
        Some(c) if c == region && !us_east_1 => Ok(()),
        Some(c) if c == region => Err(crate::s3err!(
            InvalidLocationConstraint,
            "The specified location-constraint is not valid"
        )
        .with_extra("LocationConstraint", c)),
        None | Some("") => Err(crate::s3err!(
            IllegalLocationConstraintException,
            "The unspecified location constraint is incompatible for the region specific endpoint this request was sent to."
        )),
        Some(c) => Err(crate::s3err!(
            IllegalLocationConstraintException,
            "The {c} location constraint is incompatible for the region specific endpoint this request was sent to."
        )),
    }
}

pub(crate) async fn head_bucket(store: &Store, req: &Request<'_>) -> Result<Response, S3Error> {
    store.bucket_created_ms(&req.routed.bucket).await?;
    Ok(Response::new(200).header("x-amz-bucket-region", req.region))
}

pub(crate) async fn delete_bucket(store: &Store, req: &Request<'_>) -> Result<Response, S3Error> {
    let name = &req.routed.bucket;
    store.delete_bucket(name).await?;
    Ok(Response::new(204))
}

pub(crate) async fn get_bucket_location(
    store: &Store,
    req: &Request<'_>,
) -> Result<Response, S3Error> {
    store.bucket_created_ms(&req.routed.bucket).await?;
    Ok(Response::xml(200, xml::location_xml(req.region)))
}

pub(crate) async fn get_bucket_versioning(
    store: &Store,
    req: &Request<'_>,
) -> Result<Response, S3Error> {
    store.bucket_created_ms(&req.routed.bucket).await?;
    let mut w = xml::XmlWriter::new();
    w.open_ns("VersioningConfiguration");
    w.close("VersioningConfiguration");
    Ok(Response::xml(200, w.finish()))
}

/// PutBucketVersioning. Buckets are never versioned: `Enabled` is 501 NotImplemented (as is
/// MFA delete); `Suspended` (or no `Status`) is accepted and changes nothing, since a bucket
/// whose versioning is suspended behaves exactly like one never versioned (every object has the
/// version `null`). It is not stored, so GetBucketVersioning keeps answering without a `Status`.
pub(crate) async fn put_bucket_versioning(
    store: &Store,
    req: &Request<'_>,
    body: &mut BodyReader<'_>,
) -> Result<Response, S3Error> {
    store.bucket_created_ms(&req.routed.bucket).await?;
    let (doc, _) = read_small_body(req, body, xml::VERSIONING_BODY_MAX_BYTES).await?;
    let (status, mfa_delete) = xml::parse_versioning_configuration(&doc)?;
    if status == Some(xml::VersioningStatus::Enabled) || mfa_delete {
        return Err(crate::s3err!(
            NotImplemented,
            "Bucket versioning is not implemented by ringstore: only the Suspended state (every object version is null) is accepted."
        ));
    }
    Ok(Response::new(200))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::s3::error::S3ErrorCode;

    #[test]
    fn location_constraints_as_a_regional_endpoint_judges_them() {
        let code = |region, c| check_location_constraint(region, c).map_err(|e| e.code);
        assert_eq!(code("us-east-1", None), Ok(()));
        assert_eq!(code("us-east-1", Some("")), Ok(()));
        assert_eq!(
            code("us-east-1", Some("us-east-1")),
            Err(S3ErrorCode::InvalidLocationConstraint)
        );
        let illegal = Err(S3ErrorCode::IllegalLocationConstraintException);
        assert_eq!(code("us-east-1", Some("eu-west-1")), illegal);
        assert_eq!(code("eu-central-1", Some("eu-central-1")), Ok(()));
        assert_eq!(code("eu-central-1", None), illegal);
        assert_eq!(code("eu-central-1", Some("")), illegal);
        assert_eq!(code("eu-central-1", Some("eu-west-1")), illegal);
    }
}
