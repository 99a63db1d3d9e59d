//! Every crash point of a short workload, and at each every survival of unsynced pages and
//! directory changes up to a bound, is checked for prefix consistency (rule 2).
use sedimentdb_sim::exhaustive::check;
use sedimentdb_sim::workload::{Knobs, Step};

#[test]
fn every_crash_state_of_a_short_workload_is_prefix_consistent() {
    let knobs = Knobs {
        memtable_size_bytes: 2048,
        block_size_bytes: 256,
        ..Knobs::default()
    };
    let mut steps = Vec::new();
    for i in 0..24u32 {
        steps.push(match i % 8 {
            3 => Step::Delete {
                key: i % 5,
                sync: true,
            },
            5 => Step::Batch {
                ops: vec![(i % 7, Some(40)), (i % 3, None)],
                tag: i,
                sync: i % 2 == 0,
            },
            7 => Step::Flush,
            _ => Step::Put {
                key: i % 6,
                len: 30 + 60 * (i % 3),
                tag: i,
                sync: i % 3 != 0,
            },
        });
    }
    // A compaction of everything last, so crash points land inside a compaction too.
    steps.push(Step::CompactRange {
        from: None,
        to: None,
    });
    let cov = check(5, &knobs, &steps, 256).unwrap_or_else(|f| panic!("{f}"));
    println!("{cov:?}");
    assert!(cov.crash_points > 150, "{cov:?}");
    assert!(cov.states > 3 * cov.crash_points, "{cov:?}");
}
