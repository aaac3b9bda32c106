//! The POST policy document: base64 JSON with `expiration` and `conditions` (`{"name": "value"}`,
//! `["eq", "$name", "value"]`, `["starts-with", "$name", "prefix"]`,
//! `["content-length-range", min, max]`), checked against the form's fields.
//!
//! Invariants: a policy is refused once expired; every condition must hold (a missing field
//! fails it); every form field other than the signature fields, `policy`, `file` and `x-ignore-*`
//! must be named by a condition; names compare case-insensitively, values exactly.

use crate::http::date::{parse_amz_date, system_time};
use crate::s3::error::S3Error;
use serde_json::Value;
use std::time::SystemTime;

/// Largest base64 policy accepted.
pub(crate) const POLICY_SIZE_MAX_BYTES: usize = 20 * 1024;

/// Fields a policy need not name. `bucket` is the request's bucket (a condition on it still
/// applies): a policy without a bucket condition does not make the URL an extra field.
const EXEMPT_FIELDS: &[&str] = &[
    "policy",
    "x-amz-signature",
    "signature",
    "awsaccesskeyid",
    "file",
    "bucket",
];

/// One parsed condition.
#[derive(Debug)]
enum Condition {
    Eq { field: String, value: String },
    StartsWith { field: String, prefix: String },
    LengthRange { min: u64, max: u64 },
}

/// A parsed, unexpired policy.
#[derive(Debug)]
pub(crate) struct Policy {
    conditions: Vec<(Condition, String)>,
}

fn invalid(why: &str) -> S3Error {
    crate::s3err!(InvalidPolicyDocument, "Invalid Policy: {why}")
}

fn denied(why: &str) -> S3Error {
    crate::s3err!(AccessDenied, "Invalid according to Policy: {why}")
}

/// `2007-12-01T12:00:00.000Z` (fraction optional) as a time.
fn parse_expiration(s: &str) -> Option<SystemTime> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let time = time.split('.').next()?;
    let basic = format!("{}T{}Z", date.replace('-', ""), time.replace(':', ""));
    parse_amz_date(&basic).map(system_time)
}

fn field_name(v: &Value) -> Option<String> {
    let s = v.as_str()?;
    Some(s.strip_prefix('$').unwrap_or(s).to_ascii_lowercase())
}

fn as_u64(v: &Value) -> Option<u64> {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
}

fn parse_condition(c: &Value) -> Option<Condition> {
    if let Some(obj) = c.as_object() {
        let (k, v) = obj.iter().next().filter(|_| obj.len() == 1)?;
        return Some(Condition::Eq {
            field: k.strip_prefix('$').unwrap_or(k).to_ascii_lowercase(),
            value: v.as_str()?.to_string(),
        });
    }
    let arr = c.as_array().filter(|a| a.len() == 3)?;
    match arr[0].as_str()?.to_ascii_lowercase().as_str() {
        "eq" => Some(Condition::Eq {
            field: field_name(&arr[1])?,
            value: arr[2].as_str()?.to_string(),
        }),
        "starts-with" => Some(Condition::StartsWith {
            field: field_name(&arr[1])?,
            prefix: arr[2].as_str()?.to_string(),
        }),
        "content-length-range" => Some(Condition::LengthRange {
            min: as_u64(&arr[1])?,
            max: as_u64(&arr[2])?,
        }),
        _ => None,
    }
}

