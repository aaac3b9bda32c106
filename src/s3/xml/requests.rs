//! Hardened parsers for the XML request bodies ringstore accepts (CreateBucketConfiguration,
//! Delete, CompleteMultipartUpload), the element walker they share, and the size limit of every
//! XML request body (the operations read bodies up to these limits, the parsers check them again).
//!
//! Invariants: parsers accept UTF-8 only, refuse DOCTYPE (so no custom or external entities),
//! resolve only the five predefined entities and character references, bound body size and
//! nesting depth, ignore namespaces (matching local names, with or without `xmlns` or a prefix)
//! and unknown elements, and report every failure as `MalformedXML` (or `InvalidArgument` for a
//! part number outside 1..=10000).

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use crate::s3::error::S3Error;
use crate::s3::params::PART_NUMBER_MAX;

/// Largest CreateBucketConfiguration body accepted.
pub const CREATE_BUCKET_BODY_MAX_BYTES: usize = 64 * 1024;
/// Largest VersioningConfiguration (PutBucketVersioning) body accepted.
pub const VERSIONING_BODY_MAX_BYTES: usize = 64 * 1024;
/// Largest AccessControlPolicy (PutBucketAcl / PutObjectAcl) body accepted.
pub const ACL_BODY_MAX_BYTES: usize = 64 * 1024;
/// Largest Delete (DeleteObjects) body accepted: 1000 keys of up to 1024 bytes is already ~1 MiB
/// before markup, so allow 2 MiB.
pub const DELETE_BODY_MAX_BYTES: usize = 2 * 1024 * 1024;
/// Largest CompleteMultipartUpload body accepted (10000 parts with several checksums each).
pub const COMPLETE_MULTIPART_BODY_MAX_BYTES: usize = 8 * 1024 * 1024;
/// Deepest element nesting accepted in a request body (S3's bodies are 3 levels deep).
pub const XML_DEPTH_MAX: usize = 16;
/// Most objects one DeleteObjects request may name.
pub const DELETE_OBJECTS_MAX: usize = 1000;
/// Markup around one key in a Delete body (`<Object><Key>..</Key><VersionId>null</VersionId></Object>`).
const DELETE_OBJECT_MARKUP_BYTES: usize = 64;
// A Delete body naming the most objects, each with the longest key, is accepted.
const _: () = assert!(
    DELETE_OBJECTS_MAX
        * (crate::s3::bucket_name::OBJECT_KEY_MAX_BYTES + DELETE_OBJECT_MARKUP_BYTES)
        <= DELETE_BODY_MAX_BYTES
);
/// Most parts one CompleteMultipartUpload may list (one per part number).
pub const COMPLETE_PARTS_MAX: usize = PART_NUMBER_MAX as usize;

const MALFORMED_XML_MESSAGE: &str =
    "The XML you provided was not well-formed or did not validate against our published schema";

fn malformed_xml() -> S3Error {
    crate::s3err!(MalformedXML, "{MALFORMED_XML_MESSAGE}")
}

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
    let mut reader = strict_reader(document_text(body, max_bytes)?);
    let mut walk = ElementWalk::new(root);
    loop {
        match reader.read_event().map_err(|_| malformed_xml())? {
            Event::Start(start) => walk.open(&start)?,
            Event::Empty(start) => {
                walk.open(&start)?;
                walk.close(&mut on_close)?;
            }
            Event::End(_) => walk.close(&mut on_close)?,
            Event::Text(t) => walk.text(&t.unescape().map_err(|_| malformed_xml())?)?,
            Event::CData(c) => walk.cdata(&c.into_inner())?,
            Event::Decl(_) => walk.declaration()?,
            Event::Comment(_) | Event::PI(_) => {}
            Event::DocType(_) => return Err(malformed_xml()),
            Event::Eof => return walk.finish(),
        }
    }
}

/// The body as text: at most `max_bytes`, UTF-8 without NUL, a leading byte order mark dropped.
fn document_text(body: &[u8], max_bytes: usize) -> Result<&str, S3Error> {
    if body.len() > max_bytes || body.contains(&0) {
        return Err(malformed_xml());
    }
    let text = std::str::from_utf8(body).map_err(|_| malformed_xml())?;
    // Some clients (.NET) start with a UTF-8 byte order mark.
    Ok(text.strip_prefix('\u{FEFF}').unwrap_or(text))
}

