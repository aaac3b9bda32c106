//! The list scenario: ListObjectsV2 pages of `--page-size` keys that start after keys drawn at
//! random from the bucket, each checked against a full listing of the bucket taken first.
//!
//! Invariants: the full listing (untimed) walks the bucket with `start-after` = the last key of
//! the previous page and checks every page (keys strictly ascending and after `start-after`, at
//! most max-keys, `KeyCount` equal to the keys returned, a truncated page non-empty with a
//! `NextContinuationToken`); a timed page must also equal exactly the keys that follow its
//! start key in that listing, with `IsTruncated` set exactly when keys remain. The start keys
//! depend only on the page number, so two runs over the same bucket request the same pages.

use super::args::format_size;
use super::client::{xml_element, Client};
use super::fill::{fill, fill_key};
use super::report::{ScenarioResult, Tally};
use super::workload::{pool, Ctx};
use super::{BenchArgs, Summary};
use crate::http::percent::aws_uri_encode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Page size of the full listing (S3's largest).
const FULL_LISTING_PAGE_KEYS: usize = super::args::MAX_PAGE_SIZE_KEYS;
/// Seed of the start-key choice (any constant: it only has to be the same in every run).
const START_KEY_SEED: u64 = 0x005E_ED0F_1157;

/// What the bench reads from a ListObjectsV2 page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Page {
    pub(crate) keys: Vec<String>,
    pub(crate) key_count: Option<usize>,
    pub(crate) truncated: bool,
    pub(crate) next_token: Option<String>,
}

/// Parses a ListBucketResult (no delimiter, no encoding-type): its keys in order, `KeyCount`,
/// `IsTruncated` and `NextContinuationToken`.
pub(crate) fn parse_page(xml: &str) -> Result<Page, String> {
    if !xml.contains("<ListBucketResult") {
        return Err("not a ListBucketResult document".to_string());
    }
    let mut keys = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find("<Key>") {
        let from = &rest[start..];
        let end = from.find("</Key>").ok_or("unterminated <Key>")?;
        keys.push(xml_element(&from[..end + "</Key>".len()], "Key").unwrap_or_default());
        rest = &from[end..];
    }
    let truncated = match xml_element(xml, "IsTruncated").as_deref() {
        Some("true") => true,
        Some("false") => false,
        other => return Err(format!("IsTruncated is {other:?}")),
    };
    let key_count = match xml_element(xml, "KeyCount") {
        Some(n) => Some(n.parse().map_err(|_| format!("KeyCount {n:?}"))?),
        None => None,
    };
    Ok(Page {
        keys,
        key_count,
        truncated,
        next_token: xml_element(xml, "NextContinuationToken"),
    })
}

/// Checks what any correct page shows on its own: keys strictly ascending and after
/// `start_after`, at most `max_keys` of them, `KeyCount` matching, and a truncated page
/// non-empty with a continuation token.
pub(crate) fn check_page(page: &Page, start_after: &str, max_keys: usize) -> Result<(), String> {
    if page.keys.len() > max_keys {
        return Err(format!("{} keys, max-keys {max_keys}", page.keys.len()));
    }
    if page.key_count != Some(page.keys.len()) {
        return Err(format!(
            "KeyCount {:?} but {} keys",
            page.key_count,
            page.keys.len()
        ));
    }
    if let Some(first) = page.keys.first() {
        if first.as_str() <= start_after {
            return Err(format!(
                "key {first:?} not after start-after {start_after:?}"
            ));
        }
    }
    if let Some(w) = page.keys.windows(2).find(|w| w[0] >= w[1]) {
        return Err(format!("keys out of order: {:?} then {:?}", w[0], w[1]));
    }
    if page.truncated && (page.keys.is_empty() || page.next_token.is_none()) {
        return Err("IsTruncated with no keys or no NextContinuationToken".to_string());
    }
    Ok(())
}

/// Checks that `page`, requested after `all[start - 1]` (from the beginning when `start` is 0),
/// holds exactly the next `max_keys` keys of `all` and is truncated exactly when more follow.
pub(crate) fn expect_page(
    page: &Page,
    all: &[String],
    start: usize,
    max_keys: usize,
) -> Result<(), String> {
    let end = (start + max_keys).min(all.len());
    let want = &all[start.min(end)..end];
    if page.keys != want {
        let diverge = page.keys.iter().zip(want).position(|(a, b)| a != b);
        return Err(format!(
            "page differs from the listing: {} keys, expected {} (first difference at {diverge:?})",
            page.keys.len(),
            want.len()
        ));
    }
    if page.truncated != (end < all.len()) {
        return Err(format!(
            "IsTruncated {} with {} keys after the page",
            page.truncated,
            all.len() - end
        ));
    }
    Ok(())
}

