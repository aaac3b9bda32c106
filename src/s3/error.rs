//! S3 errors: one type for every failure a request can end in, rendered as S3's XML.
//!
//! Invariant: every error the server sends goes through [`S3Error`], so each carries an S3 `Code`,
//! a human `Message`, the right HTTP status and (when known) the `Resource`.

use crate::auth::{AuthError, AuthErrorCode};
use crate::digest::{DigestError, DigestErrorCode};
use crate::http::error::{HttpError, HttpErrorCode};
use crate::storage::StorageError;
use std::fmt;

/// Declares [`S3ErrorCode`] with its `Code` text (the variant's name) and the list of all codes.
macro_rules! s3_error_codes {
    ($($code:ident),* $(,)?) => {
        /// The S3 error codes ringstore produces. Names are S3's own.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum S3ErrorCode {
            $($code),*
        }

        impl S3ErrorCode {
            /// Every code, in declaration order (`ALL[c as usize] == c`).
            pub(crate) const ALL: &'static [S3ErrorCode] = &[$(S3ErrorCode::$code),*];

            /// The `Code` element text.
            pub(crate) fn as_str(self) -> &'static str {
                match self {
                    $(S3ErrorCode::$code => stringify!($code)),*
                }
            }
        }
    };
}

s3_error_codes!(
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
    IllegalLocationConstraintException,
    InvalidLocationConstraint,
    InvalidPart,
    InvalidPartNumber,
    InvalidPartOrder,
    InvalidRange,
    InvalidRequest,
    InvalidStorageClass,
    KeyTooLongError,
    MalformedPOSTRequest,
    MalformedXML,
    MaxPostPreDataLengthExceeded,
    InvalidPolicyDocument,
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
);

