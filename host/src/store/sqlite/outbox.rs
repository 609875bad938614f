//! SQL for the outbox: notifications, delivery attempts, claims, replay and
//! pruning.

use rusqlite::{
    params, params_from_iter, Connection, OptionalExtension as _, Row, TransactionBehavior,
};

use super::super::error::{Result, StoreError};
use super::super::outbox::{
    AttemptNext, AttemptRecord, DeliveryState, Held, NewNotification, NotificationQuery,
    NotificationSource, OutboxDepth, RecordedAttempts, Redeliver, StoredAttempt,
    StoredNotification, WAITING,
};
use super::super::search::{self, Arg};
use super::super::timestamp::{from_millis, to_millis};

/// Inserts a receipt's (or poll's) notifications: due at once (claims skip
/// them while their instance's delivery is paused); filtered ones settled;
/// ordered ones in line behind the unsettled ones with the same key.
pub(super) fn insert(
    conn: &Connection,
    instance_id: i64,
    receipt_id: Option<&str>,
    now_ms: i64,
    notifications: &[NewNotification],
) -> Result<()> {
    let mut stmt = conn.prepare_cached(
        // A filtered one is settled at once: never due, pruned like a
        // delivered one.
        // An ordered one is stored waiting; `release` below lets it go if
        // it is the first of its key.
        "INSERT INTO notifications (id, instance_id, receipt_id, source, content_type, body, \
         event_count, status, attempts, next_attempt_at, created_at, delivered_at, filtered, \
         order_key) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, CASE WHEN ?9 THEN 'delivered' ELSE 'pending' END, 0, \
         CASE WHEN ?10 IS NOT NULL THEN ?11 ELSE ?8 END, ?8, CASE WHEN ?9 THEN ?8 END, ?9, ?10)",
    )?;
    let mut event = conn.prepare_cached(
        "INSERT INTO notification_events (notification_id, object_type, object_id, event_type) \
         VALUES (?1, ?2, ?3, ?4)",
    )?;
    for n in notifications {
        stmt.execute(params![
            n.id,
            instance_id,
            receipt_id,
            n.source.as_str(),
            n.content_type,
            &n.body[..],
            n.event_count,
            now_ms,
            n.filtered,
            n.order_key,
            WAITING,
        ])?;
        for e in &n.events {
            event.execute(params![n.id, e.object_type, e.object_id, e.event_type])?;
        }
    }
    let keys = notifications
        .iter()
        .filter_map(|n| Some((instance_id, n.order_key.as_deref()?)));
    super::ordering::release(conn, keys, now_ms)?;
    Ok(())
}

/// Records attempts and their consequences in one transaction. Each
/// outcome is written only where the notification still carries the
/// attempt's lease token (and the token is then cleared, so it applies
/// once); the others affect no row and are returned as stale.
pub(super) fn record_attempts(
    conn: &mut Connection,
    records: &[AttemptRecord],
) -> Result<RecordedAttempts> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut recorded = RecordedAttempts::default();
    let mut settled = Vec::new();
    {
        let mut update = tx.prepare_cached(
            "UPDATE notifications SET attempts = attempts + 1, last_status = ?2, last_error = ?3, \
             status = ?4, delivered_at = ?6, lease_token = NULL, \
             next_attempt_at = coalesce(?5, next_attempt_at) \
             WHERE id = ?1 AND lease_token = ?7 \
             RETURNING instance_id, order_key",
        )?;
        let mut attempt = tx.prepare_cached(
            "INSERT INTO delivery_attempts (notification_id, attempted_at, status_code, error, \
             latency_ms, response_body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for r in records {
            let at = to_millis(r.attempted_at);
            let (state, next, delivered) = r.outcome_columns();
            let applied = update
                .query_row(
                    params![
                        r.notification_id,
                        r.status_code,
                        r.error,
                        state.as_str(),
                        next,
                        delivered,
                        r.lease,
                    ],
                    |row| Ok((row.get::<_, i64>(0)?, row.get::<_, Option<String>>(1)?)),
                )
                .optional()?;
            let Some((instance, key)) = applied else {
                recorded.stale.push(r.notification_id.clone());
                continue;
            };
            // A settled ordered notification lets the next of its key go.
            if let (Some(key), AttemptNext::Delivered | AttemptNext::Dead) = (key, &r.next) {
                settled.push((instance, key));
            }
            attempt.execute(params![
                r.notification_id,
                at,
                r.status_code,
                r.error,
                r.latency_ms,
                &r.response_body[..]
            ])?;
            recorded.applied += 1;
        }
    }
    let now = to_millis(time::OffsetDateTime::now_utc());
    recorded.released =
        super::ordering::release(&tx, settled.iter().map(|(i, k)| (*i, k.as_str())), now)? as u64;
    tx.commit()?;
    Ok(recorded)
}

