//! Crash safety against the real server: acknowledged writes survive `kill -9`.
//!
//! Each round lets [`WRITERS`] threads PUT, DELETE and complete multipart uploads over raw
//! signed HTTP, SIGKILLs the server after a random delay, starts it again on the same data
//! directory and checks that
//! - every acknowledged PUT / CompleteMultipartUpload reads back whole (SHA-256), unless a later
//!   acknowledged change replaced it; every acknowledged delete stays deleted; a request that was
//!   in flight at the kill may or may not have landed, but only whole;
//! - ListObjectsV2 (paginated) lists exactly the keys that read back;
//! - nothing is left behind: `DATA/tmp` is empty after startup, every file in
//!   `DATA/buckets/*/objects` belongs to a listed key, every directory in `DATA/buckets/*/uploads`
//!   is either the data of a listed multipart object or an upload ListMultipartUploads reports
//!   (those are aborted, and their directories must go);
//! - the server logs its recovery line at every start.
//!
//! The server runs with 256 KiB log segments and a checkpoint every 64 KiB of log, so
//! compaction, segment reuse and checkpoints run throughout (the test reports how many
//! segments were reused, read from their headers, and how many starts read a checkpoint).
//!
//! The writers and the model of acknowledged writes are in `tests/common/workload.rs` (shared
//! with `tests/powercut.rs`).
//!
//! `RINGSTORE_CRASH_ROUNDS` sets the number of rounds (default 40), `RINGSTORE_CRASH_SECONDS`
//! the time after which no new round starts (default 70), `RINGSTORE_CRASH_SEED` the random
//! seed (default: from the clock; printed, so a failing run can be repeated).

mod common;

use common::workload::*;
use common::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const WRITERS: usize = 8;
/// Small log segments, so the workload's overwrites and deletes keep compaction (and segment
/// reuse) running while the kills land.
const SERVER_ARGS: &[&str] = &["--log-segment-kib", "256", "--checkpoint-interval", "64KiB"];
const DEFAULT_ROUNDS: usize = 40;
/// No new round starts after this long (the whole test stays within ~90 s on a slow host).
const ROUNDS_TIME_BUDGET: Duration = Duration::from_secs(70);
/// Largest single PUT.
const PUT_MAX_BYTES: u64 = 3 * MIB as u64;
/// Kill delay after the writers start: 50..=800 ms.
const KILL_DELAY_MIN_MS: u64 = 50;
const KILL_DELAY_MAX_MS: u64 = 800;

/// PUT sizes: 35 % at the edges of 4 KiB pages and 1 MiB, the rest uniform up to 3 MiB.
fn put_size(rng: &mut Rng) -> usize {
    if rng.percent(35) {
        const SPECIAL: [usize; 9] = [0, 1, 4095, 4096, 4097, 8192, MIB - 1, MIB, MIB + 1];
        SPECIAL[rng.below(SPECIAL.len() as u64) as usize]
    } else {
        rng.below(PUT_MAX_BYTES + 1) as usize
    }
}

/// Two buckets with different owner cores (FNV-1a of the name % 2), so both cores commit; 24
/// PUT keys and 2 multipart keys (each up to ~16 MiB) per writer.
static PROFILE: Profile = Profile {
    buckets: ["crash-a", "crash-b"],
    put_keys_per_writer: 24,
    mp_keys_per_writer: 2,
    delete_percent: 20,
    multipart_percent: 12,
    put_size,
    full_parts: (2, 3),
    answers_end_at_cut: false,
};

