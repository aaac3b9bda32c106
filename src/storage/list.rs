//! Object listing over a bucket index: one page of keys and common prefixes (what ListObjects
//! v1/v2 and ListObjectVersions render).
//!
//! Invariants (S3 semantics):
//! - Keys are visited in UTF-8 byte order (`String` order), strictly after
//!   `start_after`, and only those starting with `prefix`.
//! - With a non-empty delimiter, a key whose remainder after `prefix` contains the delimiter is
//!   rolled up into the common prefix `prefix + remainder[..=first delimiter]`; each common prefix
//!   appears once and counts once toward `max_keys`.
//! - A `start_after` equal to a common prefix skips every key under it, so paging with
//!   `next_marker` returns each common prefix exactly once across pages.
//! - `is_truncated` is exact (a look-ahead decides it) and `next_marker` is set whenever it is true.
//! - Work is proportional to the page, not to the number of keys under a rolled-up prefix: a
//!   rolled-up prefix is skipped with one range seek to its successor.

use std::ops::Bound;

use crate::storage::index::{BucketIndex, ObjectSummary, SharedIndex};

/// What to list. `start_after` is the exclusive lower bound: the v1 marker, the v2 start-after, or
/// the decoded v2 continuation token, whichever is greater (see `s3::params::later_marker`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListParams {
    pub prefix: String,
    /// `None` or `Some("")` both mean "no delimiter".
    pub delimiter: Option<String>,
    pub start_after: Option<String>,
    pub max_keys: usize,
}

/// One object in a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEntry {
    pub key: String,
    pub summary: ObjectSummary,
}

/// One page of results. `contents` and `common_prefixes` are each in key order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListPage {
    pub contents: Vec<ListEntry>,
    pub common_prefixes: Vec<String>,
    pub is_truncated: bool,
    /// The last key or common prefix returned, when truncated; the `start_after` of the next page.
    pub next_marker: Option<String>,
}

impl ListPage {
    /// Number of keys plus common prefixes (S3's `KeyCount`).
    pub fn key_count(&self) -> usize {
        self.contents.len() + self.common_prefixes.len()
    }
}

/// An ordered key -> summary source that listing walks.
pub trait ListSource {
    /// Calls `f(key, summary)` for each key from `lower` on, in order, while `f` returns true.
    fn scan_from(&self, lower: Bound<&str>, f: &mut dyn FnMut(&str, &ObjectSummary) -> bool);
}

impl ListSource for BucketIndex {
    fn scan_from(&self, lower: Bound<&str>, f: &mut dyn FnMut(&str, &ObjectSummary) -> bool) {
        for (key, summary) in self.range::<str, _>((lower, Bound::Unbounded)) {
            if !f(key, summary) {
                return;
            }
        }
    }
}

impl ListSource for SharedIndex {
    fn scan_from(&self, lower: Bound<&str>, f: &mut dyn FnMut(&str, &ObjectSummary) -> bool) {
        for entry in self.range::<str, _>((lower, Bound::Unbounded)) {
            if !f(entry.key(), &entry.value().summary) {
                return;
            }
        }
    }
}

/// Lists one page of `index` according to `params`.
pub fn list_page(index: &(impl ListSource + ?Sized), params: &ListParams) -> ListPage {
    let mut page = ListPage::default();
    if params.max_keys == 0 {
        // S3 answers max-keys=0 with an empty, non-truncated page.
        return page;
    }
    let prefix = params.prefix.as_str();
    let delimiter = params.delimiter.as_deref().filter(|d| !d.is_empty());

    let Some(mut lower) = initial_lower_bound(prefix, delimiter, params.start_after.as_deref())
    else {
        return page;
    };
    let mut returned = 0usize;
    // Whether the last item returned was a common prefix (else a key).
    let mut last_was_prefix = false;
    loop {
        let mut resume_at: Option<String> = None;
        let mut done = false;
        index.scan_from(lower.as_ref().map(String::as_str), &mut |key, summary| {
            // Keys at or above `prefix` that do not start with it come after every key that does.
            if !key.starts_with(prefix) {
                done = true;
                return false;
            }
            if returned == params.max_keys {
                page.is_truncated = true;
                page.next_marker = match last_was_prefix {
                    true => page.common_prefixes.last().cloned(),
                    false => page.contents.last().map(|e| e.key.clone()),
                };
                done = true;
                return false;
            }
            returned += 1;
            match rolled_up_prefix(key, prefix, delimiter) {
                Some(common) => {
                    page.common_prefixes.push(common.to_owned());
                    last_was_prefix = true;
                    // Seek past every key under this common prefix instead of walking them.
                    resume_at = prefix_successor(common);
                    done = resume_at.is_none();
                    false
                }
                None => {
                    page.contents.push(ListEntry {
                        key: key.to_owned(),
                        summary: summary.clone(),
                    });
                    last_was_prefix = false;
                    true
                }
            }
        });
        match resume_at {
            Some(next) if !done => lower = Bound::Included(next),
            _ => break,
        }
    }
    page
}

