//! Server-side verification: [`Verifier::verify`] decides whether a request head is signed by
//! the configured key, for SigV4 header auth and presigned (query) auth, and dispatches SigV2
//! (`Authorization: AWS ...`, `AWSAccessKeyId=...`) to [`super::v2`].
//!
//! Invariants:
//! - exactly one mechanism per request (header or query), never anonymous;
//! - checks run in a fixed order: syntax, access key, payload-hash form, timestamp and scope date,
//!   clock skew / expiry, unsigned `x-amz-*` headers, then the signature (compared in constant time);
//! - the region in the credential scope is not enforced; the service must be `s3`;
//! - signing keys are cached per (date, region), at most [`KEY_CACHE_MAX`] entries per verifier
//!   (one verifier per core: the `RefCell` makes it `!Sync` on purpose).

use super::canonical::{canonical_headers, canonical_query, canonical_request};
use super::crypto::{
    constant_time_eq, derive_signing_key, hmac_sha256, parse_hex32, scope_string, string_to_sign,
    SERVICE,
};
use super::error::{auth_err, AuthError};
use super::parse::{
    has_query_auth, has_v2_query_auth, parse_authorization, parse_presigned, Scope,
};
use super::v2;
use super::{AuthOutcome, Credentials, PayloadCheck, StreamingSigner};
use crate::http::date::{
    amz_date, iso8601_secs, parse_amz_date, parse_http_date, system_time, unix_secs,
};
use crate::http::head::RequestHead;
use std::cell::RefCell;
use std::time::{Duration, SystemTime};

/// Most signing keys kept per verifier (keys change daily, so a handful covers all clients).
pub(crate) const KEY_CACHE_MAX: usize = 16;
/// Largest accepted distance between the request time and the server clock.
pub(crate) const MAX_SKEW: Duration = Duration::from_secs(15 * 60);

pub(super) const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
const STREAMING_UNSIGNED_TRAILER: &str = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";
const STREAMING_SIGNED: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
const STREAMING_SIGNED_TRAILER: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER";

struct CachedKey {
    date: String,
    region: String,
    key: [u8; 32],
}

/// Verifies SigV4 (and SigV2) signatures for one set of credentials. One per core; not `Sync`.
pub struct Verifier {
    pub(super) creds: Credentials,
    keys: RefCell<Vec<CachedKey>>,
    /// Base domain of virtual-host addressing: SigV2 signs the bucket a `Host` names.
    domain: Option<String>,
}

/// The payload check of a request whose body is not aws-chunked signed (presigned URLs, SigV2):
/// the client's `x-amz-content-sha256` if any, else unsigned.
pub(super) fn unstreamed_payload(payload_hash: &str) -> Result<PayloadCheck, AuthError> {
    Ok(
        match payload_form(payload_hash).ok_or_else(invalid_payload_hash)? {
            PayloadForm::Sha256(h) => PayloadCheck::Sha256(h),
            PayloadForm::Unsigned => PayloadCheck::Unsigned,
            PayloadForm::StreamingUnsignedTrailer => PayloadCheck::StreamingUnsignedTrailer,
            PayloadForm::StreamingSigned { .. } => {
                return Err(auth_err!(
                    InvalidRequest,
                    "Signed streaming payloads need SigV4 header authentication."
                ))
            }
        },
    )
}

/// What the `x-amz-content-sha256` value announces.
enum PayloadForm {
    Sha256([u8; 32]),
    Unsigned,
    StreamingUnsignedTrailer,
    StreamingSigned { trailer: bool },
}

fn payload_form(v: &str) -> Option<PayloadForm> {
    Some(match v {
        UNSIGNED_PAYLOAD => PayloadForm::Unsigned,
        STREAMING_UNSIGNED_TRAILER => PayloadForm::StreamingUnsignedTrailer,
        STREAMING_SIGNED => PayloadForm::StreamingSigned { trailer: false },
        STREAMING_SIGNED_TRAILER => PayloadForm::StreamingSigned { trailer: true },
        _ => PayloadForm::Sha256(parse_hex32(v)?),
    })
}

fn invalid_payload_hash() -> AuthError {
    auth_err!(
        InvalidArgument,
        "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER, or a valid sha256 value."
    )
    .with_extra("ArgumentName", "x-amz-content-sha256")
}

