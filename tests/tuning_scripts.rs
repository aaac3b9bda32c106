//! The shell scripts under tuning/: `--help` and bad flags, `--dry-run` changes nothing, and
//! `apply.sh` is idempotent on a fake /sys and /proc tree (it never touches the real machine
//! here). No timing is asserted.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn script(name: &str, args: &[&str], envs: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new("bash");
    cmd.arg(format!("{ROOT}/tuning/{name}")).args(args);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("run bash")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn shell_scripts_answer_help_and_refuse_unknown_flags() {
    for name in ["apply.sh", "fio-baseline.sh", "compare.sh"] {
        let out = script(name, &["--help"], &[]);
        assert!(out.status.success(), "{name} --help: {out:?}");
        assert!(
            stdout(&out).contains("Usage: tuning/"),
            "{name}: {}",
            stdout(&out)
        );
        assert!(
            stdout(&out).contains("--dry-run"),
            "{name}: {}",
            stdout(&out)
        );
        let out = script(name, &["--no-such-flag"], &[]);
        assert_eq!(out.status.code(), Some(2), "{name}: {out:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("unknown argument"));
    }
}

#[test]
fn fio_baseline_dry_run_prints_the_five_jobs_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out_dir = dir.path().join("out");
    let (d, o) = (data.to_str().unwrap(), out_dir.to_str().unwrap());
    let out = script(
        "fio-baseline.sh",
        &["--dir", d, "--out", o, "--dry-run"],
        &[],
    );
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("fio ")).collect();
    assert_eq!(lines.len(), 5, "{text}");
    for (line, rw) in lines
        .iter()
        .zip(["read", "write", "randread", "randwrite", "write"])
    {
        assert!(
            line.contains("--ioengine=io_uring") && line.contains("--direct=1"),
            "{line}"
        );
        assert!(line.contains(&format!("--rw={rw} ")), "{line}");
    }
    assert!(lines[4].contains("--fdatasync=1"), "{}", lines[4]);
    assert!(
        !data.exists() && !out_dir.exists(),
        "a dry run created files"
    );
    let out = script("fio-baseline.sh", &["--dry-run"], &[]);
    assert_eq!(out.status.code(), Some(2), "--dir is required: {out:?}");
}

#[test]
fn compare_dry_run_prints_fio_and_the_same_workloads_for_every_server() {
    let dir = tempfile::tempdir().unwrap();
    let (data, out) = (dir.path().join("data"), dir.path().join("out"));
    let args = [
        "--dry-run",
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--garage",
        "/nonexistent/garage",
        "--peer",
        "minio=http://127.0.0.1:1",
    ];
    let out_run = script("compare.sh", &args, &[]);
    assert!(out_run.status.success(), "{out_run:?}");
    let text = stdout(&out_run);
    assert_eq!(
        text.lines().filter(|l| l.starts_with("fio ")).count(),
        5,
        "{text}"
    );
    for server in ["ringstore", "garage", "minio"] {
        let runs: Vec<&str> = text
            .lines()
            .filter(|l| l.contains(" bench --endpoint ") && l.contains(&format!("/{server}-")))
            .collect();
        assert_eq!(runs.len(), 5, "{server}: {text}");
    }
    assert!(!data.exists() && !out.exists(), "a dry run created files");
}

/// A fake /sys and /proc with one NVMe device, one CPU and the sysctls apply.sh sets, all at
/// values it changes.
fn fake_tree(root: &Path) {
    let files = [
        (
            "sys/block/nvme0n1/queue/scheduler",
            "[mq-deadline] kyber none",
        ),
        ("sys/block/nvme0n1/queue/read_ahead_kb", "4096"),
        ("sys/block/nvme0n1/queue/nr_requests", "256"),
        (
            "sys/devices/system/cpu/cpu0/cpufreq/scaling_governor",
            "powersave",
        ),
        (
            "proc/interrupts",
            " 40:  0  0  PCI-MSI nvme0q0\n 41:  7  0  PCI-MSI nvme0q1\n",
        ),
        ("proc/irq/40/smp_affinity_list", "0-7"),
        ("proc/irq/41/smp_affinity_list", "0-7"),
        ("proc/sys/net/core/rmem_max", "212992"),
        ("proc/sys/net/core/wmem_max", "212992"),
        ("proc/sys/net/ipv4/tcp_rmem", "4096\t131072\t6291456"),
        ("proc/sys/net/ipv4/tcp_wmem", "4096\t16384\t4194304"),
        ("proc/sys/net/core/somaxconn", "4096"),
        ("proc/sys/net/ipv4/tcp_max_syn_backlog", "128"),
    ];
    for (rel, content) in files {
        let path = root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }
}

fn read(root: &Path, rel: &str) -> String {
    fs::read_to_string(root.join(rel))
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn apply_changes_a_fake_host_once_and_then_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fake_tree(root);
    let (limits, sysctl) = (root.join("limits.conf"), root.join("sysctl.conf"));
    let args = [
        "--irq-cpus",
        "2-3",
        "--limits-file",
        limits.to_str().unwrap(),
        "--sysctl-file",
        sysctl.to_str().unwrap(),
    ];
    let envs = [
        ("RINGSTORE_SYSFS_ROOT", &*root.join("sys")),
        ("RINGSTORE_PROCFS_ROOT", &*root.join("proc")),
    ];
    let dry: Vec<&str> = ["--dry-run"].iter().chain(&args).copied().collect();
    let out = script("apply.sh", &dry, &envs);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout(&out).contains("13 change(s) would be made"),
        "{}",
        stdout(&out)
    );
    assert_eq!(read(root, "sys/block/nvme0n1/queue/nr_requests"), "256");
    assert!(
        !limits.exists() && !sysctl.exists(),
        "a dry run wrote files"
    );

    let out = script("apply.sh", &args, &envs);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout(&out).contains("13 change(s) made"),
        "{}",
        stdout(&out)
    );
    assert_eq!(read(root, "sys/block/nvme0n1/queue/scheduler"), "none");
    assert_eq!(read(root, "sys/block/nvme0n1/queue/read_ahead_kb"), "128");
    assert_eq!(read(root, "sys/block/nvme0n1/queue/nr_requests"), "1023");
    let governor = "sys/devices/system/cpu/cpu0/cpufreq/scaling_governor";
    assert_eq!(read(root, governor), "performance");
    assert_eq!(read(root, "proc/irq/41/smp_affinity_list"), "2-3");
    assert_eq!(
        read(root, "proc/sys/net/ipv4/tcp_rmem"),
        "4096 131072 67108864"
    );
    assert!(fs::read_to_string(&limits)
        .unwrap()
        .contains("root - memlock unlimited"));
    assert!(fs::read_to_string(&sysctl)
        .unwrap()
        .contains("net.core.somaxconn = 4096"));

    // The kernel would show `[none]` among the schedulers; the fake file now holds `none`.
    let out = script("apply.sh", &args, &envs);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout(&out).contains("0 change(s) made"),
        "{}",
        stdout(&out)
    );
    assert!(!stdout(&out).contains("changed "), "{}", stdout(&out));
}
