//! The `block_and_filter` harness: data blocks and Bloom filters built from the input's keys,
//! and the input's leftover bytes read as a block and as a filter.

use super::Input;
use sedimentdb::internals::sstable::block::{BlockBuilder, BlockCursor};
use sedimentdb::internals::sstable::bloom;
use std::collections::BTreeMap;

/// `block_and_filter`: blocks and Bloom filters built from arbitrary sorted key sets round-trip,
/// seek correctly, and the filter has no false negatives, ever.
pub fn block_and_filter(data: &[u8]) {
    let mut inp = Input::new(data);
    let mut keys: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    let interval = 1 + inp.u8() as usize % 20;
    let bits = 1 + inp.u8() as usize % 20;
    while !inp.exhausted() && keys.len() < 500 {
        let k = inp.bytes(24).to_vec();
        let v = inp.bytes(40).to_vec();
        keys.insert(k, v);
    }
    check_block(&keys, interval);
    let hashes: Vec<u64> = keys.keys().map(|k| bloom::key_hash(k)).collect();
    let f = bloom::build(&hashes, bits);
    for h in hashes {
        assert!(bloom::may_contain(&f, h), "Bloom filter false negative");
    }
    // The raw bytes as a block never panic.
    let raw = inp.rest();
    let mut c = BlockCursor::default();
    if c.reset(raw).is_ok() && c.seek_to_first(raw).is_ok() {
        for _ in 0..1000 {
            if !c.valid() || c.advance(raw).is_err() {
                break;
            }
        }
    }
    let _ = bloom::may_contain(raw, 42);
}

/// A block of `keys` with a restart every `interval` entries reads back in full, and a seek to
/// each of its first keys lands on it.
fn check_block(keys: &BTreeMap<Vec<u8>, Vec<u8>>, interval: usize) {
    let mut b = BlockBuilder::new(interval);
    for (k, v) in keys {
        b.add(k, v);
    }
    let mut block = Vec::new();
    b.finish_into(&mut block);
    let mut c = BlockCursor::default();
    c.reset(&block).expect("a built block is valid");
    c.seek_to_first(&block).expect("valid");
    let mut got = Vec::new();
    while c.valid() {
        got.push((c.key().to_vec(), c.value(&block).to_vec()));
        c.advance(&block).expect("valid");
    }
    let want: Vec<_> = keys.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    assert_eq!(got, want);
    for probe in keys.keys().take(50) {
        c.seek(&block, probe, |a, b| a.cmp(b)).expect("valid");
        assert!(c.valid() && c.key() == &probe[..]);
    }
}
