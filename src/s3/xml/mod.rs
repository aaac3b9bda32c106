//! S3 XML, one file per job:
//! - [`writer`]: text escaping, the `encoding-type=url` form of list values, the element writer;
//! - [`responses`]: the response documents of bucket, listing, delete and copy operations;
//! - [`multipart`]: the documents of the multipart operations and ListMultipartUploads paging;
//! - [`versions`]: the ListObjectVersions document;
//! - [`requests`]: the hardened request-body parsers and every XML request-body size limit.
//!
//! The items operations use most are re-exported here, so callers can write `xml::escape`,
//! `xml::parse_delete_request`, `xml::XmlWriter` and so on.

pub(crate) mod multipart;
pub(crate) mod requests;
pub(crate) mod responses;
pub(crate) mod versions;
pub(crate) mod writer;

pub use requests::{
    parse_complete_multipart, parse_create_bucket_configuration, parse_delete_request,
    parse_versioning_configuration, CompletedPart, VersioningStatus, ACL_BODY_MAX_BYTES,
    COMPLETE_MULTIPART_BODY_MAX_BYTES, COMPLETE_PARTS_MAX, CREATE_BUCKET_BODY_MAX_BYTES,
    DELETE_BODY_MAX_BYTES, DELETE_OBJECTS_MAX, VERSIONING_BODY_MAX_BYTES, XML_DEPTH_MAX,
};
pub(crate) use responses::{
    copy_object_result_xml, delete_result_xml, error_xml, list_buckets_page_xml,
    list_objects_v1_xml, list_objects_v2_xml, location_xml, post_response_xml, write_owner,
    ListV1Request, ListV2Request, SERVER_OWNER,
};
pub(crate) use writer::{escape, XmlWriter};
