//! Bloom filters over user keys.
//!
//! ```text
//! filter := bits (m bytes) | k u8
//! ```
//! Probe `i` of key `x` sets bit `(h1 + i * h2) mod (8 * m)` where `h = xxh3_64(x)`,
//! `h1 = h mod 2^32`, `h2 = (h >> 32) | 1` (double hashing, Kirsch and Mitzenmacher).

use xxhash_rust::xxh3::xxh3_64;

/// Hash of a key for the filter. Stable across platforms and versions: DO NOT CHANGE.
pub fn key_hash(key: &[u8]) -> u64 {
    xxh3_64(key)
}

/// Hashes per chunk of [`Hashes`]: 64 KiB.
const CHUNK_HASHES: usize = 8192;

/// The key hashes a table builder gathers for its filter, in chunks of 64 KiB. One growing
/// `Vec` reached 8 MiB for a 32 MiB table, through reallocations of 1, 2 and 4 MiB, and such
/// large short-lived allocations kept process memory high after they were freed (glibc raises
/// its mmap threshold to the largest one freed, so later ones come from heaps that keep their
/// free memory); chunks of 64 KiB are too small to raise it.
#[derive(Default)]
pub struct Hashes {
    chunks: Vec<Vec<u64>>,
    len: usize,
}

impl Hashes {
    pub fn push(&mut self, h: u64) {
        match self.chunks.last_mut() {
            Some(c) if c.len() < CHUNK_HASHES => c.push(h),
            _ => {
                let mut c = Vec::with_capacity(CHUNK_HASHES);
                c.push(h);
                self.chunks.push(c);
            }
        }
        self.len += 1;
    }

    /// The filter of these hashes (see [`build`]).
    pub fn build(&self, bits_per_key: usize) -> Vec<u8> {
        build_iter(
            self.len,
            self.chunks.iter().flatten().copied(),
            bits_per_key,
        )
    }
}

/// Builds a filter from key hashes.
pub fn build(hashes: &[u64], bits_per_key: usize) -> Vec<u8> {
    build_iter(hashes.len(), hashes.iter().copied(), bits_per_key)
}

/// Builds a filter from `count` key hashes.
fn build_iter(count: usize, hashes: impl Iterator<Item = u64>, bits_per_key: usize) -> Vec<u8> {
    // k = bits_per_key * ln 2 minimises the false-positive rate.
    let k = ((bits_per_key as f64) * 0.69).round().clamp(1.0, 30.0) as u8;
    let bits = (count * bits_per_key).max(64);
    let bytes = bits.div_ceil(8);
    let nbits = (bytes * 8) as u64;
    let mut out = vec![0u8; bytes + 1];
    for h in hashes {
        let (mut a, b) = (h & 0xffff_ffff, (h >> 32) | 1);
        for _ in 0..k {
            let bit = a % nbits;
            out[(bit / 8) as usize] |= 1 << (bit % 8);
            a = a.wrapping_add(b);
        }
    }
    out[bytes] = k;
    out
}

/// False only if the key is certainly absent. A malformed filter answers true (no skipping).
pub fn may_contain(filter: &[u8], hash: u64) -> bool {
    if filter.len() < 2 {
        return true;
    }
    let k = filter[filter.len() - 1];
    if k == 0 || k > 30 {
        return true;
    }
    let bits = &filter[..filter.len() - 1];
    let nbits = (bits.len() * 8) as u64;
    let (mut a, b) = (hash & 0xffff_ffff, (hash >> 32) | 1);
    for _ in 0..k {
        let bit = a % nbits;
        if bits[(bit / 8) as usize] & (1 << (bit % 8)) == 0 {
            return false;
        }
        a = a.wrapping_add(b);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The number of probes `build` uses for `bits` bits per key.
    fn f34(bits: usize) -> f64 {
        ((bits as f64) * 0.69).round().clamp(1.0, 30.0)
    }

    #[test]
    fn false_positive_rate_is_below_two_percent_at_ten_bits() {
        let n = 100_000u32;
        let hashes: Vec<u64> = (0..n)
            .map(|i| key_hash(format!("key{i:08}").as_bytes()))
            .collect();
        let f = build(&hashes, 10);
        for h in &hashes {
            assert!(may_contain(&f, *h), "false negative");
        }
        let fp = (0..n)
            .filter(|i| may_contain(&f, key_hash(format!("absent{i:08}").as_bytes())))
            .count();
        let rate = fp as f64 / n as f64;
        println!(
            "bloom false-positive rate at 10 bits/key: {:.4}%",
            rate * 100.0
        );
        assert!(rate < 0.02, "false-positive rate {rate}");
    }

    #[test]
    fn chunked_hashes_build_the_filter_one_slice_builds() {
        for n in [
            0usize,
            1,
            CHUNK_HASHES - 1,
            CHUNK_HASHES,
            CHUNK_HASHES + 1,
            3 * CHUNK_HASHES + 7,
        ] {
            let all: Vec<u64> = (0..n as u64).map(|i| key_hash(&i.to_be_bytes())).collect();
            let mut h = Hashes::default();
            for x in &all {
                h.push(*x);
            }
            assert_eq!(h.len, n);
            assert_eq!(h.chunks.len(), n.div_ceil(CHUNK_HASHES));
            assert_eq!(h.build(10), build(&all, 10), "{n} hashes");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        /// For any bits per key, the measured false-positive rate stays within 1.5 times the
        /// rate theory gives for the probes used, plus sampling noise.
        #[test]
        fn false_positive_rate_stays_within_bounds(bits in 2usize..20, salt in any::<u32>()) {
            let n = 2000u32;
            let hashes: Vec<u64> = (0..n).map(|i| key_hash(format!("{salt}k{i}").as_bytes())).collect();
            let f = build(&hashes, bits);
            let k = f34(bits);
            let m = ((n as usize * bits).max(64).div_ceil(8) * 8) as f64;
            let theory = (1.0 - (-(k * n as f64) / m).exp()).powf(k);
            let probes = 20_000u32;
            let fp = (0..probes).filter(|i| may_contain(&f, key_hash(format!("{salt}a{i}").as_bytes()))).count();
            let rate = fp as f64 / probes as f64;
            prop_assert!(rate <= theory * 1.5 + 0.005, "bits {bits}: rate {rate}, theory {theory}");
        }

        #[test]
        fn no_false_negatives(keys in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..16), 0..200), bits in 1usize..20) {
            let hashes: Vec<u64> = keys.iter().map(|k| key_hash(k)).collect();
            let f = build(&hashes, bits);
            for h in hashes {
                prop_assert!(may_contain(&f, h));
            }
        }
    }
}
