//! HTTP/1.1 layer: request heads, body framings, response writing, the connection loop.
//!
//! It knows nothing of S3: requests go to the [`server::Handler`] it is given, and response
//! bodies come from any [`response::ChunkStream`].

pub mod body;
pub mod conn;
pub mod date;
pub mod error;
pub mod head;
pub mod percent;
pub mod response;
pub mod server;
pub mod shutdown;
