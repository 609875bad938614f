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

use std::collections::BTreeMap;

use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

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
    map_callback(&payload)
}

/// The non-empty value of the signature header.
fn signature_header(headers: &[Header]) -> Option<&str> {
    headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(SIGNATURE_HEADER))
        .map(|h| h.value.trim())
        .filter(|value| !value.is_empty())
}

/// A callback's top-level fields, borrowed from the body without building a
/// JSON tree (each value stays raw JSON text until a field is needed).
pub type Payload<'a> = BTreeMap<String, &'a RawValue>;

/// Parses the body as a JSON object.
fn parse_payload(body: &[u8]) -> Result<Payload<'_>, ElementError> {
    serde_json::from_slice::<Payload<'_>>(body).map_err(|error| {
        if serde_json::from_slice::<IgnoredAny>(body).is_ok() {
            ElementError::BadRequest("callback body is not a JSON object".to_owned())
        } else {
            ElementError::BadRequest(format!("callback body is not valid JSON: {error}"))
        }
    })
}

/// A field's value, parsed (small values only: ids, strings, `Metadata`).
fn field(payload: &Payload<'_>, name: &str) -> Option<Value> {
    payload
        .get(name)
        .and_then(|raw| serde_json::from_str::<Value>(raw.get()).ok())
        .filter(|v| !v.is_null())
}

/// Checks `signature` (base64) against HMAC-SHA256 of the exact body bytes
/// under the SHA-256 of the signing key that `Metadata.key_url` names.
fn verify_signature(
    host: &impl Host,
    payload: &Payload<'_>,
    body: &[u8],
    signature: &str,
) -> Result<(), ElementError> {
    let metadata = field(payload, "Metadata");
    let key_url = metadata
        .as_ref()
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

/// What the mapping reads of a record: `_info.lastUpdated`. Every other
/// field is skipped (but still checked to be valid JSON).
#[derive(Deserialize)]
struct EntityInfo {
    #[serde(rename = "_info")]
    info: Option<Info>,
}

#[derive(Deserialize)]
struct Info {
    #[serde(rename = "lastUpdated")]
    last_updated: Option<Value>,
}

/// Decodes `Entity` into the record's JSON text: `Entity` is a JSON string
/// holding the record (an object is taken as is; missing, `null` or empty
/// is `null`). Returns the text and the record's `_info.lastUpdated`.
fn decode_entity(entity: Option<&RawValue>) -> Result<(String, Option<String>), ElementError> {
    let text = match entity.map(|raw| raw.get().trim_start()) {
        None => return Ok(("null".to_owned(), None)),
        Some(raw) if raw.starts_with('"') => {
            let text: String = serde_json::from_str(raw).map_err(|error| {
                ElementError::BadRequest(format!("Entity is not a valid JSON string: {error}"))
            })?;
            if text.trim().is_empty() {
                return Ok(("null".to_owned(), None));
            }
            text
        }
        Some(raw) => raw.to_owned(),
    };
    let last_updated = match serde_json::from_str::<EntityInfo>(&text) {
        Ok(probe) => probe
            .info
            .and_then(|i| i.last_updated)
            .and_then(|v| v.as_str().map(str::to_owned)),
        Err(_) => {
            serde_json::from_str::<IgnoredAny>(&text).map_err(|error| {
                ElementError::BadRequest(format!("Entity is not valid JSON: {error}"))
            })?;
            None
        }
    };
    Ok((text, last_updated))
}

/// The `bad-request` for a callback field that is absent or `null`.
fn missing(field: &str) -> ElementError {
    ElementError::BadRequest(format!("{field} is missing"))
}

/// A callback field that must be a non-empty string.
fn required_text(payload: &Payload<'_>, name: &str) -> Result<String, ElementError> {
    match field(payload, name) {
        None => Err(missing(name)),
        Some(Value::String(text)) if !text.is_empty() => Ok(text),
        Some(_) => Err(ElementError::BadRequest(format!(
            "{name} must be a non-empty string"
        ))),
    }
}

/// The payload as JSON text with `Entity` replaced by the record itself.
fn raw_with_entity(payload: &Payload<'_>, entity: &str) -> String {
    let mut out = String::with_capacity(
        payload.values().map(|v| v.get().len() + 16).sum::<usize>() + entity.len(),
    );
    out.push('{');
    for (i, (key, value)) in payload.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&serde_json::to_string(key).expect("strings serialize"));
        out.push(':');
        out.push_str(if key == "Entity" { entity } else { value.get() });
    }
    out.push('}');
    out
}

/// Maps a parsed callback into one event; the webhook's raw payload is the
/// callback with `Entity` decoded.
pub fn map_callback(payload: &Payload<'_>) -> Result<WebhookEvents, ElementError> {
    let event_type = event_type(&required_text(payload, "Action")?);
    let object_type = required_text(payload, "Type")?.to_lowercase();
    let object_id = match field(payload, "ID") {
        None => return Err(missing("ID")),
        Some(id) => id_text(&id).ok_or_else(|| {
            ElementError::BadRequest("ID must be a number or a non-empty string".to_owned())
        })?,
    };
    let message_id = field(payload, "MessageId").as_ref().and_then(id_text);
    let (entity, last_updated) = decode_entity(payload.get("Entity").copied())?;
    let date = last_updated
        .filter(|text| Timestamp::parse(text).is_some())
        .unwrap_or_default();
    let raw = raw_with_entity(payload, &entity);
    Ok(WebhookEvents {
        message_id,
        events: vec![NormalizedEvent {
            event_type,
            object_type,
            object_id,
            date,
            raw: entity,
        }],
        raw: Some(raw),
    })
}

#[cfg(test)]
#[path = "webhook_tests.rs"]
mod tests;
