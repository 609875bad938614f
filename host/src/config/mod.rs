//! The validated settings of a running host, built once at start-up.
//!
//! Layers, lowest first: the defaults of [`Sections`], the TOML config
//! file (`--config` / `PLUGBOARD_CONFIG`), `PLUGBOARD_*` environment
//! variables, command-line flags (see [`ServeArgs`]), merged by [`layers`].
//! Every check happens here, once, after layering, and a bad value stops the
//! host with a message naming the setting and the reason.

mod args;
mod layers;
pub mod sections;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context as _};

pub use crate::api::auth::GivenCredentials;
use crate::cluster::ClusterConfig;
use crate::delivery::{DeliveryConfig, RetrySchedule};
use crate::ingress::InboundLogConfig;
pub use crate::ingress::IngressConfig;
use crate::instance::PublicUrl;
use crate::outbound::{parse_allow_list, OutboundConfig};
use crate::poller::PollerConfig;
use crate::runtime::{FairnessConfig, RuntimeConfig, WarmConfig};
use crate::store::StoreConfig;
use crate::telemetry::LogFormat;

pub use args::ServeArgs;
pub use layers::named;
pub use sections::{flat_defaults, Sections};

/// A secret setting (management credentials): usable by the code that
/// needs it, never shown by `Debug`, serialization or error messages.
#[derive(Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// The secret itself, for the one place that checks or uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_string()))
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(********)")
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("********")
    }
}

/// Limits on inbound HTTP connections.
#[derive(Clone, Copy, Debug)]
pub struct HttpConfig {
    /// Most connections served at once (before fitting the open-file limit).
    pub max_connections: usize,
    /// Time a connection has to send a complete request head.
    pub header_read_timeout: Duration,
}

/// Everything the host needs to run.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Separate address for `/metrics`, if any.
    pub metrics_listen: Option<SocketAddr>,
    /// The URL vendors reach this host at, from which instances' inbound
    /// URLs are built; `None` when the operator did not set it.
    pub public_url: Option<PublicUrl>,
    /// Watched plugin folder.
    pub plugins_dir: PathBuf,
    /// Data folder (SQLite store, caches, generated credentials).
    pub data_dir: PathBuf,
    /// Where the store is kept: SQLite in the data folder, or PostgreSQL.
    pub store: StoreConfig,
    /// Plugin runtime limits.
    pub runtime: RuntimeConfig,
    /// Outbound request policy.
    pub outbound: OutboundConfig,
    /// Credentials from the operator; `None` means generated ones in the data folder.
    pub credentials: Option<GivenCredentials>,
    /// Ingress limits.
    pub ingress: IngressConfig,
    /// Inbound connection limits.
    pub http: HttpConfig,
    /// Delivery of notifications.
    pub delivery: DeliveryConfig,
    /// Polling of vendors.
    pub poller: PollerConfig,
    /// How long a graceful shutdown waits for in-flight work.
    pub shutdown_timeout: Duration,
    /// Log output format.
    pub log_format: LogFormat,
    /// This replica's identity and lease timings.
    pub cluster: ClusterConfig,
}

/// Fails naming the setting unless `value` is positive.
fn positive<T: Default + PartialOrd>(value: T, key: &str) -> anyhow::Result<T> {
    if value <= T::default() {
        bail!("{} must be greater than 0", named(key));
    }
    Ok(value)
}

fn at_most(value: usize, max: usize, key: &str) -> anyhow::Result<usize> {
    if value > max {
        bail!("{} must be at most {max} (got {value})", named(key));
    }
    Ok(value)
}

/// The runtime's sharing between elements, validated: the per-element
/// budget and the lanes for long calls positive and at most
/// `max_concurrent_calls`, the breaker's window and cool-down positive.
fn fairness(runtime: &sections::Runtime) -> anyhow::Result<FairnessConfig> {
    let within_calls = |value: Option<usize>, key: &str| -> anyhow::Result<()> {
        let Some(value) = value else { return Ok(()) };
        let value = positive(value, key)?;
        if value > runtime.max_concurrent_calls {
            bail!(
                "{} ({value}) must not be more than {} ({})",
                named(key),
                named("max_concurrent_calls"),
                runtime.max_concurrent_calls
            );
        }
        Ok(())
    };
    within_calls(
        runtime.element_max_concurrent_calls,
        "element_max_concurrent_calls",
    )?;
    within_calls(runtime.long_call_lanes, "long_call_lanes")?;
    Ok(FairnessConfig {
        element_max_concurrent_calls: runtime.element_max_concurrent_calls,
        breaker_failures: runtime.breaker_failures,
        breaker_window_secs: positive(runtime.breaker_window_secs, "breaker_window_secs")?,
        breaker_cooldown_secs: positive(runtime.breaker_cooldown_secs, "breaker_cooldown_secs")?,
        long_call_lanes: runtime.long_call_lanes,
    })
}

