//! The event settings of an instance (SPEC §1), parsed from its
//! configuration with string booleans and numbers accepted.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::headers::DeliveryHeaders;
use super::ConfigError;
use crate::accept::{EventFilter, EventType, Format};

/// How the vendor's activity reaches plugboard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VendorType {
    /// The vendor calls plugboard.
    Webhooks,
    /// plugboard polls the vendor.
    Polling,
}

/// The validated event settings of one instance.
#[derive(Clone, Debug, PartialEq)]
pub struct EventSettings {
    /// `event.notification.enabled`.
    pub enabled: bool,
    /// `event.vendor.type`.
    pub vendor_type: VendorType,
    /// `event.notification.callback.url`.
    pub callback_url: Option<url::Url>,
    /// `event.notification.signature.key`.
    pub signature_key: Option<String>,
    /// `event.poller.refresh_interval`, in minutes.
    pub refresh_interval_minutes: Option<f64>,
    /// `event.poller.configuration`, as an object.
    pub poller_configuration: Option<Map<String, Value>>,
    /// `event.notification.format`: `cloudelements` (default) or `cloudevents`.
    pub format: Format,
    /// `event.objects` and `event.types`: which events are notified.
    pub filter: EventFilter,
    /// `event.notification.ordered`: notifications about the same object
    /// are delivered one at a time, in the order they were accepted.
    pub ordered: bool,
    /// `event.notification.headers`: extra headers every notification
    /// carries (values are secrets).
    pub headers: DeliveryHeaders,
}

fn text<'a>(config: &'a Map<String, Value>, key: &str) -> Option<std::borrow::Cow<'a, str>> {
    match config.get(key)? {
        Value::Null => None,
        Value::String(s) if s.trim().is_empty() => None,
        Value::String(s) => Some(std::borrow::Cow::Borrowed(s.trim())),
        other => Some(std::borrow::Cow::Owned(other.to_string())),
    }
}

fn boolean(config: &Map<String, Value>, key: &str) -> Result<Option<bool>, ConfigError> {
    match text(config, key).as_deref() {
        None => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(other) => Err(ConfigError::new(
            key,
            format!("expected true or false, got {other:?}"),
        )),
    }
}

/// Every `event.*` key plugboard reads (SPEC §1 and §6).
pub const EVENT_KEYS: &[&str] = &[
    "event.notification.enabled",
    "event.vendor.type",
    "event.notification.callback.url",
    "event.notification.signature.key",
    "event.notification.format",
    "event.notification.type",
    ORDERED_KEY,
    super::headers::HEADERS_KEY,
    "event.poller.refresh_interval",
    "event.poller.configuration",
    OBJECTS_KEY,
    TYPES_KEY,
    super::resources::URLS_KEY,
];

/// Whether notifications about the same object are delivered in order.
const ORDERED_KEY: &str = "event.notification.ordered";

/// Cloud Elements' key for the object types an instance is notified of:
/// comma-separated, `*` or absent for all.
const OBJECTS_KEY: &str = "event.objects";
/// The event types an instance is notified of: comma-separated `CREATED`,
/// `UPDATED`, `DELETED`, `UNKNOWN`; `*` or absent for all.
const TYPES_KEY: &str = "event.types";

/// The items of a list key: a comma-separated string or a JSON array of
/// strings, trimmed, empty items skipped; `None` for all (absent, empty or
/// holding `*`).
fn list(config: &Map<String, Value>, key: &str) -> Result<Option<BTreeSet<String>>, ConfigError> {
    let items: Vec<String> = match config.get(key) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s.split(',').map(|i| i.trim().to_owned()).collect(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.trim().to_owned()),
                _ => Err(ConfigError::new(key, "list items must be strings")),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(ConfigError::new(
                key,
                "expected a comma-separated list (or a JSON array of strings)",
            ))
        }
    };
    let items: BTreeSet<String> = items.into_iter().filter(|i| !i.is_empty()).collect();
    Ok((!items.is_empty() && !items.contains("*")).then_some(items))
}

