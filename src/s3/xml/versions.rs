//! ListObjectVersions response for unversioned buckets: every object is its one `null` version,
//! always the latest. Invariant: keys go through `list_value` (so `encoding-type=url` is applied
//! exactly as in ListObjects) and a truncated page always names its next markers.

use crate::http::date::iso8601_ms;
use crate::s3::xml::responses::{write_common_prefixes, write_owner, SERVER_OWNER};
use crate::s3::xml::writer::{bool_text, list_value, quoted_etag, XmlWriter};
use crate::storage::ListPage;

/// Request values a ListObjectVersions response echoes.
pub(crate) struct ListVersionsView<'a> {
    pub(crate) bucket: &'a str,
    pub(crate) prefix: &'a str,
    pub(crate) delimiter: Option<&'a str>,
    pub(crate) key_marker: &'a str,
    pub(crate) version_id_marker: &'a str,
    pub(crate) max_keys: usize,
    pub(crate) url_encoding: bool,
}

pub(crate) fn list_versions_xml(v: &ListVersionsView<'_>, page: &ListPage) -> String {
    let enc = |s: &str| list_value(s, v.url_encoding).into_owned();
    let mut w = XmlWriter::new();
    w.open_ns("ListVersionsResult")
        .elem("Name", v.bucket)
        .elem("Prefix", &enc(v.prefix))
        .elem("KeyMarker", &enc(v.key_marker))
        .elem("VersionIdMarker", v.version_id_marker);
    if page.is_truncated {
        if let Some(next) = &page.next_marker {
            w.elem("NextKeyMarker", &enc(next))
                .elem("NextVersionIdMarker", "null");
        }
    }
    w.elem("MaxKeys", &v.max_keys.to_string());
    if let Some(d) = v.delimiter {
        w.elem("Delimiter", &enc(d));
    }
    if v.url_encoding {
        w.elem("EncodingType", "url");
    }
    w.elem("IsTruncated", bool_text(page.is_truncated));
    for e in &page.contents {
        w.open("Version")
            .elem("Key", &enc(&e.key))
            .elem("VersionId", "null")
            .elem("IsLatest", "true")
            .elem("LastModified", &iso8601_ms(e.summary.last_modified_ms))
            .elem("ETag", &quoted_etag(&e.summary.etag))
            .elem("Size", &e.summary.size.to_string());
        write_owner(&mut w, "Owner", SERVER_OWNER);
        w.elem("StorageClass", "STANDARD").close("Version");
    }
    write_common_prefixes(&mut w, &page.common_prefixes, v.url_encoding);
    w.close("ListVersionsResult");
    w.finish()
}
