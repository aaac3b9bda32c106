//! Power cuts, not only `kill -9`: the server's data directory is on an ext4 filesystem (with
//! journal, default barriers) on a loop device (`--direct-io=on`) whose backing file is served
//! by a FUSE filesystem written for this test (`tests/powercut/cutdisk.rs`). That FUSE layer
//! keeps every write in memory until the image is fsynced (which the loop device does for each
//! REQ_OP_FLUSH) and, at the cut, drops everything not yet flushed and every later write.
//!
//! A cut: the disk goes dead first, then the server gets SIGKILL (so nothing it writes after
//! the cut point survives), then ext4 is unmounted, the loop device detached and the FUSE
//! unmounted; a fresh FUSE over the same image (only what was flushed), a new loop device,
//! `fsck.ext4 -fy` (whatever it fixed is reported), mount, and the server starts on the same
//! data directory with no manual repair. Then, as in `tests/crash.rs` (the model is shared, in
//! `tests/common/workload.rs`): every acknowledged write reads back whole (SHA-256), deleted
//! keys stay deleted, writes in flight at the cut are whole old or whole new, ListObjectsV2
//! lists exactly the readable keys, no leftovers.
//!
//! First a self-check of the rig: a file written and fsynced must survive a cut (and the fsync
//! must reach the FUSE fsync handler); an `O_DIRECT` overwrite never flushed and a file written
//! without fsync must not. Then a negative control: a server run with `--fsync never` must lose
//! acknowledged PUTs at a cut, and the check must see it.
//!
//! Scenarios, each for a number of rounds:
//! - `steady`: [`WRITERS`] threads on two buckets PUT small (1-8 KiB) and a few large (1-3 MiB)
//!   objects, DELETE, and complete a few multipart uploads; the cut comes at a random moment;
//! - `burst`: the writers do a short burst of acknowledged writes and stop; the cut comes 0-20 ms
//!   after the last acknowledgement (around the flushes that follow writes);
//! - `first-start`: the server starts on an empty data directory while a client creates a
//!   bucket and PUTs; the cut comes 1 ms-1 s after the launch; the server must then start.
//!
//! Needs root, `/dev/fuse`, loop devices, mkfs.ext4 and fsck.ext4; otherwise it prints why and
//! passes without testing anything. Environment: `RINGSTORE_POWERCUT_SEED` (default: from the
//! clock; printed), `RINGSTORE_POWERCUT_ROUNDS` (rounds per scenario, default 20),
//! `RINGSTORE_POWERCUT_SCENARIOS` (comma-separated subset of `steady,burst,first-start`),
//! `RINGSTORE_POWERCUT_SECONDS` (no new round after this, default 120),
//! `RINGSTORE_POWERCUT_SERVER_ARGS` (extra `ringstore serve` flags, default
//! `--log-segment-kib 256 --checkpoint-interval 64KiB` so compaction, segment reuse and
//! checkpoints run during the cuts; e.g. add `--fsync never` to see the test catch lost
//! writes).

mod common;
#[path = "powercut/cutdisk.rs"]
mod cutdisk;
#[path = "powercut/rig.rs"]
mod rig;

use common::workload::*;
use common::*;
use rig::{FsckReport, Rig};
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

