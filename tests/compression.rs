//! Block compression on the real filesystem: what compresses shrinks, what does not is stored
//! raw, every codec reads back, per-level codecs apply, damaged compressed blocks are reported,
//! and a build without zstd refuses zstd plainly (run this file without features to see it:
//! `cargo test --release --test compression`).
use sedimentdb::{Compression, Db, Error, Options, WriteBatch, WriteOptions};
use std::path::Path;

/// db_bench's kind of value: half of it random, half a repeat of the first half's bytes.
fn value(i: u64, len: usize) -> Vec<u8> {
    let mut x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let half: Vec<u8> = (0..len / 2)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b'a' + (x % 26) as u8
        })
        .collect();
    let mut v = half.clone();
    v.extend_from_slice(&half);
    v
}

fn noise(i: u64, len: usize) -> Vec<u8> {
    let mut x = i.wrapping_mul(0x2545_f491_4f6c_dd1d) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn key(i: u64) -> Vec<u8> {
    format!("key{i:08}").into_bytes()
}

fn fill(dir: &Path, opts: Options, n: u64, val: fn(u64, usize) -> Vec<u8>) -> Db {
    let db = Db::open(dir, opts).unwrap();
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let mut b = WriteBatch::new();
        for &i in chunk {
            b.put(key(i), val(i, 100));
        }
        db.write(b, &WriteOptions { sync: false }).unwrap();
    }
    db.flush().unwrap();
    db
}

fn check_all(db: &Db, n: u64, val: fn(u64, usize) -> Vec<u8>) {
    for i in (0..n).step_by(7) {
        assert_eq!(db.get(key(i)).unwrap(), Some(val(i, 100)), "key {i}");
    }
    assert_eq!(db.iter().count() as u64, n);
}

#[test]
fn default_lz4_halves_compressible_data_and_reads_it_back() {
    let tmp = tempfile::tempdir().unwrap();
    let n = 20_000;
    let db = fill(tmp.path(), Options::default(), n, value);
    let st = db.stats();
    assert!(
        st.blocks_compressed > 0 && st.blocks_stored_raw == 0,
        "{st:?}"
    );
    assert!(
        (st.table_bytes as f64) < 0.75 * st.table_raw_data_bytes as f64,
        "{} bytes on disk for {} raw",
        st.table_bytes,
        st.table_raw_data_bytes
    );
    // The same data uncompressed, for scale.
    let plain_dir = tmp.path().join("plain");
    let plain = Options {
        compression_per_level: vec![Compression::None],
        ..Options::default()
    };
    let p = fill(&plain_dir, plain, n, value);
    assert!(p.stats().table_bytes > st.table_bytes * 13 / 10);
    assert_eq!(p.stats().blocks_compressed, 0);
    check_all(&db, n, value);
    db.close().unwrap();
    let db = Db::open(tmp.path(), Options::default()).unwrap();
    check_all(&db, n, value);
}

#[test]
fn incompressible_blocks_are_stored_raw() {
    let tmp = tempfile::tempdir().unwrap();
    let db = fill(tmp.path(), Options::default(), 5_000, noise);
    let st = db.stats();
    assert!(st.blocks_stored_raw > 0, "{st:?}");
    assert_eq!(st.blocks_compressed, 0, "{st:?}");
    check_all(&db, 5_000, noise);
}

#[test]
fn a_damaged_compressed_block_is_reported_with_its_file() {
    let tmp = tempfile::tempdir().unwrap();
    let db = fill(tmp.path(), Options::default(), 2_000, value);
    db.close().unwrap();
    let table = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "sst"))
        .unwrap();
    let mut bytes = std::fs::read(&table).unwrap();
    bytes[100] ^= 0x04;
    std::fs::write(&table, &bytes).unwrap();
    let db = Db::open(tmp.path(), Options::default()).unwrap();
    let e = db.iter().find_map(|r| r.err()).expect("the scan must fail");
    assert!(matches!(e, Error::Corruption { offset: 0, .. }), "{e}");
    assert!(e.to_string().contains(".sst"), "{e}");
}

#[cfg(feature = "zstd")]
#[test]
fn zstd_at_the_bottom_and_none_at_the_top() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = Options {
        compression_per_level: vec![Compression::None, Compression::Zstd(3)],
        ..Options::default()
    };
    let n = 20_000;
    let db = fill(tmp.path(), opts.clone(), n, value);
    // Level 0 (the flush): stored raw on purpose, not counted as compression that failed.
    let st = db.stats();
    assert_eq!(
        (st.blocks_compressed, st.blocks_stored_raw),
        (0, 0),
        "{st:?}"
    );
    db.compact_range::<&[u8], _>(..).unwrap();
    let st = db.stats();
    assert!(st.blocks_compressed > 0, "{st:?}");
    assert_eq!(st.levels[0].tables, 0);
    assert!((st.table_bytes as f64) < 0.75 * st.table_raw_data_bytes as f64);
    check_all(&db, n, value);
    db.close().unwrap();
    let db = Db::open(tmp.path(), Options::default()).unwrap();
    check_all(&db, n, value);
}

