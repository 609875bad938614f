//! The event log routes (SPEC §3): `GET /instances/{id}/events`,
//! `GET /instances/events`, `GET /instances/events/{eventId}` and
//! `GET /instances/{id}/events/{eventId}`, newest first, paginated by cursor.

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::{ApiError, ApiState};
use crate::store::{EventQuery, StoredEvent};

/// Most events one page returns.
const MAX_PAGE: u32 = 500;

/// Query parameters of the event lists.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListParams {
    /// Page size (default 100, at most 500).
    page_size: Option<u32>,
    /// Cursor: the `nextPage` value of the previous page.
    next_page: Option<String>,
    /// Only events stored at or after this time (RFC 3339).
    from: Option<String>,
    /// Only events stored before this time (RFC 3339).
    to: Option<String>,
}

fn date(name: &str, v: Option<&String>) -> Result<Option<OffsetDateTime>, ApiError> {
    v.map(|s| {
        OffsetDateTime::parse(s, &Rfc3339)
            .map_err(|e| ApiError::invalid_field(name, format!("not an RFC 3339 date: {e}")))
    })
    .transpose()
}

/// An event as the API shows it.
pub fn view(e: &StoredEvent) -> Value {
    json!({
        "id": e.id,
        "receiptId": e.receipt_id,
        "instanceId": e.instance_id,
        "elementKey": e.element_key,
        "eventType": e.event_type.as_str(),
        "objectType": e.object_type,
        "objectId": e.object_id,
        "date": e.date.format(&Rfc3339).ok(),
        "createdDate": e.created_at.format(&Rfc3339).ok(),
        "raw": e.raw,
    })
}

async fn list_for(
    state: &ApiState,
    instance_id: Option<i64>,
    p: ListParams,
) -> Result<Json<Value>, ApiError> {
    let limit = p.page_size.unwrap_or(100).clamp(1, MAX_PAGE);
    let query = EventQuery {
        instance_id,
        after: p.next_page.clone(),
        limit,
        since: date("from", p.from.as_ref())?,
        until: date("to", p.to.as_ref())?,
    };
    let events = state
        .store
        .list_events(query)
        .await
        .map_err(|e| ApiError::internal("listing events failed", &e))?;
    let next = (events.len() as u32 == limit)
        .then(|| events.last().map(|e| e.id.clone()))
        .flatten();
    Ok(Json(json!({
        "events": events.iter().map(view).collect::<Vec<_>>(),
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
    list_for(&state, Some(id), p).await
}

async fn one(
    state: &ApiState,
    instance_id: Option<i64>,
    event_id: &str,
) -> Result<Json<Value>, ApiError> {
    let event = state
        .store
        .get_event(event_id)
        .await
        .map_err(|e| ApiError::internal("reading the event failed", &e))?
        .filter(|e| instance_id.is_none_or(|id| id == e.instance_id))
        .ok_or_else(|| ApiError::not_found(format!("no event {event_id}")))?;
    Ok(Json(view(&event)))
}

/// `GET /instances/events/{eventId}`.
pub async fn get_any(
    State(state): State<ApiState>,
    Path(event_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    one(&state, None, &event_id).await
}

/// `GET /instances/{id}/events/{eventId}`.
pub async fn get_for_instance(
    State(state): State<ApiState>,
    Path((id, event_id)): Path<(i64, String)>,
) -> Result<Json<Value>, ApiError> {
    one(&state, Some(id), &event_id).await
}
