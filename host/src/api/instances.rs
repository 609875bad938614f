//! The instances API (SPEC §1): create, list, read, change and delete
//! element instances, and switch their events on or off.
//!
//! Every write goes through the [`InstanceService`](crate::instance::InstanceService):
//! validated against the element's `describe()` and the event settings
//! rules (a 400 names the field), written with the instance's version
//! checked, and announced to the rest of the host. A callback URL the
//! outbound policy refuses without resolving it (an IP literal or
//! `localhost` outside the operator's allow-list) is refused here rather
//! than at every delivery; other names are judged when a delivery resolves
//! them.
//!
//! Every instance answer carries its version, as `version` and as the
//! `ETag` header (`"<version>"`). `PATCH` honours `If-Match: "<version>"`
//! (412 when the instance has moved on); without it the change is merged
//! into the current configuration and retried if another change lands
//! meanwhile, so concurrent changes of different keys all land. Keys that
//! nothing reads are stored but named in `warnings` (with the closest known
//! key). Secret values are redacted in every response; the instance token
//! is shown once, in the creation response. Every response carries the
//! instance's webhook address (`webhook`; with the host's public URL set,
//! `webhook.url` is the absolute URL) and its vendor subscription
//! (`subscription`: `subscribed`, `failed` with its message,
//! `not_subscribed` or `unsupported`).
//!
//! For an element that implements subscription, with the public URL set,
//! creating an instance with events on in webhooks mode registers its URL
//! at the vendor first: a refusal answers 502 `vendor_subscription_failed`
//! naming the vendor's status and message, and no instance is created.
//! Changes re-register as needed (the change stands; the outcome shows in
//! `subscription`), deleting unregisters (the instance goes even if that
//! fails; the answer names what was left at the vendor), and
//! `POST /instances/{id}/subscription` runs the subscription again.

use axum::extract::State;
use axum::http::header::{ETAG, IF_MATCH};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::extract::{JsonBody, NoParams, Path, Query};
use super::{ApiError, ApiState};
use crate::instance::service::{Edit, InstanceDraft, ResubscribeError, Written};
use crate::instance::{self, ConfiguredInstance, WebhookAddress, WriteError};
use crate::runtime::ElementDescription;
use crate::store::VendorSubscription;

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
/// The element cannot be changed: an `element` naming another key is refused.
#[derive(Deserialize)]
pub struct PatchInstance {
    element: Option<ElementRef>,
    configuration: Option<Map<String, Value>>,
    tags: Option<Vec<String>>,
    name: Option<String>,
}

/// Body of `PUT /instances/{id}/events/enabled`.
#[derive(Deserialize)]
pub struct EventsSwitch {
    enabled: bool,
}

impl From<WriteError> for ApiError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::Invalid(e) => ApiError::invalid_field(e.field, e.message),
            WriteError::NotFound(id) => ApiError::not_found(format!("no instance {id}")),
            WriteError::Stale { .. } => ApiError::precondition_failed(e.to_string()),
            WriteError::Busy(_) => ApiError::conflict("conflict", e.to_string()),
            WriteError::Vendor(refused) => ApiError::vendor_subscription_failed(format!(
                "the vendor refused to register the instance's webhook URL, so no instance was \
                 created: {refused}"
            )),
            WriteError::Store(e) => ApiError::store("writing the instance failed", &e),
        }
    }
}

/// An instance's vendor subscription as the API shows it: the recorded
/// one, else `unsupported` when its element does not implement
/// subscription, else `not_subscribed`.
fn subscription_view(
    state: &ApiState,
    description: Option<&ElementDescription>,
    stored: Option<&VendorSubscription>,
) -> Value {
    if let Some(stored) = stored {
        return json!({
            "status": stored.status.as_str(),
            "message": stored.message,
            "callbackUrl": stored.callback_url,
            "updatedDate": stored.updated_at.format(&time::format_description::well_known::Rfc3339).ok(),
        });
    }
    if !description.is_some_and(|d| d.subscribes) {
        return json!({"status": "unsupported", "message": "the element does not register \
            webhook URLs at its vendor: register the instance's webhook URL there by hand"});
    }
    let message = if state.instances.public_url().is_none() {
        "the host's public URL (public_url) is not set, so nothing is registered at the vendor"
    } else {
        "nothing is registered at the vendor (events off, or polling)"
    };
    json!({"status": "not_subscribed", "message": message})
}

