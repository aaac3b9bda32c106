//! The upload memory budget: 1,000 connections each stalled after the head and 4 MiB of a
//! 16 MiB PUT body. The server's RSS must stay within [`RSS_GROWTH_MAX_BYTES`] of idle while they
//! hang (past a quarter of the budget uploads get small buffers, and when it is used up they wait,
//! pushing back on the senders instead of buffering), the server must keep serving other
//! requests, and once the connections close every staging file is gone and, [`RSS_RETURN_WAIT`]
//! later, RSS is back near idle (the allocator returned the freed buffers to the OS). Memory,
//! never time, is what is asserted.

mod common;

use common::*;
use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

const CONNECTIONS: usize = 1000;
const SENDER_THREADS: usize = 25;
const DECLARED_BODY_BYTES: usize = 16 * 1024 * 1024;
const SENT_BODY_BYTES: usize = 4 * 1024 * 1024;
const SEND_PIECE_BYTES: usize = 256 * 1024;
/// A send that makes no progress this long means the server pushes back (backpressure).
const SEND_STALL_TIMEOUT: Duration = Duration::from_secs(3);
const RSS_GROWTH_MAX_BYTES: u64 = 512 * 1024 * 1024;
const RSS_RETURN_WAIT: Duration = Duration::from_secs(10);
/// How far above idle RSS may stay [`RSS_RETURN_WAIT`] after the uploads close, in percent of
/// idle. The target is 10 %, measured 8-10 % here (jemalloc's thread caches and grown
/// containers keep ~2.5 MiB); 15 % keeps the test from flaking at that edge while still failing
/// if freed buffers are kept (glibc kept +340 MiB, jemalloc's default decay +13-21 MiB).
const RSS_RETURN_SLACK_PERCENT: u64 = 15;
const BUCKET: &str = "stall";

fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kib * 1024
}

/// Opens a PUT of `DECLARED_BODY_BYTES` and sends `SENT_BODY_BYTES` of it (fewer when the
/// server stops reading); returns the stream (kept open) and the body bytes it took.
fn stalled_upload(s: &Server, i: usize, piece: &[u8]) -> (TcpStream, usize) {
    let mut req = s
        .req("PUT", &format!("/{BUCKET}/stalled-{i:04}"))
        .payload(Payload::Unsigned)
        .no_content_length();
    req = req.unsigned_header("content-length", &DECLARED_BODY_BYTES.to_string());
    let mut stream = TcpStream::connect(("127.0.0.1", s.port())).expect("connect");
    stream
        .set_write_timeout(Some(SEND_STALL_TIMEOUT))
        .expect("timeout");
    stream.write_all(&req.head_bytes()).expect("head");
    let mut sent = 0;
    while sent < SENT_BODY_BYTES {
        match stream.write(piece) {
            Ok(n) => sent += n,
            Err(_) => break, // the server stopped reading: pushed back
        }
    }
    (stream, sent)
}

#[test]
fn a_thousand_stalled_uploads_stay_within_the_memory_budget() {
    let _ = rlimit::increase_nofile_limit(8 * CONNECTIONS as u64);
    let s = Server::start();
    s.create_bucket(BUCKET);
    let pid = s.pid().expect("server pid");
    std::thread::sleep(Duration::from_secs(1));
    let idle = rss_bytes(pid);
    let piece = random_bytes(SEND_PIECE_BYTES, 1);
    let mut peak = idle;
    let (streams, sent) = std::thread::scope(|scope| {
        let per_thread = CONNECTIONS / SENDER_THREADS;
        let handles: Vec<_> = (0..SENDER_THREADS)
            .map(|t| {
                let (s, piece) = (&s, &piece);
                scope.spawn(move || {
                    (0..per_thread)
                        .map(|j| stalled_upload(s, t * per_thread + j, piece))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut streams = Vec::new();
        let mut sent = Vec::new();
        for h in handles {
            for (st, n) in h.join().expect("sender thread") {
                streams.push(st);
                sent.push(n);
            }
        }
        (streams, sent)
    });
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        peak = peak.max(rss_bytes(pid));
        std::thread::sleep(Duration::from_millis(100));
    }
    let total: usize = sent.iter().sum();
    let pushed_back = sent.iter().filter(|n| **n < SENT_BODY_BYTES).count();
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    eprintln!(
        "upload_memory: idle RSS {:.1} MiB, peak {:.1} MiB (+{:.1}); {} MiB of bodies taken, \
         {pushed_back} of {CONNECTIONS} uploads pushed back",
        mib(idle),
        mib(peak),
        mib(peak - idle),
        total / (1024 * 1024)
    );
    // The server still serves others while they hang.
    let r = s.put(BUCKET, "small", b"still serving", &[]);
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(s.get(BUCKET, "small").body, b"still serving");
    assert!(
        peak - idle <= RSS_GROWTH_MAX_BYTES,
        "RSS grew by {:.1} MiB with {CONNECTIONS} stalled uploads",
        mib(peak - idle)
    );
    drop(streams);
    std::thread::sleep(RSS_RETURN_WAIT);
    let after = rss_bytes(pid);
    eprintln!(
        "upload_memory: RSS {:.1} MiB {RSS_RETURN_WAIT:?} after the connections closed (idle {:.1}, +{:.1} %)",
        mib(after),
        mib(idle),
        (after as f64 / idle as f64 - 1.0) * 100.0
    );
    assert!(
        after <= idle + idle * RSS_RETURN_SLACK_PERCENT / 100,
        "RSS {:.1} MiB {RSS_RETURN_WAIT:?} after the uploads closed, idle {:.1} MiB",
        mib(after),
        mib(idle)
    );
    assert!(
        poll_until(Duration::from_secs(10), || s.staging_files().is_empty()),
        "staging files left: {:?}",
        s.staging_files()
    );
}
