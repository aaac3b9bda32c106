//! The one-shot workloads: small PUTs (new keys, or a working set overwritten) and GETs on a
//! pool of connections, one large PUT, and one multipart upload whose parts go out on parallel
//! connections (the requests are `multipart`'s, shared with the timed workload); and the
//! connection pool the fill scenario and the cleanup share.
//!
//! Invariants: every loop stops at its count or at the time cap (or on Ctrl-C), whichever comes
//! first; bodies are slices of one shared pre-generated buffer (nothing is allocated per
//! request); every response is checked (status 200/204, an ETag, the expected length) and each
//! failure is counted; a measured phase starts once all its connections are open.

use super::client::{Client, Endpoint, Payload};
use super::multipart as mp;
use super::ops::Outcome;
use super::report::{ScenarioResult, Tally};
use super::timed_args::ChecksumArg;
use crate::auth::Credentials;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// Step between the start offsets of neighbouring small objects' bodies in the shared buffer
/// (a prime, so offsets spread over the whole window).
const SMALL_BODY_STRIDE_BYTES: u64 = 4099;

/// Everything the workloads share.
pub(crate) struct Ctx {
    pub(crate) endpoint: Endpoint,
    /// Every `--endpoint` of a comma list (the first is `endpoint`); the timed workloads spread
    /// their connections over them.
    pub(crate) endpoints: Vec<Endpoint>,
    pub(crate) creds: Credentials,
    pub(crate) payload: Payload,
    pub(crate) bucket: String,
    /// Pseudo-random body bytes, shared by every request.
    pub(crate) data: Arc<[u8]>,
    /// Time cap of one scenario.
    pub(crate) duration: Duration,
    /// Set on Ctrl-C: every loop stops at its next request.
    pub(crate) interrupted: Arc<AtomicBool>,
    /// Requests written in full by every client of this context.
    pub(crate) sent: Arc<AtomicU64>,
}

impl Ctx {
    /// A new client (no connection yet) for the endpoint, keys and payload mode.
    pub(crate) fn client(&self) -> Client {
        Client::new(self.endpoint.clone(), self.creds.clone(), self.payload)
            .counting(self.sent.clone())
    }

    /// Whether Ctrl-C (or SIGTERM) was received.
    pub(crate) fn is_interrupted(&self) -> bool {
        self.interrupted.load(Ordering::Relaxed)
    }

    /// Whether a loop must stop: interrupted, or past `deadline`.
    pub(super) fn out_of_time(&self, deadline: Instant) -> bool {
        self.is_interrupted() || Instant::now() >= deadline
    }

    /// Why a loop that `stopped` early did so.
    pub(super) fn stop_reason(&self, stopped: bool) -> Option<&'static str> {
        match (stopped, self.is_interrupted()) {
            (false, _) => None,
            (true, true) => Some("interrupted"),
            (true, false) => Some("time cap"),
        }
    }

    /// The request path of object `key` in the bench's bucket.
    pub(super) fn object_path(&self, key: &str) -> String {
        format!("/{}/{}", self.bucket, key)
    }

    /// A `size`-byte body for small object `i`: a window of the shared buffer whose offset
    /// depends on `i`, so neighbouring objects differ.
    pub(super) fn small_body(&self, i: u64, size: u64) -> &[u8] {
        let size = size as usize;
        let room = (self.data.len() - size) as u64 + 1;
        let off = (i.wrapping_mul(SMALL_BODY_STRIDE_BYTES) % room) as usize;
        &self.data[off..off + size]
    }
}

/// Key of small object `i`.
pub(crate) fn small_key(i: u64) -> String {
    format!("small/{i:08}")
}
/// Key of the put-large object.
pub(crate) const LARGE_KEY: &str = "large/single";
/// Key of the multipart object.
pub(crate) const MULTIPART_KEY: &str = "large/multipart";

/// Fills a shared buffer of `len` pseudo-random bytes (xorshift64*, fixed seed).
pub(crate) fn random_data(len: usize) -> Arc<[u8]> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut word = 0u64;
    // `Range::map` has an exact length, so the Arc is allocated once and filled in place.
    (0..len)
        .map(|i| {
            if i % 8 == 0 {
                x ^= x >> 12;
                x ^= x << 25;
                x ^= x >> 27;
                word = x.wrapping_mul(0x2545_F491_4F6C_DD1D);
            }
            let b = word as u8;
            word >>= 8;
            b
        })
        .collect()
}

