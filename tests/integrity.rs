//! Data integrity against the real server: bodies that do not match their digests are never
//! stored, truncated uploads leave nothing behind, objects survive a restart byte for byte, and
//! concurrent writers to one key never produce a torn object.

mod common;

use common::*;
use std::sync::{Arc, Barrier};
use std::time::Duration;

/// Polls up to 5 s for `<data>/tmp` to hold no staging files.
#[track_caller]
fn assert_no_staging_left(s: &Server) {
    let clean = poll_until(Duration::from_secs(5), || s.staging_files().is_empty());
    assert!(
        clean,
        "staging files left in {}: {:?}",
        s.tmp_dir().display(),
        s.staging_files()
    );
}

#[test]
fn wrong_content_sha256_is_rejected_and_nothing_stored() {
    let s = Server::start();
    s.create_bucket("sha");
    let body = b"the real body";
    let wrong = sha256_hex(b"some other body");

    // New key.
    let r = s.call(
        &s.req("PUT", "/sha/new")
            .body(body)
            .payload(Payload::Literal(wrong.clone())),
    );
    r.assert_error(400, "XAmzContentSHA256Mismatch");
    s.get("sha", "new").assert_error(404, "NoSuchKey");

    // Overwrite: the old content stays.
    let v1 = b"version one";
    let put = s.put("sha", "old", v1, &[("x-amz-meta-v", "1")]);
    assert_eq!(put.status, 200, "{}", put.describe());
    let r = s.call(
        &s.req("PUT", "/sha/old")
            .body(b"version two, longer than one")
            .header("x-amz-meta-v", "2")
            .payload(Payload::Literal(wrong)),
    );
    r.assert_error(400, "XAmzContentSHA256Mismatch");
    let get = s.get("sha", "old");
    assert_eq!(get.status, 200, "{}", get.describe());
    assert_eq!(get.body, v1);
    assert_eq!(get.etag().as_deref(), Some(md5_hex(v1).as_str()));
    assert_eq!(get.header("x-amz-meta-v"), Some("1"));

    // Chunked body whose decoded bytes do not match the signed hash.
    let data = random_bytes(70_000, 11);
    let req = s
        .req("PUT", "/sha/chunked")
        .payload(Payload::Literal(sha256_hex(b"not the data")))
        .no_content_length()
        .unsigned_header("Transfer-Encoding", "chunked");
    let mut wire = req.head_bytes();
    wire.extend_from_slice(&chunked_encode(&data, &[4097, 30_000]));
    let mut c = s.connect();
    c.send(&wire);
    let r = c.read_final_response(false).expect("PUT response");
    r.assert_error(400, "XAmzContentSHA256Mismatch");
    s.get("sha", "chunked").assert_error(404, "NoSuchKey");

    // Large body (several DMA buffers) with a wrong hash.
    let big = random_bytes(3 * 1024 * 1024 + 5, 12);
    let r = s.call(
        &s.req("PUT", "/sha/big")
            .body(&big)
            .payload(Payload::Literal(sha256_hex(b"x"))),
    );
    r.assert_error(400, "XAmzContentSHA256Mismatch");
    s.get("sha", "big").assert_error(404, "NoSuchKey");
    assert_eq!(s.list_keys("sha"), vec!["old".to_string()]);
    assert_no_staging_left(&s);
}

