//! Shared helpers for the integration tests: a real `ringstore serve` process on an ephemeral
//! loopback port ([`Server`]), a tiny raw HTTP/1.1 client over `std::net::TcpStream` ([`Conn`],
//! [`Response`]) and a SigV4 request builder ([`Req`]) that returns raw bytes, so tests can
//! corrupt them before sending.
//!
//! Every response read through [`Conn::read_response`] (except `1xx` interim responses) is
//! checked to carry `x-amz-request-id`.

#![allow(dead_code)]

pub mod bench;
pub mod workload;

use ringstore::auth::{sign_headers, Credentials};
use sha2::{Digest as _, Sha256};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

pub const ACCESS_KEY: &str = "RSITESTACCESSKEY0001";
pub const SECRET_KEY: &str = "rsItSecret/Key+0123456789abcdefghijKLMN";
pub const REGION: &str = "us-east-1";
/// Hex SHA-256 of the empty string.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Longest wait for the server to print its listening line.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for the server to exit after SIGTERM before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Default read/write timeout of client sockets.
pub const IO_TIMEOUT: Duration = Duration::from_secs(15);

pub fn creds() -> Credentials {
    Credentials {
        access_key: ACCESS_KEY.to_string(),
        secret_key: SECRET_KEY.to_string(),
    }
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

pub fn md5_hex(data: &[u8]) -> String {
    use md5::{Digest as _, Md5};
    hex::encode(Md5::digest(data))
}

pub fn md5_b64(data: &[u8]) -> String {
    use base64::Engine;
    use md5::{Digest as _, Md5};
    base64::engine::general_purpose::STANDARD.encode(Md5::digest(data))
}

pub fn crc32_b64(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(crc32fast::hash(data).to_be_bytes())
}

/// Deterministic pseudo-random bytes (xorshift64*), different for each seed.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Polls `cond` every 20 ms until it holds or `timeout` passes; returns whether it held.
pub fn poll_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ------------------------------------------------------------------------------------------
// Server process
// ------------------------------------------------------------------------------------------

/// One `ringstore serve` process on 127.0.0.1 with an ephemeral port, its data directory kept
/// across restarts. Dropping it stops the process (SIGTERM, then SIGKILL after 10 s).
pub struct Server {
    child: Option<Child>,
    port: u16,
    root: tempfile::TempDir,
    data: PathBuf,
    log: PathBuf,
    cores: usize,
}

impl Server {
    /// Starts a server with 2 cores on a fresh data directory under `CARGO_TARGET_TMPDIR`.
    pub fn start() -> Server {
        Server::start_with_cores(2)
    }

    pub fn start_with_cores(cores: usize) -> Server {
        let root = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .expect("create a temp dir under CARGO_TARGET_TMPDIR");
        let data = root.path().join("data");
        let log = root.path().join("server.log");
        let mut s = Server {
            child: None,
            port: 0,
            root,
            data,
            log,
            cores,
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        self.spawn_with_args(&[]);
    }

    /// Starts the binary on this data directory with extra flags after the standard ones.
    fn spawn_with_args(&mut self, extra_args: &[&str]) {
        let rx = self.launch(extra_args);
        let line = match rx.recv_timeout(START_TIMEOUT) {
            Ok(l) => l,
            Err(_) => {
                let status = self.kill_now();
                panic!(
                    "server did not print its listening line within {START_TIMEOUT:?} (exit: {status:?}); log:\n{}",
                    self.log_text()
                );
            }
        };
        self.port =
            parse_port(&line).unwrap_or_else(|| panic!("cannot parse the port from {line:?}"));
    }

    /// Spawns the binary on this data directory with extra flags after the standard ones and
    /// returns at once; the receiver gets the listening line when the server prints it (see
    /// [`parse_port`]). The port is not recorded: for a server killed during its start.
    pub fn launch(&mut self, extra_args: &[&str]) -> mpsc::Receiver<String> {
        assert!(self.child.is_none(), "server already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open server log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ringstore"));
        cmd.arg("serve")
            .arg("--address")
            .arg("127.0.0.1:0")
            .arg("--data")
            .arg(&self.data)
            .arg("--cores")
            .arg(self.cores.to_string())
            .args(extra_args)
            .env("RINGSTORE_ACCESS_KEY", ACCESS_KEY)
            .env("RINGSTORE_SECRET_KEY", SECRET_KEY)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        let mut child = cmd.spawn().expect("spawn ringstore");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            // Forward lines until the listening line, then keep draining so the pipe never fills.
            let mut sent = false;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if !sent && line.starts_with("ringstore listening on ") {
                    let _ = tx.send(line);
                    sent = true;
                }
            }
        });
        self.child = Some(child);
        rx
    }

    /// The port the server printed in its listening line.
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The data directory (kept across restarts).
    /// The `--cores` this server runs with.
    pub fn cores(&self) -> usize {
        self.cores
    }

    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// The staging directory inside the data directory.
    pub fn tmp_dir(&self) -> PathBuf {
        self.data.join("tmp")
    }

    /// Files currently in `<data>/tmp` (empty when it does not exist).
    pub fn staging_files(&self) -> Vec<PathBuf> {
        match std::fs::read_dir(self.tmp_dir()) {
            Ok(rd) => rd.filter_map(|e| e.ok()).map(|e| e.path()).collect(),
            Err(_) => Vec::new(),
        }
    }

    /// The server's stderr so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops the server: SIGTERM, wait up to 10 s, then SIGKILL. Returns its exit status.
    pub fn stop(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("server is not running");
        send_signal(child.id(), libc::SIGTERM);
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return status,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                _ => {
                    let _ = child.kill();
                    return child.wait().expect("wait for the server");
                }
            }
        }
    }

    /// Stops the server (asserting a clean exit) and starts it again on the same data dir.
    pub fn restart(&mut self) {
        let status = self.stop();
        assert!(
            status.success(),
            "server exit status after SIGTERM: {status:?}; log:\n{}",
            self.log_text()
        );
        self.spawn();
    }

    /// Starts a stopped server again on the same data directory.
    pub fn start_again(&mut self) {
        self.spawn();
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    fn kill_now(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let _ = child.kill();
        child.wait().ok()
    }

    /// A new client connection.
    pub fn connect(&self) -> Conn {
        Conn::connect(self.port)
    }

    /// A signed request builder for this server.
    pub fn req(&self, method: &str, target: &str) -> Req {
        Req::new(self.port, method, target)
    }

    /// Sends one request on a fresh connection and reads its final response.
    pub fn call(&self, req: &Req) -> Response {
        let mut c = self.connect();
        c.send(&req.build());
        c.read_final_response(req.method == "HEAD")
            .unwrap_or_else(|e| panic!("{} {}: {e}", req.method, req.target()))
    }

    pub fn create_bucket(&self, bucket: &str) {
        let r = self.call(&self.req("PUT", &format!("/{bucket}")));
        assert_eq!(r.status, 200, "create bucket {bucket}: {}", r.describe());
    }

    /// PUT an object (hex-SHA-256-signed body); returns the response.
    pub fn put(&self, bucket: &str, key: &str, body: &[u8], headers: &[(&str, &str)]) -> Response {
        let mut req = self.req("PUT", &format!("/{bucket}/{key}")).body(body);
        for (n, v) in headers {
            req = req.header(n, v);
        }
        self.call(&req)
    }

    pub fn get(&self, bucket: &str, key: &str) -> Response {
        self.call(&self.req("GET", &format!("/{bucket}/{key}")))
    }

    pub fn head(&self, bucket: &str, key: &str) -> Response {
        self.call(&self.req("HEAD", &format!("/{bucket}/{key}")))
    }

    /// Every key of a bucket through ListObjectsV2 (follows continuation tokens).
    pub fn list_keys(&self, bucket: &str) -> Vec<String> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..1000 {
            let mut target = format!("/{bucket}?list-type=2");
            if let Some(t) = &token {
                target.push_str("&continuation-token=");
                target.push_str(&uri_encode(t));
            }
            let r = self.call(&self.req("GET", &target));
            assert_eq!(r.status, 200, "list {bucket}: {}", r.describe());
            let xml = r.text();
            keys.extend(xml_all(&xml, "Key"));
            if xml_first(&xml, "IsTruncated").as_deref() == Some("true") {
                token = Some(
                    xml_first(&xml, "NextContinuationToken")
                        .expect("IsTruncated without NextContinuationToken"),
                );
            } else {
                return keys;
            }
        }
        panic!("listing {bucket} did not end");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.is_some() {
            let _ = self.stop();
        }
    }
}

