//! The inbound log: every request vendors sent to `/events/…` with what
//! became of it, and reprocessing of failed receipts.
//!
//! Routes: `GET /instances/inbound` (every instance's, or one's with
//! `instanceId`), `GET /instances/{id}/inbound`, `GET
//! /instances/inbound/{entryId}` (one entry with its body),
//! `POST /instances/inbound/{entryId}/reprocess` (one failed receipt) and
//! `POST /instances/{id}/inbound/reprocess` (every failed receipt of the
//! instance). Lists are newest first, paged by cursor (`pageSize`,
//! `nextPage`) like the event log, filtered by `outcome` (`accepted`,
//! `failed`, `rejected`, `duplicate`, `responded`), `status` (the HTTP
//! status answered; accepted ones count as 200) and `from`/`to`.
//!
//! Management routes, authenticated like the rest of the management API,
//! but served from here, beside what they read and reprocess (the API layer
//! does not reach into ingress). Secret header values are shown as
//! `[redacted]` (the rule is in [`super::redact`]). A body is given as
//! `bodyBase64` (its bytes
//! exactly as stored) and, when it is UTF-8, as `body` too.

use axum::extract::State;
use axum::Json;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;

use super::{redact, reprocess, IngressState};
use crate::api::event_search::date;
use crate::api::extract::{Path, Query};
use crate::api::ApiError;
use crate::store::{InboundEntry, InboundOutcome, InboundQuery};

/// 404 unless instance `id` exists.
async fn require_instance(state: &IngressState, id: i64) -> Result<(), ApiError> {
    let found = state
        .store
        .get_instance(id)
        .await
        .map_err(|e| ApiError::store("reading the instance failed", &e))?;
    found
        .map(|_| ())
        .ok_or_else(|| ApiError::not_found(format!("no instance {id}")))
}

/// Largest page.
const MAX_PAGE: u32 = 500;

/// Query parameters of the inbound log; any other is refused.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListParams {
    /// Page size (default 100, at most 500).
    page_size: Option<u32>,
    /// Cursor: the `nextPage` value of the previous page.
    next_page: Option<String>,
    /// Only entries received at or after this time (RFC 3339).
    from: Option<String>,
    /// Only entries received before this time (RFC 3339).
    to: Option<String>,
    /// Only entries with this outcome.
    outcome: Option<String>,
    /// Only entries answered with this HTTP status.
    status: Option<u16>,
    /// Only this instance's (`GET /instances/inbound`).
    instance_id: Option<i64>,
}

impl ListParams {
    fn query(&self, route_instance: Option<i64>) -> Result<InboundQuery, ApiError> {
        if let (Some(route), Some(param)) = (route_instance, self.instance_id) {
            if route != param {
                return Err(ApiError::invalid_field(
                    "instanceId",
                    format!("the route is instance {route}'s inbound log"),
                ));
            }
        }
        let outcome = self
            .outcome
            .as_deref()
            .map(|o| {
                InboundOutcome::parse(&o.to_ascii_lowercase()).ok_or_else(|| {
                    ApiError::invalid_field(
                        "outcome",
                        "expected accepted, failed, rejected, duplicate or responded",
                    )
                })
            })
            .transpose()?;
        if let Some(s) = self.status.filter(|s| !(100..=599).contains(s)) {
            return Err(ApiError::invalid_field(
                "status",
                format!("{s} is not an HTTP status"),
            ));
        }
        let since = date("from", self.from.as_ref())?;
        let until = date("to", self.to.as_ref())?;
        if let (Some(from), Some(to)) = (since, until) {
            if from > to {
                return Err(ApiError::invalid_field("to", "is before from"));
            }
        }
        if let Some(cursor) = &self.next_page {
            if uuid::Uuid::parse_str(cursor).is_err() {
                return Err(ApiError::invalid_field(
                    "nextPage",
                    "not a cursor this API handed out",
                ));
            }
        }
        Ok(InboundQuery {
            instance_id: route_instance.or(self.instance_id),
            outcome,
            status: self.status,
            since,
            until,
            before: self.next_page.clone(),
            limit: self.page_size.unwrap_or(100).clamp(1, MAX_PAGE),
        })
    }
}

/// One header as shown.
#[derive(Serialize)]
struct HeaderView {
    name: String,
    value: String,
}

/// One entry as the log shows it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EntryView {
    id: String,
    instance_id: i64,
    element_key: String,
    received_date: Option<String>,
    outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    method: String,
    path: String,
    headers: Vec<HeaderView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duplicate_of: Option<String>,
    event_ids: Vec<String>,
    reprocessable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body_base64: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body_truncated: Option<bool>,
}

