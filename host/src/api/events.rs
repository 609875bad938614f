//! The event log (SPEC §3): every notification plugboard accepted, with its
//! delivery status and attempts, and replay.
//!
//! Routes: `GET /instances/{id}/events`, `GET /instances/events` (filter by
//! `status` and date, paginated by cursor), `GET /instances/events/{eventId}`,
//! `GET /instances/{id}/events/{eventId}`, and
//! `POST /instances/events/{eventId}/redeliver`,
//! `POST /instances/{id}/events/redeliver` (every dead-lettered one).
//!
//! Statuses: `RECEIVED` (stored, not yet attempted), `DISPATCHED` (attempted,
//! waiting for a retry), `NOTIFIED` (a receiver answered 2xx) and `FAILED`
//! (dead-lettered after the last attempt).
//!
//! Attempts: a delivery cycle starts when the notification is stored and
//! again at each redelivery. `cycleAttempts` counts the attempts of the
//! current cycle (what the retry schedule goes by; `attempts` is the same
//! number, kept for existing clients), `totalAttempts` those of every cycle
//! — as many as `attemptLog` lists, whose last `cycleAttempts` entries are
//! the current cycle's.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::extract::{Path, Query};
use super::{ApiError, ApiState};
use crate::store::{DeliveryState, NotificationQuery, Redeliver, StoredNotification};

/// Most entries one page returns.
const MAX_PAGE: u32 = 500;

/// Query parameters of the event log; any other is refused.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListParams {
    /// Page size (default 100, at most 500).
    page_size: Option<u32>,
    /// Cursor: the `nextPage` value of the previous page.
    next_page: Option<String>,
    /// Only entries stored at or after this time (RFC 3339).
    from: Option<String>,
    /// Only entries stored before this time (RFC 3339).
    to: Option<String>,
    /// Only entries in this status.
    status: Option<String>,
}

fn date(name: &str, v: Option<&String>) -> Result<Option<OffsetDateTime>, ApiError> {
    v.map(|s| {
        OffsetDateTime::parse(s, &Rfc3339)
            .map_err(|e| ApiError::invalid_field(name, format!("not an RFC 3339 date: {e}")))
    })
    .transpose()
}

/// The log status of a notification.
pub fn status_of(n: &StoredNotification) -> &'static str {
    match n.state {
        DeliveryState::Pending if n.attempts == 0 => "RECEIVED",
        DeliveryState::Pending => "DISPATCHED",
        DeliveryState::Delivered => "NOTIFIED",
        DeliveryState::Dead => "FAILED",
    }
}

fn rfc3339(t: Option<OffsetDateTime>) -> Value {
    t.and_then(|t| t.format(&Rfc3339).ok())
        .map_or(Value::Null, Value::String)
}

/// A log entry as the API shows it.
pub fn view(n: &StoredNotification) -> Value {
    let message = n
        .body
        .get("message")
        .or_else(|| n.body.get("data"))
        .unwrap_or(&Value::Null);
    let mut v = json!({
        "eventId": n.id,
        "instanceId": n.instance_id,
        "elementKey": message.get("elementKey"),
        "status": status_of(n),
        "source": n.source.as_str(),
        "attempts": n.attempts,
        "cycleAttempts": n.attempts,
        "totalAttempts": n.total_attempts,
        "nextAttemptDate": rfc3339(n.next_attempt_at),
        "lastStatusCode": n.last_status,
        "lastError": n.last_error,
        "createdDate": rfc3339(Some(n.created_at)),
        "deliveredDate": rfc3339(n.delivered_at),
        "events": message.get("events"),
        "receiptId": n.receipt_id,
    });
    if !n.attempt_log.is_empty() {
        v["attemptLog"] = n
            .attempt_log
            .iter()
            .map(|a| {
                json!({
                    "date": rfc3339(Some(a.attempted_at)),
                    "statusCode": a.status_code,
                    "error": a.error,
                    "latencyMs": a.latency_ms,
                })
            })
            .collect();
    }
    v
}

