//! Per-core metrics and their Prometheus text exposition (format 0.0.4).
//!
//! Each core owns one [`CoreMetrics`]; only that core writes it, with a relaxed load and store
//! per cell (no atomic read-modify-write, so the hot path costs a few plain moves). A scrape on
//! any core reads every core's cells (relaxed loads: a scrape racing a request may see it
//! half-counted, never a torn value) and sums them; in-flight requests and open connections
//! are reported per core. Histograms keep per-bucket counts and are made cumulative when
//! rendered.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

/// Upper bounds (inclusive) of the latency histogram buckets, in microseconds; `+Inf` follows.
pub(crate) const LATENCY_BUCKETS_US: [u64; 17] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000, 10_000_000,
];
/// Response statuses counted under their own label; any other status counts as `other`.
const STATUSES: [u16; 17] = [
    200, 204, 206, 304, 400, 403, 404, 405, 409, 411, 412, 416, 431, 500, 501, 503, 507,
];
/// Status slots per operation: the listed statuses and `other`.
const STATUS_SLOTS: usize = STATUSES.len() + 1;

/// A counter or gauge cell written by one core only.
#[derive(Default)]
pub(crate) struct Cell64(AtomicU64);

impl Cell64 {
    /// Adds `n` (wrapping). Only the owning core calls this: load and store, no lock prefix.
    pub(crate) fn add(&self, n: u64) {
        self.0.store(self.0.load(Relaxed).wrapping_add(n), Relaxed);
    }

    /// Subtracts `n` (a gauge going down).
    pub(crate) fn sub(&self, n: u64) {
        self.0.store(self.0.load(Relaxed).wrapping_sub(n), Relaxed);
    }

    pub(crate) fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

fn cells(n: usize) -> Box<[Cell64]> {
    (0..n).map(|_| Cell64::default()).collect()
}

/// A latency histogram over [`LATENCY_BUCKETS_US`] (per-bucket counts, not cumulative).
pub(crate) struct Histogram {
    buckets: Box<[Cell64]>,
    sum_us: Cell64,
}

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram {
            buckets: cells(LATENCY_BUCKETS_US.len() + 1),
            sum_us: Cell64::default(),
        }
    }
}

impl Histogram {
    pub(crate) fn observe(&self, elapsed: Duration) {
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let i = LATENCY_BUCKETS_US.partition_point(|&bound| bound < us);
        self.buckets[i].add(1);
        self.sum_us.add(us);
    }
}

/// Names behind the indexes a request is recorded with: operations (index 0 is the request
/// that never got one, e.g. an unparsable head) and error codes (index 0: no error).
#[derive(Clone)]
pub(crate) struct Labels {
    pub(crate) ops: Vec<&'static str>,
    pub(crate) codes: Vec<&'static str>,
}

/// One core's metrics (written by that core only).
pub(crate) struct CoreMetrics {
    ops: usize,
    /// `[op * STATUS_SLOTS + status slot]`.
    requests: Box<[Cell64]>,
    bytes_in: Box<[Cell64]>,
    bytes_out: Box<[Cell64]>,
    latency: Box<[Histogram]>,
    errors: Box<[Cell64]>,
    pub(crate) in_flight: Cell64,
    pub(crate) connections: Cell64,
    /// Log batch writes (the group commit; O_DSYNC with `--fsync always`).
    pub(crate) log_commit: Histogram,
    /// Directory fsyncs after object file renames (shared by concurrent commits).
    pub(crate) dir_fsync: Histogram,
}

/// One finished request, as the HTTP layer records it.
pub(crate) struct RequestSample {
    pub(crate) op: usize,
    pub(crate) status: u16,
    pub(crate) error: usize,
    pub(crate) bytes_in: u64,
    pub(crate) bytes_out: u64,
    pub(crate) elapsed: Duration,
}

impl CoreMetrics {
    fn new(labels: &Labels) -> CoreMetrics {
        let ops = labels.ops.len();
        CoreMetrics {
            ops,
            requests: cells(ops * STATUS_SLOTS),
            bytes_in: cells(ops),
            bytes_out: cells(ops),
            latency: (0..ops).map(|_| Histogram::default()).collect(),
            errors: cells(labels.codes.len()),
            in_flight: Cell64::default(),
            connections: Cell64::default(),
            log_commit: Histogram::default(),
            dir_fsync: Histogram::default(),
        }
    }

    /// Counts one finished request (indexes out of range count as op 0 / no error).
    pub(crate) fn record(&self, s: &RequestSample) {
        let op = if s.op < self.ops { s.op } else { 0 };
        let slot = STATUSES
            .iter()
            .position(|&st| st == s.status)
            .unwrap_or(STATUSES.len());
        self.requests[op * STATUS_SLOTS + slot].add(1);
        self.bytes_in[op].add(s.bytes_in);
        self.bytes_out[op].add(s.bytes_out);
        self.latency[op].observe(s.elapsed);
        if s.error > 0 && s.error < self.errors.len() {
            self.errors[s.error].add(1);
        }
    }
}

