//! `--null`: a trivial HTTP responder in the bench's own process, to measure the client's
//! ceiling: the same workload with no authentication, no storage and no server behind it.
//!
//! Role: it reads every request in full (head and `Content-Length` body) and answers a fixed
//! success with a plausible body: an ETag for PUT, `--object-size` bytes for GET, the XML
//! documents multipart uploads need, and ListObjectsV2 pages of synthetic keys named as by fill.
//!
//! Invariants: it listens on 127.0.0.1 only; it counts a request as answered just before writing
//! its response, so once the client has read every response the count equals the requests the
//! client sent; a request it cannot parse closes the connection without an answer (and is not
//! counted). One thread per connection: the responder does no more work than it must. With a
//! TLS configuration it speaks HTTPS (rustls over the same blocking sockets), so the ceiling
//! of an HTTPS run includes the client's TLS cost.

use super::fill::fill_key;
use super::tls::TLS_SEND_BUFFER_BYTES;
use crate::http::percent::{percent_decode, query_segments};
use rustls::{ServerConfig, ServerConnection, StreamOwned};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Most request headers parsed.
const MAX_HEADERS: usize = 64;
/// Largest request head accepted.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Size of each connection's read buffer.
const READ_BUF_BYTES: usize = 256 * 1024;
/// Bodies up to this size are sent in the same write as the head.
const INLINE_BODY_MAX_BYTES: usize = 64 * 1024;
/// ListObjectsV2 page size when the request gives no max-keys (S3's default).
const DEFAULT_MAX_KEYS: usize = 1000;
/// POST bodies up to this size are kept (a CompleteMultipartUpload document names its parts).
const POST_BODY_KEEP_MAX_BYTES: u64 = 4 * 1024 * 1024;

/// What the responder answers, shared by its connection threads.
struct Canned {
    /// Body of every object GET.
    object: Vec<u8>,
    /// Keys `fill_key(0..list_keys)` make up every bucket's listing.
    list_keys: u64,
    answered: AtomicU64,
    stop: AtomicBool,
}

/// A running null responder.
pub(crate) struct NullResponder {
    pub(crate) address: SocketAddr,
    canned: Arc<Canned>,
    acceptor: Option<JoinHandle<()>>,
}

impl NullResponder {
    /// Listens on a free loopback port (speaking TLS with `tls`); GETs return `object_size`
    /// bytes and listings hold `list_keys` synthetic keys.
    pub(crate) fn start(
        object_size: u64,
        list_keys: u64,
        tls: Option<Arc<ServerConfig>>,
    ) -> Result<NullResponder, String> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .map_err(|e| format!("null responder: bind: {e}"))?;
        let address = listener
            .local_addr()
            .map_err(|e| format!("null responder: {e}"))?;
        let canned = Arc::new(Canned {
            object: vec![b'n'; object_size as usize],
            list_keys,
            answered: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let shared = canned.clone();
        let acceptor = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if shared.stop.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let _ = stream.set_nodelay(true);
                let c = shared.clone();
                let tls = tls.clone();
                std::thread::spawn(move || match tls {
                    None => serve_connection(stream, &c),
                    Some(config) => {
                        // The handshake runs within the first read of the request.
                        if let Ok(mut conn) = ServerConnection::new(config) {
                            conn.set_buffer_limit(Some(TLS_SEND_BUFFER_BYTES));
                            serve_connection(StreamOwned::new(conn, stream), &c);
                        }
                    }
                });
            }
        });
        Ok(NullResponder {
            address,
            canned,
            acceptor: Some(acceptor),
        })
    }

    /// Requests answered so far.
    pub(crate) fn answered(&self) -> u64 {
        self.canned.answered.load(Ordering::Relaxed)
    }

    /// Stops accepting connections (open ones end when their clients close them).
    pub(crate) fn stop(mut self) {
        self.canned.stop.store(true, Ordering::Relaxed);
        // Wake the blocked accept with one connection of our own.
        let _ = TcpStream::connect(self.address);
        if let Some(h) = self.acceptor.take() {
            let _ = h.join();
        }
    }
}

