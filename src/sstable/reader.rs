//! Opens and reads tables. Nothing read from the file is trusted: every block is checksummed
//! against its file number and offset, every length is bounded before it is used.

use super::block::BlockCursor;
use super::bloom;
use super::cache::{Block, BlockCache};
use super::compress::{self, DecodeError};
use super::format::{block_crc, BlockHandle, Footer, TableMeta, BLOCK_TRAILER_LEN, FOOTER_LEN};
use super::index::BlockIndex;
use crate::env::{File, Fs};
use crate::error::{Error, Result};
use crate::key::{self, Kind};
use crate::key::{with_lookup_key, Found};
use crate::options::limits;
use crate::rangedel::Fragments;
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// An open table: its index and filter are held in memory, data blocks are read on demand with
/// positional reads.
pub struct Table {
    file: Arc<dyn File>,
    path: PathBuf,
    meta: TableMeta,
    index: BlockIndex,
    filter: Vec<u8>,
    range_dels: Fragments,
    older_versions: u64,
    version: u32,
    cache: Option<Arc<BlockCache>>,
    /// Version 3: the largest data block's raw length (bounds decompression), and the data
    /// blocks' raw bytes (for older versions, the data region's length).
    max_data_block_len: u64,
    raw_data_bytes: u64,
}

/// A version found by a lookup: its sequence number and what it holds.
pub type Versioned = (u64, Found<Vec<u8>>);

/// Whether a lookup read the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// The filter said the key is absent; no block was read.
    FilterSkipped,
    /// A data block was read.
    Read,
}

thread_local! {
    static GET_SCRATCH: RefCell<(Vec<u8>, BlockCursor, Vec<u8>)> =
        RefCell::new((Vec::new(), BlockCursor::default(), Vec::new()));
}

impl Table {
    /// Opens table `number` at `path`, reading and checking its footer, index, filter and meta.
    pub fn open(fs: &dyn Fs, path: &Path, number: u64) -> Result<Table> {
        Table::open_cached(fs, path, number, None)
    }

