//! Hostile clients against the real binary over raw sockets: malformed request lines and
//! headers, ambiguous body framing, bodies longer or shorter than announced, clients vanishing
//! mid-body, oversized heads, slowloris, connection floods, hostile bucket names, keys,
//! metadata and XML bodies, presigned-URL replay, and secrets in the log.
//!
//! Every case asserts a clean outcome (an S3 error response with a 4xx/5xx status, or a closed
//! connection) AND that the server still serves a normal signed request afterwards.
//!
//! Runtime: `slowloris_is_cut_off_at_the_head_deadline` waits for the server's 30 s head
//! deadline (`HEAD_DEADLINE` in src/http/conn.rs) and takes about 31 s; the other tests run in
//! parallel with it.

mod common;

use common::*;
use ringstore::auth::presign_url;
use ringstore::s3::bucket_name::validate_bucket_name;
use std::time::{Duration, Instant, SystemTime};

/// The server's head deadline (src/http/conn.rs `HEAD_DEADLINE`).
const HEAD_DEADLINE: Duration = Duration::from_secs(30);

/// Asserts the server still answers a signed ListBuckets on a new connection.
#[track_caller]
fn assert_alive(s: &Server) {
    let r = s.call(&s.req("GET", "/"));
    assert_eq!(r.status, 200, "server not usable: {}", r.describe());
    assert!(
        r.text().contains("<ListAllMyBucketsResult"),
        "{}",
        r.describe()
    );
}

/// Asserts `bucket/key` does not exist.
#[track_caller]
fn assert_absent(s: &Server, bucket: &str, key: &str) {
    s.get(bucket, key).assert_error(404, "NoSuchKey");
}

/// Polls up to 5 s for `<data>/tmp` to hold no staging files.
#[track_caller]
fn assert_no_staging_left(s: &Server, what: &str) {
    let clean = poll_until(Duration::from_secs(5), || s.staging_files().is_empty());
    assert!(
        clean,
        "{what}: staging files left in {} after 5 s: {:?}",
        s.tmp_dir().display(),
        s.staging_files()
    );
}

/// Checks a rejection: an S3 XML error with a 4xx/5xx status, or a closed connection. When the
/// server answered with `Connection: close`, the connection must then really close. Returns the
/// response, if any.
#[track_caller]
fn assert_rejected(c: &mut Conn, what: &str, is_head: bool) -> Option<Response> {
    let outcome = match c.read_final_response(is_head) {
        Ok(r) => Outcome::Answered(r),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::UnexpectedEof
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
            ) =>
        {
            Outcome::Closed(e.to_string())
        }
        Err(e) => panic!("{what}: neither a response nor a closed connection: {e}"),
    };
    match outcome {
        Outcome::Closed(_) => None,
        Outcome::Answered(r) => {
            assert!(
                (400..600).contains(&r.status),
                "{what}: expected a 4xx/5xx, got {}",
                r.describe()
            );
            if !is_head {
                assert!(
                    r.error_code().is_some(),
                    "{what}: error without S3 XML: {}",
                    r.describe()
                );
            }
            if r.closes() {
                assert_closed(c, what);
            }
            Some(r)
        }
    }
}

/// Asserts the server closes `c` (EOF or reset within 5 s, no further bytes).
#[track_caller]
fn assert_closed(c: &mut Conn, what: &str) {
    match c.wait_closed(Duration::from_secs(5)) {
        Ok(true) => {}
        Ok(false) => panic!("{what}: connection still open 5 s after the error response"),
        Err(bytes) => panic!(
            "{what}: unexpected bytes after the error response: {:?}",
            String::from_utf8_lossy(&bytes)
        ),
    }
}

/// Sends raw bytes on a new connection (a write error is fine: the server may answer and close
/// before reading everything) and checks the rejection; then checks the server is alive.
#[track_caller]
fn send_hostile(s: &Server, what: &str, bytes: &[u8]) -> Option<Response> {
    let mut c = s.connect();
    c.set_read_timeout(Duration::from_secs(5));
    let _ = c.try_send(bytes);
    let r = assert_rejected(&mut c, what, false);
    match &r {
        Some(r) => eprintln!("{what}: {} {:?}", r.status, r.error_code()),
        None => eprintln!("{what}: connection closed without a response"),
    }
    drop(c);
    assert_alive(s);
    r
}

/// Asserts that every file under DATA is where the documented layout puts it and that nothing
/// appeared next to DATA.
#[track_caller]
fn assert_data_layout(s: &Server) {
    let data = s.data_dir();
    for path in files_under(data) {
        let rel = path.strip_prefix(data).unwrap();
        let parts: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        let is_hex32 = |s: &str| s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit());
        let is_hex16 = |s: &str| s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit());
        let ok = match parts.as_slice() {
            ["ringstore.format"] => true,
            ["tmp", _] => true,
            ["buckets", b, "bucket.meta"] => validate_bucket_name(b).is_ok(),
            ["buckets", b, "objects", o] => {
                validate_bucket_name(b).is_ok() && o.strip_prefix("o-").is_some_and(is_hex16)
            }
            // (A `.tmp` is a segment being created: the reserve is made in the background.)
            ["log", seg] => seg
                .strip_prefix("seg-")
                .map(|s| s.strip_suffix(".tmp").unwrap_or(s))
                .is_some_and(is_hex16),
            ["buckets", b, "uploads", u, f] => {
                validate_bucket_name(b).is_ok()
                    && is_hex32(u)
                    && (*f == "upload.meta"
                        || f.strip_prefix("part-")
                            .is_some_and(|n| n.parse::<u32>().is_ok()))
            }
            _ => false,
        };
        assert!(
            ok,
            "unexpected file in the data directory: {}",
            path.display()
        );
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(meta.is_file(), "not a regular file: {}", path.display());
    }
    let mut beside: Vec<String> = std::fs::read_dir(s.root_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    beside.sort();
    assert_eq!(
        beside,
        ["data", "server.log"],
        "files appeared next to the data directory"
    );
}

/// Flips the last hex digit of the `Signature=` in a raw request.
fn corrupt_signature(wire: &mut [u8]) {
    let text = String::from_utf8_lossy(wire).into_owned();
    let at = text.find("Signature=").expect("signed request") + "Signature=".len() + 63;
    wire[at] = if wire[at] == b'0' { b'1' } else { b'0' };
}

/// Every key of a bucket via ListObjectsV2 with `encoding-type=url` (so control characters
/// survive the XML), decoded.
fn list_keys_url(s: &Server, bucket: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut target = format!("/{bucket}?list-type=2&encoding-type=url");
        if let Some(t) = &token {
            target.push_str(&format!("&continuation-token={}", uri_encode(t)));
        }
        let r = s.call(&s.req("GET", &target));
        assert_eq!(r.status, 200, "list {bucket}: {}", r.describe());
        let xml = r.text();
        for k in xml_all(&xml, "Key") {
            keys.push(ringstore::http::percent::percent_decode(&k).expect("url-encoded key"));
        }
        match xml_first(&xml, "NextContinuationToken") {
            Some(t) if xml_first(&xml, "IsTruncated").as_deref() == Some("true") => token = Some(t),
            _ => return keys,
        }
    }
}

