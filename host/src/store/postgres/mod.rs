//! The PostgreSQL backend: the store on a database server, shared safely by
//! several writers (pools, processes, replicas).
//!
//! Every operation borrows a connection from a pool (`connection`);
//! receipts are group-committed by a task of their own (`batch`), a whole
//! batch in one transaction of four statements, sent with its `BEGIN` in
//! one write (`pipelined`). What holds with any number
//! of writers rests on the database, not on this process: de-duplication
//! on a unique key with `INSERT … ON CONFLICT`, claims with
//! `FOR UPDATE SKIP LOCKED` and a lease token the outcome must match,
//! checkpoints moved by an upsert that refuses to go back. The schema is
//! migrated at open under an advisory lock (`schema`).
//!
//! A pending notification's delivery state (when it is due, the lease of
//! the claim holding it, its ordering key) is a row of its own in the
//! narrow `delivery_queue`, apart from the notification with its body:
//! claims, releases and hand-backs rewrite only that row, and an outcome
//! deletes it (or makes it due again) and updates the notification once.
//! Whatever touches both locks the queue row first, then the notification.

mod announce;
mod batch;
mod claims;
mod connection;
mod error;
mod eventlog;
mod inbound;
mod instances;
mod leases;
mod listen;
mod ordering;
mod outbox;
mod outcomes;
mod pipelined;
mod polls;
mod receipts;
mod schema;
mod sessions;
mod subscriptions;
mod tls;

use async_trait::async_trait;
use deadpool_postgres::Pool;
use time::OffsetDateTime;

use super::backend::Backend;
use super::error::Result;
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
use announce::Announcer;
use batch::Batcher;
pub(crate) use connection::redact_url;
use connection::{Target, POOL_SIZE};
use listen::Listener;
pub use listen::Notification;

/// The PostgreSQL store: its pool and its group-commit task.
pub(crate) struct PostgresStore {
    pool: Pool,
    batcher: Batcher,
    announcer: Announcer,
    listener: Listener,
}

impl PostgresStore {
    /// Connects to the database `url` names, brings its schema up to date
    /// and starts the group-commit task on the current runtime. Errors
    /// never repeat the URL.
    pub(crate) async fn open(url: &str) -> anyhow::Result<Self> {
        let target = Target::parse(url)?;
        let version = schema::migrate(&target).await?;
        tracing::debug!(version, "PostgreSQL store schema is up to date");
        let pool = target.pool(POOL_SIZE)?;
        let announcer = Announcer::start(pool.clone());
        Ok(Self {
            batcher: Batcher::start(pool.clone(), announcer.clone()),
            announcer,
            listener: Listener::start(target, redact_url(url)),
            pool,
        })
    }

    async fn client(&self) -> Result<deadpool_postgres::Object> {
        Ok(self.pool.get().await?)
    }
}

/// Tries of a transaction that met a deadlock or a serialization failure
/// with another writer (the database rolled it back; trying again is safe).
const TRIES: usize = 3;

