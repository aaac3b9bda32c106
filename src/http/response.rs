//! Response: what an S3 operation answers, and how it goes onto the wire.
//!
//! Invariants: every response carries `x-amz-request-id`, `Date` and an exact `Content-Length`
//! (HEAD and 304 carry the length of the body they stand for but send none); a response that
//! closes the connection says `Connection: close`; small responses go out in one write.

use crate::http::conn::Connection;
use glommio::io::ReadResult;
use std::future::Future;
use std::io;
use std::pin::Pin;

/// A piece of a streamed body, written to the socket as it is (no copy): a DMA buffer slice,
/// or a slice of shared memory (a cached body).
pub(crate) enum BodyChunk {
    Dma(ReadResult),
    Shared(bytes::Bytes),
}

impl std::ops::Deref for BodyChunk {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            BodyChunk::Dma(r) => r,
            BodyChunk::Shared(b) => b,
        }
    }
}

/// A streamed response body.
pub(crate) trait ChunkStream {
    /// Bytes not yet handed out (the response's Content-Length before the first chunk).
    fn remaining(&self) -> u64;
    /// The next slice, or `None` at the end.
    fn next_chunk(&mut self) -> Pin<Box<dyn Future<Output = io::Result<Option<BodyChunk>>> + '_>>;
}

pub(crate) enum ResponseBody {
    Empty,
    Bytes(Vec<u8>),
    Stream(Box<dyn ChunkStream>),
}

pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: ResponseBody,
    /// For HEAD (and 304): the Content-Length to announce while sending no body.
    pub(crate) head_content_length: Option<u64>,
    pub(crate) close: bool,
    /// What metrics and the access log call this request: the handler's operation index and
    /// error-code index (0: none), names in the handler's `obs::Labels`.
    pub(crate) op: usize,
    pub(crate) error_code: usize,
}

impl Response {
    pub(crate) fn new(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: ResponseBody::Empty,
            head_content_length: None,
            close: false,
            op: 0,
            error_code: 0,
        }
    }

    pub(crate) fn header(mut self, name: &str, value: impl Into<String>) -> Response {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    pub(crate) fn push_header(&mut self, name: &str, value: impl Into<String>) {
        self.headers.push((name.to_string(), value.into()));
    }

    pub(crate) fn xml(status: u16, body: String) -> Response {
        let mut r = Response::new(status).header("Content-Type", "application/xml");
        r.body = ResponseBody::Bytes(body.into_bytes());
        r
    }

    /// Body bytes this response sends (none for HEAD, 204, 304 and 1xx).
    pub(crate) fn sent_body_len(&self, is_head: bool) -> u64 {
        match is_head || matches!(self.status, 100..=199 | 204 | 304) {
            true => 0,
            false => self.body_len(),
        }
    }

    fn body_len(&self) -> u64 {
        match &self.body {
            ResponseBody::Empty => 0,
            ResponseBody::Bytes(b) => b.len() as u64,
            ResponseBody::Stream(s) => s.remaining(),
        }
    }
}

/// Largest body sent in the same write as the head.
const INLINE_BODY_MAX_BYTES: usize = 16 * 1024;

pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        204 => "No Content",
        206 => "Partial Content",
        304 => "Not Modified",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        411 => "Length Required",
        412 => "Precondition Failed",
        416 => "Requested Range Not Satisfiable",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        507 => "Insufficient Storage",
        _ => "Unknown",
    }
}

/// Writes `resp` to `conn`. For a HEAD request no body is sent.
pub(crate) async fn write_response(
    conn: &mut Connection,
    mut resp: Response,
    request_id: &str,
    is_head: bool,
) -> io::Result<()> {
    let body_len = resp.body_len();
    let announced = resp.head_content_length.unwrap_or(body_len);
    let mut out = Vec::with_capacity(512 + INLINE_BODY_MAX_BYTES.min(body_len as usize));
    out.extend_from_slice(
        format!("HTTP/1.1 {} {}\r\n", resp.status, reason(resp.status)).as_bytes(),
    );
    let date = crate::http::date::http_date(crate::clock::now_ms());
    for (n, v) in [
        ("Server", "ringstore"),
        ("Date", date.as_str()),
        ("x-amz-request-id", request_id),
    ] {
        push_header(&mut out, n, v);
    }
    let no_length = resp.status == 204 || resp.status == 304 || (100..200).contains(&resp.status);
    if !no_length {
        push_header(&mut out, "Content-Length", &announced.to_string());
    }
    for (n, v) in &resp.headers {
        push_header(&mut out, n, v);
    }
    if resp.close {
        push_header(&mut out, "Connection", "close");
    }
    out.extend_from_slice(b"\r\n");
    let send_body = !is_head && !no_length;
    match std::mem::replace(&mut resp.body, ResponseBody::Empty) {
        ResponseBody::Bytes(b) if send_body => {
            if b.len() <= INLINE_BODY_MAX_BYTES {
                out.extend_from_slice(&b);
                conn.write_all(&out).await?;
            } else {
                conn.write_all(&out).await?;
                conn.write_all(&b).await?;
            }
        }
        ResponseBody::Stream(mut stream) if send_body => {
            // Head and first chunk together when the first chunk is small.
            let mut sent_head = false;
            while let Some(chunk) = stream.next_chunk().await? {
                if !sent_head && chunk.len() <= INLINE_BODY_MAX_BYTES {
                    out.extend_from_slice(&chunk);
                    conn.write_all(&out).await?;
                } else {
                    if !sent_head {
                        conn.write_all(&out).await?;
                    }
                    conn.write_all(&chunk).await?;
                }
                sent_head = true;
            }
            if !sent_head {
                conn.write_all(&out).await?;
            }
        }
        _ => conn.write_all(&out).await?,
    }
    conn.flush().await
}

fn push_header(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    // Header values never carry CR/LF (response splitting): replace them.
    if value.bytes().any(|b| b == b'\r' || b == b'\n') {
        out.extend_from_slice(value.replace(['\r', '\n'], " ").as_bytes());
    } else {
        out.extend_from_slice(value.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}
