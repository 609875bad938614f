//! One pass over the plugin folder: load what is new or changed (several
//! compiles at once, up to one per core), keep what is unchanged, unload
//! what is gone, and publish a new [`Snapshot`].

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use futures_util::StreamExt as _;
use time::OffsetDateTime;

use super::{LoadedPlugin, PluginStatus, Registry, Snapshot};
use crate::telemetry::metrics;

/// What the registry remembers of each file between scans.
#[derive(Default)]
pub(super) struct ScanState {
    files: BTreeMap<String, FileEntry>,
}

#[derive(Default)]
struct FileEntry {
    /// The version serving requests, if any.
    serving: Option<Arc<LoadedPlugin>>,
    /// Size and modification time at the last look.
    seen: Option<(u64, SystemTime)>,
    /// Hash of the content of the last failed attempt, to avoid retrying it.
    failed_hash: Option<String>,
    /// The latest load error and when it happened.
    error: Option<(String, OffsetDateTime)>,
}

/// Whether a file name in the plugin folder is a plugin: `*.wasm`, and not
/// a dotfile, editor backup or temporary file.
pub(super) fn is_plugin_file(name: &str) -> bool {
    name.ends_with(".wasm")
        && name.len() > ".wasm".len()
        && !name.starts_with('.')
        && !name.starts_with('#')
        && !name.contains(".tmp")
        && !name.contains(".swp")
}

fn list_plugin_files(dir: &Path) -> std::io::Result<Vec<(String, u64, SystemTime)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if !is_plugin_file(&name) {
            continue;
        }
        let Ok(meta) = std::fs::metadata(entry.path()) else {
            continue; // vanished between listing and stat
        };
        if meta.is_file() {
            let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            out.push((name, meta.len(), mtime));
        }
    }
    Ok(out)
}

impl Registry {
    /// Brings the registry in step with the folder. Scans never overlap.
    pub async fn rescan(self: &Arc<Self>) -> anyhow::Result<()> {
        let mut state = self.scan_state.lock().await;
        let listed = match list_plugin_files(&self.dir) {
            Ok(listed) => listed,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => anyhow::bail!("reading plugin folder {}: {e}", self.dir.display()),
        };
        let present: HashMap<&str, _> = listed
            .iter()
            .map(|(n, l, m)| (n.as_str(), (*l, *m)))
            .collect();
        state.files.retain(|name, entry| {
            let keep = present.contains_key(name.as_str());
            if !keep {
                if let Some(p) = &entry.serving {
                    tracing::info!(file = %name, element = %p.plugin.description().key, "plugin removed; unloaded");
                }
            }
            keep
        });

        // Read every new or changed file first, then compile them several
        // at once (a start with many plugins, or a burst of drops, is not
        // held up by one large component after another), then record each
        // outcome in file order.
        let mut changed = Vec::new();
        for (name, len, mtime) in &listed {
            let entry = state.files.entry(name.clone()).or_default();
            if entry.seen == Some((*len, *mtime)) {
                continue;
            }
            entry.seen = Some((*len, *mtime));
            if let Err(why) = self.runtime.config().check_plugin_size(*len) {
                record_error(entry, name, why);
                continue;
            }
            if let Some((bytes, hash)) = self.read_changed(name, &self.dir.join(name), entry).await
            {
                changed.push((name.clone(), bytes, hash));
            }
        }
        let runtime = &self.runtime;
        let mut loaded: Vec<_> = futures_util::stream::iter(changed)
            .map(|(name, bytes, hash)| async move {
                let result = super::load_plugin(runtime, &bytes).await;
                (name, hash, result)
            })
            .buffer_unordered(parallel_loads())
            .collect()
            .await;
        loaded.sort_by(|a, b| a.0.cmp(&b.0));
        let mut candidates: BTreeMap<String, Arc<LoadedPlugin>> = BTreeMap::new();
        for (name, hash, result) in loaded {
            let entry = state.files.entry(name.clone()).or_default();
            match result {
                Ok(plugin) => {
                    candidates.insert(
                        name,
                        Arc::new(LoadedPlugin {
                            plugin,
                            loaded_at: OffsetDateTime::now_utc(),
                        }),
                    );
                }
                Err(e) => {
                    entry.failed_hash = Some(hash);
                    record_error(entry, &name, e);
                }
            }
        }

        let snapshot = assign_keys(&mut state, candidates);
        self.current.store(Arc::new(snapshot));
        Ok(())
    }

    /// Reads one changed file: its bytes and their hash, unless they are
    /// what already serves or what failed last time; records a read error
    /// on `entry`.
    async fn read_changed(
        &self,
        name: &str,
        path: &Path,
        entry: &mut FileEntry,
    ) -> Option<(Vec<u8>, String)> {
        let bytes = match self.read_plugin_file(path).await {
            Ok(b) => b,
            Err(why) => {
                record_error(entry, name, why);
                return None;
            }
        };
        let hash = crate::runtime::ElementPlugin::hash_of(&bytes);
        if entry.serving.as_ref().map(|p| p.plugin.content_hash()) == Some(hash.as_str()) {
            entry.error = None;
            return None;
        }
        if entry.failed_hash.as_deref() == Some(hash.as_str()) {
            return None;
        }
        Some((bytes, hash))
    }
}