/// Every core's metrics and the names to render them with.
pub(crate) struct Registry {
    pub(crate) labels: Labels,
    cores: Vec<Arc<CoreMetrics>>,
}

/// A value computed at scrape time (storage sizes, engine counters): name, help, type, value.
pub(crate) struct Sampled {
    pub(crate) name: &'static str,
    pub(crate) help: &'static str,
    pub(crate) kind: &'static str,
    pub(crate) value: u64,
}

impl Registry {
    pub(crate) fn new(cores: usize, labels: Labels) -> Arc<Registry> {
        assert!(!labels.ops.is_empty() && !labels.codes.is_empty());
        let cores = (0..cores)
            .map(|_| Arc::new(CoreMetrics::new(&labels)))
            .collect();
        Arc::new(Registry { labels, cores })
    }

    pub(crate) fn core(&self, core: usize) -> Arc<CoreMetrics> {
        self.cores[core].clone()
    }

    /// The text exposition of every core's metrics, summed, followed by `sampled`.
    pub(crate) fn render(&self, sampled: &[Sampled]) -> String {
        let mut out = String::with_capacity(16 * 1024);
        self.render_requests(&mut out);
        self.render_bytes(&mut out);
        self.render_latency(&mut out);
        self.render_errors(&mut out);
        self.render_gauges(&mut out);
        for (name, help, pick) in [
            (
                "ringstore_log_commit_duration_seconds",
                "Log batch writes (group commit; durable with --fsync always).",
                (|m: &CoreMetrics| &m.log_commit) as fn(&CoreMetrics) -> &Histogram,
            ),
            (
                "ringstore_dir_fsync_duration_seconds",
                "Directory fsyncs after object file renames (shared by concurrent commits).",
                |m: &CoreMetrics| &m.dir_fsync,
            ),
        ] {
            header(&mut out, name, help, "histogram");
            let hists: Vec<&Histogram> = self.cores.iter().map(|m| pick(m)).collect();
            histogram(&mut out, name, "", &hists);
        }
        for s in sampled {
            header(&mut out, s.name, s.help, s.kind);
            let _ = writeln!(out, "{} {}", s.name, s.value);
        }
        out
    }

    fn sum(&self, f: impl Fn(&CoreMetrics) -> u64) -> u64 {
        self.cores.iter().map(|m| f(m)).fold(0, u64::wrapping_add)
    }

    fn render_requests(&self, out: &mut String) {
        let name = "ringstore_requests_total";
        header(
            out,
            name,
            "Requests answered, by S3 operation and HTTP status.",
            "counter",
        );
        for (op, op_name) in self.labels.ops.iter().enumerate() {
            for slot in 0..STATUS_SLOTS {
                let n = self.sum(|m| m.requests[op * STATUS_SLOTS + slot].get());
                if n == 0 {
                    continue;
                }
                let status = STATUSES
                    .get(slot)
                    .map_or("other".to_string(), u16::to_string);
                let _ = writeln!(out, "{name}{{op=\"{op_name}\",status=\"{status}\"}} {n}");
            }
        }
    }

    fn render_bytes(&self, out: &mut String) {
        for (name, help, pick) in [
            (
                "ringstore_bytes_in_total",
                "Request body bytes read, by S3 operation.",
                (|m: &CoreMetrics| &m.bytes_in) as fn(&CoreMetrics) -> &Box<[Cell64]>,
            ),
            (
                "ringstore_bytes_out_total",
                "Response body bytes sent, by S3 operation.",
                |m: &CoreMetrics| &m.bytes_out,
            ),
        ] {
            header(out, name, help, "counter");
            for (op, op_name) in self.labels.ops.iter().enumerate() {
                let requests = self.sum(|m| {
                    (0..STATUS_SLOTS)
                        .map(|s| m.requests[op * STATUS_SLOTS + s].get())
                        .sum()
                });
                if requests > 0 {
                    let n = self.sum(|m| pick(m)[op].get());
                    let _ = writeln!(out, "{name}{{op=\"{op_name}\"}} {n}");
                }
            }
        }
    }

    fn render_latency(&self, out: &mut String) {
        let name = "ringstore_request_duration_seconds";
        header(
            out,
            name,
            "Time from request head parsed to response written, by S3 operation.",
            "histogram",
        );
        for (op, op_name) in self.labels.ops.iter().enumerate() {
            let hists: Vec<&Histogram> = self.cores.iter().map(|m| &m.latency[op]).collect();
            if hists.iter().all(|h| h.buckets.iter().all(|b| b.get() == 0)) {
                continue;
            }
            histogram(out, name, &format!("op=\"{op_name}\","), &hists);
        }
    }

