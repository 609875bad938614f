//! The inbound log on PostgreSQL (see [`crate::store::inbound`]): recording
//! entries under their caps, listing them merged with the webhook
//! receipts, pruning, and settling failed receipts — the receipt's row
//! locked `FOR UPDATE` and checked still failed, so of several replicas
//! settling one receipt only the first writes.

use std::collections::HashMap;

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::super::error::{Result, StoreError};
use super::super::ids::{id_at, id_floor};
use super::super::inbound::{
    duplicate_reason, id_bounds, split_ids, DroppedEntries, InboundCaps, InboundEntry,
    InboundOutcome, InboundQuery, InboundWritten, NewInboundEntry, Settled, Settlement,
    StoredReceipt,
};
use super::super::timestamp::{from_millis, to_millis};
use super::error::get as col;
use super::outbox::NotificationRow;

/// How many entries the log holds for `instance` (or in all), counting at most `cap`.
async fn count_capped(client: &impl GenericClient, instance: Option<i64>, cap: u64) -> Result<u64> {
    let cap = i64::try_from(cap).unwrap_or(i64::MAX);
    let stmt = client
        .prepare_cached(
            "SELECT count(*) FROM (SELECT 1 FROM inbound_requests \
             WHERE $1::int8 IS NULL OR instance_id = $1 LIMIT $2) AS capped",
        )
        .await?;
    let n: i64 = col(&client.query_one(&stmt, &[&instance, &cap]).await?, 0)?;
    Ok(n as u64)
}

/// Stores `entries` in the caller's transaction, each only while its
/// instance and the whole log are under `caps`; the others (and
/// `dropped`) are added to their instance's dropped count. Entries of
/// instances gone meanwhile are dropped uncounted. Several replicas may
/// each store up to a batch beyond a cap at once.
pub(super) async fn record(
    client: &impl GenericClient,
    entries: &[NewInboundEntry],
    dropped: &[(i64, u64)],
    caps: InboundCaps,
    now_ms: i64,
) -> Result<InboundWritten> {
    let mut total = count_capped(client, None, caps.total).await?;
    let mut per_instance: HashMap<i64, u64> = HashMap::new();
    let mut over: HashMap<i64, u64> = HashMap::new();
    let mut written = InboundWritten::default();
    let insert = client
        .prepare_cached(
            "INSERT INTO inbound_requests (id, instance_id, element_key, received_at, outcome, \
             status, code, reason, method, path, headers, body, body_bytes, receipt_id) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14 \
             WHERE EXISTS (SELECT 1 FROM instances WHERE id = $2)",
        )
        .await?;
    for e in entries {
        let count = match per_instance.get(&e.instance_id) {
            Some(n) => *n,
            None => count_capped(client, Some(e.instance_id), caps.per_instance).await?,
        };
        if count >= caps.per_instance || total >= caps.total {
            *over.entry(e.instance_id).or_default() += 1;
            per_instance.insert(e.instance_id, count);
            continue;
        }
        let headers = serde_json::to_string(&e.headers)?;
        let inserted = client
            .execute(
                &insert,
                &[
                    &id_at(e.received_at),
                    &e.instance_id,
                    &e.element_key,
                    &to_millis(e.received_at),
                    &e.outcome.as_str(),
                    &i32::from(e.status),
                    &e.code,
                    &e.reason,
                    &e.method,
                    &e.path,
                    &headers,
                    &e.body.as_deref(),
                    &e.body_bytes.map(|n| n as i64),
                    &e.receipt_id,
                ],
            )
            .await?;
        if inserted == 1 {
            written.stored += 1;
            total += 1;
            per_instance.insert(e.instance_id, count + 1);
        } else {
            written.dropped += 1;
        }
    }
    let bump = client
        .prepare_cached(
            "INSERT INTO inbound_dropped (instance_id, dropped, last_at) \
             SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM instances WHERE id = $1) \
             ON CONFLICT (instance_id) DO UPDATE \
             SET dropped = inbound_dropped.dropped + excluded.dropped, last_at = excluded.last_at",
        )
        .await?;
    let mut bumps: Vec<(i64, u64)> = dropped.iter().copied().chain(over).collect();
    bumps.sort_unstable(); // one lock order for concurrent writers
    for (instance, n) in bumps {
        written.dropped += n;
        client
            .execute(&bump, &[&instance, &(n as i64), &now_ms])
            .await?;
    }
    Ok(written)
}

