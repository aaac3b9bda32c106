//! The power-cut rig: an ext4 filesystem (with journal) on a loop device (`--direct-io=on`)
//! whose backing file is the image served by a [`CutDisk`] FUSE mount, all under a temporary
//! directory in `CARGO_TARGET_TMPDIR` (a real disk). [`Rig::cut`] drops every write not yet
//! flushed; [`Rig::recover`] tears the stack down, mounts a fresh FUSE over the same image (now
//! only what was flushed), attaches a new loop device, runs `fsck.ext4 -fy` and mounts ext4
//! again. Dropping the rig unmounts and detaches everything, also after a panic.

use super::cutdisk::{CutDisk, IMAGE_NAME};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// How long teardown steps (unmount, loop detach) are retried while the kernel still holds
/// a reference.
const TEARDOWN_RETRY_TIMEOUT: Duration = Duration::from_secs(10);
const TEARDOWN_RETRY_PAUSE: Duration = Duration::from_millis(50);
/// ext4 block size of the test filesystem.
const EXT4_BLOCK_BYTES: u64 = 4096;

/// What `fsck.ext4 -fy` did after a cut.
#[derive(Debug, Clone)]
pub struct FsckReport {
    /// Exit code: 0 clean, 1 errors corrected, 2 corrected (reboot advised), 4+ not corrected.
    pub code: i32,
    /// Whether it replayed the journal.
    pub journal_replayed: bool,
    /// What it fixed that any unclean shutdown of ext4 leaves (orphan inodes to finish
    /// deleting or truncating; the superblock's free block and inode counts, which ext4 does not
    /// keep exact on disk while mounted).
    pub expected_fixes: Vec<String>,
    /// Any other output line (not a pass header, the journal replay or the summary): an
    /// inconsistency a journaled ext4 on a disk that honours flushes should not have.
    pub other_fixes: Vec<String>,
}

/// Output of `fsck.ext4 -fy` after an unclean shutdown that is not a sign of corruption.
const FSCK_EXPECTED_PREFIXES: [&str; 5] = [
    "Clearing orphaned inode",
    "Truncating orphaned inode",
    "Free blocks count wrong (",
    "Free inodes count wrong (",
    "Fix? yes",
];

fn run(cmd: &mut Command) -> Result<Output, String> {
    let out = cmd
        .output()
        .map_err(|e| format!("{:?}: cannot run: {e}", cmd.get_program()))?;
    Ok(out)
}

fn run_ok(cmd: &mut Command) -> Result<String, String> {
    let desc = format!("{cmd:?}");
    let out = run(cmd)?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{desc}: {}: {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Retries `f` until it succeeds or [`TEARDOWN_RETRY_TIMEOUT`] passes; returns the last error.
fn retry(mut f: impl FnMut() -> Result<(), String>) -> Result<(), String> {
    let deadline = Instant::now() + TEARDOWN_RETRY_TIMEOUT;
    loop {
        match f() {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => std::thread::sleep(TEARDOWN_RETRY_PAUSE),
        }
    }
}

/// Why this machine cannot run the test, if it cannot: not root, no `/dev/fuse`, no loop
/// devices, or a missing tool.
pub fn unavailable() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("not root (mounting FUSE and ext4 on a loop device needs root)".into());
    }
    if let Err(e) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")
    {
        return Some(format!("cannot open /dev/fuse: {e}"));
    }
    if !Path::new("/dev/loop-control").exists() {
        return Some("no /dev/loop-control (no loop devices)".into());
    }
    for (tool, arg) in [
        ("losetup", "--version"),
        ("mkfs.ext4", "-V"),
        ("fsck.ext4", "-V"),
        ("mount", "--version"),
        ("umount", "--version"),
    ] {
        if Command::new(tool).arg(arg).output().is_err() {
            return Some(format!("{tool} is not installed"));
        }
    }
    None
}

pub struct Rig {
    image: PathBuf,
    fuse_mnt: PathBuf,
    mnt: PathBuf,
    disk: Option<CutDisk>,
    loop_dev: Option<String>,
    ext4_mounted: bool,
    /// Last in field order: removed after the teardown in `drop`.
    _dir: tempfile::TempDir,
}

impl Rig {
    /// Creates a sparse image of `image_bytes`, makes a default ext4 (with journal) in it and
    /// brings up the stack.
    pub fn create(image_bytes: u64) -> Result<Rig, String> {
        let dir = tempfile::Builder::new()
            .prefix("powercut-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .map_err(|e| format!("temp dir: {e}"))?;
        let image = dir.path().join(IMAGE_NAME);
        let fuse_mnt = dir.path().join("fuse");
        let mnt = dir.path().join("mnt");
        for d in [&fuse_mnt, &mnt] {
            std::fs::create_dir(d).map_err(|e| format!("mkdir {}: {e}", d.display()))?;
        }
        std::fs::File::create(&image)
            .and_then(|f| f.set_len(image_bytes))
            .map_err(|e| format!("create {}: {e}", image.display()))?;
        // Inode tables and journal zeroed now, so no lazy-init thread writes in the background.
        run_ok(
            Command::new("mkfs.ext4")
                .args(["-q", "-F", "-b"])
                .arg(EXT4_BLOCK_BYTES.to_string())
                .args(["-E", "lazy_itable_init=0,lazy_journal_init=0,nodiscard"])
                .arg(&image),
        )?;
        let mut rig = Rig {
            image,
            fuse_mnt,
            mnt,
            disk: None,
            loop_dev: None,
            ext4_mounted: false,
            _dir: dir,
        };
        rig.up(false)?;
        Ok(rig)
    }

    /// The mounted ext4 filesystem.
    pub fn mnt(&self) -> &Path {
        &self.mnt
    }

    pub fn disk(&self) -> &CutDisk {
        self.disk.as_ref().expect("the FUSE disk is mounted")
    }

    pub fn loop_dev(&self) -> &str {
        self.loop_dev.as_deref().expect("a loop device is attached")
    }

    /// `1` when the loop device does direct I/O on its backing file.
    pub fn loop_dio(&self) -> String {
        let name = self.loop_dev().trim_start_matches("/dev/");
        std::fs::read_to_string(format!("/sys/block/{name}/loop/dio"))
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|e| format!("unknown ({e})"))
    }

