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
//! Every writer works on its own keys, so the order of the changes to one key is the order in
//! which that writer made them. The model of one key is the list of states it may be in: the
//! last acknowledged one first, then those an in-flight request may have produced; the check
//! after a restart collapses it to the state observed.
//!
//! `RINGSTORE_CRASH_ROUNDS` sets the number of rounds (default 40), `RINGSTORE_CRASH_SECONDS`
//! the time after which no new round starts (default 70), `RINGSTORE_CRASH_SEED` the random
//! seed (default: from the clock; printed, so a failing run can be repeated).

mod common;

use common::*;
use sha2::{Digest as _, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Two buckets with different owner cores (FNV-1a of the name % 2), so both cores commit.
const BUCKETS: [&str; 2] = ["crash-a", "crash-b"];
const WRITERS: usize = 8;
const DEFAULT_ROUNDS: usize = 40;
/// No new round starts after this long (the whole test stays within ~90 s on a slow host).
const ROUNDS_TIME_BUDGET: Duration = Duration::from_secs(70);
/// Keys a writer PUTs to and deletes (`w<N>/k<i>`).
const PUT_KEYS_PER_WRITER: u64 = 24;
/// Keys a writer completes multipart uploads into (`w<N>/m<i>`); each holds up to ~16 MiB.
const MP_KEYS_PER_WRITER: u64 = 2;
const MIB: usize = 1024 * 1024;
/// Size of every multipart part but the last (S3's minimum).
const PART_BYTES: usize = 5 * MIB;
/// Largest single PUT.
const PUT_MAX_BYTES: u64 = 3 * MIB as u64;
/// Kill delay after the writers start: 50..=800 ms.
const KILL_DELAY_MIN_MS: u64 = 50;
const KILL_DELAY_MAX_MS: u64 = 800;
/// Safety bounds of one writer in one round (the kill normally ends it much earlier).
const WRITER_OPS_MAX: usize = 100_000;
const WRITER_TIME_MAX: Duration = Duration::from_secs(30);
/// A writer gives up on a round after this many unexpected failures.
const WRITER_ANOMALIES_MAX: usize = 20;
/// ListObjectsV2 page size (small, so pagination is exercised).
const LIST_PAGE: usize = 37;

/// xorshift64* generator (no external crate).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn percent(&mut self, p: u64) -> bool {
        self.below(100) < p
    }
}

/// What one key holds.
#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    Absent,
    Present {
        sha: String,
        size: usize,
        /// The upload whose parts hold the data (multipart objects).
        upload: Option<String>,
    },
}

impl State {
    fn describe(&self) -> String {
        match self {
            State::Absent => "absent".to_string(),
            State::Present { sha, size, upload } => match upload {
                Some(u) => format!("{size} bytes sha256 {} (multipart {u})", &sha[..16]),
                None => format!("{size} bytes sha256 {}", &sha[..16]),
            },
        }
    }
}

/// An upload whose CreateMultipartUpload was acknowledged and whose completion was not.
struct PendingUpload {
    key: String,
    id: String,
}

#[derive(Default, Clone, Copy, Debug)]
struct Stats {
    puts_acked: usize,
    deletes_acked: usize,
    creates_acked: usize,
    parts_acked: usize,
    completes_acked: usize,
    /// Requests sent without a full response when the server died.
    in_flight_at_kill: usize,
}

impl Stats {
    fn add(&mut self, o: &Stats) {
        self.puts_acked += o.puts_acked;
        self.deletes_acked += o.deletes_acked;
        self.creates_acked += o.creates_acked;
        self.parts_acked += o.parts_acked;
        self.completes_acked += o.completes_acked;
        self.in_flight_at_kill += o.in_flight_at_kill;
    }
}

/// Result of one request on a writer's connection.
enum Outcome {
    /// A complete response arrived.
    Done(Response),
    /// Nothing reached the server (connect failed).
    NotSent,
    /// Sent (at least partly) without a complete response: it may or may not have landed.
    Lost(String),
}

