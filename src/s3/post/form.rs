//! A streaming `multipart/form-data` reader for POST Object: the small fields before the file are
//! collected (at most [`POST_FORM_FIELDS_MAX_BYTES`] together), then the `file` part is handed to
//! the ingest pipeline as a [`BodySource`] that stops at the next boundary.
//!
//! Invariants: never reads past the request body; the file's bytes are never held whole (at most
//! one read's worth plus a boundary's length is buffered); a body that ends before the file's
//! closing boundary is `MalformedPOSTRequest`, never a short object.

use crate::http::body::BodyReader;
use crate::s3::error::S3Error;
use crate::s3::ingest::BodySource;
use memchr::memmem;

/// Most bytes of all form fields (with their part headers) before the `file` part.
pub(crate) const POST_FORM_FIELDS_MAX_BYTES: usize = 64 * 1024;
/// Most bytes read from the body at once into the form buffer.
const FORM_READ_BYTES: usize = 64 * 1024;
/// Most bytes after the file's boundary (ignored fields, epilogue) read to keep the connection.
pub(crate) const POST_EPILOGUE_MAX_BYTES: u64 = 64 * 1024;
/// Longest boundary RFC 2046 allows.
const BOUNDARY_MAX_BYTES: usize = 70;

pub(crate) fn malformed(why: &str) -> S3Error {
    crate::s3err!(
        MalformedPOSTRequest,
        "The body of your POST request is not well-formed multipart/form-data: {why}."
    )
}

/// The boundary parameter of a `multipart/form-data` Content-Type.
pub(crate) fn boundary(content_type: &str) -> Option<String> {
    let mut params = content_type.split(';');
    let kind = params.next()?.trim();
    if !kind.eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        let v = v.trim().trim_matches('"');
        (k.trim().eq_ignore_ascii_case("boundary")
            && !v.is_empty()
            && v.len() <= BOUNDARY_MAX_BYTES)
            .then(|| v.to_string())
    })
}

/// One part's `Content-Disposition` name and filename, and its Content-Type.
#[derive(Debug, Default)]
pub(crate) struct PartHead {
    pub(crate) name: String,
    pub(crate) filename: Option<String>,
}

fn parse_part_head(raw: &[u8]) -> Result<PartHead, S3Error> {
    let text = std::str::from_utf8(raw).map_err(|_| malformed("part headers are not UTF-8"))?;
    let mut head = PartHead::default();
    for line in text.split("\r\n") {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if !name.trim().eq_ignore_ascii_case("content-disposition") {
            continue;
        }
        for param in value.split(';').skip(1) {
            let Some((k, v)) = param.trim().split_once('=') else {
                continue;
            };
            let v = v.trim().trim_matches('"').to_string();
            match k.trim().to_ascii_lowercase().as_str() {
                "name" => head.name = v,
                "filename" => head.filename = Some(v),
                _ => {}
            }
        }
    }
    if head.name.is_empty() {
        return Err(malformed("a part has no Content-Disposition name"));
    }
    Ok(head)
}

/// The form being read: fields first, then the file as a [`BodySource`].
pub(crate) struct FormReader<'a, 'c> {
    body: &'a mut BodyReader<'c>,
    buf: Vec<u8>,
    pos: usize,
    /// `\r\n--BOUNDARY`
    delim: Vec<u8>,
    /// Bytes of fields read so far (bounded by [`POST_FORM_FIELDS_MAX_BYTES`]).
    field_bytes: usize,
    file_done: bool,
}

impl<'a, 'c> FormReader<'a, 'c> {
    pub(crate) fn new(body: &'a mut BodyReader<'c>, boundary: &str) -> FormReader<'a, 'c> {
        let delim = format!("\r\n--{boundary}").into_bytes();
        FormReader {
            body,
            // The first boundary has no CRLF before it: start as if one had been read.
            buf: b"\r\n".to_vec(),
            pos: 0,
            delim,
            field_bytes: 0,
            file_done: false,
        }
    }

    /// Reads more body bytes into the buffer; false at the end of the body.
    async fn fill(&mut self) -> Result<bool, S3Error> {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        let old = self.buf.len();
        self.buf.resize(old + FORM_READ_BYTES, 0);
        let n = self.body.read(&mut self.buf[old..]).await;
        self.buf.truncate(old + *n.as_ref().unwrap_or(&0));
        Ok(n? > 0)
    }

