//! One operation of the timed workloads: PUT, GET, STAT (HEAD) or DELETE of one object, its
//! checks, and what it measured; the names of the list and multipart operations recorded the
//! same way (their requests live in `list` and `multipart`); plus the per-connection random
//! source, object sizes and the checksum header a PUT or an UploadPart carries.
//!
//! Invariants: an operation succeeds only with the status S3 documents (200 for PUT, GET and
//! HEAD, 204 for DELETE) and, for GET and HEAD, the object's length when the bench knows it;
//! every failure has a short code (the S3 error code, `HTTP n`, or `transport`) for the report.

use super::client::{Client, Response};
use super::timed_args::ChecksumArg;
use base64::Engine as _;
use sha2::Digest as _;
use std::time::{Duration, Instant};

/// The operations, in report order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum OpKind {
    Put,
    Get,
    Stat,
    Delete,
    /// One ListObjectsV2 page.
    List,
    /// CreateMultipartUpload.
    MpuCreate,
    /// UploadPart.
    MpuPart,
    /// CompleteMultipartUpload.
    MpuComplete,
}

/// Number of [`OpKind`]s.
pub(crate) const OP_KINDS: usize = 8;

impl OpKind {
    pub(crate) const ALL: [OpKind; OP_KINDS] = [
        OpKind::Put,
        OpKind::Get,
        OpKind::Stat,
        OpKind::Delete,
        OpKind::List,
        OpKind::MpuCreate,
        OpKind::MpuPart,
        OpKind::MpuComplete,
    ];

