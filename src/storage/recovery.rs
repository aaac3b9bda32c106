//! Startup recovery of the files beside the logs (blocking I/O, before a core serves anything):
//! bucket meta files, each bucket's object files and upload directories.
//!
//! Invariants: a bucket without its `bucket.meta` never existed (its creation or deletion did
//! not finish) and is removed; an object file that no index entry names (a commit cut off before
//! its record was logged, or a replaced version whose removal did not finish) is removed; an
//! upload directory that an index entry names is that object's data (pruned to its listed parts),
//! not an upload in progress.

use crate::storage::catalog::SharedBucket;
use crate::storage::disk::{prune_completed_upload, read_record_blocking, sync_dir};
use crate::storage::index::Body;
use crate::storage::layout::{
    is_path_safe_bucket_name, is_valid_upload_id, parse_part_file_name, Layout, UPLOAD_META_FILE,
};
use crate::storage::uploads::{PartInfo, UploadState};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::path::Path;
use std::rc::Rc;

/// What a core found on disk for the buckets it owns.
#[derive(Debug, Default, Clone, Copy)]
pub struct LoadReport {
    pub buckets: usize,
    pub objects: usize,
    /// Object files no index entry names, removed.
    pub corrupt_files: usize,
    pub removed_partial_buckets: usize,
    pub(crate) uploads: usize,
}

/// A bucket's meta file: creation time and incarnation (0 for buckets of format 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BucketMeta {
    pub(crate) name: String,
    pub(crate) created_ms: u64,
    pub(crate) incarnation: u64,
}

/// Every bucket under `layout`; removes buckets whose creation or deletion did not finish.
pub(crate) fn read_buckets(layout: &Layout, removed: &mut usize) -> io::Result<Vec<BucketMeta>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(layout.buckets_dir())? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !is_path_safe_bucket_name(&name) {
            eprintln!(
                "ringstore: ignoring {}: not a bucket name",
                entry.path().display()
            );
            continue;
        }
        match std::fs::read_to_string(layout.bucket_meta(&name)) {
            Ok(s) => {
                let mut fields = s.split_whitespace().map(|f| f.parse::<u64>().unwrap_or(0));
                let created_ms = fields.next().unwrap_or(0);
                let incarnation = fields.next().unwrap_or(0);
                found.push(BucketMeta {
                    name,
                    created_ms,
                    incarnation,
                });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                std::fs::remove_dir_all(entry.path())?;
                *removed += 1;
            }
            Err(e) => return Err(e),
        }
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

/// Reconciles a bucket's files with its replayed index: completed uploads pruned to their
/// parts, unreferenced object files removed; returns its uploads in progress.
pub(crate) fn load_bucket_files(
    layout: &Layout,
    bucket: &SharedBucket,
    report: &mut LoadReport,
) -> io::Result<HashMap<String, Rc<UploadState>>> {
    let name = &bucket.name;
    let mut files = HashSet::new();
    let mut completed = HashSet::new();
    for e in bucket.objects.iter() {
        if let Body::File {
            name: file,
            upload_id,
        } = &e.value().body
        {
            files.insert(file.clone());
            if let Some(id) = upload_id {
                completed.insert(id.clone());
                match read_record_blocking(&layout.objects_dir(name).join(file)) {
                    Ok(rec) => {
                        let parts = rec.parts.iter().flat_map(|p| &p.parts);
                        let keep: Vec<u32> = parts.map(|r| r.number).collect();
                        prune_completed_upload(&layout.upload_dir(name, id), &keep, true)?;
                    }
                    Err(e) => eprintln!("ringstore: {name}/{file}: {e}; its upload is kept whole"),
                }
            }
        }
    }
    for obj in std::fs::read_dir(layout.objects_dir(name))? {
        let obj = obj?;
        if !files.contains(&*obj.file_name().to_string_lossy()) {
            std::fs::remove_file(obj.path())?;
            report.corrupt_files += 1;
        }
    }
    let referenced: HashSet<&String> = completed.iter().collect();
    let uploads = load_uploads(layout, name, &referenced)?;
    report.uploads += uploads.len();
    report.objects += bucket.objects.len();
    report.buckets += 1;
    Ok(uploads)
}

/// The uploads in progress of bucket `name`; directories that are not valid uploads are removed,
/// and those in `referenced` (completed objects' data) are skipped.
fn load_uploads(
    layout: &Layout,
    name: &str,
    referenced: &HashSet<&String>,
) -> io::Result<HashMap<String, Rc<UploadState>>> {
    let dir = layout.uploads_dir(name);
    if !dir.exists() {
        // A bucket made by a build that created `uploads/` lazily: create it durably now.
        std::fs::create_dir_all(&dir)?;
        sync_dir(&layout.bucket_dir(name))?;
    }
    let mut uploads = HashMap::new();
    for entry in std::fs::read_dir(&dir)? {
        let entry = entry?;
        let id = entry.file_name().to_string_lossy().into_owned();
        if referenced.contains(&id) {
            continue;
        }
        let meta = is_valid_upload_id(&id)
            .then(|| read_record_blocking(&layout.upload_meta(name, &id)))
            .and_then(Result::ok);
        let Some(meta) = meta else {
            std::fs::remove_dir_all(entry.path())?;
            continue;
        };
        let u = UploadState::new(meta);
        *u.parts.borrow_mut() = load_parts(&entry.path())?;
        uploads.insert(id, Rc::new(u));
    }
    Ok(uploads)
}

/// The committed parts in an upload directory; unreadable parts and stray files are removed.
fn load_parts(upload_dir: &Path) -> io::Result<BTreeMap<u32, PartInfo>> {
    let mut parts = BTreeMap::new();
    for p in std::fs::read_dir(upload_dir)? {
        let p = p?;
        let fname = p.file_name().to_string_lossy().into_owned();
        let Some(n) = parse_part_file_name(&fname) else {
            if fname != UPLOAD_META_FILE {
                std::fs::remove_file(p.path())?;
            }
            continue;
        };
        match read_record_blocking(&p.path()) {
            Ok(rec) => {
                parts.insert(
                    n,
                    PartInfo {
                        size: rec.size,
                        md5: rec.md5,
                        checksum: rec.checksum,
                        last_modified_ms: rec.last_modified_ms,
                    },
                );
            }
            Err(_) => std::fs::remove_file(p.path())?,
        }
    }
    Ok(parts)
}
