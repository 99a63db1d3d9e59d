//! The `range_del_block` harness: range tombstones from the input, fragmented, encoded as a
//! table's range-deletion block and read back; the input's leftover bytes decoded as a block;
//! and a table holding the tombstones, damaged, opened.

use super::{is_clear_error, mutate, mutation_choices, Input};
use crate::SimFs;
use sedimentdb::internals::key::{self, Kind};
use sedimentdb::internals::rangedel::{Fragments, RangeTombstone};
use sedimentdb::internals::sstable::{Table, TableBuilder};
use sedimentdb::Fs;
use std::path::Path;

/// `range_del_block`: fragments answer every lookup as a linear search over the tombstones
/// does; the block round-trips; arbitrary and damaged blocks, alone or inside a table, give
/// `Error::Corruption` (or decode to well-formed fragments), never a panic; a table whose
/// range-deletion block is damaged never opens with different tombstones.
pub fn range_del_block(data: &[u8]) {
    let mut inp = Input::new(data);
    let mut tombs = Vec::new();
    for seq in 1..=(inp.u8() % 40) as u64 {
        let (a, b) = (inp.bytes(4).to_vec(), inp.bytes(4).to_vec());
        tombs.push(RangeTombstone {
            start: a,
            end: b,
            seq,
            time_ms: inp.u32() as u64,
        });
    }
    let f = Fragments::build(tombs.clone());
    for _ in 0..20 {
        let probe = inp.bytes(4).to_vec();
        let read_seq = inp.u8() as u64 % 45;
        let want = tombs
            .iter()
            .filter(|t| t.start <= probe && probe < t.end && t.seq <= read_seq)
            .map(|t| t.seq)
            .max()
            .unwrap_or(0);
        assert_eq!(
            f.max_seq_at(&probe, read_seq),
            want,
            "lookup of {probe:?} at {read_seq}"
        );
    }
    let mut enc = Vec::new();
    f.encode_into(&mut enc);
    assert_eq!(Fragments::decode(&enc).as_ref(), Ok(&f), "round trip");
    if let Ok(g) = Fragments::decode(inp.rest()) {
        // Whatever decodes is well formed: it encodes back to the same bytes.
        let mut again = Vec::new();
        g.encode_into(&mut again);
        assert_eq!(again, inp.rest(), "a decoded block re-encodes to itself");
    }
    // Inside a table, damaged.
    let fs = SimFs::new();
    let path = Path::new("/t.sst");
    let file = fs.create(path).expect("in memory");
    let mut b = TableBuilder::new(file, path.to_path_buf(), 7, 256, 4, 10);
    b.add(&key::encode(b"m", 50, Kind::Put), b"v")
        .expect("in memory");
    b.set_range_tombstones(f.clone());
    b.finish().expect("in memory");
    let t = Table::open(&fs, path, 7).expect("a built table opens");
    assert_eq!(t.range_dels(), &f);
    let mut bytes = fs.read_file(path).expect("written");
    mutate(&mut bytes, &mut mutation_choices(data));
    let damaged = Path::new("/damaged.sst");
    fs.write_file(damaged, &bytes).expect("in memory");
    match Table::open(&fs, damaged, 7) {
        Ok(t) => assert_eq!(
            t.range_dels(),
            &f,
            "a damaged table opened with other tombstones"
        ),
        Err(e) => assert!(is_clear_error(&e), "unclear error: {e}"),
    }
}
