//! XML documents of the multipart operations (results of Initiate, Complete, UploadPartCopy,
//! ListParts, ListMultipartUploads) and the ListMultipartUploads pagination.
//!
//! Invariant: element order and names follow S3's documented responses; keys go through
//! `list_value` so `encoding-type=url` is applied consistently.

use crate::http::date::iso8601_ms;
use crate::s3::xml::responses::{write_common_prefixes, write_owner, SERVER_OWNER};
use crate::s3::xml::writer::{bool_text, list_value, quoted_etag, XmlWriter};
use crate::storage::{PartInfo, StoredChecksum, UploadInfo};

/// `ChecksumCRC32`-style element name of a stored checksum algorithm.
pub(crate) fn checksum_element(algorithm: &str) -> &'static str {
    match algorithm {
        "crc32" => "ChecksumCRC32",
        "crc32c" => "ChecksumCRC32C",
        "sha1" => "ChecksumSHA1",
        "sha256" => "ChecksumSHA256",
        "crc64nvme" => "ChecksumCRC64NVME",
        _ => "Checksum",
    }
}

/// The element of a stored checksum (`<ChecksumCRC32>...`), when there is one.
fn write_checksum(w: &mut XmlWriter, checksum: Option<&StoredChecksum>) {
    if let Some(c) = checksum {
        w.elem(checksum_element(&c.algorithm), &c.value_b64);
    }
}

/// `Initiator` and `Owner`, both the server's owner.
fn write_initiator_and_owner(w: &mut XmlWriter) {
    write_owner(w, "Initiator", SERVER_OWNER);
    write_owner(w, "Owner", SERVER_OWNER);
}

pub(crate) fn initiate_result_xml(bucket: &str, key: &str, upload_id: &str) -> String {
    let mut w = XmlWriter::new();
    w.open_ns("InitiateMultipartUploadResult")
        .elem("Bucket", bucket)
        .elem("Key", key)
        .elem("UploadId", upload_id)
        .close("InitiateMultipartUploadResult");
    w.finish()
}

pub(crate) fn complete_result_xml(
    location: &str,
    bucket: &str,
    key: &str,
    etag: &str,
    checksum: Option<&StoredChecksum>,
) -> String {
    let mut w = XmlWriter::new();
    w.open_ns("CompleteMultipartUploadResult")
        .elem("Location", location)
        .elem("Bucket", bucket)
        .elem("Key", key)
        .elem("ETag", etag);
    write_checksum(&mut w, checksum);
    if let Some(c) = checksum {
        w.elem("ChecksumType", c.type_name());
    }
    w.close("CompleteMultipartUploadResult");
    w.finish()
}

pub(crate) fn copy_part_result_xml(
    etag: &str,
    last_modified_ms: u64,
    checksum: Option<&StoredChecksum>,
) -> String {
    let mut w = XmlWriter::new();
    w.open_ns("CopyPartResult")
        .elem("LastModified", &iso8601_ms(last_modified_ms))
        .elem("ETag", etag);
    write_checksum(&mut w, checksum);
    w.close("CopyPartResult");
    w.finish()
}

/// What a ListParts response shows.
pub(crate) struct ListPartsView<'a> {
    pub(crate) bucket: &'a str,
    pub(crate) key: &'a str,
    pub(crate) upload_id: &'a str,
    pub(crate) marker: u32,
    pub(crate) next_marker: u32,
    pub(crate) max_parts: usize,
    pub(crate) truncated: bool,
    pub(crate) checksum_algorithm: Option<&'a str>,
    pub(crate) checksum_type: Option<&'a str>,
    pub(crate) parts: &'a [&'a (u32, PartInfo)],
}

pub(crate) fn list_parts_xml(v: &ListPartsView<'_>) -> String {
    let mut w = XmlWriter::new();
    w.open_ns("ListPartsResult")
        .elem("Bucket", v.bucket)
        .elem("Key", v.key)
        .elem("UploadId", v.upload_id);
    write_initiator_and_owner(&mut w);
    w.elem("StorageClass", "STANDARD")
        .elem("PartNumberMarker", &v.marker.to_string())
        .elem("NextPartNumberMarker", &v.next_marker.to_string())
        .elem("MaxParts", &v.max_parts.to_string())
        .elem("IsTruncated", bool_text(v.truncated));
    if let Some(a) = v.checksum_algorithm {
        w.elem("ChecksumAlgorithm", &a.to_ascii_uppercase());
    }
    if let Some(t) = v.checksum_type {
        w.elem("ChecksumType", t);
    }
    for (n, p) in v.parts.iter().map(|x| (&x.0, &x.1)) {
        w.open("Part")
            .elem("PartNumber", &n.to_string())
            .elem("LastModified", &iso8601_ms(p.last_modified_ms))
            .elem("ETag", &quoted_etag(&p.etag()))
            .elem("Size", &p.size.to_string());
        write_checksum(&mut w, p.checksum.as_ref());
        w.close("Part");
    }
    w.close("ListPartsResult");
    w.finish()
}

/// One page of ListMultipartUploads.
#[derive(Debug, Default)]
pub(crate) struct UploadsPage<'a> {
    pub(crate) uploads: Vec<&'a UploadInfo>,
    pub(crate) common_prefixes: Vec<String>,
    pub(crate) truncated: bool,
    pub(crate) next_key_marker: String,
    pub(crate) next_upload_id_marker: String,
}

