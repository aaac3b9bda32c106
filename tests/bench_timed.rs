//! `ringstore bench`'s timed workloads end to end: every workload, signed and unsigned payloads
//! and each checksum are accepted by a real `ringstore serve` (multipart leaves no upload
//! behind, the bench's bucket is removed); against the null responder the counts and byte
//! totals are exact and the per-second rows add up to them; `--json FILE`, `--csv`, `--plot` and `bench compare` work
//! on what a run wrote; bad flags are refused before anything starts. No timing is asserted.

mod common;

use common::bench::report;

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
        &[
            "--scenario",
            "multipart",
            "--size",
            "8MiB",
            "--part-size",
            "1MiB",
        ],
        &["--scenario", "multipart", "--size", "0"],
        &["--scenario", "list", "--page-size", "1001"],
    ] {
        let out = bench(None, bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {out:?}");
    }
}

/// 5 MiB and 1000 bytes: two parts of `--part-size 5MiB` (S3's smallest part, then a short one).
const MPU_SIZE: u64 = 5 * 1024 * 1024 + 1000;
const MPU_SIZE_ARG: &str = "5243880";

/// `field` of operation `name` in `r` as a number.
fn num(r: &Value, name: &str, field: &str) -> u64 {
    op(r, name)[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{name}.{field} in {r}"))
}

/// Per operation, the sums of the `series` rows' ops and bytes equal the operation's totals.
fn assert_series_add_up(r: &Value) {
    for o in r["operations"].as_array().unwrap() {
        let name = o["op"].as_str().unwrap();
        let rows: Vec<&Value> = r["series"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["op"] == name)
            .collect();
        let sum = |f: &str| rows.iter().map(|s| s[f].as_u64().unwrap()).sum::<u64>();
        assert_eq!(sum("ops"), o["total_ops"].as_u64().unwrap(), "{name}: {r}");
        assert_eq!(sum("bytes"), o["total_bytes"].as_u64().unwrap(), "{name}");
        assert_eq!(sum("errors"), o["total_errors"].as_u64().unwrap(), "{name}");
    }
}

/// Per operation, the sums of the CSV rows' ops and bytes columns.
fn csv_sums(csv: &str) -> std::collections::BTreeMap<String, (u64, u64)> {
    let mut sums = std::collections::BTreeMap::new();
    for line in csv.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let e = sums.entry(f[1].to_string()).or_insert((0, 0));
        e.0 += f[2].parse::<u64>().unwrap();
        e.1 += f[3].parse::<u64>().unwrap();
    }
    sums
}

/// The op names and the workload of `r` are among those tuning/bench-run.schema.json lists
/// (the full validation runs in tests/boto3/test_bench_report.py with jsonschema).
fn assert_schema_names(r: &Value) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tuning/bench-run.schema.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let ops = &schema["$defs"]["op"]["properties"]["op"]["enum"];
    let series_ops = &schema["properties"]["series"]["items"]["properties"]["op"]["enum"];
    let workloads = &schema["properties"]["params"]["properties"]["workload"]["enum"];
    let has = |list: &Value, v: &Value| list.as_array().unwrap().contains(v);
    assert!(has(workloads, &r["params"]["workload"]), "{workloads}");
    for o in r["operations"].as_array().unwrap() {
        assert!(
            has(ops, &o["op"]) && has(series_ops, &o["op"]),
            "{}",
            o["op"]
        );
    }
}

/// No bench bucket is left on `server` (ListBuckets).
fn assert_no_bench_bucket(server: &common::Server) {
    let r = server.call(&server.req("GET", "/"));
    assert_eq!(r.status, 200, "{}", r.describe());
    assert!(!r.text().contains("<Name>ringstore-bench-"), "{}", r.text());
}

#[test]
fn multipart_and_list_are_accepted_by_ringstore() {
    let server = common::Server::start();
    for (payload, checksum) in [
        ("unsigned", "none"),
        ("signed", "crc32c"),
        ("unsigned", "sha256"),
    ] {
        let r = report(&bench(
            Some(&server),
            &[
                "--scenario",
                "multipart",
                "--size",
                MPU_SIZE_ARG,
                "--part-size",
                "5MiB",
                "--count",
                "3",
                "--concurrency",
                "3",
                "--payload",
                payload,
                "--checksum",
                checksum,
                "--no-ceiling",
                "--json",
            ],
        ));
        assert_eq!(
            num(&r, "MPU-CREATE", "total_ops"),
            3,
            "{payload} {checksum}: {r}"
        );
        assert_eq!(num(&r, "MPU-PART", "total_ops"), 6);
        assert_eq!(num(&r, "MPU-PART", "total_bytes"), 3 * MPU_SIZE);
        assert_eq!(num(&r, "MPU-COMPLETE", "total_ops"), 3);
        let m = &r["multipart"];
        assert_eq!(m["objects_completed"], 3, "{r}");
        assert_eq!(m["parts_per_object"], 2);
        assert_eq!(
            m["head_checked"], true,
            "the HEAD shows the size and the -2 ETag"
        );
        assert_eq!(
            (m["uploads_aborted"].as_u64(), m["abort_errors"].as_u64()),
            (Some(0), Some(0))
        );
        assert_eq!(r["stopped_by"], "count");
        assert_schema_names(&r);
    }
    for payload in ["unsigned", "signed"] {
        let r = report(&bench(
            Some(&server),
            &[
                "--scenario",
                "list",
                "--objects",
                "300",
                "--object-size",
                "10",
                "--pages",
                "50",
                "--page-size",
                "40",
                "--concurrency",
                "2",
                "--payload",
                payload,
                "--no-ceiling",
                "--json",
            ],
        ));
        assert_eq!(r["prep_errors"], 0, "{r}");
        assert_eq!(r["listed_keys"], 300, "{r}");
        assert_eq!(
            (
                num(&r, "LIST", "total_ops"),
                num(&r, "LIST", "total_errors")
            ),
            (50, 0)
        );
        assert!(num(&r, "LIST", "total_bytes") > 0);
        assert_schema_names(&r);
    }
    assert_no_bench_bucket(&server);
}

