//! The access log: one line per request (text `key=value` or JSON), written to stderr by one
//! writer thread.
//!
//! Invariants: an executor only formats its line and appends it to its own core's buffer (a
//! mutex only the writer also takes, for a swap every [`ACCESS_LOG_DRAIN_INTERVAL`]) — it never
//! waits for the writer's I/O and never wakes it, and no line crosses threads alone (no channel
//! operation or cross-thread free per request); the writer swaps each buffer out and writes all
//! of them in one write. A core's buffer holds at most [`ACCESS_LOG_BUFFER_MAX_BYTES`]: past
//! that its lines are dropped and counted ([`AccessLog::dropped`], the metric
//! `ringstore_log_lines_dropped_total`). A logged target never carries a request signature or
//! credential (those query parameters are left out).

use crate::obs::LogFormat;
use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Bytes of lines one core's buffer holds before further lines are dropped (about 16,000 lines
/// of 250 bytes: far more than a core logs in one drain interval).
pub(crate) const ACCESS_LOG_BUFFER_MAX_BYTES: usize = 4 << 20;
/// How long the writer sleeps between two drains of the buffers: loggers never wake it (a wake
/// per line cost a futex call and a context switch per request), at the price of lines reaching
/// stderr up to this late.
pub(crate) const ACCESS_LOG_DRAIN_INTERVAL: std::time::Duration =
    std::time::Duration::from_millis(20);
/// A drained buffer's capacity is given back when it grew beyond this.
const BUFFER_KEEP_MAX_BYTES: usize = 1 << 20;
/// Query parameters never logged (presigned URL secrets and signatures).
const SECRET_QUERY_PARAMS: &[&str] = &[
    "X-Amz-Signature",
    "X-Amz-Credential",
    "X-Amz-Security-Token",
    "Signature",
    "AWSAccessKeyId",
];

/// What the loggers and the writer share: one line buffer per core.
struct Shared {
    buffers: Vec<Mutex<Vec<u8>>>,
    dropped: AtomicU64,
}

/// A handle every core logs through (cheap to clone); the writer ends when the last is dropped.
#[derive(Clone)]
pub(crate) struct AccessLog {
    shared: Arc<Shared>,
    format: LogFormat,
}

/// One request as the access log reports it.
pub(crate) struct AccessEntry<'a> {
    pub(crate) time_ms: u64,
    pub(crate) request_id: &'a str,
    pub(crate) core: usize,
    pub(crate) remote: Option<std::net::SocketAddr>,
    pub(crate) method: &'a str,
    pub(crate) path: &'a str,
    pub(crate) query: &'a str,
    pub(crate) op: &'a str,
    pub(crate) status: u16,
    /// The S3 error code, empty without one.
    pub(crate) error: &'a str,
    pub(crate) bytes_in: u64,
    pub(crate) bytes_out: u64,
    pub(crate) duration_us: u64,
}

impl AccessLog {
    /// Starts the writer thread for `cores` loggers (it ends when the last handle is dropped).
    pub(crate) fn start(format: LogFormat, cores: usize) -> std::io::Result<AccessLog> {
        assert!(cores > 0, "at least one core logs");
        let shared = Arc::new(Shared {
            buffers: (0..cores).map(|_| Mutex::new(Vec::new())).collect(),
            dropped: AtomicU64::new(0),
        });
        let writer = Arc::downgrade(&shared);
        std::thread::Builder::new()
            .name("ringstore-access-log".to_string())
            .spawn(move || write_lines(writer))?;
        Ok(AccessLog { shared, format })
    }

