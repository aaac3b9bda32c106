//! HTTP/1.1 behaviour of the real server over raw sockets: keep-alive, pipelining,
//! `Expect: 100-continue`, chunked request bodies, malformed requests, anonymous requests,
//! HEAD framing and idle connections.

mod common;

use common::*;
use std::time::Duration;

/// Asserts the object `bucket/key` does not exist (GET on a new connection -> 404 NoSuchKey).
#[track_caller]
fn assert_absent(s: &Server, bucket: &str, key: &str) {
    let r = s.get(bucket, key);
    r.assert_error(404, "NoSuchKey");
}

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

#[test]
fn keep_alive_three_sequential_requests() {
    let s = Server::start();
    let mut c = s.connect();
    let r1 = c.call(&s.req("PUT", "/keepalive"));
    assert_eq!(r1.status, 200, "{}", r1.describe());
    assert!(!r1.closes(), "{}", r1.describe());
    let body = b"keep-alive body";
    let r2 = c.call(&s.req("PUT", "/keepalive/obj").body(body));
    assert_eq!(r2.status, 200, "{}", r2.describe());
    assert!(!r2.closes(), "{}", r2.describe());
    assert_eq!(r2.etag().as_deref(), Some(md5_hex(body).as_str()));
    let r3 = c.call(&s.req("GET", "/keepalive/obj"));
    assert_eq!(r3.status, 200, "{}", r3.describe());
    assert_eq!(r3.body, body);
    assert!(
        c.buffered().is_empty(),
        "extra bytes after the last response"
    );
    let ids: Vec<&str> = [&r1, &r2, &r3]
        .iter()
        .map(|r| r.header("x-amz-request-id").unwrap())
        .collect();
    assert!(
        ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2],
        "request ids not unique: {ids:?}"
    );
}

#[test]
fn pipelined_requests_in_one_write() {
    let s = Server::start();
    s.create_bucket("pipe");
    let body = b"pipelined body bytes\n";
    let mut all = Vec::new();
    all.extend(s.req("PUT", "/pipe/k").body(body).build());
    all.extend(s.req("GET", "/pipe/k").build());
    all.extend(s.req("HEAD", "/pipe/k").build());
    all.extend(s.req("GET", "/pipe?list-type=2").build());
    all.extend(s.req("DELETE", "/pipe/k").build());
    all.extend(s.req("GET", "/pipe/k").build());
    let mut c = s.connect();
    c.send(&all);

    let put = c.read_final_response(false).expect("PUT response");
    assert_eq!(put.status, 200, "PUT: {}", put.describe());
    assert_eq!(put.etag().as_deref(), Some(md5_hex(body).as_str()));

    let get = c.read_final_response(false).expect("GET response");
    assert_eq!(get.status, 200, "GET: {}", get.describe());
    assert_eq!(get.body, body, "GET body");

    let head = c.read_final_response(true).expect("HEAD response");
    assert_eq!(head.status, 200, "HEAD: {}", head.describe());
    assert_eq!(
        head.header("content-length"),
        Some(body.len().to_string().as_str())
    );
    assert_eq!(head.etag().as_deref(), Some(md5_hex(body).as_str()));

    let list = c.read_final_response(false).expect("LIST response");
    assert_eq!(list.status, 200, "LIST: {}", list.describe());
    assert_eq!(xml_all(&list.text(), "Key"), vec!["k".to_string()]);

    let del = c.read_final_response(false).expect("DELETE response");
    assert_eq!(del.status, 204, "DELETE: {}", del.describe());

    let gone = c.read_final_response(false).expect("second GET response");
    gone.assert_error(404, "NoSuchKey");
    assert!(
        c.buffered().is_empty(),
        "extra bytes after the last response"
    );

    let mut ids: Vec<String> = [&put, &get, &head, &list, &del, &gone]
        .iter()
        .map(|r| r.header("x-amz-request-id").unwrap().to_string())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 6, "request ids not unique");
}

