//! The `ringstore serve` command line: refusals that protect users, and `--help` that explains
//! every flag. No server is left running: every case here exits before listening.

use std::process::Command;

fn serve(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ringstore"))
        .arg("serve")
        .args(args)
        .env_remove("RINGSTORE_ACCESS_KEY")
        .env_remove("RINGSTORE_SECRET_KEY")
        .output()
        .expect("run ringstore")
}

fn data_arg() -> String {
    format!(
        "{}/cli-data-{}",
        env!("CARGO_TARGET_TMPDIR"),
        std::process::id()
    )
}

#[test]
fn dev_keys_are_refused_off_loopback() {
    let data = data_arg();
    let out = serve(&["--address", "0.0.0.0:0", "--data", &data]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("non-loopback") && err.contains("RINGSTORE_ACCESS_KEY"),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "nothing may claim to listen");
}

#[test]
fn half_a_key_pair_is_refused() {
    let data = data_arg();
    let out = serve(&[
        "--address",
        "127.0.0.1:0",
        "--data",
        &data,
        "--access-key",
        "only-access",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("both"));
}

#[test]
fn bad_flag_values_are_refused() {
    let data = data_arg();
    for args in [
        vec!["--cores", "0"],
        vec!["--max-connections", "0"],
        vec!["--fsync", "sometimes"],
        vec!["--address", "not-an-address"],
        vec!["--spin-before-park-us", "1000001"],
        vec!["--spin-before-park-us", "-5"],
        vec!["--region", ""],
        vec!["--region", "EU Central"],
    ] {
        let mut all = vec!["--data", data.as_str()];
        all.extend(args.iter().copied());
        let out = serve(&all);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?} must say why");
    }
}

#[test]
fn help_explains_every_flag() {
    let out = serve(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--address",
        "--data",
        "--cores",
        "--access-key",
        "--secret-key",
        "--fsync",
        "--max-connections",
        "--domain",
        "--region",
        "RINGSTORE_REGION",
        "--cpus",
        "--spin-before-park-us",
        "RINGSTORE_ACCESS_KEY",
        "RINGSTORE_SECRET_KEY",
        "127.0.0.1:9000",
        "./data",
    ] {
        assert!(
            help.contains(flag),
            "--help does not mention {flag}:\n{help}"
        );
    }
}

#[test]
fn bad_cpu_lists_are_refused() {
    let data = data_arg();
    for (list, says) in [("3-1", "low-high"), ("x", "not a CPU"), ("100000", "below")] {
        let out = serve(&["--address", "127.0.0.1:0", "--data", &data, "--cpus", list]);
        assert_eq!(out.status.code(), Some(2), "--cpus {list}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--cpus") && err.contains(says), "{err}");
    }
    // A CPU outside the process's affinity (here: the affinity is one CPU, set by taskset).
    let Ok(out) = Command::new("taskset")
        .args(["-c", "0", env!("CARGO_BIN_EXE_ringstore"), "serve"])
        .args(["--address", "127.0.0.1:0", "--data", &data, "--cpus", "0-1"])
        .output()
    else {
        eprintln!("taskset is not installed: affinity part skipped");
        return;
    };
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("outside this process's CPU affinity"), "{err}");
}
