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
