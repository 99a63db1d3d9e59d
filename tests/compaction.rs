//! Leveled compaction: data stays right, levels stay disjoint and bounded, tombstones leave
//! only after their grace period and only from the last level holding their key, and a long
//! scan keeps its tables alive.
mod common;
use common::*;
use sedimentdb::{Background, Db, Options, RawValue};
use sedimentdb_sim::World;
use std::collections::BTreeMap;
use std::time::Duration;

fn compacting(c: &Case) -> Options {
    Options {
        l0_compaction_trigger: 2,
        level1_size_bytes: 16 << 10,
        table_size_bytes: 8 << 10,
        ..c.small()
    }
}

#[test]
fn overwrites_and_deletes_stay_right_through_compaction() {
    on_both(|c| {
        let db = c.open(compacting(c)).unwrap();
        let mut model = BTreeMap::new();
        for round in 0..6u64 {
            for i in 0..1500u64 {
                let k = (i * 31 + round * 7) % 900;
                if (i + round) % 7 == 0 {
                    db.delete(key(k)).unwrap();
                    model.remove(&key(k));
                } else {
                    db.put(key(k), value(k, round)).unwrap();
                    model.insert(key(k), value(k, round));
                }
            }
        }
        db.flush().unwrap();
        db.compact().unwrap();
        let s = db.stats();
        assert!(s.compactions > 0, "{s:?}");
        assert!(
            s.levels[0].tables < 2,
            "level 0 still holds {} tables",
            s.levels[0].tables
        );
        assert!(s.levels.iter().skip(1).any(|l| l.tables > 0), "{s:?}");
        assert_matches(&db, &model);
        drop(db);
        let db = c.open(compacting(c)).unwrap();
        assert_matches(&db, &model);
    });
}

#[test]
fn full_compaction_reclaims_space_of_overwrites() {
    on_both(|c| {
        let opts = Options {
            l0_compaction_trigger: 1000,
            l0_slowdown_writes_trigger: 1000,
            l0_stop_writes_trigger: 1000,
            ..compacting(c)
        };
        let db = c.open(opts).unwrap();
        for round in 0..5u64 {
            for i in 0..400u64 {
                db.put(key(i), value(i, round)).unwrap();
            }
            db.flush().unwrap();
        }
        let before = db.stats();
        db.compact_range::<&[u8], _>(..).unwrap();
        let after = db.stats();
        assert!(
            after.table_bytes * 3 < before.table_bytes,
            "{} -> {} bytes",
            before.table_bytes,
            after.table_bytes
        );
        assert_eq!(after.table_entries, 400);
        assert!(after.bytes_reclaimed > 0);
        assert_eq!(after.levels[0].tables, 0);
        for i in 0..400 {
            assert_eq!(db.get(key(i)).unwrap(), Some(value(i, 4)));
        }
    });
}

fn sim_db(w: &World, grace: Duration) -> Db {
    Db::open_with(
        w.env(),
        "/db",
        Options {
            memtable_size_bytes: 4 << 10,
            block_size_bytes: 256,
            background: Background::Inline,
            l0_compaction_trigger: 1000,
            l0_slowdown_writes_trigger: 1000,
            l0_stop_writes_trigger: 1000,
            tombstone_grace: grace,
            ..Options::default()
        },
    )
    .unwrap()
}

fn raw_tombstones(db: &Db) -> BTreeMap<Vec<u8>, u64> {
    db.scan_raw::<&[u8], _>(..)
        .map(|e| e.unwrap())
        .filter_map(|e| match e.value {
            RawValue::Tombstone { deleted_at_ms } => Some((e.key, deleted_at_ms)),
            RawValue::Put(_) | RawValue::RangeTombstone { .. } => None,
        })
        .collect()
}

