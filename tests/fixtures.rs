//! Databases written by earlier builds must keep opening with the same contents; damaged copies
//! must fail with `Error::Corruption`. The fixtures under `tests/fixtures/` are committed:
//! `v1` (table and log format version 1, written by the first release), `v2` (range
//! deletes, table format 2, log format 2), `v3` (LZ4-compressed data blocks, table format
//! 3) and `log3` (log format 3: a pre-sized WAL written in place, ending in zeros). `SEDIMENTDB_WRITE_FIXTURES=1 cargo test --test
//! fixtures` rewrites only the fixture of the current version; older ones are never rewritten.
use sedimentdb::internals::sstable::format::TABLE_FORMAT_VERSION;
use sedimentdb::{Compression, Db, Error, Options, WriteBatch, WriteOptions};
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn key(i: u32) -> Vec<u8> {
    format!("fixture-key-{i:04}").into_bytes()
}

fn value(i: u32) -> Vec<u8> {
    format!("value {i} ")
        .repeat(1 + (i % 5) as usize)
        .into_bytes()
}

/// Keys 0..300: 0..200 flushed to tables (then 0..200 step 7 deleted and flushed), 200..300 only
/// in the WAL; 250 overwritten. (How `v1` was written, by a version-1 build.)
fn write_v1(dir: &Path) {
    let opts = Options {
        memtable_size_bytes: 16 << 10,
        block_size_bytes: 512,
        ..Options::default()
    };
    let db = Db::open(dir, opts).unwrap();
    for i in 0..200 {
        db.put(key(i), value(i)).unwrap();
    }
    db.flush().unwrap();
    for i in (0..200).step_by(7) {
        db.delete(key(i)).unwrap();
    }
    db.flush().unwrap();
    for i in 200..300 {
        db.put(key(i), value(i)).unwrap();
    }
    db.put(key(250), b"overwritten").unwrap();
    // Leave the WAL holding data: close syncs it and does not flush.
    db.close().unwrap();
}

fn expected(i: u32) -> Option<Vec<u8>> {
    if i < 200 && i.is_multiple_of(7) {
        None
    } else if i == 250 {
        Some(b"overwritten".to_vec())
    } else {
        Some(value(i))
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// A copy of fixture `name` in a temporary directory (the fixture itself is never opened).
fn fixture_copy(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    copy_dir(&fixture(name), &dir);
    (tmp, dir)
}

/// Rewrites fixture `name` with `write` when `SEDIMENTDB_WRITE_FIXTURES` is set and `current`
/// says the fixture is of the version this build writes.
fn rewrite_fixture_if_asked(name: &str, current: bool, write: fn(&Path)) {
    if std::env::var("SEDIMENTDB_WRITE_FIXTURES").is_ok() && current {
        let src = fixture(name);
        let _ = std::fs::remove_dir_all(&src);
        write(&src);
        let _ = std::fs::remove_file(src.join("LOCK"));
    }
}

#[test]
fn a_version_1_database_opens_with_its_contents() {
    let (_tmp, dir) = fixture_copy("v1");
    assert!(std::fs::read_dir(&dir).unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .ends_with(".sst")));
    assert!(std::fs::read_dir(&dir).unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .ends_with(".wal")));
    let db = Db::open(&dir, Options::default()).unwrap();
    for i in 0..300 {
        assert_eq!(db.get(key(i)).unwrap(), expected(i), "key {i}");
    }
    let n = db.iter().count();
    assert_eq!(n, (0..300).filter(|i| expected(*i).is_some()).count());
}

#[test]
fn a_damaged_version_1_database_fails_with_corruption() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    copy_dir(&fixture("v1"), &dir);
    // Damage the first table's footer and, in a second copy, the WAL's first record.
    let table = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "sst"))
        .unwrap();
    let mut bytes = std::fs::read(&table).unwrap();
    let n = bytes.len();
    bytes[n - 30] ^= 0x10;
    std::fs::write(&table, &bytes).unwrap();
    let e = Db::open(&dir, Options::default()).err().expect("must fail");
    assert!(matches!(e, Error::Corruption { .. }), "{e}");
    assert!(
        e.to_string()
            .contains(&table.file_name().unwrap().to_string_lossy().to_string()),
        "{e}"
    );

    let dir2 = tmp.path().join("db2");
    copy_dir(&fixture("v1"), &dir2);
    let wal = std::fs::read_dir(&dir2)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "wal"))
        .unwrap();
    let mut bytes = std::fs::read(&wal).unwrap();
    bytes[60] ^= 0x01;
    std::fs::write(&wal, &bytes).unwrap();
    let e = Db::open(&dir2, Options::default())
        .err()
        .expect("must fail");
    assert!(matches!(e, Error::Corruption { .. }), "{e}");
}

