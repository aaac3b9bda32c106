//! ringstore: a thread-per-core S3-compatible object storage server on glommio (io_uring).
//!
//! Layers depend one way (see ARCHITECTURE.md):
//!
//! ```text
//! cli -> runtime -> s3 -> auth -> http
//!   \-> bench    \-> storage    \-> digest, clock (leaves)
//! ```
//! [`runtime`] starts the per-core executors and wires [`http`] (connections) to [`s3`] (the
//! request handler), which runs operations against [`storage`] (the typed store).

#![forbid(unsafe_code)]

pub mod auth;
pub mod bench;
pub mod cli;
pub mod clock;
pub mod digest;
pub mod http;
pub mod runtime;
pub mod s3;
pub mod storage;
