//! The list workload: ListObjectsV2 pages of `--page-size` keys that start after keys drawn at
//! random from the bucket, each checked against a full listing of the bucket taken first
//! (timed by the engine of `timed`, op `LIST`); and the full listing the cleanup uses.
//!
//! Invariants: the full listing (untimed) walks the bucket with `start-after` = the last key of
//! the previous page and checks every page (keys strictly ascending and after `start-after`, at
//! most max-keys, `KeyCount` equal to the keys returned, a truncated page non-empty with a
//! `NextContinuationToken`); a timed page must also equal exactly the keys that follow its
//! start key in that listing, with `IsTruncated` set exactly when keys remain. The start keys
//! depend only on the page's ticket number, so two runs over the same bucket request the same
//! pages.

use super::args::format_size;
use super::client::{xml_element, Client};
use super::fill::fill;
use super::ops::{self, Outcome};
use super::workload::Ctx;
use super::BenchArgs;
use crate::http::percent::aws_uri_encode;
use std::time::Instant;

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

/// The path and query of a ListObjectsV2 page of `max_keys` keys after `start_after`.
fn page_request(bucket: &str, start_after: &str, max_keys: usize) -> (String, String) {
    let mut query = format!("list-type=2&max-keys={max_keys}");
    if !start_after.is_empty() {
        query.push_str("&start-after=");
        query.push_str(&aws_uri_encode(start_after.as_bytes(), true));
    }
    (format!("/{bucket}"), query)
}

/// One ListObjectsV2 request; the parsed page (checked on its own) and the body length.
fn get_page(
    ctx: &Ctx,
    client: &mut Client,
    start_after: &str,
    max_keys: usize,
) -> Result<(Page, u64), String> {
    let (path, query) = page_request(&ctx.bucket, start_after, max_keys);
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

/// One timed page: ListObjectsV2 of `page_size` keys after the start key of ticket `n` among
/// `all` (the bucket's full listing, not empty), checked on its own and against `all`. Its
/// bytes are the response body's.
pub(crate) fn timed_page(
    client: &mut Client,
    bucket: &str,
    all: &[String],
    page_size: usize,
    n: u64,
) -> Outcome {
    assert!(!all.is_empty(), "a timed page needs keys to start after");
    let at = start_index(n, all.len());
    let (path, query) = page_request(bucket, &all[at], page_size);
    let t0 = Instant::now();
    let r = client.request("GET", &path, &query, &[]);
    let bytes = r.as_ref().map_or(0, |r| r.content_length);
    let mut o = ops::outcome(t0, r, 200, bytes, |r| {
        let page = parse_page(&String::from_utf8_lossy(&r.body)).map_err(|_| "bad page")?;
        check_page(&page, &all[at], page_size).map_err(|_| "bad page")?;
        expect_page(&page, all, at + 1, page_size)
            .map_err(|_| "page differs from the listing".to_string())
    });
    o.ttfb = None;
    o
}

/// The list workload's keys, untimed: the bucket's full listing, checked page by page; an
/// empty bucket is first filled with `--objects` objects (as by fill). Returns the keys and
/// the failed requests (writes, or the listing itself). `say` prints what was done (not for
/// the ceiling's run against the null responder).
pub(crate) fn listing_for_run(ctx: &Ctx, args: &BenchArgs, say: bool) -> (Vec<String>, u64) {
    let mut t0 = Instant::now();
    let mut listed = list_all(ctx);
    let mut errors = 0;
    if matches!(&listed, Ok(keys) if keys.is_empty()) {
        let n = args.timed.objects;
        let (r, _) = fill(ctx, "list (filling)", n, args.object_size, args.concurrency);
        eprintln!(
            "ringstore bench: list: wrote {} objects of {} first ({:.2} s, {} errors, not measured)",
            r.tally.ops,
            format_size(args.object_size),
            r.secs(),
            r.tally.errors
        );
        errors = r.tally.errors;
        t0 = Instant::now();
        listed = list_all(ctx);
    }
    match listed {
        Ok(keys) => {
            if say {
                eprintln!(
                    "ringstore bench: list: bucket has {} keys (full listing checked, {:.2} s, not measured)",
                    keys.len(),
                    t0.elapsed().as_secs_f64()
                );
            }
            (keys, errors)
        }
        Err(e) => {
            eprintln!("ringstore bench: list: full listing: {e}");
            (Vec::new(), errors + 1)
        }
    }
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