/// Runs `work` on `workers` threads, each with its own client whose connection is opened
/// before the clock starts. Returns the merged tally and the wall time of the work.
pub(super) fn pool<F>(ctx: &Ctx, workers: usize, work: F) -> (Tally, Duration)
where
    F: Fn(&mut Client, &mut Tally) + Sync,
{
    let barrier = Barrier::new(workers + 1);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                let (barrier, work) = (&barrier, &work);
                s.spawn(move || {
                    let mut client = ctx.client();
                    // A failed connect is retried (and counted) by the first request.
                    let _ = client.connect();
                    barrier.wait();
                    let mut tally = Tally::default();
                    work(&mut client, &mut tally);
                    tally
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let mut total = Tally::default();
        for h in handles {
            match h.join() {
                Ok(t) => total.merge(t),
                Err(_) => total.error("a worker thread panicked".to_string()),
            }
        }
        (total, start.elapsed())
    })
}

/// Small objects a [`put_small`] run wrote.
pub(crate) struct Written {
    /// Indices written successfully, ascending, each once.
    pub(crate) ok: Vec<u64>,
    /// Requests went out for indices `0..attempted` (some may have failed).
    pub(crate) attempted: u64,
}

/// Which small object operation `i` of put-small writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyMode {
    /// Object `i`: every PUT creates an object.
    New,
    /// Object `i mod n`: PUTs cycle through a working set of `n` objects.
    Overwrite(u64),
}

impl KeyMode {
    /// The object index operation `i` writes.
    pub(crate) fn index(self, i: u64) -> u64 {
        match self {
            KeyMode::New => i,
            KeyMode::Overwrite(n) => i % n.max(1),
        }
    }
}

/// PUTs `count` small objects of `size` bytes on `concurrency` connections, operation `i` to
/// the object `keys.index(i)`.
pub(crate) fn put_small(
    ctx: &Ctx,
    name: &'static str,
    count: u64,
    size: u64,
    concurrency: usize,
    keys: KeyMode,
) -> (ScenarioResult, Written) {
    let workers = concurrency.min(count as usize).max(1);
    let next = AtomicU64::new(0);
    let early = AtomicBool::new(false);
    let attempted = AtomicU64::new(0);
    let written = std::sync::Mutex::new(Vec::with_capacity(count as usize));
    let (tally, elapsed) = pool(ctx, workers, |client, tally| {
        let deadline = Instant::now() + ctx.duration;
        let mut mine = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= count {
                break;
            }
            if ctx.out_of_time(deadline) {
                early.store(true, Ordering::Relaxed);
                break;
            }
            let k = keys.index(i);
            attempted.fetch_max(k + 1, Ordering::Relaxed);
            let path = ctx.object_path(&small_key(k));
            let body = ctx.small_body(i, size);
            let t0 = Instant::now();
            match client.request("PUT", &path, "", body) {
                Ok(r) if r.ok() && r.etag.is_some() => {
                    tally.success(size, t0.elapsed());
                    mine.push(k);
                }
                Ok(r) if r.ok() => {
                    tally.error(format!("PUT {path}: HTTP {} without ETag", r.status))
                }
                Ok(r) => tally.error(format!("PUT {path}: {}", r.describe())),
                Err(e) => tally.error(format!("PUT {path}: {e}")),
            }
        }
        written
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(mine);
    });
    let mut ok = written.into_inner().unwrap_or_else(|e| e.into_inner());
    ok.sort_unstable();
    ok.dedup();
    (
        ScenarioResult {
            name,
            unit: "ops",
            tally,
            elapsed,
            connections: workers,
            stopped_early: ctx.stop_reason(early.into_inner()),
            detail: None,
        },
        Written {
            ok,
            attempted: attempted.into_inner(),
        },
    )
}

/// GETs `count` small objects (cycling through `keys`) on `concurrency` connections, checking
/// status, ETag and length.
pub(crate) fn get_small(
    ctx: &Ctx,
    count: u64,
    size: u64,
    concurrency: usize,
    keys: &[u64],
) -> ScenarioResult {
    let workers = concurrency.min(count as usize).max(1);
    if keys.is_empty() {
        let mut tally = Tally::default();
        tally.error("no objects were written, nothing to read".to_string());
        return ScenarioResult {
            name: "get-small",
            unit: "ops",
            tally,
            elapsed: Duration::ZERO,
            connections: 0,
            stopped_early: None,
            detail: None,
        };
    }
    let next = AtomicU64::new(0);
    let early = AtomicBool::new(false);
    let (tally, elapsed) = pool(ctx, workers, |client, tally| {
        let deadline = Instant::now() + ctx.duration;
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= count {
                break;
            }
            if ctx.out_of_time(deadline) {
                early.store(true, Ordering::Relaxed);
                break;
            }
            let path = ctx.object_path(&small_key(keys[(i % keys.len() as u64) as usize]));
            let t0 = Instant::now();
            match client.request("GET", &path, "", &[]) {
                Ok(r) if r.status == 200 && r.etag.is_some() && r.content_length == size => {
                    tally.success(size, t0.elapsed())
                }
                Ok(r) if r.status == 200 && r.etag.is_none() => {
                    tally.error(format!("GET {path}: no ETag"))
                }
                Ok(r) if r.status == 200 => tally.error(format!(
                    "GET {path}: {} bytes, expected {size}",
                    r.content_length
                )),
                Ok(r) => tally.error(format!("GET {path}: {}", r.describe())),
                Err(e) => tally.error(format!("GET {path}: {e}")),
            }
        }
    });
    ScenarioResult {
        name: "get-small",
        unit: "ops",
        tally,
        elapsed,
        connections: workers,
        stopped_early: ctx.stop_reason(early.into_inner()),
        detail: None,
    }
}

