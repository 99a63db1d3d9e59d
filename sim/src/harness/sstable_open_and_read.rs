//! The `sstable_open_and_read` harness: opening and reading a table from arbitrary bytes, and a
//! valid table built from the input (with a codec the input picks), then the same table
//! damaged, then one of its data blocks damaged under a recomputed checksum (so the block
//! decoder itself meets damaged compressed bytes), and the decoder on the raw input.

use super::{is_clear_error, le_u64, mutate, mutation_choices, Input};
use crate::SimFs;
use sedimentdb::internals::key::{self, Found, Kind};
use sedimentdb::internals::sstable::compress::{self, DecodeError};
use sedimentdb::internals::sstable::format::block_crc;
use sedimentdb::internals::sstable::{Table, TableBuilder, TableIter, TableMeta};
use sedimentdb::{Compression, Fs};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// What a table built from the input holds: key to (sequence, deleted, value).
type Want = BTreeMap<Vec<u8>, (u64, bool, Vec<u8>)>;

/// `sstable_open_and_read`: arbitrary bytes as a table, and mutations (bit flips, truncation,
/// spliced blocks) of a valid one. Opening, reading every key and a full scan return the right
/// data or `Error::Corruption`; never a panic or wrong data. A data block damaged under a
/// forged checksum may read as other data, but never panics or allocates past the table's
/// largest block.
pub fn sstable_open_and_read(data: &[u8]) {
    let fs = SimFs::new();
    read_raw(&fs, data);
    decode_raw(data);
    let mut inp = Input::new(data);
    let want = entries_from(&mut inp);
    let path = Path::new("/t.sst");
    let f = fs.create(path).expect("in memory");
    let block = 64 + (inp.u16() as usize % 2048);
    let mut b = TableBuilder::new(
        f,
        path.to_path_buf(),
        9,
        block,
        1 + inp.u8() as usize % 16,
        10,
    )
    .with_compression(codec(inp.u8()));
    for (k, (seq, del, v)) in &want {
        let kind = if *del { Kind::Delete } else { Kind::Put };
        b.add(&key::encode(k, *seq, kind), v).expect("in memory");
    }
    let meta: TableMeta = b.finish().expect("in memory");
    assert_eq!(meta.entries, want.len() as u64);
    read_table_checked(&fs, path, &want);
    let mut bytes = fs.read_file(path).expect("written");
    mutate(&mut bytes, &mut mutation_choices(data));
    let damaged = Path::new("/damaged.sst");
    fs.write_file(damaged, &bytes).expect("in memory");
    read_table_checked(&fs, damaged, &want);
    forge(&fs, path, &mut inp);
}

/// A codec for the table, from one input byte.
fn codec(b: u8) -> Compression {
    match b % 4 {
        0 => Compression::None,
        1 if cfg!(feature = "zstd") => Compression::Zstd(1 + i32::from(b / 4) % 5),
        _ => Compression::Lz4,
    }
}

/// The block decoder on the input as a stored block: bytes of the claimed length, or an error.
fn decode_raw(data: &[u8]) {
    let mut buf = data.to_vec();
    let bound = 1 + (data.len() as u64) * 4;
    match compress::decode_in_place(&mut buf, bound) {
        Ok(_) => assert!(buf.len() as u64 <= bound, "decoded past its bound"),
        Err(DecodeError::Corrupt(_) | DecodeError::Unsupported(_)) => {}
    }
}

