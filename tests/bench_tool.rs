//! `ringstore bench` end to end: the real binary runs every scenario against its own in-process
//! server, a started `ringstore serve`, or its null responder, and must report each one with no
//! failed request; the tuning scripts answer `--help`. No timing is asserted.

mod common;

use common::bench::succeeded;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// `ringstore bench ARGS` with the development keys (no key variables inherited).
fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ringstore"))
        .arg("bench")
        .args(args)
        .env_remove("RINGSTORE_ACCESS_KEY")
        .env_remove("RINGSTORE_SECRET_KEY")
        .output()
        .expect("run ringstore bench")
}

/// `ringstore bench ARGS` against `server`, signing with its keys.
fn bench_against(server: &common::Server, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ringstore"))
        .arg("bench")
        .arg("--endpoint")
        .arg(format!("http://{}", server.host()))
        .args(args)
        .env("RINGSTORE_ACCESS_KEY", common::ACCESS_KEY)
        .env("RINGSTORE_SECRET_KEY", common::SECRET_KEY)
        .output()
        .expect("run ringstore bench")
}

/// The number after `"name":` in a JSON document (the first occurrence).
fn json_u64(json: &str, name: &str) -> u64 {
    let at = json
        .find(&format!("\"{name}\":"))
        .unwrap_or_else(|| panic!("no {name} in {json}"));
    let rest = &json[at + name.len() + 3..];
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end]
        .parse()
        .unwrap_or_else(|_| panic!("{name} is not a number in {json}"))
}

/// The LIST pages, failed pages and listed keys of a timed list report printed by `--json`.
fn list_report(stdout: &str) -> (u64, u64, u64) {
    let r: serde_json::Value = serde_json::from_str(stdout).expect("a JSON report");
    let ops = r["operations"].as_array().expect("operations");
    assert_eq!(ops.len(), 1, "{r}");
    assert_eq!(ops[0]["op"], "LIST");
    let n = |v: &serde_json::Value| v.as_u64().expect("a number");
    (
        n(&ops[0]["total_ops"]),
        n(&ops[0]["total_errors"]),
        n(&r["listed_keys"]),
    )
}

/// The key and body of fill's object `i` (the format the bench documents).
fn fill_object(i: u64, size: usize) -> (String, Vec<u8>) {
    let key = format!("fill/{i:010}");
    let unit = format!("{key} ");
    let body: Vec<u8> = unit.bytes().cycle().take(size).collect();
    (key, body)
}

