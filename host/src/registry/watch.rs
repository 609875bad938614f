//! Watches the plugin folder and rescans it when it changes.
//!
//! File-system events are debounced (a burst of writes, or a write followed
//! by a rename, triggers one scan after the folder has been quiet briefly),
//! and a slow periodic rescan covers events the OS may drop.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use notify::{RecursiveMode, Watcher};

use super::Registry;

/// How long the folder must be quiet before a scan.
const DEBOUNCE: Duration = Duration::from_millis(100);
/// Rescan at least this often even without events.
const FALLBACK_RESCAN: Duration = Duration::from_secs(30);

/// Keeps the watch alive; dropping it stops watching.
pub struct WatchHandle {
    _watcher: notify::RecommendedWatcher,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Registry {
    /// Scans the folder once, then keeps the registry in step with it.
    pub async fn watch(self: &Arc<Self>) -> anyhow::Result<WatchHandle> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating plugin folder {}", self.dir.display()))?;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                if event.is_ok() {
                    let _ = tx.send(());
                }
            })
            .context("starting the plugin folder watcher")?;
        watcher
            .watch(&self.dir, RecursiveMode::NonRecursive)
            .with_context(|| format!("watching plugin folder {}", self.dir.display()))?;
        self.rescan().await?;
        let registry = Arc::clone(self);
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    got = rx.recv() => {
                        if got.is_none() { return; }
                        // Debounce: wait until no event arrived for DEBOUNCE.
                        while let Ok(Some(())) = tokio::time::timeout(DEBOUNCE, rx.recv()).await {}
                    }
                    () = tokio::time::sleep(FALLBACK_RESCAN) => {}
                }
                if let Err(e) = registry.rescan().await {
                    tracing::warn!(error = %format!("{e:#}"), "plugin folder scan failed");
                }
            }
        });
        Ok(WatchHandle {
            _watcher: watcher,
            task,
        })
    }
}
