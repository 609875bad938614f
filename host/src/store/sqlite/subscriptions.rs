//! Instances' vendor subscriptions: one row per instance, replaced whole,
//! deleted with the instance (a foreign key with `ON DELETE CASCADE`).

use rusqlite::{params, Connection, Row};

use super::super::error::Result;
use super::super::subscription::{SubscriptionStatus, VendorSubscription};
use super::super::timestamp::{from_millis, to_millis};

/// Columns read by [`from_row`], after the instance id.
const COLUMNS: &str = "instance_id, status, message, remembered, callback_url, updated_at";

/// Records `subscription` for instance `id`; false when there is no such
/// instance (nothing is written).
pub(super) fn put(conn: &Connection, id: i64, subscription: &VendorSubscription) -> Result<bool> {
    let written = conn
        .prepare_cached(
            "INSERT INTO instance_subscriptions \
             (instance_id, status, message, remembered, callback_url, updated_at) \
             SELECT ?1, ?2, ?3, ?4, ?5, ?6 WHERE EXISTS (SELECT 1 FROM instances WHERE id = ?1) \
             ON CONFLICT (instance_id) DO UPDATE SET status = excluded.status, \
             message = excluded.message, remembered = excluded.remembered, \
             callback_url = excluded.callback_url, updated_at = excluded.updated_at",
        )?
        .execute(params![
            id,
            subscription.status.as_str(),
            subscription.message,
            subscription.remembered,
            subscription.callback_url,
            to_millis(subscription.updated_at),
        ])?;
    Ok(written > 0)
}

/// The subscription of instance `id`, or of every instance (by id) when
/// `id` is `None`.
pub(super) fn get(conn: &Connection, id: Option<i64>) -> Result<Vec<(i64, VendorSubscription)>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM instance_subscriptions \
         WHERE ?1 IS NULL OR instance_id = ?1 ORDER BY instance_id"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query([id])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(from_row(row)?);
    }
    Ok(out)
}

/// Decodes a row selected with [`COLUMNS`].
fn from_row(row: &Row<'_>) -> Result<(i64, VendorSubscription)> {
    let status: String = row.get(1)?;
    Ok((
        row.get(0)?,
        VendorSubscription {
            status: SubscriptionStatus::parse(&status)?,
            message: row.get(2)?,
            remembered: row.get(3)?,
            callback_url: row.get(4)?,
            updated_at: from_millis(row.get(5)?)?,
        },
    ))
}
