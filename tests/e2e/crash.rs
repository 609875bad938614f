//! Crash safety with the real binary: under continuous signed ingest the
//! host is killed with SIGKILL at random moments and restarted; every
//! notification whose webhook was acknowledged must still reach the
//! receiver. On PostgreSQL the database server is also crashed and
//! restarted (`pg_ctl restart -m immediate`) mid-load: webhooks answered
//! 503 meanwhile are not owed, and nothing acknowledged is lost.

use std::collections::HashSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use serde_json::{json, Value};

use crate::support::connectwise::FakeConnectWise;
use crate::support::host::webhook_path;
use crate::support::receiver::Receiver;
use crate::support::tls::TestCa;
use crate::support::{repo_root, wait_until};

const AUTH: &str = "User crash-user, Organization crash-org";

struct Sidecar {
    port: u16,
    plugins: tempfile::TempDir,
    data: tempfile::TempDir,
    ca_file: std::path::PathBuf,
    key_port: u16,
    /// The PostgreSQL database, when not the SQLite file in `data`.
    database_url: Option<String>,
}

impl Sidecar {
    fn spawn(&self) -> Child {
        let mut command = Command::new(env!("CARGO_BIN_EXE_plugboard"));
        if let Some(url) = &self.database_url {
            command.env("PLUGBOARD_DATABASE_URL", url);
        }
        command
            .arg("serve")
            .env("PLUGBOARD_LISTEN", format!("127.0.0.1:{}", self.port))
            .env("PLUGBOARD_PLUGINS", self.plugins.path())
            .env("PLUGBOARD_DATA", self.data.path())
            .env("PLUGBOARD_USER_SECRET", "crash-user")
            .env("PLUGBOARD_ORGANIZATION_SECRET", "crash-org")
            .env("PLUGBOARD_OUTBOUND_ALLOW_PRIVATE", "127.0.0.0/8,::1")
            .env("PLUGBOARD_OUTBOUND_CA_FILE", &self.ca_file)
            .env("PLUGBOARD_PLUGIN_FETCH_PORTS", self.key_port.to_string())
            .env("PLUGBOARD_DELIVERY_TIMEOUT_MS", "1000")
            .env("PLUGBOARD_DELIVERY_SCHEDULE", "0,0.2,0.5,1,1,1,1,1,1,1,1,1")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

async fn wait_ready(client: &reqwest::Client, base: &str) {
    wait_until(
        "the sidecar to serve connectwise",
        Duration::from_secs(30),
        || async {
            let r = client
                .get(format!("{base}/plugins"))
                .header("authorization", AUTH)
                .send()
                .await
                .ok()?;
            r.text()
                .await
                .ok()
                .filter(|t| t.contains("\"connectwise\""))
                .map(|_| ())
        },
    )
    .await
}

fn copy_plugin(dir: &Path) {
    std::fs::copy(
        repo_root().join("plugins/dist/connectwise.wasm"),
        dir.join("connectwise.wasm"),
    )
    .expect("run plugins/build.sh first");
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_loses_nothing_that_was_acknowledged() {
    let data = tempfile::tempdir().unwrap();
    let database_url = crate::support::test_database(data.path());
    crash_under_load(5, data, database_url, None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_and_a_database_crash_lose_nothing_on_postgres() {
    let cluster = tokio::task::spawn_blocking(throwaway_postgres::Cluster::start)
        .await
        .unwrap();
    let url = cluster.create_database();
    crash_under_load(10, tempfile::tempdir().unwrap(), Some(url), Some(&cluster)).await;
}

/// Kills the host `kills` times under signed webhook load (crashing the
/// database server too, halfway, when `cluster` is given) and checks that
/// every acknowledged event is delivered.
async fn crash_under_load(
    kills: usize,
    data: tempfile::TempDir,
    database_url: Option<String>,
    cluster: Option<&throwaway_postgres::Cluster>,
) {
    let ca = TestCa::new();
    let cw = Arc::new(FakeConnectWise::start(&ca).await);
    let receiver = Receiver::start().await;
    let sidecar = Sidecar {
        port: std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port(),
        plugins: tempfile::tempdir().unwrap(),
        data,
        ca_file: ca.ca_file.clone(),
        key_port: cw.addr.port(),
        database_url,
    };
    copy_plugin(sidecar.plugins.path());
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut child = sidecar.spawn();
    wait_ready(&client, &sidecar.base()).await;
    let created: Value = client
        .post(format!("{}/instances", sidecar.base()))
        .header("authorization", AUTH)
        .json(&json!({"element": {"key": "connectwise"}, "configuration": {
            "helpdesk.connectwise.server.url": cw.server_url(), "helpdesk.connectwise.company": "acme",
            "event.notification.enabled": true, "event.notification.callback.url": receiver.url(),
            "event.notification.signature.key": "crash-secret"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let path = webhook_path("connectwise", created["id"].as_i64().unwrap());

    let acknowledged = Arc::new(Mutex::new(HashSet::<String>::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4 {
        let (client, cw, acknowledged, stop, url) = (
            client.clone(),
            cw.clone(),
            acknowledged.clone(),
            stop.clone(),
            format!("{}{path}", sidecar.base()),
        );
        writers.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                let body = cw.callback(
                    &format!("crash-{w}-{n}"),
                    "updated",
                    "ticket",
                    n,
                    &cw.key_url(),
                );
                let sent = client
                    .post(&url)
                    .header("x-content-signature", cw.sign(&body))
                    .body(body)
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status() == 200 => {
                        let answer: Value = r.json().await.unwrap();
                        let mut ack = acknowledged.lock().unwrap();
                        for id in answer["eventIds"].as_array().unwrap() {
                            ack.insert(id.as_str().unwrap().to_string());
                        }
                    }
                    // Not acknowledged (the host is down or was killed mid-request): the
                    // vendor would retry; nothing is owed.
                    _ => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        }));
    }

    let mut database_crashed = false;
    for kill in 0..kills {
        let wait = rand::rng().random_range(300..1200);
        tokio::time::sleep(Duration::from_millis(wait)).await;
        if let (Some(cluster), true) = (cluster, kill == kills / 2) {
            // The database crashes under load; the host reconnects by itself.
            let before = acknowledged.lock().unwrap().len();
            tokio::task::block_in_place(|| cluster.restart_immediate());
            wait_until(
                "webhooks to be acknowledged again after the database restart",
                Duration::from_secs(30),
                || {
                    let acknowledged = acknowledged.clone();
                    async move { (acknowledged.lock().unwrap().len() > before).then_some(()) }
                },
            )
            .await;
            database_crashed = true;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        child = sidecar.spawn();
        wait_ready(&client, &sidecar.base()).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }

    assert_eq!(database_crashed, cluster.is_some());
    let owed = acknowledged.lock().unwrap().clone();
    assert!(
        owed.len() > 50,
        "the test must have ingested a meaningful amount, got {}",
        owed.len()
    );
    let missing = wait_until(
        "every acknowledged event to be delivered",
        Duration::from_secs(60),
        || async {
            let seen: HashSet<String> = receiver
                .received()
                .iter()
                .map(|r| r.header("webhook-id").to_string())
                .collect();
            let missing: Vec<&String> = owed.iter().filter(|id| !seen.contains(*id)).collect();
            missing.is_empty().then_some(missing.len())
        },
    )
    .await;
    assert_eq!(missing, 0);
    child.kill().unwrap();
    child.wait().unwrap();
}
