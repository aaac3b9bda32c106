//! What the timed workloads measured: per-connection recorders (per-second counts and every
//! operation's latency), merged into the run report: per operation the totals, throughput
//! (average and per-second fastest / median / slowest), latency and time-to-first-byte
//! percentiles, errors by code; and the per-second series. The report is the `--json`
//! document (schema in tuning/bench-run.schema.json), the CSV rows and the text summary.
//!
//! Invariants: totals count every operation of the run; rates and latencies cover only the
//! window after the warm-up trim (whole seconds only), or the whole run when it was too short
//! to trim; a second belongs to the operations that started in it.

use super::ops::{OpKind, Outcome, OP_KINDS};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Instant;

/// The `schema` value of a run report (bump on incompatible changes).
pub(crate) const REPORT_SCHEMA: &str = "ringstore-bench-run/1";
const MIB: f64 = 1024.0 * 1024.0;
/// Marks "no time to first byte" in a sample.
const NO_TTFB: u32 = u32::MAX;

#[derive(Debug, Clone, Copy, Default)]
struct SecCount {
    ops: u64,
    bytes: u64,
    errors: u64,
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    sec: u32,
    latency_us: u32,
    ttfb_us: u32,
}

/// One connection's measurements (merged into one for the run).
pub(crate) struct Recorder {
    t0: Instant,
    per_sec: Vec<[SecCount; OP_KINDS]>,
    samples: [Vec<Sample>; OP_KINDS],
    errors: [BTreeMap<String, u64>; OP_KINDS],
}

fn micros(d: std::time::Duration) -> u32 {
    d.as_micros().min(u128::from(NO_TTFB - 1)) as u32
}

impl Recorder {
    pub(crate) fn new(t0: Instant) -> Recorder {
        Recorder {
            t0,
            per_sec: Vec::new(),
            samples: Default::default(),
            errors: Default::default(),
        }
    }

    /// Records operation `kind` that started at `start` and ended with `o`.
    pub(crate) fn record(&mut self, kind: OpKind, start: Instant, o: &Outcome) {
        let sec = start.saturating_duration_since(self.t0).as_secs() as usize;
        if self.per_sec.len() <= sec {
            self.per_sec.resize(sec + 1, Default::default());
        }
        let slot = &mut self.per_sec[sec][kind.index()];
        match &o.error {
            Some(code) => {
                slot.errors += 1;
                *self.errors[kind.index()].entry(code.clone()).or_default() += 1;
            }
            None => {
                slot.ops += 1;
                slot.bytes += o.bytes;
                self.samples[kind.index()].push(Sample {
                    sec: sec as u32,
                    latency_us: micros(o.latency),
                    ttfb_us: o.ttfb.map_or(NO_TTFB, micros),
                });
            }
        }
    }

    pub(crate) fn merge(&mut self, other: Recorder) {
        if self.per_sec.len() < other.per_sec.len() {
            self.per_sec.resize(other.per_sec.len(), Default::default());
        }
        for (mine, theirs) in self.per_sec.iter_mut().zip(&other.per_sec) {
            for k in 0..OP_KINDS {
                mine[k].ops += theirs[k].ops;
                mine[k].bytes += theirs[k].bytes;
                mine[k].errors += theirs[k].errors;
            }
        }
        for k in 0..OP_KINDS {
            self.samples[k].extend_from_slice(&other.samples[k]);
            for (code, n) in &other.errors[k] {
                *self.errors[k].entry(code.clone()).or_default() += n;
            }
        }
    }
}

/// Average and per-second fastest / median / slowest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Rates {
    pub(crate) avg: f64,
    pub(crate) fastest: f64,
    pub(crate) median: f64,
    pub(crate) slowest: f64,
}

/// Latency statistics in milliseconds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Latency {
    pub(crate) avg: f64,
    pub(crate) p50: f64,
    pub(crate) p90: f64,
    pub(crate) p99: f64,
    pub(crate) max: f64,
}

/// One operation's results.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct OpReport {
    pub(crate) op: String,
    pub(crate) total_ops: u64,
    pub(crate) total_bytes: u64,
    pub(crate) total_errors: u64,
    pub(crate) errors_by_code: BTreeMap<String, u64>,
    /// Seconds the rates and latencies cover (after the warm-up trim).
    pub(crate) window_secs: f64,
    pub(crate) ops_per_sec: Rates,
    pub(crate) mib_per_sec: Rates,
    pub(crate) latency_ms: Latency,
    /// Time to the response head, GET only.
    pub(crate) ttfb_ms: Option<Latency>,
}

/// One second of one operation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct SecondRow {
    pub(crate) second: u32,
    pub(crate) op: String,
    pub(crate) ops: u64,
    pub(crate) bytes: u64,
    pub(crate) errors: u64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    /// Outside the statistics window (warm-up or the last, partial second).
    pub(crate) trimmed: bool,
}

/// The statistics window: seconds `from..to`, lasting `secs`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub(crate) struct Window {
    pub(crate) from: u32,
    pub(crate) to: u32,
    pub(crate) secs: f64,
}

