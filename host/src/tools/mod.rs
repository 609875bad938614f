//! Command-line tools for plugin authors: `plugboard plugins check` and
//! `plugboard plugins run` ([`run`], reading request and response files
//! with [`http_file`]; a poll window with `--poll`).

pub mod http_file;
mod poll;
pub mod run;

pub use run::{run_plugin, RunArgs};

use std::future::Future;
use std::path::Path;

use anyhow::Context as _;

use crate::runtime::{ElementPlugin, Runtime, RuntimeConfig};

/// Loads `file` exactly as the host would and prints its description as
/// JSON (with `contractVersion`, the contract version it implements), or
/// fails with the reason it does not fit the contract.
pub fn check_plugin(file: &Path) -> anyhow::Result<()> {
    let plugin = with_plugin(file, |plugin| async move { plugin })?;
    let mut out = serde_json::to_value(plugin.description())?;
    out["contentHash"] = plugin.content_hash().into();
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

/// Loads the plugin `file` in a runtime of its own (no pooling: one call
/// at a time) and runs `then` with it on a single-threaded executor.
fn with_plugin<T, F, Fut>(file: &Path, then: F) -> anyhow::Result<T>
where
    F: FnOnce(ElementPlugin) -> Fut,
    Fut: Future<Output = T>,
{
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let runtime = Runtime::new(RuntimeConfig {
        pooling: false,
        ..RuntimeConfig::default()
    })?;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async {
            let plugin = crate::registry::load_plugin(&runtime, &bytes)
                .await
                .map_err(anyhow::Error::msg)
                .with_context(|| format!("{} cannot be loaded", file.display()))?;
            Ok(then(plugin).await)
        })
}
