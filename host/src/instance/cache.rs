//! A cache of instances as ingress needs them: the stored instance with its
//! parsed event settings, the configuration as the plugin sees it, and the
//! hosts its plugin may fetch from. Entries are dropped when the management
//! API changes the instance, and rebuilt when the plugin version changes.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::instance::{self, EventSettings};
use crate::outbound::{HostAllowList, OutboundClient};
use crate::runtime::{ElementDescription, FetchScope};
use crate::store::{Instance, Store};

/// An instance prepared for handling webhooks.
pub struct CachedInstance {
    /// The stored instance.
    pub instance: Instance,
    /// Its parsed event settings.
    pub settings: EventSettings,
    /// Its configuration as the plugin sees it.
    pub config: Vec<(String, String)>,
    /// What its plugin's `https-get` may reach.
    pub fetch: FetchScope,
    plugin_hash: String,
}

/// Instances by id, shared by ingress and the management API.
#[derive(Clone)]
pub struct InstanceCache {
    entries: Arc<RwLock<HashMap<i64, Arc<CachedInstance>>>>,
    outbound: OutboundClient,
}

impl InstanceCache {
    /// An empty cache whose fetch scopes use `outbound`.
    pub fn new(outbound: OutboundClient) -> Self {
        Self {
            entries: Arc::default(),
            outbound,
        }
    }

    /// The instance `id` prepared for the plugin described by `description`
    /// (whose content hash is `plugin_hash`), from cache or the store.
    pub async fn get(
        &self,
        store: &Store,
        description: &ElementDescription,
        plugin_hash: &str,
        id: i64,
    ) -> anyhow::Result<Option<Arc<CachedInstance>>> {
        let hash = plugin_hash;
        if let Some(hit) = self.entries.read().expect("cache lock").get(&id) {
            if hit.plugin_hash == hash {
                return Ok(Some(hit.clone()));
            }
        }
        let Some(instance) = store.get_instance(id).await? else {
            return Ok(None);
        };
        let settings = EventSettings::parse(&instance.configuration).unwrap_or_else(|e| {
            tracing::error!(instance = id, error = %e, "stored instance has invalid event settings; events treated as disabled");
            EventSettings::parse(&serde_json::Map::new()).expect("empty settings are valid")
        });
        let patterns = instance::fetch_hosts(description, &instance.configuration);
        let allowed = HostAllowList::from_patterns(patterns.iter()).unwrap_or_else(|e| {
            tracing::warn!(instance = id, error = %e, "ignoring unusable fetch host patterns");
            HostAllowList::default()
        });
        let entry = Arc::new(CachedInstance {
            config: instance::plugin_config(&instance.configuration),
            settings,
            fetch: FetchScope {
                client: Some(self.outbound.clone()),
                allowed: Arc::new(allowed),
            },
            instance,
            plugin_hash: hash.to_string(),
        });
        self.entries
            .write()
            .expect("cache lock")
            .insert(id, entry.clone());
        Ok(Some(entry))
    }

    /// Forgets instance `id` (after it changed or was deleted).
    pub fn invalidate(&self, id: i64) {
        self.entries.write().expect("cache lock").remove(&id);
    }
}
