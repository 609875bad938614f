//! One SQLite connection with the store's settings applied, and the
//! statements the store runs on it (each a method delegating to the module
//! holding its SQL).
//!
//! The writer connection runs with foreign keys on (deleting an instance
//! deletes what it owns), `synchronous = FULL` and settings tuned for
//! batches of receipts (a page cache that holds a batch, savepoint
//! journals in memory, checkpoints on their own thread); read connections
//! are opened read-only.

use std::path::Path;

use anyhow::Context as _;
use rusqlite::{Connection, OpenFlags};
use time::OffsetDateTime;

use super::super::error::Result;
use super::super::instance::{Instance, InstancePatch, NewInstance};
use super::super::outbox::{
    AttemptRecord, NotificationQuery, OutboxDepth, RecordedAttempts, Redeliver, StoredNotification,
};
use super::super::pacing::{ClaimRules, Claimed};
use super::super::poll::{PollCheckpoint, PollOutcome, PollWrite};
use super::super::receipt::{NewReceipt, ReceiptOutcome};
use super::super::subscription::VendorSubscription;
use super::options::SqliteOptions;
use super::{batch, checkpoint, claims, instances, outbox, polls, receipts, schema, subscriptions};

/// Prepared statements kept per connection: every fixed statement plus the
/// event-log query's variants.
const STATEMENT_CACHE: usize = 64;

/// Page cache of the writer connection, in KiB. A batch of receipts dirties
/// a few pages each; a cache that holds a whole batch (and the hot index
/// pages) never spills mid-transaction.
const WRITER_CACHE_KIB: i64 = 64 * 1024;

/// Bytes the log file is cut back to after a checkpoint, so a burst does not
/// leave a large file behind.
const WAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;

/// One SQLite connection with the store's settings applied.
pub(super) struct Conn {
    /// The writer's checkpointer (declared first: it closes its connection
    /// before this one, which then checkpoints what is left on close).
    checkpointer: Option<checkpoint::Checkpointer>,
    pub(super) conn: Connection,
}

