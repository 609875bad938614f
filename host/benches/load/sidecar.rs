//! The real `plugboard` binary as a separate process for the loopback
//! benchmarks, with bundled plugins (ConnectWise unless told otherwise), a
//! fresh data folder and an outbound policy that lets it reach the loopback
//! fakes.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// Management credentials of the benchmark sidecar.
pub const AUTH: &str = "User bench-user, Organization bench-org";

/// A running sidecar; killed on drop.
pub struct Sidecar {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Sidecar {
    /// Starts the sidecar with the ConnectWise plugin; `env` adds or
    /// overrides settings.
    pub async fn start(env: &[(&str, String)]) -> Self {
        Self::start_with(&["connectwise"], env).await
    }

    /// Starts the sidecar with the bundled plugins `elements` (file names
    /// in `plugins/dist` without `.wasm`); `env` adds or overrides settings.
    pub async fn start_with(elements: &[&str], env: &[(&str, String)]) -> Self {
        let plugins = tempfile::tempdir().unwrap();
        let data = tempfile::tempdir().unwrap();
        for element in elements {
            let wasm = format!(
                "{}/../plugins/dist/{element}.wasm",
                env!("CARGO_MANIFEST_DIR")
            );
            std::fs::copy(&wasm, plugins.path().join(format!("{element}.wasm")))
                .expect("run plugins/build.sh first");
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_plugboard"));
        cmd.arg("serve")
            .env("PLUGBOARD_LISTEN", addr.to_string())
            .env("PLUGBOARD_PLUGINS", plugins.path())
            .env("PLUGBOARD_DATA", data.path())
            .env("PLUGBOARD_USER_SECRET", "bench-user")
            .env("PLUGBOARD_ORGANIZATION_SECRET", "bench-org")
            .env("PLUGBOARD_OUTBOUND_ALLOW_PRIVATE", "127.0.0.0/8,::1")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let sidecar = Self {
            child: cmd.spawn().unwrap(),
            addr,
            _dirs: (plugins, data),
        };
        sidecar.wait_ready(elements).await;
        sidecar
    }

    /// Waits until every one of `elements` is listed (a first start
    /// compiles the large JavaScript and Python components).
    async fn wait_ready(&self, elements: &[&str]) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let plugins = client
                .get(format!("http://{}/plugins", self.addr))
                .header("authorization", AUTH)
                .send()
                .await;
            if let Ok(r) = plugins {
                let listed = r.text().await.unwrap_or_default();
                if elements
                    .iter()
                    .all(|e| listed.contains(&format!("\"{e}\"")))
                {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "sidecar did not come up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Bytes of the store's files in the data folder (not the cache of
    /// compiled plugins): the SQLite database, and its write-ahead log
    /// apart (a file that is reused, not grown, once checkpointed).
    pub fn store_bytes(&self) -> (u64, u64) {
        let data = self._dirs.1.path();
        let (mut db, mut wal) = (0, 0);
        for entry in std::fs::read_dir(data).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == "cache" {
                continue;
            }
            let bytes = tree_bytes(&entry.path());
            if name.ends_with("-wal") || name.ends_with("-shm") {
                wal += bytes;
            } else {
                db += bytes;
            }
        }
        (db, wal)
    }

    /// Bytes the sidecar process has caused to be written to storage
    /// (`write_bytes` of `/proc/<pid>/io`: the write-ahead log, the
    /// database file and everything else, counted when handed to the
    /// block layer); 0 where the kernel does not report it.
    pub fn written_bytes(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/io", self.child.id()))
            .unwrap_or_default()
            .lines()
            .find_map(|line| line.strip_prefix("write_bytes:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }

    /// The sum of the samples of the metric `name` whose labels include
    /// `label` (e.g. `instance="warm"`), from `/metrics`.
    pub async fn metric(&self, name: &str, label: &str) -> f64 {
        let text = reqwest::get(format!("http://{}/metrics", self.addr))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .filter(|line| line.starts_with(name) && line.contains(label))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// User + system CPU seconds the sidecar has used.
    pub fn cpu_seconds(&self) -> f64 {
        super::cpu_seconds(&self.child.id().to_string())
    }

    /// An authenticated management call.
    pub async fn api(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = reqwest::Client::new()
            .request(method, format!("http://{}{path}", self.addr))
            .header("authorization", AUTH);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        resp.json().await.unwrap_or(Value::Null)
    }

    /// Creates a ConnectWise instance delivering to `callback`; returns its id.
    pub async fn connectwise_instance(&self, server_url: &str, callback: &str) -> i64 {
        let configuration = json!({
            "helpdesk.connectwise.server.url": server_url, "helpdesk.connectwise.company": "acme"});
        self.instance("connectwise", configuration, callback).await
    }

    /// Creates an instance of `element` with `configuration` (events on,
    /// delivered to `callback`, signed); returns its id.
    pub async fn instance(&self, element: &str, configuration: Value, callback: &str) -> i64 {
        let mut config = json!({
            "event.notification.enabled": "true", "event.notification.callback.url": callback,
            "event.notification.signature.key": "bench-signing-key"});
        config
            .as_object_mut()
            .unwrap()
            .extend(configuration.as_object().unwrap().clone());
        let body = json!({"element": {"key": element}, "configuration": config});
        let created = self
            .api(reqwest::Method::POST, "/instances", Some(body))
            .await;
        created["id"]
            .as_i64()
            .unwrap_or_else(|| panic!("instance not created: {created}"))
    }
}

/// Bytes of the file at `path`, or of every file under it.
fn tree_bytes(path: &std::path::Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(path)
        .map(|entries| entries.flatten().map(|e| tree_bytes(&e.path())).sum())
        .unwrap_or(0)
}
