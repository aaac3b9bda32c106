//! S3 errors: one type for every failure a request can end in, rendered as S3's XML.
//!
//! Invariant: every error the server sends goes through [`S3Error`], so each carries an S3 `Code`,
//! a human `Message`, the right HTTP status and (when known) the `Resource`.

use crate::auth::{AuthError, AuthErrorCode};
use crate::digest::{DigestError, DigestErrorCode};
use crate::http::error::{HttpError, HttpErrorCode};
use std::fmt;

/// The S3 error codes ringstore produces. Names are S3's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum S3ErrorCode {
    AccessDenied,
    AuthorizationHeaderMalformed,
    AuthorizationQueryParametersError,
    BadDigest,
    BucketAlreadyExists,
    BucketAlreadyOwnedByYou,
    BucketNotEmpty,
    EntityTooLarge,
    EntityTooSmall,
    IncompleteBody,
    InternalError,
    InvalidAccessKeyId,
    InvalidArgument,
    InvalidBucketName,
    InvalidDigest,
    InvalidPart,
    InvalidPartNumber,
    InvalidPartOrder,
    InvalidRange,
    InvalidRequest,
    InvalidStorageClass,
    KeyTooLongError,
    MalformedXML,
    MetadataTooLarge,
    MethodNotAllowed,
    MissingContentLength,
    MissingSecurityHeader,
    NoSuchBucket,
    NoSuchKey,
    NoSuchUpload,
    NotImplemented,
    NotModified,
    PreconditionFailed,
    RequestHeaderSectionTooLarge,
    RequestTimeTooSkewed,
    RequestTimeout,
    ServiceUnavailable,
    SignatureDoesNotMatch,
    SlowDown,
    XAmzContentSHA256Mismatch,
    InsufficientStorage,
    BadRequest,
}

impl S3ErrorCode {
    /// The `Code` element text.
    pub fn as_str(self) -> &'static str {
        use S3ErrorCode::*;
        match self {
            AccessDenied => "AccessDenied",
            AuthorizationHeaderMalformed => "AuthorizationHeaderMalformed",
            AuthorizationQueryParametersError => "AuthorizationQueryParametersError",
            BadDigest => "BadDigest",
            BucketAlreadyExists => "BucketAlreadyExists",
            BucketAlreadyOwnedByYou => "BucketAlreadyOwnedByYou",
            BucketNotEmpty => "BucketNotEmpty",
            EntityTooLarge => "EntityTooLarge",
            EntityTooSmall => "EntityTooSmall",
            IncompleteBody => "IncompleteBody",
            InternalError => "InternalError",
            InvalidAccessKeyId => "InvalidAccessKeyId",
            InvalidArgument => "InvalidArgument",
            InvalidBucketName => "InvalidBucketName",
            InvalidDigest => "InvalidDigest",
            InvalidPart => "InvalidPart",
            InvalidPartNumber => "InvalidPartNumber",
            InvalidPartOrder => "InvalidPartOrder",
            InvalidRange => "InvalidRange",
            InvalidRequest => "InvalidRequest",
            InvalidStorageClass => "InvalidStorageClass",
            KeyTooLongError => "KeyTooLongError",
            MalformedXML => "MalformedXML",
            MetadataTooLarge => "MetadataTooLarge",
            MethodNotAllowed => "MethodNotAllowed",
            MissingContentLength => "MissingContentLength",
            MissingSecurityHeader => "MissingSecurityHeader",
            NoSuchBucket => "NoSuchBucket",
            NoSuchKey => "NoSuchKey",
            NoSuchUpload => "NoSuchUpload",
            NotImplemented => "NotImplemented",
            NotModified => "NotModified",
            PreconditionFailed => "PreconditionFailed",
            RequestHeaderSectionTooLarge => "RequestHeaderSectionTooLarge",
            RequestTimeTooSkewed => "RequestTimeTooSkewed",
            RequestTimeout => "RequestTimeout",
            ServiceUnavailable => "ServiceUnavailable",
            SignatureDoesNotMatch => "SignatureDoesNotMatch",
            SlowDown => "SlowDown",
            XAmzContentSHA256Mismatch => "XAmzContentSHA256Mismatch",
            InsufficientStorage => "InsufficientStorage",
            BadRequest => "BadRequest",
        }
    }

    /// The HTTP status S3 answers this code with.
    pub fn status(self) -> u16 {
        use S3ErrorCode::*;
        match self {
            AccessDenied | InvalidAccessKeyId | SignatureDoesNotMatch | RequestTimeTooSkewed => 403,
            NoSuchBucket | NoSuchKey | NoSuchUpload => 404,
            MethodNotAllowed => 405,
            BucketAlreadyExists | BucketAlreadyOwnedByYou | BucketNotEmpty => 409,
            MissingContentLength => 411,
            PreconditionFailed => 412,
            InvalidRange | InvalidPartNumber => 416,
            InternalError => 500,
            NotImplemented => 501,
            ServiceUnavailable | SlowDown => 503,
            InsufficientStorage => 507,
            NotModified => 304,
            RequestHeaderSectionTooLarge => 400,
            _ => 400,
        }
    }
}