#[test]
fn tombstones_stay_through_the_grace_period_and_then_go() {
    let w = World::new();
    let grace = Duration::from_secs(3600);
    let db = sim_db(&w, grace);
    for i in 0..100 {
        db.put(key(i), value(i, 0)).unwrap();
    }
    db.compact_range::<&[u8], _>(..).unwrap(); // the values sit in the last level
    let t0 = sedimentdb::Clock::now_ms(&*w.clock);
    for i in 0..50 {
        db.delete(key(i)).unwrap();
    }
    // Before the grace period has passed, a full compaction keeps every tombstone.
    w.clock.advance(3_599_000);
    db.compact_range::<&[u8], _>(..).unwrap();
    let tombs = raw_tombstones(&db);
    assert_eq!(tombs.len(), 50);
    assert!(tombs.values().all(|t| *t == t0));
    assert_eq!(db.stats().table_tombstones, 50);
    for i in 0..50 {
        assert_eq!(db.get(key(i)).unwrap(), None);
    }
    // A backward jump only delays expiry.
    w.clock.advance(2_000);
    w.clock.rewind(10_000);
    db.compact_range::<&[u8], _>(..).unwrap();
    assert_eq!(raw_tombstones(&db).len(), 50);
    // Past the grace period, a full compaction removes them from every file, and the deleted
    // values never come back.
    w.clock.advance(20_000);
    db.compact_range::<&[u8], _>(..).unwrap();
    assert!(raw_tombstones(&db).is_empty());
    let s = db.stats();
    assert_eq!(s.table_tombstones, 0);
    assert_eq!(s.tombstones_dropped, 50);
    for i in 0..100 {
        assert_eq!(
            db.get(key(i)).unwrap(),
            (i >= 50).then(|| value(i, 0)),
            "key {i}"
        );
    }
    drop(db);
    let db = sim_db(&w, grace);
    assert_eq!(db.iter().count(), 50);
}

#[test]
fn an_expired_tombstone_above_an_older_value_in_a_deeper_level_is_kept() {
    let w = World::new();
    let opts = Options {
        memtable_size_bytes: 4 << 10,
        block_size_bytes: 256,
        background: Background::Inline,
        l0_compaction_trigger: 1,
        level1_size_bytes: 1024,
        level_size_multiplier: 1000,
        table_size_bytes: 1024,
        tombstone_grace: Duration::ZERO,
        ..Options::default()
    };
    let db = Db::open_with(w.env(), "/db", opts).unwrap();
    // Old values pushed below level 1 (level 1's target is tiny).
    for i in 0..200 {
        db.put(key(i), value(i, 0)).unwrap();
    }
    db.flush().unwrap();
    db.compact().unwrap();
    let s = db.stats();
    assert!(
        s.levels.iter().skip(2).any(|l| l.tables > 0),
        "nothing below level 1: {s:?}"
    );
    // Delete every key; each flush compacts level 0 into level 1 at once, above old values
    // that did not take part. The tombstones have expired (zero grace) but must stay there.
    w.clock.advance(1000);
    for i in 0..200 {
        db.delete(key(i)).unwrap();
        if i % 40 == 39 {
            db.flush().unwrap();
            for j in 0..200 {
                assert_eq!(
                    db.get(key(j)).unwrap().is_some(),
                    j > i,
                    "key {j} after deleting 0..={i}"
                );
            }
        }
    }
    assert_eq!(db.iter().count(), 0);
    // A full compaction meets the old values: now both go.
    db.compact_range::<&[u8], _>(..).unwrap();
    assert_eq!(db.iter().count(), 0, "a deleted value came back");
    assert!(
        raw_tombstones(&db).is_empty(),
        "an expired tombstone stayed after a full compaction"
    );
    assert_eq!(db.stats().table_entries, 0);
}

