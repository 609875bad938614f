//! `helpers-host`: a test-only element for the host's benchmark of its
//! crypto helpers (`host/benches/host_helpers.rs`).
//!
//! A webhook carries `x-signature: hex(HMAC-SHA256(secret, body))`, the
//! way many vendors sign (Linear, GitHub without its prefix). The element
//! verifies it — hex-decodes the header, computes the HMAC of the exact body
//! bytes and compares the two in constant time — and accepts one event
//! naming the body by its SHA-256: the digest in hex is the object id, in
//! base64 the message id. The body is not parsed, so a call's time is the
//! contract's overhead plus this crypto and encoding work.
//!
//! Built as is, every one of those steps is a call of the host's helpers
//! (`hex-decode`, `hmac-sha256`, `constant-time-eq`, `sha256`, `hex-encode`,
//! `base64-encode`). The `helpers-guest` crate builds this same source with
//! the `guest-crypto` feature: the same steps then run in the guest, with
//! the `hmac`, `sha2`, `hex` and `base64` crates compiled into the
//! component. Comparing the two shows what an element gains per call and
//! at load by leaving this code to the host.
//!
//! It does not poll: `prepare-poll` and `map-poll` answer `unsupported`.

mod bindings {
    //! Rust bindings of the `element-plugin` world.
    #![allow(missing_docs)]

    wit_bindgen::generate!({
        path: "../../wit",
        world: "element-plugin",
    });
}

use bindings::exports::plugboard::element::element::Guest;
use bindings::plugboard::element::types::{
    Config, ConfigKey, ElementError, ElementInfo, EventModes, EventType, HttpRequest,
    HttpResponse, NormalizedEvent, PollContext, PollPage, WebhookEvents, WebhookOutcome,
};

/// The configuration key of the webhook secret.
const SECRET_KEY: &str = "helpers.webhook.secret";
/// The header that carries the hex signature (the host lower-cases names).
const SIGNATURE_HEADER: &str = "x-signature";
/// The answer to the polling calls.
const NO_POLLING: &str = "this element receives webhooks and does not poll";

/// HMAC-SHA256, SHA-256, hex and base64 through the host's helpers.
#[cfg(not(feature = "guest-crypto"))]
mod crypto {
    use super::bindings::plugboard::element::host;

    /// Whether `signature` is the HMAC-SHA256 of `message` under `key`.
    pub fn verify(key: &[u8], message: &[u8], signature: &[u8]) -> bool {
        host::constant_time_eq(&host::hmac_sha256(key, message), signature)
    }

    /// SHA-256 of `data`.
    pub fn sha256(data: &[u8]) -> Vec<u8> {
        host::sha256(data)
    }

    /// Decodes hexadecimal.
    pub fn hex_decode(text: &str) -> Result<Vec<u8>, String> {
        host::hex_decode(text)
    }

    /// Lower-case hexadecimal of `data`.
    pub fn hex_encode(data: &[u8]) -> String {
        host::hex_encode(data)
    }

    /// Standard base64 with padding.
    pub fn base64_encode(data: &[u8]) -> String {
        host::base64_encode(data)
    }
}

/// HMAC-SHA256, SHA-256, hex and base64 compiled into the guest.
#[cfg(feature = "guest-crypto")]
mod crypto {
    use base64::Engine as _;
    use hmac::{Hmac, Mac};
    use sha2::{Digest, Sha256};

    /// Whether `signature` is the HMAC-SHA256 of `message` under `key`
    /// (compared in constant time by `hmac`).
    pub fn verify(key: &[u8], message: &[u8], signature: &[u8]) -> bool {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
            return false; // HMAC takes keys of any length: never reached
        };
        mac.update(message);
        mac.verify_slice(signature).is_ok()
    }

    /// SHA-256 of `data`.
    pub fn sha256(data: &[u8]) -> Vec<u8> {
        Sha256::digest(data).to_vec()
    }

    /// Decodes hexadecimal.
    pub fn hex_decode(text: &str) -> Result<Vec<u8>, String> {
        hex::decode(text).map_err(|e| e.to_string())
    }

    /// Lower-case hexadecimal of `data`.
    pub fn hex_encode(data: &[u8]) -> String {
        hex::encode(data)
    }

    /// Standard base64 with padding.
    pub fn base64_encode(data: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(data)
    }
}

/// The exported element.
struct Element;

impl Guest for Element {
    fn describe() -> ElementInfo {
        let (key, name) = if cfg!(feature = "guest-crypto") {
            ("helpers-guest", "Helpers in the guest")
        } else {
            ("helpers-host", "Helpers in the host")
        };
        ElementInfo {
            key: key.into(),
            aliases: vec![],
            name: name.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            modes: EventModes::WEBHOOKS,
            config_keys: vec![ConfigKey {
                name: SECRET_KEY.into(),
                required: true,
                secret: true,
                description: "The secret webhooks are signed with.".into(),
            }],
            fetch_hosts: vec![],
            fetch_host_config_keys: vec![],
            default_poll_configuration: None,
            stateless: true, // nothing is kept between calls
        }
    }

    fn webhook(config: Config, request: HttpRequest) -> Result<WebhookOutcome, ElementError> {
        let secret = config
            .iter()
            .find(|(name, value)| name == SECRET_KEY && !value.is_empty())
            .map(|(_, value)| value.as_bytes())
            .ok_or_else(|| {
                ElementError::BadRequest(format!("configuration `{SECRET_KEY}` is missing"))
            })?;
        verify(secret, &request)?;
        let digest = crypto::sha256(&request.body);
        let object_id = crypto::hex_encode(&digest);
        Ok(WebhookOutcome::Accepted(WebhookEvents {
            message_id: Some(crypto::base64_encode(&digest)),
            events: vec![NormalizedEvent {
                event_type: EventType::Created,
                object_type: "delivery".into(),
                raw: format!(r#"{{"sha256":"{object_id}","bytes":{}}}"#, request.body.len()),
                object_id,
                date: String::new(), // the time of receipt
            }],
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

/// Checks the hex signature header against the HMAC of the exact body.
fn verify(secret: &[u8], request: &HttpRequest) -> Result<(), ElementError> {
    let header = request
        .headers
        .iter()
        .find(|h| h.name == SIGNATURE_HEADER)
        .ok_or_else(|| ElementError::Unauthorized(format!("missing {SIGNATURE_HEADER} header")))?;
    let presented = crypto::hex_decode(header.value.trim())
        .map_err(|e| ElementError::Unauthorized(format!("{SIGNATURE_HEADER} is not hex: {e}")))?;
    if crypto::verify(secret, &request.body, &presented) {
        Ok(())
    } else {
        Err(ElementError::Unauthorized(format!(
            "{SIGNATURE_HEADER} does not match"
        )))
    }
}

bindings::export!(Element with_types_in bindings);
