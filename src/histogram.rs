//! A latency histogram cheap enough to stay on: 256 log-linear buckets of atomic counters (four
//! per power of two, so a reported percentile is within 25% of the true value), recorded with
//! two relaxed atomic adds and a max.

// Plain atomics, not `crate::sync`'s: the histograms synchronize nothing, so under loom and
// shuttle they need not be (and should not be) scheduling points.
use std::sync::atomic::{AtomicU64, Ordering};

const BUCKETS: usize = 256;

/// Counts of values (microseconds) by bucket.
pub(crate) struct Histogram {
    buckets: Vec<AtomicU64>,
    count: AtomicU64,
    max: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            max: AtomicU64::new(0),
        }
    }
}

/// A histogram's count, median, 99th percentile and maximum, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Latency {
    pub count: u64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

fn bucket(v: u64) -> usize {
    if v < 4 {
        return v as usize;
    }
    let e = 63 - v.leading_zeros() as usize;
    4 * (e - 1) + ((v >> (e - 2)) & 3) as usize
}

/// The largest value that falls in bucket `i`.
fn bucket_high(i: usize) -> u64 {
    if i < 4 {
        return i as u64;
    }
    let (e, sub) = (i / 4 + 1, (i % 4) as u64);
    ((4 + sub + 1) << (e - 2)).saturating_sub(1)
}

impl Histogram {
    pub fn record(&self, us: u64) {
        self.buckets[bucket(us)].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.max.fetch_max(us, Ordering::Relaxed);
    }

    pub fn summary(&self) -> Latency {
        let count = self.count.load(Ordering::Relaxed);
        let max = self.max.load(Ordering::Relaxed);
        let at = |q: f64| {
            let rank = ((count as f64) * q).ceil().max(1.0) as u64;
            let mut seen = 0;
            for (i, b) in self.buckets.iter().enumerate() {
                seen += b.load(Ordering::Relaxed);
                if seen >= rank {
                    return bucket_high(i).min(max);
                }
            }
            max
        };
        if count == 0 {
            return Latency::default();
        }
        Latency {
            count,
            p50_us: at(0.5),
            p99_us: at(0.99),
            max_us: max,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_percentiles_close() {
        for v in 0..100_000u64 {
            assert!(bucket(v) <= bucket(v + 1), "{v}");
            assert!(bucket_high(bucket(v)) >= v, "{v}");
        }
        assert!(bucket(u64::MAX) < BUCKETS);
        let h = Histogram::default();
        for v in 1..=1000u64 {
            h.record(v);
        }
        let s = h.summary();
        assert_eq!((s.count, s.max_us), (1000, 1000));
        assert!((500..=640).contains(&s.p50_us), "{s:?}");
        assert!((990..=1000).contains(&s.p99_us), "{s:?}");
        assert_eq!(Histogram::default().summary(), Latency::default());
    }
}
