//! Body digests: MD5 (ETag), SHA-256 (signed payload), the client's `x-amz-checksum-*` and
//! `Content-MD5`, all fed from the same bytes in one pass.
//!
//! Two ways to feed a body: [`BodyDigests::update`] hashes bytes in place with every hasher;
//! a streaming upload instead calls [`BodyDigests::update_checks`] on each read (SHA-256 and the
//! checksum, while the bytes are in cache) and hands every filled staging buffer to MD5 with
//! [`BodyDigests::push_md5`]: the core's multi-lane hasher (`lanes.rs`) hashes it beside the
//! other uploads' buffers; [`BodyDigests::settle_md5`] hashes the unsubmitted rest in place.
//!
//! Invariants: every hasher sees exactly the body bytes, in order, once; in-place bytes are fed
//! in [`HASH_BLOCK_BYTES`] slices so that each slice is hashed by every hasher while it is still
//! in L1/L2 cache; MD5 is finished only after every pushed buffer is hashed. MD5 is md5-many's,
//! checked against md-5 (the reference) on random lengths, lane counts and split points.

pub(crate) mod combine;
pub(crate) mod lanes;

pub use lanes::lane_stats;

use base64::Engine;
use lanes::{Md5Stream, SharedBytes};
use md5_many::Md5State;
use sha1::Sha1;
use sha2::Digest as _;
use sha2::Sha256;
use std::fmt;

/// Why a finished body failed its digest checks (named like the S3 codes they become).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestErrorCode {
    /// `Content-MD5` or an `x-amz-checksum-*` value does not match the body.
    BadDigest,
    /// A hex `x-amz-content-sha256` does not match the body.
    XAmzContentSHA256Mismatch,
}

impl DigestErrorCode {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            DigestErrorCode::BadDigest => "BadDigest",
            DigestErrorCode::XAmzContentSHA256Mismatch => "XAmzContentSHA256Mismatch",
        }
    }
}

/// A digest check failure: kind and human message.
#[derive(Debug, Clone)]
pub struct DigestError {
    pub(crate) code: DigestErrorCode,
    pub(crate) message: String,
}

impl DigestError {
    pub(crate) fn new(code: DigestErrorCode, message: impl Into<String>) -> DigestError {
        DigestError {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for DigestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for DigestError {}

/// Slice size fed to each hasher in turn (fits L1/L2 with room for the hashers' state).
pub(crate) const HASH_BLOCK_BYTES: usize = 32 * 1024;

/// A checksum algorithm S3 clients send in `x-amz-checksum-<name>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumAlgorithm {
    Crc32,
    Crc32c,
    Crc64Nvme,
    Sha1,
    Sha256,
}

impl ChecksumAlgorithm {
    pub(crate) const ALL: [ChecksumAlgorithm; 5] = [
        Self::Crc32,
        Self::Crc32c,
        Self::Crc64Nvme,
        Self::Sha1,
        Self::Sha256,
    ];

    /// Lowercase name as in the header suffix.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Crc32 => "crc32",
            Self::Crc32c => "crc32c",
            Self::Crc64Nvme => "crc64nvme",
            Self::Sha1 => "sha1",
            Self::Sha256 => "sha256",
        }
    }

    pub fn header_name(self) -> &'static str {
        match self {
            Self::Crc32 => "x-amz-checksum-crc32",
            Self::Crc32c => "x-amz-checksum-crc32c",
            Self::Crc64Nvme => "x-amz-checksum-crc64nvme",
            Self::Sha1 => "x-amz-checksum-sha1",
            Self::Sha256 => "x-amz-checksum-sha256",
        }
    }

    /// Name as in `x-amz-sdk-checksum-algorithm` / `x-amz-checksum-algorithm` (case-insensitive).
    pub(crate) fn from_name(name: &str) -> Option<ChecksumAlgorithm> {
        Self::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(name))
    }

    pub(crate) fn digest_len(self) -> usize {
        match self {
            Self::Crc32 | Self::Crc32c => 4,
            Self::Crc64Nvme => 8,
            Self::Sha1 => 20,
            Self::Sha256 => 32,
        }
    }
}

enum ChecksumState {
    Crc32(crc32fast::Hasher),
    Crc32c(u32),
    Crc64Nvme(crc64fast_nvme::Digest),
    Sha1(Sha1),
    Sha256(Sha256),
}

