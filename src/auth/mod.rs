//! Authentication: AWS Signature Version 4 for header-signed and presigned (query) requests, and
//! Signature Version 2 (`v2`) for the clients that still send it (`aws s3 presign`, s3cmd).
//!
//! Role: given a parsed request head, decide whether it is signed by a known key and what the
//! signature promises about the body ([`PayloadCheck`]); the body itself is checked later by the
//! streaming body path (with [`StreamingSigner`] for signed aws-chunked bodies).
//!
//! Invariants:
//! - signatures are compared in constant time ([`constant_time_eq`]);
//! - secrets (secret key, derived signing keys) never appear in errors, logs or `Debug` output;
//! - signing keys are cached per (date, region) in a bounded per-core cache inside [`Verifier`];
//! - the canonical request follows S3 exactly: raw path, sorted re-encoded query, trimmed headers.
//!
//! Layout: `crypto` (hashes, HMAC, key derivation; dates are in [`crate::http::date`]),
//! `canonical` (canonical request), `parse` (Authorization header / presigned parameters),
//! `verify` ([`Verifier`]), `v2` (SigV2 header and query auth), `post_policy` (signed POST
//! policies of browser form uploads), `streaming` ([`StreamingSigner`]), `client` (signing helpers).

mod canonical;
mod client;
mod crypto;
pub(crate) mod error;
mod parse;
mod post_policy;
mod streaming;
mod v2;
mod verify;

#[cfg(test)]
mod tests_boto3;
#[cfg(test)]
mod tests_v2;
#[cfg(test)]
mod tests_vectors;

pub use client::{presign_url, sign_headers};
pub(crate) use crypto::constant_time_eq;
pub use error::{AuthError, AuthErrorCode};
pub(crate) use post_policy::PostSignature;
pub use streaming::StreamingSigner;
pub use verify::Verifier;

/// Development access key, accepted only when listening on loopback.
pub(crate) const DEV_ACCESS_KEY: &str = "ringstoreadmin";
/// Development secret key, accepted only when listening on loopback.
pub(crate) const DEV_SECRET_KEY: &str = "ringstoresecret";

/// One access key and its secret. Deliberately not `Debug`: the secret must never be printed.
#[derive(Clone)]
pub struct Credentials {
    pub access_key: String,
    pub secret_key: String,
}

/// What the signature says about the request body; the body reader enforces it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayloadCheck {
    /// `x-amz-content-sha256` was 64 hex chars: the body must hash to this.
    Sha256([u8; 32]),
    /// `UNSIGNED-PAYLOAD` (also presigned URLs): the body is not covered by the signature.
    Unsigned,
    /// `STREAMING-UNSIGNED-PAYLOAD-TRAILER`: aws-chunked body, checksum in the trailer.
    StreamingUnsignedTrailer,
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]`: aws-chunked body with chained chunk signatures.
    StreamingSigned(StreamingSigner),
}

/// A request that passed authentication.
///
/// `access_key` and `presigned` are not read on the request path yet (the auth tests check
/// them; the access log will report them), hence the `dead_code` allowance.
#[derive(Debug, Clone)]
#[allow(dead_code)]
pub struct AuthOutcome {
    /// The access key that signed the request.
    pub(crate) access_key: String,
    /// What the body must satisfy.
    pub payload: PayloadCheck,
    /// True for query-string (presigned URL) authentication.
    pub(crate) presigned: bool,
}
