//! The table file layout, the footer and the meta block.
//!
//! ```text
//! table  := data_block* range_del_block filter_block meta_block index_block footer
//!           (version 1 has no range_del_block)
//! each block is followed by a 4-byte trailer:
//!   crc32 u32 LE over file_number (8 bytes LE) ++ block_offset (8 bytes LE) ++ block bytes
//! footer (72 bytes):
//!   0   magic          8 bytes "SDBTABLE"
//!   8   version        u32 LE  (TABLE_FORMAT_VERSION)
//!   12  file_number    u64 LE
//!   20  filter_offset  u64 LE | 28 filter_len u64 LE
//!   36  meta_offset    u64 LE | 44 meta_len   u64 LE
//!   52  index_offset   u64 LE | 60 index_len  u64 LE
//!   68  crc32          u32 LE over bytes 0..68
//! index block entries: key = last internal key of a data block,
//!                      value = offset varint | len varint
//! meta block: entries varint | tombstones varint | smallest_seq varint | largest_seq varint
//!             | smallest_key_len varint | smallest_key | largest_key_len varint | largest_key
//!             | range_del_offset varint | range_del_len varint | older_versions varint
//!                                                                  -- these three: version 2
//!             | max_data_block_len varint | raw_data_bytes varint   -- these two: version 3
//! data blocks (version 3): stored bytes end in a codec byte (see `compress.rs`)
//! range_del block: see `rangedel.rs`
//! ```
//! Block lengths exclude the trailer.

use crate::coding::varint;
use crate::error::{Error, Result};
use std::path::Path;

/// Table format version written. DO NOT CHANGE the meaning of a published version.
/// Version 2 added the range-deletion block; version 3 compressed data blocks (a codec byte
/// per data block) and two meta fields. Versions 1 and 2 keep opening.
pub const TABLE_FORMAT_VERSION: u32 = 3;
/// The oldest table format version this build reads.
pub const TABLE_FORMAT_VERSION_MIN: u32 = 1;
/// Table magic. DO NOT CHANGE.
pub const TABLE_MAGIC: [u8; 8] = *b"SDBTABLE";
/// Bytes of the footer.
pub const FOOTER_LEN: usize = 72;
/// Bytes of a block trailer.
pub const BLOCK_TRAILER_LEN: usize = 4;

/// Where a block is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BlockHandle {
    pub offset: u64,
    pub len: u64,
}

/// Checksum of a block, bound to its file and position.
pub fn block_crc(file_number: u64, offset: u64, data: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&file_number.to_le_bytes());
    h.update(&offset.to_le_bytes());
    h.update(data);
    h.finalize()
}

/// The decoded footer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footer {
    /// The format version (written: [`TABLE_FORMAT_VERSION`]).
    pub version: u32,
    pub file_number: u64,
    pub filter: BlockHandle,
    pub meta: BlockHandle,
    pub index: BlockHandle,
}

impl Footer {
    pub fn encode(&self) -> [u8; FOOTER_LEN] {
        let mut f = [0u8; FOOTER_LEN];
        f[0..8].copy_from_slice(&TABLE_MAGIC);
        f[8..12].copy_from_slice(&self.version.to_le_bytes());
        f[12..20].copy_from_slice(&self.file_number.to_le_bytes());
        let hs = [self.filter, self.meta, self.index];
        for (i, h) in hs.iter().enumerate() {
            let o = 20 + 16 * i;
            f[o..o + 8].copy_from_slice(&h.offset.to_le_bytes());
            f[o + 8..o + 16].copy_from_slice(&h.len.to_le_bytes());
        }
        let crc = crc32fast::hash(&f[0..68]);
        f[68..72].copy_from_slice(&crc.to_le_bytes());
        f
    }

    /// Decodes and checks a footer read from the end of a table of `file_len` bytes.
    pub fn decode(f: &[u8], path: &Path, file_len: u64) -> Result<Footer> {
        let at = file_len.saturating_sub(FOOTER_LEN as u64);
        let corrupt = |reason: String| Error::corruption(path, at, reason);
        if f.len() != FOOTER_LEN {
            return Err(corrupt(format!(
                "footer is {} bytes, expected {FOOTER_LEN}",
                f.len()
            )));
        }
        let u64_at = |o: usize| u64::from_le_bytes(f[o..o + 8].try_into().expect("8 bytes"));
        if f[0..8] != TABLE_MAGIC {
            return Err(corrupt("not a table: wrong magic number in footer".into()));
        }
        // The footer's layout is the same in every format version, so the checksum is checked
        // first: a damaged version field is corruption, an intact newer one is unsupported.
        let crc = u32::from_le_bytes(f[68..72].try_into().expect("4 bytes"));
        if crc32fast::hash(&f[0..68]) != crc {
            return Err(corrupt("footer checksum mismatch".into()));
        }
        let version = u32::from_le_bytes(f[8..12].try_into().expect("4 bytes"));
        if !(TABLE_FORMAT_VERSION_MIN..=TABLE_FORMAT_VERSION).contains(&version) {
            return Err(Error::UnsupportedVersion {
                file: path.to_path_buf(),
                found: version,
                supported: TABLE_FORMAT_VERSION,
            });
        }
        let h = |i: usize| BlockHandle {
            offset: u64_at(20 + 16 * i),
            len: u64_at(28 + 16 * i),
        };
        let footer = Footer {
            version,
            file_number: u64_at(12),
            filter: h(0),
            meta: h(1),
            index: h(2),
        };
        let data_end = file_len - FOOTER_LEN as u64;
        for (name, b) in [
            ("filter", footer.filter),
            ("meta", footer.meta),
            ("index", footer.index),
        ] {
            let end = b
                .offset
                .checked_add(b.len)
                .and_then(|e| e.checked_add(BLOCK_TRAILER_LEN as u64));
            if end.is_none_or(|e| e > data_end) {
                return Err(corrupt(format!(
                    "{name} block at offset {} with length {} runs past the data ({data_end} bytes)",
                    b.offset, b.len
                )));
            }
        }
        Ok(footer)
    }
}

