//! The bench's own server: `ringstore serve` started in this process on 127.0.0.1 with a fresh
//! data directory, stopped (and its directory removed) when the bench is done.
//!
//! Invariants: it only ever listens on loopback; its data directory is a new `run-*` directory
//! under `--data` that nothing else uses, on a filesystem that honours O_DIRECT (tmpfs and ramfs
//! are refused, because they silently turn direct I/O into page-cache copies).

use crate::auth::Credentials;
use crate::runtime::{self, FsyncPolicy, ServerConfig, Started, MAX_CONNECTIONS_DEFAULT};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

/// Filesystems on which the bench refuses to run its server.
const MEMORY_FILESYSTEMS: &[&str] = &["tmpfs", "ramfs"];
/// Connections the server accepts beyond the bench's own `--concurrency` ones.
const SPARE_CONNECTIONS: usize = 64;

/// A running in-process server and the directory it owns.
pub(crate) struct InProcess {
    started: Option<Started>,
    pub(crate) address: SocketAddr,
    pub(crate) cores: usize,
    pub(crate) run_dir: PathBuf,
    parent: PathBuf,
    created_parent: bool,
}

impl InProcess {
    /// Starts a server with `cores` executors and a new data directory under `parent`.
    pub(crate) fn start(
        parent: &Path,
        cores: Option<usize>,
        creds: &Credentials,
        fsync: FsyncPolicy,
        connections: usize,
    ) -> Result<InProcess, String> {
        let created_parent = !parent.exists();
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("--data {}: cannot create: {e}", parent.display()))?;
        let parent = parent
            .canonicalize()
            .map_err(|e| format!("--data {}: {e}", parent.display()))?;
        if let Some(fs) = filesystem_of(&parent) {
            if MEMORY_FILESYSTEMS.contains(&fs.as_str()) {
                if created_parent {
                    let _ = std::fs::remove_dir(&parent);
                }
                return Err(format!(
                    "--data {} is on {fs}, which ignores O_DIRECT and would measure the page cache; \
                     choose a directory on a disk filesystem",
                    parent.display()
                ));
            }
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let run_dir = parent.join(format!("run-{}-{:x}", std::process::id(), nanos));
        let cores = cores.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        });
        let config = ServerConfig {
            address: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            data_dir: run_dir.clone(),
            cores,
            credentials: creds.clone(),
            fsync,
            max_connections: MAX_CONNECTIONS_DEFAULT.max(connections + SPARE_CONNECTIONS),
            domain: None,
            region: runtime::REGION_DEFAULT.to_string(),
            cpus: runtime::cpus::allowed_cpus().unwrap_or_default(),
            spin_before_park: std::time::Duration::from_micros(
                runtime::SPIN_BEFORE_PARK_DEFAULT_US,
            ),
            log_segment_size_bytes: runtime::LOG_SEGMENT_SIZE_DEFAULT_BYTES,
            checkpoint_interval_bytes: runtime::CHECKPOINT_INTERVAL_DEFAULT_BYTES,
            cache_size_bytes: runtime::CACHE_SIZE_DEFAULT_BYTES,
            upload_memory_bytes: runtime::UPLOAD_MEMORY_DEFAULT_BYTES,
            tls: None,
            obs: Default::default(),
        };
        let started = match runtime::start(config) {
            Ok(s) => s,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&run_dir);
                if created_parent {
                    let _ = std::fs::remove_dir(&parent);
                }
                return Err(format!("starting the in-process server: {e}"));
            }
        };
        Ok(InProcess {
            address: started.address,
            started: Some(started),
            cores,
            run_dir,
            parent,
            created_parent,
        })
    }

    /// Stops the server (waiting for in-flight requests) and, unless `keep`, removes its data.
    pub(crate) fn stop(mut self, keep: bool) -> Result<(), String> {
        if let Some(s) = self.started.take() {
            crate::http::shutdown::request_shutdown();
            s.join();
        }
        if keep {
            return Ok(());
        }
        remove_tree(&self.run_dir)
            .map_err(|e| format!("removing {}: {e}", self.run_dir.display()))?;
        if self.created_parent {
            // Only if empty: another run may be using it.
            let _ = std::fs::remove_dir(&self.parent);
        }
        Ok(())
    }
}