fn parse_status(s: &str) -> Result<(DeliveryState, Option<bool>), ApiError> {
    Ok(match s.to_ascii_uppercase().as_str() {
        "RECEIVED" => (DeliveryState::Pending, Some(false)),
        "DISPATCHED" => (DeliveryState::Pending, Some(true)),
        "NOTIFIED" => (DeliveryState::Delivered, None),
        "FAILED" => (DeliveryState::Dead, None),
        _ => {
            return Err(ApiError::invalid_field(
                "status",
                "expected RECEIVED, DISPATCHED, NOTIFIED or FAILED",
            ))
        }
    })
}

async fn list_for(
    state: &ApiState,
    instance_id: Option<i64>,
    p: ListParams,
) -> Result<Json<Value>, ApiError> {
    let limit = p.page_size.unwrap_or(100).clamp(1, MAX_PAGE);
    let (status, attempted) = match p.status.as_deref() {
        Some(s) => {
            let (st, at) = parse_status(s)?;
            (Some(st), at)
        }
        None => (None, None),
    };
    let query = NotificationQuery {
        instance_id,
        state: status,
        attempted,
        after: p.next_page.clone(),
        limit,
        since: date("from", p.from.as_ref())?,
        until: date("to", p.to.as_ref())?,
    };
    let entries = state
        .store
        .list_notifications(query)
        .await
        .map_err(|e| ApiError::store("listing events failed", &e))?;
    let next = (entries.len() as u32 == limit)
        .then(|| entries.last().map(|e| e.id.clone()))
        .flatten();
    Ok(Json(json!({
        "events": entries.iter().map(view).collect::<Vec<_>>(),
        "nextPage": next,
    })))
}

/// `GET /instances/events`.
pub async fn list_all(
    State(state): State<ApiState>,
    Query(p): Query<ListParams>,
) -> Result<Json<Value>, ApiError> {
    list_for(&state, None, p).await
}

/// `GET /instances/{id}/events`.
pub async fn list_instance(
    State(state): State<ApiState>,
    Path(id): Path<i64>,
    Query(p): Query<ListParams>,
) -> Result<Json<Value>, ApiError> {
    super::instances::require(&state, id).await?;
    list_for(&state, Some(id), p).await
}

async fn one(
    state: &ApiState,
    instance_id: Option<i64>,
    event_id: &str,
) -> Result<StoredNotification, ApiError> {
    state
        .store
        .get_notification(event_id)
        .await
        .map_err(|e| ApiError::store("reading the event failed", &e))?
        .filter(|n| instance_id.is_none_or(|id| id == n.instance_id))
        .ok_or_else(|| ApiError::not_found(format!("no event {event_id}")))
}

fn detail(n: &StoredNotification) -> Value {
    let mut v = view(n);
    v["notification"] = n.body.clone();
    v
}

/// `GET /instances/events/{eventId}`.
pub async fn get_any(
    State(state): State<ApiState>,
    Path(event_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(detail(&one(&state, None, &event_id).await?)))
}

/// `GET /instances/{id}/events/{eventId}`.
pub async fn get_for_instance(
    State(state): State<ApiState>,
    Path((id, event_id)): Path<(i64, String)>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(detail(&one(&state, Some(id), &event_id).await?)))
}

/// `POST /instances/events/{eventId}/redeliver`: send it again, same eventId.
pub async fn redeliver_one(
    State(state): State<ApiState>,
    Path(event_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    one(&state, None, &event_id).await?;
    let n = state
        .store
        .redeliver(Redeliver::One(event_id.clone()))
        .await
        .map_err(|e| ApiError::store("scheduling the redelivery failed", &e))?;
    state.delivery.wake();
    Ok(Json(json!({"eventId": event_id, "scheduled": n})))
}

/// `POST /instances/{id}/events/redeliver`: every dead-lettered notification of the instance.
pub async fn redeliver_dead(
    State(state): State<ApiState>,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    super::instances::require(&state, id).await?;
    let n = state
        .store
        .redeliver(Redeliver::DeadOf(id))
        .await
        .map_err(|e| ApiError::store("scheduling the redelivery failed", &e))?;
    state.delivery.wake();
    Ok(Json(json!({"instanceId": id, "scheduled": n})))
}
