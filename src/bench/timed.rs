//! The warp-style timed workloads: `put` (new objects), `get`, `stat` and `delete` (of objects
//! written first, untimed), `mixed` (weighted GET/STAT/PUT/DELETE), `list` (checked
//! ListObjectsV2 pages after random keys of a full listing taken first, untimed) and
//! `multipart` (whole objects uploaded in parallel parts, see `multipart`), on `--concurrency`
//! connections until `--count` operations, `--duration-secs`, `--autoterm` or Ctrl-C; with a
//! live progress line, an optional rate limit and the client's own ceiling measured against
//! the null responder.
//!
//! Invariants: every connection works on its own objects (its share of `--objects` plus what
//! its PUTs add), so no operation races another and every GET/STAT/DELETE names an object that
//! exists; ticket `n` (an operation; for multipart an object) never starts before
//! `n / --rate` seconds; the progress monitor only reads shared counters, the statistics come
//! from the per-connection recorders merged at the end.

use super::client::{Client, Endpoint};
use super::multipart::{MultipartSummary, TimedUploads};
use super::ops::{self, OpKind, Outcome, Rng};
use super::stats::Recorder;
use super::timed_args::{Mix, TimedArgs};
use super::workload::Ctx;
use super::BenchArgs;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

/// Seconds the client's ceiling is measured for, per timed workload.
const CEILING_DURATION_SECS: u64 = 3;
/// Per-second values `--autoterm` looks at, and how far they may stray from their mean.
const AUTOTERM_WINDOW_SECS: usize = 10;
const AUTOTERM_SPREAD_PCT: f64 = 7.5;
/// Progress lines when stderr is not a terminal: one per this many seconds.
const PROGRESS_PLAIN_INTERVAL_SECS: u64 = 5;
/// How often the monitor wakes up to check whether the workers are done.
const MONITOR_TICK: Duration = Duration::from_millis(50);

/// Which timed workload runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Workload {
    Put,
    Get,
    Stat,
    Delete,
    Mixed,
    List,
    Multipart,
}

impl Workload {
    /// Whether each connection writes its share of `--objects` first.
    fn needs_objects(self) -> bool {
        !matches!(self, Workload::Put | Workload::List | Workload::Multipart)
    }

    /// The mix this workload runs: one operation, or `--mix`.
    fn mix(self, args: &TimedArgs) -> Mix {
        let only = |get, stat, put, delete| Mix {
            get,
            stat,
            put,
            delete,
        };
        match self {
            Workload::Put => only(0, 0, 1, 0),
            Workload::Get => only(1, 0, 0, 0),
            Workload::Stat => only(0, 1, 0, 0),
            Workload::Delete => only(0, 0, 0, 1),
            Workload::Mixed => args.mix,
            // Not drawn from: list and multipart choose their own operations.
            Workload::List | Workload::Multipart => only(0, 0, 0, 0),
        }
    }
}

/// How the timed phase ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum StopReason {
    Count,
    Duration,
    Autoterm,
    Interrupted,
    /// delete: every object was deleted.
    Exhausted,
}

impl StopReason {
    pub(crate) fn name(self) -> &'static str {
        match self {
            StopReason::Count => "--count",
            StopReason::Duration => "--duration-secs",
            StopReason::Autoterm => "--autoterm (steady throughput)",
            StopReason::Interrupted => "interruption",
            StopReason::Exhausted => "running out of objects",
        }
    }
}

/// What one timed run measured.
pub(crate) struct Measured {
    pub(crate) recorder: Recorder,
    pub(crate) elapsed_secs: f64,
    pub(crate) stopped_by: StopReason,
    /// Failed requests while writing the objects first (or listing them, for list).
    pub(crate) prep_errors: u64,
    /// list: keys in the full listing the pages were checked against.
    pub(crate) listed_keys: Option<u64>,
    /// multipart: objects completed, uploads aborted, the HEAD check.
    pub(crate) multipart: Option<MultipartSummary>,
}

/// Everything the workers share.
pub(crate) struct Shared<'a> {
    pub(crate) ctx: &'a Ctx,
    pub(crate) args: &'a BenchArgs,
    workload: Workload,
    mix: Mix,
    /// list: the bucket's full listing, in order.
    listing: Vec<String>,
    /// Object sizes: `min..=max`.
    sizes: (u64, u64),
    opts: RunOpts,
    tickets: AtomicU64,
    count: u64,
    next_id: AtomicU64,
    stop: AtomicBool,
    stopped_by: Mutex<Option<StopReason>>,
    live_ops: AtomicU64,
    live_bytes: AtomicU64,
    live_errors: AtomicU64,
    /// Connections still in their timed loop.
    active: AtomicU64,
}

