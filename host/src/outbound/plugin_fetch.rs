//! Fetches made on behalf of plugins, such as a vendor's signing key.
//!
//! The URL of such a fetch often comes from the very request being verified, so it is
//! treated as hostile: HTTPS only, no userinfo, no fragment, port 443 (or one the operator
//! listed), a host the element declared, and then the address policy on top. All of that is
//! checked before any connection. Fetches have a short deadline and a small size cap.
//! GETs ([`OutboundClient::plugin_get`]) are cached for a while when successful; other
//! requests ([`OutboundClient::plugin_send`], e.g. a vendor subscription) are never cached
//! and their body is bounded by the same cap.

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::Full;

use super::allow_list::HostAllowList;
use super::cache::CacheKey;
use super::client::OutboundClient;
use super::error::FetchError;
use super::response::OutboundResponse;
use super::target::{check_url, host_of, plugin_headers, to_uri, Schemes};

impl OutboundClient {
    /// GETs `url` for a plugin whose element may reach the hosts in `allowed`.
    ///
    /// Policy failures are [`FetchError::Denied`] naming the rule, raised before any
    /// connection. 2xx responses are cached by URL and header set for the configured
    /// time-to-live; other statuses are returned uncached for the caller to judge.
    #[tracing::instrument(skip_all, fields(host = tracing::field::Empty))]
    pub async fn plugin_get(
        &self,
        url: &str,
        headers: &[(String, String)],
        allowed: &HostAllowList,
    ) -> Result<OutboundResponse, FetchError> {
        let limits = &self.inner.plugin;
        let request = self.plugin_request(Method::GET, url, headers, Bytes::new(), allowed)?;
        let key = CacheKey::new(&request.uri().to_string(), headers);
        self.inner
            .cache
            .get_or_fetch(key, || {
                self.execute(request, limits.timeout, limits.max_bytes)
            })
            .await
    }

    /// Sends a `method` request with `body` to `url` for a plugin whose element may reach
    /// the hosts in `allowed`: the rules of [`OutboundClient::plugin_get`], a body no
    /// larger than the response cap, and nothing cached.
    #[tracing::instrument(skip_all, fields(method = %method, host = tracing::field::Empty))]
    pub async fn plugin_send(
        &self,
        method: &str,
        url: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
        allowed: &HostAllowList,
    ) -> Result<OutboundResponse, FetchError> {
        let limits = &self.inner.plugin;
        let method = Method::from_bytes(method.trim().to_ascii_uppercase().as_bytes())
            .map_err(|_| FetchError::InvalidRequest(format!("method {method:?} is not valid")))?;
        if !SENDABLE.contains(&method) {
            return Err(FetchError::Denied(format!(
                "method {method} is not allowed (GET, POST, PUT, PATCH or DELETE)"
            )));
        }
        if body.len() > limits.max_bytes {
            return Err(FetchError::Denied(format!(
                "the request body of {} bytes is larger than the {} bytes allowed",
                body.len(),
                limits.max_bytes
            )));
        }
        let request = self.plugin_request(method, url, headers, Bytes::from(body), allowed)?;
        self.execute(request, limits.timeout, limits.max_bytes)
            .await
    }

    /// A plugin's request, once `url` passed every rule (https, port, declared host,
    /// address of a literal) and its headers are allowed.
    fn plugin_request(
        &self,
        method: Method,
        url: &str,
        headers: &[(String, String)],
        body: Bytes,
        allowed: &HostAllowList,
    ) -> Result<Request<Full<Bytes>>, FetchError> {
        let url = check_url(url, Schemes::HttpsOnly)?;
        if let Some(port) = url.port() {
            if !self.inner.plugin.extra_ports.contains(&port) {
                return Err(FetchError::Denied(format!("port {port} is not allowed")));
            }
        }
        let host = host_of(&url)?;
        tracing::Span::current().record("host", tracing::field::display(&host));
        if !allowed.allows(&host) {
            return Err(FetchError::Denied(format!(
                "host {host} is not in the element's allowed hosts"
            )));
        }
        self.check_literal(&host)?;

        let mut request = Request::new(Full::new(body));
        *request.method_mut() = method;
        *request.uri_mut() = to_uri(&url)?;
        *request.headers_mut() = plugin_headers(headers)?;
        Ok(request)
    }
}

/// The methods a plugin may send.
const SENDABLE: [Method; 5] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
];

#[cfg(test)]
mod tests {
    use super::super::config::OutboundConfig;
    use super::super::test_support::{FakeVendor, TestPki};
    use super::*;