#[test]
fn expect_100_continue_before_body() {
    let s = Server::start();
    s.create_bucket("expect");
    let body = random_bytes(300_001, 1);
    let req = s
        .req("PUT", "/expect/obj")
        .body(&body)
        .header("x-amz-checksum-crc32", &crc32_b64(&body))
        .unsigned_header("Expect", "100-continue");
    let mut c = s.connect();
    c.send(&req.head_bytes());
    c.set_read_timeout(Duration::from_secs(5));
    let interim = c
        .read_response(false)
        .expect("an interim response within 5 s, before any body byte was sent");
    assert_eq!(
        interim.status_line,
        "HTTP/1.1 100 Continue",
        "first response: {}",
        interim.describe()
    );
    assert!(
        c.buffered().is_empty(),
        "bytes after 100 Continue before the body was sent: {:?}",
        String::from_utf8_lossy(c.buffered())
    );
    c.set_read_timeout(IO_TIMEOUT);
    c.send(&body);
    let fin = c.read_response(false).expect("final response");
    assert_eq!(fin.status, 200, "{}", fin.describe());
    assert_eq!(fin.etag().as_deref(), Some(md5_hex(&body).as_str()));
    // The connection stays usable after the upload.
    let get = c.call(&s.req("GET", "/expect/obj"));
    assert_eq!(get.status, 200, "{}", get.describe());
    assert!(get.body == body, "GET returned different bytes");

    // Zero-byte body with Expect (boto3 sends it for empty PutObject): must be stored too.
    let req = s
        .req("PUT", "/expect/empty")
        .unsigned_header("Expect", "100-continue");
    let mut c = s.connect();
    c.send(&req.head_bytes());
    let fin = c.read_final_response(false).expect("final response");
    assert_eq!(fin.status, 200, "{}", fin.describe());
    let get = s.get("expect", "empty");
    assert_eq!(get.status, 200, "{}", get.describe());
    assert!(get.body.is_empty());
}

#[test]
fn expect_100_continue_not_sent_when_auth_fails() {
    let s = Server::start();
    s.create_bucket("expect");
    let body = b"this body must never be requested";
    // Bad signature: last hex digit of the signature flipped.
    let mut bad_sig = s
        .req("PUT", "/expect/badsig")
        .body(body)
        .unsigned_header("Expect", "100-continue")
        .head_bytes();
    let text = String::from_utf8(bad_sig.clone()).unwrap();
    let at = text.find("Signature=").unwrap() + "Signature=".len() + 63;
    bad_sig[at] = if bad_sig[at] == b'0' { b'1' } else { b'0' };
    // Anonymous.
    let anon = s
        .req("PUT", "/expect/anon")
        .body(body)
        .anonymous()
        .unsigned_header("Expect", "100-continue")
        .head_bytes();
    for (name, head, key, code) in [
        ("bad signature", bad_sig, "badsig", "SignatureDoesNotMatch"),
        ("anonymous", anon, "anon", "AccessDenied"),
    ] {
        let mut c = s.connect();
        c.send(&head);
        c.set_read_timeout(Duration::from_secs(5));
        let first = c
            .read_response(false)
            .unwrap_or_else(|e| panic!("{name}: no response within 5 s: {e}"));
        assert!(
            !(100..200).contains(&first.status),
            "{name}: server sent {:?} before rejecting the request",
            first.status_line
        );
        first.assert_error(403, code);
        // Afterwards: closed, or open but silent; never a late 100 Continue.
        match c.wait_closed(Duration::from_secs(1)) {
            Ok(_) => {}
            Err(bytes) => panic!(
                "{name}: unexpected bytes after the 403: {:?}",
                String::from_utf8_lossy(&bytes)
            ),
        }
        assert_absent(&s, "expect", key);
    }
}