impl Shared<'_> {
    fn stop_with(&self, why: StopReason) {
        let mut s = self.stopped_by.lock().expect("stop reason lock");
        s.get_or_insert(why);
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Whether the run was stopped (count, time, `--autoterm`, Ctrl-C).
    pub(crate) fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Whether every ticket of `--count` was taken.
    fn count_reached(&self) -> bool {
        self.tickets.load(Ordering::Relaxed) >= self.count
    }

    /// Takes the next ticket and waits for its `--rate` slot: `None` when `--count` tickets
    /// were taken or the run stopped while waiting.
    pub(crate) fn take_ticket(&self, t0: Instant) -> Option<u64> {
        let ticket = self.tickets.fetch_add(1, Ordering::Relaxed);
        if ticket >= self.count {
            return None;
        }
        match self.opts.rate {
            Some(rate) => wait_until(
                self,
                t0 + Duration::from_secs_f64(ticket as f64 / rate as f64),
            )
            .then_some(ticket),
            None => Some(ticket),
        }
    }

    /// Records operation `kind` that started at `start` and ended with `o`, in `rec` and in
    /// the live counters of the progress line.
    pub(crate) fn account(&self, rec: &mut Recorder, kind: OpKind, start: Instant, o: &Outcome) {
        rec.record(kind, start, o);
        self.live_ops.fetch_add(1, Ordering::Relaxed);
        self.live_bytes.fetch_add(o.bytes, Ordering::Relaxed);
        if o.error.is_some() {
            self.live_errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn path(&self, id: u64) -> String {
        self.path_of("obj", id)
    }

    /// The path of object `id` of kind `what` (`obj`, `mpu`) under `--prefix`.
    pub(crate) fn path_of(&self, what: &str, id: u64) -> String {
        format!(
            "/{}/{}{what}/{id:010}",
            self.ctx.bucket, self.args.timed.prefix
        )
    }

    fn size_of(&self, id: u64) -> u64 {
        ops::draw_size(&mut Rng::new(id + 1), self.sizes.0, self.sizes.1)
    }
}

/// How a timed run is driven.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RunOpts {
    pub(crate) duration: Duration,
    /// Check GET/HEAD lengths (not against the null responder, which has one size).
    pub(crate) check_len: bool,
    /// Print the progress line.
    pub(crate) progress: bool,
    /// Most operations per second (`--rate`; never for the ceiling).
    pub(crate) rate: Option<u64>,
}

impl RunOpts {
    /// The measured run of `args`.
    pub(crate) fn measured(args: &BenchArgs, duration: Duration, null: bool) -> RunOpts {
        RunOpts {
            duration,
            check_len: !null,
            progress: true,
            rate: args.timed.rate,
        }
    }

    /// The ceiling run: a few seconds against the null responder, unthrottled, quiet.
    pub(crate) fn ceiling(duration: Duration) -> RunOpts {
        RunOpts {
            duration: duration.min(Duration::from_secs(CEILING_DURATION_SECS)),
            check_len: false,
            progress: false,
            rate: None,
        }
    }
}

impl<'a> Shared<'a> {
    fn new(
        ctx: &'a Ctx,
        args: &'a BenchArgs,
        workload: Workload,
        opts: RunOpts,
        listing: Vec<String>,
    ) -> Shared<'a> {
        let t = &args.timed;
        let count = match workload {
            Workload::Delete => args.count.min(t.objects),
            _ => args.count,
        };
        Shared {
            ctx,
            args,
            workload,
            mix: workload.mix(t),
            listing,
            sizes: (args.object_size, t.size_max(args.object_size)),
            opts,
            tickets: AtomicU64::new(0),
            count,
            next_id: AtomicU64::new(if workload.needs_objects() {
                t.objects
            } else {
                0
            }),
            stop: AtomicBool::new(false),
            stopped_by: Mutex::new(None),
            live_ops: AtomicU64::new(0),
            live_bytes: AtomicU64::new(0),
            live_errors: AtomicU64::new(0),
            active: AtomicU64::new(args.concurrency as u64),
        }
    }
}

