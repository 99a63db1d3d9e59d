//! `Background::Manual`: nothing runs until the embedder calls `maintenance_step`, so several
//! memtables and WALs wait; a writer that finds `max_immutable_memtables` waiting flushes one
//! itself; a reopen replays every waiting WAL. On both backends.
mod common;

use common::Case;
use sedimentdb::{Background, Options, WriteBatch, WriteOptions};

fn manual(case: &Case) -> Options {
    Options {
        memtable_size_bytes: 4 << 10,
        max_immutable_memtables: 3,
        background: Background::Manual,
        ..case.small()
    }
}

fn put_many(db: &sedimentdb::Db, n: u32) {
    for i in 0..n {
        let mut b = WriteBatch::new();
        b.put(format!("key{i:05}"), vec![b'v'; 200]);
        db.write(b, &WriteOptions { sync: false }).expect("put");
    }
}

#[test]
fn maintenance_runs_only_when_asked_and_writers_make_room() {
    for case in [Case::std(), Case::sim()] {
        let db = case.open(manual(&case)).expect("open");
        put_many(&db, 40);
        let st = db.stats();
        assert_eq!(
            st.flushes,
            0,
            "{}: nothing flushed yet: {st:?}",
            case.name()
        );
        assert!(
            st.immutable_memtables >= 2,
            "{}: memtables wait: {st:?}",
            case.name()
        );
        put_many(&db, 440);
        let st = db.stats();
        assert!(
            st.write_stalls > 0,
            "{}: a writer made room: {st:?}",
            case.name()
        );
        assert_eq!(
            st.flushes,
            st.write_stalls,
            "{}: only stalled writers flushed",
            case.name()
        );
        assert!(st.immutable_memtables <= 3, "{}: {st:?}", case.name());
        while db.maintenance_step().expect("step") {}
        let st = db.stats();
        assert_eq!(st.immutable_memtables, 0, "{}: {st:?}", case.name());
        assert!(st.flushes > 0);
        for i in (0..440).step_by(37) {
            assert!(
                db.get(format!("key{i:05}")).expect("get").is_some(),
                "{}",
                case.name()
            );
        }
        db.close().expect("close");
    }
}

#[test]
fn a_reopen_replays_every_waiting_wal() {
    for case in [Case::std(), Case::sim()] {
        let db = case.open(manual(&case)).expect("open");
        put_many(&db, 40);
        let waiting = db.stats().immutable_memtables;
        assert!(waiting >= 2, "{}: {waiting} memtables wait", case.name());
        db.close().expect("close");
        let db = case.open(manual(&case)).expect("reopen");
        let st = db.stats();
        assert!(
            st.recovered_wals >= 3,
            "{}: the waiting memtables' WALs and the active one replayed: {st:?}",
            case.name()
        );
        assert_eq!(db.iter().count(), 40, "{}", case.name());
    }
}

#[test]
fn write_group_gives_each_writer_its_outcome_and_shares_records() {
    for case in [Case::std(), Case::sim()] {
        let db = case.open(manual(&case)).expect("open");
        let mut writes = Vec::new();
        for i in 0..5 {
            let mut b = WriteBatch::new();
            b.put(format!("g{i}"), b"x");
            writes.push((b, i % 2 == 0));
        }
        writes.push((WriteBatch::new(), true)); // empty: Ok, nothing written
        let mut bad = WriteBatch::new();
        bad.put(b"", b"empty key");
        writes.push((bad, true));
        let before = db.stats().wal_records;
        let results = db.write_group(writes);
        assert_eq!(results.len(), 7);
        assert!(
            results[..6].iter().all(|r| r.is_ok()),
            "{}: {results:?}",
            case.name()
        );
        assert!(matches!(
            results[6],
            Err(sedimentdb::Error::InvalidArgument(_))
        ));
        assert_eq!(
            db.stats().wal_records - before,
            1,
            "{}: one record",
            case.name()
        );
        assert_eq!(db.stats().commit_groups_by_size[3], 1, "{}", case.name());
        db.close().expect("close");
        let db = case.open(manual(&case)).expect("reopen");
        assert_eq!(db.iter().count(), 5, "{}", case.name());
    }
}