/// One ListObjectsV2 request; the parsed page (checked on its own) and the body length.
fn get_page(
    ctx: &Ctx,
    client: &mut Client,
    start_after: &str,
    max_keys: usize,
) -> Result<(Page, u64), String> {
    let path = format!("/{}", ctx.bucket);
    let mut query = format!("list-type=2&max-keys={max_keys}");
    if !start_after.is_empty() {
        query.push_str("&start-after=");
        query.push_str(&aws_uri_encode(start_after.as_bytes(), true));
    }
    let r = client
        .request("GET", &path, &query, &[])
        .map_err(|e| format!("GET {path}?{query}: {e}"))?;
    if r.status != 200 {
        return Err(format!("GET {path}?{query}: {}", r.describe()));
    }
    let page = parse_page(&String::from_utf8_lossy(&r.body))
        .and_then(|p| check_page(&p, start_after, max_keys).map(|_| p))
        .map_err(|e| format!("GET {path}?{query}: {e}"))?;
    Ok((page, r.content_length))
}

/// Every key of the bench's bucket, in order, each page checked.
pub(crate) fn list_all(ctx: &Ctx) -> Result<Vec<String>, String> {
    let mut client = ctx.client();
    let mut keys: Vec<String> = Vec::new();
    loop {
        if ctx.is_interrupted() {
            return Err("interrupted".to_string());
        }
        let after = keys.last().cloned().unwrap_or_default();
        let (page, _) = get_page(ctx, &mut client, &after, FULL_LISTING_PAGE_KEYS)?;
        let more = page.truncated;
        keys.extend(page.keys);
        if !more {
            return Ok(keys);
        }
    }
}

/// A well-mixed 64-bit value of `x` (splitmix64's finaliser).
fn mix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Index in a `len`-key listing of the start key (start-after) of page `n`.
fn start_index(n: u64, len: usize) -> usize {
    (mix64(n ^ START_KEY_SEED) % len.max(1) as u64) as usize
}

/// Requests `pages` pages of `page_size` keys after random keys of `all` (the bucket's full
/// listing) on `concurrency` connections, checking each page.
pub(crate) fn list(
    ctx: &Ctx,
    all: &[String],
    pages: u64,
    page_size: usize,
    concurrency: usize,
) -> ScenarioResult {
    let workers = concurrency.min(pages as usize).max(1);
    let mut result = ScenarioResult {
        name: "list",
        unit: "pages",
        tally: Tally::default(),
        elapsed: Duration::ZERO,
        connections: workers,
        stopped_early: None,
        detail: Some(format!("{page_size}-key pages of {} keys", all.len())),
    };
    if all.is_empty() {
        result
            .tally
            .error("the bucket is empty, nothing to list".to_string());
        return result;
    }
    let next = AtomicU64::new(0);
    let early = AtomicBool::new(false);
    let (tally, elapsed) = pool(ctx, workers, |client, tally| {
        let deadline = Instant::now() + ctx.duration;
        loop {
            let n = next.fetch_add(1, Ordering::Relaxed);
            if n >= pages {
                break;
            }
            if ctx.out_of_time(deadline) {
                early.store(true, Ordering::Relaxed);
                break;
            }
            let at = start_index(n, all.len());
            let t0 = Instant::now();
            let checked = get_page(ctx, client, &all[at], page_size)
                .and_then(|(p, bytes)| expect_page(&p, all, at + 1, page_size).map(|_| bytes));
            match checked {
                Ok(bytes) => tally.success(bytes, t0.elapsed()),
                Err(e) => tally.error(format!("page after {:?}: {e}", all[at])),
            }
        }
    });
    result.tally = tally;
    result.elapsed = elapsed;
    result.stopped_early = ctx.stop_reason(early.into_inner());
    result
}

