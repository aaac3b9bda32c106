//! Observability, a leaf every serving layer may record into: per-core metrics merged at scrape
//! time ([`metrics`], rendered in the Prometheus text format 0.0.4) and the access log
//! ([`access_log`], one line per request through a bounded channel to one writer thread).
//!
//! Invariants: every metric cell has exactly one writer, the core that owns it (plain relaxed
//! load + store, no read-modify-write on the hot path); a scrape on any core reads every core's
//! cells; the access log never blocks an executor (a full channel drops the line and counts it).

pub(crate) mod access_log;
pub(crate) mod metrics;

pub(crate) use access_log::AccessLog;
pub(crate) use metrics::{CoreMetrics, Labels, Registry, Sampled};

/// What one core's HTTP server records into: its metrics (`None` with `--metrics off`), the
/// access log (`None` below `--log-level info`) and the names behind the indexes.
pub(crate) struct CoreObs {
    pub(crate) metrics: Option<std::sync::Arc<CoreMetrics>>,
    pub(crate) log: Option<AccessLog>,
    pub(crate) labels: Labels,
}

/// `--log-level`: what the server writes to stderr besides its start and stop lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum LogLevel {
    /// Nothing optional.
    Off,
    /// Errors only.
    Error,
    /// Errors and warnings (default).
    Warn,
    /// Also one access-log line per request.
    Info,
    /// Like info (reserved for more detail).
    Debug,
}

/// `--log-format` of access-log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `key=value` pairs on one line.
    Text,
    /// One JSON object per line.
    Json,
}

/// How a server observes itself (the `--metrics`, `--log-level`, `--log-format` flags).
#[derive(Debug, Clone, Copy)]
pub struct ObsConfig {
    /// Count requests, bytes, latencies and storage timings (`/metrics` answers either way).
    pub(crate) metrics: bool,
    pub(crate) log_level: LogLevel,
    pub(crate) log_format: LogFormat,
}

impl Default for ObsConfig {
    fn default() -> ObsConfig {
        ObsConfig {
            metrics: true,
            log_level: LogLevel::Warn,
            log_format: LogFormat::Text,
        }
    }
}

impl ObsConfig {
    /// Whether requests get access-log lines.
    pub(crate) fn access_log(&self) -> bool {
        self.log_level >= LogLevel::Info
    }
}

/// Records how long a log batch write (the group commit, durable with `--fsync always`) took,
/// on the calling core's metrics (nothing on threads that serve no core).
pub(crate) fn record_log_commit(elapsed: std::time::Duration) {
    metrics::with_current(|m| m.log_commit.observe(elapsed));
}

/// Records how long a directory fsync (the group sync of renamed object files) took.
pub(crate) fn record_dir_fsync(elapsed: std::time::Duration) {
    metrics::with_current(|m| m.dir_fsync.observe(elapsed));
}