const KIB: usize = 1024;
/// Size of the sparse disk image (under `CARGO_TARGET_TMPDIR`).
const IMAGE_BYTES: u64 = 1024 * MIB as u64;
const WRITERS: usize = 4;
const SERVER_CORES: usize = 2;
/// Server flags unless `RINGSTORE_POWERCUT_SERVER_ARGS` says otherwise: small log segments, so
/// compaction and segment reuse run while the cuts land.
const DEFAULT_SERVER_ARGS: &str = "--log-segment-kib 256 --checkpoint-interval 64KiB";
const DEFAULT_ROUNDS: usize = 20;
/// No new round starts after this long.
const DEFAULT_TIME_BUDGET: Duration = Duration::from_secs(120);
/// `steady`: the cut comes this long after the writers start.
const STEADY_CUT_MIN_MS: u64 = 100;
const STEADY_CUT_MAX_MS: u64 = 1500;
/// `burst`: operations per writer, and the pause between the last answer and the cut.
const BURST_OPS_MIN: u64 = 5;
const BURST_OPS_MAX: u64 = 40;
const BURST_CUT_MAX_MS: u64 = 20;
/// `first-start`: the cut comes this long after the launch (log-uniform in between).
const FIRST_START_CUT_MIN_MS: u64 = 1;
const FIRST_START_CUT_MAX_MS: u64 = 1000;
/// `first-start`: the client's PUTs (1-8 KiB each) stop after this many.
const FIRST_START_PUTS_MAX: usize = 10_000;
/// Self-check: the bytes of each probe file.
const PROBE_BYTES: usize = 256 * KIB;
/// Negative control: PUTs of 4 KiB to this bucket with `--fsync never`, under a journal commit
/// interval far longer than the control takes.
const CONTROL_BUCKET: &str = "control";
const CONTROL_PUTS: usize = 20;
const CONTROL_COMMIT_INTERVAL_SECONDS: u32 = 600;
/// Alignment of `O_DIRECT` buffers.
const DIRECT_IO_ALIGN_BYTES: usize = 4096;
/// Longest wait for a launched server's listening line in `first-start`.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(30);

/// Mostly 1-8 KiB, 8 % 1-3 MiB.
fn put_size(rng: &mut Rng) -> usize {
    if rng.percent(8) {
        MIB + rng.below(2 * MIB as u64 + 1) as usize
    } else {
        KIB + rng.below(7 * KIB as u64 + 1) as usize
    }
}

/// Two buckets with different owner cores; uploads of one 5 MiB part and a small last one.
static PROFILE: Profile = Profile {
    buckets: ["power-a", "power-b"],
    put_keys_per_writer: 16,
    mp_keys_per_writer: 1,
    delete_percent: 20,
    multipart_percent: 4,
    put_size,
    full_parts: (1, 1),
    answers_end_at_cut: true,
};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// Totals of what the cuts did to the disk and what fsck said.
#[derive(Default)]
struct CutTotals {
    cuts: usize,
    /// 4 KiB blocks written but not flushed, dropped at the cuts.
    blocks_dropped: usize,
    /// Cuts that dropped at least one written block.
    cuts_dropping_blocks: usize,
    journal_replays: usize,
    /// Orphan-inode and free-count fixes (normal after an unclean shutdown).
    fsck_expected_fixes: usize,
    /// Anything else fsck fixed ("where: line").
    fsck_other_fixes: Vec<String>,
}

impl CutTotals {
    /// Records one cut: `dropped` blocks, the FUSE counters of the disk before the cut
    /// (writes, fsyncs) and fsck's report.
    fn note(&mut self, what: &str, dropped: usize, io: (u64, u64), f: &FsckReport) {
        self.cuts += 1;
        self.blocks_dropped += dropped;
        self.cuts_dropping_blocks += (dropped > 0) as usize;
        self.journal_replays += f.journal_replayed as usize;
        self.fsck_expected_fixes += f.expected_fixes.len();
        for l in &f.other_fixes {
            self.fsck_other_fixes.push(format!("{what}: {l}"));
        }
        eprintln!(
            "powercut: {what}: {} writes and {} fsyncs reached the disk since it came up; the cut dropped {dropped} unflushed 4 KiB blocks; fsck exit {}{}, fixed {:?}{}",
            io.0,
            io.1,
            f.code,
            if f.journal_replayed {
                " (journal replayed)"
            } else {
                ""
            },
            f.expected_fixes,
            if f.other_fixes.is_empty() {
                String::new()
            } else {
                format!(", UNEXPECTED: {:?}", f.other_fixes)
            }
        );
    }
}

/// (writes, fsyncs) the FUSE disk has seen since it was mounted.
fn disk_io(rig: &Rig) -> (u64, u64) {
    let c = rig.disk().counters();
    (
        c.writes.load(Ordering::SeqCst),
        c.fsyncs.load(Ordering::SeqCst),
    )
}

