//! The validated settings of a running host, built once at start-up from
//! the command line and environment ([`crate::cli::ServeArgs`]).
//!
//! Every check happens here, and a bad value stops the host with a message
//! naming the setting.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context as _};

use crate::cli::ServeArgs;
use crate::delivery::DeliveryConfig;
use crate::outbound::{parse_allow_list, OutboundConfig};
use crate::runtime::RuntimeConfig;

/// Management API credentials given by the operator.
#[derive(Clone, Debug)]
pub struct GivenCredentials {
    /// The `User` secret.
    pub user: String,
    /// The `Organization` secret.
    pub organization: String,
}

/// Webhook ingress limits.
#[derive(Clone, Debug)]
pub struct IngressConfig {
    /// Largest accepted body in bytes; larger requests get 413.
    pub max_body_bytes: usize,
    /// Window within which a repeated vendor message id is not stored twice.
    pub dedup_window: Duration,
}

/// Everything the host needs to run.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Watched plugin folder.
    pub plugins_dir: PathBuf,
    /// Data folder (store, caches, generated credentials).
    pub data_dir: PathBuf,
    /// Plugin runtime limits.
    pub runtime: RuntimeConfig,
    /// Outbound request policy.
    pub outbound: OutboundConfig,
    /// Credentials from the operator; `None` means generated ones in the data folder.
    pub credentials: Option<GivenCredentials>,
    /// Ingress limits.
    pub ingress: IngressConfig,
    /// Delivery of notifications.
    pub delivery: DeliveryConfig,
    /// `text` or `json` logs.
    pub log_format: String,
}

/// Parses a delivery schedule: delays in seconds, comma-separated.
fn parse_schedule(text: &str) -> anyhow::Result<Vec<Duration>> {
    let delays = text
        .split(',')
        .map(|s| {
            let s = s.trim();
            s.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .map(Duration::from_secs_f64)
                .ok_or_else(|| {
                    anyhow::anyhow!("PLUGBOARD_DELIVERY_SCHEDULE: {s:?} is not a number of seconds")
                })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    if delays.is_empty() {
        bail!("PLUGBOARD_DELIVERY_SCHEDULE must list at least one attempt");
    }
    Ok(delays)
}

impl Settings {
    /// Validates the command line / environment into settings.
    pub fn from_args(args: ServeArgs) -> anyhow::Result<Self> {
        if args.call_timeout_ms == 0 {
            bail!("PLUGBOARD_CALL_TIMEOUT_MS (--call-timeout-ms) must be greater than 0");
        }
        if args.memory_limit_mb == 0 {
            bail!("PLUGBOARD_MEMORY_LIMIT_MB (--memory-limit-mb) must be greater than 0");
        }
        if args.max_concurrent_calls == 0 {
            bail!("PLUGBOARD_MAX_CONCURRENT_CALLS (--max-concurrent-calls) must be greater than 0");
        }
        if args.delivery_timeout_ms == 0 {
            bail!("PLUGBOARD_DELIVERY_TIMEOUT_MS (--delivery-timeout-ms) must be greater than 0");
        }
        if args.delivery_per_host == 0 {
            bail!("PLUGBOARD_DELIVERY_PER_HOST (--delivery-per-host) must be greater than 0");
        }
        if args.max_body_bytes == 0 {
            bail!("PLUGBOARD_MAX_BODY_BYTES (--max-body-bytes) must be greater than 0");
        }
        let allow_private = parse_allow_list(&args.outbound_allow_private)
            .map_err(|e| anyhow::anyhow!("PLUGBOARD_OUTBOUND_ALLOW_PRIVATE: {e}"))?;
        if let Some(ca) = &args.outbound_ca_file {
            std::fs::metadata(ca).with_context(|| {
                format!("PLUGBOARD_OUTBOUND_CA_FILE: cannot read {}", ca.display())
            })?;
        }
        let credentials = match (args.user_secret, args.organization_secret) {
            (Some(user), Some(organization)) => {
                if user.trim().is_empty() || organization.trim().is_empty() {
                    bail!(
                        "PLUGBOARD_USER_SECRET and PLUGBOARD_ORGANIZATION_SECRET must not be empty"
                    );
                }
                Some(GivenCredentials { user, organization })
            }
            (None, None) => None,
            _ => bail!(
                "set both PLUGBOARD_USER_SECRET and PLUGBOARD_ORGANIZATION_SECRET, or neither"
            ),
        };
        let runtime = RuntimeConfig {
            call_timeout_ms: args.call_timeout_ms,
            memory_limit_bytes: args.memory_limit_mb << 20,
            max_concurrent_calls: args.max_concurrent_calls,
            pooling: !args.no_pooling,
            cache_dir: Some(args.data.join("cache")),
        };
        let outbound = OutboundConfig {
            allow_private,
            ca_file: args.outbound_ca_file,
            plugin_fetch_allowed_ports: args.plugin_fetch_ports,
            ..OutboundConfig::default()
        };
        Ok(Self {
            listen: args.listen,
            plugins_dir: args.plugins,
            data_dir: args.data,
            runtime,
            outbound,
            credentials,
            ingress: IngressConfig {
                max_body_bytes: args.max_body_bytes,
                dedup_window: Duration::from_secs(args.dedup_window_secs),
            },
            delivery: DeliveryConfig {
                request_timeout: Duration::from_millis(args.delivery_timeout_ms),
                schedule: crate::delivery::RetrySchedule {
                    delays: parse_schedule(&args.delivery_schedule)?,
                    ..crate::delivery::RetrySchedule::default()
                },
                per_host: args.delivery_per_host,
                retention: Duration::from_secs(args.retention_hours * 3600),
                key_grace: Duration::from_secs(args.key_grace_secs),
                ..DeliveryConfig::default()
            },
            log_format: args.log_format,
        })
    }

    /// Settings for tests and embedding: everything default, folders as given.
    pub fn for_dirs(plugins_dir: PathBuf, data_dir: PathBuf) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            runtime: RuntimeConfig {
                cache_dir: Some(data_dir.join("cache")),
                ..RuntimeConfig::default()
            },
            plugins_dir,
            data_dir,
            outbound: OutboundConfig::default(),
            credentials: None,
            ingress: IngressConfig {
                max_body_bytes: 1 << 20,
                dedup_window: Duration::from_secs(86_400),
            },
            delivery: DeliveryConfig::default(),
            log_format: "text".into(),
        }
    }
}
