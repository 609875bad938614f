//! The write counters every backend keeps for [`StoreStats`]: receipts
//! stored, repeated and failed, and the transactions that held them.

use std::sync::atomic::{AtomicU64, Ordering};

use super::error::Result;
use super::receipt::ReceiptOutcome;
use super::StoreStats;

/// Counters of a backend's receipt writes, shared by its writer and its
/// [`stats`](super::backend::Backend::stats).
#[derive(Default)]
pub(super) struct Counters {
    batches: AtomicU64,
    stored: AtomicU64,
    duplicate: AtomicU64,
    failed: AtomicU64,
}

impl Counters {
    /// Adds the results of one transaction's receipts (a committed batch
    /// counts when at least one receipt in it was written).
    pub(super) fn count(&self, results: &[Result<ReceiptOutcome>]) {
        for result in results {
            let counter = match result {
                Ok(ReceiptOutcome::Stored { .. }) => &self.stored,
                Ok(ReceiptOutcome::Duplicate { .. }) => &self.duplicate,
                Err(_) => &self.failed,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
        if results.iter().any(|r| r.is_ok()) {
            self.batches.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The counts so far, with `queued` writes waiting.
    pub(super) fn stats(&self, queued: usize) -> StoreStats {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StoreStats {
            batches: load(&self.batches),
            receipts_stored: load(&self.stored),
            receipts_duplicate: load(&self.duplicate),
            receipts_failed: load(&self.failed),
            queued,
        }
    }
}