/// Where the scan starts, or `None` when nothing can follow `start_after`.
fn initial_lower_bound(
    prefix: &str,
    delimiter: Option<&str>,
    start_after: Option<&str>,
) -> Option<Bound<String>> {
    let Some(start_after) = start_after.filter(|s| *s >= prefix) else {
        return Some(Bound::Included(prefix.to_owned()));
    };
    // A marker that is itself a common prefix was returned whole: skip everything under it.
    if start_after.starts_with(prefix)
        && rolled_up_prefix(start_after, prefix, delimiter) == Some(start_after)
    {
        return prefix_successor(start_after).map(Bound::Included);
    }
    Some(Bound::Excluded(start_after.to_owned()))
}

/// The common prefix `key` rolls up into, if any: `prefix` + remainder up to and including the
/// first `delimiter` in the remainder. `key` must start with `prefix`.
fn rolled_up_prefix<'k>(key: &'k str, prefix: &str, delimiter: Option<&str>) -> Option<&'k str> {
    let delimiter = delimiter?;
    let rest = key.get(prefix.len()..)?;
    let at = rest.find(delimiter)?;
    key.get(..prefix.len() + at + delimiter.len())
}

/// The smallest string greater than every string starting with `p`, or `None` if there is none
/// (`p` is empty or only U+10FFFF). UTF-8 byte order equals code point order, so bumping the last
/// code point that can be bumped (skipping the surrogate gap) and dropping what follows gives it.
fn prefix_successor(p: &str) -> Option<String> {
    let mut s = p.to_owned();
    while let Some(c) = s.pop() {
        let next = match c {
            '\u{D7FF}' => Some('\u{E000}'),
            char::MAX => None,
            _ => char::from_u32(u32::from(c) + 1),
        };
        if let Some(next) = next {
            s.push(next);
            return Some(s);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(size: u64) -> ObjectSummary {
        ObjectSummary {
            size,
            etag: "d41d8cd98f00b204e9800998ecf8427e".to_owned(),
            last_modified_ms: 1_704_067_200_000,
        }
    }

    fn index_of(keys: &[&str]) -> BucketIndex {
        keys.iter()
            .enumerate()
            .map(|(i, k)| ((*k).to_owned(), summary(i as u64)))
            .collect()
    }

    fn params(
        prefix: &str,
        delimiter: Option<&str>,
        start_after: Option<&str>,
        max: usize,
    ) -> ListParams {
        ListParams {
            prefix: prefix.to_owned(),
            delimiter: delimiter.map(str::to_owned),
            start_after: start_after.map(str::to_owned),
            max_keys: max,
        }
    }

    fn keys(page: &ListPage) -> Vec<&str> {
        page.contents.iter().map(|e| e.key.as_str()).collect()
    }

    fn prefixes(page: &ListPage) -> Vec<&str> {
        page.common_prefixes.iter().map(String::as_str).collect()
    }

    /// Items of a page in S3 order (keys and common prefixes interleaved by sort order).
    fn items(page: &ListPage) -> Vec<String> {
        let mut all: Vec<String> = page
            .contents
            .iter()
            .map(|e| e.key.clone())
            .chain(page.common_prefixes.iter().cloned())
            .collect();
        all.sort();
        all
    }

    /// Walks every page, checking the paging invariants, and returns all items in order.
    fn paginate(
        index: &BucketIndex,
        prefix: &str,
        delimiter: Option<&str>,
        page_size: usize,
    ) -> Vec<String> {
        let mut all = Vec::new();
        let mut marker: Option<String> = None;
        for _ in 0..10_000 {
            let page = list_page(
                index,
                &params(prefix, delimiter, marker.as_deref(), page_size),
            );
            assert!(page.key_count() <= page_size);
            let page_items = items(&page);
            if page.is_truncated {
                assert_eq!(page.key_count(), page_size);
                assert_eq!(page.next_marker.as_ref(), page_items.last());
            } else {
                assert_eq!(page.next_marker, None);
            }
            all.extend(page_items);
            if !page.is_truncated {
                return all;
            }
            marker = page.next_marker;
        }
        panic!("pagination did not terminate");
    }

    /// Straightforward model of S3 listing (no paging), for cross-checking.
    fn reference(index: &BucketIndex, prefix: &str, delimiter: Option<&str>) -> Vec<String> {
        let delimiter = delimiter.filter(|d| !d.is_empty());
        let mut out: Vec<String> = Vec::new();
        for key in index.keys().filter(|k| k.starts_with(prefix)) {
            let item = match delimiter.and_then(|d| key[prefix.len()..].find(d).map(|i| (i, d))) {
                Some((i, d)) => key[..prefix.len() + i + d.len()].to_owned(),
                None => key.clone(),
            };
            if out.last() != Some(&item) {
                out.push(item);
            }
        }
        out
    }

    const SAMPLE: &[&str] = &[
        "asdf",
        "boo/bar",
        "boo/baz/xyzzy",
        "cquux/thud",
        "cquux/bla",
    ];

    #[test]
    fn no_delimiter_lists_everything_in_order() {
        let index = index_of(SAMPLE);
        let page = list_page(&index, &params("", None, None, 1000));
        assert_eq!(
            keys(&page),
            [
                "asdf",
                "boo/bar",
                "boo/baz/xyzzy",
                "cquux/bla",
                "cquux/thud"
            ]
        );
        assert!(page.common_prefixes.is_empty());
        assert!(!page.is_truncated);
        assert_eq!(page.next_marker, None);
        assert_eq!(page.contents[0].summary, summary(0));
    }

    #[test]
    fn delimiter_rolls_up_common_prefixes() {
        let index = index_of(SAMPLE);
        let page = list_page(&index, &params("", Some("/"), None, 1000));
        assert_eq!(keys(&page), ["asdf"]);
        assert_eq!(prefixes(&page), ["boo/", "cquux/"]);
        assert_eq!(page.key_count(), 3);
        assert!(!page.is_truncated);
    }

    #[test]
    fn prefix_and_delimiter() {
        let index = index_of(SAMPLE);
        let page = list_page(&index, &params("boo/", Some("/"), None, 1000));
        assert_eq!(keys(&page), ["boo/bar"]);
        assert_eq!(prefixes(&page), ["boo/baz/"]);
        // Prefix without trailing delimiter.
        let page = list_page(&index, &params("boo", Some("/"), None, 1000));
        assert!(keys(&page).is_empty());
        assert_eq!(prefixes(&page), ["boo/"]);
        // Prefix matching nothing.
        let page = list_page(&index, &params("zzz", Some("/"), None, 1000));
        assert_eq!(page, ListPage::default());
    }

    #[test]
    fn key_equal_to_prefix_ending_in_delimiter_is_content() {
        let index = index_of(&["asdf/", "asdf/x", "asdf/y/z"]);
        let page = list_page(&index, &params("asdf/", Some("/"), None, 1000));
        assert_eq!(keys(&page), ["asdf/", "asdf/x"]);
        assert_eq!(prefixes(&page), ["asdf/y/"]);
        // Without the prefix, the folder object rolls up with its children.
        let page = list_page(&index, &params("", Some("/"), None, 1000));
        assert!(keys(&page).is_empty());
        assert_eq!(prefixes(&page), ["asdf/"]);
    }

    #[test]
    fn empty_delimiter_means_none() {
        let index = index_of(SAMPLE);
        let with_empty = list_page(&index, &params("", Some(""), None, 1000));
        let without = list_page(&index, &params("", None, None, 1000));
        assert_eq!(with_empty, without);
        assert_eq!(with_empty.contents.len(), SAMPLE.len());
    }

    #[test]
    fn multi_character_and_non_slash_delimiters() {
        let index = index_of(&["a::b::c", "a::d", "a:e", "b"]);
        let page = list_page(&index, &params("", Some("::"), None, 1000));
        assert_eq!(keys(&page), ["a:e", "b"]);
        assert_eq!(prefixes(&page), ["a::"]);
        let page = list_page(&index, &params("a::", Some("::"), None, 1000));
        assert_eq!(keys(&page), ["a::d"]);
        assert_eq!(prefixes(&page), ["a::b::"]);
        let index = index_of(&["bar", "baz", "cab", "foo"]);
        let page = list_page(&index, &params("", Some("a"), None, 1000));
        assert_eq!(keys(&page), ["foo"]);
        assert_eq!(prefixes(&page), ["ba", "ca"]);
    }

    #[test]
    fn delimiter_absent_from_keys() {
        let index = index_of(&["a", "b", "c"]);
        let page = list_page(&index, &params("", Some("/"), None, 2));
        assert_eq!(keys(&page), ["a", "b"]);
        assert!(page.is_truncated);
        assert_eq!(page.next_marker.as_deref(), Some("b"));
    }

    #[test]
    fn max_keys_zero_is_empty_and_not_truncated() {
        let index = index_of(SAMPLE);
        let page = list_page(&index, &params("", Some("/"), None, 0));
        assert_eq!(page, ListPage::default());
    }

    #[test]
    fn truncation_is_exact() {
        let index = index_of(&["a", "b", "c"]);
        let page = list_page(&index, &params("", None, None, 3));
        assert!(!page.is_truncated);
        let page = list_page(&index, &params("", None, None, 2));
        assert!(page.is_truncated);
        assert_eq!(page.next_marker.as_deref(), Some("b"));
        let page = list_page(&index, &params("", None, Some("b"), 1));
        assert_eq!(keys(&page), ["c"]);
        assert!(!page.is_truncated);
        // Exactly full with a common prefix last and nothing after it.
        let index = index_of(&["a", "d/1", "d/2"]);
        let page = list_page(&index, &params("", Some("/"), None, 2));
        assert_eq!(items(&page), ["a", "d/"]);
        assert!(!page.is_truncated);
    }

    #[test]
    fn paging_one_at_a_time_like_s3_tests() {
        // Mirrors the classic s3-tests delimiter/prefix walk with max-keys=1.
        let index = index_of(SAMPLE);
        let expect = [("asdf", true), ("boo/", true), ("cquux/", false)];
        let mut marker: Option<String> = None;
        for (item, truncated) in expect {
            let page = list_page(&index, &params("", Some("/"), marker.as_deref(), 1));
            assert_eq!(items(&page), [item]);
            assert_eq!(page.is_truncated, truncated);
            marker = page.next_marker.clone();
            if truncated {
                assert_eq!(marker.as_deref(), Some(item));
            }
        }
        // Same within a prefix.
        let page = list_page(&index, &params("boo/", Some("/"), None, 1));
        assert_eq!(keys(&page), ["boo/bar"]);
        assert!(page.is_truncated);
        let page = list_page(&index, &params("boo/", Some("/"), Some("boo/bar"), 1));
        assert_eq!(prefixes(&page), ["boo/baz/"]);
        assert!(!page.is_truncated);
    }

    #[test]
    fn marker_equal_to_common_prefix_skips_everything_under_it() {
        let mut keys_list: Vec<String> = (0..5000).map(|i| format!("big/{i:05}")).collect();
        keys_list.push("big0".to_owned());
        keys_list.push("a".to_owned());
        keys_list.push("z/1".to_owned());
        let refs: Vec<&str> = keys_list.iter().map(String::as_str).collect();
        let index = index_of(&refs);
        let page = list_page(&index, &params("", Some("/"), Some("big/"), 1000));
        assert_eq!(keys(&page), ["big0"]);
        assert_eq!(prefixes(&page), ["z/"]);
        // A marker inside a rolled-up prefix (not the prefix itself) resumes after it and the
        // remaining keys under it roll up again.
        let page = list_page(&index, &params("", Some("/"), Some("big/04000"), 1000));
        assert_eq!(prefixes(&page), ["big/", "z/"]);
        assert_eq!(keys(&page), ["big0"]);
        // Without a delimiter the marker is just a key bound.
        let page = list_page(&index, &params("", None, Some("big/"), 2));
        assert_eq!(keys(&page), ["big/00000", "big/00001"]);
    }

    #[test]
    fn start_after_before_prefix_and_beyond_prefix() {
        let index = index_of(&["a/1", "b/1", "b/2", "c/1"]);
        let page = list_page(&index, &params("b/", None, Some("a"), 1000));
        assert_eq!(keys(&page), ["b/1", "b/2"]);
        let page = list_page(&index, &params("b/", None, Some("b/1"), 1000));
        assert_eq!(keys(&page), ["b/2"]);
        let page = list_page(&index, &params("b/", None, Some("c"), 1000));
        assert_eq!(page, ListPage::default());
        let page = list_page(&index, &params("", None, Some("c/1"), 1000));
        assert_eq!(page, ListPage::default());
        // Marker equal to the prefix itself (not a common prefix: no delimiter after prefix).
        let page = list_page(&index, &params("b/", Some("/"), Some("b/"), 1000));
        assert_eq!(keys(&page), ["b/1", "b/2"]);
    }

    #[test]
    fn unicode_byte_order() {
        // UTF-8 byte order: ASCII < U+00E9 < U+D7FF < U+E000 < U+FFFD < U+10000 < U+10FFFF.
        let index = index_of(&[
            "\u{10FFFF}",
            "\u{10000}x",
            "\u{FFFD}",
            "\u{E000}",
            "\u{D7FF}",
            "é",
            "z",
            "Z",
        ]);
        let page = list_page(&index, &params("", None, None, 1000));
        assert_eq!(
            keys(&page),
            [
                "Z",
                "z",
                "é",
                "\u{D7FF}",
                "\u{E000}",
                "\u{FFFD}",
                "\u{10000}x",
                "\u{10FFFF}"
            ]
        );
    }

    #[test]
    fn unicode_delimiters_and_prefix_successor_edges() {
        let index = index_of(&[
            "a\u{D7FF}/1",
            "a\u{D7FF}/2",
            "a\u{E000}",
            "\u{10FFFF}/x",
            "\u{10FFFF}/y",
            "\u{10FFFF}\u{10FFFF}",
        ]);
        let all = paginate(&index, "", Some("/"), 1);
        assert_eq!(all, reference(&index, "", Some("/")));
        assert_eq!(
            all,
            [
                "a\u{D7FF}/",
                "a\u{E000}",
                "\u{10FFFF}/",
                "\u{10FFFF}\u{10FFFF}"
            ]
        );
        let index = index_of(&["x\u{10FFFF}1", "x\u{10FFFF}2", "y"]);
        assert_eq!(
            paginate(&index, "", Some("\u{10FFFF}"), 1),
            ["x\u{10FFFF}", "y"]
        );
        let index = index_of(&["\u{10FFFF}a", "\u{10FFFF}b"]);
        let page = list_page(&index, &params("", Some("\u{10FFFF}"), None, 1000));
        assert_eq!(prefixes(&page), ["\u{10FFFF}"]);
        assert!(!page.is_truncated);
        let page = list_page(
            &index,
            &params("", Some("\u{10FFFF}"), Some("\u{10FFFF}"), 1000),
        );
        assert_eq!(page, ListPage::default());
    }

    #[test]
    fn prefix_successor_values() {
        assert_eq!(prefix_successor("a/").as_deref(), Some("a0"));
        assert_eq!(prefix_successor("a\u{D7FF}").as_deref(), Some("a\u{E000}"));
        assert_eq!(prefix_successor("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_successor("\u{10FFFF}\u{10FFFF}"), None);
        assert_eq!(prefix_successor(""), None);
    }

    #[test]
    fn pagination_matches_reference_for_many_shapes() {
        // Deterministic pseudo-random keys over a small alphabet with multibyte characters.
        const ALPHABET: &[&str] = &["a", "b", "/", "-", "é", "/", "\u{E000}", "\u{10FFFF}", "0"];
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            (state >> 33) as usize
        };
        let mut index = BucketIndex::new();
        for i in 0..400 {
            let len = 1 + next() % 7;
            let key: String = (0..len)
                .map(|_| ALPHABET[next() % ALPHABET.len()])
                .collect();
            index.insert(key, summary(i));
        }
        for prefix in ["", "a", "a/", "/", "é", "b/a", "\u{10FFFF}"] {
            for delimiter in [None, Some("/"), Some("a"), Some("/a"), Some("é"), Some("")] {
                let expected = reference(&index, prefix, delimiter);
                for page_size in [1, 2, 3, 7, 1000] {
                    let got = paginate(&index, prefix, delimiter, page_size);
                    assert_eq!(
                        got, expected,
                        "prefix={prefix:?} delimiter={delimiter:?} size={page_size}"
                    );
                }
            }
        }
    }

    #[test]
    fn each_common_prefix_once_across_pages() {
        let mut names = Vec::new();
        for dir in ["d1", "d2", "d3"] {
            for i in 0..50 {
                names.push(format!("{dir}/{i:03}"));
            }
        }
        names.push("d1.txt".to_owned());
        names.push("d2-x".to_owned());
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let index = index_of(&refs);
        for size in 1..=5 {
            let all = paginate(&index, "", Some("/"), size);
            assert_eq!(all, ["d1.txt", "d1/", "d2-x", "d2/", "d3/"]);
        }
    }
}
