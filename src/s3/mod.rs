//! S3 layer: authenticates a request, routes it to its operation, and renders the outcome
//! (success or S3 error XML) as a [`Response`].
//!
//! Data flows one way: head -> auth -> route -> op -> storage -> response. Invariant: no
//! operation runs before the request's signature is verified, and no body byte is requested
//! (so no `100 Continue` is sent) before that.

pub mod bucket_name;
pub mod error;
pub mod list;
pub mod ops;
pub mod router;
pub mod xml;

use crate::auth::AuthOutcome;
use crate::http::body::BodyReader;
use crate::http::head::RequestHead;
use crate::http::response::Response;
use crate::runtime::CoreCtx;
use error::S3Error;
use router::{Op, Routed};

/// One authenticated, routed request as the operations see it.
pub struct Request<'a> {
    pub head: &'a RequestHead,
    pub routed: Routed,
    pub auth: AuthOutcome,
}

/// The XML error response for `err` on `resource`.
pub fn error_response(err: &S3Error, resource: &str, request_id: &str) -> Response {
    let mut err = err.clone();
    if err.resource.is_empty() {
        err.resource = resource.to_string();
    }
    let mut resp = Response::xml(err.status(), err.to_xml(request_id));
    if err.code == error::S3ErrorCode::NotModified {
        resp = Response::new(304);
    }
    resp
}

/// Serves one request end to end (never fails: errors become S3 error responses).
pub async fn dispatch(
    ctx: &CoreCtx,
    head: &RequestHead,
    body: &mut BodyReader<'_>,
    request_id: &str,
) -> Response {
    match serve(ctx, head, body).await {
        Ok(resp) => resp,
        Err(err) => error_response(&err, &head.path, request_id),
    }
}

async fn serve(
    ctx: &CoreCtx,
    head: &RequestHead,
    body: &mut BodyReader<'_>,
) -> Result<Response, S3Error> {
    let auth = ctx.verifier.verify(head, std::time::SystemTime::now())?;
    let routed = router::route(head, ctx.domain.as_deref())?;
    let req = Request { head, routed, auth };
    use ops::{bucket, multipart, object};
    match req.routed.op {
        Op::ListBuckets => bucket::list_buckets(ctx, &req).await,
        Op::CreateBucket => bucket::create_bucket(ctx, &req, body).await,
        Op::HeadBucket => bucket::head_bucket(ctx, &req).await,
        Op::DeleteBucket => bucket::delete_bucket(ctx, &req).await,
        Op::GetBucketLocation => bucket::get_bucket_location(ctx, &req).await,
        Op::GetBucketVersioning => bucket::get_bucket_versioning(ctx, &req).await,
        Op::ListObjectsV1 => ops::listing::list_objects(ctx, &req, false).await,
        Op::ListObjectsV2 => ops::listing::list_objects(ctx, &req, true).await,
        Op::DeleteObjects => ops::delete_objects::delete_objects(ctx, &req, body).await,
        Op::PutObject => ops::put::put_object(ctx, &req, body).await,
        Op::CopyObject => ops::copy::copy_object(ctx, &req).await,
        Op::GetObject => object::get_object(ctx, &req, false).await,
        Op::HeadObject => object::get_object(ctx, &req, true).await,
        Op::DeleteObject => object::delete_object(ctx, &req).await,
        Op::CreateMultipartUpload => multipart::create_upload(ctx, &req).await,
        Op::UploadPart => multipart::upload_part(ctx, &req, body).await,
        Op::UploadPartCopy => multipart::upload_part_copy(ctx, &req).await,
        Op::CompleteMultipartUpload => multipart::complete_upload(ctx, &req, body).await,
        Op::AbortMultipartUpload => multipart::abort_upload(ctx, &req).await,
        Op::ListParts => multipart::list_parts(ctx, &req).await,
        Op::ListMultipartUploads => multipart::list_uploads(ctx, &req).await,
        Op::ListObjectVersions => ops::listing::list_object_versions(ctx, &req).await,
        Op::GetBucketAcl | Op::GetObjectAcl => ops::acl::get_acl(ctx, &req).await,
        Op::PutBucketAcl | Op::PutObjectAcl => ops::acl::put_acl(ctx, &req, body).await,
    }
}
