//! The database schema and its migrations.
//!
//! [`MIGRATIONS`] is an ordered list run by `rusqlite_migration`, which
//! keeps the database's `user_version` as the count of migrations applied
//! (the same counter plugboard kept before it used the crate, so existing
//! databases open unchanged). Opening applies the missing ones in one
//! transaction together with the version bump, and refuses a database
//! written by a newer plugboard. Published migrations are never edited: a
//! change is a new entry at the end.

use rusqlite::Connection;
use rusqlite_migration::{Migrations, SchemaVersion, M};

/// Schema migrations, oldest first. Entry `n` takes the schema from version
/// `n` to `n + 1`.
///
/// Times plugboard stamps are unix milliseconds; vendor dates are RFC 3339
/// text; JSON columns hold compact JSON text.
const MIGRATIONS: &[M<'static>] = &[
    // 1: instances, receipts and events.
    M::up(
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
    ),
    // 2: the outbox (notifications and delivery attempts), paused delivery,
    // and signing keys kept through a rotation's grace period.
    M::up(
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
    ),
    // 3: poll checkpoints: per instance and resource, the end of the last
    // poll window whose events are stored (unix milliseconds).
    M::up(
        r#"
    CREATE TABLE poll_checkpoints (
        instance_id INTEGER NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
        resource    TEXT    NOT NULL,
        checkpoint  INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL,
        PRIMARY KEY (instance_id, resource)
    ) STRICT, WITHOUT ROWID;
    "#,
    ),
    // 4: constraints that hold with several writers, and no unread writes.
    // - De-duplication becomes a unique key: `dedup_key` holds the vendor
    //   message id while the receipt guards it (the newest accepted one per
    //   message takes it over from existing data).
    // - Instances carry a version for conditional updates.
    // - Claimed notifications carry their claim's lease token.
    // - The `events` table goes: nothing read it; notifications carry the
    //   events. So does the failed-receipt index nothing queried.
    M::up(
        r#"
    ALTER TABLE receipts ADD COLUMN dedup_key TEXT;
    UPDATE receipts SET dedup_key = message_id
    WHERE status = 'accepted' AND message_id IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM receipts later
                      WHERE later.instance_id = receipts.instance_id
                        AND later.message_id = receipts.message_id
                        AND later.status = 'accepted' AND later.id > receipts.id);
    DROP INDEX receipts_dedup;
    DROP INDEX receipts_failed;
    CREATE UNIQUE INDEX receipts_dedup_key ON receipts (instance_id, dedup_key)
        WHERE dedup_key IS NOT NULL;

    ALTER TABLE instances ADD COLUMN version INTEGER NOT NULL DEFAULT 1;

    ALTER TABLE notifications ADD COLUMN lease_token TEXT;

    DROP TABLE events;
    "#,
    ),
    // 5: console sessions, shared by every process on the store: the
    // SHA-256 of each token, when it was opened and last used.
    M::up(
        r#"
    CREATE TABLE console_sessions (
        digest     BLOB    PRIMARY KEY,
        created_at INTEGER NOT NULL,
        last_seen  INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX console_sessions_by_created ON console_sessions (created_at);
    "#,
    ),
    // 6: what the receiver said: the first bytes of its answer to each
    // attempt (empty when it sent none or did not answer).
    M::up(
        r#"
    ALTER TABLE delivery_attempts ADD COLUMN response_body BLOB NOT NULL DEFAULT x'';
    "#,
    ),
    // 7: searching the event log: what each notification's events are
    // about, one row per event, indexed for the searches by object id and
    // object type (see `store/search.rs`). Notifications stored before
    // carry none, so searches by event fields do not find them.
    M::up(
        r#"
    CREATE TABLE notification_events (
        notification_id TEXT NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
        object_type     TEXT NOT NULL,
        object_id       TEXT NOT NULL,
        event_type      TEXT NOT NULL
    ) STRICT;
    CREATE INDEX notification_events_by_notification ON notification_events (notification_id);
    CREATE INDEX notification_events_by_object ON notification_events (object_id, notification_id);
    CREATE INDEX notification_events_by_type ON notification_events (object_type, notification_id);
    "#,
    ),
    // 8: per-instance event filters: a notification the instance's filter
    // left out is stored settled (`delivered`, `delivered_at` = when it was
    // stored, so it is pruned like a delivered one) with this flag set; the
    // event log shows it as FILTERED. A redelivery clears the flag. The
    // partial index finds the filtered ones for a search by that status.
    M::up(
        r#"
    ALTER TABLE notifications ADD COLUMN filtered INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX notifications_filtered ON notifications (id) WHERE filtered;
    "#,
    ),
    // 9: instances' vendor subscriptions: what an element registered at the
    // vendor for an instance (its inbound URL, and what the element asked
    // to remember of it), and where that stands; gone with the instance.
    M::up(
        r#"
    CREATE TABLE instance_subscriptions (
        instance_id  INTEGER PRIMARY KEY REFERENCES instances (id) ON DELETE CASCADE,
        status       TEXT    NOT NULL
                     CHECK (status IN ('subscribed', 'failed', 'not_subscribed', 'unsupported')),
        message      TEXT,
        remembered   TEXT,
        callback_url TEXT,
        updated_at   INTEGER NOT NULL
    ) STRICT;
    "#,
    ),
    // 10: ordered delivery: an ordered notification's key (the object it is
    // about); of the unsettled ones with the same key and instance one is
    // due or in flight, the others wait. The partial index holds only the
    // unsettled ordered ones, so finding a key's head or next stays small
    // whatever the log's size.
    M::up(
        r#"
    ALTER TABLE notifications ADD COLUMN order_key TEXT;
    CREATE INDEX notifications_ordered ON notifications (instance_id, order_key, id)
        WHERE status = 'pending' AND order_key IS NOT NULL;
    "#,
    ),
    // 11: fair shares and pacing of delivery: claims visit each instance's
    // due notifications in its own index range (replacing the single due
    // index), count what each has under a lease in a small partial index,
    // and keep each paced instance's next theoretical send time.
    M::up(
        r#"
    CREATE INDEX notifications_due_by_instance ON notifications (instance_id, next_attempt_at)
        WHERE status = 'pending';
    DROP INDEX notifications_due;
    CREATE INDEX notifications_leased ON notifications (instance_id, next_attempt_at)
        WHERE lease_token IS NOT NULL;
    CREATE TABLE delivery_pacing (
        instance_id  INTEGER PRIMARY KEY REFERENCES instances (id) ON DELETE CASCADE,
        next_send_us INTEGER NOT NULL
    ) STRICT;
    "#,
    ),
    // 12: the inbound log's requests that left no receipt (rejected,
    // duplicate, responded), their body cut to a bound and their secret
    // headers redacted, and per instance the count of those dropped beyond
    // the log's caps; both gone with the instance.
    M::up(
        r#"
    CREATE TABLE inbound_requests (
        id          TEXT    PRIMARY KEY,
        instance_id INTEGER NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
        element_key TEXT    NOT NULL,
        received_at INTEGER NOT NULL,
        outcome     TEXT    NOT NULL CHECK (outcome IN ('rejected', 'duplicate', 'responded')),
        status      INTEGER NOT NULL,
        code        TEXT,
        reason      TEXT,
        method      TEXT    NOT NULL,
        path        TEXT    NOT NULL,
        headers     TEXT    NOT NULL,
        body        BLOB,
        body_bytes  INTEGER,
        receipt_id  TEXT
    ) STRICT;
    CREATE INDEX inbound_requests_by_instance ON inbound_requests (instance_id, id);
    CREATE TABLE inbound_dropped (
        instance_id INTEGER PRIMARY KEY REFERENCES instances (id) ON DELETE CASCADE,
        dropped     INTEGER NOT NULL,
        last_at     INTEGER NOT NULL
    ) STRICT;
    "#,
    ),
    // 13: a paused delivery is the instance's own flag, which claims read;
    // its notifications keep their due times instead of being parked (due
    // at the largest time) and all rewritten again when delivery resumes.
    // Those parked before are due again, oldest first.
    M::up(
        r#"
    UPDATE notifications SET next_attempt_at = created_at
    WHERE status = 'pending' AND next_attempt_at = 9223372036854775807;
    "#,
    ),
];