/// One failed request: code, message, and the resource it concerned.
#[derive(Debug, Clone)]
pub struct S3Error {
    pub code: S3ErrorCode,
    pub message: String,
    /// The request path (`/bucket/key`), filled in by the router when empty.
    pub resource: String,
    /// Extra elements S3 adds for some codes (e.g. `BucketName`, `Key`), in order.
    pub extra: Vec<(&'static str, String)>,
}

impl S3Error {
    pub fn new(code: S3ErrorCode, message: impl Into<String>) -> S3Error {
        S3Error {
            code,
            message: message.into(),
            resource: String::new(),
            extra: Vec::new(),
        }
    }

    pub fn with_resource(mut self, resource: impl Into<String>) -> S3Error {
        self.resource = resource.into();
        self
    }

    pub fn with_extra(mut self, name: &'static str, value: impl Into<String>) -> S3Error {
        self.extra.push((name, value.into()));
        self
    }

    pub fn status(&self) -> u16 {
        self.code.status()
    }

    /// Internal error: the detail (which may name server paths) goes to the log, the client gets
    /// the operation that failed.
    pub fn internal(context: &str, err: impl fmt::Display) -> S3Error {
        eprintln!("ringstore: internal error: {context}: {err}");
        S3Error::new(
            S3ErrorCode::InternalError,
            format!("We encountered an internal error ({context}). Please try again."),
        )
    }

