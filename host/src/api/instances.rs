//! The instances API (SPEC §1): create, list, read, change and delete
//! element instances, and switch their events on or off.
//!
//! Every write is validated against the element's `describe()` and the
//! event settings rules before it is stored; a 400 names the field. A
//! callback URL the outbound policy refuses without resolving it (an IP
//! literal or `localhost` outside the operator's allow-list) is refused
//! here rather than at every delivery; other names are judged when a
//! delivery resolves them. Secret values are redacted in every response;
//! the instance token is shown once, in the creation response. Every
//! response carries the instance's webhook address (`webhook`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::extract::{JsonBody, NoParams, Path, Query};
use super::{ApiError, ApiState};
use crate::instance::WebhookAddress;
use crate::instance::{self, EventSettings};
use crate::outbound::ALLOW_PRIVATE_SETTING;
use crate::runtime::ElementDescription;
use crate::store::{Instance, InstancePatch, NewInstance};

/// The configuration key of the callback URL.
const CALLBACK_URL: &str = "event.notification.callback.url";

/// `{"element": {"key": "connectwise"}}`.
#[derive(Deserialize)]
pub struct ElementRef {
    key: Option<String>,
}

/// Body of `POST /instances`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateInstance {
    element: Option<ElementRef>,
    #[serde(default)]
    configuration: Map<String, Value>,
    #[serde(default)]
    tags: Vec<String>,
    name: Option<String>,
}

/// Body of `PATCH /instances/{id}`: fields to change; `configuration` keys
/// are merged into the existing configuration (a `null` value removes one).
#[derive(Deserialize)]
pub struct PatchInstance {
    configuration: Option<Map<String, Value>>,
    tags: Option<Vec<String>>,
    name: Option<String>,
}

/// Body of `PUT /instances/{id}/events/enabled`.
#[derive(Deserialize)]
pub struct EventsSwitch {
    enabled: bool,
}

fn element_for(state: &ApiState, key: &str) -> Result<ElementDescription, ApiError> {
    state
        .registry
        .get(key)
        .map(|p| p.plugin.description().clone())
        .ok_or_else(|| {
            ApiError::invalid_field(
                "element.key",
                format!("no element plugin '{key}' is loaded"),
            )
        })
}

/// The instance as the API shows it: secrets redacted, token omitted; a
/// polling instance also shows what it is polled with
/// (`pollerConfiguration`: its own resources or its element's defaults).
pub fn view(state: &ApiState, instance: &Instance) -> Value {
    let element = state.registry.get(&instance.element_key);
    let description = element.as_ref().map(|p| p.plugin.description());
    let mut out = json!({
        "id": instance.id,
        "name": instance.name,
        "element": {"key": instance.element_key},
        "tags": instance.tags,
        "configuration": instance::redacted(description, &instance.configuration),
        "eventsEnabled": instance.events_enabled,
        "deliveryPaused": instance.delivery_paused,
        "createdDate": instance.created_at.format(&time::format_description::well_known::Rfc3339).ok(),
        "updatedDate": instance.updated_at.format(&time::format_description::well_known::Rfc3339).ok(),
        "webhook": WebhookAddress::of(&instance.element_key, instance.id),
    });
    if let Some(polled) = instance::poll::effective(description, &instance.configuration) {
        out["pollerConfiguration"] = json!(polled);
    }
    out
}

/// Refuses a callback URL the outbound policy would refuse at every
/// delivery without even resolving it.
fn deliverable(state: &ApiState, settings: &EventSettings) -> Result<(), ApiError> {
    let Some(host) = settings.callback_url.as_ref().and_then(url::Url::host) else {
        return Ok(());
    };
    state
        .outbound_policy
        .check_unresolved(&host)
        .map_err(|denial| {
            ApiError::invalid_field(
                format!("configuration.{CALLBACK_URL}"),
                format!(
                "{denial}, so every delivery to it would be refused; the operator can allow it \
                 by listing it in {ALLOW_PRIVATE_SETTING} (outbound_allow_private)"
            ),
            )
        })
}

/// `POST /instances`.
pub async fn create(
    State(state): State<ApiState>,
    JsonBody(req): JsonBody<CreateInstance>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let key = req
        .element
        .and_then(|e| e.key)
        .filter(|k| !k.trim().is_empty())
        .ok_or_else(|| ApiError::invalid_field("element.key", "is required"))?;
    let element = element_for(&state, key.trim())?;
    let settings = instance::validate(&element, &req.configuration)
        .map_err(|e| ApiError::invalid_field(e.field, e.message))?;
    deliverable(&state, &settings)?;
    let created = state
        .store
        .create_instance(NewInstance {
            element_key: element.key.clone(),
            name: req.name.unwrap_or_else(|| element.key.clone()),
            tags: req.tags,
            configuration: req.configuration,
            events_enabled: settings.enabled,
        })
        .await
        .map_err(|e| ApiError::store("creating the instance failed", &e))?;
    tracing::info!(instance = created.id, element = %created.element_key, "instance created");
    state.poller.instance_changed(created.id).await;
    let mut out = view(&state, &created);
    out["token"] = Value::String(created.token.clone());
    Ok((StatusCode::OK, Json(out)))
}

