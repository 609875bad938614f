//! The settings in their sections, every one with a value: what the layers
//! are merged into and validated from.
//!
//! Each section's `Default` is the one place its defaults are written; where
//! a stage owns a setting (the runtime's limits, delivery's retry schedule,
//! the poller's pace, the outbound policy) the section takes the default
//! from that stage's own config, so no value is written twice. A config file
//! may give a setting in its section (`[runtime] call_timeout_ms = 500`) or
//! by its documented flat name (`call_timeout_ms = 500`); [`FLAT`] maps one
//! to the other, and the environment variables and flags use the flat name.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::Secret;
use crate::cluster::ClusterConfig;
use crate::delivery::DeliveryConfig;
use crate::ingress::InboundLogConfig;
use crate::outbound::OutboundConfig;
use crate::poller::PollerConfig;
use crate::runtime::RuntimeConfig;
use crate::telemetry::LogFormat;

/// Every documented flat name (file key, `PLUGBOARD_<NAME>`, `--<name>`)
/// with the section and key it sets.
pub const FLAT: &[(&str, &str, &str)] = &[
    ("listen", "server", "listen"),
    ("metrics_listen", "server", "metrics_listen"),
    ("public_url", "server", "public_url"),
    ("plugins", "server", "plugins"),
    ("data", "server", "data"),
    ("shutdown_timeout_secs", "server", "shutdown_timeout_secs"),
    ("log_format", "server", "log_format"),
    ("max_connections", "server", "max_connections"),
    (
        "header_read_timeout_secs",
        "server",
        "header_read_timeout_secs",
    ),
    ("call_timeout_ms", "runtime", "call_timeout_ms"),
    ("memory_limit_mb", "runtime", "memory_limit_mb"),
    ("max_concurrent_calls", "runtime", "max_concurrent_calls"),
    ("no_pooling", "runtime", "no_pooling"),
    (
        "element_max_concurrent_calls",
        "runtime",
        "element_max_concurrent_calls",
    ),
    ("breaker_failures", "runtime", "breaker_failures"),
    ("breaker_window_secs", "runtime", "breaker_window_secs"),
    ("breaker_cooldown_secs", "runtime", "breaker_cooldown_secs"),
    ("long_call_lanes", "runtime", "long_call_lanes"),
    ("max_plugin_file_mb", "runtime", "max_plugin_file_mb"),
    ("warm_instances", "runtime", "warm_instances"),
    ("warm_instance_calls", "runtime", "warm_instance_calls"),
    (
        "warm_instance_idle_secs",
        "runtime",
        "warm_instance_idle_secs",
    ),
    ("outbound_allow_private", "outbound", "allow_private"),
    ("outbound_ca_file", "outbound", "ca_file"),
    ("plugin_fetch_ports", "outbound", "plugin_fetch_ports"),
    ("user_secret", "management", "user_secret"),
    ("organization_secret", "management", "organization_secret"),
    ("max_body_bytes", "ingress", "max_body_bytes"),
    ("dedup_window_secs", "ingress", "dedup_window_secs"),
    (
        "body_read_timeout_secs",
        "ingress",
        "body_read_timeout_secs",
    ),
    ("inbound_log_body_bytes", "ingress", "log_body_bytes"),
    (
        "inbound_log_max_per_instance",
        "ingress",
        "log_max_per_instance",
    ),
    ("inbound_log_max_total", "ingress", "log_max_total"),
    (
        "inbound_log_retention_hours",
        "ingress",
        "log_retention_hours",
    ),
    ("delivery_timeout_ms", "delivery", "timeout_ms"),
    ("delivery_schedule", "delivery", "schedule"),
    ("delivery_per_host", "delivery", "per_host"),
    (
        "delivery_max_in_flight_per_instance",
        "delivery",
        "max_in_flight_per_instance",
    ),
    ("retention_hours", "delivery", "retention_hours"),
    ("key_grace_secs", "delivery", "key_grace_secs"),
    (
        "delivery_response_body_bytes",
        "delivery",
        "response_body_bytes",
    ),
    ("poll_min_interval_secs", "poller", "min_interval_secs"),
    ("poll_concurrency", "poller", "concurrency"),
    ("poll_timeout_ms", "poller", "timeout_ms"),
    ("database_url", "store", "database_url"),
    ("replica_id", "cluster", "replica_id"),
    ("heartbeat_secs", "cluster", "heartbeat_secs"),
    ("lease_secs", "cluster", "lease_secs"),
];

/// All settings of `plugboard serve`, by section.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Sections {
    /// Listening, folders, shutdown and logs.
    pub server: Server,
    /// The plugin sandbox.
    pub runtime: Runtime,
    /// Requests the host makes (plugin fetches, deliveries).
    pub outbound: Outbound,
    /// Management API credentials.
    pub management: Management,
    /// Webhook ingress.
    pub ingress: Ingress,
    /// Delivery of notifications.
    pub delivery: Delivery,
    /// Polling of vendors.
    pub poller: Poller,
    /// Where the store is kept.
    pub store: Store,
    /// This replica among several on one PostgreSQL database.
    pub cluster: Cluster,
}

