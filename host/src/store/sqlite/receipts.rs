//! Pruning the `receipts` table (receipts are written by [`super::batch`]).
//!
//! Receipt and notification ids are UUIDv7, whose text sorts by the
//! millisecond they were generated, so time bounds become id bounds and
//! every scan walks a primary key.

use rusqlite::{params, Connection};

use super::super::error::Result;
use super::super::ids::id_floor;

/// Deletes, among the next `limit` receipts after `after` (in id order)
/// received before `before_ms`, the accepted ones none of whose
/// notifications is still pending or dead-lettered; their delivered
/// notifications go with them (foreign-key cascade). Failed
/// receipts stay. Returns how many were deleted and where
/// the next call continues (`None`: nothing older is left to look at).
///
/// Receipt ids are UUIDv7, so id order is arrival order and the scan stays
/// on the primary key; each call looks at `limit` receipts at most, however
/// many of them must be kept.
pub(super) fn prune(
    conn: &Connection,
    after: Option<&str>,
    before_ms: i64,
    limit: usize,
) -> Result<(u64, Option<String>)> {
    let after = after.unwrap_or("");
    let before = id_floor(before_ms);
    let last: Option<String> = conn
        .prepare_cached(
            "SELECT max(id) FROM (SELECT id FROM receipts WHERE id > ?1 AND id < ?2 \
             ORDER BY id LIMIT ?3)",
        )?
        .query_row(
            params![after, before, i64::try_from(limit).unwrap_or(i64::MAX)],
            |row| row.get(0),
        )?;
    let Some(last) = last else {
        return Ok((0, None));
    };
    let deleted = conn
        .prepare_cached(
            "DELETE FROM receipts WHERE id > ?1 AND id <= ?2 AND status = 'accepted' \
             AND NOT EXISTS (SELECT 1 FROM notifications n \
                             WHERE n.receipt_id = receipts.id AND n.status != 'delivered')",
        )?
        .execute(params![after, last])?;
    Ok((deleted as u64, Some(last)))
}