/// The format version in a table's footer (bytes 8..12 of its last 72).
fn table_version(path: &Path) -> u32 {
    let b = std::fs::read(path).unwrap();
    let f = &b[b.len() - 72..];
    u32::from_le_bytes(f[8..12].try_into().unwrap())
}

/// The files of `dir` with extension `ext`, sorted.
fn files_with_ext(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut t: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    t.sort();
    t
}

fn tables(dir: &Path) -> Vec<PathBuf> {
    files_with_ext(dir, "sst")
}

/// A version-1 database taken through this build: opened, read, written to (a range delete
/// among the writes), fully compacted into tables of the current version, reopened.
#[test]
fn a_version_1_database_reads_writes_compacts_and_reopens_as_the_current_version() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    copy_dir(&fixture("v1"), &dir);
    assert!(tables(&dir).iter().all(|t| table_version(t) == 1));
    let mut want: std::collections::BTreeMap<Vec<u8>, Vec<u8>> = (0..300)
        .filter_map(|i| expected(i).map(|v| (key(i), v)))
        .collect();
    {
        let db = Db::open(&dir, Options::default()).unwrap();
        for i in 0..300 {
            assert_eq!(db.get(key(i)).unwrap(), expected(i), "key {i}");
        }
        let mut b = WriteBatch::new();
        b.put(key(1000), b"new").delete_range(key(100)..key(150));
        db.write(b, &WriteOptions::default()).unwrap();
        want.insert(key(1000), b"new".to_vec());
        want.retain(|k, _| !(k >= &key(100) && k < &key(150)));
        db.compact_range::<&[u8], _>(..).unwrap();
        let got: std::collections::BTreeMap<_, _> = db.iter().collect::<Result<_, _>>().unwrap();
        assert_eq!(got, want);
        db.close().unwrap();
    }
    assert!(!tables(&dir).is_empty());
    assert!(tables(&dir)
        .iter()
        .all(|t| table_version(t) == TABLE_FORMAT_VERSION));
    let db = Db::open(&dir, Options::default()).unwrap();
    let got: std::collections::BTreeMap<_, _> = db.iter().collect::<Result<_, _>>().unwrap();
    assert_eq!(got, want);
    let rev: Vec<_> = db.iter().rev().collect::<Result<_, _>>().unwrap();
    assert_eq!(rev.len(), want.len());
}

/// Keys 0..300 as in `v1`, then a range delete of 40..60 flushed to a table, and one of
/// 260..270 left in the WAL.
fn write_v2(dir: &Path) {
    write_v1(dir);
    let db = Db::open(dir, Options::default()).unwrap();
    db.delete_range(key(40)..key(60)).unwrap();
    db.flush().unwrap();
    db.delete_range(key(260)..key(270)).unwrap();
    db.close().unwrap();
}

fn expected_v2(i: u32) -> Option<Vec<u8>> {
    if (40..60).contains(&i) || (260..270).contains(&i) {
        None
    } else {
        expected(i)
    }
}

#[test]
fn a_version_2_database_opens_with_its_contents() {
    let (_tmp, dir) = fixture_copy("v2");
    assert!(tables(&dir).iter().any(|t| table_version(t) == 2));
    let db = Db::open(&dir, Options::default()).unwrap();
    for i in 0..300 {
        assert_eq!(db.get(key(i)).unwrap(), expected_v2(i), "key {i}");
    }
    let raw_ranges = db
        .scan_raw::<&[u8], _>(..)
        .filter(|e| {
            matches!(
                e.as_ref().unwrap().value,
                sedimentdb::RawValue::RangeTombstone { .. }
            )
        })
        .count();
    assert_eq!(raw_ranges, 2);
}

/// The `v2` contents, then keys 300..400 with repetitive values, flushed and fully compacted
/// with LZ4 everywhere (every table of format 3, its data blocks compressed).
fn write_v3(dir: &Path) {
    write_v2(dir);
    let opts = Options {
        compression_per_level: vec![Compression::Lz4],
        ..Options::default()
    };
    let db = Db::open(dir, opts).unwrap();
    for i in 300..400 {
        db.put(key(i), value(i)).unwrap();
    }
    db.compact_range::<&[u8], _>(..).unwrap();
    db.put(key(400), b"in the WAL").unwrap();
    db.close().unwrap();
}

