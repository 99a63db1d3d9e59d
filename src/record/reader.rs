//! Reading a log back: header checks, record parsing, and the torn-tail rule.

use super::{
    record_crc, FILE_HEADER_LEN, LOG_FORMAT_VERSION, LOG_FORMAT_VERSION_MIN, RECORD_HEADER_LEN,
};
use crate::env::File;
use crate::error::{Error, Result};
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
    payload: &'a [u8],
    synced_offset: u64,
    next: usize,
}

/// Parses the record at `pos`, or says why it is not intact.
fn parse_record(data: &[u8], pos: usize, file_number: u64) -> Result<Parsed<'_>, String> {
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
    mut f: impl FnMut(u64, &[u8]) -> Result<()>,
) -> Result<LogEnd> {
    if let Err(e) = check_file_header(data, path, magic, file_number) {
        // The header of the newest log is written with its first records; a power loss may
        // leave it torn. That is a torn tail at offset 0 unless a synced record follows.
        let header_torn = data.len() < FILE_HEADER_LEN
            || crc32fast::hash(&data[0..20])
                != u32::from_le_bytes([data[20], data[21], data[22], data[23]]);
        let torn =
            tail_allowed && header_torn && later_synced_record(data, 0, file_number).is_none();
        if torn {
            return Ok(LogEnd::TornTail {
                offset: 0,
                reason: e.to_string(),
            });
        }
        return Err(e);
    }
    let mut pos = FILE_HEADER_LEN;
    while pos < data.len() {
        match parse_record(data, pos, file_number) {
            Ok(r) => {
                f(pos as u64, r.payload)?;
                pos = r.next;
            }
            Err(reason) => {
                // A pre-sized log ends at zeros: space never written. (A record is never all
                // zeros: its checksum covers its file number and offset.)
                if data[pos..].iter().all(|b| *b == 0) {
                    return Ok(LogEnd::Zeros { offset: pos as u64 });
                }
                if !tail_allowed {
                    return Err(Error::corruption(
                        path,
                        pos as u64,
                        format!("{reason} in a log that was fully synced"),
                    ));
                }
                if let Some(proof) = later_synced_record(data, pos, file_number) {
                    return Err(Error::corruption(
                        path,
                        pos as u64,
                        format!(
                            "{reason}; the intact record at offset {proof} says these bytes were \
                             synced, so this is damage, not a torn write"
                        ),
                    ));
                }
                return Ok(LogEnd::TornTail {
                    offset: pos as u64,
                    reason,
                });
            }
        }
    }
    Ok(LogEnd::Clean)
}

/// True if the log has an intact header and an intact first record: it was written to after it
/// was created. An older log is synced whole before a newer one gets its first record, so only
/// logs newer than every log that holds records may have a torn tail.
pub fn holds_records(data: &[u8], file_number: u64) -> bool {
    data.len() >= FILE_HEADER_LEN
        && crc32fast::hash(&data[0..20])
            == u32::from_le_bytes([data[20], data[21], data[22], data[23]])
        && parse_record(data, FILE_HEADER_LEN, file_number).is_ok()
}