    /// Opens a table whose data blocks are read through `cache` (shared by the database's
    /// tables).
    pub fn open_cached(
        fs: &dyn Fs,
        path: &Path,
        number: u64,
        cache: Option<Arc<BlockCache>>,
    ) -> Result<Table> {
        let file = fs.open(path).map_err(|e| Error::io("open", path, e))?;
        let len = file.len().map_err(|e| Error::io("stat", path, e))?;
        if len < FOOTER_LEN as u64 {
            return Err(Error::corruption(
                path,
                0,
                format!("table is {len} bytes, shorter than its {FOOTER_LEN}-byte footer"),
            ));
        }
        let mut fbuf = [0u8; FOOTER_LEN];
        file.read_exact_at(&mut fbuf, len - FOOTER_LEN as u64)
            .map_err(|e| Error::io("read", path, e))?;
        let footer = Footer::decode(&fbuf, path, len)?;
        if footer.file_number != number {
            return Err(Error::corruption(
                path,
                len - FOOTER_LEN as u64 + 12,
                format!(
                    "footer names table {}, expected table {number}",
                    footer.file_number
                ),
            ));
        }
        let mut t = Table {
            file,
            path: path.to_path_buf(),
            meta: TableMeta {
                number,
                ..TableMeta::default()
            },
            index: BlockIndex::default(),
            filter: Vec::new(),
            range_dels: Fragments::default(),
            older_versions: 0,
            version: footer.version,
            cache,
            max_data_block_len: 0,
            raw_data_bytes: 0,
        };
        let mut buf = Vec::new();
        t.read_block(footer.filter, &mut buf)?;
        t.filter = buf.clone();
        t.read_block(footer.meta, &mut buf)?;
        let (meta, ext) = TableMeta::decode_block_versioned(&buf, number, len, footer.version)
            .ok_or_else(|| Error::corruption(path, footer.meta.offset, "malformed meta block"))?;
        t.meta = meta;
        t.older_versions = ext.map_or(0, |e| e.older_versions);
        t.max_data_block_len = ext.map_or(0, |e| e.max_data_block_len);
        t.raw_data_bytes = ext.map_or(0, |e| e.raw_data_bytes);
        if t.max_data_block_len > limits::BLOCK_SIZE_BYTES_MAX as u64 {
            return Err(Error::corruption(
                path,
                footer.meta.offset,
                format!(
                    "meta block names a data block of {} bytes, past the limit of {}",
                    t.max_data_block_len,
                    limits::BLOCK_SIZE_BYTES_MAX
                ),
            ));
        }
        let range_del = ext.map(|e| e.range_del);
        t.read_block(footer.index, &mut buf)?;
        let trailer = BLOCK_TRAILER_LEN as u64;
        // Data blocks end where the range-deletion block (version 2) or the filter begins.
        let data_limit = range_del.map_or(footer.filter.offset, |h| h.offset);
        t.index = BlockIndex::decode(&buf, path, data_limit)?;
        let data_end = t
            .index
            .len()
            .checked_sub(1)
            .and_then(|i| t.index.handle(i))
            .map_or(0, |h| h.offset + h.len + BLOCK_TRAILER_LEN as u64);
        if t.version < 3 {
            t.raw_data_bytes = data_end;
        }
        let mut ranges_contiguous = data_end == data_limit;
        if let Some(h) = range_del {
            ranges_contiguous &= h
                .offset
                .checked_add(h.len)
                .and_then(|e| e.checked_add(trailer))
                == Some(footer.filter.offset);
            if ranges_contiguous {
                t.read_block(h, &mut buf)?;
                t.range_dels = Fragments::decode(&buf).map_err(|r| {
                    Error::corruption(path, h.offset, format!("range-deletion block: {r}"))
                })?;
                t.check_range_bounds(h.offset)?;
            }
        }
        // The blocks are laid end to end: data, range deletions, filter, meta, index, footer.
        // No byte of the file lies outside a checksummed block.
        let contiguous = ranges_contiguous
            && footer.filter.offset + footer.filter.len + trailer == footer.meta.offset
            && footer.meta.offset + footer.meta.len + trailer == footer.index.offset
            && footer.index.offset + footer.index.len + trailer == len - FOOTER_LEN as u64;
        if !contiguous {
            return Err(Error::corruption(
                path,
                len - FOOTER_LEN as u64,
                "table blocks are not laid end to end (bytes outside any block)",
            ));
        }
        if t.index.is_empty() != (t.meta.entries == 0) {
            return Err(Error::corruption(
                path,
                footer.index.offset,
                format!(
                    "index has {} blocks but meta block counts {} entries",
                    t.index.len(),
                    t.meta.entries
                ),
            ));
        }
        Ok(t)
    }

    /// The range tombstones lie inside the table's key range (its bounds were widened to
    /// cover them when it was written).
    fn check_range_bounds(&self, at: u64) -> Result<()> {
        if let Some((start, end)) = self.range_dels.span() {
            let inside = key::compare(&self.meta.smallest, &key::range_sentinel(start)).is_le()
                && key::compare(&key::range_sentinel(end), &self.meta.largest).is_le();
            if !inside {
                return Err(Error::corruption(
                    &self.path,
                    at,
                    "range tombstones reach outside the table's key range",
                ));
            }
        }
        Ok(())
    }

    /// Reads and checks one block into `buf` (without its trailer).
    fn read_block(&self, h: BlockHandle, buf: &mut Vec<u8>) -> Result<()> {
        if h.len as usize > limits::BLOCK_SIZE_BYTES_MAX {
            return Err(Error::corruption(
                &self.path,
                h.offset,
                format!(
                    "block length {} exceeds the limit of {} bytes",
                    h.len,
                    limits::BLOCK_SIZE_BYTES_MAX
                ),
            ));
        }
        let n = h.len as usize;
        buf.resize(n + BLOCK_TRAILER_LEN, 0);
        self.file
            .read_exact_at(buf, h.offset)
            .map_err(|e| Error::io("read", &self.path, e))?;
        let stored = u32::from_le_bytes(buf[n..].try_into().expect("4 bytes"));
        buf.truncate(n);
        if block_crc(self.meta.number, h.offset, buf) != stored
            && !crate::planted::active(crate::planted::Bug::SkipReadChecksum)
        {
            return Err(Error::corruption(
                &self.path,
                h.offset,
                format!("block checksum mismatch ({n} bytes)"),
            ));
        }
        Ok(())
    }

