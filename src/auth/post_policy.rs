//! Signatures of browser form uploads (POST Object): the base64 `policy` field signed with SigV4
//! (`x-amz-algorithm`, `x-amz-credential`, `x-amz-date`, `x-amz-signature`) or SigV2
//! (`AWSAccessKeyId`, `signature`).
//!
//! Invariants: the signed string is the base64 policy exactly as sent; signatures are compared in
//! constant time; only the signature is checked here (the policy's expiry and conditions are the
//! S3 layer's), and the credential date must be the date of `x-amz-date`.

use super::crypto::{constant_time_eq, hmac_sha1_base64, hmac_sha256, ALGORITHM};
use super::error::{auth_err, AuthError};
use super::parse::parse_scope;
use super::v2::check_access_key;
use super::{AuthOutcome, PayloadCheck, Verifier};
use crate::http::date::parse_amz_date;

/// The signature fields of a POST form.
pub(crate) enum PostSignature<'a> {
    V4 {
        algorithm: &'a str,
        credential: &'a str,
        amz_date: &'a str,
        signature: &'a str,
    },
    V2 {
        access_key: &'a str,
        signature: &'a str,
    },
}

fn mismatch(access_key: &str) -> AuthError {
    auth_err!(
        SignatureDoesNotMatch,
        "The request signature we calculated does not match the signature you provided. Check your key and signing method."
    )
    .with_extra("AWSAccessKeyId", access_key)
}

fn invalid_field(name: &str, value: &str) -> AuthError {
    auth_err!(InvalidArgument, "Invalid {} field: {}", name, value)
        .with_extra("ArgumentName", name.to_string())
        .with_extra("ArgumentValue", value)
}

impl Verifier {
    /// Verifies the signature of a POST form's base64 `policy`.
    pub(crate) fn verify_post_policy(
        &self,
        policy_b64: &str,
        sig: &PostSignature<'_>,
    ) -> Result<AuthOutcome, AuthError> {
        let access_key = match *sig {
            PostSignature::V4 {
                algorithm,
                credential,
                amz_date,
                signature,
            } => {
                if algorithm != ALGORITHM {
                    return Err(invalid_field("x-amz-algorithm", algorithm));
                }
                let scope = parse_scope(credential)
                    .ok_or_else(|| invalid_field("x-amz-credential", credential))?;
                self.check_scope(&scope, false)?;
                if parse_amz_date(amz_date).is_none() || !amz_date.starts_with(&scope.date) {
                    return Err(invalid_field("x-amz-date", amz_date));
                }
                let key = self.signing_key(&scope.date, &scope.region);
                let expected = hex::encode(hmac_sha256(&key, policy_b64.as_bytes()));
                if !constant_time_eq(expected.as_bytes(), signature.as_bytes()) {
                    return Err(mismatch(&scope.access_key));
                }
                scope.access_key
            }
            PostSignature::V2 {
                access_key,
                signature,
            } => {
                check_access_key(&self.creds, access_key)?;
                let expected =
                    hmac_sha1_base64(self.creds.secret_key.as_bytes(), policy_b64.as_bytes());
                if !constant_time_eq(expected.as_bytes(), signature.as_bytes()) {
                    return Err(mismatch(access_key));
                }
                access_key.to_string()
            }
        };
        Ok(AuthOutcome {
            access_key,
            payload: PayloadCheck::Unsigned,
            presigned: false,
        })
    }
}
