//! Webhook ingress: vendors call plugboard, the instance's element plugin
//! verifies and maps the request, and the receipt and its normalized events
//! are stored durably *before* the vendor gets its 2xx.
//!
//! Routes (SPEC §2): `POST /events/{elementKey}/{base64(instanceId)}` and
//! `POST /events/{elementKey}` with an `Element-Instances: <id>` header.
//! Statuses: unknown element or instance 404; events disabled 409; body over
//! the limit 413 (without reading the rest); plugin answers map through
//! [`crate::api::ApiError`]; a plugin trap, timeout or memory blow-up is a
//! 5xx and the raw receipt is stored as `failed` with the error (pruning
//! leaves it in place; [`reprocess`] runs it through the current plugin
//! again); while the element's circuit breaker is open the plugin does not
//! run, the answer is 503 with `Retry-After` and no receipt is stored (the
//! vendor retries).
//!
//! Every request addressed to an instance is in the inbound log: a receipt
//! is its own entry; any other outcome (rejected, duplicate, a plugin's own
//! answer) is queued to [`log`], which writes such entries in batches off
//! the request's path, bounded by caps and a retention. The log is listed
//! and failed receipts reprocessed through [`inbound_routes`] (management
//! routes, authenticated).

pub mod inbound_routes;
pub mod log;
pub mod redact;
pub mod reprocess;
mod request;
mod seen;
mod verdict;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::api::extract::Path;
use crate::api::ApiError;
use crate::delivery::Delivery;
use crate::instance::cache::InstanceCache;
use crate::instance::{decode_instance_id, INSTANCE_HEADER};
use crate::registry::Registry;
use crate::store::{InboundOutcome, NewReceipt, ReceiptOutcome, ReceiptStatus, Store};
use crate::telemetry::metrics;
pub use log::{InboundLog, InboundLogConfig};
use seen::{Refusal, Seen};
use verdict::Verdict;

/// Webhook ingress limits.
#[derive(Clone, Debug)]
pub struct IngressConfig {
    /// Largest accepted body in bytes; larger requests get 413.
    pub max_body_bytes: usize,
    /// Window within which a repeated vendor message id is not stored twice.
    pub dedup_window: Duration,
    /// Time a request body has to arrive in full.
    pub body_read_timeout: Duration,
    /// The inbound log's bounds.
    pub log: InboundLogConfig,
}

/// What the ingress handlers share.
#[derive(Clone)]
pub struct IngressState {
    /// Loaded plugins.
    pub registry: Arc<Registry>,
    /// Durable store.
    pub store: Store,
    /// Instances with their parsed settings, cached.
    pub instances: InstanceCache,
    /// Limits.
    pub config: Arc<IngressConfig>,
    /// Woken when new notifications are stored.
    pub delivery: Delivery,
    /// Where requests that leave no receipt are recorded.
    pub log: InboundLog,
}

/// The inbound log's management routes ([`inbound_routes`]), authenticated
/// with the management credentials like the rest of the management API.
pub fn management_router(
    state: IngressState,
    credentials: Arc<crate::api::auth::Credentials>,
) -> Router {
    Router::new()
        .route("/instances/inbound", get(inbound_routes::list_all))
        .route("/instances/inbound/{entry_id}", get(inbound_routes::get))
        .route(
            "/instances/inbound/{entry_id}/reprocess",
            post(inbound_routes::reprocess_one),
        )
        .route(
            "/instances/{id}/inbound",
            get(inbound_routes::list_instance),
        )
        .route(
            "/instances/{id}/inbound/reprocess",
            post(inbound_routes::reprocess_instance),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            credentials,
            crate::api::auth::require,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(
            crate::api::MAX_MANAGEMENT_BODY_BYTES,
        ))
        .with_state(state)
}

/// The vendor-facing routes.
pub fn router(state: IngressState) -> Router {
    Router::new()
        .route("/events/{element}/{instance}", post(by_path))
        .route("/events/{element}", post(by_header))
        .with_state(state)
}

async fn by_path(
    State(state): State<IngressState>,
    Path((element, encoded)): Path<(String, String)>,
    request: Request,
) -> Response {
    let id = decode_instance_id(&encoded);
    serve(&state, &element, id, request).await
}

async fn by_header(
    State(state): State<IngressState>,
    Path(element): Path<String>,
    request: Request,
) -> Response {
    let id = request
        .headers()
        .get(INSTANCE_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok());
    serve(&state, &element, id, request).await
}

/// Handles a request, records it in the inbound log unless it left a
/// receipt (which is its entry), and answers.
async fn serve(state: &IngressState, element: &str, id: Option<i64>, request: Request) -> Response {
    let mut seen = Seen::new(&request);
    let result = handle(state, element, id, request, &mut seen).await;
    let response = respond(state, element, result);
    if let (Some(instance_id), false) = (id, seen.receipt) {
        state.log.record(seen.entry(
            state.log.config().body_bytes,
            instance_id,
            element,
            &response,
        ));
    }
    response
}