#[test]
fn a_long_scan_keeps_its_tables_until_it_ends() {
    let w = World::new();
    // Any read of a removed file fails: the scan below proves its tables stay.
    w.fs.set_strict_unlink(true);
    let db = sim_db(&w, Duration::ZERO);
    for i in 0..300 {
        db.put(key(i), value(i, 0)).unwrap();
    }
    db.flush().unwrap();
    let tables_before: Vec<String> =
        w.fs.names(std::path::Path::new("/db"))
            .into_iter()
            .filter(|n| n.ends_with(".sst"))
            .collect();
    assert!(!tables_before.is_empty());
    let mut scan = db.iter();
    let first = scan.next().unwrap().unwrap();
    for i in 0..300 {
        db.put(key(i), value(i, 1)).unwrap();
    }
    db.compact_range::<&[u8], _>(..).unwrap();
    assert!(db.stats().obsolete_tables_pending > 0);
    let names = w.fs.names(std::path::Path::new("/db"));
    for t in &tables_before {
        assert!(names.contains(t), "{t} was deleted while a scan held it");
    }
    let rest: Vec<_> = scan.map(|r| r.unwrap()).collect();
    assert_eq!(first.1, value(0, 0));
    assert_eq!(rest.len(), 299);
    assert!(rest.iter().all(|(k, v)| v.starts_with(
        format!(
            "value-{}-0",
            String::from_utf8_lossy(&k[3..]).parse::<u64>().unwrap()
        )
        .as_bytes()
    )));
    // The scan is gone: so are the files only it held.
    assert_eq!(db.stats().obsolete_tables_pending, 0);
    let names = w.fs.names(std::path::Path::new("/db"));
    for t in &tables_before {
        assert!(!names.contains(t), "{t} outlived its last reader");
    }
}

#[test]
fn background_threads_keep_level_0_bounded_under_heavy_writes() {
    let c = Case::std();
    let opts = Options {
        memtable_size_bytes: 4 << 10,
        block_size_bytes: 256,
        l0_compaction_trigger: 2,
        l0_slowdown_writes_trigger: 3,
        l0_stop_writes_trigger: 4,
        level1_size_bytes: 32 << 10,
        table_size_bytes: 16 << 10,
        compaction_threads: 2,
        ..Options::default()
    };
    let db = std::sync::Arc::new(c.open(opts).unwrap());
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let db = db.clone();
            s.spawn(move || {
                for i in 0..1500u64 {
                    let k = t * 10_000 + i;
                    db.put(key(k), value(k, 0)).unwrap();
                }
            });
        }
    });
    let st = db.stats();
    assert!(
        st.levels[0].tables <= 4 + 2,
        "level 0 grew to {}",
        st.levels[0].tables
    );
    assert!(st.compactions > 0);
    for t in 0..4u64 {
        for i in (0..1500u64).step_by(37) {
            let k = t * 10_000 + i;
            assert_eq!(db.get(key(k)).unwrap(), Some(value(k, 0)));
        }
    }
    assert_eq!(db.iter().count(), 6000);
}

/// At the bottom, compaction writes values every snapshot sees with sequence number 0, but not
/// a value an older range tombstone of its table covers (the tombstone would hide it), nor a
/// version a live snapshot does not see (it would read it).
#[test]
fn bottom_values_lose_their_sequence_numbers_and_stay_right() {
    on_both(|c| {
        let db = c.open(compacting(c)).unwrap();
        for i in 0..600 {
            db.put(key(i), value(i, 0)).unwrap();
        }
        let snap = db.snapshot();
        for i in 0..300 {
            db.put(key(i), value(i, 1)).unwrap();
        }
        db.delete_range(key(100)..key(200)).unwrap();
        db.put(key(150), value(150, 2)).unwrap();
        db.flush().unwrap();
        db.compact_range::<&[u8], _>(..).unwrap();
        let s = db.stats();
        assert!(s.seqs_zeroed > 0, "{s:?}");
        let check = |db: &Db| {
            assert_eq!(db.get(key(150)).unwrap(), Some(value(150, 2)));
            assert_eq!(db.get(key(120)).unwrap(), None);
            assert_eq!(db.get(key(250)).unwrap(), Some(value(250, 1)));
            assert_eq!(db.get(key(450)).unwrap(), Some(value(450, 0)));
            let all: Vec<_> = db.iter().map(|e| e.unwrap().0).collect();
            assert_eq!(
                all.len(),
                600 - 99,
                "the range delete hides 100..200 but 150"
            );
        };
        check(&db);
        assert_eq!(snap.get(key(120)).unwrap(), Some(value(120, 0)));
        assert_eq!(snap.get(key(250)).unwrap(), Some(value(250, 0)));
        assert_eq!(snap.iter().count(), 600);
        drop(snap);
        db.compact_range::<&[u8], _>(..).unwrap();
        check(&db);
        db.close().unwrap();
        let db = c.open(compacting(c)).unwrap();
        check(&db);
        db.close().unwrap();
    });
}
