//! Console sessions on SQLite (see [`crate::store::session`]).

use rusqlite::{params, Connection, OptionalExtension as _};

use super::super::error::Result;
use super::super::session::{SessionCutoffs, StoredSession};

/// Removes ended sessions, stores the new one and keeps the newest
/// `cutoffs.max`, in one transaction.
pub(super) fn insert(
    conn: &mut Connection,
    digest: &[u8],
    now_ms: i64,
    cutoffs: SessionCutoffs,
) -> Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    tx.prepare_cached("DELETE FROM console_sessions WHERE created_at <= ?1 OR last_seen <= ?2")?
        .execute(params![cutoffs.created_before, cutoffs.seen_before])?;
    tx.prepare_cached(
        "INSERT INTO console_sessions (digest, created_at, last_seen) VALUES (?1, ?2, ?2)",
    )?
    .execute(params![digest, now_ms])?;
    tx.prepare_cached(
        "DELETE FROM console_sessions WHERE digest IN \
         (SELECT digest FROM console_sessions ORDER BY created_at DESC, digest \
          LIMIT -1 OFFSET ?1)",
    )?
    .execute(params![cutoffs.max])?;
    tx.commit()?;
    Ok(())
}

/// The session stored under `digest`.
pub(super) fn get(conn: &Connection, digest: &[u8]) -> Result<Option<StoredSession>> {
    Ok(conn
        .prepare_cached("SELECT created_at, last_seen FROM console_sessions WHERE digest = ?1")?
        .query_row(params![digest], |row| {
            Ok(StoredSession {
                created_ms: row.get(0)?,
                last_seen_ms: row.get(1)?,
            })
        })
        .optional()?)
}

/// Stamps the session under `digest` as seen at `now_ms`.
pub(super) fn touch(conn: &Connection, digest: &[u8], now_ms: i64) -> Result<()> {
    conn.prepare_cached(
        "UPDATE console_sessions SET last_seen = max(last_seen, ?2) WHERE digest = ?1",
    )?
    .execute(params![digest, now_ms])?;
    Ok(())
}

/// Deletes the session under `digest`.
pub(super) fn delete(conn: &Connection, digest: &[u8]) -> Result<()> {
    conn.prepare_cached("DELETE FROM console_sessions WHERE digest = ?1")?
        .execute(params![digest])?;
    Ok(())
}