/// Parses the port out of `ringstore listening on http://127.0.0.1:PORT (...)` (or `https://`).
pub fn parse_port(line: &str) -> Option<u16> {
    let rest = line.strip_prefix("ringstore listening on ")?;
    let rest = rest
        .strip_prefix("http://127.0.0.1:")
        .or_else(|| rest.strip_prefix("https://127.0.0.1:"))?;
    let end = rest.find(|c: char| !c.is_ascii_digit())?;
    rest[..end].parse().ok()
}

/// Percent-encodes everything but unreserved characters (for query values).
pub fn uri_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

// ------------------------------------------------------------------------------------------
// Signed request builder
// ------------------------------------------------------------------------------------------

/// How `x-amz-content-sha256` is filled in.
#[derive(Clone, Debug)]
pub enum Payload {
    /// Hex SHA-256 of the body given to the builder.
    Sha256OfBody,
    /// `UNSIGNED-PAYLOAD`.
    Unsigned,
    /// This exact value.
    Literal(String),
}

/// A SigV4-signed HTTP/1.1 request, rendered to raw bytes by [`Req::build`].
#[derive(Clone, Debug)]
pub struct Req {
    pub port: u16,
    pub method: String,
    /// Raw path as on the request line.
    pub path: String,
    /// Raw query (without `?`), may be empty.
    pub query: String,
    /// Extra headers (names lowercase): signed when `sign_headers` signs that kind of header.
    pub headers: Vec<(String, String)>,
    /// Headers added after signing (never signed), e.g. `expect`, `transfer-encoding`.
    pub unsigned_headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub payload: Payload,
    /// Add `Content-Length: body.len()` (default: true except for GET and HEAD, like boto3).
    pub content_length: bool,
    /// Skip signing altogether (anonymous request).
    pub anonymous: bool,
}

