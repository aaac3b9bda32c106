//! ringstore: a thread-per-core S3-compatible object storage server on glommio (io_uring).
//!
//! Layers depend one way (see ARCHITECTURE.md):
//!
//! ```text
//! cli -> runtime -> s3 -> auth -> http
//!   \-> bench    \-> storage    \-> digest, clock, obs (leaves)
//! ```
//! [`runtime`] starts the per-core executors and wires [`http`] (connections) to [`s3`] (the
//! request handler), which runs operations against [`storage`] (the typed store).

//!
//! Everything is `pub(crate)` unless something outside the library needs it. The public
//! surface, and who needs it:
//!
//! - the binary (`src/main.rs`): [`cli`] (`Cli`, `Command`, `ServeArgs`), [`runtime::start`]
//!   (`ServerConfig`, `Started`, `FsyncPolicy`, `storage::LoadReport`), [`bench::run`] /
//!   `BenchArgs`, [`http::shutdown::request_shutdown`];
//! - `benches/` (criterion): `http::head` (`RequestHead::parse`, `HeadParse`), `auth`
//!   (`sign_headers`, `Credentials`, `Verifier`, `StreamingSigner`), `digest` (`BodyDigests`,
//!   `ChecksumAlgorithm`, `Expectations`), `s3::ingest` (`BodySource`, `aws_chunked`);
//! - `tests/` (properties, hostile clients, crash): the parsers and codecs above plus
//!   `http::body::parse_chunk_size`, `http::percent`, `s3::xml` request parsers and their
//!   limits, `s3::error`, `s3::bucket_name::validate_bucket_name`, `storage::record` (the
//!   on-disk format), `storage::{list_page, ListParams, ListPage, BucketIndex, owner_of}`,
//!   `auth::presign_url`.

#![forbid(unsafe_code)]
// The docs are for developers (`cargo doc --document-private-items`): links to crate-private
// items are intended.
#![allow(rustdoc::private_intra_doc_links)]

pub mod auth;
pub mod bench;
pub mod cli;
pub mod clock;
pub mod digest;
pub mod http;
pub(crate) mod obs;
pub mod runtime;
pub mod s3;
pub mod storage;