/// Whole seconds after `trim`, or the whole run when it lasted less than `trim` + 2 s.
pub(crate) fn window(elapsed_secs: f64, trim: u64) -> Window {
    let full = elapsed_secs.floor() as u64;
    if full >= trim + 2 {
        Window {
            from: trim as u32,
            to: full as u32,
            secs: (full - trim) as f64,
        }
    } else {
        Window {
            from: 0,
            to: elapsed_secs.ceil().max(1.0) as u32,
            secs: elapsed_secs.max(1e-9),
        }
    }
}

/// Percentile `p` (0..=100) of sorted microseconds, in ms (nearest rank).
fn pct_ms(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    f64::from(sorted[rank.clamp(1, sorted.len()) - 1]) / 1000.0
}

fn latency(mut us: Vec<u32>) -> Latency {
    us.sort_unstable();
    let sum: u64 = us.iter().map(|&x| u64::from(x)).sum();
    Latency {
        avg: if us.is_empty() {
            0.0
        } else {
            sum as f64 / us.len() as f64 / 1000.0
        },
        p50: pct_ms(&us, 50.0),
        p90: pct_ms(&us, 90.0),
        p99: pct_ms(&us, 99.0),
        max: us.last().map_or(0.0, |&x| f64::from(x) / 1000.0),
    }
}

fn rates(avg: f64, mut per_sec: Vec<f64>) -> Rates {
    per_sec.sort_by(f64::total_cmp);
    let pick = |i: usize| per_sec.get(i).copied().unwrap_or(avg);
    Rates {
        avg,
        fastest: per_sec.last().copied().unwrap_or(avg),
        median: pick(per_sec.len() / 2),
        slowest: pick(0),
    }
}

impl Recorder {
    /// The report of operation `kind` over `w`, or `None` if it never ran.
    pub(crate) fn op_report(&self, kind: OpKind, w: Window) -> Option<OpReport> {
        let k = kind.index();
        let total = |f: fn(&SecCount) -> u64| self.per_sec.iter().map(|s| f(&s[k])).sum::<u64>();
        let (total_ops, total_errors) = (total(|c| c.ops), total(|c| c.errors));
        if total_ops + total_errors == 0 {
            return None;
        }
        let secs: Vec<&SecCount> = (w.from..w.to)
            .map(|s| self.per_sec.get(s as usize).map_or(&ZERO, |x| &x[k]))
            .collect();
        let (ops, bytes) = secs
            .iter()
            .fold((0, 0), |(o, b), c| (o + c.ops, b + c.bytes));
        let in_window = |s: &&Sample| (w.from..w.to).contains(&s.sec);
        let samples: Vec<&Sample> = self.samples[k].iter().filter(in_window).collect();
        let ttfb: Vec<u32> = samples
            .iter()
            .map(|s| s.ttfb_us)
            .filter(|&t| t != NO_TTFB)
            .collect();
        Some(OpReport {
            op: kind.name().to_string(),
            total_ops,
            total_bytes: total(|c| c.bytes),
            total_errors,
            errors_by_code: self.errors[k].clone(),
            window_secs: w.secs,
            ops_per_sec: rates(
                ops as f64 / w.secs,
                secs.iter().map(|c| c.ops as f64).collect(),
            ),
            mib_per_sec: rates(
                bytes as f64 / MIB / w.secs,
                secs.iter().map(|c| c.bytes as f64 / MIB).collect(),
            ),
            latency_ms: latency(samples.iter().map(|s| s.latency_us).collect()),
            ttfb_ms: (!ttfb.is_empty()).then(|| latency(ttfb)),
        })
    }

    /// One row per second per operation that ran.
    pub(crate) fn series(&self, w: Window) -> Vec<SecondRow> {
        let mut by_sec: Vec<[Vec<u32>; OP_KINDS]> = vec![Default::default(); self.per_sec.len()];
        for (k, samples) in self.samples.iter().enumerate() {
            for s in samples {
                by_sec[s.sec as usize][k].push(s.latency_us);
            }
        }
        let mut rows = Vec::new();
        for (sec, counts) in self.per_sec.iter().enumerate() {
            for kind in OpKind::ALL {
                let (c, lat) = (&counts[kind.index()], &mut by_sec[sec][kind.index()]);
                if c.ops + c.errors == 0 && !self.ran(kind) {
                    continue;
                }
                lat.sort_unstable();
                rows.push(SecondRow {
                    second: sec as u32,
                    op: kind.name().to_string(),
                    ops: c.ops,
                    bytes: c.bytes,
                    errors: c.errors,
                    p50_ms: pct_ms(lat, 50.0),
                    p99_ms: pct_ms(lat, 99.0),
                    trimmed: !(w.from..w.to).contains(&(sec as u32)),
                });
            }
        }
        rows
    }

    fn ran(&self, kind: OpKind) -> bool {
        self.per_sec
            .iter()
            .any(|s| s[kind.index()].ops + s[kind.index()].errors > 0)
    }
}

static ZERO: SecCount = SecCount {
    ops: 0,
    bytes: 0,
    errors: 0,
};