/// Absolute distance between two times.
pub(super) fn distance(a: SystemTime, b: SystemTime) -> Duration {
    match a.duration_since(b) {
        Ok(d) => d,
        Err(e) => e.duration(),
    }
}

/// The timestamp of a header-signed request: X-Amz-Date if present (never falling back when it
/// is invalid), else Date. Returns the time (`None` when missing or invalid), the same time as an
/// X-Amz-Date (for the scope and the string to sign), and the header value as sent.
fn header_auth_time(head: &RequestHead) -> (Option<SystemTime>, String, &str) {
    match head.header("x-amz-date") {
        Some(v) => (parse_amz_date(v).map(system_time), v.to_string(), v),
        None => match head.header("date") {
            Some(v) => {
                let t = parse_http_date(v);
                (t.map(system_time), t.map(amz_date).unwrap_or_default(), v)
            }
            None => (None, String::new(), ""),
        },
    }
}

pub(super) fn too_skewed(request_time: &str, now: SystemTime) -> AuthError {
    auth_err!(
        RequestTimeTooSkewed,
        "The difference between the request time and the current time is too large."
    )
    .with_extra("RequestTime", request_time)
    .with_extra("ServerTime", iso8601_secs(unix_secs(now)))
    .with_extra(
        "MaxAllowedSkewMilliseconds",
        MAX_SKEW.as_millis().to_string(),
    )
}

/// The inputs of one signature computation.
struct SignatureCheck<'a> {
    scope: &'a Scope,
    signed_headers: &'a [String],
    amz_date: &'a str,
    payload_hash: &'a str,
    presigned: bool,
    provided: &'a str,
}

impl Verifier {
    pub fn new(creds: Credentials) -> Verifier {
        Verifier {
            creds,
            keys: RefCell::new(Vec::with_capacity(KEY_CACHE_MAX)),
            domain: None,
        }
    }

    /// Sets the virtual-host base domain (`bucket.DOMAIN`), which SigV2's canonical resource needs.
    pub fn with_domain(mut self, domain: Option<String>) -> Verifier {
        self.domain = domain;
        self
    }

    /// Authenticates a request head. `now` is the server clock (a parameter so tests can pin it).
    ///
    /// Errors ([`AuthErrorCode`](super::AuthErrorCode)): `AccessDenied` (anonymous, expired presigned URL, unsigned `x-amz-*`
    /// header, missing/invalid date), `InvalidRequest` (neither SigV4 nor SigV2, missing
    /// `x-amz-content-sha256`), `InvalidArgument` (both mechanisms, unknown payload-hash form),
    /// `AuthorizationHeaderMalformed` / `AuthorizationQueryParametersError` (syntax, scope date,
    /// service, `X-Amz-Expires` outside 1..=604800), `InvalidAccessKeyId`, `RequestTimeTooSkewed`
    /// (more than 15 minutes off; for presigned URLs only when dated in the future), and
    /// `SignatureDoesNotMatch`.
    pub fn verify(&self, head: &RequestHead, now: SystemTime) -> Result<AuthOutcome, AuthError> {
        let mut auth_headers = head.header_all("authorization");
        let auth = auth_headers.next();
        if auth.is_some() && auth_headers.next().is_some() {
            return Err(auth_err!(
                AuthorizationHeaderMalformed,
                "The authorization header is malformed; it is given more than once."
            ));
        }
        let v4_query = has_query_auth(&head.query);
        let v2_query = has_v2_query_auth(&head.query);
        let domain = self.domain.as_deref();
        match (auth, v4_query || v2_query) {
            (Some(_), true) => Err(auth_err!(
                InvalidArgument,
                "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified."
            )
            .with_extra("ArgumentName", "Authorization")),
            (Some(value), false) if v2::is_v2_header(value) => {
                v2::verify_header(&self.creds, domain, head, value, now)
            }
            (Some(value), false) => self.verify_header(head, value, now),
            (None, true) if v4_query => self.verify_presigned(head, now),
            (None, true) => v2::verify_query(&self.creds, domain, head, now),
            (None, false) => Err(auth_err!(
                AccessDenied,
                "Access Denied: anonymous access is not allowed; sign the request with AWS Signature Version 4."
            )),
        }
    }

