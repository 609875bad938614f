//! SQL for the `instances` table.

use deadpool_postgres::GenericClient;
use time::OffsetDateTime;
use tokio_postgres::Row;

use super::super::error::{Result, StoreError};
use super::super::instance::{Instance, InstancePatch, NewInstance};
use super::super::timestamp::{from_millis, to_millis};
use super::error::get as col;

/// Columns in the order [`from_row`] reads them.
const COLUMNS: &str = "id, token, element_key, name, tags, configuration, events_enabled, \
                       created_at, updated_at, delivery_paused, version";

/// Inserts an instance and returns it as stored (announced on
/// [`CHANNEL`]: call it inside a transaction).
pub(super) async fn insert(
    client: &impl GenericClient,
    new: &NewInstance,
    token: &str,
    now: OffsetDateTime,
) -> Result<Instance> {
    let sql = format!(
        "INSERT INTO instances \
         (token, element_key, name, tags, configuration, events_enabled, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING {COLUMNS}"
    );
    let row = client
        .query_one(
            &client.prepare_cached(&sql).await?,
            &[
                &token,
                &new.element_key,
                &new.name,
                &serde_json::to_string(&new.tags)?,
                &serde_json::to_string(&new.configuration)?,
                &new.events_enabled,
                &to_millis(now),
            ],
        )
        .await?;
    let instance = from_row(&row)?;
    announce(client, &format!("{}:{}", instance.id, instance.version)).await?;
    Ok(instance)
}

/// The channel instance writes are announced on, with the payload
/// `"<id>:<version>"` or `"<id>:deleted"`.
pub(super) const CHANNEL: &str = "plugboard_instances";

/// Sends `payload` on [`CHANNEL`]; inside a transaction it is delivered
/// when (and only if) the transaction commits.
async fn announce(client: &impl GenericClient, payload: &str) -> Result<()> {
    client
        .execute(
            &client.prepare_cached("SELECT pg_notify($1, $2)").await?,
            &[&CHANNEL, &payload],
        )
        .await?;
    Ok(())
}

/// Replaces the fields the patch names, parks or unparks the instance's
/// notifications and keeps a retired signing key, all in one transaction,
/// then reads the result back. With `expected_version`, changes nothing and
/// fails with a conflict unless the instance is at that version.
pub(super) async fn update(
    client: &mut deadpool_postgres::Object,
    id: i64,
    expected_version: Option<i64>,
    patch: &InstancePatch,
    now: OffsetDateTime,
) -> Result<Option<Instance>> {
    let (tags, configuration) = patch.json_columns()?;
    let now_ms = to_millis(now);
    let tx = client.transaction().await?;
    let changed = tx
        .execute(
            &tx.prepare_cached(
                "UPDATE instances SET \
                 name = coalesce($2, name), \
                 tags = coalesce($3, tags), \
                 configuration = coalesce($4, configuration), \
                 events_enabled = coalesce($5, events_enabled), \
                 delivery_paused = CASE WHEN $7 THEN $8 ELSE delivery_paused END, \
                 updated_at = $6, version = version + 1 \
                 WHERE id = $1 AND ($9::bigint IS NULL OR version = $9)",
            )
            .await?,
            &[
                &id,
                &patch.name,
                &tags,
                &configuration,
                &patch.events_enabled,
                &now_ms,
                &patch.delivery_paused.is_some(),
                &patch.delivery_paused.clone().flatten(),
                &expected_version,
            ],
        )
        .await?;
    if changed == 0 {
        return match (get(&tx, id).await?, expected_version) {
            (Some(found), Some(expected)) => {
                Err(StoreError::version_conflict(id, expected, found.version))
            }
            _ => Ok(None),
        };
    }
    if let Some((key, until)) = &patch.retire_signing_key {
        tx.execute(
            &tx.prepare_cached(
                "INSERT INTO retired_signing_keys (instance_id, key, expires_at) \
                 VALUES ($1, $2, $3)",
            )
            .await?,
            &[&id, key, &to_millis(*until)],
        )
        .await?;
    }
    let updated = get(&tx, id).await?;
    if let Some(instance) = &updated {
        announce(&tx, &format!("{}:{}", instance.id, instance.version)).await?;
    }
    tx.commit().await?;
    Ok(updated)
}

/// Deletes an instance; everything it owns goes with it (announced on
/// [`CHANNEL`]: call it inside a transaction).
pub(super) async fn delete(client: &impl GenericClient, id: i64) -> Result<bool> {
    let deleted = client
        .execute(
            &client
                .prepare_cached("DELETE FROM instances WHERE id = $1")
                .await?,
            &[&id],
        )
        .await?;
    if deleted > 0 {
        // No foreign keys lead here from the hot tables (migrations V4,
        // V13, V14). The row deletion above waited for receipt batches holding
        // the instance; these statements see what they committed. The
        // notifications are locked first, which waits for any outcome being
        // written for one of them and keeps others off until the end: the
        // next statement sees every attempt logged for them. Their queue rows
        // are locked before them, in the order outcomes lock both.
        for sql in [
            "SELECT count(*) FROM (SELECT FROM delivery_queue WHERE instance_id = $1 \
             FOR UPDATE) AS locked",
            "SELECT count(*) FROM (SELECT FROM notifications WHERE instance_id = $1 \
             FOR UPDATE) AS locked",
            "WITH queued AS (DELETE FROM delivery_queue WHERE instance_id = $1), \
             gone AS (DELETE FROM notifications WHERE instance_id = $1 RETURNING id), \
             events AS (DELETE FROM notification_events \
             WHERE notification_id IN (SELECT id FROM gone)) \
             DELETE FROM delivery_attempts WHERE notification_id IN (SELECT id FROM gone)",
            "DELETE FROM receipts WHERE instance_id = $1",
        ] {
            client
                .execute(&client.prepare_cached(sql).await?, &[&id])
                .await?;
        }
        announce(client, &format!("{id}:deleted")).await?;
    }
    Ok(deleted > 0)
}

/// The instance with this id.
pub(super) async fn get(client: &impl GenericClient, id: i64) -> Result<Option<Instance>> {
    let sql = format!("SELECT {COLUMNS} FROM instances WHERE id = $1");
    client
        .query_opt(&client.prepare_cached(&sql).await?, &[&id])
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

/// Every instance, by id.
pub(super) async fn list(client: &impl GenericClient) -> Result<Vec<Instance>> {
    let sql = format!("SELECT {COLUMNS} FROM instances ORDER BY id");
    client
        .query(&client.prepare_cached(&sql).await?, &[])
        .await?
        .iter()
        .map(from_row)
        .collect()
}

/// Decodes a row selected with [`COLUMNS`].
fn from_row(row: &Row) -> Result<Instance> {
    let tags: String = col(row, 4)?;
    let configuration: String = col(row, 5)?;
    Ok(Instance {
        id: col(row, 0)?,
        token: col(row, 1)?,
        element_key: col(row, 2)?,
        name: col(row, 3)?,
        tags: serde_json::from_str(&tags)?,
        configuration: serde_json::from_str(&configuration)?,
        events_enabled: col(row, 6)?,
        created_at: from_millis(col(row, 7)?)?,
        updated_at: from_millis(col(row, 8)?)?,
        delivery_paused: col(row, 9)?,
        version: col(row, 10)?,
    })
}
