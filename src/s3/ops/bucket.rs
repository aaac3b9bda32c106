//! Bucket operations: ListBuckets, CreateBucket, HeadBucket, DeleteBucket, GetBucketLocation,
//! GetBucketVersioning. Each runs on the bucket's owner core through the shard layer.

use crate::http::body::BodyReader;
use crate::http::response::Response;
use crate::runtime::shard::{OwnerOp, OwnerReply};
use crate::runtime::CoreCtx;
use crate::s3::bucket_name::validate_bucket_name;
use crate::s3::error::S3Error;
use crate::s3::ops::{ensure_bucket, read_small_body};
use crate::s3::{xml, Request};

/// Owner id and display name reported in listings (single-tenant server).
pub const OWNER_ID: &str = "ringstore";
pub const OWNER_DISPLAY_NAME: &str = "ringstore";
/// Region reported by GetBucketLocation when the bucket was created without one.
pub const DEFAULT_REGION: &str = "us-east-1";
/// Largest CreateBucketConfiguration body accepted.
pub const CREATE_BUCKET_BODY_MAX_BYTES: usize = 64 * 1024;

pub async fn list_buckets(ctx: &CoreCtx) -> Result<Response, S3Error> {
    let buckets = ctx.shards.all_buckets().await?;
    Ok(Response::xml(
        200,
        xml::list_buckets_xml(OWNER_ID, OWNER_DISPLAY_NAME, &buckets),
    ))
}

pub async fn create_bucket(
    ctx: &CoreCtx,
    req: &Request<'_>,
    body: &mut BodyReader<'_>,
) -> Result<Response, S3Error> {
    let name = &req.routed.bucket;
    validate_bucket_name(name)?;
    let (doc, _) = read_small_body(req, body, CREATE_BUCKET_BODY_MAX_BYTES).await?;
    // Any region is accepted (region is not enforced); the document must still be well formed.
    xml::parse_create_bucket_configuration(&doc)?;
    let now_ms = crate::http::date::now_ms();
    ctx.shards
        .call_owner(
            name,
            OwnerOp::CreateBucket {
                name: name.clone(),
                now_ms,
            },
        )
        .await?;
    Ok(Response::new(200).header("Location", format!("/{name}")))
}

pub async fn head_bucket(ctx: &CoreCtx, req: &Request<'_>) -> Result<Response, S3Error> {
    ensure_bucket(ctx, &req.routed.bucket).await?;
    Ok(Response::new(200).header("x-amz-bucket-region", DEFAULT_REGION))
}

pub async fn delete_bucket(ctx: &CoreCtx, req: &Request<'_>) -> Result<Response, S3Error> {
    let name = &req.routed.bucket;
    match ctx
        .shards
        .call_owner(name, OwnerOp::DeleteBucket { name: name.clone() })
        .await?
    {
        OwnerReply::Done => Ok(Response::new(204)),
        _ => Err(S3Error::internal("delete bucket", "unexpected owner reply")),
    }
}

pub async fn get_bucket_location(ctx: &CoreCtx, req: &Request<'_>) -> Result<Response, S3Error> {
    ensure_bucket(ctx, &req.routed.bucket).await?;
    Ok(Response::xml(200, xml::location_xml(DEFAULT_REGION)))
}

pub async fn get_bucket_versioning(ctx: &CoreCtx, req: &Request<'_>) -> Result<Response, S3Error> {
    ensure_bucket(ctx, &req.routed.bucket).await?;
    let mut w = xml::XmlWriter::new();
    w.open_ns("VersioningConfiguration");
    w.close("VersioningConfiguration");
    Ok(Response::xml(200, w.finish()))
}