impl Req {
    pub fn new(port: u16, method: &str, target: &str) -> Req {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        Req {
            port,
            method: method.to_string(),
            path: path.to_string(),
            query: query.to_string(),
            headers: Vec::new(),
            unsigned_headers: Vec::new(),
            body: Vec::new(),
            payload: Payload::Sha256OfBody,
            content_length: !matches!(method, "GET" | "HEAD"),
            anonymous: false,
        }
    }

    pub fn target(&self) -> String {
        if self.query.is_empty() {
            self.path.clone()
        } else {
            format!("{}?{}", self.path, self.query)
        }
    }

    pub fn body(mut self, body: &[u8]) -> Req {
        self.body = body.to_vec();
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Req {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_string()));
        self
    }

    pub fn unsigned_header(mut self, name: &str, value: &str) -> Req {
        self.unsigned_headers
            .push((name.to_string(), value.to_string()));
        self
    }

    pub fn payload(mut self, p: Payload) -> Req {
        self.payload = p;
        self
    }

    pub fn no_content_length(mut self) -> Req {
        self.content_length = false;
        self
    }

    pub fn anonymous(mut self) -> Req {
        self.anonymous = true;
        self
    }

    /// The request head (request line, headers, blank line) without the body.
    pub fn head_bytes(&self) -> Vec<u8> {
        let mut headers: Vec<(String, String)> =
            vec![("host".to_string(), format!("127.0.0.1:{}", self.port))];
        headers.extend(self.headers.iter().cloned());
        if !self.anonymous {
            let payload_hash = match &self.payload {
                Payload::Sha256OfBody => sha256_hex(&self.body),
                Payload::Unsigned => "UNSIGNED-PAYLOAD".to_string(),
                Payload::Literal(s) => s.clone(),
            };
            sign_headers(
                &creds(),
                &self.method,
                &self.path,
                &self.query,
                &mut headers,
                &payload_hash,
                SystemTime::now(),
                REGION,
            );
        }
        let mut out = format!("{} {} HTTP/1.1\r\n", self.method, self.target()).into_bytes();
        for (n, v) in headers.iter().chain(self.unsigned_headers.iter()) {
            out.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
        }
        if self.content_length {
            out.extend_from_slice(format!("content-length: {}\r\n", self.body.len()).as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out
    }

    /// Head and body as raw bytes.
    pub fn build(&self) -> Vec<u8> {
        let mut out = self.head_bytes();
        out.extend_from_slice(&self.body);
        out
    }
}

/// Encodes `data` as an HTTP/1.1 chunked body with the given chunk sizes (the last size repeats
/// until the data is used up), then the terminating zero chunk and an empty trailer section.
pub fn chunked_encode(data: &[u8], sizes: &[usize]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 64 * sizes.len() + 16);
    let mut off = 0;
    let mut i = 0;
    while off < data.len() {
        let size = sizes[i.min(sizes.len() - 1)].max(1).min(data.len() - off);
        out.extend_from_slice(format!("{size:x}\r\n").as_bytes());
        out.extend_from_slice(&data[off..off + size]);
        out.extend_from_slice(b"\r\n");
        off += size;
        i += 1;
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

// ------------------------------------------------------------------------------------------
// Raw HTTP/1.1 client
// ------------------------------------------------------------------------------------------

/// One parsed HTTP response.
#[derive(Clone, Debug)]
pub struct Response {
    /// The status line exactly as received (without CRLF).
    pub status_line: String,
    pub status: u16,
    pub reason: String,
    /// (lowercase name, value) in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn header_count(&self, name: &str) -> usize {
        let name = name.to_ascii_lowercase();
        self.headers.iter().filter(|(n, _)| *n == name).count()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The `<Code>` of an `<Error>` body.
    pub fn error_code(&self) -> Option<String> {
        let t = self.text();
        if !t.contains("<Error>") {
            return None;
        }
        xml_first(&t, "Code")
    }

    /// The ETag without quotes.
    pub fn etag(&self) -> Option<String> {
        self.header("etag").map(|e| e.trim_matches('"').to_string())
    }

    pub fn closes(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }

    /// Short description for assertion messages (status, headers, up to 600 body bytes).
    pub fn describe(&self) -> String {
        let body = if self.body.len() > 600 {
            format!(
                "{}... ({} bytes)",
                String::from_utf8_lossy(&self.body[..600]),
                self.body.len()
            )
        } else {
            self.text()
        };
        format!(
            "HTTP {} {} {:?} body: {}",
            self.status, self.reason, self.headers, body
        )
    }

    /// Asserts an S3 error response: status, `<Error>` XML with this code.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{}", self.describe());
        assert!(
            self.text().contains("<Error>"),
            "error body is not S3 XML: {}",
            self.describe()
        );
        assert_eq!(
            self.error_code().as_deref(),
            Some(code),
            "{}",
            self.describe()
        );
    }
}

/// First `<tag>text</tag>` in `xml` (no nesting awareness; fine for S3's flat documents).
pub fn xml_first(xml: &str, tag: &str) -> Option<String> {
    xml_all(xml, tag).into_iter().next()
}

/// Every `<tag>text</tag>` in `xml`, in order.
pub fn xml_all(xml: &str, tag: &str) -> Vec<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let Some(j) = after.find(&close) else { break };
        out.push(xml_unescape(&after[..j]));
        rest = &after[j + close.len()..];
    }
    out
}

