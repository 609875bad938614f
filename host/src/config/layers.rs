//! The layers of `serve` settings: the built-in defaults (the one place
//! they are written), the TOML config file, and the merge that puts a higher
//! layer's values over a lower one's.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::cli::ServeArgs;
use crate::telemetry::LogFormat;

/// Every setting that has a default, with it. (Settings without one —
/// `metrics_listen`, `outbound_ca_file`, the management secrets — stay
/// unset.)
pub fn defaults() -> ServeArgs {
    ServeArgs {
        config: None,
        listen: Some(SocketAddr::from(([127, 0, 0, 1], 8080))),
        metrics_listen: None,
        plugins: Some(PathBuf::from("plugins/dist")),
        data: Some(PathBuf::from("data")),
        call_timeout_ms: Some(1_000),
        memory_limit_mb: Some(128),
        max_concurrent_calls: Some(64),
        no_pooling: Some(false),
        outbound_allow_private: Some(Vec::new()),
        outbound_ca_file: None,
        plugin_fetch_ports: Some(Vec::new()),
        user_secret: None,
        organization_secret: None,
        max_body_bytes: Some(1 << 20),
        body_read_timeout_secs: Some(30),
        header_read_timeout_secs: Some(10),
        max_connections: Some(10_000),
        dedup_window_secs: Some(86_400),
        delivery_timeout_ms: Some(15_000),
        delivery_schedule: Some(vec![
            0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0,
        ]),
        delivery_per_host: Some(64),
        retention_hours: Some(168),
        key_grace_secs: Some(86_400),
        poll_min_interval_secs: Some(60.0),
        poll_concurrency: Some(64),
        poll_timeout_ms: Some(30_000),
        shutdown_timeout_secs: Some(20),
        log_format: Some(LogFormat::Text),
    }
}

/// How messages name a setting: its file key, variable and flag.
pub fn named(key: &str) -> String {
    format!(
        "{key} (PLUGBOARD_{}, --{})",
        key.to_ascii_uppercase(),
        key.replace('_', "-")
    )
}

/// Reads a config file. Unknown keys and values of the wrong type are
/// refused with the file, line and key at fault.
pub fn read_file(path: &Path) -> anyhow::Result<ServeArgs> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("config file {}: cannot read it", path.display()))?;
    toml::from_str(&text).map_err(|e| anyhow::anyhow!("config file {}: {e}", path.display()))
}

impl ServeArgs {
    /// These settings, with every one left unset taken from `lower`.
    pub fn or(self, lower: ServeArgs) -> ServeArgs {
        // Listing every field (no `..`) makes a new setting a compile error
        // here until it takes part in layering.
        let ServeArgs {
            config,
            listen,
            metrics_listen,
            plugins,
            data,
            call_timeout_ms,
            memory_limit_mb,
            max_concurrent_calls,
            no_pooling,
            outbound_allow_private,
            outbound_ca_file,
            plugin_fetch_ports,
            user_secret,
            organization_secret,
            max_body_bytes,
            body_read_timeout_secs,
            header_read_timeout_secs,
            max_connections,
            dedup_window_secs,
            delivery_timeout_ms,
            delivery_schedule,
            delivery_per_host,
            retention_hours,
            key_grace_secs,
            poll_min_interval_secs,
            poll_concurrency,
            poll_timeout_ms,
            shutdown_timeout_secs,
            log_format,
        } = self;
        ServeArgs {
            config: config.or(lower.config),
            listen: listen.or(lower.listen),
            metrics_listen: metrics_listen.or(lower.metrics_listen),
            plugins: plugins.or(lower.plugins),
            data: data.or(lower.data),
            call_timeout_ms: call_timeout_ms.or(lower.call_timeout_ms),
            memory_limit_mb: memory_limit_mb.or(lower.memory_limit_mb),
            max_concurrent_calls: max_concurrent_calls.or(lower.max_concurrent_calls),
            no_pooling: no_pooling.or(lower.no_pooling),
            outbound_allow_private: outbound_allow_private.or(lower.outbound_allow_private),
            outbound_ca_file: outbound_ca_file.or(lower.outbound_ca_file),
            plugin_fetch_ports: plugin_fetch_ports.or(lower.plugin_fetch_ports),
            user_secret: user_secret.or(lower.user_secret),
            organization_secret: organization_secret.or(lower.organization_secret),
            max_body_bytes: max_body_bytes.or(lower.max_body_bytes),
            body_read_timeout_secs: body_read_timeout_secs.or(lower.body_read_timeout_secs),
            header_read_timeout_secs: header_read_timeout_secs.or(lower.header_read_timeout_secs),
            max_connections: max_connections.or(lower.max_connections),
            dedup_window_secs: dedup_window_secs.or(lower.dedup_window_secs),
            delivery_timeout_ms: delivery_timeout_ms.or(lower.delivery_timeout_ms),
            delivery_schedule: delivery_schedule.or(lower.delivery_schedule),
            delivery_per_host: delivery_per_host.or(lower.delivery_per_host),
            retention_hours: retention_hours.or(lower.retention_hours),
            key_grace_secs: key_grace_secs.or(lower.key_grace_secs),
            poll_min_interval_secs: poll_min_interval_secs.or(lower.poll_min_interval_secs),
            poll_concurrency: poll_concurrency.or(lower.poll_concurrency),
            poll_timeout_ms: poll_timeout_ms.or(lower.poll_timeout_ms),
            shutdown_timeout_secs: shutdown_timeout_secs.or(lower.shutdown_timeout_secs),
            log_format: log_format.or(lower.log_format),
        }
    }
}
