//! HTTP-layer errors: the ways reading a request (head, framing, body) can fail.
//!
//! Invariant: this layer knows nothing of S3. Each code names one failure kind the HTTP layer
//! produces; the S3 layer maps them to S3 error codes (`impl From<HttpError> for S3Error`), so the
//! names and statuses here match the S3 codes they become.

use std::fmt;

/// The failure kinds of the HTTP layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpErrorCode {
    /// The request line or target is not valid HTTP.
    BadRequest,
    /// The connection ended (or the chunked framing broke) before the head or body was complete.
    IncompleteBody,
    /// A header value (`Content-Length`, non-UTF-8 value) or a percent-encoding is invalid.
    InvalidArgument,
    /// Ambiguous body framing (`Content-Length` with `Transfer-Encoding`, duplicate lengths).
    InvalidRequest,
    /// A transfer coding other than `chunked`.
    NotImplemented,
    /// The head is too large or has too many headers.
    RequestHeaderSectionTooLarge,
    /// The head or body arrived too slowly.
    RequestTimeout,
    /// The server refuses the connection (too many connections).
    SlowDown,
}

impl HttpErrorCode {
    /// The code's name (the same as the S3 code it maps to).
    pub(crate) fn as_str(self) -> &'static str {
        use HttpErrorCode::*;
        match self {
            BadRequest => "BadRequest",
            IncompleteBody => "IncompleteBody",
            InvalidArgument => "InvalidArgument",
            InvalidRequest => "InvalidRequest",
            NotImplemented => "NotImplemented",
            RequestHeaderSectionTooLarge => "RequestHeaderSectionTooLarge",
            RequestTimeout => "RequestTimeout",
            SlowDown => "SlowDown",
        }
    }
}

/// One HTTP-layer failure: its kind and a human message.
#[derive(Debug, Clone)]
pub struct HttpError {
    pub(crate) code: HttpErrorCode,
    pub(crate) message: String,
}

impl HttpError {
    pub(crate) fn new(code: HttpErrorCode, message: impl Into<String>) -> HttpError {
        HttpError {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for HttpError {}

/// Shorthand constructor: `http_err!(BadRequest, "Malformed request target.")`.
macro_rules! http_err {
    ($code:ident, $($arg:tt)*) => {
        $crate::http::error::HttpError::new(
            $crate::http::error::HttpErrorCode::$code,
            format!($($arg)*),
        )
    };
}
pub(crate) use http_err;
