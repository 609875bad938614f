//! `plugboard serve`'s settings as one layer gives them: the flags and
//! `PLUGBOARD_*` variables clap reads, or one config file.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::builder::BoolishValueParser;
use clap::Args;
use serde::{Deserialize, Serialize};

use super::Secret;
use crate::telemetry::LogFormat;

/// Settings of `plugboard serve`, as one layer gives them: `None` where the
/// layer is silent. The environment and flags fill the flat fields; a config
/// file uses the field names as keys, or the same settings in sections
/// (`[runtime]`, …; see [`super::sections::FLAT`]), read as tables and
/// typed when the layers are merged.
#[derive(Clone, Debug, Default, Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeArgs {
    /// TOML file of settings (keys are the flag names with `_`, e.g.
    /// `call_timeout_ms = 500`); the environment and flags override it.
    #[arg(long, env = "PLUGBOARD_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,

    /// Address the HTTP server (webhooks, management API, health) listens on.
    #[arg(long, env = "PLUGBOARD_LISTEN")]
    pub listen: Option<SocketAddr>,

    /// Separate address for `/metrics` (with `/healthz` and `/readyz`); when
    /// set, `/metrics` is no longer served on the main address.
    #[arg(long, env = "PLUGBOARD_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// The absolute http(s) URL vendors reach this host at, e.g.
    /// `https://hooks.example.com` (a path prefix is kept). Each instance's
    /// inbound URL is built from it, and elements that implement
    /// subscription register that URL at the vendor. Unset: instances show
    /// only the path, and nothing is registered at vendors.
    #[arg(long, env = "PLUGBOARD_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Folder of element plugins (`*.wasm` components), watched for changes.
    #[arg(long, env = "PLUGBOARD_PLUGINS")]
    pub plugins: Option<PathBuf>,

    /// Folder for the embedded store, compiled-plugin cache and generated credentials.
    #[arg(long, env = "PLUGBOARD_DATA")]
    pub data: Option<PathBuf>,

    /// CPU time one plugin call may use, in milliseconds.
    #[arg(long, env = "PLUGBOARD_CALL_TIMEOUT_MS")]
    pub call_timeout_ms: Option<u64>,

    /// Memory one plugin call may use, in MiB.
    #[arg(long, env = "PLUGBOARD_MEMORY_LIMIT_MB")]
    pub memory_limit_mb: Option<usize>,

    /// Most plugin calls running at once.
    #[arg(long, env = "PLUGBOARD_MAX_CONCURRENT_CALLS")]
    pub max_concurrent_calls: Option<usize>,

    /// Disable wasmtime's pooling allocator (`--no-pooling` or `--no-pooling=false`).
    #[arg(long, env = "PLUGBOARD_NO_POOLING", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub no_pooling: Option<bool>,

    /// Most calls of one element's plugin running at once, so one element
    /// never takes every slot of `max_concurrent_calls` (default: half of it).
    #[arg(long, env = "PLUGBOARD_ELEMENT_MAX_CONCURRENT_CALLS")]
    pub element_max_concurrent_calls: Option<usize>,

    /// Plugin failures (traps, timeouts, memory blow-ups) of one element
    /// within `breaker_window_secs` that open its circuit breaker: its
    /// requests are then answered 503 with `Retry-After` without running the
    /// plugin, until the cool-down is over (0: never open it).
    #[arg(long, env = "PLUGBOARD_BREAKER_FAILURES")]
    pub breaker_failures: Option<u32>,

    /// Seconds within which an element's plugin failures are counted together.
    #[arg(long, env = "PLUGBOARD_BREAKER_WINDOW_SECS")]
    pub breaker_window_secs: Option<u64>,

    /// Seconds an open circuit breaker refuses the element's calls before it
    /// lets one trial call through (success closes it, failure reopens it).
    #[arg(long, env = "PLUGBOARD_BREAKER_COOLDOWN_SECS")]
    pub breaker_cooldown_secs: Option<u64>,

    /// Lanes for plugin calls that run long: a call that has used 20 ms of
    /// CPU goes on only while it holds one, so long calls never take every
    /// core from short calls and the host (default: one fewer than the
    /// cores, at least one; at most `max_concurrent_calls`).
    #[arg(long, env = "PLUGBOARD_LONG_CALL_LANES")]
    pub long_call_lanes: Option<usize>,

    /// Largest plugin file read from the plugin folder, in MiB; a bigger file
    /// is refused by name before it is read.
    #[arg(long, env = "PLUGBOARD_MAX_PLUGIN_FILE_MB")]
    pub max_plugin_file_mb: Option<u64>,

    /// Most warm instances of stateless elements kept between calls, across
    /// all elements; each holds an instance slot and its memory (0: a fresh
    /// instance for every call).
    #[arg(long, env = "PLUGBOARD_WARM_INSTANCES")]
    pub warm_instances: Option<usize>,

    /// Calls one warm instance serves before it is replaced by a fresh one.
    #[arg(long, env = "PLUGBOARD_WARM_INSTANCE_CALLS")]
    pub warm_instance_calls: Option<u32>,

    /// Seconds an unused warm instance is kept.
    #[arg(long, env = "PLUGBOARD_WARM_INSTANCE_IDLE_SECS")]
    pub warm_instance_idle_secs: Option<u64>,

    /// Private addresses or CIDRs outbound requests may reach (comma-separated;
    /// empty: only public addresses).
    #[arg(long, env = "PLUGBOARD_OUTBOUND_ALLOW_PRIVATE", value_delimiter = ',')]
    pub outbound_allow_private: Option<Vec<String>>,

    /// PEM file of extra certificate authorities trusted for outbound HTTPS.
    #[arg(long, env = "PLUGBOARD_OUTBOUND_CA_FILE")]
    pub outbound_ca_file: Option<PathBuf>,

    /// Ports besides 443 that plugin fetches may use (comma-separated).
    #[arg(long, env = "PLUGBOARD_PLUGIN_FETCH_PORTS", value_delimiter = ',')]
    pub plugin_fetch_ports: Option<Vec<u16>>,

    /// Management API user secret (`Authorization: User <secret>, Organization <secret>`).
    /// Without it, credentials are generated on first start and kept in the data folder.
    #[arg(long, env = "PLUGBOARD_USER_SECRET", hide_env_values = true)]
    pub user_secret: Option<Secret>,

    /// Management API organization secret; set together with the user secret.
    #[arg(long, env = "PLUGBOARD_ORGANIZATION_SECRET", hide_env_values = true)]
    pub organization_secret: Option<Secret>,

    /// Largest inbound webhook body, in bytes.
    #[arg(long, env = "PLUGBOARD_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,

    /// Seconds a request body has to arrive in full; a slower one gets 408.
    #[arg(long, env = "PLUGBOARD_BODY_READ_TIMEOUT_SECS")]
    pub body_read_timeout_secs: Option<u64>,

    /// Seconds a connection has to send a complete request head, after
    /// connecting or after its previous response (so also the longest an
    /// idle keep-alive connection is kept).
    #[arg(long, env = "PLUGBOARD_HEADER_READ_TIMEOUT_SECS")]
    pub header_read_timeout_secs: Option<u64>,

    /// Most inbound connections served at once; one more is answered 503 and
    /// closed. Lowered to fit the open-file limit (raised at start to the hard limit).
    #[arg(long, env = "PLUGBOARD_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,

    /// A vendor message id seen again within this many seconds is not stored twice.
    #[arg(long, env = "PLUGBOARD_DEDUP_WINDOW_SECS")]
    pub dedup_window_secs: Option<u64>,

    /// Bytes of a rejected webhook's body the inbound log keeps.
    #[arg(long, env = "PLUGBOARD_INBOUND_LOG_BODY_BYTES")]
    pub inbound_log_body_bytes: Option<usize>,

    /// Rejected, duplicate and plugin-answered webhooks the inbound log
    /// keeps per instance; more are only counted (as dropped).
    #[arg(long, env = "PLUGBOARD_INBOUND_LOG_MAX_PER_INSTANCE")]
    pub inbound_log_max_per_instance: Option<u64>,

    /// The same over all instances.
    #[arg(long, env = "PLUGBOARD_INBOUND_LOG_MAX_TOTAL")]
    pub inbound_log_max_total: Option<u64>,

    /// Hours the inbound log keeps rejected, duplicate and plugin-answered
    /// webhooks (receipts go with `retention_hours`).
    #[arg(long, env = "PLUGBOARD_INBOUND_LOG_RETENTION_HOURS")]
    pub inbound_log_retention_hours: Option<u64>,

    /// Deadline of one notification delivery, in milliseconds.
    #[arg(long, env = "PLUGBOARD_DELIVERY_TIMEOUT_MS")]
    pub delivery_timeout_ms: Option<u64>,

    /// Delivery attempts: the delay before each, in seconds, comma-separated
    /// (fractions allowed); the default is Svix's: immediately, 5 s, 5 min,
    /// 30 min, 2 h, 5 h, 10 h, 10 h.
    #[arg(
        long,
        env = "PLUGBOARD_DELIVERY_SCHEDULE",
        value_delimiter = ',',
        allow_negative_numbers = true
    )]
    pub delivery_schedule: Option<Vec<f64>>,

    /// Most deliveries in flight to one destination host.
    #[arg(long, env = "PLUGBOARD_DELIVERY_PER_HOST")]
    pub delivery_per_host: Option<usize>,

    /// Most notifications of one instance in flight at once, across
    /// replicas: a slow receiver holds no more claims or slots than this.
    #[arg(long, env = "PLUGBOARD_DELIVERY_MAX_IN_FLIGHT_PER_INSTANCE")]
    pub delivery_max_in_flight_per_instance: Option<usize>,

    /// Hours accepted receipts, their events and delivered notifications are
    /// kept; anything not yet delivered (or dead-lettered) stays until it is.
    /// At least `dedup_window_secs`.
    #[arg(long, env = "PLUGBOARD_RETENTION_HOURS")]
    pub retention_hours: Option<u64>,

    /// Seconds a replaced signature key keeps signing alongside the new one.
    #[arg(long, env = "PLUGBOARD_KEY_GRACE_SECS")]
    pub key_grace_secs: Option<u64>,

    /// How many bytes of each receiver answer the event log keeps with the
    /// attempt (0 to 16384; 1024 by default).
    #[arg(long, env = "PLUGBOARD_DELIVERY_RESPONSE_BODY_BYTES")]
    pub delivery_response_body_bytes: Option<usize>,

    /// Shortest polling period in seconds (fractions allowed): a shorter
    /// `event.poller.refresh_interval` is raised to it.
    #[arg(long, env = "PLUGBOARD_POLL_MIN_INTERVAL_SECS")]
    pub poll_min_interval_secs: Option<f64>,

    /// Most instances polled at once.
    #[arg(long, env = "PLUGBOARD_POLL_CONCURRENCY")]
    pub poll_concurrency: Option<usize>,

    /// Deadline of one request to a polled vendor, in milliseconds.
    #[arg(long, env = "PLUGBOARD_POLL_TIMEOUT_MS")]
    pub poll_timeout_ms: Option<u64>,

    /// On SIGTERM or SIGINT, seconds in-flight requests and deliveries get to
    /// finish before they are abandoned (abandoned deliveries stay due).
    #[arg(long, env = "PLUGBOARD_SHUTDOWN_TIMEOUT_SECS")]
    pub shutdown_timeout_secs: Option<u64>,

    /// PostgreSQL database to keep the store in, as a URL:
    /// `postgres://user:password@host:5432/db` (`?sslmode=require` for TLS) or
    /// `postgres:///db?host=/run/postgresql` (a Unix socket). Unset: the
    /// embedded SQLite database in the data folder. Never logged or shown.
    #[arg(long, env = "PLUGBOARD_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<Secret>,

    /// This replica's id among several on one PostgreSQL database: 1 to 64
    /// of `A-Z a-z 0-9 . _ -`. Unset: the host name and six random hex
    /// digits, new at every start.
    #[arg(long, env = "PLUGBOARD_REPLICA_ID")]
    pub replica_id: Option<String>,

    /// Seconds between a replica's heartbeats, which renew its partition and
    /// singleton leases (fractions allowed).
    #[arg(long, env = "PLUGBOARD_HEARTBEAT_SECS")]
    pub heartbeat_secs: Option<f64>,

    /// Seconds a replica's leases last without a heartbeat; then another
    /// replica takes its polls and maintenance over. More than twice
    /// `heartbeat_secs`.
    #[arg(long, env = "PLUGBOARD_LEASE_SECS")]
    pub lease_secs: Option<f64>,

    /// Log format: `text` or `json` (the level comes from `RUST_LOG`, default `info`).
    #[arg(long, env = "PLUGBOARD_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,

    /// `[server]` of a config file (file only).
    #[arg(skip)]
    #[serde(default, skip_serializing)]
    pub server: Option<toml::Table>,

    /// `[runtime]` of a config file (file only).
    #[arg(skip)]
    #[serde(default, skip_serializing)]
    pub runtime: Option<toml::Table>,

    /// `[outbound]` of a config file (file only).
    #[arg(skip)]
    #[serde(default, skip_serializing)]
    pub outbound: Option<toml::Table>,

    /// `[management]` of a config file (file only).
    #[arg(skip)]
    #[serde(default, skip_serializing)]
    pub management: Option<toml::Table>,

    /// `[ingress]` of a config file (file only).
    #[arg(skip)]
    #[serde(default, skip_serializing)]
    pub ingress: Option<toml::Table>,

    /// `[delivery]` of a config file (file only).
    #[arg(skip)]
    #[serde(default, skip_serializing)]
    pub delivery: Option<toml::Table>,

    /// `[poller]` of a config file (file only).
    #[arg(skip)]
    #[serde(default, skip_serializing)]
    pub poller: Option<toml::Table>,

    /// `[store]` of a config file (file only).
    #[arg(skip)]
    #[serde(default, skip_serializing)]
    pub store: Option<toml::Table>,

    /// `[cluster]` of a config file (file only).
    #[arg(skip)]
    #[serde(default, skip_serializing)]
    pub cluster: Option<toml::Table>,
}
