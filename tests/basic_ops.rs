//! put, get, delete, overwrite, batches and scans, on StdFs and SimFs.
mod common;
use common::*;
use sedimentdb::{WriteBatch, WriteOptions};

#[test]
fn put_get_delete_scan() {
    on_both(|c| {
        let db = c.open(c.small()).unwrap();
        assert_eq!(db.get(b"a").unwrap(), None);
        db.put(b"a", b"1").unwrap();
        db.put(b"b", b"2").unwrap();
        db.put(b"c", b"3").unwrap();
        assert_eq!(db.get(b"a").unwrap().as_deref(), Some(&b"1"[..]));
        db.delete(b"b").unwrap();
        assert_eq!(db.get(b"b").unwrap(), None);
        let all: Vec<_> = db.scan::<&[u8], _>(..).map(|r| r.unwrap().0).collect();
        assert_eq!(all, vec![b"a".to_vec(), b"c".to_vec()]);
        // Bounded scans, inclusive and exclusive.
        let r: Vec<_> = db
            .scan(&b"a"[..]..&b"c"[..])
            .map(|r| r.unwrap().0)
            .collect();
        assert_eq!(r, vec![b"a".to_vec()]);
        let r: Vec<_> = db
            .scan(&b"a"[..]..=&b"c"[..])
            .map(|r| r.unwrap().0)
            .collect();
        assert_eq!(r, vec![b"a".to_vec(), b"c".to_vec()]);
        let r: Vec<_> = db
            .scan::<&[u8], _>((
                std::ops::Bound::Excluded(&b"a"[..]),
                std::ops::Bound::Unbounded,
            ))
            .map(|r| r.unwrap().0)
            .collect();
        assert_eq!(r, vec![b"c".to_vec()]);
        // Deleting an absent key is fine and hides nothing else.
        db.delete(b"zz").unwrap();
        assert_eq!(db.get(b"c").unwrap().as_deref(), Some(&b"3"[..]));
        db.close().unwrap();
    });
}

#[test]
fn overwrite_keeps_the_newest_value() {
    on_both(|c| {
        let db = c.open(c.small()).unwrap();
        for round in 0..5u64 {
            for i in 0..200 {
                db.put(key(i), value(i, round)).unwrap();
            }
            // Flush some rounds so versions sit in tables and in the memtable.
            if round % 2 == 0 {
                db.flush().unwrap();
            }
        }
        for i in 0..200 {
            assert_eq!(db.get(key(i)).unwrap(), Some(value(i, 4)));
        }
        let n = db.scan::<&[u8], _>(..).count();
        assert_eq!(n, 200);
    });
}

#[test]
fn batches_apply_atomically_in_order() {
    on_both(|c| {
        let db = c.open(c.small()).unwrap();
        let mut b = WriteBatch::new();
        b.put(b"k", b"first")
            .put(b"k", b"second")
            .put(b"x", b"1")
            .delete(b"x");
        assert_eq!(b.len(), 4);
        db.write(b, &WriteOptions::default()).unwrap();
        assert_eq!(db.get(b"k").unwrap().as_deref(), Some(&b"second"[..]));
        assert_eq!(db.get(b"x").unwrap(), None);
        // An unsynced batch is visible at once.
        let mut b = WriteBatch::new();
        b.put(b"u", b"v");
        db.write(b, &WriteOptions { sync: false }).unwrap();
        assert_eq!(db.get(b"u").unwrap().as_deref(), Some(&b"v"[..]));
        db.sync().unwrap();
        // An empty batch is a no-op.
        db.write(WriteBatch::new(), &WriteOptions::default())
            .unwrap();
    });
}

#[test]
fn scans_merge_memtable_and_tables_with_tombstones() {
    on_both(|c| {
        let db = c.open(c.small()).unwrap();
        let mut model = std::collections::BTreeMap::new();
        for i in 0..300u64 {
            db.put(key(i), value(i, 0)).unwrap();
            model.insert(key(i), value(i, 0));
        }
        db.flush().unwrap();
        for i in (0..300u64).step_by(3) {
            db.delete(key(i)).unwrap();
            model.remove(&key(i));
        }
        db.flush().unwrap();
        for i in (0..300u64).step_by(5) {
            db.put(key(i), value(i, 1)).unwrap();
            model.insert(key(i), value(i, 1));
        }
        // Memtable holds the newest puts, tables hold older values and tombstones.
        assert!(db.stats().tables >= 2);
        assert_matches(&db, &model);
        let lo = key(100);
        let hi = key(200);
        let got: Vec<_> = db.scan(&lo[..]..&hi[..]).collect::<Result<_, _>>().unwrap();
        let want: Vec<_> = model
            .range(lo.clone()..hi.clone())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        assert_eq!(got, want);
    });
}

#[test]
fn a_scan_is_a_snapshot() {
    on_both(|c| {
        let db = c.open(c.small()).unwrap();
        for i in 0..50 {
            db.put(key(i), b"old").unwrap();
        }
        let mut scan = db.scan::<&[u8], _>(..);
        let first = scan.next().unwrap().unwrap();
        for i in 0..50 {
            db.put(key(i), b"new").unwrap();
        }
        db.put(b"zzz", b"later").unwrap();
        db.flush().unwrap();
        assert_eq!(first.1, b"old");
        let rest: Vec<_> = scan.map(|r| r.unwrap()).collect();
        assert_eq!(rest.len(), 49);
        assert!(rest.iter().all(|(_, v)| v == b"old"));
    });
}

#[test]
fn db_scan_and_errors_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<sedimentdb::Db>();
    send_sync::<sedimentdb::Error>();
    send::<sedimentdb::Scan>();
    send::<sedimentdb::RawScan>();
    // And many readers with one writer, for real.
    let c = Case::std();
    let db = std::sync::Arc::new(c.open(c.small()).unwrap());
    std::thread::scope(|s| {
        let w = db.clone();
        s.spawn(move || {
            for i in 0..2000 {
                w.put(key(i), value(i, 0)).unwrap();
            }
        });
        for _ in 0..3 {
            let r = db.clone();
            s.spawn(move || {
                for i in 0..2000 {
                    if let Some(v) = r.get(key(i)).unwrap() {
                        assert_eq!(v, value(i, 0));
                    }
                }
            });
        }
    });
    assert_eq!(db.iter().count(), 2000);
}