/// A parsed request: what the answer depends on, and the body length to skip.
struct Request {
    method: String,
    target: String,
    body_len: u64,
    head_len: usize,
}

/// Parses a request head at the start of `buf`; `Ok(None)` when more bytes are needed.
fn parse_request(buf: &[u8]) -> Result<Option<Request>, String> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf).map_err(|e| e.to_string())? {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial if buf.len() > MAX_HEAD_BYTES => {
            return Err("request head too large".to_string())
        }
        httparse::Status::Partial => return Ok(None),
    };
    let mut body_len = 0;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            body_len = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .ok_or("bad Content-Length")?;
        }
    }
    Ok(Some(Request {
        method: req.method.unwrap_or("").to_string(),
        target: req.path.unwrap_or("/").to_string(),
        body_len,
        head_len,
    }))
}

/// Answers requests on one connection (a socket, or a TLS stream over one) until the client
/// closes it or sends garbage.
fn serve_connection<S: Read + Write>(mut stream: S, canned: &Canned) {
    let mut buf = vec![0u8; READ_BUF_BYTES];
    let (mut start, mut end) = (0usize, 0usize);
    loop {
        let req = loop {
            match parse_request(&buf[start..end]) {
                Ok(Some(r)) => break r,
                Ok(None) => {}
                Err(_) => return,
            }
            if start > 0 {
                buf.copy_within(start..end, 0);
                end -= start;
                start = 0;
            }
            if end == buf.len() {
                return;
            }
            match stream.read(&mut buf[end..]) {
                Ok(0) | Err(_) => return,
                Ok(n) => end += n,
            }
        };
        start += req.head_len;
        // Skip the body (keeping a small POST's): what is buffered, then from the socket.
        let keep = req.method == "POST" && req.body_len <= POST_BODY_KEEP_MAX_BYTES;
        let mut kept = Vec::new();
        let mut left = req.body_len;
        let buffered = ((end - start) as u64).min(left) as usize;
        if keep {
            kept.extend_from_slice(&buf[start..start + buffered]);
        }
        start += buffered;
        left -= buffered as u64;
        while left > 0 {
            let want = (left as usize).min(buf.len());
            match stream.read(&mut buf[..want]) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    left -= n as u64;
                    if keep {
                        kept.extend_from_slice(&buf[..n]);
                    }
                }
            }
        }
        if start == end {
            (start, end) = (0, 0);
        }
        if respond(&mut stream, canned, &req, &kept).is_err() {
            return;
        }
    }
}

/// Writes the canned answer to `req` (whose body was `body` if it was a small POST; flushed:
/// over TLS every record is on the socket).
fn respond<S: Write>(
    stream: &mut S,
    canned: &Canned,
    req: &Request,
    body: &[u8],
) -> std::io::Result<()> {
    // A completed object's ETag ends in -N for its N parts, as S3's does.
    let parts = String::from_utf8_lossy(body).matches("<Part>").count();
    let (path, query) = req.target.split_once('?').unwrap_or((&req.target, ""));
    let has = |name: &str| query_segments(query).any(|(k, _)| k == name);
    let xml = |doc: String| (200u16, Some(doc.into_bytes()), false);
    let (status, body, object) = match req.method.as_str() {
        "GET" if has("list-type") => xml(list_page(canned, path, query)),
        "GET" => (200, None, true),
        "HEAD" => (200, None, false),
        "POST" if has("uploads") => xml(format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<InitiateMultipartUploadResult><Key>{path}</Key><UploadId>null</UploadId></InitiateMultipartUploadResult>"
        )),
        "POST" => xml(format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CompleteMultipartUploadResult><Key>{path}</Key><ETag>&quot;null-{parts}&quot;</ETag></CompleteMultipartUploadResult>"
        )),
        "DELETE" => (204, None, false),
        _ => (200, None, false),
    };
    let body: &[u8] = match (&body, object) {
        (Some(b), _) => b,
        (None, true) => &canned.object,
        (None, false) => &[],
    };
    let mut out = format!(
        "HTTP/1.1 {status} {}\r\nETag: \"null\"\r\nContent-Length: {}\r\n\r\n",
        if status == 204 { "No Content" } else { "OK" },
        if req.method == "HEAD" {
            canned.object.len()
        } else {
            body.len()
        }
    )
    .into_bytes();
    // Small bodies leave with the head in one write; large ones are written from the canned
    // buffer itself (copying 16 MiB per GET made the responder, not the client, the limit).
    let inline = req.method != "HEAD" && body.len() <= INLINE_BODY_MAX_BYTES;
    if inline {
        out.extend_from_slice(body);
    }
    canned.answered.fetch_add(1, Ordering::Relaxed);
    stream.write_all(&out)?;
    if req.method != "HEAD" && !inline {
        stream.write_all(body)?;
    }
    stream.flush()
}

