//! `ringstore bench`'s timed workloads end to end: every workload, signed and unsigned payloads
//! and each checksum are accepted by a real `ringstore serve`; against the null responder the
//! counts and byte totals are exact; `--json FILE`, `--csv`, `--plot` and `bench compare` work
//! on what a run wrote; bad flags are refused before anything starts. No timing is asserted.

mod common;

use serde_json::Value;
use std::process::{Command, Output};

/// `ringstore bench ARGS` signing with the test keys (against `server` when given).
fn bench(server: Option<&common::Server>, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ringstore"));
    cmd.arg("bench");
    if let Some(s) = server {
        cmd.arg("--endpoint").arg(format!("http://{}", s.host()));
        cmd.env("RINGSTORE_ACCESS_KEY", common::ACCESS_KEY);
        cmd.env("RINGSTORE_SECRET_KEY", common::SECRET_KEY);
    } else {
        cmd.env_remove("RINGSTORE_ACCESS_KEY");
        cmd.env_remove("RINGSTORE_SECRET_KEY");
    }
    cmd.args(args).output().expect("run ringstore bench")
}

/// The JSON report a successful run printed on stdout (`--json`).
fn report(out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// The report of operation `op` in `r` (panics if it did not run).
fn op<'a>(r: &'a Value, op: &str) -> &'a Value {
    r["operations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["op"] == op)
        .unwrap_or_else(|| panic!("no {op} in {r}"))
}

const SMALL: [&str; 10] = [
    "--count",
    "120",
    "--objects",
    "40",
    "--concurrency",
    "4",
    "--no-ceiling",
    "--json",
    "--object-size",
    "3000",
];

