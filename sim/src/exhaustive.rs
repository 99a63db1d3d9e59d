//! Exhaustive crash states, in the manner of ALICE and CrashMonkey: for a short workload, every
//! filesystem call is taken as the crash point in turn, and at each, every allowed survival of
//! the unsynced pages and directory changes (up to a bound) is enumerated, checking prefix
//! consistency (rule 2) on each resulting state.

use crate::runner::{run_steps_with, Chooser, Failure, RunSummary};
use crate::workload::{Knobs, Step};

/// What an exhaustive check covered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coverage {
    /// Filesystem calls in the fault-free run: the crash points tried.
    pub crash_points: u64,
    /// Crash states checked (crash point x survival choice).
    pub states: u64,
    /// Crash points whose survival choices were cut off by the bound.
    pub truncated_points: u64,
}

/// Advances an odometer over choice scripts: the last choice that can still grow grows, and
/// every choice after it goes back to 0. `None` when every script was tried.
fn next_script(script: &[u64], asked: &[u64]) -> Option<Vec<u64>> {
    let mut s: Vec<u64> = asked
        .iter()
        .enumerate()
        .map(|(i, _)| script.get(i).copied().unwrap_or(0))
        .collect();
    for i in (0..s.len()).rev() {
        if s[i] + 1 < asked[i] {
            s[i] += 1;
            s.truncate(i + 1);
            return Some(s);
        }
    }
    None
}

/// Checks every crash point of `steps` (which should hold no fault steps) with up to
/// `max_states_per_point` survival choices each.
pub fn check(
    seed: u64,
    knobs: &Knobs,
    steps: &[Step],
    max_states_per_point: u64,
) -> Result<Coverage, Box<Failure>> {
    let (clean, _) = run_steps_with(
        seed,
        knobs,
        steps,
        Chooser::Script {
            script: vec![],
            asked: vec![],
        },
    );
    let clean: RunSummary = clean?;
    // The first open makes calls before step 0 runs; crash points count from step 0.
    let mut cov = Coverage::default();
    let mut prefixed = Vec::with_capacity(steps.len() + 1);
    for k in 1..=clean.fs_calls {
        prefixed.clear();
        prefixed.push(Step::CrashAfterCalls {
            calls: k as u32,
            power: true,
        });
        prefixed.extend_from_slice(steps);
        let mut script = Vec::new();
        let mut states = 0;
        cov.crash_points += 1;
        loop {
            let (r, chooser) = run_steps_with(
                seed,
                knobs,
                &prefixed,
                Chooser::Script {
                    script: script.clone(),
                    asked: vec![],
                },
            );
            r?;
            states += 1;
            cov.states += 1;
            let Chooser::Script { asked, .. } = chooser else {
                unreachable!()
            };
            match next_script(&script, &asked) {
                Some(s) if states < max_states_per_point => script = s,
                Some(_) => {
                    cov.truncated_points += 1;
                    break;
                }
                None => break,
            }
        }
    }
    Ok(cov)
}

#[cfg(test)]
mod tests {
    use super::next_script;

    #[test]
    fn odometer_enumerates_every_script_once() {
        // Arity 2 then 3: six scripts.
        let asked = [2, 3];
        let mut seen = vec![vec![]];
        let mut s = vec![];
        while let Some(n) = next_script(&s, &asked) {
            seen.push(n.clone());
            s = n;
        }
        assert_eq!(seen.len(), 6, "{seen:?}");
    }
}