/// Runs `workload` against `ctx`'s endpoint as `opts` say.
pub(crate) fn run(ctx: &Ctx, args: &BenchArgs, workload: Workload, opts: RunOpts) -> Measured {
    let (listing, list_errors) = match workload {
        Workload::List => super::list::listing_for_run(ctx, args, opts.progress),
        _ => (Vec::new(), 0),
    };
    let listed_keys = (workload == Workload::List).then_some(listing.len() as u64);
    let shared = Shared::new(ctx, args, workload, opts, listing);
    let uploads =
        (workload == Workload::Multipart).then(|| TimedUploads::new(args.size, args.part_size));
    let (recorders, t0, prep_errors) = drive(&shared, uploads.as_ref());
    let end = recorders.iter().map(|(_, e)| *e).max().unwrap_or(t0);
    let mut all = Recorder::new(t0);
    for (r, _) in recorders {
        all.merge(r);
    }
    let stopped_by = shared
        .stopped_by
        .lock()
        .expect("stop reason")
        .unwrap_or(StopReason::Count);
    let multipart = uploads.map(|u| {
        let mut client = client_for(ctx, 0, &args.timed.region);
        super::multipart::finish(&u, &mut client, opts.check_len)
    });
    Measured {
        recorder: all,
        elapsed_secs: (end - t0).as_secs_f64(),
        stopped_by,
        prep_errors: prep_errors + list_errors,
        listed_keys,
        multipart,
    }
}

/// The timed phase on `--concurrency` threads (after each wrote its objects, if the workload
/// needs them): every connection's recorder and end, the clock's start, and the failed writes.
fn drive(
    shared: &Shared,
    uploads: Option<&TimedUploads>,
) -> (Vec<(Recorder, Instant)>, Instant, u64) {
    let (ctx, workload) = (shared.ctx, shared.workload);
    let workers = shared.args.concurrency;
    // Two barriers: every pool written, then the clock set; workers start after the second.
    let (written, started) = (Barrier::new(workers + 1), Barrier::new(workers + 1));
    let prep_errors = AtomicU64::new(0);
    let t0_cell: Mutex<Option<Instant>> = Mutex::new(None);
    let (recorders, t0) = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let (written, started) = (&written, &started);
                let (prep_errors, t0_cell) = (&prep_errors, &t0_cell);
                s.spawn(move || {
                    let mut client = client_for(ctx, w, &shared.args.timed.region);
                    let pool = match workload.needs_objects() {
                        true => prepare(shared, &mut client, w, workers, prep_errors),
                        false => Vec::new(),
                    };
                    written.wait();
                    started.wait();
                    let t0 = t0_cell.lock().expect("t0 lock").expect("t0 set");
                    let done = match uploads {
                        Some(u) => super::multipart::work(shared, u, &mut client, t0),
                        None => work(shared, &mut client, w, pool, t0),
                    };
                    shared.worker_done();
                    done
                })
            })
            .collect();
        written.wait();
        let t0 = Instant::now();
        *t0_cell.lock().expect("t0 lock") = Some(t0);
        started.wait();
        monitor(shared, t0);
        let recorders: Vec<(Recorder, Instant)> = handles
            .into_iter()
            .map(|h| h.join().expect("bench worker panicked"))
            .collect();
        (recorders, t0)
    });
    (recorders, t0, prep_errors.into_inner())
}

/// Connection `w`'s client: endpoints of a comma list take turns.
fn client_for(ctx: &Ctx, w: usize, region: &str) -> Client {
    let endpoint: &Endpoint = &ctx.endpoints[w % ctx.endpoints.len()];
    let mut c = Client::new(endpoint.clone(), ctx.creds.clone(), ctx.payload)
        .counting(ctx.sent.clone())
        .in_region(region);
    let _ = c.connect();
    c
}