/// The instance as the API shows it: secrets redacted, token omitted; a
/// polling instance also shows what it is polled with
/// (`pollerConfiguration`: its own resources or its element's defaults).
/// `subscription` is its recorded vendor subscription, if any.
pub fn view(
    state: &ApiState,
    configured: &ConfiguredInstance,
    subscription: Option<&VendorSubscription>,
) -> Value {
    let instance = &configured.instance;
    let element = state.registry.get(&instance.element_key);
    let description = element.as_ref().map(|p| p.plugin.description());
    let mut out = json!({
        "id": instance.id,
        "name": instance.name,
        "element": {"key": instance.element_key},
        "tags": instance.tags,
        "configuration": instance::redacted(description, &instance.configuration),
        "eventsEnabled": configured.settings.enabled,
        "deliveryPaused": instance.delivery_paused,
        "createdDate": instance.created_at.format(&time::format_description::well_known::Rfc3339).ok(),
        "updatedDate": instance.updated_at.format(&time::format_description::well_known::Rfc3339).ok(),
        "version": instance.version,
        "webhook": WebhookAddress::of(&instance.element_key, instance.id, state.instances.public_url()),
        "subscription": subscription_view(state, description, subscription),
    });
    let polled =
        instance::poll::effective(description, &configured.settings, &instance.configuration);
    if let Some(polled) = polled {
        out["pollerConfiguration"] = json!(polled);
    }
    out
}

/// One instance's answer: its view with its version as `ETag`.
fn answer(body: Value, version: i64) -> Response {
    let mut response = Json(body).into_response();
    if let Ok(tag) = HeaderValue::from_str(&format!("\"{version}\"")) {
        response.headers_mut().insert(ETAG, tag);
    }
    response
}

/// The recorded vendor subscription of instance `id`.
async fn subscription_of(
    state: &ApiState,
    id: i64,
) -> Result<Option<VendorSubscription>, ApiError> {
    state
        .store
        .subscription(id)
        .await
        .map_err(|e| ApiError::store("reading the instance's subscription failed", &e))
}

/// The answer to a write: the view, with `warnings` when keys nothing
/// reads were set.
async fn written(state: &ApiState, w: &Written) -> Result<Value, ApiError> {
    let subscription = match &w.subscription {
        Some(s) => Some(s.clone()),
        None => subscription_of(state, w.instance.id()).await?,
    };
    let mut out = view(state, &w.instance, subscription.as_ref());
    if !w.warnings.is_empty() {
        out["warnings"] = json!(w.warnings);
    }
    Ok(out)
}

/// The version `If-Match` names: `"7"` (or `W/"7"`, or `7`); `None`
/// without the header or with `*`.
fn if_match(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    let Some(value) = headers.get(IF_MATCH) else {
        return Ok(None);
    };
    let bad = || {
        ApiError::invalid_field(
            "If-Match",
            "expected one instance version as an entity tag, e.g. \"3\"",
        )
    };
    let text = value.to_str().map_err(|_| bad())?.trim();
    if text == "*" {
        return Ok(None);
    }
    let tag = text.strip_prefix("W/").unwrap_or(text);
    let tag = tag
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(tag);
    if tag.is_empty() || !tag.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    tag.parse().map(Some).map_err(|_| bad())
}

/// `POST /instances`.
pub async fn create(
    State(state): State<ApiState>,
    JsonBody(req): JsonBody<CreateInstance>,
) -> Result<Response, ApiError> {
    let key = req
        .element
        .and_then(|e| e.key)
        .filter(|k| !k.trim().is_empty())
        .ok_or_else(|| ApiError::invalid_field("element.key", "is required"))?;
    let created = state
        .instances
        .create(InstanceDraft {
            element_key: key,
            name: req.name,
            tags: req.tags,
            configuration: req.configuration,
        })
        .await?;
    let mut out = written(&state, &created).await?;
    out["token"] = Value::String(created.instance.instance.token.clone());
    Ok(answer(out, created.instance.version()))
}

/// `GET /instances`.
pub async fn list(
    State(state): State<ApiState>,
    Query(NoParams {}): Query<NoParams>,
) -> Result<Json<Value>, ApiError> {
    let all = state
        .instances
        .list()
        .await
        .map_err(|e| ApiError::store("listing instances failed", &e))?;
    let subscriptions = state
        .store
        .subscriptions()
        .await
        .map_err(|e| ApiError::store("listing instances' subscriptions failed", &e))?;
    Ok(Json(Value::Array(
        all.iter()
            .map(|i| view(&state, i, subscriptions.get(&i.id())))
            .collect(),
    )))
}