/// The columns every listing reads, receipts and requests alike.
const COLUMNS: &str = "id, instance_id, element_key, received_at, outcome, status, code, reason, \
                       method, path, headers, body_bytes, receipt_id, events";

/// A receipt as an inbound entry (webhook receipts only: their path is
/// the ingress route's).
const RECEIPT_ROWS: &str = "SELECT r.id, r.instance_id, r.element_key, r.received_at, \
     r.status AS outcome, CASE r.status WHEN 'accepted' THEN 200 END AS status, \
     NULL::text AS code, r.error AS reason, r.method, r.path, r.headers, \
     octet_length(r.body)::int8 AS body_bytes, NULL::text AS receipt_id, \
     (SELECT string_agg(n.id, ',') FROM notifications n WHERE n.receipt_id = r.id) AS events \
     FROM receipts r WHERE r.path LIKE '/events/%'";

/// A request row as an inbound entry.
const REQUEST_ROWS: &str = "SELECT q.id, q.instance_id, q.element_key, q.received_at, q.outcome, \
     q.status, q.code, q.reason, q.method, q.path, q.headers, q.body_bytes, q.receipt_id, \
     NULL::text AS events FROM inbound_requests q WHERE true";

fn entry(row: &Row) -> Result<InboundEntry> {
    let outcome: String = col(row, 4)?;
    let id: String = col(row, 0)?;
    let headers: String = col(row, 10)?;
    Ok(InboundEntry {
        outcome: InboundOutcome::parse(&outcome)
            .ok_or_else(|| StoreError::corrupt(format!("inbound entry {id}: outcome {outcome}")))?,
        id,
        instance_id: col(row, 1)?,
        element_key: col(row, 2)?,
        received_at: from_millis(col(row, 3)?)?,
        status: col::<Option<i32>>(row, 5)?.map(|s| s as u16),
        code: col(row, 6)?,
        reason: col(row, 7)?,
        method: col(row, 8)?,
        path: col(row, 9)?,
        headers: serde_json::from_str(&headers)?,
        body: None,
        body_bytes: col::<Option<i64>>(row, 11)?.map(|n| n as u64),
        receipt_id: col(row, 12)?,
        event_ids: split_ids(col(row, 13)?),
    })
}

/// A page of the log, newest first. Each side is filtered, ordered and
/// limited on its own (walking its primary key backwards, reading the
/// notification ids of the rows it returns only), then the two are merged.
pub(super) async fn list(
    client: &impl GenericClient,
    q: &InboundQuery,
) -> Result<Vec<InboundEntry>> {
    let (upper, lower) = id_bounds(q);
    let mut parts = Vec::new();
    if q.outcome.is_none_or(InboundOutcome::is_receipt) {
        parts.push(format!(
            "(SELECT * FROM ({RECEIPT_ROWS} AND ($1::int8 IS NULL OR r.instance_id = $1) \
             AND r.id < $2 AND r.id >= $3 AND ($4::text IS NULL OR r.status = $4) \
             AND ($5::int4 IS NULL OR ($5 = 200 AND r.status = 'accepted')) \
             ORDER BY r.id DESC LIMIT $6) AS receipts_page)"
        ));
    }
    if q.outcome.is_none_or(|o| !o.is_receipt()) {
        parts.push(format!(
            "(SELECT * FROM ({REQUEST_ROWS} AND ($1::int8 IS NULL OR q.instance_id = $1) \
             AND q.id < $2 AND q.id >= $3 AND ($4::text IS NULL OR q.outcome = $4) \
             AND ($5::int4 IS NULL OR q.status = $5) ORDER BY q.id DESC LIMIT $6) AS requests_page)"
        ));
    }
    let sql = format!(
        "SELECT {COLUMNS} FROM ({}) AS log ORDER BY id DESC LIMIT $6",
        parts.join(" UNION ALL ")
    );
    let stmt = client.prepare_cached(&sql).await?;
    let rows = client
        .query(
            &stmt,
            &[
                &q.instance_id,
                &upper,
                &lower,
                &q.outcome.map(InboundOutcome::as_str),
                &q.status.map(i32::from),
                &i64::from(q.limit),
            ],
        )
        .await?;
    rows.iter().map(entry).collect()
}