#[test]
fn zstd_options_need_the_zstd_feature_and_a_valid_level() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = |c| Options {
        compression_per_level: vec![Compression::Lz4, c],
        ..Options::default()
    };
    let r = Db::open(tmp.path(), opts(Compression::Zstd(3)));
    if cfg!(feature = "zstd") {
        r.unwrap().close().unwrap();
    } else {
        let e = r.err().expect("zstd without the feature must be refused");
        assert!(
            matches!(e, Error::InvalidArgument(ref m) if m.contains("`zstd`")),
            "{e}"
        );
    }
    let e = Db::open(tmp.path(), opts(Compression::Zstd(40)))
        .err()
        .expect("a zstd level past 22 must be refused");
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    let empty = Options {
        compression_per_level: Vec::new(),
        ..Options::default()
    };
    assert!(matches!(
        Db::open(tmp.path(), empty),
        Err(Error::InvalidArgument(_))
    ));
}

/// `tests/fixtures/v3-zstd` holds one table of zstd blocks (written by a build with the
/// feature): a build with zstd reads it, one without opens it and refuses its blocks with
/// `Error::Unsupported`, naming the table.
#[test]
fn a_zstd_table_reads_or_is_refused_as_unsupported() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v3-zstd");
    #[cfg(feature = "zstd")]
    if std::env::var("SEDIMENTDB_WRITE_FIXTURES").is_ok() {
        let _ = std::fs::remove_dir_all(&src);
        let opts = Options {
            compression_per_level: vec![Compression::Zstd(3)],
            ..Options::default()
        };
        fill(&src, opts, 300, value).close().unwrap();
        let _ = std::fs::remove_file(src.join("LOCK"));
    }
    let tmp = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(&src).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), tmp.path().join(e.file_name())).unwrap();
    }
    let db = Db::open(tmp.path(), Options::default()).unwrap();
    let r = db.get(key(5));
    if cfg!(feature = "zstd") {
        assert_eq!(r.unwrap(), Some(value(5, 100)));
        assert_eq!(db.iter().count(), 300);
    } else {
        let e = r.expect_err("a zstd block without zstd must be refused");
        assert!(matches!(e, Error::Unsupported { .. }), "{e}");
        assert!(
            e.to_string().contains(".sst") && e.to_string().contains("zstd"),
            "{e}"
        );
    }
}

/// WAL compression (`Options::wal_compression`): LZ4 shrinks the WAL of compressible puts and
/// leaves noise raw; a WAL reads back whatever the reader's option says, and zstd is refused.
#[test]
fn wal_compression_shrinks_the_wal_and_any_build_replays_it() {
    let write = |dir: &Path, c: Compression, val: fn(u64, usize) -> Vec<u8>| {
        let opts = Options {
            wal_compression: c,
            ..Options::default()
        };
        let db = Db::open(dir, opts).unwrap();
        for i in 0..2000 {
            let mut b = WriteBatch::new();
            b.put(key(i), val(i, 100));
            db.write(b, &WriteOptions { sync: false }).unwrap();
        }
        let st = db.stats();
        db.close().unwrap();
        st
    };
    let (lz4, raw, loud) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let a = write(lz4.path(), Compression::Lz4, value);
    let b = write(raw.path(), Compression::None, value);
    let c = write(loud.path(), Compression::Lz4, noise);
    assert_eq!(
        (a.wal_records_compressed, b.wal_records_compressed),
        (2000, 0)
    );
    assert!(
        (a.wal_bytes as f64) < 0.8 * b.wal_bytes as f64,
        "LZ4 WAL {} bytes, raw {}",
        a.wal_bytes,
        b.wal_bytes
    );
    // Random bytes do not shrink by an eighth: stored as they are.
    assert_eq!(c.wal_records_compressed, 0, "{c}");
    // Each reopens (replaying its WAL) under the other setting, with every key.
    for (dir, other, compressed) in [(&lz4, Compression::None, 2000), (&raw, Compression::Lz4, 0)] {
        let opts = Options {
            wal_compression: other,
            ..Options::default()
        };
        let db = Db::open(dir.path(), opts).unwrap();
        let st = db.stats();
        assert_eq!(st.recovered_compressed_records, compressed, "{st}");
        check_all(&db, 2000, value);
        db.close().unwrap();
    }
    let zstd = Options {
        wal_compression: Compression::Zstd(3),
        ..Options::default()
    };
    let e = Db::open(lz4.path(), zstd).err().expect("zstd WAL refused");
    assert!(
        matches!(e, Error::InvalidArgument(ref m) if m.contains("wal_compression")),
        "{e}"
    );
}
