//! The fill scenario: `--count` new objects with deterministic keys and bodies, as fast as the
//! connections allow, to build large buckets (a million objects) for the listing and startup
//! measurements.
//!
//! Invariants: object `i` is key [`fill_key`]`(i)` (`fill/` and ten digits, so keys sort in
//! index order) and its body is [`fill_body`] of that key: the key and a space, repeated and cut
//! at the object size. Anyone can check a GET of any filled key from the key alone (the startup
//! script does, in Python). Each worker reuses one body buffer; nothing else is kept per object.

use super::client::Client;
use super::report::{ScenarioResult, Tally};
use super::workload::{pool, Ctx};
use super::{BenchArgs, Summary};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

/// The key prefix of filled objects.
pub(crate) const FILL_PREFIX: &str = "fill/";
/// Digits of a filled object's index in its key (ten: up to 10^10 objects sort in order).
const FILL_INDEX_DIGITS: usize = 10;

/// Key of filled object `i`: `fill/0000000042`.
pub(crate) fn fill_key(i: u64) -> String {
    format!("{FILL_PREFIX}{i:0width$}", width = FILL_INDEX_DIGITS)
}

/// Writes the body of the object named `key` into `buf`: `key` and a space, repeated, cut at
/// `size` bytes.
pub(crate) fn fill_body(key: &str, size: usize, buf: &mut Vec<u8>) {
    buf.clear();
    while buf.len() < size {
        buf.extend_from_slice(key.as_bytes());
        buf.push(b' ');
    }
    buf.truncate(size);
}

/// Objects a fill run wrote.
pub(crate) struct Filled {
    /// Requests went out for indices `0..attempted` (some may have failed).
    pub(crate) attempted: u64,
}

/// PUTs objects `0..count` of `size` bytes with [`fill_key`] names and [`fill_body`] bodies on
/// `concurrency` connections.
pub(crate) fn fill(
    ctx: &Ctx,
    name: &'static str,
    count: u64,
    size: u64,
    concurrency: usize,
) -> (ScenarioResult, Filled) {
    let workers = concurrency.min(count as usize).max(1);
    let next = AtomicU64::new(0);
    let early = AtomicBool::new(false);
    let attempted = AtomicU64::new(0);
    let (tally, elapsed) = pool(ctx, workers, |client, tally| {
        let deadline = Instant::now() + ctx.duration;
        let mut body = Vec::with_capacity(size as usize);
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= count {
                break;
            }
            if ctx.out_of_time(deadline) {
                early.store(true, Ordering::Relaxed);
                break;
            }
            attempted.fetch_max(i + 1, Ordering::Relaxed);
            let key = fill_key(i);
            fill_body(&key, size as usize, &mut body);
            put_one(ctx, client, tally, &key, &body);
        }
    });
    (
        ScenarioResult {
            name,
            unit: "ops",
            tally,
            elapsed,
            connections: workers,
            stopped_early: ctx.stop_reason(early.into_inner()),
            detail: None,
        },
        Filled {
            attempted: attempted.into_inner(),
        },
    )
}

/// The fill scenario, measured: `--count` objects of `--object-size`.
pub(super) fn step(ctx: &Ctx, args: &BenchArgs, summary: &mut Summary, emit: &dyn Fn(&str)) {
    let (r, filled) = fill(ctx, "fill", args.count, args.object_size, args.concurrency);
    emit(&r.line());
    summary.results.push(r);
    summary.written.extend((0..filled.attempted).map(fill_key));
}

/// One PutObject of `body` as `key`, counted in `tally`.
fn put_one(ctx: &Ctx, client: &mut Client, tally: &mut Tally, key: &str, body: &[u8]) {
    let path = ctx.object_path(key);
    let t0 = Instant::now();
    match client.request("PUT", &path, "", body) {
        Ok(r) if r.ok() && r.etag.is_some() => tally.success(body.len() as u64, t0.elapsed()),
        Ok(r) if r.ok() => tally.error(format!("PUT {path}: HTTP {} without ETag", r.status)),
        Ok(r) => tally.error(format!("PUT {path}: {}", r.describe())),
        Err(e) => tally.error(format!("PUT {path}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_in_index_order() {
        assert_eq!(fill_key(0), "fill/0000000000");
        assert_eq!(fill_key(42), "fill/0000000042");
        let keys: Vec<String> = [0u64, 9, 10, 99, 100, 999_999, 1_000_000]
            .iter()
            .map(|&i| fill_key(i))
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
    }

    #[test]
    fn bodies_repeat_the_key() {
        let mut buf = Vec::new();
        fill_body("fill/0000000001", 40, &mut buf);
        assert_eq!(buf, b"fill/0000000001 fill/0000000001 fill/000");
        fill_body("k", 0, &mut buf);
        assert!(buf.is_empty());
        fill_body("fill/0000000002", 4096, &mut buf);
        assert_eq!(buf.len(), 4096);
        assert!(buf.starts_with(b"fill/0000000002 fill/"));
    }
}
