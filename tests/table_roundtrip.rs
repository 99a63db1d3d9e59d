//! Round-trip properties of the table format: what the builder writes, the reader returns,
//! for point lookups and full iteration, and truncated tables never open.
use proptest::prelude::*;
use sedimentdb::internals::key::Found;
use sedimentdb::internals::key::{self, Kind};
use sedimentdb::internals::sstable::{Table, TableBuilder, TableIter};
use sedimentdb::Fs;
use sedimentdb_sim::SimFs;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

fn build(
    fs: &SimFs,
    path: &Path,
    entries: &BTreeMap<Vec<u8>, (u64, bool, Vec<u8>)>,
    block: usize,
    interval: usize,
) {
    let f = fs.create(path).unwrap();
    let mut b = TableBuilder::new(f, path.to_path_buf(), 9, block, interval, 10);
    for (k, (seq, del, v)) in entries {
        let kind = if *del { Kind::Delete } else { Kind::Put };
        b.add(&key::encode(k, *seq, kind), v).unwrap();
    }
    let meta = b.finish().unwrap();
    assert_eq!(meta.entries, entries.len() as u64);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn table_round_trips(
        entries in proptest::collection::btree_map(
            proptest::collection::vec(any::<u8>(), 1..24),
            (1u64..1000, any::<bool>(), proptest::collection::vec(any::<u8>(), 0..200)),
            0..300),
        block in 64usize..2048,
        interval in 1usize..20,
        probes in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..24), 0..50),
    ) {
        // A tombstone's value is its 8-byte deletion time (the reader refuses anything else).
        let entries: BTreeMap<_, _> = entries
            .into_iter()
            .map(|(k, (seq, del, v))| {
                let v = if del { key::tombstone_value(seq).to_vec() } else { v };
                (k, (seq, del, v))
            })
            .collect();
        let fs = SimFs::new();
        let path = Path::new("/t.sst");
        build(&fs, path, &entries, block, interval);
        let t = Arc::new(Table::open(&fs, path, 9).unwrap());
        // Point lookups of present keys.
        for (k, (seq, del, v)) in &entries {
            let (found, _) = t.get(k, key::SEQ_MAX).unwrap();
            let want = if *del { Found::Deleted } else { Found::Value(v.clone()) };
            prop_assert_eq!(found.map(|f| f.1), Some(want));
            // Invisible below its sequence number.
            let (older, _) = t.get(k, seq - 1).unwrap();
            prop_assert_eq!(older, None);
        }
        for p in &probes {
            if !entries.contains_key(p) {
                prop_assert_eq!(t.get(p, key::SEQ_MAX).unwrap().0, None);
            }
        }
        // Full iteration returns every entry in order.
        let mut it = TableIter::new(t.clone());
        it.seek_to_first().unwrap();
        let mut n = 0;
        for (k, (seq, del, v)) in &entries {
            prop_assert!(it.valid());
            let p = key::parse(it.key()).unwrap();
            prop_assert_eq!(p.user_key, &k[..]);
            prop_assert_eq!(p.seq, *seq);
            prop_assert_eq!(p.kind == Kind::Delete, *del);
            prop_assert_eq!(it.value(), &v[..]);
            it.advance().unwrap();
            n += 1;
        }
        prop_assert!(!it.valid());
        prop_assert_eq!(n, entries.len());
        // Truncated tables never open.
        let bytes = fs.read_file(path).unwrap();
        for cut in [0, 1, bytes.len() / 2, bytes.len() - 1] {
            let p2 = Path::new("/cut.sst");
            let _ = fs.remove_file(p2);
            fs.write_file(p2, &bytes[..cut]).unwrap();
            prop_assert!(Table::open(&fs, p2, 9).is_err());
        }
    }
}
