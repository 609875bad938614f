//! [`Store`], what ingress, the poller, delivery and the API call: the
//! backend-neutral face of the store, handing each operation to the
//! [`Backend`] chosen by the [`StoreConfig`] it was opened with.
//!
//! What is the same for every database lives here: instance tokens, the
//! clock, empty patches, lease lengths and pruning in bounded chunks.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use super::backend::Backend;
use super::error::Result;
use super::instance::{generate_token, Instance, InstancePatch, NewInstance};
use super::outbox::{
    AttemptRecord, DueNotification, NotificationQuery, OutboxDepth, RecordedAttempts, Redeliver,
    StoredNotification,
};
use super::pacing::{ClaimRules, Claimed};
use super::poll::{PollCheckpoint, PollOutcome, PollWrite};
use super::postgres::{redact_url, Notification, PostgresStore};
use super::receipt::{NewReceipt, ReceiptOutcome};
use super::session::SessionRules;
use super::sqlite::{SqliteOptions, SqliteStore};
use super::subscription::VendorSubscription;
use super::timestamp;
use super::write_health::WriteHealth;

/// Rows handed to one write while pruning.
pub const PRUNE_CHUNK: usize = 1_000;

/// Notifications queued by one write of a redelivery by search.
pub const REDELIVER_CHUNK: u32 = 500;

/// Which database holds the store.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// The embedded SQLite database in this file (created, with its folder,
    /// if missing).
    Sqlite {
        /// The database file.
        path: PathBuf,
    },
    /// A PostgreSQL database (its schema is created or migrated at open).
    Postgres {
        /// Its URL, e.g. `postgres://plugboard:pw@db:5432/plugboard` or
        /// `postgres:///plugboard?host=/run/postgresql`; may hold a
        /// password, so it is never shown (`Debug` and [`StoreConfig::describe`]
        /// redact it).
        url: String,
    },
}

impl StoreConfig {
    /// Which database this is, for messages and logs, with any password
    /// replaced by `********`.
    pub fn describe(&self) -> String {
        match self {
            StoreConfig::Sqlite { path } => format!("SQLite database {}", path.display()),
            StoreConfig::Postgres { url } => format!("PostgreSQL database {}", redact_url(url)),
        }
    }
}

impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreConfig::Sqlite { path } => f.debug_struct("Sqlite").field("path", path).finish(),
            StoreConfig::Postgres { url } => f
                .debug_struct("Postgres")
                .field("url", &redact_url(url))
                .finish(),
        }
    }
}

/// What one [`Store::prune`] deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Delivered notifications deleted on their own.
    pub notifications: u64,
    /// Receipts deleted, with their delivered notifications.
    pub receipts: u64,
}

/// Counters of the store's writes since it was opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Transactions committed holding at least one receipt.
    pub batches: u64,
    /// Receipts newly stored.
    pub receipts_stored: u64,
    /// Receipts recognized as repeats of one already stored.
    pub receipts_duplicate: u64,
    /// Receipts that could not be stored (unknown instance, database error).
    pub receipts_failed: u64,
    /// Writes waiting for the database right now.
    pub queued: usize,
}

/// The durable store of instances, receipts and notifications. Cheap to
/// clone; every clone shares one backend. Dropping the last clone finishes
/// the writes already handed over.
#[derive(Clone)]
pub struct Store {
    backend: Arc<dyn Backend>,
    health: Arc<WriteHealth>,
    /// Never sends: what a backend without notifications hands out.
    silent: tokio::sync::broadcast::Sender<Notification>,
}

impl Store {
    /// Opens the store `config` names, bringing its schema up to date.
    pub async fn open(config: &StoreConfig) -> anyhow::Result<Store> {
        match config {
            StoreConfig::Sqlite { path } => {
                let path = path.clone();
                let store = tokio::task::spawn_blocking(move || {
                    SqliteStore::open(&path, SqliteOptions::default())
                })
                .await??;
                Ok(Self::from_backend(Arc::new(store)))
            }
            StoreConfig::Postgres { url } => {
                let store = PostgresStore::open(url).await?;
                Ok(Self::from_backend(Arc::new(store)))
            }
        }
    }

