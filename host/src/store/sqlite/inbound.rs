//! The inbound log on SQLite (see [`crate::store::inbound`]): recording
//! entries under their caps, listing them merged with the webhook
//! receipts, pruning, and settling failed receipts.

use std::collections::HashMap;

use rusqlite::{params, Connection, OptionalExtension as _, Row, TransactionBehavior};

use super::super::error::{Result, StoreError};
use super::super::ids::{id_at, id_floor};
use super::super::inbound::{
    duplicate_reason, id_bounds, split_ids, DroppedEntries, InboundCaps, InboundEntry,
    InboundOutcome, InboundQuery, InboundWritten, NewInboundEntry, Settled, Settlement,
    StoredReceipt,
};
use super::super::timestamp::{from_millis, to_millis};

/// How many rows `table` holds for `instance` (or in all), counting at most `cap`.
fn count_capped(conn: &Connection, instance: Option<i64>, cap: u64) -> Result<u64> {
    let cap = i64::try_from(cap).unwrap_or(i64::MAX);
    let n: i64 = conn
        .prepare_cached(
            "SELECT count(*) FROM (SELECT 1 FROM inbound_requests \
             WHERE ?1 IS NULL OR instance_id = ?1 LIMIT ?2)",
        )?
        .query_row(params![instance, cap], |r| r.get(0))?;
    Ok(n as u64)
}

/// Stores `entries` in one transaction, each only while its instance and
/// the whole log are under `caps`; the others (and `dropped` counted
/// before they reached the store) are added to their instance's dropped
/// count. Entries of instances gone meanwhile are dropped uncounted.
pub(super) fn record(
    conn: &mut Connection,
    entries: &[NewInboundEntry],
    dropped: &[(i64, u64)],
    caps: InboundCaps,
    now_ms: i64,
) -> Result<InboundWritten> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut total = count_capped(&tx, None, caps.total)?;
    let mut per_instance: HashMap<i64, u64> = HashMap::new();
    let mut over: HashMap<i64, u64> = HashMap::new();
    let mut written = InboundWritten::default();
    for e in entries {
        let count = match per_instance.get(&e.instance_id) {
            Some(n) => *n,
            None => count_capped(&tx, Some(e.instance_id), caps.per_instance)?,
        };
        if count >= caps.per_instance || total >= caps.total {
            *over.entry(e.instance_id).or_default() += 1;
            per_instance.insert(e.instance_id, count);
            continue;
        }
        let inserted = tx
            .prepare_cached(
                "INSERT INTO inbound_requests (id, instance_id, element_key, received_at, outcome, \
                 status, code, reason, method, path, headers, body, body_bytes, receipt_id) \
                 SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14 \
                 WHERE EXISTS (SELECT 1 FROM instances WHERE id = ?2)",
            )?
            .execute(params![
                id_at(e.received_at),
                e.instance_id,
                e.element_key,
                to_millis(e.received_at),
                e.outcome.as_str(),
                e.status,
                e.code,
                e.reason,
                e.method,
                e.path,
                serde_json::to_string(&e.headers)?,
                e.body.as_deref(),
                e.body_bytes.map(|n| n as i64),
                e.receipt_id,
            ])?;
        if inserted == 1 {
            written.stored += 1;
            total += 1;
            per_instance.insert(e.instance_id, count + 1);
        } else {
            written.dropped += 1;
        }
    }
    for (instance, n) in dropped.iter().copied().chain(over.clone()) {
        written.dropped += n;
        tx.prepare_cached(
            "INSERT INTO inbound_dropped (instance_id, dropped, last_at) \
             SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM instances WHERE id = ?1) \
             ON CONFLICT (instance_id) DO UPDATE \
             SET dropped = dropped + excluded.dropped, last_at = excluded.last_at",
        )?
        .execute(params![instance, n as i64, now_ms])?;
    }
    tx.commit()?;
    Ok(written)
}

