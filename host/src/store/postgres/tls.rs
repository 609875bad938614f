//! TLS to PostgreSQL with libpq's `sslmode` and `sslrootcert` meanings,
//! on the host's rustls stack (ring, no OpenSSL).
//!
//! `tokio-postgres` knows neither `sslrootcert` nor the `verify-ca` and
//! `verify-full` modes, so [`TlsOptions::take_from_url`] takes both
//! parameters out of the database URL before the rest is parsed, and
//! [`TlsOptions::client_config`] builds the matching certificate check:
//!
//! | `sslmode` | TLS | the server's certificate |
//! |---|---|---|
//! | `disable` | never | — |
//! | `prefer` (default) | if the server offers it, else plaintext | checked against `sslrootcert` when given (chain only, as `verify-ca`), else not checked |
//! | `require` | always | as `prefer` |
//! | `verify-ca` | always | must chain to `sslrootcert` (or the bundled public roots); the host name is not checked |
//! | `verify-full` | always | must chain to `sslrootcert` (or the bundled public roots) and name the host |
//!
//! `sslrootcert` is a PEM file of certificate authorities (loaded with the
//! same code as `outbound_ca_file`), which alone are trusted, or `system`
//! for the public roots bundled in the binary (`webpki-roots`); as libpq
//! does, `system` makes `verify-full` the default and refuses weaker modes.
//! Unlike libpq, `prefer` fails when the TLS handshake fails instead of
//! retrying in plaintext, `sslmode=allow` is refused, and no file in
//! `~/.postgresql/` is read. Over a Unix socket no TLS is used, whatever
//! the mode (as libpq). Errors name `database_url` and the parameter, never
//! the URL (it may hold a password).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context as _};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::verify_server_cert_signed_by_trust_anchor;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres::config::SslMode;

/// libpq's `sslmode` values plugboard honours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Mode {
    /// No TLS.
    Disable,
    /// TLS when the server offers it.
    Prefer,
    /// TLS or no connection.
    Require,
    /// TLS, the certificate chaining to a trusted authority.
    VerifyCa,
    /// TLS, the certificate chaining to a trusted authority and naming the host.
    VerifyFull,
}

/// Which authorities are trusted.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Roots {
    /// No `sslrootcert`.
    Unset,
    /// `sslrootcert=system`: the bundled public roots.
    System,
    /// `sslrootcert=<path>`: the PEM file's certificates alone.
    File(PathBuf),
}

/// The TLS parameters of a database URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct TlsOptions {
    /// The `sslmode`.
    pub(super) mode: Mode,
    roots: Roots,
}

impl TlsOptions {
    /// Takes `sslmode` and `sslrootcert` out of `url`'s query; returns the
    /// URL without them (for `tokio-postgres`) and the options. Other
    /// parameters are left exactly as written.
    pub(super) fn take_from_url(url: &str) -> anyhow::Result<(String, Self)> {
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let (mut mode, mut roots) = (None, Roots::Unset);
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let decoded = || {
                percent_encoding::percent_decode_str(value)
                    .decode_utf8()
                    .map(|v| v.into_owned())
                    .map_err(|_| anyhow::anyhow!("database_url: {key} is not valid UTF-8"))
            };
            match key {
                "sslmode" => mode = Some(parse_mode(&decoded()?)?),
                "sslrootcert" => {
                    roots = match decoded()?.as_str() {
                        "" => bail!("database_url: sslrootcert is empty"),
                        "system" => Roots::System,
                        path => Roots::File(PathBuf::from(path)),
                    }
                }
                _ => kept.push(pair),
            }
        }
        let mode = match (mode, &roots) {
            (None, Roots::System) => Mode::VerifyFull,
            (Some(weak), Roots::System) if weak != Mode::VerifyFull => {
                bail!("database_url: sslrootcert=system needs sslmode=verify-full (or no sslmode)")
            }
            (mode, _) => mode.unwrap_or(Mode::Prefer),
        };
        let rest = if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        Ok((rest, Self { mode, roots }))
    }

    /// Whether the server's certificate is checked at all (a TLS session
    /// without a check protects against reading, not against interception).
    pub(super) fn checks_certificate(&self) -> bool {
        match self.mode {
            Mode::Disable => false,
            Mode::Prefer | Mode::Require => self.roots != Roots::Unset,
            Mode::VerifyCa | Mode::VerifyFull => true,
        }
    }

    /// The `tokio-postgres` mode: whether TLS is tried, and whether it is
    /// required.
    pub(super) fn ssl_mode(&self) -> SslMode {
        match self.mode {
            Mode::Disable => SslMode::Disable,
            Mode::Prefer => SslMode::Prefer,
            Mode::Require | Mode::VerifyCa | Mode::VerifyFull => SslMode::Require,
        }
    }

    /// The rustls client settings checking the server's certificate as
    /// the mode says. Fails, naming `sslrootcert` and the path, when the
    /// file cannot be read or holds no usable certificate.
    pub(super) fn client_config(&self) -> anyhow::Result<ClientConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let roots = match &self.roots {
            Roots::File(path) => Some(file_roots(path)?),
            Roots::System => Some(public_roots()),
            Roots::Unset if matches!(self.mode, Mode::VerifyCa | Mode::VerifyFull) => {
                Some(public_roots())
            }
            Roots::Unset => None,
        };
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?;
        let config = match (self.mode, roots) {
            (Mode::VerifyFull, Some(roots)) => builder.with_root_certificates(roots),
            (_, roots) => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(ChainOnly {
                    roots: roots.map(Arc::new),
                    provider,
                })),
        };
        Ok(config.with_no_client_auth())
    }
}