/// Writes connection `w`'s share of the objects (ids `w`, `w + workers`, ...), untimed;
/// returns the pool of (id, size) written.
fn prepare(
    shared: &Shared,
    client: &mut Client,
    w: usize,
    workers: usize,
    errors: &AtomicU64,
) -> Vec<(u64, u64)> {
    let mut pool = Vec::new();
    for id in (w as u64..shared.args.timed.objects).step_by(workers) {
        if shared.ctx.is_interrupted() {
            break;
        }
        let size = shared.size_of(id);
        let body = shared.ctx.small_body(id, size);
        match ops::put(client, &shared.path(id), body, shared.args.timed.checksum).error {
            None => pool.push((id, size)),
            Some(_) => {
                errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    pool
}

/// Picks the next operation by the mix; an operation that needs an object falls back to a
/// PUT when the pool is empty (or, with no PUT in the mix, ends the worker: `None`).
fn choose(mix: &Mix, rng: &mut Rng, pool_empty: bool) -> Option<OpKind> {
    let mut x = rng.below(u64::from(mix.total())) as u32;
    let mut kind = OpKind::Delete;
    for (k, wgt) in [
        (OpKind::Get, mix.get),
        (OpKind::Stat, mix.stat),
        (OpKind::Put, mix.put),
    ] {
        if x < wgt {
            kind = k;
            break;
        }
        x -= wgt;
    }
    match (kind, pool_empty) {
        (OpKind::Put, _) | (_, false) => Some(kind),
        _ if mix.put > 0 => Some(OpKind::Put),
        _ => None,
    }
}

/// One connection's timed loop (every workload but multipart); returns its recorder and when
/// it stopped.
fn work(
    shared: &Shared,
    client: &mut Client,
    w: usize,
    mut pool: Vec<(u64, u64)>,
    t0: Instant,
) -> (Recorder, Instant) {
    let mut rec = Recorder::new(t0);
    let mut rng = Rng::new(0x5EED + w as u64);
    while !shared.stopped() {
        // No operation left for this connection (delete: its objects are gone), before it
        // takes a ticket, so the run still makes --count operations.
        let kind = match shared.workload {
            Workload::List => (!shared.listing.is_empty()).then_some(OpKind::List),
            _ => choose(&shared.mix, &mut rng, pool.is_empty()),
        };
        let Some(kind) = kind else {
            break;
        };
        let Some(ticket) = shared.take_ticket(t0) else {
            if shared.count_reached() {
                shared.stop_with(StopReason::Count);
            }
            break;
        };
        let start = Instant::now();
        let o = one_op(shared, client, kind, ticket, &mut pool, &mut rng);
        shared.account(&mut rec, kind, start, &o);
    }
    (rec, Instant::now())
}

impl Shared<'_> {
    /// A connection left its timed loop; the last one ends the run (by `--count` when every
    /// ticket was taken, else because no operation was left).
    fn worker_done(&self) {
        if self.active.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.stop_with(match self.count_reached() {
                true => StopReason::Count,
                false => StopReason::Exhausted,
            });
        }
    }
}

/// Sleeps until `due` in short steps; `false` if the run was stopped meanwhile.
fn wait_until(shared: &Shared, due: Instant) -> bool {
    loop {
        if shared.stopped() {
            return false;
        }
        let left = due.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        std::thread::sleep(left.min(MONITOR_TICK));
    }
}

/// Runs one operation of `kind` (ticket `ticket`) on this connection's pool.
fn one_op(
    shared: &Shared,
    client: &mut Client,
    kind: OpKind,
    ticket: u64,
    pool: &mut Vec<(u64, u64)>,
    rng: &mut Rng,
) -> Outcome {
    let len = |size: u64| shared.opts.check_len.then_some(size);
    match kind {
        OpKind::Put => {
            let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
            let size = shared.size_of(id);
            let body = shared.ctx.small_body(id, size);
            let o = ops::put(client, &shared.path(id), body, shared.args.timed.checksum);
            if o.error.is_none() {
                pool.push((id, size));
            }
            o
        }
        OpKind::Get | OpKind::Stat => {
            let (id, size) = pool[rng.below(pool.len() as u64) as usize];
            match kind {
                OpKind::Get => ops::get(client, &shared.path(id), len(size)),
                _ => ops::stat(client, &shared.path(id), len(size)),
            }
        }
        OpKind::Delete => {
            let (id, _) = pool.swap_remove(rng.below(pool.len() as u64) as usize);
            ops::delete(client, &shared.path(id))
        }
        OpKind::List => super::list::timed_page(
            client,
            &shared.ctx.bucket,
            &shared.listing,
            shared.args.page_size,
            ticket,
        ),
        OpKind::MpuCreate | OpKind::MpuPart | OpKind::MpuComplete => {
            unreachable!("multipart operations run in multipart::work")
        }
    }
}

/// Watches the run: the progress line, the time cap, `--autoterm` and Ctrl-C. Returns once
/// every worker has stopped (they stop on `shared.stop` or their own conditions).
fn monitor(shared: &Shared, t0: Instant) {
    let (duration, progress) = (shared.opts.duration, shared.opts.progress);
    let tty = std::io::stderr().is_terminal();
    let mut per_sec: Vec<(u64, u64)> = Vec::new();
    let (mut last_ops, mut last_bytes) = (0u64, 0u64);
    let mut next_sec = 1u64;
    loop {
        std::thread::sleep(MONITOR_TICK);
        let now = t0.elapsed();
        if shared.ctx.is_interrupted() {
            shared.stop_with(StopReason::Interrupted);
        } else if now >= duration {
            shared.stop_with(StopReason::Duration);
        }
        let done = shared.stop.load(Ordering::Relaxed);
        if now.as_secs() >= next_sec || done {
            let (ops, bytes) = (
                shared.live_ops.load(Ordering::Relaxed),
                shared.live_bytes.load(Ordering::Relaxed),
            );
            per_sec.push((ops - last_ops, bytes - last_bytes));
            (last_ops, last_bytes) = (ops, bytes);
            next_sec = now.as_secs() + 1;
            if progress && (tty || next_sec.is_multiple_of(PROGRESS_PLAIN_INTERVAL_SECS)) {
                print_progress(shared, now, duration, &per_sec, tty);
            }
            if shared.args.timed.autoterm && steady(&per_sec, shared.args.timed.trim_secs) {
                shared.stop_with(StopReason::Autoterm);
            }
        }
        if done {
            break;
        }
    }
    if progress && tty {
        eprintln!();
    }
}

/// One progress line: elapsed, last second's ops/s and MiB/s, errors, time left.
fn print_progress(
    shared: &Shared,
    now: Duration,
    duration: Duration,
    per_sec: &[(u64, u64)],
    tty: bool,
) {
    let (ops, bytes) = per_sec.last().copied().unwrap_or((0, 0));
    let line = format!(
        "  {:>4} s  {:>9} ops/s  {:>9.2} MiB/s  errors {}  left {} s",
        now.as_secs(),
        ops,
        bytes as f64 / (1024.0 * 1024.0),
        shared.live_errors.load(Ordering::Relaxed),
        duration.saturating_sub(now).as_secs()
    );
    if tty {
        eprint!("\r{line}");
    } else {
        eprintln!("{line}");
    }
}

/// `--autoterm`: the last [`AUTOTERM_WINDOW_SECS`] per-second values (bytes, or operations
/// when no bytes move) after the warm-up all lie within [`AUTOTERM_SPREAD_PCT`] of their mean.
pub(crate) fn steady(per_sec: &[(u64, u64)], trim_secs: u64) -> bool {
    let usable = per_sec.len().saturating_sub(trim_secs as usize);
    if usable < AUTOTERM_WINDOW_SECS {
        return false;
    }
    let last = &per_sec[per_sec.len() - AUTOTERM_WINDOW_SECS..];
    let by_bytes = last.iter().any(|&(_, b)| b > 0);
    let vals: Vec<f64> = last
        .iter()
        .map(|&(o, b)| if by_bytes { b as f64 } else { o as f64 })
        .collect();
    let mean = vals.iter().sum::<f64>() / vals.len() as f64;
    mean > 0.0
        && vals
            .iter()
            .all(|v| (v - mean).abs() <= mean * AUTOTERM_SPREAD_PCT / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steady_needs_ten_seconds_within_the_spread() {
        let flat: Vec<(u64, u64)> = (0..12).map(|i| (100 + i % 3, 0)).collect();
        assert!(steady(&flat, 1));
        assert!(!steady(&flat[..10], 1), "ten values but one is warm-up");
        let mut bumpy = flat.clone();
        bumpy[8] = (120, 0);
        assert!(!steady(&bumpy, 1));
        let bytes: Vec<(u64, u64)> = (0..11).map(|i| (i * 50, 1000)).collect();
        assert!(steady(&bytes, 1), "bytes decide when bytes move");
        assert!(!steady(&vec![(0, 0); 20], 0));
    }

    #[test]
    fn choose_follows_the_mix_and_falls_back() {
        let mix = Mix {
            get: 45,
            stat: 30,
            put: 15,
            delete: 10,
        };
        let mut rng = Rng::new(3);
        let mut counts = [0u32; 4];
        for _ in 0..100_000 {
            counts[choose(&mix, &mut rng, false).unwrap().index()] += 1;
        }
        // PUT, GET, STAT, DELETE within 1 point of 15/45/30/10 percent.
        for (got, want) in counts.iter().zip([15_000, 45_000, 30_000, 10_000]) {
            assert!((i64::from(*got) - want).abs() < 1000, "{counts:?}");
        }
        for _ in 0..100 {
            assert_eq!(choose(&mix, &mut rng, true), Some(OpKind::Put));
        }
        let delete_only = Mix {
            get: 0,
            stat: 0,
            put: 0,
            delete: 1,
        };
        assert_eq!(choose(&delete_only, &mut rng, true), None);
    }
}