#[test]
fn wrong_checksums_and_content_md5_are_rejected() {
    let s = Server::start();
    s.create_bucket("sums");
    let body = b"checksummed body bytes";

    // Correct CRC32: stored, and echoed.
    let crc = crc32_b64(body);
    let r = s.put(
        "sums",
        "good",
        body,
        &[
            ("x-amz-checksum-crc32", &crc),
            ("x-amz-sdk-checksum-algorithm", "CRC32"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.header("x-amz-checksum-crc32"), Some(crc.as_str()));

    // Correct Content-MD5: stored.
    let r = s.put("sums", "goodmd5", body, &[("content-md5", &md5_b64(body))]);
    assert_eq!(r.status, 200, "{}", r.describe());

    let wrong_crc = crc32_b64(b"other bytes");
    let wrong_md5 = md5_b64(b"other bytes");
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, u16, &'a str);
    let cases: [Case; 5] = [
        (
            "crc32",
            vec![
                ("x-amz-checksum-crc32", &wrong_crc),
                ("x-amz-sdk-checksum-algorithm", "CRC32"),
            ],
            400,
            "BadDigest",
        ),
        (
            "crc32nosdk",
            vec![("x-amz-checksum-crc32", &wrong_crc)],
            400,
            "BadDigest",
        ),
        ("md5", vec![("content-md5", &wrong_md5)], 400, "BadDigest"),
        (
            "md5garbage",
            vec![("content-md5", "not base64 at all!")],
            400,
            "InvalidDigest",
        ),
        (
            "md5short",
            // Valid base64 of 5 bytes: not an MD5.
            vec![("content-md5", "aGVsbG8=")],
            400,
            "InvalidDigest",
        ),
    ];
    let mut c = s.connect();
    for (key, headers, status, code) in cases {
        let mut req = s.req("PUT", &format!("/sums/{key}")).body(body);
        for (n, v) in headers {
            req = req.header(n, v);
        }
        let r = c.call(&req);
        r.assert_error(status, code);
        // The body was read whole: the connection may carry the next request, unless the
        // server said it would close it.
        if r.closes() {
            c = s.connect();
        }
        c.call(&s.req("GET", &format!("/sums/{key}")))
            .assert_error(404, "NoSuchKey");
    }

    // Overwrite with a wrong CRC32 keeps the old object.
    let r = s.put(
        "sums",
        "good",
        b"replacement",
        &[("x-amz-checksum-crc32", &wrong_crc)],
    );
    r.assert_error(400, "BadDigest");
    let get = s.get("sums", "good");
    assert_eq!(get.status, 200, "{}", get.describe());
    assert_eq!(get.body, body);

    let mut keys = s.list_keys("sums");
    keys.sort();
    assert_eq!(keys, vec!["good".to_string(), "goodmd5".to_string()]);
    assert_no_staging_left(&s);
}

#[test]
fn truncated_body_stores_nothing() {
    let s = Server::start();
    s.create_bucket("short");

    // 1) Content-Length 200000, 70000 bytes sent, then the client closes the socket.
    let body = random_bytes(200_000, 21);
    let req = s.req("PUT", "/short/closed").body(&body);
    let mut c = s.connect();
    c.send(&req.head_bytes());
    c.send(&body[..70_000]);
    drop(c);
    s.get("short", "closed").assert_error(404, "NoSuchKey");

    // 2) Same, but half-close: the server sees EOF and should answer IncompleteBody.
    let req = s.req("PUT", "/short/halfclosed").body(&body);
    let mut c = s.connect();
    c.send(&req.head_bytes());
    c.send(&body[..12_345]);
    c.shutdown_write();
    let r = c
        .read_final_response(false)
        .expect("an error response after the client half-closed mid-body");
    assert_eq!(r.status, 400, "{}", r.describe());
    assert_eq!(
        r.error_code().as_deref(),
        Some("IncompleteBody"),
        "{}",
        r.describe()
    );
    s.get("short", "halfclosed").assert_error(404, "NoSuchKey");

    // 3) Chunked body cut in the middle of a chunk.
    let req = s
        .req("PUT", "/short/chunked")
        .payload(Payload::Unsigned)
        .no_content_length()
        .unsigned_header("Transfer-Encoding", "chunked");
    let encoded = chunked_encode(&body, &[50_000]);
    let mut c = s.connect();
    c.send(&req.head_bytes());
    c.send(&encoded[..80_000]);
    c.shutdown_write();
    let r = c
        .read_final_response(false)
        .expect("an error response after a truncated chunked body");
    assert_eq!(r.status, 400, "{}", r.describe());
    assert_eq!(
        r.error_code().as_deref(),
        Some("IncompleteBody"),
        "{}",
        r.describe()
    );
    s.get("short", "chunked").assert_error(404, "NoSuchKey");

    // 4) Overwrite of an existing key cut short: the old object stays.
    let old = b"old content";
    assert_eq!(s.put("short", "keep", old, &[]).status, 200);
    let req = s.req("PUT", "/short/keep").body(&body);
    let mut c = s.connect();
    c.send(&req.head_bytes());
    c.send(&body[..100_001]);
    drop(c);
    assert_no_staging_left(&s);
    let get = s.get("short", "keep");
    assert_eq!(get.status, 200, "{}", get.describe());
    assert_eq!(get.body, old);

    for key in ["closed", "halfclosed", "chunked"] {
        s.get("short", key).assert_error(404, "NoSuchKey");
    }
    assert_eq!(s.list_keys("short"), vec!["keep".to_string()]);
}

struct Expected {
    bucket: &'static str,
    key: String,
    body: Vec<u8>,
    etag: String,
    meta: String,
    content_type: Option<String>,
    last_modified: String,
}

#[test]
fn objects_survive_restart() {
    let mut s = Server::start();
    let buckets = ["restart-a", "restart-b"];
    for b in buckets {
        s.create_bucket(b);
    }
    let sizes: [usize; 20] = [
        0,
        1,
        4095,
        4096,
        4097,
        (1 << 20) + 3,
        5 << 20,
        2,
        511,
        512,
        513,
        8191,
        8192,
        65_535,
        65_536,
        131_073,
        (2 << 20) - 1,
        1000,
        12_345,
        100,
    ];
    let mut expected = Vec::new();
    for (i, size) in sizes.iter().copied().enumerate() {
        let bucket = buckets[i % 2];
        let key = format!("dir{}/obj-{i:02}-{size}", i % 3);
        let body = random_bytes(size, 1000 + i as u64);
        let meta = format!("value {i} with spaces");
        let content_type = (i % 2 == 0).then(|| format!("application/x-test-{i}"));
        let mut headers = vec![("x-amz-meta-index", meta.as_str())];
        if let Some(ct) = &content_type {
            headers.push(("content-type", ct.as_str()));
        }
        let crc = crc32_b64(&body);
        if i % 3 == 0 {
            headers.push(("x-amz-checksum-crc32", crc.as_str()));
        }
        let r = s.put(bucket, &key, &body, &headers);
        assert_eq!(r.status, 200, "PUT {key}: {}", r.describe());
        let etag = r.etag().expect("ETag on PUT");
        assert_eq!(etag, md5_hex(&body), "ETag of {key}");
        let head = s.head(bucket, &key);
        assert_eq!(head.status, 200, "{}", head.describe());
        let last_modified = head
            .header("last-modified")
            .expect("Last-Modified")
            .to_string();
        expected.push(Expected {
            bucket,
            key,
            body,
            etag,
            meta,
            content_type,
            last_modified,
        });
    }

    let status = s.stop();
    assert!(
        status.success(),
        "server did not exit with status 0 after SIGTERM: {status:?}; log:\n{}",
        s.log_text()
    );
    s.start_again();

    for e in &expected {
        let r = s.get(e.bucket, &e.key);
        assert_eq!(
            r.status,
            200,
            "GET {} after restart: {}",
            e.key,
            r.describe()
        );
        assert_eq!(r.body.len(), e.body.len(), "size of {}", e.key);
        assert!(r.body == e.body, "bytes of {} differ after restart", e.key);
        assert_eq!(
            r.etag().as_deref(),
            Some(e.etag.as_str()),
            "ETag of {}",
            e.key
        );
        assert_eq!(
            r.header("x-amz-meta-index"),
            Some(e.meta.as_str()),
            "metadata of {}",
            e.key
        );
        if let Some(ct) = &e.content_type {
            assert_eq!(r.header("content-type"), Some(ct.as_str()), "{}", e.key);
        }
        assert_eq!(
            r.header("last-modified"),
            Some(e.last_modified.as_str()),
            "Last-Modified of {}",
            e.key
        );
    }
    for b in buckets {
        let mut listed = s.list_keys(b);
        listed.sort();
        let mut want: Vec<String> = expected
            .iter()
            .filter(|e| e.bucket == b)
            .map(|e| e.key.clone())
            .collect();
        want.sort();
        assert_eq!(listed, want, "LIST {b} after restart");
    }
    let r = s.call(&s.req("GET", "/"));
    assert_eq!(r.status, 200, "{}", r.describe());
    let mut names = xml_all(&r.text(), "Name");
    names.sort();
    assert_eq!(names, buckets.map(String::from).to_vec());
    assert!(
        s.staging_files().is_empty(),
        "staging files after restart: {:?}",
        s.staging_files()
    );
}

#[test]
fn concurrent_writers_to_one_key() {
    let s = Server::start();
    s.create_bucket("race");
    const WRITERS: usize = 8;
    const ROUNDS: usize = 3;
    let bodies: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..WRITERS)
            .map(|i| random_bytes(256 * 1024 + 977 * i, 500 + i as u64))
            .collect(),
    );
    for round in 0..ROUNDS {
        let barrier = Arc::new(Barrier::new(WRITERS));
        let threads: Vec<_> = (0..WRITERS)
            .map(|i| {
                let barrier = barrier.clone();
                let bodies = bodies.clone();
                // Prepare the request and the connection first, then start together.
                let wire = s.req("PUT", "/race/key").body(&bodies[i]).build();
                let mut c = s.connect();
                std::thread::spawn(move || {
                    barrier.wait();
                    c.send(&wire);
                    let r = c.read_final_response(false).expect("PUT response");
                    (i, r)
                })
            })
            .collect();
        for t in threads {
            let (i, r) = t.join().expect("writer thread");
            assert_eq!(r.status, 200, "round {round} writer {i}: {}", r.describe());
            assert_eq!(
                r.etag().as_deref(),
                Some(md5_hex(&bodies[i]).as_str()),
                "round {round} writer {i}"
            );
        }
        let get = s.get("race", "key");
        assert_eq!(get.status, 200, "{}", get.describe());
        let winner = bodies.iter().position(|b| *b == get.body);
        let Some(w) = winner else {
            panic!(
                "round {round}: GET returned {} bytes that match none of the {WRITERS} bodies",
                get.body.len()
            );
        };
        assert_eq!(
            get.etag().as_deref(),
            Some(md5_hex(&get.body).as_str()),
            "round {round}: ETag does not match the returned body (writer {w})"
        );
        let head = s.head("race", "key");
        assert_eq!(
            head.header("content-length"),
            Some(bodies[w].len().to_string().as_str())
        );
        assert_eq!(head.etag(), get.etag());
        assert_eq!(s.list_keys("race"), vec!["key".to_string()]);
    }
    assert_no_staging_left(&s);
}