/// Damages one data block of the table at `path` and recomputes its checksum, then reads the
/// table: errors must be clear ones, nothing may panic.
fn forge(fs: &SimFs, path: &Path, inp: &mut Input) {
    let Ok(t) = Table::open(fs, path, 9) else {
        return;
    };
    let blocks: Vec<_> = t.data_blocks().collect();
    if blocks.is_empty() {
        return;
    }
    let h = blocks[inp.u16() as usize % blocks.len()];
    let mut bytes = fs.read_file(path).expect("written");
    let (start, end) = (h.offset as usize, (h.offset + h.len) as usize);
    let mut block = bytes[start..end].to_vec();
    mutate(&mut block, inp);
    // Keep the block's length (so the file's layout still holds): pad or cut to it.
    block.resize(end - start, 0);
    let crc = block_crc(9, h.offset, &block);
    bytes[start..end].copy_from_slice(&block);
    bytes[end..end + 4].copy_from_slice(&crc.to_le_bytes());
    let forged = Path::new("/forged.sst");
    fs.write_file(forged, &bytes).expect("in memory");
    let t = match Table::open(fs, forged, 9) {
        Ok(t) => Arc::new(t),
        Err(e) => {
            assert!(is_clear_error(&e), "unclear error at open: {e}");
            return;
        }
    };
    if let Err(e) = scan(t) {
        assert!(is_clear_error(&e), "unclear error: {e}");
    }
}

/// Scans the whole table (at most 100,000 steps), returning the first error.
fn scan(t: Arc<Table>) -> sedimentdb::Result<()> {
    let mut it = TableIter::new(t);
    let mut r = it.seek_to_first();
    let mut steps = 0;
    while r.is_ok() && it.valid() && steps < 100_000 {
        r = it.advance();
        steps += 1;
    }
    r
}

/// The bytes as they are, as a table under the number its footer names (so that a real table
/// from the corpus opens): a read and a full scan never panic.
fn read_raw(fs: &SimFs, data: &[u8]) {
    let raw = Path::new("/raw.sst");
    fs.write_file(raw, data).expect("in memory");
    let named = data
        .len()
        .checked_sub(72)
        .and_then(|f| le_u64(data, f + 12))
        .unwrap_or(9);
    if let Ok(t) = Table::open(fs, raw, named) {
        let t = Arc::new(t);
        let _ = t.get(b"k", key::SEQ_MAX);
        let _ = scan(t);
    }
}

/// The entries of a table to build, from the input.
fn entries_from(inp: &mut Input) -> Want {
    let mut want = Want::new();
    for i in 0..inp.u8() as u64 {
        let k = inp.bytes(16).to_vec();
        if k.is_empty() {
            continue;
        }
        let del = inp.u8().is_multiple_of(4);
        let v = if del {
            5u64.to_le_bytes().to_vec()
        } else {
            inp.bytes(200).to_vec()
        };
        want.insert(k, (i + 1, del, v));
    }
    want
}

/// Reads every key of `want` and a full scan from the table at `path`: each answer is the right
/// data or a clear error, never wrong data.
fn read_table_checked(fs: &SimFs, path: &Path, want: &Want) {
    let t = match Table::open(fs, path, 9) {
        Ok(t) => Arc::new(t),
        Err(e) => {
            assert!(is_clear_error(&e), "unclear error at open: {e}");
            return;
        }
    };
    for (k, (_, del, v)) in want {
        match t.get(k, key::SEQ_MAX) {
            Ok((found, _)) => {
                let expect = if *del {
                    Found::Deleted
                } else {
                    Found::Value(v.clone())
                };
                assert_eq!(found.map(|f| f.1), Some(expect), "wrong data for key {k:?}");
            }
            Err(e) => assert!(is_clear_error(&e), "unclear error: {e}"),
        }
    }
    let mut it = TableIter::new(t);
    let mut expect = want.iter();
    let mut r = it.seek_to_first();
    while r.is_ok() && it.valid() {
        let (k, (seq, del, v)) = expect
            .next()
            .expect("the scan returned more entries than written");
        let p = key::parse(it.key()).expect("a scan returned a malformed key");
        assert_eq!(
            (p.user_key, p.seq, p.kind == Kind::Delete, it.value()),
            (&k[..], *seq, *del, &v[..])
        );
        r = it.advance();
    }
    match r {
        Ok(()) => assert!(
            expect.next().is_none(),
            "a scan ended early without an error"
        ),
        Err(e) => assert!(is_clear_error(&e), "unclear error: {e}"),
    }
}
