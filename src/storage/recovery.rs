//! Startup recovery of one core's buckets (blocking I/O, before the core serves anything): each
//! bucket's index rebuilt from its object files' headers, completions interrupted before their
//! cleanup finished, uploads in progress reloaded, leftovers removed.
//!
//! Invariants: a bucket without its `bucket.meta` never existed (its creation or deletion did
//! not finish) and is removed; an object file whose record is corrupt, or whose name is not the
//! hash of the key inside it, is ignored and counted, never served; an upload directory that an
//! object record refers to is that object's data, not an upload in progress.

use crate::storage::disk::{prune_completed_upload, read_record_blocking, sync_dir};
use crate::storage::index::BucketIndex;
use crate::storage::layout::{
    is_path_safe_bucket_name, is_valid_upload_id, object_file_name, parse_part_file_name, Layout,
    UPLOAD_META_FILE,
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
    pub corrupt_files: usize,
    pub removed_partial_buckets: usize,
    pub(crate) uploads: usize,
}

/// One bucket as found on disk.
pub(crate) struct LoadedBucket {
    pub(crate) name: String,
    pub(crate) created_ms: u64,
    pub(crate) index: BucketIndex,
    /// Keys whose object is multipart -> the upload directory holding its parts.
    pub(crate) multipart_data: HashMap<String, String>,
    /// Uploads in progress, by id.
    pub(crate) uploads: HashMap<String, Rc<UploadState>>,
}

/// The names of the buckets under `layout` for which `is_mine` holds; removes buckets whose
/// creation or deletion did not finish.
pub(crate) fn my_buckets(
    layout: &Layout,
    is_mine: impl Fn(&str) -> bool,
    report: &mut LoadReport,
) -> io::Result<Vec<(String, u64)>> {
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
        if !is_mine(&name) {
            continue;
        }
        match std::fs::read_to_string(layout.bucket_meta(&name)) {
            Ok(s) => found.push((name, s.trim().parse::<u64>().unwrap_or(0))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                std::fs::remove_dir_all(entry.path())?;
                report.removed_partial_buckets += 1;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(found)
}

/// Loads one bucket: its objects, then its uploads.
pub(crate) fn load_bucket(
    layout: &Layout,
    name: String,
    created_ms: u64,
    report: &mut LoadReport,
) -> io::Result<LoadedBucket> {
    let (index, multipart_data) = load_objects(layout, &name, report)?;
    let referenced: HashSet<&String> = multipart_data.values().collect();
    let uploads = load_uploads(layout, &name, &referenced)?;
    report.uploads += uploads.len();
    report.objects += index.len();
    report.buckets += 1;
    Ok(LoadedBucket {
        name,
        created_ms,
        index,
        multipart_data,
        uploads,
    })
}

/// The bucket's index from its object files; finishes completions interrupted before their
/// cleanup (prunes the upload directory to the listed parts).
fn load_objects(
    layout: &Layout,
    name: &str,
    report: &mut LoadReport,
) -> io::Result<(BucketIndex, HashMap<String, String>)> {
    let mut index = BucketIndex::new();
    let mut multipart = HashMap::new();
    for obj in std::fs::read_dir(layout.objects_dir(name))? {
        let obj = obj?;
        let rec = match read_record_blocking(&obj.path()) {
            Ok(rec) if object_file_name(&rec.key) == obj.file_name().to_string_lossy() => rec,
            _ => {
                eprintln!(
                    "ringstore: ignoring corrupt object file {}",
                    obj.path().display()
                );
                report.corrupt_files += 1;
                continue;
            }
        };
        if let Some(p) = &rec.parts {
            let keep: Vec<u32> = p.parts.iter().map(|r| r.number).collect();
            prune_completed_upload(&layout.upload_dir(name, &p.upload_id), &keep)?;
            multipart.insert(rec.key.clone(), p.upload_id.clone());
        }
        index.insert(rec.key.clone(), rec.summary());
    }
    Ok((index, multipart))
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