/// How many plugins are compiled at once: one per core, at most four (each
/// compile also spreads over the cores, and holds a component's memory).
fn parallel_loads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
}

impl Registry {
    /// Reads a plugin file, reading no more than the size cap allows (the
    /// file may have grown since it was listed).
    async fn read_plugin_file(&self, path: &Path) -> Result<Vec<u8>, String> {
        use tokio::io::AsyncReadExt as _;
        let config = self.runtime.config();
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|e| format!("cannot read file: {e}"))?;
        let mut bytes = Vec::new();
        let read = file
            .take(config.max_plugin_file_bytes.saturating_add(1))
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| format!("cannot read file: {e}"))?;
        if let Err(why) = config.check_plugin_size(read as u64) {
            let len = tokio::fs::metadata(path).await.map_or(0, |m| m.len());
            return Err(config.check_plugin_size(len).err().unwrap_or(why));
        }
        Ok(bytes)
    }
}

fn record_error(entry: &mut FileEntry, name: &str, message: String) {
    let keeps = entry
        .serving
        .as_ref()
        .map(|p| format!("; version {} keeps serving", p.plugin.description().version))
        .unwrap_or_default();
    tracing::warn!(file = %name, error = %message, "plugin could not be loaded{keeps}");
    metrics::plugin_load(false);
    entry.error = Some((message, OffsetDateTime::now_utc()));
}

fn keys_of(p: &LoadedPlugin) -> Vec<String> {
    let d = p.plugin.description();
    std::iter::once(d.key.clone())
        .chain(d.aliases.iter().cloned())
        .collect()
}

/// Decides which file serves which key. Established versions keep their
/// keys; a new version may only take keys no other file holds.
fn assign_keys(
    state: &mut ScanState,
    mut candidates: BTreeMap<String, Arc<LoadedPlugin>>,
) -> Snapshot {
    let mut owner: HashMap<String, String> = HashMap::new();
    let mut by_key: HashMap<String, Arc<LoadedPlugin>> = HashMap::new();
    let mut claim = |file: &str,
                     p: &Arc<LoadedPlugin>,
                     owner: &mut HashMap<String, String>|
     -> Result<(), String> {
        let keys = keys_of(p);
        if let Some((k, other)) = keys
            .iter()
            .find_map(|k| owner.get(k).filter(|o| *o != file).map(|o| (k, o)))
        {
            return Err(format!("element key '{k}' is already served by {other}"));
        }
        for k in keys {
            owner.insert(k.clone(), file.to_string());
            by_key.insert(k, p.clone());
        }
        Ok(())
    };
    for (name, entry) in &state.files {
        if let (Some(p), false) = (&entry.serving, candidates.contains_key(name)) {
            let _ = claim(name, p, &mut owner);
        }
    }
    for (name, entry) in state.files.iter_mut() {
        let Some(new) = candidates.remove(name) else {
            continue;
        };
        match claim(name, &new, &mut owner) {
            Ok(()) => {
                let d = new.plugin.description();
                tracing::info!(file = %name, element = %d.key, version = %d.version, hash = %new.plugin.content_hash(), "plugin loaded");
                metrics::plugin_load(true);
                entry.serving = Some(new);
                entry.error = None;
                entry.failed_hash = None;
            }
            Err(conflict) => {
                entry.failed_hash = Some(new.plugin.content_hash().to_string());
                record_error(entry, name, conflict);
                if let Some(old) = &entry.serving {
                    if claim(name, old, &mut owner).is_err() {
                        entry.serving = None;
                    }
                }
            }
        }
    }
    let files = state
        .files
        .iter()
        .map(|(name, e)| status_of(name, e))
        .collect();
    Snapshot { by_key, files }
}

fn status_of(name: &str, e: &FileEntry) -> PluginStatus {
    let d = e.serving.as_ref().map(|p| p.plugin.description());
    PluginStatus {
        file: name.to_string(),
        key: d.map(|d| d.key.clone()),
        name: d.map(|d| d.name.clone()),
        version: d.map(|d| d.version.clone()),
        content_hash: e
            .serving
            .as_ref()
            .map(|p| p.plugin.content_hash().to_string()),
        loaded_at: e.serving.as_ref().map(|p| p.loaded_at),
        last_error: e.error.as_ref().map(|(m, _)| m.clone()),
        last_error_at: e.error.as_ref().map(|(_, t)| *t),
    }
}

#[cfg(test)]
mod tests {
    use super::is_plugin_file;

    #[test]
    fn plugin_file_names() {
        for ok in ["connectwise.wasm", "a-b_c.wasm"] {
            assert!(is_plugin_file(ok), "{ok}");
        }
        for no in [
            ".wasm",
            ".hidden.wasm",
            "x.wasm~",
            "x.wasm.tmp",
            "x.tmp.wasm",
            "x.swp",
            ".x.wasm.swp",
            "#x.wasm#",
            "x.cwasm.txt",
            "readme.md",
        ] {
            assert!(!is_plugin_file(no), "{no}");
        }
    }
}
