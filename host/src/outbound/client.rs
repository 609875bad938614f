//! The shared outbound HTTP client and its general-purpose `send`.
//!
//! One hyper-util client with keep-alive pooling serves every request. Its connector
//! resolves names through the [`PolicyResolver`], speaks TLS with the bundled roots plus
//! the operator's CA file, and never follows redirects. Before a request leaves, its URL is
//! checked and an IP-literal host is judged by the address policy (literals never reach a
//! resolver). A deadline covers connecting, headers and body alike, and the body is read
//! under a size cap.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use url::Host;

use super::cache::ResponseCache;
use super::config::OutboundConfig;
use super::error::FetchError;
use super::policy::AddressPolicy;
use super::resolver::PolicyResolver;
use super::response::OutboundResponse;
use super::target::{check_url, host_of, to_uri, Schemes};
use super::tls;

/// Most plugin fetches kept in the response cache.
const PLUGIN_CACHE_ENTRIES: usize = 1024;

type HttpClient = Client<HttpsConnector<HttpConnector<PolicyResolver>>, Full<Bytes>>;

/// The only way the host makes outbound requests. Cheap to clone: clones share one
/// connection pool and one plugin-fetch cache.
#[derive(Clone)]
pub struct OutboundClient {
    pub(super) inner: Arc<Inner>,
}

/// State shared by every clone.
pub(super) struct Inner {
    http: HttpClient,
    policy: AddressPolicy,
    /// Limits of plugin fetches.
    pub(super) plugin: PluginFetchLimits,
    /// Successful plugin fetches.
    pub(super) cache: ResponseCache,
}

/// The limits [`OutboundClient::plugin_get`] applies.
pub(super) struct PluginFetchLimits {
    pub(super) timeout: Duration,
    pub(super) max_bytes: usize,
    pub(super) extra_ports: Vec<u16>,
}

impl OutboundClient {
    /// Builds the client. Fails when the configured CA file cannot be used.
    pub fn new(config: &OutboundConfig) -> anyhow::Result<Self> {
        let policy = AddressPolicy::new(config.allow_private.clone());
        let mut tcp = HttpConnector::new_with_resolver(PolicyResolver::new(policy.clone()));
        tcp.enforce_http(false);
        tcp.set_connect_timeout(Some(config.connect_timeout()));
        // A request's headers and body may leave in separate writes: without
        // this, the second waits for the first's acknowledgement (Nagle),
        // which the peer may delay.
        tcp.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls::client_config(config.ca_file.as_deref())?)
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp);
        let http = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(config.pool_idle_timeout())
            .pool_max_idle_per_host(config.max_idle_per_host)
            .build(https);
        let plugin = PluginFetchLimits {
            timeout: config.plugin_fetch_timeout(),
            max_bytes: config.plugin_fetch_max_bytes,
            extra_ports: config.plugin_fetch_allowed_ports.clone(),
        };
        let cache = ResponseCache::new(config.plugin_fetch_cache_ttl(), PLUGIN_CACHE_ENTRIES);
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                policy,
                plugin,
                cache,
            }),
        })
    }

    /// Sends `request` (http or https, absolute URL) and reads the whole response.
    ///
    /// The address policy applies to the host, literal or resolved; `timeout` bounds the
    /// whole exchange; a body over `max_body` bytes fails with [`FetchError::TooLarge`].
    /// Any status, redirects included, is a response, not an error.
    #[tracing::instrument(skip_all, fields(method = %request.method(), host = tracing::field::Empty))]
    pub async fn send(
        &self,
        mut request: Request<Full<Bytes>>,
        timeout: Duration,
        max_body: usize,
    ) -> Result<OutboundResponse, FetchError> {
        let url = check_url(&request.uri().to_string(), Schemes::HttpOrHttps)?;
        let host = host_of(&url)?;
        tracing::Span::current().record("host", tracing::field::display(&host));
        self.check_literal(&host)?;
        *request.uri_mut() = to_uri(&url)?;
        self.execute(request, timeout, max_body).await
    }

    /// Refuses an IP-literal host the policy does not permit. Names go through the
    /// resolver instead.
    pub(super) fn check_literal(&self, host: &Host<&str>) -> Result<(), FetchError> {
        self.inner
            .policy
            .check_literal(host)
            .map_err(FetchError::Denied)
    }

    /// The address policy every request obeys.
    pub fn policy(&self) -> &AddressPolicy {
        &self.inner.policy
    }

    /// Sends a request whose URL was already checked and reads the response, all within
    /// `timeout`.
    pub(super) async fn execute(
        &self,
        request: Request<Full<Bytes>>,
        timeout: Duration,
        max_body: usize,
    ) -> Result<OutboundResponse, FetchError> {
        let exchange = async {
            let response = self
                .inner
                .http
                .request(request)
                .await
                .map_err(|err| FetchError::from_transport(&err))?;
            OutboundResponse::read(response, max_body).await
        };
        let result = tokio::time::timeout(timeout, exchange)
            .await
            .unwrap_or(Err(FetchError::Timeout));
        match &result {
            Ok(response) => tracing::debug!(status = response.status, "outbound response"),
            Err(err) => tracing::debug!(error = %err, "outbound request failed"),
        }
        result
    }
}

