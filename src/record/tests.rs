//! Tests of the log framing: round trips, torn tails, damage, pre-sizing and compression.

use super::*;
use crate::env::File;
use crate::error::{Error, Result};
use crate::options::limits;
use proptest::prelude::*;
use std::path::Path;

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
    // 24 + 20 * (6 + 1 + 1 + 30) = 784 bytes of log in a file grown 256 bytes at a time.
    assert_eq!(w.len(), 784);
    assert_eq!(data.len(), 1024);
    let (got, end) = read_log(&data).unwrap();
    assert_eq!(got, records);
    assert_eq!(end, LogEnd::Zeros { offset: 784 });
    // An older log, synced whole, may end at its zeros too.
    let r = replay(
        &data,
        Path::new("t.wal"),
        WAL_MAGIC,
        7,
        false,
        |_, _| Ok(()),
    );
    assert_eq!(r.unwrap(), LogEnd::Zeros { offset: 784 });
    // A record torn over the zeros is a torn tail, and in synced data it is damage.
    let mut torn = data.clone();
    torn[784..790].copy_from_slice(&[1, 2, 3, 4, 5, 6]);
    assert!(matches!(
        read_log(&torn).unwrap().1,
        LogEnd::TornTail { offset: 784, .. }
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

fn write_lz4_log(records: &[Vec<u8>], sync_each: bool) -> (Vec<u8>, Vec<u64>) {
    let f = Arc::new(MemFile::new());
    let mut w = LogWriter::new(f.clone(), "t.wal".into(), WAL_MAGIC, 7).unwrap();
    w.set_lz4(true);
    let mut offsets = Vec::new();
    for r in records {
        offsets.push(w.len());
        w.add_record(&[r]).unwrap();
        if sync_each {
            w.sync().unwrap();
        }
    }
    (f.bytes(), offsets)
}

#[test]
fn compressed_records_round_trip_and_the_rest_stay_raw() {
    let repetitive: Vec<u8> = b"value-".iter().copied().cycle().take(300).collect();
    let noise: Vec<u8> = (0..200u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let records = vec![
        repetitive.clone(),
        b"short".to_vec(),
        noise.clone(),
        Vec::new(),
    ];
    let (data, offsets) = write_lz4_log(&records, false);
    assert_eq!(read_log(&data).unwrap(), (records.clone(), LogEnd::Clean));
    // The repetitive payload is stored compressed: its record is far shorter than it.
    let first = (offsets[1] - offsets[0]) as usize;
    assert!(first < repetitive.len() / 4, "{first} bytes");
    // A short payload and one LZ4 cannot shrink by an eighth are stored as they are.
    assert_eq!(data[offsets[1] as usize + 6], (5 << 1) as u8);
    let noise_len = (offsets[3] - offsets[2]) as usize;
    assert!(noise_len >= noise.len(), "{noise_len} bytes");
}

#[test]
fn damage_to_a_compressed_record_is_caught_at_every_byte() {
    let repetitive: Vec<u8> = b"abcdefgh".iter().copied().cycle().take(400).collect();
    let records = vec![repetitive.clone(), vec![9u8; 10]];
    let (data, offsets) = write_lz4_log(&records, true);
    for at in offsets[0] as usize..offsets[1] as usize {
        for flip in [0x01u8, 0x80] {
            let mut bad = data.clone();
            bad[at] ^= flip;
            // Synced, and vouched for by the record after it: always reported as damage.
            let err = read_log(&bad).unwrap_err();
            assert!(err.is_corruption(), "byte {at}: {err}");
        }
    }
    // The same damage in the unsynced tail is cut, returning no wrong record.
    let (tail, offsets) = write_lz4_log(&records, false);
    for at in offsets[0] as usize..offsets[1] as usize {
        let mut bad = tail.clone();
        bad[at] ^= 0x10;
        let (got, end) = read_log(&bad).unwrap();
        assert!(got.is_empty(), "byte {at}");
        assert!(matches!(end, LogEnd::TornTail { .. }), "byte {at}: {end:?}");
    }
}

/// Frames a version-4 record at `offset` of log 7 by hand, its checksums intact.
fn frame_v4(offset: u64, fields: &[u64], payload: &[u8]) -> Vec<u8> {
    let mut rec = vec![0u8; 6];
    for f in fields {
        crate::coding::varint::put(&mut rec, *f);
    }
    let check = super::header_check(7, offset, &rec[6..]);
    rec[4..6].copy_from_slice(&check.to_le_bytes());
    rec.extend_from_slice(payload);
    let crc = super::record_crc_v4(7, offset, &rec[4..]);
    rec[0..4].copy_from_slice(&crc.to_le_bytes());
    rec
}

#[test]
fn an_intact_record_that_does_not_decode_is_corruption() {
    let (mut data, _) = write_lz4_log(&[], false);
    let at = data.len() as u64;
    // Flagged compressed, raw length 500, but the bytes are no LZ4 block of 500 bytes.
    data.extend(frame_v4(at, &[(8 << 1) | 1, 0, 500], &[0xff; 8]));
    let err = read_log(&data).unwrap_err();
    assert!(err.is_corruption(), "{err}");
    assert!(err.to_string().contains("does not decode"), "{err}");
    // A raw length past the record limit is refused before anything is allocated.
    let (mut data, _) = write_lz4_log(&[], false);
    let huge = limits::RECORD_SIZE_BYTES_MAX as u64 + 1;
    data.extend(frame_v4(at, &[(8 << 1) | 1, 0, huge], &[0xff; 8]));
    let (got, end) = read_log(&data).unwrap();
    assert!(got.is_empty());
    assert!(
        matches!(&end, LogEnd::TornTail { reason, .. } if reason.contains("decompressed")),
        "{end:?}"
    );
}

#[test]
fn wrong_file_number_is_caught() {
    let data = write_log(&[vec![1u8; 10]], true);
    let err = replay(&data, Path::new("t.wal"), WAL_MAGIC, 8, true, |_, _| Ok(())).unwrap_err();
    assert!(err.is_corruption());
}
