//! How the SQLite store is opened: waiting on locks, batch size and commit
//! delay, read connections and the size the write-ahead log may reach.
//! Every default lives in [`SqliteOptions::default`]. Commits always wait
//! for the log to reach the disk (`synchronous = FULL`): a receipt
//! acknowledged to the vendor survives a crash of the process, the OS or
//! the power.

use std::time::Duration;

use super::writer::Batching;

/// Settings for [`SqliteStore::open`](super::SqliteStore::open).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SqliteOptions {
    /// How long a connection waits for a lock held by another process (or a
    /// checkpoint) before failing.
    pub busy_timeout: Duration,
    /// Most receipts written in one transaction. Larger batches mean fewer
    /// `fsync`s under load; every caller in a batch waits for the whole batch.
    pub max_batch: usize,
    /// How long a batch that is not full waits for more receipts while
    /// webhooks arrive together (the batch before held two or more); see
    /// the writer's module documentation. Zero commits at once.
    pub commit_delay: Duration,
    /// Read connections kept open between reads. Reads never wait for the
    /// writer; more concurrent reads than this open short-lived connections.
    pub read_connections: usize,
    /// Pages the write-ahead log may hold before the writer finishes a
    /// checkpoint itself so the log restarts (checkpoints otherwise run on a
    /// thread of their own). Bounds the log's size under sustained writes.
    pub wal_catch_up_pages: i64,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            busy_timeout: Duration::from_secs(5),
            max_batch: 512,
            commit_delay: Duration::from_millis(1),
            read_connections: 4,
            // About 64 MiB of 4 KiB pages.
            wal_catch_up_pages: 16_384,
        }
    }
}

impl SqliteOptions {
    /// How the writer groups receipts into transactions.
    pub(super) fn batching(&self) -> Batching {
        Batching {
            max_batch: self.max_batch,
            commit_delay: self.commit_delay,
        }
    }

    /// Receipts and other writes that may wait for the writer before senders
    /// are held back: a few batches' worth.
    pub(super) fn queue_depth(&self) -> usize {
        self.max_batch.max(1) * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_holds_a_few_batches_and_is_never_zero() {
        let opts = SqliteOptions::default();
        assert!(opts.queue_depth() >= opts.max_batch);
        let opts = SqliteOptions {
            max_batch: 0,
            ..SqliteOptions::default()
        };
        assert_eq!(opts.queue_depth(), 8);
    }
}
