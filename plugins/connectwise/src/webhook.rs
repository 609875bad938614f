//! ConnectWise callbacks: signature verification and mapping to events.
//!
//! A callback is a JSON object with `MessageId`, `Action`, `Type`, `ID`,
//! `Entity` (the record, as a JSON *string*) and `Metadata.key_url`. It is
//! signed with `x-content-signature: base64(HMAC-SHA256(key, body))`, where
//! `key` is the SHA-256 of the `signing_key` that `Metadata.key_url` returns.
//!
//! Order matters: an unsigned request is rejected before the body is even
//! parsed, and the key URL is fetched only through the host, which enforces
//! the outbound policy (HTTPS, declared hosts, no private addresses).

use serde_json::{Map, Value};

use crate::bindings::plugboard::element::types::{
    ElementError, EventType, FetchError, Header, HttpRequest, NormalizedEvent, WebhookEvents,
};
use crate::config::{Settings, VERIFY_SIGNATURE};
use crate::host::{Host, LogLevel};
use crate::json::{id_text, lookup_str};
use crate::timestamp::Timestamp;

/// The header that carries the callback's signature.
pub const SIGNATURE_HEADER: &str = "x-content-signature";

/// Verifies one callback (unless the instance turned verification off) and
/// maps it into one normalized event.
pub fn handle(
    host: &impl Host,
    settings: Settings<'_>,
    request: &HttpRequest,
) -> Result<WebhookEvents, ElementError> {
    let verify = settings.verify_signature();
    let signature = if verify {
        Some(signature_header(&request.headers).ok_or_else(|| {
            ElementError::Unauthorized(format!("missing {SIGNATURE_HEADER} header"))
        })?)
    } else {
        host.log(
            LogLevel::Warn,
            &format!(
                "{VERIFY_SIGNATURE} is false: accepting a ConnectWise callback without checking its signature"
            ),
        );
        None
    };

    let payload = parse_payload(&request.body)?;
    if let Some(signature) = signature {
        verify_signature(host, &payload, &request.body, signature)?;
    }
    map_callback(payload)
}

/// The non-empty value of the signature header.
fn signature_header(headers: &[Header]) -> Option<&str> {
    headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(SIGNATURE_HEADER))
        .map(|h| h.value.trim())
        .filter(|value| !value.is_empty())
}

/// Parses the body as a JSON object.
fn parse_payload(body: &[u8]) -> Result<Map<String, Value>, ElementError> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(payload)) => Ok(payload),
        Ok(_) => Err(ElementError::BadRequest(
            "callback body is not a JSON object".to_owned(),
        )),
        Err(error) => Err(ElementError::BadRequest(format!(
            "callback body is not valid JSON: {error}"
        ))),
    }
}

/// Checks `signature` (base64) against HMAC-SHA256 of the exact body bytes
/// under the SHA-256 of the signing key that `Metadata.key_url` names.
fn verify_signature(
    host: &impl Host,
    payload: &Map<String, Value>,
    body: &[u8],
    signature: &str,
) -> Result<(), ElementError> {
    let key_url = payload
        .get("Metadata")
        .and_then(|metadata| lookup_str(metadata, "key_url"))
        .ok_or_else(|| ElementError::BadRequest("Metadata.key_url is missing".to_owned()))?;
    let signing_key = fetch_signing_key(host, key_url)?;
    let key = host.sha256(signing_key.as_bytes());
    let expected = host.hmac_sha256(&key, body);
    let presented = host.base64_decode(signature).map_err(|error| {
        ElementError::Unauthorized(format!("{SIGNATURE_HEADER} is not base64: {error}"))
    })?;
    if host.constant_time_eq(&expected, &presented) {
        Ok(())
    } else {
        Err(ElementError::Unauthorized(format!(
            "{SIGNATURE_HEADER} does not match"
        )))
    }
}

