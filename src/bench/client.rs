//! A small blocking S3 client for the bench: one keep-alive HTTP/1.1 connection over
//! `std::net::TcpStream` (TCP_NODELAY), plain or TLS, SigV4 via [`crate::auth::sign_headers`], and a response
//! reader that handles only what the server sends (a head plus a `Content-Length` body).
//!
//! `https://` endpoints speak TLS through rustls (see [`super::tls`] for what is trusted); the
//! handshake is part of opening a connection, before any request is written.
//!
//! Invariants: request bodies are written straight from the caller's slice (small ones are
//! copied into the reused head buffer so head and body leave in one segment; over TLS rustls
//! encrypts from that slice into its records); every request is flushed before its response is
//! read; the read and head
//! buffers are reused across requests; after any I/O or framing error the connection is dropped
//! and the next request opens a new one, so a broken stream never carries a second request.

use super::tls::{handshake_error, BufferedSocket, Trust, TLS_SEND_BUFFER_BYTES};
use crate::auth::{sign_headers, Credentials};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};
use sha2::{Digest, Sha256};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Region the bench signs for unless `--region` says otherwise.
pub(crate) const REGION_DEFAULT: &str = "us-east-1";
/// Per-call socket read/write timeout.
const IO_TIMEOUT: Duration = Duration::from_secs(120);
/// TCP connect timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Bodies up to this size are sent in the same write as the head.
const COALESCE_BODY_MAX_BYTES: usize = 64 * 1024;
/// Largest response head accepted.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Largest response body kept in memory (XML documents up to a 1000-key page of 1 KiB keys,
/// small objects); larger GET bodies are read and discarded, so the client does not allocate
/// and copy each large object (with jemalloc every 16 MiB buffer was fresh, page-faulted
/// memory: 2.5x slower 16 MiB GETs).
const KEEP_BODY_MAX_BYTES: usize = 4 * 1024 * 1024;
/// Most response headers parsed.
const MAX_HEADERS: usize = 64;
/// Initial size of a connection's read buffer (it grows for a larger response head).
const READ_BUF_INITIAL_BYTES: usize = 64 * 1024;
/// Initial capacity of the reused request head buffer.
const HEAD_BUF_INITIAL_BYTES: usize = 2048;
/// Initial capacity of the reused list of signed request headers.
const SIGNED_HEADERS_INITIAL: usize = 8;

/// Where requests go: the socket address, the `Host` header value, and for `https://` the
/// server name and client configuration of the TLS handshake.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    addr: SocketAddr,
    host: String,
    tls: Option<TlsTarget>,
}

/// The TLS side of an `https://` endpoint.
#[derive(Debug, Clone)]
struct TlsTarget {
    /// Sent as SNI and checked against the certificate (a DNS name or an IP address).
    name: ServerName<'static>,
    config: Arc<ClientConfig>,
}

/// The client TLS configuration of `https://` endpoints, made from `--ca-bundle`/`--insecure`
/// when the first one is parsed (so plain HTTP runs never read a trust store).
pub(crate) struct TlsSetup {
    trust: Trust,
    config: Option<Arc<ClientConfig>>,
}

impl TlsSetup {
    pub(crate) fn new(trust: Trust) -> TlsSetup {
        TlsSetup {
            trust,
            config: None,
        }
    }

    fn config(&mut self) -> Result<Arc<ClientConfig>, String> {
        if self.config.is_none() {
            self.config = Some(self.trust.client_config()?);
        }
        Ok(self.config.clone().expect("just made"))
    }
}

