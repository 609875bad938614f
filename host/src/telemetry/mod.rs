//! What the host tells its operator: logs (`tracing` to standard error, as
//! text or JSON, filtered by `RUST_LOG`, default `info`; coloured only when
//! standard error is a terminal, so a log file or pipe gets plain text),
//! Prometheus
//! metrics ([`metrics`]), readiness ([`readiness`]) and a span per HTTP
//! request carrying its request id ([`request_id`]).
//!
//! Secrets (signature keys, vendor credentials, instance tokens, management
//! credentials) are never log fields: code logs ids, keys and outcomes, and
//! the types that hold secrets redact themselves in `Debug`.

pub mod metrics;
pub mod readiness;
pub mod request_id;

use std::io::IsTerminal as _;

use serde::{Deserialize, Serialize};
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, with the fields of the enclosing spans.
    Json,
}

/// Installs the global subscriber. Safe to call more than once (later calls
/// are ignored). ANSI colours are used only when standard error is a
/// terminal.
pub fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