impl std::fmt::Debug for OutboundClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundClient")
            .field("policy", &self.inner.policy)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{FakeVendor, BIG_BODY};
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn client(allow_loopback: bool) -> OutboundClient {
        let allow_private = if allow_loopback {
            vec!["127.0.0.0/8".parse().unwrap()]
        } else {
            Vec::new()
        };
        OutboundClient::new(&OutboundConfig {
            allow_private,
            ..OutboundConfig::default()
        })
        .unwrap()
    }

    fn get(url: &str) -> Request<Full<Bytes>> {
        Request::get(url).body(Full::default()).unwrap()
    }

    #[tokio::test]
    async fn sends_over_plain_http_and_reuses_the_connection() {
        let vendor = FakeVendor::http().await;
        let client = client(true);
        let post = Request::post(format!("http://localhost:{}/echo", vendor.port))
            .header("x-probe", "p1")
            .body(Full::new(Bytes::from_static(b"hello")))
            .unwrap();
        let response = client.send(post, 5 * SECOND, 1024).await.unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(response.body, "POST p1 hello");

        let url = format!("http://localhost:{}/key", vendor.port);
        let response = client.send(get(&url), 5 * SECOND, 1024).await.unwrap();
        assert_eq!(response.body, r#"{"signing_key":"s3cret"}"#);
        assert_eq!(vendor.requests(), 2);
        assert_eq!(vendor.connections(), 1);
    }

    #[tokio::test]
    async fn loopback_is_denied_unless_allowed() {
        let vendor = FakeVendor::http().await;
        let by_name = format!("http://localhost:{}/key", vendor.port);
        let err = client(false).send(get(&by_name), 5 * SECOND, 1024).await;
        let Err(FetchError::Denied(message)) = err else {
            panic!("expected a denial, got {err:?}");
        };
        assert!(message.contains("127.0.0.1 of localhost"), "{message}");

        let literal = format!("http://127.0.0.1:{}/key", vendor.port);
        let err = client(false).send(get(&literal), 5 * SECOND, 1024).await;
        assert_eq!(
            err,
            Err(FetchError::Denied(
                "address 127.0.0.1 is private or reserved and not in \
                 PLUGBOARD_OUTBOUND_ALLOW_PRIVATE"
                    .into()
            ))
        );
        assert_eq!(vendor.connections(), 0);
    }

    #[tokio::test]
    async fn bodies_over_the_cap_are_too_large() {
        let vendor = FakeVendor::http().await;
        let client = client(true);
        for path in ["/big", "/stream"] {
            let url = format!("http://localhost:{}{path}", vendor.port);
            let err = client.send(get(&url), 5 * SECOND, BIG_BODY - 1).await;
            assert_eq!(
                err,
                Err(FetchError::TooLarge {
                    limit: BIG_BODY - 1
                }),
                "{path}"
            );
            let ok = client.send(get(&url), 5 * SECOND, BIG_BODY).await.unwrap();
            assert_eq!(ok.body.len(), BIG_BODY, "{path}");
        }
    }

    #[tokio::test]
    async fn deadline_covers_headers_and_body() {
        let vendor = FakeVendor::http().await;
        let client = client(true);
        for path in ["/slow", "/stall"] {
            let url = format!("http://localhost:{}{path}", vendor.port);
            let err = client.send(get(&url), SECOND / 4, 1 << 20).await;
            assert_eq!(err, Err(FetchError::Timeout), "{path}");
        }
    }

    #[tokio::test]
    async fn redirects_are_returned_not_followed() {
        let vendor = FakeVendor::http().await;
        let url = format!("http://localhost:{}/redirect", vendor.port);
        let response = client(true)
            .send(get(&url), 5 * SECOND, 1024)
            .await
            .unwrap();
        assert_eq!(response.status, 302);
        assert_eq!(response.header("location"), Some("https://localhost/key"));
        assert_eq!(vendor.requests(), 1);
    }

    #[tokio::test]
    async fn transport_failures_keep_their_cause() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let url = format!("http://127.0.0.1:{port}/");
        let err = client(true).send(get(&url), 5 * SECOND, 1024).await;
        let Err(FetchError::Failed(message)) = err else {
            panic!("expected a failure, got {err:?}");
        };
        assert!(message.to_lowercase().contains("refused"), "{message}");
    }

    #[tokio::test]
    async fn malformed_targets_are_refused() {
        let client = client(true);
        let err = client.send(get("/relative"), SECOND, 1024).await;
        assert!(matches!(err, Err(FetchError::InvalidRequest(_))), "{err:?}");
        let err = client
            .send(get("http://u:p@localhost/"), SECOND, 1024)
            .await;
        assert_eq!(
            err,
            Err(FetchError::Denied("userinfo is not allowed".into()))
        );
    }
}