impl Endpoint {
    /// Parses `http://host[:port][/]` or `https://host[:port][/]` (the scheme may be left out
    /// for http; the port defaults to 80 or 443). `tls` configures the https ones.
    pub(crate) fn parse(url: &str, tls: &mut TlsSetup) -> Result<Endpoint, String> {
        let (rest, secure) = if let Some(r) = url.strip_prefix("http://") {
            (r, false)
        } else if let Some(r) = url.strip_prefix("https://") {
            (r, true)
        } else if url.contains("://") {
            return Err(format!(
                "--endpoint {url}: only http:// and https:// endpoints are supported"
            ));
        } else {
            (url, false)
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.is_empty() || authority.contains(['/', '?', '#', '@', ' ']) {
            return Err(format!(
                "--endpoint {url}: expected http(s)://HOST:PORT with no path, query or user info"
            ));
        }
        let addr = resolve(authority, if secure { 443 } else { 80 })
            .map_err(|e| format!("--endpoint {url}: {e}"))?;
        let tls = match secure {
            false => None,
            true => Some(TlsTarget {
                name: server_name(authority).map_err(|e| format!("--endpoint {url}: {e}"))?,
                config: tls.config()?,
            }),
        };
        Ok(Endpoint {
            addr,
            host: authority.to_string(),
            tls,
        })
    }

    /// The endpoint of a plain HTTP server listening on `addr`.
    pub(crate) fn of(addr: SocketAddr) -> Endpoint {
        Endpoint {
            addr,
            host: addr.to_string(),
            tls: None,
        }
    }

    /// The endpoint of an HTTPS server listening on `addr`, verified with `config` against the
    /// address itself (the certificate must name that IP address).
    pub(crate) fn of_tls(addr: SocketAddr, config: Arc<ClientConfig>) -> Endpoint {
        Endpoint {
            tls: Some(TlsTarget {
                name: ServerName::IpAddress(addr.ip().into()),
                config,
            }),
            ..Endpoint::of(addr)
        }
    }

    /// Whether requests go over TLS (`https://`).
    pub(crate) fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The endpoint as a URL: `http://HOST:PORT` or `https://HOST:PORT`.
    pub(crate) fn url(&self) -> String {
        let scheme = if self.is_tls() { "https" } else { "http" };
        format!("{scheme}://{}", self.host)
    }
}

/// The first socket address of `authority` (`HOST`, `HOST:PORT`, `[V6]` or `[V6]:PORT`).
fn resolve(authority: &str, default_port: u16) -> Result<SocketAddr, String> {
    let has_port = if authority.starts_with('[') {
        !authority.ends_with(']')
    } else {
        authority.contains(':')
    };
    let with_port = if has_port {
        authority.to_string()
    } else {
        format!("{authority}:{default_port}")
    };
    with_port
        .to_socket_addrs()
        .map_err(|e| e.to_string())?
        .next()
        .ok_or_else(|| "resolves to no address".to_string())
}

/// The TLS server name of `authority`: its host without port or IPv6 brackets.
fn server_name(authority: &str) -> Result<ServerName<'static>, String> {
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    ServerName::try_from(host.to_string())
        .map_err(|e| format!("{host:?} is not a TLS server name: {e}"))
}

/// How request bodies are covered by the signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Payload {
    Unsigned,
    Signed,
}

/// What the bench needs from a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Response {
    pub(crate) status: u16,
    /// `ETag` header value, quotes included.
    pub(crate) etag: Option<String>,
    /// Body length (as announced and read).
    pub(crate) content_length: u64,
    /// The server said `Connection: close`.
    pub(crate) close: bool,
    /// The body, when it was at most [`KEEP_BODY_MAX_BYTES`] bytes.
    pub(crate) body: Vec<u8>,
    /// When the response head had arrived (time to first byte = this minus the request start).
    pub(crate) head_at: Instant,
}

impl Response {
    /// Whether the status is a success the bench accepts (200 or 204).
    pub(crate) fn ok(&self) -> bool {
        self.status == 200 || self.status == 204
    }

    /// The S3 error code of a failed response (`HTTP 503` when the body names none).
    pub(crate) fn error_code(&self) -> String {
        xml_element(&String::from_utf8_lossy(&self.body), "Code")
            .unwrap_or_else(|| format!("HTTP {}", self.status))
    }

    /// A one-line description of a failed response: status and the S3 error code if any.
    pub(crate) fn describe(&self) -> String {
        let body = String::from_utf8_lossy(&self.body);
        match (xml_element(&body, "Code"), xml_element(&body, "Message")) {
            (Some(code), Some(msg)) => format!("HTTP {} {code}: {msg}", self.status),
            (Some(code), None) => format!("HTTP {} {code}", self.status),
            _ => format!("HTTP {}", self.status),
        }
    }
}

