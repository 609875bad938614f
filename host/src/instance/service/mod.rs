//! The instance service: the one way instances are written, and the one
//! place their configuration is parsed.
//!
//! - **Writes** (the management API's create, change, events switch and
//!   delete, signing-key rotation, delivery's pause after 410 Gone) go
//!   through [`InstanceService`]: it validates the configuration against the
//!   element ([`crate::instance::validate`]) and bounds the name and tags,
//!   writes with the store's optimistic version check, and publishes an
//!   [`InstanceChange`].
//! - **Reads** hand out [`ConfiguredInstance`]s — the stored instance with
//!   its typed [`EventSettings`], parsed once per version — from a cache
//!   with a time-to-live that every published change invalidates.
//! - **Subscribers** ([`InstanceService::subscribe`]: the poller, delivery)
//!   apply changes from the channel; nobody is called by the writer.
//!
//! "Events on" has one source of truth: the `event.notification.enabled`
//! setting, read as [`EventSettings::enabled`]. The store's
//! `events_enabled` column is a copy the service writes alongside it and
//! nobody reads.
//!
//! A second source of changes — another process on the same database,
//! announced by a database notification (PostgreSQL `LISTEN/NOTIFY`) —
//! plugs in by calling [`InstanceService::publish`] with the changed id and
//! version: the cache drops what it had and every subscriber re-reads the
//! instance, exactly as for a local write.

mod cache;
mod changes;
mod labels;
mod subscription;
mod write;

use std::sync::Arc;
use std::time::Duration;

use crate::outbound::AddressPolicy;
use crate::runtime::ElementDescription;
use crate::store::{Instance, Store, StoreError, VendorSubscription};

use super::{ConfigError, EventSettings, KeyWarning};
use cache::ConfiguredCache;

pub use cache::TIME_TO_LIVE;
pub use changes::{InstanceChange, Notice, Received, Subscription};
pub use labels::{MAX_NAME_CHARS, MAX_TAGS, MAX_TAG_CHARS};
pub use subscription::{Deleted, ResubscribeError};
pub use write::{Edit, InstanceDraft};

/// How long a writer waits for the subscribers to apply its change.
const APPLY_BOUND: Duration = Duration::from_secs(10);

/// The description of the loaded element with a key (or alias); `None`
/// when no loaded plugin serves it. The server wires it to the plugin
/// registry (which itself reads [`crate::instance`], so the service does not
/// name it).
pub type Elements = Arc<dyn Fn(&str) -> Option<ElementDescription> + Send + Sync>;

/// A stored instance with its event settings parsed.
#[derive(Clone, Debug)]
pub struct ConfiguredInstance {
    /// The stored instance (its `version` is the version these settings
    /// were parsed from).
    pub instance: Instance,
    /// Its event settings: the one source of truth for "events on"
    /// ([`EventSettings::enabled`]).
    pub settings: EventSettings,
}

impl ConfiguredInstance {
    /// Parses a stored instance's settings. A stored configuration that no
    /// longer parses (it was valid when written) is logged and treated as
    /// events off.
    pub fn from_stored(instance: Instance) -> Self {
        let settings = EventSettings::parse(&instance.configuration).unwrap_or_else(|e| {
            tracing::error!(instance = instance.id, error = %e, "stored instance has invalid event settings; events treated as off");
            EventSettings::disabled()
        });
        Self { instance, settings }
    }

    /// The instance id.
    pub fn id(&self) -> i64 {
        self.instance.id
    }

    /// The version these settings belong to.
    pub fn version(&self) -> i64 {
        self.instance.version
    }
}