/// The UploadId in an InitiateMultipartUploadResult body.
fn upload_id_of(r: &Response) -> String {
    let text = r.text();
    let start = text.find("<UploadId>").expect("UploadId element") + "<UploadId>".len();
    let end = text[start..].find("</UploadId>").expect("UploadId end") + start;
    text[start..end].to_string()
}

#[test]
fn concurrent_uploads_of_one_part_number_keep_table_and_disk_in_step() {
    // Racing UploadParts of one part number: whichever wins, the part table (ListParts, the
    // completed ETag) and the part file on disk (the completed object's bytes) name the same
    // upload. Each round has its own upload; the server syncs, so renames and records interleave.
    let s = Server::start();
    s.create_bucket("parts");
    const WRITERS: usize = 6;
    const ROUNDS: usize = 6;
    for round in 0..ROUNDS {
        let bodies: Arc<Vec<Vec<u8>>> = Arc::new(
            (0..WRITERS)
                .map(|i| random_bytes(64 * 1024 + 131 * i, (round * 100 + i) as u64))
                .collect(),
        );
        let create = s.call(&s.req("POST", "/parts/obj?uploads"));
        assert_eq!(create.status, 200, "{}", create.describe());
        let id = upload_id_of(&create);
        let target = format!("/parts/obj?partNumber=1&uploadId={id}");
        let barrier = Arc::new(Barrier::new(WRITERS));
        let threads: Vec<_> = (0..WRITERS)
            .map(|i| {
                let barrier = barrier.clone();
                let wire = s.req("PUT", &target).body(&bodies[i]).build();
                let mut c = s.connect();
                std::thread::spawn(move || {
                    barrier.wait();
                    c.send(&wire);
                    c.read_final_response(false).expect("UploadPart response")
                })
            })
            .collect();
        for t in threads {
            let r = t.join().expect("writer thread");
            assert_eq!(r.status, 200, "round {round}: {}", r.describe());
        }
        let listed = s.call(&s.req("GET", &format!("/parts/obj?uploadId={id}")));
        assert_eq!(listed.status, 200, "{}", listed.describe());
        let text = listed.text();
        let winner = (0..WRITERS)
            .find(|&i| text.contains(&md5_hex(&bodies[i])))
            .unwrap_or_else(|| panic!("round {round}: ListParts names no body: {text}"));
        let complete = format!(
            "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\"{}\"</ETag></Part></CompleteMultipartUpload>",
            md5_hex(&bodies[winner])
        );
        let done = s.call(
            &s.req("POST", &format!("/parts/obj?uploadId={id}"))
                .body(complete.as_bytes()),
        );
        assert_eq!(done.status, 200, "round {round}: {}", done.describe());
        let get = s.get("parts", "obj");
        assert_eq!(get.status, 200, "{}", get.describe());
        assert!(
            get.body == bodies[winner],
            "round {round}: the part table names writer {winner}, the part file holds another body"
        );
    }
    assert_no_staging_left(&s);
}

