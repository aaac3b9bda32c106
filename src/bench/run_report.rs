//! The report of a timed workload: the run's parameters, per-operation results, the client's
//! ceiling and the per-second series; written as JSON (`--json`), CSV (`--csv`) and an SVG
//! chart (`--plot`), and compared with another report by `ringstore bench compare`.
//!
//! Invariant: the JSON holds every number the text summary prints, plus the parameters needed
//! to rerun it; its layout is `schema` = [`REPORT_SCHEMA`], documented in
//! tuning/bench-run.schema.json, and `compare` refuses any other schema.

use super::multipart::MultipartSummary;
use super::stats::{self, OpReport, SecondRow, Window, REPORT_SCHEMA};
use super::timed::{Measured, StopReason};
use super::timed_args::{ChecksumArg, Mix};
use super::BenchArgs;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// What produced a report (enough to rerun it).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Params {
    pub(crate) ringstore_version: String,
    pub(crate) workload: String,
    pub(crate) endpoints: Vec<String>,
    /// How the client verified the endpoints' certificates: `system-roots`, `ca-bundle`,
    /// `insecure`, `self-signed` (the null responder's own), or `None` for plain HTTP.
    #[serde(default)]
    pub(crate) tls_verify: Option<String>,
    pub(crate) region: String,
    pub(crate) bucket: String,
    pub(crate) prefix: String,
    pub(crate) concurrency: usize,
    pub(crate) object_size_bytes: u64,
    pub(crate) object_size_max_bytes: u64,
    pub(crate) objects: u64,
    pub(crate) count: u64,
    pub(crate) duration_secs: u64,
    pub(crate) mix: Option<Mix>,
    pub(crate) payload: String,
    pub(crate) checksum: ChecksumArg,
    pub(crate) autoterm: bool,
    pub(crate) rate_ops_per_sec: Option<u64>,
    pub(crate) trim_secs: u64,
    pub(crate) started_unix_secs: u64,
    pub(crate) client_cpus: usize,
    /// multipart: `--size`, `--part-size` (absent from reports of other workloads).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) size_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) part_size_bytes: Option<u64>,
    /// list: `--page-size`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) page_size: Option<usize>,
}

/// The client's own ceiling: the same workload against the null responder.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Ceiling {
    /// Measured over TLS (as the run was, against an https:// endpoint).
    #[serde(default)]
    pub(crate) tls: bool,
    pub(crate) secs: f64,
    pub(crate) operations: Vec<OpReport>,
}

/// The whole report of one timed run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct RunReport {
    pub(crate) schema: String,
    pub(crate) params: Params,
    pub(crate) elapsed_secs: f64,
    pub(crate) window: Window,
    pub(crate) stopped_by: StopReason,
    /// Failed PUTs while writing the objects before the timed phase.
    pub(crate) prep_errors: u64,
    pub(crate) operations: Vec<OpReport>,
    pub(crate) client_ceiling: Option<Ceiling>,
    pub(crate) series: Vec<SecondRow>,
    /// multipart: whole objects completed, uploads aborted, the HEAD check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) multipart: Option<MultipartSummary>,
    /// list: keys of the full listing the pages were checked against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) listed_keys: Option<u64>,
}

impl RunReport {
    pub(crate) fn new(params: Params, m: &Measured, trim_secs: u64) -> RunReport {
        let window = stats::window(m.elapsed_secs, trim_secs);
        RunReport {
            schema: REPORT_SCHEMA.to_string(),
            params,
            elapsed_secs: m.elapsed_secs,
            window,
            stopped_by: m.stopped_by,
            prep_errors: m.prep_errors,
            operations: operations(m, window),
            client_ceiling: None,
            series: m.recorder.series(window),
            multipart: m.multipart.clone(),
            listed_keys: m.listed_keys,
        }
    }

    /// Failed operations, timed or not.
    pub(crate) fn errors(&self) -> u64 {
        self.prep_errors
            + self.operations.iter().map(|o| o.total_errors).sum::<u64>()
            + self.multipart.as_ref().map_or(0, |m| m.errors())
    }

    /// The text summary: one block per operation, with the ceiling's rate beside it.
    pub(crate) fn text(&self) -> Vec<String> {
        let mut lines = vec![format!(
            "{}: {:.1} s on {} connections, stopped by {}; statistics over seconds {}..{}",
            self.params.workload,
            self.elapsed_secs,
            self.params.concurrency,
            self.stopped_by.name(),
            self.window.from,
            self.window.to
        )];
        for op in &self.operations {
            lines.push(stats::text(op));
            let Some(ceiling) = &self.client_ceiling else {
                continue;
            };
            if let Some(c) = ceiling.operations.iter().find(|c| c.op == op.op) {
                let share = 100.0 * op.ops_per_sec.avg / c.ops_per_sec.avg.max(1e-9);
                lines.push(format!(
                    "       client ceiling (null responder{}): {:.1} ops/s, {:.2} MiB/s; this run reached {share:.0}% of it",
                    if ceiling.tls { " over TLS" } else { "" },
                    c.ops_per_sec.avg, c.mib_per_sec.avg
                ));
            }
        }
        if let Some(m) = &self.multipart {
            let completes = self.operations.iter().find(|o| o.op == "MPU-COMPLETE");
            lines.push(m.text(completes.map_or(0.0, |o| o.ops_per_sec.avg)));
        }
        if let (Some(keys), Some(page)) = (self.listed_keys, self.params.page_size) {
            lines.push(format!(
                "pages of up to {page} keys after random keys of a {keys}-key listing, each checked against it"
            ));
        }
        lines
    }

    pub(crate) fn json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report always serializes")
    }
}