/// One writer thread's keys, model and bookkeeping (kept across rounds).
struct Writer {
    id: usize,
    bucket: &'static str,
    port: u16,
    rng: Rng,
    /// Key -> states it may be in (`[0]` = last acknowledged). Missing = surely absent.
    keys: BTreeMap<String, Vec<State>>,
    pending: Vec<PendingUpload>,
    /// CreateMultipartUpload requests in flight at the kill (upload ids unknown).
    inflight_creates: usize,
    stats: Stats,
    anomalies: Vec<String>,
    conn: Option<Conn>,
}

impl Writer {
    fn new(id: usize, seed: u64) -> Writer {
        Writer {
            id,
            bucket: BUCKETS[id % BUCKETS.len()],
            port: 0,
            rng: Rng::new(seed ^ (id as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03)),
            keys: BTreeMap::new(),
            pending: Vec::new(),
            inflight_creates: 0,
            stats: Stats::default(),
            anomalies: Vec::new(),
            conn: None,
        }
    }

    fn allowed(&self, key: &str) -> &[State] {
        self.keys
            .get(key)
            .map(|v| v.as_slice())
            .unwrap_or(&[State::Absent])
    }

    fn surely_present(&self, key: &str) -> bool {
        matches!(self.allowed(key), [State::Present { .. }])
    }

    fn surely_absent(&self, key: &str) -> bool {
        matches!(self.allowed(key), [State::Absent])
    }

    /// An acknowledged change: the key is now exactly `state`.
    fn acked(&mut self, key: &str, state: State) {
        self.keys.insert(key.to_string(), vec![state]);
    }

    /// A change that may have landed.
    fn maybe(&mut self, key: &str, state: State) {
        let v = self
            .keys
            .entry(key.to_string())
            .or_insert_with(|| vec![State::Absent]);
        if !v.contains(&state) {
            v.push(state);
        }
    }

    fn run_round(&mut self, killing: &AtomicBool) {
        let started = Instant::now();
        let anomalies_before = self.anomalies.len();
        for _ in 0..WRITER_OPS_MAX {
            if started.elapsed() > WRITER_TIME_MAX {
                self.anomalies.push(format!(
                    "writer {} still running {WRITER_TIME_MAX:?} into the round",
                    self.id
                ));
                break;
            }
            if self.anomalies.len() - anomalies_before >= WRITER_ANOMALIES_MAX {
                break;
            }
            if !self.step(killing) {
                break;
            }
        }
        self.conn = None;
    }

    /// One operation; returns whether to go on.
    fn step(&mut self, killing: &AtomicBool) -> bool {
        let roll = self.rng.below(100);
        if roll < 20 {
            let present: Vec<String> = self
                .keys
                .keys()
                .filter(|k| self.surely_present(k))
                .cloned()
                .collect();
            if !present.is_empty() {
                let key = present[self.rng.below(present.len() as u64) as usize].clone();
                return self.delete(&key, killing);
            }
        } else if roll < 32 {
            return self.multipart(killing);
        }
        self.put(killing)
    }

    fn pick_size(&mut self) -> usize {
        if self.rng.percent(35) {
            const SPECIAL: [usize; 9] = [0, 1, 4095, 4096, 4097, 8192, MIB - 1, MIB, MIB + 1];
            SPECIAL[self.rng.below(SPECIAL.len() as u64) as usize]
        } else {
            self.rng.below(PUT_MAX_BYTES + 1) as usize
        }
    }

    fn payload(&mut self) -> Payload {
        if self.rng.percent(50) {
            Payload::Unsigned
        } else {
            Payload::Sha256OfBody
        }
    }

