//! How a store is opened: durability, waiting on locks, batch size and the
//! number of read connections. Every default lives in
//! [`StoreOptions::default`].

use std::time::Duration;

/// What a commit waits for before it returns (SQLite `PRAGMA synchronous`,
/// always in write-ahead-log mode).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Synchronous {
    /// Every commit waits for the log to reach the disk (one `fsync` per
    /// commit, so one per batch of receipts). A receipt acknowledged to the
    /// vendor survives a crash of the process, the OS or the power.
    #[default]
    Full,
    /// Commits return once written to the OS; the log reaches the disk at
    /// checkpoints. The database stays consistent and survives a crash of the
    /// process, but the last commits before an OS crash or power loss may be
    /// lost — after the vendor was told they were received.
    Normal,
}

impl Synchronous {
    /// The `PRAGMA synchronous` value.
    pub(super) fn pragma(self) -> &'static str {
        match self {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        }
    }
}

/// Settings for [`Store::open`](super::Store::open).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreOptions {
    /// Durability of each commit.
    pub synchronous: Synchronous,
    /// How long a connection waits for a lock held by another process (or a
    /// checkpoint) before failing.
    pub busy_timeout: Duration,
    /// Most receipts written in one transaction. Larger batches mean fewer
    /// `fsync`s under load; every caller in a batch waits for the whole batch.
    pub max_batch: usize,
    /// Read connections kept open between reads. Reads never wait for the
    /// writer; more concurrent reads than this open short-lived connections.
    pub read_connections: usize,
    /// Pages the write-ahead log may hold before the writer finishes a
    /// checkpoint itself so the log restarts (checkpoints otherwise run on a
    /// thread of their own). Bounds the log's size under sustained writes.
    pub wal_catch_up_pages: i64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            synchronous: Synchronous::Full,
            busy_timeout: Duration::from_secs(5),
            max_batch: 512,
            read_connections: 4,
            // About 64 MiB of 4 KiB pages.
            wal_catch_up_pages: 16_384,
        }
    }
}

impl StoreOptions {
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
    fn defaults_are_durable() {
        let opts = StoreOptions::default();
        assert_eq!(opts.synchronous, Synchronous::Full);
        assert_eq!(opts.synchronous.pragma(), "FULL");
        assert_eq!(Synchronous::Normal.pragma(), "NORMAL");
        assert!(opts.queue_depth() >= opts.max_batch);
    }

    #[test]
    fn queue_depth_is_never_zero() {
        let opts = StoreOptions {
            max_batch: 0,
            ..StoreOptions::default()
        };
        assert_eq!(opts.queue_depth(), 8);
    }
}