    fn verify_header(
        &self,
        head: &RequestHead,
        value: &str,
        now: SystemTime,
    ) -> Result<AuthOutcome, AuthError> {
        let auth = parse_authorization(value)?;
        self.check_scope(&auth.scope, false)?;
        let payload_hash = head.header("x-amz-content-sha256").ok_or_else(|| {
            auth_err!(
                InvalidRequest,
                "Missing required header for this request: x-amz-content-sha256"
            )
        })?;
        let form = payload_form(payload_hash).ok_or_else(invalid_payload_hash)?;
        let (time, amz_date, request_time) = header_auth_time(head);
        let time = time.ok_or_else(|| {
            auth_err!(
                AccessDenied,
                "AWS authentication requires a valid Date or x-amz-date header"
            )
        })?;
        if !amz_date.starts_with(&auth.scope.date) {
            return Err(auth_err!(
                AuthorizationHeaderMalformed,
                "The authorization header is malformed; Invalid credential date \"{}\". Date is not the same as X-Amz-Date: \"{}\".",
                auth.scope.date,
                amz_date.get(..8).unwrap_or_default()
            ));
        }
        if distance(time, now) > MAX_SKEW {
            return Err(too_skewed(request_time, now));
        }
        check_all_amz_headers_signed(head, &auth.signed_headers)?;
        let seed = self.check_signature(
            head,
            &SignatureCheck {
                scope: &auth.scope,
                signed_headers: &auth.signed_headers,
                amz_date: &amz_date,
                payload_hash,
                presigned: false,
                provided: &auth.signature,
            },
        )?;
        let payload = match form {
            PayloadForm::Sha256(h) => PayloadCheck::Sha256(h),
            PayloadForm::Unsigned => PayloadCheck::Unsigned,
            PayloadForm::StreamingUnsignedTrailer => PayloadCheck::StreamingUnsignedTrailer,
            PayloadForm::StreamingSigned { trailer } => {
                PayloadCheck::StreamingSigned(StreamingSigner {
                    signing_key: self.signing_key(&auth.scope.date, &auth.scope.region),
                    amz_date,
                    scope: scope_string(&auth.scope.date, &auth.scope.region, SERVICE),
                    seed_signature: seed,
                    trailer,
                })
            }
        };
        Ok(AuthOutcome {
            access_key: auth.scope.access_key,
            payload,
            presigned: false,
        })
    }

    fn verify_presigned(
        &self,
        head: &RequestHead,
        now: SystemTime,
    ) -> Result<AuthOutcome, AuthError> {
        let q = parse_presigned(&head.query)?;
        self.check_scope(&q.scope, true)?;
        if !q.amz_date.starts_with(&q.scope.date) {
            return Err(auth_err!(
                AuthorizationQueryParametersError,
                "Invalid credential date \"{}\". Date is not the same as X-Amz-Date: \"{}\".",
                q.scope.date,
                q.amz_date.get(..8).unwrap_or_default()
            ));
        }
        // parse_presigned validated the date; treat a failure here as malformed all the same.
        let time = parse_amz_date(&q.amz_date)
            .map(system_time)
            .ok_or_else(|| {
                auth_err!(AuthorizationQueryParametersError, "X-Amz-Date is invalid.")
            })?;
        if time > now + MAX_SKEW {
            return Err(too_skewed(&q.amz_date, now));
        }
        let expiry = time + Duration::from_secs(q.expires_secs);
        if now > expiry {
            return Err(auth_err!(AccessDenied, "Request has expired")
                .with_extra("X-Amz-Expires", q.expires_secs.to_string())
                .with_extra("Expires", iso8601_secs(unix_secs(expiry)))
                .with_extra("ServerTime", iso8601_secs(unix_secs(now))));
        }
        // The payload hash: the header or parameter if the client supplied one, else
        // UNSIGNED-PAYLOAD (the normal case for presigned URLs).
        let payload_hash = head
            .header("x-amz-content-sha256")
            .or(q.content_sha256.as_deref())
            .unwrap_or(UNSIGNED_PAYLOAD);
        let payload = unstreamed_payload(payload_hash)?;
        check_all_amz_headers_signed(head, &q.signed_headers)?;
        self.check_signature(
            head,
            &SignatureCheck {
                scope: &q.scope,
                signed_headers: &q.signed_headers,
                amz_date: &q.amz_date,
                payload_hash,
                presigned: true,
                provided: &q.signature,
            },
        )?;
        Ok(AuthOutcome {
            access_key: q.scope.access_key,
            payload,
            presigned: true,
        })
    }