/// How many leading bytes of a log some intact record vouches were synced: damage below this is
/// always reported as corruption by [`replay`]; damage at or past it may be taken for a torn
/// tail. The simulator aims media corruption below it, since past it (the last records written
/// before a crash) no log format can tell damage from a torn write.
pub fn proven_synced_len(data: &[u8], file_number: u64) -> u64 {
    let mut pos = FILE_HEADER_LEN;
    let mut proven = 0u64;
    while pos < data.len() {
        match parse_record(data, pos, file_number) {
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
fn later_synced_record(data: &[u8], damage: usize, file_number: u64) -> Option<usize> {
    let mut p = damage + 1;
    while p + RECORD_HEADER_LEN <= data.len() {
        // Cheap filter first: an intact record names its own offset.
        let off = u64::from_le_bytes(data[p + 8..p + 16].try_into().expect("8 bytes"));
        if off == p as u64 {
            if let Ok(r) = parse_record(data, p, file_number) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    use crate::env::MemFile;
    use crate::record::LogWriter;
    use std::sync::Arc;

    const WAL_MAGIC: [u8; 8] = *b"SDBWAL\0\0";

    fn write_log(records: &[Vec<u8>], sync_each: bool) -> Vec<u8> {
        let f = Arc::new(MemFile::new());
        let mut w = LogWriter::new(f.clone(), "t.wal".into(), WAL_MAGIC, 7).unwrap();
        for r in records {
            w.add_record(&[r]).unwrap();
            if sync_each {
                w.sync().unwrap();
            }
        }
        f.bytes()
    }

    fn read_log(data: &[u8]) -> Result<(Vec<Vec<u8>>, LogEnd)> {
        let mut out = Vec::new();
        let end = replay(data, Path::new("t.wal"), WAL_MAGIC, 7, true, |_, p| {
            out.push(p.to_vec());
            Ok(())
        })?;
        Ok((out, end))
    }

    proptest! {
        #[test]
        fn round_trip(records in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..20)) {
            let data = write_log(&records, false);
            let (got, end) = read_log(&data).unwrap();
            prop_assert_eq!(got, records);
            prop_assert_eq!(end, LogEnd::Clean);
        }

        #[test]
        fn truncation_is_a_torn_tail_with_a_prefix(
            records in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..100), 1..10),
            cut in any::<proptest::sample::Index>(),
        ) {
            let data = write_log(&records, true);
            let n = FILE_HEADER_LEN + cut.index(data.len() - FILE_HEADER_LEN);
            let (got, _) = read_log(&data[..n]).unwrap();
            prop_assert!(got.len() <= records.len());
            prop_assert_eq!(&records[..got.len()], &got[..]);
        }
    }

    #[test]
    fn damage_before_a_synced_record_is_corruption() {
        let records = vec![vec![1u8; 50], vec![2u8; 50], vec![3u8; 50]];
        let mut data = write_log(&records, true);
        data[FILE_HEADER_LEN + 30] ^= 0x40; // inside the first record's payload
        let err = read_log(&data).unwrap_err();
        assert!(err.is_corruption(), "{err}");
        assert!(err
            .to_string()
            .contains(&format!("offset {FILE_HEADER_LEN}")));
    }

    #[test]
    fn damage_in_the_unsynced_tail_is_cut() {
        let records = vec![vec![1u8; 50], vec![2u8; 50], vec![3u8; 50]];
        let mut data = write_log(&records, false);
        data[FILE_HEADER_LEN + 30] ^= 0x40;
        let (got, end) = read_log(&data).unwrap();
        assert!(got.is_empty());
        assert!(matches!(end, LogEnd::TornTail { .. }));
    }

    #[test]
    fn a_torn_header_of_the_newest_log_is_an_empty_log() {
        let data = write_log(&[vec![1u8; 10]], false);
        for cut in 0..FILE_HEADER_LEN {
            let (got, end) = read_log(&data[..cut]).unwrap();
            assert!(got.is_empty());
            assert!(matches!(end, LogEnd::TornTail { offset: 0, .. }));
        }
        let mut zeroed = data.clone();
        zeroed[..FILE_HEADER_LEN].fill(0);
        assert!(matches!(
            read_log(&zeroed).unwrap().1,
            LogEnd::TornTail { offset: 0, .. }
        ));
        // In a log that was synced whole, the same damage is corruption.
        let r = replay(&zeroed, Path::new("t.wal"), WAL_MAGIC, 7, false, |_, _| {
            Ok(())
        });
        assert!(r.unwrap_err().is_corruption());
    }

    /// A file whose appends and syncs can be made to fail.
    struct FlakyFile {
        inner: MemFile,
        fail: std::sync::atomic::AtomicBool,
    }
    impl File for FlakyFile {
        fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
            self.inner.read_exact_at(buf, offset)
        }
        fn append(&self, data: &[u8]) -> std::io::Result<()> {
            if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
                self.inner.append(&data[..data.len() / 2])?;
                return Err(std::io::Error::other("EIO"));
            }
            self.inner.append(data)
        }
        fn sync(&self) -> std::io::Result<()> {
            if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(std::io::Error::other("EIO"));
            }
            Ok(())
        }
        fn len(&self) -> std::io::Result<u64> {
            self.inner.len()
        }
    }

    #[test]
    fn a_writer_refuses_everything_after_its_first_failure() {
        let f = Arc::new(FlakyFile {
            inner: MemFile::new(),
            fail: std::sync::atomic::AtomicBool::new(false),
        });
        let mut w = LogWriter::new(f.clone(), "t.wal".into(), WAL_MAGIC, 7).unwrap();
        w.add_record(&[b"one"]).unwrap();
        f.fail.store(true, std::sync::atomic::Ordering::SeqCst);
        assert!(w.add_record(&[b"two"]).is_err()); // half of it reached the file
        f.fail.store(false, std::sync::atomic::Ordering::SeqCst);
        // The file works again, but what follows the garbage could never be replayed, and a
        // sync now could claim durability for data a failed fsync dropped: refuse both.
        assert!(matches!(
            w.add_record(&[b"three"]),
            Err(Error::ReadOnly { .. })
        ));
        assert!(matches!(w.sync(), Err(Error::ReadOnly { .. })));
        assert!(w.failure().is_some());
    }

    #[test]
    fn a_pre_sized_log_ends_at_its_zeros_and_grows_when_full() {
        let f = Arc::new(MemFile::new());
        let mut w = LogWriter::new_presized(f.clone(), "t.wal".into(), WAL_MAGIC, 7, 256).unwrap();
        assert_eq!(f.bytes().len(), 256);
        let records: Vec<Vec<u8>> = (0..20u8).map(|i| vec![i; 30]).collect();
        for r in &records {
            w.add_record(&[r]).unwrap();
            w.sync().unwrap();
        }
        let data = f.bytes();
        // 24 + 20 * 54 = 1104 bytes of log in a file grown 256 bytes at a time.
        assert_eq!(w.len(), 1104);
        assert_eq!(data.len(), 1280);
        let (got, end) = read_log(&data).unwrap();
        assert_eq!(got, records);
        assert_eq!(end, LogEnd::Zeros { offset: 1104 });
        // An older log, synced whole, may end at its zeros too.
        let r = replay(
            &data,
            Path::new("t.wal"),
            WAL_MAGIC,
            7,
            false,
            |_, _| Ok(()),
        );
        assert_eq!(r.unwrap(), LogEnd::Zeros { offset: 1104 });
        // A record torn over the zeros is a torn tail, and in synced data it is damage.
        let mut torn = data.clone();
        torn[1104..1110].copy_from_slice(&[1, 2, 3, 4, 5, 6]);
        assert!(matches!(
            read_log(&torn).unwrap().1,
            LogEnd::TornTail { offset: 1104, .. }
        ));
        let mut hole = data.clone();
        hole[300..354].fill(0);
        assert!(read_log(&hole).unwrap_err().is_corruption());
    }

    /// A file that can only append (the `File` defaults for in-place writes).
    struct AppendOnly(MemFile);
    impl File for AppendOnly {
        fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
            self.0.read_exact_at(buf, offset)
        }
        fn append(&self, data: &[u8]) -> std::io::Result<()> {
            self.0.append(data)
        }
        fn sync(&self) -> std::io::Result<()> {
            Ok(())
        }
        fn len(&self) -> std::io::Result<u64> {
            self.0.len()
        }
    }

    #[test]
    fn a_file_that_cannot_be_sized_is_appended_to() {
        let m = MemFile::new();
        let f = Arc::new(AppendOnly(m.clone()));
        let mut w = LogWriter::new_presized(f, "t.wal".into(), WAL_MAGIC, 7, 4096).unwrap();
        w.add_record(&[b"one"]).unwrap();
        let data = m.bytes();
        assert_eq!(data.len() as u64, w.len());
        assert_eq!(
            read_log(&data).unwrap(),
            (vec![b"one".to_vec()], LogEnd::Clean)
        );
    }

    #[test]
    fn wrong_file_number_is_caught() {
        let data = write_log(&[vec![1u8; 10]], true);
        let err = replay(&data, Path::new("t.wal"), WAL_MAGIC, 8, true, |_, _| Ok(())).unwrap_err();
        assert!(err.is_corruption());
    }
}
