//! SQL for the outbox's writes: notifications inserted with their receipt,
//! claims, attempt outcomes, replay and pruning. (The event log's reads are
//! in [`super::eventlog`].)
//!
//! Claims are in [`super::claims`], attempts' outcomes (written only where
//! the claim's lease token still matches) in [`super::outcomes`].

use deadpool_postgres::GenericClient;

use super::super::error::{Result, StoreError};
use super::super::outbox::{EventKey, NewNotification, Redeliver, WAITING};
use super::error::get as col;

/// One notification to insert, with what it belongs to.
pub(super) struct NotificationRow<'a> {
    pub(super) instance_id: i64,
    pub(super) receipt_id: Option<&'a str>,
    pub(super) created_at: i64,
    pub(super) notification: &'a NewNotification,
}

/// Inserts notifications in one statement: due at once (claims skip them
/// while their instance's delivery is paused); filtered ones settled;
/// ordered ones in line behind the unsettled ones with the same key.
pub(super) async fn insert(
    client: &impl GenericClient,
    rows: &[NotificationRow<'_>],
) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = rows.iter().map(|r| r.notification.id.as_str()).collect();
    let instances: Vec<i64> = rows.iter().map(|r| r.instance_id).collect();
    let receipts: Vec<Option<&str>> = rows.iter().map(|r| r.receipt_id).collect();
    let sources: Vec<&str> = rows
        .iter()
        .map(|r| r.notification.source.as_str())
        .collect();
    let types: Vec<&str> = rows
        .iter()
        .map(|r| r.notification.content_type.as_str())
        .collect();
    let bodies: Vec<&[u8]> = rows.iter().map(|r| &r.notification.body[..]).collect();
    let counts: Vec<i64> = rows
        .iter()
        .map(|r| i64::from(r.notification.event_count))
        .collect();
    let created: Vec<i64> = rows.iter().map(|r| r.created_at).collect();
    let filtered: Vec<bool> = rows.iter().map(|r| r.notification.filtered).collect();
    let keys: Vec<Option<&str>> = rows
        .iter()
        .map(|r| r.notification.order_key.as_deref())
        .collect();
    // A filtered one is settled at once: never due (no queue row), pruned
    // like a delivered one. An ordered one is queued waiting; `release`
    // below lets it go if it is the first of its key. The queue rows come
    // from what the insert returns, so the bodies are not copied twice.
    let stmt = client
        .prepare_cached(
            "WITH stored AS (\
                 INSERT INTO notifications (id, instance_id, receipt_id, source, content_type, \
                     body, event_count, status, attempts, created_at, delivered_at, filtered, \
                     order_key) \
                 SELECT n.id, n.instance_id, n.receipt_id, n.source, n.content_type, n.body, \
                     n.event_count, CASE WHEN n.filtered THEN 'delivered' ELSE 'pending' END, 0, \
                     n.created_at, CASE WHEN n.filtered THEN n.created_at END, n.filtered, \
                     n.order_key \
                 FROM unnest($1::text[], $2::int8[], $3::text[], $4::text[], $5::text[], \
                             $6::bytea[], $7::int8[], $8::int8[], $9::bool[], $10::text[]) \
                      AS n(id, instance_id, receipt_id, source, content_type, body, \
                           event_count, created_at, filtered, order_key) \
                 RETURNING id, instance_id, created_at, filtered, order_key) \
             INSERT INTO delivery_queue (notification_id, instance_id, next_attempt_at, order_key) \
             SELECT id, instance_id, \
                    CASE WHEN order_key IS NULL THEN created_at ELSE $11::int8 END, order_key \
             FROM stored WHERE NOT filtered",
        )
        .await?;
    let ordered: Vec<(i64, &str)> = rows
        .iter()
        .filter_map(|r| Some((r.instance_id, r.notification.order_key.as_deref()?)))
        .collect();
    let now = rows.iter().map(|r| r.created_at).max().unwrap_or_default();
    // Sent at once, in this order (pipelined: see `super::receipts`); the
    // server still runs them one after another, each with its own snapshot.
    let notifications = async {
        client
            .execute(
                &stmt,
                &[
                    &ids, &instances, &receipts, &sources, &types, &bodies, &counts, &created,
                    &filtered, &keys, &WAITING,
                ],
            )
            .await
            .map_err(StoreError::from)
    };
    futures_util::future::try_join3(
        notifications,
        insert_events(client, rows),
        super::ordering::release(client, &ordered, now),
    )
    .await?;
    Ok(())
}

