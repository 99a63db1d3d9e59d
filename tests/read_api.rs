//! The read API through the public surface, on both backends: snapshots held through flushes
//! and compactions, cursors against `BTreeMap` ranges in both directions, prefix and reverse
//! scans, range deletes (in batches, across levels, after reopen, under the grace rule), and
//! checkpoints (complete, refused, interrupted).
mod common;

use common::{key, on_both, value, Case};
use proptest::prelude::*;
use sedimentdb::{Db, Error, Options, RawValue, WriteBatch, WriteOptions};
use std::collections::BTreeMap;
use std::ops::Bound;
use std::time::Duration;

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

fn all(
    scan: impl Iterator<Item = sedimentdb::Result<(Vec<u8>, Vec<u8>)>>,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    scan.collect::<Result<_, _>>().expect("scan")
}

fn entries(m: &Model) -> Vec<(Vec<u8>, Vec<u8>)> {
    m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

#[test]
fn a_snapshot_sees_the_state_when_taken_through_flushes_and_compactions() {
    on_both(|case| {
        let db = case.open(case.small()).unwrap();
        let mut model = Model::new();
        for i in 0..300 {
            db.put(key(i), value(i, 0)).unwrap();
            model.insert(key(i), value(i, 0));
        }
        let snap = db.snapshot();
        let at = model.clone();
        for i in 0..300 {
            if i % 3 == 0 {
                db.delete(key(i)).unwrap();
            } else {
                db.put(key(i), value(i, 1)).unwrap();
            }
        }
        db.delete_range(key(100)..key(200)).unwrap();
        db.flush().unwrap();
        db.compact_range::<&[u8], _>(..).unwrap();
        let st = db.stats();
        assert_eq!(st.live_snapshots, 1);
        assert_eq!(st.oldest_snapshot_seq, Some(snap.sequence()));
        assert!(st.versions_kept_for_snapshots > 0, "{st:?}");
        assert_eq!(all(snap.iter()), entries(&at));
        let mut rev = all(snap.iter().rev());
        rev.reverse();
        assert_eq!(rev, entries(&at));
        for i in [0, 1, 150, 299, 300] {
            assert_eq!(
                snap.get(key(i)).unwrap(),
                at.get(&key(i)).cloned(),
                "key {i}"
            );
        }
        assert_eq!(all(snap.prefix(b"key000001")).len(), 100);
        assert!(db.get(key(150)).unwrap().is_none());
        let bytes_with_snapshot = db.stats().table_bytes;
        drop(snap);
        assert_eq!(db.stats().live_snapshots, 0);
        db.compact_range::<&[u8], _>(..).unwrap();
        assert!(
            db.stats().table_bytes < bytes_with_snapshot,
            "releasing the snapshot lets compaction drop the versions it pinned"
        );
    });
}

#[test]
fn a_snapshot_outliving_its_database_reports_closed() {
    let case = Case::sim();
    let db = case.open(case.small()).unwrap();
    db.put("k", "v").unwrap();
    let snap = db.snapshot();
    db.close().unwrap();
    assert!(matches!(snap.get("k"), Err(Error::Closed)));
    assert!(matches!(snap.iter().next(), Some(Err(Error::Closed))));
}

#[test]
fn range_deletes_hide_keys_in_every_read_and_survive_reopen() {
    on_both(|case| {
        let opts = case.small();
        let db = case.open(opts.clone()).unwrap();
        let mut model = Model::new();
        // Three generations, in tables of several levels and the memtable.
        for round in 0..3 {
            for i in 0..400 {
                db.put(key(i), value(i, round)).unwrap();
                model.insert(key(i), value(i, round));
            }
            db.flush().unwrap();
            if round == 0 {
                db.compact_range::<&[u8], _>(..).unwrap();
            }
        }
        let mut b = WriteBatch::new();
        b.delete_range(key(50)..key(350))
            .put(key(60), b"after")
            .delete_range(key(10)..key(10));
        db.write(b, &WriteOptions::default()).unwrap();
        model.retain(|k, _| !(k >= &key(50) && k < &key(350)));
        model.insert(key(60), b"after".to_vec());
        for i in [49, 50, 60, 61, 200, 349, 350] {
            assert_eq!(
                db.get(key(i)).unwrap(),
                model.get(&key(i)).cloned(),
                "key {i}"
            );
        }
        assert_eq!(all(db.iter()), entries(&model));
        let mut rev = all(db.iter().rev());
        rev.reverse();
        assert_eq!(rev, entries(&model));
        let raw: Vec<_> = db
            .scan_raw::<&[u8], _>(..)
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(raw.iter().any(|e| matches!(
            &e.value,
            RawValue::RangeTombstone { end, .. } if e.key == key(50) && *end == key(350)
        )));
        db.close().unwrap();
        let db = case.open(opts.clone()).unwrap();
        assert_eq!(all(db.iter()), entries(&model));
        db.compact_range::<&[u8], _>(..).unwrap();
        assert_eq!(all(db.iter()), entries(&model));
        assert!(db.stats().table_range_tombstones > 0, "young: kept");
        db.close().unwrap();
        // With no grace period, a full compaction drops the range tombstone and what it hid.
        let db = case
            .open(Options {
                tombstone_grace: Duration::ZERO,
                ..opts
            })
            .unwrap();
        db.compact_range::<&[u8], _>(..).unwrap();
        let st = db.stats();
        assert_eq!(st.table_range_tombstones, 0, "{st:?}");
        assert_eq!(st.table_entries, model.len() as u64);
        assert_eq!(all(db.iter()), entries(&model));
    });
}

#[test]
fn an_inverted_range_delete_is_refused_and_writes_nothing() {
    on_both(|case| {
        let db = case.open(case.small()).unwrap();
        let mut b = WriteBatch::new();
        b.put("a", "1").delete_range(&b"z"[..]..&b"b"[..]);
        let e = db.write(b, &WriteOptions::default()).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
        assert!(e.to_string().contains("sorts after its end"), "{e}");
        assert_eq!(db.get("a").unwrap(), None);
    });
}

#[test]
fn cursors_honour_bounds_and_change_direction() {
    on_both(|case| {
        let db = case.open(case.small()).unwrap();
        for i in 0..500 {
            db.put(key(i), value(i, 0)).unwrap();
            if i % 97 == 0 {
                db.flush().unwrap();
            }
        }
        for i in (0..500).step_by(5) {
            db.delete(key(i)).unwrap();
        }
        let mut c = db.cursor(key(100)..key(200));
        c.seek_to_first();
        assert_eq!(c.key(), key(101));
        c.seek_to_last();
        assert_eq!(c.key(), key(199));
        c.seek(key(150));
        assert_eq!(c.key(), key(151));
        c.prev();
        assert_eq!(c.key(), key(149));
        c.next();
        assert_eq!(c.key(), key(151));
        c.seek_for_prev(key(155));
        assert_eq!(c.key(), key(154));
        c.next();
        assert_eq!(c.key(), key(156));
        c.seek(key(300));
        assert!(!c.valid());
        c.status().unwrap();
        c.seek_for_prev(key(50));
        assert!(!c.valid());
        c.status().unwrap();
    });
}

#[test]
fn checkpoints_open_as_their_own_database() {
    on_both(|case| {
        let db = case.open(case.small()).unwrap();
        let mut model = Model::new();
        for i in 0..300 {
            let mut b = WriteBatch::new();
            b.put(key(i), value(i, 0));
            db.write(b, &WriteOptions { sync: false }).unwrap();
            model.insert(key(i), value(i, 0));
        }
        db.delete_range(key(10)..key(20)).unwrap();
        model.retain(|k, _| !(k >= &key(10) && k < &key(20)));
        let ckpt = case.path.with_file_name("checkpoint");
        db.checkpoint(&ckpt).unwrap();
        db.put(key(5), b"after the checkpoint").unwrap();
        assert!(matches!(
            db.checkpoint(&ckpt),
            Err(Error::InvalidArgument(_))
        ));
        let st = db.stats();
        assert_eq!(st.checkpoints, 1);
        assert!(
            st.checkpoint_tables_linked + st.checkpoint_tables_copied > 0,
            "{st:?}"
        );
        let copy = Db::open_with(case.env(), &ckpt, case.small()).unwrap();
        assert_eq!(all(copy.iter()), entries(&model));
        copy.put(key(7), b"written to the copy").unwrap();
        assert_eq!(db.get(key(7)).unwrap(), model.get(&key(7)).cloned());
        assert_eq!(
            db.get(key(5)).unwrap().as_deref(),
            Some(&b"after the checkpoint"[..])
        );
    });
}

#[test]
fn an_incomplete_checkpoint_is_refused() {
    let case = Case::std();
    let db = case.open(case.small()).unwrap();
    db.put("k", "v").unwrap();
    let ckpt = case.path.with_file_name("checkpoint");
    db.checkpoint(&ckpt).unwrap();
    // As if the checkpoint had been interrupted before its last step.
    std::fs::write(ckpt.join("CHECKPOINT-PENDING"), b"").unwrap();
    let e = Db::open(&ckpt, Options::default()).err().expect("refused");
    assert!(matches!(e, Error::IncompleteCheckpoint { .. }), "{e}");
    assert!(e.to_string().contains("incomplete checkpoint"), "{e}");
}

/// A cursor move, for the property test.
#[derive(Debug, Clone)]
enum Move {
    Seek(u64),
    SeekForPrev(u64),
    First,
    Last,
    Next,
    Prev,
}

fn a_move() -> impl Strategy<Value = Move> {
    prop_oneof![
        (0u64..70).prop_map(Move::Seek),
        (0u64..70).prop_map(Move::SeekForPrev),
        Just(Move::First),
        Just(Move::Last),
        Just(Move::Next),
        Just(Move::Next),
        Just(Move::Prev),
        Just(Move::Prev),
    ]
}

fn model_land(
    m: &Model,
    lo: &Bound<Vec<u8>>,
    hi: &Bound<Vec<u8>>,
    forward: bool,
    from: Bound<Vec<u8>>,
) -> Option<Vec<u8>> {
    let r = (lo.clone(), hi.clone());
    let within = |k: &Vec<u8>| std::ops::RangeBounds::contains(&r, k);
    if forward {
        m.range((from, Bound::Unbounded))
            .map(|(k, _)| k)
            .find(|k| within(k))
            .cloned()
    } else {
        m.range((Bound::Unbounded, from))
            .rev()
            .map(|(k, _)| k)
            .find(|k| within(k))
            .cloned()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Random writes (puts, deletes, range deletes) spread over the memtable and tables of
    /// several levels, then random cursor moves: after every move the cursor is where a walk
    /// over `BTreeMap::range` is, in both directions and across direction changes.
    #[test]
    fn a_cursor_walks_like_a_btreemap_range(
        writes in proptest::collection::vec((0u8..4, 0u64..60, 0u64..8), 1..200),
        lo in proptest::option::of(0u64..60),
        hi in proptest::option::of(0u64..60),
        moves in proptest::collection::vec(a_move(), 1..40),
    ) {
        let case = Case::sim();
        let db = case.open(case.small()).unwrap();
        let mut m = Model::new();
        for (n, (op, k, w)) in writes.iter().enumerate() {
            match op {
                0 | 1 => {
                    db.put(key(*k), value(*k, n as u64)).unwrap();
                    m.insert(key(*k), value(*k, n as u64));
                }
                2 => {
                    db.delete(key(*k)).unwrap();
                    m.remove(&key(*k));
                }
                _ => {
                    db.delete_range(key(*k)..key(k + w)).unwrap();
                    m.retain(|x, _| !(x >= &key(*k) && x < &key(k + w)));
                }
            }
            if n % 37 == 36 {
                db.flush().unwrap();
            }
            if n % 91 == 90 {
                db.compact_range::<&[u8], _>(..).unwrap();
            }
        }
        let lo = lo.map_or(Bound::Unbounded, |l| Bound::Included(key(l)));
        let hi = hi.map_or(Bound::Unbounded, |h| Bound::Excluded(key(h)));
        let mut c = db.cursor::<Vec<u8>, _>((lo.clone(), hi.clone()));
        let mut at: Option<Vec<u8>> = None;
        for mv in moves {
            let want = match &mv {
                Move::Seek(k) => { c.seek(key(*k)); model_land(&m, &lo, &hi, true, Bound::Included(key(*k))) }
                Move::SeekForPrev(k) => { c.seek_for_prev(key(*k)); model_land(&m, &lo, &hi, false, Bound::Included(key(*k))) }
                Move::First => { c.seek_to_first(); model_land(&m, &lo, &hi, true, Bound::Unbounded) }
                Move::Last => { c.seek_to_last(); model_land(&m, &lo, &hi, false, Bound::Unbounded) }
                Move::Next | Move::Prev => {
                    let Some(cur) = at.clone() else { continue };
                    let fwd = matches!(mv, Move::Next);
                    if fwd { c.next() } else { c.prev() }
                    model_land(&m, &lo, &hi, fwd, Bound::Excluded(cur))
                }
            };
            c.status().unwrap();
            let got = c.valid().then(|| c.key().to_vec());
            prop_assert_eq!(&got, &want, "after {:?}", mv);
            if let Some(k) = &got {
                prop_assert_eq!(c.value(), &m[k][..]);
            }
            at = want;
        }
    }
}

/// A damaged data block surfaces on the cursor and in both directions of a scan as
/// `Error::Corruption` naming the table, never as a silent end.
#[test]
fn a_damaged_block_surfaces_on_the_cursor() {
    let case = Case::std();
    let opts = Options {
        background: sedimentdb::Background::Inline,
        ..case.small()
    };
    let db = case.open(opts.clone()).unwrap();
    for i in 0..200 {
        db.put(key(i), value(i, 0)).unwrap();
    }
    db.flush().unwrap();
    db.close().unwrap();
    let table = std::fs::read_dir(&case.path)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "sst"))
        .unwrap();
    let mut bytes = std::fs::read(&table).unwrap();
    bytes[20] ^= 0x40; // inside the first data block
    std::fs::write(&table, &bytes).unwrap();
    let db = case.open(opts).unwrap();
    let mut c = db.cursor::<&[u8], _>(..);
    c.seek_to_first();
    assert!(!c.valid());
    let e = c.status().unwrap_err();
    assert!(matches!(e, Error::Corruption { .. }), "{e}");
    assert!(e.to_string().contains(".sst"), "{e}");
    let fwd: Vec<_> = db.iter().collect();
    assert!(
        matches!(fwd.last(), Some(Err(Error::Corruption { .. }))),
        "{fwd:?}"
    );
    let rev: Vec<_> = db.iter().rev().collect();
    assert!(matches!(rev.last(), Some(Err(Error::Corruption { .. }))));
}

