//! Installing a compaction's result: one manifest edit naming the outputs and dropping the
//! inputs, then the new version, then the inputs' removal once no reader holds them.

use super::{Compaction, Outcome};
use crate::db::obsolete;
use crate::db::shared::Shared;
use crate::error::Result;
use crate::manifest::VersionEdit;
use crate::planted::{self, Bug};
use crate::sstable::Table;
use crate::stats::Counters;
use crate::sync::{self, Arc, Ordering};
use crate::version::Version;

/// A trivial move: one edit takes the table out of its level and puts the same file in the
/// next one; the file stays, as no version stops naming it.
pub(super) fn install_move(shared: &Shared, c: Compaction) -> Result<()> {
    let t = c.inputs[0].clone();
    let edit = VersionEdit {
        added: vec![(c.output_level as u32, t.meta().clone())],
        deleted: vec![(c.level as u32, t.meta().number)],
        ..VersionEdit::default()
    };
    {
        let mut manifest = sync::lock(&shared.manifest);
        shared.check_writable()?;
        manifest.append(&edit)?;
    }
    let number = t.meta().number;
    shared.install(|sv| {
        sv.version = Arc::new(sv.version.apply(&[number], c.output_level, vec![t]));
    });
    Counters::add(&shared.counters.trivial_moves, 1);
    planted::note_moved(Some(number));
    shared.notify_progress();
    Ok(())
}

pub(super) fn install(
    shared: &Shared,
    c: Compaction,
    read: &Version,
    outputs: Vec<Arc<Table>>,
    outcome: Outcome,
) -> Result<()> {
    let removed: Vec<u64> = c.all_inputs().map(|t| t.meta().number).collect();
    let edit = VersionEdit {
        next_file: Some(shared.next_file.load(Ordering::SeqCst)),
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
        for t in c.all_inputs() {
            let _ = shared.env.fs.remove_file(t.path());
        }
    }
    {
        let mut manifest = sync::lock(&shared.manifest);
        // Another thread's failure may have come while this compaction ran.
        shared.check_writable()?;
        manifest.append(&edit)?;
    }
    shared.install(|sv| {
        // The edit applies to the version as it is now: a flush may have added a level-0 table
        // since the compaction read `read`.
        let base = if planted::active(Bug::InstallOnStaleVersion) {
            read
        } else {
            &sv.version
        };
        sv.version = Arc::new(base.apply(&removed, c.output_level, outputs));
    });
    let counters = &shared.counters;
    Counters::add(&counters.compactions, 1);
    Counters::add(&counters.tombstones_dropped, outcome.tombstones_dropped);
    Counters::add(
        &counters.range_tombstones_dropped,
        outcome.range_tombstones_dropped,
    );
    Counters::add(
        &counters.versions_kept_for_snapshots,
        outcome.kept_for_snapshots,
    );
    Counters::add(&counters.seqs_zeroed, outcome.seqs_zeroed);
    Counters::add(
        &counters.bytes_reclaimed,
        outcome.input_bytes.saturating_sub(outcome.output_bytes),
    );
    obsolete::retire(shared, c.inputs.into_iter().chain(c.next));
    shared.notify_progress();
    Ok(())
}