impl ChecksumState {
    fn new(algo: ChecksumAlgorithm) -> ChecksumState {
        match algo {
            ChecksumAlgorithm::Crc32 => ChecksumState::Crc32(crc32fast::Hasher::new()),
            ChecksumAlgorithm::Crc32c => ChecksumState::Crc32c(0),
            ChecksumAlgorithm::Crc64Nvme => ChecksumState::Crc64Nvme(crc64fast_nvme::Digest::new()),
            ChecksumAlgorithm::Sha1 => ChecksumState::Sha1(Sha1::new()),
            ChecksumAlgorithm::Sha256 => ChecksumState::Sha256(Sha256::new()),
        }
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            ChecksumState::Crc32(h) => h.update(data),
            ChecksumState::Crc32c(c) => *c = crc32c::crc32c_append(*c, data),
            ChecksumState::Crc64Nvme(d) => d.write(data),
            ChecksumState::Sha1(h) => h.update(data),
            ChecksumState::Sha256(h) => h.update(data),
        }
    }

    fn finish(self) -> Vec<u8> {
        match self {
            ChecksumState::Crc32(h) => h.finalize().to_be_bytes().to_vec(),
            ChecksumState::Crc32c(c) => c.to_be_bytes().to_vec(),
            ChecksumState::Crc64Nvme(d) => d.sum64().to_be_bytes().to_vec(),
            ChecksumState::Sha1(h) => h.finalize().to_vec(),
            ChecksumState::Sha256(h) => h.finalize().to_vec(),
        }
    }
}

/// What the request promised about its body, checked by [`BodyDigests::finish`].
#[derive(Debug, Clone, Default)]
pub struct Expectations {
    /// From a hex `x-amz-content-sha256`.
    pub payload_sha256: Option<[u8; 32]>,
    /// From `Content-MD5`.
    pub content_md5: Option<[u8; 16]>,
    /// From `x-amz-checksum-<algo>` (the value may instead arrive in a trailer).
    pub checksum: Option<(ChecksumAlgorithm, Option<Vec<u8>>)>,
}

/// The digests of a complete, verified body.
#[derive(Debug, Clone)]
pub struct Digests {
    pub md5: [u8; 16],
    /// (algorithm, base64 value) of the client checksum, when one was requested.
    pub(crate) checksum: Option<(ChecksumAlgorithm, String)>,
}

/// Where a body's MD5 is computed.
enum Md5 {
    /// In place, by md5-many's single-stream compressor.
    InPlace(Md5State),
    /// By the core's multi-lane hasher (after the first pushed buffer).
    Lanes(Md5Stream),
}

/// Running digests of one body.
pub struct BodyDigests {
    md5: Md5,
    sha256: Option<Sha256>,
    checksum: Option<ChecksumState>,
    expect: Expectations,
}

impl BodyDigests {
    pub fn new(expect: Expectations) -> BodyDigests {
        BodyDigests {
            md5: Md5::InPlace(Md5State::new()),
            sha256: expect.payload_sha256.map(|_| Sha256::new()),
            checksum: expect
                .checksum
                .as_ref()
                .map(|(a, _)| ChecksumState::new(*a)),
            expect,
        }
    }

    /// Feeds body bytes, slice by slice, to every active hasher.
    pub fn update(&mut self, data: &[u8]) {
        for block in data.chunks(HASH_BLOCK_BYTES) {
            self.md5_in_place().update(block);
            self.update_checks(block);
        }
    }

    fn md5_in_place(&mut self) -> &mut Md5State {
        match &mut self.md5 {
            Md5::InPlace(state) => state,
            Md5::Lanes(_) => panic!("bytes fed in place after MD5 went to the lanes"),
        }
    }

    /// Feeds body bytes to every hasher but MD5, which gets them later from
    /// [`Self::push_md5`] or [`Self::settle_md5`], in the same order.
    pub fn update_checks(&mut self, data: &[u8]) {
        for block in data.chunks(HASH_BLOCK_BYTES) {
            if let Some(h) = &mut self.sha256 {
                h.update(block);
            }
            if let Some(c) = &mut self.checksum {
                c.update(block);
            }
        }
    }

    /// Queues the next body bytes for MD5 on the core's multi-lane hasher (waits while this
    /// body already has [`lanes::MD5_JOBS_PER_STREAM_MAX`] buffers queued). Must run on a
    /// glommio executor.
    pub(crate) async fn push_md5(&mut self, bytes: SharedBytes) {
        if let Md5::InPlace(state) = &self.md5 {
            self.md5 = Md5::Lanes(Md5Stream::new(*state));
        }
        match &self.md5 {
            Md5::Lanes(stream) => stream.push(bytes).await,
            Md5::InPlace(_) => unreachable!("just moved to the lanes"),
        }
    }

    /// Waits for the pushed bytes to be hashed, then hashes `rest` (the body's last bytes) in
    /// place; [`Self::finish`] may follow.
    pub(crate) async fn settle_md5(&mut self, rest: &[u8]) {
        if let Md5::Lanes(stream) = &self.md5 {
            self.md5 = Md5::InPlace(stream.settle().await);
        }
        let state = self.md5_in_place();
        for block in rest.chunks(HASH_BLOCK_BYTES) {
            state.update(block);
        }
    }

