//! Multipart uploads for the bench: the four requests (CreateMultipartUpload, UploadPart,
//! CompleteMultipartUpload, AbortMultipartUpload) with their checks, shared by the one-shot
//! `large-vs-multipart` upload and the timed `--scenario multipart`; and that timed workload.
//!
//! The timed workload keeps every connection busy with parts: the connections share the open
//! uploads, and a free connection takes the next part number of the oldest open upload that
//! has parts left; when none has, it takes a ticket (`--count` and `--rate` count objects) and
//! creates a new upload, whose first part it then sends itself while the other connections,
//! as they come free, send the following parts. So the parts of one upload go out in parallel
//! (up to `--concurrency` of them, as warp's multipart does with its part concurrency), and
//! one upload's slow last part never idles the other connections. The connection that
//! finishes an upload's last outstanding part completes it. Every object is `--size` bytes in
//! parts of `--part-size` (the last part shorter), sliced from the shared buffer.
//!
//! Invariants: an upload is completed only when every one of its parts succeeded, with the
//! parts in ascending order, and its ETag must end in `-N` for its N parts; an upload with a
//! failed part, a failed completion, or still open when the run stops (count, time, Ctrl-C)
//! is aborted after the timed phase, untimed; after a run that completed an object, one HEAD
//! (untimed, not against the null responder) checks its size and ETag.

use super::client::{xml_element, Client, Response};
use super::ops::{self, OpKind, Outcome};
use super::stats::Recorder;
use super::timed::Shared;
use super::timed_args::ChecksumArg;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// A part that was uploaded: its number, ETag and checksum (base64) if one was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PartDone {
    pub(crate) number: u64,
    pub(crate) etag: String,
    pub(crate) checksum: Option<String>,
}

/// The `x-amz-checksum-algorithm` value and the CompleteMultipartUpload element of `kind`.
fn checksum_names(kind: ChecksumArg) -> Option<(&'static str, &'static str)> {
    match kind {
        ChecksumArg::None => None,
        ChecksumArg::Crc32 => Some(("CRC32", "ChecksumCRC32")),
        ChecksumArg::Crc32c => Some(("CRC32C", "ChecksumCRC32C")),
        ChecksumArg::Crc64nvme => Some(("CRC64NVME", "ChecksumCRC64NVME")),
        ChecksumArg::Sha256 => Some(("SHA256", "ChecksumSHA256")),
    }
}

/// The CompleteMultipartUpload body for `parts` in ascending order (with each part's checksum
/// when the upload has one, as S3 requires).
pub(crate) fn complete_xml(parts: &[PartDone], checksum: ChecksumArg) -> String {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let mut xml = String::from("<CompleteMultipartUpload>");
    for p in parts {
        xml.push_str(&format!(
            "<Part><PartNumber>{}</PartNumber><ETag>{}</ETag>",
            p.number,
            esc(&p.etag)
        ));
        if let (Some((_, element)), Some(value)) = (checksum_names(checksum), &p.checksum) {
            xml.push_str(&format!("<{element}>{}</{element}>", esc(value)));
        }
        xml.push_str("</Part>");
    }
    xml.push_str("</CompleteMultipartUpload>");
    xml
}

/// CreateMultipartUpload of `path` (declaring the checksum algorithm, if any): the outcome and
/// the new upload id, URI-encoded for the query string.
pub(crate) fn create(
    client: &mut Client,
    path: &str,
    checksum: ChecksumArg,
) -> (Outcome, Option<String>) {
    let extra: Vec<(&str, String)> = checksum_names(checksum)
        .map(|(alg, _)| ("x-amz-checksum-algorithm", alg.to_string()))
        .into_iter()
        .collect();
    let t0 = Instant::now();
    let r = client.request_with("POST", path, "uploads", &extra, &[]);
    let id = r
        .as_ref()
        .ok()
        .filter(|r| r.status == 200)
        .and_then(|r| xml_element(&String::from_utf8_lossy(&r.body), "UploadId"))
        .filter(|id| !id.is_empty());
    let mut o = ops::outcome(t0, r, 200, 0, |_| match id {
        Some(_) => Ok(()),
        None => Err("no UploadId".to_string()),
    });
    o.ttfb = None;
    // Upload ids are hex on ringstore, but encode anyway: the query goes on the request line.
    let id = id.filter(|_| o.error.is_none());
    (
        o,
        id.map(|id| crate::http::percent::aws_uri_encode(id.as_bytes(), true)),
    )
}

