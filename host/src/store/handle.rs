//! [`Store`], the async face of the store: what ingress, the API and
//! delivery call.
//!
//! Writes go to the writer thread (receipts in group-committed batches);
//! reads borrow a pooled read connection on a blocking thread. A store
//! opened in memory has no separate readers, so its reads queue behind the
//! writer instead.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;

use super::backend::Backend;
use super::error::{Result, StoreError};
use super::event::{EventQuery, StoredEvent};
use super::instance::{generate_token, Instance, InstancePatch, NewInstance};
use super::options::StoreOptions;
use super::outbox::{
    AttemptRecord, DueNotification, NotificationQuery, OutboxDepth, Redeliver, StoredNotification,
};
use super::poll::{PollCheckpoint, PollOutcome, PollWrite};
use super::reader::{OpenReader, ReadPool};
use super::receipt::{NewReceipt, ReceiptOutcome, StoredReceipt};
use super::sqlite::SqliteBackend;
use super::timestamp;
use super::writer::{StoreStats, Writer};

/// Rows handed to one write while pruning.
pub const PRUNE_CHUNK: usize = 1_000;

/// What one [`Store::prune`] deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Delivered notifications deleted on their own.
    pub notifications: u64,
    /// Receipts deleted, with their events and delivered notifications.
    pub receipts: u64,
}

/// The durable store of instances, receipts and events. Cheap to clone;
/// every clone shares one writer and one read pool. Dropping the last clone
/// waits for queued writes to finish.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
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
    Writer,
}

