//! Ordered delivery's SQL: of the unsettled notifications of one instance
//! with the same ordering key, only one is due or in flight at a time (the
//! head); the others are stored waiting ([`WAITING`]) and go one by one, in
//! the order of their ids (the order they were accepted), as the one before
//! settles. Everything here runs on the single writer connection, so the
//! check for a head and the release of the next one cannot interleave with
//! another write.

use rusqlite::{params, Connection};

use super::super::error::Result;
use super::super::outbox::WAITING;

/// For each `(instance, key)` without a head, makes its first waiting
/// notification the head, due at `now_ms` (claims skip it while its
/// instance's delivery is paused). Returns how many went.
pub(super) fn release<'a>(
    conn: &Connection,
    keys: impl IntoIterator<Item = (i64, &'a str)>,
    now_ms: i64,
) -> Result<usize> {
    let mut stmt = conn.prepare_cached(
        "UPDATE notifications SET next_attempt_at = ?3 \
         WHERE id = (SELECT id FROM notifications INDEXED BY notifications_ordered \
                     WHERE instance_id = ?1 AND order_key = ?2 AND status = 'pending' \
                       AND next_attempt_at = ?4 ORDER BY id LIMIT 1) \
           AND NOT EXISTS (SELECT 1 FROM notifications INDEXED BY notifications_ordered \
                           WHERE instance_id = ?1 AND order_key = ?2 AND status = 'pending' \
                             AND next_attempt_at <> ?4)",
    )?;
    let mut released = 0;
    let mut seen = std::collections::HashSet::new();
    for (instance, key) in keys {
        if seen.insert((instance, key)) {
            released += stmt.execute(params![instance, key, now_ms, WAITING])?;
        }
    }
    Ok(released)
}

/// Puts back in line the ordered ones among notifications just made
/// pending again by a redelivery (`ids`): each waits, then the first of
/// every key without a head goes. Returns the `(instance, key)` pairs
/// touched.
pub(super) fn requeue(conn: &Connection, ids: &[String], now_ms: i64) -> Result<()> {
    let mut wait = conn.prepare_cached(
        "UPDATE notifications SET next_attempt_at = ?2 \
         WHERE id = ?1 AND order_key IS NOT NULL AND status = 'pending' \
         RETURNING instance_id, order_key",
    )?;
    let mut keys = Vec::new();
    for id in ids {
        let mut rows = wait.query(params![id, WAITING])?;
        while let Some(row) = rows.next()? {
            keys.push((row.get::<_, i64>(0)?, row.get::<_, String>(1)?));
        }
    }
    release(conn, keys.iter().map(|(i, k)| (*i, k.as_str())), now_ms)?;
    Ok(())
}
