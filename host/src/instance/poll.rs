//! Which resources a polling instance polls: those its configuration names
//! (`event.poller.configuration`, or the legacy `event.poller.urls`), else
//! the default poll configuration its element declares. Resolved whenever
//! the poller plans the instance, so an element's new defaults apply to
//! instances that name none without changing them.

use serde::Serialize;
use serde_json::{Map, Value};

use super::resources::{self as resource, Resource, CONFIGURATION_KEY};
use super::{ConfigError, EventSettings, VendorType};
use crate::runtime::ElementDescription;

/// Where the resources an instance polls come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum PollSource {
    /// The instance's own configuration.
    Instance,
    /// The element's default poll configuration.
    Element,
}

/// The resources an instance polls, and where they come from.
#[derive(Clone, Debug)]
pub struct PollResources {
    /// The resources, in configuration order; empty when neither the
    /// instance nor its element names any.
    pub resources: Vec<Resource>,
    /// Where they come from.
    pub source: PollSource,
}

/// The resources `configuration` polls, with `defaults` (the element's
/// default poll configuration) standing in when it names none. The error
/// names the field at fault.
pub fn resources(
    defaults: Option<&Map<String, Value>>,
    configuration: &Map<String, Value>,
) -> Result<PollResources, ConfigError> {
    let own = resource::parse_all(configuration)?;
    match defaults {
        Some(defaults) if own.is_empty() => Ok(PollResources {
            resources: resource::parse_object(defaults)?,
            source: PollSource::Element,
        }),
        _ => Ok(PollResources {
            resources: own,
            source: PollSource::Instance,
        }),
    }
}

/// Checks that a polling instance with events on will poll something: it
/// names resources, or its element declares defaults.
pub(super) fn check_has_resources(
    element: &ElementDescription,
    settings: &EventSettings,
    configuration: &Map<String, Value>,
) -> Result<(), ConfigError> {
    if !settings.enabled || settings.vendor_type != VendorType::Polling {
        return Ok(());
    }
    let found = resources(element.default_poll_configuration.as_ref(), configuration)?;
    if found.resources.is_empty() {
        return Err(ConfigError::new(
            CONFIGURATION_KEY,
            format!(
                "required for a polling instance: element {} declares no default poll resources, \
                 so the instance must name the resources it polls",
                element.key
            ),
        ));
    }
    Ok(())
}

/// Checks an element's default poll configuration as the poller will read
/// it, when the plugin is loaded.
pub fn check_defaults(element: &ElementDescription) -> Result<(), ConfigError> {
    match &element.default_poll_configuration {
        Some(defaults) if defaults.is_empty() => Err(ConfigError::new(
            CONFIGURATION_KEY,
            "the element's default poll configuration names no resources",
        )),
        Some(defaults) => resource::parse_object(defaults).map(drop),
        None => Ok(()),
    }
}

/// What a polling instance is polled with, as the API shows it.
#[derive(Clone, Debug, Serialize)]
pub struct EffectivePollConfiguration {
    /// Where the resources come from.
    pub source: PollSource,
    /// Resource name → its poll configuration, in the format of
    /// `event.poller.configuration`.
    pub resources: Map<String, Value>,
}

/// The poll configuration a polling instance (event settings `settings`)
/// is polled with; `None` for a webhooks instance or a configuration that
/// does not parse.
pub fn effective(
    element: Option<&ElementDescription>,
    settings: &EventSettings,
    configuration: &Map<String, Value>,
) -> Option<EffectivePollConfiguration> {
    if settings.vendor_type != VendorType::Polling {
        return None;
    }
    let defaults = element.and_then(|e| e.default_poll_configuration.as_ref());
    let found = resources(defaults, configuration).ok()?;
    Some(EffectivePollConfiguration {
        source: found.source,
        resources: found
            .resources
            .iter()
            .map(|r| {
                let object = serde_json::from_str(&r.config_json).unwrap_or(Value::Null);
                (r.name.clone(), object)
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn names(found: &PollResources) -> Vec<&str> {
        found.resources.iter().map(|r| r.name.as_str()).collect()
    }

    #[test]
    fn the_instance_s_own_resources_win_over_the_element_s() {
        let defaults = map(json!({"tickets": {"url": "/service/tickets"}, "contacts": {}}));
        let own = map(json!({"event.poller.configuration": {"companies": {}}}));
        let found = resources(Some(&defaults), &own).unwrap();
        assert_eq!(
            (names(&found), found.source),
            (vec!["companies"], PollSource::Instance)
        );
        let legacy = map(json!({"event.poller.urls": "projects|/project/projects"}));
        let found = resources(Some(&defaults), &legacy).unwrap();
        assert_eq!(
            (names(&found), found.source),
            (vec!["projects"], PollSource::Instance)
        );
    }

    #[test]
    fn an_instance_naming_none_polls_the_element_s_defaults() {
        let defaults = map(json!({"tickets": {"url": "/service/tickets"}, "contacts": {}}));
        for configuration in [json!({}), json!({"event.poller.configuration": ""})] {
            let found = resources(Some(&defaults), &map(configuration)).unwrap();
            assert_eq!(found.source, PollSource::Element);
            assert_eq!(names(&found), ["contacts", "tickets"]);
        }
        let found = resources(None, &map(json!({}))).unwrap();
        assert!(found.resources.is_empty());
    }

    #[test]
    fn invalid_defaults_name_the_resource_at_fault() {
        let defaults = map(json!({"tickets": {"url": "/x/${nope}"}}));
        let err = resources(Some(&defaults), &Map::new()).unwrap_err();
        assert_eq!(
            err.field,
            "configuration.event.poller.configuration.tickets.url"
        );
    }
}
