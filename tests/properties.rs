//! Property tests of ringstore's pure functions: the HTTP head parser, chunk-size parsing, the
//! aws-chunked decoder, the S3 XML request parsers, the listing algorithm, SigV4
//! canonicalisation, the on-disk object record and percent-encoding.
//!
//! Every property runs a bounded number of cases (see [`config`]) so the whole file finishes in
//! a few seconds in release mode. Failures are not persisted to disk (`failure_persistence: None`):
//! a failing case is printed, shrunk, by proptest.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use futures_lite::future::block_on;
use proptest::prelude::*;
use proptest::sample::select;
use sha2::Digest as _;

use ringstore::auth::{
    sign_headers, AuthError, AuthErrorCode, Credentials, PayloadCheck, StreamingSigner, Verifier,
};
use ringstore::digest::ChecksumAlgorithm;
use ringstore::http::body::parse_chunk_size;
use ringstore::http::head::{HeadParse, RequestHead, HEADERS_COUNT_MAX};
use ringstore::http::percent::{
    aws_uri_encode, percent_decode, percent_decode_bytes, url_form_encode,
};
use ringstore::s3::error::{S3Error, S3ErrorCode};
use ringstore::s3::ingest::aws_chunked::{AwsChunkedDecoder, ChunkMode};
use ringstore::s3::ingest::BodySource;
use ringstore::s3::xml::{
    parse_complete_multipart, parse_create_bucket_configuration, parse_delete_request,
};
use ringstore::storage::record::{
    ObjectRecord, PartRef, PartsLayout, StoredChecksum, BLOCK_BYTES, MAGIC,
};
use ringstore::storage::{list_page, ListPage, ListParams};
use ringstore::storage::{BucketIndex, ObjectSummary};

/// Proptest configuration: `cases` cases, no regression files written into the source tree.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn string_of(chars: Vec<char>) -> String {
    chars.into_iter().collect()
}

// =============================================================================================
// Request heads
// =============================================================================================

/// Header-name / method token characters (RFC 9110 `tchar`).
const TCHAR: &[u8] =
    b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
/// Characters used in generated request targets (never `?`, `#`, space or controls).
const PATH_CHARS: &[u8] =
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:@/%";

fn token(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(select(TCHAR), 1..max)
        .prop_map(|b| String::from_utf8(b).expect("tchar is ASCII"))
}

/// Characters of generated header values: visible ASCII, space, tab and some non-ASCII text.
fn header_value_char() -> impl Strategy<Value = char> {
    prop_oneof![
        8 => prop::char::range(' ', '~'),
        2 => Just(' '),
        2 => Just('\t'),
        1 => select(vec!['é', 'ü', '中', '€', '\u{1F600}', '\u{FFFD}']),
    ]
}

fn header_value() -> impl Strategy<Value = String> {
    prop::collection::vec(header_value_char(), 0..40).prop_map(string_of)
}

/// HTTP's optional whitespace (RFC 9110 `OWS`): only space and horizontal tab.
fn trim_ows(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

#[derive(Debug, Clone)]
struct HeadModel {
    method: String,
    /// Prepended to the path on the wire (absolute-form), may be empty.
    authority: String,
    path: String,
    query: Option<String>,
    minor: u8,
    headers: Vec<(String, String)>,
}

impl HeadModel {
    fn wire(&self) -> Vec<u8> {
        let mut out = format!("{} {}{}", self.method, self.authority, self.path);
        if let Some(q) = &self.query {
            out.push('?');
            out.push_str(q);
        }
        out.push_str(&format!(" HTTP/1.{}\r\n", self.minor));
        for (n, v) in &self.headers {
            out.push_str(&format!("{n}:{v}\r\n"));
        }
        out.push_str("\r\n");
        out.into_bytes()
    }
}

fn head_model() -> impl Strategy<Value = HeadModel> {
    let method = prop_oneof![
        select(vec!["GET", "PUT", "HEAD", "POST", "DELETE", "OPTIONS"]).prop_map(String::from),
        token(12),
    ];
    let path = prop::collection::vec(select(PATH_CHARS), 0..60)
        .prop_map(|b| format!("/{}", String::from_utf8(b).expect("ASCII")));
    let query = prop::option::of(
        prop::collection::vec(select(b"abc=&%2F+?/:@xyz0".as_slice()), 0..40)
            .prop_map(|b| String::from_utf8(b).expect("ASCII")),
    );
    let authority = select(vec!["", "", "", "http://example.com", "https://h:9000"]);
    let headers = prop::collection::vec((token(20), header_value()), 0..20);
    (method, authority, path, query, 0u8..=1, headers).prop_map(
        |(method, authority, path, query, minor, headers)| HeadModel {
            method,
            authority: authority.to_string(),
            path,
            query,
            minor,
            headers,
        },
    )
}

/// Invariants of any successful parse.
fn check_parsed(input: &[u8], h: &RequestHead, len: usize) -> Result<(), TestCaseError> {
    prop_assert!(len <= input.len(), "len {len} > input {}", input.len());
    prop_assert!(h.path.starts_with('/'), "path {:?}", h.path);
    prop_assert!(h.headers.len() <= HEADERS_COUNT_MAX);
    for (n, _) in &h.headers {
        prop_assert!(
            !n.bytes().any(|b| b.is_ascii_uppercase()),
            "header name not lowercase: {n:?}"
        );
    }
    Ok(())
}

fn check_any_parse(input: &[u8]) -> Result<(), TestCaseError> {
    match RequestHead::parse(input) {
        Ok(HeadParse::Complete(h, len)) => check_parsed(input, &h, len),
        Ok(HeadParse::Partial) | Err(_) => Ok(()),
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let interesting = prop_oneof![
        select(vec![
            0u8, b'\r', b'\n', b' ', b'\t', b':', b'?', b'/', 0x7f, 0xff, 0xc3, b'%'
        ]),
        any::<u8>(),
    ];
    prop_oneof![
        (any::<usize>(), interesting.clone()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), interesting).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Delete),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply_mutations(mut bytes: Vec<u8>, muts: &[Mutation]) -> Vec<u8> {
    for m in muts {
        let len = bytes.len();
        match *m {
            Mutation::Flip(i, b) if len > 0 => bytes[i % len] = b,
            Mutation::Insert(i, b) => bytes.insert(i % (len + 1), b),
            Mutation::Delete(i) if len > 0 => {
                bytes.remove(i % len);
            }
            Mutation::Truncate(i) => bytes.truncate(i % (len + 1)),
            _ => {}
        }
    }
    bytes
}

proptest! {
    #![proptest_config(config(4096))]

    #[test]
    fn head_parse_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        check_any_parse(&bytes)?;
    }

    #[test]
    fn head_parse_never_panics_on_mutated_heads(
        model in head_model(),
        muts in prop::collection::vec(mutation(), 1..5),
        body in prop::collection::vec(any::<u8>(), 0..20),
    ) {
        let mut wire = model.wire();
        wire.extend_from_slice(&body);
        let mutated = apply_mutations(wire, &muts);
        check_any_parse(&mutated)?;
    }
}

proptest! {
    #![proptest_config(config(1024))]

    /// A well-formed head parses to exactly what was sent, every proper prefix is `Partial`, and
    /// the body after it is left alone.
    #[test]
    fn valid_head_parses_exactly_and_prefixes_are_partial(
        model in head_model(),
        body in prop::collection::vec(any::<u8>(), 0..32),
    ) {
        let head = model.wire();
        let mut input = head.clone();
        input.extend_from_slice(&body);
        let (h, len) = match RequestHead::parse(&input) {
            Ok(HeadParse::Complete(h, len)) => (h, len),
            other => return Err(TestCaseError::fail(format!(
                "valid head {:?} did not parse: {other:?}", String::from_utf8_lossy(&head)))),
        };
        check_parsed(&input, &h, len)?;
        prop_assert_eq!(len, head.len());
        prop_assert_eq!(&h.method_raw, &model.method);
        prop_assert_eq!(&h.path, &model.path);
        prop_assert_eq!(h.query.as_str(), model.query.as_deref().unwrap_or(""));
        prop_assert_eq!(h.version_minor, model.minor);
        let want: Vec<(String, String)> = model
            .headers
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), trim_ows(v).to_string()))
            .collect();
        prop_assert_eq!(&h.headers, &want, "head {:?}", String::from_utf8_lossy(&head));
        for cut in 0..head.len() {
            match RequestHead::parse(&head[..cut]) {
                Ok(HeadParse::Partial) => {}
                other => return Err(TestCaseError::fail(format!(
                    "prefix of {cut} bytes of {:?} gave {other:?}",
                    String::from_utf8_lossy(&head)))),
            }
        }
    }
}

