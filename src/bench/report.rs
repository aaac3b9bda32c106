//! Results of a scenario: counts, bytes, wall time and per-operation latencies, formatted as the
//! one-line human summary or as JSON.
//!
//! Invariant: throughput counts only successful operations; every failed request is in
//! `errors`, and the first few error messages are kept for the report.

use super::args::format_size;
use std::fmt::Write as _;
use std::time::Duration;

/// Error messages kept per scenario (the count is always exact).
const KEPT_ERRORS: usize = 5;

/// What one worker (or a whole scenario, once merged) measured.
#[derive(Debug, Default, Clone)]
pub(crate) struct Tally {
    /// Successful operations.
    pub(crate) ops: u64,
    /// Body bytes of successful operations.
    pub(crate) bytes: u64,
    /// Failed operations.
    pub(crate) errors: u64,
    /// Latency of each successful operation, in microseconds.
    pub(crate) latencies_us: Vec<u32>,
    /// First error messages.
    pub(crate) messages: Vec<String>,
}

impl Tally {
    /// Counts a successful operation of `bytes` body bytes that took `latency`.
    pub(crate) fn success(&mut self, bytes: u64, latency: Duration) {
        self.ops += 1;
        self.bytes += bytes;
        self.latencies_us
            .push(latency.as_micros().min(u32::MAX as u128) as u32);
    }

    /// Counts a failure, keeping its message if fewer than [`KEPT_ERRORS`] are kept.
    pub(crate) fn error(&mut self, msg: String) {
        self.errors += 1;
        if self.messages.len() < KEPT_ERRORS {
            self.messages.push(msg);
        }
    }

    /// Adds `other` to this tally.
    pub(crate) fn merge(&mut self, other: Tally) {
        self.ops += other.ops;
        self.bytes += other.bytes;
        self.errors += other.errors;
        self.latencies_us.extend(other.latencies_us);
        for m in other.messages {
            if self.messages.len() < KEPT_ERRORS {
                self.messages.push(m);
            }
        }
    }
}

/// The summary of one scenario.
#[derive(Debug, Clone)]
pub(crate) struct ScenarioResult {
    pub(crate) name: &'static str,
    /// What one operation is, for the human line: `ops`, or `pages` for list.
    pub(crate) unit: &'static str,
    pub(crate) tally: Tally,
    /// Wall time of the measured phase.
    pub(crate) elapsed: Duration,
    /// Client connections used.
    pub(crate) connections: usize,
    /// Why the loop ended before its count: `time cap` or `interrupted`.
    pub(crate) stopped_early: Option<&'static str>,
    /// Free-form detail for the human line, e.g. `32 x 8 MiB parts`.
    pub(crate) detail: Option<String>,
}

/// Latency percentile `p` (0..=100) of sorted microsecond samples, in milliseconds.
fn percentile_ms(sorted_us: &[u32], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    // Nearest-rank method: the smallest sample with at least p% of samples at or below it.
    let rank = ((p / 100.0) * sorted_us.len() as f64).ceil() as usize;
    let idx = rank.clamp(1, sorted_us.len()) - 1;
    sorted_us[idx] as f64 / 1000.0
}