#[test]
fn empty_format_marker_from_a_cut_first_start_is_repaired() {
    // A power cut soon after the very first start could leave `ringstore.format` empty while
    // later, synced writes survived; the server must start again without manual repair.
    let mut s = Server::start();
    s.create_bucket("fmt");
    let body = random_bytes(10_000, 77);
    assert_eq!(s.put("fmt", "k", &body, &[]).status, 200);
    assert!(s.stop().success());
    let marker = s.data_dir().join("ringstore.format");
    std::fs::write(&marker, b"").expect("empty the marker");
    s.start_again();
    let get = s.get("fmt", "k");
    assert_eq!(get.status, 200, "{}", get.describe());
    assert!(get.body == body);
    assert_eq!(
        std::fs::read_to_string(&marker).expect("marker"),
        "ringstore 2\n"
    );
    assert!(s.log_text().contains("is empty"), "{}", s.log_text());
}

/// Log and segment ids do not depend on core numbers: a directory written with 2 cores serves
/// every object after restarts with 1 and with 3 cores (bucket owners move between cores, and
/// each core continues or starts its own log), with small (log-inline) and large (file) objects,
/// overwrites and deletes.
#[test]
fn a_directory_written_with_two_cores_restarts_with_one_and_three() {
    const BUCKETS: [&str; 4] = ["cores-a", "cores-b", "cores-c", "cores-d"];
    let mut expected: std::collections::BTreeMap<(String, String), Vec<u8>> = Default::default();
    let write =
        |s: &Server,
         round: u64,
         expected: &mut std::collections::BTreeMap<(String, String), Vec<u8>>| {
            for (bi, b) in BUCKETS.iter().enumerate() {
                for i in 0..12u64 {
                    let key = format!("k{i}");
                    let size = if i % 5 == 0 {
                        100_000
                    } else {
                        100 + i as usize * 300
                    };
                    let body = random_bytes(size, round * 1000 + bi as u64 * 100 + i);
                    assert_eq!(s.put(b, &key, &body, &[]).status, 200);
                    expected.insert((b.to_string(), key), body);
                }
                let gone = format!("k{}", round % 12);
                assert_eq!(
                    s.call(&s.req("DELETE", &format!("/{b}/{gone}"))).status,
                    204
                );
                expected.remove(&(b.to_string(), gone));
            }
        };
    let check = |s: &Server, expected: &std::collections::BTreeMap<(String, String), Vec<u8>>| {
        for b in BUCKETS {
            let want: Vec<String> = expected
                .keys()
                .filter(|(eb, _)| eb == b)
                .map(|(_, k)| k.clone())
                .collect();
            let mut listed = s.list_keys(b);
            listed.sort();
            let mut want_sorted = want.clone();
            want_sorted.sort();
            assert_eq!(listed, want_sorted, "{b} with {} cores", s.cores());
            for k in want {
                let r = s.get(b, &k);
                assert_eq!(r.status, 200, "{b}/{k}: {}", r.describe());
                assert!(
                    r.body == expected[&(b.to_string(), k.clone())],
                    "{b}/{k} bytes"
                );
            }
        }
    };
    let mut s = Server::start_with_cores(2);
    for b in BUCKETS {
        s.create_bucket(b);
    }
    write(&s, 1, &mut expected);
    check(&s, &expected);
    assert!(s.stop().success());
    for (round, cores) in [(2u64, 1usize), (3, 3), (4, 2)] {
        let mut t = Server::on_data_dir(s.data_dir().to_path_buf(), cores);
        t.start_again();
        check(&t, &expected);
        write(&t, round, &mut expected);
        check(&t, &expected);
        assert!(t.stop().success());
    }
}

/// A bucket deleted and created again under the same name starts empty, also after a restart
/// replays the log records of its earlier incarnation.
#[test]
fn a_recreated_bucket_does_not_bring_back_old_objects() {
    let mut s = Server::start();
    s.create_bucket("again");
    assert_eq!(s.put("again", "old", b"first life", &[]).status, 200);
    assert_eq!(s.call(&s.req("DELETE", "/again/old")).status, 204);
    assert_eq!(s.call(&s.req("DELETE", "/again")).status, 204);
    s.create_bucket("again");
    assert_eq!(s.put("again", "new", b"second life", &[]).status, 200);
    assert!(s.stop().success());
    s.start_again();
    assert_eq!(s.list_keys("again"), vec!["new".to_string()]);
    assert_eq!(s.get("again", "old").status, 404);
    assert_eq!(s.get("again", "new").body, b"second life".to_vec());
}
