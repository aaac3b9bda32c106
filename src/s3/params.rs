//! Request parameters several S3 operations share, parsed and validated in one place: part
//! numbers (query and XML), and the listing parameters `max-keys`, `encoding-type`,
//! continuation tokens and markers (which become the storage layer's
//! [`ListParams`](crate::storage::ListParams)).
//!
//! Invariant: a continuation token is opaque to clients and round-trips exactly (lowercase hex of
//! the marker's UTF-8 bytes); anything else is rejected as S3 does.

use crate::s3::error::S3Error;

/// Highest part number (S3's limit).
pub(crate) const PART_NUMBER_MAX: u32 = 10_000;
// Every part number a client may use fits the record format's part table.
const _: () = assert!(PART_NUMBER_MAX as usize == crate::storage::record::PARTS_MAX);

/// A part number: ASCII digits only (no sign, no spaces) with a value in `1..=PART_NUMBER_MAX`.
/// Every query parameter and XML element that names a part goes through here.
pub(crate) fn parse_part_number(raw: &str) -> Option<u32> {
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    raw.parse::<u32>()
        .ok()
        .filter(|n| (1..=PART_NUMBER_MAX).contains(n))
}

/// `max-keys` when the request gives none.
pub(crate) const MAX_KEYS_DEFAULT: usize = 1000;
/// Largest page S3 returns; larger `max-keys` values are capped to this.
pub(crate) const MAX_KEYS_LIMIT: usize = 1000;

const INVALID_TOKEN_MESSAGE: &str = "The continuation token provided is incorrect";

/// The greater of two optional markers (a key sorts after `None`); combines a v2 `start-after`
/// with a decoded continuation token, or anything else into [`ListParams::start_after`](crate::storage::ListParams::start_after).
pub(crate) fn later_marker(a: Option<String>, b: Option<String>) -> Option<String> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if a >= b { a } else { b }),
        (a, b) => a.or(b),
    }
}

/// Opaque v2 continuation token for a marker (lowercase hex of its UTF-8 bytes; URL- and XML-safe).
pub(crate) fn encode_continuation_token(marker: &str) -> String {
    hex::encode(marker.as_bytes())
}

/// The marker inside a token made by [`encode_continuation_token`].
/// Anything else is `InvalidArgument` "The continuation token provided is incorrect".
pub(crate) fn decode_continuation_token(token: &str) -> Result<String, S3Error> {
    let invalid = || {
        crate::s3err!(InvalidArgument, "{INVALID_TOKEN_MESSAGE}")
            .with_extra("ArgumentName", "continuation-token")
            .with_extra("ArgumentValue", token)
    };
    // Tokens are only ever issued in lowercase; `hex` alone would also take uppercase.
    let lowercase = token
        .bytes()
        .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if token.is_empty() || !lowercase {
        return Err(invalid());
    }
    let bytes = hex::decode(token).map_err(|_| invalid())?;
    String::from_utf8(bytes).map_err(|_| invalid())
}

/// `encoding-type`: absent (false) or `url` (true); anything else is InvalidArgument.
pub(crate) fn parse_encoding_type(raw: Option<&str>) -> Result<bool, S3Error> {
    match raw {
        None => Ok(false),
        Some(v) if v.eq_ignore_ascii_case("url") => Ok(true),
        Some(_) => Err(crate::s3err!(
            InvalidArgument,
            "Invalid Encoding Method specified in Request"
        )),
    }
}

/// The `max-keys` query parameter: default [`MAX_KEYS_DEFAULT`], capped at [`MAX_KEYS_LIMIT`];
/// negative, non-integer or beyond-`i32` values are `InvalidArgument`, as in S3.
pub(crate) fn parse_max_keys(raw: Option<&str>) -> Result<usize, S3Error> {
    let Some(raw) = raw else {
        return Ok(MAX_KEYS_DEFAULT);
    };
    let value: i32 = raw.parse().map_err(|_| {
        crate::s3err!(
            InvalidArgument,
            "Provided max-keys not an integer or within integer range"
        )
        .with_extra("ArgumentName", "max-keys")
        .with_extra("ArgumentValue", raw)
    })?;
    let value = usize::try_from(value).map_err(|_| {
        crate::s3err!(
            InvalidArgument,
            "Argument maxKeys must be an integer between 0 and 2147483647"
        )
        .with_extra("ArgumentName", "maxKeys")
        .with_extra("ArgumentValue", raw)
    })?;
    Ok(value.min(MAX_KEYS_LIMIT))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_numbers() {
        assert_eq!(parse_part_number("1"), Some(1));
        assert_eq!(parse_part_number("10000"), Some(10_000));
        assert_eq!(parse_part_number("007"), Some(7));
        for bad in [
            "",
            "0",
            "10001",
            "+5",
            "-1",
            " 5",
            "5 ",
            "1.0",
            "99999999999",
        ] {
            assert_eq!(parse_part_number(bad), None, "{bad:?}");
        }
    }
    use crate::s3::error::S3ErrorCode;

    #[test]
    fn later_marker_picks_greater() {
        let s = |v: &str| Some(v.to_owned());
        assert_eq!(later_marker(None, None), None);
        assert_eq!(later_marker(s("a"), None), s("a"));
        assert_eq!(later_marker(None, s("b")), s("b"));
        assert_eq!(later_marker(s("a"), s("b")), s("b"));
        assert_eq!(later_marker(s("c"), s("b")), s("c"));
    }

    #[test]
    fn continuation_token_round_trip() {
        for marker in [
            "dir/",
            "file20m.txt",
            "a dir/ü+x=1&y.txt",
            "\u{10FFFF}\u{1}",
            "x",
        ] {
            let token = encode_continuation_token(marker);
            assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
            assert_eq!(decode_continuation_token(&token).unwrap(), marker);
        }
        assert_eq!(encode_continuation_token("dir/"), "6469722f");
    }

    #[test]
    fn continuation_token_rejects_garbage() {
        for bad in ["", "abc", "zz", "6469722F", "ff", "c328", "64 69", "dir/"] {
            let err = decode_continuation_token(bad).unwrap_err();
            assert_eq!(err.code, S3ErrorCode::InvalidArgument, "{bad:?}");
            assert_eq!(err.message, "The continuation token provided is incorrect");
        }
    }

    #[test]
    fn max_keys_parsing() {
        assert_eq!(parse_max_keys(None).unwrap(), 1000);
        assert_eq!(parse_max_keys(Some("0")).unwrap(), 0);
        assert_eq!(parse_max_keys(Some("2")).unwrap(), 2);
        assert_eq!(parse_max_keys(Some("1000")).unwrap(), 1000);
        assert_eq!(parse_max_keys(Some("5000")).unwrap(), 1000);
        assert_eq!(parse_max_keys(Some("2147483647")).unwrap(), 1000);
        for bad in ["-1", "abc", "", "1.5", "2147483648", " 5", "0x10"] {
            let err = parse_max_keys(Some(bad)).unwrap_err();
            assert_eq!(err.code, S3ErrorCode::InvalidArgument, "{bad:?}");
        }
    }
}
