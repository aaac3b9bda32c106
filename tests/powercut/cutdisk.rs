//! A disk that can lose power: a FUSE filesystem serving one file, the disk image, for a loop
//! device to sit on.
//!
//! Writes to the image go to an in-memory overlay (4 KiB blocks); reads see the image file on the
//! real disk with the overlay on top. An fsync (or flush) of the image applies the overlay to the
//! real file and fsyncs it (after [`FLUSH_LATENCY`]): that is the moment data becomes durable,
//! as on a disk with a volatile write cache when the kernel sends REQ_OP_FLUSH. [`CutDisk::cut`] discards the overlay and
//! from then on drops every write silently, so nothing the kernel writes back later (dirty pages,
//! journal commits, the superblock at unmount) reaches the image: the image holds exactly what
//! had been flushed before the cut.

use fuser::{
    BackgroundSession, Config, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags,
    INodeNo, LockOwner, MountOption, OpenFlags, ReplyAttr, ReplyData, ReplyEmpty, ReplyEntry,
    ReplyOpen, ReplyWrite, Request, WriteFlags,
};
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, UNIX_EPOCH};

/// The one file in the FUSE filesystem.
pub const IMAGE_NAME: &str = "disk.img";
/// Granularity of the overlay.
const BLOCK_BYTES: u64 = 4096;
const IMAGE_INO: INodeNo = INodeNo(2);
/// What an fsync of the image costs before the overlay is applied, like the cache flush of a
/// real disk: writes (and the cut) go on meanwhile, so cuts find unflushed writes more often.
const FLUSH_LATENCY: Duration = Duration::from_millis(2);
/// Threads serving FUSE requests (writes proceed while an fsync waits out its latency).
const FUSE_THREADS: usize = 4;
/// How long the kernel may cache names and attributes (they never change).
const ATTR_TTL: Duration = Duration::from_secs(3600);

/// What the FUSE handlers have seen, for the test's report and its self-checks.
#[derive(Default, Debug)]
pub struct Counters {
    /// FUSE_FSYNC requests on the image (the loop device's REQ_OP_FLUSH ends here).
    pub fsyncs: AtomicU64,
    /// FUSE_FLUSH requests (close of a descriptor of the image).
    pub flushes: AtomicU64,
    /// Writes taken into the overlay.
    pub writes: AtomicU64,
    /// Writes dropped because they came after the cut.
    pub dropped_writes: AtomicU64,
    /// Overlay blocks written to the image file by fsyncs.
    pub blocks_applied: AtomicU64,
}

struct Overlay {
    /// Block number -> the block's bytes as last written (not yet durable).
    blocks: BTreeMap<u64, Box<[u8]>>,
    /// After the cut: every write is dropped.
    dead: bool,
}

/// The image file on the real disk and the volatile overlay on top of it.
struct Disk {
    image: File,
    size: u64,
    overlay: Mutex<Overlay>,
    counters: Counters,
}