#[test]
fn multipart_stopped_by_time_aborts_what_is_open() {
    let server = common::Server::start();
    server.create_bucket("mpu-kept");
    let r = report(&bench(
        Some(&server),
        &[
            "--scenario",
            "multipart",
            "--bucket",
            "mpu-kept",
            "--size",
            MPU_SIZE_ARG,
            "--part-size",
            "5MiB",
            "--count",
            "1000000",
            "--duration-secs",
            "1",
            "--concurrency",
            "4",
            "--no-ceiling",
            "--json",
        ],
    ));
    assert_eq!(r["stopped_by"], "duration", "{r}");
    let m = &r["multipart"];
    // Four connections busy with parts when the time runs out leave uploads open.
    assert!(m["uploads_aborted"].as_u64().unwrap() >= 1, "{r}");
    assert_eq!(m["abort_errors"], 0, "{r}");
    let listed = server.call(&server.req("GET", "/mpu-kept?uploads"));
    assert_eq!(listed.status, 200, "{}", listed.describe());
    assert!(
        !listed.text().contains("<Upload>"),
        "uploads left behind: {}",
        listed.text()
    );
    // --bucket keeps what was written: exactly the completed objects.
    let keys = server.list_keys("mpu-kept");
    assert_eq!(
        keys.len() as u64,
        m["objects_completed"].as_u64().unwrap(),
        "{keys:?}"
    );
    assert!(keys.iter().all(|k| k.starts_with("mpu/")), "{keys:?}");
}

#[test]
fn null_multipart_and_list_counts_series_and_csv_are_exact() {
    let dir = tempfile::tempdir().unwrap();
    let path = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let (json, csv) = (path("mpu.json"), path("mpu.csv"));
    let out = bench(
        None,
        &[
            "--null",
            "--scenario",
            "multipart",
            "--size",
            MPU_SIZE_ARG,
            "--part-size",
            "5MiB",
            "--count",
            "7",
            "--concurrency",
            "3",
            "--checksum",
            "crc32",
            "--json",
            &json,
            "--csv",
            &csv,
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // CreateBucket, then 7 x (Create + 2 parts + Complete).
    assert!(
        stderr.contains("null responder answered 29 requests, the client sent 29"),
        "{stderr}"
    );
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(
        (
            num(&r, "MPU-PART", "total_ops"),
            num(&r, "MPU-PART", "total_bytes")
        ),
        (14, 7 * MPU_SIZE)
    );
    assert_eq!(
        (
            num(&r, "MPU-CREATE", "total_ops"),
            num(&r, "MPU-COMPLETE", "total_ops")
        ),
        (7, 7)
    );
    assert_eq!(r["multipart"]["objects_completed"], 7);
    assert!(
        r["multipart"]["head_checked"].is_null(),
        "no HEAD against the null responder"
    );
    assert_series_add_up(&r);
    let sums = csv_sums(&std::fs::read_to_string(&csv).unwrap());
    assert_eq!(sums.get("MPU-PART"), Some(&(14, 7 * MPU_SIZE)), "{sums:?}");
    assert_eq!(sums.get("MPU-COMPLETE"), Some(&(7, 0)));
    assert_schema_names(&r);

    // bench compare reads multipart reports.
    let out = Command::new(env!("CARGO_BIN_EXE_ringstore"))
        .args(["bench", "compare", &json, &json])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        table.lines().any(|l| l.starts_with("MPU-PART")
            && l.contains("MiB/s")
            && l.trim_end().ends_with("1.000")),
        "{table}"
    );

    let (json, csv) = (path("list.json"), path("list.csv"));
    let out = bench(
        None,
        &[
            "--null",
            "--scenario",
            "list",
            "--objects",
            "1000",
            "--pages",
            "200",
            "--page-size",
            "50",
            "--concurrency",
            "4",
            "--json",
            &json,
            "--csv",
            &csv,
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // CreateBucket, the full listing (1 page of 1000), 200 pages.
    assert!(
        stderr.contains("null responder answered 202 requests, the client sent 202"),
        "{stderr}"
    );
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(
        (
            num(&r, "LIST", "total_ops"),
            num(&r, "LIST", "total_errors")
        ),
        (200, 0)
    );
    assert_series_add_up(&r);
    let sums = csv_sums(&std::fs::read_to_string(&csv).unwrap());
    assert_eq!(sums.get("LIST").map(|s| s.0), Some(200), "{sums:?}");
    assert_schema_names(&r);
}
