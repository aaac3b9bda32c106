//! The response documents ringstore sends: bucket lists, object listings (v1 and v2), bucket
//! location, DeleteObjects and CopyObject results, and the owner element they share.
//!
//! Invariant: element order and names follow S3's documented responses; list values go through
//! [`list_value`] so `encoding-type=url` is applied consistently.

use crate::http::date::iso8601_ms;
use crate::s3::error::S3Error;
use crate::s3::params::encode_continuation_token;
use crate::s3::xml::writer::{bool_text, list_value, quoted_etag, XmlWriter};
use crate::storage::ListPage;

/// An owner as listings and ACLs show it (`<Owner><ID/><DisplayName/></Owner>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Owner<'a> {
    pub(crate) id: &'a str,
    pub(crate) display_name: &'a str,
}

/// Owner id reported in listings and ACLs (single-tenant server).
pub(crate) const OWNER_ID: &str = "ringstore";
/// Owner display name reported in listings and ACLs.
pub(crate) const OWNER_DISPLAY_NAME: &str = "ringstore";

/// The server's single owner (ringstore is single-tenant).
pub(crate) const SERVER_OWNER: Owner<'static> = Owner {
    id: OWNER_ID,
    display_name: OWNER_DISPLAY_NAME,
};

/// The `<Error>` document for `err`.
pub(crate) fn error_xml(err: &S3Error, request_id: &str) -> String {
    use crate::s3::xml::escape;
    let mut s = String::with_capacity(256);
    s.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>");
    s.push_str(err.code.as_str());
    s.push_str("</Code><Message>");
    s.push_str(&escape(&err.message));
    s.push_str("</Message>");
    for (name, value) in &err.extra {
        s.push('<');
        s.push_str(name);
        s.push('>');
        s.push_str(&escape(value));
        s.push_str("</");
        s.push_str(name);
        s.push('>');
    }
    s.push_str("<Resource>");
    s.push_str(&escape(&err.resource));
    s.push_str("</Resource><RequestId>");
    s.push_str(request_id);
    s.push_str("</RequestId></Error>");
    s
}

/// `<element><ID/><DisplayName/></element>`: the one owner-element writer (`Owner`,
/// `Initiator`).
pub(crate) fn write_owner(w: &mut XmlWriter, element: &str, owner: Owner<'_>) {
    w.open(element)
        .elem("ID", owner.id)
        .elem("DisplayName", owner.display_name)
        .close(element);
}

/// `<CommonPrefixes><Prefix/></CommonPrefixes>` for each rolled-up prefix, the way every listing
/// ends.
pub(crate) fn write_common_prefixes(w: &mut XmlWriter, prefixes: &[String], url_encoding: bool) {
    for prefix in prefixes {
        w.open("CommonPrefixes")
            .elem("Prefix", &list_value(prefix, url_encoding))
            .close("CommonPrefixes");
    }
}

/// ListAllMyBucketsResult for one page: `ContinuationToken` names the next page (when truncated)
/// and `Prefix` echoes the request's prefix.
pub(crate) fn list_buckets_page_xml(
    owner: Owner<'_>,
    buckets: &[(String, u64)],
    next_token: Option<&str>,
    prefix: Option<&str>,
) -> String {
    let mut w = XmlWriter::new();
    w.open_ns("ListAllMyBucketsResult");
    write_owner(&mut w, "Owner", owner);
    w.open("Buckets");
    for (name, created_ms) in buckets {
        w.open("Bucket")
            .elem("Name", name)
            .elem("CreationDate", &iso8601_ms(*created_ms))
            .close("Bucket");
    }
    w.close("Buckets");
    if let Some(token) = next_token {
        w.elem("ContinuationToken", token);
    }
    if let Some(prefix) = prefix {
        w.elem("Prefix", prefix);
    }
    w.close("ListAllMyBucketsResult");
    w.finish()
}

/// GetBucketLocation result; S3 answers us-east-1 (or no region) with an empty element.
pub(crate) fn location_xml(region: &str) -> String {
    let mut w = XmlWriter::new();
    let region = if region == "us-east-1" { "" } else { region };
    w.open_ns("LocationConstraint")
        .text(region)
        .close("LocationConstraint");
    w.finish()
}

