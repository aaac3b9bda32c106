//! S3 XML: text escaping, a small document writer, the response documents ringstore sends, and
//! hardened parsers for the request bodies it accepts (CreateBucketConfiguration, Delete,
//! CompleteMultipartUpload).
//!
//! Invariants:
//! - Every document written is well-formed XML 1.0: text goes through [`escape`], which also
//!   replaces characters XML 1.0 cannot carry. With `encoding-type=url` list values are
//!   percent-encoded by [`url_encode`] instead (never a mix within one response).
//! - Parsers accept UTF-8 only, refuse DOCTYPE (so no custom or external entities), resolve only
//!   the five predefined entities and character references, bound body size and nesting depth,
//!   ignore namespaces (matching local names, with or without `xmlns` or a prefix) and unknown
//!   elements, and report every failure as `MalformedXML` (or `InvalidArgument` for a part number
//!   outside 1..=10000).

use std::borrow::Cow;

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use crate::http::date::iso8601_ms;
use crate::s3::error::S3Error;
use crate::s3::list_params::encode_continuation_token;
use crate::storage::ListPage;

/// The S3 document namespace.
pub const S3_XMLNS: &str = "http://s3.amazonaws.com/doc/2006-03-01/";
const XML_DECLARATION: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

/// Largest CreateBucketConfiguration body accepted.
pub const CREATE_BUCKET_BODY_MAX_BYTES: usize = 64 * 1024;
/// Largest Delete (DeleteObjects) body accepted: 1000 keys of up to 1024 bytes is already ~1 MiB
/// before markup, so allow 2 MiB.
pub const DELETE_BODY_MAX_BYTES: usize = 2 * 1024 * 1024;
/// Largest CompleteMultipartUpload body accepted (10000 parts with several checksums each).
pub const COMPLETE_MULTIPART_BODY_MAX_BYTES: usize = 8 * 1024 * 1024;
/// Deepest element nesting accepted in a request body (S3's bodies are 3 levels deep).
pub const XML_DEPTH_MAX: usize = 16;
/// Most objects one DeleteObjects request may name.
pub const DELETE_OBJECTS_MAX: usize = 1000;
/// Most parts one CompleteMultipartUpload may list.
pub const COMPLETE_PARTS_MAX: usize = 10_000;
/// Highest part number S3 allows.
pub const PART_NUMBER_MAX: u32 = 10_000;

const MALFORMED_XML_MESSAGE: &str =
    "The XML you provided was not well-formed or did not validate against our published schema";

fn malformed_xml() -> S3Error {
    crate::s3err!(MalformedXML, "{MALFORMED_XML_MESSAGE}")
}

// ---------------------------------------------------------------------------------------------
// Escaping and encoding
// ---------------------------------------------------------------------------------------------

/// Escapes text for XML element content (not attribute values: quotes are left as they are):
/// `< > &` become entities (quick-xml's `partial_escape`), CR, LF and TAB become character
/// references (as S3 does, so they survive parsers' newline normalisation), and characters XML 1.0
/// cannot carry at all (other C0 controls, U+FFFE, U+FFFF) become U+FFFD. Keys holding such
/// characters round-trip only with `encoding-type=url`.
pub fn escape(s: &str) -> Cow<'_, str> {
    let escaped = quick_xml::escape::partial_escape(s);
    // Fast path: no control characters and no U+FFFE/U+FFFF (whose UTF-8 starts with 0xEF).
    if !escaped.bytes().any(|b| b < 0x20 || b == 0xEF) {
        return escaped;
    }
    if !escaped.chars().any(needs_char_fixup) {
        return escaped;
    }
    let mut out = String::with_capacity(escaped.len() + 16);
    for c in escaped.chars() {
        match c {
            '\r' => out.push_str("&#13;"),
            '\n' => out.push_str("&#10;"),
            '\t' => out.push_str("&#9;"),
            c if is_xml10_char(c) => out.push(c),
            _ => out.push(char::REPLACEMENT_CHARACTER),
        }
    }
    Cow::Owned(out)
}

fn needs_char_fixup(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\t') || !is_xml10_char(c)
}

/// XML 1.0 `Char` production (surrogates cannot occur in a Rust `char`).
fn is_xml10_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

/// Percent-encodes every byte except `A-Z a-z 0-9 - _ . ~ /` as `%XX` (uppercase hex), the
/// `encoding-type=url` form; botocore's `unquote_plus` restores the original exactly.
pub fn url_encode(s: &str) -> Cow<'_, str> {
    fn keep(b: u8) -> bool {
        b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/')
    }
    if s.bytes().all(keep) {
        return Cow::Borrowed(s);
    }
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if keep(b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
    Cow::Owned(out)
}

/// A list value as sent: percent-encoded with `encoding-type=url`, raw (to be escaped) otherwise.
pub fn list_value(s: &str, url_encoding: bool) -> Cow<'_, str> {
    if url_encoding {
        url_encode(s)
    } else {
        Cow::Borrowed(s)
    }
}

/// `"etag"`: adds the quotes S3 shows around ETags unless already there.
fn quoted_etag(etag: &str) -> Cow<'_, str> {
    if etag.len() >= 2 && etag.starts_with('"') && etag.ends_with('"') {
        Cow::Borrowed(etag)
    } else {
        Cow::Owned(format!("\"{etag}\""))
    }
}

// ---------------------------------------------------------------------------------------------
// Writer
// ---------------------------------------------------------------------------------------------

