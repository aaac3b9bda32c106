//! The SigV4 canonical request, built the way S3 builds it.
//!
//! Invariants:
//! - the canonical URI is the raw request path exactly as received (no normalisation, no
//!   re-encoding: S3 signs what the client sent);
//! - the canonical query is every parameter percent-decoded, re-encoded with
//!   `aws_uri_encode(.., true)`, sorted by encoded name then encoded value, joined `name=value`
//!   with `&` (a parameter without `=` gets an empty value); presigned requests drop
//!   `X-Amz-Signature`; an invalid `%` escape is treated as a literal `%` (the router rejects it
//!   later), so canonicalisation itself never fails;
//! - each canonical header is `name:value` with the value trimmed and inner whitespace runs
//!   collapsed to one space; repeated headers are joined with `,`; an absent signed header
//!   contributes an empty value (and so fails the signature unless it was signed empty).

use crate::http::percent::{aws_uri_encode, percent_decode_bytes};

/// Decodes `%XX` escapes, keeping a malformed escape as literal bytes.
fn decode_lenient(s: &str) -> Vec<u8> {
    if let Some(bytes) = percent_decode_bytes(s) {
        return bytes;
    }
    let hex = |c: Option<&u8>| c.and_then(|c| (*c as char).to_digit(16));
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if let (Some(hi), Some(lo)) = (hex(b.get(i + 1)), hex(b.get(i + 2))) {
                out.push((hi * 16 + lo) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// The canonical query string of a raw query (without `?`).
pub(crate) fn canonical_query(raw: &str, drop_signature: bool) -> String {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for (name, value) in crate::http::percent::query_segments(raw) {
        let name = aws_uri_encode(&decode_lenient(name), true);
        if drop_signature && name == "X-Amz-Signature" {
            continue;
        }
        pairs.push((name, aws_uri_encode(&decode_lenient(value), true)));
    }
    pairs.sort_unstable();
    let mut out = String::with_capacity(raw.len() + 16);
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    out
}

/// Appends `value` trimmed, with runs of spaces/tabs collapsed to a single space.
fn push_trimmed(out: &mut String, value: &str) {
    for (i, word) in value.split_ascii_whitespace().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(word);
    }
}

/// The canonical headers block (each line ends with `\n`) for `signed` (lowercase names, in order).
/// Header names in `headers` are matched case-insensitively.
pub(crate) fn canonical_headers(headers: &[(String, String)], signed: &[String]) -> String {
    let mut out = String::with_capacity(64 * signed.len());
    for name in signed {
        out.push_str(name);
        out.push(':');
        let mut first = true;
        for (_, value) in headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)) {
            if !first {
                out.push(',');
            }
            first = false;
            push_trimmed(&mut out, value);
        }
        out.push('\n');
    }
    out
}

/// The full canonical request.
pub(crate) fn canonical_request(
    method: &str,
    raw_path: &str,
    canonical_query: &str,
    canonical_headers: &str,
    signed_headers_line: &str,
    payload_hash: &str,
) -> String {
    format!(
        "{method}\n{raw_path}\n{canonical_query}\n{canonical_headers}\n{signed_headers_line}\n{payload_hash}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_sorted_and_reencoded() {
        assert_eq!(
            canonical_query(
                "list-type=2&prefix=dir%2F&delimiter=%2F&max-keys=2&encoding-type=url",
                false
            ),
            "delimiter=%2F&encoding-type=url&list-type=2&max-keys=2&prefix=dir%2F"
        );
        assert_eq!(canonical_query("uploads", false), "uploads=");
        assert_eq!(
            canonical_query("uploadId=U&partNumber=2", false),
            "partNumber=2&uploadId=U"
        );
        assert_eq!(canonical_query("", false), "");
    }

    #[test]
    fn query_encoding_normalised() {
        // lowercase hex, unencoded reserved chars and '+' all canonicalise the same way.
        assert_eq!(canonical_query("k=a%2fb", false), "k=a%2Fb");
        assert_eq!(canonical_query("k=a/b", false), "k=a%2Fb");
        assert_eq!(canonical_query("k=a+b", false), "k=a%2Bb");
        assert_eq!(canonical_query("k=%7E%41", false), "k=~A");
        assert_eq!(canonical_query("k=b=c", false), "k=b%3Dc");
        assert_eq!(canonical_query("k=%zz%4", false), "k=%25zz%254");
    }

    #[test]
    fn query_sorts_by_name_then_value() {
        assert_eq!(canonical_query("b=2&a=2&a=1&B=0", false), "B=0&a=1&a=2&b=2");
    }

    #[test]
    fn query_drops_signature_for_presigned() {
        assert_eq!(
            canonical_query("X-Amz-Signature=abc&X-Amz-Date=1&x=", true),
            "X-Amz-Date=1&x="
        );
        assert_eq!(
            canonical_query("X-Amz-Signature=abc", false),
            "X-Amz-Signature=abc"
        );
    }

    #[test]
    fn headers_trim_collapse_and_join() {
        let headers = vec![
            ("host".to_string(), "h:9000".to_string()),
            ("x-amz-meta-a".to_string(), "  a   b \t c  ".to_string()),
            ("x-amz-meta-b".to_string(), "1".to_string()),
            ("X-Amz-Meta-B".to_string(), "2".to_string()),
        ];
        let signed: Vec<String> = ["host", "x-amz-meta-a", "x-amz-meta-b", "x-amz-absent"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            canonical_headers(&headers, &signed),
            "host:h:9000\nx-amz-meta-a:a b c\nx-amz-meta-b:1,2\nx-amz-absent:\n"
        );
    }
}