/// Request values a ListObjectsV2 response echoes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ListV2Request<'a> {
    pub(crate) bucket: &'a str,
    pub(crate) prefix: &'a str,
    /// Omitted from the response when `None` or empty.
    pub(crate) delimiter: Option<&'a str>,
    pub(crate) max_keys: usize,
    /// `encoding-type=url` was requested.
    pub(crate) url_encoding: bool,
    /// The token as received (echoed verbatim; never URL-encoded).
    pub(crate) continuation_token: Option<&'a str>,
    pub(crate) start_after: Option<&'a str>,
    /// `Some` when `fetch-owner=true`: every entry then carries this owner.
    pub(crate) owner: Option<Owner<'a>>,
}

/// Request values a ListObjects (v1) response echoes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ListV1Request<'a> {
    pub(crate) bucket: &'a str,
    pub(crate) prefix: &'a str,
    /// Omitted from the response when `None` or empty.
    pub(crate) delimiter: Option<&'a str>,
    pub(crate) max_keys: usize,
    /// `encoding-type=url` was requested.
    pub(crate) url_encoding: bool,
    pub(crate) marker: Option<&'a str>,
    /// v1 entries always carry an owner.
    pub(crate) owner: Owner<'a>,
}

/// `Name`, `Prefix`, `Delimiter`, `EncodingType`, `MaxKeys`: the head both versions share.
fn write_list_head(
    w: &mut XmlWriter,
    bucket: &str,
    prefix: &str,
    delimiter: Option<&str>,
    max_keys: usize,
    url_encoding: bool,
) {
    w.elem("Name", bucket)
        .elem("Prefix", &list_value(prefix, url_encoding));
    if let Some(delimiter) = delimiter.filter(|d| !d.is_empty()) {
        w.elem("Delimiter", &list_value(delimiter, url_encoding));
    }
    if url_encoding {
        w.elem("EncodingType", "url");
    }
    w.elem("MaxKeys", &max_keys.to_string());
}

/// `Contents` then `CommonPrefixes`.
fn write_list_body(
    w: &mut XmlWriter,
    page: &ListPage,
    url_encoding: bool,
    owner: Option<Owner<'_>>,
) {
    for entry in &page.contents {
        w.open("Contents")
            .elem("Key", &list_value(&entry.key, url_encoding))
            .elem("LastModified", &iso8601_ms(entry.summary.last_modified_ms))
            .elem("ETag", &quoted_etag(&entry.summary.etag))
            .elem("Size", &entry.summary.size.to_string());
        if let Some(owner) = owner {
            write_owner(w, "Owner", owner);
        }
        w.elem("StorageClass", "STANDARD").close("Contents");
    }
    write_common_prefixes(w, &page.common_prefixes, url_encoding);
}

/// ListBucketResult for ListObjectsV2. `NextContinuationToken` (from `page.next_marker`) is present
/// whenever `IsTruncated` is true, so paginators never stop early.
pub(crate) fn list_objects_v2_xml(req: &ListV2Request<'_>, page: &ListPage) -> String {
    let mut w = XmlWriter::new();
    w.open_ns("ListBucketResult");
    write_list_head(
        &mut w,
        req.bucket,
        req.prefix,
        req.delimiter,
        req.max_keys,
        req.url_encoding,
    );
    w.elem("KeyCount", &page.key_count().to_string())
        .elem("IsTruncated", bool_text(page.is_truncated));
    if let Some(token) = req.continuation_token {
        w.elem("ContinuationToken", token);
    }
    if page.is_truncated {
        if let Some(marker) = &page.next_marker {
            w.elem("NextContinuationToken", &encode_continuation_token(marker));
        }
    }
    if let Some(start_after) = req.start_after {
        w.elem("StartAfter", &list_value(start_after, req.url_encoding));
    }
    write_list_body(&mut w, page, req.url_encoding, req.owner);
    w.close("ListBucketResult");
    w.finish()
}

/// ListBucketResult for ListObjects (v1). `NextMarker` appears only when a delimiter was given and
/// the page is truncated, as in S3 (without a delimiter clients continue from the last key).
pub(crate) fn list_objects_v1_xml(req: &ListV1Request<'_>, page: &ListPage) -> String {
    let mut w = XmlWriter::new();
    w.open_ns("ListBucketResult");
    write_list_head(
        &mut w,
        req.bucket,
        req.prefix,
        req.delimiter,
        req.max_keys,
        req.url_encoding,
    );
    w.elem(
        "Marker",
        &list_value(req.marker.unwrap_or(""), req.url_encoding),
    )
    .elem("IsTruncated", bool_text(page.is_truncated));
    let has_delimiter = req.delimiter.is_some_and(|d| !d.is_empty());
    if page.is_truncated && has_delimiter {
        if let Some(marker) = &page.next_marker {
            w.elem("NextMarker", &list_value(marker, req.url_encoding));
        }
    }
    write_list_body(&mut w, page, req.url_encoding, Some(req.owner));
    w.close("ListBucketResult");
    w.finish()
}

