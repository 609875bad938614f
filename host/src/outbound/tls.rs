//! TLS client settings for outbound HTTPS: the bundled public roots (webpki), plus the
//! operator's extra certificate authorities for on-premises servers.
//!
//! The same PEM loading serves the store's `sslrootcert` ([`add_ca_file`]).
//!
//! The crypto provider is chosen explicitly (ring), so the result does not depend on which
//! providers other crates happen to enable.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context};
use rustls::{ClientConfig, RootCertStore};

/// Builds the TLS client configuration, trusting webpki roots and every certificate in
/// `ca_file` when given. Fails, naming the file, when it cannot be read, is not PEM, holds
/// no certificate or holds one rustls refuses as a trust anchor.
pub(super) fn client_config(ca_file: Option<&Path>) -> anyhow::Result<ClientConfig> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = ca_file {
        add_ca_file(&mut roots, path)
            .with_context(|| format!("outbound ca_file {}", path.display()))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

/// Adds every certificate of the PEM file `path` to `roots`. Fails saying
/// what is wrong (cannot open, not PEM, no certificate, not usable as a trust
/// anchor) without naming the file: callers add the setting and the path.
pub(crate) fn add_ca_file(roots: &mut RootCertStore, path: &Path) -> anyhow::Result<()> {
    let file = File::open(path).context("cannot open")?;
    let certs = rustls_pemfile::certs(&mut BufReader::new(file))
        .collect::<Result<Vec<_>, _>>()
        .context("not a valid PEM file")?;
    if certs.is_empty() {
        bail!("holds no PEM certificate");
    }
    for cert in certs {
        roots
            .add(cert)
            .context("holds a certificate that cannot be a trust anchor")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn pem_file(content: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(content.as_bytes()).unwrap();
        file
    }

    #[test]
    fn works_without_extra_authorities() {
        client_config(None).unwrap();
    }

    #[test]
    fn accepts_a_ca_certificate() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = params.self_signed(&key).unwrap();
        let file = pem_file(&ca.pem());
        client_config(Some(file.path())).unwrap();
    }

    #[test]
    fn errors_name_the_file_and_the_problem() {
        let missing = Path::new("/nonexistent/ca.pem");
        let err = format!("{:#}", client_config(Some(missing)).unwrap_err());
        assert!(
            err.contains("/nonexistent/ca.pem") && err.contains("cannot open"),
            "{err}"
        );

        let empty = pem_file("not a certificate\n");
        let err = format!("{:#}", client_config(Some(empty.path())).unwrap_err());
        assert!(err.contains("holds no PEM certificate"), "{err}");
    }
}