#[test]
fn chunked_request_bodies() {
    let s = Server::start();
    s.create_bucket("chunked");
    let data = random_bytes(200_003, 2);
    let encoded = chunked_encode(&data, &[1, 7, 4096, 65537, 3, 8191, 1_000_000]);
    let mut c = s.connect();
    for (key, payload) in [
        ("unsigned", Payload::Unsigned),
        ("signed", Payload::Literal(sha256_hex(&data))),
    ] {
        let req = s
            .req("PUT", &format!("/chunked/{key}"))
            .payload(payload)
            .no_content_length()
            .unsigned_header("Transfer-Encoding", "chunked");
        let mut wire = req.head_bytes();
        wire.extend_from_slice(&encoded);
        // Separate writes split at odd places: inside the head, inside a chunk-size line,
        // inside chunk data and inside the CRLF after a chunk.
        let head_len = req.head_bytes().len();
        let mut cuts = vec![head_len - 3, head_len + 1, head_len + 4, head_len + 11];
        cuts.extend([head_len + 4110, head_len + 70_001, wire.len() - 4]);
        let mut prev = 0;
        for cut in cuts.into_iter().chain([wire.len()]) {
            c.send(&wire[prev..cut]);
            prev = cut;
        }
        let r = c.read_final_response(false).expect("PUT response");
        assert_eq!(r.status, 200, "chunked PUT {key}: {}", r.describe());
        assert_eq!(r.etag().as_deref(), Some(md5_hex(&data).as_str()));
        // Same connection: the chunked body was consumed exactly.
        let get = c.call(&s.req("GET", &format!("/chunked/{key}")));
        assert_eq!(get.status, 200, "{}", get.describe());
        assert_eq!(get.body.len(), data.len());
        assert!(get.body == data, "chunked body {key} stored differently");
    }

    // Chunk extensions and a trailer section, one write.
    let raw_body =
        b"5;name=value\r\nhello\r\n1\r\n \r\n6 ; x=y\r\nworld!\r\n0\r\nx-some-trailer: 1\r\n\r\n";
    let req = s
        .req("PUT", "/chunked/ext")
        .payload(Payload::Literal(sha256_hex(b"hello world!")))
        .no_content_length()
        .unsigned_header("Transfer-Encoding", "chunked");
    let mut wire = req.head_bytes();
    wire.extend_from_slice(raw_body);
    c.send(&wire);
    let r = c.read_final_response(false).expect("PUT response");
    assert_eq!(
        r.status,
        200,
        "chunked PUT with extensions: {}",
        r.describe()
    );
    let get = c.call(&s.req("GET", "/chunked/ext"));
    assert_eq!(get.status, 200, "{}", get.describe());
    assert_eq!(get.text(), "hello world!");
}