    /// A store over `backend`.
    pub(crate) fn from_backend(backend: Arc<dyn Backend>) -> Store {
        Store {
            backend,
            health: Arc::default(),
            silent: tokio::sync::broadcast::channel(1).0,
        }
    }

    /// The replica leases of a database several processes share; `None`
    /// when this process owns the store alone (SQLite).
    pub(crate) fn leases(&self) -> Option<Arc<dyn super::Leases>> {
        self.backend.leases()
    }

    /// Creates an instance with a fresh random token, at version 1.
    pub async fn create_instance(&self, new: NewInstance) -> Result<Instance> {
        self.backend
            .insert_instance(new, generate_token(), timestamp::now())
            .await
    }

    /// The instance with this id.
    pub async fn get_instance(&self, id: i64) -> Result<Option<Instance>> {
        self.backend.get_instance(id).await
    }

    /// All instances, by id.
    pub async fn list_instances(&self) -> Result<Vec<Instance>> {
        self.backend.list_instances().await
    }

    /// Applies a patch whatever the instance's version. `None` if there is
    /// no such instance. An empty patch changes nothing, not even the update
    /// time or the version.
    pub async fn update_instance(&self, id: i64, patch: InstancePatch) -> Result<Option<Instance>> {
        self.update(id, None, patch).await
    }

    /// Applies a patch only if the instance is still at `expected_version`
    /// (the version the caller read); otherwise fails with
    /// [`ErrorKind::Conflict`](super::ErrorKind::Conflict). `None` if there
    /// is no such instance.
    pub async fn update_instance_at(
        &self,
        id: i64,
        expected_version: i64,
        patch: InstancePatch,
    ) -> Result<Option<Instance>> {
        self.update(id, Some(expected_version), patch).await
    }

    async fn update(
        &self,
        id: i64,
        expected: Option<i64>,
        patch: InstancePatch,
    ) -> Result<Option<Instance>> {
        if patch.is_empty() {
            let current = self.get_instance(id).await?;
            if let (Some(found), Some(expected)) = (&current, expected) {
                if found.version != expected {
                    return Err(super::StoreError::version_conflict(
                        id,
                        expected,
                        found.version,
                    ));
                }
            }
            return Ok(current);
        }
        self.backend
            .update_instance(id, expected, patch, timestamp::now())
            .await
    }

    /// Deletes an instance with all its receipts and notifications. False
    /// if there was no such instance.
    pub async fn delete_instance(&self, id: i64) -> Result<bool> {
        self.backend.delete_instance(id).await
    }

    /// Records the vendor subscription of instance `id` (stamped now),
    /// replacing what was recorded; the instance's version stays. False if
    /// there is no such instance.
    pub async fn put_subscription(
        &self,
        id: i64,
        mut subscription: VendorSubscription,
    ) -> Result<bool> {
        subscription.updated_at = timestamp::now();
        self.backend.put_subscription(id, subscription).await
    }

    /// The recorded vendor subscription of instance `id`.
    pub async fn subscription(&self, id: i64) -> Result<Option<VendorSubscription>> {
        let found = self.backend.subscriptions(Some(id)).await?;
        Ok(found.into_iter().next().map(|(_, s)| s))
    }

    /// The recorded vendor subscriptions of every instance that has one.
    pub async fn subscriptions(
        &self,
    ) -> Result<std::collections::HashMap<i64, VendorSubscription>> {
        Ok(self
            .backend
            .subscriptions(None)
            .await?
            .into_iter()
            .collect())
    }

    /// The backend, for the store's operations kept in files of their own.
    pub(super) fn backend(&self) -> &dyn Backend {
        &*self.backend
    }

    /// Durably stores a receipt and its notifications, unless it repeats an
    /// accepted receipt within its de-duplication window. Returns once the
    /// transaction holding it is committed; concurrent calls share commits.
    pub async fn record_receipt(&self, receipt: NewReceipt) -> Result<ReceiptOutcome> {
        let result = self.backend.record_receipt(receipt).await;
        self.health.observe(&result, &self.backend);
        result
    }