/// Builds one XML document: the declaration, then elements written in order. Element names are
/// trusted constants; text is escaped.
#[derive(Debug)]
pub struct XmlWriter {
    out: String,
    depth: usize,
}

impl Default for XmlWriter {
    fn default() -> Self {
        XmlWriter::new()
    }
}

impl XmlWriter {
    /// A document holding only `<?xml version="1.0" encoding="UTF-8"?>\n`.
    pub fn new() -> XmlWriter {
        let mut out = String::with_capacity(1024);
        out.push_str(XML_DECLARATION);
        XmlWriter { out, depth: 0 }
    }

    /// `<name>`
    pub fn open(&mut self, name: &str) -> &mut Self {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
        self.depth += 1;
        self
    }

    /// `<name xmlns="http://s3.amazonaws.com/doc/2006-03-01/">`, for root elements.
    pub fn open_ns(&mut self, name: &str) -> &mut Self {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push_str(" xmlns=\"");
        self.out.push_str(S3_XMLNS);
        self.out.push_str("\">");
        self.depth += 1;
        self
    }

    /// `</name>`
    pub fn close(&mut self, name: &str) -> &mut Self {
        debug_assert!(self.depth > 0, "close({name}) without open");
        self.depth = self.depth.saturating_sub(1);
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
        self
    }

    /// `<name>text</name>` with `text` escaped.
    pub fn elem(&mut self, name: &str, text: &str) -> &mut Self {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
        self.out.push_str(&escape(text));
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
        self
    }

    /// The finished document.
    /// Appends trusted, constant markup (e.g. an element with attributes); never client text.
    pub fn raw(&mut self, markup: &'static str) -> &mut Self {
        self.out.push_str(markup);
        self
    }

    pub fn finish(self) -> String {
        debug_assert_eq!(self.depth, 0, "unclosed elements in XML document");
        self.out
    }
}

// ---------------------------------------------------------------------------------------------
// Response documents
// ---------------------------------------------------------------------------------------------

/// Owner shown in listings (`<Owner><ID/><DisplayName/></Owner>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner<'a> {
    pub id: &'a str,
    pub display_name: &'a str,
}

fn write_owner(w: &mut XmlWriter, owner: Owner<'_>) {
    w.open("Owner")
        .elem("ID", owner.id)
        .elem("DisplayName", owner.display_name)
        .close("Owner");
}

/// ListAllMyBucketsResult for `buckets` given as (name, creation time in ms), in the order given.
pub fn list_buckets_xml(owner_id: &str, owner_name: &str, buckets: &[(String, u64)]) -> String {
    list_buckets_page_xml(owner_id, owner_name, buckets, None, None)
}

/// ListAllMyBucketsResult for one page: `ContinuationToken` names the next page (when truncated)
/// and `Prefix` echoes the request's prefix.
pub fn list_buckets_page_xml(
    owner_id: &str,
    owner_name: &str,
    buckets: &[(String, u64)],
    next_token: Option<&str>,
    prefix: Option<&str>,
) -> String {
    let mut w = XmlWriter::new();
    w.open_ns("ListAllMyBucketsResult");
    write_owner(
        &mut w,
        Owner {
            id: owner_id,
            display_name: owner_name,
        },
    );
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
pub fn location_xml(region: &str) -> String {
    let mut w = XmlWriter::new();
    let region = if region == "us-east-1" { "" } else { region };
    w.open_ns("LocationConstraint");
    w.out.push_str(&escape(region));
    w.close("LocationConstraint");
    w.finish()
}

/// Request values a ListObjectsV2 response echoes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListV2Request<'a> {
    pub bucket: &'a str,
    pub prefix: &'a str,
    /// Omitted from the response when `None` or empty.
    pub delimiter: Option<&'a str>,
    pub max_keys: usize,
    /// `encoding-type=url` was requested.
    pub url_encoding: bool,
    /// The token as received (echoed verbatim; never URL-encoded).
    pub continuation_token: Option<&'a str>,
    pub start_after: Option<&'a str>,
    /// `Some` when `fetch-owner=true`: every entry then carries this owner.
    pub owner: Option<Owner<'a>>,
}

/// Request values a ListObjects (v1) response echoes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListV1Request<'a> {
    pub bucket: &'a str,
    pub prefix: &'a str,
    /// Omitted from the response when `None` or empty.
    pub delimiter: Option<&'a str>,
    pub max_keys: usize,
    /// `encoding-type=url` was requested.
    pub url_encoding: bool,
    pub marker: Option<&'a str>,
    /// v1 entries always carry an owner.
    pub owner: Owner<'a>,
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
            write_owner(w, owner);
        }
        w.elem("StorageClass", "STANDARD").close("Contents");
    }
    for prefix in &page.common_prefixes {
        w.open("CommonPrefixes")
            .elem("Prefix", &list_value(prefix, url_encoding))
            .close("CommonPrefixes");
    }
}

