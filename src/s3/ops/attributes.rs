//! GetObjectAttributes (`GET /bucket/key?attributes`): an object's ETag, checksum, parts,
//! storage class and size in one XML document, without its body.
//!
//! Invariants: only the attributes named in `x-amz-object-attributes` are returned (at least one,
//! each a known name); `ObjectParts` appears only for multipart objects, paginated by
//! `x-amz-part-number-marker` / `x-amz-max-parts` like ListParts; the ETag has no quotes (as S3
//! returns it here). Parts carry no checksums (the object record keeps only the object's).

use crate::http::date::http_date;
use crate::http::response::Response;
use crate::s3::bucket_name::validate_object_key;
use crate::s3::error::S3Error;
use crate::s3::xml::multipart::checksum_element;
use crate::s3::xml::writer::bool_text;
use crate::s3::xml::XmlWriter;
use crate::s3::Request;
use crate::storage::record::PartRef;
use crate::storage::{ObjectRecord, Store};

/// The attribute names S3 accepts in `x-amz-object-attributes`.
const ATTRIBUTE_NAMES: [&str; 5] = [
    "ETag",
    "Checksum",
    "ObjectParts",
    "StorageClass",
    "ObjectSize",
];
/// Parts listed per response unless `x-amz-max-parts` says fewer (S3's default and maximum).
const PARTS_PER_RESPONSE_MAX: u32 = 1000;

/// Which attributes a request asked for, and the parts page.
struct Wanted {
    names: Vec<&'static str>,
    max_parts: u32,
    part_number_marker: u32,
}

impl Wanted {
    fn has(&self, name: &str) -> bool {
        self.names.contains(&name)
    }
}

pub(crate) async fn get_object_attributes(
    store: &Store,
    req: &Request<'_>,
) -> Result<Response, S3Error> {
    let (bucket, key) = (&req.routed.bucket, &req.routed.key);
    validate_object_key(key)?;
    let wanted = wanted(req)?;
    let obj = store.open_object(bucket, key).await?;
    let record = &obj.record;
    let body = attributes_xml(record, &wanted);
    let mut resp = Response::xml(200, body);
    resp.push_header("Last-Modified", http_date(record.last_modified_ms));
    Ok(resp)
}

fn wanted(req: &Request<'_>) -> Result<Wanted, S3Error> {
    let mut names = Vec::new();
    for raw in req.head.header_all("x-amz-object-attributes") {
        for name in raw.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let known = ATTRIBUTE_NAMES
                .iter()
                .find(|k| k.eq_ignore_ascii_case(name));
            let known = known.ok_or_else(|| {
                crate::s3err!(InvalidArgument, "Invalid attribute name specified.")
                    .with_extra("ArgumentName", "x-amz-object-attributes")
                    .with_extra("ArgumentValue", name)
            })?;
            names.push(*known);
        }
    }
    if names.is_empty() {
        return Err(crate::s3err!(
            InvalidArgument,
            "Empty attribute list: the x-amz-object-attributes header must name at least one of ETag, Checksum, ObjectParts, StorageClass, ObjectSize."
        ));
    }
    Ok(Wanted {
        names,
        max_parts: number_header(req, "x-amz-max-parts", PARTS_PER_RESPONSE_MAX)?
            .min(PARTS_PER_RESPONSE_MAX),
        part_number_marker: number_header(req, "x-amz-part-number-marker", 0)?,
    })
}

fn number_header(req: &Request<'_>, name: &str, default: u32) -> Result<u32, S3Error> {
    match req.head.header(name) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|_| {
            crate::s3err!(InvalidArgument, "Invalid value for header {name}.")
                .with_extra("ArgumentName", name)
                .with_extra("ArgumentValue", v)
        }),
    }
}

fn attributes_xml(record: &ObjectRecord, wanted: &Wanted) -> String {
    let mut w = XmlWriter::new();
    w.open_ns("GetObjectAttributesResponse");
    if wanted.has("ETag") {
        w.elem("ETag", &record.etag());
    }
    if let Some(c) = record.checksum.as_ref().filter(|_| wanted.has("Checksum")) {
        w.open("Checksum")
            .elem(checksum_element(&c.algorithm), &c.value_b64)
            .elem("ChecksumType", c.type_name())
            .close("Checksum");
    }
    if let Some(layout) = record.parts.as_ref().filter(|_| wanted.has("ObjectParts")) {
        write_parts(&mut w, &layout.parts, wanted);
    }
    if wanted.has("StorageClass") {
        w.elem("StorageClass", "STANDARD");
    }
    if wanted.has("ObjectSize") {
        w.elem("ObjectSize", &record.size.to_string());
    }
    w.close("GetObjectAttributesResponse");
    w.finish()
}

/// `ObjectParts`: the parts after the marker, at most `max_parts` of them.
fn write_parts(w: &mut XmlWriter, parts: &[PartRef], wanted: &Wanted) {
    let after: Vec<&PartRef> = parts
        .iter()
        .filter(|p| p.number > wanted.part_number_marker)
        .collect();
    let page = &after[..after.len().min(wanted.max_parts as usize)];
    let truncated = page.len() < after.len();
    w.open("ObjectParts")
        .elem("PartsCount", &parts.len().to_string())
        .elem("PartNumberMarker", &wanted.part_number_marker.to_string());
    if let Some(last) = page.last() {
        w.elem("NextPartNumberMarker", &last.number.to_string());
    }
    w.elem("MaxParts", &wanted.max_parts.to_string())
        .elem("IsTruncated", bool_text(truncated));
    for p in page {
        w.open("Part")
            .elem("PartNumber", &p.number.to_string())
            .elem("Size", &p.size.to_string())
            .close("Part");
    }
    w.close("ObjectParts");
}
