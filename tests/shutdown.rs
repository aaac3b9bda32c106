//! Graceful shutdown: SIGTERM stops accepting connections, lets requests in flight finish
//! (their responses are complete and their writes durable), then exits 0; idle keep-alive
//! connections do not hold the exit up.

mod common;

use common::*;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

const MIB: usize = 1024 * 1024;
/// The large PUT: 64 MiB sent in 1 MiB pieces over about 2 s.
const BIG_BYTES: usize = 64 * MIB;
const BIG_PIECE: usize = MIB;
const BIG_PIECE_PAUSE: Duration = Duration::from_millis(31);
/// SIGTERM goes out once this much of the large body is sent.
const SIGTERM_AFTER_BYTES: usize = 16 * MIB;
/// Small PUTs in flight (head and half the body sent) when SIGTERM arrives.
const SMALL_PUTS: usize = 3;
const SMALL_BYTES: usize = 10_000;
/// Longest wait for the exit once the in-flight requests are answered.
const EXIT_TIMEOUT: Duration = Duration::from_secs(15);
/// Longest wait for the exit with only idle connections open.
const IDLE_EXIT_TIMEOUT: Duration = Duration::from_secs(5);
const IDLE_CONNECTIONS: usize = 20;
/// New connections tried after SIGTERM.
const LATE_CONNECTS: usize = 5;

/// Polls the server log up to 10 s for the line it prints when it takes the signal.
#[track_caller]
fn wait_for_signal_line(s: &Server) {
    let seen = poll_until(Duration::from_secs(10), || {
        s.log_text().contains("ringstore: signal ")
    });
    assert!(
        seen,
        "the server did not log the signal; log:\n{}",
        s.log_text()
    );
}

