//! `{{name}}`: the {{title}} element plugin.
//!
//! A starting point: webhooks carry `x-signature: base64(HMAC-SHA256(secret,
//! body))` and a JSON body `{"id", "type", "action", "date"}`, mapped into
//! one normalized event. Replace the signature scheme and the mapping with
//! your vendor's.

mod bindings {
    //! Rust bindings of the `element-plugin` world in `wit/element.wit`.
    #![allow(missing_docs)]

    wit_bindgen::generate!({ path: "wit", world: "element-plugin" });
}

use bindings::exports::plugboard::element::element::Guest;
use bindings::plugboard::element::host;
use bindings::plugboard::element::types::{
    Config, ConfigKey, ElementError, ElementInfo, EventModes, EventType, HttpRequest, HttpResponse,
    NormalizedEvent, PollContext, PollPage, WebhookEvents, WebhookOutcome,
};
use serde_json::Value;

/// The configuration key of the webhook secret.
const SECRET_KEY: &str = "{{name}}.webhook.secret";
/// The header that carries the signature (the host lower-cases names).
const SIGNATURE_HEADER: &str = "x-signature";
/// The answer to the polling calls.
const NO_POLLING: &str = "{{name}} receives webhooks and does not poll";

/// Routes panic messages to the host's log at error level, once per
/// instance: the host adds them to the failing call's error, so the
/// operator (and `plugboard plugins run`) sees why the call failed.
fn log_panics() {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            host::log(host::LogLevel::Error, &format!("panic: {info}"));
        }));
    });
}

/// The exported element.
struct Element;

impl Guest for Element {
    fn describe() -> ElementInfo {
        log_panics();
        ElementInfo {
            key: "{{name}}".into(),
            aliases: vec![],
            name: "{{title}}".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            modes: EventModes::WEBHOOKS,
            config_keys: vec![ConfigKey {
                name: SECRET_KEY.into(),
                required: true,
                secret: true,
                description: "The secret the vendor signs webhooks with.".into(),
            }],
            fetch_hosts: vec![],
            fetch_host_config_keys: vec![],
            // A polling element names the resources an instance polls when it
            // names none, as JSON text of an `event.poller.configuration` object.
            default_poll_configuration: None,
            // True while the element keeps nothing between calls (no global
            // that a call changes): the host may then reuse a warm instance.
            // See docs/plugins.md.
            stateless: true,
        }
    }

    fn webhook(config: Config, request: HttpRequest) -> Result<WebhookOutcome, ElementError> {
        log_panics();
        let secret = config
            .iter()
            .find(|(name, value)| name == SECRET_KEY && !value.is_empty())
            .map(|(_, value)| value.as_bytes())
            .ok_or_else(|| {
                ElementError::BadRequest(format!("configuration `{SECRET_KEY}` is missing"))
            })?;
        verify(secret, &request)?;

        let payload: Value = serde_json::from_slice(&request.body)
            .map_err(|e| ElementError::BadRequest(format!("body is not valid JSON: {e}")))?;
        let text = |field: &str| match &payload[field] {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => String::new(),
        };
        let event_type = match text("action").as_str() {
            "created" => EventType::Created,
            "updated" => EventType::Updated,
            "deleted" => EventType::Deleted,
            _ => EventType::Unknown,
        };
        let event = NormalizedEvent {
            event_type,
            object_type: text("type"),
            object_id: text("id"),
            date: text("date"), // RFC 3339, or empty for the time of receipt
            raw: payload.to_string(),
        };
        Ok(WebhookOutcome::Accepted(WebhookEvents {
            message_id: None,
            events: vec![event],
            raw: None,
        }))
    }

    fn prepare_poll(
        _config: Config,
        _poll: PollContext,
        _draft: HttpRequest,
    ) -> Result<HttpRequest, ElementError> {
        Err(ElementError::Unsupported(NO_POLLING.into()))
    }

    fn map_poll(
        _config: Config,
        _poll: PollContext,
        _response: HttpResponse,
    ) -> Result<PollPage, ElementError> {
        Err(ElementError::Unsupported(NO_POLLING.into()))
    }
}

/// Checks the signature header against the HMAC of the exact body bytes,
/// computed and compared (in constant time) by the host.
fn verify(secret: &[u8], request: &HttpRequest) -> Result<(), ElementError> {
    let header = request
        .headers
        .iter()
        .find(|h| h.name == SIGNATURE_HEADER)
        .ok_or_else(|| ElementError::Unauthorized(format!("missing {SIGNATURE_HEADER} header")))?;
    let presented = host::base64_decode(header.value.trim()).map_err(|e| {
        ElementError::Unauthorized(format!("{SIGNATURE_HEADER} is not base64: {e}"))
    })?;
    let expected = host::hmac_sha256(secret, &request.body);
    if host::constant_time_eq(&expected, &presented) {
        Ok(())
    } else {
        Err(ElementError::Unauthorized(format!(
            "{SIGNATURE_HEADER} does not match"
        )))
    }
}

bindings::export!(Element with_types_in bindings);