/// UploadPart of `body` as part `n` of upload `id_query` (with its checksum header if asked).
pub(crate) fn upload_part(
    client: &mut Client,
    path: &str,
    id_query: &str,
    n: u64,
    body: &[u8],
    checksum: ChecksumArg,
) -> (Outcome, Option<PartDone>) {
    let header = ops::checksum_header(checksum, body);
    let value = header.as_ref().map(|(_, v)| v.clone());
    let extra: Vec<(&str, String)> = header.into_iter().collect();
    let query = format!("partNumber={n}&uploadId={id_query}");
    let t0 = Instant::now();
    let r = client.request_with("PUT", path, &query, &extra, body);
    let etag = r.as_ref().ok().and_then(|r| r.etag.clone());
    let mut o = ops::outcome(t0, r, 200, body.len() as u64, |r| match r.etag {
        Some(_) => Ok(()),
        None => Err("no ETag".to_string()),
    });
    o.ttfb = None;
    let done = etag.filter(|_| o.error.is_none()).map(|etag| PartDone {
        number: n,
        etag,
        checksum: value,
    });
    (o, done)
}

/// Whether a CompleteMultipartUpload answer of 200 carries an object ETag of `parts` parts
/// (`"...-N"`); S3 may answer 200 and still carry an `<Error>` document.
fn completed_etag(r: &Response, parts: usize) -> Result<String, String> {
    let body = String::from_utf8_lossy(&r.body);
    if body.contains("<Error>") {
        return Err(r.error_code());
    }
    let etag = xml_element(&body, "ETag").ok_or("no result")?;
    match etag.trim_matches('"').rsplit_once('-') {
        Some((_, n)) if n == parts.to_string() => Ok(etag),
        _ => Err("wrong ETag".to_string()),
    }
}

/// CompleteMultipartUpload of `parts` (ascending): the outcome and the object's ETag.
pub(crate) fn complete(
    client: &mut Client,
    path: &str,
    id_query: &str,
    parts: &[PartDone],
    checksum: ChecksumArg,
) -> (Outcome, Option<String>) {
    assert!(
        parts.windows(2).all(|w| w[0].number < w[1].number),
        "parts are completed in ascending order"
    );
    let xml = complete_xml(parts, checksum);
    let query = format!("uploadId={id_query}");
    let t0 = Instant::now();
    let r = client.request("POST", path, &query, xml.as_bytes());
    let etag = r
        .as_ref()
        .ok()
        .filter(|r| r.status == 200)
        .and_then(|r| completed_etag(r, parts.len()).ok());
    let mut o = ops::outcome(t0, r, 200, 0, |r| {
        completed_etag(r, parts.len()).map(|_| ())
    });
    o.ttfb = None;
    (o, etag)
}

/// AbortMultipartUpload of upload `id_query`.
pub(crate) fn abort(client: &mut Client, path: &str, id_query: &str) -> Outcome {
    let t0 = Instant::now();
    let r = client.request("DELETE", path, &format!("uploadId={id_query}"), &[]);
    let mut o = ops::outcome(t0, r, 204, 0, |_| Ok(()));
    o.ttfb = None;
    o
}

/// Byte range `from..to` of part `n` (1-based) of a `size`-byte object cut in `part_size` parts.
pub(crate) fn part_range(n: u64, size: u64, part_size: u64) -> (u64, u64) {
    assert!(n >= 1 && part_size > 0);
    let from = (n - 1) * part_size;
    (from, (from + part_size).min(size))
}

