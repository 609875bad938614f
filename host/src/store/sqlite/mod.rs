//! The SQLite backend: one database file in write-ahead-log mode.
//!
//! How it runs the store's operations is its own business: one writer
//! thread owns the write connection and group-commits every receipt queued
//! at that moment in one transaction (one `fsync` for many webhooks; a
//! batch with a failing receipt is written again with a savepoint per
//! receipt, so that one fails alone); reads borrow a pooled
//! read-only connection on a blocking thread and never wait for the writer;
//! the log is checkpointed on a thread of its own. A store opened in memory
//! (tests) has no separate readers, so its reads queue behind the writer.

mod batch;
mod checkpoint;
mod claims;
mod connection;
mod error;
mod inbound;
mod instances;
mod options;
mod ordering;
mod outbox;
mod polls;
mod reader;
mod receipts;
mod schema;
mod sessions;
mod subscriptions;
mod writer;

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use async_trait::async_trait;
use time::OffsetDateTime;

use super::backend::Backend;
use super::error::{Result, StoreError};
use super::inbound::{
    DroppedEntries, InboundCaps, InboundEntry, InboundQuery, InboundWritten, NewInboundEntry,
    Settled, Settlement, StoredReceipt,
};
use super::instance::{Instance, InstancePatch, NewInstance};
use super::outbox::{
    AttemptRecord, NotificationQuery, OutboxDepth, RecordedAttempts, Redeliver, StoredNotification,
};
use super::pacing::{ClaimRules, Claimed};
use super::poll::{PollCheckpoint, PollOutcome, PollWrite};
use super::receipt::{NewReceipt, ReceiptOutcome};
use super::session::{SessionCutoffs, StoredSession};
use super::subscription::VendorSubscription;
use super::StoreStats;
use connection::Conn;
pub(crate) use options::SqliteOptions;
use reader::{OpenReader, ReadPool};
use writer::Writer;

/// The SQLite store: its writer thread and its reads.
pub(crate) struct SqliteStore {
    // Field order matters: readers close before the writer's drop waits
    // for the writer thread.
    reads: Reads,
    writer: Writer,
}

/// Where reads run.
enum Reads {
    /// Pooled read-only connections.
    Pool(Arc<ReadPool>),
    /// On the writer's connection (in-memory databases have no other).
    #[cfg_attr(not(test), allow(dead_code))]
    Writer,
}

impl SqliteStore {
    /// Opens (creating it and its folder if needed) the database at `path`,
    /// brings its schema up to date and starts the writer thread. Blocks.
    pub(crate) fn open(path: &Path, opts: SqliteOptions) -> anyhow::Result<Self> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating store folder {}", parent.display()))?;
        }
        let writer = Conn::open_writer(path, &opts)?;
        let reader_path = path.to_owned();
        let reader_opts = opts.clone();
        let open: OpenReader = Box::new(move || Conn::open_reader(&reader_path, &reader_opts));
        let pool = ReadPool::new(open, opts.read_connections)
            .with_context(|| format!("opening store database {} for reading", path.display()))?;
        Self::start(writer, Reads::Pool(Arc::new(pool)), &opts)
    }

    /// A private store in memory: same schema and behaviour, nothing kept.
    #[cfg(test)]
    pub(crate) fn open_in_memory() -> anyhow::Result<Self> {
        Self::start(
            Conn::open_in_memory()?,
            Reads::Writer,
            &SqliteOptions::default(),
        )
    }

    fn start(conn: Conn, reads: Reads, opts: &SqliteOptions) -> anyhow::Result<Self> {
        let writer = Writer::start(conn, opts.batching(), opts.queue_depth())
            .context("starting the store writer thread")?;
        Ok(Self { reads, writer })
    }

    /// Runs `f` on the write connection, between batches.
    async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Conn) -> Result<T> + Send + 'static,
    {
        self.writer.run(f).await
    }

    /// Runs `f` on a read connection.
    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Conn) -> Result<T> + Send + 'static,
    {
        match &self.reads {
            Reads::Pool(pool) => {
                let pool = pool.clone();
                tokio::task::spawn_blocking(move || pool.with(f))
                    .await
                    .map_err(|e| {
                        StoreError::with_source(
                            super::ErrorKind::Internal,
                            format!("store read task failed: {e}"),
                            e,
                        )
                    })?
            }
            Reads::Writer => self.writer.run(move |c| f(c)).await,
        }
    }
}

#[async_trait]
impl Backend for SqliteStore {
    async fn insert_instance(
        &self,
        new: NewInstance,
        token: String,
        now: OffsetDateTime,
    ) -> Result<Instance> {
        self.write(move |c| c.insert_instance(&new, &token, now))
            .await
    }

    async fn get_instance(&self, id: i64) -> Result<Option<Instance>> {
        self.read(move |c| c.get_instance(id)).await
    }

    async fn list_instances(&self) -> Result<Vec<Instance>> {
        self.read(|c| c.list_instances()).await
    }

    async fn update_instance(
        &self,
        id: i64,
        expected_version: Option<i64>,
        patch: InstancePatch,
        now: OffsetDateTime,
    ) -> Result<Option<Instance>> {
        self.write(move |c| c.update_instance(id, expected_version, &patch, now))
            .await
    }

    async fn delete_instance(&self, id: i64) -> Result<bool> {
        self.write(move |c| c.delete_instance(id)).await
    }

    async fn put_subscription(&self, id: i64, subscription: VendorSubscription) -> Result<bool> {
        self.write(move |c| c.put_subscription(id, &subscription))
            .await
    }