    /// Durably stores one page of a poll: its receipt and notifications,
    /// and (on the page that closes the poll window) the resource's new
    /// checkpoint, all in one transaction. A checkpoint never moves back.
    pub async fn record_poll(&self, write: PollWrite) -> Result<PollOutcome> {
        let result = self.backend.record_poll(write).await;
        self.health.observe(&result, &self.backend);
        result
    }

    /// The poll checkpoints of an instance, by resource name.
    pub async fn poll_checkpoints(&self, instance_id: i64) -> Result<Vec<PollCheckpoint>> {
        self.backend.poll_checkpoints(instance_id).await
    }

    /// Claims up to `limit` notifications due at `now`, leasing each for
    /// `lease` under a fresh lease token: nobody else is handed them until
    /// the lease ends, and only the token's holder can record their outcome.
    pub async fn claim_due(
        &self,
        now: OffsetDateTime,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<DueNotification>> {
        Ok(self
            .claim(now, lease, limit, ClaimRules::unlimited())
            .await?
            .due)
    }

    /// Claims like [`Store::claim_due`], taking of each instance at most
    /// its share under `rules`: its room under the per-instance cap (its
    /// notifications under an unexpired lease, on any replica, count
    /// against it) and what its pace allows now. Says which instances it
    /// held back, and when the earliest paced one may send again.
    pub async fn claim(
        &self,
        now: OffsetDateTime,
        lease: Duration,
        limit: u32,
        rules: ClaimRules,
    ) -> Result<Claimed> {
        let now_ms = timestamp::to_millis(now);
        let until = now_ms.saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX));
        self.backend.claim_due(now_ms, until, limit, rules).await
    }

    /// Hands claimed notifications back unattempted (`(id, lease token)`),
    /// due again at `due`: the ones whose lease still holds lose it, their
    /// attempt count unchanged. Returns how many went back.
    pub async fn hand_back(
        &self,
        claims: Vec<(String, String)>,
        due: OffsetDateTime,
    ) -> Result<u64> {
        if claims.is_empty() {
            return Ok(0);
        }
        self.backend
            .hand_back(claims, timestamp::to_millis(due))
            .await
    }

    /// Records delivery attempts (one transaction for the lot). Attempts
    /// whose lease was lost meanwhile change nothing and come back as stale.
    pub async fn record_attempts(&self, records: Vec<AttemptRecord>) -> Result<RecordedAttempts> {
        if records.is_empty() {
            return Ok(RecordedAttempts::default());
        }
        let result = self.backend.record_attempts(records).await;
        self.health.observe(&result, &self.backend);
        result
    }

    /// Makes notifications due again now; returns how many.
    pub async fn redeliver(&self, target: Redeliver) -> Result<u64> {
        let now = timestamp::to_millis(timestamp::now());
        self.backend.redeliver(target, now).await
    }

    /// Queues a new delivery of every notification `query` finds (its
    /// paging ignored), whatever its state, in chunks of
    /// [`REDELIVER_CHUNK`], each its own write, newest first; returns how
    /// many were queued. What is stored meanwhile is not included if it is
    /// newer than the first chunk.
    pub async fn redeliver_matching(&self, query: NotificationQuery) -> Result<u64> {
        let mut queued = 0;
        let mut after = None;
        loop {
            let ids = self
                .backend
                .matching_ids(NotificationQuery {
                    after: after.take(),
                    limit: REDELIVER_CHUNK,
                    ..query.clone()
                })
                .await?;
            let Some(last) = ids.last().cloned() else {
                return Ok(queued);
            };
            let full = ids.len() == REDELIVER_CHUNK as usize;
            queued += self.redeliver(Redeliver::Ids(ids)).await?;
            if !full {
                return Ok(queued);
            }
            after = Some(last);
        }
    }

    /// Deletes what is older than `before` and no longer needed: delivered
    /// notifications, and accepted receipts none of whose notifications is
    /// pending or dead-lettered. Failed receipts and anything still to
    /// deliver stay. Works in chunks of [`PRUNE_CHUNK`], each its own
    /// write, so webhooks are stored in between.
    pub async fn prune(&self, before: OffsetDateTime) -> Result<Pruned> {
        let before = timestamp::to_millis(before);
        let mut pruned = Pruned::default();
        loop {
            let n = self.backend.prune_delivered(before, PRUNE_CHUNK).await?;
            pruned.notifications += n;
            if n < PRUNE_CHUNK as u64 {
                break;
            }
        }
        let mut after: Option<String> = None;
        loop {
            let (n, next) = self
                .backend
                .prune_receipts(after.take(), before, PRUNE_CHUNK)
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
        self.backend.outbox_depth().await
    }

    /// A page of the event log (the notifications), newest first.
    pub async fn list_notifications(
        &self,
        query: NotificationQuery,
    ) -> Result<Vec<StoredNotification>> {
        self.backend.list_notifications(query).await
    }

    /// One notification with every delivery attempt.
    pub async fn get_notification(&self, id: &str) -> Result<Option<StoredNotification>> {
        self.backend.get_notification(id.to_owned()).await
    }

    /// Retired signing keys of an instance still in their grace period.
    pub async fn retired_keys(&self, instance_id: i64) -> Result<Vec<String>> {
        let now = timestamp::to_millis(timestamp::now());
        self.backend.retired_keys(instance_id, now).await
    }

    /// Opens a console session for the token whose SHA-256 is `digest`
    /// (see [`super::session`]).
    pub async fn open_session(&self, digest: [u8; 32], rules: SessionRules) -> Result<()> {
        let now = timestamp::to_millis(timestamp::now());
        self.backend
            .insert_session(digest.to_vec(), now, rules.expired_at(now))
            .await
    }

    /// Whether the token whose SHA-256 is `digest` names a live console
    /// session. A live one is stamped seen (at most every
    /// `rules.touch_every_ms`); an ended one is deleted.
    pub async fn touch_session(&self, digest: [u8; 32], rules: SessionRules) -> Result<bool> {
        let now = timestamp::to_millis(timestamp::now());
        let Some(stored) = self.backend.get_session(digest.to_vec()).await? else {
            return Ok(false);
        };
        if !rules.live(stored.created_ms, stored.last_seen_ms, now) {
            self.backend.delete_session(digest.to_vec()).await?;
            return Ok(false);
        }
        if now - stored.last_seen_ms >= rules.touch_every_ms {
            self.backend.touch_session(digest.to_vec(), now).await?;
        }
        Ok(true)
    }

    /// Ends the console session of the token whose SHA-256 is `digest`.
    pub async fn close_session(&self, digest: [u8; 32]) -> Result<()> {
        self.backend.delete_session(digest.to_vec()).await
    }

    /// Why the store cannot write right now, if it cannot: the reason the
    /// last write of a receipt, poll page or delivery attempt failed, while
    /// the database was unavailable (a full disk, an I/O error) and nothing
    /// has been written since. Cleared by the next write that succeeds, or
    /// by the store's own probe once the database can be written again.
    pub fn write_problem(&self) -> Option<String> {
        self.health.problem()
    }

    /// Whether the database answers right now, for readiness: fails (as
    /// unavailable) while a database server cannot be reached.
    pub async fn check(&self) -> Result<()> {
        self.backend.check().await
    }

    /// Notifications from the database, sent by any process writing to it
    /// (PostgreSQL `NOTIFY` on `plugboard_outbox`, `plugboard_instances`,
    /// `plugboard_poll_run`), and [`Notification::Resync`] after the
    /// listening connection was lost and is back. On SQLite (one process)
    /// nothing is ever received.
    pub fn notifications(&self) -> tokio::sync::broadcast::Receiver<Notification> {
        self.backend
            .notifications()
            .unwrap_or_else(|| self.silent.subscribe())
    }

    /// Whether the connection receiving database notifications is up;
    /// `None` on a backend without one (SQLite).
    pub fn listening(&self) -> Option<bool> {
        self.backend.listening()
    }

    /// Counters of the store's writes, for metrics and tests.
    pub fn stats(&self) -> StoreStats {
        self.backend.stats()
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("stats", &self.stats())
            .finish()
    }
}