/// A parsed response head.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ResponseHead {
    status: u16,
    etag: Option<String>,
    content_length: Option<u64>,
    close: bool,
    /// Bytes the head takes up in the buffer.
    len: usize,
}

/// Parses a response head at the start of `buf`: `Ok(None)` when more bytes are needed.
/// Rejects bodies framed other than by `Content-Length` (the server never sends them).
fn parse_response_head(buf: &[u8]) -> Result<Option<ResponseHead>, String> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            if buf.len() > MAX_HEAD_BYTES {
                return Err("response head too large".to_string());
            }
            return Ok(None);
        }
        Err(e) => return Err(format!("malformed response head: {e}")),
    };
    let status = resp.code.unwrap_or(0);
    let mut head = ResponseHead {
        status,
        etag: None,
        content_length: None,
        close: resp.version == Some(0),
        len,
    };
    for h in resp.headers.iter() {
        let value = std::str::from_utf8(h.value)
            .map_err(|_| format!("header {} is not UTF-8", h.name))?
            .trim();
        if h.name.eq_ignore_ascii_case("content-length") {
            let n: u64 = value
                .parse()
                .map_err(|_| format!("bad Content-Length {value:?}"))?;
            if head.content_length.is_some_and(|m| m != n) {
                return Err("conflicting Content-Length headers".to_string());
            }
            head.content_length = Some(n);
        } else if h.name.eq_ignore_ascii_case("etag") {
            head.etag = Some(value.to_string());
        } else if h.name.eq_ignore_ascii_case("connection") {
            if value
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("close"))
            {
                head.close = true;
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(format!(
                "unsupported response framing Transfer-Encoding: {value}"
            ));
        }
    }
    Ok(Some(head))
}

/// The text of the first `<name>...</name>` element in `xml`, with the five predefined XML
/// entities decoded. Enough for the flat documents the bench reads (UploadId, ETag, Code).
pub(crate) fn xml_element(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&close)?;
    Some(xml_unescape(&xml[start..end]))
}

fn xml_unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    s.replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#34;", "\"")
        .replace("&amp;", "&")
}

/// The byte stream of a connection: the socket itself for plain HTTP (writes and reads go
/// straight to it), or a rustls client stream over it.
enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, BufferedSocket>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    /// Over TLS: every encrypted byte is handed to the socket (rustls's `write` may leave some
    /// queued, and only reports a socket error on the next call).
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// One keep-alive connection with reusable buffers.
struct Conn {
    stream: Stream,
    rbuf: Vec<u8>,
    /// Unconsumed bytes are `rbuf[rpos..rend]`.
    rpos: usize,
    rend: usize,
}

impl Conn {
    /// Connects to `endpoint` and, for https, completes the TLS handshake (so neither is part
    /// of a timed request when the caller connects first).
    fn open(endpoint: &Endpoint) -> Result<Conn, String> {
        let addr = endpoint.addr;
        let socket = || -> io::Result<TcpStream> {
            let stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?;
            stream.set_nodelay(true)?;
            stream.set_read_timeout(Some(IO_TIMEOUT))?;
            stream.set_write_timeout(Some(IO_TIMEOUT))?;
            Ok(stream)
        };
        let socket = socket().map_err(|e| format!("connect {addr}: {e}"))?;
        let stream = match &endpoint.tls {
            None => Stream::Plain(socket),
            Some(t) => Stream::Tls(Box::new(
                handshake(t, socket).map_err(|e| format!("{}: {e}", endpoint.url()))?,
            )),
        };
        Ok(Conn {
            stream,
            rbuf: vec![0u8; READ_BUF_INITIAL_BYTES],
            rpos: 0,
            rend: 0,
        })
    }

    fn fill(&mut self) -> Result<(), String> {
        if self.rpos == self.rend {
            self.rpos = 0;
            self.rend = 0;
        } else if self.rend == self.rbuf.len() {
            if self.rpos > 0 {
                self.rbuf.copy_within(self.rpos..self.rend, 0);
                self.rend -= self.rpos;
                self.rpos = 0;
            } else {
                let n = self.rbuf.len();
                self.rbuf.resize(n * 2, 0);
            }
        }
        match self.stream.read(&mut self.rbuf[self.rend..]) {
            Ok(0) => Err("connection closed by the server".to_string()),
            Ok(n) => {
                self.rend += n;
                Ok(())
            }
            Err(e) => Err(format!("read: {e}")),
        }
    }