/// A reader that reports empty elements as such, checks end-tag names and keeps all text.
fn strict_reader(text: &str) -> Reader<&[u8]> {
    let mut reader = Reader::from_str(text);
    let config = reader.config_mut();
    config.expand_empty_elements = false;
    config.check_end_names = true;
    config.trim_text(false);
    reader
}

/// Where [`walk_elements`] is in the document: the open elements and the text of each.
struct ElementWalk<'r> {
    root: &'r str,
    /// Local names of the open elements, root first.
    path: Vec<String>,
    /// Text collected so far directly inside each open element.
    texts: Vec<String>,
    root_closed: bool,
}

impl<'r> ElementWalk<'r> {
    fn new(root: &'r str) -> Self {
        ElementWalk {
            root,
            path: Vec::new(),
            texts: Vec::new(),
            root_closed: false,
        }
    }

    /// A start tag: within the depth limit, the named root first, well-formed attributes.
    fn open(&mut self, start: &BytesStart<'_>) -> Result<(), S3Error> {
        if self.root_closed || self.path.len() >= XML_DEPTH_MAX {
            return Err(malformed_xml());
        }
        let name = std::str::from_utf8(start.local_name().into_inner())
            .map_err(|_| malformed_xml())?
            .to_owned();
        if self.path.is_empty() && name != self.root {
            return Err(malformed_xml());
        }
        // Attributes must be well-formed even though none are used.
        for attr in start.attributes() {
            attr.map_err(|_| malformed_xml())?;
        }
        self.path.push(name);
        self.texts.push(String::new());
        Ok(())
    }

    /// The innermost open element ends: hands its path and text to `on_close`.
    fn close(
        &mut self,
        on_close: &mut impl FnMut(&[String], String) -> Result<(), S3Error>,
    ) -> Result<(), S3Error> {
        let inner = self.texts.pop().ok_or_else(malformed_xml)?;
        on_close(&self.path, inner)?;
        self.path.pop();
        self.root_closed = self.path.is_empty();
        Ok(())
    }

    /// Unescaped text: goes to the innermost open element; outside the root only XML whitespace
    /// may appear.
    fn text(&mut self, s: &str) -> Result<(), S3Error> {
        match self.texts.last_mut() {
            Some(buf) => {
                buf.push_str(s);
                Ok(())
            }
            None if s.bytes().all(is_xml_whitespace) => Ok(()),
            None => Err(malformed_xml()),
        }
    }

    /// A CDATA section: UTF-8 text inside an element.
    fn cdata(&mut self, raw: &[u8]) -> Result<(), S3Error> {
        let s = std::str::from_utf8(raw).map_err(|_| malformed_xml())?;
        if self.texts.is_empty() {
            return Err(malformed_xml());
        }
        self.text(s)
    }

    /// An XML declaration is allowed only before the root.
    fn declaration(&self) -> Result<(), S3Error> {
        if !self.path.is_empty() || self.root_closed {
            return Err(malformed_xml());
        }
        Ok(())
    }

