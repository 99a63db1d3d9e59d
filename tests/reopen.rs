//! Flush then reopen; close then reopen; many flushes; data survives each.
mod common;
use common::*;
use std::collections::BTreeMap;

#[test]
fn flush_then_reopen() {
    on_both(|c| {
        let mut model = BTreeMap::new();
        {
            let db = c.open(c.small()).unwrap();
            for i in 0..500 {
                db.put(key(i), value(i, 0)).unwrap();
                model.insert(key(i), value(i, 0));
            }
            db.flush().unwrap();
            assert!(db.stats().tables >= 1);
            db.close().unwrap();
        }
        let db = c.open(c.small()).unwrap();
        assert_matches(&db, &model);
    });
}

#[test]
fn reopen_after_close_replays_the_wal() {
    on_both(|c| {
        let mut model = BTreeMap::new();
        {
            let db = c.open(sedimentdb::Options::default()).unwrap();
            for i in 0..100 {
                db.put(key(i), value(i, 0)).unwrap();
                model.insert(key(i), value(i, 0));
            }
            db.delete(key(7)).unwrap();
            model.remove(&key(7));
            assert_eq!(db.stats().tables, 0, "all in the memtable and WAL");
            db.close().unwrap();
        }
        for _ in 0..3 {
            let db = c.open(sedimentdb::Options::default()).unwrap();
            assert_matches(&db, &model);
            assert_eq!(db.get(key(7)).unwrap(), None);
        }
    });
}

#[test]
fn many_flushes_make_many_tables_and_every_key_stays_right() {
    on_both(|c| {
        let mut model = BTreeMap::new();
        // Compaction off (triggers out of reach), so flushes pile up as level-0 tables.
        let opts = sedimentdb::Options {
            l0_compaction_trigger: 1000,
            l0_slowdown_writes_trigger: 1000,
            l0_stop_writes_trigger: 1000,
            ..c.small()
        };
        let db = c.open(opts.clone()).unwrap();
        for round in 0..3u64 {
            for i in 0..1500u64 {
                let k = (i * 7919 + round * 31) % 2000;
                if (i + round) % 11 == 0 {
                    db.delete(key(k)).unwrap();
                    model.remove(&key(k));
                } else {
                    db.put(key(k), value(k, round)).unwrap();
                    model.insert(key(k), value(k, round));
                }
            }
        }
        db.flush().unwrap();
        let tables = db.stats().tables;
        assert!(tables >= 20, "only {tables} tables");
        assert_matches(&db, &model);
        for k in 2000..2100 {
            assert_eq!(db.get(key(k)).unwrap(), None);
        }
        drop(db);
        let db = c.open(opts).unwrap();
        assert_eq!(db.stats().tables, tables);
        assert_matches(&db, &model);
    });
}

#[test]
fn filters_skip_tables_for_absent_keys() {
    on_both(|c| {
        let db = c.open(c.small()).unwrap();
        for i in 0..2000 {
            db.put(key(i * 2), b"v").unwrap();
        }
        db.flush().unwrap();
        let before = db.stats();
        for i in 0..2000 {
            assert_eq!(db.get(key(i * 2 + 1)).unwrap(), None);
        }
        let after = db.stats();
        let skips = after.filter_skips - before.filter_skips;
        let fps = after.filter_false_positives - before.filter_false_positives;
        assert!(skips > 0, "filters skipped nothing");
        assert!(
            fps * 20 < skips + fps,
            "false positives {fps} of {}",
            skips + fps
        );
    });
}