/// One PutObject of the first `size` bytes of the shared buffer, on one connection.
pub(crate) fn put_large(ctx: &Ctx, size: u64) -> ScenarioResult {
    let body = &ctx.data[..size as usize];
    let path = ctx.object_path(LARGE_KEY);
    let mut client = ctx.client();
    let _ = client.connect();
    let mut tally = Tally::default();
    let t0 = Instant::now();
    match client.request("PUT", &path, "", body) {
        Ok(r) if r.ok() && r.etag.is_some() => tally.success(size, t0.elapsed()),
        Ok(r) if r.ok() => tally.error(format!("PUT {path}: HTTP {} without ETag", r.status)),
        Ok(r) => tally.error(format!("PUT {path}: {}", r.describe())),
        Err(e) => tally.error(format!("PUT {path}: {e}")),
    }
    ScenarioResult {
        name: "put-large",
        unit: "ops",
        tally,
        elapsed: t0.elapsed(),
        connections: 1,
        stopped_early: None,
        detail: None,
    }
}

/// CreateMultipartUpload, the first `size` bytes of the shared buffer in parts of `part_size`
/// on up to `concurrency` connections, then CompleteMultipartUpload. The time covers all three.
/// If a part fails the upload is aborted; if the time cap stops it, the parts written so far
/// are completed.
pub(crate) fn multipart(
    ctx: &Ctx,
    size: u64,
    part_size: u64,
    concurrency: usize,
) -> ScenarioResult {
    let parts = size.div_ceil(part_size);
    let workers = concurrency.min(parts as usize).max(1);
    let path = ctx.object_path(MULTIPART_KEY);
    let mut control = ctx.client();
    let _ = control.connect();
    let mut tally = Tally::default();
    let start = Instant::now();

    let (o, upload_id) = mp::create(&mut control, &path, ChecksumArg::None);
    let Some(id_query) = upload_id else {
        count(&mut tally, "CreateMultipartUpload", &o);
        return multipart_result(tally, start.elapsed(), workers, None, parts, part_size);
    };
    let upload = Upload {
        path: &path,
        id_query,
        size,
        part_size,
        parts,
    };
    let (part_tally, early, done) = upload_parts(ctx, &upload, workers, start + ctx.duration);
    tally.merge(part_tally);
    if tally.errors > 0 || done.is_empty() {
        let o = mp::abort(&mut control, &path, &upload.id_query);
        count_error(&mut tally, "AbortMultipartUpload", &o);
    } else {
        let (o, _) = mp::complete(
            &mut control,
            &path,
            &upload.id_query,
            &done,
            ChecksumArg::None,
        );
        count_error(&mut tally, "CompleteMultipartUpload", &o);
    }
    multipart_result(tally, start.elapsed(), workers, early, parts, part_size)
}

/// Counts operation `what`'s outcome `o` in `t`: a success of its bytes, or a failure.
fn count(t: &mut Tally, what: &str, o: &Outcome) {
    match &o.error {
        None => t.success(o.bytes, o.latency),
        Some(code) => t.error(format!("{what}: {code}")),
    }
}

/// Counts `o` in `t` only if it failed (the request is not one of the measured operations).
fn count_error(t: &mut Tally, what: &str, o: &Outcome) {
    if let Some(code) = &o.error {
        t.error(format!("{what}: {code}"));
    }
}

/// A multipart upload in progress: where it goes and how the object is cut into parts.
struct Upload<'a> {
    path: &'a str,
    /// The upload id, URI-encoded for the query string.
    id_query: String,
    size: u64,
    part_size: u64,
    parts: u64,
}