/// The list scenario: the full listing (untimed; after filling an empty bucket with `--count`
/// objects, also untimed), then `--pages` checked pages, measured.
pub(super) fn step(ctx: &Ctx, args: &BenchArgs, summary: &mut Summary, emit: &dyn Fn(&str)) {
    let mut t0 = Instant::now();
    let mut listed = list_all(ctx);
    let mut write_errors = Tally::default();
    if matches!(&listed, Ok(keys) if keys.is_empty()) {
        let (r, filled) = fill(
            ctx,
            "list (filling)",
            args.count,
            args.object_size,
            args.concurrency,
        );
        summary.written.extend((0..filled.attempted).map(fill_key));
        eprintln!(
            "ringstore bench: list: wrote {} objects of {} first ({:.2} s, not measured)",
            r.tally.ops,
            format_size(args.object_size),
            r.secs()
        );
        write_errors = r.tally;
        t0 = Instant::now();
        listed = list_all(ctx);
    }
    let all = match listed {
        Ok(keys) => keys,
        Err(e) => {
            eprintln!("ringstore bench: list: full listing: {e}");
            summary.other_errors += 1 + write_errors.errors;
            return;
        }
    };
    eprintln!(
        "ringstore bench: list: bucket has {} keys (full listing checked, {:.2} s, not measured)",
        all.len(),
        t0.elapsed().as_secs_f64()
    );
    let mut r = list(ctx, &all, args.pages, args.page_size, args.concurrency);
    // Failed writes of the objects to list count against list.
    r.tally.merge(Tally {
        errors: write_errors.errors,
        messages: write_errors.messages,
        ..Default::default()
    });
    emit(&r.line());
    summary.results.push(r);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(keys: &[&str], truncated: bool, count: Option<usize>) -> String {
        let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>b</Name><Prefix></Prefix>");
        if let Some(c) = count {
            x.push_str(&format!("<KeyCount>{c}</KeyCount>"));
        }
        x.push_str(&format!("<IsTruncated>{truncated}</IsTruncated>"));
        for k in keys {
            x.push_str(&format!(
                "<Contents><Key>{k}</Key><ETag>&quot;e&quot;</ETag><Size>1</Size></Contents>"
            ));
        }
        if truncated {
            x.push_str("<NextContinuationToken>6b</NextContinuationToken>");
        }
        x.push_str("</ListBucketResult>");
        x
    }

    fn all(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("k{i:03}")).collect()
    }

    #[test]
    fn pages_parse_and_check() {
        let p = parse_page(&doc(&["a&amp;b", "c"], true, Some(2))).unwrap();
        assert_eq!(p.keys, vec!["a&b", "c"]);
        assert!(p.truncated);
        assert_eq!(p.next_token.as_deref(), Some("6b"));
        assert_eq!(check_page(&p, "", 2), Ok(()));
        assert!(check_page(&p, "", 1).is_err(), "more keys than max-keys");
        assert!(
            check_page(&p, "b", 2).is_err(),
            "a key not after start-after"
        );
        let unsorted = parse_page(&doc(&["c", "a"], false, Some(2))).unwrap();
        assert!(check_page(&unsorted, "", 5).is_err());
        let dup = parse_page(&doc(&["a", "a"], false, Some(2))).unwrap();
        assert!(check_page(&dup, "", 5).is_err());
        let miscounted = parse_page(&doc(&["a"], false, Some(2))).unwrap();
        assert!(check_page(&miscounted, "", 5).is_err());
        let empty_truncated = parse_page(&doc(&[], true, Some(0))).unwrap();
        assert!(check_page(&empty_truncated, "", 5).is_err());
        assert!(parse_page("<Error><Code>NoSuchBucket</Code></Error>").is_err());
        assert!(parse_page("<ListBucketResult><IsTruncated>maybe</IsTruncated>").is_err());
    }

    #[test]
    fn pages_match_the_listing() {
        let keys = all(10);
        let page = |ks: &[usize], t: bool| Page {
            keys: ks.iter().map(|&i| keys[i].clone()).collect(),
            key_count: Some(ks.len()),
            truncated: t,
            next_token: t.then(|| "x".to_string()),
        };
        assert_eq!(expect_page(&page(&[3, 4, 5], true), &keys, 3, 3), Ok(()));
        assert_eq!(expect_page(&page(&[7, 8, 9], false), &keys, 7, 3), Ok(()));
        assert_eq!(expect_page(&page(&[8, 9], false), &keys, 8, 3), Ok(()));
        assert_eq!(expect_page(&page(&[], false), &keys, 10, 3), Ok(()));
        assert!(expect_page(&page(&[7, 8, 9], true), &keys, 7, 3).is_err());
        assert!(expect_page(&page(&[3, 4, 5], false), &keys, 3, 3).is_err());
        assert!(expect_page(&page(&[3, 5, 6], true), &keys, 3, 3).is_err());
        assert!(expect_page(&page(&[3, 4], true), &keys, 3, 3).is_err());
    }

    #[test]
    fn start_keys_are_spread_and_repeatable() {
        let picks: Vec<usize> = (0..1000).map(|n| start_index(n, 100)).collect();
        assert_eq!(
            picks,
            (0..1000).map(|n| start_index(n, 100)).collect::<Vec<_>>()
        );
        assert!(picks.iter().all(|&i| i < 100));
        let distinct = picks.iter().collect::<std::collections::HashSet<_>>().len();
        assert!(distinct > 90, "{distinct} distinct start keys");
        assert_eq!(start_index(5, 1), 0);
    }
}