/// The block cache answers repeated reads of the same blocks, stays within its capacity, can be
/// turned off, and a scan with `fill_cache: false` leaves it as it was.
#[test]
fn the_block_cache_answers_repeated_reads() {
    on_both(|case| {
        let opts = Options {
            block_cache_bytes: 1 << 20,
            ..case.small()
        };
        let db = case.open(opts.clone()).unwrap();
        for i in 0..2000 {
            db.put(key(i), value(i, 0)).unwrap();
        }
        db.flush().unwrap();
        db.compact_range::<&[u8], _>(..).unwrap();
        for _ in 0..3 {
            for i in 0..20 {
                assert_eq!(db.get(key(i)).unwrap(), Some(value(i, 0)));
            }
        }
        let st = db.stats();
        assert!(st.block_cache_hits > 0, "{st:?}");
        assert!(st.block_cache_bytes <= st.block_cache_capacity, "{st:?}");
        assert_eq!(st.block_cache_capacity, 1 << 20);
        let before = db.stats().block_cache_bytes;
        let n = db
            .scan_with::<&[u8], _>(.., &sedimentdb::ReadOptions { fill_cache: false })
            .count();
        assert_eq!(n, 2000);
        assert_eq!(
            db.stats().block_cache_bytes,
            before,
            "a scan without fill_cache filled it"
        );
        assert_eq!(db.iter().count(), 2000);
        assert!(
            db.stats().block_cache_bytes > before,
            "a scan fills the cache by default"
        );
        db.close().unwrap();
        let db = case
            .open(Options {
                block_cache_bytes: 0,
                ..opts
            })
            .unwrap();
        for i in 0..20 {
            assert_eq!(db.get(key(i)).unwrap(), Some(value(i, 0)));
        }
        let st = db.stats();
        assert_eq!((st.block_cache_hits, st.block_cache_capacity), (0, 0));
    });
}