/// Deterministic companion of the property above: HTTP trims only SP and HTAB around a field
/// value (RFC 9110 5.5); other Unicode white space is part of the value.
#[test]
fn head_values_keep_non_http_whitespace() {
    let raw = "GET / HTTP/1.1\r\nx-amz-meta-a: \u{a0}v\u{3000}\r\nx-b: \t w \t\r\n\r\n";
    let Ok(HeadParse::Complete(h, _)) = RequestHead::parse(raw.as_bytes()) else {
        panic!("head did not parse");
    };
    assert_eq!(h.header("x-b"), Some("w"));
    assert_eq!(
        h.header("x-amz-meta-a"),
        Some("\u{a0}v\u{3000}"),
        "RequestHead::parse trimmed Unicode white space (U+00A0 / U+3000) from a header value"
    );
}

// =============================================================================================
// Chunk sizes
// =============================================================================================

proptest! {
    #![proptest_config(config(2048))]

    #[test]
    fn chunk_size_parse_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..40)) {
        let _ = parse_chunk_size(&bytes);
    }

    #[test]
    fn chunk_size_round_trips(
        n in 0u64..(1u64 << 60),
        upper in any::<bool>(),
        ext in prop::option::of("[a-z=;-]{0,20}"),
        pad_left in "[ \t]{0,2}",
        pad_right in "[ \t]{0,2}",
    ) {
        let hex = if upper { format!("{n:X}") } else { format!("{n:x}") };
        prop_assert_eq!(parse_chunk_size(hex.as_bytes()).ok(), Some(n));
        let mut line = format!("{pad_left}{hex}{pad_right}");
        if let Some(ext) = ext {
            line.push(';');
            line.push_str(&ext);
        }
        prop_assert_eq!(parse_chunk_size(line.as_bytes()).ok(), Some(n), "line {:?}", line);
    }

    /// 16 or more significant digits would overflow 60 bits: always rejected, never wrapped.
    #[test]
    fn chunk_size_overflow_is_rejected(digits in "[1-9a-fA-F][0-9a-fA-F]{15,40}") {
        prop_assert!(parse_chunk_size(digits.as_bytes()).is_err());
    }

    #[test]
    fn chunk_size_junk_is_rejected(
        hex in "[0-9a-f]{1,8}",
        junk in select(vec!["-", "+", "0x", "g", " z", "\u{0}", "1 2"]),
        front in any::<bool>(),
    ) {
        let line = if front { format!("{junk}{hex}") } else { format!("{hex}{junk}") };
        prop_assert!(parse_chunk_size(line.as_bytes()).is_err(), "accepted {:?}", line);
    }
}

// =============================================================================================
// aws-chunked
// =============================================================================================

/// In-memory source that ends each read at the next cut point (and at `dst.len()`).
struct MemStream {
    data: Vec<u8>,
    pos: usize,
    cuts: Vec<usize>,
}

impl MemStream {
    fn new(data: Vec<u8>, mut cuts: Vec<usize>) -> MemStream {
        cuts.sort_unstable();
        cuts.dedup();
        MemStream { data, pos: 0, cuts }
    }
}