/// Makes notifications due again now with a fresh attempt cycle, ordered
/// ones back in line behind the unsettled ones of their key; returns how
/// many.
pub(super) fn redeliver(conn: &Connection, target: &Redeliver, now_ms: i64) -> Result<u64> {
    let changed: Vec<String> = match target {
        Redeliver::One(id) => again(conn, std::slice::from_ref(id), now_ms)?,
        Redeliver::DeadOf(instance) => conn
            .prepare_cached(
                "UPDATE notifications SET status = 'pending', attempts = 0, next_attempt_at = ?2, \
                 lease_token = NULL WHERE instance_id = ?1 AND status = 'dead' RETURNING id",
            )?
            .query_map(params![instance, now_ms], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?,
        Redeliver::Ids(ids) => again(conn, ids, now_ms)?,
    };
    super::ordering::requeue(conn, &changed, now_ms)?;
    Ok(changed.len() as u64)
}

/// Makes `ids` pending and due at `now_ms` with a fresh attempt cycle,
/// whatever their state; returns those that exist.
fn again(conn: &Connection, ids: &[String], now_ms: i64) -> Result<Vec<String>> {
    let mut one = conn.prepare_cached(
        "UPDATE notifications SET status = 'pending', attempts = 0, next_attempt_at = ?2, \
         delivered_at = NULL, lease_token = NULL, filtered = 0 WHERE id = ?1",
    )?;
    let mut changed = Vec::with_capacity(ids.len());
    for id in ids {
        if one.execute(params![id, now_ms])? > 0 {
            changed.push(id.clone());
        }
    }
    Ok(changed)
}

/// Deletes at most `limit` notifications delivered before `before_ms`;
/// returns how many. A notification is delivered after it was created, and
/// ids are UUIDv7, so the scan stays within the ids created before then.
pub(super) fn prune_delivered(conn: &Connection, before_ms: i64, limit: usize) -> Result<u64> {
    let n = conn
        .prepare_cached(
            "DELETE FROM notifications WHERE rowid IN (SELECT rowid FROM notifications \
             WHERE status = 'delivered' AND id < ?3 AND delivered_at < ?1 LIMIT ?2)",
        )?
        .execute(params![
            before_ms,
            i64::try_from(limit).unwrap_or(i64::MAX),
            super::super::ids::id_floor(before_ms)
        ])?;
    Ok(n as u64)
}

/// Pending and dead counts.
pub(super) fn depth(conn: &Connection) -> Result<OutboxDepth> {
    let count = |state: &str| -> Result<u64> {
        Ok(conn
            .prepare_cached("SELECT count(*) FROM notifications WHERE status = ?1")?
            .query_row([state], |r| r.get::<_, i64>(0))? as u64)
    };
    Ok(OutboxDepth {
        pending: count("pending")?,
        dead: count("dead")?,
    })
}

const COLUMNS: &str =
    "id, instance_id, receipt_id, source, status, attempts, next_attempt_at, last_status, \
     last_error, created_at, delivered_at, event_count, body, \
     (SELECT count(*) FROM delivery_attempts a WHERE a.notification_id = notifications.id), \
     filtered, \
     (SELECT delivery_paused IS NOT NULL FROM instances i WHERE i.id = notifications.instance_id)";

fn from_row(row: &Row<'_>) -> Result<StoredNotification> {
    let source: String = row.get(3)?;
    let status: String = row.get(4)?;
    let state = DeliveryState::parse(&status, row.get(14)?)
        .ok_or_else(|| StoreError::corrupt(format!("notification status {status:?}")))?;
    let body: Vec<u8> = row.get(12)?;
    let opt_time = |v: Option<i64>| v.map(from_millis).transpose();
    let next = row.get::<_, Option<i64>>(6)?;
    // An instance being deleted may already be gone: not paused, then.
    let paused = row.get::<_, Option<bool>>(15)?.unwrap_or(false);
    let held = next
        .filter(|_| state == DeliveryState::Pending)
        .and_then(|t| Held::of(t, paused));
    Ok(StoredNotification {
        id: row.get(0)?,
        instance_id: row.get(1)?,
        receipt_id: row.get(2)?,
        source: if source == "polling" {
            NotificationSource::Polling
        } else {
            NotificationSource::Webhook
        },
        state,
        attempts: row.get(5)?,
        total_attempts: row.get(13)?,
        next_attempt_at: match next {
            Some(t) if state == DeliveryState::Pending && held.is_none() => Some(from_millis(t)?),
            _ => None,
        },
        held,
        last_status: row.get(7)?,
        last_error: row.get(8)?,
        created_at: from_millis(row.get(9)?)?,
        // A filtered one's `delivered_at` is only when it settled.
        delivered_at: match state {
            DeliveryState::Filtered => None,
            _ => opt_time(row.get(10)?)?,
        },
        event_count: row.get(11)?,
        body: body.into(),
        attempt_log: Vec::new(),
    })
}

/// A page of notifications, newest first.
pub(super) fn list(conn: &Connection, q: &NotificationQuery) -> Result<Vec<StoredNotification>> {
    let (sql, args) = page(COLUMNS, q);
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params_from_iter(args))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(from_row(row)?);
    }
    Ok(out)
}