    /// Lines dropped because the writer fell behind.
    pub(crate) fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Formats `entry` and appends it to its core's buffer, or drops it if that is full.
    pub(crate) fn log(&self, entry: &AccessEntry<'_>) {
        let line = match self.format {
            LogFormat::Text => text_line(entry),
            LogFormat::Json => json_line(entry),
        };
        let buffers = &self.shared.buffers;
        let mut buffer = buffers[entry.core % buffers.len()]
            .lock()
            .expect("access-log buffer");
        if buffer.len() + line.len() > ACCESS_LOG_BUFFER_MAX_BYTES {
            drop(buffer);
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        buffer.extend_from_slice(line.as_bytes());
    }
}

/// The writer thread: every [`ACCESS_LOG_DRAIN_INTERVAL`] swaps every core's buffer for an
/// empty one and writes what they held in one write; stderr is locked only for that write
/// (other threads print to it too). Once every handle is gone it drains a last time and ends.
fn write_lines(shared: std::sync::Weak<Shared>) {
    let mut batch = Vec::with_capacity(64 * 1024);
    let mut spare = Vec::new();
    loop {
        let Some(s) = shared.upgrade() else {
            return; // every handle and so every line is gone
        };
        let closed = Arc::strong_count(&s) == 1;
        for buffer in &s.buffers {
            std::mem::swap(&mut *buffer.lock().expect("access-log buffer"), &mut spare);
            batch.extend_from_slice(&spare);
            spare.clear();
            if spare.capacity() > BUFFER_KEEP_MAX_BYTES {
                spare = Vec::new();
            }
        }
        drop(s);
        if !batch.is_empty() {
            let _ = std::io::stderr().lock().write_all(&batch);
            batch.clear();
            if batch.capacity() > BUFFER_KEEP_MAX_BYTES {
                batch = Vec::with_capacity(64 * 1024);
            }
        }
        if closed {
            return;
        }
        std::thread::sleep(ACCESS_LOG_DRAIN_INTERVAL);
    }
}

/// Appends the request target with secret query parameters left out.
fn push_redacted_target(out: &mut String, path: &str, query: &str) {
    out.push_str(path);
    let mut sep = '?';
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let name = pair.split('=').next().unwrap_or("");
        if SECRET_QUERY_PARAMS
            .iter()
            .any(|s| s.eq_ignore_ascii_case(name))
        {
            continue;
        }
        out.push(sep);
        out.push_str(pair);
        sep = '&';
    }
}

/// The request target with secret query parameters left out.
#[cfg(test)]
fn redacted_target(path: &str, query: &str) -> String {
    let mut out = String::new();
    push_redacted_target(&mut out, path, query);
    out
}

fn text_line(e: &AccessEntry<'_>) -> String {
    let mut s = String::with_capacity(256);
    s.push_str("time=");
    push_rfc3339_ms(&mut s, e.time_ms);
    s.push_str(" level=info request_id=");
    s.push_str(e.request_id);
    s.push_str(" core=");
    push_u64(&mut s, e.core as u64);
    s.push_str(" remote=");
    match e.remote {
        Some(a) => push_socket_addr(&mut s, a),
        None => s.push('-'),
    }
    s.push_str(" method=");
    s.push_str(e.method);
    s.push_str(" path=");
    push_redacted_target(&mut s, e.path, e.query);
    s.push_str(" op=");
    s.push_str(e.op);
    let numbers = [
        (" status=", u64::from(e.status)),
        (" bytes_in=", e.bytes_in),
        (" bytes_out=", e.bytes_out),
        (" duration_us=", e.duration_us),
    ];
    for (i, (name, value)) in numbers.into_iter().enumerate() {
        if i == 1 {
            s.push_str(" error=");
            s.push_str(if e.error.is_empty() { "-" } else { e.error });
        }
        s.push_str(name);
        push_u64(&mut s, value);
    }
    s.push('\n');
    s
}

/// Appends `n` in decimal (itoa: no core::fmt machinery per number).
fn push_u64(out: &mut String, n: u64) {
    out.push_str(itoa::Buffer::new().format(n));
}

/// Appends `n` in decimal, zero-padded to `width` digits.
fn push_padded(out: &mut String, n: u64, width: usize) {
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(n);
    for _ in digits.len()..width {
        out.push('0');
    }
    out.push_str(digits);
}

/// Appends `ip:port` (IPv4 by hand; IPv6 through its Display, `[ip]:port`).
fn push_socket_addr(out: &mut String, a: std::net::SocketAddr) {
    match a {
        std::net::SocketAddr::V4(v4) => {
            for (i, octet) in v4.ip().octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                push_u64(out, u64::from(octet));
            }
            out.push(':');
            push_u64(out, u64::from(v4.port()));
        }
        std::net::SocketAddr::V6(_) => {
            let _ = write!(out, "{a}");
        }
    }
}

/// One JSON access-log line; field order is the line's (serde keeps declaration order).
#[derive(serde::Serialize)]
struct JsonLine<'a> {
    time: String,
    level: &'static str,
    request_id: &'a str,
    /// The peer address, empty when unknown.
    remote: String,
    method: &'a str,
    /// Path and query, signatures removed.
    path: String,
    op: &'a str,
    error: &'a str,
    core: usize,
    status: u16,
    bytes_in: u64,
    bytes_out: u64,
    duration_us: u64,
}

