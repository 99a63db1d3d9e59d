//! The engine's events through the `log` facade, caught by a test logger: open and recovery,
//! flushes, compactions, stalls, the switch to read-only, and corruption found.
use sedimentdb::{Background, Db, Options, WriteBatch, WriteOptions};
use sedimentdb_sim::{SyncFailure, World};
use std::sync::Mutex;

struct Catch;
static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

impl log::Log for Catch {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, r: &log::Record) {
        LINES
            .lock()
            .unwrap()
            .push(format!("{} {}", r.level(), r.args()));
    }
    fn flush(&self) {}
}

fn take() -> Vec<String> {
    std::mem::take(&mut *LINES.lock().unwrap())
}

fn has(lines: &[String], level: &str, words: &[&str]) -> bool {
    lines
        .iter()
        .any(|l| l.starts_with(level) && words.iter().all(|w| l.contains(w)))
}

#[test]
fn every_kind_of_event_is_logged() {
    log::set_logger(&Catch).unwrap();
    log::set_max_level(log::LevelFilter::Info);

    // Flushes, compactions, a stall, open.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let opts = Options {
        memtable_size_bytes: 16 << 10,
        background: Background::Manual,
        max_immutable_memtables: 1,
        ..Options::default()
    };
    let db = Db::open(&dir, opts.clone()).unwrap();
    let l = take();
    assert!(
        has(&l, "INFO", &["opened", "WALs replayed", "tables"]),
        "{l:?}"
    );
    for i in 0..2000u32 {
        let mut b = WriteBatch::new();
        b.put(format!("k{i:05}"), [7u8; 64]);
        db.write(b, &WriteOptions { sync: false }).unwrap();
    }
    db.flush().unwrap();
    db.compact_range::<&[u8], _>(..).unwrap();
    let l = take();
    assert!(
        has(
            &l,
            "INFO",
            &["flushed", "into table", "at level 0", "entries"]
        ),
        "{l:?}"
    );
    assert!(
        has(&l, "INFO", &["compacted level 0", "bytes", "ms"]) || has(&l, "INFO", &["moved table"]),
        "{l:?}"
    );
    assert!(
        has(&l, "WARN", &["writes stalled", "max_immutable_memtables"]),
        "{l:?}"
    );
    let st = db.stats();
    assert!(
        st.flush_latency.count > 0 && st.write_latency.count == 2000,
        "{st}"
    );
    // The values compress: LZ4 shrinks every WAL record, so the WAL holds fewer bytes than
    // the user wrote, and the tables (LZ4 too) fewer again.
    assert!(
        st.wal_records_compressed == st.wal_records && st.wal_bytes < st.user_bytes,
        "{st}"
    );
    let tables: u64 = st.levels.iter().map(|l| l.bytes_written).sum();
    let amp = (st.wal_bytes + tables) as f64 / st.user_bytes as f64;
    assert!((st.write_amplification() - amp).abs() < 1e-9, "{st}");
    assert!(
        st.levels
            .iter()
            .any(|l| l.bytes_written > 0 && l.bytes_read > 0),
        "{st}"
    );
    db.close().unwrap();

    // A torn tail cut at open: junk after the last record of the newest WAL.
    let db = Db::open(&dir, opts.clone()).unwrap();
    db.put("x", "y").unwrap();
    db.close().unwrap();
    let wal = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .max()
        .unwrap();
    let n: u64 = wal.file_stem().unwrap().to_str().unwrap().parse().unwrap();
    let mut bytes = std::fs::read(&wal).unwrap();
    let end = sedimentdb::internals::record::replay(
        &bytes,
        &wal,
        sedimentdb::internals::wal::WAL_MAGIC,
        n,
        true,
        |_, _| Ok(()),
    )
    .unwrap();
    let sedimentdb::internals::record::LogEnd::Zeros { offset } = end else {
        panic!("a pre-sized WAL ends at zeros: {end:?}")
    };
    bytes[offset as usize..offset as usize + 8].copy_from_slice(b"garbage!");
    std::fs::write(&wal, &bytes).unwrap();
    take();
    let db = Db::open(&dir, opts.clone()).unwrap();
    let l = take();
    assert!(
        has(&l, "WARN", &["torn unsynced tail", "offset", ".wal"]),
        "{l:?}"
    );
    db.close().unwrap();

    // Corruption found by a read, naming the file.
    let table = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "sst"))
        .unwrap();
    let mut b = std::fs::read(&table).unwrap();
    b[10] ^= 0x40;
    std::fs::write(&table, b).unwrap();
    let db = Db::open(&dir, opts).unwrap();
    take();
    assert!(db.get("k00000").is_err());
    let l = take();
    assert!(
        has(&l, "ERROR", &["corruption found", ".sst", "offset"]),
        "{l:?}"
    );
    drop(db);

    // The switch to read-only, with its cause.
    let w = World::new();
    let db = Db::open_with(w.env(), "/db", Options::default()).unwrap();
    w.fs.fail_next_sync(SyncFailure::KeepPages);
    assert!(db.put("a", "b").is_err());
    let l = take();
    assert!(has(&l, "ERROR", &["read-only", "fsync"]), "{l:?}");
}