/// ListBucketResult for ListObjectsV2. `NextContinuationToken` (from `page.next_marker`) is present
/// whenever `IsTruncated` is true, so paginators never stop early.
pub fn list_objects_v2_xml(req: &ListV2Request<'_>, page: &ListPage) -> String {
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
pub fn list_objects_v1_xml(req: &ListV1Request<'_>, page: &ListPage) -> String {
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

fn bool_text(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

/// DeleteResult: a `Deleted` entry per key (left out when `quiet`), then an `Error` entry per
/// failed key as (key, code, message).
pub fn delete_result_xml(
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
pub fn copy_object_result_xml(etag: &str, last_modified_ms: u64) -> String {
    let mut w = XmlWriter::new();
    w.open_ns("CopyObjectResult")
        .elem("LastModified", &iso8601_ms(last_modified_ms))
        .elem("ETag", &quoted_etag(etag))
        .close("CopyObjectResult");
    w.finish()
}

// ---------------------------------------------------------------------------------------------
// Request parsing
// ---------------------------------------------------------------------------------------------

/// Walks a request body and calls `on_close(path, text)` as each element closes, where `path` is
/// the local names from the root down to the closing element and `text` is the unescaped text
/// directly inside it. Enforces: size limit, UTF-8, no NUL, no DOCTYPE, only predefined entities,
/// matching end tags, depth limit, exactly one root element named `root`, nothing but whitespace,
/// comments and processing instructions outside it.
fn walk_elements(
    body: &[u8],
    max_bytes: usize,
    root: &str,
    mut on_close: impl FnMut(&[String], String) -> Result<(), S3Error>,
) -> Result<(), S3Error> {
    if body.len() > max_bytes || body.contains(&0) {
        return Err(malformed_xml());
    }
    let text = std::str::from_utf8(body).map_err(|_| malformed_xml())?;
    // Some clients (.NET) start with a UTF-8 byte order mark.
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    let mut reader = Reader::from_str(text);
    let config = reader.config_mut();
    config.expand_empty_elements = false;
    config.check_end_names = true;
    config.trim_text(false);

    let mut path: Vec<String> = Vec::new();
    let mut texts: Vec<String> = Vec::new();
    let mut root_closed = false;

    let open = |start: &BytesStart<'_>,
                path: &mut Vec<String>,
                texts: &mut Vec<String>,
                root_closed: bool|
     -> Result<(), S3Error> {
        if root_closed || path.len() >= XML_DEPTH_MAX {
            return Err(malformed_xml());
        }
        let name = std::str::from_utf8(start.local_name().into_inner())
            .map_err(|_| malformed_xml())?
            .to_owned();
        if path.is_empty() && name != root {
            return Err(malformed_xml());
        }
        // Attributes must be well-formed even though none are used.
        for attr in start.attributes() {
            attr.map_err(|_| malformed_xml())?;
        }
        path.push(name);
        texts.push(String::new());
        Ok(())
    };

    loop {
        let event = reader.read_event().map_err(|_| malformed_xml())?;
        match event {
            Event::Start(start) => open(&start, &mut path, &mut texts, root_closed)?,
            Event::Empty(start) => {
                open(&start, &mut path, &mut texts, root_closed)?;
                let inner = texts.pop().unwrap_or_default();
                on_close(&path, inner)?;
                path.pop();
                root_closed = path.is_empty();
            }
            Event::End(_) => {
                let inner = texts.pop().ok_or_else(malformed_xml)?;
                on_close(&path, inner)?;
                path.pop();
                root_closed = path.is_empty();
            }
            Event::Text(t) => {
                let unescaped = t.unescape().map_err(|_| malformed_xml())?;
                push_text(&mut texts, &unescaped)?;
            }
            Event::CData(c) => {
                let inner = c.into_inner();
                let s = std::str::from_utf8(&inner).map_err(|_| malformed_xml())?;
                if texts.is_empty() {
                    return Err(malformed_xml());
                }
                push_text(&mut texts, s)?;
            }
            Event::Decl(_) => {
                if !path.is_empty() || root_closed {
                    return Err(malformed_xml());
                }
            }
            Event::Comment(_) | Event::PI(_) => {}
            Event::DocType(_) => return Err(malformed_xml()),
            Event::Eof => {
                return if root_closed && path.is_empty() {
                    Ok(())
                } else {
                    Err(malformed_xml())
                };
            }
        }
    }
}

/// Adds text to the innermost open element; outside the root only XML whitespace may appear.
fn push_text(texts: &mut [String], s: &str) -> Result<(), S3Error> {
    match texts.last_mut() {
        Some(buf) => {
            buf.push_str(s);
            Ok(())
        }
        None if s.bytes().all(is_xml_whitespace) => Ok(()),
        None => Err(malformed_xml()),
    }
}

fn is_xml_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn trim_xml_whitespace(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_ascii() && is_xml_whitespace(c as u8))
}

/// `true`/`false` (case-insensitive, surrounding whitespace ignored).
fn parse_xml_bool(s: &str) -> Result<bool, S3Error> {
    let s = trim_xml_whitespace(s);
    if s.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if s.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(malformed_xml())
    }
}

/// The LocationConstraint of a CreateBucket body. An empty (or whitespace-only) body or a
/// configuration without the element is `Ok(None)`; an empty element is `Ok(Some(""))`
/// (us-east-1).
pub fn parse_create_bucket_configuration(body: &[u8]) -> Result<Option<String>, S3Error> {
    if body.iter().all(|b| is_xml_whitespace(*b)) {
        return Ok(None);
    }
    let mut location = None;
    walk_elements(
        body,
        CREATE_BUCKET_BODY_MAX_BYTES,
        "CreateBucketConfiguration",
        |path, text| {
            if let [_, name] = path {
                if name == "LocationConstraint" {
                    if location.is_some() {
                        return Err(malformed_xml());
                    }
                    location = Some(trim_xml_whitespace(&text).to_owned());
                }
            }
            Ok(())
        },
    )?;
    Ok(location)
}

/// The keys of a DeleteObjects body and its `Quiet` flag (default false). Keys are returned
/// exactly as sent (not trimmed, possibly empty: the caller reports bad keys per key); order and
/// duplicates are kept. `VersionId` and unknown elements are ignored. No objects, more than
/// [`DELETE_OBJECTS_MAX`], or an `Object` without `Key` is `MalformedXML`.
pub fn parse_delete_request(body: &[u8]) -> Result<(Vec<String>, bool), S3Error> {
    let mut keys: Vec<String> = Vec::new();
    let mut quiet = false;
    let mut current_key: Option<String> = None;
    walk_elements(body, DELETE_BODY_MAX_BYTES, "Delete", |path, text| {
        match path {
            [_, object, field] if object == "Object" && field == "Key" => {
                let earlier_key = current_key.replace(text);
                if earlier_key.is_some() {
                    return Err(malformed_xml());
                }
            }
            [_, object] if object == "Object" => {
                let key = current_key.take().ok_or_else(malformed_xml)?;
                if keys.len() >= DELETE_OBJECTS_MAX {
                    return Err(malformed_xml());
                }
                keys.push(key);
            }
            [_, field] if field == "Quiet" => quiet = parse_xml_bool(&text)?,
            _ => {}
        }
        Ok(())
    })?;
    if keys.is_empty() {
        return Err(malformed_xml());
    }
    Ok((keys, quiet))
}

/// One `<Part>` of a CompleteMultipartUpload body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletedPart {
    pub part_number: u32,
    /// Without surrounding quotes.
    pub etag: String,
    /// `Checksum*` elements as (element name, value), e.g. `("ChecksumCRC32", "YAgjqw==")`.
    pub checksums: Vec<(String, String)>,
}

/// The parts of a CompleteMultipartUpload body, in document order (order and duplicates are
/// checked by the caller: InvalidPartOrder / InvalidPart). Missing `PartNumber` or `ETag`, no parts,
/// or more than [`COMPLETE_PARTS_MAX`] is `MalformedXML`; a part number outside 1..=10000 is
/// `InvalidArgument`.
pub fn parse_complete_multipart(body: &[u8]) -> Result<Vec<CompletedPart>, S3Error> {
    #[derive(Default)]
    struct PartFields {
        part_number: Option<u32>,
        etag: Option<String>,
        checksums: Vec<(String, String)>,
    }
    let mut parts: Vec<CompletedPart> = Vec::new();
    let mut current = PartFields::default();
    walk_elements(
        body,
        COMPLETE_MULTIPART_BODY_MAX_BYTES,
        "CompleteMultipartUpload",
        |path, text| {
            match path {
                [_, part, field] if part == "Part" => {
                    if field == "PartNumber" {
                        let number = parse_part_number(&text)?;
                        if current.part_number.replace(number).is_some() {
                            return Err(malformed_xml());
                        }
                    } else if field == "ETag" {
                        let etag = trim_xml_whitespace(&text);
                        let etag = etag.strip_prefix('"').unwrap_or(etag);
                        let etag = etag.strip_suffix('"').unwrap_or(etag);
                        if current.etag.replace(etag.to_owned()).is_some() {
                            return Err(malformed_xml());
                        }
                    } else if field.starts_with("Checksum") {
                        current
                            .checksums
                            .push((field.clone(), trim_xml_whitespace(&text).to_owned()));
                    }
                }
                [_, part] if part == "Part" => {
                    let fields = std::mem::take(&mut current);
                    let (Some(part_number), Some(etag)) = (fields.part_number, fields.etag) else {
                        return Err(malformed_xml());
                    };
                    if parts.len() >= COMPLETE_PARTS_MAX {
                        return Err(malformed_xml());
                    }
                    parts.push(CompletedPart {
                        part_number,
                        etag,
                        checksums: fields.checksums,
                    });
                }
                _ => {}
            }
            Ok(())
        },
    )?;
    if parts.is_empty() {
        return Err(malformed_xml());
    }
    Ok(parts)
}

fn parse_part_number(text: &str) -> Result<u32, S3Error> {
    let digits = trim_xml_whitespace(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed_xml());
    }
    match digits.parse::<u32>() {
        Ok(n) if (1..=PART_NUMBER_MAX).contains(&n) => Ok(n),
        _ => Err(crate::s3err!(
            InvalidArgument,
            "Part number must be an integer between 1 and 10000, inclusive"
        )
        .with_extra("ArgumentName", "partNumber")
        .with_extra("ArgumentValue", digits)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::s3::error::S3ErrorCode;
    use crate::storage::{ListEntry, ListPage, ObjectSummary};

    const JAN_1_2024_MS: u64 = 1_704_067_200_000;
    const DECL: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

    /// botocore's `unquote_plus`, for round-trip checks.
    fn unquote_plus(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => {
                    let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                    out.push(u8::from_str_radix(hex, 16).unwrap());
                    i += 2;
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8(out).unwrap()
    }

    fn assert_malformed(result: Result<impl std::fmt::Debug, S3Error>, what: &str) {
        match result {
            Err(e) => assert_eq!(e.code, S3ErrorCode::MalformedXML, "{what}: {e}"),
            Ok(v) => panic!("{what}: expected MalformedXML, got {v:?}"),
        }
    }

    fn delete_body_for(key_xml: &str) -> String {
        format!("<Delete><Object><Key>{key_xml}</Key></Object></Delete>")
    }

    // --- escaping -----------------------------------------------------------------------------

    #[test]
    fn escape_markup_characters() {
        assert_eq!(escape("a<b>c&d'e\"f"), "a&lt;b&gt;c&amp;d'e\"f");
        assert!(matches!(
            escape("plain/ü/\u{F000}/\u{EFFF}"),
            Cow::Borrowed(_)
        ));
        assert_eq!(escape(""), "");
    }

    #[test]
    fn escape_whitespace_controls_as_char_refs() {
        assert_eq!(escape("a\rb\nc\td"), "a&#13;b&#10;c&#9;d");
    }

    #[test]
    fn escape_replaces_characters_xml_cannot_carry() {
        assert_eq!(
            escape("a\u{0}b\u{1}c\u{1F}d"),
            "a\u{FFFD}b\u{FFFD}c\u{FFFD}d"
        );
        assert_eq!(escape("x\u{FFFE}\u{FFFF}&"), "x\u{FFFD}\u{FFFD}&amp;");
        assert_eq!(
            escape("\u{7F}\u{FFFD}\u{10FFFF}"),
            "\u{7F}\u{FFFD}\u{10FFFF}"
        );
        for b in 0u8..0x80 {
            let s = char::from(b).to_string();
            let e = escape(&s);
            assert!(e.chars().all(|c| c >= ' '), "{b:#x} -> {e:?}");
        }
    }

    #[test]
    fn escaped_text_round_trips_through_the_parser() {
        for key in [
            "a dir/ü+x=1&y.txt",
            "<tag> & \"quotes\" 'apos'",
            "cr\rlf\ntab\t",
            "  leading and trailing  ",
            "\u{10FFFF}\u{E000}",
            "]]>",
        ] {
            let body = delete_body_for(&escape(key));
            let (keys, _) = parse_delete_request(body.as_bytes()).unwrap();
            assert_eq!(keys, [key]);
        }
    }

    #[test]
    fn url_encode_is_exact_under_unquote_plus() {
        assert_eq!(
            url_encode("a dir/ü+x=1&y.txt"),
            "a%20dir/%C3%BC%2Bx%3D1%26y.txt"
        );
        assert_eq!(url_encode("Az09-_.~/"), "Az09-_.~/");
        assert!(matches!(url_encode("dir/file.txt"), Cow::Borrowed(_)));
        assert_eq!(url_encode("%+ \u{1}\r"), "%25%2B%20%01%0D");
        for key in [
            "a dir/ü+x=1&y.txt",
            "100% + plus",
            "\u{1}\u{1F}\u{7F}\r\n\t",
            "\u{10FFFF}\u{FFFE}",
            "~!@#$^*()[]{}|\\;:'\",<>?`",
        ] {
            let encoded = url_encode(key);
            assert!(encoded.bytes().all(|b| b.is_ascii_graphic()));
            assert_eq!(
                escape(&encoded),
                encoded,
                "encoded keys need no XML escaping"
            );
            assert_eq!(unquote_plus(&encoded), key);
        }
    }

    // --- writer and response documents ------------------------------------------------------

    #[test]
    fn writer_builds_documents() {
        let mut w = XmlWriter::new();
        w.open_ns("Root")
            .open("A")
            .elem("B", "x<y")
            .close("A")
            .elem("C", "");
        w.close("Root");
        assert_eq!(
            w.finish(),
            format!("{DECL}<Root xmlns=\"{S3_XMLNS}\"><A><B>x&lt;y</B></A><C></C></Root>")
        );
        assert_eq!(XmlWriter::default().finish(), DECL);
    }

    #[test]
    fn list_buckets_matches_capture() {
        let xml = list_buckets_xml("owner", "owner", &[("bkt".to_owned(), JAN_1_2024_MS)]);
        assert_eq!(
            xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListAllMyBucketsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Owner><ID>owner</ID><DisplayName>owner</DisplayName></Owner><Buckets><Bucket><Name>bkt</Name><CreationDate>2024-01-01T00:00:00.000Z</CreationDate></Bucket></Buckets></ListAllMyBucketsResult>"
        );
        let empty = list_buckets_xml("id", "name", &[]);
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

    // --- parsing: bodies boto3 sends -------------------------------------------------------------

    #[test]
    fn parses_boto3_delete_body() {
        let body = br#"<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Object><Key>copy2.txt</Key></Object><Object><Key>fileobj.txt</Key></Object><Quiet>false</Quiet></Delete>"#;
        let (keys, quiet) = parse_delete_request(body).unwrap();
        assert_eq!(keys, ["copy2.txt", "fileobj.txt"]);
        assert!(!quiet);
    }

    #[test]
    fn delete_body_variants() {
        let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<s3:Delete xmlns:s3=\"http://s3.amazonaws.com/doc/2006-03-01/\">\n  <s3:Quiet>TRUE</s3:Quiet>\n  <s3:Object><s3:Key> spaced key </s3:Key><s3:VersionId>v1</s3:VersionId></s3:Object>\n  <!-- comment -->\n  <s3:Object><s3:Key><![CDATA[a<b&c]]></s3:Key></s3:Object>\n  <s3:Object><s3:Key>x&#13;&#x0A;y&amp;&lt;&gt;&quot;&apos;</s3:Key></s3:Object>\n  <s3:Object><s3:Key/></s3:Object>\n  <Unknown><Nested>1</Nested></Unknown>\n</s3:Delete>\n";
        let (keys, quiet) = parse_delete_request(body.as_bytes()).unwrap();
        assert_eq!(keys, [" spaced key ", "a<b&c", "x\r\ny&<>\"'", ""]);
        assert!(quiet);
        // No xmlns at all, Quiet absent.
        let (keys, quiet) =
            parse_delete_request(b"<Delete><Object><Key>k</Key></Object></Delete>").unwrap();
        assert_eq!(keys, ["k"]);
        assert!(!quiet);
    }

    #[test]
    fn delete_object_limit() {
        let objects = |n: usize| {
            let mut s = String::from("<Delete>");
            for i in 0..n {
                s.push_str(&format!("<Object><Key>k{i}</Key></Object>"));
            }
            s.push_str("</Delete>");
            s
        };
        let (keys, _) = parse_delete_request(objects(1000).as_bytes()).unwrap();
        assert_eq!(keys.len(), 1000);
        assert_malformed(
            parse_delete_request(objects(1001).as_bytes()),
            "1001 objects",
        );
        assert_malformed(parse_delete_request(objects(0).as_bytes()), "no objects");
    }

    #[test]
    fn delete_largest_legitimate_body_fits() {
        let key = "k".repeat(1024);
        let mut s = String::from("<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
        for _ in 0..1000 {
            s.push_str(&format!(
                "<Object><Key>{key}</Key><VersionId>null</VersionId></Object>"
            ));
        }
        s.push_str("<Quiet>true</Quiet></Delete>");
        assert!(s.len() > 1024 * 1024);
        let (keys, quiet) = parse_delete_request(s.as_bytes()).unwrap();
        assert_eq!(keys.len(), 1000);
        assert!(quiet);
    }

    #[test]
    fn delete_schema_violations() {
        for (body, what) in [
            (
                "<Delete><Object><VersionId>1</VersionId></Object></Delete>",
                "object without key",
            ),
            (
                "<Delete><Object><Key>a</Key><Key>b</Key></Object></Delete>",
                "two keys",
            ),
            (
                "<Delete><Object><Key>a</Key></Object><Quiet>maybe</Quiet></Delete>",
                "bad quiet",
            ),
            (
                "<Remove><Object><Key>a</Key></Object></Remove>",
                "wrong root",
            ),
            ("<CompleteMultipartUpload/>", "other document"),
        ] {
            assert_malformed(parse_delete_request(body.as_bytes()), what);
        }
    }

    #[test]
    fn parses_boto3_complete_bodies() {
        let with_checksum = br#"<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Part><ETag>"24ac71b2cef73be21c59f5fc770eb938"</ETag><PartNumber>1</PartNumber><ChecksumCRC32>av53ng==</ChecksumCRC32></Part><Part><ETag>"31bf40b863a9a4ab2b1fc1e72b090a5b"</ETag><PartNumber>2</PartNumber><ChecksumCRC32>+VlqZA==</ChecksumCRC32></Part><Part><ETag>"a7a1a1a6647d5983354506a0e964de81"</ETag><PartNumber>3</PartNumber><ChecksumCRC32>uFypaQ==</ChecksumCRC32></Part></CompleteMultipartUpload>"#;
        let parts = parse_complete_multipart(with_checksum).unwrap();
        assert_eq!(
            parts,
            [
                CompletedPart {
                    part_number: 1,
                    etag: "24ac71b2cef73be21c59f5fc770eb938".to_owned(),
                    checksums: vec![("ChecksumCRC32".to_owned(), "av53ng==".to_owned())],
                },
                CompletedPart {
                    part_number: 2,
                    etag: "31bf40b863a9a4ab2b1fc1e72b090a5b".to_owned(),
                    checksums: vec![("ChecksumCRC32".to_owned(), "+VlqZA==".to_owned())],
                },
                CompletedPart {
                    part_number: 3,
                    etag: "a7a1a1a6647d5983354506a0e964de81".to_owned(),
                    checksums: vec![("ChecksumCRC32".to_owned(), "uFypaQ==".to_owned())],
                },
            ]
        );
        let without = br#"<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Part><ETag>"b8fc857a25e7958868c2f003d5e0952d"</ETag><PartNumber>1</PartNumber></Part><Part><ETag>"912485fe921b64abf79d3839057f7f36"</ETag><PartNumber>2</PartNumber></Part></CompleteMultipartUpload>"#;
        let parts = parse_complete_multipart(without).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[1].part_number, 2);
        assert_eq!(parts[1].etag, "912485fe921b64abf79d3839057f7f36");
        assert!(parts[1].checksums.is_empty());
    }

    #[test]
    fn complete_body_variants() {
        let body = "<?xml version=\"1.0\"?>\n<CompleteMultipartUpload>\n <Part>\n  <PartNumber> 7 </PartNumber>\n  <ETag>&quot;abc-2&quot;</ETag>\n  <ChecksumSHA256>x=</ChecksumSHA256>\n  <ChecksumCRC32C>y=</ChecksumCRC32C>\n </Part>\n <Part><ETag>plain</ETag><PartNumber>9</PartNumber></Part>\n</CompleteMultipartUpload>";
        let parts = parse_complete_multipart(body.as_bytes()).unwrap();
        assert_eq!(parts[0].part_number, 7);
        assert_eq!(parts[0].etag, "abc-2");
        assert_eq!(
            parts[0].checksums,
            [
                ("ChecksumSHA256".to_owned(), "x=".to_owned()),
                ("ChecksumCRC32C".to_owned(), "y=".to_owned())
            ]
        );
        assert_eq!(parts[1].etag, "plain");
        // Order and duplicates are left to the caller.
        let body = "<CompleteMultipartUpload><Part><ETag>a</ETag><PartNumber>2</PartNumber></Part><Part><ETag>a</ETag><PartNumber>1</PartNumber></Part><Part><ETag>a</ETag><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>";
        let numbers: Vec<u32> = parse_complete_multipart(body.as_bytes())
            .unwrap()
            .iter()
            .map(|p| p.part_number)
            .collect();
        assert_eq!(numbers, [2, 1, 1]);
    }

    #[test]
    fn complete_ten_thousand_parts() {
        let build = |n: u32| {
            let mut s = String::from(
                "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">",
            );
            for i in 1..=n {
                let number = i.min(PART_NUMBER_MAX);
                s.push_str(&format!("<Part><ETag>\"0123456789abcdef0123456789abcdef\"</ETag><PartNumber>{number}</PartNumber><ChecksumCRC32>AAAAAA==</ChecksumCRC32><ChecksumSHA256>47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=</ChecksumSHA256></Part>"));
            }
            s.push_str("</CompleteMultipartUpload>");
            s
        };
        let parts = parse_complete_multipart(build(10_000).as_bytes()).unwrap();
        assert_eq!(parts.len(), 10_000);
        assert_eq!(parts[9_999].part_number, 10_000);
        assert_malformed(
            parse_complete_multipart(build(10_001).as_bytes()),
            "10001 parts",
        );
    }

    #[test]
    fn complete_schema_violations() {
        for (body, what) in [
            ("<CompleteMultipartUpload></CompleteMultipartUpload>", "no parts"),
            ("<CompleteMultipartUpload><Part><ETag>a</ETag></Part></CompleteMultipartUpload>", "no number"),
            ("<CompleteMultipartUpload><Part><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>", "no etag"),
            ("<CompleteMultipartUpload><Part><ETag>a</ETag><PartNumber>x</PartNumber></Part></CompleteMultipartUpload>", "bad number"),
            ("<CompleteMultipartUpload><Part><ETag>a</ETag><PartNumber>-1</PartNumber></Part></CompleteMultipartUpload>", "negative"),
            ("<CompleteMultipartUpload><Part><ETag>a</ETag><PartNumber>1</PartNumber><PartNumber>2</PartNumber></Part></CompleteMultipartUpload>", "two numbers"),
            ("<CompleteMultipartUpload><Part><ETag>a</ETag><ETag>b</ETag><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>", "two etags"),
            ("<Delete><Object><Key>a</Key></Object></Delete>", "wrong root"),
        ] {
            assert_malformed(parse_complete_multipart(body.as_bytes()), what);
        }
        for number in ["0", "10001", "99999999999"] {
            let body = format!("<CompleteMultipartUpload><Part><ETag>a</ETag><PartNumber>{number}</PartNumber></Part></CompleteMultipartUpload>");
            let err = parse_complete_multipart(body.as_bytes()).unwrap_err();
            assert_eq!(err.code, S3ErrorCode::InvalidArgument, "{number}");
        }
    }

    #[test]
    fn create_bucket_configuration() {
        assert_eq!(parse_create_bucket_configuration(b"").unwrap(), None);
        assert_eq!(parse_create_bucket_configuration(b" \r\n").unwrap(), None);
        let body = br#"<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><LocationConstraint>eu-west-1</LocationConstraint></CreateBucketConfiguration>"#;
        assert_eq!(
            parse_create_bucket_configuration(body).unwrap().as_deref(),
            Some("eu-west-1")
        );
        let body = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CreateBucketConfiguration><LocationConstraint/></CreateBucketConfiguration>";
        assert_eq!(
            parse_create_bucket_configuration(body).unwrap().as_deref(),
            Some("")
        );
        let body = b"<CreateBucketConfiguration></CreateBucketConfiguration>";
        assert_eq!(parse_create_bucket_configuration(body).unwrap(), None);
        let body = b"<CreateBucketConfiguration/>";
        assert_eq!(parse_create_bucket_configuration(body).unwrap(), None);
        let body = b"<CreateBucketConfiguration><LocationConstraint>a</LocationConstraint><LocationConstraint>b</LocationConstraint></CreateBucketConfiguration>";
        assert_malformed(parse_create_bucket_configuration(body), "two constraints");
        assert_malformed(parse_create_bucket_configuration(b"eu-west-1"), "bare text");
        assert_malformed(parse_create_bucket_configuration(b"<Other/>"), "wrong root");
        let huge = format!(
            "<CreateBucketConfiguration><LocationConstraint>{}</LocationConstraint></CreateBucketConfiguration>",
            "a".repeat(CREATE_BUCKET_BODY_MAX_BYTES)
        );
        assert_malformed(
            parse_create_bucket_configuration(huge.as_bytes()),
            "too large",
        );
    }

    #[test]
    fn tolerates_byte_order_mark() {
        let body = "\u{FEFF}<?xml version=\"1.0\" encoding=\"UTF-8\"?><Delete><Object><Key>k</Key></Object></Delete>";
        assert_eq!(parse_delete_request(body.as_bytes()).unwrap().0, ["k"]);
    }

    #[test]
    fn list_page_to_v2_xml_paging_round_trip() {
        use crate::s3::list_params::decode_continuation_token;
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
                    .map(|e| url_encode(&e.key).into_owned()),
            );
            seen.extend(
                page.common_prefixes
                    .iter()
                    .map(|p| url_encode(p).into_owned()),
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

    // --- parsing: hostile input ----------------------------------------------------------------

    #[test]
    fn rejects_doctype_and_entities() {
        let billion_laughs = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><Delete><Object><Key>&lol2;</Key></Object></Delete>"#;
        let xxe = r#"<?xml version="1.0"?><!DOCTYPE d [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><Delete><Object><Key>&xxe;</Key></Object></Delete>"#;
        let inner_doctype = "<Delete><!DOCTYPE x><Object><Key>a</Key></Object></Delete>";
        for (body, what) in [
            (billion_laughs, "billion laughs"),
            (xxe, "external entity"),
            (inner_doctype, "doctype inside"),
            (&delete_body_for("&undefined;") as &str, "undefined entity"),
            (&delete_body_for("&#0;"), "NUL char ref"),
            (&delete_body_for("&#xD800;"), "surrogate char ref"),
            (&delete_body_for("&#x110000;"), "out of range char ref"),
            (&delete_body_for("a & b"), "bare ampersand"),
            (&delete_body_for("&amp"), "unterminated entity"),
        ] {
            assert_malformed(parse_delete_request(body.as_bytes()), what);
        }
        assert_malformed(
            parse_complete_multipart(
                billion_laughs
                    .replace("Delete", "CompleteMultipartUpload")
                    .as_bytes(),
            ),
            "doctype in complete",
        );
        assert_malformed(
            parse_create_bucket_configuration(
                br#"<!DOCTYPE c [<!ENTITY e "eu">]><CreateBucketConfiguration><LocationConstraint>&e;</LocationConstraint></CreateBucketConfiguration>"#,
            ),
            "doctype in create",
        );
    }

    #[test]
    fn rejects_deep_nesting() {
        let depth = 10_000;
        let body = format!(
            "<Delete>{}{}<Object><Key>a</Key></Object></Delete>",
            "<x>".repeat(depth),
            "</x>".repeat(depth)
        );
        assert_malformed(parse_delete_request(body.as_bytes()), "deep nesting");
        // Just inside the limit is fine.
        let ok_depth = XML_DEPTH_MAX - 1;
        let body = format!(
            "<Delete>{}{}<Object><Key>a</Key></Object></Delete>",
            "<x>".repeat(ok_depth),
            "</x>".repeat(ok_depth)
        );
        assert_eq!(parse_delete_request(body.as_bytes()).unwrap().0, ["a"]);
    }

    #[test]
    fn rejects_garbage_and_broken_documents() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "empty"),
            (b"   ", "whitespace"),
            (b"garbage", "text"),
            (b"\xff\xfe<\x00D\x00", "utf-16"),
            (
                b"<Delete><Object><Key>\xc3\x28</Key></Object></Delete>",
                "invalid utf-8",
            ),
            (
                b"<Delete><Object><Key>a\x00</Key></Object></Delete>",
                "raw NUL",
            ),
            (b"<Delete><Object><Key>a</Key></Object>", "unclosed root"),
            (
                b"<Delete><Object><Key>a</Key></Object></Delete",
                "truncated end tag",
            ),
            (
                b"<Delete><Object><Key>a</Object></Key></Delete>",
                "mismatched tags",
            ),
            (
                b"<Delete><Object><Key>a</Key></Object></Delete><Delete/>",
                "two roots",
            ),
            (
                b"<Delete><Object><Key>a</Key></Object></Delete>trailing",
                "text after root",
            ),
            (
                b"junk<Delete><Object><Key>a</Key></Object></Delete>",
                "text before root",
            ),
            (b"</Delete>", "end without start"),
            (
                b"<Delete attr=><Object><Key>a</Key></Object></Delete>",
                "bad attribute",
            ),
            (
                b"<Delete><Object><Key>a</Key></Object></Delete><?xml version=\"1.0\"?>",
                "late declaration",
            ),
            (
                b"<Delete><![CDATA[unterminated</Delete>",
                "unterminated cdata",
            ),
            (
                b"<Delete><!-- unterminated </Delete>",
                "unterminated comment",
            ),
            (b"<>", "empty tag"),
            (b"<<<<>>>>", "angle soup"),
        ];
        for (body, what) in cases {
            assert_malformed(parse_delete_request(body), what);
            assert_malformed(parse_complete_multipart(body), what);
        }
        let too_big = vec![b' '; DELETE_BODY_MAX_BYTES + 1];
        assert_malformed(parse_delete_request(&too_big), "oversized delete");
        let too_big = vec![b' '; COMPLETE_MULTIPART_BODY_MAX_BYTES + 1];
        assert_malformed(parse_complete_multipart(&too_big), "oversized complete");
    }

    #[test]
    fn pseudo_random_bytes_never_panic() {
        let mut state: u64 = 42;
        let alphabet = b"<>/=\"'&;#x!-[]?DeleteObjectKeyQuiet PartNumberETag\xc3\xa9\x00\n";
        for len in 0..400 {
            let body: Vec<u8> = (0..len)
                .map(|_| {
                    state = state
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1442695040888963407);
                    alphabet[(state >> 33) as usize % alphabet.len()]
                })
                .collect();
            let _ = parse_delete_request(&body);
            let _ = parse_complete_multipart(&body);
            let _ = parse_create_bucket_configuration(&body);
        }
    }
}
