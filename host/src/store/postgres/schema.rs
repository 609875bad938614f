//! The PostgreSQL schema and its migrations.
//!
//! Migrations are the versioned SQL files in `migrations/`
//! (`V<n>__<what>.sql`), embedded at build time and applied at start by
//! `refinery`, each in its own transaction, recorded in
//! `refinery_schema_history`. Published migrations are never edited: a
//! change is a new file. A database holding migrations this build does not
//! know (written by a newer plugboard) is refused.
//!
//! Several processes may start at once against one database: the migrating
//! connection first takes a session-level advisory lock, so one migrates
//! while the others wait and then find nothing left to do. The lock goes
//! with the connection, also if the process dies mid-migration.

use anyhow::Context as _;

use super::connection::Target;

refinery::embed_migrations!("src/store/postgres/migrations");

/// The advisory lock key guarding migrations ("plugboard" in ASCII, cut to
/// 8 bytes), so other users of the database are unlikely to share it.
const MIGRATION_LOCK: i64 = 0x706c_7567_626f_6172;

/// Brings the schema up to date, waiting for any other process migrating
/// the same database. Returns the schema version now applied.
pub(super) async fn migrate(target: &Target) -> anyhow::Result<i64> {
    let mut client = target
        .connect()
        .await
        .with_context(|| format!("connecting to PostgreSQL ({})", target.describe_tls()))?;
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .context("waiting for the schema migration lock")?;
    let report = migrations::runner()
        .run_async(&mut client)
        .await
        .context("migrating the PostgreSQL schema");
    // Released explicitly too: the connection may outlive this call briefly.
    let _ = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await;
    for migration in report?.applied_migrations() {
        tracing::info!(
            version = migration.version(),
            name = migration.name(),
            "store schema migrated"
        );
    }
    let version = client
        .query_one(
            "SELECT coalesce(max(version), 0)::bigint FROM refinery_schema_history",
            &[],
        )
        .await
        .context("reading the schema version")?;
    Ok(version.get(0))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use time::OffsetDateTime;

    use super::super::super::conformance::fresh_database;
    use super::super::super::outbox::{AttemptNext, AttemptRecord, DeliveryState, WAITING};
    use super::super::tests::{connect, open};
    use super::migrations;

    /// An outcome of the attempt on `id` made under `lease`: delivered.
    fn delivered(id: &str, lease: &str) -> AttemptRecord {
        AttemptRecord {
            notification_id: id.into(),
            lease: lease.into(),
            attempted_at: OffsetDateTime::now_utc(),
            status_code: Some(200),
            error: None,
            latency_ms: 1,
            response_body: bytes::Bytes::new(),
            next: AttemptNext::Delivered,
        }
    }

    /// Notifications stored before version 16, with their due times and
    /// leases in their own rows, keep them in the delivery queue after it:
    /// the due one is claimed, the ones under a lease stay with their
    /// claimant (whose outcome still applies), an ordered one still waits
    /// for the head of its key and goes when the head is delivered, and
    /// the settled ones are not queued.
    #[tokio::test]
    async fn delivery_state_stored_before_version_16_carries_over() {
        let url = fresh_database().await;
        let mut client = connect(&url).await;
        migrations::runner()
            .set_target(refinery::Target::Version(15))
            .run_async(&mut client)
            .await
            .unwrap();
        let lease_end = crate::store::timestamp::to_millis(OffsetDateTime::now_utc()) + 600_000;
        client
            .execute(
                "INSERT INTO instances (id, token, element_key, name, tags, configuration, \
                 events_enabled, created_at, updated_at) \
                 VALUES (1, 'token', 'element', 'old', '[]', '{}', true, 0, 0)",
                &[],
            )
            .await
            .unwrap();
        client
            .execute(
                "INSERT INTO notifications (id, instance_id, source, content_type, body, \
                 event_count, status, next_attempt_at, created_at, lease_token, order_key) \
                 SELECT n.id, 1, 'webhook', 'application/json', '\\x7b7d', 1, n.status, \
                        n.next, 0, n.lease, n.key \
                 FROM (VALUES ('a-due', 'pending', 0::int8, NULL, NULL), \
                              ('b-leased', 'pending', $1, 'old-lease', NULL), \
                              ('c-head', 'pending', $1, 'head-lease', 'k'), \
                              ('d-waiting', 'pending', $2, NULL, 'k'), \
                              ('e-dead', 'dead', 0, NULL, NULL), \
                              ('f-delivered', 'delivered', 0, NULL, NULL)) \
                      AS n(id, status, next, lease, key)",
                &[&lease_end, &WAITING],
            )
            .await
            .unwrap();

        let store = open(&url).await;
        let depth = store.outbox_depth().await.unwrap();
        assert_eq!((depth.pending, depth.dead), (4, 1), "{depth:?}");
        let due = store.get_notification("a-due").await.unwrap().unwrap();
        assert_eq!(due.state, DeliveryState::Pending);
        assert_eq!(due.next_attempt_at, Some(OffsetDateTime::UNIX_EPOCH));
        let waiting = store.get_notification("d-waiting").await.unwrap().unwrap();
        assert!(waiting.held.is_some(), "{waiting:?}");

        let now = OffsetDateTime::now_utc();
        let claimed = store
            .claim_due(now, Duration::from_secs(30), 10)
            .await
            .unwrap();
        let ids: Vec<&str> = claimed.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(ids, ["a-due"], "only the due one is claimed");
        assert_eq!(&claimed[0].body[..], b"{}");

        let recorded = store
            .record_attempts(vec![
                delivered("b-leased", "old-lease"),
                delivered("c-head", "head-lease"),
            ])
            .await
            .unwrap();
        assert_eq!(
            (recorded.applied, recorded.released),
            (2, 1),
            "{recorded:?}"
        );
        assert!(recorded.stale.is_empty(), "{recorded:?}");
        let claimed = store
            .claim_due(OffsetDateTime::now_utc(), Duration::from_secs(30), 10)
            .await
            .unwrap();
        let ids: Vec<&str> = claimed.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(
            ids,
            ["d-waiting"],
            "the key's next goes once its head is delivered"
        );
    }
}