/// The cut: the disk goes dead, then the server gets SIGKILL. Returns the dropped blocks and
/// the disk's (writes, fsyncs) before the cut.
fn cut_and_kill(rig: &Rig, s: &mut Server) -> (usize, (u64, u64)) {
    let io = disk_io(rig);
    let dropped = rig.cut();
    let status = s.kill9();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL),
        "the server exited before the cut: {status:?}; log:\n{}",
        s.log_text()
    );
    (dropped, io)
}

/// Self-check of the rig: fsync reaches the FUSE handler and makes data survive a cut; an
/// `O_DIRECT` overwrite (on the device, never flushed) and a buffered write without fsync (in
/// the page cache) do not survive.
fn self_check(rig: &mut Rig, totals: &mut CutTotals) {
    let dir = rig.mnt().join("probe");
    std::fs::create_dir(&dir).expect("mkdir probe");
    let synced = random_bytes(PROBE_BYTES, 1);
    let direct = random_bytes(PROBE_BYTES, 2);
    let unsynced = random_bytes(PROBE_BYTES, 3);
    let fsyncs_before = rig.disk().counters().fsyncs.load(Ordering::SeqCst);
    {
        let mut f = std::fs::File::create(dir.join("synced")).expect("create probe");
        f.write_all(&synced).expect("write probe");
        f.sync_all().expect("fsync probe");
        std::fs::File::open(&dir)
            .and_then(|d| d.sync_all())
            .expect("fsync probe dir");
    }
    let fsyncs_after = rig.disk().counters().fsyncs.load(Ordering::SeqCst);
    assert!(
        fsyncs_after > fsyncs_before,
        "fsync through ext4 did not reach the FUSE fsync handler: the loop device does not pass \
         REQ_OP_FLUSH on, so the rig cannot model a power cut"
    );
    // Overwrite the fsynced blocks in place with O_DIRECT: the data goes to the device at once
    // (no metadata to commit), but nothing flushes it.
    let writes_before = rig.disk().counters().writes.load(Ordering::SeqCst);
    {
        use std::os::unix::fs::{FileExt as _, OpenOptionsExt as _};
        let f = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_DIRECT)
            .open(dir.join("synced"))
            .expect("open the probe with O_DIRECT");
        let mut buf = vec![0u8; PROBE_BYTES + DIRECT_IO_ALIGN_BYTES];
        let at = buf.as_ptr().align_offset(DIRECT_IO_ALIGN_BYTES);
        buf[at..at + PROBE_BYTES].copy_from_slice(&direct);
        f.write_all_at(&buf[at..at + PROBE_BYTES], 0)
            .expect("O_DIRECT overwrite of the probe");
    }
    let direct_writes = rig.disk().counters().writes.load(Ordering::SeqCst) - writes_before;
    assert!(
        direct_writes > 0,
        "an O_DIRECT write through ext4 did not reach the FUSE disk"
    );
    std::fs::write(dir.join("unsynced"), &unsynced).expect("write unsynced probe");
    let (dropped, io) = (rig.cut(), disk_io(rig));
    let fsck = rig.recover().expect("recover after the self-check cut");
    totals.note("self-check", dropped, io, &fsck);
    assert!(
        dropped >= PROBE_BYTES / 4096,
        "the cut dropped {dropped} blocks, fewer than the O_DIRECT overwrite wrote"
    );
    let got = std::fs::read(dir.join("synced")).expect("read the fsynced probe after the cut");
    assert!(
        got != direct,
        "an O_DIRECT overwrite that was never flushed survived the cut"
    );
    assert!(
        got == synced,
        "the fsynced probe did not survive the cut intact ({} bytes read)",
        got.len()
    );
    let lost = std::fs::read(dir.join("unsynced")).map_or(true, |b| b != unsynced);
    assert!(
        lost,
        "data written without fsync survived the cut: the rig does not drop unflushed writes"
    );
    eprintln!(
        "powercut: self-check passed: fsync reached the FUSE handler ({} FUSE fsyncs for a file \
         and a directory fsync), the fsynced file survived, its O_DIRECT overwrite ({} FUSE \
         writes, never flushed) and a file written without fsync did not; loop dio={}",
        fsyncs_after - fsyncs_before,
        direct_writes,
        rig.loop_dio()
    );
}

