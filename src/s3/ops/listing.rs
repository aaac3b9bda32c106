//! ListObjects (v1) and ListObjectsV2: parse the query, ask the bucket's owner for one page of
//! its index, render it.
//!
//! Invariant: the page is computed on the owner core from its index alone, so a listing never
//! shows a key whose commit is not durable.

use crate::http::response::Response;
use crate::s3::error::S3Error;
use crate::s3::params::{
    decode_continuation_token, later_marker, parse_encoding_type, parse_max_keys,
};
use crate::s3::xml::{self, ListV1Request, ListV2Request, SERVER_OWNER};
use crate::s3::Request;
use crate::storage::{ListParams, Store};

pub(crate) async fn list_objects(
    store: &Store,
    req: &Request<'_>,
    v2: bool,
) -> Result<Response, S3Error> {
    let r = &req.routed;
    let url_encoding = parse_encoding_type(r.param("encoding-type"))?;
    let prefix = r.param("prefix").unwrap_or("");
    let delimiter = r.param("delimiter").filter(|d| !d.is_empty());
    let max_keys = parse_max_keys(r.param("max-keys"))?;
    let params = ListParams {
        prefix: prefix.to_string(),
        delimiter: delimiter.map(str::to_string),
        start_after: start_after(req, v2)?,
        max_keys,
    };
    let page = store.list_objects(&r.bucket, params).await?;
    let body = if v2 {
        let fetch_owner = r
            .param("fetch-owner")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let view = ListV2Request {
            bucket: &r.bucket,
            prefix,
            delimiter,
            max_keys,
            url_encoding,
            // Echoed as received, an empty one too (it lists from the start).
            continuation_token: r.param("continuation-token"),
            start_after: r.param("start-after"),
            owner: fetch_owner.then_some(SERVER_OWNER),
        };
        xml::list_objects_v2_xml(&view, &page)
    } else {
        let view = ListV1Request {
            bucket: &r.bucket,
            prefix,
            delimiter,
            max_keys,
            url_encoding,
            marker: r.param("marker"),
            owner: SERVER_OWNER,
        };
        xml::list_objects_v1_xml(&view, &page)
    };
    Ok(Response::xml(200, body))
}

/// The exclusive lower bound of a listing: v1's `marker`, or the later of v2's `start-after`
/// and its decoded `continuation-token`.
fn start_after(req: &Request<'_>, v2: bool) -> Result<Option<String>, S3Error> {
    let r = &req.routed;
    if !v2 {
        let marker = r.param("marker").filter(|m| !m.is_empty());
        return Ok(marker.map(str::to_string));
    }
    // An empty token is no token (as S3 treats it; some clients send `continuation-token=`
    // on the first page).
    let from_token = match r.param("continuation-token") {
        None | Some("") => None,
        Some(t) => Some(decode_continuation_token(t)?),
    };
    Ok(later_marker(
        r.param("start-after").map(str::to_string),
        from_token,
    ))
}

/// ListObjectVersions of an unversioned bucket: each object once, as version `null`.
pub(crate) async fn list_object_versions(
    store: &Store,
    req: &Request<'_>,
) -> Result<Response, S3Error> {
    let r = &req.routed;
    let bucket = &r.bucket;
    let url_encoding = parse_encoding_type(r.param("encoding-type"))?;
    let prefix = r.param("prefix").unwrap_or("");
    let delimiter = r.param("delimiter").filter(|d| !d.is_empty());
    let max_keys = parse_max_keys(r.param("max-keys"))?;
    let key_marker = r.param("key-marker").unwrap_or("");
    let params = ListParams {
        prefix: prefix.to_string(),
        delimiter: delimiter.map(str::to_string),
        // Every key has exactly one (null) version, so a key marker skips that key whatever the
        // version-id marker says.
        start_after: (!key_marker.is_empty()).then(|| key_marker.to_string()),
        max_keys,
    };
    let page = store.list_objects(bucket, params).await?;
    let view = crate::s3::xml::versions::ListVersionsView {
        bucket,
        prefix,
        delimiter,
        key_marker,
        version_id_marker: r.param("version-id-marker").unwrap_or(""),
        max_keys,
        url_encoding,
    };
    Ok(Response::xml(
        200,
        crate::s3::xml::versions::list_versions_xml(&view, &page),
    ))
}
