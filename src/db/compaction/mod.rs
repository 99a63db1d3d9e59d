//! Leveled compaction: picking work (`pick.rs`, pure), merging inputs with the overlapping
//! tables of the next level (`merge.rs`, the tombstone rule), writing the outputs (here), and
//! installing the result with one manifest edit (`install.rs`).
//!
//! Order (each step durable before the next): write and fsync every output table, fsync the
//! directory, append and fsync the manifest edit, install the new version, remove the inputs
//! once no reader holds them.

mod install;
mod merge;
pub(crate) mod pick;

use super::running::Running;
use super::shared::Shared;
use crate::error::{Error, Result};
use crate::iter::{MergingIter, Source};
use crate::key;
use crate::options::Options;
use crate::planted::{self, Bug};
use crate::rangedel::Fragments;
use crate::sstable::{Table, TableBuilder, TableIter};
use crate::stats::Counters;
use crate::sync::{self, Arc, MutexGuard, Ordering};
use crate::version::{user_range, TableInfo, Version, NUM_LEVELS};
pub(crate) use merge::{Merge, Rule};
pub(crate) use pick::into_next_level;

/// One unit of compaction work.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Compaction<T = Arc<Table>> {
    /// The level the inputs come from.
    pub level: usize,
    /// The level the outputs go to: `level + 1`, or `level` itself for a rewrite of the last
    /// level that drops expired tombstones.
    pub output_level: usize,
    /// Tables of `level`, in the level's order.
    pub inputs: Vec<T>,
    /// Tables of `output_level` that overlap the inputs (empty for a rewrite).
    pub next: Vec<T>,
}

impl<T: TableInfo> Compaction<T> {
    /// True if the compaction is a *trivial move*: one table into the next level, where no
    /// table overlaps it, and both levels use the same codec. Its file then moves by a
    /// manifest edit alone, rewritten by nobody: nothing is merged, so nothing would be
    /// dropped. (Across a codec change the table is rewritten, or data loaded in key order
    /// would reach the last level never compressed with its codec.)
    pub fn is_trivial_move(&self, o: &Options) -> bool {
        self.inputs.len() == 1
            && self.output_level > self.level
            && o.compression_for(self.level) == o.compression_for(self.output_level)
            && (self.next.is_empty() || planted::active(Bug::MoveOverlappingTable))
    }

    /// Every table the compaction reads.
    pub fn all_inputs(&self) -> impl Iterator<Item = &T> {
        self.inputs.iter().chain(self.next.iter())
    }
}

impl Compaction {
    /// The numbers of the tables it reads.
    fn table_numbers(&self) -> impl Iterator<Item = u64> + '_ {
        self.all_inputs().map(|t| t.meta().number)
    }

    /// The user-key range it writes into its output level: the span of what it reads.
    fn key_span(&self) -> (&[u8], &[u8]) {
        let lo = self.all_inputs().map(|t| user_range(t).0).min();
        let hi = self.all_inputs().map(|t| user_range(t).1).max();
        (lo.unwrap_or_default(), hi.unwrap_or_default())
    }

    /// True if no level deeper than the output holds a table over its key span in `v`: what
    /// it writes is the oldest version of each key anywhere.
    fn is_bottom(&self, v: &Version) -> bool {
        let (lo, hi) = self.key_span();
        v.nothing_deeper(self.output_level, lo, hi)
    }

    fn clashes(&self, running: &Running) -> bool {
        let (lo, hi) = self.key_span();
        running.conflicts(self.table_numbers(), self.output_level, lo, hi)
    }
}

/// Runs `c` under a claim registered in `running` (whose lock the caller passes), and releases
/// the claim however it ends.
fn run_claimed(
    shared: &Shared,
    mut running: MutexGuard<'_, Running>,
    c: Compaction,
    v: &Version,
) -> Result<Outcome> {
    let (lo, hi) = c.key_span();
    let id = running.claim(c.table_numbers().collect(), c.output_level, lo, hi);
    drop(running);
    let r = run(shared, c, v);
    sync::lock(&shared.compact_mu).release(id);
    shared.compact_cv.notify_all();
    r
}