impl Disk {
    fn lock(&self) -> MutexGuard<'_, Overlay> {
        // A panicking handler must not wedge the filesystem the cleanup needs.
        self.overlay.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn read(&self, offset: u64, len: u64) -> io::Result<Vec<u8>> {
        let end = (offset.saturating_add(len)).min(self.size);
        if offset >= end {
            return Ok(Vec::new());
        }
        let mut buf = vec![0u8; (end - offset) as usize];
        // Held across the file read, so an fsync applying the overlay cannot slip in between.
        let overlay = self.lock();
        self.image.read_exact_at(&mut buf, offset)?;
        let first = offset / BLOCK_BYTES;
        let last = (end - 1) / BLOCK_BYTES;
        for (&b, data) in overlay.blocks.range(first..=last) {
            let block_start = b * BLOCK_BYTES;
            let from = offset.max(block_start);
            let to = end.min(block_start + BLOCK_BYTES);
            buf[(from - offset) as usize..(to - offset) as usize]
                .copy_from_slice(&data[(from - block_start) as usize..(to - block_start) as usize]);
        }
        Ok(buf)
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let end = offset + data.len() as u64;
        if end > self.size {
            return Err(io::Error::from_raw_os_error(libc::EFBIG));
        }
        let mut overlay = self.lock();
        if overlay.dead {
            self.counters.dropped_writes.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        self.counters.writes.fetch_add(1, Ordering::Relaxed);
        let mut pos = offset;
        while pos < end {
            let b = pos / BLOCK_BYTES;
            let block_start = b * BLOCK_BYTES;
            let to = end.min(block_start + BLOCK_BYTES);
            let whole = pos == block_start && to == block_start + BLOCK_BYTES;
            let block = match overlay.blocks.entry(b) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => {
                    let mut block = vec![0u8; BLOCK_BYTES as usize].into_boxed_slice();
                    if !whole {
                        self.image.read_exact_at(&mut block, block_start)?;
                    }
                    e.insert(block)
                }
            };
            block[(pos - block_start) as usize..(to - block_start) as usize]
                .copy_from_slice(&data[(pos - offset) as usize..(to - offset) as usize]);
            pos = to;
        }
        Ok(())
    }

    /// Makes the overlay durable: write it to the image file, fsync that.
    fn apply(&self) -> io::Result<()> {
        let mut overlay = self.lock();
        if overlay.dead {
            return Ok(());
        }
        let n = overlay.blocks.len() as u64;
        for (&b, data) in &overlay.blocks {
            self.image.write_all_at(data, b * BLOCK_BYTES)?;
        }
        self.image.sync_data()?;
        overlay.blocks.clear();
        self.counters.blocks_applied.fetch_add(n, Ordering::Relaxed);
        Ok(())
    }
}

fn errno_of(e: &io::Error) -> Errno {
    Errno::from_i32(e.raw_os_error().unwrap_or(libc::EIO))
}

struct CutFs(Arc<Disk>);

impl CutFs {
    fn root_attr(&self) -> FileAttr {
        FileAttr {
            ino: INodeNo::ROOT,
            size: 0,
            blocks: 0,
            atime: UNIX_EPOCH,
            mtime: UNIX_EPOCH,
            ctime: UNIX_EPOCH,
            crtime: UNIX_EPOCH,
            kind: FileType::Directory,
            perm: 0o700,
            nlink: 2,
            uid: 0,
            gid: 0,
            rdev: 0,
            blksize: BLOCK_BYTES as u32,
            flags: 0,
        }
    }

    fn image_attr(&self) -> FileAttr {
        FileAttr {
            ino: IMAGE_INO,
            size: self.0.size,
            blocks: self.0.size.div_ceil(512),
            kind: FileType::RegularFile,
            perm: 0o600,
            nlink: 1,
            ..self.root_attr()
        }
    }
}

impl Filesystem for CutFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        if parent == INodeNo::ROOT && name == OsStr::new(IMAGE_NAME) {
            reply.entry(&ATTR_TTL, &self.image_attr(), fuser::Generation(0));
        } else {
            reply.error(Errno::ENOENT);
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        if ino == INodeNo::ROOT {
            reply.attr(&ATTR_TTL, &self.root_attr());
        } else if ino == IMAGE_INO {
            reply.attr(&ATTR_TTL, &self.image_attr());
        } else {
            reply.error(Errno::ENOENT);
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        if ino == IMAGE_INO {
            reply.opened(FileHandle(0), FopenFlags::empty());
        } else {
            reply.error(Errno::EISDIR);
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.0.read(offset, size as u64) {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(errno_of(&e)),
        }
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        match self.0.write(offset, data) {
            Ok(()) => reply.written(data.len() as u32),
            Err(e) => reply.error(errno_of(&e)),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        self.0.counters.flushes.fetch_add(1, Ordering::Relaxed);
        match self.0.apply() {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno_of(&e)),
        }
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.0.counters.fsyncs.fetch_add(1, Ordering::Relaxed);
        std::thread::sleep(FLUSH_LATENCY);
        match self.0.apply() {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno_of(&e)),
        }
    }
}