/// Files unlinked in parallel when removing a data directory.
const REMOVE_THREADS: usize = 16;

/// Removes `dir` and everything in it, unlinking files from several threads: on filesystems
/// mounted with `discard` one unlink at a time can take milliseconds, in parallel they overlap.
fn remove_tree(dir: &Path) -> std::io::Result<()> {
    let mut files = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                dirs.push(entry.path());
            } else {
                files.push(entry.path());
            }
        }
    }
    let chunk = files.len().div_ceil(REMOVE_THREADS).max(1);
    std::thread::scope(|s| {
        for part in files.chunks(chunk) {
            s.spawn(move || {
                for f in part {
                    let _ = std::fs::remove_file(f);
                }
            });
        }
    });
    // Whatever is left (directories, or a file that failed above) goes the ordinary way,
    // which also reports any error.
    std::fs::remove_dir_all(dir)
}

/// The filesystem type of the mount holding `path` (canonical), from /proc/self/mounts.
fn filesystem_of(path: &Path) -> Option<String> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    filesystem_in(&mounts, path)
}

/// The type of the longest mount point in `mounts` (the /proc/mounts format) containing `path`.
fn filesystem_in(mounts: &str, path: &Path) -> Option<String> {
    let mut best: Option<(usize, String)> = None;
    for line in mounts.lines() {
        let mut fields = line.split_whitespace();
        let (Some(_dev), Some(mount_point), Some(fstype)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let mount_point = unescape_mount(mount_point);
        let mp = Path::new(&mount_point);
        if path.starts_with(mp) {
            let depth = mp.components().count();
            // Later lines win at equal depth: they are mounted on top.
            if best.as_ref().is_none_or(|(d, _)| depth >= *d) {
                best = Some((depth, fstype.to_string()));
            }
        }
    }
    best.map(|(_, t)| t)
}

/// Decodes the octal escapes (`\040` for a space) /proc/mounts uses in paths.
fn unescape_mount(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTS: &str = "\
/dev/vda / ext4 rw,relatime 0 0
proc /proc proc rw,nosuid 0 0
tmpfs /tmp tmpfs rw,nosuid 0 0
/dev/vdb /tmp/disk xfs rw 0 0
tmpfs /work/with\\040space tmpfs rw 0 0
/dev/vdc /mnt ext4 rw 0 0
tmpfs /mnt tmpfs rw 0 0
";

    #[test]
    fn filesystem_lookup() {
        let fs = |p: &str| filesystem_in(MOUNTS, Path::new(p));
        assert_eq!(fs("/work/main/bench-data").as_deref(), Some("ext4"));
        assert_eq!(fs("/tmp/x").as_deref(), Some("tmpfs"));
        assert_eq!(fs("/tmp").as_deref(), Some("tmpfs"));
        assert_eq!(fs("/tmp/disk/a").as_deref(), Some("xfs"));
        assert_eq!(fs("/tmp/diskette").as_deref(), Some("tmpfs"));
        assert_eq!(fs("/work/with space/d").as_deref(), Some("tmpfs"));
        assert_eq!(
            fs("/mnt/d").as_deref(),
            Some("tmpfs"),
            "the later mount is on top"
        );
        assert_eq!(filesystem_in("", Path::new("/x")), None);
    }

    #[test]
    fn remove_tree_removes_everything() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("run");
        for d in ["a", "a/b", "c"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        for i in 0..50 {
            let d = ["a", "a/b", "c", ""][i % 4];
            std::fs::write(root.join(d).join(format!("f{i}")), b"x").unwrap();
        }
        remove_tree(&root).unwrap();
        assert!(!root.exists());
        assert!(
            remove_tree(&root).is_err(),
            "a missing directory is an error"
        );
    }

    #[test]
    fn mount_escapes() {
        assert_eq!(unescape_mount("/a\\040b\\011c"), "/a b\tc");
        assert_eq!(unescape_mount("/plain"), "/plain");
        assert_eq!(unescape_mount("/trailing\\04"), "/trailing\\04");
    }
}
