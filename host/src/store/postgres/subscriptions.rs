//! Instances' vendor subscriptions: one row per instance, replaced whole,
//! deleted with the instance (a foreign key with `ON DELETE CASCADE`;
//! the table is written once per subscription, far from the hot path).

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::super::error::Result;
use super::super::subscription::{SubscriptionStatus, VendorSubscription};
use super::super::timestamp::{from_millis, to_millis};
use super::error::get as col;

/// Columns read by [`from_row`].
const COLUMNS: &str = "instance_id, status, message, remembered, callback_url, updated_at";

/// Records `subscription` for instance `id`; false when there is no such
/// instance (nothing is written).
pub(super) async fn put(
    client: &impl GenericClient,
    id: i64,
    subscription: &VendorSubscription,
) -> Result<bool> {
    let stmt = client
        .prepare_cached(
            "INSERT INTO instance_subscriptions \
             (instance_id, status, message, remembered, callback_url, updated_at) \
             SELECT $1, $2, $3, $4, $5, $6 WHERE EXISTS (SELECT 1 FROM instances WHERE id = $1) \
             ON CONFLICT (instance_id) DO UPDATE SET status = excluded.status, \
             message = excluded.message, remembered = excluded.remembered, \
             callback_url = excluded.callback_url, updated_at = excluded.updated_at",
        )
        .await?;
    let written = client
        .execute(
            &stmt,
            &[
                &id,
                &subscription.status.as_str(),
                &subscription.message,
                &subscription.remembered,
                &subscription.callback_url,
                &to_millis(subscription.updated_at),
            ],
        )
        .await?;
    Ok(written > 0)
}

/// The subscription of instance `id`, or of every instance (by id) when
/// `id` is `None`.
pub(super) async fn get(
    client: &impl GenericClient,
    id: Option<i64>,
) -> Result<Vec<(i64, VendorSubscription)>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM instance_subscriptions \
         WHERE $1::BIGINT IS NULL OR instance_id = $1 ORDER BY instance_id"
    );
    client
        .query(&client.prepare_cached(&sql).await?, &[&id])
        .await?
        .iter()
        .map(from_row)
        .collect()
}

/// Decodes a row selected with [`COLUMNS`].
fn from_row(row: &Row) -> Result<(i64, VendorSubscription)> {
    let status: String = col(row, 1)?;
    Ok((
        col(row, 0)?,
        VendorSubscription {
            status: SubscriptionStatus::parse(&status)?,
            message: col(row, 2)?,
            remembered: col(row, 3)?,
            callback_url: col(row, 4)?,
            updated_at: from_millis(col(row, 5)?)?,
        },
    ))
}