/// Runs one compaction if a level is over its target and one can start beside those running
/// (`compaction_threads > 1` runs them at once on disjoint tables and key ranges). Returns
/// whether it did.
pub(crate) fn step(shared: &Shared) -> Result<bool> {
    step_with(shared, false)
}

/// Runs one compaction if a level is over its target, waiting for running compactions that
/// the one due would clash with. Returns false only when no compaction is due.
pub(crate) fn step_waiting(shared: &Shared) -> Result<bool> {
    step_with(shared, true)
}

fn step_with(shared: &Shared, wait: bool) -> Result<bool> {
    let mut running = sync::lock(&shared.compact_mu);
    loop {
        shared.check_writable()?;
        let v = shared.super_version().version.clone();
        let (picked, due) = {
            let mut ptrs = sync::lock(&shared.compact_pointers);
            let picked = pick::pick_where(&v, &shared.opts, &mut ptrs, |c| {
                planted::active(Bug::PickClaimedTable) || !c.clashes(&running)
            });
            // Probed on a copy, so the real pointers move only when a compaction runs.
            let due = picked.is_some()
                || (wait
                    && pick::pick_where(&v, &shared.opts, &mut ptrs.clone(), |_| true).is_some());
            (picked, due)
        };
        match picked {
            Some(c) => {
                if running.len() > 0 {
                    Counters::add(&shared.counters.parallel_compactions, 1);
                }
                run_claimed(shared, running, c, &v)?;
                return Ok(true);
            }
            None if !due => return Ok(false),
            None => running = sync::wait(&shared.compact_cv, running),
        }
    }
}

/// A compaction free to run: the registry's lock (to claim it under), the compaction, and the
/// version it was built from.
type Clear<'a> = (MutexGuard<'a, Running>, Compaction, Arc<Version>);

/// The compaction `make` builds from the current version once it clashes with none running
/// (waiting for those it would), or `None` when `make` finds nothing to do.
fn when_clear<'a>(
    shared: &'a Shared,
    mut make: impl FnMut(&Version) -> Option<Compaction>,
) -> Result<Option<Clear<'a>>> {
    let mut running = sync::lock(&shared.compact_mu);
    loop {
        shared.check_writable()?;
        let v = shared.super_version().version.clone();
        match make(&v) {
            None => return Ok(None),
            Some(c) if !c.clashes(&running) => return Ok(Some((running, c, v))),
            Some(_) => running = sync::wait(&shared.compact_cv, running),
        }
    }
}

/// Compacts every table overlapping `[lo, hi]` down to the deepest level, then rewrites that
/// level's overlapping tables if any holds tombstones or older versions (kept for a snapshot),
/// dropping what no reader needs any more.
pub(crate) fn compact_range(shared: &Shared, lo: Option<&[u8]>, hi: Option<&[u8]>) -> Result<()> {
    for level in 0..NUM_LEVELS - 1 {
        let mut past_last = false;
        let picked = when_clear(shared, |v| {
            let last = v.deepest_level().max(1);
            if level >= last {
                past_last = true;
                return None;
            }
            let inputs = if level == 0 {
                // Older level-0 tables must move down no later than newer ones: take them all.
                if v.overlapping(0, lo, hi).is_empty() {
                    return None;
                }
                v.levels[0].clone()
            } else {
                v.overlapping(level, lo, hi)
            };
            into_next_level(v, level, inputs)
        })?;
        if let Some((running, c, v)) = picked {
            run_claimed(shared, running, c, &v)?;
        } else if past_last {
            break;
        }
    }
    let picked = when_clear(shared, |v| {
        let last = v.deepest_level();
        if last == 0 {
            return None;
        }
        let inputs: Vec<_> = v.overlapping(last, lo, hi);
        inputs
            .iter()
            .any(|t| {
                t.meta().tombstones > 0 || !t.range_dels().is_empty() || t.older_versions() > 0
            })
            .then(|| Compaction {
                level: last,
                output_level: last,
                inputs,
                next: Vec::new(),
            })
    })?;
    if let Some((running, c, v)) = picked {
        run_claimed(shared, running, c, &v)?;
    }
    Ok(())
}

