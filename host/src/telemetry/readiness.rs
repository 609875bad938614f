//! Readiness: whether the host can do its job now, and if not, what is
//! missing. Start-up marks each part as it comes up; shutdown marks the
//! host as stopping. `/readyz` reports it (200, or 503 naming each part
//! that is not ready), and `/metrics` samples its store and registry.
//!
//! Ready means: every listener bound, the store open, the plugin folder
//! scanned with at least one element plugin loaded (a sidecar whose plugin
//! volume is still empty cannot take webhooks), and not shutting down.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use serde::Serialize;

use super::metrics::Sample;
use crate::registry::Registry;
use crate::store::Store;

/// What answers "ok" in a [`Report`].
const OK: &str = "ok";

/// The host's readiness, shared by start-up, shutdown and the probes.
#[derive(Clone, Default)]
pub struct Readiness {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    listening: AtomicBool,
    stopping: AtomicBool,
    store: OnceLock<Store>,
    registry: OnceLock<Arc<Registry>>,
}

/// The answer of `/readyz`.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Whether every check is `ok`.
    pub ready: bool,
    /// Each part of the host: `ok`, or what is missing.
    pub checks: BTreeMap<&'static str, String>,
}

impl Readiness {
    /// Nothing is ready yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every listener is bound.
    pub fn listening(&self) {
        self.inner.listening.store(true, Ordering::SeqCst);
    }

    /// The store is open.
    pub fn store_opened(&self, store: Store) {
        let _ = self.inner.store.set(store);
    }

    /// The plugin folder was scanned once; from now on the registry says
    /// whether any plugin is loaded.
    pub fn plugins_scanned(&self, registry: Arc<Registry>) {
        let _ = self.inner.registry.set(registry);
    }

    /// The host is shutting down: not ready any more.
    pub fn stopping(&self) {
        self.inner.stopping.store(true, Ordering::SeqCst);
    }

    /// Checks every part now.
    pub fn report(&self) -> Report {
        let i = &self.inner;
        let mut checks = BTreeMap::new();
        let listening = if i.listening.load(Ordering::SeqCst) {
            OK.to_string()
        } else {
            "binding the listeners".into()
        };
        checks.insert("listeners", listening);
        let store = if i.store.get().is_some() {
            OK.to_string()
        } else {
            "opening the store".into()
        };
        checks.insert("store", store);
        let plugins = match i.registry.get() {
            None => "scanning the plugin folder".to_string(),
            Some(r) if r.snapshot().plugins().next().is_none() => {
                format!("no element plugin is loaded from {}", r.dir().display())
            }
            Some(_) => OK.to_string(),
        };
        checks.insert("plugins", plugins);
        let running = if i.stopping.load(Ordering::SeqCst) {
            "shutting down".to_string()
        } else {
            OK.to_string()
        };
        checks.insert("shutdown", running);
        Report {
            ready: checks.values().all(|v| v == OK),
            checks,
        }
    }

    /// The gauges `/metrics` shows, read from the store and registry (zero
    /// while they are not up yet).
    pub async fn sample(&self) -> Sample {
        let mut sample = Sample::default();
        if let Some(store) = self.inner.store.get() {
            match store.outbox_depth().await {
                Ok(depth) => {
                    sample.outbox_pending = depth.pending;
                    sample.outbox_dead = depth.dead;
                }
                Err(e) => tracing::warn!(error = %e, "reading the outbox depth failed"),
            }
        }
        if let Some(registry) = self.inner.registry.get() {
            sample.plugins_loaded = registry.snapshot().plugins().count();
        }
        sample
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{Runtime, RuntimeConfig};

    fn not_ok(r: &Report) -> Vec<&str> {
        r.checks
            .iter()
            .filter(|(_, v)| *v != OK)
            .map(|(k, _)| *k)
            .collect()
    }

    #[tokio::test]
    async fn names_what_is_not_ready_until_everything_is() {
        let readiness = Readiness::new();
        let r = readiness.report();
        assert!(!r.ready);
        assert_eq!(not_ok(&r), ["listeners", "plugins", "store"]);

        readiness.listening();
        let data = tempfile::tempdir().unwrap();
        let config = crate::store::StoreConfig::Sqlite {
            path: data.path().join("plugboard.db"),
        };
        readiness.store_opened(Store::open(&config).await.unwrap());
        let dir = tempfile::tempdir().unwrap();
        let runtime = Runtime::new(RuntimeConfig {
            pooling: false,
            ..RuntimeConfig::default()
        })
        .unwrap();
        let registry = Registry::new(runtime, dir.path());
        registry.rescan().await.unwrap();
        readiness.plugins_scanned(registry);
        let r = readiness.report();
        assert_eq!(not_ok(&r), ["plugins"]);
        assert!(r.checks["plugins"].contains("no element plugin is loaded"));

        readiness.stopping();
        assert_eq!(not_ok(&readiness.report()), ["plugins", "shutdown"]);
        assert_eq!(readiness.sample().await.outbox_pending, 0);
    }
}
