//! Reading a log back: header checks, record parsing, and the torn-tail rule.

use super::{
    file_version, header_check, record_crc, record_crc_v4, FILE_HEADER_LEN, LOG_FORMAT_VERSION,
    LOG_FORMAT_VERSION_MIN, RECORD_HEADER_FIXED_V4, RECORD_HEADER_LEN,
};
use crate::coding::varint;
use crate::env::File;
use crate::error::{Error, Result};
use crate::options::limits;
use std::path::Path;

/// How a log ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogEnd {
    /// Every byte was part of an intact record.
    Clean,
    /// The records end at `offset`, and only zeros follow: the unused space of a pre-sized
    /// log (or pages a power loss left unwritten after its size change).
    Zeros { offset: u64 },
    /// The log ends in damage after its last sync point (a torn write); the records before
    /// `offset` are intact and the rest was cut.
    TornTail { offset: u64, reason: String },
}

/// Checks a file header; returns the format version problem or corruption as an error.
pub fn check_file_header(data: &[u8], path: &Path, magic: [u8; 8], file_number: u64) -> Result<()> {
    if data.len() < FILE_HEADER_LEN {
        return Err(Error::corruption(
            path,
            0,
            format!(
                "file is {} bytes, shorter than its {FILE_HEADER_LEN}-byte header",
                data.len()
            ),
        ));
    }
    let h = &data[..FILE_HEADER_LEN];
    if h[0..8] != magic {
        return Err(Error::corruption(
            path,
            0,
            "wrong magic number in file header",
        ));
    }
    // The header's layout (magic, version, file number, checksum) is the same in every format
    // version, so the checksum is checked first: a damaged version field is corruption, and an
    // intact one that is newer than this build is an unsupported version.
    let crc = u32::from_le_bytes([h[20], h[21], h[22], h[23]]);
    if crc32fast::hash(&h[0..20]) != crc {
        return Err(Error::corruption(path, 0, "file header checksum mismatch"));
    }
    let version = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
    if !(LOG_FORMAT_VERSION_MIN..=LOG_FORMAT_VERSION).contains(&version) {
        return Err(Error::UnsupportedVersion {
            file: path.to_path_buf(),
            found: version,
            supported: LOG_FORMAT_VERSION,
        });
    }
    let n = u64::from_le_bytes(h[12..20].try_into().expect("8 bytes"));
    if n != file_number {
        return Err(Error::corruption(
            path,
            12,
            format!("file header names file number {n}, expected {file_number}"),
        ));
    }
    Ok(())
}

struct Parsed<'a> {
    /// The payload as stored (compressed if `raw_len` is set).
    payload: &'a [u8],
    /// A compressed payload's length decompressed.
    raw_len: Option<usize>,
    synced_offset: u64,
    next: usize,
}

/// Parses the record at `pos` of a log of format `version`, or says why it is not intact.
fn parse_record(
    data: &[u8],
    pos: usize,
    file_number: u64,
    version: u32,
) -> Result<Parsed<'_>, String> {
    if version >= 4 {
        parse_record_v4(data, pos, file_number)
    } else {
        parse_record_v1(data, pos, file_number)
    }
}

fn parse_record_v4(data: &[u8], pos: usize, file_number: u64) -> Result<Parsed<'_>, String> {
    let rest = data.len() - pos;
    if rest < RECORD_HEADER_FIXED_V4 + 2 {
        return Err(format!(
            "{rest} bytes left, fewer than the smallest record header ({} bytes)",
            RECORD_HEADER_FIXED_V4 + 2
        ));
    }
    let crc = u32::from_le_bytes(data[pos..pos + 4].try_into().expect("4 bytes"));
    let check = u16::from_le_bytes([data[pos + 4], data[pos + 5]]);
    let fields = pos + RECORD_HEADER_FIXED_V4;
    let mut p = fields;
    let malformed = || "malformed record header".to_string();
    let len_lz4 = varint::get(data, &mut p).ok_or_else(malformed)?;
    let back = varint::get(data, &mut p).ok_or_else(malformed)?;
    let compressed = len_lz4 & 1 == 1;
    let raw_len = if compressed {
        Some(varint::get(data, &mut p).ok_or_else(malformed)?)
    } else {
        None
    };
    // The header check first: at a position that is no record, it fails on a few bytes,
    // before a claimed length of payload is checksummed.
    if header_check(file_number, pos as u64, &data[fields..p]) != check {
        return Err("record header check mismatch".to_string());
    }
    let len = len_lz4 >> 1;
    let left = (data.len() - p) as u64;
    if len > left {
        return Err(format!(
            "record length {len} runs past the end of the file ({left} bytes left)"
        ));
    }
    let end = p + len as usize;
    if record_crc_v4(file_number, pos as u64, &data[pos + 4..end]) != crc {
        return Err("record checksum mismatch".to_string());
    }
    if back > pos as u64 {
        return Err(format!(
            "record claims bytes synced {back} bytes before it, before the file's start"
        ));
    }
    let raw_len = match raw_len {
        None => None,
        Some(r) if r > len && r <= limits::RECORD_SIZE_BYTES_MAX as u64 => Some(r as usize),
        Some(r) => {
            return Err(format!(
                "compressed record of {len} bytes claims {r} bytes decompressed (allowed \
                 {}..={})",
                len + 1,
                limits::RECORD_SIZE_BYTES_MAX
            ))
        }
    };
    Ok(Parsed {
        payload: &data[p..end],
        raw_len,
        synced_offset: pos as u64 - back,
        next: end,
    })
}

