//! HTTP/1.1 layer: request heads, body framings, response writing, the connection loop.

pub mod aws_chunked;
pub mod body;
pub mod conn;
pub mod date;
pub mod error;
pub mod head;
pub mod percent;
pub mod response;
pub mod server;
