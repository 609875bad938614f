//! A small, bounded, time-limited cache of successful plugin fetches.
//!
//! Plugins fetch things like signing keys on every inbound webhook; the cache keeps one
//! vendor request from turning into one fetch per event. Only 2xx responses are stored,
//! keyed by URL and request headers, for a fixed time-to-live. Concurrent misses for the
//! same key wait for a single fetch instead of each sending their own, and share its
//! outcome: a failure or a non-2xx answer goes to every caller that waited for it (so a
//! failing vendor is not asked again by each of them) and is not stored. The cache holds
//! at most a fixed number of entries, the least recently used going first.
//!
//! [`moka`] does the work: `try_get_with` is the single flight, `time_to_live` the
//! expiry, `max_capacity` with the LRU policy the bound.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;
use moka::policy::EvictionPolicy;

use super::error::FetchError;
use super::response::OutboundResponse;

/// What identifies a cached fetch: the URL and the request headers, names lower-cased and
/// sorted, so the same request in another header order hits the same entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct CacheKey {
    url: String,
    headers: Vec<(String, String)>,
}

impl CacheKey {
    /// The key of a GET of `url` with `headers`.
    pub(super) fn new(url: &str, headers: &[(String, String)]) -> Self {
        let mut headers: Vec<_> = headers
            .iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value.clone()))
            .collect();
        headers.sort();
        Self {
            url: url.to_owned(),
            headers,
        }
    }
}

/// Why a fetch left nothing to store.
enum Miss {
    Failed(FetchError),
    NotCacheable(OutboundResponse),
}

/// The cache itself; `None` when caching is off (a zero time-to-live).
pub(super) struct ResponseCache {
    entries: Option<Cache<CacheKey, OutboundResponse>>,
}

impl ResponseCache {
    /// A cache keeping successful responses for `ttl`, holding at most `capacity` entries.
    /// A zero `ttl` disables caching.
    pub(super) fn new(ttl: Duration, capacity: usize) -> Self {
        let entries = (!ttl.is_zero()).then(|| {
            Cache::builder()
                .max_capacity(capacity.max(1) as u64)
                .time_to_live(ttl)
                .eviction_policy(EvictionPolicy::lru())
                .build()
        });
        Self { entries }
    }

    /// Returns the cached response for `key`, or runs `fetch` (once, however many callers
    /// are waiting) and caches its result if it is a 2xx. Errors and other statuses go back
    /// to the callers that waited for that fetch, uncached.
    pub(super) async fn get_or_fetch<F, Fut>(
        &self,
        key: CacheKey,
        fetch: F,
    ) -> Result<OutboundResponse, FetchError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<OutboundResponse, FetchError>>,
    {
        let Some(entries) = &self.entries else {
            return fetch().await;
        };
        let fetched = entries
            .try_get_with(key, async {
                match fetch().await {
                    Ok(response) if response.is_success() => Ok(response),
                    Ok(response) => Err(Miss::NotCacheable(response)),
                    Err(err) => Err(Miss::Failed(err)),
                }
            })
            .await;
        fetched.or_else(|miss: Arc<Miss>| match &*miss {
            Miss::NotCacheable(response) => Ok(response.clone()),
            Miss::Failed(err) => Err(err.clone()),
        })
    }