/// UploadPart of every part on `workers` connections until `deadline`; parts come back sorted.
fn upload_parts(
    ctx: &Ctx,
    upload: &Upload,
    workers: usize,
    deadline: Instant,
) -> (Tally, Option<&'static str>, Vec<mp::PartDone>) {
    let next = AtomicU64::new(1);
    let early = AtomicBool::new(false);
    let etags = std::sync::Mutex::new(Vec::with_capacity(upload.parts as usize));
    let (tally, _) = pool(ctx, workers, |client, t| loop {
        let n = next.fetch_add(1, Ordering::Relaxed);
        if n > upload.parts {
            break;
        }
        if ctx.out_of_time(deadline) {
            early.store(true, Ordering::Relaxed);
            break;
        }
        let (from, to) = mp::part_range(n, upload.size, upload.part_size);
        let body = &ctx.data[from as usize..to as usize];
        let (o, done) = mp::upload_part(
            client,
            upload.path,
            &upload.id_query,
            n,
            body,
            ChecksumArg::None,
        );
        count(t, &format!("UploadPart {n}"), &o);
        if let Some(p) = done {
            etags.lock().unwrap_or_else(|e| e.into_inner()).push(p);
        }
    });
    let early = ctx.stop_reason(early.into_inner());
    let mut done = etags.into_inner().unwrap_or_else(|e| e.into_inner());
    done.sort_unstable_by_key(|p| p.number);
    (tally, early, done)
}

/// The multipart scenario's result, with the part count and size as detail.
fn multipart_result(
    tally: Tally,
    elapsed: Duration,
    workers: usize,
    early: Option<&'static str>,
    parts: u64,
    part_size: u64,
) -> ScenarioResult {
    ScenarioResult {
        name: "multipart",
        unit: "ops",
        tally,
        elapsed,
        connections: workers,
        stopped_early: early,
        detail: Some(format!(
            "{parts} x {} parts on {workers} conns",
            super::args::format_size(part_size)
        )),
    }
}

/// Deletes `keys` on up to `concurrency` connections (cleanup of a remote endpoint).
pub(crate) fn delete_keys(ctx: &Ctx, keys: &[String], concurrency: usize) -> Tally {
    if keys.is_empty() {
        return Tally::default();
    }
    let next = AtomicU64::new(0);
    let workers = concurrency.min(keys.len()).max(1);
    let (tally, _) = pool(ctx, workers, |client, t| loop {
        let i = next.fetch_add(1, Ordering::Relaxed) as usize;
        if i >= keys.len() {
            break;
        }
        let path = ctx.object_path(&keys[i]);
        let t0 = Instant::now();
        match client.request("DELETE", &path, "", &[]) {
            Ok(r) if r.ok() => t.success(0, t0.elapsed()),
            Ok(r) => t.error(format!("DELETE {path}: {}", r.describe())),
            Err(e) => t.error(format!("DELETE {path}: {e}")),
        }
    });
    tally
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_data_is_deterministic_and_varied() {
        let a = random_data(4096);
        let b = random_data(4096);
        assert_eq!(a, b);
        assert_eq!(a.len(), 4096);
        let distinct = a.iter().collect::<std::collections::HashSet<_>>().len();
        assert!(distinct > 200, "{distinct} distinct byte values");
        assert_eq!(&random_data(100)[..], &a[..100]);
    }

    #[test]
    fn small_bodies_stay_in_bounds() {
        let endpoint = Endpoint::of("127.0.0.1:1".parse().unwrap());
        let ctx = Ctx {
            endpoints: vec![endpoint.clone()],
            endpoint,
            creds: Credentials {
                access_key: "a".into(),
                secret_key: "s".into(),
            },
            payload: Payload::Unsigned,
            bucket: "b".into(),
            data: random_data(10_000),
            duration: Duration::from_secs(1),
            interrupted: Arc::new(AtomicBool::new(false)),
            sent: Arc::new(AtomicU64::new(0)),
        };
        for i in 0..1000 {
            assert_eq!(ctx.small_body(i, 4096).len(), 4096);
            assert_eq!(ctx.small_body(i, 10_000).len(), 10_000);
            assert_eq!(ctx.small_body(i, 0).len(), 0);
        }
        assert_ne!(ctx.small_body(0, 64), ctx.small_body(1, 64));
        assert_eq!(ctx.object_path(&small_key(7)), "/b/small/00000007");
    }

    #[test]
    fn key_modes() {
        assert_eq!(KeyMode::New.index(1000), 1000);
        assert_eq!(KeyMode::Overwrite(128).index(1000), 1000 % 128);
        assert_eq!(KeyMode::Overwrite(1).index(7), 0);
    }
}