/// Longest plugin call deadline: an hour, far beyond any webhook a vendor
/// waits for, and well inside what the call's timer can count.
pub const MAX_CALL_TIMEOUT_MS: u64 = 3_600_000;
/// Largest plugin memory: a 32-bit WebAssembly memory holds at most 4 GiB.
pub const MAX_MEMORY_LIMIT_MB: usize = 4096;
/// Most plugin calls at once: each holds an instance slot whose memory is
/// reserved up front, so the count must stay within the address space.
pub const MAX_CONCURRENT_CALLS: usize = 4096;

/// Fails naming the setting unless `value` is positive and at most `max`
/// (`why` says where the bound comes from).
fn bounded<T: Default + PartialOrd + std::fmt::Display>(
    value: T,
    max: T,
    key: &str,
    why: &str,
) -> anyhow::Result<T> {
    let value = positive(value, key)?;
    if value > max {
        bail!("{} must be at most {max} ({why}), got {value}", named(key));
    }
    Ok(value)
}

impl Settings {
    /// Layers the config file (if `args.config` names one) and the defaults
    /// under the flags and environment in `args`, then validates.
    pub fn from_args(args: ServeArgs) -> anyhow::Result<Self> {
        Self::resolve(layers::merge(&args)?)
    }

    /// Settings for tests and embedding: everything default, folders as
    /// given, listening on a free loopback port.
    pub fn for_dirs(plugins_dir: PathBuf, data_dir: PathBuf) -> Self {
        let mut sections = Sections::default();
        sections.server.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        sections.server.plugins = plugins_dir;
        sections.server.data = data_dir;
        Self::resolve(sections).expect("the defaults are valid")
    }

