//! Command-line tools for plugin authors: `plugboard plugins check`.

use std::path::Path;

use anyhow::Context as _;

use crate::runtime::{Runtime, RuntimeConfig};

/// Loads `file` exactly as the host would and prints its description as
/// JSON (with `contractVersion`, the contract version it implements), or
/// fails with the reason it does not fit the contract.
pub fn check_plugin(file: &Path) -> anyhow::Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let runtime = Runtime::new(RuntimeConfig {
        pooling: false,
        ..RuntimeConfig::default()
    })?;
    let plugin = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(crate::registry::load_plugin(&runtime, &bytes))
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("{} cannot be loaded", file.display()))?;
    let mut out = serde_json::to_value(plugin.description())?;
    out["contentHash"] = plugin.content_hash().into();
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
