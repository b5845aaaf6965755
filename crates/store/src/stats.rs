//! Numbers a backend keeps about its own work, for the server's `/metrics`: a lock-free
//! histogram ([`AtomicHistogram`], also used by the server's metrics registry) and the group-
//! commit writer's statistics ([`WriterStats`], read with `MailStore::writer_stats`).
//!
//! The store does not know about Prometheus; it only counts. The server renders the numbers.

use std::sync::atomic::{AtomicU64, Ordering};

/// A histogram with fixed upper bounds, updated with atomics only (no lock on the hot path).
/// Observations are counted in the first bucket whose bound they do not exceed; the last,
/// implicit bucket (`+Inf`) takes the rest. The sum is kept in micro-units (an `f64` cannot be
/// added to atomically), which is exact enough for seconds and for counts.
#[derive(Debug)]
pub struct AtomicHistogram {
    bounds: &'static [f64],
    /// One per bound, plus `+Inf`; not cumulative (the renderer adds them up).
    buckets: Vec<AtomicU64>,
    count: AtomicU64,
    /// Sum of observations × 1,000,000.
    sum_micros: AtomicU64,
}

/// A consistent-enough copy of a histogram (each number read once, atomically).
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// Upper bounds, ascending; `+Inf` is implicit.
    pub bounds: Vec<f64>,
    /// Observations per bucket (not cumulative), `bounds.len() + 1` of them.
    pub buckets: Vec<u64>,
    pub count: u64,
    pub sum: f64,
}

impl AtomicHistogram {
    pub fn new(bounds: &'static [f64]) -> AtomicHistogram {
        AtomicHistogram {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, value: f64) {
        let i = self
            .bounds
            .iter()
            .position(|b| value <= *b)
            .unwrap_or(self.bounds.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        let micros = (value.max(0.0) * 1_000_000.0).round() as u64;
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            bounds: self.bounds.to_vec(),
            buckets: self
                .buckets
                .iter()
                .map(|b| b.load(Ordering::Relaxed))
                .collect(),
            count: self.count.load(Ordering::Relaxed),
            sum: self.sum_micros.load(Ordering::Relaxed) as f64 / 1_000_000.0,
        }
    }
}

/// Seconds from BEGIN to the end of COMMIT (the fsync) of one group commit.
pub const COMMIT_SECONDS_BOUNDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];
/// Write jobs per committed transaction (`sqlite::MAX_BATCH` is the most).
pub const BATCH_SIZE_BOUNDS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// What the group-commit writer did since the store was opened.
#[derive(Debug, Clone, PartialEq)]
pub struct WriterStats {
    /// Duration of each committed transaction, seconds.
    pub commit_seconds: HistogramSnapshot,
    /// Jobs (deliveries, flag changes, ...) in each committed transaction.
    pub batch_size: HistogramSnapshot,
    /// Transactions that failed (rolled back, or COMMIT refused).
    pub failed_commits: u64,
}

/// The live counters behind [`WriterStats`], shared by the writer thread and the store handle.
#[derive(Debug)]
pub struct WriterCounters {
    pub commit_seconds: AtomicHistogram,
    pub batch_size: AtomicHistogram,
    pub failed_commits: AtomicU64,
}

impl Default for WriterCounters {
    fn default() -> Self {
        WriterCounters {
            commit_seconds: AtomicHistogram::new(COMMIT_SECONDS_BOUNDS),
            batch_size: AtomicHistogram::new(BATCH_SIZE_BOUNDS),
            failed_commits: AtomicU64::new(0),
        }
    }
}

impl WriterCounters {
    pub fn snapshot(&self) -> WriterStats {
        WriterStats {
            commit_seconds: self.commit_seconds.snapshot(),
            batch_size: self.batch_size.snapshot(),
            failed_commits: self.failed_commits.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_first_bucket_that_holds_them() {
        let h = AtomicHistogram::new(&[1.0, 2.0]);
        for v in [0.5, 1.0, 1.5, 2.0, 3.0, 100.0] {
            h.observe(v);
        }
        let s = h.snapshot();
        assert_eq!(s.buckets, vec![2, 2, 2]);
        assert_eq!(s.count, 6);
        assert!((s.sum - 108.0).abs() < 1e-9, "{}", s.sum);
    }
}
