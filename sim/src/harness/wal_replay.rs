//! The `wal_replay` harness: WAL replay on arbitrary bytes, and on a valid WAL (appended or
//! pre-sized, its payloads LZ4-compressed or not) built from the input and then damaged, or
//! with stale bytes of another log in its unused space.

use super::{is_clear_error, le_u64, mutate, mutation_choices, Input, MemFile};
use sedimentdb::internals::record::{self as log, LogEnd, LogWriter};
use sedimentdb::internals::wal::batch::{decode_payload, payload_header, WriteBatch};
use sedimentdb::internals::wal::WAL_MAGIC;
use std::path::Path;
use std::sync::Arc;

/// `wal_replay`: arbitrary bytes as a WAL, and mutations of a valid WAL. Replay returns the
/// records intact up to the first damage (a prefix of what was written, never a record that
/// was not), or a clear error; never a panic or an endless loop.
pub fn wal_replay(data: &[u8]) {
    let path = Path::new("/db/000007.wal");
    replay_raw(data, path);
    replay_damaged(data, path);
}

/// The bytes as they are, under the file number their header names (so that a real WAL from
/// the corpus replays), and under another.
fn replay_raw(data: &[u8], path: &Path) {
    let named = le_u64(data, 12).unwrap_or(7);
    for (tail_allowed, number) in [(true, named), (false, named), (true, named ^ 1)] {
        let mut n = 0usize;
        let r = log::replay(
            data,
            path,
            WAL_MAGIC,
            number,
            tail_allowed,
            |off, payload| {
                assert!((off as usize) < data.len(), "record offset past the end");
                n += 1;
                let _ = decode_payload(payload, log::file_version(data), |_, _| ());
                Ok(())
            },
        );
        if let Err(e) = r {
            assert!(is_clear_error(&e), "unclear error: {e}");
        }
        // The smallest record (version 4): its fixed part and two one-byte varints.
        assert!(n <= data.len() / (log::RECORD_HEADER_FIXED_V4 + 2) + 1);
    }
}

/// A valid WAL made from the input (pre-sized or not), then damaged: replay returns a prefix
/// of its records. Undamaged, it returns them all and ends clean or at the pre-sized zeros;
/// with another log's records copied over those zeros (stale bytes, as a recycled file would
/// hold), it returns exactly its own records.
fn replay_damaged(data: &[u8], path: &Path) {
    let mut inp = Input::new(data);
    let file = MemFile::default();
    let f: Arc<dyn sedimentdb::File> = Arc::new(file.clone());
    let presize = match inp.u8() % 3 {
        0 => 0,
        1 => 64 + u64::from(inp.u16() % 2048),
        _ => 1 << 16,
    };
    let mut w =
        LogWriter::new_presized(f, path.to_path_buf(), WAL_MAGIC, 7, presize).expect("in memory");
    let other = MemFile::default();
    let o: Arc<dyn sedimentdb::File> = Arc::new(other.clone());
    let mut stale = LogWriter::new(o, path.to_path_buf(), WAL_MAGIC, 6).expect("in memory");
    // Compressed payloads half the time: damage then lands in LZ4 data and its lengths.
    let lz4 = inp.u8().is_multiple_of(2);
    w.set_lz4(lz4);
    stale.set_lz4(lz4);
    let mut written: Vec<Vec<u8>> = Vec::new();
    for i in 0..(inp.u8() % 12) as u64 {
        let mut b = WriteBatch::new();
        let value = inp.bytes(60);
        // A repeated value compresses: LZ4 pays on it.
        let value = if inp.u8().is_multiple_of(2) {
            value.repeat(3)
        } else {
            value.to_vec()
        };
        b.put(inp.bytes(20), value);
        if inp.u8().is_multiple_of(3) {
            b.delete(inp.bytes(10));
        }
        let mut payload = payload_header(i * 10 + 1, 1_000, b.len() as u32).to_vec();
        payload.extend_from_slice(b.encoded_entries());
        w.add_record(&[&payload]).expect("in memory");
        stale.add_record(&[&payload]).expect("in memory");
        stale.add_record(&[&payload]).expect("in memory");
        if inp.u8().is_multiple_of(2) {
            w.sync().expect("in memory");
        }
        written.push(payload);
    }
    let mut bytes = file.bytes();
    let clean = bytes.clone();
    check_stale(&clean, w.len() as usize, &other.bytes(), &written, path);
    mutate(&mut bytes, &mut mutation_choices(data));
    let mut got: Vec<Vec<u8>> = Vec::new();
    match log::replay(&bytes, path, WAL_MAGIC, 7, true, |_, p| {
        got.push(p.to_vec());
        Ok(())
    }) {
        Ok(end) => {
            assert!(got.len() <= written.len(), "replay invented records");
            assert_eq!(
                &written[..got.len()],
                &got[..],
                "replay returned a record that was not written"
            );
            if bytes == clean {
                let at_zeros = LogEnd::Zeros { offset: w.len() };
                assert!(end == LogEnd::Clean || end == at_zeros, "{end:?}");
                assert_eq!(got.len(), written.len());
            }
        }
        Err(e) => assert!(is_clear_error(&e), "unclear error: {e}"),
    }
}

/// Another log's bytes laid over the unused space after `end`: replay returns exactly the
/// records written, never a stale one (the checksum binds each record to its file and offset).
fn check_stale(clean: &[u8], end: usize, other: &[u8], written: &[Vec<u8>], path: &Path) {
    let mut bytes = clean.to_vec();
    let header = log::FILE_HEADER_LEN;
    let src = other.get(header..).unwrap_or_default();
    let n = src.len().min(bytes.len().saturating_sub(end));
    bytes[end..end + n].copy_from_slice(&src[..n]);
    let mut got: Vec<Vec<u8>> = Vec::new();
    let r = log::replay(&bytes, path, WAL_MAGIC, 7, true, |_, p| {
        got.push(p.to_vec());
        Ok(())
    });
    assert!(r.is_ok(), "stale bytes after the last record: {r:?}");
    assert_eq!(got, written, "replay returned a stale record");
}