    /// Reads, checks and (version 3) decompresses one data block into `buf`, with `spare` as
    /// the second buffer decompression needs.
    fn read_data_block(
        &self,
        h: BlockHandle,
        buf: &mut Vec<u8>,
        spare: &mut Vec<u8>,
    ) -> Result<()> {
        self.read_block(h, buf)?;
        if self.version < 3 {
            return Ok(());
        }
        compress::decode_with_spare(buf, spare, self.max_data_block_len).map_err(|e| match e {
            DecodeError::Corrupt(r) => Error::corruption(&self.path, h.offset, r),
            DecodeError::Unsupported(what) => Error::Unsupported {
                file: self.path.clone(),
                offset: h.offset,
                what,
            },
        })?;
        Ok(())
    }

    /// Where each data block is, in order: offset and stored length (without the trailer).
    pub fn data_blocks(&self) -> impl Iterator<Item = BlockHandle> + '_ {
        self.index.handles()
    }

    /// Every entry of the data block at `h` (one of [`Table::data_blocks`]), read, checked and
    /// decoded on its own: for tools that go on past a damaged block.
    pub fn block_entries(&self, h: BlockHandle) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut buf = Vec::new();
        self.read_data_block(h, &mut buf, &mut Vec::new())?;
        let corrupt = |r: String| Error::corruption(&self.path, h.offset, r);
        let mut c = BlockCursor::default();
        c.reset(&buf).map_err(corrupt)?;
        c.seek_to_first(&buf).map_err(corrupt)?;
        let mut out = Vec::new();
        while c.valid() {
            if !key::entry_is_well_formed(c.key(), c.value(&buf)) {
                return Err(corrupt("entry with a malformed internal key".into()));
            }
            out.push((c.key().to_vec(), c.value(&buf).to_vec()));
            c.advance(&buf).map_err(corrupt)?;
        }
        Ok(out)
    }

    /// The data blocks' uncompressed bytes (the compression ratio is this over the file size).
    pub fn raw_data_bytes(&self) -> u64 {
        self.raw_data_bytes
    }

    /// The table's range tombstones (empty for a version-1 table).
    pub fn range_dels(&self) -> &Fragments {
        &self.range_dels
    }

    /// Entries that are older versions of a key (kept for snapshots); 0 for version 1.
    pub fn older_versions(&self) -> u64 {
        self.older_versions
    }

    /// The table's format version.
    pub fn format_version(&self) -> u32 {
        self.version
    }

    /// A data block through the cache: the cached copy, or read, checked and added. A miss is
    /// read and decoded in the caller's buffers, then copied once into the block.
    fn cached_block(
        &self,
        c: &BlockCache,
        h: BlockHandle,
        buf: &mut Vec<u8>,
        spare: &mut Vec<u8>,
    ) -> Result<Block> {
        if let Some(b) = c.get(self.meta.number, h.offset) {
            return Ok(b);
        }
        self.read_data_block(h, buf, spare)?;
        let b: Block = Arc::from(&buf[..]);
        c.insert(self.meta.number, h.offset, b.clone());
        Ok(b)
    }

    /// What the table holds.
    pub fn meta(&self) -> &TableMeta {
        &self.meta
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Index of the first block whose last key is `>= ikey`.
    fn find_block(&self, ikey: &[u8]) -> usize {
        self.index.find(ikey)
    }

    /// The newest version of `user_key` with sequence number at most `seq` (with its sequence
    /// number), and whether a block was read. Range tombstones are not consulted (see
    /// [`Table::range_dels`]).
    pub fn get(&self, user_key: &[u8], seq: u64) -> Result<(Option<Versioned>, Probe)> {
        if !self.filter.is_empty() && !bloom::may_contain(&self.filter, bloom::key_hash(user_key)) {
            return Ok((None, Probe::FilterSkipped));
        }
        with_lookup_key(user_key, seq, |lookup| {
            let i = self.find_block(lookup);
            let Some(handle) = self.index.handle(i) else {
                return Ok((None, Probe::Read));
            };
            GET_SCRATCH.with(|s| {
                let mut fresh = (Vec::new(), BlockCursor::default(), Vec::new());
                let mut guard = s.try_borrow_mut();
                let (buf, cursor, spare) = match guard.as_deref_mut() {
                    Ok(s) => (&mut s.0, &mut s.1, &mut s.2),
                    Err(_) => (&mut fresh.0, &mut fresh.1, &mut fresh.2),
                };
                let cached: Block;
                let buf: &[u8] = match &self.cache {
                    Some(c) => {
                        cached = self.cached_block(c, handle, buf, spare)?;
                        &cached
                    }
                    None => {
                        self.read_data_block(handle, buf, spare)?;
                        buf
                    }
                };
                let corrupt = |r: String| Error::corruption(&self.path, handle.offset, r);
                cursor.reset(buf).map_err(corrupt)?;
                cursor.seek(buf, lookup, key::compare).map_err(corrupt)?;
                let found = if cursor.valid() {
                    let p = key::parse(cursor.key()).ok_or_else(|| {
                        corrupt("entry with a malformed internal key".to_string())
                    })?;
                    if p.user_key == user_key
                        && !key::entry_is_well_formed(cursor.key(), cursor.value(buf))
                    {
                        return Err(corrupt(
                            "entry of an unknown kind, or a tombstone without \
                             its 8-byte deletion time"
                                .into(),
                        ));
                    }
                    (p.user_key == user_key).then(|| {
                        let found = match p.kind {
                            Kind::Put => Found::Value(cursor.value(buf).to_vec()),
                            Kind::Delete | Kind::RangeDelete => Found::Deleted,
                        };
                        (p.seq, found)
                    })
                } else {
                    None
                };
                if let Ok(s) = guard.as_deref_mut() {
                    if s.0.capacity() > (1 << 20) {
                        s.0 = Vec::new();
                    }
                    if s.2.capacity() > (1 << 20) {
                        s.2 = Vec::new();
                    }
                }
                Ok((found, Probe::Read))
            })
        })
    }
}