/// CSV of the series: a header and one row per second per operation.
pub(crate) fn csv(rows: &[SecondRow]) -> String {
    let mut out = String::from("second,op,ops,bytes,errors,mib_per_sec,p50_ms,p99_ms,trimmed\n");
    for r in rows {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{:.3},{:.3},{:.3},{}",
            r.second,
            r.op,
            r.ops,
            r.bytes,
            r.errors,
            r.bytes as f64 / MIB,
            r.p50_ms,
            r.p99_ms,
            u8::from(r.trimmed)
        );
    }
    out
}

/// Indent of an operation's second and following summary lines.
pub(crate) const INDENT: &str = "       ";

/// The human summary of one operation (several lines).
pub(crate) fn text(r: &OpReport) -> String {
    let l = &r.latency_ms;
    let mut s = format!(
        "{:<6} {} ops ({} errors) | {:.1} ops/s, {:.2} MiB/s over {:.1} s | per second: fastest {:.0}, median {:.0}, slowest {:.0} ops/s\n{INDENT}latency ms: avg {:.3} p50 {:.3} p90 {:.3} p99 {:.3} max {:.3}",
        r.op, r.total_ops, r.total_errors, r.ops_per_sec.avg, r.mib_per_sec.avg, r.window_secs,
        r.ops_per_sec.fastest, r.ops_per_sec.median, r.ops_per_sec.slowest,
        l.avg, l.p50, l.p90, l.p99, l.max
    );
    if let Some(t) = &r.ttfb_ms {
        let _ = write!(
            s,
            "\n{INDENT}time to first byte ms: avg {:.3} p50 {:.3} p90 {:.3} p99 {:.3} max {:.3}",
            t.avg, t.p50, t.p90, t.p99, t.max
        );
    }
    if !r.errors_by_code.is_empty() {
        let codes: Vec<String> = r
            .errors_by_code
            .iter()
            .map(|(c, n)| format!("{c} x{n}"))
            .collect();
        let _ = write!(s, "\n{INDENT}errors: {}", codes.join(", "));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ok(ms: u64, bytes: u64) -> Outcome {
        Outcome {
            latency: Duration::from_millis(ms),
            ttfb: Some(Duration::from_millis(ms / 2)),
            bytes,
            error: None,
        }
    }

    #[test]
    fn window_trims_only_long_enough_runs() {
        assert_eq!(
            window(10.4, 1),
            Window {
                from: 1,
                to: 10,
                secs: 9.0
            }
        );
        assert_eq!(
            window(2.5, 1),
            Window {
                from: 0,
                to: 3,
                secs: 2.5
            }
        );
        assert_eq!(
            window(3.0, 1),
            Window {
                from: 1,
                to: 3,
                secs: 2.0
            }
        );
        assert_eq!(
            window(0.2, 0),
            Window {
                from: 0,
                to: 1,
                secs: 0.2
            }
        );
    }

    #[test]
    fn report_counts_totals_and_windowed_rates() {
        let t0 = Instant::now();
        let mut a = Recorder::new(t0);
        let mut b = Recorder::new(t0);
        for sec in 0..5u64 {
            let at = t0 + Duration::from_millis(sec * 1000 + 10);
            for i in 0..(sec + 1) {
                a.record(OpKind::Get, at, &ok(i + 1, 100));
            }
            b.record(OpKind::Put, at, &ok(4, 1 << 20));
        }
        b.record(
            OpKind::Get,
            t0,
            &Outcome {
                latency: Duration::ZERO,
                ttfb: None,
                bytes: 0,
                error: Some("NoSuchKey".into()),
            },
        );
        a.merge(b);
        let w = window(5.5, 1);
        let get = a.op_report(OpKind::Get, w).unwrap();
        assert_eq!(
            (get.total_ops, get.total_bytes, get.total_errors),
            (15, 1500, 1)
        );
        assert_eq!(get.errors_by_code.get("NoSuchKey"), Some(&1));
        // Window seconds 1..5: 2+3+4+5 = 14 ops over 4 s.
        assert_eq!(get.ops_per_sec.avg, 3.5);
        assert_eq!(
            (
                get.ops_per_sec.fastest,
                get.ops_per_sec.median,
                get.ops_per_sec.slowest
            ),
            (5.0, 4.0, 2.0)
        );
        assert_eq!(get.latency_ms.max, 5.0);
        assert_eq!(get.latency_ms.p50, 2.0);
        assert!(get.ttfb_ms.is_some());
        let put = a.op_report(OpKind::Put, w).unwrap();
        assert_eq!(put.mib_per_sec.avg, 1.0);
        assert!(a.op_report(OpKind::Delete, w).is_none());
        let rows = a.series(w);
        assert_eq!(rows.len(), 10);
        assert!(rows[0].trimmed && !rows[2].trimmed);
        let text = csv(&rows);
        assert_eq!(text.lines().count(), 11);
        assert!(
            text.lines()
                .nth(1)
                .unwrap()
                .starts_with("0,PUT,1,1048576,0,1.000,"),
            "{text}"
        );
    }
}