    /// Reads one response; after a HEAD request the announced length has no body behind it.
    fn read_response(&mut self, head_request: bool) -> Result<Response, String> {
        loop {
            let head = loop {
                if let Some(h) = parse_response_head(&self.rbuf[self.rpos..self.rend])? {
                    break h;
                }
                self.fill()?;
            };
            let head_at = Instant::now();
            self.rpos += head.len;
            if (100..200).contains(&head.status) {
                continue; // interim response (100 Continue): the real one follows
            }
            let len = match head.content_length {
                Some(n) => n,
                None if head.status == 204 || head.status == 304 => 0,
                None => return Err(format!("HTTP {} without Content-Length", head.status)),
            };
            let keep = len <= KEEP_BODY_MAX_BYTES as u64 && !head_request;
            let mut body = Vec::new();
            if keep {
                body.reserve_exact(len as usize);
            }
            let mut left = if head_request { 0 } else { len };
            while left > 0 {
                if self.rpos == self.rend {
                    self.fill()?;
                }
                let take = ((self.rend - self.rpos) as u64).min(left) as usize;
                if keep {
                    body.extend_from_slice(&self.rbuf[self.rpos..self.rpos + take]);
                }
                self.rpos += take;
                left -= take as u64;
            }
            return Ok(Response {
                status: head.status,
                etag: head.etag,
                content_length: len,
                close: head.close,
                body,
                head_at,
            });
        }
    }
}

/// The client side of the TLS handshake with `target` on `socket`, run to completion.
fn handshake(
    target: &TlsTarget,
    socket: TcpStream,
) -> Result<StreamOwned<ClientConnection, BufferedSocket>, String> {
    let mut conn = ClientConnection::new(target.config.clone(), target.name.clone())
        .map_err(|e| format!("TLS: {e}"))?;
    conn.set_buffer_limit(Some(TLS_SEND_BUFFER_BYTES));
    let mut socket = BufferedSocket::new(socket);
    while conn.is_handshaking() {
        conn.complete_io(&mut socket)
            .map_err(|e| handshake_error(&e))?;
    }
    Ok(StreamOwned::new(conn, socket))
}

/// A client bound to one endpoint and key; holds at most one open connection.
pub(crate) struct Client {
    endpoint: Endpoint,
    creds: Credentials,
    payload: Payload,
    conn: Option<Conn>,
    region: String,
    head: Vec<u8>,
    headers: Vec<(String, String)>,
    /// Counts requests written in full, when set.
    sent: Option<Arc<AtomicU64>>,
}

impl Client {
    pub(crate) fn new(endpoint: Endpoint, creds: Credentials, payload: Payload) -> Client {
        Client {
            endpoint,
            creds,
            payload,
            conn: None,
            region: REGION_DEFAULT.to_string(),
            head: Vec::with_capacity(HEAD_BUF_INITIAL_BYTES),
            headers: Vec::with_capacity(SIGNED_HEADERS_INITIAL),
            sent: None,
        }
    }

    /// This client, adding one to `sent` for every request it writes in full.
    pub(crate) fn counting(mut self, sent: Arc<AtomicU64>) -> Client {
        self.sent = Some(sent);
        self
    }

    /// This client, signing for `region`.
    pub(crate) fn in_region(mut self, region: &str) -> Client {
        self.region = region.to_string();
        self
    }

    /// Opens the connection now (instead of on the first request), so it is not timed.
    pub(crate) fn connect(&mut self) -> Result<(), String> {
        if self.conn.is_none() {
            self.conn = Some(Conn::open(&self.endpoint)?);
        }
        Ok(())
    }

    /// Sends one signed request and reads its response. `path` and `query` must already be
    /// URI-encoded as they go on the request line. An `Err` is a transport or framing failure
    /// (the connection is dropped); HTTP errors come back as an `Ok` response.
    pub(crate) fn request(
        &mut self,
        method: &str,
        path: &str,
        query: &str,
        body: &[u8],
    ) -> Result<Response, String> {
        self.request_with(method, path, query, &[], body)
    }