impl Store {
    /// Opens (creating it and its folder if needed) the database at `path`,
    /// brings its schema up to date and starts the writer thread.
    pub fn open(path: &Path, opts: StoreOptions) -> anyhow::Result<Store> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating store folder {}", parent.display()))?;
        }
        let writer = SqliteBackend::open_writer(path, &opts)?;
        let reader_path = path.to_owned();
        let reader_opts = opts.clone();
        let open: OpenReader = Box::new(move || {
            let backend = SqliteBackend::open_reader(&reader_path, &reader_opts)?;
            Ok(Box::new(backend) as Box<dyn Backend>)
        });
        let pool = ReadPool::new(open, opts.read_connections)
            .with_context(|| format!("opening store database {} for reading", path.display()))?;
        Self::start(Box::new(writer), Reads::Pool(Arc::new(pool)), &opts)
    }

    /// A private store in memory, for tests: same schema and behaviour,
    /// nothing kept.
    pub fn open_in_memory() -> anyhow::Result<Store> {
        let opts = StoreOptions::default();
        Self::start(
            Box::new(SqliteBackend::open_in_memory()?),
            Reads::Writer,
            &opts,
        )
    }

    fn start(
        backend: Box<dyn Backend>,
        reads: Reads,
        opts: &StoreOptions,
    ) -> anyhow::Result<Store> {
        let writer = Writer::start(backend, opts.max_batch, opts.queue_depth())
            .context("starting the store writer thread")?;
        Ok(Store {
            inner: Arc::new(Inner { reads, writer }),
        })
    }

    /// Creates an instance with a fresh random token.
    pub async fn create_instance(&self, new: NewInstance) -> Result<Instance> {
        let token = generate_token();
        let now = timestamp::now();
        self.write(move |b| b.insert_instance(&new, &token, now))
            .await
    }

    /// The instance with this id.
    pub async fn get_instance(&self, id: i64) -> Result<Option<Instance>> {
        self.read(move |b| b.get_instance(id)).await
    }

    /// The instance holding this token.
    pub async fn get_instance_by_token(&self, token: &str) -> Result<Option<Instance>> {
        let token = token.to_owned();
        self.read(move |b| b.get_instance_by_token(&token)).await
    }

    /// All instances, by id.
    pub async fn list_instances(&self) -> Result<Vec<Instance>> {
        self.read(|b| b.list_instances()).await
    }

    /// Applies a patch. `None` if there is no such instance. An empty patch
    /// changes nothing, not even the update time.
    pub async fn update_instance(&self, id: i64, patch: InstancePatch) -> Result<Option<Instance>> {
        if patch.is_empty() {
            return self.get_instance(id).await;
        }
        let now = timestamp::now();
        self.write(move |b| b.update_instance(id, &patch, now))
            .await
    }

    /// Deletes an instance with all its receipts and events. False if there
    /// was no such instance.
    pub async fn delete_instance(&self, id: i64) -> Result<bool> {
        self.write(move |b| b.delete_instance(id)).await
    }

    /// Durably stores a receipt and its events, unless it repeats an
    /// accepted receipt within its de-duplication window. Returns once the
    /// batch holding it is committed; concurrent calls share that commit.
    pub async fn record_receipt(&self, receipt: NewReceipt) -> Result<ReceiptOutcome> {
        self.inner.writer.record(receipt).await
    }

    /// Durably stores one page of a poll: its receipt, events and
    /// notifications, and (on the page that closes the poll window) the
    /// resource's new checkpoint, all in one transaction. Returns once that
    /// is committed; concurrent pages share the commit.
    pub async fn record_poll(&self, write: PollWrite) -> Result<PollOutcome> {
        self.inner.writer.record_poll(write).await
    }

    /// The poll checkpoints of an instance, by resource name.
    pub async fn poll_checkpoints(&self, instance_id: i64) -> Result<Vec<PollCheckpoint>> {
        self.read(move |b| b.poll_checkpoints(instance_id)).await
    }

    /// The receipt with this id.
    pub async fn get_receipt(&self, id: &str) -> Result<Option<StoredReceipt>> {
        let id = id.to_owned();
        self.read(move |b| b.get_receipt(&id)).await
    }

    /// The instance's failed receipts, oldest first, to process again.
    pub async fn failed_receipts(&self, instance_id: i64) -> Result<Vec<StoredReceipt>> {
        self.read(move |b| b.failed_receipts(instance_id)).await
    }

    /// A page of the event log, newest first.
    pub async fn list_events(&self, query: EventQuery) -> Result<Vec<StoredEvent>> {
        self.read(move |b| b.list_events(&query)).await
    }

    /// The event with this id.
    pub async fn get_event(&self, id: &str) -> Result<Option<StoredEvent>> {
        let id = id.to_owned();
        self.read(move |b| b.get_event(&id)).await
    }

    /// How many events the instance has.
    pub async fn count_events(&self, instance_id: i64) -> Result<u64> {
        self.read(move |b| b.count_events(instance_id)).await
    }

    /// Claims up to `limit` notifications due at `now`, leasing each for
    /// `lease` so it is not handed out twice while in flight.
    pub async fn claim_due(
        &self,
        now: time::OffsetDateTime,
        lease: std::time::Duration,
        limit: u32,
    ) -> Result<Vec<DueNotification>> {
        let now_ms = timestamp::to_millis(now);
        let until = now_ms.saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX));
        self.write(move |b| b.claim_due(now_ms, until, limit)).await
    }

    /// Records delivery attempts (one transaction for the lot).
    pub async fn record_attempts(&self, records: Vec<AttemptRecord>) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        self.write(move |b| b.record_attempts(&records)).await
    }

    /// Makes notifications due again now; returns how many.
    pub async fn redeliver(&self, target: Redeliver) -> Result<u64> {
        let now = timestamp::to_millis(timestamp::now());
        self.write(move |b| b.redeliver(&target, now)).await
    }

    /// Deletes what is older than `before` and no longer needed: delivered
    /// notifications, and accepted receipts none of whose notifications is
    /// pending or dead-lettered, with their events. Failed receipts and
    /// anything still to deliver stay. Works in chunks of [`PRUNE_CHUNK`],
    /// each its own write, so webhooks are stored in between.
    pub async fn prune(&self, before: time::OffsetDateTime) -> Result<Pruned> {
        let before = timestamp::to_millis(before);
        let mut pruned = Pruned::default();
        loop {
            let n = self
                .write(move |b| b.prune_delivered(before, PRUNE_CHUNK))
                .await?;
            pruned.notifications += n;
            if n < PRUNE_CHUNK as u64 {
                break;
            }
        }
        let mut after: Option<String> = None;
        loop {
            let from = after.clone();
            let (n, next) = self
                .write(move |b| b.prune_receipts(from.as_deref(), before, PRUNE_CHUNK))
                .await?;
            pruned.receipts += n;
            match next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        Ok(pruned)
    }

    /// Pending and dead-lettered notification counts.
    pub async fn outbox_depth(&self) -> Result<OutboxDepth> {
        self.read(|b| b.outbox_depth()).await
    }

    /// A page of the notification log, newest first.
    pub async fn list_notifications(
        &self,
        query: NotificationQuery,
    ) -> Result<Vec<StoredNotification>> {
        self.read(move |b| b.list_notifications(&query)).await
    }

    /// One notification with every delivery attempt.
    pub async fn get_notification(&self, id: &str) -> Result<Option<StoredNotification>> {
        let id = id.to_owned();
        self.read(move |b| b.get_notification(&id)).await
    }

    /// Retired signing keys of an instance still in their grace period.
    pub async fn retired_keys(&self, instance_id: i64) -> Result<Vec<String>> {
        let now = timestamp::to_millis(timestamp::now());
        self.read(move |b| b.retired_keys(instance_id, now)).await
    }

    /// Counters of the writer's work, for metrics and tests.
    pub fn stats(&self) -> StoreStats {
        self.inner.writer.stats()
    }

    async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Backend) -> Result<T> + Send + 'static,
    {
        self.inner.writer.run(f).await
    }

    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Backend) -> Result<T> + Send + 'static,
    {
        match &self.inner.reads {
            Reads::Pool(pool) => {
                let pool = pool.clone();
                tokio::task::spawn_blocking(move || pool.with(f))
                    .await
                    .map_err(|e| StoreError::Task(e.to_string()))?
            }
            Reads::Writer => self.inner.writer.run(move |b| f(b)).await,
        }
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("stats", &self.stats())
            .finish()
    }
}

#[cfg(test)]
mod tests;
