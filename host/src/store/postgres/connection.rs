//! Connections to PostgreSQL: the database URL, TLS, and the pool every
//! operation borrows a connection from.
//!
//! The URL is anything `tokio-postgres` understands: `postgres://user:pw@host:5432/db`,
//! or a Unix-socket folder as host (`postgres:///db?host=/run/postgresql`),
//! plus libpq's `sslmode` (including `verify-ca` and `verify-full`) and
//! `sslrootcert`, which [`super::tls`] takes out and turns into rustls
//! settings (the same stack as the host's outbound HTTPS). Connecting gives
//! up after a few seconds, and so does waiting for a pooled connection, so
//! a database that is down makes operations fail as unavailable instead of
//! hanging. Connections the server closed (a restart) are noticed when they
//! are handed back and replaced, so the pool recovers by itself.

use std::time::Duration;

use anyhow::Context as _;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::config::SslMode;
use tokio_postgres::{Config, NoTls};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::tls::{Mode, TlsOptions};

/// How long opening one connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// How long an operation waits for a pooled connection.
const WAIT_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections kept per store.
pub(super) const POOL_SIZE: usize = 16;

/// A parsed database URL with the TLS connector to reach it (none over a
/// Unix socket or with `sslmode=disable`).
#[derive(Clone)]
pub(super) struct Target {
    pub(super) config: Config,
    tls: Option<MakeRustlsConnect>,
    tls_options: TlsOptions,
}

impl Target {
    /// Parses `url` and loads its `sslrootcert`. The error never repeats
    /// the URL (it may hold a password).
    pub(super) fn parse(url: &str) -> anyhow::Result<Self> {
        let (url, tls_options) = TlsOptions::take_from_url(url)?;
        let mut config: Config = url
            .parse()
            .map_err(|e| anyhow::anyhow!("the PostgreSQL database URL is not valid: {e}"))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("plugboard");
        }
        let local = config
            .get_hosts()
            .iter()
            .all(|h| matches!(h, tokio_postgres::config::Host::Unix(_)));
        if !local && !tls_options.checks_certificate() {
            tracing::warn!(
                "the connection to PostgreSQL does not check the server's certificate \
                 ({}); set sslmode=verify-full (with sslrootcert=<CA file> for a private CA) \
                 so it cannot be intercepted",
                tls_options
            );
        }
        // Over a Unix socket no TLS is used, whatever the mode (as libpq).
        let tls = if local || tls_options.mode == Mode::Disable {
            config.ssl_mode(SslMode::Disable);
            None
        } else {
            config.ssl_mode(tls_options.ssl_mode());
            Some(MakeRustlsConnect::new(tls_options.client_config()?))
        };
        Ok(Self {
            config,
            tls,
            tls_options,
        })
    }

    /// How connections are secured, for messages: `no TLS` or the mode
    /// and trusted authorities (`sslmode=verify-full, sslrootcert /ca.pem`).
    pub(super) fn describe_tls(&self) -> String {
        match self.tls {
            None => "no TLS".to_string(),
            Some(_) => self.tls_options.to_string(),
        }
    }

    /// A dedicated connection outside the pool (migrations); its driver
    /// task ends when the client is dropped.
    pub(super) async fn connect(&self) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        let client = match &self.tls {
            Some(tls) => {
                let (client, connection) = self.config.connect(tls.clone()).await?;
                tokio::spawn(drive(connection));
                client
            }
            None => {
                let (client, connection) = self.config.connect(NoTls).await?;
                tokio::spawn(drive(connection));
                client
            }
        };
        Ok(client)
    }

    /// A dedicated connection outside the pool whose asynchronous messages
    /// (notifications) the caller reads from the returned stream, which also
    /// drives the connection: it must be polled for the client to work.
    pub(super) async fn connect_streaming(
        &self,
    ) -> Result<(tokio_postgres::Client, super::listen::Messages), tokio_postgres::Error> {
        Ok(match &self.tls {
            Some(tls) => {
                let (client, connection) = self.config.connect(tls.clone()).await?;
                (client, Box::pin(super::listen::messages(connection)))
            }
            None => {
                let (client, connection) = self.config.connect(NoTls).await?;
                (client, Box::pin(super::listen::messages(connection)))
            }
        })
    }

    /// The pool of up to `size` connections.
    pub(super) fn pool(&self, size: usize) -> anyhow::Result<Pool> {
        let config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match &self.tls {
            Some(tls) => Manager::from_config(self.config.clone(), tls.clone(), config),
            None => Manager::from_config(self.config.clone(), NoTls, config),
        };
        Pool::builder(manager)
            .max_size(size)
            .wait_timeout(Some(WAIT_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .runtime(Runtime::Tokio1)
            .build()
            .context("building the PostgreSQL connection pool")
    }
}

/// Runs a dedicated connection until its client is dropped.
async fn drive<F: std::future::Future<Output = Result<(), tokio_postgres::Error>>>(connection: F) {
    if let Err(e) = connection.await {
        tracing::debug!(error = %e, "PostgreSQL connection ended");
    }
}

/// `url` with any password replaced by `********`, for messages and logs.
pub(crate) fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("********"));
            }
            let pairs: Vec<(String, String)> = parsed
                .query_pairs()
                .map(|(k, v)| {
                    let v = if k == "password" {
                        "********".to_string()
                    } else {
                        v.into_owned()
                    };
                    (k.into_owned(), v)
                })
                .collect();
            if !pairs.is_empty() {
                parsed.query_pairs_mut().clear().extend_pairs(pairs);
            }
            parsed.to_string()
        }
        Err(_) => "(a URL that does not parse)".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted_wherever_they_are() {
        let url = redact_url("postgres://app:s3cr3t@db.example:5432/plugboard?sslmode=require");
        assert_eq!(
            url,
            "postgres://app:********@db.example:5432/plugboard?sslmode=require"
        );
        let url = redact_url("postgresql:///plugboard?host=/run/pg&password=s3cr3t");
        assert!(!url.contains("s3cr3t"), "{url}");
        assert!(!redact_url("postgres://a:s3cr3t@[bad").contains("s3cr3t"));
    }

    #[test]
    fn a_bad_url_is_refused_without_repeating_it() {
        let err = Target::parse("postgres://app:s3cr3t@host:notaport/db")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("not valid"), "{err}");
        assert!(!err.contains("s3cr3t"), "{err}");
    }

    #[test]
    fn unix_socket_hosts_parse() {
        let target = Target::parse("postgres:///db?user=postgres&host=/tmp/pg").unwrap();
        assert!(matches!(
            target.config.get_hosts(),
            [tokio_postgres::config::Host::Unix(_)]
        ));
    }
}