/// `event.objects` and `event.types` as a filter; an unknown event type is
/// an error naming the key.
fn filter(config: &Map<String, Value>) -> Result<EventFilter, ConfigError> {
    let event_types = match list(config, TYPES_KEY)? {
        None => None,
        Some(names) => Some(
            names
                .iter()
                .map(|n| match n.to_ascii_uppercase().as_str() {
                    "CREATED" => Ok(EventType::Created),
                    "UPDATED" => Ok(EventType::Updated),
                    "DELETED" => Ok(EventType::Deleted),
                    "UNKNOWN" => Ok(EventType::Unknown),
                    _ => Err(ConfigError::new(
                        TYPES_KEY,
                        format!(
                            "unknown event type {n:?}: expected CREATED, UPDATED, DELETED \
                             or UNKNOWN (comma-separated), or *"
                        ),
                    )),
                })
                .collect::<Result<_, _>>()?,
        ),
    };
    Ok(EventFilter {
        object_types: list(config, OBJECTS_KEY)?,
        event_types,
    })
}

impl EventSettings {
    /// The settings of an empty configuration: events off, webhooks, no
    /// callback.
    pub fn disabled() -> Self {
        Self {
            enabled: false,
            vendor_type: VendorType::Webhooks,
            callback_url: None,
            signature_key: None,
            refresh_interval_minutes: None,
            poller_configuration: None,
            format: Format::CloudElements,
            filter: EventFilter::default(),
            ordered: false,
            headers: Vec::new(),
        }
    }