fn xml_unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// A client connection with its own read buffer (so pipelined responses are not lost).
pub struct Conn {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    pub fn connect(port: u16) -> Conn {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the server");
        stream.set_nodelay(true).unwrap();
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        Conn {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn set_read_timeout(&self, t: Duration) {
        self.stream.set_read_timeout(Some(t)).unwrap();
    }

    /// Writes all of `bytes` in one `write_all`.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write to the server");
        self.stream.flush().unwrap();
    }

    /// Like `send` but returns the error instead of panicking.
    pub fn try_send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    pub fn shutdown_write(&self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }

    /// Bytes received but not yet consumed by a parsed response.
    pub fn buffered(&self) -> &[u8] {
        &self.buf
    }

    /// Reads more bytes into the buffer; returns how many (0 = EOF).
    fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 64 * 1024];
        let n = self.stream.read(&mut chunk)?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// Reads the next response (a `1xx` interim response is returned as such). `is_head`: the
    /// request was HEAD, so no body follows whatever Content-Length says. Panics if a non-1xx
    /// response lacks `x-amz-request-id`.
    pub fn read_response(&mut self, is_head: bool) -> io::Result<Response> {
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            if self.buf.len() > 1024 * 1024 {
                return Err(io::Error::other("response head too large"));
            }
            if self.fill()? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "connection closed before a complete response head (got {:?})",
                        String::from_utf8_lossy(&self.buf)
                    ),
                ));
            }
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end - 4]).into_owned();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default().to_string();
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or_default();
        if !version.starts_with("HTTP/1.") {
            return Err(io::Error::other(format!("bad status line {status_line:?}")));
        }
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| io::Error::other(format!("bad status line {status_line:?}")))?;
        let reason = parts.next().unwrap_or_default().to_string();
        let mut headers = Vec::new();
        for line in lines {
            let (n, v) = line
                .split_once(':')
                .ok_or_else(|| io::Error::other(format!("bad header line {line:?}")))?;
            headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
        self.buf.drain(..head_end);
        let mut resp = Response {
            status_line: status_line.clone(),
            status,
            reason,
            headers,
            body: Vec::new(),
        };
        if (100..200).contains(&status) {
            return Ok(resp);
        }
        assert!(
            resp.header("x-amz-request-id")
                .is_some_and(|v| !v.is_empty()),
            "response without x-amz-request-id: {}",
            resp.describe()
        );
        let no_body = is_head || status == 204 || status == 304;
        if no_body {
            return Ok(resp);
        }
        match resp.header("content-length") {
            Some(cl) => {
                let len: usize = cl
                    .parse()
                    .map_err(|_| io::Error::other(format!("bad Content-Length {cl:?}")))?;
                while self.buf.len() < len {
                    if self.fill()? == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!(
                                "connection closed after {} of {len} body bytes",
                                self.buf.len()
                            ),
                        ));
                    }
                }
                resp.body = self.buf.drain(..len).collect();
            }
            None => {
                // No length: the body runs to the end of the connection.
                while self.fill()? > 0 {}
                resp.body = std::mem::take(&mut self.buf);
            }
        }
        Ok(resp)
    }

    /// Reads responses until a final (non-1xx) one.
    pub fn read_final_response(&mut self, is_head: bool) -> io::Result<Response> {
        loop {
            let r = self.read_response(is_head)?;
            if !(100..200).contains(&r.status) {
                return Ok(r);
            }
        }
    }

    /// Sends a request and reads its final response; panics on I/O errors.
    pub fn call(&mut self, req: &Req) -> Response {
        self.send(&req.build());
        self.read_final_response(req.method == "HEAD")
            .unwrap_or_else(|e| panic!("{} {}: {e}", req.method, req.target()))
    }

    /// Whether the server has closed the connection: EOF (or reset) within `timeout` with no
    /// further bytes. Returns `Err(bytes)` if bytes arrived instead.
    pub fn wait_closed(&mut self, timeout: Duration) -> Result<bool, Vec<u8>> {
        if !self.buf.is_empty() {
            return Err(self.buf.clone());
        }
        self.set_read_timeout(timeout);
        let r = self.fill();
        self.set_read_timeout(IO_TIMEOUT);
        match r {
            Ok(0) => Ok(true),
            Ok(_) => Err(self.buf.clone()),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Ok(false)
            }
            Err(_) => Ok(true),
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

// ------------------------------------------------------------------------------------------
// Process control (crash, shutdown and disk-full tests)
// ------------------------------------------------------------------------------------------

impl Server {
    /// Process id of the running server.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Sends `sig` to the running server without waiting.
    pub fn signal(&self, sig: libc::c_int) {
        let pid = self.pid().expect("server is not running");
        send_signal(pid, sig);
    }

    /// Waits up to `timeout` for the server to exit; returns its status, or `None` (and keeps
    /// the process) if it is still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            let child = self.child.as_mut().expect("server is not running");
            if let Some(status) = child.try_wait().expect("wait for the server") {
                self.child = None;
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// `kill -9`: SIGKILL, then reap the process. Returns its exit status.
    pub fn kill9(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("server is not running");
        send_signal(child.id(), libc::SIGKILL);
        child.wait().expect("wait for the killed server")
    }
}

impl Conn {
    /// Like [`Conn::connect`] but returns the error instead of panicking.
    pub fn try_connect(port: u16) -> io::Result<Conn> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        Ok(Conn {
            stream,
            buf: Vec::new(),
        })
    }
}

/// The key recorded in the header of the object file at `path` (see README, on-disk format:
/// magic, version, header length, record length, CRC, then the record, which starts with the
/// length-prefixed key), or `None` if the file is not an object file.
pub fn object_file_key(path: &Path) -> Option<String> {
    let bytes = std::fs::read(path).ok()?;
    if bytes.get(0..8)? != b"RINGOBJ\0" {
        return None;
    }
    let len = u32::from_le_bytes(bytes.get(24..28)?.try_into().ok()?) as usize;
    String::from_utf8(bytes.get(28..28 + len)?.to_vec()).ok()
}

/// Names of the entries of `dir` (empty when it does not exist).
pub fn dir_entries(dir: &Path) -> Vec<String> {
    match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

// ------------------------------------------------------------------------------------------
// Helpers added for tests/hostile_http.rs
// ------------------------------------------------------------------------------------------

impl Server {
    /// Starts a server like [`Server::start_with_cores`] with extra `ringstore serve` flags
    /// (e.g. `["--max-connections", "8"]`). The flags apply to this start only: `restart` and
    /// `start_again` spawn without them.
    pub fn start_with_args(cores: usize, extra_args: &[&str]) -> Server {
        let root = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .expect("create a temp dir under CARGO_TARGET_TMPDIR");
        let data = root.path().join("data");
        let log = root.path().join("server.log");
        let mut s = Server {
            child: None,
            port: 0,
            root,
            data,
            log,
            cores,
        };
        s.spawn_with_args(extra_args);
        s
    }

    /// A server (not started) on `data`, a directory anywhere (e.g. on a test filesystem); its
    /// log goes to a temporary directory under `CARGO_TARGET_TMPDIR`. Start it with
    /// [`Server::start_again`], [`Server::start_again_with_args`] or [`Server::launch`].
    pub fn on_data_dir(data: PathBuf, cores: usize) -> Server {
        let root = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .expect("create a temp dir under CARGO_TARGET_TMPDIR");
        let log = root.path().join("server.log");
        Server {
            child: None,
            port: 0,
            root,
            data,
            log,
            cores,
        }
    }

    /// Starts a stopped server again on the same data directory with extra flags (this start
    /// only), waiting for its listening line.
    pub fn start_again_with_args(&mut self, extra_args: &[&str]) {
        self.spawn_with_args(extra_args);
    }

    /// The temporary directory holding the server log (and the data directory, unless it was
    /// given to [`Server::on_data_dir`]).
    pub fn root_dir(&self) -> &Path {
        self.root.path()
    }
}

/// Every entry under `dir` that is not a directory (files, symlinks, ...), recursively, without
/// following symlinks. Empty when `dir` does not exist.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in rd.filter_map(|e| e.ok()) {
            let path = entry.path();
            match std::fs::symlink_metadata(&path) {
                Ok(m) if m.is_dir() => stack.push(path),
                _ => out.push(path),
            }
        }
    }
    out.sort();
    out
}

