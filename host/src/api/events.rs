//! The event log (SPEC §3): every notification plugboard accepted, with its
//! delivery status and attempts, and replay.
//!
//! Routes: `GET /instances/{id}/events`, `GET /instances/events` (searched
//! by the parameters of [`super::event_search`], paginated by cursor),
//! `GET /instances/events/{eventId}`, `GET /instances/{id}/events/{eventId}`,
//! and `POST /instances/events/{eventId}/redeliver`,
//! `POST /instances/{id}/events/redeliver` (every dead-lettered one),
//! `POST /instances/events/redeliver?…` (every one a search finds).
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
use axum::response::{IntoResponse as _, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::event_search::ListParams;
use super::extract::{Path, Query};
use super::{ApiError, ApiState};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

use crate::store::{DeliveryState, Redeliver, StoredAttempt, StoredNotification};

/// The log status of a notification.
pub fn status_of(n: &StoredNotification) -> &'static str {
    match n.state {
        DeliveryState::Pending if n.attempts == 0 => "RECEIVED",
        DeliveryState::Pending => "DISPATCHED",
        DeliveryState::Delivered => "NOTIFIED",
        DeliveryState::Dead => "FAILED",
        DeliveryState::Filtered => "FILTERED",
    }
}

fn rfc3339(t: Option<OffsetDateTime>) -> Option<String> {
    t.and_then(|t| t.format(&Rfc3339).ok())
}

/// The parts of a stored body the log lists: the element and the
/// normalized events, from `message` (Cloud Elements) or `data`
/// (CloudEvents). Everything else, the vendor's `raw` above all, is skipped
/// unparsed, so a body holding JSON that parses only as text (a lone
/// surrogate escape, a number beyond any machine type, any depth) is
/// listed like every other.
#[derive(Default, Deserialize)]
struct Envelope {
    message: Option<Message>,
    data: Option<Message>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Message {
    element_key: Option<Value>,
    events: Option<Value>,
}

/// One recorded attempt as the log shows it. The receiver's answer (its
/// first bytes, as kept) is `responseBody` when it is UTF-8 text, else
/// `responseBodyBase64`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AttemptView<'a> {
    date: Option<String>,
    status_code: Option<u16>,
    error: Option<&'a str>,
    latency_ms: u32,
    #[serde(flatten)]
    answer: AnswerBody<'a>,
}

/// The first bytes of a receiver's answer: `responseBody` when they are
/// UTF-8 text, else `responseBodyBase64`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct AnswerBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    response_body: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_body_base64: Option<String>,
}

impl<'a> AnswerBody<'a> {
    pub(super) fn of(bytes: &'a [u8]) -> Self {
        let text = std::str::from_utf8(bytes).ok();
        Self {
            response_body: text,
            response_body_base64: text.is_none().then(|| BASE64.encode(bytes)),
        }
    }
}

impl<'a> AttemptView<'a> {
    fn of(a: &'a StoredAttempt) -> Self {
        AttemptView {
            date: rfc3339(Some(a.attempted_at)),
            status_code: a.status_code,
            error: a.error.as_deref(),
            latency_ms: a.latency_ms,
            answer: AnswerBody::of(&a.response_body),
        }
    }
}

/// A log entry as the API shows it; `notification` (the body, exactly as
/// stored and sent) only in the detail of one entry.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EntryView<'a> {
    event_id: &'a str,
    instance_id: i64,
    element_key: Option<Value>,
    status: &'static str,
    source: &'static str,
    attempts: u32,
    cycle_attempts: u32,
    total_attempts: u32,
    next_attempt_date: Option<String>,
    /// Why a pending one is not due yet: `waiting` (ordered delivery: an
    /// earlier one about its object comes first) or `paused`.
    #[serde(skip_serializing_if = "Option::is_none")]
    held: Option<&'static str>,
    last_status_code: Option<u16>,
    last_error: Option<&'a str>,
    created_date: Option<String>,
    delivered_date: Option<String>,
    events: Option<Value>,
    receipt_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    attempt_log: Vec<AttemptView<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    notification: Option<Box<RawValue>>,
}