fn json_line(e: &AccessEntry<'_>) -> String {
    let mut time = String::with_capacity(24);
    push_rfc3339_ms(&mut time, e.time_ms);
    let mut path = String::with_capacity(e.path.len() + e.query.len() + 1);
    push_redacted_target(&mut path, e.path, e.query);
    let line = JsonLine {
        time,
        level: "info",
        request_id: e.request_id,
        remote: e.remote.map_or_else(String::new, |a| {
            let mut r = String::with_capacity(21);
            push_socket_addr(&mut r, a);
            r
        }),
        method: e.method,
        path,
        op: e.op,
        error: e.error,
        core: e.core,
        status: e.status,
        bytes_in: e.bytes_in,
        bytes_out: e.bytes_out,
        duration_us: e.duration_us,
    };
    let mut s = serde_json::to_string(&line).expect("an access-log line serializes");
    s.push('\n');
    s
}

/// Appends `2026-12-01T11:16:43.123Z` for milliseconds since the Unix epoch.
fn push_rfc3339_ms(out: &mut String, ms: u64) {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let fields = [
        (year.max(0) as u64, 4, '-'),
        (month as u64, 2, '-'),
        (day as u64, 2, 'T'),
        (rem / 3600, 2, ':'),
        (rem % 3600 / 60, 2, ':'),
        (rem % 60, 2, '.'),
        (ms % 1000, 3, 'Z'),
    ];
    for (value, width, after) in fields {
        push_padded(out, value, width);
        out.push(after);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rfc3339_ms(ms: u64) -> String {
        let mut s = String::new();
        push_rfc3339_ms(&mut s, ms);
        s
    }

    #[test]
    fn dates_and_redaction() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(rfc3339_ms(1_796_125_003_004), "2026-12-01T11:36:43.004Z");
        assert_eq!(
            redacted_target(
                "/b/k",
                "X-Amz-Credential=a&x=1&X-Amz-Signature=s&Signature=t"
            ),
            "/b/k?x=1"
        );
        assert_eq!(redacted_target("/", ""), "/");
    }

    #[test]
    fn text_lines_have_every_field_in_order() {
        let mut e = AccessEntry {
            time_ms: 1_796_125_003_004,
            request_id: "016B0EB00600000001",
            core: 1,
            remote: Some("127.0.0.1:50508".parse().unwrap()),
            method: "PUT",
            path: "/bkt/key",
            query: "",
            op: "PutObject",
            status: 200,
            error: "",
            bytes_in: 4096,
            bytes_out: 0,
            duration_us: 83,
        };
        assert_eq!(
            text_line(&e),
            "time=2026-12-01T11:36:43.004Z level=info request_id=016B0EB00600000001 core=1 \
             remote=127.0.0.1:50508 method=PUT path=/bkt/key op=PutObject status=200 error=- \
             bytes_in=4096 bytes_out=0 duration_us=83\n"
        );
        e.remote = Some("[::1]:9000".parse().unwrap());
        e.error = "NoSuchKey";
        e.status = 404;
        let line = text_line(&e);
        assert!(line.contains(" remote=[::1]:9000 "), "{line}");
        assert!(
            line.contains(" status=404 error=NoSuchKey bytes_in="),
            "{line}"
        );
        e.remote = None;
        assert!(text_line(&e).contains(" remote=- "));
        assert_eq!(rfc3339_ms(253_402_300_799_999), "9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn json_lines_parse_back_with_every_field() {
        let e = AccessEntry {
            time_ms: 1_796_125_003_004,
            request_id: "016B0EB00600000001",
            core: 1,
            remote: None,
            method: "GET",
            path: "/b/a\"b\\c\n\u{1}é",
            query: "X-Amz-Signature=s&x=1",
            op: "GetObject",
            status: 404,
            error: "NoSuchKey",
            bytes_in: 0,
            bytes_out: 7,
            duration_us: 83,
        };
        let line = json_line(&e);
        assert!(line.ends_with("}\n") && !line[..line.len() - 1].contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).expect("valid JSON");
        assert_eq!(v["time"], "2026-12-01T11:36:43.004Z");
        assert_eq!(v["path"], "/b/a\"b\\c\n\u{1}é?x=1");
        assert_eq!(v["remote"], "");
        assert_eq!(v["status"], 404);
        assert_eq!(v["error"], "NoSuchKey");
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        assert_eq!(keys.len(), 13, "{keys:?}");
        assert!(line.starts_with("{\"time\":"), "{line}");
    }
}