/// Why a write was not made.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The request is invalid; names the field.
    #[error(transparent)]
    Invalid(#[from] ConfigError),
    /// No such instance.
    #[error("no instance {0}")]
    NotFound(i64),
    /// The instance is not at the version the caller named.
    #[error("instance {id} is at version {found}, not {expected}")]
    Stale {
        /// The instance id.
        id: i64,
        /// The version the caller named.
        expected: i64,
        /// The version stored.
        found: i64,
    },
    /// The vendor refused to register the instance (the element's message
    /// names the vendor's status and message); nothing was created.
    #[error("{0}")]
    Vendor(String),
    /// Others kept changing the instance while this change was merged.
    #[error("instance {0} kept changing meanwhile; try again")]
    Busy(i64),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A write that was made.
#[derive(Debug)]
pub struct Written {
    /// The instance as written.
    pub instance: Arc<ConfiguredInstance>,
    /// Configuration keys the write set that nothing reads.
    pub warnings: Vec<KeyWarning>,
    /// The instance's vendor subscription after the write, when the write
    /// touched it.
    pub subscription: Option<VendorSubscription>,
}

/// The instance service. Cheap to clone.
#[derive(Clone)]
pub struct InstanceService {
    store: Store,
    elements: Elements,
    cache: ConfiguredCache,
    changes: changes::InstanceChanges,
    policy: AddressPolicy,
    key_grace: Duration,
    vendors: Option<subscription::Vendors>,
}

impl InstanceService {
    /// A service writing to `store`, validating against the loaded
    /// `elements` and callback URLs against `policy`; a replaced signing
    /// key keeps signing for `key_grace`.
    pub fn new(
        store: Store,
        elements: Elements,
        policy: AddressPolicy,
        key_grace: Duration,
    ) -> Self {
        Self::with_ttl(store, elements, policy, key_grace, TIME_TO_LIVE)
    }

    /// [`InstanceService::new`] with the cache's time-to-live given.
    pub fn with_ttl(
        store: Store,
        elements: Elements,
        policy: AddressPolicy,
        key_grace: Duration,
        ttl: Duration,
    ) -> Self {
        Self {
            store,
            elements,
            cache: ConfiguredCache::new(ttl),
            changes: changes::InstanceChanges::default(),
            policy,
            key_grace,
            vendors: None,
        }
    }

    /// A subscription to every change published from now on.
    pub fn subscribe(&self) -> Subscription {
        self.changes.subscribe()
    }

    /// Feeds a change made elsewhere (e.g. by another process on the same
    /// database) into the channel: the cache drops the instance and every
    /// subscriber re-reads it. Nobody waits for it to be applied.
    /// A change at a version this service already published (its own
    /// write, echoed back by the database) is ignored.
    pub async fn publish(&self, change: InstanceChange) {
        if self.cache.knows(change.id, change.version) {
            return;
        }
        self.cache.apply(change).await;
        self.changes.announce(change);
    }

    /// Announces that any instance may have changed elsewhere (database
    /// notifications were missed): the cache is emptied and every
    /// subscriber re-reads everything.
    pub fn resync(&self) {
        self.cache.clear();
        self.changes.announce_all();
    }

    /// Publishes a change made here and waits until every subscriber has
    /// applied it.
    async fn published(&self, change: InstanceChange) {
        self.cache.apply(change).await;
        self.changes.announce_and_wait(change, APPLY_BOUND).await;
    }

    /// The instance `id` with its settings, from the cache or the store.
    pub async fn get(&self, id: i64) -> Result<Option<Arc<ConfiguredInstance>>, StoreError> {
        if let Some(hit) = self.cache.get(id).await {
            return Ok(Some(hit));
        }
        let Some(stored) = self.store.get_instance(id).await? else {
            return Ok(None);
        };
        let configured = Arc::new(ConfiguredInstance::from_stored(stored));
        self.cache.insert(configured.clone()).await;
        Ok(Some(configured))
    }

    /// The instance `id` as stored right now (bypassing the cache).
    pub async fn load(&self, id: i64) -> Result<Option<Arc<ConfiguredInstance>>, StoreError> {
        let Some(stored) = self.store.get_instance(id).await? else {
            return Ok(None);
        };
        let configured = Arc::new(ConfiguredInstance::from_stored(stored));
        self.cache.insert(configured.clone()).await;
        Ok(Some(configured))
    }

    /// Every instance as stored right now, by id.
    pub async fn list(&self) -> Result<Vec<Arc<ConfiguredInstance>>, StoreError> {
        Ok(self
            .store
            .list_instances()
            .await?
            .into_iter()
            .map(|i| Arc::new(ConfiguredInstance::from_stored(i)))
            .collect())
    }
}