/// A log entry as the API shows it.
pub fn view(n: &StoredNotification) -> EntryView<'_> {
    let envelope: Envelope = serde_json::from_slice(&n.body).unwrap_or_default();
    let message = envelope.message.or(envelope.data);
    let (element_key, events) = message.map_or((None, None), |m| (m.element_key, m.events));
    EntryView {
        event_id: &n.id,
        instance_id: n.instance_id,
        element_key,
        status: status_of(n),
        source: n.source.as_str(),
        attempts: n.attempts,
        cycle_attempts: n.attempts,
        total_attempts: n.total_attempts,
        next_attempt_date: rfc3339(n.next_attempt_at),
        held: n.held.map(|h| h.as_str()),
        last_status_code: n.last_status,
        last_error: n.last_error.as_deref(),
        created_date: rfc3339(Some(n.created_at)),
        delivered_date: rfc3339(n.delivered_at),
        events,
        receipt_id: n.receipt_id.as_deref(),
        attempt_log: n.attempt_log.iter().map(AttemptView::of).collect(),
        notification: None,
    }
}

/// The stored body as JSON text to embed as it is: byte for byte what the
/// receiver gets. Bodies are JSON built by the host, so the fallback (the
/// bytes as a JSON string) is there only so that whatever was stored can
/// always be shown.
fn body_json(body: &[u8]) -> Box<RawValue> {
    std::str::from_utf8(body)
        .ok()
        .and_then(|text| RawValue::from_string(text.to_owned()).ok())
        .unwrap_or_else(|| {
            let text = String::from_utf8_lossy(body).into_owned();
            serde_json::value::to_raw_value(&text).expect("a string serializes")
        })
}

/// One page of the log.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EntryPage<'a> {
    events: Vec<EntryView<'a>>,
    next_page: Option<String>,
}

async fn list_for(
    state: &ApiState,
    instance_id: Option<i64>,
    p: ListParams,
) -> Result<Response, ApiError> {
    let query = p.page(instance_id)?;
    let limit = query.limit;
    let entries = state
        .store
        .list_notifications(query)
        .await
        .map_err(|e| ApiError::store("listing events failed", &e))?;
    let next = (entries.len() as u32 == limit)
        .then(|| entries.last().map(|e| e.id.clone()))
        .flatten();
    Ok(Json(EntryPage {
        events: entries.iter().map(view).collect(),
        next_page: next,
    })
    .into_response())
}

/// `GET /instances/events`.
pub async fn list_all(
    State(state): State<ApiState>,
    Query(p): Query<ListParams>,
) -> Result<Response, ApiError> {
    list_for(&state, None, p).await
}

/// `GET /instances/{id}/events`.
pub async fn list_instance(
    State(state): State<ApiState>,
    Path(id): Path<i64>,
    Query(p): Query<ListParams>,
) -> Result<Response, ApiError> {
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

fn detail(n: &StoredNotification) -> Json<EntryView<'_>> {
    Json(EntryView {
        notification: Some(body_json(&n.body)),
        ..view(n)
    })
}

/// `GET /instances/events/{eventId}`.
pub async fn get_any(
    State(state): State<ApiState>,
    Path(event_id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(detail(&one(&state, None, &event_id).await?).into_response())
}

/// `GET /instances/{id}/events/{eventId}`.
pub async fn get_for_instance(
    State(state): State<ApiState>,
    Path((id, event_id)): Path<(i64, String)>,
) -> Result<Response, ApiError> {
    Ok(detail(&one(&state, Some(id), &event_id).await?).into_response())
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

/// `POST /instances/events/redeliver?…`: a new delivery of every
/// notification the search finds (the list routes' parameters, at least
/// one), whatever its state, queued in chunks; answers how many.
pub async fn redeliver_matching(
    State(state): State<ApiState>,
    Query(p): Query<ListParams>,
) -> Result<Json<Value>, ApiError> {
    let query = p.everything()?;
    if let Some(id) = query.instance_id {
        super::instances::require(&state, id).await?;
    }
    let n = state
        .store
        .redeliver_matching(query)
        .await
        .map_err(|e| ApiError::store("scheduling the redelivery failed", &e))?;
    state.delivery.wake();
    Ok(Json(json!({"scheduled": n})))
}
