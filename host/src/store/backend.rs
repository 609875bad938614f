//! The boundary between [`Store`](super::Store) and a database: every
//! operation the rest of the host needs, asynchronous and at the level of
//! the store's own operations, so how a database runs them (threads,
//! connections, pools, batching) is its backend's private business.
//!
//! What every backend must guarantee, checked by the conformance suite in
//! `conformance/`:
//! - a receipt (or poll page) is stored with its notifications (and the
//!   page's checkpoint) in one transaction, durably, before the call
//!   returns; every multi-statement write is one transaction;
//! - at most one accepted receipt per instance and vendor message id within
//!   the de-duplication window, enforced by a unique key, also with several
//!   writers;
//! - a claim hands out a lease token, and an attempt's outcome is written
//!   only while that token still holds the notification;
//! - a poll checkpoint only moves forward;
//! - an instance update with an expected version fails with a conflict when
//!   the stored version differs.

use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::error::Result;
use super::inbound::{
    DroppedEntries, InboundCaps, InboundEntry, InboundQuery, InboundWritten, NewInboundEntry,
    Settled, Settlement, StoredReceipt,
};
use super::instance::{Instance, InstancePatch, NewInstance};
use super::leases::Leases;
use super::outbox::{
    AttemptRecord, NotificationQuery, OutboxDepth, RecordedAttempts, Redeliver, StoredNotification,
};
use super::pacing::{ClaimRules, Claimed};
use super::poll::{PollCheckpoint, PollOutcome, PollWrite};
use super::receipt::{NewReceipt, ReceiptOutcome};
use super::session::{SessionCutoffs, StoredSession};
use super::subscription::VendorSubscription;
use super::StoreStats;

