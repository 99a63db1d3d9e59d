//! What the seeded adapter tests share: their random numbers and their seed count.
#![allow(dead_code)]

/// A small seeded generator (xorshift): the same seed, the same run.
#[derive(Clone, Debug)]
pub struct Rng(pub u64);

impl Default for Rng {
    fn default() -> Rng {
        Rng(1)
    }
}

impl Rng {
    /// A number below `n` (0 for `n` = 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// The seed count from environment variable `var`, or `default`.
pub fn seeds(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}