    /// [`Client::request`] with `extra` headers (signed when they are `x-amz-*`).
    pub(crate) fn request_with(
        &mut self,
        method: &str,
        path: &str,
        query: &str,
        extra: &[(&str, String)],
        body: &[u8],
    ) -> Result<Response, String> {
        let payload_hash = match self.payload {
            Payload::Unsigned => "UNSIGNED-PAYLOAD".to_string(),
            Payload::Signed => hex::encode(Sha256::digest(body)),
        };
        self.headers.clear();
        self.headers
            .push(("host".to_string(), self.endpoint.host.clone()));
        for (name, value) in extra {
            self.headers.push((name.to_string(), value.clone()));
        }
        sign_headers(
            &self.creds,
            method,
            path,
            query,
            &mut self.headers,
            &payload_hash,
            SystemTime::now(),
            &self.region,
        );
        self.head.clear();
        self.head.extend_from_slice(method.as_bytes());
        self.head.push(b' ');
        self.head.extend_from_slice(path.as_bytes());
        if !query.is_empty() {
            self.head.push(b'?');
            self.head.extend_from_slice(query.as_bytes());
        }
        self.head.extend_from_slice(b" HTTP/1.1\r\n");
        for (n, v) in &self.headers {
            self.head.extend_from_slice(n.as_bytes());
            self.head.extend_from_slice(b": ");
            self.head.extend_from_slice(v.as_bytes());
            self.head.extend_from_slice(b"\r\n");
        }
        // Content-Length on every request, including empty bodies, as boto3 does.
        write!(self.head, "content-length: {}\r\n\r\n", body.len()).map_err(|e| e.to_string())?;
        let coalesce = body.len() <= COALESCE_BODY_MAX_BYTES;
        if coalesce {
            self.head.extend_from_slice(body);
        }
        let result = self.exchange(if coalesce { &[] } else { body }, method == "HEAD");
        match &result {
            Ok(r) if !r.close => {}
            _ => self.conn = None,
        }
        result
    }

