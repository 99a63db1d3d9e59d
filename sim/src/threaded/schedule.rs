//! A shuttle scheduler driven by bytes: each byte picks which runnable thread goes next at a
//! scheduling point, so a coverage-guided fuzzer steers the interleaving itself. When the bytes
//! run out, a seeded RNG picks, so every input is a complete, reproducible run.

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use shuttle::scheduler::{Schedule, Scheduler, Task, TaskId};

pub(super) struct BytesScheduler {
    bytes: Vec<u8>,
    pos: usize,
    rng: ChaCha8Rng,
    seed: u64,
    started: bool,
}

impl BytesScheduler {
    pub(super) fn new(bytes: Vec<u8>, seed: u64) -> BytesScheduler {
        BytesScheduler {
            bytes,
            pos: 0,
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0x7363_6865_6475_6c65),
            seed,
            started: false,
        }
    }
}

impl Scheduler for BytesScheduler {
    fn new_execution(&mut self) -> Option<Schedule> {
        // One execution per input.
        if self.started {
            return None;
        }
        self.started = true;
        Some(Schedule::new(self.seed))
    }

    fn next_task(
        &mut self,
        runnable: &[&Task],
        _current: Option<TaskId>,
        _is_yielding: bool,
    ) -> Option<TaskId> {
        let pick = match self.bytes.get(self.pos) {
            Some(b) => {
                self.pos += 1;
                usize::from(*b)
            }
            None => self.rng.next_u64() as usize,
        };
        Some(runnable[pick % runnable.len()].id())
    }

    fn next_u64(&mut self) -> u64 {
        self.rng.next_u64()
    }
}
