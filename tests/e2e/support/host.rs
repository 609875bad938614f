//! A plugboard host running in the test process on a loopback port, with
//! its own plugin and data folders, and a small client for its API.

use std::path::PathBuf;
use std::time::Duration;

use plugboard::config::{GivenCredentials, Settings};
use plugboard::outbound::parse_allow_list;
use plugboard::server::Server;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::plugin_bytes;

/// How a test host is set up.
#[derive(Clone, Default)]
pub struct HostOptions {
    /// `PLUGBOARD_OUTBOUND_ALLOW_PRIVATE`.
    pub allow_private: Option<String>,
    /// `PLUGBOARD_OUTBOUND_CA_FILE`.
    pub ca_file: Option<PathBuf>,
    /// Ports besides 443 plugin fetches may use.
    pub fetch_ports: Vec<u16>,
    /// Largest webhook body.
    pub max_body_bytes: Option<usize>,
    /// Plugin call CPU deadline.
    pub call_timeout_ms: Option<u64>,
    /// Further built plugins (from `plugins/dist` or `plugins/dist-test`) to
    /// put in the plugin folder besides ConnectWise and the probe, e.g. `github`.
    pub plugins: Vec<&'static str>,
    /// Delivery settings (timeouts, retry schedule).
    pub delivery: Option<plugboard::delivery::DeliveryConfig>,
    /// Poller settings (shortest interval, concurrency).
    pub poller: Option<plugboard::poller::PollerConfig>,
    /// Folder to make the data folder in (default: the system's temporary folder).
    pub data_parent: Option<PathBuf>,
    /// `PLUGBOARD_PUBLIC_URL`.
    pub public_url: Option<String>,
    /// The inbound log's bounds, if not the defaults.
    pub inbound_log: Option<plugboard::ingress::InboundLogConfig>,
}

/// A running host and the folders it owns.
pub struct TestHost {
    /// The server.
    pub server: Option<Server>,
    /// `http://127.0.0.1:port`.
    pub base: String,
    /// `Authorization` header for management calls.
    pub auth: String,
    /// Plugin folder.
    pub plugins: tempfile::TempDir,
    /// Data folder.
    pub data: tempfile::TempDir,
    opts: HostOptions,
    client: reqwest::Client,
}

/// The user secret of every test host.
pub const USER: &str = "test-user-secret";
/// The organization secret of every test host.
pub const ORG: &str = "test-org-secret";

impl TestHost {
    /// Starts a host with the bundled ConnectWise plugin, the test probe and
    /// the plugins `opts` lists.
    pub async fn start(opts: HostOptions) -> Self {
        let plugins = tempfile::tempdir().unwrap();
        for name in ["connectwise", "probe"]
            .into_iter()
            .chain(opts.plugins.iter().copied())
        {
            std::fs::write(
                plugins.path().join(format!("{name}.wasm")),
                plugin_bytes(name),
            )
            .unwrap();
        }
        let data = match &opts.data_parent {
            Some(parent) => tempfile::tempdir_in(parent),
            None => tempfile::tempdir(),
        }
        .unwrap();
        let mut host = Self {
            server: None,
            base: String::new(),
            auth: format!("User {USER}, Organization {ORG}"),
            plugins,
            data,
            opts,
            client: reqwest::Client::new(),
        };
        host.boot().await;
        host
    }

    fn settings(&self) -> Settings {
        let mut s = Settings::for_dirs(
            self.plugins.path().to_path_buf(),
            self.data.path().to_path_buf(),
        );
        s.credentials = Some(GivenCredentials {
            user: USER.into(),
            organization: ORG.into(),
        });
        if let Some(a) = &self.opts.allow_private {
            s.outbound.allow_private = parse_allow_list(a).unwrap();
        }
        s.outbound.ca_file = self.opts.ca_file.clone();
        s.outbound.plugin_fetch_allowed_ports = self.opts.fetch_ports.clone();
        if let Some(n) = self.opts.max_body_bytes {
            s.ingress.max_body_bytes = n;
        }
        if let Some(ms) = self.opts.call_timeout_ms {
            s.runtime.call_timeout_ms = ms;
        }
        if let Some(d) = &self.opts.delivery {
            s.delivery = d.clone();
        }
        if let Some(p) = &self.opts.poller {
            s.poller = p.clone();
        }
        if let Some(log) = self.opts.inbound_log {
            s.ingress.log = log;
        }
        s.public_url = self
            .opts
            .public_url
            .as_deref()
            .map(|url| plugboard::instance::PublicUrl::parse(url).unwrap());
        if let Some(url) = super::test_database(self.data.path()) {
            s.store = plugboard::store::StoreConfig::Postgres { url };
        }
        s
    }

    async fn boot(&mut self) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = Server::start(self.settings(), Some(listener))
            .await
            .unwrap();
        self.base = format!("http://{}", server.local_addr());
        self.server = Some(server);
    }

    /// Stops the host and starts it again on the same folders.
    pub async fn restart(&mut self) {
        self.server.take().unwrap().shutdown().await.unwrap();
        self.boot().await;
    }

    /// Stops the host and starts it again on the same folders with other settings.
    pub async fn restart_with(&mut self, opts: HostOptions) {
        self.opts = opts;
        self.restart().await;
    }

    /// An authenticated management request; returns status and JSON body.
    pub async fn api(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("authorization", &self.auth)
            .timeout(Duration::from_secs(30));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Creates an instance and returns its JSON; panics unless 200.
    pub async fn create_instance(&self, body: Value) -> Value {
        let (status, json) = self.api(Method::POST, "/instances", Some(body)).await;
        assert_eq!(status, StatusCode::OK, "{json}");
        json
    }

    /// POSTs a webhook body (JSON) to `path` with extra headers; the
    /// whole response, for its headers.
    pub async fn post_webhook(
        &self,
        path: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> reqwest::Response {
        let mut req = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .timeout(Duration::from_secs(30))
            .body(body);
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        req.send().await.unwrap()
    }

    /// POSTs a webhook body to `path` with extra headers.
    pub async fn webhook(
        &self,
        path: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
    ) -> (StatusCode, Value) {
        let resp = self.post_webhook(path, headers, body).await;
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// One event-log entry (a notification) with its attempts.
    pub async fn event(&self, event_id: &str) -> Value {
        let (status, json) = self
            .api(Method::GET, &format!("/instances/events/{event_id}"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{json}");
        json
    }

    /// Events stored for an instance, newest first.
    pub async fn events(&self, instance: i64) -> Vec<Value> {
        let (status, json) = self
            .api(
                Method::GET,
                &format!("/instances/{instance}/events?pageSize=500"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{json}");
        json["events"].as_array().unwrap().clone()
    }

    /// Posts a webhook to the probe element's instance `instance` whose
    /// one event (`CREATED`, object type `probe`) is about object `object`;
    /// returns the eventId of its notification.
    pub async fn probe_event(&self, instance: i64, object: &str) -> String {
        let (status, answer) = self
            .webhook(
                &webhook_path("probe", instance),
                &[("x-probe-id", object.to_string())],
                br#"{"n":1}"#.to_vec(),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        answer["eventIds"][0].as_str().unwrap().to_string()
    }
}

/// `/events/{element}/{base64(id)}`.
pub fn webhook_path(element: &str, id: i64) -> String {
    use base64::Engine as _;
    format!(
        "/events/{element}/{}",
        base64::engine::general_purpose::STANDARD.encode(id.to_string())
    )
}