    /// Maps an I/O error while writing: a full disk or quota becomes 507 InsufficientStorage.
    pub fn from_write_io(context: &str, err: &std::io::Error) -> S3Error {
        let no_space = matches!(err.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
            || matches!(
                err.kind(),
                std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
            )
            // glommio rebuilds errors from kind + text, dropping the errno.
            || err.to_string().contains("No space left on device");
        if no_space {
            S3Error::new(
                S3ErrorCode::InsufficientStorage,
                format!("Not enough storage space to complete the request ({context})."),
            )
        } else {
            S3Error::internal(context, err)
        }
    }

    /// The `<Error>` XML document for this error.
    pub fn to_xml(&self, request_id: &str) -> String {
        use crate::s3::xml::escape;
        let mut s = String::with_capacity(256);
        s.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>");
        s.push_str(self.code.as_str());
        s.push_str("</Code><Message>");
        s.push_str(&escape(&self.message));
        s.push_str("</Message>");
        for (name, value) in &self.extra {
            s.push('<');
            s.push_str(name);
            s.push('>');
            s.push_str(&escape(value));
            s.push_str("</");
            s.push_str(name);
            s.push('>');
        }
        s.push_str("<Resource>");
        s.push_str(&escape(&self.resource));
        s.push_str("</Resource><RequestId>");
        s.push_str(request_id);
        s.push_str("</RequestId></Error>");
        s
    }
}

impl fmt::Display for S3Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for S3Error {}

// The one place where lower-layer errors become S3 errors: same code names, same messages, same
// extra elements (the status follows from the S3 code).

impl From<HttpError> for S3Error {
    fn from(e: HttpError) -> S3Error {
        let code = match e.code {
            HttpErrorCode::BadRequest => S3ErrorCode::BadRequest,
            HttpErrorCode::IncompleteBody => S3ErrorCode::IncompleteBody,
            HttpErrorCode::InvalidArgument => S3ErrorCode::InvalidArgument,
            HttpErrorCode::InvalidRequest => S3ErrorCode::InvalidRequest,
            HttpErrorCode::NotImplemented => S3ErrorCode::NotImplemented,
            HttpErrorCode::RequestHeaderSectionTooLarge => {
                S3ErrorCode::RequestHeaderSectionTooLarge
            }
            HttpErrorCode::RequestTimeout => S3ErrorCode::RequestTimeout,
            HttpErrorCode::SlowDown => S3ErrorCode::SlowDown,
        };
        S3Error::new(code, e.message)
    }
}

impl From<AuthError> for S3Error {
    fn from(e: AuthError) -> S3Error {
        let code = match e.code {
            AuthErrorCode::AccessDenied => S3ErrorCode::AccessDenied,
            AuthErrorCode::AuthorizationHeaderMalformed => {
                S3ErrorCode::AuthorizationHeaderMalformed
            }
            AuthErrorCode::AuthorizationQueryParametersError => {
                S3ErrorCode::AuthorizationQueryParametersError
            }
            AuthErrorCode::InvalidAccessKeyId => S3ErrorCode::InvalidAccessKeyId,
            AuthErrorCode::InvalidArgument => S3ErrorCode::InvalidArgument,
            AuthErrorCode::InvalidRequest => S3ErrorCode::InvalidRequest,
            AuthErrorCode::RequestTimeTooSkewed => S3ErrorCode::RequestTimeTooSkewed,
            AuthErrorCode::SignatureDoesNotMatch => S3ErrorCode::SignatureDoesNotMatch,
        };
        S3Error {
            extra: e.extra,
            ..S3Error::new(code, e.message)
        }
    }
}

impl From<DigestError> for S3Error {
    fn from(e: DigestError) -> S3Error {
        let code = match e.code {
            DigestErrorCode::BadDigest => S3ErrorCode::BadDigest,
            DigestErrorCode::XAmzContentSHA256Mismatch => S3ErrorCode::XAmzContentSHA256Mismatch,
        };
        S3Error::new(code, e.message)
    }
}

/// Shorthand constructor: `s3err!(NoSuchKey, "The specified key does not exist.")`.
#[macro_export]
macro_rules! s3err {
    ($code:ident, $($arg:tt)*) => {
        $crate::s3::error::S3Error::new($crate::s3::error::S3ErrorCode::$code, format!($($arg)*))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lower_layer_errors_keep_code_message_status_and_extra() {
        use HttpErrorCode as H;
        for code in [
            H::BadRequest,
            H::IncompleteBody,
            H::InvalidArgument,
            H::InvalidRequest,
            H::NotImplemented,
            H::RequestHeaderSectionTooLarge,
            H::RequestTimeout,
            H::SlowDown,
        ] {
            let e = S3Error::from(HttpError::new(code, "m"));
            assert_eq!(e.code.as_str(), code.as_str());
            assert_eq!(e.status(), code.status(), "{}", code.as_str());
            assert_eq!(e.message, "m");
            assert!(e.extra.is_empty());
        }
        use AuthErrorCode as A;
        for code in [
            A::AccessDenied,
            A::AuthorizationHeaderMalformed,
            A::AuthorizationQueryParametersError,
            A::InvalidAccessKeyId,
            A::InvalidArgument,
            A::InvalidRequest,
            A::RequestTimeTooSkewed,
            A::SignatureDoesNotMatch,
        ] {
            let e = S3Error::from(
                AuthError::new(code, "m")
                    .with_extra("A", "1")
                    .with_extra("B", "2"),
            );
            assert_eq!(e.code.as_str(), code.as_str());
            assert_eq!(e.status(), code.status(), "{}", code.as_str());
            assert_eq!(e.message, "m");
            assert_eq!(
                e.extra,
                vec![("A", "1".to_string()), ("B", "2".to_string())]
            );
        }
        for code in [
            DigestErrorCode::BadDigest,
            DigestErrorCode::XAmzContentSHA256Mismatch,
        ] {
            let e = S3Error::from(DigestError::new(code, "m"));
            assert_eq!(e.code.as_str(), code.as_str());
            assert_eq!(e.message, "m");
            assert_eq!(e.status(), 400);
        }
    }

    #[test]
    fn disk_full_is_507() {
        let e = std::io::Error::from_raw_os_error(libc::ENOSPC);
        assert_eq!(S3Error::from_write_io("x", &e).status(), 507);
        let e = std::io::Error::new(std::io::ErrorKind::StorageFull, "short write");
        assert_eq!(S3Error::from_write_io("x", &e).status(), 507);
        let e = std::io::Error::other("No space left on device (os error 28), op: Writing");
        assert_eq!(
            S3Error::from_write_io("x", &e).code,
            S3ErrorCode::InsufficientStorage
        );
        let e = std::io::Error::other("/secret/path broke");
        let err = S3Error::from_write_io("writing", &e);
        assert_eq!(err.status(), 500);
        assert!(!err.message.contains("/secret/path"));
    }
}