#[test]
fn garbage_request_line_gets_400_and_close() {
    let s = Server::start();
    let cases: [(&str, &[u8]); 4] = [
        ("garbage line", b"GARBAGE\r\n\r\n"),
        ("no path", b"GET nopath HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("bad version", b"GET / HTTX/9.9\r\nHost: x\r\n\r\n"),
        (
            "tls hello",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
        ),
    ];
    for (name, bytes) in cases {
        let mut c = s.connect();
        c.send(bytes);
        let r = c
            .read_response(false)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(r.status, 400, "{name}: {}", r.describe());
        assert!(r.text().contains("<Error>"), "{name}: {}", r.describe());
        assert!(r.error_code().is_some(), "{name}: {}", r.describe());
        assert_closed(&mut c, name);
        assert_alive(&s);
    }
}

#[test]
fn oversized_header_section_is_rejected() {
    let s = Server::start();
    // One huge header; the whole head is just over 64 KiB and complete.
    let mut head = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ".to_vec();
    head.resize(64 * 1024 + 100, b'a');
    head.extend_from_slice(b"\r\n\r\n");
    // Many headers, each small, in total over 64 KiB.
    let mut many = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n".to_vec();
    let mut i = 0;
    while many.len() < 70 * 1024 {
        many.extend_from_slice(format!("x-h{i}: {}\r\n", "b".repeat(500)).as_bytes());
        i += 1;
    }
    many.extend_from_slice(b"\r\n");
    for (name, bytes) in [("one big header", head), ("many headers", many)] {
        let mut c = s.connect();
        // The server may answer and close before reading everything; a write error is fine.
        let _ = c.try_send(&bytes);
        let r = c
            .read_response(false)
            .unwrap_or_else(|e| panic!("{name}: no error response: {e}"));
        assert!(
            r.status == 431 || r.status == 400,
            "{name}: {}",
            r.describe()
        );
        if r.status == 400 {
            assert_eq!(
                r.error_code().as_deref(),
                Some("RequestHeaderSectionTooLarge"),
                "{name}: {}",
                r.describe()
            );
        }
        assert_closed(&mut c, name);
        assert_alive(&s);
    }
}

#[test]
fn ambiguous_or_invalid_body_framing_is_rejected() {
    let s = Server::start();
    s.create_bucket("framing");
    type Case<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>, &'a [u8]);
    let cases: [Case; 5] = [
        (
            "content-length and transfer-encoding",
            "both",
            vec![("Content-Length", "5"), ("Transfer-Encoding", "chunked")],
            b"5\r\nhello\r\n0\r\n\r\n",
        ),
        (
            "transfer-encoding and content-length",
            "both2",
            vec![("Transfer-Encoding", "chunked"), ("Content-Length", "16")],
            b"5\r\nhello\r\n0\r\n\r\n",
        ),
        (
            "two different content-lengths",
            "twocl",
            vec![("Content-Length", "5"), ("Content-Length", "6")],
            b"hello!",
        ),
        (
            "non-numeric content-length",
            "nancl",
            vec![("Content-Length", "5x")],
            b"hello",
        ),
        (
            "negative content-length",
            "negcl",
            vec![("Content-Length", "-5")],
            b"hello",
        ),
    ];
    for (name, key, headers, body) in cases {
        let mut req = s
            .req("PUT", &format!("/framing/{key}"))
            .payload(Payload::Unsigned)
            .no_content_length();
        for (n, v) in headers {
            req = req.unsigned_header(n, v);
        }
        let mut wire = req.head_bytes();
        wire.extend_from_slice(body);
        let mut c = s.connect();
        c.send(&wire);
        let r = c
            .read_final_response(false)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(r.status, 400, "{name}: {}", r.describe());
        assert!(r.text().contains("<Error>"), "{name}: {}", r.describe());
        // RFC 9112 6.1 / 6.3: the connection must be closed after such a request.
        assert_closed(&mut c, name);
        assert_alive(&s);
        assert_absent(&s, "framing", key);
    }
}

#[test]
fn anonymous_requests_are_refused() {
    let s = Server::start();
    s.create_bucket("anon");
    let put = s.put("anon", "obj", b"secret", &[]);
    assert_eq!(put.status, 200, "{}", put.describe());
    for (method, target) in [
        ("GET", "/"),
        ("GET", "/anon/obj"),
        ("HEAD", "/anon/obj"),
        ("GET", "/anon?list-type=2"),
        ("PUT", "/anon2"),
        ("PUT", "/anon/new"),
        ("DELETE", "/anon/obj"),
    ] {
        let req = s.req(method, target).body(b"").anonymous();
        let r = s.call(&req);
        assert_eq!(
            r.status,
            403,
            "anonymous {method} {target}: {}",
            r.describe()
        );
        if method != "HEAD" {
            r.assert_error(403, "AccessDenied");
        } else {
            assert!(r.body.is_empty());
        }
    }
    // Nothing changed.
    let get = s.get("anon", "obj");
    assert_eq!(get.status, 200, "{}", get.describe());
    assert_eq!(get.body, b"secret");
    assert_absent(&s, "anon", "new");
    let r = s.call(&s.req("HEAD", "/anon2"));
    assert_eq!(
        r.status,
        404,
        "bucket created anonymously: {}",
        r.describe()
    );
}

#[test]
fn head_sends_length_but_no_body() {
    let s = Server::start();
    s.create_bucket("head");
    let body = random_bytes(10_000, 3);
    let put = s.put("head", "obj", &body, &[("content-type", "text/plain")]);
    assert_eq!(put.status, 200, "{}", put.describe());
    let empty = s.put("head", "empty", b"", &[]);
    assert_eq!(empty.status, 200, "{}", empty.describe());

    let mut all = s.req("HEAD", "/head/obj").build();
    all.extend(s.req("HEAD", "/head/empty").build());
    all.extend(s.req("HEAD", "/head/missing").build());
    all.extend(s.req("GET", "/head/obj").build());
    let mut c = s.connect();
    c.send(&all);
    let h = c.read_final_response(true).expect("HEAD response");
    assert_eq!(h.status, 200, "{}", h.describe());
    assert_eq!(h.header("content-length"), Some("10000"));
    assert_eq!(h.header("content-type"), Some("text/plain"));
    assert_eq!(h.etag().as_deref(), Some(md5_hex(&body).as_str()));
    let h0 = c.read_final_response(true).expect("HEAD response");
    assert_eq!(h0.status, 200, "{}", h0.describe());
    assert_eq!(h0.header("content-length"), Some("0"));
    let hm = c.read_final_response(true).expect("HEAD response");
    assert_eq!(hm.status, 404, "{}", hm.describe());
    // The GET must parse right after: no body bytes followed the HEAD responses.
    let g = c.read_final_response(false).expect("GET response");
    assert_eq!(g.status, 200, "{}", g.describe());
    assert_eq!(g.header("content-length"), Some("10000"));
    assert!(g.body == body, "GET body differs");
    assert!(
        c.buffered().is_empty(),
        "extra bytes after the last response"
    );
    // Nothing else arrives on the connection.
    assert_eq!(
        c.wait_closed(Duration::from_millis(300)),
        Ok(false),
        "connection closed or extra bytes after the responses"
    );
}

#[test]
fn idle_connection_stays_open() {
    let s = Server::start();
    let mut c = s.connect();
    let r = c.call(&s.req("PUT", "/idle"));
    assert_eq!(r.status, 200, "{}", r.describe());
    // Idle for 1.2 s: the server must neither close the connection nor send anything.
    assert_eq!(
        c.wait_closed(Duration::from_millis(1200)),
        Ok(false),
        "idle connection closed (or spoke) after about 1 s"
    );
    let r = c.call(&s.req("HEAD", "/idle"));
    assert_eq!(r.status, 200, "{}", r.describe());
    let r = c.call(&s.req("GET", "/idle?list-type=2"));
    assert_eq!(r.status, 200, "{}", r.describe());
}

#[test]
fn rejected_request_body_keeps_framing() {
    // A request refused before its body is read (bad signature, no Expect): the server either
    // reads past the body and keeps the connection, or says `Connection: close` and closes it.
    // Either way the next request must never be parsed from the refused body's bytes.
    let s = Server::start();
    s.create_bucket("drain");
    for size in [10usize, 100_000] {
        let body = random_bytes(size, 40 + size as u64);
        let mut wire = s.req("PUT", "/drain/refused").body(&body).build();
        let text = String::from_utf8_lossy(&wire).into_owned();
        let at = text.find("Signature=").unwrap() + "Signature=".len() + 63;
        wire[at] = if wire[at] == b'0' { b'1' } else { b'0' };
        wire.extend(s.req("GET", "/drain?list-type=2").build());
        let mut c = s.connect();
        c.send(&wire);
        let r = c
            .read_final_response(false)
            .expect("response to the refused PUT");
        r.assert_error(403, "SignatureDoesNotMatch");
        if r.closes() {
            assert_closed(&mut c, "refused PUT answered with Connection: close");
        } else {
            let next = c
                .read_final_response(false)
                .expect("response to the request after the refused PUT");
            assert_eq!(next.status, 200, "size {size}: {}", next.describe());
            assert!(
                next.text().contains("<ListBucketResult"),
                "{}",
                next.describe()
            );
        }
        assert_absent(&s, "drain", "refused");
    }
}

#[test]
fn connection_close_and_http10() {
    let s = Server::start();
    s.create_bucket("closing");
    // HTTP/1.1 with `Connection: close`.
    let mut c = s.connect();
    let req = s
        .req("GET", "/closing?list-type=2")
        .unsigned_header("Connection", "close");
    let r = c.call(&req);
    assert_eq!(r.status, 200, "{}", r.describe());
    assert!(r.closes(), "no Connection: close in {}", r.describe());
    assert_closed(&mut c, "Connection: close");
    // HTTP/1.0 without keep-alive: answered, then closed.
    let mut wire = s.req("GET", "/closing?list-type=2").build();
    let line_end = wire.windows(2).position(|w| w == b"\r\n").unwrap();
    assert_eq!(&wire[line_end - 8..line_end], b"HTTP/1.1");
    wire[line_end - 1] = b'0';
    let mut c = s.connect();
    c.send(&wire);
    let r = c.read_final_response(false).expect("HTTP/1.0 response");
    assert_eq!(r.status, 200, "{}", r.describe());
    assert!(r.text().contains("<ListBucketResult"), "{}", r.describe());
    assert_closed(&mut c, "HTTP/1.0 without keep-alive");
}

#[test]
fn pipelined_large_bodies_keep_request_boundaries() {
    // Bodies larger than the server's read buffer, with the next requests in the same write:
    // the body is read partly from the buffer and partly from the socket, and the bytes after it
    // must still start the next request.
    let s = Server::start();
    s.create_bucket("bigpipe");
    let a = random_bytes((1 << 20) + 7, 60);
    let b = random_bytes(81_931, 61);
    let chunked = random_bytes(300_017, 62);
    let mut wire = s.req("PUT", "/bigpipe/a").body(&a).build();
    wire.extend(s.req("PUT", "/bigpipe/b").body(&b).build());
    let creq = s
        .req("PUT", "/bigpipe/c")
        .payload(Payload::Literal(sha256_hex(&chunked)))
        .no_content_length()
        .unsigned_header("Transfer-Encoding", "chunked");
    wire.extend(creq.head_bytes());
    wire.extend(chunked_encode(&chunked, &[70_001, 5, 200_000]));
    wire.extend(s.req("GET", "/bigpipe/a").build());
    wire.extend(s.req("GET", "/bigpipe/b").build());
    wire.extend(s.req("GET", "/bigpipe/c").build());
    let mut c = s.connect();
    // Write from another thread: the server may answer before all bytes are written.
    let mut writer = c.stream.try_clone().unwrap();
    let t = std::thread::spawn(move || {
        use std::io::Write;
        writer
            .write_all(&wire)
            .expect("write the pipelined requests");
    });
    for (name, body) in [("a", &a), ("b", &b), ("c", &chunked)] {
        let r = c.read_final_response(false).expect("PUT response");
        assert_eq!(r.status, 200, "PUT {name}: {}", r.describe());
        assert_eq!(r.etag().as_deref(), Some(md5_hex(body).as_str()), "{name}");
    }
    for (name, body) in [("a", &a), ("b", &b), ("c", &chunked)] {
        let r = c.read_final_response(false).expect("GET response");
        assert_eq!(r.status, 200, "GET {name}: {}", r.describe());
        assert!(r.body == *body, "GET {name}: bytes differ");
    }
    t.join().unwrap();
    assert!(
        c.buffered().is_empty(),
        "extra bytes after the last response"
    );
}