    /// Sends `req` on the writer's keep-alive connection (opening one if needed).
    fn exchange(&mut self, req: &Req) -> Outcome {
        if self.conn.is_none() {
            match Conn::try_connect(self.port) {
                Ok(c) => self.conn = Some(c),
                Err(_) => return Outcome::NotSent,
            }
        }
        let conn = self.conn.as_mut().expect("connection");
        if let Err(e) = conn.try_send(&req.build()) {
            self.conn = None;
            return Outcome::Lost(format!("send: {e}"));
        }
        match conn.read_final_response(req.method == "HEAD") {
            Ok(r) => {
                if r.closes() {
                    self.conn = None;
                }
                Outcome::Done(r)
            }
            Err(e) => {
                self.conn = None;
                Outcome::Lost(format!("response: {e}"))
            }
        }
    }

    /// After a failed request: stop when the server is being killed, else note the anomaly.
    fn failed(&mut self, what: &str, detail: &str, killing: &AtomicBool) -> bool {
        if killing.load(Ordering::SeqCst) {
            return false;
        }
        self.anomalies.push(format!(
            "writer {}: {what}: {detail} (before the kill)",
            self.id
        ));
        std::thread::sleep(Duration::from_millis(10));
        true
    }

    fn unexpected(&mut self, what: &str, r: &Response) {
        self.anomalies
            .push(format!("writer {}: {what}: {}", self.id, r.describe()));
    }

    fn put(&mut self, killing: &AtomicBool) -> bool {
        let mp_present: Vec<String> = (0..MP_KEYS_PER_WRITER)
            .map(|i| format!("w{}/m{i}", self.id))
            .filter(|k| self.surely_present(k))
            .collect();
        let key = if !mp_present.is_empty() && self.rng.percent(10) {
            // Overwrite a multipart object with a single-part one.
            mp_present[self.rng.below(mp_present.len() as u64) as usize].clone()
        } else {
            format!("w{}/k{}", self.id, self.rng.below(PUT_KEYS_PER_WRITER))
        };
        let size = self.pick_size();
        let body = random_bytes(size, self.rng.next());
        let state = State::Present {
            sha: sha256_hex(&body),
            size,
            upload: None,
        };
        let payload = self.payload();
        let req = Req::new(self.port, "PUT", &format!("/{}/{key}", self.bucket))
            .body(&body)
            .payload(payload);
        drop(body);
        let what = format!("PUT {key} ({size} bytes)");
        match self.exchange(&req) {
            Outcome::Done(r) if r.status == 200 => {
                self.stats.puts_acked += 1;
                self.acked(&key, state);
                true
            }
            Outcome::Done(r) => {
                self.unexpected(&what, &r);
                self.maybe(&key, state);
                true
            }
            Outcome::NotSent => self.failed(&what, "connect failed", killing),
            Outcome::Lost(e) => {
                self.stats.in_flight_at_kill += 1;
                self.maybe(&key, state);
                self.failed(&what, &e, killing)
            }
        }
    }

    fn delete(&mut self, key: &str, killing: &AtomicBool) -> bool {
        let req = Req::new(self.port, "DELETE", &format!("/{}/{key}", self.bucket));
        let what = format!("DELETE {key}");
        match self.exchange(&req) {
            Outcome::Done(r) if r.status == 204 => {
                self.stats.deletes_acked += 1;
                self.acked(key, State::Absent);
                true
            }
            Outcome::Done(r) => {
                self.unexpected(&what, &r);
                self.maybe(key, State::Absent);
                true
            }
            Outcome::NotSent => self.failed(&what, "connect failed", killing),
            Outcome::Lost(e) => {
                self.stats.in_flight_at_kill += 1;
                self.maybe(key, State::Absent);
                self.failed(&what, &e, killing)
            }
        }
    }

