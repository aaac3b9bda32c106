//! Chunk signatures for signed aws-chunked bodies (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]`).
//!
//! Role: [`StreamingSigner`] carries what the body decoder needs to check each chunk's
//! `chunk-signature` and the final `x-amz-trailer-signature`: the request's signing key, timestamp,
//! scope and the seed signature (the request signature, which the first chunk chains from).
//!
//! Invariants: signature n is HMAC(signing key, string to sign with signature n-1), starting from
//! the seed; `Debug` never prints the signing key.

use super::crypto::{hmac_sha256, sha256, EMPTY_SHA256_HEX};
use std::fmt;

/// State for verifying a chain of chunk signatures. Built by `Verifier::verify`.
#[derive(Clone, PartialEq, Eq)]
pub struct StreamingSigner {
    /// The derived SigV4 signing key of the request (secret: never logged).
    pub signing_key: [u8; 32],
    /// The request timestamp as used in its string to sign (`YYYYMMDDTHHMMSSZ`).
    pub amz_date: String,
    /// `date/region/s3/aws4_request`.
    pub scope: String,
    /// The request's own signature; the first chunk's signature chains from it.
    pub seed_signature: [u8; 32],
    /// True for `STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER` (a signed trailer follows the last chunk).
    pub trailer: bool,
}

impl StreamingSigner {
    /// Signature of the next chunk given the previous signature and the chunk's data SHA-256.
    pub fn chunk_signature(&self, prev: &[u8; 32], chunk_sha256: &[u8; 32]) -> [u8; 32] {
        let sts = format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n{}\n{}\n{}\n{}\n{}",
            self.amz_date,
            self.scope,
            hex::encode(prev),
            EMPTY_SHA256_HEX,
            hex::encode(chunk_sha256)
        );
        hmac_sha256(&self.signing_key, sts.as_bytes())
    }

    /// Signature of the trailer given the last chunk's signature (the zero-length chunk's) and the
    /// canonical trailer bytes: each trailing header as `name:value\n` (lowercase name, as sent).
    pub fn trailer_signature(&self, prev: &[u8; 32], trailer_bytes: &[u8]) -> [u8; 32] {
        let sts = format!(
            "AWS4-HMAC-SHA256-TRAILER\n{}\n{}\n{}\n{}",
            self.amz_date,
            self.scope,
            hex::encode(prev),
            hex::encode(sha256(trailer_bytes))
        );
        hmac_sha256(&self.signing_key, sts.as_bytes())
    }
}

impl fmt::Debug for StreamingSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamingSigner")
            .field("signing_key", &"<redacted>")
            .field("amz_date", &self.amz_date)
            .field("scope", &self.scope)
            .field("seed_signature", &hex::encode(self.seed_signature))
            .field("trailer", &self.trailer)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::crypto::derive_signing_key;

    fn signer() -> StreamingSigner {
        StreamingSigner {
            signing_key: derive_signing_key(
                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                "20130524",
                "us-east-1",
                "s3",
            ),
            amz_date: "20130524T000000Z".into(),
            scope: "20130524/us-east-1/s3/aws4_request".into(),
            seed_signature: [7; 32],
            trailer: true,
        }
    }

    #[test]
    fn debug_redacts_key() {
        let s = format!("{:?}", signer());
        assert!(s.contains("<redacted>"));
        assert!(!s.contains(&hex::encode(signer().signing_key)));
    }

    #[test]
    fn trailer_signature_matches_string_to_sign() {
        let s = signer();
        let prev = [1u8; 32];
        let trailer = b"x-amz-checksum-crc32c:sOO8/Q==\n";
        let sts = format!(
            "AWS4-HMAC-SHA256-TRAILER\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n{}\n{}",
            "01".repeat(32),
            hex::encode(sha256(trailer))
        );
        assert_eq!(
            s.trailer_signature(&prev, trailer),
            hmac_sha256(&s.signing_key, sts.as_bytes())
        );
        assert_ne!(
            s.trailer_signature(&prev, trailer),
            s.trailer_signature(&[2u8; 32], trailer)
        );
    }
}