    /// FUSE over the image, a loop device on it, optionally fsck, ext4 mounted.
    fn up(&mut self, fsck: bool) -> Result<Option<FsckReport>, String> {
        let disk = CutDisk::mount(&self.image, &self.fuse_mnt)
            .map_err(|e| format!("mount the FUSE disk at {}: {e}", self.fuse_mnt.display()))?;
        let backing = disk.image_path();
        self.disk = Some(disk);
        let dev = run_ok(
            Command::new("losetup")
                .args(["--find", "--show", "--direct-io=on"])
                .arg(&backing),
        )?
        .trim()
        .to_string();
        if !dev.starts_with("/dev/loop") {
            return Err(format!("losetup printed {dev:?}"));
        }
        self.loop_dev = Some(dev.clone());
        let report = if fsck { Some(self.fsck(&dev)?) } else { None };
        run_ok(
            Command::new("mount")
                .args(["-t", "ext4", "-o", "barrier=1"])
                .arg(&dev)
                .arg(&self.mnt),
        )?;
        self.ext4_mounted = true;
        Ok(report)
    }

    /// Remounts ext4 with the journal committed only every `seconds` (or at an fsync), until
    /// the next [`Rig::recover`] mounts it with the default again.
    pub fn set_commit_interval(&self, seconds: u32) -> Result<(), String> {
        run_ok(
            Command::new("mount")
                .args(["-o", &format!("remount,commit={seconds}")])
                .arg(&self.mnt),
        )
        .map(drop)
    }

    fn fsck(&self, dev: &str) -> Result<FsckReport, String> {
        let out = run(Command::new("fsck.ext4").args(["-f", "-y"]).arg(dev))?;
        let code = out.status.code().unwrap_or(-1);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if code >= 4 {
            return Err(format!(
                "fsck.ext4 -fy {dev} could not repair the filesystem (exit {code}):\n{text}"
            ));
        }
        let mut journal_replayed = false;
        let mut expected_fixes = Vec::new();
        let mut other_fixes = Vec::new();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if line.contains("recovering journal") {
                journal_replayed = true;
            } else if !(line.starts_with("Pass ")
                || line.starts_with("e2fsck ")
                || line.contains("***** FILE SYSTEM WAS MODIFIED *****")
                || line.contains(" files (")
                || line.contains(": clean,"))
            {
                if FSCK_EXPECTED_PREFIXES.iter().any(|p| line.starts_with(p)) {
                    if line != "Fix? yes" {
                        expected_fixes.push(line.to_string());
                    }
                } else {
                    other_fixes.push(line.to_string());
                }
            }
        }
        Ok(FsckReport {
            code,
            journal_replayed,
            expected_fixes,
            other_fixes,
        })
    }

    /// The power cut: every write not yet flushed is dropped, and every later one. Returns the
    /// number of 4 KiB blocks dropped.
    pub fn cut(&self) -> usize {
        self.disk().cut()
    }

    /// Unmounts ext4, detaches the loop device, unmounts the FUSE disk (each only if up).
    fn down(&mut self) -> Result<(), String> {
        if self.ext4_mounted {
            retry(|| run_ok(Command::new("umount").arg(&self.mnt)).map(drop)).or_else(|e| {
                eprintln!(
                    "powercut: umount {}: {e}; detaching lazily",
                    self.mnt.display()
                );
                run_ok(Command::new("umount").arg("-l").arg(&self.mnt)).map(drop)
            })?;
            self.ext4_mounted = false;
        }
        if let Some(dev) = self.loop_dev.take() {
            run_ok(Command::new("losetup").arg("-d").arg(&dev))?;
            // The detach completes asynchronously; the FUSE unmount fails while the loop
            // device still holds the image open.
            let name = dev.trim_start_matches("/dev/").to_string();
            let gone = retry(|| {
                if Path::new(&format!("/sys/block/{name}/loop/backing_file")).exists() {
                    Err(format!("{dev} still attached"))
                } else {
                    Ok(())
                }
            });
            if let Err(e) = gone {
                eprintln!("powercut: {e}");
            }
        }
        if let Some(mut disk) = self.disk.take() {
            disk.unmount()
                .map_err(|e| format!("unmount the FUSE disk: {e}"))?;
        }
        Ok(())
    }

    /// After a cut: tears everything down, then a fresh FUSE over the image (only what was
    /// flushed before the cut), a new loop device, `fsck.ext4 -fy`, mount.
    pub fn recover(&mut self) -> Result<FsckReport, String> {
        self.down()?;
        Ok(self.up(true)?.expect("fsck ran"))
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        if let Err(e) = self.down() {
            eprintln!("powercut: cleanup: {e}");
        }
    }
}
