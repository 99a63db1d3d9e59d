//! Writes a table from entries in internal-key order. Knows nothing of the manifest.

use super::block::BlockBuilder;
use super::bloom;
use super::compress::{self, Stored};
use super::format::{
    block_crc, put_handle, BlockHandle, Footer, MetaV2, TableMeta, TABLE_FORMAT_VERSION,
};
use crate::env::{join, File, Fs};
use crate::error::{Error, Result};
use crate::filename::table_name;
use crate::key::{self, Kind};
use crate::options::{Compression, Options};
use crate::planted::{self, Bug};
use crate::rangedel::Fragments;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Bytes buffered before an append to the file.
const WRITE_BUFFER_BYTES: usize = 256 << 10;

/// Builds one table file.
pub struct TableBuilder {
    file: Arc<dyn File>,
    path: PathBuf,
    number: u64,
    block_size_bytes: usize,
    bloom_bits_per_key: usize,
    data: BlockBuilder,
    index: BlockBuilder,
    /// Encoded bytes not yet appended, and the file offset they start at.
    out: Vec<u8>,
    offset: u64,
    hashes: bloom::Hashes,
    last_user_key: Vec<u8>,
    meta: TableMeta,
    range_dels: Fragments,
    older_versions: u64,
    compression: Compression,
    /// A finished data block before compression, and the codec's output (both reused).
    raw: Vec<u8>,
    scratch: Vec<u8>,
    max_data_block_len: u64,
    raw_data_bytes: u64,
    blocks: BlockCounts,
}

/// How a table's data blocks were stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlockCounts {
    /// Compressed with the level's codec.
    pub compressed: u64,
    /// Stored as they are although a codec was asked for (it would not have saved an eighth).
    pub stored_raw: u64,
}

impl TableBuilder {
    /// Creates table file `number` in `dir` and a builder for it, shaped by the options' block
    /// size, restart interval, filter bits and the codec of `level` (where the table goes):
    /// the one way the engine makes a table file.
    pub fn create(
        fs: &dyn Fs,
        dir: &Path,
        number: u64,
        o: &Options,
        level: usize,
    ) -> Result<TableBuilder> {
        let path = join(dir, &table_name(number));
        let file = fs
            .create(&path)
            .map_err(|e| Error::io("create", &path, e))?;
        Ok(TableBuilder::new(
            file,
            path,
            number,
            o.block_size_bytes,
            o.block_restart_interval,
            o.bloom_bits_per_key,
        )
        .with_compression(o.compression_for(level)))
    }

    /// The builder, compressing data blocks with `c` (a new builder stores them raw).
    pub fn with_compression(mut self, c: Compression) -> TableBuilder {
        self.compression = c;
        self
    }

    pub fn new(
        file: Arc<dyn File>,
        path: PathBuf,
        number: u64,
        block_size_bytes: usize,
        restart_interval: usize,
        bloom_bits_per_key: usize,
    ) -> TableBuilder {
        TableBuilder {
            file,
            path,
            number,
            block_size_bytes,
            bloom_bits_per_key,
            data: BlockBuilder::new(restart_interval),
            index: BlockBuilder::new(1),
            out: Vec::with_capacity(WRITE_BUFFER_BYTES + block_size_bytes),
            offset: 0,
            hashes: bloom::Hashes::default(),
            last_user_key: Vec::new(),
            meta: TableMeta {
                number,
                smallest_seq: u64::MAX,
                ..TableMeta::default()
            },
            range_dels: Fragments::default(),
            older_versions: 0,
            compression: Compression::None,
            raw: Vec::new(),
            scratch: Vec::new(),
            max_data_block_len: 0,
            raw_data_bytes: 0,
            blocks: BlockCounts::default(),
        }
    }

    /// Adds an entry. Keys must strictly increase in internal-key order.
    pub fn add(&mut self, ikey: &[u8], value: &[u8]) -> Result<()> {
        let p = key::parse(ikey).ok_or_else(|| {
            Error::InvalidArgument(format!("malformed internal key of {} bytes", ikey.len()))
        })?;
        debug_assert!(
            self.meta.largest.is_empty() || key::compare(&self.meta.largest, ikey).is_lt(),
            "table keys must increase"
        );
        if self.meta.entries == 0 {
            self.meta.smallest = ikey.to_vec();
        }
        if self.meta.entries == 0 || p.user_key != &self.last_user_key[..] {
            self.hashes.push(bloom::key_hash(p.user_key));
            self.last_user_key.clear();
            self.last_user_key.extend_from_slice(p.user_key);
        } else {
            self.older_versions += 1;
        }
        self.meta.entries += 1;
        if p.kind == Kind::Delete {
            self.meta.tombstones += 1;
        }
        self.meta.smallest_seq = self.meta.smallest_seq.min(p.seq);
        self.meta.largest_seq = self.meta.largest_seq.max(p.seq);
        self.meta.largest.clear();
        self.meta.largest.extend_from_slice(ikey);
        self.data.add(ikey, value);
        if self.data.size_estimate() >= self.block_size_bytes {
            self.finish_data_block()?;
        }
        Ok(())
    }

