//! Instances as ingress needs them for a plugin call: the configured
//! instance (typed settings, from the [`InstanceService`]), its
//! configuration as the plugin sees it, and the hosts its plugin may fetch
//! from.
//!
//! An entry carries the instance version and plugin it was built for: it is
//! used only while the service still hands out that version (the service's
//! own cache is invalidated by every published change) and the element's
//! plugin is the same; otherwise it is rebuilt. Entries expire after a
//! time-to-live ([`moka`]), so deleted instances do not linger.

use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;

use crate::instance::{self, ConfiguredInstance, InstanceService};
use crate::outbound::{HostAllowList, OutboundClient};
use crate::runtime::{ElementDescription, FetchScope};
use crate::store::StoreError;

/// Most instances kept ready.
const CAPACITY: u64 = 100_000;

/// An instance prepared for handling webhooks.
pub struct CachedInstance {
    /// The instance with its settings, at the version this entry was built
    /// from.
    pub configured: Arc<ConfiguredInstance>,
    /// Its configuration as the plugin sees it.
    pub config: Vec<(String, String)>,
    /// What its plugin's `https-get` may reach.
    pub fetch: FetchScope,
    plugin_hash: String,
}

/// Instances by id, prepared for plugin calls.
#[derive(Clone)]
pub struct InstanceCache {
    entries: Cache<i64, Arc<CachedInstance>>,
    service: InstanceService,
    outbound: OutboundClient,
}

impl InstanceCache {
    /// An empty cache reading instances from `service`, whose fetch scopes
    /// use `outbound`; entries live at most `ttl`.
    pub fn new(service: InstanceService, outbound: OutboundClient, ttl: Duration) -> Self {
        Self {
            entries: Cache::builder()
                .max_capacity(CAPACITY)
                .time_to_live(ttl)
                .build(),
            service,
            outbound,
        }
    }

    /// The instance `id` prepared for the plugin described by `description`
    /// (whose content hash is `plugin_hash`).
    pub async fn get(
        &self,
        description: &ElementDescription,
        plugin_hash: &str,
        id: i64,
    ) -> Result<Option<Arc<CachedInstance>>, StoreError> {
        let Some(configured) = self.service.get(id).await? else {
            self.entries.invalidate(&id).await;
            return Ok(None);
        };
        if let Some(hit) = self.entries.get(&id).await {
            if hit.plugin_hash == plugin_hash && hit.configured.version() == configured.version() {
                return Ok(Some(hit));
            }
        }
        let stored = &configured.instance;
        let patterns = instance::fetch_hosts(description, &stored.configuration);
        let allowed = HostAllowList::from_patterns(patterns.iter()).unwrap_or_else(|e| {
            tracing::warn!(instance = id, error = %e, "ignoring unusable fetch host patterns");
            HostAllowList::default()
        });
        let entry = Arc::new(CachedInstance {
            config: instance::plugin_config(&stored.configuration),
            fetch: FetchScope {
                client: Some(self.outbound.clone()),
                allowed: Arc::new(allowed),
                fixtures: None,
            },
            configured,
            plugin_hash: plugin_hash.to_string(),
        });
        self.entries.insert(id, entry.clone()).await;
        Ok(Some(entry))
    }
}