    async fn subscriptions(&self, id: Option<i64>) -> Result<Vec<(i64, VendorSubscription)>> {
        self.read(move |c| c.subscriptions(id)).await
    }

    async fn record_receipt(&self, receipt: NewReceipt) -> Result<ReceiptOutcome> {
        self.writer.record(receipt).await
    }

    async fn record_poll(&self, write: PollWrite) -> Result<PollOutcome> {
        self.writer.record_poll(write).await
    }

    async fn poll_checkpoints(&self, instance_id: i64) -> Result<Vec<PollCheckpoint>> {
        self.read(move |c| c.poll_checkpoints(instance_id)).await
    }

    async fn claim_due(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        limit: u32,
        rules: ClaimRules,
    ) -> Result<Claimed> {
        self.write(move |c| c.claim_due(now_ms, lease_until_ms, limit, &rules))
            .await
    }

    async fn hand_back(&self, claims: Vec<(String, String)>, due_ms: i64) -> Result<u64> {
        self.write(move |c| c.hand_back(&claims, due_ms)).await
    }

    async fn record_attempts(&self, records: Vec<AttemptRecord>) -> Result<RecordedAttempts> {
        self.write(move |c| c.record_attempts(&records)).await
    }

    async fn redeliver(&self, target: Redeliver, now_ms: i64) -> Result<u64> {
        self.write(move |c| c.redeliver(&target, now_ms)).await
    }

    async fn prune_delivered(&self, before_ms: i64, limit: usize) -> Result<u64> {
        self.write(move |c| c.prune_delivered(before_ms, limit))
            .await
    }

    async fn prune_receipts(
        &self,
        after: Option<String>,
        before_ms: i64,
        limit: usize,
    ) -> Result<(u64, Option<String>)> {
        self.write(move |c| c.prune_receipts(after.as_deref(), before_ms, limit))
            .await
    }

    async fn outbox_depth(&self) -> Result<OutboxDepth> {
        self.read(|c| c.outbox_depth()).await
    }

    async fn matching_ids(&self, query: NotificationQuery) -> Result<Vec<String>> {
        self.read(move |c| c.matching_ids(&query)).await
    }

    async fn list_notifications(
        &self,
        query: NotificationQuery,
    ) -> Result<Vec<StoredNotification>> {
        self.read(move |c| c.list_notifications(&query)).await
    }

    async fn get_notification(&self, id: String) -> Result<Option<StoredNotification>> {
        self.read(move |c| c.get_notification(&id)).await
    }

    async fn retired_keys(&self, instance_id: i64, now_ms: i64) -> Result<Vec<String>> {
        self.read(move |c| c.retired_keys(instance_id, now_ms))
            .await
    }

    async fn insert_session(
        &self,
        digest: Vec<u8>,
        now_ms: i64,
        cutoffs: SessionCutoffs,
    ) -> Result<()> {
        self.write(move |c| sessions::insert(&mut c.conn, &digest, now_ms, cutoffs))
            .await
    }

    async fn get_session(&self, digest: Vec<u8>) -> Result<Option<StoredSession>> {
        self.read(move |c| sessions::get(&c.conn, &digest)).await
    }

    async fn touch_session(&self, digest: Vec<u8>, now_ms: i64) -> Result<()> {
        self.write(move |c| sessions::touch(&c.conn, &digest, now_ms))
            .await
    }

    async fn delete_session(&self, digest: Vec<u8>) -> Result<()> {
        self.write(move |c| sessions::delete(&c.conn, &digest))
            .await
    }

    async fn record_inbound(
        &self,
        entries: Vec<NewInboundEntry>,
        dropped: Vec<(i64, u64)>,
        caps: InboundCaps,
        now_ms: i64,
    ) -> Result<InboundWritten> {
        self.write(move |c| inbound::record(&mut c.conn, &entries, &dropped, caps, now_ms))
            .await
    }

    async fn list_inbound(&self, query: InboundQuery) -> Result<Vec<InboundEntry>> {
        self.read(move |c| inbound::list(&c.conn, &query)).await
    }

    async fn get_inbound(&self, id: String) -> Result<Option<InboundEntry>> {
        self.read(move |c| inbound::get(&c.conn, &id)).await
    }

    async fn inbound_dropped(&self, id: Option<i64>) -> Result<Vec<DroppedEntries>> {
        self.read(move |c| inbound::dropped(&c.conn, id)).await
    }

    async fn prune_inbound(&self, before_ms: i64, limit: usize) -> Result<u64> {
        self.write(move |c| inbound::prune(&c.conn, before_ms, limit))
            .await
    }

    async fn get_receipt(&self, id: String) -> Result<Option<StoredReceipt>> {
        self.read(move |c| inbound::get_receipt(&c.conn, &id)).await
    }

    async fn failed_receipts(
        &self,
        instance_id: i64,
        after: String,
        limit: u32,
    ) -> Result<Vec<StoredReceipt>> {
        self.read(move |c| inbound::failed_receipts(&c.conn, instance_id, &after, limit))
            .await
    }

    async fn settle_receipt(
        &self,
        id: String,
        settlement: Settlement,
        now_ms: i64,
    ) -> Result<Settled> {
        self.write(move |c| inbound::settle(&mut c.conn, &id, &settlement, now_ms))
            .await
    }

    async fn probe_write(&self) -> Option<Result<()>> {
        Some(self.write(|conn| conn.probe_write()).await)
    }

    fn stats(&self) -> StoreStats {
        self.writer.stats()
    }
}

#[cfg(test)]
mod tests;
