//! Console sessions on PostgreSQL (see [`crate::store::session`]).

use deadpool_postgres::{GenericClient, Object};

use super::super::error::Result;
use super::super::session::{SessionCutoffs, StoredSession};
use super::error::get as col;

/// Removes ended sessions, stores the new one and keeps the newest
/// `cutoffs.max`, in one transaction.
pub(super) async fn insert(
    client: &mut Object,
    digest: &[u8],
    now_ms: i64,
    cutoffs: SessionCutoffs,
) -> Result<()> {
    let tx = client.transaction().await?;
    tx.execute(
        &tx.prepare_cached(
            "DELETE FROM console_sessions WHERE created_at <= $1 OR last_seen <= $2",
        )
        .await?,
        &[&cutoffs.created_before, &cutoffs.seen_before],
    )
    .await?;
    tx.execute(
        &tx.prepare_cached(
            "INSERT INTO console_sessions (digest, created_at, last_seen) VALUES ($1, $2, $2)",
        )
        .await?,
        &[&digest, &now_ms],
    )
    .await?;
    tx.execute(
        &tx.prepare_cached(
            "DELETE FROM console_sessions WHERE digest IN \
             (SELECT digest FROM console_sessions ORDER BY created_at DESC, digest OFFSET $1)",
        )
        .await?,
        &[&cutoffs.max],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The session stored under `digest`.
pub(super) async fn get(
    client: &impl GenericClient,
    digest: &[u8],
) -> Result<Option<StoredSession>> {
    let stmt = client
        .prepare_cached("SELECT created_at, last_seen FROM console_sessions WHERE digest = $1")
        .await?;
    match client.query_opt(&stmt, &[&digest]).await? {
        Some(row) => Ok(Some(StoredSession {
            created_ms: col(&row, 0)?,
            last_seen_ms: col(&row, 1)?,
        })),
        None => Ok(None),
    }
}

/// Stamps the session under `digest` as seen at `now_ms` (never back).
pub(super) async fn touch(client: &impl GenericClient, digest: &[u8], now_ms: i64) -> Result<()> {
    let stmt = client
        .prepare_cached(
            "UPDATE console_sessions SET last_seen = greatest(last_seen, $2) WHERE digest = $1",
        )
        .await?;
    client.execute(&stmt, &[&digest, &now_ms]).await?;
    Ok(())
}

/// Deletes the session under `digest`.
pub(super) async fn delete(client: &impl GenericClient, digest: &[u8]) -> Result<()> {
    let stmt = client
        .prepare_cached("DELETE FROM console_sessions WHERE digest = $1")
        .await?;
    client.execute(&stmt, &[&digest]).await?;
    Ok(())
}
