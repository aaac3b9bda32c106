//! Per-core append-only logs: preallocated segment files of checksummed records, written by
//! group commit (one write makes every record waiting on a core durable).
//!
//! Layout and checksums are in [`format`]; the startup scan in [`scan`]; segment files
//! (creation, reuse, listing) in [`segment`]; the group-commit writer in [`appender`]; reading
//! one record back in [`reader`]; the process-wide segment table (dead bytes, readers, free
//! segments) in [`table`]. The log knows records only as `(seq, kind, payload)`: what a
//! payload means belongs to the engine above it.
//!
//! Invariants: a record is acknowledged only after the write holding it completed on a file
//! opened `O_DSYNC` (with `--fsync always`); a batch never shares a sector with an earlier batch,
//! so a sector holding acknowledged records is never written again in its generation; segment
//! ids come from a process-wide counter, never from core numbers, so any number of cores reads
//! a directory written by any other number.

pub(crate) mod appender;
pub(crate) mod format;
pub(crate) mod reader;
pub(crate) mod scan;
pub(crate) mod segment;
pub(crate) mod table;

use std::fmt;
use std::path::{Path, PathBuf};

/// Where a record lives: enough to read it back without any other lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct RecordLocation {
    pub(crate) segment: u64,
    /// File offset of the record header.
    pub(crate) offset: u64,
    /// Record length, header included.
    pub(crate) len: u32,
}

/// A log failure: I/O, or a segment whose contents cannot be trusted.
#[derive(Debug)]
pub(crate) enum LogError {
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Damage that is not a torn tail: the server must not start over it.
    Corrupt {
        path: PathBuf,
        offset: u64,
        what: &'static str,
    },
}

impl LogError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> LogError {
        LogError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn corrupt(path: &Path, offset: u64, what: &'static str) -> LogError {
        LogError::Corrupt {
            path: path.to_path_buf(),
            offset,
            what,
        }
    }
}

impl fmt::Display for LogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            LogError::Corrupt { path, offset, what } => write!(
                f,
                "log segment {} is corrupt at offset {offset}: {what}; refusing to start \
                 (restore the data directory from a backup, or move the segment away to \
                 accept losing its records)",
                path.display()
            ),
        }
    }
}

impl std::error::Error for LogError {}

impl From<LogError> for std::io::Error {
    fn from(e: LogError) -> std::io::Error {
        match e {
            LogError::Io { source, .. } => source,
            corrupt => std::io::Error::new(std::io::ErrorKind::InvalidData, corrupt.to_string()),
        }
    }
}

#[cfg(test)]
mod tests;