#[test]
fn acknowledged_writes_survive_kill_9() {
    let rounds: usize = std::env::var("RINGSTORE_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_ROUNDS);
    let seed: u64 = std::env::var("RINGSTORE_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    let budget = std::env::var("RINGSTORE_CRASH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_secs)
        .unwrap_or(ROUNDS_TIME_BUDGET);
    eprintln!("crash: {rounds} rounds, seed {seed} (RINGSTORE_CRASH_SEED={seed} repeats it)");
    let started = Instant::now();
    let mut rng = Rng::new(seed);
    let mut rep = Report::new("crash");

    let owners = PROFILE.buckets.map(|b| ringstore::storage::owner_of(b, 2));
    if owners[0] == owners[1] {
        eprintln!("crash: note: both buckets are owned by core {}", owners[0]);
    }
    let mut s = Server::start_with_args(2, SERVER_ARGS);
    rep.starts = 1;
    for b in PROFILE.buckets {
        s.create_bucket(b);
    }
    let mut writers: Vec<Writer> = (0..WRITERS)
        .map(|i| Writer::new(i, seed, &PROFILE))
        .collect();

    for round in 0..rounds {
        if started.elapsed() > budget {
            eprintln!("crash: time budget of {budget:?} used up after {round} rounds");
            break;
        }
        let port = s.port();
        let killing = Arc::new(AtomicBool::new(false));
        let handles: Vec<_> = writers
            .drain(..)
            .map(|mut w| {
                w.port = port;
                let killing = killing.clone();
                std::thread::spawn(move || {
                    w.run_round(&killing, WRITER_OPS_MAX);
                    w
                })
            })
            .collect();
        let delay = KILL_DELAY_MIN_MS + rng.below(KILL_DELAY_MAX_MS - KILL_DELAY_MIN_MS + 1);
        std::thread::sleep(Duration::from_millis(delay));
        // Set before the kill: a failure seen while it is clear is not the kill's doing.
        killing.store(true, Ordering::SeqCst);
        let status = s.kill9();
        rep.kills += 1;
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(libc::SIGKILL),
            "the server exited before the kill: {status:?}; log:\n{}",
            s.log_text()
        );
        writers = handles
            .into_iter()
            .map(|h| h.join().expect("writer thread panicked"))
            .collect();
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

        s.start_again_with_args(SERVER_ARGS);
        rep.starts += 1;
        let landed_before = rep.in_flight_landed;
        verify(&s, &mut writers, round, &mut rep);
        rep.rounds += 1;
        eprintln!(
            "crash: round {round}: kill after {delay} ms; acked {} PUTs, {} DELETEs, {} completes ({} parts); {} in flight at the kill, {} of them landed; violations so far {}",
            rep.stats.puts_acked - before.puts_acked,
            rep.stats.deletes_acked - before.deletes_acked,
            rep.stats.completes_acked - before.completes_acked,
            rep.stats.parts_acked - before.parts_acked,
            round_stats.in_flight_at_kill,
            rep.in_flight_landed - landed_before,
            rep.violations.len()
        );
    }

    let (reused, segments) = reused_segments(&s.data_dir().join("log"));
    eprintln!("crash: {reused} of {segments} log segments were reused by compaction");
    let from_checkpoint = s.log_text().matches("log replay from checkpoint").count();
    eprintln!(
        "crash: {from_checkpoint} of {} starts read a checkpoint plus the log tail",
        rep.starts
    );
    if rep.rounds >= 10 {
        assert!(
            reused > 0,
            "compaction never reused a segment in {} rounds",
            rep.rounds
        );
        assert!(
            from_checkpoint > 0,
            "no start read a checkpoint in {} rounds",
            rep.rounds
        );
    }
    eprintln!(
        "crash summary: seed {seed}, rounds {}, kills {}, writes acked {}, deletes acked {}, multipart completes acked {} (uploads created {}, parts {}), requests in flight at kills {}, in-flight changes that landed {}, staging files removed at recovery {}, uploads aborted {}, key reads checked {}, lost {}, other violations {}, {:.1} s",
        rep.rounds,
        rep.kills,
        rep.stats.puts_acked,
        rep.stats.deletes_acked,
        rep.stats.completes_acked,
        rep.stats.creates_acked,
        rep.stats.parts_acked,
        rep.stats.in_flight_at_kill,
        rep.in_flight_landed,
        rep.staging_removed,
        rep.uploads_aborted,
        rep.objects_checked,
        rep.lost,
        rep.violations.len() - rep.lost.min(rep.violations.len()),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(
        rep.lost, 0,
        "acknowledged data lost (seed {seed}): {:#?}",
        rep.violations
    );
    assert!(
        rep.violations.is_empty(),
        "crash-safety violations (seed {seed}): {:#?}",
        rep.violations
    );
    assert!(
        rep.stats.puts_acked > 0 && rep.stats.deletes_acked > 0,
        "the writers did too little to test anything"
    );
}