impl std::fmt::Display for TlsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mode = match self.mode {
            Mode::Disable => "disable",
            Mode::Prefer => "prefer",
            Mode::Require => "require",
            Mode::VerifyCa => "verify-ca",
            Mode::VerifyFull => "verify-full",
        };
        match &self.roots {
            Roots::Unset => write!(f, "sslmode={mode}"),
            Roots::System => write!(f, "sslmode={mode}, sslrootcert=system"),
            Roots::File(path) => write!(f, "sslmode={mode}, sslrootcert {}", path.display()),
        }
    }
}

/// Parses an `sslmode` value.
fn parse_mode(value: &str) -> anyhow::Result<Mode> {
    Ok(match value {
        "disable" => Mode::Disable,
        "prefer" => Mode::Prefer,
        "require" => Mode::Require,
        "verify-ca" => Mode::VerifyCa,
        "verify-full" => Mode::VerifyFull,
        "allow" => bail!(
            "database_url: sslmode=allow is not supported (it tries plaintext first); \
             use prefer, require, verify-ca or verify-full"
        ),
        other => bail!(
            "database_url: sslmode={other} is not one of disable, prefer, require, \
             verify-ca, verify-full"
        ),
    })
}

/// The public roots bundled in the binary.
fn public_roots() -> RootCertStore {
    RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    }
}

/// The certificate authorities of the PEM file `path`, alone.
fn file_roots(path: &Path) -> anyhow::Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    crate::outbound::add_ca_file(&mut roots, path)
        .with_context(|| format!("database_url: sslrootcert {}", path.display()))?;
    Ok(roots)
}

/// Checks that the server's certificate chains to `roots` (when given)
/// without checking the name it is for (`verify-ca`, and `prefer` or
/// `require` with `sslrootcert`), or accepts any certificate (`prefer` or
/// `require` without `sslrootcert`, as libpq). Either way the handshake's
/// signatures are checked, so the server holds the certificate's key.
#[derive(Debug)]
struct ChainOnly {
    roots: Option<Arc<RootCertStore>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(roots) = &self.roots {
            let cert = ParsedCertificate::try_from(end_entity)?;
            verify_server_cert_signed_by_trust_anchor(
                &cert,
                roots,
                intermediates,
                now,
                self.provider.signature_verification_algorithms.all,
            )?;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(url: &str) -> (String, TlsOptions) {
        TlsOptions::take_from_url(url).unwrap()
    }

    fn error(url: &str) -> String {
        format!("{:#}", TlsOptions::take_from_url(url).unwrap_err())
    }

    #[test]
    fn the_tls_parameters_are_taken_out_and_the_rest_kept_as_written() {
        let (rest, tls) = options(
            "postgres://app:p%40ss@db:5432/x?application_name=a%20b&sslmode=verify-full\
             &sslrootcert=%2Fetc%2Fdb%20ca.pem&connect_timeout=4",
        );
        assert_eq!(
            rest,
            "postgres://app:p%40ss@db:5432/x?application_name=a%20b&connect_timeout=4"
        );
        assert_eq!(tls.mode, Mode::VerifyFull);
        assert_eq!(tls.roots, Roots::File("/etc/db ca.pem".into()));
        let (rest, tls) = options("postgres://db/x?sslmode=require");
        assert_eq!(
            (rest.as_str(), tls.mode),
            ("postgres://db/x", Mode::Require)
        );
        assert_eq!(tls.ssl_mode(), SslMode::Require);
        let (_, tls) = options("postgres://db/x");
        assert_eq!((tls.mode, tls.roots), (Mode::Prefer, Roots::Unset));
    }

    #[test]
    fn system_roots_mean_verify_full_as_in_libpq() {
        let (_, tls) = options("postgres://db/x?sslrootcert=system");
        assert_eq!((tls.mode, tls.roots), (Mode::VerifyFull, Roots::System));
        let err = error("postgres://db/x?sslrootcert=system&sslmode=require");
        assert!(
            err.contains("sslrootcert=system needs sslmode=verify-full"),
            "{err}"
        );
    }

    #[test]
    fn unknown_and_unsupported_modes_are_refused_by_name() {
        let err = error("postgres://app:s3cr3t@db/x?sslmode=verify_full");
        assert!(
            err.contains("database_url: sslmode=verify_full is not one of"),
            "{err}"
        );
        assert!(!err.contains("s3cr3t"), "{err}");
        assert!(error("postgres://db/x?sslmode=allow").contains("sslmode=allow is not supported"));
    }

    #[test]
    fn a_bad_root_file_names_the_setting_and_the_path() {
        let (_, tls) =
            options("postgres://db/x?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem");
        let err = format!("{:#}", tls.client_config().unwrap_err());
        assert!(
            err.contains("database_url: sslrootcert /nonexistent/ca.pem")
                && err.contains("cannot open"),
            "{err}"
        );
        let dir = tempfile::tempdir().unwrap();
        let not_pem = dir.path().join("ca.pem");
        std::fs::write(&not_pem, "not a certificate\n").unwrap();
        let url = format!(
            "postgres://db/x?sslmode=verify-ca&sslrootcert={}",
            not_pem.display()
        );
        let err = format!("{:#}", options(&url).1.client_config().unwrap_err());
        assert!(err.contains("holds no PEM certificate"), "{err}");
    }

    #[test]
    fn every_mode_builds_its_settings() {
        for mode in ["disable", "prefer", "require", "verify-ca", "verify-full"] {
            let (_, tls) = options(&format!("postgres://db/x?sslmode={mode}"));
            tls.client_config().unwrap();
        }
    }
}
