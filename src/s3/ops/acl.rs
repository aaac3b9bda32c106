//! Bucket and object ACLs. ringstore is single-tenant: every bucket and object is private to the
//! configured key, which has full control. GetBucketAcl/GetObjectAcl report exactly that;
//! PutBucketAcl/PutObjectAcl accept only what keeps it true (the `private` canned ACL, or a
//! policy that grants nothing to other grantees) and refuse anything else with NotImplemented,
//! so an ACL a client asked for is never silently dropped.

use crate::http::body::BodyReader;
use crate::http::response::Response;
use crate::s3::bucket_name::validate_object_key;
use crate::s3::error::S3Error;
use crate::s3::ingest::read_small_body;
use crate::s3::xml::{write_owner, XmlWriter, ACL_BODY_MAX_BYTES, SERVER_OWNER};
use crate::s3::Request;
use crate::storage::Store;

/// Checks that the bucket (and the object, for an object ACL) exists.
async fn ensure_target(store: &Store, req: &Request<'_>) -> Result<(), S3Error> {
    let (bucket, key) = (&req.routed.bucket, &req.routed.key);
    if key.is_empty() {
        store.bucket_created_ms(bucket).await?;
    } else {
        validate_object_key(key)?;
        store.open_object(bucket, key).await?;
    }
    Ok(())
}

pub(crate) async fn get_acl(store: &Store, req: &Request<'_>) -> Result<Response, S3Error> {
    ensure_target(store, req).await?;
    let mut w = XmlWriter::new();
    w.open_ns("AccessControlPolicy");
    write_owner(&mut w, "Owner", SERVER_OWNER);
    w.open("AccessControlList");
    w.raw(
        "<Grant><Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"CanonicalUser\">",
    );
    w.elem("ID", SERVER_OWNER.id)
        .elem("DisplayName", SERVER_OWNER.display_name);
    w.raw("</Grantee>");
    w.elem("Permission", "FULL_CONTROL").close("Grant");
    w.close("AccessControlList").close("AccessControlPolicy");
    Ok(Response::xml(200, w.finish()))
}

fn only_private() -> S3Error {
    crate::s3err!(
        NotImplemented,
        "ringstore buckets and objects are always private to their owner; only the private ACL is supported."
    )
}

pub(crate) async fn put_acl(
    store: &Store,
    req: &Request<'_>,
    body: &mut BodyReader<'_>,
) -> Result<Response, S3Error> {
    if let Some(canned) = req.head.header("x-amz-acl") {
        if !canned.eq_ignore_ascii_case("private") {
            return Err(only_private());
        }
    }
    if req
        .head
        .headers
        .iter()
        .any(|(n, _)| n.starts_with("x-amz-grant-"))
    {
        return Err(only_private());
    }
    let (doc, _) = read_small_body(req, body, ACL_BODY_MAX_BYTES).await?;
    let text = String::from_utf8_lossy(&doc);
    // A policy naming a group (AllUsers, AuthenticatedUsers, LogDelivery) or another user would
    // grant access ringstore cannot give.
    if text.contains("<URI") || text.contains("EmailAddress") || text.contains("Group\"") {
        return Err(only_private());
    }
    ensure_target(store, req).await?;
    Ok(Response::new(200))
}