    /// Create, 2-3 parts of 5 MiB and a small last part, Complete, on a key that is absent.
    fn multipart(&mut self, killing: &AtomicBool) -> bool {
        let free: Vec<String> = (0..MP_KEYS_PER_WRITER)
            .map(|i| format!("w{}/m{i}", self.id))
            .filter(|k| self.surely_absent(k))
            .collect();
        if free.is_empty() {
            let present: Vec<String> = (0..MP_KEYS_PER_WRITER)
                .map(|i| format!("w{}/m{i}", self.id))
                .filter(|k| self.surely_present(k))
                .collect();
            return match present.first() {
                Some(k) => self.delete(&k.clone(), killing),
                None => self.put(killing),
            };
        }
        let key = free[self.rng.below(free.len() as u64) as usize].clone();
        let base = format!("/{}/{key}", self.bucket);

        let what = format!("CreateMultipartUpload {key}");
        let create = Req::new(self.port, "POST", &format!("{base}?uploads"));
        let id = match self.exchange(&create) {
            Outcome::Done(r) if r.status == 200 => match xml_first(&r.text(), "UploadId") {
                Some(id) => id,
                None => {
                    self.unexpected(&what, &r);
                    return true;
                }
            },
            Outcome::Done(r) => {
                self.unexpected(&what, &r);
                return true;
            }
            Outcome::NotSent => return self.failed(&what, "connect failed", killing),
            Outcome::Lost(e) => {
                self.stats.in_flight_at_kill += 1;
                self.inflight_creates += 1;
                return self.failed(&what, &e, killing);
            }
        };
        self.stats.creates_acked += 1;
        self.pending.push(PendingUpload {
            key: key.clone(),
            id: id.clone(),
        });

        let full_parts = 2 + self.rng.below(2) as usize;
        let mut whole = Sha256::new();
        let mut total = 0usize;
        let mut etags = Vec::new();
        for n in 1..=full_parts + 1 {
            let size = if n <= full_parts {
                PART_BYTES
            } else {
                1 + self.rng.below(MIB as u64) as usize
            };
            let body = random_bytes(size, self.rng.next());
            whole.update(&body);
            total += size;
            let payload = self.payload();
            let req = Req::new(
                self.port,
                "PUT",
                &format!("{base}?partNumber={n}&uploadId={id}"),
            )
            .body(&body)
            .payload(payload);
            drop(body);
            let what = format!("UploadPart {key} #{n}");
            match self.exchange(&req) {
                Outcome::Done(r) if r.status == 200 => match r.etag() {
                    Some(e) => etags.push(e),
                    None => {
                        self.unexpected(&what, &r);
                        return true;
                    }
                },
                Outcome::Done(r) => {
                    self.unexpected(&what, &r);
                    return true;
                }
                Outcome::NotSent => return self.failed(&what, "connect failed", killing),
                Outcome::Lost(e) => {
                    self.stats.in_flight_at_kill += 1;
                    return self.failed(&what, &e, killing);
                }
            }
            self.stats.parts_acked += 1;
        }

        let state = State::Present {
            sha: hex::encode(whole.finalize()),
            size: total,
            upload: Some(id.clone()),
        };
        let mut doc = String::from("<CompleteMultipartUpload>");
        for (i, e) in etags.iter().enumerate() {
            doc.push_str(&format!(
                "<Part><PartNumber>{}</PartNumber><ETag>\"{e}\"</ETag></Part>",
                i + 1
            ));
        }
        doc.push_str("</CompleteMultipartUpload>");
        let complete =
            Req::new(self.port, "POST", &format!("{base}?uploadId={id}")).body(doc.as_bytes());
        let what = format!("CompleteMultipartUpload {key} {id}");
        match self.exchange(&complete) {
            Outcome::Done(r)
                if r.status == 200
                    && r.text().contains("<CompleteMultipartUploadResult")
                    && !r.text().contains("<Error>") =>
            {
                self.stats.completes_acked += 1;
                self.pending.retain(|p| p.id != id);
                self.acked(&key, state);
                true
            }
            Outcome::Done(r) => {
                self.unexpected(&what, &r);
                self.maybe(&key, state);
                true
            }
            Outcome::NotSent => self.failed(&what, "connect failed", killing),
            Outcome::Lost(e) => {
                self.stats.in_flight_at_kill += 1;
                self.maybe(&key, state);
                self.failed(&what, &e, killing)
            }
        }
    }
}

