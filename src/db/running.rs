//! The compactions running at once (`compaction_threads > 1`): the tables each reads and the
//! key range each writes into its output level. A compaction may start only if it reads no
//! table another one reads and writes no key range another one writes in the same level, so
//! every level stays sorted and disjoint and no table is compacted twice.

use std::collections::BTreeSet;

/// One running compaction's claim.
#[derive(Debug, Clone)]
struct Claim {
    id: u64,
    tables: Vec<u64>,
    output_level: usize,
    lo: Vec<u8>,
    hi: Vec<u8>,
}

/// The claims of the compactions running now.
#[derive(Debug, Default)]
pub(crate) struct Running {
    busy: BTreeSet<u64>,
    claims: Vec<Claim>,
    next_id: u64,
}

impl Running {
    /// True if a compaction reading `tables` and writing `[lo, hi]` (user keys, inclusive) into
    /// `output_level` would clash with one running.
    pub fn conflicts(
        &self,
        mut tables: impl Iterator<Item = u64>,
        output_level: usize,
        lo: &[u8],
        hi: &[u8],
    ) -> bool {
        tables.any(|n| self.busy.contains(&n))
            || self.claims.iter().any(|c| {
                c.output_level == output_level && c.lo.as_slice() <= hi && lo <= c.hi.as_slice()
            })
    }

    /// Records a compaction as running; returns its claim's id for [`Running::release`].
    pub fn claim(&mut self, tables: Vec<u64>, output_level: usize, lo: &[u8], hi: &[u8]) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.busy.extend(tables.iter().copied());
        self.claims.push(Claim {
            id,
            tables,
            output_level,
            lo: lo.to_vec(),
            hi: hi.to_vec(),
        });
        id
    }

    /// Forgets the claim `id` (the compaction finished, or failed).
    pub fn release(&mut self, id: u64) {
        if let Some(i) = self.claims.iter().position(|c| c.id == id) {
            let c = self.claims.swap_remove(i);
            for n in c.tables {
                self.busy.remove(&n);
            }
        }
    }

    /// How many compactions are running.
    pub fn len(&self) -> usize {
        self.claims.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_clash_on_a_shared_table_or_an_overlapping_output_range() {
        let mut r = Running::default();
        let a = r.claim(vec![1, 2], 2, b"c", b"f");
        // A table it reads.
        let t = |ns: &'static [u64]| ns.iter().copied();
        assert!(r.conflicts(t(&[2]), 3, b"x", b"z"));
        // Its output range in the same level, touching at an end.
        assert!(r.conflicts(t(&[9]), 2, b"f", b"h"));
        assert!(r.conflicts(t(&[9]), 2, b"a", b"c"));
        // Disjoint in the same level, or the same keys in another level.
        assert!(!r.conflicts(t(&[9]), 2, b"g", b"h"));
        assert!(!r.conflicts(t(&[9]), 3, b"c", b"f"));
        assert_eq!(r.len(), 1);
        r.release(a);
        assert!(!r.conflicts(t(&[1, 2]), 2, b"c", b"f"));
        assert_eq!(r.len(), 0);
    }
}
