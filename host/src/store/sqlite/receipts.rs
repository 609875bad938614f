//! Pruning the `receipts` table (receipts are written by [`super::batch`]).
//!
//! Receipt and notification ids are UUIDv7, whose text sorts by the
//! millisecond they were generated, so time bounds become id bounds and
//! every scan walks a primary key.

use rusqlite::{params, Connection};

use super::super::error::Result;

/// Largest millisecond count a UUIDv7 can hold (48 bits).
const MAX_V7_MILLIS: i64 = (1 << 48) - 1;

/// The smallest UUIDv7 text of the millisecond `ms`: every id generated in
/// that millisecond or later sorts at or above it, every earlier one below.
pub(super) fn id_floor(ms: i64) -> String {
    let ms = ms.clamp(0, MAX_V7_MILLIS);
    format!(
        "{:08x}-{:04x}-0000-0000-000000000000",
        ms >> 16,
        ms & 0xffff
    )
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_floor_brackets_the_ids_of_its_millisecond() {
        for _ in 0..100 {
            let id = uuid::Uuid::now_v7();
            let (secs, nanos) = id.get_timestamp().unwrap().to_unix();
            let ms = i64::try_from(secs).unwrap() * 1000 + i64::from(nanos / 1_000_000);
            let id = id.to_string();
            assert!(id_floor(ms) <= id, "{id} vs {}", id_floor(ms));
            assert!(id < id_floor(ms + 1));
        }
        assert_eq!(id_floor(-5), "00000000-0000-0000-0000-000000000000");
    }
}
