//! The set of loaded element plugins, kept in step with the plugin folder.
//!
//! Readers take a [`Snapshot`] (lock-free, via `ArcSwap`) and keep using the
//! plugin they looked up even if the folder changes meanwhile: calls in
//! flight finish on the version they started with. A changed file replaces
//! the serving version only after it compiled and `describe()` succeeded; a
//! broken file is reported and the last good version keeps serving; a
//! removed file is unloaded. Two files claiming one element key is an error
//! on the file that came second.

mod scan;
mod watch;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use serde::Serialize;
use time::OffsetDateTime;

use crate::runtime::{ElementPlugin, Runtime};

pub use watch::WatchHandle;

/// A plugin serving an element key, and when it was loaded.
#[derive(Clone)]
pub struct LoadedPlugin {
    /// The plugin.
    pub plugin: ElementPlugin,
    /// When it was loaded.
    pub loaded_at: OffsetDateTime,
}

/// Status of one file in the plugin folder, as `GET /plugins` shows it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginStatus {
    /// File name within the plugin folder.
    pub file: String,
    /// Element key served from this file, if it loaded.
    pub key: Option<String>,
    /// Element name.
    pub name: Option<String>,
    /// Plugin version.
    pub version: Option<String>,
    /// Hex SHA-256 of the serving version.
    pub content_hash: Option<String>,
    /// When the serving version was loaded (RFC 3339).
    #[serde(with = "time::serde::rfc3339::option")]
    pub loaded_at: Option<OffsetDateTime>,
    /// Why the file's latest content could not be loaded, if it could not.
    pub last_error: Option<String>,
    /// When that error happened (RFC 3339).
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_error_at: Option<OffsetDateTime>,
}

/// An immutable view of the registry at one moment.
#[derive(Default)]
pub struct Snapshot {
    by_key: HashMap<String, Arc<LoadedPlugin>>,
    files: Vec<PluginStatus>,
}

impl Snapshot {
    /// The plugin serving `key` (an element key or one of its aliases).
    pub fn get(&self, key: &str) -> Option<&Arc<LoadedPlugin>> {
        self.by_key.get(key)
    }

    /// Every file's status, sorted by file name.
    pub fn files(&self) -> &[PluginStatus] {
        &self.files
    }

    /// Loaded plugins, one entry per element (aliases not repeated).
    pub fn plugins(&self) -> impl Iterator<Item = &Arc<LoadedPlugin>> {
        self.by_key
            .iter()
            .filter(|(k, p)| p.plugin.description().key == **k)
            .map(|(_, p)| p)
    }
}

/// Loads plugin bytes as the registry does: the runtime compiles, links and
/// describes them, and the description must suit the instances that will
/// use it (a default poll configuration the poller can read). The error
/// says which part does not fit.
pub async fn load_plugin(runtime: &Runtime, wasm: &[u8]) -> Result<ElementPlugin, String> {
    let plugin = runtime.load(wasm).await.map_err(|e| e.to_string())?;
    crate::instance::poll::check_defaults(plugin.description()).map_err(|e| {
        format!(
            "describe() failed: default-poll-configuration is not a valid {}: {}: {}",
            crate::instance::resources::CONFIGURATION_KEY,
            e.field,
            e.message
        )
    })?;
    Ok(plugin)
}

/// The plugin registry for one folder.
pub struct Registry {
    runtime: Runtime,
    dir: PathBuf,
    current: ArcSwap<Snapshot>,
    /// Serializes rescans; holds what the last scan knew of each file.
    scan_state: tokio::sync::Mutex<scan::ScanState>,
}

impl Registry {
    /// A registry for `dir` that loads nothing until [`Self::rescan`].
    pub fn new(runtime: Runtime, dir: impl Into<PathBuf>) -> Arc<Self> {
        Arc::new(Self {
            runtime,
            dir: dir.into(),
            current: ArcSwap::from_pointee(Snapshot::default()),
            scan_state: tokio::sync::Mutex::new(scan::ScanState::default()),
        })
    }

    /// The watched folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The runtime plugins are loaded into.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// The current view of loaded plugins.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// The plugin serving `key`, if any.
    pub fn get(&self, key: &str) -> Option<Arc<LoadedPlugin>> {
        self.current.load().get(key).cloned()
    }
}
