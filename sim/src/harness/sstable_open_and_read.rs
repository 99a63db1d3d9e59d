//! The `sstable_open_and_read` harness: opening and reading a table from arbitrary bytes, and a
//! valid table built from the input, then the same table damaged.

use super::{is_clear_error, le_u64, mutate, mutation_choices, Input};
use crate::SimFs;
use sedimentdb::internals::key::{self, Found, Kind};
use sedimentdb::internals::sstable::{Table, TableBuilder, TableIter, TableMeta};
use sedimentdb::Fs;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// What a table built from the input holds: key to (sequence, deleted, value).
type Want = BTreeMap<Vec<u8>, (u64, bool, Vec<u8>)>;

/// `sstable_open_and_read`: arbitrary bytes as a table, and mutations (bit flips, truncation,
/// spliced blocks) of a valid one. Opening, reading every key and a full scan return the right
/// data or `Error::Corruption`; never a panic or wrong data.
pub fn sstable_open_and_read(data: &[u8]) {
    let fs = SimFs::new();
    read_raw(&fs, data);
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
    );
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
        let mut it = TableIter::new(t);
        let mut r = it.seek_to_first();
        let mut steps = 0;
        while r.is_ok() && it.valid() && steps < 100_000 {
            r = it.advance();
            steps += 1;
        }
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