/// The columns every listing reads, receipts and requests alike.
const COLUMNS: &str = "id, instance_id, element_key, received_at, outcome, status, code, reason, \
                       method, path, headers, body_bytes, receipt_id, events";

/// A receipt as an inbound entry (webhook receipts only: their path is
/// the ingress route's).
const RECEIPT_ROWS: &str = "SELECT r.id, r.instance_id, r.element_key, r.received_at, \
     r.status AS outcome, CASE r.status WHEN 'accepted' THEN 200 END AS status, NULL AS code, \
     r.error AS reason, r.method, r.path, r.headers, length(r.body) AS body_bytes, \
     NULL AS receipt_id, \
     (SELECT group_concat(n.id) FROM notifications n WHERE n.receipt_id = r.id) AS events \
     FROM receipts r WHERE r.path LIKE '/events/%'";

/// A request row as an inbound entry.
const REQUEST_ROWS: &str = "SELECT q.id, q.instance_id, q.element_key, q.received_at, q.outcome, \
     q.status, q.code, q.reason, q.method, q.path, q.headers, q.body_bytes, q.receipt_id, \
     NULL AS events FROM inbound_requests q WHERE 1";

fn entry(row: &Row<'_>) -> rusqlite::Result<(InboundEntry, String, i64, String)> {
    let outcome: String = row.get(4)?;
    let headers: String = row.get(10)?;
    let received: i64 = row.get(3)?;
    Ok((
        InboundEntry {
            id: row.get(0)?,
            instance_id: row.get(1)?,
            element_key: row.get(2)?,
            received_at: time::OffsetDateTime::UNIX_EPOCH,
            outcome: InboundOutcome::Rejected,
            status: row.get::<_, Option<i64>>(5)?.map(|s| s as u16),
            code: row.get(6)?,
            reason: row.get(7)?,
            method: row.get(8)?,
            path: row.get(9)?,
            headers: Vec::new(),
            body: None,
            body_bytes: row.get::<_, Option<i64>>(11)?.map(|n| n as u64),
            receipt_id: row.get(12)?,
            event_ids: split_ids(row.get(13)?),
        },
        outcome,
        received,
        headers,
    ))
}

/// Finishes a row read by [`entry`]: its outcome, time and headers parsed.
fn finish(raw: (InboundEntry, String, i64, String)) -> Result<InboundEntry> {
    let (mut e, outcome, received, headers) = raw;
    e.outcome = InboundOutcome::parse(&outcome)
        .ok_or_else(|| StoreError::corrupt(format!("inbound entry {}: outcome {outcome}", e.id)))?;
    e.received_at = from_millis(received)?;
    e.headers = serde_json::from_str(&headers)?;
    Ok(e)
}