    /// Supplies a checksum that arrived in a trailer instead of a header.
    pub fn set_trailer_checksum(&mut self, algo: ChecksumAlgorithm, value: Vec<u8>) {
        self.expect.checksum = Some((algo, Some(value)));
    }

    /// Finishes and verifies every expectation; the first mismatch is the error.
    pub fn finish(self) -> Result<Digests, DigestError> {
        if let (Some(h), Some(want)) = (self.sha256, self.expect.payload_sha256) {
            if h.finalize().as_slice() != want {
                return Err(DigestError::new(
                    DigestErrorCode::XAmzContentSHA256Mismatch,
                    "The provided 'x-amz-content-sha256' header does not match what was computed.",
                ));
            }
        }
        let md5: [u8; 16] = match &self.md5 {
            Md5::InPlace(state) => state.finalize(),
            Md5::Lanes(_) => panic!("finish before settle_md5"),
        };
        if let Some(want) = self.expect.content_md5 {
            if md5 != want {
                return Err(DigestError::new(
                    DigestErrorCode::BadDigest,
                    "The Content-MD5 you specified did not match what we received.",
                ));
            }
        }
        let checksum = match (self.checksum, self.expect.checksum) {
            (Some(state), Some((algo, want))) => {
                let got = state.finish();
                if let Some(want) = want {
                    if got != want {
                        return Err(DigestError::new(
                            DigestErrorCode::BadDigest,
                            format!(
                                "The {} you specified did not match the calculated checksum.",
                                algo.name().to_ascii_uppercase()
                            ),
                        ));
                    }
                }
                Some((algo, base64::engine::general_purpose::STANDARD.encode(got)))
            }
            _ => None,
        };
        Ok(Digests { md5, checksum })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_boto3_capture() {
        let exp = Expectations {
            checksum: Some((ChecksumAlgorithm::Crc32, None)),
            ..Default::default()
        };
        let mut d = BodyDigests::new(exp);
        d.update(b"hello world\n");
        let out = d.finish().unwrap();
        assert_eq!(out.checksum.unwrap().1, "rwg7LQ==");
        assert_eq!(hex::encode(out.md5), "6f5902ac237024bdd0c176cb93063dc4");
    }

    #[test]
    fn crc64nvme_known_value() {
        // CRC-64/NVME check value of "123456789" (from the CRC catalogue).
        let exp = Expectations {
            checksum: Some((ChecksumAlgorithm::Crc64Nvme, None)),
            ..Default::default()
        };
        let mut d = BodyDigests::new(exp);
        d.update(b"123456789");
        let (_, b64) = d.finish().unwrap().checksum.unwrap();
        let raw = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        assert_eq!(raw, 0xAE8B14860A799888u64.to_be_bytes());
    }

    #[test]
    fn sha_mismatch_is_error() {
        let exp = Expectations {
            payload_sha256: Some([0; 32]),
            ..Default::default()
        };
        let mut d = BodyDigests::new(exp);
        d.update(b"x");
        assert_eq!(
            d.finish().unwrap_err().code,
            DigestErrorCode::XAmzContentSHA256Mismatch
        );
    }

    #[test]
    fn split_feeding_equals_whole() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7) as u8).collect();
        let mk = || Expectations {
            checksum: Some((ChecksumAlgorithm::Crc32c, None)),
            ..Default::default()
        };
        let mut a = BodyDigests::new(mk());
        a.update(&data);
        let mut b = BodyDigests::new(mk());
        for c in data.chunks(777) {
            b.update(c);
        }
        let (a, b) = (a.finish().unwrap(), b.finish().unwrap());
        assert_eq!(a.md5, b.md5);
        assert_eq!(a.checksum, b.checksum);
    }

    proptest::proptest! {
        /// The body MD5 (md5-many) equals md-5's for any bytes fed in any split.
        #[test]
        fn md5_equals_the_reference_for_any_split(
            data in proptest::collection::vec(proptest::num::u8::ANY, 0..100_000),
            cuts in proptest::collection::vec(0usize..100_000, 0..8),
        ) {
            use md5::{Digest as _, Md5};
            let mut points: Vec<usize> = cuts.into_iter().map(|c| c % (data.len() + 1)).collect();
            points.push(0);
            points.push(data.len());
            points.sort_unstable();
            let mut d = BodyDigests::new(Expectations::default());
            for w in points.windows(2) {
                d.update(&data[w[0]..w[1]]);
            }
            let want: [u8; 16] = Md5::digest(&data).into();
            proptest::prop_assert_eq!(d.finish().unwrap().md5, want);
        }
    }
}