    /// Validates fully layered settings.
    fn resolve(sections: Sections) -> anyhow::Result<Self> {
        let Sections {
            server,
            runtime,
            outbound,
            management,
            ingress,
            delivery,
            poller,
            store,
            cluster,
        } = sections;
        let cluster = cluster_config(cluster)?;
        let store = store_config(store, &server.data)?;
        let credentials = credentials(management)?;
        if credentials.is_none() && matches!(store, StoreConfig::Postgres { .. }) {
            bail!(
                "with {} set, {} and {} must be set too: replicas sharing a database \
                 must share the management credentials, so none are generated",
                named("database_url"),
                named("user_secret"),
                named("organization_secret")
            );
        }
        let allow_private = parse_allow_list(&outbound.allow_private.join(","))
            .map_err(|e| anyhow::anyhow!("{}: {e}", named("outbound_allow_private")))?;
        if let Some(ca) = &outbound.ca_file {
            std::fs::metadata(ca).with_context(|| {
                format!(
                    "{}: cannot read {}",
                    named("outbound_ca_file"),
                    ca.display()
                )
            })?;
        }
        let runtime = RuntimeConfig {
            call_timeout_ms: bounded(
                runtime.call_timeout_ms,
                MAX_CALL_TIMEOUT_MS,
                "call_timeout_ms",
                "an hour",
            )?,
            memory_limit_bytes: bounded(
                runtime.memory_limit_mb,
                MAX_MEMORY_LIMIT_MB,
                "memory_limit_mb",
                "a WebAssembly memory holds at most 4 GiB",
            )? << 20,
            max_concurrent_calls: bounded(
                runtime.max_concurrent_calls,
                MAX_CONCURRENT_CALLS,
                "max_concurrent_calls",
                "each call reserves a plugin instance slot",
            )?,
            pooling: !runtime.no_pooling,
            fairness: fairness(&runtime)?,
            max_plugin_file_bytes: positive(runtime.max_plugin_file_mb, "max_plugin_file_mb")?
                .checked_mul(1 << 20)
                .ok_or_else(|| anyhow::anyhow!("{} is too large", named("max_plugin_file_mb")))?,
            warm: WarmConfig {
                instances: if runtime.warm_instances > MAX_CONCURRENT_CALLS {
                    bail!(
                        "{} must be at most {MAX_CONCURRENT_CALLS} (each holds an instance \
                         slot), got {}",
                        named("warm_instances"),
                        runtime.warm_instances
                    )
                } else {
                    runtime.warm_instances
                },
                calls: positive(runtime.warm_instance_calls, "warm_instance_calls")?,
                idle: Duration::from_secs(positive(
                    runtime.warm_instance_idle_secs,
                    "warm_instance_idle_secs",
                )?),
            },
            cache_dir: Some(server.data.join("cache")),
            compiler_program: None,
        };
        if outbound.plugin_fetch_ports.contains(&0) {
            bail!(
                "{}: 0 is not a port (ports are 1 to 65535)",
                named("plugin_fetch_ports")
            );
        }
        let outbound = OutboundConfig {
            allow_private,
            ca_file: outbound.ca_file,
            plugin_fetch_allowed_ports: outbound.plugin_fetch_ports,
            ..OutboundConfig::default()
        };
        let delivery = DeliveryConfig {
            request_timeout: Duration::from_millis(positive(
                delivery.timeout_ms,
                "delivery_timeout_ms",
            )?),
            schedule: RetrySchedule {
                delays: schedule(delivery.schedule)?,
                ..RetrySchedule::default()
            },
            per_host: positive(delivery.per_host, "delivery_per_host")?,
            max_in_flight_per_instance: positive(
                delivery.max_in_flight_per_instance,
                "delivery_max_in_flight_per_instance",
            )?,
            retention: Duration::from_secs(delivery.retention_hours.saturating_mul(3600)),
            key_grace: Duration::from_secs(delivery.key_grace_secs),
            response_body_bytes: at_most(
                delivery.response_body_bytes,
                crate::delivery::MAX_ANSWER_BYTES,
                "delivery_response_body_bytes",
            )?,
            ..DeliveryConfig::default()
        };
        let min_interval = poller.min_interval_secs;
        let poller = PollerConfig {
            min_interval: Duration::try_from_secs_f64(min_interval).map_err(|_| {
                anyhow::anyhow!(
                    "{}: {min_interval} is not a number of seconds (0 or more)",
                    named("poll_min_interval_secs")
                )
            })?,
            concurrency: positive(poller.concurrency, "poll_concurrency")?,
            request_timeout: Duration::from_millis(positive(poller.timeout_ms, "poll_timeout_ms")?),
            ..PollerConfig::default()
        };
        let dedup_window = Duration::from_secs(ingress.dedup_window_secs);
        if delivery.retention < dedup_window {
            bail!(
                "{} ({} h) is shorter than {} ({} s): a receipt must be kept at least as long \
                 as a repeat of it is recognized",
                named("retention_hours"),
                delivery.retention.as_secs() / 3600,
                named("dedup_window_secs"),
                dedup_window.as_secs()
            );
        }
        Ok(Self {
            listen: server.listen,
            metrics_listen: server.metrics_listen,
            public_url: server
                .public_url
                .as_deref()
                .map(PublicUrl::parse)
                .transpose()
                .map_err(|e| anyhow::anyhow!("{}: {e}", named("public_url")))?,
            plugins_dir: server.plugins,
            data_dir: server.data,
            store,
            runtime,
            outbound,
            credentials,
            http: HttpConfig {
                max_connections: positive(server.max_connections, "max_connections")?,
                header_read_timeout: Duration::from_secs(positive(
                    server.header_read_timeout_secs,
                    "header_read_timeout_secs",
                )?),
            },
            ingress: IngressConfig {
                max_body_bytes: positive(ingress.max_body_bytes, "max_body_bytes")?,
                dedup_window,
                body_read_timeout: Duration::from_secs(positive(
                    ingress.body_read_timeout_secs,
                    "body_read_timeout_secs",
                )?),
                log: InboundLogConfig {
                    body_bytes: ingress.log_body_bytes,
                    max_per_instance: ingress.log_max_per_instance,
                    max_total: ingress.log_max_total,
                    retention: Duration::from_secs(
                        positive(ingress.log_retention_hours, "inbound_log_retention_hours")?
                            * 3600,
                    ),
                },
            },
            delivery,
            poller,
            shutdown_timeout: Duration::from_secs(server.shutdown_timeout_secs),
            log_format: server.log_format,
            cluster,
        })
    }
}