/// Iterates a table's entries in order. Holds the table alive.
pub struct TableIter {
    table: Arc<Table>,
    block_index: usize,
    block: Held,
    cursor: BlockCursor,
    loaded: bool,
    /// Whether blocks read are added to the table's block cache.
    fill_cache: bool,
    /// The buffers of a read and its decompression (a block read for the cache is decoded
    /// here, then copied).
    scratch: Vec<u8>,
    spare: Vec<u8>,
}

/// The block a [`TableIter`] is in: shared with the block cache, or its own buffer (reused from
/// block to block).
enum Held {
    Cached(Block),
    Own(Vec<u8>),
}

impl std::ops::Deref for Held {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Held::Cached(b) => b,
            Held::Own(v) => v,
        }
    }
}

impl TableIter {
    pub fn new(table: Arc<Table>) -> TableIter {
        TableIter::with_fill(table, true)
    }

    /// An iterator that adds the blocks it reads to the block cache only if `fill_cache`
    /// (it uses cached ones either way).
    pub fn with_fill(table: Arc<Table>, fill_cache: bool) -> TableIter {
        TableIter {
            table,
            block_index: 0,
            block: Held::Own(Vec::new()),
            cursor: BlockCursor::default(),
            loaded: false,
            fill_cache,
            scratch: Vec::new(),
            spare: Vec::new(),
        }
    }

    fn load(&mut self, i: usize) -> Result<()> {
        self.block_index = i;
        self.loaded = false;
        let Some(h) = self.table.index.handle(i) else {
            return Ok(());
        };
        // Without filling the cache, a miss is read into the iterator's own buffer (no copy).
        let cached = match &self.table.cache {
            Some(c) if self.fill_cache => {
                let (buf, spare) = (&mut self.scratch, &mut self.spare);
                Some(self.table.cached_block(c, h, buf, spare)?)
            }
            Some(c) => c.get(self.table.meta.number, h.offset),
            None => None,
        };
        if let Some(b) = cached {
            // An own buffer given up for a cached block goes back to the scratch, for the next
            // miss read outside the cache.
            if let Held::Own(v) = std::mem::replace(&mut self.block, Held::Cached(b)) {
                if self.scratch.capacity() < v.capacity() {
                    self.scratch = v;
                }
            }
        } else if let Held::Own(buf) = &mut self.block {
            self.table.read_data_block(h, buf, &mut self.spare)?;
        } else {
            let mut v = std::mem::take(&mut self.scratch);
            self.table.read_data_block(h, &mut v, &mut self.spare)?;
            self.block = Held::Own(v);
        }
        let path = &self.table.path;
        self.cursor
            .reset(&self.block)
            .map_err(|r| Error::corruption(path, h.offset, r))?;
        self.loaded = true;
        Ok(())
    }

