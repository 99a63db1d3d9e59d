//! Leveled compaction: picking work by score, merging inputs with the overlapping tables of the
//! next level, the tombstone rule, and installing the result with one manifest edit.
//!
//! The tombstone rule: a compaction drops a tombstone only when its deletion time is at least
//! `tombstone_grace` ago by the engine's clock *and* no level deeper than the output can hold an
//! older version of its key. Anything less lets deleted data come back.

use crate::db::Inner;
use crate::env::join;
use crate::error::{Error, Result};
use crate::filename::table_name;
use crate::flush::create_table;
use crate::iter::{MergingIter, Source};
use crate::key::{self, Kind};
use crate::manifest::VersionEdit;
use crate::options::Options;
use crate::planted::{self, Bug};
use crate::sstable::{Table, TableBuilder, TableIter};
use crate::stats::Counters;
use crate::sync::{self, Arc, Ordering};
use crate::version::{user_range, Version, NUM_LEVELS};

/// One unit of compaction work.
pub(crate) struct Compaction {
    /// The level the inputs come from.
    pub level: usize,
    /// The level the outputs go to: `level + 1`, or `level` itself for a rewrite of the last
    /// level that drops expired tombstones.
    pub output_level: usize,
    /// Tables of `level`, newest first.
    pub inputs: Vec<Arc<Table>>,
    /// Tables of `output_level` that overlap the inputs (empty for a rewrite).
    pub next: Vec<Arc<Table>>,
}

/// Target size of `level` (level 1 and deeper).
pub(crate) fn level_target_bytes(o: &Options, level: usize) -> u64 {
    let mut t = o.level1_size_bytes;
    for _ in 1..level {
        t = t.saturating_mul(o.level_size_multiplier);
    }
    t
}

fn level_bytes(v: &Version, level: usize) -> u64 {
    v.levels[level].iter().map(|t| t.meta().size_bytes).sum()
}

/// The user-key range covering `tables`.
fn span(tables: &[Arc<Table>]) -> Option<(Vec<u8>, Vec<u8>)> {
    let lo = tables.iter().map(|t| user_range(t).0).min()?;
    let hi = tables.iter().map(|t| user_range(t).1).max()?;
    Some((lo.to_vec(), hi.to_vec()))
}

/// Builds the compaction of `inputs` (from `level`) into `level + 1`.
pub(crate) fn into_next_level(
    v: &Version,
    level: usize,
    inputs: Vec<Arc<Table>>,
) -> Option<Compaction> {
    let (lo, hi) = span(&inputs)?;
    let next = v.overlapping(level + 1, Some(&lo), Some(&hi));
    Some(Compaction {
        level,
        output_level: level + 1,
        inputs,
        next,
    })
}

/// Picks the most urgent compaction: the level with the highest score (level-0 table count
/// over its trigger; a deeper level's size over its target), if that score is at least 1.
/// `pointers[level]` is where the last compaction of each level ended, so tables of a level
/// take turns.
pub(crate) fn pick(
    v: &Version,
    o: &Options,
    pointers: &mut [Vec<u8>; NUM_LEVELS],
) -> Option<Compaction> {
    let mut best = (0.0f64, 0usize);
    let l0 = v.levels[0].len() as f64 / o.l0_compaction_trigger as f64;
    if l0 > best.0 {
        best = (l0, 0);
    }
    for level in 1..NUM_LEVELS - 1 {
        let score = level_bytes(v, level) as f64 / level_target_bytes(o, level) as f64;
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
    let ptr = &pointers[level];
    let t = tables
        .iter()
        .find(|t| ptr.is_empty() || user_range(t).0 > &ptr[..])
        .or_else(|| tables.first())?
        .clone();
    pointers[level] = user_range(&t).1.to_vec();
    into_next_level(v, level, vec![t])
}

/// What a compaction did.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Outcome {
    pub tombstones_dropped: u64,
    pub input_bytes: u64,
    pub output_bytes: u64,
}