async fn load(state: &ApiState, id: i64) -> Result<std::sync::Arc<ConfiguredInstance>, ApiError> {
    state
        .instances
        .load(id)
        .await
        .map_err(|e| ApiError::store("reading the instance failed", &e))?
        .ok_or_else(|| ApiError::not_found(format!("no instance {id}")))
}

/// Answers 404 unless instance `id` exists (for routes under
/// `/instances/{id}/` that would otherwise answer an empty result).
pub(super) async fn require(state: &ApiState, id: i64) -> Result<(), ApiError> {
    let found = state
        .instances
        .get(id)
        .await
        .map_err(|e| ApiError::store("reading the instance failed", &e))?;
    found
        .map(|_| ())
        .ok_or_else(|| ApiError::not_found(format!("no instance {id}")))
}

/// `GET /instances/{id}`.
pub async fn get(State(state): State<ApiState>, Path(id): Path<i64>) -> Result<Response, ApiError> {
    let found = load(&state, id).await?;
    let subscription = subscription_of(&state, id).await?;
    Ok(answer(
        view(&state, &found, subscription.as_ref()),
        found.version(),
    ))
}

/// `PATCH /instances/{id}`.
pub async fn patch(
    State(state): State<ApiState>,
    Path(id): Path<i64>,
    headers: HeaderMap,
    JsonBody(req): JsonBody<PatchInstance>,
) -> Result<Response, ApiError> {
    let expected = if_match(&headers)?;
    if let Some(element) = &req.element {
        let current = load(&state, id).await?;
        if element.key.as_deref() != Some(current.instance.element_key.as_str()) {
            return Err(ApiError::invalid_field(
                "element.key",
                format!(
                    "the element of an instance cannot be changed (instance {id} is a {} \
                     instance); create a new instance instead",
                    current.instance.element_key
                ),
            ));
        }
    }
    let edit = Edit {
        name: req.name,
        tags: req.tags,
        configuration: req.configuration,
        events: None,
    };
    let changed = state.instances.update(id, expected, edit).await?;
    Ok(answer(
        written(&state, &changed).await?,
        changed.instance.version(),
    ))
}

/// `PUT /instances/{id}/events/enabled` with `{"enabled": true|false}`;
/// switching events on also resumes a delivery paused by 410 Gone.
pub async fn switch_events(
    State(state): State<ApiState>,
    Path(id): Path<i64>,
    JsonBody(req): JsonBody<EventsSwitch>,
) -> Result<Response, ApiError> {
    let edit = Edit {
        events: Some(req.enabled),
        ..Edit::default()
    };
    let changed = state.instances.update(id, None, edit).await?;
    let mut out = written(&state, &changed).await?;
    if let Some(object) = out.as_object_mut() {
        object.remove("warnings");
    }
    Ok(answer(out, changed.instance.version()))
}

/// `DELETE /instances/{id}`: 200, with a body only when something was
/// registered at the vendor: `{"unsubscribed": true}`, or
/// `{"unsubscribed": false, "leftAtVendor": "…"}` naming what the failed
/// unsubscription left there (the instance is deleted either way).
pub async fn delete(
    State(state): State<ApiState>,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let deleted = state
        .instances
        .delete(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no instance {id}")))?;
    Ok(match deleted.unsubscribed {
        None => StatusCode::OK.into_response(),
        Some(Ok(())) => Json(json!({"unsubscribed": true})).into_response(),
        Some(Err(left)) => {
            Json(json!({"unsubscribed": false, "leftAtVendor": left})).into_response()
        }
    })
}

/// `POST /instances/{id}/subscription`: runs the instance's vendor
/// subscription again (subscribes it, or unsubscribes it when events are
/// off) and answers its new state; 502 `vendor_subscription_failed` when
/// the vendor refused (recorded as `failed`), 409
/// `subscription_not_possible` when the element does not implement
/// subscription or the host has no public URL.
pub async fn resubscribe(
    State(state): State<ApiState>,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let subscription = state.instances.resubscribe(id).await.map_err(|e| match e {
        ResubscribeError::NotPossible(why) => ApiError::conflict("subscription_not_possible", why),
        ResubscribeError::Write(e) => e.into(),
    })?;
    if subscription.status == crate::store::SubscriptionStatus::Failed {
        return Err(ApiError::vendor_subscription_failed(format!(
            "the vendor refused: {}",
            subscription.message.as_deref().unwrap_or("no message")
        )));
    }
    Ok(Json(subscription_view(&state, None, Some(&subscription))))
}