/// `GET /instances`.
pub async fn list(
    State(state): State<ApiState>,
    Query(NoParams {}): Query<NoParams>,
) -> Result<Json<Value>, ApiError> {
    let all = state
        .store
        .list_instances()
        .await
        .map_err(|e| ApiError::store("listing instances failed", &e))?;
    Ok(Json(Value::Array(
        all.iter().map(|i| view(&state, i)).collect(),
    )))
}

async fn load(state: &ApiState, id: i64) -> Result<Instance, ApiError> {
    state
        .store
        .get_instance(id)
        .await
        .map_err(|e| ApiError::store("reading the instance failed", &e))?
        .ok_or_else(|| ApiError::not_found(format!("no instance {id}")))
}

/// `GET /instances/{id}`.
pub async fn get(
    State(state): State<ApiState>,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(view(&state, &load(&state, id).await?)))
}

/// `PATCH /instances/{id}`.
pub async fn patch(
    State(state): State<ApiState>,
    Path(id): Path<i64>,
    JsonBody(req): JsonBody<PatchInstance>,
) -> Result<Json<Value>, ApiError> {
    let current = load(&state, id).await?;
    let mut configuration = current.configuration.clone();
    if let Some(changes) = req.configuration {
        for (k, v) in changes {
            if v.is_null() {
                configuration.remove(&k);
            } else {
                configuration.insert(k, v);
            }
        }
    }
    apply(&state, &current, configuration, req.name, req.tags).await
}

/// `PUT /instances/{id}/events/enabled` with `{"enabled": true|false}`.
pub async fn switch_events(
    State(state): State<ApiState>,
    Path(id): Path<i64>,
    JsonBody(req): JsonBody<EventsSwitch>,
) -> Result<Json<Value>, ApiError> {
    let current = load(&state, id).await?;
    let mut configuration = current.configuration.clone();
    configuration.insert(
        "event.notification.enabled".into(),
        Value::Bool(req.enabled),
    );
    let out = apply(&state, &current, configuration, None, None).await?;
    if req.enabled && current.delivery_paused.is_some() {
        // Switching events on again resumes a delivery paused by 410 Gone.
        let resume = InstancePatch {
            delivery_paused: Some(None),
            ..InstancePatch::default()
        };
        let resumed = state
            .store
            .update_instance(id, resume)
            .await
            .map_err(|e| ApiError::store("resuming delivery failed", &e))?
            .ok_or_else(|| ApiError::not_found(format!("no instance {id}")))?;
        tracing::info!(instance = id, "delivery resumed");
        state.delivery.wake();
        return Ok(Json(view(&state, &resumed)));
    }
    Ok(out)
}

async fn apply(
    state: &ApiState,
    current: &Instance,
    configuration: Map<String, Value>,
    name: Option<String>,
    tags: Option<Vec<String>>,
) -> Result<Json<Value>, ApiError> {
    let element = element_for(state, &current.element_key)?;
    let settings = instance::validate(&element, &configuration)
        .map_err(|e| ApiError::invalid_field(e.field, e.message))?;
    if configuration.get(CALLBACK_URL) != current.configuration.get(CALLBACK_URL) {
        deliverable(state, &settings)?;
    }
    let old_key = instance::EventSettings::parse(&current.configuration)
        .ok()
        .and_then(|s| s.signature_key);
    let retire_signing_key = old_key
        .filter(|old| settings.signature_key.as_ref() != Some(old))
        .map(|old| (old, time::OffsetDateTime::now_utc() + state.key_grace));
    let updated = state
        .store
        .update_instance(
            current.id,
            InstancePatch {
                name,
                tags,
                configuration: Some(configuration),
                events_enabled: Some(settings.enabled),
                delivery_paused: None,
                retire_signing_key,
            },
        )
        .await
        .map_err(|e| ApiError::store("updating the instance failed", &e))?
        .ok_or_else(|| ApiError::not_found(format!("no instance {}", current.id)))?;
    state.instances.invalidate(current.id);
    state.poller.instance_changed(current.id).await;
    Ok(Json(view(state, &updated)))
}

/// `DELETE /instances/{id}`.
pub async fn delete(
    State(state): State<ApiState>,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    let deleted = state
        .store
        .delete_instance(id)
        .await
        .map_err(|e| ApiError::store("deleting the instance failed", &e))?;
    state.instances.invalidate(id);
    state.poller.instance_changed(id).await;
    if deleted {
        tracing::info!(instance = id, "instance deleted");
        Ok(StatusCode::OK)
    } else {
        Err(ApiError::not_found(format!("no instance {id}")))
    }
}