/// Encodes a block handle.
pub fn put_handle(out: &mut Vec<u8>, h: BlockHandle) {
    varint::put(out, h.offset);
    varint::put(out, h.len);
}

/// Decodes a block handle; `None` if malformed or trailing bytes remain.
pub fn get_handle(buf: &[u8]) -> Option<BlockHandle> {
    let mut p = 0;
    let offset = varint::get(buf, &mut p)?;
    let len = varint::get(buf, &mut p)?;
    (p == buf.len()).then_some(BlockHandle { offset, len })
}

/// What a version-2 meta block adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MetaV2 {
    /// Where the range-deletion block is.
    pub range_del: BlockHandle,
    /// Entries that are older versions of a key (kept for snapshots): a full compaction
    /// rewrites the last level's tables that hold any.
    pub older_versions: u64,
    /// Version 3: the largest data block's uncompressed length (bounds decompression), and the
    /// data blocks' uncompressed bytes in all (for the compression ratio). 0 in version 2.
    pub max_data_block_len: u64,
    pub raw_data_bytes: u64,
}

/// What a table holds: kept in the manifest and in memory.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TableMeta {
    pub number: u64,
    pub size_bytes: u64,
    pub entries: u64,
    pub tombstones: u64,
    pub smallest_seq: u64,
    pub largest_seq: u64,
    /// Smallest and largest encoded internal keys.
    pub smallest: Vec<u8>,
    pub largest: Vec<u8>,
}

impl TableMeta {
    /// Encodes the fields stored in the meta block (not number and size).
    pub fn encode_block(&self, out: &mut Vec<u8>) {
        varint::put(out, self.entries);
        varint::put(out, self.tombstones);
        varint::put(out, self.smallest_seq);
        varint::put(out, self.largest_seq);
        varint::put(out, self.smallest.len() as u64);
        out.extend_from_slice(&self.smallest);
        varint::put(out, self.largest.len() as u64);
        out.extend_from_slice(&self.largest);
    }

    /// Encodes a version-3 meta block: the fields, the range-deletion block's handle, how
    /// many entries are older versions of a key an entry before them holds, the largest data
    /// block's raw length and the data blocks' raw bytes.
    pub fn encode_block_v3(&self, ext: MetaV2, out: &mut Vec<u8>) {
        self.encode_block(out);
        put_handle(out, ext.range_del);
        varint::put(out, ext.older_versions);
        varint::put(out, ext.max_data_block_len);
        varint::put(out, ext.raw_data_bytes);
    }

    /// Decodes a meta block of format `version`: the fields, and from version 2 on what
    /// [`MetaV2`] holds.
    pub fn decode_block_versioned(
        buf: &[u8],
        number: u64,
        size_bytes: u64,
        version: u32,
    ) -> Option<(TableMeta, Option<MetaV2>)> {
        if version == 1 {
            return Some((TableMeta::decode_block(buf, number, size_bytes)?, None));
        }
        // The handle is the last two varints: find where the v1 fields end by decoding them.
        let mut p = 0;
        for _ in 0..4 {
            varint::get(buf, &mut p)?;
        }
        for _ in 0..2 {
            let n = usize::try_from(varint::get(buf, &mut p)?).ok()?;
            p = p.checked_add(n).filter(|e| *e <= buf.len())?;
        }
        let meta = TableMeta::decode_block(&buf[..p], number, size_bytes)?;
        let offset = varint::get(buf, &mut p)?;
        let len = varint::get(buf, &mut p)?;
        let older_versions = varint::get(buf, &mut p)?;
        let (max_data_block_len, raw_data_bytes) = if version >= 3 {
            (varint::get(buf, &mut p)?, varint::get(buf, &mut p)?)
        } else {
            (0, 0)
        };
        (p == buf.len() && older_versions <= meta.entries).then_some((
            meta,
            Some(MetaV2 {
                range_del: BlockHandle { offset, len },
                older_versions,
                max_data_block_len,
                raw_data_bytes,
            }),
        ))
    }

    /// Decodes a meta block.
    pub fn decode_block(buf: &[u8], number: u64, size_bytes: u64) -> Option<TableMeta> {
        let mut p = 0;
        let entries = varint::get(buf, &mut p)?;
        let tombstones = varint::get(buf, &mut p)?;
        let smallest_seq = varint::get(buf, &mut p)?;
        let largest_seq = varint::get(buf, &mut p)?;
        let bytes = |p: &mut usize| -> Option<Vec<u8>> {
            let n = usize::try_from(varint::get(buf, p)?).ok()?;
            let s = buf.get(*p..p.checked_add(n)?)?.to_vec();
            *p += n;
            Some(s)
        };
        let smallest = bytes(&mut p)?;
        let largest = bytes(&mut p)?;
        (p == buf.len()).then_some(TableMeta {
            number,
            size_bytes,
            entries,
            tombstones,
            smallest_seq,
            largest_seq,
            smallest,
            largest,
        })
    }
}
