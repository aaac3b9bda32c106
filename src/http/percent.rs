//! Percent-encoding: decoding of request paths and query strings, and the encodings S3 emits.
//!
//! Role: the one place that knows RFC 3986 percent-encoding as S3 uses it.
//! Invariants:
//! - decoding never turns `+` into a space (S3 paths and SigV4 queries treat `+` literally);
//! - a `%` must be followed by two hex digits (either case), otherwise decoding fails;
//! - encoders keep exactly the unreserved set `A-Z a-z 0-9 - _ . ~` (plus `/` where stated) and
//!   write every other byte as `%XX` with uppercase hex, so their output is ASCII and decodes back
//!   to the input byte-for-byte.

use std::borrow::Cow;

use crate::http::error::{http_err, HttpError};

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// The value of one hex digit (either case): the crate's one hex-digit decoder.
pub(crate) fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')
}

fn push_escaped(out: &mut String, b: u8) {
    out.push('%');
    out.push(HEX_UPPER[usize::from(b >> 4)] as char);
    out.push(HEX_UPPER[usize::from(b & 0x0f)] as char);
}

/// Decodes `%XX` escapes into raw bytes; `None` when a `%` is not followed by two hex digits.
pub fn percent_decode_bytes(s: &str) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hi = hex_val(*bytes.get(i + 1)?)?;
            let lo = hex_val(*bytes.get(i + 2)?)?;
            out.push((hi << 4) | lo);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    Some(out)
}

/// Decodes `%XX` escapes; the result must be UTF-8. `+` stays `+`.
pub fn percent_decode(s: &str) -> Result<String, HttpError> {
    if !s.as_bytes().contains(&b'%') {
        return Ok(s.to_string());
    }
    let bytes = percent_decode_bytes(s)
        .ok_or_else(|| http_err!(InvalidArgument, "Invalid percent-encoding in \"{}\".", s))?;
    String::from_utf8(bytes).map_err(|_| {
        http_err!(
            InvalidArgument,
            "Percent-encoded value \"{}\" does not decode to valid UTF-8.",
            s
        )
    })
}

/// AWS `UriEncode`: keeps unreserved bytes (and `/` when `encode_slash` is false), escapes the rest.
pub fn aws_uri_encode(input: &[u8], encode_slash: bool) -> String {
    let mut out = String::with_capacity(input.len() + input.len() / 2);
    for &b in input {
        if is_unreserved(b) || (b == b'/' && !encode_slash) {
            out.push(b as char);
        } else {
            push_escaped(&mut out, b);
        }
    }
    out
}

/// Encoding for listings with `encoding-type=url`: clients apply `unquote_plus`, so a literal `+`
/// must be escaped; every byte except unreserved ones and `/` becomes `%XX` (space is `%20`).
/// This is [`aws_uri_encode`] keeping `/`, borrowing `s` when nothing needs escaping.
pub fn url_form_encode(s: &str) -> Cow<'_, str> {
    if s.bytes().all(|b| is_unreserved(b) || b == b'/') {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(aws_uri_encode(s.as_bytes(), false))
    }
}

/// Splits a raw query string into decoded `(name, value)` pairs in wire order.
///
/// Empty segments are skipped, a segment without `=` has an empty value, and the split happens at
/// the first `=`. Names and values are percent-decoded without turning `+` into a space.
pub(crate) fn parse_query(raw: &str) -> Result<Vec<(String, String)>, HttpError> {
    query_segments(raw)
        .map(|(name, value)| Ok((percent_decode(name)?, percent_decode(value)?)))
        .collect()
}

/// The raw `(name, value)` segments of a query string: empty segments skipped, split at the
/// first `=`, a segment without `=` has an empty value. Nothing is decoded.
pub(crate) fn query_segments(raw: &str) -> impl Iterator<Item = (&str, &str)> {
    raw.split('&')
        .filter(|seg| !seg.is_empty())
        .map(|seg| match seg.find('=') {
            Some(i) => (&seg[..i], &seg[i + 1..]),
            None => (seg, ""),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::error::HttpErrorCode;

    #[test]
    fn decode_basic_and_mixed_case_hex() {
        assert_eq!(percent_decode("a%20b").unwrap(), "a b");
        assert_eq!(percent_decode("%C3%BC%c3%bc").unwrap(), "üü");
        assert_eq!(percent_decode("plain").unwrap(), "plain");
        assert_eq!(percent_decode("").unwrap(), "");
    }

    #[test]
    fn decode_keeps_plus() {
        assert_eq!(percent_decode("a+b%2Bc").unwrap(), "a+b+c");
    }

    #[test]
    fn decode_rejects_bad_escapes_and_bad_utf8() {
        for bad in ["%", "%2", "%zz", "a%g0", "%%41"] {
            let e = percent_decode(bad).unwrap_err();
            assert_eq!(e.code, HttpErrorCode::InvalidArgument, "{bad}");
        }
        let e = percent_decode("%FF%FE").unwrap_err();
        assert_eq!(e.code, HttpErrorCode::InvalidArgument);
    }

    #[test]
    fn decode_bytes_allows_non_utf8() {
        assert_eq!(
            percent_decode_bytes("%FFa%00").unwrap(),
            vec![0xff, b'a', 0]
        );
        assert_eq!(percent_decode_bytes("%4"), None);
        assert_eq!(percent_decode_bytes("ok").unwrap(), b"ok".to_vec());
    }

    #[test]
    fn aws_uri_encode_rules() {
        assert_eq!(
            aws_uri_encode(b"AZaz09-_.~", true),
            "AZaz09-_.~",
            "unreserved kept"
        );
        assert_eq!(aws_uri_encode(b"a b/c", true), "a%20b%2Fc");
        assert_eq!(aws_uri_encode(b"a b/c", false), "a%20b/c");
        assert_eq!(
            aws_uri_encode("ü+x=1&y".as_bytes(), true),
            "%C3%BC%2Bx%3D1%26y"
        );
        assert_eq!(aws_uri_encode(&[0x00, 0xff, b'*'], true), "%00%FF%2A");
    }

    #[test]
    fn url_form_encode_round_trips_through_unquote_plus() {
        let key = "a dir/ü+x=1&y.txt";
        let enc = url_form_encode(key);
        assert_eq!(enc, "a%20dir/%C3%BC%2Bx%3D1%26y.txt");
        // unquote_plus: '+' -> ' ' first, then %XX; no literal '+' may survive.
        assert!(!enc.contains('+'));
        assert_eq!(percent_decode(&enc.replace('+', " ")).unwrap(), key);
    }

    #[test]
    fn parse_query_order_and_forms() {
        let q = parse_query("list-type=2&prefix=dir%2F&&delimiter=%2F&uploads&a=b=c&e=").unwrap();
        let want: Vec<(String, String)> = [
            ("list-type", "2"),
            ("prefix", "dir/"),
            ("delimiter", "/"),
            ("uploads", ""),
            ("a", "b=c"),
            ("e", ""),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(q, want);
        assert!(parse_query("").unwrap().is_empty());
        assert_eq!(
            parse_query("k=a+b").unwrap(),
            vec![("k".to_string(), "a+b".to_string())]
        );
        assert!(parse_query("k=%zz").is_err());
    }
}
