//! Record log framing, shared by WAL files and manifest files.
//!
//! ```text
//! file   := file_header record*
//! file_header (24 bytes):
//!   0   magic          8 bytes  ("SDBWAL\0\0" or "SDBMANIF")
//!   8   version        u32 LE   (LOG_FORMAT_VERSION)
//!   12  file_number    u64 LE
//!   20  crc32          u32 LE   over bytes 0..20
//! record (version 4) := header payload
//!   crc32          u32 LE   over file_number (8 bytes LE) ++ offset (8 bytes LE), neither
//!                           stored, ++ every record byte after this field
//!   header_check   u16 LE   low 16 bits of crc32 over file_number ++ offset ++ the varints
//!   len_lz4        varint   stored payload length << 1 | 1 if the payload is LZ4-compressed
//!   synced_back    varint   offset − synced_offset
//!   raw_len        varint   (compressed payloads only) the payload's length decompressed
//!   payload        the stored bytes
//! record (versions 1 to 3) := header(24 bytes) payload
//!   0   crc32          u32 LE   over file_number (8 bytes LE, not stored) ++ bytes 4..24+len
//!   4   len            u32 LE   payload length
//!   8   offset         u64 LE   offset of this record in the file
//!   16  synced_offset  u64 LE   bytes of this file known durable when the record was written
//!   24  payload        len bytes
//! ```
//!
//! The checksum binds each record to its file and position, so a record written to the wrong
//! place reads as damage. `synced_offset` lets recovery tell a torn tail (damage after the last
//! sync, which a power loss may leave) from damage to synced data (which must be reported): the
//! damage is in synced data exactly when a later intact record says that bytes past the damage
//! were already durable. Version 4's header check lets the search for such a record reject a
//! position from its few header bytes before it checksums a claimed length of payload.

mod reader;
#[cfg(test)]
mod tests;
mod writer;

pub use reader::{
    check_file_header, holds_records, proven_synced_len, read_all, replay, replay_counted, LogEnd,
};
pub use writer::LogWriter;

/// Version of the log framing and of what WAL and manifest records hold, written. DO NOT
/// CHANGE the meaning of a published version. Version 2 added range deletes (kind 2) to write
/// batches and range sentinels to table bounds in manifest edits; version 3 lets a log be
/// pre-sized, its records followed by zeros (a build that reads only up to version 2 would
/// take the zeros of an older WAL for damage, so it must refuse the file instead); version 4
/// frames records with varints and a header check, compresses WAL payloads with LZ4 where it
/// pays, and writes a batch's header as varints. Versions 1 to 3 keep opening.
pub const LOG_FORMAT_VERSION: u32 = 4;
/// The oldest log format version this build reads.
pub const LOG_FORMAT_VERSION_MIN: u32 = 1;
/// Bytes of the file header.
pub const FILE_HEADER_LEN: usize = 24;
/// Bytes of a record header (log versions 1 to 3).
pub const RECORD_HEADER_LEN: usize = 24;
/// Bytes of a version-4 record header before its varints (checksum and header check).
pub const RECORD_HEADER_FIXED_V4: usize = 6;
/// Payloads shorter than this are never compressed: LZ4 rarely saves an eighth of them.
pub const COMPRESS_MIN_BYTES: usize = 64;

/// The format version a log's header names (0 if the file is too short to hold one). Only
/// meaningful once the header has been checked.
pub fn file_version(data: &[u8]) -> u32 {
    crate::coding::u32_at(data, 8).unwrap_or(0)
}

/// A version-4 record's checksum: file number and offset, then the record after the field.
pub(crate) fn record_crc_v4(file_number: u64, offset: u64, rest: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&file_number.to_le_bytes());
    h.update(&offset.to_le_bytes());
    h.update(rest);
    h.finalize()
}

/// A version-4 record's header check over its varint fields.
pub(crate) fn header_check(file_number: u64, offset: u64, fields: &[u8]) -> u16 {
    record_crc_v4(file_number, offset, fields) as u16
}

pub(crate) fn record_crc(file_number: u64, rest: &[u8], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&file_number.to_le_bytes());
    h.update(rest);
    h.update(payload);
    h.finalize()
}

/// Encodes a file header.
pub fn file_header(magic: [u8; 8], file_number: u64) -> [u8; FILE_HEADER_LEN] {
    let mut h = [0u8; FILE_HEADER_LEN];
    h[0..8].copy_from_slice(&magic);
    h[8..12].copy_from_slice(&LOG_FORMAT_VERSION.to_le_bytes());
    h[12..20].copy_from_slice(&file_number.to_le_bytes());
    let crc = crc32fast::hash(&h[0..20]);
    h[20..24].copy_from_slice(&crc.to_le_bytes());
    h
}