/// GETs the key URL through the host and reads `signing_key` from its answer.
fn fetch_signing_key(host: &impl Host, key_url: &str) -> Result<String, ElementError> {
    let failed = |why: String| {
        ElementError::Unauthorized(format!("signing key could not be fetched: {why}"))
    };
    let accept = Header {
        name: "accept".to_owned(),
        value: "application/json".to_owned(),
    };
    let response = host
        .https_get(key_url, &[accept])
        .map_err(|error| failed(describe_fetch_error(&error)))?;
    if !(200..300).contains(&response.status) {
        return Err(failed(format!("key URL answered {}", response.status)));
    }
    let answer: Value = serde_json::from_slice(&response.body)
        .map_err(|error| failed(format!("key URL answer is not JSON: {error}")))?;
    lookup_str(&answer, "signing_key")
        .map(str::to_owned)
        .ok_or_else(|| failed("key URL answer has no signing_key".to_owned()))
}

/// Renders a host fetch error for a message.
fn describe_fetch_error(error: &FetchError) -> String {
    match error {
        FetchError::Denied(why) => format!("denied: {why}"),
        FetchError::Timeout => "timeout".to_owned(),
        FetchError::TooLarge => "answer too large".to_owned(),
        FetchError::Failed(why) => format!("failed: {why}"),
    }
}

/// Maps a ConnectWise `Action` to an event type.
fn event_type(action: &str) -> EventType {
    match action.to_ascii_lowercase().as_str() {
        "added" | "created" => EventType::Created,
        "updated" => EventType::Updated,
        "deleted" => EventType::Deleted,
        _ => EventType::Unknown,
    }
}

/// Decodes `Entity`: a JSON string holding the record (an object is taken as
/// is; missing, `null` or empty is `null`).
fn decode_entity(entity: Option<&Value>) -> Result<Value, ElementError> {
    match entity {
        None | Some(Value::Null) => Ok(Value::Null),
        Some(Value::String(text)) if text.trim().is_empty() => Ok(Value::Null),
        Some(Value::String(text)) => serde_json::from_str(text).map_err(|error| {
            ElementError::BadRequest(format!("Entity is not valid JSON: {error}"))
        }),
        Some(other) => Ok(other.clone()),
    }
}

/// The `bad-request` for a callback field that is absent or `null`.
fn missing(field: &str) -> ElementError {
    ElementError::BadRequest(format!("{field} is missing"))
}

/// A callback field that must be a non-empty string.
fn required_text<'a>(
    payload: &'a Map<String, Value>,
    field: &str,
) -> Result<&'a str, ElementError> {
    match payload.get(field) {
        None | Some(Value::Null) => Err(missing(field)),
        Some(Value::String(text)) if !text.is_empty() => Ok(text),
        Some(_) => Err(ElementError::BadRequest(format!(
            "{field} must be a non-empty string"
        ))),
    }
}

/// Maps a parsed callback into one event; the webhook's raw payload is the
/// callback with `Entity` decoded.
pub fn map_callback(mut payload: Map<String, Value>) -> Result<WebhookEvents, ElementError> {
    let event_type = event_type(required_text(&payload, "Action")?);
    let object_type = required_text(&payload, "Type")?.to_lowercase();
    let object_id = match payload.get("ID") {
        None | Some(Value::Null) => return Err(missing("ID")),
        Some(id) => id_text(id).ok_or_else(|| {
            ElementError::BadRequest("ID must be a number or a non-empty string".to_owned())
        })?,
    };
    let message_id = payload.get("MessageId").and_then(id_text);

    let entity = decode_entity(payload.get("Entity"))?;
    let date = lookup_str(&entity, "_info.lastUpdated")
        .filter(|text| Timestamp::parse(text).is_some())
        .unwrap_or_default()
        .to_owned();
    let event = NormalizedEvent {
        event_type,
        object_type,
        object_id,
        date,
        raw: entity.to_string(),
    };
    if payload.contains_key("Entity") {
        payload.insert("Entity".to_owned(), entity);
    }
    Ok(WebhookEvents {
        message_id,
        events: vec![event],
        raw: Some(Value::Object(payload).to_string()),
    })
}

#[cfg(test)]
#[path = "webhook_tests.rs"]
mod tests;