/// One entry with its body.
pub(super) async fn get(client: &impl GenericClient, id: &str) -> Result<Option<InboundEntry>> {
    for sql in [
        format!(
            "SELECT {COLUMNS}, (SELECT body FROM receipts WHERE id = $1) \
             FROM ({RECEIPT_ROWS} AND r.id = $1) AS one"
        ),
        format!(
            "SELECT {COLUMNS}, (SELECT body FROM inbound_requests WHERE id = $1) \
             FROM ({REQUEST_ROWS} AND q.id = $1) AS one"
        ),
    ] {
        let stmt = client.prepare_cached(&sql).await?;
        if let Some(row) = client.query_opt(&stmt, &[&id]).await? {
            let mut e = entry(&row)?;
            e.body = col::<Option<Vec<u8>>>(&row, 14)?.map(Into::into);
            return Ok(Some(e));
        }
    }
    Ok(None)
}

/// The dropped counts of one instance or of all.
pub(super) async fn dropped(
    client: &impl GenericClient,
    instance: Option<i64>,
) -> Result<Vec<DroppedEntries>> {
    let stmt = client
        .prepare_cached(
            "SELECT instance_id, dropped, last_at FROM inbound_dropped \
             WHERE $1::int8 IS NULL OR instance_id = $1 ORDER BY instance_id",
        )
        .await?;
    client
        .query(&stmt, &[&instance])
        .await?
        .iter()
        .map(|r| {
            Ok(DroppedEntries {
                instance_id: col(r, 0)?,
                dropped: col::<i64>(r, 1)? as u64,
                last_at: from_millis(col(r, 2)?)?,
            })
        })
        .collect()
}

/// Deletes at most `limit` entries received before `before_ms`, and the
/// dropped counts last bumped before then; returns how many entries.
pub(super) async fn prune(
    client: &impl GenericClient,
    before_ms: i64,
    limit: usize,
) -> Result<u64> {
    let stmt = client
        .prepare_cached(
            "DELETE FROM inbound_requests WHERE id IN \
             (SELECT id FROM inbound_requests WHERE id < $1 ORDER BY id LIMIT $2)",
        )
        .await?;
    let n = client
        .execute(
            &stmt,
            &[
                &id_floor(before_ms),
                &i64::try_from(limit).unwrap_or(i64::MAX),
            ],
        )
        .await?;
    let stmt = client
        .prepare_cached("DELETE FROM inbound_dropped WHERE last_at < $1")
        .await?;
    client.execute(&stmt, &[&before_ms]).await?;
    Ok(n)
}

const RECEIPT_COLUMNS: &str =
    "id, instance_id, element_key, received_at, method, path, headers, body, \
     CASE status WHEN 'failed' THEN coalesce(error, '') END";

fn receipt(row: &Row) -> Result<StoredReceipt> {
    let headers: String = col(row, 6)?;
    Ok(StoredReceipt {
        id: col(row, 0)?,
        instance_id: col(row, 1)?,
        element_key: col(row, 2)?,
        received_at: from_millis(col(row, 3)?)?,
        method: col(row, 4)?,
        path: col(row, 5)?,
        headers: serde_json::from_str(&headers)?,
        body: col::<Vec<u8>>(row, 7)?.into(),
        error: col(row, 8)?,
    })
}

/// The receipt with this id.
pub(super) async fn get_receipt(
    client: &impl GenericClient,
    id: &str,
) -> Result<Option<StoredReceipt>> {
    let stmt = client
        .prepare_cached(&format!(
            "SELECT {RECEIPT_COLUMNS} FROM receipts WHERE id = $1"
        ))
        .await?;
    client
        .query_opt(&stmt, &[&id])
        .await?
        .as_ref()
        .map(receipt)
        .transpose()
}

