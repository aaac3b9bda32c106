//! Storage errors: every way a storage call can fail, typed, with no S3 codes or HTTP statuses in
//! them. The S3 layer maps each variant to its S3 error in one place (`s3::error`).
//!
//! Invariant: an I/O failure carries the operation that failed (`context`) and the original
//! error; a full disk or quota is always [`StorageError::NoSpace`], never a generic I/O error.

use std::fmt;
use std::io;

/// Why a storage call failed.
#[derive(Debug)]
pub(crate) enum StorageError {
    NoSuchBucket {
        bucket: String,
    },
    /// CreateBucket of a bucket that exists (there is one tenant: it is always "yours").
    BucketExists {
        bucket: String,
    },
    BucketNotEmpty {
        bucket: String,
    },
    NoSuchKey {
        key: String,
    },
    NoSuchUpload {
        upload_id: String,
    },
    /// A conditional write's condition does not hold (`"If-None-Match"` or `"If-Match"`).
    ConditionFailed {
        condition: &'static str,
    },
    /// A completion listed no parts.
    NoPartsListed,
    /// A completion listed more parts than an object may have.
    TooManyParts {
        max: usize,
    },
    /// A completion's checksum names another algorithm than the upload's (or the upload has
    /// none).
    ChecksumAlgorithmMismatch {
        upload: Option<String>,
        sent: String,
    },
    /// A completion's checksum differs from the object's computed one.
    ChecksumMismatch {
        algorithm: String,
    },
    /// A completion listed parts out of ascending order.
    PartsOutOfOrder {
        upload_id: String,
    },
    /// A listed part was never uploaded, or its ETag differs.
    PartNotFound {
        upload_id: String,
        part_number: u32,
        etag: String,
    },
    /// A part other than the last is smaller than the minimum part size.
    PartTooSmall {
        size: u64,
        min_bytes: u64,
        part_number: u32,
        etag: String,
    },
    /// An object changed (overwritten or deleted) while it was being opened; a retry sees the
    /// new state.
    ObjectChanged,
    /// The disk or quota is full.
    NoSpace {
        context: &'static str,
    },
    /// Any other I/O failure, with what was being done.
    Io {
        context: &'static str,
        source: io::Error,
    },
    /// The core that owns the bucket is stopping.
    ShuttingDown,
}

pub(crate) type StorageResult<T> = Result<T, StorageError>;

impl StorageError {
    /// An I/O error while writing: a full disk or quota becomes [`StorageError::NoSpace`].
    pub(crate) fn write(context: &'static str, source: io::Error) -> StorageError {
        if is_no_space(&source) {
            StorageError::NoSpace { context }
        } else {
            StorageError::Io { context, source }
        }
    }

    /// Any other I/O error.
    pub(crate) fn io(context: &'static str, source: io::Error) -> StorageError {
        StorageError::Io { context, source }
    }

    /// A glommio error while writing (see [`StorageError::write`]).
    pub(crate) fn glommio_write(
        context: &'static str,
    ) -> impl Fn(glommio::GlommioError<()>) -> StorageError {
        move |e| StorageError::write(context, io::Error::from(e))
    }
}

/// Whether `err` means the filesystem or the quota is full.
fn is_no_space(err: &io::Error) -> bool {
    matches!(err.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
        || matches!(
            err.kind(),
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
        )
        // glommio rebuilds errors from kind + text, dropping the errno.
        || err.to_string().contains("No space left on device")
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageError::Io { context, source } => write!(f, "{context}: {source}"),
            StorageError::NoSpace { context } => write!(f, "{context}: no space left"),
            other => write!(f, "{other:?}"),
        }
    }
}

impl std::error::Error for StorageError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_full_is_no_space() {
        let e = io::Error::from_raw_os_error(libc::ENOSPC);
        assert!(matches!(
            StorageError::write("x", e),
            StorageError::NoSpace { context: "x" }
        ));
        let e = io::Error::new(io::ErrorKind::StorageFull, "short write");
        assert!(matches!(
            StorageError::write("x", e),
            StorageError::NoSpace { .. }
        ));
        let e = io::Error::other("No space left on device (os error 28), op: Writing");
        assert!(matches!(
            StorageError::write("x", e),
            StorageError::NoSpace { .. }
        ));
        let e = io::Error::other("/secret/path broke");
        assert!(matches!(
            StorageError::write("writing", e),
            StorageError::Io { .. }
        ));
    }
}
