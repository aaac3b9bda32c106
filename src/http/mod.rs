//! HTTP/1.1 layer: request heads, body framings, response writing, the connection loop, and
//! TLS under it (HTTPS).
//!
//! It knows nothing of S3: requests go to the [`server::Handler`] it is given, and response
//! bodies come from any [`response::ChunkStream`].

pub mod body;
pub(crate) mod conn;
pub(crate) mod date;
pub(crate) mod error;
pub mod head;
pub mod percent;
pub(crate) mod response;
pub(crate) mod server;
pub mod shutdown;
pub mod tls;
