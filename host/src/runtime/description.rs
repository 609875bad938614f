//! What an element says about itself (its `describe` export), checked once
//! when the plugin loads and kept in the form the API shows.

use serde::Serialize;
use serde_json::{Map, Value};

use super::bindings;
use super::contract::ContractVersion;
use super::{ElementInfo, LoadError};

/// The prefix of plugboard's own instance settings (SPEC §1: where
/// notifications go, the key they are signed with, their extra headers, how
/// the instance is polled). They are the host's business: an element is not
/// given them in its `config` and may not declare a key with this prefix.
pub const HOST_KEY_PREFIX: &str = "event.";

/// What an element says about itself, in a form the API can show.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ElementDescription {
    /// Element key, e.g. `connectwise`.
    pub key: String,
    /// Other keys that name this element.
    pub aliases: Vec<String>,
    /// Human-readable name.
    pub name: String,
    /// Plugin version.
    pub version: String,
    /// Supported modes: `webhooks`, `polling`.
    pub modes: Vec<&'static str>,
    /// Configuration keys the element understands.
    pub config_keys: Vec<ConfigKeyDescription>,
    /// Hosts the element may fetch from for any instance.
    pub fetch_hosts: Vec<String>,
    /// Configuration keys whose URL's host the element may fetch from.
    pub fetch_host_config_keys: Vec<String>,
    /// What a polling instance polls when its configuration names no
    /// resources: an `event.poller.configuration` object (resource name →
    /// poll configuration). Always `None` for a 0.1.0 component.
    pub default_poll_configuration: Option<Map<String, Value>>,
    /// Whether the element declared that its answers depend only on each
    /// call's arguments, so calls may be served by warm instances. Always
    /// false for a 0.1.0 component.
    pub stateless: bool,
    /// The contract version the component implements.
    pub contract_version: ContractVersion,
    /// Whether the element implements the optional `subscription`
    /// interface: it registers instances' inbound URLs at the vendor.
    pub subscribes: bool,
}

/// One configuration key of an element.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigKeyDescription {
    /// The key.
    pub name: String,
    /// Whether instances must set it.
    pub required: bool,
    /// Whether its value is secret (redacted in responses and logs).
    pub secret: bool,
    /// What it is.
    pub description: String,
}

impl ElementDescription {
    pub(super) fn from_wit(
        info: ElementInfo,
        contract_version: ContractVersion,
        subscribes: bool,
    ) -> Result<Self, LoadError> {
        let valid_key = |k: &str| {
            !k.is_empty()
                && k.len() <= 64
                && k.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        };
        if !valid_key(&info.key) {
            return Err(LoadError::Describe(format!(
                "element key {:?} must be 1-64 characters of a-z, 0-9, '-' or '_'",
                info.key
            )));
        }
        if let Some(bad) = info.aliases.iter().find(|a| !valid_key(a)) {
            return Err(LoadError::Describe(format!(
                "alias {bad:?} must be 1-64 characters of a-z, 0-9, '-' or '_'"
            )));
        }
        if info.version.trim().is_empty() {
            return Err(LoadError::Describe("version is empty".into()));
        }
        let declared = (info.config_keys.iter().map(|k| &k.name))
            .chain(&info.fetch_host_config_keys)
            .find(|name| name.starts_with(HOST_KEY_PREFIX));
        if let Some(name) = declared {
            return Err(LoadError::Describe(format!(
                "configuration key {name:?} is in plugboard's own namespace ({HOST_KEY_PREFIX}*), \
                 whose settings are never given to an element; name the element's keys after \
                 the vendor (e.g. github.webhook.secret)"
            )));
        }
        let mut modes = Vec::new();
        if info.modes.contains(bindings::EventModes::WEBHOOKS) {
            modes.push("webhooks");
        }
        if info.modes.contains(bindings::EventModes::POLLING) {
            modes.push("polling");
        }
        let default_poll_configuration = match info.default_poll_configuration {
            None => None,
            Some(text) => match serde_json::from_str(&text) {
                Ok(Value::Object(resources)) if modes.contains(&"polling") => Some(resources),
                Ok(Value::Object(_)) => return Err(LoadError::Describe(
                    "default-poll-configuration is set, but the element does not support polling"
                        .into(),
                )),
                _ => {
                    return Err(LoadError::Describe(
                        "default-poll-configuration must be the JSON text of an object \
                         (resource name → poll configuration)"
                            .into(),
                    ))
                }
            },
        };
        Ok(Self {
            key: info.key,
            aliases: info.aliases,
            name: info.name,
            version: info.version,
            modes,
            config_keys: info
                .config_keys
                .into_iter()
                .map(|k| ConfigKeyDescription {
                    name: k.name,
                    required: k.required,
                    secret: k.secret,
                    description: k.description,
                })
                .collect(),
            fetch_hosts: info.fetch_hosts,
            fetch_host_config_keys: info.fetch_host_config_keys,
            default_poll_configuration,
            stateless: info.stateless,
            contract_version,
            subscribes,
        })
    }

    /// Whether the element supports the given mode (`webhooks` or `polling`).
    pub fn supports(&self, mode: &str) -> bool {
        self.modes.contains(&mode)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{ConfigKey, EventModes};

    fn info(config_key: &str, fetch_host_config_key: &str) -> ElementInfo {
        ElementInfo {
            key: "vendor".into(),
            aliases: Vec::new(),
            name: "Vendor".into(),
            version: "1.0.0".into(),
            modes: EventModes::WEBHOOKS,
            config_keys: vec![ConfigKey {
                name: config_key.into(),
                required: false,
                secret: true,
                description: String::new(),
            }],
            fetch_hosts: Vec::new(),
            fetch_host_config_keys: vec![fetch_host_config_key.into()],
            default_poll_configuration: None,
            stateless: true,
        }
    }

    fn load(info: ElementInfo) -> Result<ElementDescription, LoadError> {
        ElementDescription::from_wit(info, ContractVersion::V0_2, false)
    }

    #[test]
    fn an_element_may_not_declare_plugboards_own_settings() {
        let own = "event.notification.signature.key";
        for refused in [info(own, "vendor.url"), info("vendor.secret", "event.x")] {
            let error = load(refused).unwrap_err().to_string();
            assert!(
                error.contains("plugboard's own namespace (event.*)"),
                "{error}"
            );
        }
        let error = load(info(own, "vendor.url")).unwrap_err().to_string();
        assert!(error.contains(own), "{error}");
        let loaded = load(info("vendor.secret", "vendor.url")).unwrap();
        assert_eq!(loaded.config_keys[0].name, "vendor.secret");
        // A key that merely contains the word is the element's own.
        assert!(load(info("vendor.event.secret", "vendor.events.url")).is_ok());
    }
}
