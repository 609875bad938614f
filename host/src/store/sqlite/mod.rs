//! The SQLite implementation of [`Backend`]: one [`SqliteBackend`] per
//! connection, in write-ahead-log mode so readers never block the writer or
//! each other.
//!
//! The writer connection runs with foreign keys on (deleting an instance
//! deletes its receipts and events), the configured `synchronous` level and
//! settings tuned for batches of receipts (a page cache that holds a batch,
//! savepoint journals in memory, infrequent checkpoints); read connections
//! are opened read-only.

mod batch;
mod checkpoint;
mod events;
mod instances;
mod outbox;
mod polls;
mod receipts;
mod schema;

use std::path::Path;

use anyhow::Context as _;
use rusqlite::{Connection, OpenFlags};
use time::OffsetDateTime;

use super::backend::Backend;
use super::error::Result;
use super::event::{EventQuery, StoredEvent};
use super::instance::{Instance, InstancePatch, NewInstance};
use super::options::StoreOptions;
use super::outbox::{
    AttemptRecord, DueNotification, NotificationQuery, OutboxDepth, Redeliver, StoredNotification,
};
use super::poll::{PollCheckpoint, PollOutcome, PollWrite};
use super::receipt::{NewReceipt, ReceiptOutcome, StoredReceipt};

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
pub(crate) struct SqliteBackend {
    /// The writer's checkpointer (declared first: it closes its connection
    /// before this one, which then checkpoints what is left on close).
    checkpointer: Option<checkpoint::Checkpointer>,
    conn: Connection,
}

impl SqliteBackend {
    /// Opens (creating if needed) the database file for writing, switches it
    /// to write-ahead logging and brings its schema up to date.
    pub(crate) fn open_writer(path: &Path, opts: &StoreOptions) -> anyhow::Result<Self> {
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
        conn.pragma_update(None, "synchronous", opts.synchronous.pragma())?;
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
    pub(crate) fn open_reader(path: &Path, opts: &StoreOptions) -> Result<Self> {
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
    pub(crate) fn open_in_memory() -> anyhow::Result<Self> {
        Self::prepare(Connection::open_in_memory()?)
    }

    /// Settings every writable connection shares, then the schema.
    ///
    /// Savepoints keep the pages they change in a sub-journal; in memory it
    /// costs a copy, as a temporary file it costs several system calls per
    /// receipt.
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
}

impl Backend for SqliteBackend {
    fn insert_instance(
        &mut self,
        new: &NewInstance,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<Instance> {
        instances::insert(&self.conn, new, token, now)
    }

    fn update_instance(
        &mut self,
        id: i64,
        patch: &InstancePatch,
        now: OffsetDateTime,
    ) -> Result<Option<Instance>> {
        instances::update(&self.conn, id, patch, now)
    }

    fn delete_instance(&mut self, id: i64) -> Result<bool> {
        instances::delete(&self.conn, id)
    }

    fn commit_receipts(&mut self, batch: &[NewReceipt]) -> Vec<Result<ReceiptOutcome>> {
        batch::commit(&mut self.conn, batch)
    }

    fn commit_polls(&mut self, batch: &[PollWrite]) -> Vec<Result<PollOutcome>> {
        polls::commit(&mut self.conn, batch)
    }

    fn after_writes(&mut self) {
        if let Some(checkpointer) = &self.checkpointer {
            checkpointer.after_writes(&self.conn);
        }
    }

    fn poll_checkpoints(&self, instance_id: i64) -> Result<Vec<PollCheckpoint>> {
        polls::checkpoints(&self.conn, instance_id)
    }

    fn get_instance(&self, id: i64) -> Result<Option<Instance>> {
        instances::get(&self.conn, id)
    }

    fn get_instance_by_token(&self, token: &str) -> Result<Option<Instance>> {
        instances::get_by_token(&self.conn, token)
    }

    fn list_instances(&self) -> Result<Vec<Instance>> {
        instances::list(&self.conn)
    }

    fn get_receipt(&self, id: &str) -> Result<Option<StoredReceipt>> {
        receipts::get(&self.conn, id)
    }

    fn failed_receipts(&self, instance_id: i64) -> Result<Vec<StoredReceipt>> {
        receipts::failed(&self.conn, instance_id)
    }

    fn list_events(&self, query: &EventQuery) -> Result<Vec<StoredEvent>> {
        events::list(&self.conn, query)
    }

    fn get_event(&self, id: &str) -> Result<Option<StoredEvent>> {
        events::get(&self.conn, id)
    }

    fn count_events(&self, instance_id: i64) -> Result<u64> {
        events::count(&self.conn, instance_id)
    }

    fn claim_due(
        &mut self,
        now_ms: i64,
        lease_until_ms: i64,
        limit: u32,
    ) -> Result<Vec<DueNotification>> {
        outbox::claim_due(&mut self.conn, now_ms, lease_until_ms, limit)
    }

    fn record_attempts(&mut self, records: &[AttemptRecord]) -> Result<()> {
        outbox::record_attempts(&mut self.conn, records)
    }

    fn redeliver(&mut self, target: &Redeliver, now_ms: i64) -> Result<u64> {
        outbox::redeliver(&self.conn, target, now_ms)
    }

    fn prune_delivered(&mut self, before_ms: i64, limit: usize) -> Result<u64> {
        outbox::prune_delivered(&self.conn, before_ms, limit)
    }

    fn prune_receipts(
        &mut self,
        after: Option<&str>,
        before_ms: i64,
        limit: usize,
    ) -> Result<(u64, Option<String>)> {
        receipts::prune(&self.conn, after, before_ms, limit)
    }

    fn outbox_depth(&self) -> Result<OutboxDepth> {
        outbox::depth(&self.conn)
    }

    fn list_notifications(&self, query: &NotificationQuery) -> Result<Vec<StoredNotification>> {
        outbox::list(&self.conn, query)
    }

    fn get_notification(&self, id: &str) -> Result<Option<StoredNotification>> {
        outbox::get(&self.conn, id)
    }

    fn retired_keys(&self, instance_id: i64, now_ms: i64) -> Result<Vec<String>> {
        outbox::retired_keys(&self.conn, instance_id, now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_databases_use_wal_and_foreign_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let writer = SqliteBackend::open_writer(&path, &StoreOptions::default()).unwrap();
        let mode: String = writer
            .conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let fk: bool = writer
            .conn
            .pragma_query_value(None, "foreign_keys", |r| r.get(0))
            .unwrap();
        assert!(fk);
        let sync: i64 = writer
            .conn
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .unwrap();
        assert_eq!(sync, 2, "FULL");
        let temp_store: i64 = writer
            .conn
            .pragma_query_value(None, "temp_store", |r| r.get(0))
            .unwrap();
        assert_eq!(temp_store, 2, "MEMORY");
        let reader = SqliteBackend::open_reader(&path, &StoreOptions::default()).unwrap();
        assert!(reader.conn.execute("DELETE FROM instances", []).is_err());
    }
}
