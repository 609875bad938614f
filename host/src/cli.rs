//! The command line: `plugboard serve` and `plugboard plugins …`.
//!
//! Every `serve` setting has one name in three forms: a key of the config
//! file (`call_timeout_ms`), an environment variable
//! (`PLUGBOARD_CALL_TIMEOUT_MS`) and a flag (`--call-timeout-ms`). Clap reads
//! flags and the environment (a flag wins over its variable); the config file
//! is read with serde into the same [`ServeArgs`]; [`crate::config`] layers
//! them over the defaults and validates the result once.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::builder::BoolishValueParser;
use clap::{Args, CommandFactory as _, Parser, Subcommand};
use serde::{Deserialize, Serialize};

use crate::config::Secret;
use crate::telemetry::LogFormat;

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
    /// Internal: compile the component on stdin into a cache artifact. The
    /// host runs this in a child process so compiling leaves no memory behind.
    #[command(hide = true)]
    Compile {
        /// The runtime settings (JSON) the artifact must fit.
        #[arg(long)]
        runtime: String,
        /// Where to write the artifact.
        #[arg(long)]
        out: PathBuf,
    },
}

/// Settings of `plugboard serve`, as one layer gives them: `None` where the
/// layer is silent. The config file uses the field names as keys.
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

    /// Hours accepted receipts, their events and delivered notifications are
    /// kept; anything not yet delivered (or dead-lettered) stays until it is.
    /// At least `dedup_window_secs`.
    #[arg(long, env = "PLUGBOARD_RETENTION_HOURS")]
    pub retention_hours: Option<u64>,

    /// Seconds a replaced signature key keeps signing alongside the new one.
    #[arg(long, env = "PLUGBOARD_KEY_GRACE_SECS")]
    pub key_grace_secs: Option<u64>,

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

    /// Log format: `text` or `json` (the level comes from `RUST_LOG`, default `info`).
    #[arg(long, env = "PLUGBOARD_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
}

/// The command line, with each `serve` setting's default shown in its help.
pub fn command() -> clap::Command {
    let defaults =
        toml::Table::try_from(crate::config::defaults()).expect("the defaults serialize to TOML");
    Cli::command().mut_subcommand("serve", |mut serve| {
        for (key, value) in &defaults {
            serve = serve.mut_arg(key, |arg| {
                let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
                arg.help(format!("{help} [default: {}]", show(value)))
            });
        }
        serve
    })
}

/// A default as one would type it on the command line.
fn show(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => s.clone(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Array(items) => items.iter().map(show).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use clap::FromArgMatches as _;

    use super::*;

    fn serve_args(args: &[&str]) -> ServeArgs {
        let matches = command()
            .try_get_matches_from(["plugboard", "serve"].iter().chain(args))
            .unwrap();
        match Cli::from_arg_matches(&matches).unwrap().command {
            Command::Serve(a) => *a,
            Command::Plugins { .. } => unreachable!(),
        }
    }

    #[test]
    fn flags_left_out_stay_unset() {
        let a = serve_args(&[]);
        assert!(a.listen.is_none() && a.call_timeout_ms.is_none() && a.no_pooling.is_none());
    }

    #[test]
    fn lists_and_switches_parse() {
        let a = serve_args(&[
            "--plugin-fetch-ports=8443,9443",
            "--delivery-schedule=0,0.5,5",
            "--no-pooling",
            "--log-format=json",
        ]);
        assert_eq!(a.plugin_fetch_ports, Some(vec![8443, 9443]));
        assert_eq!(a.delivery_schedule, Some(vec![0.0, 0.5, 5.0]));
        assert_eq!(a.no_pooling, Some(true));
        assert_eq!(a.log_format, Some(LogFormat::Json));
        assert_eq!(serve_args(&["--no-pooling=false"]).no_pooling, Some(false));
    }

    #[test]
    fn help_shows_defaults_and_variables() {
        let help = command()
            .find_subcommand_mut("serve")
            .unwrap()
            .render_long_help()
            .to_string();
        for needle in [
            "[default: 127.0.0.1:8080]",
            "[default: 0,5,300,1800,7200,18000,36000,36000]",
            "PLUGBOARD_CONFIG",
            "PLUGBOARD_SHUTDOWN_TIMEOUT_SECS",
        ] {
            assert!(help.contains(needle), "{needle} missing from:\n{help}");
        }
    }
}
