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
