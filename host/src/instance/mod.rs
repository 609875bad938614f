//! What an element instance's configuration means: the event settings of
//! SPEC §1 parsed and validated once, the element's own keys checked against
//! its `describe()` (keys nobody reads named in warnings: [`keys`]), the
//! resources a polling instance polls ([`poll`]), the extra delivery
//! [`headers`], and secrets redacted for display. Instances are written and
//! handed out, settings parsed, by the [`service`]; ingress keeps them ready
//! for plugin calls in [`cache`].
//!
//! Values may arrive as strings (`"true"`, `"15"`) or as JSON values, as the
//! Cloud Elements documents show; both are accepted.

mod address;
pub mod cache;
pub mod headers;
pub mod keys;
pub mod poll;
pub mod resources;
pub mod service;
mod settings;
pub mod vendor;

use serde_json::{Map, Value};

use crate::runtime::{ElementDescription, HOST_KEY_PREFIX};

pub use address::{decode_instance_id, PublicUrl, WebhookAddress, INSTANCE_HEADER};
pub use keys::KeyWarning;
pub use service::{ConfiguredInstance, InstanceChange, InstanceService, WriteError};
pub use settings::{EventSettings, VendorType};

/// Configuration keys plugboard itself treats as secret.
const HOST_SECRET_KEYS: &[&str] = &["event.notification.signature.key", headers::HEADERS_KEY];

/// A configuration problem, naming the key at fault.
#[derive(Debug, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ConfigError {
    /// The offending field, e.g. `configuration.event.notification.callback.url`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl ConfigError {
    /// A problem with the request field `field` (e.g. `name`).
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }

    pub(crate) fn new(key: &str, message: impl Into<String>) -> Self {
        Self {
            field: format!("configuration.{key}"),
            message: message.into(),
        }
    }
}

/// Checks a whole instance configuration against the element: required
/// element keys present, event settings valid and supported.
pub fn validate(
    element: &ElementDescription,
    configuration: &Map<String, Value>,
) -> Result<EventSettings, ConfigError> {
    for key in element.config_keys.iter().filter(|k| k.required) {
        let present = configuration
            .get(&key.name)
            .is_some_and(|v| !v.is_null() && v.as_str() != Some(""));
        if !present {
            return Err(ConfigError::new(
                &key.name,
                format!("required by element {}", element.key),
            ));
        }
    }
    let settings = EventSettings::parse(configuration)?;
    resources::parse_all(configuration)?;
    if settings.enabled {
        let mode = match settings.vendor_type {
            VendorType::Webhooks => "webhooks",
            VendorType::Polling => "polling",
        };
        if !element.supports(mode) {
            return Err(ConfigError::new(
                "event.vendor.type",
                format!("element {} does not support {mode}", element.key),
            ));
        }
    }
    poll::check_has_resources(element, &settings, configuration)?;
    Ok(settings)
}

/// Whether a configuration key holds a secret for this element.
pub fn is_secret(element: Option<&ElementDescription>, key: &str) -> bool {
    HOST_SECRET_KEYS.contains(&key)
        || element.is_some_and(|e| e.config_keys.iter().any(|k| k.secret && k.name == key))
        || ["password", "private.key", "secret", "token"]
            .iter()
            .any(|s| key.to_ascii_lowercase().contains(s))
}

/// The configuration with secret values replaced by `"********"`.
pub fn redacted(
    element: Option<&ElementDescription>,
    configuration: &Map<String, Value>,
) -> Map<String, Value> {
    configuration
        .iter()
        .map(|(k, v)| {
            let v = if k == headers::HEADERS_KEY {
                // The header names stay visible, their values are secret.
                headers::redacted(v).unwrap_or_else(|| Value::String("********".into()))
            } else if is_secret(element, k) && !v.is_null() {
                Value::String("********".into())
            } else {
                v.clone()
            };
            (k.clone(), v)
        })
        .collect()
}

/// The configuration as the plugin sees it: the element's keys (every key
/// outside [`HOST_KEY_PREFIX`]), string values as they are, other JSON
/// values as their JSON text; nulls dropped.
///
/// plugboard's own settings are left out: they hold secrets the element must
/// not see (the notification signature key, the values of
/// `event.notification.headers`), and a plugin is untrusted code. Each entry
/// also costs the guest a lift per call, a few microseconds in JavaScript.
pub fn plugin_config(configuration: &Map<String, Value>) -> Vec<(String, String)> {
    configuration
        .iter()
        .filter(|(k, v)| !v.is_null() && !k.starts_with(HOST_KEY_PREFIX))
        .map(|(k, v)| {
            let s = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), s)
        })
        .collect()
}

/// Hosts the element's `https-get` may reach for this instance: the
/// element's declared hosts plus the hosts of its declared URL settings.
pub fn fetch_hosts(
    element: &ElementDescription,
    configuration: &Map<String, Value>,
) -> Vec<String> {
    let mut hosts = element.fetch_hosts.clone();
    for key in &element.fetch_host_config_keys {
        let Some(text) = configuration.get(key).and_then(Value::as_str) else {
            continue;
        };
        let with_scheme = if text.contains("://") {
            text.to_string()
        } else {
            format!("https://{text}")
        };
        if let Some(host) = url::Url::parse(&with_scheme)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
        {
            hosts.push(host);
        }
    }
    hosts
}