    /// Parses and validates the `event.*` keys of a configuration.
    pub fn parse(config: &Map<String, Value>) -> Result<Self, ConfigError> {
        let enabled = boolean(config, "event.notification.enabled")?.unwrap_or(false);
        let vendor_type = match text(config, "event.vendor.type").as_deref() {
            None | Some("webhooks") | Some("webhook") => VendorType::Webhooks,
            Some("polling") => VendorType::Polling,
            Some(other) => {
                return Err(ConfigError::new(
                    "event.vendor.type",
                    format!("expected polling or webhooks, got {other:?}"),
                ))
            }
        };
        let format = match text(config, "event.notification.format").as_deref() {
            None | Some("cloudelements") => Format::CloudElements,
            Some("cloudevents") => Format::CloudEvents,
            Some(other) => {
                return Err(ConfigError::new(
                    "event.notification.format",
                    format!("expected cloudelements or cloudevents, got {other:?}"),
                ))
            }
        };
        if let Some(t) = text(config, "event.notification.type") {
            if t != "webhook" {
                return Err(ConfigError::new(
                    "event.notification.type",
                    format!("only \"webhook\" is supported, got {t:?}"),
                ));
            }
        }
        let callback_url = match text(config, "event.notification.callback.url") {
            None => None,
            Some(raw) => {
                let url = url::Url::parse(&raw).map_err(|e| {
                    ConfigError::new("event.notification.callback.url", format!("not a URL: {e}"))
                })?;
                if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                    return Err(ConfigError::new(
                        "event.notification.callback.url",
                        "must be an http or https URL with a host",
                    ));
                }
                Some(url)
            }
        };
        if enabled && callback_url.is_none() {
            return Err(ConfigError::new(
                "event.notification.callback.url",
                "required when event.notification.enabled is true",
            ));
        }
        let refresh_interval_minutes = match text(config, "event.poller.refresh_interval") {
            None => None,
            Some(raw) => match raw.parse::<f64>() {
                Ok(n) if n.is_finite() && n > 0.0 => Some(n),
                _ => {
                    return Err(ConfigError::new(
                        "event.poller.refresh_interval",
                        format!("expected a positive number of minutes, got {raw:?}"),
                    ))
                }
            },
        };
        let poller_configuration = match config.get("event.poller.configuration") {
            None | Some(Value::Null) => None,
            Some(Value::Object(o)) => Some(o.clone()),
            Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
                Ok(Value::Object(o)) => Some(o),
                Ok(_) => {
                    return Err(ConfigError::new(
                        "event.poller.configuration",
                        "must be a JSON object (or that object as a JSON string)",
                    ))
                }
                Err(e) => {
                    return Err(ConfigError::new(
                        "event.poller.configuration",
                        format!("is not valid JSON: {e}"),
                    ))
                }
            },
            Some(_) => {
                return Err(ConfigError::new(
                    "event.poller.configuration",
                    "must be a JSON object (or that object as a JSON string)",
                ))
            }
        };
        if enabled && vendor_type == VendorType::Polling && refresh_interval_minutes.is_none() {
            return Err(ConfigError::new(
                "event.poller.refresh_interval",
                "required when event.vendor.type is polling",
            ));
        }
        Ok(Self {
            enabled,
            vendor_type,
            callback_url,
            signature_key: text(config, "event.notification.signature.key").map(|s| s.into_owned()),
            refresh_interval_minutes,
            poller_configuration,
            format,
            filter: filter(config)?,
            ordered: boolean(config, ORDERED_KEY)?.unwrap_or(false),
            headers: super::headers::parse(config)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<EventSettings, ConfigError> {
        EventSettings::parse(v.as_object().unwrap())
    }

    #[test]
    fn accepts_the_seed_forms() {
        let s = parse(json!({
            "event.notification.enabled": "true",
            "event.vendor.type": "webhook",
            "event.notification.callback.url": "https://app.example.com/hook",
            "event.poller.refresh_interval": "15",
            "event.poller.configuration": "{\"tickets\":{\"url\":\"/x\"}}"
        }))
        .unwrap();
        assert!(s.enabled);
        assert_eq!(s.vendor_type, VendorType::Webhooks);
        assert_eq!(s.refresh_interval_minutes, Some(15.0));
        assert!(s.poller_configuration.unwrap().contains_key("tickets"));
        let s = parse(json!({"event.notification.enabled": true, "event.vendor.type": "polling",
            "event.notification.callback.url": "http://localhost:9/x", "event.poller.refresh_interval": 1,
            "event.poller.configuration": {"a": {"url": "/y"}}})).unwrap();
        assert_eq!(s.vendor_type, VendorType::Polling);
    }

    #[test]
    fn ordered_delivery_is_off_unless_asked_for() {
        assert!(!parse(json!({})).unwrap().ordered);
        assert!(
            parse(json!({"event.notification.ordered": "true"}))
                .unwrap()
                .ordered
        );
        assert!(
            parse(json!({"event.notification.ordered": true}))
                .unwrap()
                .ordered
        );
        let err = parse(json!({"event.notification.ordered": "yes"})).unwrap_err();
        assert!(
            err.to_string().contains("event.notification.ordered"),
            "{err}"
        );
    }

    #[test]
    fn reads_the_event_filter() {
        let s =
            parse(json!({"event.objects": " ticket, contact ,", "event.types": "created,DELETED"}))
                .unwrap();
        assert_eq!(
            s.filter.object_types,
            Some(BTreeSet::from([
                "ticket".to_string(),
                "contact".to_string()
            ]))
        );
        assert_eq!(
            s.filter.event_types,
            Some(BTreeSet::from([EventType::Created, EventType::Deleted]))
        );
        let all = parse(json!({"event.objects": "*", "event.types": ""})).unwrap();
        assert!(all.filter.keeps_all());
        let array = parse(json!({"event.objects": ["ticket"]})).unwrap();
        assert_eq!(array.filter.object_types.unwrap().len(), 1);
    }

    #[test]
    fn an_empty_configuration_is_the_disabled_settings() {
        assert_eq!(parse(json!({})).unwrap(), EventSettings::disabled());
    }

    #[test]
    fn names_the_bad_field() {
        let cases = [
            (
                json!({"event.notification.enabled": "yes"}),
                "configuration.event.notification.enabled",
            ),
            (
                json!({"event.notification.enabled": "true"}),
                "configuration.event.notification.callback.url",
            ),
            (
                json!({"event.notification.callback.url": "ftp://x/y"}),
                "configuration.event.notification.callback.url",
            ),
            (
                json!({"event.poller.refresh_interval": "-3"}),
                "configuration.event.poller.refresh_interval",
            ),
            (
                json!({"event.poller.refresh_interval": "soon"}),
                "configuration.event.poller.refresh_interval",
            ),
            (
                json!({"event.poller.configuration": "{not json"}),
                "configuration.event.poller.configuration",
            ),
            (
                json!({"event.vendor.type": "carrier-pigeon"}),
                "configuration.event.vendor.type",
            ),
            (
                json!({"event.notification.type": "email"}),
                "configuration.event.notification.type",
            ),
            (
                json!({"event.types": "CREATED,MOVED"}),
                "configuration.event.types",
            ),
            (json!({"event.objects": 5}), "configuration.event.objects"),
        ];
        for (config, field) in cases {
            let err = parse(config.clone()).expect_err(&config.to_string());
            assert_eq!(err.field, field, "{config}");
        }
    }
}
