//! A throwaway certificate authority and a loopback HTTPS server for
//! vendor fakes, so tests keep the https-only rule of plugin fetches; its
//! server certificate also serves a TLS PostgreSQL ([`database_tls`]).
//!
//! [`database_tls`]: crate::database_tls

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use tokio_rustls::rustls;

/// A test CA with a `localhost` / `127.0.0.1` server certificate.
pub struct TestCa {
    /// PEM file of the CA certificate (for `PLUGBOARD_OUTBOUND_CA_FILE`).
    pub ca_file: PathBuf,
    /// The server certificate (for `localhost` and `127.0.0.1`), PEM.
    pub server_cert_pem: String,
    /// The server certificate's private key, PEM (PKCS #8).
    pub server_key_pem: String,
    server_config: Arc<rustls::ServerConfig>,
    _dir: tempfile::TempDir,
}

impl TestCa {
    /// Makes a CA and a server certificate it signed.
    pub fn new() -> Self {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "plugboard test CA");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();

        let leaf_key = KeyPair::generate().unwrap();
        let leaf_params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        let leaf = leaf_params.signed_by(&leaf_key, &ca_cert, &ca_key).unwrap();

        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca_cert.pem()).unwrap();

        let _ = rustls::crypto::ring::default_provider().install_default();
        let server_config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
            )
            .unwrap();
        Self {
            ca_file,
            server_cert_pem: leaf.pem(),
            server_key_pem: leaf_key.serialize_pem(),
            server_config: Arc::new(server_config),
            _dir: dir,
        }
    }

    /// Serves `router` over HTTPS on 127.0.0.1 (random port) until the test ends.
    pub async fn serve(&self, router: axum::Router) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(self.server_config.clone());
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                let router = router.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper_util::service::TowerToHyperService::new(router);
                    let _ = hyper_util::server::conn::auto::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
                });
            }
        });
        addr
    }
}