    /// Entries held, once moka has applied pending evictions.
    #[cfg(test)]
    async fn len(&self) -> u64 {
        match &self.entries {
            Some(entries) => {
                entries.run_pending_tasks().await;
                entries.entry_count()
            }
            None => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use bytes::Bytes;
    use http::HeaderMap;

    use super::*;

    fn reply(status: u16, body: &'static str) -> OutboundResponse {
        OutboundResponse {
            status,
            headers: HeaderMap::new(),
            body: Bytes::from_static(body.as_bytes()),
        }
    }

    fn key(url: &str) -> CacheKey {
        CacheKey::new(url, &[])
    }

    /// Fetches through `cache`, counting the fetches that really ran.
    async fn fetch(
        cache: &ResponseCache,
        key: CacheKey,
        runs: &AtomicUsize,
        result: Result<OutboundResponse, FetchError>,
    ) -> Result<OutboundResponse, FetchError> {
        cache
            .get_or_fetch(key, || async {
                runs.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(10)).await;
                result
            })
            .await
    }

    #[tokio::test]
    async fn success_is_served_from_cache_until_it_expires() {
        let ttl = Duration::from_millis(500);
        let cache = ResponseCache::new(ttl, 8);
        let runs = AtomicUsize::new(0);
        let first = fetch(&cache, key("https://a/"), &runs, Ok(reply(200, "one"))).await;
        let second = fetch(&cache, key("https://a/"), &runs, Ok(reply(200, "two"))).await;
        assert_eq!(first.unwrap().body, "one");
        assert_eq!(second.unwrap().body, "one");
        assert_eq!(runs.load(Ordering::SeqCst), 1);

        tokio::time::sleep(ttl).await;
        let third = fetch(&cache, key("https://a/"), &runs, Ok(reply(200, "three"))).await;
        assert_eq!(third.unwrap().body, "three");
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn failures_and_non_success_are_not_cached() {
        let cache = ResponseCache::new(Duration::from_secs(300), 8);
        let runs = AtomicUsize::new(0);
        let not_found = fetch(&cache, key("https://a/"), &runs, Ok(reply(404, "no"))).await;
        assert_eq!(not_found.unwrap().status, 404);
        let failed = fetch(&cache, key("https://a/"), &runs, Err(FetchError::Timeout)).await;
        assert_eq!(failed.unwrap_err(), FetchError::Timeout);
        let ok = fetch(&cache, key("https://a/"), &runs, Ok(reply(200, "yes"))).await;
        assert_eq!(ok.unwrap().body, "yes");
        assert_eq!(runs.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn concurrent_misses_share_one_fetch() {
        let cache = ResponseCache::new(Duration::from_secs(300), 8);
        let runs = AtomicUsize::new(0);
        let (a, b) = tokio::join!(
            fetch(&cache, key("https://a/"), &runs, Ok(reply(200, "a"))),
            fetch(&cache, key("https://a/"), &runs, Ok(reply(200, "b"))),
        );
        assert_eq!(a.unwrap().body, b.unwrap().body);
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn concurrent_misses_share_a_failure_which_is_not_kept() {
        let cache = ResponseCache::new(Duration::from_secs(300), 8);
        let runs = AtomicUsize::new(0);
        let (a, b) = tokio::join!(
            fetch(&cache, key("https://a/"), &runs, Err(FetchError::Timeout)),
            fetch(&cache, key("https://a/"), &runs, Err(FetchError::Timeout)),
        );
        assert_eq!(
            (a.unwrap_err(), b.unwrap_err()),
            (FetchError::Timeout, FetchError::Timeout)
        );
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        let ok = fetch(&cache, key("https://a/"), &runs, Ok(reply(200, "yes"))).await;
        assert_eq!(ok.unwrap().body, "yes");
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn headers_are_part_of_the_key_in_any_order() {
        let cache = ResponseCache::new(Duration::from_secs(300), 8);
        let runs = AtomicUsize::new(0);
        let h = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect()
        };
        let ab = CacheKey::new("https://a/", &h(&[("A", "1"), ("b", "2")]));
        let ba = CacheKey::new("https://a/", &h(&[("b", "2"), ("a", "1")]));
        let other = CacheKey::new("https://a/", &h(&[("a", "9")]));
        assert_eq!(ab, ba);
        fetch(&cache, ab, &runs, Ok(reply(200, "x"))).await.unwrap();
        fetch(&cache, ba, &runs, Ok(reply(200, "x"))).await.unwrap();
        fetch(&cache, other, &runs, Ok(reply(200, "y")))
            .await
            .unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn capacity_is_bounded() {
        let cache = ResponseCache::new(Duration::from_secs(300), 2);
        let runs = AtomicUsize::new(0);
        for url in ["https://a/", "https://b/", "https://c/"] {
            fetch(&cache, key(url), &runs, Ok(reply(200, "x")))
                .await
                .unwrap();
        }
        assert_eq!(cache.len().await, 2);
        // The oldest went; the newest stayed.
        fetch(&cache, key("https://c/"), &runs, Ok(reply(200, "x")))
            .await
            .unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        fetch(&cache, key("https://a/"), &runs, Ok(reply(200, "x")))
            .await
            .unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn zero_ttl_disables_caching() {
        let cache = ResponseCache::new(Duration::ZERO, 8);
        let runs = AtomicUsize::new(0);
        for _ in 0..2 {
            fetch(&cache, key("https://a/"), &runs, Ok(reply(200, "x")))
                .await
                .unwrap();
        }
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        assert_eq!(cache.len().await, 0);
    }
}
