//! S3 layer: the request handler the HTTP server is given. It authenticates a request, routes
//! it to its operation, runs the operation against [`Store`], and renders the outcome (success
//! or S3 error XML) as a [`Response`].
//!
//! Data flows one way: head -> auth -> route -> op -> storage -> response. Invariant: no
//! operation runs before the request's signature is verified, and no body byte is requested
//! (so no `100 Continue` is sent) before that. The one exception is POST Object (`post`), whose
//! signature is in the form: only its bounded fields are read before the policy is verified.

pub mod bucket_name;
pub mod error;
pub mod ingest;
pub(crate) mod ops;
pub(crate) mod params;
mod post;
pub(crate) mod router;
pub mod xml;

use crate::auth::{AuthOutcome, Verifier};
use crate::http::body::BodyReader;
use crate::http::error::HttpError;
use crate::http::head::RequestHead;
use crate::http::response::Response;
use crate::storage::Store;
use error::S3Error;
use router::{Op, Routed};

/// The region a server answers as unless `--region` says otherwise (S3's original region).
pub(crate) const REGION_DEFAULT: &str = "us-east-1";

/// The S3 API of one core: what [`crate::http::server::Server`] hands each request to.
pub(crate) struct S3Service {
    store: Store,
    verifier: Verifier,
    /// Base domain for virtual-host style addressing (`bucket.DOMAIN`), if enabled.
    domain: Option<String>,
    /// The AWS region this server is.
    region: String,
}

impl S3Service {
    pub(crate) fn new(
        store: Store,
        verifier: Verifier,
        domain: Option<String>,
        region: String,
    ) -> S3Service {
        S3Service {
            store,
            verifier,
            domain,
            region,
        }
    }
}

impl crate::http::server::Handler for S3Service {
    async fn handle(
        &self,
        head: &RequestHead,
        body: &mut BodyReader<'_>,
        request_id: &str,
    ) -> Response {
        // Routed before the signature is checked only to name the operation in metrics and
        // the access log: `serve` still answers an auth failure before a routing error.
        let routed = router::route(head, self.domain.as_deref());
        let op = match post::is_post_object(head) {
            true => router::POST_OBJECT_OP,
            false => routed.as_ref().map_or(0, |r| r.op.index()),
        };
        let mut resp = match self.serve(head, routed, body).await {
            Ok(resp) => resp,
            Err(err) => error_response(&err, &head.path, request_id),
        };
        resp.op = op;
        resp
    }

    fn error_response(&self, err: &HttpError, resource: &str, request_id: &str) -> Response {
        error_response(&S3Error::from(err.clone()), resource, request_id)
    }
}

/// One authenticated, routed request as the operations see it.
pub(crate) struct Request<'a> {
    pub(crate) head: &'a RequestHead,
    pub(crate) routed: Routed,
    pub(crate) auth: AuthOutcome,
    /// The AWS region this server is.
    pub(crate) region: &'a str,
}

/// The XML error response for `err` on `resource`.
pub(crate) fn error_response(err: &S3Error, resource: &str, request_id: &str) -> Response {
    let mut err = err.clone();
    if err.resource.is_empty() {
        err.resource = resource.to_string();
    }
    let mut resp = Response::xml(err.status(), xml::error_xml(&err, request_id));
    if err.code == error::S3ErrorCode::NotModified {
        resp = Response::new(304);
    }
    resp.error_code = error_code_index(err.code);
    resp
}

/// The index of `code` in [`error_code_names`] (0 stands for no error).
pub(crate) fn error_code_index(code: error::S3ErrorCode) -> usize {
    code as usize + 1
}

/// Error code names for metrics and the access log: "" (no error), then every S3 error code.
pub(crate) fn error_code_names() -> Vec<&'static str> {
    let codes = error::S3ErrorCode::ALL.iter().map(|c| c.as_str());
    std::iter::once("").chain(codes).collect()
}

impl S3Service {
    async fn serve(
        &self,
        head: &RequestHead,
        routed: Result<Routed, S3Error>,
        body: &mut BodyReader<'_>,
    ) -> Result<Response, S3Error> {
        if post::is_post_object(head) {
            return self.post_object(head, body).await;
        }
        let auth = self.verifier.verify(head, std::time::SystemTime::now())?;
        let routed = routed?;
        let req = Request {
            head,
            routed,
            auth,
            region: &self.region,
        };
        let store = &self.store;
        use ops::{bucket, multipart, object};
        match &req.routed.op {
            Op::ListBuckets => bucket::list_buckets(store, &req).await,
            Op::CreateBucket => bucket::create_bucket(store, &req, body).await,
            Op::HeadBucket => bucket::head_bucket(store, &req).await,
            Op::DeleteBucket => bucket::delete_bucket(store, &req).await,
            Op::GetBucketLocation => bucket::get_bucket_location(store, &req).await,
            Op::GetBucketVersioning => bucket::get_bucket_versioning(store, &req).await,
            Op::PutBucketVersioning => bucket::put_bucket_versioning(store, &req, body).await,
            Op::ListObjectsV1 => ops::listing::list_objects(store, &req, false).await,
            Op::ListObjectsV2 => ops::listing::list_objects(store, &req, true).await,
            Op::DeleteObjects => ops::delete_objects::delete_objects(store, &req, body).await,
            Op::PutObject => ops::put::put_object(store, &req, body).await,
            Op::CopyObject => ops::copy::copy_object(store, &req).await,
            Op::GetObject => object::get_object(store, &req, false).await,
            Op::GetObjectAttributes => ops::attributes::get_object_attributes(store, &req).await,
            Op::HeadObject => object::get_object(store, &req, true).await,
            Op::DeleteObject => object::delete_object(store, &req).await,
            Op::CreateMultipartUpload => multipart::create_upload(store, &req).await,
            Op::UploadPart(t) => multipart::upload_part(store, &req, t, body).await,
            Op::UploadPartCopy(t) => multipart::upload_part_copy(store, &req, t).await,
            Op::CompleteMultipartUpload { upload_id } => {
                multipart::complete_upload(store, &req, upload_id, body).await
            }
            Op::AbortMultipartUpload { upload_id } => {
                multipart::abort_upload(store, &req, upload_id).await
            }
            Op::ListParts { upload_id } => multipart::list_parts(store, &req, upload_id).await,
            Op::ListMultipartUploads => multipart::list_uploads(store, &req).await,
            Op::ListObjectVersions => ops::listing::list_object_versions(store, &req).await,
            Op::GetBucketAcl | Op::GetObjectAcl => ops::acl::get_acl(store, &req).await,
            Op::PutBucketAcl | Op::PutObjectAcl => ops::acl::put_acl(store, &req, body).await,
        }
    }
}

impl S3Service {
    /// A browser form upload: authenticated by its signed policy, not by the request's head.
    async fn post_object(
        &self,
        head: &RequestHead,
        body: &mut BodyReader<'_>,
    ) -> Result<Response, S3Error> {
        let (bucket, key) = router::bucket_and_key(head, self.domain.as_deref())?;
        if bucket.is_empty() || !key.is_empty() {
            return Err(crate::s3err!(
                MethodNotAllowed,
                "The specified method is not allowed against this resource."
            ));
        }
        crate::s3::bucket_name::validate_bucket_name(&bucket)?;
        post::post_object(&self.store, &self.verifier, head, body, &bucket).await
    }
}