/// One database behind the store. Shared by every clone of the
/// [`Store`](super::Store); all methods may be called concurrently.
#[async_trait]
pub(crate) trait Backend: Send + Sync + 'static {
    /// Inserts an instance with the given token and creation time and
    /// returns it as stored (with its new id, at version 1).
    async fn insert_instance(
        &self,
        new: NewInstance,
        token: String,
        now: OffsetDateTime,
    ) -> Result<Instance>;

    /// The instance with this id.
    async fn get_instance(&self, id: i64) -> Result<Option<Instance>>;

    /// All instances, by id.
    async fn list_instances(&self) -> Result<Vec<Instance>>;

    /// Applies a non-empty patch in one transaction (the instance row, the
    /// retired key), stamping `now` and
    /// moving the version up by one. With `expected_version`, fails with a
    /// conflict unless the stored version is that one. `None` if no such
    /// instance.
    async fn update_instance(
        &self,
        id: i64,
        expected_version: Option<i64>,
        patch: InstancePatch,
        now: OffsetDateTime,
    ) -> Result<Option<Instance>>;

    /// Deletes an instance with everything it owns. False if there was no
    /// such instance.
    async fn delete_instance(&self, id: i64) -> Result<bool>;

    /// Records the vendor subscription of instance `id`, replacing what was
    /// recorded, without touching the instance's version. False (nothing
    /// written) if there is no such instance.
    async fn put_subscription(&self, id: i64, subscription: VendorSubscription) -> Result<bool>;

    /// The recorded vendor subscription of instance `id`, or of every
    /// instance (by id) when `id` is `None`.
    async fn subscriptions(&self, id: Option<i64>) -> Result<Vec<(i64, VendorSubscription)>>;

    /// Stores a receipt with its notifications unless it repeats an
    /// accepted one within its window; returns once committed.
    async fn record_receipt(&self, receipt: NewReceipt) -> Result<ReceiptOutcome>;

    /// Stores a poll page (receipt, notifications, checkpoint) in one
    /// transaction; returns once committed. With a fence that no longer
    /// holds, writes nothing and reports the page fenced.
    async fn record_poll(&self, write: PollWrite) -> Result<PollOutcome>;

    /// The poll checkpoints of an instance, by resource name.
    async fn poll_checkpoints(&self, instance_id: i64) -> Result<Vec<PollCheckpoint>>;

    /// Claims up to `limit` due notifications of instances whose delivery
    /// is not paused, at most each instance's share under `rules` (its room
    /// under the per-instance cap, its pace), leasing them until
    /// `lease_until_ms` under a fresh lease token and moving the paced
    /// instances' pacing rows on, in one transaction.
    async fn claim_due(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        limit: u32,
        rules: ClaimRules,
    ) -> Result<Claimed>;

    /// Hands claimed notifications back unattempted (`(id, lease token)`):
    /// where the token still holds, the lease is dropped and they are due
    /// at `due_ms`, their attempt count unchanged. Returns how many went back.
    async fn hand_back(&self, claims: Vec<(String, String)>, due_ms: i64) -> Result<u64>;

    /// Records attempts in one transaction; an attempt whose lease token no
    /// longer holds its notification changes nothing and is reported stale.
    async fn record_attempts(&self, records: Vec<AttemptRecord>) -> Result<RecordedAttempts>;

    /// Makes notifications due at `now_ms` with a fresh attempt cycle;
    /// returns how many.
    async fn redeliver(&self, target: Redeliver, now_ms: i64) -> Result<u64>;

    /// Deletes at most `limit` notifications delivered before `before_ms`.
    async fn prune_delivered(&self, before_ms: i64, limit: usize) -> Result<u64>;

    /// Deletes, among the next `limit` receipts after `after` received
    /// before `before_ms`, the accepted ones whose notifications were all
    /// delivered, with those notifications. Returns how many were deleted
    /// and where to continue (`None` when done).
    async fn prune_receipts(
        &self,
        after: Option<String>,
        before_ms: i64,
        limit: usize,
    ) -> Result<(u64, Option<String>)>;

    /// Pending and dead-lettered notification counts.
    async fn outbox_depth(&self) -> Result<OutboxDepth>;

    /// The ids of a page of the event log, newest first: what
    /// `list_notifications` would list, without reading the notifications.
    async fn matching_ids(&self, query: NotificationQuery) -> Result<Vec<String>>;

    /// A page of the event log (notifications), newest first.
    async fn list_notifications(&self, query: NotificationQuery)
        -> Result<Vec<StoredNotification>>;

    /// One notification with its attempts.
    async fn get_notification(&self, id: String) -> Result<Option<StoredNotification>>;

    /// Retired signing keys of an instance still in their grace period.
    async fn retired_keys(&self, instance_id: i64, now_ms: i64) -> Result<Vec<String>>;

    /// Stores a console session under its token's digest, in one
    /// transaction with removing the sessions `cutoffs` says have ended and
    /// the oldest beyond its maximum.
    async fn insert_session(
        &self,
        digest: Vec<u8>,
        now_ms: i64,
        cutoffs: SessionCutoffs,
    ) -> Result<()>;

    /// The console session stored under `digest`.
    async fn get_session(&self, digest: Vec<u8>) -> Result<Option<StoredSession>>;

    /// Stamps the console session under `digest` as seen at `now_ms`.
    async fn touch_session(&self, digest: Vec<u8>, now_ms: i64) -> Result<()>;

    /// Deletes the console session under `digest`, if any.
    async fn delete_session(&self, digest: Vec<u8>) -> Result<()>;

    /// Stores inbound log entries under `caps` in one transaction, adding
    /// those over a cap and `dropped` (counted before reaching the store)
    /// to their instance's dropped count.
    async fn record_inbound(
        &self,
        entries: Vec<NewInboundEntry>,
        dropped: Vec<(i64, u64)>,
        caps: InboundCaps,
        now_ms: i64,
    ) -> Result<InboundWritten>;

    /// A page of the inbound log (webhook receipts and the entries of
    /// `record_inbound`), newest first, without bodies.
    async fn list_inbound(&self, query: InboundQuery) -> Result<Vec<InboundEntry>>;

    /// One inbound log entry with its body.
    async fn get_inbound(&self, id: String) -> Result<Option<InboundEntry>>;

    /// The dropped counts of instance `id`, or of every instance.
    async fn inbound_dropped(&self, id: Option<i64>) -> Result<Vec<DroppedEntries>>;

    /// Deletes at most `limit` inbound entries (not receipts) received
    /// before `before_ms`, and dropped counts last bumped before then.
    async fn prune_inbound(&self, before_ms: i64, limit: usize) -> Result<u64>;

    /// The receipt with this id, whole.
    async fn get_receipt(&self, id: String) -> Result<Option<StoredReceipt>>;

    /// Up to `limit` failed webhook receipts of an instance with ids after
    /// `after`, oldest first.
    async fn failed_receipts(
        &self,
        instance_id: i64,
        after: String,
        limit: u32,
    ) -> Result<Vec<StoredReceipt>>;

    /// Settles failed receipt `id` in one transaction, only while it is
    /// still failed (a concurrent settlement wins once); accepted, it gets
    /// its notifications created at `now_ms` and the de-duplication key
    /// as at ingress.
    async fn settle_receipt(
        &self,
        id: String,
        settlement: Settlement,
        now_ms: i64,
    ) -> Result<Settled>;

    /// Whether the database answers right now (for readiness): an embedded
    /// database that opened always does; a server is asked.
    async fn check(&self) -> Result<()> {
        Ok(())
    }

    /// Counters of the writes so far.
    /// Database notifications, for a backend that has them.
    fn notifications(&self) -> Option<tokio::sync::broadcast::Receiver<super::Notification>> {
        None
    }

    /// Whether the connection receiving notifications is up, for a backend
    /// that has one.
    fn listening(&self) -> Option<bool> {
        None
    }

    fn stats(&self) -> StoreStats;

    /// After a write failed with the database unavailable: whether it can
    /// be written now, checked by a write that leaves what it stores
    /// unchanged. `None` when the backend has no such check; the store then
    /// waits for its next successful write.
    async fn probe_write(&self) -> Option<Result<()>> {
        None
    }

    /// The replica leases of a database several processes share; `None`
    /// for a database one process owns (it holds every partition and
    /// singleton, and fences nothing).
    fn leases(&self) -> Option<Arc<dyn Leases>> {
        None
    }
}
