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

pub const FORMAT_FILE: &str = "ringstore.format";
pub const FORMAT_LINE: &str = "ringstore 1\n";
pub const BUCKET_META_FILE: &str = "bucket.meta";
pub const UPLOAD_META_FILE: &str = "upload.meta";

/// Whether `id` has the form of an upload id this server generates (so it is safe in a path).
pub fn is_valid_upload_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// Paths under one data directory.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    pub fn new(root: impl Into<PathBuf>) -> Layout {
        Layout { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    pub fn buckets_dir(&self) -> PathBuf {
        self.root.join("buckets")
    }

    pub fn bucket_dir(&self, bucket: &str) -> PathBuf {
        assert!(
            crate::s3::bucket_name::validate_bucket_name(bucket).is_ok(),
            "unvalidated bucket name reached the storage layout"
        );
        self.buckets_dir().join(bucket)
    }

    pub fn bucket_meta(&self, bucket: &str) -> PathBuf {
        self.bucket_dir(bucket).join(BUCKET_META_FILE)
    }

    pub fn objects_dir(&self, bucket: &str) -> PathBuf {
        self.bucket_dir(bucket).join("objects")
    }

    pub fn object_file(&self, bucket: &str, key: &str) -> PathBuf {
        self.objects_dir(bucket).join(object_file_name(key))
    }

    pub fn uploads_dir(&self, bucket: &str) -> PathBuf {
        self.bucket_dir(bucket).join("uploads")
    }

    pub fn upload_dir(&self, bucket: &str, upload_id: &str) -> PathBuf {
        self.uploads_dir(bucket).join(upload_id)
    }

    pub fn upload_meta(&self, bucket: &str, upload_id: &str) -> PathBuf {
        self.upload_dir(bucket, upload_id).join(UPLOAD_META_FILE)
    }

    pub fn part_file(&self, bucket: &str, upload_id: &str, part: u32) -> PathBuf {
        self.upload_dir(bucket, upload_id)
            .join(format!("part-{part}"))
    }

    /// A fresh staging path for core `core`, unique within this process run.
    pub fn staging_file(&self, core: usize, seq: u64) -> PathBuf {
        self.tmp_dir()
            .join(format!("{core}-{seq}-{}.tmp", std::process::id()))
    }
}

/// File name of an object: 32 hex chars of SHA-256(key).
pub fn object_file_name(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    hex::encode(&digest[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

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
