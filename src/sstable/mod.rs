//! Immutable sorted tables: data blocks, a Bloom filter, a meta block, an index block and a
//! footer (`docs/format/sstable.md`).

pub mod block;
pub mod bloom;
pub mod builder;
pub mod cache;
pub mod compress;
pub mod format;
mod index;
pub mod reader;

pub use builder::TableBuilder;
pub use cache::BlockCache;
pub use format::TableMeta;
pub use reader::{Table, TableIter};
