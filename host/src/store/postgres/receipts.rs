//! SQL for the `receipts` table: writing receipts with their notifications
//! inside a caller's transaction, and pruning.
//!
//! [`stage`] writes any number of receipts in four statements, whatever
//! their number: one lock on each of their instances (standing in for
//! foreign keys, see [`locked_instances`]), all receipt rows in one
//! `INSERT … SELECT FROM unnest(…) ON CONFLICT DO NOTHING`, then (for
//! the few whose de-duplication key was taken) a check of the key's holder, then all notification rows in one
//! insert and their events in another. [`stage_at_once`] sends the same
//! statements in one round trip, for the usual batch where every receipt
//! is new and every instance there, and says when that was not so.
//!
//! De-duplication is the unique key on `(instance_id, dedup_key)`: the
//! insert that does nothing on conflict waits for a concurrent writer
//! of the same key and then yields to it, so two writers (two pools, two
//! processes) can never both store one vendor message. A holder older
//! than the window gives the key up to the newcomer.
//!
//! Rows are inserted in key order, so concurrent batches take their
//! unique-key locks in the same order and do not deadlock on each other.

use deadpool_postgres::GenericClient;
use uuid::Uuid;

use super::super::error::{Result, StoreError};
use super::super::ids::id_floor;
use super::super::receipt::{NewReceipt, ReceiptOutcome, ReceiptState, ReceiptStatus};
use super::super::timestamp::to_millis;
use super::error::get as col;
use super::outbox::NotificationRow;

/// One receipt ready to insert.
struct Row<'a> {
    id: String,
    receipt: &'a NewReceipt,
    dedup_key: Option<&'a str>,
    headers: String,
    status: ReceiptState,
    error: Option<&'a str>,
}

impl<'a> Row<'a> {
    fn new(receipt: &'a NewReceipt) -> Result<Self> {
        let (status, error) = match &receipt.outcome {
            ReceiptStatus::Accepted { .. } => (ReceiptState::Accepted, None),
            ReceiptStatus::Failed { error } => (ReceiptState::Failed, Some(error.as_str())),
        };
        let dedup_key = receipt
            .message_id
            .as_deref()
            .filter(|_| status == ReceiptState::Accepted && !receipt.dedup_window.is_zero());
        Ok(Self {
            id: Uuid::now_v7().to_string(),
            receipt,
            dedup_key,
            headers: serde_json::to_string(&receipt.headers)?,
            status,
            error,
        })
    }

    /// The rows of this receipt's notifications (none for a failed one).
    fn notifications(&self) -> impl Iterator<Item = NotificationRow<'_>> {
        let list = match &self.receipt.outcome {
            ReceiptStatus::Accepted { notifications } => notifications.as_slice(),
            ReceiptStatus::Failed { .. } => &[],
        };
        list.iter().map(|n| NotificationRow {
            instance_id: self.receipt.instance_id,
            receipt_id: Some(&self.id),
            created_at: to_millis(self.receipt.received_at),
            notification: n,
        })
    }
}

/// Writes `receipts` with their notifications in the caller's transaction
/// the way nearly every batch goes — every instance there, no vendor
/// message id already taken — with all its statements sent at once, one
/// round trip instead of one per statement. Returns `None` when that
/// assumption failed (a missing instance, a de-duplication key taken):
/// then what it wrote is wrong and the caller must roll the transaction
/// back and write the receipts with [`stage`], which settles each case.
///
/// Pipelining leaves the statements as they were: the server runs them one
/// after another, in the order sent, each with its own snapshot, inside
/// the one transaction.
pub(super) async fn stage_at_once(
    client: &impl GenericClient,
    receipts: &[NewReceipt],
) -> Result<Option<Vec<ReceiptOutcome>>> {
    let rows = receipts.iter().map(Row::new).collect::<Result<Vec<_>>>()?;
    let ids = instance_ids(&rows);
    let order = key_order(&rows);
    let notifications: Vec<NotificationRow<'_>> =
        rows.iter().flat_map(Row::notifications).collect();
    let (present, inserted, ()) = futures_util::future::try_join3(
        locked_instances(client, &ids),
        async {
            insert_rows(client, &rows, &order)
                .await
                .map_err(StoreError::from)
        },
        super::outbox::insert(client, &notifications),
    )
    .await?;
    if ids.iter().any(|id| !present.contains(id)) || inserted.len() != rows.len() {
        return Ok(None);
    }
    Ok(Some(
        rows.into_iter()
            .map(|row| ReceiptOutcome::Stored { receipt_id: row.id })
            .collect(),
    ))
}

