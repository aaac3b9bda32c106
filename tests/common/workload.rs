//! The acknowledged-writes model shared by the crash tests (`tests/crash.rs`: kill -9;
//! `tests/powercut.rs`: power cuts): writer threads that PUT, DELETE and complete multipart
//! uploads over raw signed HTTP and remember, per key, the states it may be in after the server
//! dies; [`verify`] checks a restarted server against that model and collapses it to what it
//! observed.
//!
//! Every writer works on its own keys, so the order of the changes to one key is the order in
//! which that writer made them. The model of one key is the list of states it may be in: the
//! last acknowledged one first, then those an in-flight request may have produced.

use super::*;
use sha2::{Digest as _, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub const MIB: usize = 1024 * 1024;
/// Size of every multipart part but the last (S3's minimum).
pub const PART_BYTES: usize = 5 * MIB;
/// Safety bounds of one writer in one round (the kill normally ends it much earlier).
pub const WRITER_OPS_MAX: usize = 100_000;
const WRITER_TIME_MAX: Duration = Duration::from_secs(30);
/// A writer gives up on a round after this many unexpected failures.
const WRITER_ANOMALIES_MAX: usize = 20;
/// ListObjectsV2 page size (small, so pagination is exercised).
const LIST_PAGE: usize = 37;

/// What a test's writers do.
pub struct Profile {
    /// Two buckets; writer `i` writes to `buckets[i % 2]`.
    pub buckets: [&'static str; 2],
    /// Keys a writer PUTs to and deletes (`w<N>/k<i>`).
    pub put_keys_per_writer: u64,
    /// Keys a writer completes multipart uploads into (`w<N>/m<i>`).
    pub mp_keys_per_writer: u64,
    /// Percent of the steps that DELETE a present key.
    pub delete_percent: u64,
    /// Percent of the steps that run a whole multipart upload.
    pub multipart_percent: u64,
    /// Size of one PUT's body.
    pub put_size: fn(&mut Rng) -> usize,
    /// Number of full [`PART_BYTES`] parts of an upload (inclusive range); a small last part
    /// follows them.
    pub full_parts: (usize, usize),
    /// Whether answers read after the kill flag was set are not acknowledgements (a power cut
    /// precedes the SIGKILL: in between, the server may acknowledge writes the disk dropped).
    pub answers_end_at_cut: bool,
}

/// xorshift64* generator (no external crate).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    pub fn percent(&mut self, p: u64) -> bool {
        self.below(100) < p
    }
}

/// What one key holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    Absent,
    Present {
        sha: String,
        size: usize,
        /// The upload whose parts hold the data (multipart objects).
        upload: Option<String>,
    },
}

