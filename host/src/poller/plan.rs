//! What polling one instance takes, worked out once per version of the
//! instance (and of its element's default poll configuration): its parsed
//! event settings, its configuration as the plugin sees it, its resources —
//! its own, or its element's defaults when it names none — and its polling
//! period.

use std::time::Duration;

use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::instance::resources::Resource;
use crate::instance::{self, ConfiguredInstance, EventSettings, VendorType};

/// One instance, ready to poll.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The instance id.
    pub id: i64,
    /// The element key.
    pub element_key: String,
    /// The instance's name, for notifications.
    pub name: String,
    /// The instance's tags, for notifications.
    pub tags: Vec<String>,
    /// When the instance was last changed.
    pub updated_at: OffsetDateTime,
    /// The instance version the plan was made from.
    pub version: i64,
    /// Its event settings (format of notifications).
    pub settings: EventSettings,
    /// Its configuration as the plugin sees it.
    pub config: Vec<(String, String)>,
    /// Its resources, in configuration order.
    pub resources: Vec<Resource>,
    /// Time between planned polls.
    pub interval: Duration,
    /// The element's default poll configuration when the plan was made
    /// (used only if the instance names no resources).
    pub element_defaults: Option<Map<String, Value>>,
}

impl Plan {
    /// The plan of `configured`, or `None` when it is not polled: events
    /// off, webhooks, or no resources — neither its own nor
    /// `element_defaults`, its element's default poll configuration. A
    /// stored poll configuration that no longer parses (it was valid when
    /// saved) is logged and not polled.
    pub fn of(
        configured: &ConfiguredInstance,
        element_defaults: Option<&Map<String, Value>>,
        min_interval: Duration,
    ) -> Option<Plan> {
        let (instance, settings) = (&configured.instance, &configured.settings);
        if !settings.enabled || settings.vendor_type != VendorType::Polling {
            return None;
        }
        let resources = match instance::poll::resources(element_defaults, &instance.configuration) {
            Ok(r) if !r.resources.is_empty() => r.resources,
            Ok(_) => return None,
            Err(e) => {
                tracing::error!(instance = instance.id, error = %e, "stored poll configuration is invalid; not polling");
                return None;
            }
        };
        let minutes = settings.refresh_interval_minutes?;
        Some(Plan {
            id: instance.id,
            element_key: instance.element_key.clone(),
            name: instance.name.clone(),
            tags: instance.tags.clone(),
            updated_at: instance.updated_at,
            version: instance.version,
            config: instance::plugin_config(&instance.configuration),
            resources,
            interval: interval(minutes, min_interval),
            settings: settings.clone(),
            element_defaults: element_defaults.cloned(),
        })
    }

    /// Whether this plan still fits `configured` and its element's current
    /// default poll configuration.
    pub fn is_current(
        &self,
        configured: &ConfiguredInstance,
        element_defaults: Option<&Map<String, Value>>,
    ) -> bool {
        self.version == configured.version() && self.element_defaults.as_ref() == element_defaults
    }
}

/// `refresh_interval` minutes, raised to the operator's minimum.
pub fn interval(minutes: f64, min_interval: Duration) -> Duration {
    Duration::try_from_secs_f64(minutes * 60.0)
        .unwrap_or(Duration::MAX)
        .max(min_interval)
        .max(Duration::from_millis(10))
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use time::macros::datetime;

    use super::*;
    use crate::store::Instance;

    fn instance(config: serde_json::Value, enabled: bool) -> ConfiguredInstance {
        let mut config = config;
        if !enabled {
            config["event.notification.enabled"] = json!("false");
        }
        ConfiguredInstance::from_stored(Instance {
            id: 7,
            token: "t".into(),
            element_key: "connectwise".into(),
            name: "acme".into(),
            tags: vec![],
            configuration: config.as_object().unwrap().clone(),
            events_enabled: enabled,
            delivery_paused: None,
            created_at: datetime!(2024-05-01 0:00 UTC),
            updated_at: datetime!(2024-05-02 0:00 UTC),
            version: 1,
        })
    }

    fn polling(minutes: &str) -> serde_json::Value {
        json!({"event.notification.enabled": "true", "event.vendor.type": "polling",
               "event.notification.callback.url": "https://app.example.com/hook",
               "event.poller.refresh_interval": minutes,
               "event.poller.configuration": {"tickets": {"url": "/service/tickets"}}})
    }

    #[test]
    fn polls_only_enabled_polling_instances_with_resources() {
        let min = Duration::from_secs(60);
        let plan = Plan::of(&instance(polling("15"), true), None, min).unwrap();
        assert_eq!(plan.interval, Duration::from_secs(900));
        assert_eq!(plan.resources[0].name, "tickets");
        assert!(Plan::of(&instance(polling("15"), false), None, min).is_none());
        let mut webhooks = polling("15");
        webhooks["event.vendor.type"] = json!("webhooks");
        assert!(Plan::of(&instance(webhooks, true), None, min).is_none());
        let mut empty = polling("15");
        empty["event.poller.configuration"] = json!({});
        assert!(Plan::of(&instance(empty, true), None, min).is_none());
    }

    #[test]
    fn an_instance_naming_no_resources_polls_its_element_s_defaults() {
        let min = Duration::from_secs(60);
        let mut bare = polling("15");
        bare.as_object_mut()
            .unwrap()
            .remove("event.poller.configuration");
        let bare = instance(bare, true);
        let defaults = json!({"companies": {"url": "/company/companies"}, "contacts": {}});
        let defaults = defaults.as_object().unwrap();
        let plan = Plan::of(&bare, Some(defaults), min).unwrap();
        let names: Vec<&str> = plan.resources.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["companies", "contacts"]);
        assert!(plan.is_current(&bare, Some(defaults)));
        // New defaults from a new plugin version make the plan stale.
        let newer = json!({"companies": {"url": "/company/companies", "pageSize": 50}});
        assert!(!plan.is_current(&bare, newer.as_object()));
        assert!(Plan::of(&bare, None, min).is_none());
        // An instance that names its own resources ignores the defaults.
        let own = Plan::of(&instance(polling("15"), true), Some(defaults), min).unwrap();
        assert_eq!(own.resources.len(), 1);
        assert_eq!(own.resources[0].name, "tickets");
    }

    #[test]
    fn short_intervals_are_raised_to_the_minimum() {
        assert_eq!(
            interval(0.01, Duration::from_secs(60)),
            Duration::from_secs(60)
        );
        assert_eq!(interval(0.01, Duration::ZERO), Duration::from_millis(600));
        assert_eq!(
            interval(1.5, Duration::from_secs(1)),
            Duration::from_secs(90)
        );
    }
}
