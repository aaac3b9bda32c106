//! Parsing of SigV4 authentication parameters: the `Authorization` header and the presigned-URL
//! (`X-Amz-*`) query parameters, into typed values.
//!
//! Invariants: parsing only checks syntax (no key lookup, no clock, no signature); malformed header
//! auth is `AuthorizationHeaderMalformed`, malformed query auth is
//! `AuthorizationQueryParametersError`; signed-header names come out lowercase, unique, non-empty
//! and always include `host`; nothing here panics on client input.

use super::crypto::{ALGORITHM, SCOPE_TERMINATOR};
use super::error::{auth_err, AuthError};
use crate::http::date::parse_amz_date;
use crate::http::percent::{percent_decode, percent_decode_bytes};

/// Longest validity of a presigned URL: one week.
pub(crate) const PRESIGN_EXPIRES_MAX_SECS: u64 = 604_800;

/// `AK/YYYYMMDD/REGION/SERVICE/aws4_request`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Scope {
    pub(crate) access_key: String,
    pub(crate) date: String,
    pub(crate) region: String,
    pub(crate) service: String,
}

/// The parts of an `Authorization: AWS4-HMAC-SHA256 ...` header.
#[derive(Debug)]
pub(crate) struct HeaderAuth {
    pub(crate) scope: Scope,
    pub(crate) signed_headers: Vec<String>,
    pub(crate) signature: String,
}

/// The `X-Amz-*` parameters of a presigned URL.
#[derive(Debug)]
pub(crate) struct QueryAuth {
    pub(crate) scope: Scope,
    /// `X-Amz-Date` verbatim (already validated as `YYYYMMDDTHHMMSSZ`).
    pub(crate) amz_date: String,
    pub(crate) expires_secs: u64,
    pub(crate) signed_headers: Vec<String>,
    pub(crate) signature: String,
    /// `X-Amz-Content-Sha256`, when the URL carries one.
    pub(crate) content_sha256: Option<String>,
}

const CREDENTIAL_FORM: &str =
    "the Credential is mal-formed; expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\"";

pub(super) fn parse_scope(s: &str) -> Option<Scope> {
    let parts: Vec<&str> = s.split('/').collect();
    let [ak, date, region, service, term] = parts.as_slice() else {
        return None;
    };
    let date_ok = date.len() == 8 && date.bytes().all(|b| b.is_ascii_digit());
    if ak.is_empty() || region.is_empty() || service.is_empty() || !date_ok {
        return None;
    }
    if *term != SCOPE_TERMINATOR {
        return None;
    }
    Some(Scope {
        access_key: ak.to_string(),
        date: date.to_string(),
        region: region.to_string(),
        service: service.to_string(),
    })
}

/// Lowercase, unique, non-empty names, in the order given; must include `host`.
fn parse_signed_headers(s: &str) -> Result<Vec<String>, &'static str> {
    let mut out: Vec<String> = Vec::new();
    for name in s.split(';') {
        let name = name.trim().to_ascii_lowercase();
        if name.is_empty() {
            return Err("SignedHeaders contains an empty header name");
        }
        if out.contains(&name) {
            return Err("SignedHeaders lists a header twice");
        }
        out.push(name);
    }
    if !out.iter().any(|n| n == "host") {
        return Err("SignedHeaders must include host");
    }
    Ok(out)
}

fn header_malformed(reason: &str) -> AuthError {
    auth_err!(
        AuthorizationHeaderMalformed,
        "The authorization header is malformed; {}.",
        reason
    )
}

/// The error for any signing scheme other than SigV4 with HMAC-SHA256.
pub(crate) fn unsupported_mechanism() -> AuthError {
    auth_err!(
        InvalidRequest,
        "The authorization mechanism you have provided is not supported; only {} is supported.",
        ALGORITHM
    )
}

/// Parses an `Authorization` header value.
pub(crate) fn parse_authorization(value: &str) -> Result<HeaderAuth, AuthError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(header_malformed("it is empty"));
    }
    let rest = match value.strip_prefix(ALGORITHM) {
        Some(rest) if rest.is_empty() || rest.starts_with(|c: char| c.is_ascii_whitespace()) => {
            rest
        }
        _ => return Err(unsupported_mechanism()),
    };
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let Some((key, val)) = part.split_once('=') else {
            return Err(header_malformed(
                "the authorization component is not of the form key=value",
            ));
        };
        let slot = match key.trim() {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed,
            "Signature" => &mut signature,
            _ => {
                return Err(header_malformed(
                    "the authorization header contains an unknown component",
                ))
            }
        };
        if slot.replace(val.trim()).is_some() {
            return Err(header_malformed(
                "the authorization header repeats a component",
            ));
        }
    }
    let (Some(credential), Some(signed), Some(signature)) = (credential, signed, signature) else {
        return Err(header_malformed(
            "the authorization header requires three components: Credential, SignedHeaders, and Signature",
        ));
    };
    let scope = parse_scope(credential).ok_or_else(|| header_malformed(CREDENTIAL_FORM))?;
    let signed_headers = parse_signed_headers(signed).map_err(header_malformed)?;
    Ok(HeaderAuth {
        scope,
        signed_headers,
        signature: signature.to_string(),
    })
}

