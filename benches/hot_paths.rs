//! Criterion benches of the per-request hot paths: request-head parsing, SigV4 verification and
//! body hashing (MD5 alone vs. MD5 + SHA-256 + CRC32 in one pass), so later work can show its
//! speed-ups as ratios measured in one run.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ringstore::auth::{sign_headers, Credentials, Verifier};
use ringstore::digest::{BodyDigests, ChecksumAlgorithm, Expectations};
use ringstore::http::head::{HeadParse, RequestHead};
use std::time::SystemTime;

/// A PutObject head exactly as boto3 1.44 sends it (see shared/reference/boto3-wire).
const BOTO3_PUT_HEAD: &[u8] = b"PUT /bkt/small.txt HTTP/1.1\r\n\
Host: 127.0.0.1:9000\r\n\
Accept-Encoding: identity\r\n\
User-Agent: Boto3/1.44.8 md/Botocore#1.44.8 ua/2.1 os/linux#6.18.44-fc-v595 md/arch#x86_64 lang/python#3.11.7 md/pyimpl#CPython m/N,E,b,U,e,Z cfg/retry-mode#standard Botocore/1.44.8\r\n\
Expect: 100-continue\r\n\
x-amz-checksum-crc32: rwg7LQ==\r\n\
x-amz-sdk-checksum-algorithm: CRC32\r\n\
X-Amz-Date: 20261125T143414Z\r\n\
X-Amz-Content-SHA256: a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447\r\n\
Authorization: AWS4-HMAC-SHA256 Credential=rustfsadmin/20261125/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-checksum-crc32;x-amz-content-sha256;x-amz-date;x-amz-sdk-checksum-algorithm, Signature=78a8dff0fbc46e5fdc3324cbb7c9eceef654934591182099991bdbb48c1bee3d\r\n\
amz-sdk-invocation-id: 5b2d76a1-0b36-4fbf-b3fb-f4367a898c88\r\n\
amz-sdk-request: attempt=1; max=3\r\n\
Content-Length: 12\r\n\r\n";

fn parse(buf: &[u8]) -> RequestHead {
    match RequestHead::parse(buf).expect("valid head") {
        HeadParse::Complete(h, _) => h,
        HeadParse::Partial => panic!("partial head"),
    }
}

fn bench_head_parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("head_parse");
    g.throughput(Throughput::Bytes(BOTO3_PUT_HEAD.len() as u64));
    g.bench_function("boto3_put_object", |b| {
        b.iter(|| parse(black_box(BOTO3_PUT_HEAD)))
    });
    g.finish();
}

fn bench_sigv4(c: &mut Criterion) {
    let creds = Credentials {
        access_key: "benchkey".into(),
        secret_key: "benchsecret".into(),
    };
    let now = SystemTime::now();
    let mut headers = vec![
        ("host".to_string(), "127.0.0.1:9000".to_string()),
        ("x-amz-checksum-crc32".to_string(), "rwg7LQ==".to_string()),
        (
            "x-amz-sdk-checksum-algorithm".to_string(),
            "CRC32".to_string(),
        ),
    ];
    let payload = "a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447";
    sign_headers(
        &creds,
        "PUT",
        "/bkt/small.txt",
        "",
        &mut headers,
        payload,
        now,
        "us-east-1",
    );
    let mut raw = String::from("PUT /bkt/small.txt HTTP/1.1\r\n");
    for (n, v) in &headers {
        raw.push_str(&format!("{n}: {v}\r\n"));
    }
    raw.push_str("content-length: 12\r\n\r\n");
    let head = parse(raw.as_bytes());
    let verifier = Verifier::new(creds);
    verifier.verify(&head, now).expect("bench request verifies");
    let mut g = c.benchmark_group("sigv4");
    g.bench_function("verify_header_auth_cached_key", |b| {
        b.iter(|| verifier.verify(black_box(&head), now).expect("verifies"))
    });
    g.bench_function("parse_and_verify", |b| {
        b.iter(|| {
            verifier
                .verify(&parse(black_box(raw.as_bytes())), now)
                .expect("verifies")
        })
    });
    g.finish();
}

fn bench_hashing(c: &mut Criterion) {
    let data: Vec<u8> = (0..(1u32 << 20))
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let mut g = c.benchmark_group("body_hashing_1MiB");
    g.throughput(Throughput::Bytes(data.len() as u64));
    let cases: [(&str, Expectations); 4] = [
        ("md5_only", Expectations::default()),
        (
            "md5_crc32",
            Expectations {
                checksum: Some((ChecksumAlgorithm::Crc32, None)),
                ..Default::default()
            },
        ),
        (
            "md5_sha256",
            Expectations {
                payload_sha256: Some([0; 32]),
                ..Default::default()
            },
        ),
        (
            "md5_sha256_crc32_boto3_default",
            Expectations {
                payload_sha256: Some([0; 32]),
                checksum: Some((ChecksumAlgorithm::Crc32, None)),
                ..Default::default()
            },
        ),
    ];
    for (name, exp) in cases {
        g.bench_with_input(BenchmarkId::from_parameter(name), &exp, |b, exp| {
            b.iter(|| {
                let mut d = BodyDigests::new(exp.clone());
                for chunk in data.chunks(64 * 1024) {
                    d.update(black_box(chunk));
                }
                let _ = black_box(d.finish());
            })
        });
    }
    g.finish();
}

/// md5-many's `update_many` by the number of equal 32 KiB lanes (the MD5 lanes' batch slice):
/// why `src/digest/lanes.rs` pads a batch to 8 or 16 lanes.
fn bench_md5_lanes(c: &mut Criterion) {
    const SLICE_BYTES: usize = 32 * 1024;
    let engine = md5_many::Md5Many::new();
    let data: Vec<u8> = (0..(SLICE_BYTES * 16) as u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let mut g = c.benchmark_group(format!("md5_lanes_32KiB_{}_native", engine.lanes()));
    for width in [1usize, 2, 4, 6, 8, 12, 16] {
        g.throughput(Throughput::Bytes((width * SLICE_BYTES) as u64));
        let inputs: Vec<&[u8]> = data.chunks(SLICE_BYTES).take(width).collect();
        g.bench_with_input(BenchmarkId::from_parameter(width), &inputs, |b, inputs| {
            let mut states = vec![md5_many::Md5State::new(); width];
            b.iter(|| engine.update_many(&mut states, black_box(inputs)))
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    bench_head_parse,
    bench_sigv4,
    bench_hashing,
    bench_md5_lanes
);
criterion_main!(benches);