/// `[server]`: listening, folders, shutdown and logs.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Server {
    /// Address of webhooks, management API and health.
    pub listen: SocketAddr,
    /// Separate address for `/metrics`, if any.
    pub metrics_listen: Option<SocketAddr>,
    /// The absolute URL vendors reach this host at, if known.
    pub public_url: Option<String>,
    /// Watched plugin folder.
    pub plugins: PathBuf,
    /// Store, compiled-plugin cache and generated credentials.
    pub data: PathBuf,
    /// Seconds a graceful shutdown waits for in-flight work.
    pub shutdown_timeout_secs: u64,
    /// Log format.
    pub log_format: LogFormat,
    /// Most inbound connections served at once.
    pub max_connections: usize,
    /// Seconds a connection has to send a complete request head.
    pub header_read_timeout_secs: u64,
}

impl Default for Server {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            metrics_listen: None,
            public_url: None,
            plugins: PathBuf::from("plugins/dist"),
            data: PathBuf::from("data"),
            shutdown_timeout_secs: 20,
            log_format: LogFormat::Text,
            max_connections: 10_000,
            header_read_timeout_secs: 10,
        }
    }
}

/// `[runtime]`: the plugin sandbox's limits.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Runtime {
    /// CPU time one plugin call may use, in milliseconds.
    pub call_timeout_ms: u64,
    /// Memory one plugin call may use, in MiB.
    pub memory_limit_mb: usize,
    /// Most plugin calls running at once.
    pub max_concurrent_calls: usize,
    /// Disable wasmtime's pooling allocator.
    pub no_pooling: bool,
    /// Most calls of one element running at once (default: half of
    /// `max_concurrent_calls`).
    pub element_max_concurrent_calls: Option<usize>,
    /// Plugin failures of one element within `breaker_window_secs` that open
    /// its circuit breaker (0: never).
    pub breaker_failures: u32,
    /// Seconds within which an element's plugin failures are counted together.
    pub breaker_window_secs: u64,
    /// Seconds an open circuit breaker answers 503 before it tries one call.
    pub breaker_cooldown_secs: u64,
    /// Lanes for plugin calls that run long (default: one fewer than the
    /// cores, at least one).
    pub long_call_lanes: Option<usize>,
    /// Largest plugin file read from the plugin folder, in MiB.
    pub max_plugin_file_mb: u64,
    /// Most warm instances of stateless elements kept between calls, across
    /// all elements (0: a fresh instance for every call).
    pub warm_instances: usize,
    /// Calls one warm instance serves before it is replaced.
    pub warm_instance_calls: u32,
    /// Seconds an unused warm instance is kept.
    pub warm_instance_idle_secs: u64,
}

impl Default for Runtime {
    fn default() -> Self {
        let runtime = RuntimeConfig::default();
        Self {
            call_timeout_ms: runtime.call_timeout_ms,
            memory_limit_mb: runtime.memory_limit_bytes >> 20,
            max_concurrent_calls: runtime.max_concurrent_calls,
            no_pooling: !runtime.pooling,
            element_max_concurrent_calls: runtime.fairness.element_max_concurrent_calls,
            breaker_failures: runtime.fairness.breaker_failures,
            breaker_window_secs: runtime.fairness.breaker_window_secs,
            breaker_cooldown_secs: runtime.fairness.breaker_cooldown_secs,
            long_call_lanes: runtime.fairness.long_call_lanes,
            max_plugin_file_mb: runtime.max_plugin_file_bytes >> 20,
            warm_instances: runtime.warm.instances,
            warm_instance_calls: runtime.warm.calls,
            warm_instance_idle_secs: runtime.warm.idle.as_secs(),
        }
    }
}

/// `[outbound]`: the outbound request policy.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Outbound {
    /// Private addresses or CIDRs outbound requests may reach.
    pub allow_private: Vec<String>,
    /// PEM file of extra trusted certificate authorities.
    pub ca_file: Option<PathBuf>,
    /// Ports besides 443 that plugin fetches may use.
    pub plugin_fetch_ports: Vec<u16>,
}

impl Default for Outbound {
    fn default() -> Self {
        let outbound = OutboundConfig::default();
        Self {
            allow_private: outbound
                .allow_private
                .iter()
                .map(ToString::to_string)
                .collect(),
            ca_file: outbound.ca_file,
            plugin_fetch_ports: outbound.plugin_fetch_allowed_ports,
        }
    }
}