/// The ids a page of the event log would list, newest first.
pub(super) fn matching_ids(conn: &Connection, q: &NotificationQuery) -> Result<Vec<String>> {
    let (sql, args) = page("id", q);
    let ids = conn
        .prepare_cached(&sql)?
        .query_map(params_from_iter(args), |row| row.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(ids)
}

/// The statement reading `columns` of a page of the event log, and its values.
fn page(columns: &str, q: &NotificationQuery) -> (String, Vec<rusqlite::types::Value>) {
    let (conditions, values) = search::conditions(q);
    let sql = format!(
        "SELECT {columns} FROM notifications WHERE true{conditions} ORDER BY id DESC LIMIT ?"
    );
    let mut args: Vec<rusqlite::types::Value> = values.into_iter().map(value).collect();
    args.push(i64::from(q.limit).into());
    (sql, args)
}

fn value(arg: Arg) -> rusqlite::types::Value {
    match arg {
        Arg::Text(s) => s.into(),
        Arg::Int(n) => n.into(),
    }
}

/// One notification with every attempt.
pub(super) fn get(conn: &Connection, id: &str) -> Result<Option<StoredNotification>> {
    let sql = format!("SELECT {COLUMNS} FROM notifications WHERE id = ?1");
    let Some(mut n) = conn
        .prepare_cached(&sql)?
        .query_row([id], |row| Ok(from_row(row)))
        .optional()?
        .transpose()?
    else {
        return Ok(None);
    };
    let mut stmt = conn.prepare_cached(
        "SELECT attempted_at, status_code, error, latency_ms, response_body \
         FROM delivery_attempts WHERE notification_id = ?1 ORDER BY id",
    )?;
    let mut rows = stmt.query([id])?;
    while let Some(row) = rows.next()? {
        n.attempt_log.push(StoredAttempt {
            attempted_at: from_millis(row.get(0)?)?,
            status_code: row.get(1)?,
            error: row.get(2)?,
            latency_ms: row.get(3)?,
            response_body: row.get::<_, Vec<u8>>(4)?.into(),
        });
    }
    Ok(Some(n))
}

/// Keys retired from signing for an instance that are still in their grace
/// period at `now_ms`, most recently retired first.
pub(super) fn retired_keys(
    conn: &Connection,
    instance_id: i64,
    now_ms: i64,
) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT key FROM retired_signing_keys WHERE instance_id = ?1 AND expires_at > ?2 \
         ORDER BY rowid DESC",
    )?;
    let keys = stmt
        .query_map(params![instance_id, now_ms], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(keys)
}