/// The per-operation reports of `m` over `w`.
pub(crate) fn operations(m: &Measured, w: Window) -> Vec<OpReport> {
    super::ops::OpKind::ALL
        .into_iter()
        .filter_map(|k| m.recorder.op_report(k, w))
        .collect()
}

/// The parameters of a run of `workload` with `args` on `endpoints` (certificates verified as
/// `tls_verify` says, for https).
pub(crate) fn params(
    args: &BenchArgs,
    workload: &str,
    endpoints: Vec<String>,
    tls_verify: Option<&str>,
    bucket: &str,
) -> Params {
    let t = &args.timed;
    Params {
        ringstore_version: env!("CARGO_PKG_VERSION").to_string(),
        workload: workload.to_string(),
        endpoints,
        tls_verify: tls_verify.map(str::to_string),
        region: t.region.clone(),
        bucket: bucket.to_string(),
        prefix: t.prefix.clone(),
        concurrency: args.concurrency,
        object_size_bytes: args.object_size,
        object_size_max_bytes: t.size_max(args.object_size),
        objects: t.objects,
        count: args.count,
        duration_secs: args.duration_secs,
        mix: (workload == "mixed").then_some(t.mix),
        payload: format!("{:?}", args.payload).to_lowercase(),
        checksum: t.checksum,
        autoterm: t.autoterm,
        rate_ops_per_sec: t.rate,
        trim_secs: t.trim_secs,
        started_unix_secs: crate::clock::now_ms() / 1000,
        client_cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        size_bytes: (workload == "multipart").then_some(args.size),
        part_size_bytes: (workload == "multipart").then_some(args.part_size),
        page_size: (workload == "list").then_some(args.page_size),
    }
}

/// Writes `--json FILE` (unless it is `-`, stdout), `--csv` and `--plot` outputs.
pub(crate) fn write_outputs(r: &RunReport, args: &BenchArgs) -> Result<(), String> {
    let write = |path: &Path, what: &str, text: String| {
        std::fs::write(path, text).map_err(|e| format!("writing {what} {}: {e}", path.display()))
    };
    if let Some(p) = args.json.as_deref().filter(|p| *p != "-") {
        write(Path::new(p), "--json", r.json())?;
    }
    if let Some(p) = &args.timed.csv {
        write(p, "--csv", stats::csv(&r.series))?;
    }
    if let Some(p) = &args.timed.plot {
        super::plot::draw(r, p)?;
    }
    Ok(())
}

/// Loads a report written by `--json FILE`.
pub(crate) fn load(path: &Path) -> Result<RunReport, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: not JSON: {e}", path.display()))?;
    if value.get("schema").and_then(|s| s.as_str()) != Some(REPORT_SCHEMA) {
        return Err(format!(
            "{}: not a timed-workload report (schema {REPORT_SCHEMA}); write one with --scenario put|get|stat|delete|mixed|list|multipart --json FILE",
            path.display()
        ));
    }
    serde_json::from_value(value).map_err(|e| format!("{}: {e}", path.display()))
}

/// One row of a comparison: an operation's metric in A and B and B/A.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Ratio {
    pub(crate) op: String,
    pub(crate) metric: &'static str,
    pub(crate) a: f64,
    pub(crate) b: f64,
}

impl Ratio {
    pub(crate) fn ratio(&self) -> Option<f64> {
        (self.a > 0.0).then(|| self.b / self.a)
    }
}

/// The ratios B/A of every operation both reports have: throughput (higher is better) and
/// latency (lower is better).
pub(crate) fn compare(a: &RunReport, b: &RunReport) -> Vec<Ratio> {
    let mut rows = Vec::new();
    for oa in &a.operations {
        let Some(ob) = b.operations.iter().find(|o| o.op == oa.op) else {
            continue;
        };
        let metrics: [(&'static str, f64, f64); 6] = [
            ("ops/s", oa.ops_per_sec.avg, ob.ops_per_sec.avg),
            ("MiB/s", oa.mib_per_sec.avg, ob.mib_per_sec.avg),
            ("latency p50 ms", oa.latency_ms.p50, ob.latency_ms.p50),
            ("latency p99 ms", oa.latency_ms.p99, ob.latency_ms.p99),
            ("errors", oa.total_errors as f64, ob.total_errors as f64),
            (
                "slowest second ops/s",
                oa.ops_per_sec.slowest,
                ob.ops_per_sec.slowest,
            ),
        ];
        for (metric, x, y) in metrics {
            rows.push(Ratio {
                op: oa.op.clone(),
                metric,
                a: x,
                b: y,
            });
        }
    }
    rows
}

/// `ringstore bench compare A B`: prints the table; `Err` when a file is unusable.
pub(crate) fn compare_files(a: &Path, b: &Path) -> Result<Vec<String>, String> {
    let (ra, rb) = (load(a)?, load(b)?);
    let rows = compare(&ra, &rb);
    if rows.is_empty() {
        return Err("the two reports have no operation in common".to_string());
    }
    let mut out = vec![
        format!(
            "A: {} ({} on {})",
            a.display(),
            ra.params.workload,
            ra.params.endpoints.join(",")
        ),
        format!(
            "B: {} ({} on {})",
            b.display(),
            rb.params.workload,
            rb.params.endpoints.join(",")
        ),
        format!(
            "{:<12} {:<21} {:>14} {:>14} {:>8}",
            "op", "metric", "A", "B", "B/A"
        ),
    ];
    for r in rows {
        let ratio = r.ratio().map_or("-".to_string(), |x| format!("{x:.3}"));
        out.push(format!(
            "{:<12} {:<21} {:>14.3} {:>14.3} {:>8}",
            r.op, r.metric, r.a, r.b, ratio
        ));
    }
    Ok(out)
}
