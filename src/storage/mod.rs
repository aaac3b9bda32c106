//! Storage: the on-disk object format, DMA staging writes and reads, the per-core owner state
//! (bucket indexes, commits, deletes) and the data directory layout.

pub mod group_sync;
pub mod index;
pub mod layout;
pub mod owner;
pub mod reader;
pub mod record;
pub mod uploads;
pub mod writer;