fn view(e: InboundEntry) -> EntryView {
    let (body, body_base64, body_truncated) = match &e.body {
        Some(b) => (
            std::str::from_utf8(b).ok().map(str::to_owned),
            Some(BASE64.encode(b)),
            Some(e.body_bytes.is_some_and(|n| n > b.len() as u64)),
        ),
        None => (None, None, None),
    };
    EntryView {
        received_date: e.received_at.format(&Rfc3339).ok(),
        outcome: e.outcome.as_str(),
        headers: redact::headers(&e.headers)
            .into_iter()
            .map(|(name, value)| HeaderView { name, value })
            .collect(),
        reprocessable: e.outcome == InboundOutcome::Failed,
        id: e.id,
        instance_id: e.instance_id,
        element_key: e.element_key,
        status: e.status,
        code: e.code,
        reason: e.reason,
        method: e.method,
        path: e.path,
        body_bytes: e.body_bytes,
        duplicate_of: e.receipt_id,
        event_ids: e.event_ids,
        body,
        body_base64,
        body_truncated,
    }
}

async fn list_for(
    state: &IngressState,
    instance_id: Option<i64>,
    p: ListParams,
) -> Result<Json<Value>, ApiError> {
    let query = p.query(instance_id)?;
    let limit = query.limit;
    let instance_id = query.instance_id;
    let entries = state
        .store
        .list_inbound(query)
        .await
        .map_err(|e| ApiError::store("listing the inbound log failed", &e))?;
    let next = (entries.len() as u32 == limit)
        .then(|| entries.last().map(|e| e.id.clone()))
        .flatten();
    let dropped = state
        .store
        .inbound_dropped(instance_id)
        .await
        .map_err(|e| ApiError::store("reading the dropped counts failed", &e))?;
    let dropped: Vec<Value> = dropped
        .iter()
        .map(|d| {
            json!({
                "instanceId": d.instance_id,
                "dropped": d.dropped,
                "lastDroppedDate": d.last_at.format(&Rfc3339).ok(),
            })
        })
        .collect();
    let entries: Vec<EntryView> = entries.into_iter().map(view).collect();
    Ok(Json(json!({
        "entries": entries,
        "nextPage": next,
        "dropped": dropped,
    })))
}

/// `GET /instances/inbound`.
pub async fn list_all(
    State(state): State<IngressState>,
    Query(p): Query<ListParams>,
) -> Result<Json<Value>, ApiError> {
    if let Some(id) = p.instance_id {
        require_instance(&state, id).await?;
    }
    list_for(&state, None, p).await
}

/// `GET /instances/{id}/inbound`.
pub async fn list_instance(
    State(state): State<IngressState>,
    Path(id): Path<i64>,
    Query(p): Query<ListParams>,
) -> Result<Json<Value>, ApiError> {
    require_instance(&state, id).await?;
    list_for(&state, Some(id), p).await
}

/// `GET /instances/inbound/{entryId}`: one entry with its body.
pub async fn get(
    State(state): State<IngressState>,
    Path(entry_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let entry = state
        .store
        .get_inbound(&entry_id)
        .await
        .map_err(|e| ApiError::store("reading the inbound entry failed", &e))?
        .ok_or_else(|| ApiError::not_found(format!("no inbound entry {entry_id}")))?;
    Ok(Json(serde_json::to_value(view(entry)).map_err(|e| {
        ApiError::internal("showing the inbound entry failed", &e)
    })?))
}

/// `POST /instances/inbound/{entryId}/reprocess`: runs one failed receipt
/// through its element's current plugin; answers what became of it.
pub async fn reprocess_one(
    State(state): State<IngressState>,
    Path(entry_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let receipt = state
        .store
        .get_receipt(&entry_id)
        .await
        .map_err(|e| ApiError::store("reading the receipt failed", &e))?
        .filter(|r| r.path.starts_with("/events/"))
        .ok_or_else(|| ApiError::not_found(format!("no receipt {entry_id}")))?;
    if receipt.error.is_none() {
        return Err(ApiError::conflict(
            "not_failed",
            format!("receipt {entry_id} is not failed: only failed receipts are reprocessed"),
        ));
    }
    let result = reprocess::one(&state, &receipt).await?;
    let result = reprocess::ReceiptResult {
        receipt_id: entry_id,
        result,
    };
    Ok(Json(serde_json::to_value(result).map_err(|e| {
        ApiError::internal("showing the result failed", &e)
    })?))
}

/// `POST /instances/{id}/inbound/reprocess`: every failed receipt of the
/// instance, oldest first; answers the counts and each one's outcome.
pub async fn reprocess_instance(
    State(state): State<IngressState>,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    require_instance(&state, id).await?;
    let summary = reprocess::all(&state, id).await?;
    let mut body = serde_json::to_value(summary)
        .map_err(|e| ApiError::internal("showing the result failed", &e))?;
    body["instanceId"] = json!(id);
    Ok(Json(body))
}