    fn exchange(&mut self, body: &[u8], head_request: bool) -> Result<Response, String> {
        self.connect()?;
        let conn = self.conn.as_mut().expect("connection just opened");
        conn.stream
            .write_all(&self.head)
            .map_err(|e| format!("write: {e}"))?;
        if !body.is_empty() {
            conn.stream
                .write_all(body)
                .map_err(|e| format!("write body: {e}"))?;
        }
        conn.stream.flush().map_err(|e| format!("write: {e}"))?;
        if let Some(sent) = &self.sent {
            sent.fetch_add(1, Ordering::Relaxed);
        }
        conn.read_response(head_request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(url: &str) -> Result<Endpoint, String> {
        Endpoint::parse(url, &mut TlsSetup::new(Trust::Insecure))
    }

    #[test]
    fn endpoint_parsing() {
        let e = plain("http://127.0.0.1:9000").unwrap();
        assert_eq!(e.addr, "127.0.0.1:9000".parse().unwrap());
        assert_eq!(e.host, "127.0.0.1:9000");
        assert_eq!(e.url(), "http://127.0.0.1:9000");
        assert!(!e.is_tls());
        let e = plain("http://127.0.0.1:9000/").unwrap();
        assert_eq!(e.host, "127.0.0.1:9000");
        let e = plain("127.0.0.1:8080").unwrap();
        assert_eq!(e.addr.port(), 8080);
        let e = plain("http://127.0.0.1").unwrap();
        assert_eq!(e.addr.port(), 80);
        let e = plain("http://[::1]:9000").unwrap();
        assert_eq!(e.addr, "[::1]:9000".parse().unwrap());
        let e = plain("http://[::1]").unwrap();
        assert_eq!(e.addr.port(), 80);
        for bad in [
            "ftp://x",
            "http://",
            "https://",
            "http://127.0.0.1:9000/bucket",
            "https://127.0.0.1:9000/bucket",
            "http://u:p@127.0.0.1:9000",
            "https://u:p@127.0.0.1:9000",
            "http://127.0.0.1:notaport",
            "https://127.0.0.1:notaport",
        ] {
            assert!(plain(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn https_endpoint_parsing() {
        let e = plain("https://127.0.0.1:9443").unwrap();
        assert_eq!(e.addr, "127.0.0.1:9443".parse().unwrap());
        assert_eq!(e.host, "127.0.0.1:9443");
        assert_eq!(e.url(), "https://127.0.0.1:9443");
        let t = e.tls.as_ref().expect("https is TLS");
        assert_eq!(t.name, ServerName::try_from("127.0.0.1").unwrap());
        assert!(matches!(t.name, ServerName::IpAddress(_)));
        assert_eq!(t.config.alpn_protocols, vec![b"http/1.1".to_vec()]);
        let e = plain("https://127.0.0.1/").unwrap();
        assert_eq!((e.addr.port(), e.host.as_str()), (443, "127.0.0.1"));
        let e = plain("https://localhost:9443").unwrap();
        assert_eq!(e.addr.port(), 9443);
        assert_eq!(e.host, "localhost:9443");
        let name = &e.tls.as_ref().unwrap().name;
        assert_eq!(name, &ServerName::try_from("localhost").unwrap());
        assert!(matches!(name, ServerName::DnsName(_)));
        let e = plain("https://[::1]:9443").unwrap();
        assert_eq!(e.addr, "[::1]:9443".parse().unwrap());
        assert_eq!(e.url(), "https://[::1]:9443");
        assert_eq!(
            e.tls.unwrap().name,
            ServerName::IpAddress("::1".parse::<std::net::IpAddr>().unwrap().into())
        );
        assert_eq!(plain("https://[::1]").unwrap().addr.port(), 443);

        // The trust store is only read for an https endpoint, and its error is the parse error.
        let mut bad_ca = TlsSetup::new(Trust::Bundle("/nonexistent/ca.pem".into()));
        assert!(Endpoint::parse("http://127.0.0.1:9000", &mut bad_ca).is_ok());
        let e = Endpoint::parse("https://127.0.0.1:9443", &mut bad_ca).unwrap_err();
        assert!(
            e.contains("--ca-bundle /nonexistent/ca.pem: cannot read"),
            "{e}"
        );
    }

    #[test]
    fn response_head_parsing() {
        let wire = b"HTTP/1.1 200 OK\r\nETag: \"d41d8cd98f00b204e9800998ecf8427e\"\r\nContent-Length: 0\r\nx-amz-request-id: 1\r\n\r\nNEXT";
        let h = parse_response_head(wire).unwrap().unwrap();
        assert_eq!(h.status, 200);
        assert_eq!(
            h.etag.as_deref(),
            Some("\"d41d8cd98f00b204e9800998ecf8427e\"")
        );
        assert_eq!(h.content_length, Some(0));
        assert!(!h.close);
        assert_eq!(&wire[h.len..], b"NEXT");

        // Every prefix is incomplete, never an error.
        for cut in 0..wire.len() - 4 {
            assert_eq!(parse_response_head(&wire[..cut]), Ok(None), "cut {cut}");
        }

        let h = parse_response_head(
            b"HTTP/1.1 503 Slow Down\r\nconnection: keep-alive, Close\r\ncontent-length: 12\r\n\r\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(h.status, 503);
        assert!(h.close);
        assert_eq!(h.etag, None);
        assert_eq!(h.content_length, Some(12));

        let h = parse_response_head(b"HTTP/1.0 204 No Content\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(h.close, "HTTP/1.0 closes by default");
        assert_eq!(h.content_length, None);

        assert!(parse_response_head(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n").is_err());
        assert!(parse_response_head(
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"
        )
        .is_err());
        assert!(
            parse_response_head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").is_err()
        );
        assert!(parse_response_head(b"NOT HTTP\r\n\r\n").is_err());
        let huge = vec![b'a'; MAX_HEAD_BYTES + 10];
        let mut wire = b"HTTP/1.1 200 OK\r\nx: ".to_vec();
        wire.extend_from_slice(&huge);
        assert!(parse_response_head(&wire).is_err());
    }

    #[test]
    fn xml_elements() {
        let doc = r#"<?xml version="1.0" encoding="UTF-8"?>
<InitiateMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>b</Bucket><Key>a&amp;b</Key><UploadId>0123abcd</UploadId></InitiateMultipartUploadResult>"#;
        assert_eq!(xml_element(doc, "UploadId").as_deref(), Some("0123abcd"));
        assert_eq!(xml_element(doc, "Key").as_deref(), Some("a&b"));
        assert_eq!(xml_element(doc, "Missing"), None);
        let done = "<CompleteMultipartUploadResult><ETag>&quot;abc-2&quot;</ETag></CompleteMultipartUploadResult>";
        assert_eq!(xml_element(done, "ETag").as_deref(), Some("\"abc-2\""));
        assert_eq!(xml_unescape("&amp;quot;"), "&quot;");
        let err = Response {
            status: 403,
            etag: None,
            content_length: 0,
            close: false,
            body: b"<Error><Code>AccessDenied</Code><Message>no &lt;way&gt;</Message></Error>"
                .to_vec(),
            head_at: Instant::now(),
        };
        assert_eq!(err.error_code(), "AccessDenied");
        assert_eq!(err.describe(), "HTTP 403 AccessDenied: no <way>");
        assert!(!err.ok());
    }

    /// A canned server on a std listener: checks the request line and framing the client writes,
    /// answers two requests on one connection, then a third after a `Connection: close`.
    #[test]
    fn client_round_trip_against_canned_server() {
        use std::io::BufRead;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let mut accepted = 0;
            let mut seen = Vec::new();
            for stream in listener.incoming().take(2) {
                accepted += 1;
                let mut r = io::BufReader::new(stream.unwrap());
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap() == 0 {
                        break;
                    }
                    let request_line = line.trim_end().to_string();
                    let mut len = 0usize;
                    let mut signed = false;
                    loop {
                        line.clear();
                        r.read_line(&mut line).unwrap();
                        let l = line.trim_end().to_ascii_lowercase();
                        if l.is_empty() {
                            break;
                        }
                        if let Some(v) = l.strip_prefix("content-length: ") {
                            len = v.parse().unwrap();
                        }
                        if l.starts_with("authorization: aws4-hmac-sha256 credential=ak/") {
                            signed = true;
                        }
                    }
                    let mut body = vec![0u8; len];
                    r.read_exact(&mut body).unwrap();
                    seen.push((request_line.clone(), body.len(), signed));
                    let out = r.get_mut();
                    if request_line.starts_with("GET") {
                        out.write_all(
                            b"HTTP/1.1 200 OK\r\nETag: \"e\"\r\nContent-Length: 5\r\n\r\nhello",
                        )
                        .unwrap();
                    } else if seen.len() == 2 {
                        out.write_all(b"HTTP/1.1 500 Internal\r\nConnection: close\r\nContent-Length: 34\r\n\r\n<Error><Code>Boom</Code></Error>\r\n").unwrap();
                        break;
                    } else {
                        out.write_all(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nETag: \"p\"\r\nContent-Length: 0\r\n\r\n").unwrap();
                    }
                }
            }
            (accepted, seen)
        });
        let creds = Credentials {
            access_key: "ak".into(),
            secret_key: "sk".into(),
        };
        let mut c = Client::new(Endpoint::of(addr), creds, Payload::Signed);
        let big = vec![7u8; COALESCE_BODY_MAX_BYTES + 1];
        let r = c.request("PUT", "/b/k", "", &big).unwrap();
        assert_eq!((r.status, r.etag.as_deref()), (200, Some("\"p\"")));
        let r = c
            .request("PUT", "/b/k2", "partNumber=1&uploadId=x", b"abc")
            .unwrap();
        assert_eq!(r.status, 500);
        assert!(r.close);
        assert_eq!(r.describe(), "HTTP 500 Boom");
        let r = c.request("GET", "/b/k", "", &[]).unwrap();
        assert!(r.ok());
        assert_eq!(r.body, b"hello");
        drop(c);
        let (accepted, seen) = server.join().unwrap();
        assert_eq!(accepted, 2);
        assert_eq!(
            seen,
            vec![
                (
                    "PUT /b/k HTTP/1.1".to_string(),
                    COALESCE_BODY_MAX_BYTES + 1,
                    true
                ),
                (
                    "PUT /b/k2?partNumber=1&uploadId=x HTTP/1.1".to_string(),
                    3,
                    true
                ),
                ("GET /b/k HTTP/1.1".to_string(), 0, true),
            ]
        );
    }
}
