//! The boundary between the store's logic and its database: every SQL
//! statement lives behind [`Backend`].
//!
//! [`Store`](super::Store) drives one backend connection from its writer
//! thread and others from its read pool, and knows nothing of SQL. SQLite is
//! the one implementation ([`SqliteBackend`](super::sqlite::SqliteBackend)). A
//! PostgreSQL backend would implement the same trait, one value per pooled
//! connection, with the same transaction-per-batch and savepoint-per-receipt
//! shape in `commit_receipts`; the writer thread and read pool stay as they
//! are.

use time::OffsetDateTime;

use super::error::Result;
use super::event::{EventQuery, StoredEvent};
use super::instance::{Instance, InstancePatch, NewInstance};
use super::outbox::{
    AttemptRecord, DueNotification, NotificationQuery, OutboxDepth, Redeliver, StoredNotification,
};
use super::poll::{PollCheckpoint, PollOutcome, PollWrite};
use super::receipt::{NewReceipt, ReceiptOutcome, StoredReceipt};

/// One connection to the database, used from one thread at a time.
///
/// Methods taking `&mut self` write and are only called on the writer's
/// connection; methods taking `&self` only read and may run on any
/// connection, concurrently with the writer.
pub(crate) trait Backend: Send {
    /// Inserts an instance with the given token and creation time and returns
    /// it as stored (with its new id).
    fn insert_instance(
        &mut self,
        new: &NewInstance,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<Instance>;

    /// Applies a patch, stamping `now` as the update time. `None` if no such
    /// instance.
    fn update_instance(
        &mut self,
        id: i64,
        patch: &InstancePatch,
        now: OffsetDateTime,
    ) -> Result<Option<Instance>>;

    /// Deletes an instance with its receipts and events. False if there was
    /// no such instance.
    fn delete_instance(&mut self, id: i64) -> Result<bool>;

    /// Writes a batch of receipts in one transaction, each item inside its own
    /// savepoint so one item's failure leaves the others intact. Returns one
    /// result per item, in order. If the transaction itself cannot commit,
    /// every item fails with [`StoreError::BatchAborted`](super::StoreError::BatchAborted).
    fn commit_receipts(&mut self, batch: &[NewReceipt]) -> Vec<Result<ReceiptOutcome>>;

    /// Writes a batch of poll pages in one transaction, each page (receipt,
    /// events, notifications and checkpoint together) in its own savepoint.
    /// Returns one result per page, in order.
    fn commit_polls(&mut self, batch: &[PollWrite]) -> Vec<Result<PollOutcome>>;

    /// Called by the writer thread after each round of writes, between
    /// transactions: room for the backend's housekeeping (SQLite checkpoints
    /// its log here). Does nothing by default.
    fn after_writes(&mut self) {}

    /// The poll checkpoints of an instance, by resource name.
    fn poll_checkpoints(&self, instance_id: i64) -> Result<Vec<PollCheckpoint>>;

    /// The instance with this id.
    fn get_instance(&self, id: i64) -> Result<Option<Instance>>;

    /// The instance holding this token.
    fn get_instance_by_token(&self, token: &str) -> Result<Option<Instance>>;

    /// All instances, by id.
    fn list_instances(&self) -> Result<Vec<Instance>>;

    /// The receipt with this id.
    fn get_receipt(&self, id: &str) -> Result<Option<StoredReceipt>>;

    /// The instance's failed receipts, oldest first.
    fn failed_receipts(&self, instance_id: i64) -> Result<Vec<StoredReceipt>>;

    /// A page of the event log, newest first.
    fn list_events(&self, query: &EventQuery) -> Result<Vec<StoredEvent>>;

    /// The event with this id.
    fn get_event(&self, id: &str) -> Result<Option<StoredEvent>>;

    /// How many events the instance has.
    fn count_events(&self, instance_id: i64) -> Result<u64>;

    /// Claims up to `limit` due notifications (of instances not paused),
    /// leasing them until `lease_until_ms`.
    fn claim_due(
        &mut self,
        now_ms: i64,
        lease_until_ms: i64,
        limit: u32,
    ) -> Result<Vec<DueNotification>>;

    /// Records delivery attempts and their consequences in one transaction.
    fn record_attempts(&mut self, records: &[AttemptRecord]) -> Result<()>;

    /// Makes notifications due again with a fresh attempt cycle.
    fn redeliver(&mut self, target: &Redeliver, now_ms: i64) -> Result<u64>;

    /// Deletes at most `limit` notifications delivered before `before_ms`.
    fn prune_delivered(&mut self, before_ms: i64, limit: usize) -> Result<u64>;

    /// Deletes, among the next `limit` receipts after `after` received
    /// before `before_ms`, the accepted ones whose notifications were all
    /// delivered, with their events and notifications. Returns how many
    /// were deleted and where to continue (`None` when done).
    fn prune_receipts(
        &mut self,
        after: Option<&str>,
        before_ms: i64,
        limit: usize,
    ) -> Result<(u64, Option<String>)>;

    /// Pending and dead-lettered notification counts.
    fn outbox_depth(&self) -> Result<OutboxDepth>;

    /// A page of notifications, newest first.
    fn list_notifications(&self, query: &NotificationQuery) -> Result<Vec<StoredNotification>>;

    /// One notification with its attempts.
    fn get_notification(&self, id: &str) -> Result<Option<StoredNotification>>;

    /// Retired signing keys of an instance still in their grace period.
    fn retired_keys(&self, instance_id: i64, now_ms: i64) -> Result<Vec<String>>;
}