/// A ListObjectsV2 page of the synthetic keys after the request's `start-after`.
fn list_page(canned: &Canned, path: &str, query: &str) -> String {
    let mut start_after = String::new();
    let mut max_keys = DEFAULT_MAX_KEYS;
    for (k, v) in query_segments(query) {
        match k {
            "start-after" => start_after = percent_decode(v).unwrap_or_default(),
            "max-keys" => max_keys = v.parse().unwrap_or(DEFAULT_MAX_KEYS),
            _ => {}
        }
    }
    // The first synthetic key after start-after: keys sort in index order.
    let (mut lo, mut hi) = (0u64, canned.list_keys);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if fill_key(mid) <= start_after {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    let end = (lo + max_keys as u64).min(canned.list_keys);
    let mut doc = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult><Name>{}</Name><Prefix></Prefix><MaxKeys>{max_keys}</MaxKeys><KeyCount>{}</KeyCount><IsTruncated>{}</IsTruncated>",
        path.trim_start_matches('/'),
        end - lo,
        end < canned.list_keys
    );
    for i in lo..end {
        doc.push_str("<Contents><Key>");
        doc.push_str(&fill_key(i));
        doc.push_str("</Key><ETag>&quot;null&quot;</ETag><Size>0</Size></Contents>");
    }
    if end < canned.list_keys {
        doc.push_str("<NextContinuationToken>null</NextContinuationToken>");
    }
    doc.push_str("</ListBucketResult>");
    doc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::list::{check_page, parse_page};

    fn canned(list_keys: u64) -> Canned {
        Canned {
            object: vec![b'n'; 4],
            list_keys,
            answered: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        }
    }

    #[test]
    fn synthetic_listing_pages() {
        let c = canned(25);
        let p = parse_page(&list_page(&c, "/b", "list-type=2&max-keys=10")).unwrap();
        assert_eq!(p.keys.first().map(String::as_str), Some("fill/0000000000"));
        assert_eq!((p.keys.len(), p.truncated), (10, true));
        assert_eq!(check_page(&p, "", 10), Ok(()));
        let q = "list-type=2&max-keys=10&start-after=fill%2F0000000019";
        let p = parse_page(&list_page(&c, "/b", q)).unwrap();
        assert_eq!(p.keys.first().map(String::as_str), Some("fill/0000000020"));
        assert_eq!((p.keys.len(), p.truncated), (5, false));
        let p = parse_page(&list_page(&c, "/b", "list-type=2&start-after=zzz")).unwrap();
        assert!(p.keys.is_empty() && !p.truncated);
    }

    #[test]
    fn requests_parse() {
        let r = parse_request(b"PUT /b/k HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello")
            .unwrap()
            .unwrap();
        assert_eq!(
            (r.method.as_str(), r.target.as_str(), r.body_len),
            ("PUT", "/b/k", 5)
        );
        assert_eq!(r.head_len, 40);
        assert!(parse_request(b"GET / HTTP/1.1\r\n").unwrap().is_none());
        assert!(parse_request(b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n").is_err());
    }
}