#[test]
fn bench_all_scenarios_small() {
    let data = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("bench-tool-{}", std::process::id()));
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_ringstore"))
        .args([
            "bench",
            "--scenario",
            "all",
            "--count",
            "200",
            "--size",
            "8MiB",
            "--part-size",
            "5MiB",
            "--concurrency",
            "4",
            "--data",
        ])
        .arg(&data)
        .env_remove("RINGSTORE_ACCESS_KEY")
        .env_remove("RINGSTORE_SECRET_KEY")
        .output()
        .expect("run ringstore bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    for scenario in [
        "put-small",
        "get-small",
        "put-large",
        "multipart",
        "large-vs-multipart",
    ] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("{scenario}: ")))
            .unwrap_or_else(|| panic!("no {scenario} line in:\n{stdout}\nstderr:\n{stderr}"));
        assert!(line.contains("errors 0"), "{line}");
    }
    let small = stdout
        .lines()
        .find(|l| l.starts_with("put-small: "))
        .unwrap();
    assert!(small.starts_with("put-small: 200 ops in "), "{small}");
    let cmp = stdout
        .lines()
        .find(|l| l.starts_with("large-vs-multipart: "))
        .unwrap();
    assert!(
        cmp.contains("put-large 8 MiB: ") && cmp.contains("multipart 2 x 5 MiB on 2 conns: "),
        "{cmp}"
    );
    assert!(cmp.contains("multipart/single = "), "{cmp}");
    // The in-process server's data directory is removed (and so is --data, which the bench
    // created).
    assert!(!data.exists(), "{} left behind", data.display());
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[test]
fn bench_json_and_bad_flags() {
    let data = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("bench-json-{}", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_ringstore"))
        .args([
            "bench",
            "--scenario",
            "put-small",
            "--count",
            "20",
            "--concurrency",
            "2",
            "--payload",
            "signed",
            "--json",
            "--data",
        ])
        .arg(&data)
        .env_remove("RINGSTORE_ACCESS_KEY")
        .env_remove("RINGSTORE_SECRET_KEY")
        .output()
        .expect("run ringstore bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let json = stdout.trim();
    assert!(json.starts_with('{') && json.ends_with('}'), "{json}");
    assert!(
        json.contains("\"name\":\"put-small\",\"ops\":20,"),
        "{json}"
    );
    assert!(json.contains("\"payload\":\"signed\""), "{json}");
    assert!(json.contains("\"errors\":0,\"ok\":true"), "{json}");
    assert!(stderr.contains("put-small: 20 ops in "), "{stderr}");

    // Parts below S3's 5 MiB minimum are refused before anything starts.
    let out = Command::new(env!("CARGO_BIN_EXE_ringstore"))
        .args([
            "bench",
            "--scenario",
            "multipart",
            "--size",
            "8MiB",
            "--part-size",
            "1MiB",
            "--data",
        ])
        .arg(&data)
        .output()
        .expect("run ringstore bench");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 5 MiB"));
    assert!(!data.exists());
}

#[test]
fn bench_reports_failures_with_exit_status_1() {
    // A listener that accepts and answers every request with 500: every request fails.
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            std::thread::spawn(move || {
                let mut r = BufReader::new(stream);
                loop {
                    let mut len = 0usize;
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let l = line.trim_end().to_ascii_lowercase();
                        if l.is_empty() {
                            break;
                        }
                        if let Some(v) = l.strip_prefix("content-length: ") {
                            len = v.parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0u8; len];
                    if std::io::Read::read_exact(&mut r, &mut body).is_err() {
                        return;
                    }
                    let doc = "<Error><Code>InternalError</Code><Message>test</Message></Error>";
                    let resp = format!(
                        "HTTP/1.1 500 Internal Server Error\r\nContent-Length: {}\r\n\r\n{doc}",
                        doc.len()
                    );
                    if r.get_mut().write_all(resp.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    let out = Command::new(env!("CARGO_BIN_EXE_ringstore"))
        .args([
            "bench",
            "--scenario",
            "put-small",
            "--count",
            "5",
            "--endpoint",
        ])
        .arg(format!("http://{addr}"))
        .output()
        .expect("run ringstore bench");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr:\n{stderr}");
    assert!(stderr.contains("CreateBucket"), "{stderr}");
    assert!(stderr.contains("InternalError"), "{stderr}");
}

#[test]
fn null_responder_answers_exactly_what_was_sent() {
    // put-small, get-small (which writes its objects first), put-large and a 2-part multipart
    // upload: 1 CreateBucket + 100 + 100 + 100 + 1 + (1 + 2 + 1) requests.
    let out = bench(&[
        "--null",
        "--scenario",
        "all",
        "--count",
        "100",
        "--size",
        "8MiB",
        "--part-size",
        "5MiB",
        "--concurrency",
        "4",
        "--json",
    ]);
    let (stdout, stderr) = succeeded(&out);
    let json = stdout.trim();
    assert!(json.contains("\"null\":true"), "{json}");
    assert!(
        json.contains("\"null_responder\":{\"sent\":206,\"answered\":206}"),
        "{json}\n{stderr}"
    );
    assert!(
        stderr.contains("client ceiling (null responder): put-small "),
        "{stderr}"
    );

    // list: a 3-page full listing of the 2500 synthetic keys, then 40 pages, all checked.
    let out = bench(&[
        "--null",
        "--scenario",
        "list",
        "--objects",
        "2500",
        "--pages",
        "40",
        "--concurrency",
        "3",
        "--json",
    ]);
    let (stdout, stderr) = succeeded(&out);
    assert_eq!(list_report(&stdout), (40, 0, 2500), "{stdout}");
    assert!(
        stderr.contains("null responder answered 44 requests, the client sent 44"),
        "{stderr}"
    );
    assert!(stderr.contains("list: bucket has 2500 keys"), "{stderr}");
}

#[test]
fn put_small_overwrites_a_working_set() {
    let data = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("bench-overwrite-{}", std::process::id()));
    let data_arg = data.to_string_lossy().into_owned();
    let out = bench(&[
        "--scenario",
        "put-small",
        "--keys",
        "overwrite",
        "--working-set",
        "8",
        "--count",
        "120",
        "--concurrency",
        "4",
        "--json",
        "--data",
        &data_arg,
    ]);
    let (stdout, _) = succeeded(&out);
    let json = stdout.trim();
    assert!(
        json.contains("\"name\":\"put-small\",\"ops\":120,"),
        "{json}"
    );
    assert!(
        json.contains("\"keys\":\"overwrite\",\"working_set\":8,"),
        "{json}"
    );
    assert_eq!(json_u64(json, "errors"), 0, "{json}");
    assert!(!data.exists(), "{} left behind", data.display());
}

#[test]
fn fill_then_list_a_kept_bucket_on_a_server() {
    let server = common::Server::start();
    let out = bench_against(
        &server,
        &[
            "--scenario",
            "fill",
            "--bucket",
            "filled",
            "--count",
            "1250",
            "--object-size",
            "1000",
            "--concurrency",
            "8",
        ],
    );
    let (stdout, _) = succeeded(&out);
    assert!(stdout.contains("fill: 1250 ops in "), "{stdout}");

    // Exactly the 1250 keys, in order, each body derived from its key.
    let keys = server.list_keys("filled");
    let want: Vec<String> = (0..1250).map(|i| fill_object(i, 0).0).collect();
    assert_eq!(keys, want);
    for i in [0u64, 1, 617, 1249] {
        let (key, body) = fill_object(i, 1000);
        let r = server.get("filled", &key);
        assert_eq!(r.status, 200, "{}", r.describe());
        assert!(r.body == body, "body of {key} is not derived from its key");
    }

    // list on the kept bucket: no fill (the bucket has keys), 30 checked pages of 100 keys.
    let out = bench_against(
        &server,
        &[
            "--scenario",
            "list",
            "--bucket",
            "filled",
            "--pages",
            "30",
            "--page-size",
            "100",
            "--concurrency",
            "2",
            "--no-ceiling",
            "--json",
        ],
    );
    let (stdout, stderr) = succeeded(&out);
    assert!(stderr.contains("list: bucket has 1250 keys"), "{stderr}");
    assert!(!stderr.contains("wrote"), "{stderr}");
    assert_eq!(list_report(&stdout), (30, 0, 1250), "{stdout}");
    assert_eq!(server.list_keys("filled").len(), 1250, "--bucket is kept");
}

#[test]
fn list_fills_an_empty_bucket_first_in_process() {
    let data = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("bench-list-{}", std::process::id()));
    let data_arg = data.to_string_lossy().into_owned();
    let out = bench(&[
        "--scenario",
        "list",
        "--objects",
        "600",
        "--object-size",
        "100",
        "--pages",
        "25",
        "--page-size",
        "250",
        "--concurrency",
        "2",
        "--no-ceiling",
        "--data",
        &data_arg,
    ]);
    let (stdout, stderr) = succeeded(&out);
    assert!(
        stderr.contains("list: wrote 600 objects of 100 B first"),
        "{stderr}"
    );
    assert!(stderr.contains("list: bucket has 600 keys"), "{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("LIST "))
        .unwrap_or_else(|| panic!("no LIST line in {stdout}"));
    assert!(line.contains(" 25 ops (0 errors) | "), "{line}");
    assert!(
        line.contains(" ops/s, ") && line.contains("per second: fastest"),
        "{line}"
    );
    assert!(!data.exists(), "{} left behind", data.display());
}

#[test]
fn new_flags_are_checked_before_anything_starts() {
    for bad in [
        &["--scenario", "list", "--page-size", "1001"][..],
        &["--scenario", "list", "--pages", "0"],
        &["--scenario", "put-small", "--working-set", "0"],
        &["--scenario", "fill", "--bucket", "Bad_Name"],
        &["--scenario", "fill", "--count", "0"],
    ] {
        let out = bench(bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
    }
    // --null never goes to an endpoint.
    let out = bench(&["--null", "--endpoint", "http://127.0.0.1:1"]);
    assert_eq!(out.status.code(), Some(2));
}
#[test]
fn tuning_scripts_answer_help() {
    let root = env!("CARGO_MANIFEST_DIR");
    for script in [
        "tuning/ab-engine.py",
        "tuning/startup.py",
        "tuning/space.py",
        "tuning/peers.py",
        "tuning/compare.py",
    ] {
        let out = Command::new("python3")
            .arg(format!("{root}/{script}"))
            .arg("--help")
            .output()
            .expect("run python3");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{script} --help: {out:?}");
        assert!(stdout.contains("usage:"), "{script}: {stdout}");
    }
}