fn query_error(msg: &str) -> AuthError {
    auth_err!(AuthorizationQueryParametersError, "{}", msg)
}

/// Decoded parameter name (lenient: an undecodable name never matches an `X-Amz-*` name) and raw value.
fn raw_params(raw_query: &str) -> impl Iterator<Item = (Vec<u8>, &str)> {
    raw_query.split('&').filter(|s| !s.is_empty()).map(|seg| {
        let (name, value) = seg.split_once('=').unwrap_or((seg, ""));
        (percent_decode_bytes(name).unwrap_or_default(), value)
    })
}

/// True when the query carries SigV4 query authentication (any of its identifying parameters).
pub(crate) fn has_query_auth(raw_query: &str) -> bool {
    raw_params(raw_query).any(|(name, _)| {
        matches!(
            name.as_slice(),
            b"X-Amz-Algorithm" | b"X-Amz-Credential" | b"X-Amz-Signature"
        )
    })
}

/// True when the query looks like SigV2 query authentication (`AWSAccessKeyId` + `Signature`).
pub(crate) fn has_v2_query_auth(raw_query: &str) -> bool {
    let mut ak = false;
    let mut sig = false;
    for (name, _) in raw_params(raw_query) {
        ak |= name == b"AWSAccessKeyId";
        sig |= name == b"Signature";
    }
    ak && sig
}

/// Parses the `X-Amz-*` parameters of a presigned URL.
pub(crate) fn parse_presigned(raw_query: &str) -> Result<QueryAuth, AuthError> {
    const NAMES: [&[u8]; 7] = [
        b"X-Amz-Algorithm",
        b"X-Amz-Credential",
        b"X-Amz-Date",
        b"X-Amz-Expires",
        b"X-Amz-SignedHeaders",
        b"X-Amz-Signature",
        b"X-Amz-Content-Sha256",
    ];
    let mut found: [Option<String>; 7] = Default::default();
    for (name, raw_value) in raw_params(raw_query) {
        let Some(i) = NAMES.iter().position(|n| *n == name.as_slice()) else {
            continue;
        };
        let value = percent_decode(raw_value)
            .map_err(|_| query_error("An X-Amz-* query parameter has invalid percent-encoding."))?;
        if found[i].replace(value).is_some() {
            return Err(query_error(
                "An X-Amz-* query parameter is given more than once.",
            ));
        }
    }
    let [algorithm, credential, date, expires, signed, signature, content_sha256] = found;
    let (
        Some(algorithm),
        Some(credential),
        Some(date),
        Some(expires),
        Some(signed),
        Some(signature),
    ) = (algorithm, credential, date, expires, signed, signature)
    else {
        return Err(query_error(
            "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.",
        ));
    };
    if algorithm != ALGORITHM {
        return Err(query_error(
            "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\".",
        ));
    }
    if parse_amz_date(&date).is_none() {
        return Err(query_error(
            "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\".",
        ));
    }
    let expires_secs = parse_expires(&expires)?;
    let scope = parse_scope(&credential).ok_or_else(|| {
        query_error(&format!(
            "Error parsing the X-Amz-Credential parameter; {CREDENTIAL_FORM}."
        ))
    })?;
    let signed_headers = parse_signed_headers(&signed)
        .map_err(|reason| query_error(&format!("Error parsing X-Amz-SignedHeaders: {reason}.")))?;
    Ok(QueryAuth {
        scope,
        amz_date: date,
        expires_secs,
        signed_headers,
        signature,
        content_sha256,
    })
}