#[test]
fn every_workload_payload_and_checksum_is_accepted_by_ringstore() {
    let server = common::Server::start();
    for payload in ["unsigned", "signed"] {
        for checksum in ["none", "crc32", "crc32c", "crc64nvme", "sha256"] {
            let mut args = vec![
                "--scenario",
                "put",
                "--payload",
                payload,
                "--checksum",
                checksum,
            ];
            args.extend(SMALL);
            let r = report(&bench(Some(&server), &args));
            let put = op(&r, "PUT");
            assert_eq!(put["total_ops"], 120, "{payload} {checksum}: {r}");
            assert_eq!(put["total_errors"], 0);
            assert_eq!(put["total_bytes"], 120 * 3000);
        }
    }
    for scenario in ["get", "stat", "delete", "mixed"] {
        let mut args = vec![
            "--scenario",
            scenario,
            "--payload",
            "signed",
            "--object-size-max",
            "20000",
        ];
        args.extend(SMALL);
        let r = report(&bench(Some(&server), &args));
        assert_eq!(r["prep_errors"], 0, "{scenario}: {r}");
        let total: u64 = r["operations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["total_ops"].as_u64().unwrap())
            .sum();
        let errors: u64 = r["operations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["total_errors"].as_u64().unwrap())
            .sum();
        assert_eq!(errors, 0, "{scenario}: {r}");
        // delete deletes each of the 40 objects once; the others stop at --count.
        assert_eq!(
            total,
            if scenario == "delete" { 40 } else { 120 },
            "{scenario}: {r}"
        );
        if scenario == "get" {
            assert!(op(&r, "GET")["ttfb_ms"]["p50"].as_f64().unwrap() > 0.0);
        }
    }
}

#[test]
fn null_responder_counts_and_bytes_are_exact() {
    let put = report(&bench(
        None,
        &[
            "--null",
            "--scenario",
            "put",
            "--count",
            "1000",
            "--object-size",
            "4KiB",
            "--concurrency",
            "3",
            "--json",
        ],
    ));
    let p = op(&put, "PUT");
    assert_eq!(
        (p["total_ops"].as_u64(), p["total_bytes"].as_u64()),
        (Some(1000), Some(4_096_000))
    );
    assert!(
        put["client_ceiling"].is_null(),
        "the null run is the ceiling itself"
    );
    let get = report(&bench(
        None,
        &[
            "--null",
            "--scenario",
            "get",
            "--objects",
            "10",
            "--count",
            "500",
            "--object-size",
            "1000",
            "--json",
        ],
    ));
    let g = op(&get, "GET");
    assert_eq!(
        (g["total_ops"].as_u64(), g["total_bytes"].as_u64()),
        (Some(500), Some(500_000))
    );
}

#[test]
fn null_mixed_series_add_up_to_the_totals() {
    let mixed = report(&bench(
        None,
        &[
            "--null",
            "--scenario",
            "mixed",
            "--objects",
            "50",
            "--count",
            "2000",
            "--mix",
            "get=1,put=1",
            "--json",
        ],
    ));
    let ops: u64 = ["GET", "PUT"]
        .iter()
        .map(|o| op(&mixed, o)["total_ops"].as_u64().unwrap())
        .sum();
    assert_eq!(ops, 2000);
    let series_ops: u64 = mixed["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["ops"].as_u64().unwrap())
        .sum();
    assert_eq!(series_ops, 2000, "the per-second rows add up to the totals");
}

#[test]
fn files_and_compare() {
    let dir = tempfile::tempdir().unwrap();
    let path = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let (a, csv, svg) = (path("a.json"), path("a.csv"), path("a.svg"));
    let args = [
        "--null",
        "--scenario",
        "get",
        "--count",
        "3000",
        "--objects",
        "20",
        "--json",
        &a,
        "--csv",
        &csv,
        "--plot",
        &svg,
    ];
    let out = bench(None, &args);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("GET ") && text.contains("latency ms"),
        "{text}"
    );
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&a).unwrap()).unwrap();
    assert_eq!(r["schema"], "ringstore-bench-run/1");
    let rows = std::fs::read_to_string(&csv).unwrap();
    assert!(rows.starts_with("second,op,ops,bytes,errors,"));
    assert_eq!(
        rows.lines().count(),
        1 + r["series"].as_array().unwrap().len()
    );
    let svg_text = std::fs::read_to_string(&svg).unwrap();
    assert!(svg_text.starts_with("<svg") && svg_text.trim_end().ends_with("</svg>"));
    assert!(svg_text.contains("GET p99"), "the legend names the series");

    // B: the same report with GET twice as fast.
    let mut b = r.clone();
    let get = b["operations"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|o| o["op"] == "GET")
        .unwrap();
    let avg = get["ops_per_sec"]["avg"].as_f64().unwrap();
    get["ops_per_sec"]["avg"] = (avg * 2.0).into();
    let b_path = path("b.json");
    std::fs::write(&b_path, serde_json::to_string(&b).unwrap()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ringstore"))
        .args(["bench", "compare", &a, &b_path])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    let line = table
        .lines()
        .find(|l| l.starts_with("GET") && l.contains("ops/s") && !l.contains("slowest"))
        .unwrap();
    assert!(line.trim_end().ends_with("2.000"), "{table}");
    // A file that is not a report is refused with exit 2.
    let out = Command::new(env!("CARGO_BIN_EXE_ringstore"))
        .args(["bench", "compare", &csv, &a])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn timed_flags_are_checked_before_anything_starts() {
    for bad in [
        &["--scenario", "mixed", "--mix", "get=0"][..],
        &["--scenario", "mixed", "--mix", "list=3"],
        &[
            "--scenario",
            "put",
            "--object-size",
            "8KiB",
            "--object-size-max",
            "4KiB",
        ],
        &["--scenario", "put", "--prefix", "a b"],
        &["--scenario", "get", "--objects", "0"],
        &["--scenario", "put", "--rate", "0"],
        &["--scenario", "put", "--checksum", "md5"],
    ] {
        let out = bench(None, bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {out:?}");
    }
}
