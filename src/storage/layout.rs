//! Data directory layout: every path ringstore writes is derived here, and only here.
//!
//! ```text
//! DATA/ringstore.format          format marker ("ringstore 1")
//! DATA/tmp/                      staging files, removed at startup
//! DATA/buckets/NAME/bucket.meta  bucket record (creation time); its presence makes the bucket exist
//! DATA/buckets/NAME/objects/H    one file per object, H = hex of the first 16 bytes of SHA-256(key)
//! DATA/buckets/NAME/uploads/U/   one multipart upload: `upload.meta` (while in progress) and
//!                                `part-N` files; after completion the object's record points here
//! ```
//! Invariants: object file names never contain client text (no traversal, no length limits, no
//! `a` vs `a/b` clash); bucket names are validated S3 names before they reach a path.

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

pub(crate) const FORMAT_FILE: &str = "ringstore.format";
pub(crate) const FORMAT_LINE: &str = "ringstore 2\n";
/// The marker of the first format (one file per object), migrated at startup.
pub(crate) const FORMAT_LINE_V1: &str = "ringstore 1\n";
pub(crate) const BUCKET_META_FILE: &str = "bucket.meta";
pub(crate) const UPLOAD_META_FILE: &str = "upload.meta";
const PART_FILE_PREFIX: &str = "part-";
/// The staging directory under the data directory.
const TMP_DIR_NAME: &str = "tmp";

/// Whether `id` has the form of an upload id this server generates (so it is safe in a path).
pub(crate) fn is_valid_upload_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// Bucket name length limits (S3's, and what keeps a bucket directory name short).
pub(crate) const BUCKET_NAME_MIN_BYTES: usize = 3;
pub(crate) const BUCKET_NAME_MAX_BYTES: usize = 63;

/// Whether `name` is safe as a bucket directory name: 3..=63 bytes of lowercase letters, digits,
/// `.` and `-`, starting with a letter or digit (so never `.`, `..` or anything with `/`).
/// Every valid S3 bucket name passes; the S3 layer applies its stricter rules before this.
pub(crate) fn is_path_safe_bucket_name(name: &str) -> bool {
    let b = name.as_bytes();
    (BUCKET_NAME_MIN_BYTES..=BUCKET_NAME_MAX_BYTES).contains(&b.len())
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'.' || *c == b'-')
}

/// Paths under one data directory.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    root: PathBuf,
}

impl Layout {
    /// The data directory itself.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn new(root: impl Into<PathBuf>) -> Layout {
        Layout { root: root.into() }
    }

    pub(crate) fn format_marker(&self) -> PathBuf {
        self.root.join(FORMAT_FILE)
    }

    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.root.join(TMP_DIR_NAME)
    }

    /// The log segments of every core.
    pub(crate) fn log_dir(&self) -> PathBuf {
        self.root.join("log")
    }

    pub(crate) fn buckets_dir(&self) -> PathBuf {
        self.root.join("buckets")
    }

    pub(crate) fn bucket_dir(&self, bucket: &str) -> PathBuf {
        assert!(
            is_path_safe_bucket_name(bucket),
            "unvalidated bucket name reached the storage layout"
        );
        self.buckets_dir().join(bucket)
    }

    pub(crate) fn bucket_meta(&self, bucket: &str) -> PathBuf {
        self.bucket_dir(bucket).join(BUCKET_META_FILE)
    }

    pub(crate) fn objects_dir(&self, bucket: &str) -> PathBuf {
        self.bucket_dir(bucket).join("objects")
    }

    pub(crate) fn uploads_dir(&self, bucket: &str) -> PathBuf {
        self.bucket_dir(bucket).join("uploads")
    }

    pub(crate) fn upload_dir(&self, bucket: &str, upload_id: &str) -> PathBuf {
        self.uploads_dir(bucket).join(upload_id)
    }

    pub(crate) fn upload_meta(&self, bucket: &str, upload_id: &str) -> PathBuf {
        self.upload_dir(bucket, upload_id).join(UPLOAD_META_FILE)
    }

    pub(crate) fn part_file(&self, bucket: &str, upload_id: &str, part: u32) -> PathBuf {
        part_path(&self.upload_dir(bucket, upload_id), part)
    }

    /// Whether `path` is a file directly in the staging directory (checked without allocating:
    /// it runs on every commit).
    pub(crate) fn is_staging_file(&self, path: &Path) -> bool {
        path.parent().is_some_and(|dir| {
            dir.file_name().is_some_and(|n| n == TMP_DIR_NAME) && dir.parent() == Some(&self.root)
        })
    }

    /// A fresh staging path for core `core`, unique within this process run.
    pub(crate) fn staging_file(&self, core: usize, seq: u64) -> PathBuf {
        self.tmp_dir()
            .join(format!("{core}-{seq}-{}.tmp", std::process::id()))
    }
}

/// Where a metadata file (`bucket.meta`, `upload.meta`) is written before its atomic rename.
pub(crate) fn tmp_sibling(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Part `n` of the upload whose directory is `upload_dir`.
pub(crate) fn part_path(upload_dir: &Path, n: u32) -> PathBuf {
    upload_dir.join(format!("{PART_FILE_PREFIX}{n}"))
}

/// The part number of a part file name (`part-N`), if it is one.
pub(crate) fn parse_part_file_name(name: &str) -> Option<u32> {
    name.strip_prefix(PART_FILE_PREFIX)?.parse().ok()
}

/// File name of an object: 32 hex chars of SHA-256(key).
pub(crate) fn object_file_name(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    hex::encode(&digest[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_safe_bucket_names() {
        for ok in ["abc", "my-bucket", "a.b-c", "0aa", &"a".repeat(63)] {
            assert!(is_path_safe_bucket_name(ok), "{ok}");
        }
        for bad in [
            "",
            "ab",
            ".",
            "..",
            "...",
            ".ab",
            "-ab",
            "a/b",
            "ABC",
            "a b",
            &"a".repeat(64),
        ] {
            assert!(!is_path_safe_bucket_name(bad), "{bad}");
        }
    }

    #[test]
    fn staging_files_are_recognised() {
        let l = Layout::new("/d");
        assert!(l.is_staging_file(&l.staging_file(0, 1)));
        assert!(!l.is_staging_file(Path::new("/d/buckets/b/objects/x")));
        assert!(!l.is_staging_file(Path::new("/e/tmp/x")));
        assert!(!l.is_staging_file(Path::new("/d/tmp")));
    }

    #[test]
    fn part_and_tmp_names() {
        let dir = Path::new("/d/uploads/u");
        assert_eq!(part_path(dir, 7), Path::new("/d/uploads/u/part-7"));
        assert_eq!(parse_part_file_name("part-7"), Some(7));
        assert_eq!(parse_part_file_name("part-x"), None);
        assert_eq!(parse_part_file_name(UPLOAD_META_FILE), None);
        let meta = Path::new("/d/b/bucket.meta");
        assert_eq!(tmp_sibling(meta), Path::new("/d/b/bucket.meta.tmp"));
    }

    #[test]
    fn names_are_hashes() {
        let a = object_file_name("a");
        let ab = object_file_name("a/b");
        assert_eq!(a.len(), 32);
        assert_ne!(a, ab);
        assert!(object_file_name("../../etc/passwd")
            .chars()
            .all(|c| c.is_ascii_hexdigit()));
    }
}
