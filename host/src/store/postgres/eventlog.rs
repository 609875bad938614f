//! The outbox's reads: its depth, the event log (notifications with their
//! attempts), and the retired signing keys delivery signs with.

use deadpool_postgres::GenericClient;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::super::error::{Result, StoreError};
use super::super::outbox::Held;
use super::super::outbox::{
    DeliveryState, NotificationQuery, NotificationSource, OutboxDepth, StoredAttempt,
    StoredNotification,
};
use super::super::search::{self, Arg};
use super::super::timestamp::from_millis;
use super::error::get as col;

/// Pending and dead-lettered counts (the delivery queue's rows, and the
/// partial index of unsettled notifications).
pub(super) async fn depth(client: &impl GenericClient) -> Result<OutboxDepth> {
    let stmt = client
        .prepare_cached(
            "SELECT (SELECT count(*) FROM delivery_queue), \
                    (SELECT count(*) FROM notifications WHERE status = 'dead')",
        )
        .await?;
    let row = client.query_one(&stmt, &[]).await?;
    let count = |i| col::<i64>(&row, i).map(|n| u64::try_from(n).unwrap_or(0));
    Ok(OutboxDepth {
        pending: count(0)?,
        dead: count(1)?,
    })
}

const COLUMNS: &str = "id, instance_id, receipt_id, source, status, attempts, \
     (SELECT q.next_attempt_at FROM delivery_queue q WHERE q.notification_id = notifications.id), \
     last_status, \
     last_error, created_at, delivered_at, event_count, body, \
     (SELECT count(*) FROM delivery_attempts a WHERE a.notification_id = notifications.id), \
     filtered, \
     (SELECT delivery_paused IS NOT NULL FROM instances i WHERE i.id = notifications.instance_id)";

fn from_row(row: &Row) -> Result<StoredNotification> {
    let source: String = col(row, 3)?;
    let status: String = col(row, 4)?;
    let state = DeliveryState::parse(&status, col(row, 14)?)
        .ok_or_else(|| StoreError::corrupt(format!("notification status {status:?}")))?;
    let body: Vec<u8> = col(row, 12)?;
    let opt_time = |v: Option<i64>| v.map(from_millis).transpose();
    let small = |v: i64| u32::try_from(v).unwrap_or(u32::MAX);
    let next = col::<Option<i64>>(row, 6)?;
    // An instance being deleted may already be gone: not paused, then.
    let paused = col::<Option<bool>>(row, 15)?.unwrap_or(false);
    let held = next
        .filter(|_| state == DeliveryState::Pending)
        .and_then(|t| Held::of(t, paused));
    Ok(StoredNotification {
        id: col(row, 0)?,
        instance_id: col(row, 1)?,
        receipt_id: col(row, 2)?,
        source: if source == "polling" {
            NotificationSource::Polling
        } else {
            NotificationSource::Webhook
        },
        state,
        attempts: small(col(row, 5)?),
        total_attempts: small(col(row, 13)?),
        next_attempt_at: match next {
            Some(t) if state == DeliveryState::Pending && held.is_none() => Some(from_millis(t)?),
            _ => None,
        },
        held,
        last_status: col::<Option<i64>>(row, 7)?.and_then(|s| u16::try_from(s).ok()),
        last_error: col(row, 8)?,
        created_at: from_millis(col(row, 9)?)?,
        // A filtered one's `delivered_at` is only when it settled.
        delivered_at: match state {
            DeliveryState::Filtered => None,
            _ => opt_time(col(row, 10)?)?,
        },
        event_count: small(col(row, 11)?),
        body: body.into(),
        attempt_log: Vec::new(),
    })
}

/// A page of notifications, newest first.
pub(super) async fn list(
    client: &impl GenericClient,
    q: &NotificationQuery,
) -> Result<Vec<StoredNotification>> {
    page(client, COLUMNS, q)
        .await?
        .iter()
        .map(from_row)
        .collect()
}

/// The ids a page of the event log would list, newest first.
pub(super) async fn matching_ids(
    client: &impl GenericClient,
    q: &NotificationQuery,
) -> Result<Vec<String>> {
    page(client, "id", q)
        .await?
        .iter()
        .map(|row| col(row, 0))
        .collect()
}

/// Reads `columns` of a page of the event log.
async fn page(
    client: &impl GenericClient,
    columns: &str,
    q: &NotificationQuery,
) -> Result<Vec<Row>> {
    let (conditions, mut values) = search::conditions(q);
    values.push(Arg::Int(i64::from(q.limit)));
    let sql = numbered(&format!(
        "SELECT {columns} FROM notifications WHERE true{conditions} ORDER BY id DESC LIMIT ?"
    ));
    let args: Vec<Box<dyn ToSql + Sync + Send>> = values.into_iter().map(value).collect();
    let params: Vec<&(dyn ToSql + Sync)> = args
        .iter()
        .map(|a| a.as_ref() as &(dyn ToSql + Sync))
        .collect();
    let stmt = client.prepare_cached(&sql).await?;
    Ok(client.query(&stmt, &params).await?)
}

/// `sql` with its `?` placeholders numbered `$1`, `$2`, … (no condition
/// holds a `?` of its own: values are always bound).
pub(super) fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push_str(&format!("${n}"));
        } else {
            out.push(c);
        }
    }
    out
}

pub(super) fn value(arg: Arg) -> Box<dyn ToSql + Sync + Send> {
    match arg {
        Arg::Text(s) => Box::new(s),
        Arg::Int(n) => Box::new(n),
    }
}

/// One notification with every attempt.
pub(super) async fn get(
    client: &impl GenericClient,
    id: &str,
) -> Result<Option<StoredNotification>> {
    let sql = format!("SELECT {COLUMNS} FROM notifications WHERE id = $1");
    let Some(row) = client
        .query_opt(&client.prepare_cached(&sql).await?, &[&id])
        .await?
    else {
        return Ok(None);
    };
    let mut n = from_row(&row)?;
    let stmt = client
        .prepare_cached(
            "SELECT attempted_at, status_code, error, latency_ms, response_body \
             FROM delivery_attempts WHERE notification_id = $1 ORDER BY id",
        )
        .await?;
    for row in client.query(&stmt, &[&id]).await? {
        n.attempt_log.push(StoredAttempt {
            attempted_at: from_millis(col(&row, 0)?)?,
            status_code: col::<Option<i64>>(&row, 1)?.and_then(|s| u16::try_from(s).ok()),
            error: col(&row, 2)?,
            latency_ms: u32::try_from(col::<i64>(&row, 3)?).unwrap_or(u32::MAX),
            response_body: col::<Vec<u8>>(&row, 4)?.into(),
        });
    }
    Ok(Some(n))
}

/// Keys retired from signing for an instance that are still in their grace
/// period at `now_ms`, most recently retired first.
pub(super) async fn retired_keys(
    client: &impl GenericClient,
    instance_id: i64,
    now_ms: i64,
) -> Result<Vec<String>> {
    let stmt = client
        .prepare_cached(
            "SELECT key FROM retired_signing_keys WHERE instance_id = $1 AND expires_at > $2 \
             ORDER BY id DESC",
        )
        .await?;
    client
        .query(&stmt, &[&instance_id, &now_ms])
        .await?
        .iter()
        .map(|row| col(row, 0))
        .collect()
}