/// A page of the log, newest first. Each side is filtered, ordered and
/// limited on its own (walking its primary key backwards, reading the
/// notification ids of the rows it returns only), then the two are merged.
pub(super) fn list(conn: &Connection, q: &InboundQuery) -> Result<Vec<InboundEntry>> {
    let (upper, lower) = id_bounds(q);
    let mut parts = Vec::new();
    if q.outcome.is_none_or(InboundOutcome::is_receipt) {
        parts.push(format!(
            "SELECT * FROM ({RECEIPT_ROWS} AND (?1 IS NULL OR r.instance_id = ?1) \
             AND r.id < ?2 AND r.id >= ?3 AND (?4 IS NULL OR r.status = ?4) \
             AND (?5 IS NULL OR (?5 = 200 AND r.status = 'accepted')) \
             ORDER BY r.id DESC LIMIT ?6)"
        ));
    }
    if q.outcome.is_none_or(|o| !o.is_receipt()) {
        parts.push(format!(
            "SELECT * FROM ({REQUEST_ROWS} AND (?1 IS NULL OR q.instance_id = ?1) \
             AND q.id < ?2 AND q.id >= ?3 AND (?4 IS NULL OR q.outcome = ?4) \
             AND (?5 IS NULL OR q.status = ?5) ORDER BY q.id DESC LIMIT ?6)"
        ));
    }
    let sql = format!(
        "SELECT {COLUMNS} FROM ({}) ORDER BY id DESC LIMIT ?6",
        parts.join(" UNION ALL ")
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(
        params![
            q.instance_id,
            upper,
            lower,
            q.outcome.map(InboundOutcome::as_str),
            q.status.map(i64::from),
            i64::from(q.limit),
        ],
        entry,
    )?;
    rows.map(|r| finish(r?)).collect()
}

/// One entry with its body.
pub(super) fn get(conn: &Connection, id: &str) -> Result<Option<InboundEntry>> {
    let read = |sql: String| -> Result<Option<InboundEntry>> {
        conn.prepare_cached(&sql)?
            .query_row(params![id], |row| {
                let body: Option<Vec<u8>> = row.get(14)?;
                Ok((entry(row)?, body))
            })
            .optional()?
            .map(|(raw, body)| {
                let mut e = finish(raw)?;
                e.body = body.map(Into::into);
                Ok(e)
            })
            .transpose()
    };
    if let Some(found) = read(format!(
        "SELECT {COLUMNS}, (SELECT body FROM receipts WHERE id = ?1) FROM ({RECEIPT_ROWS} \
         AND r.id = ?1)"
    ))? {
        return Ok(Some(found));
    }
    read(format!(
        "SELECT {COLUMNS}, (SELECT body FROM inbound_requests WHERE id = ?1) \
         FROM ({REQUEST_ROWS} AND q.id = ?1)"
    ))
}

/// The dropped counts of one instance or of all.
pub(super) fn dropped(conn: &Connection, instance: Option<i64>) -> Result<Vec<DroppedEntries>> {
    let mut stmt = conn.prepare_cached(
        "SELECT instance_id, dropped, last_at FROM inbound_dropped \
         WHERE ?1 IS NULL OR instance_id = ?1 ORDER BY instance_id",
    )?;
    let rows = stmt.query_map(params![instance], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })?;
    rows.map(|r| {
        let (instance_id, dropped, last) = r?;
        Ok(DroppedEntries {
            instance_id,
            dropped: dropped as u64,
            last_at: from_millis(last)?,
        })
    })
    .collect()
}

/// Deletes at most `limit` entries received before `before_ms`, and the
/// dropped counts last bumped before then; returns how many entries.
pub(super) fn prune(conn: &Connection, before_ms: i64, limit: usize) -> Result<u64> {
    let n = conn
        .prepare_cached(
            "DELETE FROM inbound_requests WHERE id IN \
             (SELECT id FROM inbound_requests WHERE id < ?1 ORDER BY id LIMIT ?2)",
        )?
        .execute(params![
            id_floor(before_ms),
            i64::try_from(limit).unwrap_or(i64::MAX)
        ])?;
    conn.prepare_cached("DELETE FROM inbound_dropped WHERE last_at < ?1")?
        .execute(params![before_ms])?;
    Ok(n as u64)
}

/// A stored receipt, whole.
fn receipt(row: &Row<'_>) -> rusqlite::Result<(StoredReceipt, i64, String)> {
    Ok((
        StoredReceipt {
            id: row.get(0)?,
            instance_id: row.get(1)?,
            element_key: row.get(2)?,
            received_at: time::OffsetDateTime::UNIX_EPOCH,
            method: row.get(4)?,
            path: row.get(5)?,
            headers: Vec::new(),
            body: row.get::<_, Vec<u8>>(7)?.into(),
            error: row.get(8)?,
        },
        row.get(3)?,
        row.get(6)?,
    ))
}

const RECEIPT_COLUMNS: &str =
    "id, instance_id, element_key, received_at, method, path, headers, body, \
     CASE status WHEN 'failed' THEN coalesce(error, '') END";