/// `ms` with enough digits to be useful: `0.42`, `3.1`, `910`.
fn fmt_ms(ms: f64) -> String {
    if ms < 1.0 {
        format!("{ms:.2} ms")
    } else if ms < 100.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

/// A rate: whole numbers from 100 up, one decimal below.
fn fmt_rate(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

/// Bytes in a MiB, for MiB/s.
const BYTES_PER_MIB: f64 = 1024.0 * 1024.0;
/// Floor of a measured wall time, so rates never divide by zero.
const MIN_ELAPSED_SECS: f64 = 1e-9;

impl ScenarioResult {
    /// Wall time in seconds (never zero).
    pub(crate) fn secs(&self) -> f64 {
        self.elapsed.as_secs_f64().max(MIN_ELAPSED_SECS)
    }

    /// Successful operations per second.
    fn ops_per_sec(&self) -> f64 {
        self.tally.ops as f64 / self.secs()
    }

    /// Body MiB of successful operations per second.
    fn mib_per_sec(&self) -> f64 {
        self.tally.bytes as f64 / BYTES_PER_MIB / self.secs()
    }

    /// The latencies, ascending.
    fn sorted(&self) -> Vec<u32> {
        let mut v = self.tally.latencies_us.clone();
        v.sort_unstable();
        v
    }

    /// `put-small: 10000 ops in 2.31 s = 4329 ops/s, 16.9 MiB/s, p50 3.1 ms, p90 5.0 ms,
    /// p99 9.8 ms, max 12.0 ms, errors 0`
    pub(crate) fn line(&self) -> String {
        let s = self.sorted();
        let mut line = format!(
            "{}: {} {unit} in {:.2} s = {} {unit}/s, {} MiB/s, p50 {}, p90 {}, p99 {}, max {}, errors {}",
            self.name,
            self.tally.ops,
            self.secs(),
            fmt_rate(self.ops_per_sec()),
            fmt_rate(self.mib_per_sec()),
            fmt_ms(percentile_ms(&s, 50.0)),
            fmt_ms(percentile_ms(&s, 90.0)),
            fmt_ms(percentile_ms(&s, 99.0)),
            fmt_ms(percentile_ms(&s, 100.0)),
            self.tally.errors,
            unit = self.unit,
        );
        if let Some(d) = &self.detail {
            let _ = write!(line, " ({d})");
        }
        if let Some(why) = self.stopped_early {
            let _ = write!(line, " [stopped early: {why}]");
        }
        line
    }

    /// `client ceiling (null responder): put-small 52000 ops/s, p50 0.30 ms`
    pub(crate) fn ceiling_line(&self) -> String {
        let s = self.sorted();
        format!(
            "client ceiling (null responder): {} {} {}/s, p50 {}",
            self.name,
            fmt_rate(self.ops_per_sec()),
            self.unit,
            fmt_ms(percentile_ms(&s, 50.0))
        )
    }

    /// The result as a JSON object.
    pub(crate) fn json(&self) -> String {
        let s = self.sorted();
        format!(
            "{{\"name\":{},\"ops\":{},\"unit\":{},\"bytes\":{},\"seconds\":{:.6},\"ops_per_sec\":{:.3},\"mib_per_sec\":{:.3},\"p50_ms\":{:.3},\"p90_ms\":{:.3},\"p99_ms\":{:.3},\"max_ms\":{:.3},\"errors\":{},\"connections\":{},\"stopped_early\":{},\"error_samples\":[{}]}}",
            json_str(self.name),
            self.tally.ops,
            json_str(self.unit),
            self.tally.bytes,
            self.secs(),
            self.ops_per_sec(),
            self.mib_per_sec(),
            percentile_ms(&s, 50.0),
            percentile_ms(&s, 90.0),
            percentile_ms(&s, 99.0),
            percentile_ms(&s, 100.0),
            self.tally.errors,
            self.connections,
            self.stopped_early.map_or("null".to_string(), json_str),
            self.tally
                .messages
                .iter()
                .map(|m| json_str(m))
                .collect::<Vec<_>>()
                .join(",")
        )
    }
}

/// put-large vs multipart on the same bytes.
#[derive(Debug, Clone)]
pub(crate) struct Comparison {
    pub(crate) size: u64,
    pub(crate) single: ScenarioResult,
    pub(crate) multipart: ScenarioResult,
    pub(crate) parts: u64,
    pub(crate) part_size: u64,
}

impl Comparison {
    /// multipart throughput / single-PUT throughput (0 when either failed).
    fn ratio(&self) -> f64 {
        let (s, m) = (self.single.mib_per_sec(), self.multipart.mib_per_sec());
        if s > 0.0 && m > 0.0 {
            m / s
        } else {
            0.0
        }
    }

    /// Failed requests of both scenarios.
    fn errors(&self) -> u64 {
        self.single.tally.errors + self.multipart.tally.errors
    }

    /// `large-vs-multipart: put-large 256 MiB: 0.91 s = 281 MiB/s; multipart 32 x 8 MiB on 16
    /// conns: 0.55 s = 465 MiB/s; multipart/single = 1.65x, errors 0`
    pub(crate) fn line(&self) -> String {
        format!(
            "large-vs-multipart: put-large {}: {:.2} s = {} MiB/s; multipart {} x {} on {} conns: {:.2} s = {} MiB/s; multipart/single = {:.2}x, errors {}",
            format_size(self.size),
            self.single.secs(),
            fmt_rate(self.single.mib_per_sec()),
            self.parts,
            format_size(self.part_size),
            self.multipart.connections,
            self.multipart.secs(),
            fmt_rate(self.multipart.mib_per_sec()),
            self.ratio(),
            self.errors()
        )
    }

    /// The comparison as a JSON object.
    pub(crate) fn json(&self) -> String {
        format!(
            "{{\"size\":{},\"parts\":{},\"part_size\":{},\"connections\":{},\"single_seconds\":{:.6},\"single_mib_per_sec\":{:.3},\"multipart_seconds\":{:.6},\"multipart_mib_per_sec\":{:.3},\"ratio\":{:.4},\"errors\":{}}}",
            self.size,
            self.parts,
            self.part_size,
            self.multipart.connections,
            self.single.secs(),
            self.single.mib_per_sec(),
            self.multipart.secs(),
            self.multipart.mib_per_sec(),
            self.ratio(),
            self.errors()
        )
    }
}

/// A JSON string literal.
pub(crate) fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(name: &'static str, ops: u64, bytes: u64, ms: u64, errors: u64) -> ScenarioResult {
        let mut t = Tally::default();
        for i in 0..ops {
            t.success(bytes / ops.max(1), Duration::from_micros(1000 + i * 10));
        }
        for i in 0..errors {
            t.error(format!("e{i}"));
        }
        ScenarioResult {
            name,
            unit: "ops",
            tally: t,
            elapsed: Duration::from_millis(ms),
            connections: 16,
            stopped_early: None,
            detail: None,
        }
    }

    #[test]
    fn percentiles() {
        let v: Vec<u32> = (1..=100).map(|x| x * 1000).collect();
        assert_eq!(percentile_ms(&v, 50.0), 50.0);
        assert_eq!(percentile_ms(&v, 99.0), 99.0);
        assert_eq!(percentile_ms(&v, 100.0), 100.0);
        assert_eq!(percentile_ms(&v, 0.0), 1.0);
        assert_eq!(percentile_ms(&[], 50.0), 0.0);
        assert_eq!(percentile_ms(&[7000], 99.0), 7.0);
    }

    #[test]
    fn scenario_line() {
        let r = result("put-small", 10_000, 10_000 * 4096, 2310, 0);
        let line = r.line();
        assert!(
            line.starts_with("put-small: 10000 ops in 2.31 s = 4329 ops/s, 16.9 MiB/s, p50 "),
            "{line}"
        );
        assert!(line.contains(", p90 ") && line.contains(", max "), "{line}");
        assert!(line.ends_with(", errors 0"), "{line}");
        let json = r.json();
        assert!(json.starts_with(
            "{\"name\":\"put-small\",\"ops\":10000,\"unit\":\"ops\",\"bytes\":40960000,"
        ));
        assert!(json.contains("\"errors\":0,"));
    }

    #[test]
    fn tally_keeps_first_messages_and_exact_count() {
        let mut a = Tally::default();
        for i in 0..4 {
            a.error(format!("a{i}"));
        }
        let mut b = Tally::default();
        for i in 0..4 {
            b.error(format!("b{i}"));
        }
        b.success(10, Duration::from_millis(1));
        a.merge(b);
        assert_eq!(a.errors, 8);
        assert_eq!(a.ops, 1);
        assert_eq!(a.messages, vec!["a0", "a1", "a2", "a3", "b0"]);
    }

    #[test]
    fn comparison_line() {
        let c = Comparison {
            size: 256 << 20,
            single: result("put-large", 1, 256 << 20, 910, 0),
            multipart: result("multipart", 32, 256 << 20, 550, 0),
            parts: 32,
            part_size: 8 << 20,
        };
        assert_eq!(
            c.line(),
            "large-vs-multipart: put-large 256 MiB: 0.91 s = 281 MiB/s; multipart 32 x 8 MiB on 16 conns: 0.55 s = 465 MiB/s; multipart/single = 1.65x, errors 0"
        );
        assert!(c.json().contains("\"ratio\":1.6545"));
    }

    #[test]
    fn json_strings() {
        assert_eq!(json_str("a\"b\\c\n\u{1}é"), "\"a\\\"b\\\\c\\n\\u0001é\"");
    }

    #[test]
    fn formatting() {
        assert_eq!(fmt_ms(0.4234), "0.42 ms");
        assert_eq!(fmt_ms(3.12), "3.1 ms");
        assert_eq!(fmt_ms(910.4), "910 ms");
        assert_eq!(fmt_rate(4329.4), "4329");
        assert_eq!(fmt_rate(16.93), "16.9");
    }
}