/// The operator's management credentials: both secrets, non-empty, or neither.
fn credentials(management: sections::Management) -> anyhow::Result<Option<GivenCredentials>> {
    match (management.user_secret, management.organization_secret) {
        (Some(user), Some(organization)) => {
            if user.expose().trim().is_empty() || organization.expose().trim().is_empty() {
                bail!(
                    "{} and {} must not be empty",
                    named("user_secret"),
                    named("organization_secret")
                );
            }
            Ok(Some(GivenCredentials {
                user: user.expose().to_string(),
                organization: organization.expose().to_string(),
            }))
        }
        (None, None) => Ok(None),
        _ => bail!(
            "set both {} and {}, or neither",
            named("user_secret"),
            named("organization_secret")
        ),
    }
}

/// The store `database_url` names: PostgreSQL for a `postgres://` or
/// `postgresql://` URL, the SQLite file `plugboard.db` in the data folder
/// when unset. The URL is never repeated in an error (it may hold a
/// password).
fn store_config(store: sections::Store, data: &std::path::Path) -> anyhow::Result<StoreConfig> {
    let Some(url) = store.database_url else {
        return Ok(StoreConfig::Sqlite {
            path: data.join("plugboard.db"),
        });
    };
    let url = url.expose().trim();
    let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("postgres" | "postgresql") => Ok(StoreConfig::Postgres {
            url: url.to_string(),
        }),
        _ if url.is_empty() => bail!(
            "{} is empty: give a postgres:// URL, or leave it unset for the embedded \
             SQLite store",
            named("database_url")
        ),
        Some(other) if !other.contains(['@', '/', ':']) => bail!(
            "{}: a {other}:// URL is not supported; give a postgres:// or postgresql:// URL, \
             or leave it unset for the embedded SQLite store",
            named("database_url")
        ),
        _ => bail!(
            "{}: not a postgres:// or postgresql:// URL; leave it unset for the embedded \
             SQLite store",
            named("database_url")
        ),
    }
}

/// The replica's id (given and checked, or generated) and lease timings:
/// the heartbeat positive, the lease more than two heartbeats.
fn cluster_config(cluster: sections::Cluster) -> anyhow::Result<ClusterConfig> {
    let replica_id = match cluster.replica_id {
        Some(id) => {
            crate::cluster::check_replica_id(&id)
                .map_err(|why| anyhow::anyhow!("{}: {why}", named("replica_id")))?;
            id
        }
        None => crate::cluster::generated_replica_id(),
    };
    let secs = |value: f64, key: &str| {
        Duration::try_from_secs_f64(value)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                anyhow::anyhow!("{}: {value} is not a number of seconds above 0", named(key))
            })
    };
    let heartbeat = secs(cluster.heartbeat_secs, "heartbeat_secs")?;
    let lease = secs(cluster.lease_secs, "lease_secs")?;
    if lease <= heartbeat * 2 {
        bail!(
            "{} ({} s) must be more than twice {} ({} s): a lease must outlive a missed heartbeat",
            named("lease_secs"),
            cluster.lease_secs,
            named("heartbeat_secs"),
            cluster.heartbeat_secs
        );
    }
    Ok(ClusterConfig {
        replica_id,
        heartbeat,
        lease,
    })
}

/// A delivery schedule: at least one delay, each a finite number of seconds ≥ 0.
fn schedule(delays: Vec<f64>) -> anyhow::Result<Vec<Duration>> {
    if delays.is_empty() {
        bail!(
            "{} must list at least one attempt",
            named("delivery_schedule")
        );
    }
    delays
        .into_iter()
        .map(|d| {
            Duration::try_from_secs_f64(d).map_err(|_| {
                anyhow::anyhow!(
                    "{}: {d} is not a number of seconds (0 or more)",
                    named("delivery_schedule")
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests;
