//! The vendor side of an instance: asking its element to register the
//! instance's inbound URL at the vendor, or to remove it, through the
//! element's optional `subscription` exports.
//!
//! A call gets the instance's configuration as the plugin sees it and the
//! fetch scope of the instance (the element's declared hosts and the hosts
//! of its URL-valued configuration keys), so every vendor request goes
//! through the outbound policy exactly as a webhook call's fetches do. The
//! [`InstanceService`](super::InstanceService) decides when to call; this
//! module only makes the call and names its failure.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::outbound::{HostAllowList, OutboundClient};
use crate::runtime::{CallLabel, ElementPlugin, FetchScope};

/// The loaded plugin of an element key (or alias); `None` when no loaded
/// plugin serves it. The server wires it to the plugin registry.
pub type Plugins = Arc<dyn Fn(&str) -> Option<ElementPlugin> + Send + Sync>;

/// Makes the subscription calls of elements. Cheap to clone.
#[derive(Clone)]
pub struct VendorLink {
    plugins: Plugins,
    outbound: OutboundClient,
}

/// The one instance a call is about.
pub struct Subject<'a> {
    /// Its id.
    pub id: i64,
    /// Its element key.
    pub element_key: &'a str,
    /// Its configuration (the one the registration is made or was made
    /// with).
    pub configuration: &'a Map<String, Value>,
}

/// Everything one call needs.
struct Prepared {
    plugin: ElementPlugin,
    config: Vec<(String, String)>,
    fetch: FetchScope,
    label: CallLabel,
}

impl VendorLink {
    /// A link calling the plugins `plugins` finds, whose vendor requests go
    /// through `outbound`.
    pub fn new(plugins: Plugins, outbound: OutboundClient) -> Self {
        Self { plugins, outbound }
    }

    /// The plugin of `subject`, with its configuration and fetch scope.
    fn prepare(&self, subject: &Subject<'_>) -> Result<Prepared, String> {
        let plugin = (self.plugins)(subject.element_key)
            .ok_or_else(|| format!("no element plugin '{}' is loaded", subject.element_key))?;
        let patterns = super::fetch_hosts(plugin.description(), subject.configuration);
        let allowed = HostAllowList::from_patterns(patterns.iter())
            .map_err(|e| format!("the element's fetch hosts are unusable: {e}"))?;
        let fetch = FetchScope {
            client: Some(self.outbound.clone()),
            allowed: Arc::new(allowed),
            fixtures: None,
        };
        let label = CallLabel {
            element: plugin.description().key.clone(),
            instance: Some(subject.id),
        };
        let config = super::plugin_config(subject.configuration);
        Ok(Prepared {
            plugin,
            config,
            fetch,
            label,
        })
    }

    /// Asks the element to register `callback_url` for `subject`; what to
    /// remember, or the element's message.
    #[tracing::instrument(skip_all, fields(instance = subject.id, element = subject.element_key))]
    pub async fn subscribe(
        &self,
        subject: &Subject<'_>,
        callback_url: &str,
        previous: Option<&str>,
    ) -> Result<String, String> {
        let call = self.prepare(subject)?;
        let result = call
            .plugin
            .subscribe(call.label, call.fetch, &call.config, callback_url, previous)
            .await;
        match &result {
            Ok(_) => tracing::info!("subscribed at the vendor"),
            Err(e) => tracing::warn!(error = %e, "subscribing at the vendor failed"),
        }
        result.map_err(|e| e.to_string())
    }

    /// Asks the element to remove what it registered for `subject`
    /// (`remembered`); the element's message on failure.
    #[tracing::instrument(skip_all, fields(instance = subject.id, element = subject.element_key))]
    pub async fn unsubscribe(&self, subject: &Subject<'_>, remembered: &str) -> Result<(), String> {
        let call = self.prepare(subject)?;
        let result = call
            .plugin
            .unsubscribe(call.label, call.fetch, &call.config, remembered)
            .await;
        match &result {
            Ok(()) => tracing::info!("unsubscribed at the vendor"),
            Err(e) => tracing::warn!(error = %e, "unsubscribing at the vendor failed"),
        }
        result.map_err(|e| e.to_string())
    }
}