    /// The name in reports (and in tuning/bench-run.schema.json's `op` enum).
    pub(crate) fn name(self) -> &'static str {
        match self {
            OpKind::Put => "PUT",
            OpKind::Get => "GET",
            OpKind::Stat => "STAT",
            OpKind::Delete => "DELETE",
            OpKind::List => "LIST",
            OpKind::MpuCreate => "MPU-CREATE",
            OpKind::MpuPart => "MPU-PART",
            OpKind::MpuComplete => "MPU-COMPLETE",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// What one operation measured.
pub(crate) struct Outcome {
    pub(crate) latency: Duration,
    /// Time to the response head (GET only).
    pub(crate) ttfb: Option<Duration>,
    /// Body bytes moved (sent for PUT, received for GET).
    pub(crate) bytes: u64,
    /// The failure's short code, or `None` on success.
    pub(crate) error: Option<String>,
}

/// Per-connection xorshift64* random numbers (deterministic per seed).
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (n > 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0);
        self.next_u64() % n
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// An object size in `min..=max`, log-uniform (each power of two equally likely).
pub(crate) fn draw_size(rng: &mut Rng, min: u64, max: u64) -> u64 {
    assert!(min <= max);
    if min == max {
        return min;
    }
    let (lo, hi) = ((min.max(1)) as f64, max as f64);
    let size = (lo.ln() + rng.unit() * (hi.ln() - lo.ln())).exp().round() as u64;
    size.clamp(min, max)
}

/// The `x-amz-checksum-*` header of `body`, if a checksum is asked for.
pub(crate) fn checksum_header(kind: ChecksumArg, body: &[u8]) -> Option<(&'static str, String)> {
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    Some(match kind {
        ChecksumArg::None => return None,
        ChecksumArg::Crc32 => (
            "x-amz-checksum-crc32",
            b64(&crc32fast::hash(body).to_be_bytes()),
        ),
        ChecksumArg::Crc32c => (
            "x-amz-checksum-crc32c",
            b64(&crc32c::crc32c(body).to_be_bytes()),
        ),
        ChecksumArg::Crc64nvme => {
            let mut d = crc64fast_nvme::Digest::new();
            d.write(body);
            ("x-amz-checksum-crc64nvme", b64(&d.sum64().to_be_bytes()))
        }
        ChecksumArg::Sha256 => ("x-amz-checksum-sha256", b64(&sha2::Sha256::digest(body))),
    })
}

/// The outcome of a request that got `result` after starting at `t0`; `check` says whether a
/// response with an accepted status is right. Time to first byte is kept (callers other than
/// GET drop it).
pub(crate) fn outcome(
    t0: Instant,
    result: Result<Response, String>,
    accept: u16,
    bytes: u64,
    check: impl Fn(&Response) -> Result<(), String>,
) -> Outcome {
    let latency = t0.elapsed();
    let (ttfb, error) = match &result {
        Err(_) => (None, Some("transport".to_string())),
        Ok(r) if r.status != accept => (Some(r.head_at - t0), Some(r.error_code())),
        Ok(r) => (Some(r.head_at - t0), check(r).err()),
    };
    Outcome {
        latency,
        ttfb,
        bytes: if error.is_none() { bytes } else { 0 },
        error,
    }
}

/// PUT `body` to `path` (with its checksum header if asked).
pub(crate) fn put(client: &mut Client, path: &str, body: &[u8], checksum: ChecksumArg) -> Outcome {
    let extra: Vec<(&str, String)> = checksum_header(checksum, body).into_iter().collect();
    let t0 = Instant::now();
    let r = client.request_with("PUT", path, "", &extra, body);
    let mut o = outcome(t0, r, 200, body.len() as u64, |r| match r.etag {
        Some(_) => Ok(()),
        None => Err("no ETag".to_string()),
    });
    o.ttfb = None;
    o
}

/// GET `path`, expecting `len` body bytes when known.
pub(crate) fn get(client: &mut Client, path: &str, len: Option<u64>) -> Outcome {
    let t0 = Instant::now();
    let r = client.request("GET", path, "", &[]);
    let got = r.as_ref().map_or(0, |r| r.content_length);
    outcome(t0, r, 200, got, |r| length_check(r, len))
}

/// HEAD `path`, expecting a `Content-Length` of `len` when known.
pub(crate) fn stat(client: &mut Client, path: &str, len: Option<u64>) -> Outcome {
    let t0 = Instant::now();
    let r = client.request("HEAD", path, "", &[]);
    let mut o = outcome(t0, r, 200, 0, |r| length_check(r, len));
    o.ttfb = None;
    o
}

/// DELETE `path`.
pub(crate) fn delete(client: &mut Client, path: &str) -> Outcome {
    let t0 = Instant::now();
    let r = client.request("DELETE", path, "", &[]);
    let mut o = outcome(t0, r, 204, 0, |_| Ok(()));
    o.ttfb = None;
    o
}

fn length_check(r: &Response, len: Option<u64>) -> Result<(), String> {
    match len {
        Some(n) if r.content_length != n => Err("wrong length".to_string()),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_stay_in_range_and_spread_logarithmically() {
        let mut rng = Rng::new(7);
        let (min, max) = (1024u64, 1024 * 1024);
        let sizes: Vec<u64> = (0..10_000).map(|_| draw_size(&mut rng, min, max)).collect();
        assert!(sizes.iter().all(|&s| (min..=max).contains(&s)));
        // Log-uniform over 10 doublings: about a tenth below 2 KiB, a tenth above 512 KiB.
        let low = sizes.iter().filter(|&&s| s < 2048).count();
        let high = sizes.iter().filter(|&&s| s > 512 * 1024).count();
        assert!((700..1300).contains(&low), "{low}");
        assert!((700..1300).contains(&high), "{high}");
        assert_eq!(draw_size(&mut rng, 5, 5), 5);
    }

    #[test]
    fn checksum_headers_match_known_values() {
        // "hello" per the AWS SDKs' test vectors.
        let h = |k| checksum_header(k, b"hello").unwrap();
        assert_eq!(
            h(ChecksumArg::Crc32),
            ("x-amz-checksum-crc32", "NhCmhg==".to_string())
        );
        assert_eq!(
            h(ChecksumArg::Crc32c),
            ("x-amz-checksum-crc32c", "mnG7TA==".to_string())
        );
        assert_eq!(
            h(ChecksumArg::Sha256),
            (
                "x-amz-checksum-sha256",
                "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=".to_string()
            )
        );
        assert_eq!(h(ChecksumArg::Crc64nvme).0, "x-amz-checksum-crc64nvme");
        assert!(checksum_header(ChecksumArg::None, b"x").is_none());
    }

    #[test]
    fn op_names_round_trip() {
        for k in OpKind::ALL {
            assert_eq!(OpKind::ALL[k.index()], k);
        }
    }
}
