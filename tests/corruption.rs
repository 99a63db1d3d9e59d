//! Damaged files are reported as `Error::Corruption` naming the file and offset, never read as
//! valid data; a torn unsynced WAL tail is cut without error.
mod common;
use common::*;
use sedimentdb::{Background, Db, Error, Options, WriteBatch, WriteOptions};
use sedimentdb_sim::World;
use std::path::Path;

fn opts() -> Options {
    Options {
        memtable_size_bytes: 64 << 10,
        block_size_bytes: 512,
        background: Background::Inline,
        ..Options::default()
    }
}

/// Where the records of the WAL at `path` end (a pre-sized WAL has zeros after them).
fn records_end(w: &World, path: &str) -> usize {
    use sedimentdb::internals::record::{self, LogEnd};
    let data = w.fs.read_file(Path::new(path)).unwrap();
    let n: u64 = path
        .trim_start_matches("/db/")
        .trim_end_matches(".wal")
        .parse()
        .unwrap();
    let end = record::replay(&data, Path::new(path), *b"SDBWAL\0\0", n, true, |_, _| {
        Ok(())
    });
    match end.unwrap() {
        LogEnd::Zeros { offset } => offset as usize,
        LogEnd::Clean => data.len(),
        LogEnd::TornTail { offset, .. } => panic!("torn at {offset}"),
    }
}

fn files(w: &World, suffix: &str) -> Vec<String> {
    use sedimentdb::Fs;
    w.fs.list_dir(Path::new("/db"))
        .unwrap()
        .into_iter()
        .filter(|n| n.ends_with(suffix))
        .collect()
}

#[test]
fn every_bit_flip_in_a_table_is_caught_or_harmless() {
    let w = World::new();
    let db = Db::open_with(w.env(), "/db", opts()).unwrap();
    for i in 0..300 {
        db.put(key(i), value(i, 0)).unwrap();
    }
    db.flush().unwrap();
    db.close().unwrap();
    let table = format!("/db/{}", files(&w, ".sst")[0]);
    let len = w.fs.read_file(Path::new(&table)).unwrap().len();
    let mut caught = 0;
    // Every 7th byte, one bit each: the whole file is covered by checksums.
    for off in (0..len).step_by(7) {
        assert!(w.fs.flip_bit(Path::new(&table), off, (off % 8) as u8));
        let outcome = Db::open_with(w.env(), "/db", opts()).and_then(|db| {
            for i in 0..300 {
                match db.get(key(i))? {
                    Some(v) if v == value(i, 0) => {}
                    other => panic!("offset {off}: wrong data for key {i}: {other:?}"),
                }
            }
            let n = db.iter().count();
            assert_eq!(n, 300);
            Ok(())
        });
        match outcome {
            Err(Error::Corruption { file, .. }) => {
                assert_eq!(file, Path::new(&table), "offset {off}");
                caught += 1;
            }
            Err(e) => panic!("offset {off}: unexpected error {e}"),
            Ok(()) => panic!("offset {off}: a flipped bit went unnoticed"),
        }
        assert!(w.fs.flip_bit(Path::new(&table), off, (off % 8) as u8));
    }
    assert!(caught > 10);
}

#[test]
fn damage_to_a_synced_wal_record_is_corruption_naming_file_and_offset() {
    let w = World::new();
    let db = Db::open_with(w.env(), "/db", opts()).unwrap();
    for i in 0..20 {
        db.put(key(i), value(i, 0)).unwrap();
    }
    w.fs.crash(); // keep the WAL as it is on disk: every record synced
    drop(db);
    let wal = format!("/db/{}", files(&w, ".wal")[0]);
    // Byte 60 is inside the first record (file header 24 bytes, record header 24 bytes).
    assert!(w.fs.flip_bit(Path::new(&wal), 60, 3));
    let e = Db::open_with(w.env(), "/db", opts())
        .err()
        .expect("must fail");
    match &e {
        Error::Corruption { file, offset, .. } => {
            assert_eq!(file, Path::new(&wal));
            assert_eq!(*offset, 24);
        }
        other => panic!("unexpected {other}"),
    }
    assert!(
        e.to_string().contains(&wal) && e.to_string().contains("offset 24"),
        "{e}"
    );
}