/// What a compaction did.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Outcome {
    pub tombstones_dropped: u64,
    pub range_tombstones_dropped: u64,
    pub kept_for_snapshots: u64,
    pub seqs_zeroed: u64,
    pub input_bytes: u64,
    pub output_bytes: u64,
}

/// Runs one compaction: merge, write outputs, one manifest edit, install, and removal of the
/// inputs once no reader holds them.
fn run(shared: &Shared, c: Compaction, v: &Version) -> Result<Outcome> {
    if c.is_trivial_move(&shared.opts) {
        let (n, from, to) = (c.inputs[0].meta().number, c.level, c.output_level);
        install::install_move(shared, c)?;
        log::info!(
            "{}: moved table {n} from level {from} to level {to} (it overlaps nothing there)",
            shared.dir.display()
        );
        return Ok(Outcome::default());
    }
    shared.compactions_running.fetch_add(1, Ordering::SeqCst);
    let r = merge_and_install(shared, c, v);
    shared.compactions_running.fetch_sub(1, Ordering::SeqCst);
    r
}

fn merge_and_install(shared: &Shared, c: Compaction, v: &Version) -> Result<Outcome> {
    let t0 = shared.env.clock.now_ms();
    let sources = c
        .all_inputs()
        // A compaction reads each block once: it uses cached blocks but adds none.
        .map(|t| Source::Table(Box::new(TableIter::with_fill(t.clone(), false))))
        .collect();
    let mut iter = MergingIter::new(sources);
    iter.seek(None)?;
    // Listed after the inputs were chosen: a snapshot taken later sees every version they hold.
    let snapshots = shared.snapshot_seqs();
    let ranges = Fragments::merge(c.all_inputs().map(|t| t.range_dels()));
    let mut merge = Merge::new(
        Rule {
            version: v,
            output_level: c.output_level,
            now_ms: shared.env.clock.now_ms(),
            grace_ms: u64::try_from(shared.opts.tombstone_grace.as_millis()).unwrap_or(u64::MAX),
            bottom: c.is_bottom(v),
        },
        &snapshots,
        &ranges,
    );
    let mut out = Outputs {
        shared,
        level: c.output_level,
        building: None,
        cut_pending: false,
        last_user_key: Vec::new(),
        lower: None,
        ranges: Fragments::default(),
        done: Vec::new(),
    };
    // The range tombstones the outputs keep: each output takes its own slice of them,
    // clipped when it is cut.
    let (kept_ranges, range_dropped) = merge.output_ranges();
    out.ranges = kept_ranges;
    let mut emit = |k: &[u8], val: &[u8]| out.add(k, val);
    while iter.valid() {
        merge.offer(iter.key(), iter.value(), || iter.origin(), &mut emit)?;
        iter.advance()?;
    }
    let merge = merge.finish(&mut emit)?;
    let outputs = out.finish()?;
    let outcome = Outcome {
        tombstones_dropped: merge.tombstones_dropped,
        range_tombstones_dropped: range_dropped,
        kept_for_snapshots: merge.kept_for_snapshots,
        seqs_zeroed: merge.seqs_zeroed,
        input_bytes: c.all_inputs().map(|t| t.meta().size_bytes).sum(),
        output_bytes: outputs.iter().map(|t| t.meta().size_bytes).sum(),
    };
    let counters = &shared.counters;
    let level_bytes = |ts: &[Arc<Table>]| ts.iter().map(|t| t.meta().size_bytes).sum::<u64>();
    Counters::add(&counters.level_read[c.level], level_bytes(&c.inputs));
    Counters::add(&counters.level_read[c.output_level], level_bytes(&c.next));
    Counters::add(
        &counters.level_written[c.output_level],
        outcome.output_bytes,
    );
    let numbers = |ts: &[Arc<Table>]| {
        ts.iter()
            .map(|t| t.meta().number.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let what = format!(
        "{}: compacted level {} [{}] and level {} [{}] ({} bytes) into [{}] ({} bytes): {} \
         tombstones and {} range tombstones dropped",
        shared.dir.display(),
        c.level,
        numbers(&c.inputs),
        c.output_level,
        numbers(&c.next),
        outcome.input_bytes,
        numbers(&outputs),
        outcome.output_bytes,
        outcome.tombstones_dropped,
        outcome.range_tombstones_dropped,
    );
    install::install(shared, c, v, outputs, outcome)?;
    let ms = shared.env.clock.now_ms().saturating_sub(t0);
    log::info!("{what}, in {ms} ms");
    Ok(outcome)
}

/// The output tables of one compaction, cut at `table_size_bytes` between two keys (never
/// between versions of one key, which may be several while snapshots live). Each output gets
/// the range tombstones of its own key range, clipped at the cuts, so the outputs' ranges stay
/// disjoint.
struct Outputs<'a> {
    shared: &'a Shared,
    /// The level the outputs go to (it chooses their codec).
    level: usize,
    building: Option<TableBuilder>,
    /// The table being built is full: cut it before the next key.
    cut_pending: bool,
    last_user_key: Vec<u8>,
    /// Where the table being built begins (`None`: the first output).
    lower: Option<Vec<u8>>,
    ranges: Fragments,
    done: Vec<Arc<Table>>,
}

impl Outputs<'_> {
    fn add(&mut self, ikey: &[u8], value: &[u8]) -> Result<()> {
        let s = self.shared;
        let uk = key::user_key(ikey);
        if self.cut_pending && uk != &self.last_user_key[..] {
            let uk = uk.to_vec();
            self.cut(Some(&uk))?;
            self.lower = Some(uk);
            self.cut_pending = false;
        }
        let b = match &mut self.building {
            Some(b) => b,
            None => self.building.insert(TableBuilder::create(
                &*s.env.fs,
                &s.dir,
                s.new_file_number(),
                &s.opts,
                self.level,
            )?),
        };
        b.add(ikey, value)?;
        self.last_user_key.clear();
        self.last_user_key.extend_from_slice(uk);
        if b.size_estimate() >= s.opts.table_size_bytes {
            self.cut_pending = true;
        }
        Ok(())
    }

    /// Finishes the table being built, if any, with the range tombstones from `lower` to
    /// `upper`: synced and opened.
    fn cut(&mut self, upper: Option<&[u8]>) -> Result<()> {
        if let Some(mut b) = self.building.take() {
            b.set_range_tombstones(self.ranges.clip(self.lower.as_deref(), upper));
            let (number, path) = (b.number(), b.path().to_path_buf());
            let (_, blocks) = b.finish_counted()?;
            self.shared.counters.count_blocks(blocks);
            let t = Table::open_cached(
                &*self.shared.env.fs,
                &path,
                number,
                self.shared.block_cache.clone(),
            )?;
            self.done.push(Arc::new(t));
        }
        Ok(())
    }

    /// Finishes the last table (one holding only range tombstones if no entry survived) and
    /// makes every output's directory entry durable.
    fn finish(mut self) -> Result<Vec<Arc<Table>>> {
        if self.building.is_none() && self.done.is_empty() && !self.ranges.is_empty() {
            let s = self.shared;
            self.building = Some(TableBuilder::create(
                &*s.env.fs,
                &s.dir,
                s.new_file_number(),
                &s.opts,
                self.level,
            )?);
        }
        self.cut(None)?;
        if !self.done.is_empty() && !planted::active(Bug::SkipCompactionDirSync) {
            let dir = &self.shared.dir;
            // Durability point: without this directory fsync, the outputs' directory entries
            // could vanish at a power loss after the manifest named them.
            self.shared
                .env
                .fs
                .sync_dir(dir)
                .map_err(|e| Error::io("sync_dir", dir, e))?;
        }
        Ok(self.done)
    }
}