    /// Known access key and the `s3` service.
    pub(super) fn check_scope(&self, scope: &Scope, presigned: bool) -> Result<(), AuthError> {
        if scope.access_key != self.creds.access_key {
            return Err(auth_err!(
                InvalidAccessKeyId,
                "The AWS Access Key Id you provided does not exist in our records."
            )
            .with_extra("AWSAccessKeyId", scope.access_key.clone()));
        }
        if scope.service != SERVICE {
            let msg = format!(
                "Credential should be scoped to correct service: \"{SERVICE}\", not \"{}\".",
                scope.service
            );
            return Err(if presigned {
                auth_err!(AuthorizationQueryParametersError, "{}", msg)
            } else {
                auth_err!(
                    AuthorizationHeaderMalformed,
                    "The authorization header is malformed; {}",
                    msg
                )
            });
        }
        Ok(())
    }

    /// Recomputes the signature and compares it; returns the signature bytes on success.
    fn check_signature(
        &self,
        head: &RequestHead,
        c: &SignatureCheck,
    ) -> Result<[u8; 32], AuthError> {
        let key = self.signing_key(&c.scope.date, &c.scope.region);
        let cq = canonical_query(&head.query, c.presigned);
        let ch = canonical_headers(&head.headers, c.signed_headers);
        let line = c.signed_headers.join(";");
        let cr = canonical_request(
            &head.method_raw,
            &head.path,
            &cq,
            &ch,
            &line,
            c.payload_hash,
        );
        let scope = scope_string(&c.scope.date, &c.scope.region, SERVICE);
        let sts = string_to_sign(c.amz_date, &scope, &cr);
        let sig = hmac_sha256(&key, sts.as_bytes());
        if constant_time_eq(hex::encode(sig).as_bytes(), c.provided.as_bytes()) {
            return Ok(sig);
        }
        Err(auth_err!(
            SignatureDoesNotMatch,
            "The request signature we calculated does not match the signature you provided. Check your key and signing method."
        )
        .with_extra("AWSAccessKeyId", c.scope.access_key.clone())
        .with_extra("StringToSign", sts)
        .with_extra("SignatureProvided", c.provided.to_string())
        .with_extra("CanonicalRequest", cr))
    }

    /// The signing key for (date, region), derived once and cached (FIFO eviction).
    pub(super) fn signing_key(&self, date: &str, region: &str) -> [u8; 32] {
        let mut keys = self.keys.borrow_mut();
        if let Some(k) = keys.iter().find(|k| k.date == date && k.region == region) {
            return k.key;
        }
        let key = derive_signing_key(&self.creds.secret_key, date, region, SERVICE);
        if keys.len() >= KEY_CACHE_MAX {
            keys.remove(0);
        }
        keys.push(CachedKey {
            date: date.to_string(),
            region: region.to_string(),
            key,
        });
        key
    }

    #[cfg(test)]
    pub(crate) fn cached_keys(&self) -> usize {
        self.keys.borrow().len()
    }
}

/// S3 refuses requests carrying `x-amz-*` headers that the signature does not cover.
fn check_all_amz_headers_signed(head: &RequestHead, signed: &[String]) -> Result<(), AuthError> {
    let mut unsigned: Vec<&str> = Vec::new();
    for (name, _) in &head.headers {
        if name.starts_with("x-amz-")
            && !signed.iter().any(|s| s == name)
            && !unsigned.contains(&name.as_str())
        {
            unsigned.push(name);
        }
    }
    if unsigned.is_empty() {
        return Ok(());
    }
    Err(auth_err!(
        AccessDenied,
        "There were headers present in the request which were not signed"
    )
    .with_extra("HeadersNotSigned", unsigned.join(", ")))
}
