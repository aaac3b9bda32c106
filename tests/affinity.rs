//! Executors stay inside the process's CPU affinity: a server started under `taskset` pins its
//! executors to the CPUs taskset allowed, never to other online CPUs.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// The CPU list of one task's `Cpus_allowed_list`.
fn allowed_list(status: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .expect("Cpus_allowed_list")
        .trim()
        .to_string()
}

#[test]
fn executors_are_pinned_inside_the_taskset_affinity() {
    let own = std::fs::read_to_string("/proc/self/status").expect("own status");
    // The last CPU this test may use: on a multi-CPU machine not CPU 0, which is where an
    // affinity-blind placement would put the first executor.
    let last_cpu = allowed_list(&own)
        .split([',', '-'])
        .filter_map(|c| c.parse::<usize>().ok())
        .max()
        .expect("a CPU");
    let data = format!(
        "{}/affinity-data-{}",
        env!("CARGO_TARGET_TMPDIR"),
        std::process::id()
    );
    let spawned = Command::new("taskset")
        .args([
            "-c",
            &last_cpu.to_string(),
            env!("CARGO_BIN_EXE_ringstore"),
            "serve",
        ])
        .args(["--address", "127.0.0.1:0", "--data", &data, "--cores", "2"])
        .env_remove("RINGSTORE_ACCESS_KEY")
        .env_remove("RINGSTORE_SECRET_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = spawned else {
        eprintln!("taskset is not installed: skipped");
        return;
    };
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("readiness line");
    assert!(line.contains("listening"), "{line}");
    let mut executors = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{}/task", child.id())).expect("tasks") {
        let task = task.expect("task").path();
        let comm = std::fs::read_to_string(task.join("comm")).unwrap_or_default();
        if comm.starts_with("ringstore-core") {
            let status = std::fs::read_to_string(task.join("status")).expect("task status");
            executors.push(allowed_list(&status));
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&data);
    // Two executors, plus the helper threads glommio names after them.
    assert!(executors.len() >= 2, "{executors:?}");
    for cpus in executors {
        assert_eq!(
            cpus,
            last_cpu.to_string(),
            "an executor left the taskset affinity"
        );
    }
}