fn finish_receipt(raw: (StoredReceipt, i64, String)) -> Result<StoredReceipt> {
    let (mut r, received, headers) = raw;
    r.received_at = from_millis(received)?;
    r.headers = serde_json::from_str(&headers)?;
    Ok(r)
}

/// The receipt with this id.
pub(super) fn get_receipt(conn: &Connection, id: &str) -> Result<Option<StoredReceipt>> {
    conn.prepare_cached(&format!(
        "SELECT {RECEIPT_COLUMNS} FROM receipts WHERE id = ?1"
    ))?
    .query_row(params![id], receipt)
    .optional()?
    .map(finish_receipt)
    .transpose()
}

/// Up to `limit` failed webhook receipts of an instance after `after`, oldest first.
pub(super) fn failed_receipts(
    conn: &Connection,
    instance_id: i64,
    after: &str,
    limit: u32,
) -> Result<Vec<StoredReceipt>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {RECEIPT_COLUMNS} FROM receipts WHERE instance_id = ?1 AND id > ?2 \
         AND status = 'failed' AND path LIKE '/events/%' ORDER BY id LIMIT ?3"
    ))?;
    let rows = stmt.query_map(params![instance_id, after, i64::from(limit)], receipt)?;
    rows.map(|r| finish_receipt(r?)).collect()
}

/// Settles failed receipt `id` as `settlement` says, in one transaction,
/// only if it is still failed.
pub(super) fn settle(
    conn: &mut Connection,
    id: &str,
    settlement: &Settlement,
    now_ms: i64,
) -> Result<Settled> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found: Option<(i64, i64)> = tx
        .prepare_cached(
            "SELECT instance_id, received_at FROM receipts WHERE id = ?1 AND status = 'failed'",
        )?
        .query_row(params![id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((instance_id, received_at)) = found else {
        return Ok(Settled::NotFailed);
    };
    let settled = match settlement {
        Settlement::Failed { error } => {
            tx.prepare_cached("UPDATE receipts SET error = ?2 WHERE id = ?1")?
                .execute(params![id, error])?;
            Settled::StillFailed
        }
        Settlement::Accepted {
            message_id,
            dedup_window,
            notifications,
        } => {
            let key = message_id.as_deref().filter(|_| !dedup_window.is_zero());
            let window = i64::try_from(dedup_window.as_millis()).unwrap_or(i64::MAX);
            let holder: Option<(String, i64)> = match key {
                Some(key) => tx
                    .prepare_cached(
                        "SELECT id, received_at FROM receipts \
                         WHERE instance_id = ?1 AND dedup_key = ?2",
                    )?
                    .query_row(params![instance_id, key], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?,
                None => None,
            };
            match holder {
                Some((of, at)) if (at - received_at).abs() <= window => {
                    tx.prepare_cached(
                        "UPDATE receipts SET status = 'accepted', error = ?2, message_id = ?3 \
                         WHERE id = ?1",
                    )?
                    .execute(params![
                        id,
                        duplicate_reason(&of),
                        message_id
                    ])?;
                    Settled::Duplicate { of }
                }
                holder => {
                    if let Some((old, _)) = holder {
                        tx.prepare_cached("UPDATE receipts SET dedup_key = NULL WHERE id = ?1")?
                            .execute(params![old])?;
                    }
                    tx.prepare_cached(
                        "UPDATE receipts SET status = 'accepted', error = NULL, message_id = ?2, \
                         dedup_key = ?3 WHERE id = ?1",
                    )?
                    .execute(params![id, message_id, key])?;
                    super::outbox::insert(&tx, instance_id, Some(id), now_ms, notifications)?;
                    Settled::Accepted {
                        event_ids: notifications.iter().map(|n| n.id.clone()).collect(),
                    }
                }
            }
        }
    };
    tx.commit()?;
    Ok(settled)
}