/// Inserts what the notifications' events are about, in one statement.
async fn insert_events(client: &impl GenericClient, rows: &[NotificationRow<'_>]) -> Result<()> {
    let events: Vec<(&str, &EventKey)> = rows
        .iter()
        .flat_map(|r| {
            let id = r.notification.id.as_str();
            r.notification.events.iter().map(move |e| (id, e))
        })
        .collect();
    if events.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = events.iter().map(|(id, _)| *id).collect();
    let object_types: Vec<&str> = events.iter().map(|(_, e)| e.object_type.as_str()).collect();
    let object_ids: Vec<&str> = events.iter().map(|(_, e)| e.object_id.as_str()).collect();
    let event_types: Vec<&str> = events.iter().map(|(_, e)| e.event_type.as_str()).collect();
    let stmt = client
        .prepare_cached(
            "INSERT INTO notification_events (notification_id, object_type, object_id, event_type) \
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])",
        )
        .await?;
    client
        .execute(&stmt, &[&ids, &object_types, &object_ids, &event_types])
        .await?;
    Ok(())
}

/// Makes notifications due again now with a fresh attempt cycle, ordered
/// ones back in line behind the unsettled ones of their key (so this runs
/// in the caller's transaction); returns how many.
///
/// The queue rows of pending ones are locked first, in the order outcomes
/// lock them (queue row, then notification), so a redelivery and an
/// outcome of the same notification wait for each other instead of
/// deadlocking.
pub(super) async fn redeliver(
    tx: &deadpool_postgres::Transaction<'_>,
    target: &Redeliver,
    now_ms: i64,
) -> Result<u64> {
    let rows = match target {
        Redeliver::One(id) => {
            lock_queued(tx, std::slice::from_ref(id)).await?;
            let stmt = tx
                .prepare_cached(
                    "UPDATE notifications SET status = 'pending', attempts = 0, \
                     delivered_at = NULL, filtered = false WHERE id = $1 RETURNING id",
                )
                .await?;
            tx.query(&stmt, &[id]).await?
        }
        Redeliver::DeadOf(instance) => {
            // Dead-lettered ones have no queue row.
            let stmt = tx
                .prepare_cached(
                    "UPDATE notifications SET status = 'pending', attempts = 0 \
                     WHERE instance_id = $1 AND status = 'dead' RETURNING id",
                )
                .await?;
            tx.query(&stmt, &[instance]).await?
        }
        Redeliver::Ids(ids) => {
            lock_queued(tx, ids).await?;
            let stmt = tx
                .prepare_cached(
                    "UPDATE notifications SET status = 'pending', attempts = 0, \
                     delivered_at = NULL, filtered = false WHERE id = ANY($1) RETURNING id",
                )
                .await?;
            tx.query(&stmt, &[ids]).await?
        }
    };
    let changed = rows
        .iter()
        .map(|row| col::<String>(row, 0))
        .collect::<Result<Vec<_>>>()?;
    super::ordering::requeue(tx, &changed, now_ms).await?;
    Ok(changed.len() as u64)
}

/// Locks the queue rows of those of `ids` still pending, until the
/// transaction ends.
async fn lock_queued(tx: &deadpool_postgres::Transaction<'_>, ids: &[String]) -> Result<()> {
    let stmt = tx
        .prepare_cached(
            "SELECT count(*) FROM (SELECT FROM delivery_queue WHERE notification_id = ANY($1) \
             ORDER BY notification_id FOR UPDATE) AS locked",
        )
        .await?;
    tx.query_one(&stmt, &[&ids]).await?;
    Ok(())
}

/// Deletes at most `$2` notifications delivered before `$1` (ms) whose ids
/// are below `$3` (the id floor of `$1`), with their events and attempts;
/// returns how many.
///
/// The status is checked again on the notification being deleted, not only
/// in the chunk's subquery: a redelivery that commits while the prune
/// waits for its row lock made the notification pending and queued it
/// again, and under read committed only a condition on the deleted row
/// itself is checked against its new version. Deleted anyway, it would
/// leave a queue row without its notification.
///
/// The chunk is taken in id order (`ORDER BY id`), so it is read from the
/// primary key's old end and the scan stops at the floor. Without the
/// order, statistics taken when most delivered rows were old let the
/// planner expect its `LIMIT` to be met at once by a sequential scan, which
/// then read the whole table whenever nothing was old enough (see
/// `prune_plan_tests`).
pub(super) const PRUNE_DELIVERED: &str =
    "WITH gone AS (DELETE FROM notifications WHERE id IN (SELECT id FROM notifications \
     WHERE status = 'delivered' AND id < $3 AND delivered_at < $1 ORDER BY id LIMIT $2) \
     AND status = 'delivered' RETURNING id), \
     events AS (DELETE FROM notification_events \
     WHERE notification_id IN (SELECT id FROM gone)), \
     attempts AS (DELETE FROM delivery_attempts \
     WHERE notification_id IN (SELECT id FROM gone)) \
     SELECT count(*) FROM gone";

/// Deletes at most `limit` notifications delivered before `before_ms`,
/// with their attempts; returns how many. Ids are UUIDv7 for webhook and
/// poll notifications, so the scan stays within the ids created before
/// then.
pub(super) async fn prune_delivered(
    client: &impl GenericClient,
    before_ms: i64,
    limit: usize,
) -> Result<u64> {
    let stmt = client.prepare_cached(PRUNE_DELIVERED).await?;
    let floor = super::super::ids::id_floor(before_ms);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let gone: i64 = col(
        &client
            .query_one(&stmt, &[&before_ms, &limit, &floor])
            .await?,
        0,
    )?;
    Ok(u64::try_from(gone).unwrap_or_default())
}