fn parse_record_v1(data: &[u8], pos: usize, file_number: u64) -> Result<Parsed<'_>, String> {
    let rest = data.len() - pos;
    if rest < RECORD_HEADER_LEN {
        return Err(format!(
            "{rest} bytes left, fewer than a {RECORD_HEADER_LEN}-byte record header"
        ));
    }
    let h = &data[pos..pos + RECORD_HEADER_LEN];
    let crc = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
    let len = u32::from_le_bytes([h[4], h[5], h[6], h[7]]) as usize;
    let offset = u64::from_le_bytes(h[8..16].try_into().expect("8 bytes"));
    let synced_offset = u64::from_le_bytes(h[16..24].try_into().expect("8 bytes"));
    if offset != pos as u64 {
        return Err(format!("record header names offset {offset}"));
    }
    if len > rest - RECORD_HEADER_LEN {
        return Err(format!(
            "record length {len} runs past the end of the file ({} bytes left)",
            rest - RECORD_HEADER_LEN
        ));
    }
    let end = pos + RECORD_HEADER_LEN + len;
    if record_crc(file_number, &data[pos + 4..end], &[]) != crc {
        return Err("record checksum mismatch".to_string());
    }
    if synced_offset > pos as u64 {
        return Err(format!(
            "record claims {synced_offset} bytes synced, past its own offset"
        ));
    }
    Ok(Parsed {
        payload: &data[pos + RECORD_HEADER_LEN..end],
        raw_len: None,
        synced_offset,
        next: end,
    })
}

/// Replays the records of a log held in `data`, calling `f(offset, payload)` for each intact one
/// in order.
///
/// Damage after the last sync point is a torn tail: the records before it are returned and the
/// end is reported as [`LogEnd::TornTail`]. Damage to synced data (a later intact record says the
/// damaged bytes had been synced) is [`Error::Corruption`]. With `tail_allowed` false (a log that
/// was fully synced before a newer one started), any damage is corruption.
pub fn replay(
    data: &[u8],
    path: &Path,
    magic: [u8; 8],
    file_number: u64,
    tail_allowed: bool,
    f: impl FnMut(u64, &[u8]) -> Result<()>,
) -> Result<LogEnd> {
    replay_counted(data, path, magic, file_number, tail_allowed, f).map(|(end, _)| end)
}