/// Negative control: a server run with `--fsync never` gets PUTs acknowledged, the cut comes,
/// and the check must find them lost. The journal commit interval is raised meanwhile, so no
/// timed commit makes them durable by chance.
fn control_fsync_never(rig: &mut Rig, totals: &mut CutTotals) {
    let args = ["--fsync", "never"];
    rig.set_commit_interval(CONTROL_COMMIT_INTERVAL_SECONDS)
        .expect("remount with a long commit interval");
    let mut s = Server::on_data_dir(rig.mnt().join("control"), SERVER_CORES);
    s.start_again_with_args(&args);
    s.create_bucket(CONTROL_BUCKET);
    let mut acked = Vec::new();
    for i in 0..CONTROL_PUTS {
        let key = format!("c{i}");
        let body = random_bytes(4 * KIB, i as u64 + 10);
        let r = s.put(CONTROL_BUCKET, &key, &body, &[]);
        assert_eq!(r.status, 200, "control PUT {key}: {}", r.describe());
        acked.push((key, sha256_hex(&body)));
    }
    let (dropped, io) = cut_and_kill(rig, &mut s);
    let fsck = rig.recover().expect("recover after the control cut");
    totals.note("control (--fsync never)", dropped, io, &fsck);
    s.start_again_with_args(&args);
    let lost = if s.call(&s.req("HEAD", &format!("/{CONTROL_BUCKET}"))).status == 404 {
        acked.len()
    } else {
        acked
            .iter()
            .filter(|(key, sha)| {
                let r = s.get(CONTROL_BUCKET, key);
                r.status != 200 || sha256_hex(&r.body) != *sha
            })
            .count()
    };
    let _ = s.stop();
    assert!(
        lost > 0,
        "negative control: a server with --fsync never lost none of {} acknowledged PUTs at the \
         cut; the rig does not drop what was not flushed",
        acked.len()
    );
    eprintln!(
        "powercut: negative control passed: with --fsync never, {lost} of {} acknowledged PUTs (and the bucket, if all) were lost at the cut and the check saw it",
        acked.len()
    );
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Scenario {
    Steady,
    Burst,
}

/// `steady` or `burst` rounds on the shared data directory `MNT/data`.
#[allow(clippy::too_many_arguments)]
fn write_rounds(
    scenario: Scenario,
    rounds: usize,
    deadline: Instant,
    rng: &mut Rng,
    seed: u64,
    rig: &mut Rig,
    server_args: &[&str],
    totals: &mut CutTotals,
) -> Report {
    let label = match scenario {
        Scenario::Steady => "powercut steady",
        Scenario::Burst => "powercut burst",
    };
    let mut rep = Report::new(label);
    let data = rig.mnt().join(match scenario {
        Scenario::Steady => "steady",
        Scenario::Burst => "burst",
    });
    let mut s = Server::on_data_dir(data, SERVER_CORES);
    s.start_again_with_args(server_args);
    rep.starts = 1;
    for b in PROFILE.buckets {
        s.create_bucket(b);
    }
    let mut writers: Vec<Writer> = (0..WRITERS)
        .map(|i| Writer::new(i, seed ^ scenario as u64, &PROFILE))
        .collect();
    for round in 0..rounds {
        if Instant::now() > deadline {
            eprintln!("{label}: time budget used up after {round} rounds");
            break;
        }
        let port = s.port();
        let killing = Arc::new(AtomicBool::new(false));
        let ops = match scenario {
            Scenario::Steady => WRITER_OPS_MAX,
            Scenario::Burst => {
                (BURST_OPS_MIN + rng.below(BURST_OPS_MAX - BURST_OPS_MIN + 1)) as usize
            }
        };
        let handles: Vec<_> = writers
            .drain(..)
            .map(|mut w| {
                w.port = port;
                let killing = killing.clone();
                std::thread::spawn(move || {
                    w.run_round(&killing, ops);
                    w
                })
            })
            .collect();
        let (dropped, io, when) = match scenario {
            Scenario::Steady => {
                let delay =
                    STEADY_CUT_MIN_MS + rng.below(STEADY_CUT_MAX_MS - STEADY_CUT_MIN_MS + 1);
                std::thread::sleep(Duration::from_millis(delay));
                killing.store(true, Ordering::SeqCst);
                let (dropped, io) = cut_and_kill(rig, &mut s);
                writers = handles
                    .into_iter()
                    .map(|h| h.join().expect("writer thread panicked"))
                    .collect();
                (dropped, io, format!("cut {delay} ms into the writes"))
            }
            Scenario::Burst => {
                writers = handles
                    .into_iter()
                    .map(|h| h.join().expect("writer thread panicked"))
                    .collect();
                let delay = rng.below(BURST_CUT_MAX_MS + 1);
                std::thread::sleep(Duration::from_millis(delay));
                killing.store(true, Ordering::SeqCst);
                let (dropped, io) = cut_and_kill(rig, &mut s);
                (
                    dropped,
                    io,
                    format!("{ops} ops per writer, cut {delay} ms after the last answer"),
                )
            }
        };
        rep.kills += 1;
        let before = rep.stats;
        let mut round_stats = Stats::default();
        for w in &mut writers {
            round_stats.add(&w.stats);
            w.stats = Stats::default();
            for a in w.anomalies.drain(..) {
                rep.violation(round, a);
            }
        }
        rep.stats.add(&round_stats);

        let fsck = rig
            .recover()
            .unwrap_or_else(|e| panic!("{label}: round {round}: recovery of the filesystem: {e}"));
        totals.note(&format!("{label} round {round}"), dropped, io, &fsck);
        s.start_again_with_args(server_args);
        rep.starts += 1;
        let landed_before = rep.in_flight_landed;
        verify(&s, &mut writers, round, &mut rep);
        rep.rounds += 1;
        // A lost bucket is reported; recreated so that later rounds test something.
        for b in PROFILE.buckets {
            if s.call(&s.req("HEAD", &format!("/{b}"))).status == 404 {
                s.create_bucket(b);
            }
        }
        eprintln!(
            "{label}: round {round}: {when}; acked {} PUTs, {} DELETEs, {} completes; {} in flight at the cut, {} of them landed; violations so far {}",
            rep.stats.puts_acked - before.puts_acked,
            rep.stats.deletes_acked - before.deletes_acked,
            rep.stats.completes_acked - before.completes_acked,
            round_stats.in_flight_at_kill,
            rep.in_flight_landed - landed_before,
            rep.violations.len()
        );
    }
    let _ = s.stop();
    let (reused, segments) = reused_segments(&s.data_dir().join("log"));
    eprintln!("{label}: {reused} of {segments} log segments were reused by compaction");
    let from_checkpoint = s.log_text().matches("log replay from checkpoint").count();
    eprintln!(
        "{label}: {from_checkpoint} of {} starts read a checkpoint plus the log tail",
        rep.starts
    );
    eprintln!(
        "{label} summary: rounds {}, cuts {}, PUTs acked {}, DELETEs acked {}, multipart completes acked {} (parts {}), in flight at cuts {}, in-flight changes that landed {}, staging files removed at recovery {}, key reads checked {}, lost {}, violations {}",
        rep.rounds,
        rep.kills,
        rep.stats.puts_acked,
        rep.stats.deletes_acked,
        rep.stats.completes_acked,
        rep.stats.parts_acked,
        rep.stats.in_flight_at_kill,
        rep.in_flight_landed,
        rep.staging_removed,
        rep.objects_checked,
        rep.lost,
        rep.violations.len()
    );
    rep
}

/// What the `first-start` client got acknowledged before the cut.
#[derive(Default)]
struct FirstStartClient {
    listened: bool,
    bucket_acked: bool,
    /// The CreateBucket was sent and not answered (before the cut).
    bucket_in_flight: bool,
    /// (key, SHA-256) of every acknowledged PUT.
    acked: Vec<(String, String)>,
    /// The PUT in flight at the cut.
    in_flight: Option<(String, String)>,
    anomalies: Vec<String>,
}

const FIRST_START_BUCKET: &str = "first";

/// Waits for the listening line, creates the bucket, PUTs until the cut.
fn first_start_client(
    rx: mpsc::Receiver<String>,
    killing: Arc<AtomicBool>,
    seed: u64,
) -> FirstStartClient {
    let mut c = FirstStartClient::default();
    let Ok(line) = rx.recv_timeout(LISTEN_TIMEOUT) else {
        return c;
    };
    let Some(port) = parse_port(&line) else {
        c.anomalies
            .push(format!("unparsable listening line {line:?}"));
        return c;
    };
    c.listened = true;
    // One request on a fresh connection: Some(answer) if it was answered before the cut.
    let send = |req: &Req| -> Option<Response> {
        let mut conn = Conn::try_connect(port).ok()?;
        conn.try_send(&req.build()).ok()?;
        let r = conn.read_final_response(false).ok()?;
        (!killing.load(Ordering::SeqCst)).then_some(r)
    };
    match send(&Req::new(port, "PUT", &format!("/{FIRST_START_BUCKET}"))) {
        Some(r) if r.status == 200 => c.bucket_acked = true,
        Some(r) => {
            c.anomalies
                .push(format!("CreateBucket before the cut: {}", r.describe()));
            return c;
        }
        None => {
            c.bucket_in_flight = true;
            return c;
        }
    }
    let mut rng = Rng::new(seed);
    for i in 0..FIRST_START_PUTS_MAX {
        let key = format!("k{i}");
        let body = random_bytes(KIB + rng.below(7 * KIB as u64 + 1) as usize, rng.next());
        let sha = sha256_hex(&body);
        let req = Req::new(port, "PUT", &format!("/{FIRST_START_BUCKET}/{key}")).body(&body);
        match send(&req) {
            Some(r) if r.status == 200 => c.acked.push((key, sha)),
            Some(r) => {
                c.anomalies
                    .push(format!("PUT {key} before the cut: {}", r.describe()));
                return c;
            }
            None => {
                c.in_flight = Some((key, sha));
                return c;
            }
        }
    }
    c
}

/// `first-start` rounds: each on a new empty data directory.
fn first_start_rounds(
    rounds: usize,
    deadline: Instant,
    rng: &mut Rng,
    rig: &mut Rig,
    server_args: &[&str],
    totals: &mut CutTotals,
) -> Vec<String> {
    let label = "powercut first-start";
    let mut violations = Vec::new();
    let (mut listened, mut buckets, mut puts) = (0, 0, 0);
    for round in 0..rounds {
        if Instant::now() > deadline {
            eprintln!("{label}: time budget used up after {round} rounds");
            break;
        }
        let data = rig.mnt().join(format!("first-{round}"));
        let mut s = Server::on_data_dir(data, SERVER_CORES);
        let killing = Arc::new(AtomicBool::new(false));
        let rx = s.launch(server_args);
        let client = {
            let killing = killing.clone();
            let seed = rng.next();
            std::thread::spawn(move || first_start_client(rx, killing, seed))
        };
        // Log-uniform, so the early milliseconds of the start get as many cuts as the late ones.
        let ratio = FIRST_START_CUT_MAX_MS as f64 / FIRST_START_CUT_MIN_MS as f64;
        let delay = (FIRST_START_CUT_MIN_MS as f64 * ratio.powf(rng.below(1001) as f64 / 1000.0))
            .round() as u64;
        std::thread::sleep(Duration::from_millis(delay));
        killing.store(true, Ordering::SeqCst);
        let (dropped, io) = cut_and_kill(rig, &mut s);
        let c = client.join().expect("first-start client panicked");
        let fsck = rig
            .recover()
            .unwrap_or_else(|e| panic!("{label}: round {round}: recovery of the filesystem: {e}"));
        totals.note(&format!("{label} round {round}"), dropped, io, &fsck);
        let mut bad = |msg: String| {
            eprintln!("{label}: round {round}: VIOLATION: {msg}");
            violations.push(format!("{label} round {round}: {msg}"));
        };
        for a in &c.anomalies {
            bad(a.clone());
        }
        listened += c.listened as usize;
        buckets += c.bucket_acked as usize;
        puts += c.acked.len();

        // The server starts on whatever the cut left (a panic here is the finding).
        s.start_again_with_args(server_args);
        if !s
            .log_text()
            .lines()
            .any(|l| l.starts_with("ringstore: recovery:"))
        {
            bad("no recovery line in the log of the start after the cut".into());
        }
        let head = s.call(&s.req("HEAD", &format!("/{FIRST_START_BUCKET}")));
        let bucket_there = head.status == 200;
        if c.bucket_acked && !bucket_there {
            bad(format!(
                "acknowledged bucket {FIRST_START_BUCKET} is gone: HEAD {}",
                head.status
            ));
        } else if !c.bucket_acked && !c.bucket_in_flight && bucket_there {
            bad("a bucket nobody created exists".into());
        } else if !bucket_there && head.status != 404 {
            bad(format!("HEAD bucket: {}", head.describe()));
        }
        if bucket_there {
            let mut readable = Vec::new();
            for (key, sha) in &c.acked {
                let r = s.get(FIRST_START_BUCKET, key);
                if r.status != 200 || sha256_hex(&r.body) != *sha {
                    bad(format!(
                        "acknowledged PUT {key} lost: HTTP {} ({} bytes)",
                        r.status,
                        r.body.len()
                    ));
                } else {
                    readable.push(key.clone());
                }
            }
            if let Some((key, sha)) = &c.in_flight {
                let r = s.get(FIRST_START_BUCKET, key);
                match r.status {
                    200 if sha256_hex(&r.body) == *sha => readable.push(key.clone()),
                    404 => {}
                    _ => bad(format!(
                        "in-flight PUT {key} neither absent nor whole: HTTP {} ({} bytes)",
                        r.status,
                        r.body.len()
                    )),
                }
            }
            readable.sort();
            let listed = s.list_keys(FIRST_START_BUCKET);
            if listed != readable {
                bad(format!(
                    "listing {listed:?} differs from the readable keys {readable:?}"
                ));
            }
        }
        let staging = s.staging_files();
        if !staging.is_empty() {
            bad(format!("staging files left after startup: {staging:?}"));
        }
        let status = s.stop();
        if !status.success() {
            bad(format!("exit status after SIGTERM: {status:?}"));
        }
        // Each round starts on an empty directory: free the last one's space (log segments are
        // preallocated) so the small test filesystem never fills up.
        let _ = std::fs::remove_dir_all(rig.mnt().join(format!("first-{round}")));
        eprintln!(
            "{label}: round {round}: cut {delay} ms after the launch; listening before the cut: {}, bucket acked: {}, PUTs acked: {}; the server started again",
            c.listened,
            c.bucket_acked,
            c.acked.len()
        );
    }
    eprintln!(
        "{label} summary: {listened} launches listened before the cut, {buckets} buckets and {puts} PUTs acked, violations {}",
        violations.len()
    );
    violations
}

#[test]
fn acknowledged_writes_survive_power_cuts() {
    if let Some(why) = rig::unavailable() {
        eprintln!("powercut: SKIPPED: {why}");
        return;
    }
    let seed: u64 = env_or(
        "RINGSTORE_POWERCUT_SEED",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1),
    );
    let rounds: usize = env_or("RINGSTORE_POWERCUT_ROUNDS", DEFAULT_ROUNDS);
    let budget = Duration::from_secs(env_or(
        "RINGSTORE_POWERCUT_SECONDS",
        DEFAULT_TIME_BUDGET.as_secs(),
    ));
    let scenarios: Vec<String> = std::env::var("RINGSTORE_POWERCUT_SCENARIOS")
        .unwrap_or_else(|_| "steady,burst,first-start".into())
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    for s in &scenarios {
        assert!(
            ["steady", "burst", "first-start"].contains(&s.as_str()),
            "RINGSTORE_POWERCUT_SCENARIOS: unknown scenario {s:?}"
        );
    }
    let server_args_text = std::env::var("RINGSTORE_POWERCUT_SERVER_ARGS")
        .unwrap_or_else(|_| DEFAULT_SERVER_ARGS.to_string());
    let server_args: Vec<&str> = server_args_text.split_whitespace().collect();
    eprintln!(
        "powercut: seed {seed} (RINGSTORE_POWERCUT_SEED={seed} repeats it), {rounds} rounds of {scenarios:?}, server flags {server_args:?}"
    );
    let owners = PROFILE
        .buckets
        .map(|b| ringstore::storage::owner_of(b, SERVER_CORES));
    if owners[0] == owners[1] {
        eprintln!(
            "powercut: note: both buckets are owned by core {}",
            owners[0]
        );
    }
    let started = Instant::now();
    let mut rng = Rng::new(seed);
    let mut totals = CutTotals::default();
    let mut rig = match Rig::create(IMAGE_BYTES) {
        Ok(r) => r,
        Err(e) => panic!("powercut: setting up FUSE + loop + ext4 failed: {e}"),
    };
    eprintln!(
        "powercut: ext4 on {} (dio={}) on the FUSE image, mounted at {}",
        rig.loop_dev(),
        rig.loop_dio(),
        rig.mnt().display()
    );
    self_check(&mut rig, &mut totals);
    control_fsync_never(&mut rig, &mut totals);

    let per_scenario = budget / scenarios.len().max(1) as u32;
    let mut lost = 0;
    let mut violations = Vec::new();
    for (i, name) in scenarios.iter().enumerate() {
        let deadline = started + per_scenario * (i as u32 + 1);
        match name.as_str() {
            "steady" | "burst" => {
                let scenario = if name == "steady" {
                    Scenario::Steady
                } else {
                    Scenario::Burst
                };
                let rep = write_rounds(
                    scenario,
                    rounds,
                    deadline,
                    &mut rng,
                    seed,
                    &mut rig,
                    &server_args,
                    &mut totals,
                );
                assert!(
                    rep.stats.puts_acked > 0,
                    "{name}: the writers did too little to test anything"
                );
                lost += rep.lost;
                violations.extend(rep.violations.iter().map(|v| format!("{name}: {v}")));
            }
            _ => violations.extend(first_start_rounds(
                rounds,
                deadline,
                &mut rng,
                &mut rig,
                &server_args,
                &mut totals,
            )),
        }
    }
    eprintln!(
        "powercut summary: seed {seed}, {} cuts ({} of them dropped unflushed writes, {} blocks of 4 KiB in all), journal replayed {} times, {} expected fsck fixes (orphans, free counts), other fsck fixes: {:?}; lost {lost}, violations {}, {:.1} s",
        totals.cuts,
        totals.cuts_dropping_blocks,
        totals.blocks_dropped,
        totals.journal_replays,
        totals.fsck_expected_fixes,
        totals.fsck_other_fixes,
        violations.len(),
        started.elapsed().as_secs_f64()
    );
    violations.extend(
        totals
            .fsck_other_fixes
            .iter()
            .map(|f| format!("fsck.ext4 fixed more than an unclean shutdown leaves: {f}")),
    );
    assert_eq!(
        lost, 0,
        "acknowledged data lost at power cuts (seed {seed}): {violations:#?}"
    );
    assert!(
        violations.is_empty(),
        "power-cut violations (seed {seed}): {violations:#?}"
    );
}
