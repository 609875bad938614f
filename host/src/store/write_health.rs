//! Whether the store can write right now, for readiness.
//!
//! A write on the data path (a receipt, a poll page, delivery attempts)
//! that fails because the database cannot be written right now — a full
//! disk, an I/O error, a database out of reach: [`ErrorKind::Unavailable`]
//! — marks the store as unable to write, keeping that failure's reason. A
//! later write that succeeds clears the mark. Meanwhile the store probes
//! the database every [`PROBE_INTERVAL`] (where its backend has a probe),
//! so it recovers by itself once space is back even when no webhook
//! arrives — and a host that is not ready usually gets none.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use super::backend::Backend;
use super::error::{ErrorKind, Result};

/// How often a store that cannot write is probed.
const PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// The store's ability to write, shared by every clone of the store.
#[derive(Default)]
pub(super) struct WriteHealth {
    /// Why the last data-path write failed, while no write has succeeded since.
    problem: Mutex<Option<String>>,
    /// A probe task is running.
    probing: AtomicBool,
}

impl WriteHealth {
    /// Why the store cannot write, if it cannot.
    pub(super) fn problem(&self) -> Option<String> {
        self.problem
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Takes note of a data-path write's result: success clears the mark,
    /// an unavailable database sets it and starts probing `backend`.
    pub(super) fn observe<T>(self: &Arc<Self>, result: &Result<T>, backend: &Arc<dyn Backend>) {
        match result {
            Ok(_) => self.clear(),
            Err(e) if e.kind() == ErrorKind::Unavailable => {
                let mut problem = self.problem.lock().unwrap_or_else(PoisonError::into_inner);
                if problem.is_none() {
                    tracing::warn!(error = %e, "the store cannot write; not ready until it can");
                    *problem = Some(e.to_string());
                }
                drop(problem);
                self.start_probing(Arc::downgrade(backend));
            }
            Err(_) => {}
        }
    }

    fn clear(&self) {
        let was = self
            .problem
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if was.is_some() {
            tracing::info!("the store can write again");
        }
    }

    /// Probes until the store can write (or the store is gone); one probe
    /// task at a time.
    fn start_probing(self: &Arc<Self>, backend: Weak<dyn Backend>) {
        if self.probing.swap(true, Ordering::SeqCst) {
            return;
        }
        let health = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(PROBE_INTERVAL).await;
                let (Some(health), Some(backend)) = (health.upgrade(), backend.upgrade()) else {
                    return;
                };
                if health.problem().is_some() {
                    match backend.probe_write().await {
                        Some(Ok(())) => health.clear(),
                        Some(Err(e)) => tracing::debug!(error = %e, "the store still cannot write"),
                        // No probe: the next write that succeeds clears it.
                        None => {}
                    }
                    if health.problem().is_some() {
                        continue;
                    }
                }
                health.probing.store(false, Ordering::SeqCst);
                // A failure noted while this task was finishing saw it
                // still running: keep probing for it.
                if health.problem().is_none() || health.probing.swap(true, Ordering::SeqCst) {
                    return;
                }
            }
        });
    }
}
