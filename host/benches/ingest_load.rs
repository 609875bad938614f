//! Sustained ingest of signed ConnectWise callbacks over loopback.
//!
//! Starts the real `plugboard` binary (release build, durable SQLite store)
//! as its own process, a fake ConnectWise serving the signing key over HTTPS,
//! and a keep-alive load generator posting distinct signed callbacks
//! (~1.5 KB each; the key is fetched once and cached). The same generator
//! then runs against a minimal hyper "200 OK" server: the ceiling of this
//! machine for this generator. Prints requests/s, p50/p99 latency and the
//! ratio.
//!
//! Run: `cargo bench -p plugboard --bench ingest_load` (after
//! `plugins/build.sh`). `LOAD_CONNECTIONS` (default 64) and `LOAD_REQUESTS`
//! (default 150000) tune it.

#![allow(missing_docs)]

#[path = "../../tests/e2e/support/connectwise.rs"]
mod connectwise;
mod load;
#[path = "../../tests/e2e/support/tls.rs"]
mod tls;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use connectwise::FakeConnectWise;
use load::Shot;
use serde_json::{json, Value};
use tls::TestCa;

const AUTH: &str = "User bench-user, Organization bench-org";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Sidecar {
    child: Child,
    addr: std::net::SocketAddr,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Sidecar {
    fn cpu_seconds(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        (ticks(11) + ticks(12)) / 100.0 // utime + stime, in clock ticks (100 Hz)
    }
}

async fn start_sidecar(cw: &FakeConnectWise, ca: &TestCa) -> Sidecar {
    let plugins = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let wasm = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../plugins/dist/connectwise.wasm"
    );
    std::fs::copy(wasm, plugins.path().join("connectwise.wasm"))
        .expect("run plugins/build.sh first");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_plugboard"))
        .arg("serve")
        .env("PLUGBOARD_LISTEN", addr.to_string())
        .env("PLUGBOARD_PLUGINS", plugins.path())
        .env("PLUGBOARD_DATA", data.path())
        .env("PLUGBOARD_USER_SECRET", "bench-user")
        .env("PLUGBOARD_ORGANIZATION_SECRET", "bench-org")
        .env("PLUGBOARD_OUTBOUND_ALLOW_PRIVATE", "127.0.0.0/8,::1")
        .env("PLUGBOARD_OUTBOUND_CA_FILE", &ca.ca_file)
        .env("PLUGBOARD_PLUGIN_FETCH_PORTS", cw.addr.port().to_string())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let sidecar = Sidecar {
        child,
        addr,
        _dirs: (plugins, data),
    };
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let plugins = client
            .get(format!("http://{addr}/plugins"))
            .header("authorization", AUTH)
            .send()
            .await;
        if let Ok(r) = plugins {
            if r.text()
                .await
                .unwrap_or_default()
                .contains("\"connectwise\"")
            {
                break;
            }
        }
        assert!(Instant::now() < deadline, "sidecar did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sidecar
}

async fn create_instance(addr: std::net::SocketAddr, cw: &FakeConnectWise) -> i64 {
    let body = json!({"element": {"key": "connectwise"}, "configuration": {
        "helpdesk.connectwise.server.url": cw.server_url(), "helpdesk.connectwise.company": "acme",
        "event.notification.enabled": "true", "event.notification.callback.url": "https://app.example.com/hook"}});
    let resp: Value = reqwest::Client::new()
        .post(format!("http://{addr}/instances"))
        .header("authorization", AUTH)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    resp["id"].as_i64().expect("instance created")
}

fn shots(cw: &FakeConnectWise, id: i64, n: usize) -> Vec<Shot> {
    let path = format!(
        "/events/connectwise/{}",
        base64::engine::general_purpose::STANDARD.encode(id.to_string())
    );
    let kinds = ["ticket", "company", "contact"];
    let actions = ["added", "updated", "deleted"];
    (0..n)
        .map(|i| {
            let body = cw.callback(
                &format!("bench-{i:08}"),
                actions[i % 3],
                kinds[i % 3],
                i as u64,
                &cw.key_url(),
            );
            Shot {
                path: path.clone(),
                headers: vec![("x-content-signature".into(), cw.sign(&body))],
                body: Bytes::from(body),
            }
        })
        .collect()
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let connections = env_usize("LOAD_CONNECTIONS", 64);
        let requests = env_usize("LOAD_REQUESTS", 150_000);
        let duration = Duration::from_secs(30);
        let ca = TestCa::new();
        let cw = FakeConnectWise::start(&ca).await;
        let sidecar = start_sidecar(&cw, &ca).await;
        let id = create_instance(sidecar.addr, &cw).await;
        let all = shots(&cw, id, requests + 2_000);
        let body_len = all[0].body.len();
        let (warm, main) = all.split_at(2_000);
        load::run(sidecar.addr, Arc::new(warm.to_vec()), 16, duration, 200).await;

        let cpu_before = sidecar.cpu_seconds();
        let ingest = load::run(sidecar.addr, Arc::new(main.to_vec()), connections, duration, 200).await;
        let cpu = sidecar.cpu_seconds() - cpu_before;
        let bare_addr = load::bare_hyper_server().await;
        let bare = load::run(bare_addr, Arc::new(main.to_vec()), connections, duration, 200).await;

        println!("\ningest_load: {connections} keep-alive connections, {body_len}-byte signed callbacks, durable store");
        println!("{}", ingest.line("plugboard (accepted)"));
        println!("{}", bare.line("bare hyper 200 OK"));
        println!("ratio plugboard / bare hyper: {:.2}", ingest.rate() / bare.rate());
        println!("sidecar CPU: {:.1} s for {:.1} s of load ({:.2} cores)", cpu, ingest.elapsed.as_secs_f64(), cpu / ingest.elapsed.as_secs_f64());
        println!("key fetches by the sidecar: {}", cw.key_fetches());
        assert_eq!(ingest.failed, 0, "every webhook must be accepted");
    });
}