    /// End of input: the root must have been opened and closed.
    fn finish(&self) -> Result<(), S3Error> {
        if self.root_closed && self.path.is_empty() {
            Ok(())
        } else {
            Err(malformed_xml())
        }
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

/// The `Status` a PutBucketVersioning body asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersioningStatus {
    Enabled,
    Suspended,
}

/// A PutBucketVersioning body: its `Status` (`None` when the element is absent) and whether
/// `MfaDelete` is `Enabled`. Any other value of either element is `MalformedXML`, as in S3.
pub fn parse_versioning_configuration(
    body: &[u8],
) -> Result<(Option<VersioningStatus>, bool), S3Error> {
    let mut status = None;
    let mut mfa_delete = false;
    walk_elements(
        body,
        VERSIONING_BODY_MAX_BYTES,
        "VersioningConfiguration",
        |path, text| {
            if let [_, name] = path {
                let value = trim_xml_whitespace(&text);
                match (name.as_str(), value) {
                    ("Status", "Enabled") => status = Some(VersioningStatus::Enabled),
                    ("Status", "Suspended") => status = Some(VersioningStatus::Suspended),
                    ("MfaDelete", "Enabled") => mfa_delete = true,
                    ("MfaDelete", "Disabled") => mfa_delete = false,
                    ("Status" | "MfaDelete", _) => return Err(malformed_xml()),
                    _ => {}
                }
            }
            Ok(())
        },
    )?;
    Ok((status, mfa_delete))
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
    let mut parts: Vec<CompletedPart> = Vec::new();
    let mut current = PartFields::default();
    walk_elements(
        body,
        COMPLETE_MULTIPART_BODY_MAX_BYTES,
        "CompleteMultipartUpload",
        |path, text| {
            match path {
                [_, part, field] if part == "Part" => current.set(field, &text)?,
                [_, part] if part == "Part" => {
                    if parts.len() >= COMPLETE_PARTS_MAX {
                        return Err(malformed_xml());
                    }
                    parts.push(std::mem::take(&mut current).finish()?);
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

/// The fields of the `<Part>` being read.
#[derive(Default)]
struct PartFields {
    part_number: Option<u32>,
    etag: Option<String>,
    checksums: Vec<(String, String)>,
}

impl PartFields {
    /// One child element of `<Part>`; a second `PartNumber` or `ETag` is malformed, unknown
    /// elements are ignored.
    fn set(&mut self, field: &str, text: &str) -> Result<(), S3Error> {
        if field == "PartNumber" {
            let number = parse_part_number(text)?;
            if self.part_number.replace(number).is_some() {
                return Err(malformed_xml());
            }
        } else if field == "ETag" {
            let etag = trim_xml_whitespace(text);
            let etag = etag.strip_prefix('"').unwrap_or(etag);
            let etag = etag.strip_suffix('"').unwrap_or(etag);
            if self.etag.replace(etag.to_owned()).is_some() {
                return Err(malformed_xml());
            }
        } else if field.starts_with("Checksum") {
            self.checksums
                .push((field.to_owned(), trim_xml_whitespace(text).to_owned()));
        }
        Ok(())
    }

    /// The finished part; both `PartNumber` and `ETag` are required.
    fn finish(self) -> Result<CompletedPart, S3Error> {
        let (Some(part_number), Some(etag)) = (self.part_number, self.etag) else {
            return Err(malformed_xml());
        };
        Ok(CompletedPart {
            part_number,
            etag,
            checksums: self.checksums,
        })
    }
}

fn parse_part_number(text: &str) -> Result<u32, S3Error> {
    let digits = trim_xml_whitespace(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed_xml());
    }
    crate::s3::params::parse_part_number(digits).ok_or_else(|| {
        crate::s3err!(
            InvalidArgument,
            "Part number must be an integer between 1 and {PART_NUMBER_MAX}, inclusive"
        )
        .with_extra("ArgumentName", "partNumber")
        .with_extra("ArgumentValue", digits)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::s3::error::S3ErrorCode;
    use crate::s3::xml::writer::escape;

    fn assert_malformed(result: Result<impl std::fmt::Debug, S3Error>, what: &str) {
        match result {
            Err(e) => assert_eq!(e.code, S3ErrorCode::MalformedXML, "{what}: {e}"),
            Ok(v) => panic!("{what}: expected MalformedXML, got {v:?}"),
        }
    }

    fn delete_body_for(key_xml: &str) -> String {
        format!("<Delete><Object><Key>{key_xml}</Key></Object></Delete>")
    }

    #[test]
    fn versioning_configuration() {
        let ns = "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"";
        let doc = |inner: &str| {
            format!("<VersioningConfiguration {ns}>{inner}</VersioningConfiguration>")
        };
        let parse = |inner: &str| parse_versioning_configuration(doc(inner).as_bytes());
        assert_eq!(
            parse("<Status>Suspended</Status>").unwrap(),
            (Some(VersioningStatus::Suspended), false)
        );
        assert_eq!(
            parse("<Status>Enabled</Status><MfaDelete>Enabled</MfaDelete>").unwrap(),
            (Some(VersioningStatus::Enabled), true)
        );
        assert_eq!(parse("").unwrap(), (None, false));
        assert_malformed(parse("<Status>enabled</Status>"), "lower-case status");
        assert_malformed(parse("<MfaDelete>Maybe</MfaDelete>"), "bad MfaDelete");
        assert_malformed(
            parse_versioning_configuration(b"<CreateBucketConfiguration/>"),
            "wrong root",
        );
        assert_malformed(parse_versioning_configuration(b""), "empty body");
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
