//! Bad keys and values, foreign directories, newer formats and a second open all fail clearly
//! and write nothing.
mod common;
use common::*;
use sedimentdb::{Error, Options, WriteBatch, WriteOptions};

#[test]
fn oversized_and_empty_keys_are_refused_and_nothing_is_written() {
    on_both(|c| {
        let opts = Options {
            max_key_size_bytes: 100,
            max_value_size_bytes: 1000,
            ..c.small()
        };
        let db = c.open(opts).unwrap();
        let before = db.stats();
        let e = db.put(b"", b"v").unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
        assert!(e.to_string().contains("empty key"), "{e}");
        let e = db.put(vec![b'k'; 101], b"v").unwrap_err();
        assert!(
            e.to_string().contains("101") && e.to_string().contains("100"),
            "{e}"
        );
        let e = db.put(b"k", vec![0u8; 1001]).unwrap_err();
        assert!(
            e.to_string().contains("1001") && e.to_string().contains("1000"),
            "{e}"
        );
        assert!(matches!(db.delete(b""), Err(Error::InvalidArgument(_))));
        // A batch with one bad entry writes none of its entries.
        let mut b = WriteBatch::new();
        b.put(b"good", b"1").put(vec![b'k'; 101], b"2");
        assert!(matches!(
            db.write(b, &WriteOptions::default()),
            Err(Error::InvalidArgument(_))
        ));
        assert_eq!(db.get(b"good").unwrap(), None);
        let after = db.stats();
        assert_eq!(
            before.wal_records, after.wal_records,
            "nothing reached the WAL"
        );
        // Limits at the edge are accepted.
        db.put(vec![b'k'; 100], vec![0u8; 1000]).unwrap();
    });
}

#[test]
fn default_limits_are_64_kib_keys_and_256_mib_values() {
    let o = Options::default();
    assert_eq!(o.max_key_size_bytes, 64 << 10);
    assert_eq!(o.max_value_size_bytes, 256 << 20);
    let c = Case::sim();
    let db = c.open(Options::default()).unwrap();
    assert!(db.put(vec![1u8; 64 << 10], b"v").is_ok());
    assert!(matches!(
        db.put(vec![1u8; (64 << 10) + 1], b"v"),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn a_directory_that_is_not_a_database_is_refused_untouched() {
    // StdFs: a directory holding someone else's file.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), b"hello").unwrap();
    let e = sedimentdb::Db::open(dir.path(), Options::default())
        .err()
        .expect("must fail");
    assert!(matches!(e, Error::NotADatabase { .. }), "{e}");
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "nothing was created: {names:?}");
    // A plain file as the path.
    let e = sedimentdb::Db::open(dir.path().join("notes.txt"), Options::default())
        .err()
        .expect("must fail");
    assert!(matches!(e, Error::NotADatabase { .. }), "{e}");
    // A CURRENT file that is not ours.
    let dir2 = tempfile::tempdir().unwrap();
    std::fs::write(dir2.path().join("CURRENT"), b"MANIFEST-000001\n").unwrap();
    let e = sedimentdb::Db::open(dir2.path(), Options::default())
        .err()
        .expect("must fail");
    assert!(matches!(e, Error::NotADatabase { .. }), "{e}");
    assert_eq!(std::fs::read_dir(dir2.path()).unwrap().count(), 1);
}

#[test]
fn an_unknown_format_version_is_refused_untouched() {
    let c = Case::std();
    c.open(Options::default()).unwrap().close().unwrap();
    let current = c.path.join("CURRENT");
    let mut bytes = std::fs::read(&current).unwrap();
    bytes[8..12].copy_from_slice(&99u32.to_le_bytes());
    let crc = crc32(&bytes[0..20]);
    bytes[20..24].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&current, &bytes).unwrap();
    let listing = |p: &std::path::Path| {
        let mut v: Vec<_> = std::fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        v.sort();
        v
    };
    let before = listing(&c.path);
    let e = c.open(Options::default()).err().expect("must fail");
    match &e {
        Error::UnsupportedVersion {
            found, supported, ..
        } => {
            assert_eq!((*found, *supported), (99, 1));
        }
        other => panic!("unexpected {other}"),
    }
    assert!(e.to_string().contains("99"), "{e}");
    assert_eq!(before, listing(&c.path));
    assert_eq!(std::fs::read(&current).unwrap(), bytes);
}

fn crc32(b: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(b);
    h.finalize()
}

#[test]
fn a_second_open_of_the_same_directory_is_locked() {
    on_both(|c| {
        let db = c.open(c.small()).unwrap();
        let e = c.open(c.small()).err().expect("second open must fail");
        assert!(matches!(e, Error::Locked { .. }), "{e}");
        db.close().unwrap();
        // Released on close.
        c.open(c.small()).unwrap();
    });
}

#[test]
fn missing_directory_without_create_if_missing_fails() {
    on_both(|c| {
        let opts = Options {
            create_if_missing: false,
            ..c.small()
        };
        assert!(matches!(c.open(opts), Err(Error::InvalidArgument(_))));
    });
}

#[test]
fn bad_options_are_refused() {
    let c = Case::sim();
    for o in [
        Options {
            memtable_size_bytes: 10,
            ..Options::default()
        },
        Options {
            block_restart_interval: 0,
            ..Options::default()
        },
        Options {
            bloom_bits_per_key: 1000,
            ..Options::default()
        },
        Options {
            max_key_size_bytes: 0,
            ..Options::default()
        },
    ] {
        assert!(matches!(c.open(o), Err(Error::InvalidArgument(_))));
    }
}

#[test]
fn a_directory_with_tables_but_no_current_is_corruption_and_is_left_alone() {
    let c = Case::std();
    c.open(Options::default()).unwrap().close().unwrap();
    let db = c.open(Options::default()).unwrap();
    db.put(b"k", b"v").unwrap();
    db.flush().unwrap();
    db.close().unwrap();
    std::fs::remove_file(c.path.join("CURRENT")).unwrap();
    let before: Vec<_> = std::fs::read_dir(&c.path)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let e = c.open(Options::default()).err().expect("must fail");
    assert!(
        matches!(e, Error::Corruption { .. }) && e.to_string().contains("CURRENT is missing"),
        "{e}"
    );
    let after: Vec<_> = std::fs::read_dir(&c.path)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(before.len(), after.len(), "files were removed");
}