/// An upload of the timed workload.
struct Open {
    /// The ticket it was created with (names the object).
    id: u64,
    path: String,
    id_query: String,
    /// The next part number to hand out.
    next: u64,
    /// Parts handed out and not finished.
    outstanding: u64,
    done: Vec<PartDone>,
    failed: bool,
}

/// One part to send.
struct Task {
    id: u64,
    path: String,
    id_query: String,
    n: u64,
}

/// What the timed multipart workload adds to the run's report.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct MultipartSummary {
    pub(crate) object_size_bytes: u64,
    pub(crate) part_size_bytes: u64,
    pub(crate) parts_per_object: u64,
    /// Objects whose CompleteMultipartUpload succeeded (with an ETag of `-parts_per_object`).
    pub(crate) objects_completed: u64,
    /// Uploads left open at the end (or broken by a failure), aborted after the timed phase.
    pub(crate) uploads_aborted: u64,
    /// AbortMultipartUpload requests that failed.
    pub(crate) abort_errors: u64,
    /// The HEAD of one completed object: `true` when its size and ETag matched, `null` when not
    /// checked (no object completed, or the null responder).
    pub(crate) head_checked: Option<bool>,
}

/// The shared state of a timed multipart run.
pub(crate) struct TimedUploads {
    size: u64,
    part_size: u64,
    parts: u64,
    open: Mutex<Vec<Open>>,
    /// Uploads to abort after the run: (path, id_query).
    broken: Mutex<Vec<(String, String)>>,
    completed: AtomicU64,
    /// Path and ETag of the first completed object.
    first: Mutex<Option<(String, String)>>,
}

impl TimedUploads {
    pub(crate) fn new(size: u64, part_size: u64) -> TimedUploads {
        assert!(size > 0 && part_size > 0);
        TimedUploads {
            size,
            part_size,
            parts: size.div_ceil(part_size),
            open: Mutex::new(Vec::new()),
            broken: Mutex::new(Vec::new()),
            completed: AtomicU64::new(0),
            first: Mutex::new(None),
        }
    }

    /// The next part of the oldest open upload with parts left.
    fn next_part(&self) -> Option<Task> {
        let mut open = self.open.lock().expect("uploads lock");
        let u = open
            .iter_mut()
            .find(|u| !u.failed && u.next <= self.parts)?;
        u.next += 1;
        u.outstanding += 1;
        Some(Task {
            id: u.id,
            path: u.path.clone(),
            id_query: u.id_query.clone(),
            n: u.next - 1,
        })
    }

    /// Registers upload `id` just created, with its part 1 handed to the creator.
    fn register(&self, id: u64, path: String, id_query: String) -> Task {
        let task = Task {
            id,
            path: path.clone(),
            id_query: id_query.clone(),
            n: 1,
        };
        self.open.lock().expect("uploads lock").push(Open {
            id,
            path,
            id_query,
            next: 2,
            outstanding: 1,
            done: Vec::with_capacity(self.parts as usize),
            failed: false,
        });
        task
    }

    /// Records the end of part `t`; when it was the upload's last outstanding part, removes
    /// the upload and returns its parts (ascending) to complete, or moves it to the aborts.
    fn part_finished(&self, t: &Task, done: Option<PartDone>) -> Option<Vec<PartDone>> {
        let mut open = self.open.lock().expect("uploads lock");
        let at = open.iter().position(|u| u.id == t.id).expect("open upload");
        let u = &mut open[at];
        u.outstanding -= 1;
        match done {
            Some(p) => u.done.push(p),
            None => u.failed = true,
        }
        let finished = u.outstanding == 0 && (u.failed || u.next > self.parts);
        if !finished {
            return None;
        }
        // `remove` keeps the oldest-first order `next_part` relies on.
        let mut u = open.remove(at);
        drop(open);
        if u.failed {
            self.abandon(u.path, u.id_query);
            return None;
        }
        assert_eq!(u.done.len() as u64, self.parts, "every part succeeded");
        u.done.sort_unstable_by_key(|p| p.number);
        Some(u.done)
    }

