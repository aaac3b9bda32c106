//! Request head: parses one HTTP/1.1 request line + headers with httparse into an owned [`RequestHead`].
//!
//! Invariants: header names are stored lowercase; values are valid UTF-8 with surrounding
//! spaces and tabs trimmed; the raw request target is kept byte-for-byte (SigV4 signs the raw path);
//! a head is never larger than [`HEAD_SIZE_MAX_BYTES`] nor has more than [`HEADERS_COUNT_MAX`] headers.

use crate::http::error::{http_err, HttpError};

/// Largest request head (request line + headers + blank line) accepted.
pub(crate) const HEAD_SIZE_MAX_BYTES: usize = 64 * 1024;
/// Most headers accepted in one request.
pub const HEADERS_COUNT_MAX: usize = 128;

/// The HTTP methods S3 uses; anything else is kept as `Other` and refused by the router.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Put,
    Post,
    Delete,
    Options,
    Other,
}

impl Method {
    pub(crate) fn parse(s: &str) -> Method {
        match s {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "PUT" => Method::Put,
            "POST" => Method::Post,
            "DELETE" => Method::Delete,
            "OPTIONS" => Method::Options,
            _ => Method::Other,
        }
    }
}

/// One parsed request head, owned (the connection buffer is reused for the body).
#[derive(Debug, Clone)]
pub struct RequestHead {
    pub(crate) method: Method,
    /// The method token exactly as sent (for SigV4 of unusual methods).
    pub method_raw: String,
    /// Raw path part of the target, still percent-encoded, always starting with `/`.
    pub path: String,
    /// Raw query string without the leading `?` (empty when absent).
    pub query: String,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version_minor: u8,
    /// (lowercase name, trimmed value) in arrival order.
    pub headers: Vec<(String, String)>,
}

/// Outcome of trying to parse a head from the bytes received so far.
#[derive(Debug)]
pub enum HeadParse {
    /// A full head; `usize` is its length in bytes (the body starts right after).
    Complete(RequestHead, usize),
    /// More bytes are needed.
    Partial,
}

impl RequestHead {
    /// First value of a header (name must be lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header, in arrival order.
    pub(crate) fn header_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the client asked to close the connection after this request.
    pub(crate) fn wants_close(&self) -> bool {
        let conn = self.header("connection").map(|v| v.to_ascii_lowercase());
        match self.version_minor {
            0 => !conn.is_some_and(|c| c.contains("keep-alive")),
            _ => conn.is_some_and(|c| c.split(',').any(|t| t.trim() == "close")),
        }
    }

    /// Whether the client waits for `100 Continue` before sending the body.
    pub(crate) fn expects_continue(&self) -> bool {
        self.version_minor >= 1
            && self
                .header("expect")
                .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
    }

    /// Parses a head from `buf`. Errors are 400-class HTTP errors; the caller closes the connection.
    pub fn parse(buf: &[u8]) -> Result<HeadParse, HttpError> {
        let mut slots = [httparse::EMPTY_HEADER; HEADERS_COUNT_MAX];
        let mut req = httparse::Request::new(&mut slots);
        let status = match req.parse(buf) {
            Ok(s) => s,
            Err(httparse::Error::TooManyHeaders) => {
                return Err(http_err!(
                    RequestHeaderSectionTooLarge,
                    "Your request has more than {HEADERS_COUNT_MAX} headers."
                ))
            }
            Err(e) => return Err(http_err!(BadRequest, "Malformed HTTP request: {e}.")),
        };
        let len = match status {
            httparse::Status::Partial => {
                if buf.len() >= HEAD_SIZE_MAX_BYTES {
                    return Err(head_too_large());
                }
                return Ok(HeadParse::Partial);
            }
            httparse::Status::Complete(len) => len,
        };
        if len > HEAD_SIZE_MAX_BYTES {
            return Err(head_too_large());
        }
        let method_raw = req.method.unwrap_or("").to_string();
        let target = req.path.unwrap_or("");
        let version_minor = req.version.unwrap_or(1);
        let (path, query) = split_target(target)?;
        let mut headers = Vec::with_capacity(req.headers.len());
        for h in req.headers.iter() {
            let value = std::str::from_utf8(h.value).map_err(|_| {
                http_err!(
                    InvalidArgument,
                    "Header {} has a value that is not valid UTF-8.",
                    h.name
                )
            })?;
            // HTTP (and SigV4) trim only spaces and tabs, never other Unicode whitespace.
            headers.push((
                h.name.to_ascii_lowercase(),
                value.trim_matches([' ', '\t']).to_string(),
            ));
        }
        Ok(HeadParse::Complete(
            RequestHead {
                method: Method::parse(&method_raw),
                method_raw,
                path,
                query,
                version_minor,
                headers,
            },
            len,
        ))
    }
}

fn head_too_large() -> HttpError {
    http_err!(
        RequestHeaderSectionTooLarge,
        "Your request header section exceeds the maximum allowed size of {HEAD_SIZE_MAX_BYTES} bytes."
    )
}

/// Splits an origin-form (or absolute-form) target into raw path and raw query.
fn split_target(target: &str) -> Result<(String, String), HttpError> {
    let mut t = target;
    if let Some(rest) = t
        .strip_prefix("http://")
        .or_else(|| t.strip_prefix("https://"))
    {
        t = match rest.find('/') {
            Some(i) => &rest[i..],
            None => "/",
        };
    }
    if !t.starts_with('/') {
        return Err(http_err!(BadRequest, "Malformed request target."));
    }
    let (path, query) = match t.find('?') {
        Some(i) => (&t[..i], &t[i + 1..]),
        None => (t, ""),
    };
    Ok((path.to_string(), query.to_string()))
}

/// The bucket named by a virtual-host style `Host` (`bucket.DOMAIN[:port]`), if any. Shared by
/// the router (which bucket) and SigV2 (whose canonical resource names the bucket).
pub(crate) fn virtual_host_bucket<'h>(
    host: Option<&'h str>,
    domain: Option<&str>,
) -> Option<&'h str> {
    let domain = domain?;
    let host = host?;
    let name = match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    };
    let bucket = name.strip_suffix(domain)?.strip_suffix('.')?;
    (!bucket.is_empty()).then_some(bucket)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_boto3_put_head() {
        let raw = b"PUT /bkt/a%20b.txt?x=1 HTTP/1.1\r\nHost: 127.0.0.1:9000\r\nExpect: 100-continue\r\nContent-Length: 12\r\n\r\nhello world\n";
        match RequestHead::parse(raw).unwrap() {
            HeadParse::Complete(h, len) => {
                assert_eq!(h.method, Method::Put);
                assert_eq!(h.path, "/bkt/a%20b.txt");
                assert_eq!(h.query, "x=1");
                assert_eq!(h.header("host"), Some("127.0.0.1:9000"));
                assert!(h.expects_continue());
                assert!(!h.wants_close());
                assert_eq!(&raw[len..], b"hello world\n");
            }
            HeadParse::Partial => panic!("expected complete"),
        }
    }

    #[test]
    fn partial_then_too_large() {
        assert!(matches!(
            RequestHead::parse(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap(),
            HeadParse::Partial
        ));
        let mut big = b"GET / HTTP/1.1\r\nX: ".to_vec();
        big.resize(HEAD_SIZE_MAX_BYTES + 10, b'a');
        assert!(RequestHead::parse(&big).is_err());
    }

    #[test]
    fn bad_request_line_is_error() {
        assert!(RequestHead::parse(b"GARBAGE\r\n\r\n").is_err());
        assert!(RequestHead::parse(b"GET nopath HTTP/1.1\r\n\r\n").is_err());
    }
}