/// Writes `receipts` with their notifications in the caller's transaction
/// and returns each one's outcome, in the order given. An error means the
/// transaction must be rolled back (nothing of it may be committed).
pub(super) async fn stage(
    client: &impl GenericClient,
    receipts: &[NewReceipt],
) -> Result<Vec<ReceiptOutcome>> {
    let rows = receipts.iter().map(Row::new).collect::<Result<Vec<_>>>()?;
    let ids = instance_ids(&rows);
    let present = locked_instances(client, &ids).await?;
    if let Some(missing) = ids.into_iter().find(|id| !present.contains(id)) {
        return Err(StoreError::no_such_instance(missing));
    }
    let order = key_order(&rows);
    let inserted = insert_rows(client, &rows, &order).await?;
    let mut outcomes = Vec::with_capacity(rows.len());
    let mut notifications = Vec::new();
    for row in &rows {
        let outcome = if inserted.contains(&row.id) {
            ReceiptOutcome::Stored {
                receipt_id: row.id.clone(),
            }
        } else {
            settle_conflict(client, row).await?
        };
        if let ReceiptOutcome::Stored { .. } = &outcome {
            notifications.extend(row.notifications());
        }
        outcomes.push(outcome);
    }
    super::outbox::insert(client, &notifications).await?;
    Ok(outcomes)
}