    /// Sets the range tombstones the table stores (in its range-deletion block); they widen the
    /// table's key range to cover them.
    pub fn set_range_tombstones(&mut self, f: Fragments) {
        self.range_dels = f;
    }

    /// Entries added so far.
    pub fn entries(&self) -> u64 {
        self.meta.entries
    }

    /// Approximate file size so far.
    pub fn size_estimate(&self) -> u64 {
        self.offset + self.out.len() as u64 + self.data.size_estimate() as u64
    }

    fn write_block(&mut self, contents: impl FnOnce(&mut Vec<u8>)) -> Result<BlockHandle> {
        let start = self.out.len();
        contents(&mut self.out);
        let handle = BlockHandle {
            offset: self.offset + start as u64,
            len: (self.out.len() - start) as u64,
        };
        let crc = block_crc(self.number, handle.offset, &self.out[start..]);
        self.out.extend_from_slice(&crc.to_le_bytes());
        if self.out.len() >= WRITE_BUFFER_BYTES {
            self.flush_out()?;
        }
        Ok(handle)
    }

    fn flush_out(&mut self) -> Result<()> {
        self.file
            .append(&self.out)
            .map_err(|e| Error::io("append", &self.path, e))?;
        self.offset += self.out.len() as u64;
        self.out.clear();
        Ok(())
    }

    fn finish_data_block(&mut self) -> Result<()> {
        if self.data.is_empty() {
            return Ok(());
        }
        let last = self.data.last_key().to_vec();
        let mut raw = std::mem::take(&mut self.raw);
        raw.clear();
        self.data.finish_into(&mut raw);
        self.max_data_block_len = self.max_data_block_len.max(raw.len() as u64);
        self.raw_data_bytes += raw.len() as u64;
        let mut scratch = std::mem::take(&mut self.scratch);
        let codec = self.compression;
        let mut stored = Stored::Raw;
        let handle = self.write_block(|out| {
            stored = compress::encode_into(codec, &raw, &mut scratch, out);
        })?;
        match stored {
            Stored::Compressed => self.blocks.compressed += 1,
            Stored::Raw if codec != Compression::None => self.blocks.stored_raw += 1,
            Stored::Raw => {}
        }
        (self.raw, self.scratch) = (raw, scratch);
        let mut h = Vec::with_capacity(20);
        put_handle(&mut h, handle);
        self.index.add(&last, &h);
        Ok(())
    }

    /// The table's file number.
    pub fn number(&self) -> u64 {
        self.number
    }

    /// The table file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the range-deletion, filter, meta and index blocks and the footer, and syncs the
    /// file. Returns what the table holds.
    pub fn finish(self) -> Result<TableMeta> {
        Ok(self.finish_counted()?.0)
    }

    /// [`TableBuilder::finish`], also returning how the data blocks were stored.
    pub fn finish_counted(mut self) -> Result<(TableMeta, BlockCounts)> {
        self.finish_data_block()?;
        let ranges = std::mem::take(&mut self.range_dels);
        let range_del = self.write_block(|out| ranges.encode_into(out))?;
        if let Some((start, end)) = ranges.span() {
            let (lo, hi) = (key::range_sentinel(start), key::range_sentinel(end));
            if self.meta.entries == 0 || key::compare(&lo, &self.meta.smallest).is_lt() {
                self.meta.smallest = lo;
            }
            if self.meta.entries == 0 || key::compare(&hi, &self.meta.largest).is_gt() {
                self.meta.largest = hi;
            }
            for f in ranges.fragments() {
                for c in &f.covers {
                    self.meta.smallest_seq = self.meta.smallest_seq.min(c.seq);
                    self.meta.largest_seq = self.meta.largest_seq.max(c.seq);
                }
            }
        }
        let filter_bytes = if self.bloom_bits_per_key == 0 {
            Vec::new()
        } else {
            self.hashes.build(self.bloom_bits_per_key)
        };
        let filter = self.write_block(|out| out.extend_from_slice(&filter_bytes))?;
        if self.meta.smallest_seq == u64::MAX {
            self.meta.smallest_seq = 0;
        }
        let meta_fields = self.meta.clone();
        let ext = MetaV2 {
            range_del,
            older_versions: self.older_versions,
            max_data_block_len: self.max_data_block_len,
            raw_data_bytes: self.raw_data_bytes,
        };
        let meta = self.write_block(|out| meta_fields.encode_block_v3(ext, out))?;
        let mut index_builder = std::mem::replace(&mut self.index, BlockBuilder::new(1));
        let index = self.write_block(|out| index_builder.finish_into(out))?;
        let footer = Footer {
            version: TABLE_FORMAT_VERSION,
            file_number: self.number,
            filter,
            meta,
            index,
        };
        self.out.extend_from_slice(&footer.encode());
        self.flush_out()?;
        // Durability point: without this fsync, a power loss could leave the manifest naming a
        // table whose blocks never reached the disk.
        if !planted::active(Bug::SkipTableSync) {
            self.file
                .sync()
                .map_err(|e| Error::io("sync", &self.path, e))?;
        }
        self.meta.size_bytes = self.offset;
        Ok((self.meta, self.blocks))
    }
}