impl Policy {
    /// Decodes and parses `policy_b64`; refuses it when malformed or expired at `now`.
    pub(crate) fn parse(policy_b64: &str, now: SystemTime) -> Result<Policy, S3Error> {
        use base64::Engine as _;
        if policy_b64.len() > POLICY_SIZE_MAX_BYTES {
            return Err(invalid("the policy document is too large"));
        }
        let json = base64::engine::general_purpose::STANDARD
            .decode(policy_b64.trim())
            .map_err(|_| invalid("the policy is not valid base64"))?;
        let doc: Value =
            serde_json::from_slice(&json).map_err(|_| invalid("the policy is not valid JSON"))?;
        let expiration = doc
            .get("expiration")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("Policy missing expiration."))?;
        let expiration = parse_expiration(expiration)
            .ok_or_else(|| invalid("Invalid 'expiration' value: must be ISO 8601 UTC."))?;
        let list = doc
            .get("conditions")
            .and_then(Value::as_array)
            .ok_or_else(|| invalid("Policy missing conditions."))?;
        let mut conditions = Vec::with_capacity(list.len());
        for c in list {
            let parsed = parse_condition(c)
                .ok_or_else(|| invalid(&format!("Invalid Policy condition: {c}")))?;
            conditions.push((parsed, c.to_string()));
        }
        if now > expiration {
            return Err(denied("Policy expired."));
        }
        Ok(Policy { conditions })
    }

    /// The `content-length-range` bounds, if the policy sets them.
    pub(crate) fn length_range(&self) -> Option<(u64, u64)> {
        self.conditions.iter().find_map(|(c, _)| match c {
            Condition::LengthRange { min, max } => Some((*min, *max)),
            _ => None,
        })
    }

    /// Checks every condition against `fields` (lowercase name, value), then that no field is
    /// left unnamed.
    pub(crate) fn check(&self, fields: &[(String, String)]) -> Result<(), S3Error> {
        let get = |name: &str| fields.iter().find(|(n, _)| n == name).map(|(_, v)| v);
        for (c, text) in &self.conditions {
            let ok = match c {
                Condition::Eq { field, value } => get(field) == Some(value),
                Condition::StartsWith { field, prefix } => {
                    get(field).is_some_and(|v| v.starts_with(prefix.as_str()))
                }
                Condition::LengthRange { .. } => true,
            };
            if !ok {
                return Err(denied(&format!("Policy Condition failed: {text}")));
            }
        }
        let named = |name: &str| {
            self.conditions.iter().any(|(c, _)| match c {
                Condition::Eq { field, .. } | Condition::StartsWith { field, .. } => field == name,
                Condition::LengthRange { .. } => false,
            })
        };
        let extra: Vec<&str> = fields
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| !EXEMPT_FIELDS.contains(n) && !n.starts_with("x-ignore-") && !named(n))
            .collect();
        if extra.is_empty() {
            return Ok(());
        }
        Err(denied(&format!("Extra input fields: {}", extra.join(", "))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    fn b64(json: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(json)
    }

    fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    const DOC: &str = r#"{"expiration": "2030-01-01T12:00:00.000Z", "conditions": [{"bucket": "b"}, ["starts-with", "$key", "user/"], ["content-length-range", 1, "100"], ["eq", "$Content-Type", "text/plain"]]}"#;

    #[test]
    fn conditions_hold_and_fail() {
        let p = Policy::parse(&b64(DOC), SystemTime::UNIX_EPOCH).unwrap();
        assert_eq!(p.length_range(), Some((1, 100)));
        let good = [
            ("bucket", "b"),
            ("key", "user/x"),
            ("content-type", "text/plain"),
            ("policy", "p"),
            ("x-ignore-me", "1"),
        ];
        p.check(&fields(&good)).unwrap();
        let mut wrong_key = good;
        wrong_key[1] = ("key", "other/x");
        let e = p.check(&fields(&wrong_key)).unwrap_err();
        assert!(
            e.message.contains(r#"["starts-with","$key","user/"]"#),
            "{}",
            e.message
        );
        let no_bucket_rule = Policy::parse(
            &b64(r#"{"expiration": "2030-01-01T12:00:00Z", "conditions": [["starts-with", "$key", ""]]}"#),
            SystemTime::UNIX_EPOCH,
        )
        .unwrap();
        no_bucket_rule
            .check(&fields(&[("key", "k"), ("bucket", "b")]))
            .unwrap();
        let e = p.check(&fields(&good[1..])).unwrap_err();
        assert!(e.message.contains("Policy Condition failed"));
        let mut extra = fields(&good);
        extra.push(("x-amz-meta-a".into(), "1".into()));
        let e = p.check(&extra).unwrap_err();
        assert_eq!(
            e.message,
            "Invalid according to Policy: Extra input fields: x-amz-meta-a"
        );
    }

    #[test]
    fn expired_and_malformed() {
        let late = system_time(parse_amz_date("20300101T120001Z").unwrap());
        let e = Policy::parse(&b64(DOC), late).unwrap_err();
        assert_eq!(e.message, "Invalid according to Policy: Policy expired.");
        for bad in [
            "{}",
            "[1]",
            r#"{"expiration": "2030-01-01", "conditions": []}"#,
            r#"{"expiration": "2030-01-01T12:00:00Z", "conditions": [["in", "$a", "b"]]}"#,
        ] {
            let e = Policy::parse(&b64(bad), SystemTime::UNIX_EPOCH).unwrap_err();
            assert_eq!(
                e.code,
                crate::s3::error::S3ErrorCode::InvalidPolicyDocument,
                "{bad}"
            );
        }
        assert!(Policy::parse("%%%", SystemTime::UNIX_EPOCH).is_err());
    }
}