impl Conn {
    /// Opens (creating if needed) the database file for writing, switches it
    /// to write-ahead logging and brings its schema up to date.
    pub(super) fn open_writer(path: &Path, opts: &SqliteOptions) -> anyhow::Result<Self> {
        let conn = Connection::open(path)
            .with_context(|| format!("opening store database {}", path.display()))?;
        conn.busy_timeout(opts.busy_timeout)?;
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            anyhow::bail!(
                "store database {} cannot use write-ahead logging (journal mode is {mode})",
                path.display()
            );
        }
        conn.pragma_update(None, "synchronous", "FULL")?;
        // Checkpoints run on their own thread (see `checkpoint`).
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)?;
        conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)?;
        let mut backend = Self::prepare(conn)?;
        backend.checkpointer = Some(
            checkpoint::Checkpointer::start(path, opts.busy_timeout, opts.wal_catch_up_pages)
                .context("starting the store's checkpoint thread")?,
        );
        Ok(backend)
    }

    /// Opens a read-only connection to a database a writer has already
    /// created.
    pub(super) fn open_reader(path: &Path, opts: &SqliteOptions) -> Result<Self> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)?;
        conn.busy_timeout(opts.busy_timeout)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(Self {
            checkpointer: None,
            conn,
        })
    }

    /// A private database in memory, gone when the connection closes.
    #[cfg(test)]
    pub(super) fn open_in_memory() -> anyhow::Result<Self> {
        Self::prepare(Connection::open_in_memory()?)
    }

    /// Settings every writable connection shares, then the schema.
    ///
    /// Savepoints (a batch written again receipt by receipt, a poll page)
    /// keep the pages they change in a sub-journal; in memory it costs a
    /// copy, as a temporary file several system calls per receipt.
    fn prepare(mut conn: Connection) -> anyhow::Result<Self> {
        conn.pragma_update(None, "foreign_keys", true)?;
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        schema::migrate(&mut conn)?;
        Ok(Self {
            checkpointer: None,
            conn,
        })
    }

    /// Housekeeping between rounds of writes: wakes the checkpointer.
    pub(super) fn after_writes(&mut self) {
        if let Some(checkpointer) = &self.checkpointer {
            checkpointer.after_writes(&self.conn);
        }
    }

    pub(super) fn insert_instance(
        &mut self,
        new: &NewInstance,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<Instance> {
        instances::insert(&self.conn, new, token, now)
    }

    pub(super) fn update_instance(
        &mut self,
        id: i64,
        expected_version: Option<i64>,
        patch: &InstancePatch,
        now: OffsetDateTime,
    ) -> Result<Option<Instance>> {
        instances::update(&mut self.conn, id, expected_version, patch, now)
    }

    pub(super) fn delete_instance(&mut self, id: i64) -> Result<bool> {
        instances::delete(&self.conn, id)
    }

    pub(super) fn put_subscription(
        &mut self,
        id: i64,
        subscription: &VendorSubscription,
    ) -> Result<bool> {
        subscriptions::put(&self.conn, id, subscription)
    }

    pub(super) fn subscriptions(&self, id: Option<i64>) -> Result<Vec<(i64, VendorSubscription)>> {
        subscriptions::get(&self.conn, id)
    }

    pub(super) fn commit_receipts(&mut self, batch: &[NewReceipt]) -> Vec<Result<ReceiptOutcome>> {
        batch::commit(&mut self.conn, batch)
    }

    pub(super) fn commit_polls(&mut self, batch: &[PollWrite]) -> Vec<Result<PollOutcome>> {
        polls::commit(&mut self.conn, batch)
    }

    pub(super) fn poll_checkpoints(&self, instance_id: i64) -> Result<Vec<PollCheckpoint>> {
        polls::checkpoints(&self.conn, instance_id)
    }

    pub(super) fn get_instance(&self, id: i64) -> Result<Option<Instance>> {
        instances::get(&self.conn, id)
    }

    pub(super) fn list_instances(&self) -> Result<Vec<Instance>> {
        instances::list(&self.conn)
    }

    pub(super) fn claim_due(
        &mut self,
        now_ms: i64,
        lease_until_ms: i64,
        limit: u32,
        rules: &ClaimRules,
    ) -> Result<Claimed> {
        claims::claim_due(&mut self.conn, now_ms, lease_until_ms, limit, rules)
    }

    pub(super) fn hand_back(&mut self, claims: &[(String, String)], due_ms: i64) -> Result<u64> {
        claims::hand_back(&mut self.conn, claims, due_ms)
    }

    pub(super) fn record_attempts(
        &mut self,
        records: &[AttemptRecord],
    ) -> Result<RecordedAttempts> {
        outbox::record_attempts(&mut self.conn, records)
    }

    pub(super) fn redeliver(&mut self, target: &Redeliver, now_ms: i64) -> Result<u64> {
        outbox::redeliver(&self.conn, target, now_ms)
    }

    pub(super) fn prune_delivered(&mut self, before_ms: i64, limit: usize) -> Result<u64> {
        outbox::prune_delivered(&self.conn, before_ms, limit)
    }

    pub(super) fn prune_receipts(
        &mut self,
        after: Option<&str>,
        before_ms: i64,
        limit: usize,
    ) -> Result<(u64, Option<String>)> {
        receipts::prune(&self.conn, after, before_ms, limit)
    }

    pub(super) fn outbox_depth(&self) -> Result<OutboxDepth> {
        outbox::depth(&self.conn)
    }

    pub(super) fn matching_ids(&self, query: &NotificationQuery) -> Result<Vec<String>> {
        outbox::matching_ids(&self.conn, query)
    }

    pub(super) fn list_notifications(
        &self,
        query: &NotificationQuery,
    ) -> Result<Vec<StoredNotification>> {
        outbox::list(&self.conn, query)
    }

    pub(super) fn get_notification(&self, id: &str) -> Result<Option<StoredNotification>> {
        outbox::get(&self.conn, id)
    }

    pub(super) fn retired_keys(&self, instance_id: i64, now_ms: i64) -> Result<Vec<String>> {
        outbox::retired_keys(&self.conn, instance_id, now_ms)
    }

    /// Commits a transaction that creates and drops a table: new pages go
    /// through the log to the disk, but nothing stored changes (only the
    /// schema cookie moves on). Fails as the store's writes would when the
    /// disk is full.
    pub(super) fn probe_write(&mut self) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute_batch(
            "CREATE TABLE plugboard_write_probe (x BLOB); DROP TABLE plugboard_write_probe;",
        )?;
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_databases_use_wal_and_foreign_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let writer = Conn::open_writer(&path, &SqliteOptions::default()).unwrap();
        let pragma = |name: &str| -> String {
            writer
                .conn
                .pragma_query_value(None, name, |r| r.get::<_, rusqlite::types::Value>(0))
                .map(|v| format!("{v:?}"))
                .unwrap()
        };
        assert_eq!(pragma("journal_mode"), "Text(\"wal\")");
        assert_eq!(pragma("foreign_keys"), "Integer(1)");
        assert_eq!(pragma("synchronous"), "Integer(2)", "FULL");
        assert_eq!(pragma("temp_store"), "Integer(2)", "MEMORY");
        let reader = Conn::open_reader(&path, &SqliteOptions::default()).unwrap();
        assert!(reader.conn.execute("DELETE FROM instances", []).is_err());
    }
}