impl Inner {
    /// Runs one compaction: merge, write outputs, one manifest edit, install, and removal of the
    /// inputs once no reader holds them.
    pub(crate) fn run_compaction(&self, c: Compaction, v: &Version) -> Result<Outcome> {
        let o = &self.opts;
        let fs = &*self.env.fs;
        let mut sources: Vec<Source> = Vec::new();
        for t in c.inputs.iter().chain(c.next.iter()) {
            sources.push(Source::Table(Box::new(TableIter::new(t.clone()))));
        }
        let mut merge = MergingIter::new(sources);
        merge.seek(None)?;
        let now = self.env.clock.now_ms();
        let grace_ms = u64::try_from(o.tombstone_grace.as_millis()).unwrap_or(u64::MAX);
        let mut outcome = Outcome {
            input_bytes: c
                .inputs
                .iter()
                .chain(c.next.iter())
                .map(|t| t.meta().size_bytes)
                .sum(),
            ..Outcome::default()
        };
        let mut outputs: Vec<Arc<Table>> = Vec::new();
        let mut builder: Option<(TableBuilder, u64)> = None;
        let mut last_user_key: Option<Vec<u8>> = None;
        // With the planted bug, the oldest version of a key wins instead of the newest.
        let prefer_older = planted::active(Bug::PreferOlderVersion);
        let mut pending: Option<(Vec<u8>, Vec<u8>)> = None;
        while merge.valid() {
            let ikey = merge.key();
            let p = key::parse(ikey).ok_or_else(|| {
                Error::corruption(
                    &self.dir,
                    0,
                    "compaction input holds a malformed internal key",
                )
            })?;
            let shadowed = last_user_key.as_deref() == Some(p.user_key);
            if shadowed && !prefer_older {
                merge.advance()?;
                continue;
            }
            if !shadowed {
                last_user_key = Some(p.user_key.to_vec());
                if let Some((k, val)) = pending.take() {
                    self.emit(&mut builder, &mut outputs, &k, &val)?;
                }
            }
            let value = merge.value();
            if p.kind == Kind::Delete {
                let t = value.try_into().map(u64::from_le_bytes).map_err(|_| {
                    Error::corruption(&self.dir, 0, "tombstone without its 8-byte deletion time")
                })?;
                let expired = now >= t.saturating_add(grace_ms)
                    || planted::active(Bug::DropTombstonesIgnoringGrace);
                let bottom = !v.deeper_may_hold(c.output_level, p.user_key)
                    || planted::active(Bug::DropTombstonesAtNonBottomLevel);
                if expired && bottom && !prefer_older {
                    outcome.tombstones_dropped += 1;
                    merge.advance()?;
                    continue;
                }
            }
            if prefer_older {
                pending = Some((ikey.to_vec(), value.to_vec()));
            } else {
                let (k, val) = (ikey.to_vec(), value.to_vec());
                self.emit(&mut builder, &mut outputs, &k, &val)?;
            }
            merge.advance()?;
        }
        if let Some((k, val)) = pending.take() {
            self.emit(&mut builder, &mut outputs, &k, &val)?;
        }
        if let Some((b, number)) = builder.take() {
            outputs.push(self.finish_output(b, number)?);
        }
        if !outputs.is_empty() {
            // Durability point: without this directory fsync, the outputs' directory entries could
            // vanish at a power loss after the manifest named them.
            fs.sync_dir(&self.dir)
                .map_err(|e| Error::io("sync_dir", &self.dir, e))?;
        }
        outcome.output_bytes = outputs.iter().map(|t| t.meta().size_bytes).sum();
        let removed: Vec<u64> = c
            .inputs
            .iter()
            .chain(c.next.iter())
            .map(|t| t.meta().number)
            .collect();
        let edit = VersionEdit {
            next_file: Some(self.next_file.load(Ordering::SeqCst)),
            added: outputs
                .iter()
                .map(|t| (c.output_level as u32, t.meta().clone()))
                .collect(),
            deleted: c
                .inputs
                .iter()
                .map(|t| (c.level as u32, t.meta().number))
                .chain(
                    c.next
                        .iter()
                        .map(|t| (c.output_level as u32, t.meta().number)),
                )
                .collect(),
            ..VersionEdit::default()
        };
        if planted::active(Bug::DeleteInputsBeforeManifestDurable) {
            for t in c.inputs.iter().chain(c.next.iter()) {
                let _ = fs.remove_file(t.path());
            }
        }
        {
            let mut manifest = sync::lock(&self.manifest);
            // Another thread's failure may have come while this compaction ran.
            self.check_writable()?;
            manifest.append(&edit)?;
        }
        {
            let mut cur = sync::write(&self.sv);
            let mut next = (**cur).clone();
            next.version = Arc::new(next.version.apply(&removed, c.output_level, outputs));
            *cur = Arc::new(next);
        }
        sync::lock(&self.obsolete).extend(c.inputs.into_iter().chain(c.next));
        Counters::add(&self.counters.compactions, 1);
        Counters::add(
            &self.counters.tombstones_dropped,
            outcome.tombstones_dropped,
        );
        Counters::add(
            &self.counters.bytes_reclaimed,
            outcome.input_bytes.saturating_sub(outcome.output_bytes),
        );
        self.purge_obsolete();
        let _g = sync::lock(&self.bg);
        self.flushed.notify_all();
        Ok(outcome)
    }