fn parse_expires(s: &str) -> Result<u64, AuthError> {
    if s.is_empty() || s.len() > 12 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(query_error("X-Amz-Expires should be a number."));
    }
    let secs: u64 = s
        .parse()
        .map_err(|_| query_error("X-Amz-Expires should be a number."))?;
    if secs == 0 {
        return Err(query_error("X-Amz-Expires must be greater than 0."));
    }
    if secs > PRESIGN_EXPIRES_MAX_SECS {
        return Err(query_error(
            "X-Amz-Expires must be less than a week (in seconds) that is; 604800.",
        ));
    }
    Ok(secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::AuthErrorCode;

    const SIG: &str = "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41";

    #[test]
    fn authorization_with_and_without_spaces() {
        for v in [
            format!("AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-date, Signature={SIG}"),
            format!("AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-date,Signature={SIG}"),
            format!("AWS4-HMAC-SHA256   Credential = AK/20130524/us-east-1/s3/aws4_request ,  SignedHeaders=host;range;x-amz-date ,Signature={SIG} "),
        ] {
            let a = parse_authorization(&v).unwrap();
            assert_eq!(a.scope.access_key, "AK");
            assert_eq!(a.scope.date, "20130524");
            assert_eq!(a.scope.region, "us-east-1");
            assert_eq!(a.scope.service, "s3");
            assert_eq!(a.signed_headers, vec!["host", "range", "x-amz-date"]);
            assert_eq!(a.signature, SIG);
        }
    }

    #[test]
    fn authorization_malformed() {
        for v in [
            "AWS4-HMAC-SHA256",
            "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request, SignedHeaders=host",
            "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3, SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA256 Credential=AK/2013052/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request, SignedHeaders=x-amz-date, Signature=00",
            "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;;x, Signature=00",
            "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;host, Signature=00",
            "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00, Signature=00",
            "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00, Foo=1",
            "AWS4-HMAC-SHA256 garbage",
            "",
        ] {
            let e = parse_authorization(v).unwrap_err();
            assert_eq!(e.code, AuthErrorCode::AuthorizationHeaderMalformed, "{v}");
        }
    }

    #[test]
    fn other_algorithms_unsupported() {
        for v in [
            "AWS AKIAIOSFODNN7EXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=",
            "AWS4-ECDSA-P256-SHA256 Credential=AK/20130524/s3/aws4_request, SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA256X Credential=x",
            "Bearer abc",
        ] {
            let e = parse_authorization(v).unwrap_err();
            assert_eq!(e.code, AuthErrorCode::InvalidRequest, "{v}");
            assert!(e.message.contains("only AWS4-HMAC-SHA256 is supported"));
        }
    }

    const PRESIGNED: &str = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=rustfsadmin%2F20261125%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20261125T143429Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=content-type%3Bhost&X-Amz-Signature=f7eee2c1b0bdd3faad3762da5942c8482fd7a53e6b161c7e2cf1024ea06f53bc";

    #[test]
    fn presigned_parses() {
        assert!(has_query_auth(PRESIGNED));
        assert!(!has_query_auth("list-type=2&X-Amz-Date=1"));
        let q = parse_presigned(PRESIGNED).unwrap();
        assert_eq!(q.scope.access_key, "rustfsadmin");
        assert_eq!(q.amz_date, "20261125T143429Z");
        assert_eq!(q.expires_secs, 3600);
        assert_eq!(q.signed_headers, vec!["content-type", "host"]);
        assert_eq!(q.content_sha256, None);
    }

    #[test]
    fn presigned_errors() {
        let with = |from: &str, to: &str| PRESIGNED.replace(from, to);
        for q in [
            with("X-Amz-Expires=3600", "X-Amz-Expires=0"),
            with("X-Amz-Expires=3600", "X-Amz-Expires=604801"),
            with("X-Amz-Expires=3600", "X-Amz-Expires=-1"),
            with("X-Amz-Expires=3600", "X-Amz-Expires=1h"),
            with(
                "X-Amz-Expires=3600",
                "X-Amz-Expires=99999999999999999999999",
            ),
            with("X-Amz-Expires=3600&", ""),
            with(
                "X-Amz-Algorithm=AWS4-HMAC-SHA256",
                "X-Amz-Algorithm=AWS4-HMAC-SHA1",
            ),
            with("X-Amz-Date=20261125T143429Z", "X-Amz-Date=2026-11-25"),
            with("%2Faws4_request", "%2Faws5_request"),
            with("content-type%3Bhost", "content-type"),
            format!("{PRESIGNED}&X-Amz-Date=20261125T143429Z"),
            with("X-Amz-Date=20261125T143429Z", "X-Amz-Date=%zz"),
        ] {
            let e = parse_presigned(&q).unwrap_err();
            assert_eq!(
                e.code,
                AuthErrorCode::AuthorizationQueryParametersError,
                "{q}"
            );
        }
        assert_eq!(
            parse_presigned(&with("X-Amz-Expires=3600", "X-Amz-Expires=604800"))
                .unwrap()
                .expires_secs,
            604_800
        );
    }

    #[test]
    fn v2_query_detection() {
        assert!(has_v2_query_auth(
            "AWSAccessKeyId=AK&Expires=1&Signature=x%3D"
        ));
        assert!(!has_v2_query_auth("Signature=x"));
    }
}
