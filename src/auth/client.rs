//! Client-side SigV4 signing, the way boto3 signs: for tests, benches and the bench tool.
//!
//! Invariants: output verifies with `Verifier::verify` given the same credentials and a clock
//! within the allowed skew; the same canonicalisation code as the server is used, so client and
//! server can never disagree on the canonical request; the scope service is always `s3`.

use super::canonical::{canonical_headers, canonical_query, canonical_request};
use super::crypto::{
    derive_signing_key, hmac_sha256, scope_string, string_to_sign, ALGORITHM, SERVICE,
};
use super::Credentials;
use crate::http::date::{amz_date, unix_secs};
use crate::http::percent::aws_uri_encode;
use std::time::SystemTime;

/// Whether `sign_headers` signs a header (lowercase name): host, every `x-amz-*`, and the
/// standard headers boto3 signs when present.
fn is_signed(name: &str) -> bool {
    name == "host"
        || name.starts_with("x-amz-")
        || name.starts_with("if-")
        || matches!(
            name,
            "content-type" | "content-md5" | "content-encoding" | "range"
        )
}

fn signature_hex(
    creds: &Credentials,
    region: &str,
    amz_date: &str,
    canonical_request: &str,
) -> String {
    let date = &amz_date[..8];
    let key = derive_signing_key(&creds.secret_key, date, region, SERVICE);
    let sts = string_to_sign(
        amz_date,
        &scope_string(date, region, SERVICE),
        canonical_request,
    );
    hex::encode(hmac_sha256(&key, sts.as_bytes()))
}

/// Signs a request in place: adds `x-amz-date`, `x-amz-content-sha256` and `authorization`
/// (replacing any already present). Signs `host`, every `x-amz-*`, and `content-type`,
/// `content-md5`, `content-encoding`, `range`, `if-*` when present in `headers` (names lowercase).
/// `raw_path` / `raw_query` must be exactly what goes on the request line.
#[allow(clippy::too_many_arguments)]
pub fn sign_headers(
    creds: &Credentials,
    method: &str,
    raw_path: &str,
    raw_query: &str,
    headers: &mut Vec<(String, String)>,
    payload_hash: &str,
    now: SystemTime,
    region: &str,
) {
    let amz_date = amz_date(unix_secs(now));
    headers.retain(|(n, _)| {
        !n.eq_ignore_ascii_case("x-amz-date")
            && !n.eq_ignore_ascii_case("x-amz-content-sha256")
            && !n.eq_ignore_ascii_case("authorization")
    });
    headers.push(("x-amz-date".to_string(), amz_date.clone()));
    headers.push(("x-amz-content-sha256".to_string(), payload_hash.to_string()));
    let mut signed: Vec<String> = headers
        .iter()
        .map(|(n, _)| n.to_ascii_lowercase())
        .filter(|n| is_signed(n))
        .collect();
    signed.sort_unstable();
    signed.dedup();
    let line = signed.join(";");
    let cr = canonical_request(
        method,
        raw_path,
        &canonical_query(raw_query, false),
        &canonical_headers(headers, &signed),
        &line,
        payload_hash,
    );
    let signature = signature_hex(creds, region, &amz_date, &cr);
    let authorization = format!(
        "{ALGORITHM} Credential={}/{}, SignedHeaders={line}, Signature={signature}",
        creds.access_key,
        scope_string(&amz_date[..8], region, SERVICE),
    );
    headers.push(("authorization".to_string(), authorization));
}