#[async_trait]
impl Backend for PostgresStore {
    async fn insert_instance(
        &self,
        new: NewInstance,
        token: String,
        now: OffsetDateTime,
    ) -> Result<Instance> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let instance = instances::insert(&tx, &new, &token, now).await?;
        tx.commit().await?;
        Ok(instance)
    }

    async fn get_instance(&self, id: i64) -> Result<Option<Instance>> {
        instances::get(&self.client().await?, id).await
    }

    async fn list_instances(&self) -> Result<Vec<Instance>> {
        instances::list(&self.client().await?).await
    }

    async fn update_instance(
        &self,
        id: i64,
        expected_version: Option<i64>,
        patch: InstancePatch,
        now: OffsetDateTime,
    ) -> Result<Option<Instance>> {
        let mut client = self.client().await?;
        let mut tries = 0;
        loop {
            tries += 1;
            match instances::update(&mut client, id, expected_version, &patch, now).await {
                Err(e) if tries < TRIES && error::is_transient(&e) => {}
                done => return done,
            }
        }
    }

    async fn delete_instance(&self, id: i64) -> Result<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let deleted = instances::delete(&tx, id).await?;
        tx.commit().await?;
        Ok(deleted)
    }

    async fn put_subscription(&self, id: i64, subscription: VendorSubscription) -> Result<bool> {
        subscriptions::put(&self.client().await?, id, &subscription).await
    }

    async fn subscriptions(&self, id: Option<i64>) -> Result<Vec<(i64, VendorSubscription)>> {
        subscriptions::get(&self.client().await?, id).await
    }

    async fn record_receipt(&self, receipt: NewReceipt) -> Result<ReceiptOutcome> {
        self.batcher.record(receipt).await
    }

    async fn record_poll(&self, write: PollWrite) -> Result<PollOutcome> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let outcome = polls::stage(&tx, &write).await?;
        tx.commit().await?;
        let stored = outcome.receipt_id.clone();
        if let (Some(receipt_id), Some(page)) = (stored, &write.page) {
            let result = Ok(ReceiptOutcome::Stored { receipt_id });
            if batch::stored_notifications(&result, page) {
                self.announcer.due();
            }
        }
        Ok(outcome)
    }

    fn leases(&self) -> Option<std::sync::Arc<dyn super::leases::Leases>> {
        Some(std::sync::Arc::new(leases::PostgresLeases {
            pool: self.pool.clone(),
        }))
    }

    async fn poll_checkpoints(&self, instance_id: i64) -> Result<Vec<PollCheckpoint>> {
        polls::checkpoints(&self.client().await?, instance_id).await
    }

    async fn claim_due(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        limit: u32,
        rules: ClaimRules,
    ) -> Result<Claimed> {
        let mut client = self.client().await?;
        claims::claim_due(&mut client, now_ms, lease_until_ms, limit, &rules).await
    }

    async fn hand_back(&self, claims: Vec<(String, String)>, due_ms: i64) -> Result<u64> {
        claims::hand_back(&self.client().await?, &claims, due_ms).await
    }

    async fn record_attempts(&self, records: Vec<AttemptRecord>) -> Result<RecordedAttempts> {
        outcomes::record(&mut self.client().await?, &records).await
    }

    async fn redeliver(&self, target: Redeliver, now_ms: i64) -> Result<u64> {
        let mut client = self.client().await?;
        let mut tries = 0;
        loop {
            tries += 1;
            let tx = client.transaction().await?;
            match outbox::redeliver(&tx, &target, now_ms).await {
                Ok(changed) => {
                    tx.commit().await?;
                    return Ok(changed);
                }
                Err(e) if tries < TRIES && error::is_transient(&e) => {}
                Err(e) => return Err(e),
            }
        }
    }

    async fn prune_delivered(&self, before_ms: i64, limit: usize) -> Result<u64> {
        outbox::prune_delivered(&self.client().await?, before_ms, limit).await
    }

    async fn prune_receipts(
        &self,
        after: Option<String>,
        before_ms: i64,
        limit: usize,
    ) -> Result<(u64, Option<String>)> {
        receipts::prune(&self.client().await?, after.as_deref(), before_ms, limit).await
    }

    async fn outbox_depth(&self) -> Result<OutboxDepth> {
        eventlog::depth(&self.client().await?).await
    }

    async fn matching_ids(&self, query: NotificationQuery) -> Result<Vec<String>> {
        eventlog::matching_ids(&self.client().await?, &query).await
    }

    async fn list_notifications(
        &self,
        query: NotificationQuery,
    ) -> Result<Vec<StoredNotification>> {
        eventlog::list(&self.client().await?, &query).await
    }

    async fn get_notification(&self, id: String) -> Result<Option<StoredNotification>> {
        eventlog::get(&self.client().await?, &id).await
    }

    async fn retired_keys(&self, instance_id: i64, now_ms: i64) -> Result<Vec<String>> {
        eventlog::retired_keys(&self.client().await?, instance_id, now_ms).await
    }

    async fn insert_session(
        &self,
        digest: Vec<u8>,
        now_ms: i64,
        cutoffs: SessionCutoffs,
    ) -> Result<()> {
        sessions::insert(&mut self.client().await?, &digest, now_ms, cutoffs).await
    }

    async fn get_session(&self, digest: Vec<u8>) -> Result<Option<StoredSession>> {
        sessions::get(&self.client().await?, &digest).await
    }

    async fn touch_session(&self, digest: Vec<u8>, now_ms: i64) -> Result<()> {
        sessions::touch(&self.client().await?, &digest, now_ms).await
    }

    async fn delete_session(&self, digest: Vec<u8>) -> Result<()> {
        sessions::delete(&self.client().await?, &digest).await
    }

    async fn record_inbound(
        &self,
        entries: Vec<NewInboundEntry>,
        dropped: Vec<(i64, u64)>,
        caps: InboundCaps,
        now_ms: i64,
    ) -> Result<InboundWritten> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let written = inbound::record(&tx, &entries, &dropped, caps, now_ms).await?;
        tx.commit().await?;
        Ok(written)
    }

    async fn list_inbound(&self, query: InboundQuery) -> Result<Vec<InboundEntry>> {
        inbound::list(&self.client().await?, &query).await
    }

    async fn get_inbound(&self, id: String) -> Result<Option<InboundEntry>> {
        inbound::get(&self.client().await?, &id).await
    }

    async fn inbound_dropped(&self, id: Option<i64>) -> Result<Vec<DroppedEntries>> {
        inbound::dropped(&self.client().await?, id).await
    }

    async fn prune_inbound(&self, before_ms: i64, limit: usize) -> Result<u64> {
        inbound::prune(&self.client().await?, before_ms, limit).await
    }

    async fn get_receipt(&self, id: String) -> Result<Option<StoredReceipt>> {
        inbound::get_receipt(&self.client().await?, &id).await
    }

    async fn failed_receipts(
        &self,
        instance_id: i64,
        after: String,
        limit: u32,
    ) -> Result<Vec<StoredReceipt>> {
        inbound::failed_receipts(&self.client().await?, instance_id, &after, limit).await
    }

    async fn settle_receipt(
        &self,
        id: String,
        settlement: Settlement,
        now_ms: i64,
    ) -> Result<Settled> {
        let mut client = self.client().await?;
        let mut tries = 0;
        let settled = loop {
            tries += 1;
            let tx = client.transaction().await?;
            match inbound::settle(&tx, &id, &settlement, now_ms).await {
                Ok(settled) => {
                    tx.commit().await?;
                    break settled;
                }
                Err(e) if tries < TRIES && error::is_transient(&e) => {}
                Err(e) => return Err(e),
            }
        };
        if matches!(&settled, Settled::Accepted { event_ids } if !event_ids.is_empty()) {
            self.announcer.due();
        }
        Ok(settled)
    }

    async fn check(&self) -> Result<()> {
        let client = self.client().await?;
        client.execute("SELECT 1", &[]).await?;
        Ok(())
    }

    fn stats(&self) -> StoreStats {
        self.batcher.stats()
    }

    fn notifications(&self) -> Option<tokio::sync::broadcast::Receiver<Notification>> {
        Some(self.listener.subscribe())
    }

    fn listening(&self) -> Option<bool> {
        Some(self.listener.connected())
    }

    /// A temporary table written and dropped in one transaction: fails
    /// while the server cannot be reached or cannot write.
    async fn probe_write(&self) -> Option<Result<()>> {
        let probe = async {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            tx.batch_execute(
                "CREATE TEMP TABLE plugboard_write_probe (x int) ON COMMIT DROP; \
                 INSERT INTO plugboard_write_probe VALUES (1)",
            )
            .await?;
            tx.commit().await?;
            Ok(())
        };
        Some(probe.await)
    }
}

#[cfg(test)]
mod claim_plan_tests;
#[cfg(test)]
mod lease_tests;
#[cfg(test)]
mod outcome_tests;
#[cfg(test)]
mod prune_plan_tests;
#[cfg(test)]
mod queue_tests;
#[cfg(test)]
mod release_plan_tests;
#[cfg(test)]
mod tests;