    fn render_errors(&self, out: &mut String) {
        let name = "ringstore_errors_total";
        header(out, name, "Error responses, by S3 error code.", "counter");
        for (code, code_name) in self.labels.codes.iter().enumerate().skip(1) {
            let n = self.sum(|m| m.errors[code].get());
            if n > 0 {
                let _ = writeln!(out, "{name}{{code=\"{code_name}\"}} {n}");
            }
        }
    }

    fn render_gauges(&self, out: &mut String) {
        for (name, help, pick) in [
            (
                "ringstore_requests_in_flight",
                "Requests between head parsed and response written, per core.",
                (|m: &CoreMetrics| &m.in_flight) as fn(&CoreMetrics) -> &Cell64,
            ),
            (
                "ringstore_connections_open",
                "Open client connections, per core.",
                |m: &CoreMetrics| &m.connections,
            ),
        ] {
            header(out, name, help, "gauge");
            for (core, m) in self.cores.iter().enumerate() {
                let _ = writeln!(out, "{name}{{core=\"{core}\"}} {}", pick(m).get());
            }
        }
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// One histogram's series (`labels` is empty or ends with a comma), summed over `hists`.
fn histogram(out: &mut String, name: &str, labels: &str, hists: &[&Histogram]) {
    let mut cumulative = 0u64;
    for (i, bound) in LATENCY_BUCKETS_US.iter().enumerate() {
        cumulative += hists.iter().map(|h| h.buckets[i].get()).sum::<u64>();
        let le = *bound as f64 / 1e6;
        let _ = writeln!(out, "{name}_bucket{{{labels}le=\"{le}\"}} {cumulative}");
    }
    cumulative += hists
        .iter()
        .map(|h| h.buckets[LATENCY_BUCKETS_US.len()].get())
        .sum::<u64>();
    let _ = writeln!(out, "{name}_bucket{{{labels}le=\"+Inf\"}} {cumulative}");
    let sum_s = hists.iter().map(|h| h.sum_us.get()).sum::<u64>() as f64 / 1e6;
    let plain = labels.trim_end_matches(',');
    let braces = if plain.is_empty() {
        String::new()
    } else {
        format!("{{{plain}}}")
    };
    let _ = writeln!(out, "{name}_sum{braces} {sum_s}");
    let _ = writeln!(out, "{name}_count{braces} {cumulative}");
}

thread_local! {
    /// The metrics of the core this thread runs (set by the runtime on each executor thread).
    static CURRENT: RefCell<Option<Arc<CoreMetrics>>> = const { RefCell::new(None) };
}

/// Makes `metrics` the calling thread's core metrics (`None`: record nothing here).
pub(crate) fn set_current(metrics: Option<Arc<CoreMetrics>>) {
    CURRENT.with(|c| *c.borrow_mut() = metrics);
}

/// Runs `f` on the calling thread's core metrics, if it has any.
pub(crate) fn with_current(f: impl FnOnce(&CoreMetrics)) {
    CURRENT.with(|c| {
        if let Some(m) = c.borrow().as_ref() {
            f(m);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> Labels {
        Labels {
            ops: vec!["Unknown", "GetObject"],
            codes: vec!["", "NoSuchKey"],
        }
    }

    #[test]
    fn histogram_buckets_are_inclusive_and_cumulative() {
        let reg = Registry::new(2, labels());
        let sample = |us, core: usize, error| {
            reg.core(core).record(&RequestSample {
                op: 1,
                status: if error > 0 { 404 } else { 200 },
                error,
                bytes_in: 0,
                bytes_out: 10,
                elapsed: Duration::from_micros(us),
            })
        };
        sample(50, 0, 0);
        sample(51, 1, 0);
        sample(20_000_000, 1, 1);
        let text = reg.render(&[]);
        assert!(
            text.contains("op=\"GetObject\",le=\"0.00005\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("op=\"GetObject\",le=\"0.0001\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("op=\"GetObject\",le=\"10\"} 2\n"), "{text}");
        assert!(text.contains("op=\"GetObject\",le=\"+Inf\"} 3\n"), "{text}");
        assert!(text.contains("ringstore_request_duration_seconds_count{op=\"GetObject\"} 3\n"));
        assert!(text.contains("ringstore_requests_total{op=\"GetObject\",status=\"200\"} 2\n"));
        assert!(text.contains("ringstore_errors_total{code=\"NoSuchKey\"} 1\n"));
        assert!(text.contains("ringstore_bytes_out_total{op=\"GetObject\"} 30\n"));
        assert!(!text.contains("op=\"Unknown\""), "{text}");
    }
}
