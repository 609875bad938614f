//! Readiness: whether the host can do its job now, and if not, what is
//! missing. Start-up marks each part as it comes up; shutdown marks the
//! host as stopping. `/readyz` reports it (200, or 503 naming each part
//! that is not ready), and `/metrics` samples its store and registry.
//!
//! Ready means: every listener bound, the store open, its database
//! answering (a database server is asked on every check) and able to write
//! (a store whose last write failed for want of disk space or with an I/O
//! error is not ready until a write succeeds again), the plugin folder
//! scanned with at least one element plugin loaded (a sidecar whose plugin
//! volume is still empty cannot take webhooks), and not shutting down.
//!
//! Telemetry sits below the stages it observes: it knows the store and the
//! plugin registry only as the [`StoreProbe`] and [`PluginsProbe`] the
//! server hands it at start-up, never by their types.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use serde::Serialize;

use super::metrics::Sample;

/// The store's answer to "how deep is the outbox": notifications waiting
/// for delivery and dead-lettered ones, `None` when another replica
/// reports them, or why they could not be counted.
pub type DepthFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Option<(u64, u64)>, String>> + Send + 'a>>;

/// The store's answer to "can you serve now": why not, if not.
pub type CheckFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// How long readiness waits for the database to answer.
const STORE_CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// What readiness and `/metrics` need of the store: whether it can serve
/// (its database answers and its last write did not fail), and its outbox
/// depth.
pub trait StoreProbe: Send + Sync + 'static {
    /// Whether the store can serve now, or why not.
    fn reachable(&self) -> CheckFuture<'_>;

    /// Notifications waiting for delivery and dead-lettered ones, or why
    /// they could not be counted.
    fn outbox_depth(&self) -> DepthFuture<'_>;

    /// Whether the connection receiving database notifications from other
    /// processes is up; `None` when the store has none (SQLite).
    fn listening(&self) -> Option<bool> {
        None
    }
}

/// What readiness and `/metrics` need of the plugin registry.
pub trait PluginsProbe: Send + Sync + 'static {
    /// Element plugins serving requests now.
    fn loaded(&self) -> usize;
    /// The watched plugin folder, named when it holds no plugin.
    fn folder(&self) -> PathBuf;
}

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
    store: OnceLock<Box<dyn StoreProbe>>,
    registry: OnceLock<Box<dyn PluginsProbe>>,
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

    /// Every listener is bound and serves the full set of routes.
    pub fn listening(&self) {
        self.inner.listening.store(true, Ordering::SeqCst);
    }

    /// The store is open.
    pub fn store_opened(&self, store: impl StoreProbe) {
        let _ = self.inner.store.set(Box::new(store));
    }

    /// The plugin folder was scanned once; from now on the registry says
    /// whether any plugin is loaded.
    pub fn plugins_scanned(&self, registry: impl PluginsProbe) {
        let _ = self.inner.registry.set(Box::new(registry));
    }

    /// The host is shutting down: not ready any more.
    pub fn stopping(&self) {
        self.inner.stopping.store(true, Ordering::SeqCst);
    }

    /// Checks every part now (asking the database, for at most a couple of
    /// seconds).
    pub async fn report(&self) -> Report {
        let i = &self.inner;
        let mut checks = BTreeMap::new();
        let listening = if i.listening.load(Ordering::SeqCst) {
            OK.to_string()
        } else {
            "starting the listeners and routes".into()
        };
        checks.insert("listeners", listening);
        let store = match i.store.get() {
            None => "opening the store".to_string(),
            Some(store) => match tokio::time::timeout(STORE_CHECK_TIMEOUT, store.reachable()).await
            {
                Ok(Ok(())) => OK.to_string(),
                Ok(Err(e)) => e,
                Err(_) => format!(
                    "the store's database did not answer within {} s",
                    STORE_CHECK_TIMEOUT.as_secs()
                ),
            },
        };
        checks.insert("store", store);
        let plugins = match i.registry.get() {
            None => "scanning the plugin folder".to_string(),
            Some(r) if r.loaded() == 0 => {
                format!("no element plugin is loaded from {}", r.folder().display())
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
                Ok(depth) => sample.outbox = depth,
                Err(e) => tracing::warn!(error = %e, "reading the outbox depth failed"),
            }
        }
        if let Some(registry) = self.inner.registry.get() {
            sample.plugins_loaded = registry.loaded();
        }
        sample.listen_connected = self
            .inner
            .store
            .get()
            .is_none_or(|store| store.listening() != Some(false));
        sample
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::sync::Mutex;

    use super::*;

    fn not_ok(r: &Report) -> Vec<&str> {
        r.checks
            .iter()
            .filter(|(_, v)| *v != OK)
            .map(|(k, _)| *k)
            .collect()
    }

    /// An outbox of fixed depth, writable or not.
    struct Outbox(u64, u64, Arc<Mutex<Option<String>>>);

    impl StoreProbe for Outbox {
        fn reachable(&self) -> CheckFuture<'_> {
            Box::pin(async move {
                match self.2.lock().unwrap().clone() {
                    Some(why) => Err(why),
                    None => Ok(()),
                }
            })
        }

        fn outbox_depth(&self) -> DepthFuture<'_> {
            Box::pin(async move { Ok(Some((self.0, self.1))) })
        }
    }

    /// A plugin folder whose count of loaded plugins the test changes.
    #[derive(Clone, Default)]
    struct Plugins(Arc<AtomicUsize>);

    impl PluginsProbe for Plugins {
        fn loaded(&self) -> usize {
            self.0.load(Ordering::SeqCst)
        }
        fn folder(&self) -> PathBuf {
            PathBuf::from("plugins/dist")
        }
    }

    #[tokio::test]
    async fn names_what_is_not_ready_until_everything_is() {
        let readiness = Readiness::new();
        let r = readiness.report().await;
        assert!(!r.ready);
        assert_eq!(not_ok(&r), ["listeners", "plugins", "store"]);

        readiness.listening();
        let unwritable = Arc::new(Mutex::new(None));
        readiness.store_opened(Outbox(3, 1, unwritable.clone()));
        let plugins = Plugins::default();
        readiness.plugins_scanned(plugins.clone());
        let r = readiness.report().await;
        assert_eq!(not_ok(&r), ["plugins"]);
        assert_eq!(
            r.checks["plugins"],
            "no element plugin is loaded from plugins/dist"
        );
        plugins.0.store(2, Ordering::SeqCst);
        assert!(readiness.report().await.ready);
        *unwritable.lock().unwrap() = Some("cannot write: database or disk is full".into());
        let r = readiness.report().await;
        assert_eq!(not_ok(&r), ["store"]);
        assert_eq!(r.checks["store"], "cannot write: database or disk is full");
        *unwritable.lock().unwrap() = None;
        assert!(readiness.report().await.ready);
        let sample = readiness.sample().await;
        assert_eq!((sample.outbox, sample.plugins_loaded), (Some((3, 1)), 2));

        readiness.stopping();
        assert_eq!(not_ok(&readiness.report().await), ["shutdown"]);
    }
}
