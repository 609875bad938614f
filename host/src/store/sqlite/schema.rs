//! The database schema and its migrations.
//!
//! [`MIGRATIONS`] is an ordered list; the database's `user_version` counts
//! how many have been applied. Opening applies the missing ones, each in its
//! own transaction together with the version bump, and refuses a database
//! written by a newer plugboard. Published migrations are never edited: a
//! change is a new entry at the end.

use rusqlite::{Connection, TransactionBehavior};

/// Schema migrations, oldest first. Entry `n` takes the schema from version
/// `n` to `n + 1`.
///
/// Times plugboard stamps are unix milliseconds; vendor dates are RFC 3339
/// text; JSON columns hold compact JSON text.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: instances, receipts and events.
    r#"
    CREATE TABLE instances (
        id             INTEGER PRIMARY KEY AUTOINCREMENT,
        token          TEXT    NOT NULL UNIQUE,
        element_key    TEXT    NOT NULL,
        name           TEXT    NOT NULL,
        tags           TEXT    NOT NULL,
        configuration  TEXT    NOT NULL,
        events_enabled INTEGER NOT NULL,
        created_at     INTEGER NOT NULL,
        updated_at     INTEGER NOT NULL
    ) STRICT;

    CREATE TABLE receipts (
        id          TEXT    PRIMARY KEY,
        instance_id INTEGER NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
        element_key TEXT    NOT NULL,
        received_at INTEGER NOT NULL,
        message_id  TEXT,
        method      TEXT    NOT NULL,
        path        TEXT    NOT NULL,
        headers     TEXT    NOT NULL,
        body        BLOB    NOT NULL,
        status      TEXT    NOT NULL CHECK (status IN ('accepted', 'failed')),
        error       TEXT,
        raw         TEXT
    ) STRICT;
    CREATE INDEX receipts_dedup ON receipts (instance_id, message_id, received_at);
    CREATE INDEX receipts_failed ON receipts (instance_id, id) WHERE status = 'failed';

    CREATE TABLE events (
        id          TEXT    PRIMARY KEY,
        receipt_id  TEXT    NOT NULL REFERENCES receipts (id) ON DELETE CASCADE,
        instance_id INTEGER NOT NULL,
        element_key TEXT    NOT NULL,
        event_type  TEXT    NOT NULL
                    CHECK (event_type IN ('CREATED', 'UPDATED', 'DELETED', 'UNKNOWN')),
        object_type TEXT    NOT NULL,
        object_id   TEXT    NOT NULL,
        event_date  TEXT    NOT NULL,
        raw         TEXT    NOT NULL,
        seq         INTEGER NOT NULL,
        created_at  INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX events_by_instance ON events (instance_id, id);
    CREATE INDEX events_by_receipt ON events (receipt_id, seq);
    "#,
    // 2: the outbox (notifications and delivery attempts), paused delivery,
    // and signing keys kept through a rotation's grace period.
    r#"
    CREATE TABLE notifications (
        id              TEXT    PRIMARY KEY,
        instance_id     INTEGER NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
        receipt_id      TEXT    REFERENCES receipts (id) ON DELETE CASCADE,
        source          TEXT    NOT NULL CHECK (source IN ('webhook', 'polling')),
        content_type    TEXT    NOT NULL,
        body            BLOB    NOT NULL,
        event_count     INTEGER NOT NULL,
        status          TEXT    NOT NULL CHECK (status IN ('pending', 'delivered', 'dead')),
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL,
        last_status     INTEGER,
        last_error      TEXT,
        created_at      INTEGER NOT NULL,
        delivered_at    INTEGER
    ) STRICT;
    CREATE INDEX notifications_due ON notifications (next_attempt_at) WHERE status = 'pending';
    CREATE INDEX notifications_by_instance ON notifications (instance_id, id);
    CREATE INDEX notifications_by_status ON notifications (status, id);
    CREATE INDEX notifications_by_receipt ON notifications (receipt_id);

    CREATE TABLE delivery_attempts (
        id              INTEGER PRIMARY KEY,
        notification_id TEXT    NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
        attempted_at    INTEGER NOT NULL,
        status_code     INTEGER,
        error           TEXT,
        latency_ms      INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX delivery_attempts_by_notification ON delivery_attempts (notification_id, id);

    ALTER TABLE instances ADD COLUMN delivery_paused TEXT;

    CREATE TABLE retired_signing_keys (
        instance_id INTEGER NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
        key         TEXT    NOT NULL,
        expires_at  INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX retired_signing_keys_by_instance ON retired_signing_keys (instance_id, expires_at);
    "#,
    // 3: poll checkpoints: per instance and resource, the end of the last
    // poll window whose events are stored (unix milliseconds).
    r#"
    CREATE TABLE poll_checkpoints (
        instance_id INTEGER NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
        resource    TEXT    NOT NULL,
        checkpoint  INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL,
        PRIMARY KEY (instance_id, resource)
    ) STRICT, WITHOUT ROWID;
    "#,
];

/// The schema version this build writes.
pub(super) fn latest_version() -> u32 {
    u32::try_from(MIGRATIONS.len()).expect("fewer than 2^32 migrations")
}

/// Brings the schema up to date and returns the version it is now at.
pub(super) fn migrate(conn: &mut Connection) -> anyhow::Result<u32> {
    let mut version = current_version(conn)?;
    let latest = latest_version();
    if version > latest {
        anyhow::bail!(
            "the database has schema version {version}, newer than this plugboard knows \
             ({latest}); upgrade plugboard or use another data folder"
        );
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let next = u32::try_from(index + 1)?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(sql)
            .map_err(|e| anyhow::anyhow!("schema migration to version {next}: {e}"))?;
        tx.pragma_update(None, "user_version", next)?;
        tx.commit()?;
        tracing::info!(version = next, "store schema migrated");
        version = next;
    }
    Ok(version)
}

/// The schema version recorded in the database (0 for a new file).
pub(super) fn current_version(conn: &Connection) -> rusqlite::Result<u32> {
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_a_new_database_once() {
        let mut conn = Connection::open_in_memory().unwrap();
        assert_eq!(migrate(&mut conn).unwrap(), latest_version());
        assert_eq!(migrate(&mut conn).unwrap(), latest_version());
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE type = 'table' \
                 AND name IN ('instances', 'receipts', 'events', 'notifications', \
                 'delivery_attempts', 'retired_signing_keys', 'poll_checkpoints')",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(tables, 7);
    }

    #[test]
    fn refuses_a_newer_schema() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", latest_version() + 1)
            .unwrap();
        let err = migrate(&mut conn).unwrap_err().to_string();
        assert!(err.contains("newer than this plugboard knows"), "{err}");
    }
}