/// DeleteResult: a `Deleted` entry per key (left out when `quiet`), then an `Error` entry per
/// failed key as (key, code, message).
pub(crate) fn delete_result_xml(
    deleted: &[String],
    errors: &[(String, String, String)],
    quiet: bool,
) -> String {
    let mut w = XmlWriter::new();
    w.open_ns("DeleteResult");
    if !quiet {
        for key in deleted {
            w.open("Deleted").elem("Key", key).close("Deleted");
        }
    }
    for (key, code, message) in errors {
        w.open("Error")
            .elem("Key", key)
            .elem("Code", code)
            .elem("Message", message)
            .close("Error");
    }
    w.close("DeleteResult");
    w.finish()
}

/// CopyObjectResult with the new object's ETag (quoted here if not already) and Last-Modified.
pub(crate) fn copy_object_result_xml(etag: &str, last_modified_ms: u64) -> String {
    let mut w = XmlWriter::new();
    w.open_ns("CopyObjectResult")
        .elem("LastModified", &iso8601_ms(last_modified_ms))
        .elem("ETag", &quoted_etag(etag))
        .close("CopyObjectResult");
    w.finish()
}

/// The 201 answer of a POST Object with `success_action_status=201`.
pub(crate) fn post_response_xml(location: &str, bucket: &str, key: &str, etag: &str) -> String {
    let mut w = XmlWriter::new();
    w.open("PostResponse")
        .elem("Location", location)
        .elem("Bucket", bucket)
        .elem("Key", key)
        .elem("ETag", etag)
        .close("PostResponse");
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::s3::xml::writer::S3_XMLNS;
    use crate::storage::ListEntry;
    use crate::storage::ObjectSummary;

    const JAN_1_2024_MS: u64 = 1_704_067_200_000;
    const DECL: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

    #[test]
    fn list_buckets_matches_capture() {
        let owner = Owner {
            id: "owner",
            display_name: "owner",
        };
        let xml = list_buckets_page_xml(owner, &[("bkt".to_owned(), JAN_1_2024_MS)], None, None);
        assert_eq!(
            xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListAllMyBucketsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Owner><ID>owner</ID><DisplayName>owner</DisplayName></Owner><Buckets><Bucket><Name>bkt</Name><CreationDate>2024-01-01T00:00:00.000Z</CreationDate></Bucket></Buckets></ListAllMyBucketsResult>"
        );
        let empty = list_buckets_page_xml(SERVER_OWNER, &[], None, None);
        assert!(empty.contains("<Buckets></Buckets>"));
    }

    #[test]
    fn location_constraint() {
        assert_eq!(
            location_xml("us-east-1"),
            format!("{DECL}<LocationConstraint xmlns=\"{S3_XMLNS}\"></LocationConstraint>")
        );
        assert_eq!(
            location_xml("eu-west-1"),
            format!(
                "{DECL}<LocationConstraint xmlns=\"{S3_XMLNS}\">eu-west-1</LocationConstraint>"
            )
        );
    }

    #[test]
    fn copy_object_result_matches_capture() {
        let expected = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CopyObjectResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LastModified>2024-01-01T00:00:00.000Z</LastModified><ETag>\"6f5902ac237024bdd0c176cb93063dc4\"</ETag></CopyObjectResult>";
        assert_eq!(
            copy_object_result_xml("6f5902ac237024bdd0c176cb93063dc4", JAN_1_2024_MS),
            expected
        );
        assert_eq!(
            copy_object_result_xml("\"6f5902ac237024bdd0c176cb93063dc4\"", JAN_1_2024_MS),
            expected
        );
    }

    #[test]
    fn delete_result_matches_capture() {
        let deleted = vec!["copy2.txt".to_owned(), "fileobj.txt".to_owned()];
        assert_eq!(
            delete_result_xml(&deleted, &[], false),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DeleteResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Deleted><Key>copy2.txt</Key></Deleted><Deleted><Key>fileobj.txt</Key></Deleted></DeleteResult>"
        );
        let errors = vec![(
            "a&b".to_owned(),
            "AccessDenied".to_owned(),
            "Access Denied".to_owned(),
        )];
        assert_eq!(
            delete_result_xml(&deleted, &errors, true),
            format!("{DECL}<DeleteResult xmlns=\"{S3_XMLNS}\"><Error><Key>a&amp;b</Key><Code>AccessDenied</Code><Message>Access Denied</Message></Error></DeleteResult>")
        );
        assert_eq!(
            delete_result_xml(&[], &[], true),
            format!("{DECL}<DeleteResult xmlns=\"{S3_XMLNS}\"></DeleteResult>")
        );
    }

    fn entry(key: &str, etag: &str, size: u64) -> ListEntry {
        ListEntry {
            key: key.to_owned(),
            summary: ObjectSummary {
                size,
                etag: etag.to_owned(),
                last_modified_ms: JAN_1_2024_MS,
            },
        }
    }

    fn v2<'a>(
        prefix: &'a str,
        delimiter: Option<&'a str>,
        max_keys: usize,
        url: bool,
    ) -> ListV2Request<'a> {
        ListV2Request {
            bucket: "bkt",
            prefix,
            delimiter,
            max_keys,
            url_encoding: url,
            continuation_token: None,
            start_after: None,
            owner: None,
        }
    }

    #[test]
    fn list_v2_matches_capture_with_url_encoding() {
        // Request #43 of list_objects_v2_encoding_type.txt (we encode space as %20, not '+').
        let page = ListPage {
            contents: vec![entry(
                "a dir/ü+x=1&y.txt",
                "e9a23cbc455158951716b440c3d165e0",
                4,
            )],
            ..ListPage::default()
        };
        let xml = list_objects_v2_xml(&v2("a dir/", None, 1000, true), &page);
        assert_eq!(
            xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>bkt</Name><Prefix>a%20dir/</Prefix><EncodingType>url</EncodingType><MaxKeys>1000</MaxKeys><KeyCount>1</KeyCount><IsTruncated>false</IsTruncated><Contents><Key>a%20dir/%C3%BC%2Bx%3D1%26y.txt</Key><LastModified>2024-01-01T00:00:00.000Z</LastModified><ETag>\"e9a23cbc455158951716b440c3d165e0\"</ETag><Size>4</Size><StorageClass>STANDARD</StorageClass></Contents></ListBucketResult>"
        );
    }

    #[test]
    fn list_v2_matches_capture_without_encoding() {
        // Request #33 of list_objects_v2.txt.
        let page = ListPage {
            contents: vec![entry("dir/", "d41d8cd98f00b204e9800998ecf8427e", 0)],
            ..ListPage::default()
        };
        let xml = list_objects_v2_xml(&v2("dir/", Some("/"), 1000, false), &page);
        assert_eq!(
            xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>bkt</Name><Prefix>dir/</Prefix><Delimiter>/</Delimiter><MaxKeys>1000</MaxKeys><KeyCount>1</KeyCount><IsTruncated>false</IsTruncated><Contents><Key>dir/</Key><LastModified>2024-01-01T00:00:00.000Z</LastModified><ETag>\"d41d8cd98f00b204e9800998ecf8427e\"</ETag><Size>0</Size><StorageClass>STANDARD</StorageClass></Contents></ListBucketResult>"
        );
        // Raw keys are XML-escaped, not URL-encoded.
        let page = ListPage {
            contents: vec![entry("a dir/ü+x=1&y.txt", "e", 4)],
            ..ListPage::default()
        };
        let xml = list_objects_v2_xml(&v2("", None, 1000, false), &page);
        assert!(xml.contains("<Key>a dir/ü+x=1&amp;y.txt</Key>"));
        assert!(!xml.contains("EncodingType"));
    }

    #[test]
    fn list_v2_truncation_tokens_and_common_prefixes() {
        let page = ListPage {
            contents: vec![entry("a b", "e", 1)],
            common_prefixes: vec!["c d/".to_owned()],
            is_truncated: true,
            next_marker: Some("c d/".to_owned()),
        };
        let req = ListV2Request {
            continuation_token: Some("61"),
            start_after: Some("a+"),
            owner: Some(Owner {
                id: "id1",
                display_name: "me",
            }),
            ..v2("", Some("/"), 2, true)
        };
        let xml = list_objects_v2_xml(&req, &page);
        let expected_token = encode_continuation_token("c d/");
        assert!(xml.contains("<Delimiter>/</Delimiter><EncodingType>url</EncodingType><MaxKeys>2</MaxKeys><KeyCount>2</KeyCount><IsTruncated>true</IsTruncated>"));
        assert!(xml.contains(&format!(
            "<ContinuationToken>61</ContinuationToken><NextContinuationToken>{expected_token}</NextContinuationToken><StartAfter>a%2B</StartAfter>"
        )));
        assert!(xml.contains("<Key>a%20b</Key>"));
        assert!(xml.contains("<Size>1</Size><Owner><ID>id1</ID><DisplayName>me</DisplayName></Owner><StorageClass>STANDARD</StorageClass>"));
        assert!(xml.ends_with("</Contents><CommonPrefixes><Prefix>c%20d/</Prefix></CommonPrefixes></ListBucketResult>"));
        // Empty delimiter is left out; no owner unless asked.
        let xml = list_objects_v2_xml(&v2("", Some(""), 2, false), &page);
        assert!(!xml.contains("<Delimiter>"));
        assert!(!xml.contains("<Owner>"));
    }

    #[test]
    fn list_v1_markers_and_owner() {
        let owner = Owner {
            id: "owner",
            display_name: "owner",
        };
        let page = ListPage {
            contents: vec![entry("k&1", "e", 1)],
            common_prefixes: vec!["p/".to_owned()],
            is_truncated: true,
            next_marker: Some("p/".to_owned()),
        };
        let req = ListV1Request {
            bucket: "bkt",
            prefix: "",
            delimiter: Some("/"),
            max_keys: 2,
            url_encoding: false,
            marker: Some("a b"),
            owner,
        };
        let xml = list_objects_v1_xml(&req, &page);
        assert!(xml.contains("<Name>bkt</Name><Prefix></Prefix><Delimiter>/</Delimiter><MaxKeys>2</MaxKeys><Marker>a b</Marker><IsTruncated>true</IsTruncated><NextMarker>p/</NextMarker>"));
        assert!(xml.contains("<Key>k&amp;1</Key>"));
        assert!(xml.contains("<Owner><ID>owner</ID><DisplayName>owner</DisplayName></Owner>"));
        assert!(!xml.contains("KeyCount"));
        // URL encoding applies to Marker and NextMarker too.
        let xml = list_objects_v1_xml(
            &ListV1Request {
                url_encoding: true,
                ..req
            },
            &page,
        );
        assert!(xml.contains("<Marker>a%20b</Marker>"));
        assert!(xml.contains("<EncodingType>url</EncodingType>"));
        // No NextMarker without a delimiter, nor when not truncated.
        let xml = list_objects_v1_xml(
            &ListV1Request {
                delimiter: None,
                ..req
            },
            &page,
        );
        assert!(!xml.contains("NextMarker"));
        let done = ListPage {
            is_truncated: false,
            next_marker: None,
            ..page.clone()
        };
        let xml = list_objects_v1_xml(&req, &done);
        assert!(!xml.contains("NextMarker"));
        // Marker is always present.
        let xml = list_objects_v1_xml(
            &ListV1Request {
                marker: None,
                ..req
            },
            &done,
        );
        assert!(xml.contains("<Marker></Marker>"));
    }

    #[test]
    fn list_page_to_v2_xml_paging_round_trip() {
        use crate::s3::params::decode_continuation_token;
        use crate::storage::{list_page, BucketIndex, ListParams};
        let keys = [
            "a dir/ü+x=1&y.txt",
            "dir/",
            "file1k.txt",
            "file20m.txt",
            "small.txt",
        ];
        let index: BucketIndex = keys
            .iter()
            .map(|k| {
                (
                    (*k).to_owned(),
                    ObjectSummary {
                        size: 1,
                        etag: "e".to_owned(),
                        last_modified_ms: JAN_1_2024_MS,
                    },
                )
            })
            .collect();
        let mut token: Option<String> = None;
        let mut seen = Vec::new();
        loop {
            let start_after = token
                .as_deref()
                .map(|t| decode_continuation_token(t).unwrap());
            let params = ListParams {
                prefix: String::new(),
                delimiter: Some("/".to_owned()),
                start_after,
                max_keys: 1,
            };
            let page = list_page(&index, &params);
            let req = ListV2Request {
                continuation_token: token.as_deref(),
                ..v2("", Some("/"), 1, true)
            };
            let xml = list_objects_v2_xml(&req, &page);
            seen.extend(
                page.contents
                    .iter()
                    .map(|e| list_value(&e.key, true).into_owned()),
            );
            seen.extend(
                page.common_prefixes
                    .iter()
                    .map(|p| list_value(p, true).into_owned()),
            );
            let next = xml
                .split("<NextContinuationToken>")
                .nth(1)
                .and_then(|rest| rest.split('<').next())
                .map(str::to_owned);
            assert_eq!(next.is_some(), page.is_truncated);
            match next {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        assert_eq!(
            seen,
            ["a%20dir/", "dir/", "file1k.txt", "file20m.txt", "small.txt"]
        );
    }
}
