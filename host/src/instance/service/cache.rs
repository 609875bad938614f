//! The service's cache of configured instances: an entry is the instance
//! with its parsed settings at one version, kept for a time-to-live
//! ([`moka`]) and dropped as soon as a change to its instance is published.
//!
//! A read that raced a change (it loaded the old row while the change was
//! being published) must not put the old version back: every published
//! change raises the instance's version floor, and an entry below its
//! floor is never kept.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use moka::future::Cache;

use super::{ConfiguredInstance, InstanceChange};

/// How long an entry lives without a change (a safety net: changes are
/// published, so this only bounds how long a missed one could be served).
pub const TIME_TO_LIVE: Duration = Duration::from_secs(60);
/// Most instances kept.
const CAPACITY: u64 = 100_000;

/// Configured instances by id.
#[derive(Clone)]
pub(super) struct ConfiguredCache {
    entries: Cache<i64, Arc<ConfiguredInstance>>,
    /// The lowest version an entry may have, per changed instance
    /// (`i64::MAX` once deleted).
    floors: Arc<Mutex<HashMap<i64, i64>>>,
}

impl ConfiguredCache {
    pub(super) fn new(ttl: Duration) -> Self {
        Self {
            entries: Cache::builder()
                .max_capacity(CAPACITY)
                .time_to_live(ttl)
                .build(),
            floors: Arc::default(),
        }
    }

    fn floor(&self, id: i64) -> i64 {
        self.floors
            .lock()
            .expect("floors lock")
            .get(&id)
            .copied()
            .unwrap_or(i64::MIN)
    }

    /// The cached entry of `id`, if any.
    pub(super) async fn get(&self, id: i64) -> Option<Arc<ConfiguredInstance>> {
        self.entries.get(&id).await
    }

    /// Keeps `entry` unless a newer version of it was published meanwhile.
    pub(super) async fn insert(&self, entry: Arc<ConfiguredInstance>) {
        let (id, version) = (entry.instance.id, entry.instance.version);
        if version < self.floor(id) {
            return;
        }
        self.entries.insert(id, entry).await;
        // A change published between the check and the insert has already
        // invalidated; look again so a stale entry cannot survive it.
        if version < self.floor(id) {
            self.entries.invalidate(&id).await;
        }
    }

    /// Whether a change to `version` (`None`: deleted) was already applied
    /// here: the instance's floor is at or above it.
    pub(super) fn knows(&self, id: i64, version: Option<i64>) -> bool {
        self.floor(id) >= version.unwrap_or(i64::MAX)
    }

    /// Drops every entry (changes may have been missed); the floors stay.
    pub(super) fn clear(&self) {
        self.entries.invalidate_all();
    }

    /// Applies a published change: raises the floor, drops older entries.
    pub(super) async fn apply(&self, change: InstanceChange) {
        let floor = change.version.unwrap_or(i64::MAX);
        {
            let mut floors = self.floors.lock().expect("floors lock");
            let at = floors.entry(change.id).or_insert(i64::MIN);
            *at = (*at).max(floor);
        }
        if self
            .entries
            .get(&change.id)
            .await
            .is_some_and(|e| e.instance.version < floor)
        {
            self.entries.invalidate(&change.id).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Instance;

    fn at(version: i64) -> Arc<ConfiguredInstance> {
        let now = time::OffsetDateTime::now_utc();
        Arc::new(ConfiguredInstance::from_stored(Instance {
            id: 7,
            token: "t".into(),
            element_key: "probe".into(),
            name: "n".into(),
            tags: vec![],
            configuration: serde_json::Map::new(),
            events_enabled: false,
            delivery_paused: None,
            created_at: now,
            updated_at: now,
            version,
        }))
    }

    fn change(version: Option<i64>) -> InstanceChange {
        InstanceChange { id: 7, version }
    }

    #[tokio::test]
    async fn a_change_drops_older_entries_and_keeps_them_out() {
        let cache = ConfiguredCache::new(TIME_TO_LIVE);
        cache.insert(at(1)).await;
        assert_eq!(cache.get(7).await.unwrap().version(), 1);
        cache.apply(change(Some(2))).await;
        assert!(cache.get(7).await.is_none(), "version 1 is stale");
        // A read that raced the change comes back with version 1: not kept.
        cache.insert(at(1)).await;
        assert!(cache.get(7).await.is_none());
        cache.insert(at(2)).await;
        assert_eq!(cache.get(7).await.unwrap().version(), 2);
        // The change that made version 2, announced again, keeps it.
        cache.apply(change(Some(2))).await;
        assert_eq!(cache.get(7).await.unwrap().version(), 2);
        cache.apply(change(None)).await;
        assert!(cache.get(7).await.is_none(), "deleted");
        cache.insert(at(3)).await;
        assert!(
            cache.get(7).await.is_none(),
            "nothing comes back after a delete"
        );
    }

    #[tokio::test]
    async fn entries_expire_after_their_time_to_live() {
        let cache = ConfiguredCache::new(Duration::from_millis(50));
        cache.insert(at(1)).await;
        assert!(cache.get(7).await.is_some());
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert!(cache.get(7).await.is_none());
    }
}
