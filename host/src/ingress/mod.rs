//! Webhook ingress: vendors call plugboard, the instance's element plugin
//! verifies and maps the request, and the receipt and its normalized events
//! are stored durably *before* the vendor gets its 2xx.
//!
//! Routes (SPEC §2): `POST /events/{elementKey}/{base64(instanceId)}` and
//! `POST /events/{elementKey}` with an `Element-Instances: <id>` header.
//! Statuses: unknown element or instance 404; events disabled 409; body over
//! the limit 413 (without reading the rest); plugin answers map through
//! [`crate::api::ApiError`]; a plugin trap, timeout or memory blow-up is a
//! 5xx and the raw receipt is stored as `failed` with the error (no route
//! reads failed receipts back yet; pruning leaves them in place); while the
//! element's circuit breaker is open the plugin does not run, the answer is
//! 503 with `Retry-After` and nothing is stored (the vendor retries).

mod request;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use time::OffsetDateTime;

use crate::accept::{self, InstanceInfo, Recipient};
use crate::api::extract::Path;
use crate::api::ApiError;
use crate::delivery::Delivery;
use crate::instance::cache::InstanceCache;
use crate::instance::{decode_instance_id, INSTANCE_HEADER};
use crate::registry::Registry;
use crate::runtime::{CallError, CallLabel, WebhookOutcome};

use crate::store::{NewReceipt, ReceiptOutcome, ReceiptStatus, Store};
use crate::telemetry::metrics;

/// Webhook ingress limits.
#[derive(Clone, Debug)]
pub struct IngressConfig {
    /// Largest accepted body in bytes; larger requests get 413.
    pub max_body_bytes: usize,
    /// Window within which a repeated vendor message id is not stored twice.
    pub dedup_window: Duration,
    /// Time a request body has to arrive in full.
    pub body_read_timeout: Duration,
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
    respond(
        &state,
        &element,
        handle(&state, &element, id, request).await,
    )
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
    respond(
        &state,
        &element,
        handle(&state, &element, id, request).await,
    )
}

/// The response, counted in the webhook metrics under the element's key
/// (`unknown` for keys no loaded plugin serves, so labels stay bounded).
fn respond(state: &IngressState, element: &str, result: Result<Response, ApiError>) -> Response {
    let response = result.unwrap_or_else(IntoResponse::into_response);
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
) -> Result<Response, ApiError> {
    let received_at = OffsetDateTime::now_utc();
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
    let http_request = request::to_plugin(&parts, &body);
    let started = Instant::now();
    let outcome = loaded
        .plugin
        .webhook(
            CallLabel {
                element: instance.configured.instance.element_key.clone(),
                instance: Some(id),
            },
            instance.fetch.clone(),
            &instance.config,
            &http_request,
        )
        .await;
    tracing::debug!(
        elapsed_us = started.elapsed().as_micros() as u64,
        "plugin call done"
    );

    let mut receipt = NewReceipt {
        instance_id: id,
        element_key: instance.configured.instance.element_key.clone(),
        received_at,
        message_id: None,
        dedup_window: state.config.dedup_window,
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        headers: request::header_pairs(&parts.headers),
        body: body.clone(),
        outcome: ReceiptStatus::Failed {
            error: String::new(),
        },
    };
    match outcome {
        Ok(WebhookOutcome::Respond(r)) => Ok(request::from_plugin(r)),
        Ok(WebhookOutcome::Accepted(accepted)) => {
            receipt.message_id = accepted.message_id.filter(|m| !m.is_empty());
            let stored = &instance.configured.instance;
            let recipient = Recipient {
                instance: InstanceInfo {
                    id,
                    name: &stored.name,
                    tags: &stored.tags,
                    element_key: &stored.element_key,
                },
                format: settings.format,
                filter: &settings.filter,
                ordered: settings.ordered,
            };
            let accepted = accept::webhook(
                &recipient,
                accepted.events,
                accepted.raw.as_deref(),
                &body,
                received_at,
            );
            match accepted {
                Ok(outcome) => {
                    receipt.outcome = outcome;
                    store_receipt(state, receipt).await
                }
                Err(why) => {
                    let e = ApiError::plugin_output(why);
                    keep_failed(state, receipt, e.message.clone()).await?;
                    Err(e)
                }
            }
        }
        Err(e) if e.is_plugin_failure() => {
            tracing::warn!(error = %e, "plugin failed; receipt stored as failed");
            keep_failed(state, receipt, e.to_string()).await?;
            Err(e.into())
        }
        Err(e @ CallError::CircuitOpen { .. }) => {
            tracing::debug!(error = %e, "webhook refused: the element's circuit breaker is open");
            Err(e.into())
        }
        Err(e) => {
            tracing::info!(kind = e.kind(), error = %e, "webhook rejected by plugin");
            Err(e.into())
        }
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

async fn store_receipt(state: &IngressState, receipt: NewReceipt) -> Result<Response, ApiError> {
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
            serde_json::json!({"receiptId": receipt_id, "eventIds": [], "duplicate": true})
        }
    };
    Ok((StatusCode::OK, Json(body)).into_response())
}