/// `[management]`: management API credentials (both or neither; none means
/// generated ones in the data folder).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Management {
    /// The `User` secret.
    pub user_secret: Option<Secret>,
    /// The `Organization` secret.
    pub organization_secret: Option<Secret>,
}

/// `[ingress]`: webhook ingress limits.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Ingress {
    /// Largest webhook body, in bytes.
    pub max_body_bytes: usize,
    /// Seconds within which a repeated vendor message id is not stored twice.
    pub dedup_window_secs: u64,
    /// Seconds a request body has to arrive in full.
    pub body_read_timeout_secs: u64,
    /// Bytes of a rejected request's body the inbound log keeps.
    pub log_body_bytes: usize,
    /// Rejected, duplicate and responded requests the inbound log keeps
    /// per instance; more are counted as dropped.
    pub log_max_per_instance: u64,
    /// The same over all instances.
    pub log_max_total: u64,
    /// Hours the inbound log keeps rejected, duplicate and responded requests.
    pub log_retention_hours: u64,
}

impl Default for Ingress {
    fn default() -> Self {
        let log = InboundLogConfig::default();
        Self {
            max_body_bytes: 1 << 20,
            dedup_window_secs: 86_400,
            body_read_timeout_secs: 30,
            log_body_bytes: log.body_bytes,
            log_max_per_instance: log.max_per_instance,
            log_max_total: log.max_total,
            log_retention_hours: log.retention.as_secs() / 3600,
        }
    }
}

/// `[delivery]`: delivery of notifications.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Delivery {
    /// Deadline of one delivery, in milliseconds.
    pub timeout_ms: u64,
    /// Delay before each attempt, in seconds.
    pub schedule: Vec<f64>,
    /// Most deliveries in flight to one destination host.
    pub per_host: usize,
    /// Most notifications of one instance in flight at once (all replicas).
    pub max_in_flight_per_instance: usize,
    /// Hours settled receipts and delivered notifications are kept.
    pub retention_hours: u64,
    /// Seconds a replaced signature key keeps signing.
    pub key_grace_secs: u64,
    /// Bytes of each receiver answer kept with its attempt.
    pub response_body_bytes: usize,
}

impl Default for Delivery {
    fn default() -> Self {
        let delivery = DeliveryConfig::default();
        Self {
            timeout_ms: delivery.request_timeout.as_millis() as u64,
            schedule: delivery
                .schedule
                .delays
                .iter()
                .map(|d| d.as_secs_f64())
                .collect(),
            per_host: delivery.per_host,
            max_in_flight_per_instance: delivery.max_in_flight_per_instance,
            retention_hours: delivery.retention.as_secs() / 3600,
            key_grace_secs: delivery.key_grace.as_secs(),
            response_body_bytes: delivery.response_body_bytes,
        }
    }
}

/// `[poller]`: polling of vendors.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Poller {
    /// Shortest polling period, in seconds.
    pub min_interval_secs: f64,
    /// Most instances polled at once.
    pub concurrency: usize,
    /// Deadline of one request to a polled vendor, in milliseconds.
    pub timeout_ms: u64,
}

impl Default for Poller {
    fn default() -> Self {
        let poller = PollerConfig::default();
        Self {
            min_interval_secs: poller.min_interval.as_secs_f64(),
            concurrency: poller.concurrency,
            timeout_ms: poller.request_timeout.as_millis() as u64,
        }
    }
}

/// `[store]`: where the store is kept.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Store {
    /// A PostgreSQL database URL (`postgres://…` or `postgresql://…`); unset
    /// for the embedded SQLite database in the data folder. A secret: it
    /// may hold a password.
    pub database_url: Option<Secret>,
}

/// `[cluster]`: this replica's identity and its leases (with PostgreSQL).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Cluster {
    /// This replica's id (1–64 of `A-Z a-z 0-9 . _ -`); unset: the host
    /// name and six random hex digits, new at every start.
    pub replica_id: Option<String>,
    /// Seconds between heartbeats (lease renewals).
    pub heartbeat_secs: f64,
    /// Seconds a lease lasts without renewal; more than twice
    /// `heartbeat_secs`.
    pub lease_secs: f64,
}

impl Default for Cluster {
    fn default() -> Self {
        let cluster = ClusterConfig::default();
        Self {
            replica_id: None,
            heartbeat_secs: cluster.heartbeat.as_secs_f64(),
            lease_secs: cluster.lease.as_secs_f64(),
        }
    }
}

/// The defaults by flat name, as TOML values (for `--help` and the sample
/// config's check). Settings without a default are left out.
pub fn flat_defaults() -> toml::Table {
    let nested = toml::Table::try_from(Sections::default()).expect("the defaults serialize");
    FLAT.iter()
        .filter_map(|(flat, section, key)| {
            let value = nested.get(*section)?.get(*key)?;
            Some((flat.to_string(), value.clone()))
        })
        .collect()
}
