//! `ringstore bench` end to end: the real binary runs every scenario against its own in-process
//! server and must report each one with no failed request. No timing is asserted.

use std::process::Command;
use std::time::{Duration, Instant};

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