/// Applies prefix, delimiter and the key / upload-id markers to uploads sorted by key.
pub(crate) fn paginate_uploads<'a>(
    all: &'a [UploadInfo],
    prefix: &str,
    delimiter: Option<&str>,
    key_marker: &str,
    id_marker: &str,
    max: usize,
) -> UploadsPage<'a> {
    let mut page = UploadsPage::default();
    let mut count = 0usize;
    // Entries at the marker key come after `id_marker` (when given).
    let mut past_id_marker = id_marker.is_empty();
    for u in all {
        if !u.key.starts_with(prefix) {
            continue;
        }
        if !key_marker.is_empty() {
            if u.key.as_str() < key_marker {
                continue;
            }
            if u.key == key_marker {
                if id_marker.is_empty() {
                    continue;
                }
                if !past_id_marker {
                    past_id_marker = u.upload_id == id_marker;
                    continue;
                }
            }
        }
        let rolled = delimiter.and_then(|d| {
            u.key[prefix.len()..]
                .find(d)
                .map(|i| u.key[..prefix.len() + i + d.len()].to_string())
        });
        if let Some(cp) = rolled {
            if page.common_prefixes.last() == Some(&cp) {
                continue;
            }
            if key_marker.starts_with(&cp) && !key_marker.is_empty() {
                continue;
            }
            if count == max {
                page.truncated = true;
                break;
            }
            page.next_key_marker = cp.clone();
            page.next_upload_id_marker.clear();
            page.common_prefixes.push(cp);
        } else {
            if count == max {
                page.truncated = true;
                break;
            }
            page.next_key_marker = u.key.clone();
            page.next_upload_id_marker = u.upload_id.clone();
            page.uploads.push(u);
        }
        count += 1;
    }
    page
}

/// What a ListMultipartUploads response shows.
pub(crate) struct ListUploadsView<'a> {
    pub(crate) bucket: &'a str,
    pub(crate) prefix: &'a str,
    pub(crate) delimiter: Option<&'a str>,
    pub(crate) key_marker: &'a str,
    pub(crate) upload_id_marker: &'a str,
    pub(crate) max_uploads: usize,
    pub(crate) url_encoding: bool,
    pub(crate) page: &'a UploadsPage<'a>,
}

pub(crate) fn list_uploads_xml(v: &ListUploadsView<'_>) -> String {
    let enc = |s: &str| list_value(s, v.url_encoding).into_owned();
    let mut w = XmlWriter::new();
    w.open_ns("ListMultipartUploadsResult")
        .elem("Bucket", v.bucket)
        .elem("KeyMarker", &enc(v.key_marker))
        .elem("UploadIdMarker", v.upload_id_marker);
    if v.page.truncated {
        w.elem("NextKeyMarker", &enc(&v.page.next_key_marker))
            .elem("NextUploadIdMarker", &v.page.next_upload_id_marker);
    }
    w.elem("Prefix", &enc(v.prefix));
    if let Some(d) = v.delimiter {
        w.elem("Delimiter", &enc(d));
    }
    if v.url_encoding {
        w.elem("EncodingType", "url");
    }
    w.elem("MaxUploads", &v.max_uploads.to_string())
        .elem("IsTruncated", bool_text(v.page.truncated));
    for u in &v.page.uploads {
        w.open("Upload")
            .elem("Key", &enc(&u.key))
            .elem("UploadId", &u.upload_id);
        write_initiator_and_owner(&mut w);
        w.elem("StorageClass", "STANDARD")
            .elem("Initiated", &iso8601_ms(u.initiated_ms));
        if let Some(a) = &u.checksum_algorithm {
            w.elem("ChecksumAlgorithm", &a.to_ascii_uppercase());
        }
        if let Some(t) = u.checksum_type {
            w.elem("ChecksumType", t);
        }
        w.close("Upload");
    }
    write_common_prefixes(&mut w, &v.page.common_prefixes, v.url_encoding);
    w.close("ListMultipartUploadsResult");
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(key: &str, id: &str, t: u64) -> UploadInfo {
        UploadInfo {
            upload_id: id.into(),
            key: key.into(),
            initiated_ms: t,
            checksum_algorithm: None,
            checksum_type: None,
            parts: vec![],
        }
    }

    #[test]
    fn uploads_pagination_visits_each_once() {
        let all = vec![
            up("a", "1", 1),
            up("a", "2", 2),
            up("b", "3", 3),
            up("d/x", "4", 4),
            up("d/y", "5", 5),
        ];
        let p = paginate_uploads(&all, "", Some("/"), "", "", 2);
        assert_eq!(
            p.uploads
                .iter()
                .map(|u| u.upload_id.as_str())
                .collect::<Vec<_>>(),
            ["1", "2"]
        );
        assert!(p.truncated);
        let p2 = paginate_uploads(
            &all,
            "",
            Some("/"),
            &p.next_key_marker,
            &p.next_upload_id_marker,
            2,
        );
        assert_eq!(
            p2.uploads
                .iter()
                .map(|u| u.upload_id.as_str())
                .collect::<Vec<_>>(),
            ["3"]
        );
        assert_eq!(p2.common_prefixes, ["d/"]);
        assert!(!p2.truncated);
    }
}