    fn emit(
        &self,
        builder: &mut Option<(TableBuilder, u64)>,
        outputs: &mut Vec<Arc<Table>>,
        ikey: &[u8],
        value: &[u8],
    ) -> Result<()> {
        if builder.is_none() {
            let number = self.next_file.fetch_add(1, Ordering::SeqCst);
            let b = create_table(&self.env, &self.dir, &self.opts, number)?;
            *builder = Some((b, number));
        }
        let (b, _) = builder.as_mut().expect("just made");
        b.add(ikey, value)?;
        // One version per key reaches here, so a split never separates versions of a key.
        if b.size_estimate() >= self.opts.table_size_bytes {
            let (b, number) = builder.take().expect("present");
            outputs.push(self.finish_output(b, number)?);
        }
        Ok(())
    }

    fn finish_output(&self, b: TableBuilder, number: u64) -> Result<Arc<Table>> {
        b.finish()?;
        let path = join(&self.dir, &table_name(number));
        Ok(Arc::new(Table::open(&*self.env.fs, &path, number)?))
    }

    /// Runs one compaction if a level is over its target. Returns whether it did.
    pub(crate) fn compact_step(&self) -> Result<bool> {
        let _c = sync::lock(&self.compact_mu);
        self.check_writable()?;
        let v = self.super_version().version.clone();
        let picked = {
            let mut ptrs = sync::lock(&self.compact_pointers);
            pick(&v, &self.opts, &mut ptrs)
        };
        match picked {
            Some(c) => {
                self.run_compaction(c, &v)?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Compacts every table overlapping `[lo, hi]` down to the deepest level, then rewrites that
    /// level's overlapping tables that hold tombstones, dropping the expired ones.
    pub(crate) fn compact_range(&self, lo: Option<&[u8]>, hi: Option<&[u8]>) -> Result<()> {
        let _c = sync::lock(&self.compact_mu);
        for level in 0..NUM_LEVELS - 1 {
            self.check_writable()?;
            let v = self.super_version().version.clone();
            let last = v.deepest_level().max(1);
            if level >= last {
                break;
            }
            let inputs = if level == 0 {
                // Older level-0 tables must move down no later than newer ones: take them all.
                if v.overlapping(0, lo, hi).is_empty() {
                    continue;
                }
                v.levels[0].clone()
            } else {
                v.overlapping(level, lo, hi)
            };
            if let Some(c) = into_next_level(&v, level, inputs) {
                self.run_compaction(c, &v)?;
            }
        }
        let v = self.super_version().version.clone();
        let last = v.deepest_level();
        if last >= 1 {
            let inputs: Vec<_> = v.overlapping(last, lo, hi);
            if inputs.iter().any(|t| t.meta().tombstones > 0) {
                let c = Compaction {
                    level: last,
                    output_level: last,
                    inputs,
                    next: Vec::new(),
                };
                self.run_compaction(c, &v)?;
            }
        }
        Ok(())
    }

    /// Removes the files of obsolete tables that no reader holds any more.
    pub(crate) fn purge_obsolete(&self) {
        let dead: Vec<Arc<Table>> = {
            let mut obs = sync::lock(&self.obsolete);
            let (dead, live): (Vec<_>, Vec<_>) =
                obs.drain(..).partition(|t| Arc::strong_count(t) == 1);
            *obs = live;
            dead
        };
        for t in dead {
            // The manifest edit that dropped this table is durable and no version names it; if
            // the removal fails, the next open removes it as an orphan.
            if self.env.fs.remove_file(t.path()).is_err() {
                Counters::add(&self.counters.obsolete_file_errors, 1);
            }
        }
    }
}
