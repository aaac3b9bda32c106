//! Validation of bucket names (S3 general-purpose bucket naming rules) and object keys.
//!
//! Invariants: a name accepted by [`validate_bucket_name`] is 3-63 ASCII characters from
//! `[a-z0-9.-]`, DNS-label safe, and so safe to use as a path component; a key accepted by
//! [`validate_object_key`] is 1..=[`OBJECT_KEY_MAX_BYTES`] bytes of UTF-8 without NUL.
//! Every rejection names the rule that failed.

use crate::s3::error::S3Error;

/// Shortest bucket name, in characters.
pub(crate) const BUCKET_NAME_MIN_CHARS: usize = 3;
/// Longest bucket name, in characters.
pub(crate) const BUCKET_NAME_MAX_CHARS: usize = 63;
/// Longest object key, in bytes of UTF-8.
pub(crate) const OBJECT_KEY_MAX_BYTES: usize = 1024;

/// Prefixes S3 reserves (`xn--` is punycode; the others are AWS-reserved).
const RESERVED_PREFIXES: [&str; 3] = ["xn--", "sthree-", "amzn-s3-demo-"];
/// Suffixes S3 reserves for access point aliases, Object Lambda, MRAP, directory and table buckets.
const RESERVED_SUFFIXES: [&str; 5] = ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"];

/// Checks `name` against S3's bucket naming rules; `InvalidBucketName` says which rule failed.
pub fn validate_bucket_name(name: &str) -> Result<(), S3Error> {
    let invalid = |rule: &str| {
        Err(crate::s3err!(
            InvalidBucketName,
            "The specified bucket is not valid: {rule}."
        )
        .with_extra("BucketName", name))
    };
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        return invalid(
            "bucket names can consist only of lowercase letters, numbers, periods (.) and hyphens (-)",
        );
    }
    // All characters are ASCII from here on, so bytes are characters.
    if name.len() < BUCKET_NAME_MIN_CHARS || name.len() > BUCKET_NAME_MAX_CHARS {
        return invalid("bucket names must be between 3 and 63 characters long");
    }
    let bytes = name.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return invalid("bucket names must begin and end with a letter or number");
    }
    if name.contains("..") {
        return invalid("bucket names must not contain two adjacent periods");
    }
    if name.contains(".-") || name.contains("-.") {
        return invalid("bucket names must not contain a period next to a hyphen");
    }
    if looks_like_ipv4(name) {
        return invalid("bucket names must not be formatted as an IP address");
    }
    if let Some(p) = RESERVED_PREFIXES.iter().find(|p| name.starts_with(**p)) {
        return invalid(&format!("bucket names must not start with the prefix {p}"));
    }
    if let Some(s) = RESERVED_SUFFIXES.iter().find(|s| name.ends_with(**s)) {
        return invalid(&format!("bucket names must not end with the suffix {s}"));
    }
    Ok(())
}

/// Four dot-separated groups of 1-3 digits (`192.168.5.4`), the form S3 refuses.
fn looks_like_ipv4(name: &str) -> bool {
    let groups: Vec<&str> = name.split('.').collect();
    groups.len() == 4
        && groups
            .iter()
            .all(|g| (1..=3).contains(&g.len()) && g.bytes().all(|b| b.is_ascii_digit()))
}