/// The schema version this build writes.
pub(super) fn latest_version() -> usize {
    MIGRATIONS.len()
}

/// Brings the schema up to date and returns the version it is now at.
pub(super) fn migrate(conn: &mut Connection) -> anyhow::Result<usize> {
    let migrations = Migrations::from_slice(MIGRATIONS);
    let latest = latest_version();
    let found = match migrations.current_version(conn)? {
        SchemaVersion::NoneSet => 0,
        SchemaVersion::Inside(v) => v.get(),
        SchemaVersion::Outside(v) => anyhow::bail!(
            "the database has schema version {v}, newer than this plugboard knows \
             ({latest}); upgrade plugboard or use another data folder"
        ),
    };
    if found < latest {
        migrations
            .to_latest(conn)
            .map_err(|e| anyhow::anyhow!("schema migration from version {found}: {e}"))?;
        tracing::info!(from = found, to = latest, "store schema migrated");
    }
    Ok(latest)
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
                 AND name IN ('instances', 'receipts', 'notifications', \
                 'delivery_attempts', 'retired_signing_keys', 'poll_checkpoints')",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(tables, 6);
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

#[cfg(test)]
mod upgrade_tests {
    use super::*;

    use std::sync::Arc;

    use super::super::super::outbox::WAITING;
    use super::super::super::test_support::receipt;
    use super::super::super::{ReceiptOutcome, Store};
    use super::super::{SqliteOptions, SqliteStore};

    /// Applies the first `n` migrations only, as an older plugboard did.
    fn at_version(n: usize) -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "foreign_keys", true).unwrap();
        Migrations::from_slice(&MIGRATIONS[..n])
            .to_latest(&mut conn)
            .unwrap();
        let pending = Migrations::from_slice(MIGRATIONS)
            .pending_migrations(&conn)
            .unwrap();
        assert_eq!(pending, i32::try_from(latest_version() - n).unwrap());
        conn
    }

    /// `tests/fixtures/store-v4.db` was written by plugboard's own
    /// migration runner, before `rusqlite_migration` ran them: a GitHub
    /// instance whose signing key was rotated once, one webhook receipt
    /// and its notification with two failed delivery attempts, written
    /// through the HTTP API of that build and checkpointed on shutdown.
    /// It opens as it is (no migration runs) and keeps its data.
    #[tokio::test]
    async fn a_database_from_the_earlier_runner_opens_with_its_data() {
        let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/store-v4.db");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plugboard.db");
        std::fs::copy(fixture, &path).unwrap();
        let sqlite = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
        let store = Store::from_backend(Arc::new(sqlite));

        let instance = store.get_instance(1).await.unwrap().unwrap();
        assert_eq!(
            (instance.element_key.as_str(), instance.name.as_str()),
            ("github", "octo-org")
        );
        assert_eq!(instance.tags, ["fixture"]);
        assert_eq!(instance.version, 2, "created, then its key rotated");
        assert_eq!(
            instance.configuration["event.notification.signature.key"],
            "rotated-secret"
        );
        let notification = store
            .get_notification("01a218c4-492a-7089-91ad-67dc15f5a4c8")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            notification.receipt_id.as_deref(),
            Some("01a218c4-492d-7298-bd6d-bbfddc305a32")
        );
        assert_eq!(notification.attempt_log.len(), 2);
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&notification.body).unwrap()["message"]
                ["events"][0]["objectId"],
            "1001"
        );
        // Still written to: a new receipt is stored beside the old one.
        let stored = store.record_receipt(receipt(instance.id)).await.unwrap();
        assert!(
            matches!(stored, ReceiptOutcome::Stored { .. }),
            "{stored:?}"
        );
        drop(store);

        let conn = Connection::open(&path).unwrap();
        assert_eq!(
            Migrations::from_slice(MIGRATIONS)
                .current_version(&conn)
                .unwrap(),
            SchemaVersion::Inside(std::num::NonZeroUsize::new(latest_version()).unwrap())
        );
    }

    #[test]
    fn a_version_3_database_upgrades_with_its_data() {
        let mut conn = at_version(3);
        conn.execute_batch(
            "INSERT INTO instances (id, token, element_key, name, tags, configuration, \
             events_enabled, created_at, updated_at) VALUES (7, 't', 'cw', 'a', '[]', '{}', 1, 0, 0);
             INSERT INTO receipts (id, instance_id, element_key, received_at, message_id, method, \
             path, headers, body, status) VALUES
               ('01', 7, 'cw', 1, 'm-1', 'POST', '/', '[]', x'', 'accepted'),
               ('02', 7, 'cw', 2, 'm-1', 'POST', '/', '[]', x'', 'accepted'),
               ('03', 7, 'cw', 3, 'm-2', 'POST', '/', '[]', x'', 'failed'),
               ('04', 7, 'cw', 4, NULL, 'POST', '/', '[]', x'', 'accepted');
             INSERT INTO events (id, receipt_id, instance_id, element_key, event_type, \
             object_type, object_id, event_date, raw, seq, created_at) VALUES
               ('e1', '01', 7, 'cw', 'CREATED', 'ticket', '1', '2024-01-01T00:00:00Z', '{}', 0, 1);
             INSERT INTO notifications (id, instance_id, receipt_id, source, content_type, body, \
             event_count, status, next_attempt_at, created_at) VALUES
               ('n1', 7, '01', 'webhook', 'application/json', x'7b7d', 1, 'pending', 5, 1);
             INSERT INTO poll_checkpoints VALUES (7, 'tickets', 100, 100);",
        )
        .unwrap();

        assert_eq!(migrate(&mut conn).unwrap(), latest_version());

        let keys: Vec<(String, Option<String>)> = conn
            .prepare("SELECT id, dedup_key FROM receipts ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let expected = [
            ("01", None),
            ("02", Some("m-1")),
            ("03", None),
            ("04", None),
        ];
        let expected: Vec<(String, Option<String>)> = expected
            .iter()
            .map(|(id, k)| (id.to_string(), k.map(str::to_string)))
            .collect();
        assert_eq!(keys, expected, "the newest accepted receipt holds the key");
        let version: i64 = conn
            .query_row("SELECT version FROM instances WHERE id = 7", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(version, 1);
        let (lease, body): (Option<String>, Vec<u8>) = conn
            .query_row("SELECT lease_token, body FROM notifications", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((lease, body), (None, b"{}".to_vec()));
        let checkpoint: i64 = conn
            .query_row("SELECT checkpoint FROM poll_checkpoints", [], |r| r.get(0))
            .unwrap();
        assert_eq!(checkpoint, 100);
        let events: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE name = 'events'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(events, 0);
        // A second accepted receipt for m-1 now conflicts on the key.
        let err = conn
            .execute(
                "INSERT INTO receipts (id, instance_id, element_key, received_at, dedup_key, \
                 method, path, headers, body, status) \
                 VALUES ('05', 7, 'cw', 5, 'm-1', 'POST', '/', '[]', x'', 'accepted')",
                [],
            )
            .unwrap_err();
        assert!(err.to_string().contains("UNIQUE"), "{err}");
    }

    /// Before version 13 a paused instance's notifications were parked (due
    /// at the largest time); after it, they are due again from when they
    /// were stored, and the instance's own flag holds them.
    #[test]
    fn parked_notifications_are_due_again_after_version_13() {
        let mut conn = at_version(12);
        conn.execute_batch(
            "INSERT INTO instances (id, token, element_key, name, tags, configuration, \
             events_enabled, created_at, updated_at, delivery_paused) \
             VALUES (7, 't', 'cw', 'a', '[]', '{}', 1, 0, 0, '410 Gone');
             INSERT INTO notifications (id, instance_id, source, content_type, body, \
             event_count, status, next_attempt_at, created_at, order_key) VALUES
               ('parked', 7, 'webhook', 'application/json', x'7b7d', 1, 'pending', \
                9223372036854775807, 11, NULL),
               ('waiting', 7, 'webhook', 'application/json', x'7b7d', 1, 'pending', \
                9223372036854775806, 12, 'ticket/1'),
               ('retrying', 7, 'webhook', 'application/json', x'7b7d', 1, 'pending', 900, 13, NULL);",
        )
        .unwrap();

        assert_eq!(migrate(&mut conn).unwrap(), latest_version());

        let due: Vec<(String, i64)> = conn
            .prepare("SELECT id, next_attempt_at FROM notifications ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let expected = [("parked", 11), ("retrying", 900), ("waiting", WAITING)];
        let expected: Vec<(String, i64)> = expected
            .iter()
            .map(|(id, t)| (id.to_string(), *t))
            .collect();
        assert_eq!(due, expected);
    }
}