/// The response, counted in the webhook metrics under the element's key
/// (`unknown` for keys no loaded plugin serves, so labels stay bounded).
fn respond(state: &IngressState, element: &str, result: Result<Response, ApiError>) -> Response {
    let response = result.unwrap_or_else(|e| {
        let (code, message) = (e.code, e.message.clone());
        let mut response = e.into_response();
        response.extensions_mut().insert(Refusal { code, message });
        response
    });
    let key = state
        .registry
        .get(element)
        .map(|p| p.plugin.description().key.clone());
    metrics::webhook(
        key.as_deref().unwrap_or("unknown"),
        response.status().as_u16(),
    );
    response
}

#[tracing::instrument(skip_all, fields(element = %element_key, instance = ?instance_id))]
async fn handle(
    state: &IngressState,
    element_key: &str,
    instance_id: Option<i64>,
    request: Request,
    seen: &mut Seen,
) -> Result<Response, ApiError> {
    let received_at = seen.received_at;
    let loaded = state.registry.get(element_key).ok_or_else(|| {
        ApiError::not_found(format!("no element plugin '{element_key}' is loaded"))
    })?;
    let id = instance_id.ok_or_else(|| {
        ApiError::not_found(
            "no instance given: use /events/{element}/{base64(id)} or an Element-Instances header",
        )
    })?;
    let instance = state
        .instances
        .get(
            loaded.plugin.description(),
            loaded.plugin.content_hash(),
            id,
        )
        .await
        .map_err(|e| ApiError::store("reading the instance failed", &e))?
        .filter(|i| loaded.plugin.description().key == i.configured.instance.element_key)
        .ok_or_else(|| ApiError::not_found(format!("no {element_key} instance {id}")))?;
    let settings = &instance.configured.settings;
    if !settings.enabled {
        return Err(ApiError::conflict(
            "events_disabled",
            format!("events are disabled for instance {id}"),
        ));
    }
    let (parts, body) = request.into_parts();
    let body = request::read_body(
        &parts.headers,
        body,
        state.config.max_body_bytes,
        state.config.body_read_timeout,
    )
    .await?;
    seen.body = Some(body.clone());
    let headers = request::vendor_header_pairs(&parts);
    let http_request = request::to_plugin(&parts, &headers, &body);
    let receipt = NewReceipt {
        instance_id: id,
        element_key: instance.configured.instance.element_key.clone(),
        received_at,
        message_id: None,
        dedup_window: state.config.dedup_window,
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        headers,
        body: body.clone(),
        outcome: ReceiptStatus::Failed {
            error: String::new(),
        },
    };
    match verdict::run(&loaded, &instance, &http_request, &body, received_at).await {
        Verdict::Respond(r) => {
            seen.outcome = InboundOutcome::Responded;
            Ok(request::from_plugin(r))
        }
        Verdict::Accepted {
            message_id,
            outcome,
        } => {
            seen.receipt = true;
            let receipt = NewReceipt {
                message_id,
                outcome,
                ..receipt
            };
            store_receipt(state, receipt, seen).await
        }
        Verdict::Failed { error, answer } => {
            keep_failed(state, receipt, error).await?;
            seen.receipt = true;
            Err(answer)
        }
        Verdict::Refused(e) => Err(e),
    }
}

/// Stores a receipt the plugin could not process as `failed`, with the error.
async fn keep_failed(
    state: &IngressState,
    mut receipt: NewReceipt,
    error: String,
) -> Result<(), ApiError> {
    receipt.outcome = ReceiptStatus::Failed { error };
    state
        .store
        .record_receipt(receipt)
        .await
        .map(|_| ())
        .map_err(|e| ApiError::store("storing the failed receipt failed", &e))
}

async fn store_receipt(
    state: &IngressState,
    receipt: NewReceipt,
    seen: &mut Seen,
) -> Result<Response, ApiError> {
    let notification_ids: Vec<String> = match &receipt.outcome {
        ReceiptStatus::Accepted { notifications, .. } => {
            notifications.iter().map(|n| n.id.clone()).collect()
        }
        ReceiptStatus::Failed { .. } => Vec::new(),
    };
    let outcome = state
        .store
        .record_receipt(receipt)
        .await
        .map_err(|e| ApiError::store("storing the receipt failed", &e))?;
    let body = match outcome {
        ReceiptOutcome::Stored { receipt_id } => {
            tracing::debug!(receipt = %receipt_id, event_ids = ?notification_ids, "receipt stored");
            if !notification_ids.is_empty() {
                state.delivery.wake();
            }
            serde_json::json!({"receiptId": receipt_id, "eventIds": notification_ids, "duplicate": false})
        }
        ReceiptOutcome::Duplicate { receipt_id } => {
            tracing::debug!(receipt = %receipt_id, "duplicate vendor message acknowledged");
            seen.receipt = false;
            seen.outcome = InboundOutcome::Duplicate;
            seen.receipt_id = Some(receipt_id.clone());
            serde_json::json!({"receiptId": receipt_id, "eventIds": [], "duplicate": true})
        }
    };
    Ok((StatusCode::OK, Json(body)).into_response())
}
