//! ringstore: a thread-per-core S3-compatible object storage server on glommio (io_uring).
//!
//! Data flows one way: socket -> [`http`] (head, body framing) -> [`auth`] (SigV4) -> [`s3`]
//! (route, operation, XML) -> [`storage`] (DMA files, owner index) -> response. [`runtime`]
//! starts the per-core executors and carries metadata operations to each bucket's owner core.

pub mod auth;
pub mod bench;
pub mod config;
pub mod digest;
pub mod http;
pub mod runtime;
pub mod s3;
pub mod storage;