    /// Leaves upload `id_query` of `path` to the aborts after the run.
    fn abandon(&self, path: String, id_query: String) {
        let mut broken = self.broken.lock().expect("aborts lock");
        broken.push((path, id_query));
    }

    /// Uploads still open or broken, all to be aborted.
    fn leftovers(&self) -> Vec<(String, String)> {
        let mut all = std::mem::take(&mut *self.broken.lock().expect("aborts lock"));
        let open = std::mem::take(&mut *self.open.lock().expect("uploads lock"));
        all.extend(open.into_iter().map(|u| (u.path, u.id_query)));
        all
    }
}

/// One connection's timed multipart loop; returns its recorder and when it stopped.
pub(crate) fn work(
    shared: &Shared,
    ups: &TimedUploads,
    client: &mut Client,
    t0: Instant,
) -> (Recorder, Instant) {
    let mut rec = Recorder::new(t0);
    let checksum = shared.args.timed.checksum;
    while !shared.stopped() {
        let task = match ups.next_part() {
            Some(t) => t,
            None => match start_upload(shared, ups, client, &mut rec, t0) {
                Ok(Some(t)) => t,
                Ok(None) => continue,
                Err(()) => break,
            },
        };
        let (from, to) = part_range(task.n, ups.size, ups.part_size);
        let body = &shared.ctx.data[from as usize..to as usize];
        let start = Instant::now();
        let (o, done) = upload_part(client, &task.path, &task.id_query, task.n, body, checksum);
        shared.account(&mut rec, OpKind::MpuPart, start, &o);
        let Some(parts) = ups.part_finished(&task, done) else {
            continue;
        };
        if shared.stopped() {
            // Over: the upload is aborted with the others left open.
            ups.abandon(task.path, task.id_query);
            break;
        }
        let start = Instant::now();
        let (o, etag) = complete(client, &task.path, &task.id_query, &parts, checksum);
        shared.account(&mut rec, OpKind::MpuComplete, start, &o);
        match etag {
            Some(etag) => {
                ups.completed.fetch_add(1, Ordering::Relaxed);
                ups.first
                    .lock()
                    .expect("first lock")
                    .get_or_insert((task.path, etag));
            }
            None => ups.abandon(task.path, task.id_query),
        }
    }
    (rec, Instant::now())
}

/// Takes a ticket and creates a new upload: its first part to send, `Ok(None)` when the
/// create failed (counted), `Err` when no upload may start (count reached, or stopped).
fn start_upload(
    shared: &Shared,
    ups: &TimedUploads,
    client: &mut Client,
    rec: &mut Recorder,
    t0: Instant,
) -> Result<Option<Task>, ()> {
    let id = shared.take_ticket(t0).ok_or(())?;
    let path = shared.path_of("mpu", id);
    let start = Instant::now();
    let (o, upload_id) = create(client, &path, shared.args.timed.checksum);
    shared.account(rec, OpKind::MpuCreate, start, &o);
    Ok(upload_id.map(|q| ups.register(id, path, q)))
}

/// After the timed phase: aborts every upload left open, and HEADs the first completed object
/// (when `check` and one completed) to check its size and ETag.
pub(crate) fn finish(ups: &TimedUploads, client: &mut Client, check: bool) -> MultipartSummary {
    let leftovers = ups.leftovers();
    let abort_errors = leftovers
        .iter()
        .filter(|(path, q)| abort(client, path, q).error.is_some())
        .count() as u64;
    let first = ups.first.lock().expect("first lock").clone();
    let head_checked = first.filter(|_| check).map(|(path, etag)| {
        matches!(client.request("HEAD", &path, "", &[]),
            Ok(r) if r.status == 200 && r.content_length == ups.size && r.etag.as_deref() == Some(etag.as_str()))
    });
    if head_checked == Some(false) {
        eprintln!("ringstore bench: multipart: the HEAD of a completed object does not show its size and ETag");
    }
    MultipartSummary {
        object_size_bytes: ups.size,
        part_size_bytes: ups.part_size,
        parts_per_object: ups.parts,
        objects_completed: ups.completed.load(Ordering::Relaxed),
        uploads_aborted: leftovers.len() as u64,
        abort_errors,
        head_checked,
    }
}