/// Up to `limit` failed webhook receipts of an instance after `after`, oldest first.
pub(super) async fn failed_receipts(
    client: &impl GenericClient,
    instance_id: i64,
    after: &str,
    limit: u32,
) -> Result<Vec<StoredReceipt>> {
    let stmt = client
        .prepare_cached(&format!(
            "SELECT {RECEIPT_COLUMNS} FROM receipts WHERE instance_id = $1 AND id > $2 \
             AND status = 'failed' AND path LIKE '/events/%' ORDER BY id LIMIT $3"
        ))
        .await?;
    client
        .query(&stmt, &[&instance_id, &after, &i64::from(limit)])
        .await?
        .iter()
        .map(receipt)
        .collect()
}

/// Settles failed receipt `id` in the caller's transaction, only if it is
/// still failed: its row is locked first, so a concurrent settlement
/// waits and then finds it settled.
pub(super) async fn settle(
    client: &impl GenericClient,
    id: &str,
    settlement: &Settlement,
    now_ms: i64,
) -> Result<Settled> {
    let stmt = client
        .prepare_cached(
            "SELECT instance_id, received_at FROM receipts \
             WHERE id = $1 AND status = 'failed' FOR UPDATE",
        )
        .await?;
    let Some(row) = client.query_opt(&stmt, &[&id]).await? else {
        return Ok(Settled::NotFailed);
    };
    let (instance_id, received_at): (i64, i64) = (col(&row, 0)?, col(&row, 1)?);
    let (message_id, dedup_window, notifications) = match settlement {
        Settlement::Failed { error } => {
            let stmt = client
                .prepare_cached("UPDATE receipts SET error = $2 WHERE id = $1")
                .await?;
            client.execute(&stmt, &[&id, error]).await?;
            return Ok(Settled::StillFailed);
        }
        Settlement::Accepted {
            message_id,
            dedup_window,
            notifications,
        } => (message_id, dedup_window, notifications),
    };
    // Stands in for the foreign key, as at ingress (migration V4).
    let stmt = client
        .prepare_cached("SELECT FROM instances WHERE id = $1 FOR SHARE")
        .await?;
    if client.query_opt(&stmt, &[&instance_id]).await?.is_none() {
        return Ok(Settled::NotFailed);
    }
    let key = message_id.as_deref().filter(|_| !dedup_window.is_zero());
    let window = i64::try_from(dedup_window.as_millis()).unwrap_or(i64::MAX);
    if let Some(key) = key {
        let stmt = client
            .prepare_cached(
                "SELECT id, received_at FROM receipts WHERE instance_id = $1 AND dedup_key = $2 \
                 FOR UPDATE",
            )
            .await?;
        if let Some(holder) = client.query_opt(&stmt, &[&instance_id, &key]).await? {
            let (of, at): (String, i64) = (col(&holder, 0)?, col(&holder, 1)?);
            if (at - received_at).abs() <= window {
                let stmt = client
                    .prepare_cached(
                        "UPDATE receipts SET status = 'accepted', error = $2, message_id = $3 \
                         WHERE id = $1",
                    )
                    .await?;
                client
                    .execute(&stmt, &[&id, &duplicate_reason(&of), message_id])
                    .await?;
                return Ok(Settled::Duplicate { of });
            }
            let stmt = client
                .prepare_cached("UPDATE receipts SET dedup_key = NULL WHERE id = $1")
                .await?;
            client.execute(&stmt, &[&of]).await?;
        }
    }
    let stmt = client
        .prepare_cached(
            "UPDATE receipts SET status = 'accepted', error = NULL, message_id = $2, \
             dedup_key = $3 WHERE id = $1",
        )
        .await?;
    client.execute(&stmt, &[&id, message_id, &key]).await?;
    let rows: Vec<NotificationRow<'_>> = notifications
        .iter()
        .map(|n| NotificationRow {
            instance_id,
            receipt_id: Some(id),
            created_at: now_ms,
            notification: n,
        })
        .collect();
    super::outbox::insert(client, &rows).await?;
    Ok(Settled::Accepted {
        event_ids: notifications.iter().map(|n| n.id.clone()).collect(),
    })
}
