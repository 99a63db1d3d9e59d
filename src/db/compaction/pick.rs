//! Picking compaction work: a pure function of a version, the options and the round-robin
//! pointers (tested with text cases in `tests/testdata/compaction_pick.txt`).

use super::Compaction;
use crate::options::Options;
use crate::planted::{self, Bug};
use crate::version::{user_range, TableInfo, Version, NUM_LEVELS};

/// Static target size of `level` (level 1 and deeper).
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
    into_level(v, level, level + 1, inputs)
}

/// The compaction of `inputs` (from `level`) into `output_level`, with the tables there that
/// overlap them.
fn into_level<T: TableInfo>(
    v: &Version<T>,
    level: usize,
    output_level: usize,
    inputs: Vec<T>,
) -> Option<Compaction<T>> {
    let (lo, hi) = span(&inputs)?;
    let next = v.overlapping(output_level, Some(&lo), Some(&hi));
    Some(Compaction {
        level,
        output_level,
        inputs,
        next,
    })
}

/// The base level under dynamic level targets: going up from the deepest level holding tables
/// (whose target is its own size), each level's target a multiplier smaller, the first level
/// whose target is at most `level1_size_bytes` (the last level while the database holds no
/// table below level 0).
pub fn base_level<T: TableInfo>(v: &Version<T>, o: &Options) -> usize {
    let last = v.deepest_level();
    if last == 0 {
        return NUM_LEVELS - 1;
    }
    let mult = o.level_size_multiplier.max(2);
    let mut t = v.level_bytes(last);
    let mut b = last;
    while b > 1 && t > o.level1_size_bytes {
        t /= mult;
        b -= 1;
    }
    b
}

/// Each level's target size (level 1 and deeper; index 0 unused): static, or under dynamic
/// targets the deepest level's size divided by the multiplier once per level above it, and
/// `level1_size_bytes` for levels above the base level (which hold data only after the base
/// moved down, and drain into it).
pub fn level_targets<T: TableInfo>(v: &Version<T>, o: &Options) -> [u64; NUM_LEVELS] {
    let mut t = [0u64; NUM_LEVELS];
    if !o.dynamic_level_bytes {
        for (level, x) in t.iter_mut().enumerate().skip(1) {
            *x = level_target_bytes(o, level);
        }
        return t;
    }
    let last = v.deepest_level().max(1);
    let mult = o.level_size_multiplier.max(2);
    let mut x = v.level_bytes(last);
    for level in (1..=last).rev() {
        t[level] = x.max(1);
        x /= mult;
    }
    let base = base_level(v, o);
    for x in t.iter_mut().take(base).skip(1) {
        *x = o.level1_size_bytes.max(1);
    }
    for x in t.iter_mut().skip(last + 1) {
        *x = u64::MAX;
    }
    t
}

/// Each level's score: level 0's table count over its trigger, a deeper level's size over its
/// target. The last level has no score (nothing below it to compact into), nor, under dynamic
/// targets, the deepest level holding tables (its target is its own size).
pub fn scores<T: TableInfo>(v: &Version<T>, o: &Options) -> [f64; NUM_LEVELS] {
    let mut s = [0.0; NUM_LEVELS];
    s[0] = v.levels[0].len() as f64 / o.l0_compaction_trigger as f64;
    let targets = level_targets(v, o);
    let deepest = v.deepest_level();
    for (level, score) in s.iter_mut().enumerate().take(NUM_LEVELS - 1).skip(1) {
        if o.dynamic_level_bytes && level >= deepest {
            continue;
        }
        *score = v.level_bytes(level) as f64 / targets[level] as f64;
    }
    s
}

/// Where level 0 compacts to: level 1 under static targets; under dynamic ones the base level,
/// or a shallower level if one holds a table overlapping `inputs` (newer versions of a key must
/// stay above older ones).
pub fn level0_output<T: TableInfo>(v: &Version<T>, o: &Options, inputs: &[T]) -> usize {
    if !o.dynamic_level_bytes {
        return 1;
    }
    let base = base_level(v, o);
    if planted::active(Bug::Level0SkipsOverlappingLevel) {
        return base;
    }
    let Some((lo, hi)) = span(inputs) else {
        return base;
    };
    (1..base)
        .find(|l| !v.overlapping(*l, Some(&lo), Some(&hi)).is_empty())
        .unwrap_or(base)
}

/// Picks the most urgent compaction that `allowed` accepts (it refuses those that would clash
/// with one already running): the level with the highest score, if that score is at least 1
/// (ties go to the upper level). Level 0 moves down whole (its tables overlap); a deeper level
/// moves one table: the one whose overlap with the next level is smallest relative to its
/// size, and among equals the first after `pointers[level]` (where the last compaction of that
/// level ended), so they take turns. A refused compaction gives way to the level's next table
/// in that order, then to the next level by score, down to score 1.
pub fn pick_where<T: TableInfo>(
    v: &Version<T>,
    o: &Options,
    pointers: &mut [Vec<u8>; NUM_LEVELS],
    allowed: impl Fn(&Compaction<T>) -> bool,
) -> Option<Compaction<T>> {
    let scores = scores(v, o);
    let mut levels: Vec<usize> = (0..NUM_LEVELS).filter(|l| scores[*l] >= 1.0).collect();
    // Highest score first; the sort is stable, so ties keep the upper level first.
    levels.sort_by(|a, b| scores[*b].total_cmp(&scores[*a]));
    for level in levels {
        if level == 0 {
            let inputs = v.levels[0].clone();
            let out = level0_output(v, o, &inputs);
            match into_level(v, 0, out, inputs) {
                Some(c) if allowed(&c) => return Some(c),
                _ => continue,
            }
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
        let ptr = &pointers[level];
        let before_ptr = |t: &T| !ptr.is_empty() && user_range(t).0 <= &ptr[..];
        let mut order: Vec<(u64, bool, usize)> = tables
            .iter()
            .enumerate()
            .map(|(i, t)| (ratio(t), before_ptr(t), i))
            .collect();
        order.sort_unstable();
        for (_, _, i) in order {
            if let Some(c) = into_next_level(v, level, vec![tables[i].clone()]).filter(&allowed) {
                pointers[level] = user_range(&tables[i]).1.to_vec();
                return Some(c);
            }
        }
    }
    None
}