impl State {
    pub fn describe(&self) -> String {
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
pub struct PendingUpload {
    pub key: String,
    pub id: String,
}

#[derive(Default, Clone, Copy, Debug)]
pub struct Stats {
    pub puts_acked: usize,
    pub deletes_acked: usize,
    pub creates_acked: usize,
    pub parts_acked: usize,
    pub completes_acked: usize,
    /// Requests sent without a full response when the server died.
    pub in_flight_at_kill: usize,
}

impl Stats {
    pub fn add(&mut self, o: &Stats) {
        self.puts_acked += o.puts_acked;
        self.deletes_acked += o.deletes_acked;
        self.creates_acked += o.creates_acked;
        self.parts_acked += o.parts_acked;
        self.completes_acked += o.completes_acked;
        self.in_flight_at_kill += o.in_flight_at_kill;
    }
}

/// Result of one request on a writer's connection.
enum Exchanged {
    /// A complete response arrived.
    Done(Response),
    /// Nothing reached the server (connect failed).
    NotSent,
    /// Sent (at least partly) without a complete response: it may or may not have landed.
    Lost(String),
}

/// One writer thread's keys, model and bookkeeping (kept across rounds).
pub struct Writer {
    pub id: usize,
    pub bucket: &'static str,
    pub profile: &'static Profile,
    pub port: u16,
    pub rng: Rng,
    /// Key -> states it may be in (`[0]` = last acknowledged). Missing = surely absent.
    pub keys: BTreeMap<String, Vec<State>>,
    pub pending: Vec<PendingUpload>,
    /// CreateMultipartUpload requests in flight at the kill (upload ids unknown).
    pub inflight_creates: usize,
    pub stats: Stats,
    pub anomalies: Vec<String>,
    pub conn: Option<Conn>,
}

impl Writer {
    pub fn new(id: usize, seed: u64, profile: &'static Profile) -> Writer {
        Writer {
            id,
            bucket: profile.buckets[id % profile.buckets.len()],
            profile,
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

    /// Writes until the server dies (`killing` set), or `ops_max` operations are done.
    pub fn run_round(&mut self, killing: &AtomicBool, ops_max: usize) {
        let started = Instant::now();
        let anomalies_before = self.anomalies.len();
        for _ in 0..ops_max.min(WRITER_OPS_MAX) {
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
        if roll < self.profile.delete_percent {
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
        } else if roll < self.profile.delete_percent + self.profile.multipart_percent {
            return self.multipart(killing);
        }
        self.put(killing)
    }

    fn pick_size(&mut self) -> usize {
        (self.profile.put_size)(&mut self.rng)
    }

    fn payload(&mut self) -> Payload {
        if self.rng.percent(50) {
            Payload::Unsigned
        } else {
            Payload::Sha256OfBody
        }
    }

    /// Sends `req` on the writer's keep-alive connection (opening one if needed).
    /// With [`Profile::answers_end_at_cut`], an answer read after `killing` was set counts as
    /// lost: the server may have acknowledged a write the cut disk had already dropped.
    fn exchange(&mut self, req: &Req, killing: &AtomicBool) -> Exchanged {
        if self.conn.is_none() {
            match Conn::try_connect(self.port) {
                Ok(c) => self.conn = Some(c),
                Err(_) => return Exchanged::NotSent,
            }
        }
        let conn = self.conn.as_mut().expect("connection");
        if let Err(e) = conn.try_send(&req.build()) {
            self.conn = None;
            return Exchanged::Lost(format!("send: {e}"));
        }
        match conn.read_final_response(req.method == "HEAD") {
            Ok(r) => {
                if r.closes() {
                    self.conn = None;
                }
                if self.profile.answers_end_at_cut && killing.load(Ordering::SeqCst) {
                    self.conn = None;
                    return Exchanged::Lost(format!("answered after the cut: HTTP {}", r.status));
                }
                Exchanged::Done(r)
            }
            Err(e) => {
                self.conn = None;
                Exchanged::Lost(format!("response: {e}"))
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
        let mp_present: Vec<String> = (0..self.profile.mp_keys_per_writer)
            .map(|i| format!("w{}/m{i}", self.id))
            .filter(|k| self.surely_present(k))
            .collect();
        let key = if !mp_present.is_empty() && self.rng.percent(10) {
            // Overwrite a multipart object with a single-part one.
            mp_present[self.rng.below(mp_present.len() as u64) as usize].clone()
        } else {
            format!(
                "w{}/k{}",
                self.id,
                self.rng.below(self.profile.put_keys_per_writer)
            )
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
        match self.exchange(&req, killing) {
            Exchanged::Done(r) if r.status == 200 => {
                self.stats.puts_acked += 1;
                self.acked(&key, state);
                true
            }
            Exchanged::Done(r) => {
                self.unexpected(&what, &r);
                self.maybe(&key, state);
                true
            }
            Exchanged::NotSent => self.failed(&what, "connect failed", killing),
            Exchanged::Lost(e) => {
                self.stats.in_flight_at_kill += 1;
                self.maybe(&key, state);
                self.failed(&what, &e, killing)
            }
        }
    }

    fn delete(&mut self, key: &str, killing: &AtomicBool) -> bool {
        let req = Req::new(self.port, "DELETE", &format!("/{}/{key}", self.bucket));
        let what = format!("DELETE {key}");
        match self.exchange(&req, killing) {
            Exchanged::Done(r) if r.status == 204 => {
                self.stats.deletes_acked += 1;
                self.acked(key, State::Absent);
                true
            }
            Exchanged::Done(r) => {
                self.unexpected(&what, &r);
                self.maybe(key, State::Absent);
                true
            }
            Exchanged::NotSent => self.failed(&what, "connect failed", killing),
            Exchanged::Lost(e) => {
                self.stats.in_flight_at_kill += 1;
                self.maybe(key, State::Absent);
                self.failed(&what, &e, killing)
            }
        }
    }

    /// Create, 2-3 parts of 5 MiB and a small last part, Complete, on a key that is absent.
    fn multipart(&mut self, killing: &AtomicBool) -> bool {
        let free: Vec<String> = (0..self.profile.mp_keys_per_writer)
            .map(|i| format!("w{}/m{i}", self.id))
            .filter(|k| self.surely_absent(k))
            .collect();
        if free.is_empty() {
            let present: Vec<String> = (0..self.profile.mp_keys_per_writer)
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
        let id = match self.exchange(&create, killing) {
            Exchanged::Done(r) if r.status == 200 => match xml_first(&r.text(), "UploadId") {
                Some(id) => id,
                None => {
                    self.unexpected(&what, &r);
                    return true;
                }
            },
            Exchanged::Done(r) => {
                self.unexpected(&what, &r);
                return true;
            }
            Exchanged::NotSent => return self.failed(&what, "connect failed", killing),
            Exchanged::Lost(e) => {
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

        let (parts_min, parts_max) = self.profile.full_parts;
        let full_parts = parts_min + self.rng.below((parts_max - parts_min + 1) as u64) as usize;
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
            match self.exchange(&req, killing) {
                Exchanged::Done(r) if r.status == 200 => match r.etag() {
                    Some(e) => etags.push(e),
                    None => {
                        self.unexpected(&what, &r);
                        return true;
                    }
                },
                Exchanged::Done(r) => {
                    self.unexpected(&what, &r);
                    return true;
                }
                Exchanged::NotSent => return self.failed(&what, "connect failed", killing),
                Exchanged::Lost(e) => {
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
        match self.exchange(&complete, killing) {
            Exchanged::Done(r)
                if r.status == 200
                    && r.text().contains("<CompleteMultipartUploadResult")
                    && !r.text().contains("<Error>") =>
            {
                self.stats.completes_acked += 1;
                self.pending.retain(|p| p.id != id);
                self.acked(&key, state);
                true
            }
            Exchanged::Done(r) => {
                self.unexpected(&what, &r);
                self.maybe(&key, state);
                true
            }
            Exchanged::NotSent => self.failed(&what, "connect failed", killing),
            Exchanged::Lost(e) => {
                self.stats.in_flight_at_kill += 1;
                self.maybe(&key, state);
                self.failed(&what, &e, killing)
            }
        }
    }
}

/// Totals over the whole test.
pub struct Report {
    /// Prefix of the report's log lines.
    pub label: &'static str,
    pub rounds: usize,
    pub kills: usize,
    pub starts: usize,
    pub stats: Stats,
    /// In-flight changes found applied after the restart.
    pub in_flight_landed: usize,
    /// Staging files the server reported removing at startup.
    pub staging_removed: usize,
    pub uploads_aborted: usize,
    pub objects_checked: usize,
    /// Acknowledged data not found intact (acknowledged write missing or wrong, acknowledged
    /// delete undone, content that no request sent).
    pub lost: usize,
    pub violations: Vec<String>,
}

impl Report {
    pub fn new(label: &'static str) -> Report {
        Report {
            label,
            rounds: 0,
            kills: 0,
            starts: 0,
            stats: Stats::default(),
            in_flight_landed: 0,
            staging_removed: 0,
            uploads_aborted: 0,
            objects_checked: 0,
            lost: 0,
            violations: Vec::new(),
        }
    }

    pub fn violation(&mut self, round: usize, msg: String) {
        eprintln!("{}: round {round}: VIOLATION: {msg}", self.label);
        self.violations.push(format!("round {round}: {msg}"));
    }
}

/// Every key of `bucket` through ListObjectsV2 pages of [`LIST_PAGE`] keys.
pub fn list_all(s: &Server, bucket: &str) -> Vec<String> {
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
pub fn list_uploads(s: &Server, bucket: &str) -> Vec<(String, String)> {
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
pub fn recovery_lines(log: &str) -> (usize, Option<String>) {
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.starts_with("ringstore: recovery:"))
        .collect();
    (lines.len(), lines.last().map(|l| l.to_string()))
}

/// The number in front of `label` in the recovery line ("..., 3 staging files, ...").
pub fn recovery_count(line: &str, label: &str) -> Option<usize> {
    let i = line.find(label)?;
    line[..i].split_whitespace().last()?.parse().ok()
}

/// Checks everything after a restart and collapses the writers' models to what was observed.
pub fn verify(s: &Server, writers: &mut [Writer], round: usize, rep: &mut Report) {
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

    let buckets = writers
        .first()
        .map(|w| w.profile.buckets)
        .unwrap_or_default();
    for bucket in buckets {
        let bucket_dir = s.data_dir().join("buckets").join(bucket);
        let mine: Vec<&mut Writer> = writers.iter_mut().filter(|w| w.bucket == bucket).collect();
        let head = s.call(&s.req("HEAD", &format!("/{bucket}")));
        if head.status != 200 {
            rep.violation(
                round,
                format!("acknowledged bucket {bucket} is gone: HEAD {}", head.status),
            );
            for w in mine {
                w.pending.clear();
                w.inflight_creates = 0;
            }
            continue;
        }

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