impl S3ErrorCode {
    /// The HTTP status S3 answers this code with.
    pub(crate) fn status(self) -> u16 {
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
    pub(crate) resource: String,
    /// Extra elements S3 adds for some codes (e.g. `BucketName`, `Key`), in order.
    pub(crate) extra: Vec<(&'static str, String)>,
}

impl S3Error {
    pub(crate) fn new(code: S3ErrorCode, message: impl Into<String>) -> S3Error {
        S3Error {
            code,
            message: message.into(),
            resource: String::new(),
            extra: Vec::new(),
        }
    }

    pub(crate) fn with_extra(mut self, name: &'static str, value: impl Into<String>) -> S3Error {
        self.extra.push((name, value.into()));
        self
    }

    pub(crate) fn status(&self) -> u16 {
        self.code.status()
    }

    /// Internal error: the detail (which may name server paths) goes to the log, the client gets
    /// the operation that failed.
    pub(crate) fn internal(context: &str, err: impl fmt::Display) -> S3Error {
        eprintln!("ringstore: internal error: {context}: {err}");
        S3Error::new(
            S3ErrorCode::InternalError,
            format!("We encountered an internal error ({context}). Please try again."),
        )
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

/// The one place where storage failures become S3 errors.
impl From<StorageError> for S3Error {
    fn from(e: StorageError) -> S3Error {
        match e {
            StorageError::NoSuchBucket { bucket } => {
                s3err!(NoSuchBucket, "The specified bucket does not exist.")
                    .with_extra("BucketName", bucket)
            }
            StorageError::BucketExists { bucket } => s3err!(
                BucketAlreadyOwnedByYou,
                "Your previous request to create the named bucket succeeded and you already own it."
            )
            .with_extra("BucketName", bucket),
            StorageError::BucketNotEmpty { bucket } => s3err!(
                BucketNotEmpty,
                "The bucket you tried to delete is not empty."
            )
            .with_extra("BucketName", bucket),
            StorageError::NoSuchKey { key } => {
                s3err!(NoSuchKey, "The specified key does not exist.").with_extra("Key", key)
            }
            StorageError::ConditionFailed { condition } => s3err!(
                PreconditionFailed,
                "At least one of the pre-conditions you specified did not hold"
            )
            .with_extra("Condition", condition),
            StorageError::ObjectChanged => s3err!(
                ServiceUnavailable,
                "The object changed while it was being opened; please retry."
            ),
            StorageError::NoSpace { context } => s3err!(
                InsufficientStorage,
                "Not enough storage space to complete the request ({context})."
            ),
            StorageError::Io { context, source } => S3Error::internal(context, source),
            StorageError::ShuttingDown => {
                s3err!(ServiceUnavailable, "The server is shutting down.")
            }
            multipart => multipart_error(multipart),
        }
    }
}

/// The multipart-upload half of `From<StorageError>`.
fn multipart_error(e: StorageError) -> S3Error {
    match e {
        StorageError::NoSuchUpload { upload_id } => s3err!(
            NoSuchUpload,
            "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed."
        )
        .with_extra("UploadId", upload_id),
        StorageError::NoPartsListed => s3err!(MalformedXML, "You must specify at least one part."),
        StorageError::TooManyParts { max } => {
            s3err!(InvalidArgument, "An upload may have at most {max} parts.")
        }
        StorageError::ChecksumAlgorithmMismatch { upload, sent } => s3err!(
            InvalidRequest,
            "Checksum Type mismatch occurred, expected checksum Type: {}, actual checksum Type: {sent}",
            upload.as_deref().unwrap_or("null")
        ),
        StorageError::ChecksumMismatch { algorithm } => s3err!(
            BadDigest,
            "The {} you specified did not match the calculated checksum.",
            algorithm.to_ascii_uppercase()
        ),
        StorageError::PartsOutOfOrder { upload_id } => s3err!(
            InvalidPartOrder,
            "The list of parts was not in ascending order. Parts must be ordered by part number."
        )
        .with_extra("UploadId", upload_id),
        StorageError::PartNotFound {
            upload_id,
            part_number,
            etag,
        } => s3err!(
            InvalidPart,
            "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag."
        )
        .with_extra("UploadId", upload_id)
        .with_extra("PartNumber", part_number.to_string())
        .with_extra("ETag", etag),
        StorageError::PartTooSmall {
            size,
            min_bytes,
            part_number,
            etag,
        } => s3err!(
            EntityTooSmall,
            "Your proposed upload is smaller than the minimum allowed size"
        )
        .with_extra("ProposedSize", size.to_string())
        .with_extra("MinSizeAllowed", min_bytes.to_string())
        .with_extra("PartNumber", part_number.to_string())
        .with_extra("ETag", etag),
        other => unreachable!("not a multipart error: {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_codes_are_listed_in_order() {
        for (i, code) in S3ErrorCode::ALL.iter().enumerate() {
            assert_eq!(*code as usize, i);
        }
        assert_eq!(S3ErrorCode::ALL[0].as_str(), "AccessDenied");
        assert_eq!(S3ErrorCode::NoSuchKey.as_str(), "NoSuchKey");
    }

    #[test]
    fn storage_errors_map_to_s3_codes() {
        use std::io;
        let e = S3Error::from(StorageError::NoSpace { context: "x" });
        assert_eq!(e.status(), 507);
        assert_eq!(e.code, S3ErrorCode::InsufficientStorage);
        let e = S3Error::from(StorageError::io(
            "writing",
            io::Error::other("/secret/path"),
        ));
        assert_eq!(e.status(), 500);
        assert!(!e.message.contains("/secret/path"));
        let e = S3Error::from(StorageError::NoSuchBucket { bucket: "b".into() });
        assert_eq!(
            (e.status(), e.extra.clone()),
            (404, vec![("BucketName", "b".into())])
        );
        let e = S3Error::from(StorageError::ConditionFailed {
            condition: "If-Match",
        });
        assert_eq!(e.code, S3ErrorCode::PreconditionFailed);
        assert_eq!(e.extra, vec![("Condition", "If-Match".to_string())]);
        assert_eq!(S3Error::from(StorageError::ObjectChanged).status(), 503);
    }

    #[test]
    fn lower_layer_errors_keep_code_message_status_and_extra() {
        use HttpErrorCode as H;
        for (code, status) in [
            (H::BadRequest, 400),
            (H::IncompleteBody, 400),
            (H::InvalidArgument, 400),
            (H::InvalidRequest, 400),
            (H::NotImplemented, 501),
            (H::RequestHeaderSectionTooLarge, 400),
            (H::RequestTimeout, 400),
            (H::SlowDown, 503),
        ] {
            let e = S3Error::from(HttpError::new(code, "m"));
            assert_eq!(e.code.as_str(), code.as_str());
            assert_eq!(e.status(), status, "{}", code.as_str());
            assert_eq!(e.message, "m");
            assert!(e.extra.is_empty());
        }
        use AuthErrorCode as A;
        for (code, status) in [
            (A::AccessDenied, 403),
            (A::AuthorizationHeaderMalformed, 400),
            (A::AuthorizationQueryParametersError, 400),
            (A::InvalidAccessKeyId, 403),
            (A::InvalidArgument, 400),
            (A::InvalidRequest, 400),
            (A::RequestTimeTooSkewed, 403),
            (A::SignatureDoesNotMatch, 403),
        ] {
            let e = S3Error::from(
                AuthError::new(code, "m")
                    .with_extra("A", "1")
                    .with_extra("B", "2"),
            );
            assert_eq!(e.code.as_str(), code.as_str());
            assert_eq!(e.status(), status, "{}", code.as_str());
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
}
