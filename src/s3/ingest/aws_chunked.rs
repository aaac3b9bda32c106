//! aws-chunked request bodies (`Content-Encoding: aws-chunked`), decoded as a stream.
//!
//! Role: sits on top of a [`BodySource`] that already removed HTTP `Transfer-Encoding: chunked`
//! (usually the request's `BodyReader`) and yields the object payload. It understands the three streaming
//! payload modes S3 accepts:
//!
//! - `STREAMING-UNSIGNED-PAYLOAD-TRAILER` ([`ChunkMode::Unsigned`], what boto3 sends over HTTPS):
//!   `hex(size)\r\n<data>\r\n` ... `0\r\n` + trailer lines + `\r\n`;
//! - `STREAMING-AWS4-HMAC-SHA256-PAYLOAD` ([`ChunkMode::Signed`], `signer.trailer == false`):
//!   `hex(size);chunk-signature=<64 hex>\r\n<data>\r\n` ... `0;chunk-signature=<sig>\r\n\r\n`;
//! - `STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER` (`signer.trailer == true`): signed chunks, then
//!   trailer lines, then `x-amz-trailer-signature:<64 hex>\r\n`, then `\r\n`.
//!
//! Invariants:
//! - payload bytes go from the source straight into the caller's buffer whenever the decoder is
//!   inside chunk data and holds no buffered bytes; only chunk headers, CRLFs and trailers (and
//!   the few payload bytes that arrive in the same read as a header) pass through the internal
//!   buffer of [`BUFFER_BYTES`];
//! - every line is bounded ([`LINE_MAX_BYTES`]), the trailer section too
//!   (`TRAILER_SECTION_MAX_BYTES`, shared with HTTP chunked framing); chunk sizes are parsed by
//!   the HTTP layer's one chunk-size parser;
//! - in signed mode every chunk, the final empty one included, is checked against the signature
//!   chain (seeded with the request signature) as soon as its last byte is read, and the trailer
//!   against `x-amz-trailer-signature`; signatures are compared in constant time;
//! - the body is only complete and trustworthy once [`AwsChunkedDecoder::read`] returned `Ok(0)`:
//!   by then the final chunk, the trailers, every signature, `X-Amz-Decoded-Content-Length` and
//!   the end of the source (nothing may follow the terminating empty line) were all checked;
//! - after an error the decoder is poisoned: every later call returns the same error;
//! - the final empty line is required, as MinIO requires it and SDKs send it (AWS's trailer
//!   example omits it, but no leniency of S3 itself could be confirmed): a body that stops right
//!   after the last trailer line is `IncompleteBody`.

use crate::auth::{constant_time_eq, StreamingSigner};
use crate::digest::ChecksumAlgorithm;
use crate::http::body::{parse_chunk_size_hex, CHUNK_LINE_MAX_BYTES, TRAILER_SECTION_MAX_BYTES};
use crate::s3::error::S3Error;
use crate::s3::ingest::BodySource;
use base64::Engine;
use sha2::{Digest, Sha256};

/// Size of the internal buffer for chunk headers, CRLFs and trailers.
pub(crate) const BUFFER_BYTES: usize = 8 * 1024;
/// Longest chunk-header or trailer line accepted, without its CRLF (the HTTP layer's limit).
pub(crate) const LINE_MAX_BYTES: usize = CHUNK_LINE_MAX_BYTES;

/// The chunk extension that carries a chunk's signature.
const CHUNK_SIGNATURE_EXTENSION: &str = "chunk-signature";
/// The trailer line that carries the trailer's signature.
const TRAILER_SIGNATURE_NAME: &str = "x-amz-trailer-signature";
/// Prefix of checksum trailer names (`x-amz-checksum-crc32`, ...).
const CHECKSUM_TRAILER_PREFIX: &str = "x-amz-checksum-";

// Compile-time guarantee that a maximal line plus its CRLF always fits the buffer.
const _: () = assert!(LINE_MAX_BYTES + 2 <= BUFFER_BYTES);