#[test]
fn sigterm_lets_in_flight_requests_finish() {
    let mut s = Server::start();
    s.create_bucket("shut");
    let port = s.port();

    // The large PUT, sent slowly.
    let big = Arc::new(random_bytes(BIG_BYTES, 64));
    let sent = Arc::new(AtomicUsize::new(0));
    let big_put = {
        let big = big.clone();
        let sent = sent.clone();
        std::thread::spawn(move || {
            // Sign over the real body, send the head, then the body piece by piece.
            let req = Req::new(port, "PUT", "/shut/big").body(&big);
            let mut c = Conn::connect(port);
            c.send(&req.head_bytes());
            for piece in big.chunks(BIG_PIECE) {
                c.send(piece);
                sent.fetch_add(piece.len(), Ordering::SeqCst);
                std::thread::sleep(BIG_PIECE_PAUSE);
            }
            c.read_final_response(false)
        })
    };

    // Small PUTs: head and half the body before SIGTERM, the rest after it.
    let halfway = Arc::new(Barrier::new(SMALL_PUTS + 1));
    let signalled = Arc::new(AtomicBool::new(false));
    let smalls: Vec<_> = (0..SMALL_PUTS)
        .map(|i| {
            let halfway = halfway.clone();
            let signalled = signalled.clone();
            std::thread::spawn(move || {
                let body = random_bytes(SMALL_BYTES, 100 + i as u64);
                let req = Req::new(port, "PUT", &format!("/shut/small-{i}"))
                    .body(&body)
                    .payload(if i % 2 == 0 {
                        Payload::Sha256OfBody
                    } else {
                        Payload::Unsigned
                    });
                let mut c = Conn::connect(port);
                c.send(&req.head_bytes());
                c.send(&body[..SMALL_BYTES / 2]);
                halfway.wait();
                let ok = poll_until(Duration::from_secs(20), || signalled.load(Ordering::SeqCst));
                assert!(ok, "SIGTERM was never sent");
                c.send(&body[SMALL_BYTES / 2..]);
                (body, c.read_final_response(false))
            })
        })
        .collect();
    halfway.wait();

    // SIGTERM in the middle of the large body.
    let reached = poll_until(Duration::from_secs(30), || {
        sent.load(Ordering::SeqCst) >= SIGTERM_AFTER_BYTES
    });
    assert!(reached, "the large PUT did not get going");
    s.signal(libc::SIGTERM);
    wait_for_signal_line(&s);
    assert!(
        sent.load(Ordering::SeqCst) < BIG_BYTES,
        "the large PUT finished sending before SIGTERM was taken; the test proves nothing"
    );
    signalled.store(true, Ordering::SeqCst);

    // New connections are refused, or closed without a response. The server notices the
    // flag within 50 ms; give it 200.
    std::thread::sleep(Duration::from_millis(200));
    let (mut refused, mut closed) = (0, 0);
    for i in 0..LATE_CONNECTS {
        let Ok(mut c) = Conn::try_connect(port) else {
            refused += 1;
            continue;
        };
        let req = Req::new(port, "GET", "/");
        if c.try_send(&req.build()).is_ok() {
            if let Ok(r) = c.read_final_response(false) {
                panic!(
                    "new connection #{i} after SIGTERM was served: {}",
                    r.describe()
                );
            }
        }
        closed += 1;
    }
    eprintln!(
        "shutdown: {LATE_CONNECTS} connections after SIGTERM: {refused} refused, {closed} closed without a response"
    );

    // Every request in flight completes.
    let r = big_put
        .join()
        .expect("big PUT thread")
        .expect("the large PUT in flight at SIGTERM got no response");
    assert_eq!(r.status, 200, "large PUT: {}", r.describe());
    assert_eq!(r.etag().as_deref(), Some(md5_hex(&big).as_str()));
    let mut small_bodies = Vec::new();
    for (i, h) in smalls.into_iter().enumerate() {
        let (body, r) = h.join().expect("small PUT thread");
        let r = r.unwrap_or_else(|e| panic!("small PUT {i} in flight at SIGTERM: {e}"));
        assert_eq!(r.status, 200, "small PUT {i}: {}", r.describe());
        assert_eq!(r.etag().as_deref(), Some(md5_hex(&body).as_str()));
        small_bodies.push(body);
    }

    // Then the server exits 0.
    let status = s.wait_exit(EXIT_TIMEOUT).unwrap_or_else(|| {
        panic!(
            "the server did not exit within {EXIT_TIMEOUT:?} after its requests finished; log:\n{}",
            s.log_text()
        )
    });
    assert!(
        status.success(),
        "exit status after SIGTERM: {status:?}; log:\n{}",
        s.log_text()
    );
    assert!(
        s.log_text().contains("ringstore: stopped"),
        "no stop line; log:\n{}",
        s.log_text()
    );

    // After a restart everything acknowledged is there, byte for byte.
    s.start_again();
    let g = s.get("shut", "big");
    assert_eq!(g.status, 200, "{}", g.describe());
    assert!(
        g.body.len() == big.len() && g.body == *big,
        "large object differs after restart ({} bytes)",
        g.body.len()
    );
    for (i, body) in small_bodies.iter().enumerate() {
        let g = s.get("shut", &format!("small-{i}"));
        assert_eq!(g.status, 200, "{}", g.describe());
        assert!(g.body == *body, "small-{i} differs after restart");
    }
    let mut keys = s.list_keys("shut");
    keys.sort();
    assert_eq!(keys, vec!["big", "small-0", "small-1", "small-2"]);
}

#[test]
fn idle_keep_alive_connections_do_not_delay_shutdown() {
    let mut s = Server::start();
    s.create_bucket("idle");
    let put = s.put("idle", "k", b"hello", &[]);
    assert_eq!(put.status, 200, "{}", put.describe());

    // Half of them served a request and stay open (keep-alive); half never sent anything.
    let mut conns = Vec::new();
    for i in 0..IDLE_CONNECTIONS {
        let mut c = s.connect();
        if i % 2 == 0 {
            let r = c.call(&s.req("GET", "/idle/k"));
            assert_eq!(r.status, 200, "{}", r.describe());
            assert!(!r.closes(), "keep-alive expected: {}", r.describe());
        }
        conns.push(c);
    }
    // One more request on an open connection: they are all established and served.
    let r = conns[0].call(&s.req("HEAD", "/idle/k"));
    assert_eq!(r.status, 200, "{}", r.describe());

    s.signal(libc::SIGTERM);
    let status = s.wait_exit(IDLE_EXIT_TIMEOUT).unwrap_or_else(|| {
        panic!(
            "with {IDLE_CONNECTIONS} idle connections the server did not exit within {IDLE_EXIT_TIMEOUT:?} of SIGTERM; log:\n{}",
            s.log_text()
        )
    });
    assert!(
        status.success(),
        "exit status after SIGTERM: {status:?}; log:\n{}",
        s.log_text()
    );
    // The idle connections are closed.
    for c in &mut conns {
        assert_eq!(c.wait_closed(Duration::from_secs(5)), Ok(true));
    }
}