/// The mounted FUSE filesystem over one image file. Dropping it unmounts the filesystem (the
/// loop device on it must be gone by then).
pub struct CutDisk {
    disk: Arc<Disk>,
    session: Option<BackgroundSession>,
    mountpoint: std::path::PathBuf,
}

impl CutDisk {
    /// Mounts a FUSE filesystem at `mountpoint` serving `image` (which must exist, sized) as
    /// [`IMAGE_NAME`], with an empty overlay.
    pub fn mount(image: &Path, mountpoint: &Path) -> io::Result<CutDisk> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(image)?;
        let size = file.metadata()?.len();
        let disk = Arc::new(Disk {
            image: file,
            size,
            overlay: Mutex::new(Overlay {
                blocks: BTreeMap::new(),
                dead: false,
            }),
            counters: Counters::default(),
        });
        let mut config = Config::default();
        config.mount_options = vec![
            MountOption::FSName("ringstore-powercut".to_string()),
            MountOption::Subtype("cutdisk".to_string()),
        ];
        config.n_threads = Some(FUSE_THREADS);
        let session = fuser::spawn_mount(CutFs(disk.clone()), mountpoint, &config)?;
        Ok(CutDisk {
            disk,
            session: Some(session),
            mountpoint: mountpoint.to_path_buf(),
        })
    }

    /// The image as seen through the FUSE mount (what the loop device opens).
    pub fn image_path(&self) -> std::path::PathBuf {
        self.mountpoint.join(IMAGE_NAME)
    }

    pub fn counters(&self) -> &Counters {
        &self.disk.counters
    }

    /// The power cut: drops every write not yet flushed and every write from now on. Returns
    /// the number of overlay blocks dropped.
    pub fn cut(&self) -> usize {
        let mut overlay = self.disk.lock();
        overlay.dead = true;
        let n = overlay.blocks.len();
        overlay.blocks.clear();
        n
    }

    /// Unmounts the FUSE filesystem and joins its thread (also done on drop). Retries while the
    /// mount is busy (a loop device just detached may still hold the image for a moment); if it
    /// stays busy, detaches it lazily and leaves the thread to end with the connection.
    pub fn unmount(&mut self) -> io::Result<()> {
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        let deadline = std::time::Instant::now() + UNMOUNT_RETRY_TIMEOUT;
        while is_mounted(&self.mountpoint) {
            let last = match std::process::Command::new("umount")
                .arg(&self.mountpoint)
                .output()
            {
                Ok(out) if out.status.success() => break,
                Ok(out) => String::from_utf8_lossy(&out.stderr).trim().to_string(),
                Err(e) => e.to_string(),
            };
            if std::time::Instant::now() >= deadline {
                let _ = std::process::Command::new("umount")
                    .arg("-l")
                    .arg(&self.mountpoint)
                    .status();
                drop(session);
                return Err(io::Error::other(format!(
                    "umount {}: {last} (detached lazily)",
                    self.mountpoint.display()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // Unmounted: the session's thread ends with the connection.
        session.join()
    }
}

/// How long [`CutDisk::unmount`] retries a busy unmount.
const UNMOUNT_RETRY_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether `path` is a mount point now (by `/proc/self/mountinfo`).
pub fn is_mounted(path: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = path.to_string_lossy();
    info.lines()
        .any(|l| l.split(' ').nth(4).is_some_and(|m| m == want))
}

impl Drop for CutDisk {
    fn drop(&mut self) {
        if let Err(e) = self.unmount() {
            eprintln!("powercut: unmounting the FUSE disk: {e}");
        }
    }
}