/// Whether chunks carry signatures.
#[derive(Debug, Clone)]
pub enum ChunkMode {
    /// `STREAMING-UNSIGNED-PAYLOAD-TRAILER`: no chunk signatures.
    Unsigned,
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]`; `signer.trailer` says whether a signed
    /// trailer follows the final chunk.
    Signed(StreamingSigner),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Expecting `hex(size)[;ext...]\r\n`.
    ChunkHeader,
    /// Inside chunk data with `remaining` bytes to go.
    ChunkData { remaining: u64 },
    /// Expecting the CRLF after a chunk's data.
    ChunkDataEnd,
    /// After the final chunk: trailer lines up to an empty line.
    Trailers,
    /// After the terminating empty line: the source must end here.
    Drain,
    /// Everything read and verified.
    Done,
}

/// Streaming decoder of one aws-chunked body. See the module documentation.
pub struct AwsChunkedDecoder {
    signer: Option<StreamingSigner>,
    /// Signature of the previous chunk (the seed before the first chunk).
    prev_signature: [u8; 32],
    /// Signature the client claimed for the chunk being read.
    claimed_signature: [u8; 32],
    /// SHA-256 of the current chunk's data so far (signed mode only).
    chunk_hasher: Sha256,
    /// The checksum trailer that `x-amz-trailer` announced.
    expected_checksum: Option<ChecksumAlgorithm>,
    decoded_length: Option<u64>,
    decoded: u64,
    state: State,
    /// Set on the first error (or by `new` for an unsupported `x-amz-trailer`); returned forever.
    failed: Option<S3Error>,
    trailer_checksum: Option<(ChecksumAlgorithm, Vec<u8>)>,
    /// Holds `buf[start..end]`: bytes read from the source but not consumed yet.
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

/// A parsed chunk header line.
struct ChunkHeader {
    size: u64,
    signature: Option<[u8; 32]>,
}

impl AwsChunkedDecoder {
    /// `expect_trailer`: names from `x-amz-trailer` header (lowercase, may be empty).
    /// `decoded_length`: X-Amz-Decoded-Content-Length if sent.
    ///
    /// An unsupported announced checksum (unknown algorithm, CRC64NVME, several checksums) is
    /// reported by the first [`read`](Self::read), before any body byte is consumed.
    pub fn new(
        mode: ChunkMode,
        expect_trailer: Option<String>,
        decoded_length: Option<u64>,
    ) -> Self {
        let (expected_checksum, failed) = match expected_checksum(expect_trailer.as_deref()) {
            Ok(algo) => (algo, None),
            Err(e) => (None, Some(e)),
        };
        let signer = match mode {
            ChunkMode::Unsigned => None,
            ChunkMode::Signed(signer) => Some(signer),
        };
        AwsChunkedDecoder {
            prev_signature: signer.as_ref().map_or([0; 32], |s| s.seed_signature),
            signer,
            claimed_signature: [0; 32],
            chunk_hasher: Sha256::new(),
            expected_checksum,
            decoded_length,
            decoded: 0,
            state: State::ChunkHeader,
            failed,
            trailer_checksum: None,
            buf: vec![0u8; BUFFER_BYTES].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    /// Reads decoded payload bytes into `dst` (Ok(0) = end, after the final chunk, trailers and
    /// every signature check passed). Payload bytes are read from `src` DIRECTLY into `dst` whenever
    /// the decoder is inside chunk data and has no buffered bytes (zero copy); only chunk headers,
    /// CRLFs and trailers go through a small internal buffer (bounded, e.g. 8 KiB).
    ///
    /// An empty `dst` returns `Ok(0)` without progress (as `BodyReader::read` does).
    pub async fn read<S: BodySource>(
        &mut self,
        src: &mut S,
        dst: &mut [u8],
    ) -> Result<usize, S3Error> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if dst.is_empty() {
            return Ok(0);
        }
        match self.advance(src, dst).await {
            Ok(n) => Ok(n),
            Err(e) => {
                self.failed = Some(e.clone());
                Err(e)
            }
        }
    }

    /// After read() returned Ok(0): the checksum trailer, if any, as (algorithm, raw digest bytes
    /// decoded from base64).
    pub fn trailer_checksum(&self) -> Option<(ChecksumAlgorithm, Vec<u8>)> {
        if self.state == State::Done {
            self.trailer_checksum.clone()
        } else {
            None
        }
    }

    /// Payload bytes delivered so far.
    pub fn decoded_bytes(&self) -> u64 {
        self.decoded
    }

    /// Runs the state machine until payload bytes are delivered or the body is complete.
    async fn advance<S: BodySource>(
        &mut self,
        src: &mut S,
        dst: &mut [u8],
    ) -> Result<usize, S3Error> {
        loop {
            match self.state {
                State::ChunkData { remaining } => return self.read_data(src, dst, remaining).await,
                State::ChunkDataEnd => {
                    self.fill_at_least(src, 2).await?;
                    if !self.buffered().starts_with(b"\r\n") {
                        return Err(malformed("chunk data not followed by CRLF"));
                    }
                    self.consume(2);
                    self.state = State::ChunkHeader;
                }
                State::ChunkHeader => self.read_chunk_header(src).await?,
                State::Trailers => {
                    self.read_trailers(src).await?;
                    self.state = State::Drain;
                }
                State::Drain => {
                    self.expect_end(src).await?;
                    self.state = State::Done;
                }
                State::Done => return Ok(0),
            }
        }
    }

    /// Delivers chunk data: from the buffer if it holds any, else straight from the source.
    async fn read_data<S: BodySource>(
        &mut self,
        src: &mut S,
        dst: &mut [u8],
        remaining: u64,
    ) -> Result<usize, S3Error> {
        let want = if remaining < dst.len() as u64 {
            remaining as usize
        } else {
            dst.len()
        };
        let n = if self.start < self.end {
            let n = want.min(self.end - self.start);
            dst[..n].copy_from_slice(&self.buf[self.start..self.start + n]);
            self.consume(n);
            n
        } else {
            let n = src.read(&mut dst[..want]).await?;
            if n > want {
                return Err(S3Error::internal(
                    "aws-chunked body",
                    "source returned more bytes than requested",
                ));
            }
            n
        };
        if n == 0 {
            return Err(truncated());
        }
        if self.signer.is_some() {
            self.chunk_hasher.update(&dst[..n]);
        }
        self.decoded += n as u64;
        let left = remaining - n as u64;
        if left == 0 {
            self.verify_chunk_signature()?;
            self.state = State::ChunkDataEnd;
        } else {
            self.state = State::ChunkData { remaining: left };
        }
        Ok(n)
    }

    /// Parses one chunk header; the final (size 0) chunk moves on to the trailers.
    async fn read_chunk_header<S: BodySource>(&mut self, src: &mut S) -> Result<(), S3Error> {
        let len = self.fill_line(src).await?;
        let header = parse_chunk_header(&self.buffered()[..len], self.signer.is_some())?;
        self.consume(len + 2);
        if let Some(total) = self.decoded_length {
            // Invariant: decoded <= total (checked here before any chunk is read).
            if header.size > total - self.decoded {
                return Err(length_mismatch(total));
            }
        }
        if let Some(sig) = header.signature {
            self.claimed_signature = sig;
        }
        if header.size == 0 {
            // The final chunk is signed too, over the hash of no data.
            self.verify_chunk_signature()?;
            if let Some(total) = self.decoded_length {
                if self.decoded != total {
                    return Err(length_mismatch(total));
                }
            }
            self.state = State::Trailers;
        } else {
            self.state = State::ChunkData {
                remaining: header.size,
            };
        }
        Ok(())
    }

    /// In signed mode, checks the chunk just finished against the chain and advances it.
    fn verify_chunk_signature(&mut self) -> Result<(), S3Error> {
        let Some(signer) = &self.signer else {
            return Ok(());
        };
        let data_sha256: [u8; 32] = self.chunk_hasher.finalize_reset().into();
        let expected = signer.chunk_signature(&self.prev_signature, &data_sha256);
        if !constant_time_eq(&expected, &self.claimed_signature) {
            return Err(signature_mismatch());
        }
        self.prev_signature = expected;
        Ok(())
    }

    /// Reads the trailer section (up to and including its empty line) and checks it.
    async fn read_trailers<S: BodySource>(&mut self, src: &mut S) -> Result<(), S3Error> {
        let signed = self.signer.is_some();
        let signed_trailer = self.signer.as_ref().is_some_and(|s| s.trailer);
        let mut section_bytes = 0usize;
        let mut trailers: Vec<(String, String)> = Vec::new();
        let mut trailer_signature: Option<[u8; 32]> = None;
        loop {
            let len = self.fill_line(src).await?;
            section_bytes += len + 2;
            if section_bytes > TRAILER_SECTION_MAX_BYTES {
                return Err(malformed("trailer section too large"));
            }
            if len == 0 {
                self.consume(2);
                break;
            }
            if trailer_signature.is_some() {
                return Err(malformed("trailer line after x-amz-trailer-signature"));
            }
            let (name, value) = split_trailer_line(&self.buffered()[..len])?;
            self.consume(len + 2);
            if signed && !signed_trailer {
                return Err(malformed(
                    "trailer in a signed body whose x-amz-content-sha256 announces none",
                ));
            }
            if name == TRAILER_SIGNATURE_NAME {
                if signed_trailer {
                    trailer_signature =
                        Some(parse_signature_hex(value.as_bytes()).ok_or_else(signature_mismatch)?);
                }
                // Unsigned mode: an unexpected trailer, ignored like any other.
                continue;
            }
            trailers.push((name, value));
        }
        if signed_trailer {
            self.verify_trailer_signature(&trailers, trailer_signature)?;
        }
        if let Some(algo) = self.expected_checksum {
            self.trailer_checksum = Some((algo, checksum_from_trailers(algo, &trailers)?));
        }
        Ok(())
    }

    /// Checks `x-amz-trailer-signature` over the canonical trailer (`name:value\n` per trailer,
    /// sorted by name, as SigV4 canonical headers), chained from the final chunk's signature.
    fn verify_trailer_signature(
        &self,
        trailers: &[(String, String)],
        claimed: Option<[u8; 32]>,
    ) -> Result<(), S3Error> {
        let (Some(signer), Some(claimed)) = (&self.signer, claimed) else {
            return Err(signature_mismatch());
        };
        let mut sorted: Vec<&(String, String)> = trailers.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        let mut canonical = Vec::with_capacity(section_len(trailers));
        for (name, value) in sorted {
            canonical.extend_from_slice(name.as_bytes());
            canonical.push(b':');
            canonical.extend_from_slice(value.as_bytes());
            canonical.push(b'\n');
        }
        let expected = signer.trailer_signature(&self.prev_signature, &canonical);
        if constant_time_eq(&expected, &claimed) {
            Ok(())
        } else {
            Err(signature_mismatch())
        }
    }

    /// After the terminating empty line: nothing may follow, and the source must end.
    async fn expect_end<S: BodySource>(&mut self, src: &mut S) -> Result<(), S3Error> {
        if self.start < self.end {
            return Err(malformed("data after the end of the aws-chunked body"));
        }
        self.start = 0;
        self.end = 0;
        let n = src.read(&mut self.buf).await?;
        if n != 0 {
            return Err(malformed("data after the end of the aws-chunked body"));
        }
        Ok(())
    }

    /// Ensures the buffer holds a whole line (CRLF included) of at most [`LINE_MAX_BYTES`];
    /// returns the line's length without the CRLF. The line starts at `buffered()[0]`.
    async fn fill_line<S: BodySource>(&mut self, src: &mut S) -> Result<usize, S3Error> {
        // Bytes at the start of the buffered data already known to hold no CRLF.
        let mut scanned = 0usize;
        loop {
            let data = self.buffered();
            if let Some(i) = memchr::memmem::find(&data[scanned..], b"\r\n") {
                let len = scanned + i;
                if len > LINE_MAX_BYTES {
                    return Err(malformed("line too long"));
                }
                return Ok(len);
            }
            if data.len() >= LINE_MAX_BYTES + 2 {
                return Err(malformed("line too long"));
            }
            // A CR at the very end may start a CRLF completed by the next read.
            scanned = data.len().saturating_sub(1);
            self.fill(src).await?;
        }
    }

    /// Ensures at least `n` (<= [`BUFFER_BYTES`]) bytes are buffered.
    async fn fill_at_least<S: BodySource>(&mut self, src: &mut S, n: usize) -> Result<(), S3Error> {
        while self.end - self.start < n {
            self.fill(src).await?;
        }
        Ok(())
    }

    /// Moves the unconsumed bytes to the front and reads more after them; the source ending here
    /// means the body was cut short.
    async fn fill<S: BodySource>(&mut self, src: &mut S) -> Result<(), S3Error> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            return Err(malformed("line too long"));
        }
        let free = self.buf.len() - self.end;
        let n = src.read(&mut self.buf[self.end..]).await?;
        if n == 0 {
            return Err(truncated());
        }
        if n > free {
            return Err(S3Error::internal(
                "aws-chunked body",
                "source returned more bytes than requested",
            ));
        }
        self.end += n;
        Ok(())
    }

    fn buffered(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start >= self.end {
            self.start = 0;
            self.end = 0;
        }
    }
}

/// The checksum algorithm announced in `x-amz-trailer`, if any.
fn expected_checksum(names: Option<&str>) -> Result<Option<ChecksumAlgorithm>, S3Error> {
    let mut found = None;
    for name in names.unwrap_or("").split(',') {
        let name = name.trim().to_ascii_lowercase();
        let Some(algo_name) = name.strip_prefix(CHECKSUM_TRAILER_PREFIX) else {
            continue;
        };
        let algo = ChecksumAlgorithm::from_name(algo_name).ok_or_else(|| {
            crate::s3err!(
                InvalidRequest,
                "The value specified in the x-amz-trailer header is not supported: {name}."
            )
        })?;
        if found.is_some() {
            return Err(crate::s3err!(
                InvalidRequest,
                "Expecting a single x-amz-checksum- trailer. Multiple checksum Types are not allowed."
            ));
        }
        found = Some(algo);
    }
    Ok(found)
}

/// Finds and decodes the announced checksum among the trailers.
fn checksum_from_trailers(
    algo: ChecksumAlgorithm,
    trailers: &[(String, String)],
) -> Result<Vec<u8>, S3Error> {
    let header = algo.header_name();
    let mut values = trailers.iter().filter(|(n, _)| n == header).map(|(_, v)| v);
    let value = values.next().ok_or_else(|| {
        crate::s3err!(
            InvalidRequest,
            "The x-amz-trailer header announced {header}, but the request carries no such trailer."
        )
    })?;
    if values.next().is_some() {
        return Err(crate::s3err!(
            InvalidRequest,
            "The {header} trailer was sent more than once."
        ));
    }
    base64::engine::general_purpose::STANDARD
        .decode(value)
        .ok()
        .filter(|raw| raw.len() == digest_len(algo))
        .ok_or_else(|| {
            crate::s3err!(
                InvalidRequest,
                "Value for {header} trailing header is invalid."
            )
        })
}

/// Raw digest length of a checksum algorithm.
fn digest_len(algo: ChecksumAlgorithm) -> usize {
    algo.digest_len()
}

/// Parses `hex(size)[;name=value...]`; in signed mode `chunk-signature=<64 hex>` is required.
fn parse_chunk_header(line: &[u8], signed: bool) -> Result<ChunkHeader, S3Error> {
    let (size_hex, extensions) = match memchr::memchr(b';', line) {
        Some(i) => (&line[..i], Some(&line[i + 1..])),
        None => (line, None),
    };
    let size = parse_chunk_size(size_hex)?;
    let signature = if signed {
        let sig = extensions
            .and_then(find_chunk_signature)
            .ok_or_else(signature_mismatch)?;
        Some(sig)
    } else {
        // Unsigned chunks carry no signature; any extension is ignored, as HTTP chunking does.
        None
    };
    Ok(ChunkHeader { size, signature })
}

/// Strict hex chunk size (the HTTP layer's rule: 1 to `CHUNK_SIZE_MAX_HEX_DIGITS` hex digits).
fn parse_chunk_size(hex: &[u8]) -> Result<u64, S3Error> {
    parse_chunk_size_hex(hex).ok_or_else(|| malformed("bad chunk size"))
}

/// The value of the `chunk-signature` extension among `;`-separated extensions.
fn find_chunk_signature(extensions: &[u8]) -> Option<[u8; 32]> {
    extensions.split(|&b| b == b';').find_map(|ext| {
        let eq = memchr::memchr(b'=', ext)?;
        if trim(&ext[..eq]) != CHUNK_SIGNATURE_EXTENSION.as_bytes() {
            return None;
        }
        parse_signature_hex(trim(&ext[eq + 1..]))
    })
}

/// 64 hex digits to 32 bytes.
fn parse_signature_hex(hex: &[u8]) -> Option<[u8; 32]> {
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex, &mut out).ok()?;
    Some(out)
}

/// Splits `name:value` into the lowercase name and the value without surrounding blanks.
fn split_trailer_line(line: &[u8]) -> Result<(String, String), S3Error> {
    let colon = memchr::memchr(b':', line).ok_or_else(|| malformed("trailer line without ':'"))?;
    let name = trim(&line[..colon]);
    let value = trim(&line[colon + 1..]);
    if name.is_empty() || !name.iter().all(|b| b.is_ascii_graphic()) {
        return Err(malformed("bad trailer name"));
    }
    let value = std::str::from_utf8(value).map_err(|_| malformed("trailer value is not UTF-8"))?;
    let name = String::from_utf8_lossy(name).to_ascii_lowercase();
    Ok((name, value.to_string()))
}

/// Canonical trailer length estimate (for one allocation).
fn section_len(trailers: &[(String, String)]) -> usize {
    trailers.iter().map(|(n, v)| n.len() + v.len() + 2).sum()
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

fn malformed(what: &str) -> S3Error {
    crate::s3err!(IncompleteBody, "Malformed aws-chunked body: {what}.")
}

fn truncated() -> S3Error {
    crate::s3err!(
        IncompleteBody,
        "The request body ended before the end of its aws-chunked encoding."
    )
}

fn length_mismatch(declared: u64) -> S3Error {
    crate::s3err!(
        IncompleteBody,
        "The decoded body does not have the {declared} bytes announced by X-Amz-Decoded-Content-Length."
    )
}

fn signature_mismatch() -> S3Error {
    crate::s3err!(
        SignatureDoesNotMatch,
        "The request signature we calculated does not match the signature you provided."
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::s3::error::S3ErrorCode;
    use futures_lite::future::block_on;
    use hmac::{Hmac, Mac};

    /// The aws-chunked stream of `https_put_object_default.txt` (boto3 over HTTPS).
    const BOTO3_BODY: &[u8] = b"c\r\nhello world\n\r\n0\r\nx-amz-checksum-crc32:rwg7LQ==\r\n\r\n";

    /// In-memory source that ends each read at the next cut point (and at `dst.len()`).
    struct MemStream {
        data: Vec<u8>,
        pos: usize,
        cuts: Vec<usize>,
        next_cut: usize,
        largest_request: usize,
        direct_bytes: usize,
    }

    impl MemStream {
        fn new(data: &[u8], mut cuts: Vec<usize>) -> MemStream {
            cuts.sort_unstable();
            cuts.dedup();
            MemStream {
                data: data.to_vec(),
                pos: 0,
                cuts,
                next_cut: 0,
                largest_request: 0,
                direct_bytes: 0,
            }
        }

        fn whole(data: &[u8]) -> MemStream {
            MemStream::new(data, Vec::new())
        }

        fn bytewise(data: &[u8]) -> MemStream {
            MemStream::new(data, (1..data.len()).collect())
        }
    }

    impl BodySource for MemStream {
        async fn read(&mut self, dst: &mut [u8]) -> Result<usize, S3Error> {
            self.largest_request = self.largest_request.max(dst.len());
            while self.next_cut < self.cuts.len() && self.cuts[self.next_cut] <= self.pos {
                self.next_cut += 1;
            }
            let limit = self
                .cuts
                .get(self.next_cut)
                .copied()
                .unwrap_or(self.data.len())
                .min(self.data.len());
            let n = (limit - self.pos).min(dst.len());
            dst[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            if dst.len() > BUFFER_BYTES {
                self.direct_bytes += n;
            }
            Ok(n)
        }
    }

    /// Tiny deterministic PRNG (xorshift64*).
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        fn cuts(&mut self, len: usize, count: usize) -> Vec<usize> {
            (0..count).map(|_| 1 + self.below(len.max(2) - 1)).collect()
        }
    }

    fn decode_all(
        dec: &mut AwsChunkedDecoder,
        src: &mut MemStream,
        dst_len: usize,
    ) -> Result<Vec<u8>, S3Error> {
        let mut out = Vec::new();
        let mut dst = vec![0u8; dst_len];
        block_on(async {
            loop {
                let n = dec.read(src, &mut dst).await?;
                if n == 0 {
                    return Ok(out);
                }
                out.extend_from_slice(&dst[..n]);
            }
        })
    }

    fn unsigned(trailer: &str, len: Option<u64>) -> AwsChunkedDecoder {
        AwsChunkedDecoder::new(ChunkMode::Unsigned, Some(trailer.to_string()), len)
    }

    fn b64(s: &str) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .expect("test base64")
    }

    fn code_of(body: &[u8], dec: AwsChunkedDecoder) -> S3ErrorCode {
        let mut dec = dec;
        decode_all(&mut dec, &mut MemStream::whole(body), 4096)
            .expect_err("body must be rejected")
            .code
    }

    fn check_boto3(mut src: MemStream, dst_len: usize) {
        let mut dec = unsigned("x-amz-checksum-crc32", Some(12));
        let out = decode_all(&mut dec, &mut src, dst_len).expect("boto3 body decodes");
        assert_eq!(out, b"hello world\n");
        assert_eq!(dec.decoded_bytes(), 12);
        assert_eq!(
            dec.trailer_checksum(),
            Some((ChecksumAlgorithm::Crc32, b64("rwg7LQ==")))
        );
        // Finished: later reads keep saying "end".
        let mut dst = [0u8; 8];
        assert_eq!(block_on(dec.read(&mut src, &mut dst)).unwrap(), 0);
    }

    #[test]
    fn boto3_body_whole_and_bytewise() {
        for dst_len in [1, 5, 12, 4096] {
            check_boto3(MemStream::whole(BOTO3_BODY), dst_len);
            check_boto3(MemStream::bytewise(BOTO3_BODY), dst_len);
        }
    }

    #[test]
    fn boto3_body_every_two_piece_split() {
        for cut in 1..BOTO3_BODY.len() {
            for dst_len in [1, 3, 64] {
                check_boto3(MemStream::new(BOTO3_BODY, vec![cut]), dst_len);
            }
        }
    }

    #[test]
    fn boto3_body_random_splits() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for _ in 0..500 {
            let count = 1 + rng.below(10);
            let cuts = rng.cuts(BOTO3_BODY.len(), count);
            let dst_len = 1 + rng.below(20);
            check_boto3(MemStream::new(BOTO3_BODY, cuts), dst_len);
        }
    }

    #[test]
    fn boto3_body_without_declared_length_or_trailer_name() {
        let mut dec = AwsChunkedDecoder::new(ChunkMode::Unsigned, None, None);
        let out = decode_all(&mut dec, &mut MemStream::whole(BOTO3_BODY), 100).unwrap();
        assert_eq!(out, b"hello world\n");
        // Not announced in x-amz-trailer: the trailer is ignored.
        assert_eq!(dec.trailer_checksum(), None);
    }

    fn pattern(len: usize, seed: u32) -> Vec<u8> {
        (0..len as u32)
            .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 13) as u8)
            .collect()
    }

    /// Unsigned aws-chunked body of `data` cut into chunks of `sizes`, with a CRC32 trailer.
    fn unsigned_body(data: &[u8], sizes: &[usize]) -> Vec<u8> {
        let mut body = Vec::new();
        let mut pos = 0;
        for &size in sizes {
            body.extend_from_slice(format!("{size:x}\r\n").as_bytes());
            body.extend_from_slice(&data[pos..pos + size]);
            body.extend_from_slice(b"\r\n");
            pos += size;
        }
        assert_eq!(pos, data.len());
        let crc = crc32fast::hash(data).to_be_bytes();
        let crc = base64::engine::general_purpose::STANDARD.encode(crc);
        body.extend_from_slice(format!("0\r\nx-amz-checksum-crc32:{crc}\r\n\r\n").as_bytes());
        body
    }

    #[test]
    fn multi_chunk_unsigned_small_buffers() {
        let data = pattern(65536 + 65536 + 123, 7);
        let body = unsigned_body(&data, &[65536, 65536, 123]);
        let want_crc = crc32fast::hash(&data).to_be_bytes().to_vec();
        let mut rng = Rng(42);
        for dst_len in [1, 7, 4096, 100_000] {
            let sources = [
                MemStream::whole(&body),
                MemStream::new(&body, (1000..body.len()).step_by(1000).collect()),
                MemStream::new(&body, rng.cuts(body.len(), 300)),
            ];
            for mut src in sources {
                let mut dec = unsigned("x-amz-checksum-crc32", Some(data.len() as u64));
                let out = decode_all(&mut dec, &mut src, dst_len).unwrap();
                assert!(out == data, "payload differs with dst_len {dst_len}");
                assert_eq!(dec.decoded_bytes(), data.len() as u64);
                assert_eq!(
                    dec.trailer_checksum(),
                    Some((ChecksumAlgorithm::Crc32, want_crc.clone()))
                );
            }
        }
    }

    #[test]
    fn multi_chunk_unsigned_bytewise() {
        let data = pattern(3000, 1);
        let body = unsigned_body(&data, &[1000, 1, 1999]);
        for dst_len in [1, 7, 4096] {
            let mut dec = unsigned("x-amz-checksum-crc32", Some(3000));
            let out = decode_all(&mut dec, &mut MemStream::bytewise(&body), dst_len).unwrap();
            assert!(out == data);
        }
    }

    #[test]
    fn payload_goes_straight_into_dst() {
        let data = pattern(1 << 20, 3);
        let body = unsigned_body(&data, &[1 << 20]);
        let mut src = MemStream::whole(&body);
        let mut dec = unsigned("x-amz-checksum-crc32", Some(1 << 20));
        let out = decode_all(&mut dec, &mut src, 256 * 1024).unwrap();
        assert!(out == data);
        // All but the bytes read along with the chunk header came through dst-sized reads.
        assert!(src.largest_request >= 256 * 1024);
        assert!(src.direct_bytes >= (1 << 20) - BUFFER_BYTES);
    }

    // ---- signed chunks: AWS's published examples ----

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
        mac.update(data);
        mac.finalize().into_bytes().into()
    }

    fn signer(seed_hex: &str, trailer: bool) -> StreamingSigner {
        let k_date = hmac(format!("AWS4{SECRET}").as_bytes(), b"20130524");
        let k_region = hmac(&k_date, b"us-east-1");
        let k_service = hmac(&k_region, b"s3");
        StreamingSigner {
            signing_key: hmac(&k_service, b"aws4_request"),
            amz_date: "20130524T000000Z".into(),
            scope: "20130524/us-east-1/s3/aws4_request".into(),
            seed_signature: parse_signature_hex(seed_hex.as_bytes()).expect("seed hex"),
            trailer,
        }
    }

    const SEED: &str = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";
    const SIG1: &str = "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648";
    const SIG2: &str = "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497";
    const SIG3: &str = "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9";

    fn signed_example_body() -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(format!("10000;chunk-signature={SIG1}\r\n").as_bytes());
        body.extend_from_slice(&[b'a'; 65536]);
        body.extend_from_slice(format!("\r\n400;chunk-signature={SIG2}\r\n").as_bytes());
        body.extend_from_slice(&[b'a'; 1024]);
        body.extend_from_slice(format!("\r\n0;chunk-signature={SIG3}\r\n\r\n").as_bytes());
        body
    }

    fn signed_decoder() -> AwsChunkedDecoder {
        AwsChunkedDecoder::new(ChunkMode::Signed(signer(SEED, false)), None, Some(66560))
    }

    fn find(hay: &[u8], needle: &[u8]) -> usize {
        memchr::memmem::find(hay, needle).expect("needle present")
    }

    #[test]
    fn aws_signed_example_decodes() {
        let body = signed_example_body();
        let sig2_at = find(&body, SIG2.as_bytes());
        let sig3_at = find(&body, SIG3.as_bytes());
        let awkward = vec![
            1,
            5,
            6,
            30,
            85,
            86,
            87,
            100,
            65536 + 86,
            65536 + 87,
            sig2_at - 3,
            sig2_at + 10,
            sig3_at - 1,
            sig3_at + 63,
            body.len() - 3,
            body.len() - 1,
        ];
        let mut rng = Rng(7);
        let sources = [
            MemStream::whole(&body),
            MemStream::new(&body, awkward),
            MemStream::new(&body, rng.cuts(body.len(), 200)),
        ];
        for mut src in sources {
            for dst_len in [4096, 65536 + 1024 + 1] {
                let mut src = MemStream::new(&body, src.cuts.clone());
                let mut dec = signed_decoder();
                let out = decode_all(&mut dec, &mut src, dst_len).unwrap();
                assert_eq!(out.len(), 66560);
                assert!(out.iter().all(|&b| b == b'a'));
                assert_eq!(dec.trailer_checksum(), None);
            }
            let mut dec = signed_decoder();
            assert_eq!(decode_all(&mut dec, &mut src, 7).unwrap().len(), 66560);
        }
    }

    #[test]
    fn aws_signed_example_bytewise() {
        let body = signed_example_body();
        let mut dec = signed_decoder();
        let out = decode_all(&mut dec, &mut MemStream::bytewise(&body), 1000).unwrap();
        assert_eq!(out.len(), 66560);
    }

    #[test]
    fn aws_signed_example_tampering_is_detected() {
        let body = signed_example_body();
        let data1 = find(&body, b"\r\n") + 2;
        let data2 = find(&body, SIG2.as_bytes()) + 66;
        let sig_starts = [SIG1, SIG2, SIG3].map(|s| find(&body, s.as_bytes()));
        let mut flips = vec![data1, data1 + 40_000, data1 + 65535, data2, data2 + 1023];
        for s in sig_starts {
            flips.extend([s, s + 31, s + 63]);
        }
        for at in flips {
            let mut bad = body.clone();
            bad[at] = if bad[at] == b'a' {
                b'b'
            } else {
                b'0' ^ bad[at] ^ b'1'
            };
            assert_ne!(bad, body);
            assert_eq!(
                code_of(&bad, signed_decoder()),
                S3ErrorCode::SignatureDoesNotMatch,
                "flip at {at}"
            );
        }
        // A different seed (request signature) breaks the whole chain.
        let other_seed = AwsChunkedDecoder::new(ChunkMode::Signed(signer(SIG1, false)), None, None);
        assert_eq!(
            code_of(&body, other_seed),
            S3ErrorCode::SignatureDoesNotMatch
        );
        // Missing or malformed chunk-signature extension.
        for (from, to) in [
            (format!(";chunk-signature={SIG1}"), String::new()),
            (format!(";chunk-signature={SIG3}"), String::new()),
            (
                format!("chunk-signature={SIG2}"),
                format!("chunk-sig={SIG2}"),
            ),
            (SIG1.to_string(), SIG1[..63].to_string()),
        ] {
            let bad = String::from_utf8(body.clone())
                .unwrap()
                .replacen(&from, &to, 1);
            assert_eq!(
                code_of(bad.as_bytes(), signed_decoder()),
                S3ErrorCode::SignatureDoesNotMatch
            );
        }
        // Chunks swapped into a different order do not verify either.
        let mut reordered = Vec::new();
        reordered.extend_from_slice(format!("400;chunk-signature={SIG2}\r\n").as_bytes());
        reordered.extend_from_slice(&[b'a'; 1024]);
        reordered.extend_from_slice(b"\r\n");
        assert_eq!(
            code_of(&reordered, signed_decoder()),
            S3ErrorCode::SignatureDoesNotMatch
        );
    }

    #[test]
    fn aws_signed_example_data_error_reported_before_bad_bytes_are_acknowledged() {
        let mut bad = signed_example_body();
        let last_data = find(&bad, SIG2.as_bytes()) + 66 + 1023;
        bad[last_data] = b'b';
        let mut dec = signed_decoder();
        let mut src = MemStream::whole(&bad);
        let mut dst = vec![0u8; 1 << 20];
        let mut total = 0;
        let err = block_on(async {
            loop {
                match dec.read(&mut src, &mut dst).await {
                    Ok(0) => panic!("tampered body accepted"),
                    Ok(n) => total += n,
                    Err(e) => return e,
                }
            }
        });
        assert_eq!(err.code, S3ErrorCode::SignatureDoesNotMatch);
        assert_eq!(total, 65536);
        // Poisoned: the error sticks.
        let again = block_on(dec.read(&mut src, &mut dst)).unwrap_err();
        assert_eq!(again.code, S3ErrorCode::SignatureDoesNotMatch);
    }

    // AWS's trailer example (STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER), in the form SDKs send
    // (`0;chunk-signature=..\r\n` + trailer lines + signature line + `\r\n`). Its chunk chain is
    // verified as published. Its trailer signature (63bddb...) is not usable: it is the HMAC of a
    // string to sign that starts with `AWS4-HMAC-SHA256-PAYLOAD` instead of the documented
    // `AWS4-HMAC-SHA256-TRAILER` that SDKs (aws-c-auth, Java, .NET) and MinIO use; see
    // `aws_trailer_example_signature_uses_the_payload_prefix`.
    const TRAILER_SEED: &str = "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e";
    const TRAILER_SIG1: &str = "b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2";
    const TRAILER_SIG2: &str = "1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7";
    const TRAILER_SIG3: &str = "2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992";
    const DOC_TRAILER_SIG: &str =
        "63bddb248ad2590c92712055f51b8e78ab024eead08276b24f010b0efd74843f";
    const EXAMPLE_TRAILER: &str = "x-amz-checksum-crc32c:sOO8/Q==";

    /// The trailer signature as SDKs compute it for the example's trailer.
    fn example_trailer_signature(canonical: &str) -> String {
        let s = signer(TRAILER_SEED, true);
        let prev = parse_signature_hex(TRAILER_SIG3.as_bytes()).expect("hex");
        hex::encode(s.trailer_signature(&prev, canonical.as_bytes()))
    }

    fn signed_trailer_body(trailer: &str, sig_line: &str) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(format!("10000;chunk-signature={TRAILER_SIG1}\r\n").as_bytes());
        body.extend_from_slice(&[b'a'; 65536]);
        body.extend_from_slice(format!("\r\n400;chunk-signature={TRAILER_SIG2}\r\n").as_bytes());
        body.extend_from_slice(&[b'a'; 1024]);
        body.extend_from_slice(format!("\r\n0;chunk-signature={TRAILER_SIG3}\r\n").as_bytes());
        body.extend_from_slice(trailer.as_bytes());
        body.extend_from_slice(sig_line.as_bytes());
        body.extend_from_slice(b"\r\n");
        body
    }

    fn good_sig_line() -> String {
        let sig = example_trailer_signature(&format!("{EXAMPLE_TRAILER}\n"));
        format!("x-amz-trailer-signature:{sig}\r\n")
    }

    fn signed_trailer_decoder() -> AwsChunkedDecoder {
        AwsChunkedDecoder::new(
            ChunkMode::Signed(signer(TRAILER_SEED, true)),
            Some("x-amz-checksum-crc32c".into()),
            Some(66560),
        )
    }

    #[test]
    fn aws_trailer_example_signature_uses_the_payload_prefix() {
        let s = signer(TRAILER_SEED, true);
        let trailer_hash = hex::encode(Sha256::digest(format!("{EXAMPLE_TRAILER}\n")));
        let sts = format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n{TRAILER_SIG3}\n{trailer_hash}"
        );
        assert_eq!(
            hex::encode(hmac(&s.signing_key, sts.as_bytes())),
            DOC_TRAILER_SIG
        );
        assert_ne!(
            example_trailer_signature(&format!("{EXAMPLE_TRAILER}\n")),
            DOC_TRAILER_SIG
        );
    }

    #[test]
    fn aws_signed_trailer_example_decodes() {
        let sig_line = good_sig_line();
        let body = signed_trailer_body(&format!("{EXAMPLE_TRAILER}\r\n"), &sig_line);
        let mut rng = Rng(99);
        let sig_at = find(&body, b"x-amz-trailer-signature");
        let cuts_list = [
            Vec::new(),
            rng.cuts(body.len(), 100),
            vec![body.len() - 40],
            vec![
                sig_at - 1,
                sig_at + 5,
                sig_at + 30,
                body.len() - 3,
                body.len() - 1,
            ],
        ];
        for cuts in cuts_list {
            let mut dec = signed_trailer_decoder();
            let out = decode_all(&mut dec, &mut MemStream::new(&body, cuts), 10_000).unwrap();
            assert_eq!(out.len(), 66560);
            assert_eq!(
                dec.trailer_checksum(),
                Some((ChecksumAlgorithm::Crc32c, b64("sOO8/Q==")))
            );
        }
        let mut dec = signed_trailer_decoder();
        decode_all(&mut dec, &mut MemStream::bytewise(&body), 333).unwrap();
        // The example's value really is the CRC32C of the payload.
        assert_eq!(
            crc32c::crc32c(&[b'a'; 66560]).to_be_bytes().to_vec(),
            b64("sOO8/Q==")
        );
        // Trailer name case and blanks around the value do not change the canonical form.
        let body = signed_trailer_body("X-Amz-Checksum-CRC32C: sOO8/Q== \r\n", &sig_line);
        let mut dec = signed_trailer_decoder();
        decode_all(&mut dec, &mut MemStream::whole(&body), 4096).unwrap();
        assert_eq!(
            dec.trailer_checksum(),
            Some((ChecksumAlgorithm::Crc32c, b64("sOO8/Q==")))
        );
        // Several trailers are signed sorted by name, whatever their order on the wire.
        let canonical = format!("x-amz-a:1\n{EXAMPLE_TRAILER}\nx-amz-z:2\n");
        let sig = example_trailer_signature(&canonical);
        let body = signed_trailer_body(
            &format!("x-amz-z:2\r\n{EXAMPLE_TRAILER}\r\nx-amz-a:1\r\n"),
            &format!("x-amz-trailer-signature:{sig}\r\n"),
        );
        let mut dec = signed_trailer_decoder();
        decode_all(&mut dec, &mut MemStream::whole(&body), 4096).unwrap();
    }

    #[test]
    fn aws_signed_trailer_tampering_is_detected() {
        let sig_line = good_sig_line();
        let trailer = format!("{EXAMPLE_TRAILER}\r\n");
        let cases = [
            // The documented (PAYLOAD-prefixed) trailer signature.
            signed_trailer_body(
                &trailer,
                &format!("x-amz-trailer-signature:{DOC_TRAILER_SIG}\r\n"),
            ),
            // Another checksum value under the same signature.
            signed_trailer_body("x-amz-checksum-crc32c:AAAAAA==\r\n", &sig_line),
            // No trailer signature.
            signed_trailer_body(&trailer, ""),
            // A malformed trailer signature.
            signed_trailer_body(&trailer, "x-amz-trailer-signature:abc\r\n"),
            // An extra trailer that the signature does not cover.
            signed_trailer_body(&format!("{trailer}x-amz-meta-x:1\r\n"), &sig_line),
        ];
        for body in cases {
            assert_eq!(
                code_of(&body, signed_trailer_decoder()),
                S3ErrorCode::SignatureDoesNotMatch
            );
        }
        // A flipped byte anywhere in the signature line.
        let body = signed_trailer_body(&trailer, &sig_line);
        let sig_at = find(&body, b"x-amz-trailer-signature:") + 24;
        for at in [sig_at, sig_at + 17, sig_at + 63] {
            let mut bad = body.clone();
            bad[at] = if bad[at] == b'0' { b'1' } else { b'0' };
            assert_eq!(
                code_of(&bad, signed_trailer_decoder()),
                S3ErrorCode::SignatureDoesNotMatch
            );
        }
        // A line after the trailer signature is malformed.
        let body = signed_trailer_body(&trailer, &format!("{sig_line}x-amz-meta-x:1\r\n"));
        assert_eq!(
            code_of(&body, signed_trailer_decoder()),
            S3ErrorCode::IncompleteBody
        );
        // The final empty line is required.
        let mut body = signed_trailer_body(&trailer, &sig_line);
        body.truncate(body.len() - 2);
        assert_eq!(
            code_of(&body, signed_trailer_decoder()),
            S3ErrorCode::IncompleteBody
        );
    }

    #[test]
    fn signed_body_without_trailer_mode_rejects_trailers() {
        let mut body = signed_example_body();
        body.truncate(body.len() - 2);
        body.extend_from_slice(b"x-amz-checksum-crc32:AAAAAA==\r\n\r\n");
        assert_eq!(
            code_of(&body, signed_decoder()),
            S3ErrorCode::IncompleteBody
        );
    }

    // ---- framing errors ----

    #[test]
    fn truncated_body_is_incomplete() {
        for len in 0..BOTO3_BODY.len() {
            for src in [
                MemStream::whole(&BOTO3_BODY[..len]),
                MemStream::bytewise(&BOTO3_BODY[..len]),
            ] {
                let mut src = src;
                let mut dec = unsigned("x-amz-checksum-crc32", Some(12));
                let err = decode_all(&mut dec, &mut src, 5).expect_err("truncated");
                assert_eq!(err.code, S3ErrorCode::IncompleteBody, "prefix of {len}");
            }
        }
        let body = signed_example_body();
        for len in [
            10,
            90,
            50_000,
            body.len() - 90,
            body.len() - 2,
            body.len() - 1,
        ] {
            assert_eq!(
                code_of(&body[..len], signed_decoder()),
                S3ErrorCode::IncompleteBody
            );
        }
    }

    #[test]
    fn bad_chunk_sizes_are_rejected() {
        let bodies: [&[u8]; 7] = [
            b"\r\nhello\r\n0\r\n\r\n",
            b"zz\r\nhello\r\n0\r\n\r\n",
            b" 5\r\nhello\r\n0\r\n\r\n",
            b"5 \r\nhello\r\n0\r\n\r\n",
            b"-5\r\nhello\r\n0\r\n\r\n",
            b"fffffffffffffffff\r\nhello\r\n0\r\n\r\n",
            b"0000000000000005\r\nhello\r\n0\r\n\r\n",
        ];
        for body in bodies {
            let dec = AwsChunkedDecoder::new(ChunkMode::Unsigned, None, None);
            assert_eq!(code_of(body, dec), S3ErrorCode::IncompleteBody);
        }
        // 15 digits (leading zeros included) are fine.
        let mut dec = AwsChunkedDecoder::new(ChunkMode::Unsigned, None, None);
        let out = decode_all(
            &mut dec,
            &mut MemStream::whole(b"000000000000005\r\nhello\r\n0\r\n\r\n"),
            9,
        );
        assert_eq!(out.unwrap(), b"hello");
        // Uppercase hex and (ignored) extensions in unsigned mode.
        let mut dec = AwsChunkedDecoder::new(ChunkMode::Unsigned, None, None);
        let body = b"A;foo=bar\r\n0123456789\r\n0\r\n\r\n";
        let out = decode_all(&mut dec, &mut MemStream::whole(body), 4).unwrap();
        assert_eq!(out, b"0123456789");
    }

    #[test]
    fn overlong_lines_are_rejected() {
        let mut body = b"5".to_vec();
        body.extend(std::iter::repeat_n(b'0', LINE_MAX_BYTES + 10));
        body.extend_from_slice(b"\r\nhello\r\n0\r\n\r\n");
        let dec = AwsChunkedDecoder::new(ChunkMode::Unsigned, None, None);
        assert_eq!(code_of(&body, dec), S3ErrorCode::IncompleteBody);
        // A header line without CRLF that never ends.
        let body = vec![b'1'; BUFFER_BYTES * 3];
        let mut dec = AwsChunkedDecoder::new(ChunkMode::Unsigned, None, None);
        let err = decode_all(&mut dec, &mut MemStream::bytewise(&body), 10).unwrap_err();
        assert_eq!(err.code, S3ErrorCode::IncompleteBody);
        // A trailer section over its bound.
        let mut body = b"0\r\n".to_vec();
        for i in 0..(TRAILER_SECTION_MAX_BYTES / 100 + 1) {
            body.extend_from_slice(format!("x-amz-meta-{i:04}:{}\r\n", "v".repeat(84)).as_bytes());
        }
        body.extend_from_slice(b"\r\n");
        let dec = AwsChunkedDecoder::new(ChunkMode::Unsigned, None, None);
        assert_eq!(code_of(&body, dec), S3ErrorCode::IncompleteBody);
    }

    #[test]
    fn data_must_be_followed_by_crlf() {
        let bodies: [&[u8]; 4] = [
            b"c\r\nhello world\nXX0\r\n\r\n",
            b"c\r\nhello world\n\n0\r\n\r\n",
            b"c\r\nhello world\n\r0\r\n\r\n",
            b"b\r\nhello world\n\r\n0\r\n\r\n",
        ];
        for body in bodies {
            let dec = AwsChunkedDecoder::new(ChunkMode::Unsigned, None, None);
            assert_eq!(code_of(body, dec), S3ErrorCode::IncompleteBody);
        }
    }

    #[test]
    fn decoded_length_must_match() {
        for declared in [0, 11, 13, 1 << 40] {
            let dec = unsigned("x-amz-checksum-crc32", Some(declared));
            assert_eq!(code_of(BOTO3_BODY, dec), S3ErrorCode::IncompleteBody);
        }
        // A chunk larger than the announced size fails at its header, before any data.
        let mut dec = unsigned("x-amz-checksum-crc32", Some(11));
        let mut dst = [0u8; 64];
        let err = block_on(dec.read(&mut MemStream::whole(BOTO3_BODY), &mut dst)).unwrap_err();
        assert_eq!(err.code, S3ErrorCode::IncompleteBody);
        assert_eq!(dec.decoded_bytes(), 0);
    }

    #[test]
    fn garbage_after_terminator_is_rejected() {
        for tail in [&b"x"[..], b"\r\n", b"0\r\n\r\n"] {
            let mut body = BOTO3_BODY.to_vec();
            body.extend_from_slice(tail);
            for src in [MemStream::whole(&body), MemStream::bytewise(&body)] {
                let mut src = src;
                let mut dec = unsigned("x-amz-checksum-crc32", Some(12));
                let err = decode_all(&mut dec, &mut src, 64).unwrap_err();
                assert_eq!(err.code, S3ErrorCode::IncompleteBody);
            }
        }
    }

    #[test]
    fn trailer_checksum_rules() {
        let body = |trailers: &str| format!("c\r\nhello world\n\r\n0\r\n{trailers}\r\n");
        // Missing, malformed, wrong length, duplicated: InvalidRequest.
        for trailers in [
            "",
            "x-amz-checksum-crc32c:rwg7LQ==\r\n",
            "x-amz-checksum-crc32:rwg7LQ\r\n",
            "x-amz-checksum-crc32:!!!!!!==\r\n",
            "x-amz-checksum-crc32:rwg7LQrw\r\n",
            "x-amz-checksum-crc32:\r\n",
            "x-amz-checksum-crc32:rwg7LQ==\r\nx-amz-checksum-crc32:rwg7LQ==\r\n",
        ] {
            let dec = unsigned("x-amz-checksum-crc32", Some(12));
            assert_eq!(
                code_of(body(trailers).as_bytes(), dec),
                S3ErrorCode::InvalidRequest,
                "{trailers:?}"
            );
        }
        // A trailer line without ':' is malformed framing.
        let dec = unsigned("x-amz-checksum-crc32", Some(12));
        assert_eq!(
            code_of(body("x-amz-checksum-crc32\r\n").as_bytes(), dec),
            S3ErrorCode::IncompleteBody
        );
        // Case-insensitive name, blanks around the value, unexpected trailers ignored.
        let ok = body("x-amz-meta-a:1\r\nX-AMZ-Checksum-Crc32 :\t rwg7LQ== \r\nx-amz-trailer-signature:zz\r\n");
        let mut dec = unsigned("x-amz-checksum-crc32", Some(12));
        decode_all(&mut dec, &mut MemStream::bytewise(ok.as_bytes()), 3).unwrap();
        assert_eq!(
            dec.trailer_checksum(),
            Some((ChecksumAlgorithm::Crc32, b64("rwg7LQ==")))
        );
        // Other algorithms.
        let sha256 = base64::engine::general_purpose::STANDARD.encode([9u8; 32]);
        let mut dec = unsigned(" X-Amz-Checksum-SHA256 ", None);
        let b = body(&format!("x-amz-checksum-sha256:{sha256}\r\n"));
        decode_all(&mut dec, &mut MemStream::whole(b.as_bytes()), 64).unwrap();
        assert_eq!(
            dec.trailer_checksum(),
            Some((ChecksumAlgorithm::Sha256, vec![9u8; 32]))
        );
    }

    #[test]
    fn unsupported_trailer_announcements_fail_before_reading() {
        for (names, code) in [
            ("x-amz-checksum-md5", S3ErrorCode::InvalidRequest),
            (
                "x-amz-checksum-crc32,x-amz-checksum-sha1",
                S3ErrorCode::InvalidRequest,
            ),
        ] {
            let mut dec = unsigned(names, Some(12));
            let mut src = MemStream::whole(BOTO3_BODY);
            let mut dst = [0u8; 64];
            let err = block_on(dec.read(&mut src, &mut dst)).unwrap_err();
            assert_eq!(err.code, code, "{names}");
            assert_eq!(src.pos, 0);
        }
        // Non-checksum names are fine.
        let mut dec = unsigned("x-amz-meta-foo", Some(12));
        decode_all(&mut dec, &mut MemStream::whole(BOTO3_BODY), 64).unwrap();
        assert_eq!(dec.trailer_checksum(), None);
    }

    #[test]
    fn empty_body_and_empty_dst() {
        let mut dec = AwsChunkedDecoder::new(ChunkMode::Unsigned, Some(String::new()), Some(0));
        let out = decode_all(&mut dec, &mut MemStream::whole(b"0\r\n\r\n"), 8).unwrap();
        assert!(out.is_empty());
        let mut dec = unsigned("x-amz-checksum-crc32", Some(12));
        let mut src = MemStream::whole(BOTO3_BODY);
        assert_eq!(block_on(dec.read(&mut src, &mut [])).unwrap(), 0);
        assert_eq!(src.pos, 0);
        assert_eq!(
            decode_all(&mut dec, &mut src, 64).unwrap(),
            b"hello world\n"
        );
    }
}