    /// The bytes up to `needle` (consumed with it), within the field budget.
    async fn take_until(&mut self, needle: &[u8]) -> Result<Vec<u8>, S3Error> {
        loop {
            let avail = &self.buf[self.pos..];
            if let Some(i) = memmem::find(avail, needle) {
                let out = avail[..i].to_vec();
                self.pos += i + needle.len();
                self.field_bytes += i + needle.len();
                return Ok(out);
            }
            if self.field_bytes + avail.len() > POST_FORM_FIELDS_MAX_BYTES {
                return Err(crate::s3err!(
                    MaxPostPreDataLengthExceeded,
                    "Your POST request fields preceding the upload file were too large."
                ));
            }
            if !self.fill().await? {
                return Err(malformed("the body ends inside a part"));
            }
        }
    }

    /// After a boundary: the next part's head, or `None` at the closing `--`.
    async fn next_part(&mut self) -> Result<Option<PartHead>, S3Error> {
        while self.buf.len() - self.pos < 2 {
            if !self.fill().await? {
                return Err(malformed("the body ends after a boundary"));
            }
        }
        if self.buf[self.pos..].starts_with(b"--") {
            return Ok(None);
        }
        let raw = self.take_until(b"\r\n\r\n").await?;
        // The rest of the boundary line (transport padding) ends with the first CRLF.
        let start = memmem::find(&raw, b"\r\n").map_or(raw.len(), |i| i + 2);
        if raw[..start.min(raw.len())]
            .iter()
            .any(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        {
            return Err(malformed("a boundary is followed by other characters"));
        }
        parse_part_head(&raw[start.min(raw.len())..]).map(Some)
    }

    /// Reads the fields up to the `file` part: (lowercase name, value) in order, and the file's
    /// part head. A form without a file is an error.
    pub(crate) async fn read_fields(
        &mut self,
    ) -> Result<(Vec<(String, String)>, PartHead), S3Error> {
        let delim = self.delim.clone();
        // Preamble up to the first boundary.
        self.take_until(&delim).await?;
        let mut fields = Vec::new();
        while let Some(part) = self.next_part().await? {
            if part.name.eq_ignore_ascii_case("file") {
                return Ok((fields, part));
            }
            let value = self.take_until(&delim).await?;
            let value =
                String::from_utf8(value).map_err(|_| malformed("a field value is not UTF-8"))?;
            fields.push((part.name.to_ascii_lowercase(), value));
        }
        Err(crate::s3err!(
            InvalidArgument,
            "POST requires exactly one file upload per request."
        )
        .with_extra("ArgumentName", "file")
        .with_extra("ArgumentValue", "0"))
    }

    /// Reads (and ignores) what follows the file, up to [`POST_EPILOGUE_MAX_BYTES`]; true when
    /// the body was consumed entirely.
    pub(crate) async fn drain_epilogue(&mut self) -> bool {
        let mut scratch = vec![0u8; 4096];
        let mut drained = 0u64;
        while drained <= POST_EPILOGUE_MAX_BYTES {
            match self.body.read(&mut scratch).await {
                Ok(0) => return true,
                Ok(n) => drained += n as u64,
                Err(_) => return false,
            }
        }
        false
    }
}

impl BodySource for FormReader<'_, '_> {
    /// The file's bytes, up to (not including) the boundary that ends it.
    async fn read(&mut self, dst: &mut [u8]) -> Result<usize, S3Error> {
        loop {
            if self.file_done {
                return Ok(0);
            }
            let avail = &self.buf[self.pos..];
            let end = memmem::find(avail, &self.delim);
            // Without a boundary in view, its first bytes may be at the tail: keep those.
            let safe = end.unwrap_or(avail.len().saturating_sub(self.delim.len() - 1));
            if safe > 0 {
                let n = safe.min(dst.len());
                dst[..n].copy_from_slice(&avail[..n]);
                self.pos += n;
                return Ok(n);
            }
            if end == Some(0) {
                self.pos += self.delim.len();
                self.file_done = true;
                return Ok(0);
            }
            if !self.fill().await? {
                return Err(malformed(
                    "the body ends before the file's closing boundary",
                ));
            }
        }
    }
}
