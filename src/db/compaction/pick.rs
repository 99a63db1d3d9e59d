//! Picking compaction work: a pure function of a version, the options and the round-robin
//! pointers (tested with text cases in `tests/testdata/compaction_pick.txt`).

use super::Compaction;
use crate::options::Options;
use crate::version::{user_range, TableInfo, Version, NUM_LEVELS};

/// Target size of `level` (level 1 and deeper).
pub fn level_target_bytes(o: &Options, level: usize) -> u64 {
    let mut t = o.level1_size_bytes;
    for _ in 1..level {
        t = t.saturating_mul(o.level_size_multiplier);
    }
    t
}

/// The user-key range covering `tables`.
fn span<T: TableInfo>(tables: &[T]) -> Option<(Vec<u8>, Vec<u8>)> {
    let lo = tables.iter().map(|t| user_range(t).0).min()?;
    let hi = tables.iter().map(|t| user_range(t).1).max()?;
    Some((lo.to_vec(), hi.to_vec()))
}

/// The compaction of `inputs` (from `level`) into `level + 1`, with the tables there that
/// overlap them.
pub fn into_next_level<T: TableInfo>(
    v: &Version<T>,
    level: usize,
    inputs: Vec<T>,
) -> Option<Compaction<T>> {
    let (lo, hi) = span(&inputs)?;
    let next = v.overlapping(level + 1, Some(&lo), Some(&hi));
    Some(Compaction {
        level,
        output_level: level + 1,
        inputs,
        next,
    })
}

/// Each level's score: level 0's table count over its trigger, a deeper level's size over its
/// target. The last level has no score (nothing below it to compact into).
pub fn scores<T: TableInfo>(v: &Version<T>, o: &Options) -> [f64; NUM_LEVELS] {
    let mut s = [0.0; NUM_LEVELS];
    s[0] = v.levels[0].len() as f64 / o.l0_compaction_trigger as f64;
    for (level, score) in s.iter_mut().enumerate().take(NUM_LEVELS - 1).skip(1) {
        *score = v.level_bytes(level) as f64 / level_target_bytes(o, level) as f64;
    }
    s
}

/// Picks the most urgent compaction: the level with the highest score, if that score is at
/// least 1 (ties go to the upper level). Level 0 moves down whole (its tables overlap);
/// a deeper level moves one table: the one whose overlap with the next level is smallest
/// relative to its size, and among equals the first after `pointers[level]` (where the last
/// compaction of that level ended), so they take turns.
pub fn pick<T: TableInfo>(
    v: &Version<T>,
    o: &Options,
    pointers: &mut [Vec<u8>; NUM_LEVELS],
) -> Option<Compaction<T>> {
    let mut best = (0.0f64, 0usize);
    for (level, score) in scores(v, o).into_iter().enumerate() {
        if score > best.0 {
            best = (score, level);
        }
    }
    if best.0 < 1.0 {
        return None;
    }
    let level = best.1;
    if level == 0 {
        return into_next_level(v, 0, v.levels[0].clone());
    }
    let tables = &v.levels[level];
    // The table whose overlap with the next level is smallest relative to its own size
    // (RocksDB's min-overlapping-ratio): the bytes a compaction rewrites per byte it moves
    // down. Among equals, the first after the round-robin pointer, so they take turns.
    let ratio = |t: &T| {
        let (lo, hi) = user_range(t);
        let below: u64 = v
            .overlapping(level + 1, Some(lo), Some(hi))
            .iter()
            .map(|n| n.meta().size_bytes)
            .sum();
        below.saturating_mul(1024) / t.meta().size_bytes.max(1)
    };
    let ratios: Vec<u64> = tables.iter().map(ratio).collect();
    let best_ratio = *ratios.iter().min()?;
    let ptr = &pointers[level];
    let best = |i: &usize| ratios[*i] == best_ratio;
    let i = (0..tables.len())
        .filter(best)
        .find(|i| ptr.is_empty() || user_range(&tables[*i]).0 > &ptr[..])
        .or_else(|| (0..tables.len()).find(best))?;
    let t = tables[i].clone();
    pointers[level] = user_range(&t).1.to_vec();
    into_next_level(v, level, vec![t])
}