/// The receipts' instances, each once, in order.
fn instance_ids(rows: &[Row<'_>]) -> Vec<i64> {
    let mut ids: Vec<i64> = rows.iter().map(|r| r.receipt.instance_id).collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// The rows' indexes in key order (instance, de-duplication key): the
/// order they are inserted in, so concurrent batches take their unique-key
/// locks in the same order.
fn key_order(rows: &[Row<'_>]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by_key(|&i| (rows[i].receipt.instance_id, rows[i].dedup_key));
    order
}

/// Locks the instances `ids` (sorted) for the rest of the transaction and
/// returns those that exist.
///
/// `FOR SHARE` stands in for foreign keys (see migration V4): an instance
/// being deleted waits until this transaction has committed and its
/// deletion then removes what this one wrote, and a receipt arriving after
/// the deletion finds no instance. (A pause of delivery needs no ordering
/// against this batch: claims read it, not the notifications.)
async fn locked_instances(
    client: &impl GenericClient,
    ids: &[i64],
) -> Result<std::collections::HashSet<i64>> {
    let stmt = client
        .prepare_cached("SELECT id FROM instances WHERE id = ANY($1) ORDER BY id FOR SHARE")
        .await?;
    let found = client.query(&stmt, &[&ids]).await?;
    found.iter().map(|row| col::<i64>(row, 0)).collect()
}

/// Inserts the rows (in `order`) in one statement; returns the ids of those
/// inserted (the others' de-duplication key is taken).
async fn insert_rows(
    client: &impl GenericClient,
    rows: &[Row<'_>],
    order: &[usize],
) -> Result<std::collections::HashSet<String>, tokio_postgres::Error> {
    let pick = |i: &usize| &rows[*i];
    let ids: Vec<&str> = order.iter().map(|i| pick(i).id.as_str()).collect();
    let instances: Vec<i64> = order.iter().map(|i| pick(i).receipt.instance_id).collect();
    let elements: Vec<&str> = order
        .iter()
        .map(|i| pick(i).receipt.element_key.as_str())
        .collect();
    let received: Vec<i64> = order
        .iter()
        .map(|i| to_millis(pick(i).receipt.received_at))
        .collect();
    let messages: Vec<Option<&str>> = order
        .iter()
        .map(|i| pick(i).receipt.message_id.as_deref())
        .collect();
    let keys: Vec<Option<&str>> = order.iter().map(|i| pick(i).dedup_key).collect();
    let methods: Vec<&str> = order
        .iter()
        .map(|i| pick(i).receipt.method.as_str())
        .collect();
    let paths: Vec<&str> = order
        .iter()
        .map(|i| pick(i).receipt.path.as_str())
        .collect();
    let headers: Vec<&str> = order.iter().map(|i| pick(i).headers.as_str()).collect();
    let bodies: Vec<&[u8]> = order.iter().map(|i| &pick(i).receipt.body[..]).collect();
    let states: Vec<&str> = order.iter().map(|i| pick(i).status.as_str()).collect();
    let errors: Vec<Option<&str>> = order.iter().map(|i| pick(i).error).collect();
    let stmt = client
        .prepare_cached(
            "INSERT INTO receipts (id, instance_id, element_key, received_at, message_id, \
             dedup_key, method, path, headers, body, status, error) \
             SELECT * FROM unnest($1::text[], $2::int8[], $3::text[], $4::int8[], $5::text[], \
                                  $6::text[], $7::text[], $8::text[], $9::text[], $10::bytea[], \
                                  $11::text[], $12::text[]) \
             ON CONFLICT DO NOTHING RETURNING id",
        )
        .await?;
    let returned = client
        .query(
            &stmt,
            &[
                &ids, &instances, &elements, &received, &messages, &keys, &methods, &paths,
                &headers, &bodies, &states, &errors,
            ],
        )
        .await?;
    Ok(returned.iter().map(|r| r.get::<_, String>(0)).collect())
}

/// A row whose key was taken: by a receipt within the window (a repeat),
/// or by an older one, which gives the key up to this one.
async fn settle_conflict(client: &impl GenericClient, row: &Row<'_>) -> Result<ReceiptOutcome> {
    let r = row.receipt;
    let key = row.dedup_key.ok_or_else(|| {
        StoreError::corrupt(format!("receipt {} conflicted without a key", row.id))
    })?;
    let window = i64::try_from(r.dedup_window.as_millis()).unwrap_or(i64::MAX);
    let since = to_millis(r.received_at).saturating_sub(window);
    let released = client
        .execute(
            &client
                .prepare_cached(
                    "UPDATE receipts SET dedup_key = NULL \
                     WHERE instance_id = $1 AND dedup_key = $2 AND received_at < $3",
                )
                .await?,
            &[&r.instance_id, &key, &since],
        )
        .await?;
    if released > 0 {
        let inserted = insert_rows(client, std::slice::from_ref(row), &[0]).await?;
        if inserted.contains(&row.id) {
            return Ok(ReceiptOutcome::Stored {
                receipt_id: row.id.clone(),
            });
        }
    }
    let original = client
        .query_opt(
            &client
                .prepare_cached("SELECT id FROM receipts WHERE instance_id = $1 AND dedup_key = $2")
                .await?,
            &[&r.instance_id, &key],
        )
        .await?;
    match original {
        Some(found) => Ok(ReceiptOutcome::Duplicate {
            receipt_id: col(&found, 0)?,
        }),
        // The holder went away meanwhile (pruned or its instance deleted):
        // the caller's transaction is retried as a whole.
        None => Err(StoreError::new(
            super::super::ErrorKind::Unavailable,
            format!("the holder of message id {key:?} went away; try again"),
        )),
    }
}

/// Deletes, among the next `limit` receipts after `after` (in id order)
/// received before `before_ms`, the accepted ones none of whose
/// notifications is still pending or dead-lettered; their delivered
/// notifications go with them, with their attempts. Failed receipts stay
/// for reprocessing. Returns how many were deleted and where the next call
/// continues (`None`: nothing older is left to look at).
pub(super) async fn prune(
    client: &impl GenericClient,
    after: Option<&str>,
    before_ms: i64,
    limit: usize,
) -> Result<(u64, Option<String>)> {
    let after = after.unwrap_or("");
    let before = id_floor(before_ms);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let last: Option<String> = col(
        &client
            .query_one(
                &client
                    .prepare_cached(
                        "SELECT max(id) FROM (SELECT id FROM receipts WHERE id > $1 AND id < $2 \
                         ORDER BY id LIMIT $3) AS chunk",
                    )
                    .await?,
                &[&after, &before, &limit],
            )
            .await?,
        0,
    )?;
    let Some(last) = last else {
        return Ok((0, None));
    };
    // Their delivered notifications, and those notifications' attempts, go
    // with them in the same statement. The status is checked again on the
    // notification itself (see `outbox::PRUNE_DELIVERED`): one redelivered
    // meanwhile stays, queued.
    let deleted: i64 = col(
        &client
            .query_one(
                &client
                    .prepare_cached(
                        "WITH gone AS (DELETE FROM receipts WHERE id > $1 AND id <= $2 \
                         AND status = 'accepted' AND NOT EXISTS (SELECT 1 FROM notifications n \
                         WHERE n.receipt_id = receipts.id AND n.status != 'delivered') RETURNING id), \
                         delivered AS (DELETE FROM notifications \
                         WHERE receipt_id IN (SELECT id FROM gone) AND status = 'delivered' \
                         RETURNING id), \
                         events AS (DELETE FROM notification_events \
                         WHERE notification_id IN (SELECT id FROM delivered)), \
                         attempts AS (DELETE FROM delivery_attempts \
                         WHERE notification_id IN (SELECT id FROM delivered)) \
                         SELECT count(*) FROM gone",
                    )
                    .await?,
                &[&after, &last],
            )
            .await?,
        0,
    )?;
    let deleted = u64::try_from(deleted).unwrap_or_default();
    Ok((deleted, Some(last)))
}