/// Totals over the whole test.
#[derive(Default)]
struct Report {
    rounds: usize,
    kills: usize,
    starts: usize,
    stats: Stats,
    /// In-flight changes found applied after the restart.
    in_flight_landed: usize,
    /// Staging files the server reported removing at startup.
    staging_removed: usize,
    uploads_aborted: usize,
    objects_checked: usize,
    /// Acknowledged data not found intact (acknowledged write missing or wrong, acknowledged
    /// delete undone, content that no request sent).
    lost: usize,
    violations: Vec<String>,
}

impl Report {
    fn violation(&mut self, round: usize, msg: String) {
        eprintln!("crash: round {round}: VIOLATION: {msg}");
        self.violations.push(format!("round {round}: {msg}"));
    }
}

/// Every key of `bucket` through ListObjectsV2 pages of [`LIST_PAGE`] keys.
fn list_all(s: &Server, bucket: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..10_000 {
        let mut target = format!("/{bucket}?list-type=2&max-keys={LIST_PAGE}");
        if let Some(t) = &token {
            target.push_str("&continuation-token=");
            target.push_str(&uri_encode(t));
        }
        let r = s.call(&s.req("GET", &target));
        assert_eq!(r.status, 200, "list {bucket}: {}", r.describe());
        let xml = r.text();
        let page = xml_all(&xml, "Key");
        assert!(page.len() <= LIST_PAGE, "list page of {} keys", page.len());
        keys.extend(page);
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

/// (key, upload id) of every upload ListMultipartUploads reports.
fn list_uploads(s: &Server, bucket: &str) -> Vec<(String, String)> {
    let r = s.call(&s.req("GET", &format!("/{bucket}?uploads")));
    assert_eq!(r.status, 200, "list uploads {bucket}: {}", r.describe());
    let xml = r.text();
    assert_ne!(
        xml_first(&xml, "IsTruncated").as_deref(),
        Some("true"),
        "ListMultipartUploads truncated: {xml}"
    );
    xml_all(&xml, "Upload")
        .iter()
        .map(|u| {
            (
                xml_first(u, "Key").expect("Upload without Key"),
                xml_first(u, "UploadId").expect("Upload without UploadId"),
            )
        })
        .collect()
}

/// Number of recovery lines in the server log, and the last one.
fn recovery_lines(log: &str) -> (usize, Option<String>) {
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.starts_with("ringstore: recovery:"))
        .collect();
    (lines.len(), lines.last().map(|l| l.to_string()))
}

/// The number in front of `label` in the recovery line ("..., 3 staging files, ...").
fn recovery_count(line: &str, label: &str) -> Option<usize> {
    let i = line.find(label)?;
    line[..i].split_whitespace().last()?.parse().ok()
}

/// Checks everything after a restart and collapses the writers' models to what was observed.
fn verify(s: &Server, writers: &mut [Writer], round: usize, rep: &mut Report) {
    // Staging leftovers are removed before the server listens.
    let staging = s.staging_files();
    if !staging.is_empty() {
        rep.violation(
            round,
            format!("staging files left after startup: {staging:?}"),
        );
    }

    // The recovery line of this start.
    let log = s.log_text();
    let (count, last) = recovery_lines(&log);
    if count != rep.starts {
        rep.violation(
            round,
            format!(
                "{count} recovery lines in the log after {} starts",
                rep.starts
            ),
        );
    }
    if let Some(line) = &last {
        rep.staging_removed += recovery_count(line, "staging files").unwrap_or(0);
        // Files of commits cut off before their log record are expected; the count must parse.
        if recovery_count(line, "unreferenced object files").is_none() {
            rep.violation(
                round,
                format!("no unreferenced-files count at recovery: {line}"),
            );
        }
        if recovery_count(line, "partial buckets") != Some(0) {
            rep.violation(round, format!("partial buckets at recovery: {line}"));
        }
    }

    // Every key each writer ever touched reads back in one of its allowed states.
    let mut conn = s.connect();
    for w in writers.iter_mut() {
        let keys: Vec<String> = w.keys.keys().cloned().collect();
        for key in keys {
            let allowed = w.keys[&key].clone();
            let r = conn.call(&s.req("GET", &format!("/{}/{key}", w.bucket)));
            if r.closes() {
                conn = s.connect();
            }
            rep.objects_checked += 1;
            let observed = match r.status {
                200 => Some(State::Present {
                    sha: sha256_hex(&r.body),
                    size: r.body.len(),
                    upload: None,
                }),
                404 if r.error_code().as_deref() == Some("NoSuchKey") => Some(State::Absent),
                _ => None,
            };
            let Some(observed) = observed else {
                rep.lost += 1;
                rep.violation(
                    round,
                    format!(
                        "GET {}/{key}: {}; expected {}",
                        w.bucket,
                        r.describe(),
                        allowed[0].describe()
                    ),
                );
                w.keys.remove(&key);
                continue;
            };
            // Match on content only; the upload id comes from the matching expectation.
            let matched = allowed.iter().position(|a| match (a, &observed) {
                (State::Absent, State::Absent) => true,
                (
                    State::Present { sha, size, .. },
                    State::Present {
                        sha: o, size: os, ..
                    },
                ) => sha == o && size == os,
                _ => false,
            });
            match matched {
                Some(i) => {
                    if i > 0 {
                        rep.in_flight_landed += 1;
                    }
                    let state = allowed[i].clone();
                    if state == State::Absent {
                        w.keys.remove(&key);
                    } else {
                        w.keys.insert(key.clone(), vec![state]);
                    }
                }
                None => {
                    rep.lost += 1;
                    let options: Vec<String> = allowed.iter().map(|a| a.describe()).collect();
                    rep.violation(
                        round,
                        format!(
                            "{}/{key}: got {}; expected {} (acknowledged){}",
                            w.bucket,
                            observed.describe(),
                            options[0],
                            if options.len() > 1 {
                                format!(" or an in-flight result: {:?}", &options[1..])
                            } else {
                                String::new()
                            }
                        ),
                    );
                    if observed == State::Absent {
                        w.keys.remove(&key);
                    } else {
                        w.keys.insert(key.clone(), vec![observed]);
                    }
                }
            }
        }
    }

    for bucket in BUCKETS {
        let bucket_dir = s.data_dir().join("buckets").join(bucket);
        let mine: Vec<&mut Writer> = writers.iter_mut().filter(|w| w.bucket == bucket).collect();

        // ListObjectsV2 lists exactly the keys that read back.
        let listed = list_all(s, bucket);
        let listed_set: BTreeSet<String> = listed.iter().cloned().collect();
        if listed_set.len() != listed.len() || listed.windows(2).any(|p| p[0] >= p[1]) {
            rep.violation(
                round,
                format!("{bucket}: listing not strictly ascending: {listed:?}"),
            );
        }
        let mut expected = BTreeSet::new();
        let mut referenced = BTreeSet::new();
        for w in &mine {
            for (k, v) in &w.keys {
                if let [State::Present { upload, .. }] = v.as_slice() {
                    expected.insert(k.clone());
                    if let Some(u) = upload {
                        referenced.insert(u.clone());
                    }
                }
            }
        }
        if listed_set != expected {
            let extra: Vec<_> = listed_set.difference(&expected).collect();
            let missing: Vec<_> = expected.difference(&listed_set).collect();
            rep.violation(
                round,
                format!(
                    "{bucket}: listing differs from the readable keys: listed but not readable {extra:?}, readable but not listed {missing:?}"
                ),
            );
        }

        // Every object file belongs to a listed key, and no key has two (small objects live
        // in the log, so listed keys need not have a file).
        let mut file_keys = BTreeSet::new();
        for name in dir_entries(&bucket_dir.join("objects")) {
            let key = object_file_key(&bucket_dir.join("objects").join(&name));
            match key {
                Some(k) if listed_set.contains(&k) && file_keys.insert(k.clone()) => {}
                other => rep.violation(
                    round,
                    format!("{bucket}/objects/{name}: orphan or duplicate file (key {other:?})"),
                ),
            }
        }

        // Uploads: the acknowledged ones not completed are listed; nothing else but in-flight
        // creates; every upload directory is an upload in progress or a listed object's data.
        let uploads = list_uploads(s, bucket);
        let listed_ids: BTreeSet<String> = uploads.iter().map(|(_, id)| id.clone()).collect();
        let mut known_ids = BTreeSet::new();
        let mut inflight_creates = 0;
        for w in &mine {
            inflight_creates += w.inflight_creates;
            for p in &w.pending {
                known_ids.insert(p.id.clone());
                let completed = referenced.contains(&p.id);
                if completed && listed_ids.contains(&p.id) {
                    rep.violation(
                        round,
                        format!(
                            "{bucket}: upload {} of {} is both completed and in progress",
                            p.id, p.key
                        ),
                    );
                }
                if !completed && !uploads.contains(&(p.key.clone(), p.id.clone())) {
                    rep.violation(
                        round,
                        format!(
                            "{bucket}: acknowledged upload {} of {} is not listed by ListMultipartUploads: {uploads:?}",
                            p.id, p.key
                        ),
                    );
                }
            }
        }
        let unknown: Vec<&(String, String)> = uploads
            .iter()
            .filter(|(_, id)| !known_ids.contains(id))
            .collect();
        if unknown.len() > inflight_creates {
            rep.violation(
                round,
                format!(
                    "{bucket}: uploads nobody created (only {inflight_creates} creates were in flight): {unknown:?}"
                ),
            );
        }
        let upload_dirs: BTreeSet<String> = dir_entries(&bucket_dir.join("uploads"))
            .into_iter()
            .collect();
        for d in &upload_dirs {
            if !listed_ids.contains(d) && !referenced.contains(d) {
                rep.violation(
                    round,
                    format!(
                        "{bucket}/uploads/{d}: neither an upload in progress nor an object's data"
                    ),
                );
            }
        }
        for u in &referenced {
            if !upload_dirs.contains(u) {
                rep.violation(
                    round,
                    format!("{bucket}/uploads/{u}: missing, but a listed object's data is there"),
                );
            }
        }

        // Abort what is in progress; its directory goes.
        for (key, id) in &uploads {
            let r = s.call(&s.req("DELETE", &format!("/{bucket}/{key}?uploadId={id}")));
            if r.status != 204 {
                rep.violation(
                    round,
                    format!("abort {bucket}/{key} {id}: {}", r.describe()),
                );
                continue;
            }
            rep.uploads_aborted += 1;
            if bucket_dir.join("uploads").join(id).exists() {
                rep.violation(
                    round,
                    format!("{bucket}/uploads/{id}: still there after the abort answered 204"),
                );
            }
        }
        let left = list_uploads(s, bucket);
        if !left.is_empty() {
            rep.violation(
                round,
                format!("{bucket}: uploads left after abort: {left:?}"),
            );
        }
        for w in mine {
            w.pending.clear();
            w.inflight_creates = 0;
        }
    }
}

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
    let mut rep = Report::default();

    let owners = BUCKETS.map(|b| ringstore::storage::owner_of(b, 2));
    if owners[0] == owners[1] {
        eprintln!("crash: note: both buckets are owned by core {}", owners[0]);
    }
    let mut s = Server::start_with_cores(2);
    rep.starts = 1;
    for b in BUCKETS {
        s.create_bucket(b);
    }
    let mut writers: Vec<Writer> = (0..WRITERS).map(|i| Writer::new(i, seed)).collect();

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
                    w.run_round(&killing);
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

        s.start_again();
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
