//! Loopback servers and a throwaway certificate authority for this module's tests.
//!
//! [`FakeVendor`] listens on 127.0.0.1 only, over plain HTTP or over TLS with a `localhost`
//! certificate issued by a [`TestPki`], and answers a fixed set of paths that exercise the
//! client's limits. It counts connections and requests so tests can tell whether the
//! client really went to the network.

use std::convert::Infallible;
use std::io::Write;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

/// Size of the bodies served by `/big` and `/stream`.
pub(super) const BIG_BODY: usize = 100_000;

/// A test certificate authority and a `localhost` server certificate it issued.
pub(super) struct TestPki {
    /// The CA certificate, as a PEM file for `OutboundConfig::ca_file`.
    pub(super) ca_file: tempfile::NamedTempFile,
    acceptor: TlsAcceptor,
}

impl TestPki {
    /// Issues a fresh CA and server certificate.
    pub(super) fn new() -> Self {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "outbound test CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();

        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf_params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        let leaf = leaf_params.signed_by(&leaf_key, &ca, &ca_key).unwrap();

        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![leaf.der().clone()], key)
            .unwrap();

        let mut ca_file = tempfile::NamedTempFile::new().unwrap();
        ca_file.write_all(ca.pem().as_bytes()).unwrap();
        Self {
            ca_file,
            acceptor: TlsAcceptor::from(Arc::new(server)),
        }
    }
}

/// A loopback server standing in for a vendor. Stops when dropped.
pub(super) struct FakeVendor {
    /// The port it listens on, at 127.0.0.1.
    pub(super) port: u16,
    connections: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl FakeVendor {
    /// Starts a plain-HTTP server.
    pub(super) async fn http() -> Self {
        Self::start(None).await
    }

    /// Starts an HTTPS server presenting `pki`'s `localhost` certificate.
    pub(super) async fn https(pki: &TestPki) -> Self {
        Self::start(Some(pki.acceptor.clone())).await
    }

    /// Requests received so far.
    pub(super) fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Connections accepted so far.
    pub(super) fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    async fn start(tls: Option<TlsAcceptor>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let (conn_count, req_count) = (Arc::clone(&connections), Arc::clone(&requests));
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                conn_count.fetch_add(1, Ordering::SeqCst);
                let (tls, requests) = (tls.clone(), Arc::clone(&req_count));
                tokio::spawn(async move {
                    match tls {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                serve(stream, requests).await;
                            }
                        }
                        None => serve(stream, requests).await,
                    }
                });
            }
        });
        Self {
            port,
            connections,
            requests,
            task,
        }
    }
}

impl Drop for FakeVendor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve<IO>(io: IO, requests: Arc<AtomicUsize>)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request| {
        requests.fetch_add(1, Ordering::SeqCst);
        async move { Ok::<_, Infallible>(route(request).await) }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(io), service)
        .await;
}

type TestBody = BoxBody<Bytes, Infallible>;

/// The fake vendor's API.
async fn route(request: Request<Incoming>) -> Response<TestBody> {
    let full = |status: StatusCode, body: Vec<u8>| {
        let mut response = Response::new(Full::new(Bytes::from(body)).boxed());
        *response.status_mut() = status;
        response
    };
    match request.uri().path() {
        "/key" => full(StatusCode::OK, br#"{"signing_key":"s3cret"}"#.to_vec()),
        "/echo" => {
            let method = request.method().to_string();
            let probe = request.headers().get("x-probe").cloned();
            let body = request.into_body().collect().await.unwrap().to_bytes();
            let probe = probe
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            let text = format!("{method} {probe} {}", String::from_utf8_lossy(&body));
            full(StatusCode::OK, text.into_bytes())
        }
        "/big" => full(StatusCode::OK, vec![b'x'; BIG_BODY]),
        "/stream" => Response::new(Chunks::new(BIG_BODY / CHUNK.len(), false).boxed()),
        "/stall" => Response::new(Chunks::new(1, true).boxed()),
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            full(StatusCode::OK, Vec::new())
        }
        "/redirect" => {
            let mut response = full(StatusCode::FOUND, Vec::new());
            let location = "https://localhost/key".parse().unwrap();
            response
                .headers_mut()
                .insert(http::header::LOCATION, location);
            response
        }
        _ => full(StatusCode::NOT_FOUND, Vec::new()),
    }
}

static CHUNK: [u8; 1000] = [b'x'; 1000];

/// A body of `left` chunks sent without a declared length; when `stall` is set it then
/// never ends.
struct Chunks {
    left: usize,
    stall: bool,
}

impl Chunks {
    fn new(left: usize, stall: bool) -> Self {
        Self { left, stall }
    }
}

impl Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.left == 0 {
            return if self.stall {
                Poll::Pending
            } else {
                Poll::Ready(None)
            };
        }
        self.left -= 1;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&CHUNK)))))
    }
}