impl MultipartSummary {
    /// Failed requests outside the timed operations: aborts, and a HEAD that did not match.
    pub(crate) fn errors(&self) -> u64 {
        self.abort_errors + u64::from(self.head_checked == Some(false))
    }

    /// The text line of the summary, with the whole objects' rate (`objects_per_sec`, the
    /// completions' average).
    pub(crate) fn text(&self, objects_per_sec: f64) -> String {
        format!(
            "objects: {} completed ({:.2}/s, {:.2} MiB/s of whole objects) of {} ({} parts of {}), ETag -{} on each{}; {} incomplete uploads aborted ({} failed)",
            self.objects_completed,
            objects_per_sec,
            objects_per_sec * self.object_size_bytes as f64 / (1024.0 * 1024.0),
            super::args::format_size(self.object_size_bytes),
            self.parts_per_object,
            super::args::format_size(self.part_size_bytes),
            self.parts_per_object,
            match self.head_checked {
                Some(true) => ", size and ETag of one checked by HEAD",
                Some(false) => ", HEAD of one DID NOT MATCH",
                None => "",
            },
            self.uploads_aborted,
            self.abort_errors
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(n: u64, c: Option<&str>) -> PartDone {
        PartDone {
            number: n,
            etag: format!("\"e{n}\""),
            checksum: c.map(str::to_string),
        }
    }

    #[test]
    fn complete_documents() {
        let xml = complete_xml(&[part(1, None), part(2, None)], ChecksumArg::None);
        assert_eq!(
            xml,
            "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\"e1\"</ETag></Part><Part><PartNumber>2</PartNumber><ETag>\"e2\"</ETag></Part></CompleteMultipartUpload>"
        );
        let xml = complete_xml(&[part(1, Some("AAAA"))], ChecksumArg::Crc32c);
        assert!(
            xml.contains("<ETag>\"e1\"</ETag><ChecksumCRC32C>AAAA</ChecksumCRC32C></Part>"),
            "{xml}"
        );
    }

    #[test]
    fn part_ranges_cover_the_object() {
        assert_eq!(part_range(1, 12, 5), (0, 5));
        assert_eq!(part_range(3, 12, 5), (10, 12));
        assert_eq!(part_range(1, 3, 5), (0, 3));
    }

    #[test]
    fn parts_are_shared_and_uploads_finish_once() {
        let ups = TimedUploads::new(12, 5); // 3 parts
        assert!(ups.next_part().is_none());
        let t1 = ups.register(0, "/b/a".into(), "u0".into());
        let t2 = ups.next_part().unwrap();
        let t3 = ups.next_part().unwrap();
        assert_eq!((t1.n, t2.n, t3.n), (1, 2, 3));
        assert!(ups.next_part().is_none(), "every part handed out");
        let done = |t: &Task| Some(part(t.n, None));
        assert!(ups.part_finished(&t3, done(&t3)).is_none());
        assert!(ups.part_finished(&t1, done(&t1)).is_none());
        let parts = ups.part_finished(&t2, done(&t2)).unwrap();
        assert_eq!(
            parts.iter().map(|p| p.number).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        assert!(ups.leftovers().is_empty());

        // A failed part: no more parts of it are handed out, and it is aborted, not completed.
        let a = ups.register(1, "/b/x".into(), "u1".into());
        let b = ups.register(2, "/b/y".into(), "u2".into());
        assert!(ups.part_finished(&a, None).is_none());
        let next = ups.next_part().unwrap();
        assert_eq!((next.id, next.n), (b.id, 2), "the broken upload is skipped");
        assert_eq!(ups.leftovers().len(), 2, "the broken one and the open one");
    }
}