#[test]
fn a_torn_unsynced_wal_tail_is_cut() {
    let w = World::new();
    let db = Db::open_with(w.env(), "/db", opts()).unwrap();
    for i in 0..10 {
        db.put(key(i), value(i, 0)).unwrap();
    }
    let mut b = WriteBatch::new();
    b.put(b"unsynced", b"x");
    db.write(b, &WriteOptions { sync: false }).unwrap();
    // Process crash: the unsynced record is in the page cache; then damage its last byte as a
    // torn write would.
    w.fs.process_crash();
    drop(db);
    let wal = format!("/db/{}", files(&w, ".wal")[0]);
    let len = records_end(&w, &wal);
    assert!(w.fs.flip_bit(Path::new(&wal), len - 1, 0));
    let db = Db::open_with(w.env(), "/db", opts()).unwrap();
    assert!(db.stats().recovered_torn_bytes > 0);
    assert_eq!(db.get(b"unsynced").unwrap(), None);
    for i in 0..10 {
        assert_eq!(db.get(key(i)).unwrap(), Some(value(i, 0)));
    }
}

#[test]
fn a_damaged_manifest_or_current_fails_open() {
    for target in ["MANIFEST-", "CURRENT"] {
        let w = World::new();
        let db = Db::open_with(w.env(), "/db", opts()).unwrap();
        db.put(b"a", b"1").unwrap();
        db.flush().unwrap();
        db.close().unwrap();
        let name = files(&w, "")
            .into_iter()
            .find(|n| n.starts_with(target))
            .unwrap();
        let p = format!("/db/{name}");
        assert!(w.fs.flip_bit(
            Path::new(&p),
            30.min(w.fs.read_file(Path::new(&p)).unwrap().len() - 1),
            1
        ));
        let e = Db::open_with(w.env(), "/db", opts())
            .err()
            .expect("must fail");
        assert!(matches!(e, Error::Corruption { .. }), "{target}: {e}");
        assert!(e.to_string().contains(&name), "{e}");
    }
}

#[test]
fn a_missing_table_is_corruption() {
    let w = World::new();
    let db = Db::open_with(w.env(), "/db", opts()).unwrap();
    db.put(b"a", b"1").unwrap();
    db.flush().unwrap();
    db.close().unwrap();
    let t = format!("/db/{}", files(&w, ".sst")[0]);
    sedimentdb::Fs::remove_file(&*w.fs, Path::new(&t)).unwrap();
    let e = Db::open_with(w.env(), "/db", opts())
        .err()
        .expect("must fail");
    assert!(
        matches!(e, Error::Corruption { .. }) && e.to_string().contains("missing"),
        "{e}"
    );
}

#[test]
fn damage_to_the_last_write_before_a_clean_close_is_corruption() {
    let w = World::new();
    let db = Db::open_with(w.env(), "/db", opts()).unwrap();
    for i in 0..10 {
        db.put(key(i), value(i, 0)).unwrap();
    }
    db.close().unwrap(); // appends a synced marker that vouches for every record before it
    let wal = format!("/db/{}", files(&w, ".wal")[0]);
    let len = records_end(&w, &wal);
    // The marker is the last 24 bytes; just before it lies the last put's payload.
    assert!(w.fs.flip_bit(Path::new(&wal), len - 24 - 3, 5));
    let e = Db::open_with(w.env(), "/db", opts())
        .err()
        .expect("must fail");
    assert!(matches!(e, Error::Corruption { .. }), "{e}");
}

#[test]
fn damage_to_the_last_manifest_edit_is_corruption() {
    let w = World::new();
    let db = Db::open_with(w.env(), "/db", opts()).unwrap();
    db.put(b"a", b"1").unwrap();
    db.flush().unwrap(); // edit: add the table; then an empty edit vouching for it
    db.put(b"b", b"2").unwrap();
    w.fs.crash();
    drop(db);
    let m = format!(
        "/db/{}",
        files(&w, "")
            .into_iter()
            .find(|n| n.starts_with("MANIFEST-"))
            .unwrap()
    );
    let len = w.fs.read_file(Path::new(&m)).unwrap().len();
    // The last 24 bytes are the marker; the flush's edit ends just before it.
    assert!(w.fs.flip_bit(Path::new(&m), len - 24 - 2, 1));
    let e = Db::open_with(w.env(), "/db", opts())
        .err()
        .expect("must fail");
    assert!(matches!(e, Error::Corruption { .. }), "{e}");
}
