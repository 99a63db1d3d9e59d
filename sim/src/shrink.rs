//! Shrinking: reduce a failing step list to a short one that still fails, and print it as a
//! regression test.

use crate::runner::{run_steps, Failure};
use crate::workload::{Knobs, Step};

/// Removes chunks of steps (halves, quarters, ... single steps) while the run still fails, up to
/// `max_runs` reruns. Returns the shortest failing list found and its failure.
pub fn shrink(
    seed: u64,
    knobs: &Knobs,
    steps: &[Step],
    max_runs: usize,
) -> (Vec<Step>, Box<Failure>) {
    let mut best: Vec<Step> = steps.to_vec();
    let mut failure = match run_steps(seed, knobs, &best) {
        Err(f) => f,
        Ok(_) => panic!("shrink called on a passing run"),
    };
    // Steps after the failing one never matter.
    best.truncate(failure.step + 1);
    let mut runs = 0;
    let mut chunk = best.len().div_ceil(2).max(1);
    loop {
        let mut i = 0;
        let mut progressed = false;
        while i < best.len() && runs < max_runs {
            let end = (i + chunk).min(best.len());
            let mut candidate = best[..i].to_vec();
            candidate.extend_from_slice(&best[end..]);
            runs += 1;
            match run_steps(seed, knobs, &candidate) {
                Err(f) => {
                    candidate.truncate(f.step + 1);
                    best = candidate;
                    failure = f;
                    progressed = true;
                }
                Ok(_) => i += chunk,
            }
        }
        if runs >= max_runs || (chunk == 1 && !progressed) {
            break;
        }
        if !progressed {
            chunk = (chunk / 2).max(1);
        }
    }
    (best, failure)
}

/// The shrunk run as a ready-to-paste regression test.
pub fn regression_test(seed: u64, knobs: &Knobs, steps: &[Step], failure: &Failure) -> String {
    let mut s = String::new();
    s.push_str("#[test]\n");
    s.push_str(&format!("fn regression_seed_{seed}() {{\n"));
    s.push_str(&format!(
        "    // Shrunk from seed {seed}: {}\n",
        failure.expected.replace('\n', " ")
    ));
    s.push_str("    use sedimentdb_sim::workload::{Knobs, Step};\n");
    s.push_str(&format!(
        "    let knobs = Knobs {{ memtable_size_bytes: {}, block_size_bytes: {}, l0_compaction_trigger: {}, \
         level1_size_bytes: {}, table_size_bytes: {}, tombstone_grace_ms: {}, manual_background: {}, \
         db_dir: {:?}, ..Knobs::default() }};\n",
        knobs.memtable_size_bytes,
        knobs.block_size_bytes,
        knobs.l0_compaction_trigger,
        knobs.level1_size_bytes,
        knobs.table_size_bytes,
        knobs.tombstone_grace_ms,
        knobs.manual_background,
        knobs.db_dir
    ));
    s.push_str("    let steps = vec![\n");
    for st in steps {
        s.push_str(&format!("        {},\n", st.to_rust()));
    }
    s.push_str("    ];\n");
    s.push_str(&format!(
        "    if let Err(f) = sedimentdb_sim::runner::run_steps({seed}, &knobs, &steps) {{\n        panic!(\"{{f}}\");\n    }}\n"
    ));
    s.push_str("}\n");
    s
}