/// Checks an object key: 1..=1024 bytes (`KeyTooLongError` beyond), non-empty and without NUL
/// (`InvalidArgument`).
pub(crate) fn validate_object_key(key: &str) -> Result<(), S3Error> {
    if key.is_empty() {
        return Err(crate::s3err!(
            InvalidArgument,
            "Object key must be at least 1 byte long."
        ));
    }
    if key.len() > OBJECT_KEY_MAX_BYTES {
        return Err(crate::s3err!(KeyTooLongError, "Your key is too long")
            .with_extra("MaxSizeAllowed", OBJECT_KEY_MAX_BYTES.to_string())
            .with_extra("Size", key.len().to_string()));
    }
    if key.as_bytes().contains(&0) {
        return Err(crate::s3err!(
            InvalidArgument,
            "Object key must not contain the NUL character."
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::s3::error::S3ErrorCode;

    fn rule_of(name: &str) -> String {
        let err = validate_bucket_name(name).unwrap_err();
        assert_eq!(err.code, S3ErrorCode::InvalidBucketName, "{name:?}");
        assert_eq!(err.extra, vec![("BucketName", name.to_owned())]);
        err.message
    }

    #[test]
    fn accepts_valid_names() {
        for name in [
            "bkt",
            "abc",
            "my-bucket",
            "my.bucket.name",
            "a1b2c3",
            "123",
            "1.2.3",
            "1.2.3.4.5",
            "192.168.5.4a",
            "docexamplebucket1",
            "log-delivery-march-2020",
            "xn-ok",
            "sthree",
            "bucket-s3alias-not-suffix",
            &"a".repeat(63),
        ] {
            assert!(validate_bucket_name(name).is_ok(), "{name:?}");
        }
    }

    #[test]
    fn length_rules() {
        assert!(rule_of("ab").contains("between 3 and 63"));
        assert!(rule_of("").contains("between 3 and 63"));
        assert!(rule_of(&"a".repeat(64)).contains("between 3 and 63"));
    }

    #[test]
    fn character_rules() {
        for name in [
            "MyBucket",
            "my_bucket",
            "my bucket",
            "bück",
            "a/b",
            "abc\0",
            "abc%",
        ] {
            assert!(rule_of(name).contains("lowercase letters"), "{name:?}");
        }
    }

    #[test]
    fn start_and_end_rules() {
        for name in ["-abc", "abc-", ".abc", "abc."] {
            assert!(rule_of(name).contains("begin and end"), "{name:?}");
        }
    }

    #[test]
    fn period_rules() {
        assert!(rule_of("my..bucket").contains("two adjacent periods"));
        assert!(rule_of("my-.bucket").contains("period next to a hyphen"));
        assert!(rule_of("my.-bucket").contains("period next to a hyphen"));
    }

    #[test]
    fn ip_address_rule() {
        for name in ["192.168.5.4", "10.0.0.1", "999.999.999.999"] {
            assert!(rule_of(name).contains("IP address"), "{name:?}");
        }
    }

    #[test]
    fn reserved_prefixes_and_suffixes() {
        assert!(rule_of("xn--bucket").contains("prefix xn--"));
        assert!(rule_of("sthree-bucket").contains("prefix sthree-"));
        assert!(rule_of("sthree-configurator").contains("prefix sthree-"));
        assert!(rule_of("amzn-s3-demo-bucket").contains("prefix amzn-s3-demo-"));
        assert!(rule_of("bucket-s3alias").contains("suffix -s3alias"));
        assert!(rule_of("bucket--ol-s3").contains("suffix --ol-s3"));
        assert!(rule_of("bucket.mrap").contains("suffix .mrap"));
        assert!(rule_of("bucket--x-s3").contains("suffix --x-s3"));
        assert!(rule_of("bucket--table-s3").contains("suffix --table-s3"));
    }

    #[test]
    fn object_keys() {
        assert!(validate_object_key("a").is_ok());
        assert!(validate_object_key("a dir/ü+x=1&y.txt").is_ok());
        assert!(validate_object_key("\r\n\t\u{1}").is_ok());
        assert!(validate_object_key(&"k".repeat(1024)).is_ok());
        // 512 two-byte characters = 1024 bytes.
        assert!(validate_object_key(&"é".repeat(512)).is_ok());

        let err = validate_object_key(&"k".repeat(1025)).unwrap_err();
        assert_eq!(err.code, S3ErrorCode::KeyTooLongError);
        assert_eq!(err.status(), 400);
        let err = validate_object_key(&"é".repeat(513)).unwrap_err();
        assert_eq!(err.code, S3ErrorCode::KeyTooLongError);
        let err = validate_object_key("").unwrap_err();
        assert_eq!(err.code, S3ErrorCode::InvalidArgument);
        let err = validate_object_key("a\0b").unwrap_err();
        assert_eq!(err.code, S3ErrorCode::InvalidArgument);
    }
}