    /// The table file and the offset of the current block.
    pub fn origin(&self) -> (PathBuf, u64) {
        let off = self
            .table
            .index
            .handle(self.block_index)
            .map_or(0, |h| h.offset);
        (self.table.path.clone(), off)
    }

    fn corrupt(&self, r: String) -> Error {
        let (file, offset) = self.origin();
        Error::corruption(file, offset, r)
    }

    /// Skips forward over exhausted blocks, then checks the entry it lands on: everything read
    /// from disk is checked before anyone uses it.
    fn settle(&mut self) -> Result<()> {
        self.skip_exhausted_blocks()?;
        self.check_entry()
    }

    fn check_entry(&self) -> Result<()> {
        if self.valid() && !key::entry_is_well_formed(self.key(), self.value()) {
            return Err(self.corrupt(
                "entry with a malformed internal key, or a tombstone without its 8-byte \
                 deletion time"
                    .into(),
            ));
        }
        Ok(())
    }

    fn skip_exhausted_blocks(&mut self) -> Result<()> {
        while self.loaded && !self.cursor.valid() {
            self.load(self.block_index + 1)?;
            if self.loaded {
                self.cursor
                    .seek_to_first(&self.block)
                    .map_err(|r| self.corrupt(r))?;
                if !self.cursor.valid() {
                    return Err(self.corrupt("empty data block".into()));
                }
            }
        }
        Ok(())
    }

    pub fn seek_to_first(&mut self) -> Result<()> {
        self.load(0)?;
        if self.loaded {
            self.cursor
                .seek_to_first(&self.block)
                .map_err(|r| self.corrupt(r))?;
        }
        self.settle()
    }

    /// Moves to the first entry `>= ikey`.
    pub fn seek(&mut self, ikey: &[u8]) -> Result<()> {
        let i = self.table.find_block(ikey);
        self.load(i)?;
        if self.loaded {
            let r = self.cursor.seek(&self.block, ikey, key::compare);
            r.map_err(|r| self.corrupt(r))?;
        }
        self.settle()
    }

    pub fn valid(&self) -> bool {
        self.loaded && self.cursor.valid()
    }

    /// Moves to the last entry.
    pub fn seek_to_last(&mut self) -> Result<()> {
        let n = self.table.index.len();
        if n == 0 {
            self.loaded = false;
            return Ok(());
        }
        self.load(n - 1)?;
        if self.loaded {
            let r = self.cursor.seek_to_last(&self.block);
            r.map_err(|r| self.corrupt(r))?;
        }
        self.settle_back()
    }

    /// Moves to the previous entry (not valid once past the first).
    pub fn prev(&mut self) -> Result<()> {
        if self.loaded {
            let r = self.cursor.prev(&self.block);
            r.map_err(|r| self.corrupt(r))?;
        }
        self.settle_back()
    }

    /// Skips backward over exhausted blocks, then checks the entry it lands on.
    fn settle_back(&mut self) -> Result<()> {
        while self.loaded && !self.cursor.valid() {
            if self.block_index == 0 {
                self.loaded = false;
                break;
            }
            self.load(self.block_index - 1)?;
            if self.loaded {
                self.cursor
                    .seek_to_last(&self.block)
                    .map_err(|r| self.corrupt(r))?;
                if !self.cursor.valid() {
                    return Err(self.corrupt("empty data block".into()));
                }
            }
        }
        self.check_entry()
    }

    pub fn advance(&mut self) -> Result<()> {
        if self.loaded {
            let r = self.cursor.advance(&self.block);
            r.map_err(|r| self.corrupt(r))?;
        }
        self.settle()
    }

    pub fn key(&self) -> &[u8] {
        self.cursor.key()
    }

    pub fn value(&self) -> &[u8] {
        self.cursor.value(&self.block)
    }
}