/// How the server reacted to a (hostile) request.
#[derive(Debug)]
pub enum Outcome {
    /// A final response.
    Answered(Response),
    /// The connection was closed or reset before a complete response arrived.
    Closed(String),
}

impl Conn {
    /// The next final response, or [`Outcome::Closed`] if the server closed or reset the
    /// connection first. Panics if neither happens within the read timeout.
    pub fn response_or_closed(&mut self, is_head: bool) -> Outcome {
        match self.read_final_response(is_head) {
            Ok(r) => Outcome::Answered(r),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::UnexpectedEof
                        | io::ErrorKind::ConnectionReset
                        | io::ErrorKind::ConnectionAborted
                        | io::ErrorKind::BrokenPipe
                ) =>
            {
                Outcome::Closed(e.to_string())
            }
            Err(e) => panic!("neither a response nor a closed connection: {e}"),
        }
    }
}

/// Sends signal `sig` (a libc signal number) to process `pid`; a process already gone is fine.
pub fn send_signal(pid: u32, sig: libc::c_int) {
    let signal = nix::sys::signal::Signal::try_from(sig).expect("a valid signal number");
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal);
}

/// (segments whose second header slot was ever written, i.e. reused at least once; segments).
pub fn reused_segments(log_dir: &std::path::Path) -> (usize, usize) {
    const SECOND_SLOT_OFFSET: usize = 32 * 1024;
    let mut reused = 0;
    let mut total = 0;
    for entry in std::fs::read_dir(log_dir).expect("log dir") {
        let bytes = std::fs::read(entry.expect("entry").path()).expect("segment");
        total += 1;
        if bytes.get(SECOND_SLOT_OFFSET..SECOND_SLOT_OFFSET + 8) == Some(&b"RSLOGSEG"[..]) {
            reused += 1;
        }
    }
    (reused, total)
}
