//! Authentication errors: why a request's signature (or its absence) was refused.
//!
//! Invariant: the auth layer knows nothing of S3 responses. Each code names one refusal kind;
//! the S3 layer maps them to S3 error codes (`impl From<AuthError> for S3Error`), keeping the
//! message and the extra elements (`extra`) the client sees in the error XML.

use std::fmt;

/// The refusal kinds of SigV4 verification (named like the S3 codes they become).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthErrorCode {
    AccessDenied,
    AuthorizationHeaderMalformed,
    AuthorizationQueryParametersError,
    InvalidAccessKeyId,
    InvalidArgument,
    InvalidRequest,
    RequestTimeTooSkewed,
    SignatureDoesNotMatch,
}

impl AuthErrorCode {
    /// The code's name (the same as the S3 code it maps to).
    pub(crate) fn as_str(self) -> &'static str {
        use AuthErrorCode::*;
        match self {
            AccessDenied => "AccessDenied",
            AuthorizationHeaderMalformed => "AuthorizationHeaderMalformed",
            AuthorizationQueryParametersError => "AuthorizationQueryParametersError",
            InvalidAccessKeyId => "InvalidAccessKeyId",
            InvalidArgument => "InvalidArgument",
            InvalidRequest => "InvalidRequest",
            RequestTimeTooSkewed => "RequestTimeTooSkewed",
            SignatureDoesNotMatch => "SignatureDoesNotMatch",
        }
    }
}

/// One refused request: kind, message, and extra detail elements (e.g. `StringToSign`), in order.
/// Never carries a secret (secret key or signing key).
#[derive(Debug, Clone)]
pub struct AuthError {
    pub code: AuthErrorCode,
    pub message: String,
    /// Extra elements of the error document (e.g. `AWSAccessKeyId`, `ServerTime`), in order.
    pub extra: Vec<(&'static str, String)>,
}

impl AuthError {
    pub(crate) fn new(code: AuthErrorCode, message: impl Into<String>) -> AuthError {
        AuthError {
            code,
            message: message.into(),
            extra: Vec::new(),
        }
    }

    pub(crate) fn with_extra(mut self, name: &'static str, value: impl Into<String>) -> AuthError {
        self.extra.push((name, value.into()));
        self
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for AuthError {}

/// Shorthand constructor: `auth_err!(AccessDenied, "Request has expired")`.
macro_rules! auth_err {
    ($code:ident, $($arg:tt)*) => {
        $crate::auth::error::AuthError::new(
            $crate::auth::error::AuthErrorCode::$code,
            format!($($arg)*),
        )
    };
}
pub(crate) use auth_err;