    fn client() -> OutboundClient {
        OutboundClient::new(&OutboundConfig {
            allow_private: vec!["127.0.0.0/8".parse().unwrap()],
            ..OutboundConfig::default()
        })
        .unwrap()
    }

    async fn denial(url: &str, allowed: &[&str]) -> String {
        let allowed = HostAllowList::from_patterns(allowed).unwrap();
        match client().plugin_get(url, &[], &allowed).await {
            Err(FetchError::Denied(message)) => message,
            other => panic!("{url}: expected a denial, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn url_rules_are_enforced_before_connecting() {
        let cases = [
            (
                "http://localhost/key",
                "scheme http is not allowed (https only)",
            ),
            ("https://user:pw@localhost/key", "userinfo is not allowed"),
            ("https://localhost/key#frag", "fragment is not allowed"),
            ("https://localhost:8443/key", "port 8443 is not allowed"),
            (
                "https://evil.com/key",
                "host evil.com is not in the element's allowed hosts",
            ),
        ];
        for (url, expected) in cases {
            assert_eq!(denial(url, &["localhost"]).await, expected, "{url}");
        }
    }

    #[tokio::test]
    async fn literal_addresses_obey_the_address_policy() {
        let message = denial("https://169.254.169.254/latest", &["169.254.169.254"]).await;
        assert_eq!(
            message,
            "address 169.254.169.254 is private or reserved and not in \
             PLUGBOARD_OUTBOUND_ALLOW_PRIVATE"
        );
        let message = denial("https://[::ffff:a00:5]/", &["::ffff:10.0.0.5"]).await;
        assert!(
            message.starts_with("address ::ffff:10.0.0.5 is"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn reserved_headers_are_refused() {
        let allowed = HostAllowList::from_patterns(["localhost"]).unwrap();
        let headers = [("Host".to_string(), "internal".to_string())];
        let err = client()
            .plugin_get("https://localhost/key", &headers, &allowed)
            .await
            .unwrap_err();
        assert_eq!(err, FetchError::Denied("header host is not allowed".into()));
    }

    /// Settings that trust `pki` (if given) and let plugins fetch from the vendor's port.
    fn config_for(
        vendor: &FakeVendor,
        pki: Option<&TestPki>,
        allow_loopback: bool,
    ) -> OutboundConfig {
        let allow_private = if allow_loopback {
            vec!["127.0.0.0/8".parse().unwrap()]
        } else {
            Vec::new()
        };
        OutboundConfig {
            allow_private,
            ca_file: pki.map(|pki| pki.ca_file.path().to_owned()),
            plugin_fetch_allowed_ports: vec![vendor.port],
            ..OutboundConfig::default()
        }
    }

    fn client_for(
        vendor: &FakeVendor,
        pki: Option<&TestPki>,
        allow_loopback: bool,
    ) -> OutboundClient {
        OutboundClient::new(&config_for(vendor, pki, allow_loopback)).unwrap()
    }

    fn localhost() -> HostAllowList {
        HostAllowList::from_patterns(["localhost"]).unwrap()
    }

    async fn fetch(
        client: &OutboundClient,
        vendor: &FakeVendor,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<OutboundResponse, FetchError> {
        let url = format!("https://localhost:{}{path}", vendor.port);
        let headers: Vec<_> = headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        client.plugin_get(&url, &headers, &localhost()).await
    }

    #[tokio::test]
    async fn fetches_over_https_and_caches_successes() {
        let pki = TestPki::new();
        let vendor = FakeVendor::https(&pki).await;
        let client = client_for(&vendor, Some(&pki), true);
        for _ in 0..2 {
            let response = fetch(&client, &vendor, "/key", &[]).await.unwrap();
            assert_eq!(response.status, 200);
            assert_eq!(response.body, r#"{"signing_key":"s3cret"}"#);
        }
        assert_eq!(vendor.requests(), 1);

        // Headers are sent, and a different header set is a different entry.
        for probe in ["p1", "p2", "p1"] {
            let response = fetch(&client, &vendor, "/echo", &[("x-probe", probe)]).await;
            assert_eq!(response.unwrap().body, format!("GET {probe} "));
        }
        assert_eq!(vendor.requests(), 3);
    }

    #[tokio::test]
    async fn other_statuses_are_returned_uncached_and_redirects_unfollowed() {
        let pki = TestPki::new();
        let vendor = FakeVendor::https(&pki).await;
        let client = client_for(&vendor, Some(&pki), true);
        for _ in 0..2 {
            let response = fetch(&client, &vendor, "/missing", &[]).await.unwrap();
            assert_eq!(response.status, 404);
        }
        let response = fetch(&client, &vendor, "/redirect", &[]).await.unwrap();
        assert_eq!(response.status, 302);
        assert_eq!(vendor.requests(), 3);
    }

    #[tokio::test]
    async fn size_cap_and_deadline_apply() {
        let pki = TestPki::new();
        let vendor = FakeVendor::https(&pki).await;
        let client = OutboundClient::new(&OutboundConfig {
            plugin_fetch_timeout_ms: 250,
            ..config_for(&vendor, Some(&pki), true)
        })
        .unwrap();
        let too_large = Err(FetchError::TooLarge { limit: 64 * 1024 });
        assert_eq!(fetch(&client, &vendor, "/big", &[]).await, too_large);
        assert_eq!(fetch(&client, &vendor, "/stream", &[]).await, too_large);
        let timeout = Err(FetchError::Timeout);
        assert_eq!(fetch(&client, &vendor, "/slow", &[]).await, timeout);
        assert_eq!(fetch(&client, &vendor, "/stall", &[]).await, timeout);
    }

    #[tokio::test]
    async fn sends_any_method_with_a_body_uncached_under_the_same_rules() {
        let pki = TestPki::new();
        let vendor = FakeVendor::https(&pki).await;
        let client = client_for(&vendor, Some(&pki), true);
        let url = format!("https://localhost:{}/echo", vendor.port);
        let headers = [("x-probe".to_string(), "p".to_string())];
        for _ in 0..2 {
            let response = client
                .plugin_send("post", &url, &headers, b"{\"a\":1}".to_vec(), &localhost())
                .await
                .unwrap();
            assert_eq!(response.body, "POST p {\"a\":1}");
        }
        assert_eq!(vendor.requests(), 2, "sends are never cached");
        let response = client
            .plugin_send("DELETE", &url, &[], Vec::new(), &localhost())
            .await
            .unwrap();
        assert_eq!(response.body, "DELETE  ");

        let refused = |method: &str, url: &str, body: Vec<u8>| {
            let client = client.clone();
            let url = url.to_owned();
            let method = method.to_owned();
            async move {
                match client
                    .plugin_send(&method, &url, &[], body, &localhost())
                    .await
                {
                    Err(FetchError::Denied(message)) => message,
                    other => panic!("{method} {url}: expected a denial, got {other:?}"),
                }
            }
        };
        assert_eq!(
            refused("CONNECT", &url, Vec::new()).await,
            "method CONNECT is not allowed (GET, POST, PUT, PATCH or DELETE)"
        );
        assert_eq!(
            refused("POST", "https://evil.com/x", Vec::new()).await,
            "host evil.com is not in the element's allowed hosts"
        );
        assert_eq!(
            refused("POST", &url.replace("https", "http"), Vec::new()).await,
            "scheme http is not allowed (https only)"
        );
        let message = refused("POST", &url, vec![b'x'; 64 * 1024 + 1]).await;
        assert!(
            message.contains("larger than the 65536 bytes allowed"),
            "{message}"
        );
        assert_eq!(vendor.requests(), 3);
    }

    #[tokio::test]
    async fn loopback_needs_the_operator_allow_list() {
        let pki = TestPki::new();
        let vendor = FakeVendor::https(&pki).await;
        let client = client_for(&vendor, Some(&pki), false);
        let err = fetch(&client, &vendor, "/key", &[]).await;
        let Err(FetchError::Denied(message)) = err else {
            panic!("expected a denial, got {err:?}");
        };
        assert!(message.contains("127.0.0.1 of localhost"), "{message}");
        assert!(
            message.contains("PLUGBOARD_OUTBOUND_ALLOW_PRIVATE"),
            "{message}"
        );
        assert_eq!(vendor.connections(), 0);
    }

    #[tokio::test]
    async fn unknown_certificate_authorities_fail_the_handshake() {
        let pki = TestPki::new();
        let vendor = FakeVendor::https(&pki).await;
        let client = client_for(&vendor, None, true);
        let err = fetch(&client, &vendor, "/key", &[]).await;
        let Err(FetchError::Failed(message)) = err else {
            panic!("expected a failure, got {err:?}");
        };
        assert!(message.contains("certificate"), "{message}");
        assert_eq!(vendor.requests(), 0);
    }
}