// =============================================================================================
// Malformed request heads
// =============================================================================================

#[test]
fn malformed_request_lines_and_headers() {
    let s = Server::start();
    let huge_method_ok = format!("{} / HTTP/1.1\r\nHost: x\r\n\r\n", "A".repeat(60 * 1024));
    let huge_method_over = format!("{} / HTTP/1.1\r\nHost: x\r\n\r\n", "A".repeat(70 * 1024));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "NUL in the target",
            b"GET /a\0b HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        ),
        (
            "NUL in the method",
            b"G\0T / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        ),
        (
            "NUL in a header value",
            b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n".to_vec(),
        ),
        (
            "NUL in a header name",
            b"GET / HTTP/1.1\r\nHost: x\r\nX\0A: b\r\n\r\n".to_vec(),
        ),
        (
            "bare LF line endings",
            b"GET / HTTP/1.1\nHost: x\n\n".to_vec(),
        ),
        (
            "bare CR line endings",
            b"GET / HTTP/1.1\rHost: x\r\r".to_vec(),
        ),
        (
            "header without colon",
            b"GET / HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n".to_vec(),
        ),
        (
            "space before colon",
            b"GET / HTTP/1.1\r\nHost : x\r\n\r\n".to_vec(),
        ),
        (
            "empty header name",
            b"GET / HTTP/1.1\r\n: x\r\n\r\n".to_vec(),
        ),
        (
            "obs-fold continuation line",
            b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n  folded\r\n\r\n".to_vec(),
        ),
        (
            "obs-fold with tab",
            b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n\tfolded\r\n\r\n".to_vec(),
        ),
        (
            "non-UTF-8 header value",
            b"GET / HTTP/1.1\r\nHost: x\r\nX-A: \xff\xfe\xc3\x28\r\n\r\n".to_vec(),
        ),
        (
            "non-UTF-8 target",
            b"GET /\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        ),
        (
            "control byte in target",
            b"GET /a\x01b HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        ),
        (
            "space in target",
            b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        ),
        (
            "huge method under the head limit",
            huge_method_ok.into_bytes(),
        ),
        (
            "huge method over the head limit",
            huge_method_over.into_bytes(),
        ),
        (
            "absolute-form target, anonymous",
            b"GET http://127.0.0.1/ HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        ),
        (
            "asterisk-form OPTIONS",
            b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        ),
        (
            "asterisk-form GET",
            b"GET * HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        ),
        (
            "authority-form CONNECT",
            b"CONNECT 127.0.0.1:80 HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        ),
        (
            "HTTP/2 preface",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec(),
        ),
        (
            "unknown version",
            b"GET / HTTP/1.7\r\nHost: x\r\n\r\n".to_vec(),
        ),
        (
            "lowercase method",
            b"get / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        ),
        (
            "request line only garbage",
            b"\x00\x01\x02\x03\r\n\r\n".to_vec(),
        ),
    ];
    for (what, bytes) in cases {
        send_hostile(&s, what, &bytes);
    }
    // The connection after a malformed head is not reused: a valid request pipelined behind a
    // malformed one is never answered.
    let mut wire = b"GET / HTTP/1.1\r\nHost : x\r\n\r\n".to_vec();
    wire.extend(s.req("GET", "/").build());
    let mut c = s.connect();
    c.send(&wire);
    let r = assert_rejected(&mut c, "malformed head followed by a valid one", false);
    if let Some(r) = r {
        assert_eq!(r.status, 400, "{}", r.describe());
        assert_closed(&mut c, "after a malformed head");
    }
    assert_alive(&s);
}

#[test]
fn absolute_form_signed_request_is_served_like_origin_form() {
    let s = Server::start();
    let mut wire = s.req("GET", "/").build();
    let prefix = b"GET / ";
    assert!(wire.starts_with(prefix));
    let absolute = format!("GET http://{}/ ", s.host());
    wire.splice(..prefix.len(), absolute.bytes());
    let mut c = s.connect();
    c.send(&wire);
    let r = c.read_final_response(false).expect("response");
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_alive(&s);
}

// =============================================================================================
// Body framing
// =============================================================================================

#[test]
fn invalid_body_framing_is_rejected() {
    let s = Server::start();
    s.create_bucket("framing");
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a [u8], u16);
    let chunked = ("Transfer-Encoding", "chunked");
    let cases: Vec<Case> = vec![
        (
            "duplicate identical Content-Length",
            vec![("Content-Length", "5"), ("Content-Length", "5")],
            b"hello",
            400,
        ),
        (
            "conflicting Content-Length",
            vec![("Content-Length", "5"), ("Content-Length", "6")],
            b"hello!",
            400,
        ),
        (
            "Content-Length list",
            vec![("Content-Length", "5, 5")],
            b"hello",
            400,
        ),
        (
            "Content-Length with sign",
            vec![("Content-Length", "+5")],
            b"hello",
            400,
        ),
        (
            "Content-Length in hex",
            vec![("Content-Length", "0x5")],
            b"hello",
            400,
        ),
        (
            "Content-Length overflowing u64",
            vec![("Content-Length", "18446744073709551616")],
            b"hello",
            400,
        ),
        (
            "Content-Length and Transfer-Encoding",
            vec![("Content-Length", "5"), chunked],
            b"5\r\nhello\r\n0\r\n\r\n",
            400,
        ),
        (
            "Transfer-Encoding gzip, chunked",
            vec![("Transfer-Encoding", "gzip, chunked")],
            b"5\r\nhello\r\n0\r\n\r\n",
            501,
        ),
        (
            "Transfer-Encoding chunked, chunked",
            vec![("Transfer-Encoding", "chunked, chunked")],
            b"5\r\nhello\r\n0\r\n\r\n",
            501,
        ),
        (
            "two Transfer-Encoding: chunked headers",
            vec![chunked, chunked],
            b"5\r\nhello\r\n0\r\n\r\n",
            501,
        ),
        (
            "Transfer-Encoding identity",
            vec![("Transfer-Encoding", "identity")],
            b"hello",
            501,
        ),
        (
            "chunk size overflowing u64",
            vec![chunked],
            b"ffffffffffffffffffff\r\nhello\r\n0\r\n\r\n",
            400,
        ),
        (
            "chunk size 2^64 + 5",
            vec![chunked],
            b"10000000000000005\r\nhello\r\n0\r\n\r\n",
            400,
        ),
        (
            "negative chunk size",
            vec![chunked],
            b"-5\r\nhello\r\n0\r\n\r\n",
            400,
        ),
        (
            "non-hex chunk size",
            vec![chunked],
            b"zz\r\nhello\r\n0\r\n\r\n",
            400,
        ),
        (
            "0x chunk size",
            vec![chunked],
            b"0x5\r\nhello\r\n0\r\n\r\n",
            400,
        ),
        (
            "empty chunk size",
            vec![chunked],
            b"\r\nhello\r\n0\r\n\r\n",
            400,
        ),
        (
            "chunk longer than its size",
            vec![chunked],
            b"3\r\nhello\r\n0\r\n\r\n",
            400,
        ),
        (
            "chunk data not followed by CRLF",
            vec![chunked],
            b"5\r\nhelloXX0\r\n\r\n",
            400,
        ),
    ];
    for (i, (what, headers, body, status)) in cases.into_iter().enumerate() {
        let key = format!("k{i}");
        let mut req = s
            .req("PUT", &format!("/framing/{key}"))
            .payload(Payload::Unsigned)
            .no_content_length();
        for (n, v) in &headers {
            req = req.unsigned_header(n, v);
        }
        let mut wire = req.head_bytes();
        wire.extend_from_slice(body);
        let mut c = s.connect();
        c.set_read_timeout(Duration::from_secs(5));
        c.send(&wire);
        let r = assert_rejected(&mut c, what, false);
        if let Some(r) = r {
            assert_eq!(r.status, status, "{what}: {}", r.describe());
            // RFC 9112 6.3: the stream position is unknown after such a request; close.
            assert_closed(&mut c, what);
        }
        assert_absent(&s, "framing", &key);
        assert_alive(&s);
    }
    assert_no_staging_left(&s, "framing");
}

#[test]
fn body_longer_than_content_length_is_the_next_request() {
    let s = Server::start();
    s.create_bucket("longer");
    let extra = b"SMUGGLED-BYTES that are not HTTP\r\n\r\n";
    let mut wire = s.req("PUT", "/longer/obj").body(b"hello").build();
    wire.extend_from_slice(extra);
    let mut c = s.connect();
    c.set_read_timeout(Duration::from_secs(5));
    c.send(&wire);
    let put = c.read_final_response(false).expect("PUT response");
    assert_eq!(put.status, 200, "{}", put.describe());
    assert_eq!(put.etag().as_deref(), Some(md5_hex(b"hello").as_str()));
    // The extra bytes are parsed as the next request head: malformed -> 400, then closed.
    let next = assert_rejected(&mut c, "bytes after the body", false)
        .expect("an error response to the bytes after the body");
    assert_eq!(next.status, 400, "{}", next.describe());
    assert_closed(&mut c, "bytes after the body");
    let get = s.get("longer", "obj");
    assert_eq!(get.status, 200, "{}", get.describe());
    assert_eq!(get.body, b"hello", "extra bytes were stored in the object");

    // Extra bytes that look like a request smuggled behind the body: answered separately (it is
    // anonymous here, so 403), never merged into the object.
    let mut wire = s.req("PUT", "/longer/obj2").body(b"world").build();
    wire.extend_from_slice(b"DELETE /longer/obj HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut c = s.connect();
    c.send(&wire);
    let put = c.read_final_response(false).expect("PUT response");
    assert_eq!(put.status, 200, "{}", put.describe());
    let smuggled = assert_rejected(&mut c, "smuggled anonymous DELETE", false)
        .expect("a response to the smuggled request");
    smuggled.assert_error(403, "AccessDenied");
    assert_eq!(s.get("longer", "obj2").body, b"world");
    assert_eq!(s.get("longer", "obj").body, b"hello");
    assert_alive(&s);
}

/// A request refused before its body is read, whose declared body is larger than the server
/// would ever drain (1 MiB): the error must come back at once, not after the client sent a body
/// the server does not want (or after the 60 s idle timeout when the client waits).
#[test]
fn oversized_declared_body_is_answered_without_waiting_for_it() {
    let s = Server::start();
    s.create_bucket("huge");
    let signed = |cl: &str| {
        let mut wire = s
            .req("PUT", "/huge/obj")
            .payload(Payload::Unsigned)
            .no_content_length()
            .unsigned_header("Content-Length", cl)
            .head_bytes();
        wire.extend_from_slice(b"hello");
        wire
    };
    let anonymous = format!(
        "PUT /huge/anon HTTP/1.1\r\nHost: {}\r\nContent-Length: 2097152\r\n\r\nhello",
        s.host()
    );
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "Content-Length of 10^19 bytes",
            signed("9999999999999999999"),
            "EntityTooLarge",
        ),
        (
            "Content-Length of 6 GiB",
            signed("6442450944"),
            "EntityTooLarge",
        ),
        (
            "anonymous PUT declaring 2 MiB",
            anonymous.into_bytes(),
            "AccessDenied",
        ),
    ];
    for (what, wire, code) in cases {
        let mut c = s.connect();
        c.set_read_timeout(Duration::from_secs(5));
        c.send(&wire);
        let started = Instant::now();
        let r = assert_rejected(&mut c, what, false);
        assert!(started.elapsed() < Duration::from_secs(5), "{what}");
        if let Some(r) = r {
            assert_eq!(
                r.error_code().as_deref(),
                Some(code),
                "{what}: {}",
                r.describe()
            );
        }
        assert_absent(&s, "huge", "obj");
        assert_alive(&s);
    }
}

#[test]
fn body_shorter_than_content_length_then_close_stores_nothing() {
    let s = Server::start();
    s.create_bucket("shorter");
    for (i, (declared, sent)) in [(1000usize, 10usize), (300_000, 150_000), (5, 0)]
        .into_iter()
        .enumerate()
    {
        let key = format!("k{i}");
        let body = random_bytes(declared, 100 + i as u64);
        let req = s.req("PUT", &format!("/shorter/{key}")).body(&body);
        let mut c = s.connect();
        c.send(&req.head_bytes());
        c.send(&body[..sent]);
        c.shutdown_write();
        if let Some(r) = assert_rejected(&mut c, "short body", false) {
            r.assert_error(400, "IncompleteBody");
        }
        assert_absent(&s, "shorter", &key);
    }
    assert_no_staging_left(&s, "short bodies");
    assert_alive(&s);
}

/// Closes the connection with an RST (SO_LINGER 0), as a crashed client would.
fn vanish(c: Conn) {
    let sock = socket2::SockRef::from(&c.stream);
    sock.set_linger(Some(Duration::ZERO)).unwrap();
    drop(c);
}

#[test]
fn client_vanishing_mid_body_leaves_nothing() {
    let s = Server::start();
    s.create_bucket("vanish");
    let total = 8 << 20;
    let body = random_bytes(total, 7);

    // Content-Length body: 3 MiB of 8 MiB sent, then the client is gone.
    let req = s.req("PUT", "/vanish/cl").body(&body);
    let mut c = s.connect();
    c.send(&req.head_bytes());
    c.send(&body[..3 << 20]);
    let staged = poll_until(Duration::from_secs(5), || !s.staging_files().is_empty());
    assert!(staged, "no staging file appeared while the body streamed");
    vanish(c);
    assert_no_staging_left(&s, "vanished Content-Length upload");
    assert_absent(&s, "vanish", "cl");

    // Chunked body cut inside a chunk.
    let req = s
        .req("PUT", "/vanish/chunked")
        .payload(Payload::Unsigned)
        .no_content_length()
        .unsigned_header("Transfer-Encoding", "chunked");
    let encoded = chunked_encode(&body, &[1 << 20]);
    let mut c = s.connect();
    c.send(&req.head_bytes());
    c.send(&encoded[..(2 << 20) + 12345]);
    vanish(c);
    assert_no_staging_left(&s, "vanished chunked upload");
    assert_absent(&s, "vanish", "chunked");

    // Waiting for 100 Continue, then gone without a body byte.
    let req = s
        .req("PUT", "/vanish/expect")
        .body(&body)
        .unsigned_header("Expect", "100-continue");
    let mut c = s.connect();
    c.send(&req.head_bytes());
    let interim = c.read_response(false).expect("100 Continue");
    assert_eq!(interim.status, 100, "{}", interim.describe());
    vanish(c);
    assert_no_staging_left(&s, "vanished after 100 Continue");
    assert_absent(&s, "vanish", "expect");

    // A multipart part upload cut short.
    let r = s.call(&s.req("POST", "/vanish/mp?uploads"));
    assert_eq!(r.status, 200, "{}", r.describe());
    let upload_id = xml_first(&r.text(), "UploadId").expect("UploadId");
    let req = s
        .req(
            "PUT",
            &format!("/vanish/mp?partNumber=1&uploadId={upload_id}"),
        )
        .body(&body);
    let mut c = s.connect();
    c.send(&req.head_bytes());
    c.send(&body[..1 << 20]);
    vanish(c);
    assert_no_staging_left(&s, "vanished part upload");
    let parts = s.call(&s.req("GET", &format!("/vanish/mp?uploadId={upload_id}")));
    assert_eq!(parts.status, 200, "{}", parts.describe());
    assert!(
        xml_all(&parts.text(), "PartNumber").is_empty(),
        "a part was recorded from a vanished upload: {}",
        parts.describe()
    );
    assert_eq!(s.list_keys("vanish"), Vec::<String>::new());
    assert_alive(&s);
}

// =============================================================================================
// Head size limits
// =============================================================================================

#[test]
fn oversized_heads_and_header_counts() {
    let s = Server::start();
    // A signed request carries host, x-amz-date, x-amz-content-sha256 and authorization.
    let with_fillers = |n: usize| {
        let mut req = s.req("GET", "/");
        for i in 0..n {
            req = req.unsigned_header(&format!("x-filler-{i}"), "v");
        }
        req.build()
    };
    // 128 headers in all: accepted.
    let mut c = s.connect();
    c.send(&with_fillers(124));
    let r = c.read_final_response(false).expect("response");
    assert_eq!(r.status, 200, "128 headers: {}", r.describe());
    // 129 and 200 headers: RequestHeaderSectionTooLarge.
    for n in [125, 196] {
        let what = format!("{} headers", n + 4);
        let r = send_hostile(&s, &what, &with_fillers(n));
        if let Some(r) = r {
            r.assert_error(400, "RequestHeaderSectionTooLarge");
        }
    }
    // A 100 KiB head (one huge header), and 100 KiB of many small headers.
    let mut big = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    big.resize(100 * 1024, b'b');
    big.extend_from_slice(b"\r\n\r\n");
    if let Some(r) = send_hostile(&s, "100 KiB header", &big) {
        r.assert_error(400, "RequestHeaderSectionTooLarge");
    }
    let mut many = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
    while many.len() < 100 * 1024 {
        many.extend_from_slice(format!("x-{}: {}\r\n", many.len(), "c".repeat(900)).as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    if let Some(r) = send_hostile(&s, "100 KiB of headers", &many) {
        r.assert_error(400, "RequestHeaderSectionTooLarge");
    }
    // A head that never ends, streamed past the limit.
    let mut endless = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
    while endless.len() < 200 * 1024 {
        endless.extend_from_slice(b"x-endless: 0123456789abcdef0123456789abcdef\r\n");
    }
    if let Some(r) = send_hostile(&s, "endless head", &endless) {
        r.assert_error(400, "RequestHeaderSectionTooLarge");
    }
    // A single 10 KiB header line is well within the 64 KiB limit: served normally.
    let req = s
        .req("GET", "/")
        .unsigned_header("X-Long", &"L".repeat(10 * 1024));
    let r = s.call(&req);
    assert_eq!(r.status, 200, "10 KiB header line: {}", r.describe());
    // A 10 KiB signed metadata value is MetadataTooLarge, not a framing problem.
    s.create_bucket("heads");
    let r = s.call(
        &s.req("PUT", "/heads/meta")
            .body(b"x")
            .header("x-amz-meta-long", &"m".repeat(10 * 1024)),
    );
    r.assert_error(400, "MetadataTooLarge");
    assert_alive(&s);
}

// =============================================================================================
// Slowloris
// =============================================================================================

/// Takes about 31 s: the server's head deadline is 30 s (`HEAD_DEADLINE`).
#[test]
fn slowloris_is_cut_off_at_the_head_deadline() {
    let s = Server::start();
    let slow_head: Vec<u8> = {
        let mut h = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ".to_vec();
        h.resize(1000, b's');
        h
    };
    std::thread::scope(|scope| {
        let slow = scope.spawn(|| {
            let mut c = s.connect();
            // The 500 ms read timeout paces the client: one byte, then wait for an answer.
            c.set_read_timeout(Duration::from_millis(500));
            let start = Instant::now();
            for (i, b) in slow_head.iter().enumerate() {
                if c.try_send(&[*b]).is_err() {
                    return (start.elapsed(), i, None);
                }
                match c.wait_closed(Duration::from_millis(500)) {
                    Ok(false) => {}
                    Ok(true) => return (start.elapsed(), i, None),
                    Err(_) => {
                        c.set_read_timeout(Duration::from_secs(5));
                        let r = c.response_or_closed(false);
                        return (start.elapsed(), i, Some(r));
                    }
                }
                if start.elapsed() > HEAD_DEADLINE + Duration::from_secs(10) {
                    break;
                }
            }
            (start.elapsed(), slow_head.len(), None)
        });
        // Meanwhile other clients are served normally.
        for _ in 0..3 {
            std::thread::sleep(Duration::from_secs(2));
            assert_alive(&s);
        }
        let (elapsed, sent, outcome) = slow.join().expect("slow client thread");
        assert!(
            sent < slow_head.len() && elapsed <= HEAD_DEADLINE + Duration::from_secs(10),
            "a client trickling one byte per 500 ms held its head open for {elapsed:?} ({sent} bytes)"
        );
        if let Some(Outcome::Answered(r)) = outcome {
            r.assert_error(400, "RequestTimeout");
        }
    });
    assert_alive(&s);
}

// =============================================================================================
// Connection limits
// =============================================================================================

/// Whether the server refused `c` on its own (503 SlowDown, or closed) within `wait`.
fn refused(c: &mut Conn, wait: Duration) -> bool {
    match c.wait_closed(wait) {
        Ok(false) => false,
        Ok(true) => true,
        Err(_) => {
            match c.response_or_closed(false) {
                Outcome::Answered(r) => r.assert_error(503, "SlowDown"),
                Outcome::Closed(_) => {}
            }
            true
        }
    }
}

#[test]
fn connections_over_the_limit_are_refused_one_core() {
    let s = Server::start_with_args(1, &["--max-connections", "8"]);
    let mut held: Vec<Conn> = Vec::new();
    for i in 0..8 {
        let mut c = s.connect();
        assert!(
            !refused(&mut c, Duration::from_millis(200)),
            "connection {} of 8 refused",
            i + 1
        );
        held.push(c);
    }
    for i in 9..=12 {
        let mut c = s.connect();
        assert!(
            refused(&mut c, Duration::from_secs(5)),
            "connection {i} (over --max-connections 8) was not refused"
        );
    }
    // The held connections are served.
    for c in held.iter_mut() {
        let r = c.call(&s.req("GET", "/"));
        assert_eq!(r.status, 200, "{}", r.describe());
    }
    // Closing two makes room for two new ones.
    held.truncate(6);
    for n in 0..2 {
        let served = poll_until(Duration::from_secs(5), || {
            let mut c = s.connect();
            let _ = c.try_send(&s.req("GET", "/").build());
            match c.response_or_closed(false) {
                Outcome::Answered(r) if r.status == 200 => {
                    held.push(c);
                    true
                }
                Outcome::Answered(r) => {
                    r.assert_error(503, "SlowDown");
                    false
                }
                Outcome::Closed(_) => false,
            }
        });
        assert!(served, "new connection {n} not served after closing two");
    }
    let mut c = s.connect();
    assert!(
        refused(&mut c, Duration::from_secs(5)),
        "a ninth connection was not refused"
    );
    drop(held);
    wait_served(&s);
}

/// Waits up to 5 s (for closed connections to be noticed) until a new connection is served.
#[track_caller]
fn wait_served(s: &Server) {
    let ok = poll_until(Duration::from_secs(5), || {
        let mut c = s.connect();
        let _ = c.try_send(&s.req("GET", "/").build());
        matches!(c.response_or_closed(false), Outcome::Answered(r) if r.status == 200)
    });
    assert!(ok, "new connections not served 5 s after the others closed");
    assert_alive(s);
}

/// Opens 12 connections and returns how many the server kept (did not refuse).
fn count_served(s: &Server, conns: &mut Vec<Conn>) -> usize {
    for _ in 0..12 {
        conns.push(s.connect());
    }
    std::thread::sleep(Duration::from_millis(300));
    let mut served = 0;
    for c in conns.iter_mut() {
        if !refused(c, Duration::from_millis(50)) {
            let r = c.call(&s.req("GET", "/"));
            assert_eq!(r.status, 200, "{}", r.describe());
            served += 1;
        }
    }
    served
}

#[test]
fn connections_over_the_limit_are_refused_two_cores() {
    let s = Server::start_with_args(2, &["--max-connections", "8"]);
    let mut conns = Vec::new();
    let served = count_served(&s, &mut conns);
    assert!(
        (1..=8).contains(&served),
        "--max-connections 8 on 2 cores: {served} of 12 simultaneous connections served"
    );
    drop(conns);
    wait_served(&s);
}

/// The limit is a total over all cores: with 2 cores and `--max-connections 3`, at most 3 of 12
/// simultaneous connections may be served.
#[test]
fn connection_limit_is_not_exceeded_with_an_odd_limit_on_two_cores() {
    let s = Server::start_with_args(2, &["--max-connections", "3"]);
    let mut conns = Vec::new();
    let served = count_served(&s, &mut conns);
    assert!(
        served <= 3,
        "--max-connections 3 on 2 cores: {served} of 12 simultaneous connections served"
    );
    drop(conns);
    wait_served(&s);
}

// =============================================================================================
// Hostile S3 input
// =============================================================================================

#[test]
fn hostile_bucket_names() {
    let s = Server::start();
    let long = format!("/{}", "a".repeat(64));
    for target in [
        "/a..b",
        "/..",
        "/...",
        "/%2E%2E",
        "/..%2F..%2Fescape",
        "/a%2Fb",
        "/bkt%2F..%2F..%2Fescape",
        "/MyBucket",
        "/UPPER",
        "/192.168.5.4",
        "/10.0.0.1",
        "/ab",
        "/a_b",
        "/bu%00ck",
        "/-abc",
        "/abc-",
        "/xn--abc",
        "/b%C3%BCcket",
        long.as_str(),
    ] {
        let r = s.call(&s.req("PUT", target));
        r.assert_error(400, "InvalidBucketName");
    }
    // Invalid escapes and invalid UTF-8 in the bucket part.
    for target in ["/bad%zz", "/bad%C3%28"] {
        let r = s.call(&s.req("PUT", target));
        r.assert_error(400, "InvalidArgument");
    }
    // Runs of slashes: never a bucket named by what follows them.
    for target in ["//bkt", "///bkt", "//"] {
        let mut c = s.connect();
        c.send(&s.req("PUT", target).build());
        assert_rejected(&mut c, target, false).expect("a response");
    }
    let r = s.call(&s.req("PUT", "/bkt//"));
    r.assert_error(404, "NoSuchBucket");
    let list = s.call(&s.req("GET", "/"));
    assert_eq!(list.status, 200, "{}", list.describe());
    assert_eq!(
        xml_all(&list.text(), "Name"),
        Vec::<String>::new(),
        "buckets were created: {}",
        list.describe()
    );
    assert_data_layout(&s);
    assert_alive(&s);
}

#[test]
fn hostile_keys_and_metadata() {
    let s = Server::start();
    s.create_bucket("hostile");
    // Accepted keys: path-like, control characters, 1024 bytes. Stored under hashed names.
    let long_ok = "k".repeat(1024);
    let accepted: Vec<(&str, String)> = vec![
        ("/hostile/..%2F..%2Fescape", "../../escape".to_string()),
        ("/hostile/../../escape2", "../../escape2".to_string()),
        ("/hostile/%2Fabs%2Fpath", "/abs/path".to_string()),
        ("/hostile/a/../../../b", "a/../../../b".to_string()),
        (
            "/hostile/%01%02%1F%7F",
            "\u{1}\u{2}\u{1f}\u{7f}".to_string(),
        ),
        ("/hostile/%0D%0Aheader", "\r\nheader".to_string()),
        ("/hostile/.", ".".to_string()),
        ("/hostile/..", "..".to_string()),
    ];
    let mut stored = Vec::new();
    for (i, (target, key)) in accepted.iter().enumerate() {
        let body = format!("body {i}");
        let r = s.call(&s.req("PUT", target).body(body.as_bytes()));
        assert_eq!(r.status, 200, "PUT {target}: {}", r.describe());
        let g = s.call(&s.req("GET", target));
        assert_eq!(g.status, 200, "GET {target}: {}", g.describe());
        assert_eq!(g.text(), body, "GET {target}");
        stored.push(key.clone());
    }
    let r = s.put("hostile", &long_ok, b"long", &[]);
    assert_eq!(r.status, 200, "1024-byte key: {}", r.describe());
    stored.push(long_ok);
    // Rejected keys.
    let long_bad = "k".repeat(1025);
    let long_multibyte = "%C3%A9".repeat(513);
    let rejected: Vec<(String, &str)> = vec![
        ("/hostile/a%00b".into(), "InvalidArgument"),
        ("/hostile/%00".into(), "InvalidArgument"),
        ("/hostile/%C3%28".into(), "InvalidArgument"),
        ("/hostile/%FF%FE".into(), "InvalidArgument"),
        ("/hostile/%ED%A0%80".into(), "InvalidArgument"),
        ("/hostile/bad%zz".into(), "InvalidArgument"),
        ("/hostile/bad%".into(), "InvalidArgument"),
        (format!("/hostile/{long_bad}"), "KeyTooLongError"),
        (format!("/hostile/{long_multibyte}"), "KeyTooLongError"),
    ];
    for (target, code) in &rejected {
        let r = s.call(&s.req("PUT", target).body(b"x"));
        r.assert_error(400, code);
        let r = s.call(&s.req("GET", target));
        assert_eq!(r.status, 400, "GET {target}: {}", r.describe());
    }
    // A raw control byte in the request line is a malformed head.
    let mut wire = s.req("PUT", "/hostile/ctl").body(b"x").build();
    let at = wire.iter().position(|&b| b == b'l').unwrap() + 1;
    wire.insert(at, 0x01);
    send_hostile(&s, "raw control byte in the key", &wire);

    // Metadata: 2 KiB in total (names without the prefix plus values) is the limit.
    let exactly = "v".repeat(2047);
    let r = s.put(
        "hostile",
        "meta-ok",
        b"m",
        &[("x-amz-meta-a", exactly.as_str())],
    );
    assert_eq!(r.status, 200, "2048 bytes of metadata: {}", r.describe());
    let over = "v".repeat(2048);
    let r = s.put(
        "hostile",
        "meta-big",
        b"m",
        &[("x-amz-meta-a", over.as_str())],
    );
    r.assert_error(400, "MetadataTooLarge");
    let chunk = "w".repeat(200);
    let mut req = s.req("PUT", "/hostile/meta-many").body(b"m");
    for i in 0..11 {
        req = req.header(&format!("x-amz-meta-m{i:02}"), &chunk);
    }
    s.call(&req).assert_error(400, "MetadataTooLarge");
    let r = s.call(
        &s.req("POST", "/hostile/meta-mp?uploads")
            .header("x-amz-meta-a", &over),
    );
    r.assert_error(400, "MetadataTooLarge");
    assert_absent(&s, "hostile", "meta-big");
    assert_absent(&s, "hostile", "meta-many");

    stored.push("meta-ok".to_string());
    stored.sort();
    assert_eq!(list_keys_url(&s, "hostile"), stored);
    assert_no_staging_left(&s, "hostile keys");
    assert_data_layout(&s);
    assert_alive(&s);
}

/// GET, HEAD, DELETE, PUT, listing and uploads addressed through a bucket "name" holding `/`
/// and `..` must never reach another bucket's files, nor another server's data directory.
/// Every violation is collected and reported together.
#[test]
fn bucket_names_never_traverse_paths() {
    let s = Server::start();
    s.create_bucket("victim");
    s.create_bucket("mine");
    let secret = b"the victim's object";
    assert_eq!(s.put("victim", "secret", secret, &[]).status, 200);
    // A second, unrelated server instance next to this one.
    let other = Server::start();
    other.create_bucket("theirs");
    let theirs = b"another instance's object";
    assert_eq!(other.put("theirs", "secret", theirs, &[]).status, 200);
    let other_root = other
        .root_dir()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let cross = format!("..%2F..%2F..%2F{other_root}%2Fdata%2Fbuckets%2Ftheirs");

    let mut violations: Vec<String> = Vec::new();
    let buckets = [
        "..%2Fbuckets%2Fvictim",
        "mine%2F..%2Fvictim",
        "mine%2F..%2F..%2Fbuckets%2Fvictim",
        "..%2F..%2Fdata%2Fbuckets%2Fvictim",
        "victim%2F.",
        cross.as_str(),
    ];
    for bucket in buckets {
        for method in ["GET", "HEAD"] {
            let target = format!("/{bucket}/secret");
            let r = s.call(&s.req(method, &target));
            if !(400..500).contains(&r.status) || r.body == secret || r.body == theirs {
                violations.push(format!(
                    "{method} {target} -> {} {} ({} body bytes{})",
                    r.status,
                    r.reason,
                    r.body.len(),
                    if r.body == secret || r.body == theirs {
                        ", the other bucket's object"
                    } else {
                        ""
                    }
                ));
            }
        }
        let checks = [
            ("DELETE", format!("/{bucket}/secret"), &b""[..]),
            ("PUT", format!("/{bucket}/planted"), &b"x"[..]),
            ("GET", format!("/{bucket}?list-type=2"), &b""[..]),
            ("POST", format!("/{bucket}/up?uploads"), &b""[..]),
            ("GET", format!("/{bucket}?uploads"), &b""[..]),
            (
                "GET",
                format!("/{bucket}/up?uploadId={}", "0".repeat(32)),
                &b""[..],
            ),
            (
                "DELETE",
                format!("/{bucket}/up?uploadId={}", "0".repeat(32)),
                &b""[..],
            ),
            ("GET", format!("/{bucket}?location"), &b""[..]),
            ("HEAD", format!("/{bucket}"), &b""[..]),
        ];
        for (method, target, body) in checks {
            let r = s.call(&s.req(method, &target).body(body));
            if !(400..500).contains(&r.status) {
                violations.push(format!("{method} {target} -> {} {}", r.status, r.reason));
            }
        }
    }
    // Copy sources with traversal.
    for source in ["/..%2Fbuckets%2Fvictim/secret", "/../buckets/victim/secret"] {
        let r = s.call(
            &s.req("PUT", "/mine/copied")
                .header("x-amz-copy-source", source),
        );
        if !(400..500).contains(&r.status) {
            violations.push(format!("copy from {source} -> {} {}", r.status, r.reason));
        }
    }
    assert!(
        violations.is_empty(),
        "bucket names reached paths outside their bucket:\n{}",
        violations.join("\n")
    );
    let get = s.get("victim", "secret");
    assert_eq!(get.status, 200, "{}", get.describe());
    assert_eq!(get.body, secret);
    assert_eq!(s.list_keys("victim"), ["secret"]);
    assert_eq!(s.list_keys("mine"), Vec::<String>::new());
    assert_eq!(other.get("theirs", "secret").body, theirs);
    assert_data_layout(&s);
    assert_alive(&s);
}

/// Sends a signed request with `body` (which may be larger than the server accepts) and checks
/// for `code` (or a closed connection for bodies over the limit).
#[track_caller]
fn post_xml(s: &Server, target: &str, what: &str, body: &[u8], code: &str) {
    let req = s.req("POST", target).body(body);
    let mut c = s.connect();
    c.set_read_timeout(Duration::from_secs(10));
    let _ = c.try_send(&req.build());
    if let Some(r) = assert_rejected(&mut c, what, false) {
        r.assert_error(400, code);
    }
    drop(c);
    assert_alive(s);
}

fn hostile_xml_documents(root: &str, inner_ok: &str) -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let nested = format!(
        "<{root}>{}{inner_ok}{}</{root}>",
        "<a>".repeat(10_000),
        "</a>".repeat(10_000)
    );
    let laughs = format!(
        "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\"><!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">]><{root}>{}</{root}>",
        inner_ok.replace("keep", "&lol3;")
    );
    let external = format!(
        "<?xml version=\"1.0\"?><!DOCTYPE d [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><{root}>{}</{root}>",
        inner_ok.replace("keep", "&x;")
    );
    let doctype_only = format!("<!DOCTYPE {root}><{root}>{inner_ok}</{root}>");
    let undefined = format!(
        "<{root}>{}</{root}>",
        inner_ok.replace("keep", "&undefined;")
    );
    let unclosed = format!("<{root}>{inner_ok}");
    let garbage = "this is not XML at all <<<>>>".to_string();
    let wrong_root = format!("<Other>{inner_ok}</Other>");
    vec![
        ("deeply nested", nested.into_bytes(), "MalformedXML"),
        ("billion laughs", laughs.into_bytes(), "MalformedXML"),
        ("external entity", external.into_bytes(), "MalformedXML"),
        ("DOCTYPE", doctype_only.into_bytes(), "MalformedXML"),
        ("undefined entity", undefined.into_bytes(), "MalformedXML"),
        ("unclosed", unclosed.into_bytes(), "MalformedXML"),
        ("garbage", garbage.into_bytes(), "MalformedXML"),
        ("wrong root", wrong_root.into_bytes(), "MalformedXML"),
        (
            "NUL byte",
            format!("<{root}>\u{0}</{root}>").into_bytes(),
            "MalformedXML",
        ),
        ("empty", Vec::new(), "MalformedXML"),
    ]
}

#[test]
fn hostile_xml_bodies() {
    let s = Server::start();
    s.create_bucket("xml");
    assert_eq!(s.put("xml", "keep", b"keep me", &[]).status, 200);

    // DeleteObjects.
    let obj = "<Object><Key>keep</Key></Object>";
    for (what, body, code) in hostile_xml_documents("Delete", obj) {
        post_xml(&s, "/xml?delete", what, &body, code);
    }
    let mut latin1 = b"<Delete><Object><Key>".to_vec();
    latin1.extend_from_slice(b"\xe9\xff</Key></Object></Delete>");
    post_xml(&s, "/xml?delete", "latin-1 key", &latin1, "MalformedXML");
    let huge = format!("<Delete>{}</Delete>", obj.repeat((3 << 20) / obj.len()));
    post_xml(
        &s,
        "/xml?delete",
        "3 MiB body",
        huge.as_bytes(),
        "MalformedXML",
    );
    let too_many = format!(
        "<Delete>{}</Delete>",
        "<Object><Key>nokey</Key></Object>".repeat(1001)
    );
    post_xml(
        &s,
        "/xml?delete",
        "1001 keys",
        too_many.as_bytes(),
        "MalformedXML",
    );
    let get = s.get("xml", "keep");
    assert_eq!(
        get.status,
        200,
        "a hostile DeleteObjects deleted: {}",
        get.describe()
    );

    // A valid DeleteObjects still works.
    let r = s.call(
        &s.req("POST", "/xml?delete")
            .body(b"<Delete><Object><Key>absent</Key></Object></Delete>"),
    );
    assert_eq!(r.status, 200, "{}", r.describe());

    // CompleteMultipartUpload.
    let r = s.call(&s.req("POST", "/xml/mp?uploads"));
    assert_eq!(r.status, 200, "{}", r.describe());
    let upload_id = xml_first(&r.text(), "UploadId").expect("UploadId");
    let target = format!("/xml/mp?uploadId={upload_id}");
    let part = "<Part><PartNumber>1</PartNumber><ETag>keep</ETag></Part>";
    for (what, body, code) in hostile_xml_documents("CompleteMultipartUpload", part) {
        post_xml(&s, &target, what, &body, code);
    }
    let huge = format!(
        "<CompleteMultipartUpload>{}</CompleteMultipartUpload>",
        part.repeat((9 << 20) / part.len())
    );
    post_xml(&s, &target, "9 MiB body", huge.as_bytes(), "MalformedXML");
    for (what, n) in [
        ("part 0", "0"),
        ("part 10001", "10001"),
        ("part 2^40", "1099511627776"),
    ] {
        let doc = format!(
            "<CompleteMultipartUpload><Part><PartNumber>{n}</PartNumber><ETag>e</ETag></Part></CompleteMultipartUpload>"
        );
        post_xml(&s, &target, what, doc.as_bytes(), "InvalidArgument");
    }
    // The upload is still there and can be aborted.
    let r = s.call(&s.req("GET", &target));
    assert_eq!(r.status, 200, "upload lost: {}", r.describe());
    let r = s.call(&s.req("DELETE", &target));
    assert_eq!(r.status, 204, "{}", r.describe());
    assert_absent(&s, "xml", "mp");

    // CreateBucket configuration.
    for (what, body, code) in hostile_xml_documents(
        "CreateBucketConfiguration",
        "<LocationConstraint>keep</LocationConstraint>",
    ) {
        if body.is_empty() {
            continue; // an empty body is a valid CreateBucket
        }
        let req = s.req("PUT", "/xml-new").body(&body);
        let mut c = s.connect();
        let _ = c.try_send(&req.build());
        if let Some(r) = assert_rejected(&mut c, what, false) {
            r.assert_error(400, code);
        }
    }
    let r = s.call(&s.req("HEAD", "/xml-new"));
    assert_eq!(
        r.status,
        404,
        "bucket created from a hostile body: {}",
        r.describe()
    );
    assert_no_staging_left(&s, "hostile XML");
    assert_data_layout(&s);
    assert_alive(&s);
}

// =============================================================================================
// Presigned URLs
// =============================================================================================

#[test]
fn presigned_get_cannot_be_replayed_as_another_request() {
    let s = Server::start();
    s.create_bucket("pre");
    assert_eq!(s.put("pre", "obj", b"original", &[]).status, 200);
    assert_eq!(s.put("pre", "other", b"other", &[]).status, 200);
    let url = presign_url(
        &creds(),
        "GET",
        &s.host(),
        "/pre/obj",
        "",
        300,
        SystemTime::now(),
        REGION,
        &[],
    );
    let query = url.split_once('?').unwrap().1.to_string();
    let anon = |method: &str, target: &str| s.req(method, target).anonymous();

    let r = s.call(&anon("GET", &url));
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body, b"original");

    let cases: Vec<(&str, Req)> = vec![
        ("as a PUT", anon("PUT", &url).body(b"overwritten")),
        ("as a DELETE", anon("DELETE", &url)),
        ("as a POST", anon("POST", &url).body(b"")),
        (
            "for another key",
            anon("GET", &format!("/pre/other?{query}")),
        ),
        ("for a key prefix", anon("GET", &format!("/pre/ob?{query}"))),
        (
            "for another bucket",
            anon("GET", &format!("/prf/obj?{query}")),
        ),
        (
            "with an extra parameter",
            anon("GET", &format!("{url}&response-content-type=text%2Fhtml")),
        ),
        (
            "with a changed expiry",
            anon(
                "GET",
                &url.replace("X-Amz-Expires=300", "X-Amz-Expires=604800"),
            ),
        ),
    ];
    for (what, req) in cases {
        let r = s.call(&req);
        assert_eq!(r.status, 403, "presigned GET {what}: {}", r.describe());
        assert_eq!(
            r.error_code().as_deref(),
            Some("SignatureDoesNotMatch"),
            "presigned GET {what}: {}",
            r.describe()
        );
    }
    let r = s.call(&anon("HEAD", &url));
    assert_eq!(
        r.status,
        403,
        "presigned GET replayed as HEAD: {}",
        r.describe()
    );
    assert_eq!(s.get("pre", "obj").body, b"original");
    assert_eq!(s.get("pre", "other").body, b"other");
    assert_alive(&s);
}

// =============================================================================================
// Secrets
// =============================================================================================

/// SigV4 signing key for `date` (YYYYMMDD), as hex.
fn signing_key_hex(secret: &str, date: &str) -> String {
    use hmac::{Hmac, Mac};
    let mac = |key: &[u8], data: &str| {
        let mut m = Hmac::<sha2::Sha256>::new_from_slice(key).expect("any key length");
        m.update(data.as_bytes());
        m.finalize().into_bytes().to_vec()
    };
    let k = mac(format!("AWS4{secret}").as_bytes(), date);
    let k = mac(&k, REGION);
    let k = mac(&k, "s3");
    hex::encode(mac(&k, "aws4_request"))
}

#[test]
fn secrets_never_appear_in_the_log_or_responses() {
    let mut s = Server::start();
    s.create_bucket("sec");
    let mut responses: Vec<Response> = Vec::new();
    // Bad signature, with and without a body.
    for body in [&b""[..], b"some body bytes"] {
        let mut wire = s.req("PUT", "/sec/k").body(body).build();
        corrupt_signature(&mut wire);
        let mut c = s.connect();
        c.send(&wire);
        responses.push(c.read_final_response(false).expect("response"));
    }
    // Unknown access key.
    let mut wire = s.req("GET", "/sec?list-type=2").build();
    let text = String::from_utf8(wire.clone()).unwrap();
    let text = text.replace(ACCESS_KEY, "AKIDUNKNOWN000000000");
    wire = text.into_bytes();
    let mut c = s.connect();
    c.send(&wire);
    responses.push(c.read_final_response(false).expect("response"));
    // Malformed Authorization headers.
    for auth in [
        "AWS4-HMAC-SHA256 garbage",
        "AWS4-HMAC-SHA256 Credential=, SignedHeaders=, Signature=",
        "AWS ak:sig",
    ] {
        let wire = format!(
            "GET / HTTP/1.1\r\nHost: {}\r\nx-amz-date: 20260101T000000Z\r\nx-amz-content-sha256: {EMPTY_SHA256}\r\nAuthorization: {auth}\r\n\r\n",
            s.host()
        );
        let mut c = s.connect();
        c.send(wire.as_bytes());
        responses.push(c.read_final_response(false).expect("response"));
    }
    // Presigned: expired, tampered.
    let old = SystemTime::now() - Duration::from_secs(3600);
    let expired = presign_url(
        &creds(),
        "GET",
        &s.host(),
        "/sec/k",
        "",
        1,
        old,
        REGION,
        &[],
    );
    responses.push(s.call(&s.req("GET", &expired).anonymous()));
    let tampered = presign_url(
        &creds(),
        "GET",
        &s.host(),
        "/sec/k",
        "",
        60,
        SystemTime::now(),
        REGION,
        &[],
    )
    .replace("/sec/k", "/sec/j");
    responses.push(s.call(&s.req("GET", &tampered).anonymous()));
    // Payload hash mismatch and a signed aws-chunked body with a forged chunk signature.
    responses.push(
        s.call(
            &s.req("PUT", "/sec/k")
                .body(b"abc")
                .payload(Payload::Literal(sha256_hex(b"xyz"))),
        ),
    );
    let forged_chunk = format!(
        "3;chunk-signature={}\r\nabc\r\n0;chunk-signature={}\r\n\r\n",
        "0".repeat(64),
        "1".repeat(64)
    );
    responses.push(
        s.call(
            &s.req("PUT", "/sec/k")
                .body(forged_chunk.as_bytes())
                .payload(Payload::Literal(
                    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD".to_string(),
                ))
                .header("content-encoding", "aws-chunked")
                .header("x-amz-decoded-content-length", "3"),
        ),
    );
    for r in &responses {
        assert!((400..500).contains(&r.status), "{}", r.describe());
    }
    assert_alive(&s);
    let status = s.stop();
    assert!(status.success(), "server exit: {status:?}");

    let log = s.log_text();
    let now_date = ymd_of(SystemTime::now());
    let old_date = ymd_of(old);
    let needles = [
        SECRET_KEY.to_string(),
        uri_encode(SECRET_KEY),
        hex::encode(SECRET_KEY),
        SECRET_KEY[..12].to_string(),
        signing_key_hex(SECRET_KEY, &now_date),
        signing_key_hex(SECRET_KEY, &old_date),
        signing_key_hex(SECRET_KEY, "20260101"),
    ];
    for needle in &needles {
        assert!(
            !log.contains(needle.as_str()),
            "the server log contains secret material {needle:?}:\n{log}"
        );
        for r in &responses {
            assert!(
                !r.text().contains(needle.as_str())
                    && !r.headers.iter().any(|(_, v)| v.contains(needle.as_str())),
                "a response contains secret material {needle:?}: {}",
                r.describe()
            );
        }
    }
    assert!(!log.is_empty(), "the server wrote no log at all");
}

/// `YYYYMMDD` of `t` (UTC), by Howard Hinnant's civil-from-days algorithm.
fn ymd_of(t: SystemTime) -> String {
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
    let days = (secs / 86_400) as i64;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!("{y:04}{m:02}{d:02}")
}

#[test]
fn data_directory_layout_helper_accepts_a_normal_server() {
    // Sanity check of `assert_data_layout` itself on ordinary traffic (objects, uploads).
    let s = Server::start();
    s.create_bucket("normal");
    assert_eq!(s.put("normal", "a/b/c", b"x", &[]).status, 200);
    let r = s.call(&s.req("POST", "/normal/mp?uploads"));
    let upload_id = xml_first(&r.text(), "UploadId").expect("UploadId");
    let r = s.call(
        &s.req(
            "PUT",
            &format!("/normal/mp?partNumber=1&uploadId={upload_id}"),
        )
        .body(b"part"),
    );
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_data_layout(&s);
}