fn expected_v3(i: u32) -> Option<Vec<u8>> {
    match i {
        300..400 => Some(value(i)),
        400 => Some(b"in the WAL".to_vec()),
        _ => expected_v2(i),
    }
}

#[test]
fn a_version_3_database_opens_with_its_contents() {
    rewrite_fixture_if_asked("v3", TABLE_FORMAT_VERSION == 3, write_v3);
    let (_tmp, dir) = fixture_copy("v3");
    assert!(!tables(&dir).is_empty());
    assert!(tables(&dir).iter().all(|t| table_version(t) == 3));
    // Opened with no compression at all: the stored codec, not the options, decides reads.
    let opts = Options {
        compression_per_level: vec![Compression::None],
        ..Options::default()
    };
    let db = Db::open(&dir, opts).unwrap();
    for i in 0..=400 {
        assert_eq!(db.get(key(i)).unwrap(), expected_v3(i), "key {i}");
    }
    let st = db.stats();
    assert!(
        st.table_raw_data_bytes > st.table_bytes,
        "compressed tables hold more raw bytes ({}) than their size ({})",
        st.table_raw_data_bytes,
        st.table_bytes
    );
    let n = db.iter().count();
    assert_eq!(n, (0..=400).filter(|i| expected_v3(*i).is_some()).count());
}

fn log_version(path: &Path) -> u32 {
    let b = std::fs::read(path).unwrap();
    u32::from_le_bytes(b[8..12].try_into().unwrap())
}

/// Log format version 3 (pre-sized WALs, written in place and ended by zeros): keys 0..100 and
/// a range delete of 10..20 flushed to a table, then puts of 100..150, deletes of 0..150 step
/// 9 and a range delete of 120..125 left in a WAL pre-sized 4 KiB at a time, closed cleanly.
fn write_log3(dir: &Path) {
    let opts = Options {
        wal_preallocate_bytes: 4096,
        ..Options::default()
    };
    let db = Db::open(dir, opts).unwrap();
    for i in 0..100 {
        db.put(key(i), value(i)).unwrap();
    }
    db.delete_range(key(10)..key(20)).unwrap();
    db.flush().unwrap();
    for i in 100..150 {
        db.put(key(i), value(i)).unwrap();
    }
    let mut b = WriteBatch::new();
    for i in (0..150).step_by(9) {
        b.delete(key(i));
    }
    b.delete_range(key(120)..key(125));
    db.write(b, &WriteOptions { sync: true }).unwrap();
    db.close().unwrap();
}

fn expected_log3(i: u32) -> Option<Vec<u8>> {
    let deleted = (10..20).contains(&i) || (120..125).contains(&i) || i.is_multiple_of(9);
    (i < 150 && !deleted).then(|| value(i))
}

#[test]
fn a_log_version_3_database_opens_with_its_contents() {
    rewrite_fixture_if_asked(
        "log3",
        sedimentdb::internals::record::LOG_FORMAT_VERSION == 3,
        write_log3,
    );
    let (_tmp, dir) = fixture_copy("log3");
    let wals = files_with_ext(&dir, "wal");
    assert_eq!(wals.len(), 1);
    assert_eq!(log_version(&wals[0]), 3);
    let wal = std::fs::read(&wals[0]).unwrap();
    assert_eq!(wal.len() % 4096, 0, "a pre-sized WAL");
    assert_eq!(wal.last(), Some(&0), "ends in zeros");
    let db = Db::open(&dir, Options::default()).unwrap();
    for i in 0..160 {
        assert_eq!(db.get(key(i)).unwrap(), expected_log3(i), "key {i}");
    }
    assert_eq!(db.stats().recovered_zero_tails, 1);
    db.put(key(500), b"after").unwrap();
    db.close().unwrap();
    let db = Db::open(&dir, Options::default()).unwrap();
    assert_eq!(db.get(key(500)).unwrap(), Some(b"after".to_vec()));
    assert_eq!(
        db.iter().count(),
        1 + (0..150).filter(|i| expected_log3(*i).is_some()).count()
    );
}

#[test]
fn a_damaged_log_version_3_wal_fails_with_corruption() {
    let (_tmp, dir) = fixture_copy("log3");
    let wal = files_with_ext(&dir, "wal").remove(0);
    let mut b = std::fs::read(&wal).unwrap();
    b[40] ^= 0x10; // inside the first record, which the close marker vouches for
    std::fs::write(&wal, b).unwrap();
    match Db::open(&dir, Options::default()) {
        Err(err) => assert!(matches!(err, Error::Corruption { .. }), "{err}"),
        Ok(_) => panic!("a damaged synced record was accepted"),
    }
}
