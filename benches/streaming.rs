//! Criterion bench of aws-chunked decoding + body hashing against plain hashing of the same
//! bytes: how close the streaming path (what boto3 sends over HTTPS) gets to a plain PUT.
//!
//! The source hands out 128 KiB reads (urllib3's HTTP chunk size) into a 1 MiB destination
//! buffer, as the server's DMA buffer would be; aws chunks are 1 MiB (boto3's size).

use base64::Engine;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use ringstore::auth::StreamingSigner;
use ringstore::digest::{BodyDigests, ChecksumAlgorithm, Expectations};
use ringstore::s3::error::S3Error;
use ringstore::s3::ingest::aws_chunked::{AwsChunkedDecoder, ChunkMode};
use ringstore::s3::ingest::BodySource;
use sha2::{Digest, Sha256};

const PAYLOAD_BYTES: usize = 16 * 1024 * 1024;
const AWS_CHUNK_BYTES: usize = 1024 * 1024;
const SOURCE_READ_BYTES: usize = 128 * 1024;
const DST_BYTES: usize = 1024 * 1024;

struct MemSource<'a> {
    data: &'a [u8],
    pos: usize,
}

impl BodySource for MemSource<'_> {
    async fn read(&mut self, dst: &mut [u8]) -> Result<usize, S3Error> {
        let n = dst
            .len()
            .min(SOURCE_READ_BYTES)
            .min(self.data.len() - self.pos);
        dst[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

fn payload() -> Vec<u8> {
    (0..PAYLOAD_BYTES as u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 11) as u8)
        .collect()
}

fn crc32_b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(crc32fast::hash(data).to_be_bytes())
}

/// The body boto3 sends over HTTPS: unsigned aws chunks and a CRC32 trailer.
fn unsigned_trailer_body(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 4096);
    for chunk in data.chunks(AWS_CHUNK_BYTES) {
        out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(
        format!("0\r\nx-amz-checksum-crc32:{}\r\n\r\n", crc32_b64(data)).as_bytes(),
    );
    out
}

fn signer() -> StreamingSigner {
    StreamingSigner {
        signing_key: [7; 32],
        amz_date: "20261125T143425Z".into(),
        scope: "20261125/us-east-1/s3/aws4_request".into(),
        seed_signature: [1; 32],
        trailer: false,
    }
}

/// STREAMING-AWS4-HMAC-SHA256-PAYLOAD: every chunk signed, chained from the seed.
fn signed_body(data: &[u8], s: &StreamingSigner) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 8192);
    let mut prev = s.seed_signature;
    for chunk in data.chunks(AWS_CHUNK_BYTES).chain(std::iter::once(&[][..])) {
        let sig = s.chunk_signature(&prev, &Sha256::digest(chunk).into());
        out.extend_from_slice(
            format!("{:x};chunk-signature={}\r\n", chunk.len(), hex::encode(sig)).as_bytes(),
        );
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
        prev = sig;
    }
    out
}

fn crc32_expectations() -> Expectations {
    Expectations {
        checksum: Some((ChecksumAlgorithm::Crc32, None)),
        ..Default::default()
    }
}

fn decode_and_hash(
    body: &[u8],
    mode: ChunkMode,
    trailer: Option<&str>,
    dst: &mut [u8],
) -> [u8; 16] {
    let mut src = MemSource { data: body, pos: 0 };
    let mut dec = AwsChunkedDecoder::new(
        mode,
        trailer.map(str::to_string),
        Some(PAYLOAD_BYTES as u64),
    );
    let mut digests = BodyDigests::new(crc32_expectations());
    futures_lite::future::block_on(async {
        loop {
            let n = dec.read(&mut src, dst).await.expect("valid body");
            if n == 0 {
                break;
            }
            digests.update(&dst[..n]);
        }
    });
    if let Some((algo, v)) = dec.trailer_checksum() {
        digests.set_trailer_checksum(algo, v);
    }
    digests.finish().expect("digests match").md5
}

fn bench_streaming(c: &mut Criterion) {
    let data = payload();
    let unsigned = unsigned_trailer_body(&data);
    let s = signer();
    let signed = signed_body(&data, &s);
    let mut dst = vec![0u8; DST_BYTES];
    let mut g = c.benchmark_group("streaming_16MiB");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.sample_size(20);
    g.bench_function("plain_md5_crc32", |b| {
        b.iter(|| {
            let mut src = MemSource {
                data: &data,
                pos: 0,
            };
            let mut digests = BodyDigests::new(crc32_expectations());
            futures_lite::future::block_on(async {
                loop {
                    let n = src.read(&mut dst).await.unwrap();
                    if n == 0 {
                        break;
                    }
                    digests.update(&dst[..n]);
                }
            });
            black_box(digests.finish().unwrap().md5)
        })
    });
    g.bench_function("aws_chunked_unsigned_trailer_md5_crc32", |b| {
        b.iter(|| {
            black_box(decode_and_hash(
                &unsigned,
                ChunkMode::Unsigned,
                Some("x-amz-checksum-crc32"),
                &mut dst,
            ))
        })
    });
    g.bench_function("aws_chunked_signed_chunks_md5_crc32", |b| {
        b.iter(|| {
            black_box(decode_and_hash(
                &signed,
                ChunkMode::Signed(s.clone()),
                None,
                &mut dst,
            ))
        })
    });
    g.finish();
}

criterion_group!(benches, bench_streaming);
criterion_main!(benches);