impl BodySource for MemStream {
    async fn read(&mut self, dst: &mut [u8]) -> Result<usize, S3Error> {
        let limit = self
            .cuts
            .iter()
            .copied()
            .find(|&c| c > self.pos)
            .unwrap_or(self.data.len())
            .min(self.data.len());
        let n = (limit - self.pos).min(dst.len());
        dst[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Decodes everything, reading into buffers of the given sizes in turn. Returns the payload,
/// or the first error. Panics if the decoder delivers more bytes than the source holds.
fn decode_all(
    dec: &mut AwsChunkedDecoder,
    src: &mut MemStream,
    dst_sizes: &[usize],
) -> Result<Vec<u8>, S3Error> {
    let source_len = src.data.len();
    let mut out = Vec::new();
    let mut buf = vec![0u8; dst_sizes.iter().copied().max().unwrap_or(1).max(1)];
    block_on(async {
        let mut i = 0usize;
        loop {
            let size = dst_sizes[i % dst_sizes.len()].max(1);
            i += 1;
            let n = dec.read(src, &mut buf[..size]).await?;
            assert!(n <= size, "decoder returned {n} > dst {size}");
            if n == 0 {
                return Ok(out);
            }
            out.extend_from_slice(&buf[..n]);
            assert!(
                out.len() <= source_len,
                "decoder produced {} bytes from a {source_len}-byte source",
                out.len()
            );
        }
    })
}

const CHECKSUMS: [ChecksumAlgorithm; 4] = [
    ChecksumAlgorithm::Crc32,
    ChecksumAlgorithm::Crc32c,
    ChecksumAlgorithm::Sha1,
    ChecksumAlgorithm::Sha256,
];

fn checksum_of(algo: ChecksumAlgorithm, data: &[u8]) -> Vec<u8> {
    match algo {
        ChecksumAlgorithm::Crc32 => crc32fast::hash(data).to_be_bytes().to_vec(),
        ChecksumAlgorithm::Crc32c => crc32c::crc32c(data).to_be_bytes().to_vec(),
        ChecksumAlgorithm::Sha1 => sha1::Sha1::digest(data).to_vec(),
        ChecksumAlgorithm::Sha256 => sha2::Sha256::digest(data).to_vec(),
        ChecksumAlgorithm::Crc64Nvme => unreachable!("not generated"),
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The test's own aws-chunked encoder. `sizes` cycle (0 is bumped to 1); `checksum` adds a
/// trailer; with `signer` every chunk (and the trailer, when `signer.trailer`) is signed.
fn encode_aws_chunked(
    payload: &[u8],
    sizes: &[usize],
    upper_hex: bool,
    checksum: Option<(ChecksumAlgorithm, &[u8])>,
    signer: Option<&StreamingSigner>,
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut prev = signer.map(|s| s.seed_signature);
    let mut emit_chunk = |out: &mut Vec<u8>, data: &[u8]| {
        let size = if upper_hex {
            format!("{:X}", data.len())
        } else {
            format!("{:x}", data.len())
        };
        out.extend_from_slice(size.as_bytes());
        if let (Some(s), Some(p)) = (signer, prev.as_mut()) {
            let sig = s.chunk_signature(p, &sha2::Sha256::digest(data).into());
            out.extend_from_slice(format!(";chunk-signature={}", hex::encode(sig)).as_bytes());
            *p = sig;
        }
        out.extend_from_slice(b"\r\n");
        if !data.is_empty() {
            out.extend_from_slice(data);
            out.extend_from_slice(b"\r\n");
        }
    };
    let mut pos = 0;
    let mut i = 0;
    while pos < payload.len() {
        let size = sizes[i % sizes.len()].max(1).min(payload.len() - pos);
        emit_chunk(&mut out, &payload[pos..pos + size]);
        pos += size;
        i += 1;
    }
    emit_chunk(&mut out, &[]);
    let mut trailer_lines: Vec<(String, String)> = Vec::new();
    if let Some((algo, digest)) = checksum {
        trailer_lines.push((algo.header_name().to_string(), b64(digest)));
    }
    for (n, v) in &trailer_lines {
        out.extend_from_slice(format!("{n}:{v}\r\n").as_bytes());
    }
    if let (Some(s), Some(p)) = (signer, prev) {
        if s.trailer {
            let mut canonical = Vec::new();
            for (n, v) in &trailer_lines {
                canonical.extend_from_slice(format!("{n}:{v}\n").as_bytes());
            }
            let sig = s.trailer_signature(&p, &canonical);
            out.extend_from_slice(
                format!("x-amz-trailer-signature:{}\r\n", hex::encode(sig)).as_bytes(),
            );
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

fn signer(key: [u8; 32], seed: [u8; 32], trailer: bool) -> StreamingSigner {
    StreamingSigner {
        signing_key: key,
        amz_date: "20260101T000000Z".to_string(),
        scope: "20260101/us-east-1/s3/aws4_request".to_string(),
        seed_signature: seed,
        trailer,
    }
}

#[derive(Debug, Clone)]
struct ChunkedCase {
    payload: Vec<u8>,
    sizes: Vec<usize>,
    upper_hex: bool,
    /// Index into [`CHECKSUMS`], or none.
    checksum: Option<usize>,
    /// (signing key, seed signature, signed trailer) for signed mode.
    signed: Option<([u8; 32], [u8; 32], bool)>,
    declare_length: bool,
    cuts: Vec<usize>,
    dst_sizes: Vec<usize>,
}

impl ChunkedCase {
    fn algo(&self) -> Option<ChecksumAlgorithm> {
        self.checksum.map(|i| CHECKSUMS[i])
    }

    fn signer(&self) -> Option<StreamingSigner> {
        self.signed.map(|(k, s, t)| signer(k, s, t))
    }

    fn body(&self) -> Vec<u8> {
        let digest = self.algo().map(|a| (a, checksum_of(a, &self.payload)));
        encode_aws_chunked(
            &self.payload,
            &self.sizes,
            self.upper_hex,
            digest.as_ref().map(|(a, d)| (*a, d.as_slice())),
            self.signer().as_ref(),
        )
    }

    fn decoder(&self) -> AwsChunkedDecoder {
        let mode = match self.signer() {
            Some(s) => ChunkMode::Signed(s),
            None => ChunkMode::Unsigned,
        };
        AwsChunkedDecoder::new(
            mode,
            self.algo().map(|a| a.header_name().to_string()),
            self.declare_length.then_some(self.payload.len() as u64),
        )
    }
}

fn chunked_case() -> impl Strategy<Value = ChunkedCase> {
    let payload = prop_oneof![
        4 => prop::collection::vec(any::<u8>(), 0..300),
        1 => prop::collection::vec(any::<u8>(), 0..20_000),
    ];
    let sizes = prop::collection::vec(prop_oneof![1usize..8, 1usize..600, 1usize..70_000], 1..6);
    // Only the trailer-carrying modes carry checksums: a signed body without trailer has none.
    type Mode = (Option<usize>, Option<([u8; 32], [u8; 32], bool)>);
    let mode = prop_oneof![
        prop::option::of(0usize..CHECKSUMS.len()).prop_map(|c| -> Mode { (c, None) }),
        (any::<[u8; 32]>(), any::<[u8; 32]>()).prop_map(|(k, s)| (None, Some((k, s, false)))),
        (
            0usize..CHECKSUMS.len(),
            any::<[u8; 32]>(),
            any::<[u8; 32]>()
        )
            .prop_map(|(c, k, s)| (Some(c), Some((k, s, true)))),
    ];
    (
        payload,
        sizes,
        any::<bool>(),
        mode,
        any::<bool>(),
        prop::collection::vec(0usize..25_000, 0..40),
        prop::collection::vec(1usize..5000, 1..5),
    )
        .prop_map(
            |(payload, sizes, upper_hex, (checksum, signed), declare_length, cuts, dst_sizes)| {
                ChunkedCase {
                    payload,
                    sizes,
                    upper_hex,
                    checksum,
                    signed,
                    declare_length,
                    cuts,
                    dst_sizes,
                }
            },
        )
}

proptest! {
    #![proptest_config(config(1024))]

    /// Encode then decode, split at arbitrary points and read into arbitrary buffer sizes: the
    /// payload and the trailer checksum come back exactly.
    #[test]
    fn aws_chunked_round_trips(case in chunked_case()) {
        let body = case.body();
        let mut src = MemStream::new(body.clone(), case.cuts.clone());
        let mut dec = case.decoder();
        let out = decode_all(&mut dec, &mut src, &case.dst_sizes);
        let out = match out {
            Ok(o) => o,
            Err(e) => return Err(TestCaseError::fail(format!(
                "valid body rejected: {:?} {}; body starts {:?}",
                e.code, e.message, String::from_utf8_lossy(&body[..body.len().min(200)])))),
        };
        prop_assert!(out == case.payload, "payload differs ({} vs {} bytes)", out.len(), case.payload.len());
        prop_assert_eq!(dec.decoded_bytes(), case.payload.len() as u64);
        let want = case.algo().map(|a| (a, checksum_of(a, &case.payload)));
        prop_assert_eq!(dec.trailer_checksum(), want);
        // Finished decoders keep answering "end".
        let mut dst = [0u8; 4];
        prop_assert_eq!(block_on(dec.read(&mut src, &mut dst)).ok(), Some(0));
    }

    /// Signed bodies: any single-byte change either fails or decodes to the very same payload
    /// and checksum (e.g. hex digit case); it never yields different data.
    #[test]
    fn aws_chunked_signed_mutation_never_changes_payload(
        case in chunked_case().prop_filter("signed only", |c| c.signed.is_some()),
        at in any::<usize>(),
        xor in 1u8..=255,
    ) {
        let mut body = case.body();
        let i = at % body.len();
        body[i] ^= xor;
        let mut src = MemStream::new(body.clone(), case.cuts.clone());
        let mut dec = case.decoder();
        if let Ok(out) = decode_all(&mut dec, &mut src, &case.dst_sizes) {
            prop_assert!(out == case.payload,
                "mutated byte {i} ({:?}) decoded to different data", body[i] as char);
            let want = case.algo().map(|a| (a, checksum_of(a, &case.payload)));
            prop_assert_eq!(dec.trailer_checksum(), want);
        }
    }

    /// Arbitrary bytes, in any mode: no panic, never more output than input, errors are sticky.
    #[test]
    fn aws_chunked_garbage_never_panics(
        bytes in prop::collection::vec(any::<u8>(), 0..400),
        prefix in select(vec!["", "5\r\n", "0\r\n", "a;chunk-signature=", "3\r\nabc\r\n0\r\n"]),
        case in chunked_case(),
    ) {
        let mut input = prefix.as_bytes().to_vec();
        input.extend_from_slice(&bytes);
        let mut src = MemStream::new(input, case.cuts.clone());
        let mut dec = case.decoder();
        if decode_all(&mut dec, &mut src, &case.dst_sizes).is_err() {
            let mut dst = [0u8; 16];
            prop_assert!(block_on(dec.read(&mut src, &mut dst)).is_err(), "error not sticky");
        }
    }

    /// A valid body with a few random mutations: no panic, never more output than input.
    #[test]
    fn aws_chunked_mutated_never_panics(
        case in chunked_case(),
        muts in prop::collection::vec(mutation(), 1..4),
    ) {
        let body = apply_mutations(case.body(), &muts);
        let mut src = MemStream::new(body, case.cuts.clone());
        let mut dec = case.decoder();
        let _ = decode_all(&mut dec, &mut src, &case.dst_sizes);
    }
}

// =============================================================================================
// XML request bodies
// =============================================================================================

/// Characters XML 1.0 allows (the `Char` production), biased to markup-relevant ASCII.
fn xml_char() -> impl Strategy<Value = char> {
    prop_oneof![
        6 => prop::char::range(' ', '~'),
        3 => select(vec!['<', '>', '&', '"', '\'', ';', '#', ']', '\t', '\n', '\r', ' ']),
        1 => prop::char::range('\u{80}', '\u{D7FF}'),
        1 => prop::char::range('\u{E000}', '\u{FFFD}'),
        1 => prop::char::range('\u{10000}', '\u{10FFFF}'),
    ]
}

fn xml_text() -> impl Strategy<Value = String> {
    prop::collection::vec(xml_char(), 0..40).prop_map(string_of)
}

/// Escapes `s` as element content, choosing per character among the forms XML allows (seeded
/// by `style`), sometimes as CDATA sections.
fn xml_escape(s: &str, style: u64) -> String {
    let mut out = String::new();
    let mut x = style | 1;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let r = next();
        // A CDATA section for a run of characters without ']' or CR.
        if r % 7 == 0 {
            let run: String = chars[i..]
                .iter()
                .take_while(|c| **c != ']' && **c != '\r')
                .take(1 + (r as usize >> 8) % 6)
                .collect();
            if !run.is_empty() {
                out.push_str("<![CDATA[");
                out.push_str(&run);
                out.push_str("]]>");
                i += run.chars().count();
                continue;
            }
        }
        let c = chars[i];
        i += 1;
        let numeric = r % 5 == 1;
        match c {
            _ if numeric && r % 2 == 0 => out.push_str(&format!("&#{};", c as u32)),
            _ if numeric => out.push_str(&format!("&#x{:X};", c as u32)),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' if r % 3 == 0 => out.push_str("&quot;"),
            '\'' if r % 3 == 0 => out.push_str("&apos;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    out
}

/// Root element opening and closing forms: plain, with the S3 namespace, with a prefix.
fn root_forms(name: &str, form: u8) -> (String, String) {
    const NS: &str = "http://s3.amazonaws.com/doc/2006-03-01/";
    match form % 3 {
        0 => (format!("<{name}>"), format!("</{name}>")),
        1 => (format!("<{name} xmlns=\"{NS}\">"), format!("</{name}>")),
        _ => (
            format!("<s3:{name} xmlns:s3='{NS}'>"),
            format!("</s3:{name}>"),
        ),
    }
}

fn trim_xml_ws(s: &str) -> &str {
    s.trim_matches([' ', '\t', '\r', '\n'])
}

const XML_TOKENS: &[&str] = &[
    "<Delete>",
    "</Delete>",
    "<Object>",
    "</Object>",
    "<Key>",
    "</Key>",
    "<Quiet>true</Quiet>",
    "<CompleteMultipartUpload>",
    "</CompleteMultipartUpload>",
    "<Part>",
    "</Part>",
    "<PartNumber>1</PartNumber>",
    "<PartNumber>99999999999</PartNumber>",
    "<ETag>\"e\"</ETag>",
    "<CreateBucketConfiguration>",
    "</CreateBucketConfiguration>",
    "<LocationConstraint>",
    "</LocationConstraint>",
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
    "<!DOCTYPE x [<!ENTITY a \"b\">]>",
    "&a;",
    "&amp;",
    "&#0;",
    "&#x110000;",
    "&#xD800;",
    "<![CDATA[",
    "]]>",
    "<!--",
    "-->",
    "<a b='c'>",
    "<a b=c>",
    "</a>",
    "<x:Key xmlns:x='u'>",
    "\u{FEFF}",
    "k",
    " ",
    "\n",
    "<",
    ">",
    "&",
];

fn xmlish() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            4 => select(XML_TOKENS).prop_map(|t| t.as_bytes().to_vec()),
            1 => prop::collection::vec(any::<u8>(), 0..4),
        ],
        0..40,
    )
    .prop_map(|parts| parts.concat())
}

fn parse_all_xml(bytes: &[u8]) {
    let _ = parse_delete_request(bytes);
    let _ = parse_complete_multipart(bytes);
    let _ = parse_create_bucket_configuration(bytes);
}

proptest! {
    #![proptest_config(config(4096))]

    #[test]
    fn xml_parsers_never_panic_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        parse_all_xml(&bytes);
    }

    #[test]
    fn xml_parsers_never_panic_on_xmlish_input(bytes in xmlish()) {
        parse_all_xml(&bytes);
    }
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn delete_request_round_trips_keys(
        keys in prop::collection::vec((xml_text(), any::<u64>()), 1..25),
        quiet in prop::option::of(any::<bool>()),
        form in any::<u8>(),
        decl in any::<bool>(),
        noise in any::<bool>(),
    ) {
        let (open, close) = root_forms("Delete", form);
        let mut doc = String::new();
        if decl {
            doc.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        }
        doc.push_str(&open);
        if let Some(q) = quiet {
            doc.push_str(&format!("<Quiet>{}</Quiet>", if q { " TRUE " } else { "false" }));
        }
        for (key, style) in &keys {
            doc.push_str("<Object>");
            if noise {
                doc.push_str("\n  <VersionId>v</VersionId><!-- c --><Unknown a=\"1\"/>");
            }
            doc.push_str("<Key>");
            doc.push_str(&xml_escape(key, *style));
            doc.push_str("</Key>");
            if noise {
                doc.push('\n');
            }
            doc.push_str("</Object>");
        }
        doc.push_str(&close);
        let parsed = parse_delete_request(doc.as_bytes());
        let (got, got_quiet) = match parsed {
            Ok(v) => v,
            Err(e) => return Err(TestCaseError::fail(format!("{:?} for {doc:?}", e.code))),
        };
        let want: Vec<String> = keys.iter().map(|(k, _)| k.clone()).collect();
        prop_assert_eq!(got, want, "document {:?}", doc);
        prop_assert_eq!(got_quiet, quiet.unwrap_or(false));
    }

    #[test]
    fn complete_multipart_round_trips_parts(
        parts in prop::collection::vec(
            (1u32..=10_000, "[0-9a-f]{32}(-[0-9]{1,4})?", any::<bool>(),
             prop::option::of("[A-Za-z0-9+/]{6,43}={0,2}")),
            1..20),
        form in any::<u8>(),
        pad in "[ \t\r\n]{0,3}",
    ) {
        let (open, close) = root_forms("CompleteMultipartUpload", form);
        let mut doc = open;
        for (n, etag, quoted, crc) in &parts {
            let etag_text = if *quoted { format!("&quot;{etag}&quot;") } else { etag.clone() };
            doc.push_str(&format!(
                "<Part>{pad}<ETag>{pad}{etag_text}{pad}</ETag><PartNumber>{pad}{n}{pad}</PartNumber>"
            ));
            if let Some(c) = crc {
                doc.push_str(&format!("<ChecksumCRC32>{c}</ChecksumCRC32>"));
            }
            doc.push_str("</Part>");
        }
        doc.push_str(&close);
        let got = match parse_complete_multipart(doc.as_bytes()) {
            Ok(v) => v,
            Err(e) => return Err(TestCaseError::fail(format!("{:?} for {doc:?}", e.code))),
        };
        prop_assert_eq!(got.len(), parts.len());
        for (g, (n, etag, _, crc)) in got.iter().zip(&parts) {
            prop_assert_eq!(g.part_number, *n);
            prop_assert_eq!(&g.etag, etag);
            let want: Vec<(String, String)> =
                crc.iter().map(|c| ("ChecksumCRC32".to_string(), c.clone())).collect();
            prop_assert_eq!(&g.checksums, &want);
        }
    }

    #[test]
    fn create_bucket_configuration_round_trips(
        location in xml_text(),
        style in any::<u64>(),
        form in any::<u8>(),
    ) {
        let (open, close) = root_forms("CreateBucketConfiguration", form);
        let doc = format!(
            "{open}<LocationConstraint>{}</LocationConstraint>{close}",
            xml_escape(&location, style)
        );
        let got = parse_create_bucket_configuration(doc.as_bytes());
        match got {
            Ok(v) => prop_assert_eq!(v.as_deref(), Some(trim_xml_ws(&location)), "doc {:?}", doc),
            Err(e) => return Err(TestCaseError::fail(format!("{:?} for {doc:?}", e.code))),
        }
    }

    /// Part numbers outside 1..=10000 are InvalidArgument; non-numbers MalformedXML.
    #[test]
    fn complete_multipart_part_number_bounds(n in prop_oneof![Just(0u64), 10_001u64..u64::MAX]) {
        let doc = format!(
            "<CompleteMultipartUpload><Part><PartNumber>{n}</PartNumber><ETag>e</ETag></Part></CompleteMultipartUpload>"
        );
        let err = parse_complete_multipart(doc.as_bytes()).unwrap_err();
        prop_assert_eq!(err.code, S3ErrorCode::InvalidArgument);
    }
}

#[test]
fn xml_hostile_documents_are_malformed() {
    let nested = format!(
        "<Delete>{}<Object><Key>k</Key></Object>{}</Delete>",
        "<a>".repeat(40),
        "</a>".repeat(40)
    );
    let laughs = "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol1 \"&lol;&lol;&lol;&lol;\">]><Delete><Object><Key>&lol1;</Key></Object></Delete>";
    let external = "<?xml version=\"1.0\"?><!DOCTYPE d [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><Delete><Object><Key>&x;</Key></Object></Delete>";
    let undefined = "<Delete><Object><Key>&x;</Key></Object></Delete>";
    let two_roots = "<Delete><Object><Key>a</Key></Object></Delete><Delete/>";
    let unclosed = "<Delete><Object><Key>a</Key></Object>";
    let mismatched = "<Delete><Object><Key>a</Object></Key></Delete>";
    let nul = "<Delete><Object><Key>a\0</Key></Object></Delete>";
    let latin1 = b"<Delete><Object><Key>\xe9</Key></Object></Delete>".to_vec();
    let too_big = format!(
        "<Delete>{}</Delete>",
        "<Object><Key>k</Key></Object>".repeat(2 * 1024 * 1024 / 29 + 10)
    );
    let too_many = format!(
        "<Delete>{}</Delete>",
        "<Object><Key>k</Key></Object>".repeat(1001)
    );
    let docs: Vec<(&str, Vec<u8>)> = vec![
        ("nested", nested.into_bytes()),
        ("billion laughs", laughs.as_bytes().to_vec()),
        ("external entity", external.as_bytes().to_vec()),
        ("undefined entity", undefined.as_bytes().to_vec()),
        ("two roots", two_roots.as_bytes().to_vec()),
        ("unclosed", unclosed.as_bytes().to_vec()),
        ("mismatched", mismatched.as_bytes().to_vec()),
        ("nul", nul.as_bytes().to_vec()),
        ("latin1", latin1),
        ("too big", too_big.into_bytes()),
        ("too many keys", too_many.into_bytes()),
        ("empty", Vec::new()),
        (
            "no objects",
            b"<Delete><Quiet>true</Quiet></Delete>".to_vec(),
        ),
    ];
    for (name, doc) in docs {
        let err = parse_delete_request(&doc).expect_err(name);
        assert_eq!(err.code, S3ErrorCode::MalformedXML, "{name}");
    }
}

// =============================================================================================
// Listing
// =============================================================================================

const KEY_ALPHABET: &[&str] = &[
    "a",
    "b",
    "/",
    "-",
    "é",
    "\u{E000}",
    "\u{D7FF}",
    "\u{10FFFF}",
    "0",
    ":",
    "::",
    "a/",
];

fn key_text(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(select(KEY_ALPHABET), 0..max).prop_map(|v| v.concat())
}

fn summary(i: usize) -> ObjectSummary {
    ObjectSummary {
        size: i as u64,
        etag: format!("{i:032x}"),
        last_modified_ms: 1_700_000_000_000 + i as u64,
    }
}

/// Naive model: every key after `start_after` under `prefix`, rolled up at the first delimiter
/// after the prefix, each item once; a common prefix equal to `start_after` was already returned.
fn reference_items(
    keys: &BTreeSet<String>,
    prefix: &str,
    delimiter: Option<&str>,
    start_after: Option<&str>,
) -> Vec<String> {
    let delimiter = delimiter.filter(|d| !d.is_empty());
    let mut out: Vec<String> = Vec::new();
    for key in keys.iter().filter(|k| k.starts_with(prefix)) {
        if start_after.is_some_and(|s| key.as_str() <= s) {
            continue;
        }
        let item = match delimiter.and_then(|d| key[prefix.len()..].find(d).map(|i| (i, d))) {
            Some((i, d)) => key[..prefix.len() + i + d.len()].to_string(),
            None => key.clone(),
        };
        if start_after == Some(item.as_str()) {
            continue;
        }
        if out.last() != Some(&item) {
            out.push(item);
        }
    }
    out
}

/// A page's keys and common prefixes merged in key order.
fn page_items(page: &ListPage) -> Vec<String> {
    let mut items: Vec<String> = page.contents.iter().map(|e| e.key.clone()).collect();
    items.extend(page.common_prefixes.iter().cloned());
    items.sort();
    items
}

fn check_page(
    index: &BucketIndex,
    page: &ListPage,
    params: &ListParams,
) -> Result<(), TestCaseError> {
    prop_assert!(page.key_count() <= params.max_keys);
    for e in &page.contents {
        prop_assert!(e.key.starts_with(&params.prefix));
        prop_assert_eq!(Some(&e.summary), index.get(&e.key));
    }
    for w in page.contents.windows(2) {
        prop_assert!(w[0].key < w[1].key);
    }
    for w in page.common_prefixes.windows(2) {
        prop_assert!(w[0] < w[1]);
    }
    if page.is_truncated {
        prop_assert_eq!(page.key_count(), params.max_keys);
        let items = page_items(page);
        prop_assert_eq!(page.next_marker.as_ref(), items.last());
    }
    Ok(())
}

#[derive(Debug, Clone)]
struct ListCase {
    keys: BTreeSet<String>,
    prefix: String,
    delimiter: Option<String>,
    page_size: usize,
    start_after: Option<String>,
}

fn list_case() -> impl Strategy<Value = ListCase> {
    (
        prop::collection::btree_set(key_text(6), 0..60),
        prop_oneof![3 => Just(String::new()), 2 => key_text(3)],
        prop_oneof![
            Just(None),
            Just(Some(String::new())),
            Just(Some("/".to_string())),
            key_text(2).prop_map(Some),
        ],
        prop_oneof![4 => 1usize..8, 1 => Just(1000usize)],
        prop::option::of(key_text(5)),
    )
        .prop_map(
            |(keys, prefix, delimiter, page_size, start_after)| ListCase {
                keys: keys.into_iter().filter(|k| !k.is_empty()).collect(),
                prefix,
                delimiter,
                page_size,
                start_after,
            },
        )
}

fn index_of(keys: &BTreeSet<String>) -> BucketIndex {
    keys.iter()
        .enumerate()
        .map(|(i, k)| (k.clone(), summary(i)))
        .collect()
}

proptest! {
    #![proptest_config(config(2048))]

    /// Paging with `next_marker` visits every key and common prefix exactly once, in order.
    #[test]
    fn list_paging_matches_reference(case in list_case()) {
        let index = index_of(&case.keys);
        let expected = reference_items(&case.keys, &case.prefix, case.delimiter.as_deref(), None);
        let mut marker: Option<String> = None;
        let mut all: Vec<String> = Vec::new();
        let mut finished = false;
        for _ in 0..=case.keys.len() + 1 {
            let params = ListParams {
                prefix: case.prefix.clone(),
                delimiter: case.delimiter.clone(),
                start_after: marker.clone(),
                max_keys: case.page_size,
            };
            let page = list_page(&index, &params);
            check_page(&index, &page, &params)?;
            let items = page_items(&page);
            if let (Some(m), Some(first)) = (&marker, items.first()) {
                prop_assert!(first > m, "page restarts at {first:?} after marker {m:?}");
            }
            all.extend(items);
            if !page.is_truncated {
                finished = true;
                break;
            }
            marker = page.next_marker.clone();
        }
        prop_assert!(finished, "pagination did not terminate");
        prop_assert_eq!(&all, &expected, "case {:?}", case);
    }

    /// One page from an arbitrary start-after equals the reference's first `max_keys` items.
    #[test]
    fn list_page_from_any_marker_matches_reference(case in list_case()) {
        let index = index_of(&case.keys);
        let params = ListParams {
            prefix: case.prefix.clone(),
            delimiter: case.delimiter.clone(),
            start_after: case.start_after.clone(),
            max_keys: case.page_size,
        };
        let page = list_page(&index, &params);
        check_page(&index, &page, &params)?;
        let expected = reference_items(
            &case.keys,
            &case.prefix,
            case.delimiter.as_deref(),
            case.start_after.as_deref(),
        );
        let want: Vec<String> = expected.iter().take(case.page_size).cloned().collect();
        prop_assert_eq!(page_items(&page), want, "case {:?}", case);
        prop_assert_eq!(page.is_truncated, expected.len() > case.page_size);
    }
}

// =============================================================================================
// SigV4
// =============================================================================================

fn sig_creds() -> Credentials {
    Credentials {
        access_key: "AKIDPROPTEST".to_string(),
        secret_key: "prop/secret+Key=0123".to_string(),
    }
}

/// 2026-11-25T...:53Z; the seconds leave room to bump the timestamp without changing the date.
fn sig_now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_795_617_053)
}

#[derive(Debug, Clone)]
struct SigCase {
    method: String,
    /// Path segments: each is a list of (byte, encode?) pairs.
    segments: Vec<Vec<(u8, bool)>>,
    /// Query parameters: (name, value or none, lowercase hex?).
    params: Vec<(String, Option<String>, bool)>,
    /// (name as sent, words, whitespace runs between/around them).
    headers: Vec<(String, Vec<String>, Vec<String>)>,
    payload: String,
}

impl SigCase {
    fn path(&self) -> String {
        let mut out = String::new();
        for seg in &self.segments {
            out.push('/');
            for &(b, enc) in seg {
                let unreserved = b.is_ascii_alphanumeric() || b"-._~".contains(&b);
                let safe = b"!$'()*,;:@=+".contains(&b);
                if (unreserved || safe) && !enc {
                    out.push(b as char);
                } else {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
        }
        if out.is_empty() {
            out.push('/');
        }
        out
    }

    fn query(&self) -> String {
        let enc = |s: &str, lower: bool| {
            let mut out = String::new();
            for b in s.bytes() {
                let unreserved = b.is_ascii_alphanumeric() || b"-._~".contains(&b);
                if unreserved || b"/:@!$'()*,;=".contains(&b) {
                    out.push(b as char);
                } else if lower {
                    out.push_str(&format!("%{b:02x}"));
                } else {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
            out
        };
        self.params
            .iter()
            .map(|(n, v, lower)| match v {
                Some(v) => format!("{}={}", enc(n, *lower), enc(v, *lower)),
                None => enc(n, *lower),
            })
            .collect::<Vec<_>>()
            .join("&")
    }

    fn header_value(words: &[String], ws: &[String]) -> String {
        let mut out = ws[0].clone();
        for (i, w) in words.iter().enumerate() {
            if i > 0 {
                out.push_str(&ws[i % ws.len()]);
            }
            out.push_str(w);
        }
        out.push_str(&ws[ws.len() - 1]);
        out
    }

    fn headers(&self) -> Vec<(String, String)> {
        let mut out = vec![("Host".to_string(), "127.0.0.1:9000".to_string())];
        for (n, words, ws) in &self.headers {
            out.push((n.clone(), SigCase::header_value(words, ws)));
        }
        out
    }

    /// Signs with `sign_headers` and returns (target, headers as sent).
    fn signed(&self) -> (String, Vec<(String, String)>) {
        let mut headers = self.headers();
        let (path, query) = (self.path(), self.query());
        sign_headers(
            &sig_creds(),
            &self.method,
            &path,
            &query,
            &mut headers,
            &self.payload,
            sig_now(),
            "us-east-1",
        );
        let target = if query.is_empty() {
            path
        } else {
            format!("{path}?{query}")
        };
        (target, headers)
    }
}

fn wire_head(method: &str, target: &str, headers: &[(String, String)]) -> RequestHead {
    let mut wire = format!("{method} {target} HTTP/1.1\r\n");
    for (n, v) in headers {
        wire.push_str(&format!("{n}: {v}\r\n"));
    }
    wire.push_str("\r\n");
    match RequestHead::parse(wire.as_bytes()) {
        Ok(HeadParse::Complete(h, _)) => h,
        other => panic!("generated request does not parse ({other:?}): {wire:?}"),
    }
}

fn verify(method: &str, target: &str, headers: &[(String, String)]) -> Result<(), AuthError> {
    let head = wire_head(method, target, headers);
    Verifier::new(sig_creds())
        .verify(&head, sig_now())
        .map(|_| ())
}

fn header_word() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            8 => prop::char::range('!', '~'),
            1 => select(vec!['é', '中', '\u{a0}', '\u{3000}', '\u{1F600}']),
        ],
        1..10,
    )
    .prop_map(string_of)
}

fn sig_case() -> impl Strategy<Value = SigCase> {
    let method = select(vec!["GET", "PUT", "POST", "DELETE", "HEAD"]).prop_map(String::from);
    let segment = prop::collection::vec(
        (
            prop_oneof![
                4 => select(b"abcXYZ019-._~!$'()*,;:@=+".as_slice()),
                1 => any::<u8>(),
            ],
            any::<bool>(),
        ),
        0..12,
    );
    let param = (
        "p[a-z0-9_.~-]{0,8}",
        prop::option::of(prop::collection::vec(any::<char>(), 0..12).prop_map(string_of)),
        any::<bool>(),
    );
    let header_name = prop_oneof![
        "x-amz-meta-[a-z0-9]{1,8}",
        "X-Amz-Meta-[A-Za-z0-9]{1,8}",
        select(vec![
            "content-type",
            "Content-MD5",
            "range",
            "if-match",
            "x-amz-acl",
            "user-agent",
            "x-custom",
        ])
        .prop_map(String::from),
    ];
    let header = (
        header_name,
        prop::collection::vec(header_word(), 1..5),
        prop::collection::vec("[ \t]{0,4}", 2..4),
    );
    let payload = prop_oneof![
        any::<[u8; 32]>().prop_map(hex::encode),
        Just("UNSIGNED-PAYLOAD".to_string()),
        Just("STREAMING-UNSIGNED-PAYLOAD-TRAILER".to_string()),
        Just("STREAMING-AWS4-HMAC-SHA256-PAYLOAD".to_string()),
    ];
    (
        method,
        prop::collection::vec(segment, 0..5),
        prop::collection::vec(param, 0..6),
        prop::collection::vec(header, 0..6),
        payload,
    )
        .prop_map(|(method, segments, params, headers, payload)| SigCase {
            method,
            segments,
            params,
            headers,
            payload,
        })
}

fn is_signed_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n == "host"
        || n.starts_with("x-amz-")
        || n.starts_with("if-")
        || matches!(
            n.as_str(),
            "content-type" | "content-md5" | "content-encoding" | "range"
        )
}

fn expect_mismatch(
    what: &str,
    method: &str,
    target: &str,
    headers: &[(String, String)],
) -> Result<(), TestCaseError> {
    match verify(method, target, headers) {
        Err(e) if e.code == AuthErrorCode::SignatureDoesNotMatch => Ok(()),
        other => Err(TestCaseError::fail(format!(
            "{what}: expected SignatureDoesNotMatch, got {:?} for {method} {target} {headers:?}",
            other.map_err(|e| (e.code, e.message))
        ))),
    }
}

proptest! {
    #![proptest_config(config(1024))]

    /// What `sign_headers` signs, `Verifier::verify` accepts; canonically equivalent rewrites
    /// (query order, hex case, whitespace runs, header-name case, unsigned extra headers) too.
    #[test]
    fn sigv4_signed_requests_verify(case in sig_case(), rot in any::<usize>()) {
        let (target, headers) = case.signed();
        if let Err(e) = verify(&case.method, &target, &headers) {
            return Err(TestCaseError::fail(format!(
                "signed request rejected: {:?} {}\n{} {target} {headers:?}\ncanonical: {:?}",
                e.code, e.message, case.method,
                e.extra.iter().find(|(n, _)| *n == "CanonicalRequest").map(|(_, v)| v))));
        }
        let head = wire_head(&case.method, &target, &headers);
        let outcome = Verifier::new(sig_creds()).verify(&head, sig_now()).expect("verified above");
        match case.payload.as_str() {
            "UNSIGNED-PAYLOAD" => prop_assert_eq!(outcome.payload, PayloadCheck::Unsigned),
            "STREAMING-UNSIGNED-PAYLOAD-TRAILER" =>
                prop_assert_eq!(outcome.payload, PayloadCheck::StreamingUnsignedTrailer),
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" =>
                prop_assert!(matches!(outcome.payload, PayloadCheck::StreamingSigned(_))),
            hex_hash => {
                let mut want = [0u8; 32];
                hex::decode_to_slice(hex_hash, &mut want).unwrap();
                prop_assert_eq!(outcome.payload, PayloadCheck::Sha256(want));
            }
        }

        // Equivalent: query parameters rotated on the wire.
        if case.params.len() > 1 {
            let mut rotated = case.clone();
            let k = rot % case.params.len();
            rotated.params.rotate_left(k);
            let path = case.path();
            let t = format!("{path}?{}", rotated.query());
            prop_assert!(verify(&case.method, &t, &headers).is_ok(), "rotated query {t}");
            // Equivalent: hex digits of every escape in the other case.
            let mut recased = case.clone();
            for p in &mut recased.params {
                p.2 = !p.2;
            }
            let t = format!("{path}?{}", recased.query());
            prop_assert!(verify(&case.method, &t, &headers).is_ok(), "recased query {t}");
        }
        // Equivalent: whitespace runs widened, header names re-cased, unsigned header added.
        let mut widened = headers.clone();
        for (n, v) in widened.iter_mut() {
            if n != "authorization" {
                *v = v.replace(' ', " \t ");
                *n = if rot % 2 == 0 { n.to_ascii_uppercase() } else { n.to_ascii_lowercase() };
            }
        }
        widened.push(("User-Agent".to_string(), "proptest/1".to_string()));
        prop_assert!(verify(&case.method, &target, &widened).is_ok(), "widened {widened:?}");
    }

    /// Changing any one signed component makes verification fail with SignatureDoesNotMatch.
    #[test]
    fn sigv4_any_signed_change_is_rejected(case in sig_case(), pick in any::<usize>()) {
        let (target, headers) = case.signed();
        prop_assume!(verify(&case.method, &target, &headers).is_ok());
        let path = case.path();
        let query = case.query();
        let with_query = |p: &str, q: &str| if q.is_empty() { p.to_string() } else { format!("{p}?{q}") };

        // Method.
        let other = if case.method == "PUT" { "GET" } else { "PUT" };
        expect_mismatch("method", other, &target, &headers)?;
        // Path: one more character, or one fewer segment.
        expect_mismatch("path", &case.method, &with_query(&format!("{path}x"), &query), &headers)?;
        if path.len() > 1 {
            let shorter = &path[..path.len() - 1];
            expect_mismatch("path", &case.method, &with_query(shorter, &query), &headers)?;
        }
        // Query: an extra parameter; a changed value; a removed parameter.
        let extra = if query.is_empty() { "zz=1".to_string() } else { format!("{query}&zz=1") };
        expect_mismatch("query added", &case.method, &format!("{path}?{extra}"), &headers)?;
        if !case.params.is_empty() {
            let i = pick % case.params.len();
            let mut changed = case.clone();
            let v = changed.params[i].1.get_or_insert_with(String::new);
            v.push('q');
            expect_mismatch("query value", &case.method, &with_query(&path, &changed.query()), &headers)?;
            let mut removed = case.clone();
            removed.params.remove(i);
            // Removing a duplicate of an identical parameter changes the canonical query too.
            expect_mismatch("query removed", &case.method, &with_query(&path, &removed.query()), &headers)?;
        }
        // Each signed header: value changed, header removed (when not blank), header repeated.
        for (i, (name, value)) in headers.iter().enumerate() {
            let lower = name.to_ascii_lowercase();
            if !is_signed_name(name) || lower == "authorization" {
                continue;
            }
            let mut changed = headers.clone();
            changed[i].1 = match lower.as_str() {
                // Still a valid timestamp, same day, one second later.
                "x-amz-date" => {
                    let secs: u32 = value[13..15].parse().unwrap();
                    format!("{}{:02}Z", &value[..13], secs + 1)
                }
                // Still a valid payload form.
                "x-amz-content-sha256" => hex::encode([7u8; 32]),
                _ => format!("{value}!"),
            };
            expect_mismatch(&format!("header {name} changed"), &case.method, &target, &changed)?;
            if !trim_ows(value).is_empty()
                && !matches!(lower.as_str(), "x-amz-date" | "x-amz-content-sha256")
            {
                let mut removed = headers.clone();
                removed.remove(i);
                expect_mismatch(&format!("header {name} removed"), &case.method, &target, &removed)?;
            }
            if !matches!(lower.as_str(), "x-amz-date" | "x-amz-content-sha256") {
                let mut repeated = headers.clone();
                repeated.push((name.clone(), "again".to_string()));
                expect_mismatch(&format!("header {name} repeated"), &case.method, &target, &repeated)?;
            }
        }
        // The signature itself.
        let mut forged = headers.clone();
        let auth = forged.iter_mut().find(|(n, _)| n == "authorization").unwrap();
        let last = auth.1.pop().unwrap();
        auth.1.push(if last == '0' { '1' } else { '0' });
        expect_mismatch("signature", &case.method, &target, &forged)?;
    }
}

/// Deterministic companion: a header value with Unicode white space at its ends (legal
/// obs-text in HTTP, kept by SigV4's trimming which only removes ASCII blanks) still verifies.
#[test]
fn sigv4_header_value_with_unicode_space_at_the_end_verifies() {
    let mut headers = vec![
        ("host".to_string(), "127.0.0.1:9000".to_string()),
        ("x-amz-meta-note".to_string(), "caf\u{e9}\u{a0}".to_string()),
    ];
    sign_headers(
        &sig_creds(),
        "PUT",
        "/b/k",
        "",
        &mut headers,
        "UNSIGNED-PAYLOAD",
        sig_now(),
        "us-east-1",
    );
    if let Err(e) = verify("PUT", "/b/k", &headers) {
        panic!(
            "{:?}: a value ending in U+00A0 fails verification (the server trims it, the client does not)",
            e.code
        );
    }
}

// =============================================================================================
// Object records
// =============================================================================================

fn record_key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::collection::vec(any::<char>(), 0..300).prop_map(|c| {
            let mut s = String::new();
            for ch in c {
                if s.len() + ch.len_utf8() > 1024 {
                    break;
                }
                s.push(ch);
            }
            s
        }),
        1 => "[a-z/]{1000,1024}",
    ]
}

fn small_text(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(any::<char>(), 0..max).prop_map(string_of)
}

fn record() -> impl Strategy<Value = ObjectRecord> {
    let pairs = |n, len| prop::collection::vec((small_text(16), small_text(len)), 0..n);
    let checksum = prop::option::of(
        (
            select(vec!["crc32", "crc32c", "crc64nvme", "sha1", "sha256"]),
            "[A-Za-z0-9+/=]{0,64}",
            any::<bool>(),
        )
            .prop_map(|(a, v, full_object)| StoredChecksum {
                algorithm: a.to_string(),
                value_b64: v,
                full_object,
            }),
    );
    let parts = prop::option::of(
        (
            "[0-9a-f]{32}",
            prop::collection::vec(
                (any::<u32>(), any::<u64>(), any::<[u8; 16]>())
                    .prop_map(|(number, size, md5)| PartRef { number, size, md5 }),
                0..60,
            ),
        )
            .prop_map(|(upload_id, parts)| PartsLayout { upload_id, parts }),
    );
    (
        record_key(),
        any::<u64>(),
        any::<[u8; 16]>(),
        any::<u64>(),
        pairs(6, 60),
        pairs(10, 300),
        checksum,
        parts,
    )
        .prop_map(
            |(key, size, md5, last_modified_ms, system_headers, user_metadata, checksum, parts)| {
                ObjectRecord {
                    key,
                    size,
                    md5,
                    last_modified_ms,
                    system_headers,
                    user_metadata,
                    checksum,
                    parts,
                }
            },
        )
}

/// Bytes of the preamble: magic, version, header length, record length, CRC32C.
const PREAMBLE: usize = 24;

fn encoded(rec: &ObjectRecord, extra_blocks: usize, fill: u8) -> (Vec<u8>, usize) {
    let header_len = rec.header_len() + extra_blocks * BLOCK_BYTES;
    let mut buf = vec![fill; header_len + 37];
    rec.encode_header(header_len, &mut buf);
    (buf, header_len)
}

fn record_len_of(buf: &[u8]) -> usize {
    u32::from_le_bytes(buf[16..20].try_into().unwrap()) as usize
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn record_round_trips(rec in record(), extra in 0usize..3, fill in any::<u8>()) {
        let (buf, header_len) = encoded(&rec, extra, fill);
        prop_assert_eq!(header_len % BLOCK_BYTES, 0);
        prop_assert_eq!(&buf[..8], MAGIC.as_slice());
        match ObjectRecord::decode_header(&buf) {
            Ok((back, len)) => {
                prop_assert_eq!(len, header_len);
                prop_assert_eq!(back, rec);
            }
            Err(e) => return Err(TestCaseError::fail(format!("decode failed: {e}"))),
        }
        prop_assert_eq!(ObjectRecord::peek_header_len(&buf[..PREAMBLE]).ok(), Some(header_len));
    }

    /// Any change to a byte of the record region (after the preamble, up to its length) is
    /// detected: decode fails, it never panics nor returns another record.
    #[test]
    fn record_corruption_in_record_region_is_detected(
        rec in record(),
        picks in prop::collection::vec((any::<usize>(), 1u8..=255), 64),
    ) {
        let (buf, _) = encoded(&rec, 0, 0);
        let rec_len = record_len_of(&buf);
        let positions: Vec<(usize, u8)> = if rec_len <= 256 {
            (0..rec_len).map(|i| (i, picks[i % picks.len()].1)).collect()
        } else {
            picks.iter().map(|&(i, x)| (i % rec_len, x)).collect()
        };
        for (i, xor) in positions {
            let mut bad = buf.clone();
            bad[PREAMBLE + i] ^= xor;
            prop_assert!(ObjectRecord::decode_header(&bad).is_err(),
                "flipping record byte {i} by {xor:#x} was not detected");
        }
    }

    /// A change in the preamble (magic, version, header length, record length, CRC) either
    /// fails or decodes the very same record at the very same data offset.
    #[test]
    fn record_corruption_in_preamble_is_detected(
        rec in record(),
        at in 0usize..PREAMBLE,
        xor in 1u8..=255,
    ) {
        let (buf, header_len) = encoded(&rec, 0, 0);
        let mut bad = buf.clone();
        bad[at] ^= xor;
        if let Ok((back, len)) = ObjectRecord::decode_header(&bad) {
            prop_assert_eq!(&back, &rec);
            prop_assert_eq!(len, header_len,
                "preamble byte {} ^ {:#x}: corrupted header length accepted, data offset moved", at, xor);
        }
    }

    #[test]
    fn record_decode_never_panics_on_garbage(bytes in prop::collection::vec(any::<u8>(), 0..5000)) {
        let _ = ObjectRecord::decode_header(&bytes);
        let _ = ObjectRecord::peek_header_len(&bytes);
    }

    /// Arbitrary record bodies behind a valid preamble and CRC: decoding never panics, and what
    /// it accepts re-encodes to a record that decodes the same.
    #[test]
    fn record_decode_never_panics_on_checksummed_garbage(
        body in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..3000),
            record().prop_map(|r| {
                let (buf, _) = encoded(&r, 0, 0);
                buf[PREAMBLE..PREAMBLE + record_len_of(&buf)].to_vec()
            }),
        ],
        muts in prop::collection::vec(mutation(), 0..4),
    ) {
        let body = apply_mutations(body, &muts);
        let header_len = (PREAMBLE + body.len()).div_ceil(BLOCK_BYTES).max(1) * BLOCK_BYTES;
        let mut block = vec![0u8; header_len];
        block[..8].copy_from_slice(MAGIC);
        block[8..12].copy_from_slice(&1u32.to_le_bytes());
        block[12..16].copy_from_slice(&(header_len as u32).to_le_bytes());
        block[16..20].copy_from_slice(&(body.len() as u32).to_le_bytes());
        block[20..24].copy_from_slice(&crc32c::crc32c(&body).to_le_bytes());
        block[PREAMBLE..PREAMBLE + body.len()].copy_from_slice(&body);
        if let Ok((rec, _)) = ObjectRecord::decode_header(&block) {
            let (again, _) = encoded(&rec, 0, 0);
            let (back, _) = ObjectRecord::decode_header(&again).expect("re-encoded record decodes");
            prop_assert_eq!(back, rec);
        }
    }
}

// =============================================================================================
// Percent-encoding
// =============================================================================================

proptest! {
    #![proptest_config(config(4096))]

    #[test]
    fn percent_decode_never_panics(s in prop_oneof![
        any::<String>(),
        prop::collection::vec(select(vec!["%", "%2", "%C3", "%28", "%zz", "%FF", "a", "+", "%%", "é"]), 0..12)
            .prop_map(|v| v.concat()),
    ]) {
        let _ = percent_decode(&s);
        let _ = percent_decode_bytes(&s);
    }

    #[test]
    fn aws_uri_encode_then_decode_is_identity(s in any::<String>(), encode_slash in any::<bool>()) {
        let enc = aws_uri_encode(s.as_bytes(), encode_slash);
        prop_assert!(enc.is_ascii());
        prop_assert!(!enc.contains('+') && !enc.contains(' '));
        prop_assert_eq!(percent_decode(&enc).ok(), Some(s.clone()));
        let form = url_form_encode(&s);
        prop_assert_eq!(percent_decode(&form).ok(), Some(s));
    }

    #[test]
    fn percent_bytes_round_trip(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let enc = aws_uri_encode(&bytes, true);
        prop_assert_eq!(percent_decode_bytes(&enc), Some(bytes));
    }
}
