//! The command line: `plugboard serve` and `plugboard plugins …`.
//!
//! Every `serve` setting can also come from a `PLUGBOARD_*` environment
//! variable; flags win over the environment, which wins over the defaults.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// plugboard: turns SaaS vendor activity into normalized, signed events.
#[derive(Debug, Parser)]
#[command(name = "plugboard", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the sidecar: HTTP API, webhook ingress and the plugin folder watcher.
    Serve(Box<ServeArgs>),
    /// Work with element plugins.
    Plugins {
        /// What to do with plugins.
        #[command(subcommand)]
        command: PluginsCommand,
    },
}

/// `plugboard plugins …` commands.
#[derive(Debug, Subcommand)]
pub enum PluginsCommand {
    /// Load a plugin file as the host would and print what it describes,
    /// or exactly why it does not fit the contract.
    Check {
        /// The component file (`.wasm`).
        file: PathBuf,
    },
    /// Create a ready-to-build element plugin project from a template.
    New {
        /// Language of the project.
        #[arg(long, value_enum)]
        lang: crate::scaffold::Language,
        /// The element key, also the project's name: a-z, 0-9, '-' or '_',
        /// starting with a letter.
        name: String,
        /// Folder to create (missing or empty; default: ./NAME).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

/// Settings of `plugboard serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address the HTTP server listens on.
    #[arg(long, env = "PLUGBOARD_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Folder of element plugins (`*.wasm` components), watched for changes.
    #[arg(long, env = "PLUGBOARD_PLUGINS", default_value = "plugins/dist")]
    pub plugins: PathBuf,

    /// Folder for the embedded store, compiled-plugin cache and generated credentials.
    #[arg(long, env = "PLUGBOARD_DATA", default_value = "data")]
    pub data: PathBuf,

    /// CPU time one plugin call may use, in milliseconds.
    #[arg(long, env = "PLUGBOARD_CALL_TIMEOUT_MS", default_value_t = 1000)]
    pub call_timeout_ms: u64,

    /// Memory one plugin call may use, in MiB.
    #[arg(long, env = "PLUGBOARD_MEMORY_LIMIT_MB", default_value_t = 128)]
    pub memory_limit_mb: usize,

    /// Most plugin calls running at once.
    #[arg(long, env = "PLUGBOARD_MAX_CONCURRENT_CALLS", default_value_t = 64)]
    pub max_concurrent_calls: usize,

    /// Disable wasmtime's pooling allocator.
    #[arg(long, env = "PLUGBOARD_NO_POOLING")]
    pub no_pooling: bool,

    /// Private addresses or CIDRs outbound requests may reach (comma-separated;
    /// default: none, only public addresses).
    #[arg(long, env = "PLUGBOARD_OUTBOUND_ALLOW_PRIVATE", default_value = "")]
    pub outbound_allow_private: String,

    /// PEM file of extra certificate authorities trusted for outbound HTTPS.
    #[arg(long, env = "PLUGBOARD_OUTBOUND_CA_FILE")]
    pub outbound_ca_file: Option<PathBuf>,

    /// Ports besides 443 that plugin fetches may use (comma-separated).
    #[arg(long, env = "PLUGBOARD_PLUGIN_FETCH_PORTS", value_delimiter = ',')]
    pub plugin_fetch_ports: Vec<u16>,

    /// Management API user secret (`Authorization: User <secret>, Organization <secret>`).
    /// Without it, credentials are generated on first start and kept in the data folder.
    #[arg(long, env = "PLUGBOARD_USER_SECRET", hide_env_values = true)]
    pub user_secret: Option<String>,

    /// Management API organization secret; set together with the user secret.
    #[arg(long, env = "PLUGBOARD_ORGANIZATION_SECRET", hide_env_values = true)]
    pub organization_secret: Option<String>,

    /// Largest inbound webhook body, in bytes.
    #[arg(long, env = "PLUGBOARD_MAX_BODY_BYTES", default_value_t = 1 << 20)]
    pub max_body_bytes: usize,

    /// A vendor message id seen again within this many seconds is not stored twice.
    #[arg(long, env = "PLUGBOARD_DEDUP_WINDOW_SECS", default_value_t = 86_400)]
    pub dedup_window_secs: u64,

    /// Deadline of one notification delivery, in milliseconds.
    #[arg(long, env = "PLUGBOARD_DELIVERY_TIMEOUT_MS", default_value_t = 15_000)]
    pub delivery_timeout_ms: u64,

    /// Delivery attempts: the delay before each, in seconds, comma-separated
    /// (fractions allowed). Default: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
    #[arg(
        long,
        env = "PLUGBOARD_DELIVERY_SCHEDULE",
        default_value = "0,5,300,1800,7200,18000,36000,36000"
    )]
    pub delivery_schedule: String,

    /// Most deliveries in flight to one destination host.
    #[arg(long, env = "PLUGBOARD_DELIVERY_PER_HOST", default_value_t = 64)]
    pub delivery_per_host: usize,

    /// Hours delivered notifications stay in the event log.
    #[arg(long, env = "PLUGBOARD_RETENTION_HOURS", default_value_t = 168)]
    pub retention_hours: u64,

    /// Seconds a replaced signature key keeps signing alongside the new one.
    #[arg(long, env = "PLUGBOARD_KEY_GRACE_SECS", default_value_t = 86_400)]
    pub key_grace_secs: u64,

    /// Log format: `text` or `json`.
    #[arg(long, env = "PLUGBOARD_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
}