/// [`replay`], also returning how many of the records replayed were stored compressed.
pub fn replay_counted(
    data: &[u8],
    path: &Path,
    magic: [u8; 8],
    file_number: u64,
    tail_allowed: bool,
    mut f: impl FnMut(u64, &[u8]) -> Result<()>,
) -> Result<(LogEnd, u64)> {
    if let Err(e) = check_file_header(data, path, magic, file_number) {
        // The header of the newest log is written with its first records; a power loss may
        // leave it torn. That is a torn tail at offset 0 unless a synced record follows.
        let header_torn = data.len() < FILE_HEADER_LEN
            || crc32fast::hash(&data[0..20])
                != u32::from_le_bytes([data[20], data[21], data[22], data[23]]);
        // A torn header names no version: look for records of every version.
        let torn = tail_allowed
            && header_torn
            && (LOG_FORMAT_VERSION_MIN..=LOG_FORMAT_VERSION)
                .all(|v| later_synced_record(data, 0, file_number, v).is_none());
        if torn {
            return Ok((
                LogEnd::TornTail {
                    offset: 0,
                    reason: e.to_string(),
                },
                0,
            ));
        }
        return Err(e);
    }
    let version = file_version(data);
    let mut raw = Vec::new();
    let mut compressed = 0u64;
    let mut pos = FILE_HEADER_LEN;
    while pos < data.len() {
        match parse_record(data, pos, file_number, version) {
            Ok(r) => {
                match r.raw_len {
                    None => f(pos as u64, r.payload)?,
                    Some(n) => {
                        // An intact record that does not decode to its recorded length was
                        // written that way: damage no torn write explains.
                        crate::lz4::decompress_exact(r.payload, n, &mut raw).map_err(|e| {
                            Error::corruption(path, pos as u64, format!("compressed record: {e}"))
                        })?;
                        f(pos as u64, &raw)?;
                        compressed += 1;
                    }
                }
                pos = r.next;
            }
            Err(reason) => {
                // A pre-sized log ends at zeros: space never written. (A record is never all
                // zeros: its checksum covers its file number and offset.)
                if data[pos..].iter().all(|b| *b == 0) {
                    return Ok((LogEnd::Zeros { offset: pos as u64 }, compressed));
                }
                if !tail_allowed {
                    return Err(Error::corruption(
                        path,
                        pos as u64,
                        format!("{reason} in a log that was fully synced"),
                    ));
                }
                if let Some(proof) = later_synced_record(data, pos, file_number, version) {
                    return Err(Error::corruption(
                        path,
                        pos as u64,
                        format!(
                            "{reason}; the intact record at offset {proof} says these bytes were \
                             synced, so this is damage, not a torn write"
                        ),
                    ));
                }
                return Ok((
                    LogEnd::TornTail {
                        offset: pos as u64,
                        reason,
                    },
                    compressed,
                ));
            }
        }
    }
    Ok((LogEnd::Clean, compressed))
}

/// True if the log has an intact header and an intact first record: it was written to after it
/// was created. An older log is synced whole before a newer one gets its first record, so only
/// logs newer than every log that holds records may have a torn tail.
pub fn holds_records(data: &[u8], file_number: u64) -> bool {
    data.len() >= FILE_HEADER_LEN
        && crc32fast::hash(&data[0..20])
            == u32::from_le_bytes([data[20], data[21], data[22], data[23]])
        && parse_record(data, FILE_HEADER_LEN, file_number, file_version(data)).is_ok()
}

/// How many leading bytes of a log some intact record vouches were synced: damage below this is
/// always reported as corruption by [`replay`]; damage at or past it may be taken for a torn
/// tail. The simulator aims media corruption below it, since past it (the last records written
/// before a crash) no log format can tell damage from a torn write.
pub fn proven_synced_len(data: &[u8], file_number: u64) -> u64 {
    let version = file_version(data);
    let mut pos = FILE_HEADER_LEN;
    let mut proven = 0u64;
    while pos < data.len() {
        match parse_record(data, pos, file_number, version) {
            Ok(r) => {
                proven = proven.max(r.synced_offset);
                pos = r.next;
            }
            Err(_) => break,
        }
    }
    proven
}

/// Finds an intact record after `damage` whose synced offset covers `damage`.
fn later_synced_record(
    data: &[u8],
    damage: usize,
    file_number: u64,
    version: u32,
) -> Option<usize> {
    let mut p = damage + 1;
    while p < data.len() {
        // Cheap filters first: an intact record of versions 1 to 3 names its own offset, and
        // one of version 4 passes its header check (inside `parse_record`).
        let candidate =
            version >= 4 || crate::coding::u64_at(data, p + 8).is_some_and(|off| off == p as u64);
        if candidate {
            if let Ok(r) = parse_record(data, p, file_number, version) {
                if r.synced_offset > damage as u64 {
                    return Some(p);
                }
                p = r.next;
                continue;
            }
        }
        p += 1;
    }
    None
}

/// Reads a whole file through the `File` trait, bounding the allocation by its length.
pub fn read_all(file: &dyn File, path: &Path) -> Result<Vec<u8>> {
    let len = file.len().map_err(|e| Error::io("stat", path, e))?;
    let len = usize::try_from(len).map_err(|_| {
        Error::corruption(path, 0, format!("file of {len} bytes is too large to read"))
    })?;
    let mut data = vec![0u8; len];
    file.read_exact_at(&mut data, 0)
        .map_err(|e| Error::io("read", path, e))?;
    Ok(data)
}