/// Builds a presigned URL target (`path?query`) valid for `expires_secs` from `now`.
///
/// `raw_query` (may be empty) keeps its place first; the `X-Amz-*` parameters follow, then
/// `X-Amz-Signature`. Signs `host` plus `signed_headers` (lowercase name, value), whose values the
/// eventual request must send unchanged. The payload is `UNSIGNED-PAYLOAD`.
#[allow(clippy::too_many_arguments)]
pub fn presign_url(
    creds: &Credentials,
    method: &str,
    host: &str,
    raw_path: &str,
    raw_query: &str,
    expires_secs: u64,
    now: SystemTime,
    region: &str,
    signed_headers: &[(String, String)],
) -> String {
    let amz_date = amz_date(unix_secs(now));
    let mut headers: Vec<(String, String)> = vec![("host".to_string(), host.to_string())];
    headers.extend(
        signed_headers
            .iter()
            .filter(|(n, _)| !n.eq_ignore_ascii_case("host"))
            .map(|(n, v)| (n.to_ascii_lowercase(), v.clone())),
    );
    let mut names: Vec<String> = headers.iter().map(|(n, _)| n.clone()).collect();
    names.sort_unstable();
    names.dedup();
    let line = names.join(";");
    let credential = format!(
        "{}/{}",
        creds.access_key,
        scope_string(&amz_date[..8], region, SERVICE)
    );
    let mut query = String::from(raw_query);
    if !query.is_empty() {
        query.push('&');
    }
    query.push_str(&format!(
        "X-Amz-Algorithm={ALGORITHM}&X-Amz-Credential={}&X-Amz-Date={amz_date}&X-Amz-Expires={expires_secs}&X-Amz-SignedHeaders={}",
        aws_uri_encode(credential.as_bytes(), true),
        aws_uri_encode(line.as_bytes(), true),
    ));
    let cr = canonical_request(
        method,
        raw_path,
        &canonical_query(&query, false),
        &canonical_headers(&headers, &names),
        &line,
        "UNSIGNED-PAYLOAD",
    );
    let signature = signature_hex(creds, region, &amz_date, &cr);
    format!("{raw_path}?{query}&X-Amz-Signature={signature}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::crypto::{sha256, EMPTY_SHA256_HEX};
    use crate::auth::AuthErrorCode;
    use crate::auth::{PayloadCheck, Verifier};
    use crate::http::head::{HeadParse, RequestHead};
    use std::time::{Duration, UNIX_EPOCH};

    fn creds() -> Credentials {
        Credentials {
            access_key: "ak-test".into(),
            secret_key: "sk/with+odd=chars".into(),
        }
    }

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_795_617_053)
    }

    fn request(method: &str, target: &str, headers: Vec<(String, String)>) -> RequestHead {
        let mut wire = format!("{method} {target} HTTP/1.1\r\n");
        for (n, v) in &headers {
            wire.push_str(&format!("{n}: {v}\r\n"));
        }
        wire.push_str("\r\n");
        match RequestHead::parse(wire.as_bytes()).expect("test request parses") {
            HeadParse::Complete(h, _) => h,
            HeadParse::Partial => panic!("incomplete test request"),
        }
    }

    fn h(n: &str, v: &str) -> (String, String) {
        (n.to_string(), v.to_string())
    }

    #[test]
    fn sign_headers_round_trip() {
        let body = b"hello world\n";
        let hash = hex::encode(sha256(body));
        let mut headers = vec![
            h("host", "127.0.0.1:9000"),
            h("content-type", "text/plain"),
            h("x-amz-meta-foo", "Bar  baz"),
            h("range", "bytes=0-1"),
            h("if-match", "\"etag\""),
            h("user-agent", "not signed"),
            h("content-length", "12"),
        ];
        let path = "/bkt/a%20dir/%C3%BC%2Bx%3D1%26y.txt";
        let query = "uploadId=U%2B1&partNumber=3&uploads";
        sign_headers(
            &creds(),
            "PUT",
            path,
            query,
            &mut headers,
            &hash,
            now(),
            "us-east-1",
        );
        let authz = &headers
            .iter()
            .find(|(n, _)| n == "authorization")
            .unwrap()
            .1;
        assert!(authz.contains("SignedHeaders=content-type;host;if-match;range;x-amz-content-sha256;x-amz-date;x-amz-meta-foo,"), "{authz}");
        let req = request("PUT", &format!("{path}?{query}"), headers.clone());
        let out = Verifier::new(creds()).verify(&req, now()).unwrap();
        assert_eq!(out.payload, PayloadCheck::Sha256(sha256(body)));
        assert_eq!(out.access_key, "ak-test");
        // Unsigned headers may change; signed ones may not.
        let mut changed = headers.clone();
        changed.retain(|(n, _)| n != "user-agent");
        Verifier::new(creds())
            .verify(&request("PUT", &format!("{path}?{query}"), changed), now())
            .unwrap();
        let mut changed = headers;
        changed.retain(|(n, _)| n != "range");
        let err = Verifier::new(creds())
            .verify(&request("PUT", &format!("{path}?{query}"), changed), now())
            .unwrap_err();
        assert_eq!(err.code, AuthErrorCode::SignatureDoesNotMatch);
    }

    #[test]
    fn sign_headers_replaces_stale_auth_headers() {
        let mut headers = vec![
            h("host", "h"),
            h("x-amz-date", "19990101T000000Z"),
            h("authorization", "old"),
        ];
        sign_headers(
            &creds(),
            "GET",
            "/",
            "",
            &mut headers,
            EMPTY_SHA256_HEX,
            now(),
            "r",
        );
        assert_eq!(headers.iter().filter(|(n, _)| n == "x-amz-date").count(), 1);
        assert_eq!(
            headers.iter().filter(|(n, _)| n == "authorization").count(),
            1
        );
        Verifier::new(creds())
            .verify(&request("GET", "/", headers), now())
            .unwrap();
    }

    #[test]
    fn any_region_verifies_and_keys_are_cached_bounded() {
        let v = Verifier::new(creds());
        for i in 0..40 {
            let region = format!("region-{}", i % 20);
            let mut headers = vec![h("host", "h")];
            sign_headers(
                &creds(),
                "GET",
                "/b",
                "",
                &mut headers,
                "UNSIGNED-PAYLOAD",
                now(),
                &region,
            );
            let out = v.verify(&request("GET", "/b", headers), now()).unwrap();
            assert_eq!(out.payload, PayloadCheck::Unsigned);
            assert!(v.cached_keys() <= crate::auth::verify::KEY_CACHE_MAX);
        }
        assert_eq!(v.cached_keys(), crate::auth::verify::KEY_CACHE_MAX);
    }

    #[test]
    fn presign_url_round_trip() {
        let target = presign_url(
            &creds(),
            "PUT",
            "127.0.0.1:9000",
            "/bkt/a%20b.txt",
            "response-content-type=text%2Fplain",
            600,
            now(),
            "us-east-1",
            &[h("content-type", "text/plain")],
        );
        assert!(target.starts_with(
            "/bkt/a%20b.txt?response-content-type=text%2Fplain&X-Amz-Algorithm=AWS4-HMAC-SHA256&"
        ));
        assert!(target.contains("&X-Amz-SignedHeaders=content-type%3Bhost&X-Amz-Signature="));
        let headers = vec![
            h("host", "127.0.0.1:9000"),
            h("content-type", "text/plain"),
            h("content-length", "5"),
        ];
        let v = Verifier::new(creds());
        let out = v
            .verify(
                &request("PUT", &target, headers.clone()),
                now() + Duration::from_secs(600),
            )
            .unwrap();
        assert!(out.presigned);
        assert_eq!(out.payload, PayloadCheck::Unsigned);
        let err = v
            .verify(
                &request("PUT", &target, headers),
                now() + Duration::from_secs(601),
            )
            .unwrap_err();
        assert_eq!(err.code, AuthErrorCode::AccessDenied);
        let wrong_ct = vec![h("host", "127.0.0.1:9000"), h("content-type", "image/png")];
        let err = v
            .verify(&request("PUT", &target, wrong_ct), now())
            .unwrap_err();
        assert_eq!(err.code, AuthErrorCode::SignatureDoesNotMatch);
    }

    #[test]
    fn date_header_fallback() {
        // Sign with only a Date header (no x-amz-date): the string to sign uses its time in
        // ISO 8601 basic form.
        use crate::auth::canonical::{canonical_headers, canonical_request};
        let headers = vec![
            h("host", "h"),
            h("date", "Wed, 25 Nov 2026 14:30:53 GMT"),
            h("x-amz-content-sha256", EMPTY_SHA256_HEX),
        ];
        let signed: Vec<String> = ["date", "host", "x-amz-content-sha256"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let cr = canonical_request(
            "GET",
            "/",
            "",
            &canonical_headers(&headers, &signed),
            &signed.join(";"),
            EMPTY_SHA256_HEX,
        );
        let sig = signature_hex(&creds(), "us-east-1", "20261125T143053Z", &cr);
        let mut all = headers;
        all.push(h(
            "authorization",
            &format!("AWS4-HMAC-SHA256 Credential=ak-test/20261125/us-east-1/s3/aws4_request, SignedHeaders=date;host;x-amz-content-sha256, Signature={sig}"),
        ));
        let v = Verifier::new(creds());
        v.verify(&request("GET", "/", all.clone()), now()).unwrap();
        let err = v
            .verify(&request("GET", "/", all), now() + Duration::from_secs(3600))
            .unwrap_err();
        assert_eq!(err.code, AuthErrorCode::RequestTimeTooSkewed);
    }
}
