//! Several real `plugboard serve` processes sharing one PostgreSQL
//! database, as replicas behind a load balancer would: a private
//! throwaway cluster per test (so the test may crash or restart it), one
//! fresh database, and N replicas each with its own data folder, port and
//! `PLUGBOARD_REPLICA_ID` (`replica-1`, `replica-2`, …) but the same
//! management secrets ([`super::process::AUTH`]).
//!
//! The test can SIGKILL, SIGSTOP/SIGCONT and restart any replica, read
//! and write the database directly (`tokio-postgres`, so it can count rows
//! and end the replicas' connections), and reach the fake ConnectWise key
//! server every replica fetches its signing key from.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::connectwise::FakeConnectWise;
use super::host::webhook_path;
use super::process::{free_port, Binary, Process, AUTH};
use super::tls::TestCa;
use super::{plugin_bytes, wait_until};

/// How long a replica may take to start or recover.
pub const READY: Duration = Duration::from_secs(60);

/// The replicas, their database and the vendor fake they share.
pub struct Replicas {
    /// The PostgreSQL cluster (private to this test).
    pub cluster: Arc<throwaway_postgres::Cluster>,
    /// The database every replica uses.
    pub database_url: String,
    /// The fake ConnectWise serving the callback signing key.
    pub connectwise: Arc<FakeConnectWise>,
    ca: TestCa,
    plugins: tempfile::TempDir,
    plugin_names: Vec<String>,
    root: tempfile::TempDir,
    env: Vec<(String, String)>,
    ports: Vec<u16>,
    running: Vec<Option<Process>>,
}

impl Replicas {
    /// Starts a cluster, a database and `n` replicas with `plugins` (built
    /// plugin names) and `env` on top of the harness's settings; waits
    /// until every replica is ready and has loaded its plugins.
    pub async fn start(n: usize, plugins: &[&str], env: &[(&str, &str)]) -> Self {
        let cluster = tokio::task::spawn_blocking(throwaway_postgres::Cluster::start)
            .await
            .unwrap();
        let database_url = cluster.create_database();
        let ca = TestCa::new();
        let connectwise = Arc::new(FakeConnectWise::start(&ca).await);
        let plugin_dir = tempfile::tempdir().unwrap();
        for name in plugins {
            std::fs::write(
                plugin_dir.path().join(format!("{name}.wasm")),
                plugin_bytes(name),
            )
            .unwrap();
        }
        let mut replicas = Self {
            cluster: Arc::new(cluster),
            database_url,
            connectwise,
            ca,
            plugins: plugin_dir,
            plugin_names: plugins.iter().map(|p| format!("\"{p}\"")).collect(),
            root: tempfile::tempdir().unwrap(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ports: (0..n).map(|_| free_port()).collect(),
            running: (0..n).map(|_| None).collect(),
        };
        for i in 0..n {
            replicas.spawn(i);
        }
        for i in 0..n {
            replicas.wait_ready(i).await;
        }
        replicas
    }

    /// How many replicas there are (running or not).
    pub fn len(&self) -> usize {
        self.ports.len()
    }

    /// The replica id of replica `i` (counted from 0): `replica-{i+1}`.
    pub fn replica_id(i: usize) -> String {
        format!("replica-{}", i + 1)
    }

    /// `http://127.0.0.1:port` of replica `i`.
    pub fn base(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.ports[i])
    }

    /// The base URL of every replica, in order.
    pub fn bases(&self) -> Vec<String> {
        (0..self.len()).map(|i| self.base(i)).collect()
    }

    /// The data folder of replica `i`.
    pub fn data(&self, i: usize) -> PathBuf {
        self.root.path().join(Self::replica_id(i))
    }

    fn spawn(&mut self, i: usize) {
        let mut binary = Binary::serve(self.plugins.path(), &self.data(i))
            .port(self.ports[i])
            .env("PLUGBOARD_DATABASE_URL", &self.database_url)
            .env("PLUGBOARD_REPLICA_ID", Self::replica_id(i))
            .env("PLUGBOARD_OUTBOUND_ALLOW_PRIVATE", "127.0.0.0/8,::1")
            .env("PLUGBOARD_OUTBOUND_CA_FILE", &self.ca.ca_file)
            .env(
                "PLUGBOARD_PLUGIN_FETCH_PORTS",
                self.connectwise.addr.port().to_string(),
            )
            .env("RUST_LOG", "warn");
        for (k, v) in &self.env {
            binary = binary.env(k, v);
        }
        self.running[i] = Some(binary.spawn());
    }

    /// Waits until replica `i` answers `/readyz` with 200 and lists its
    /// plugins as loaded.
    pub async fn wait_ready(&self, i: usize) {
        let client = reqwest::Client::new();
        let (ready, plugins) = (
            format!("{}/readyz", self.base(i)),
            format!("{}/plugins", self.base(i)),
        );
        let what = format!("{} to be ready with its plugins", Self::replica_id(i));
        wait_until(&what, READY, || async {
            let r = client.get(&ready).send().await.ok()?;
            if r.status() != 200 {
                return None;
            }
            let listed = client
                .get(&plugins)
                .header("authorization", AUTH)
                .send()
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            let names = &self.plugin_names;
            names.iter().all(|n| listed.contains(n)).then_some(())
        })
        .await
    }

    /// The running process of replica `i`.
    pub fn process(&self, i: usize) -> &Process {
        self.running[i]
            .as_ref()
            .unwrap_or_else(|| panic!("{} is not running", Self::replica_id(i)))
    }

    /// SIGKILLs replica `i` and reaps it.
    pub fn kill(&mut self, i: usize) {
        // Dropping the process sends SIGKILL and waits for it.
        drop(self.running[i].take());
    }

    /// Freezes replica `i` (SIGSTOP): it keeps its sockets and database
    /// connections but runs no code, as a replica paused by a long
    /// garbage-collection-like stall or a frozen VM would.
    pub fn pause(&self, i: usize) {
        self.process(i).signal("STOP");
    }

    /// Lets a paused replica `i` run again (SIGCONT).
    pub fn resume(&self, i: usize) {
        self.process(i).signal("CONT");
    }

    /// Starts replica `i` again (after [`Replicas::kill`]) on its port
    /// with its data folder, and waits until it is ready.
    pub async fn restart(&mut self, i: usize) {
        self.kill(i);
        self.spawn(i);
        self.wait_ready(i).await;
    }

    /// The running replica whose TCP connection has the local address
    /// `client` (as a server saw it), found through `/proc`.
    pub fn replica_of_connection(&self, client: std::net::SocketAddr) -> Option<usize> {
        let inode = socket_inode(client.port())?;
        let target = format!("socket:[{inode}]");
        (0..self.len()).find(|i| {
            let Some(process) = &self.running[*i] else {
                return false;
            };
            let fds = std::fs::read_dir(format!("/proc/{}/fd", process.pid()));
            fds.into_iter().flatten().flatten().any(|fd| {
                std::fs::read_link(fd.path()).is_ok_and(|l| l.to_string_lossy() == target)
            })
        })
    }

    /// Everything replica `i` logged so far (its current run).
    pub fn log(&self, i: usize) -> String {
        self.process(i).log()
    }

    /// A fresh connection to the replicas' database.
    pub async fn sql(&self) -> tokio_postgres::Client {
        let (client, connection) =
            tokio_postgres::connect(&self.database_url, tokio_postgres::NoTls)
                .await
                .expect("connecting to the test database");
        tokio::spawn(connection);
        client
    }

    /// Creates, through replica `i`, a ConnectWise instance verifying
    /// callbacks with the fake's key and delivering signed notifications
    /// to `callback`; returns its id and its webhook path.
    pub async fn connectwise_instance(&self, i: usize, callback: &str) -> (i64, String) {
        let body = json!({"element": {"key": "connectwise"}, "name": "replicated",
            "configuration": {
                "helpdesk.connectwise.server.url": self.connectwise.server_url(),
                "helpdesk.connectwise.company": "acme",
                "event.notification.enabled": true,
                "event.notification.callback.url": callback,
                "event.notification.signature.key": "replicas-secret"}});
        let id = super::process::create_instance(&self.base(i), body).await;
        (id, webhook_path("connectwise", id))
    }

    /// Sends one signed ConnectWise callback (vendor message id
    /// `message_id`) to replica `i`; the status and answer, or `None` if
    /// the replica did not answer.
    pub async fn send_callback(
        &self,
        client: &reqwest::Client,
        i: usize,
        path: &str,
        message_id: &str,
    ) -> Option<(u16, Value)> {
        send_callback(client, &self.connectwise, &self.base(i), path, message_id).await
    }
}

/// Sends one signed ConnectWise callback to the replica at `base`.
pub async fn send_callback(
    client: &reqwest::Client,
    cw: &FakeConnectWise,
    base: &str,
    path: &str,
    message_id: &str,
) -> Option<(u16, Value)> {
    let body = cw.callback(message_id, "updated", "ticket", 1, &cw.key_url());
    let r = client
        .post(format!("{base}{path}"))
        .header("x-content-signature", cw.sign(&body))
        .body(body)
        .send()
        .await
        .ok()?;
    let status = r.status().as_u16();
    Some((status, r.json().await.unwrap_or(Value::Null)))
}

/// The inode of the loopback IPv4 TCP socket bound to local `port`
/// (`/proc/net/tcp`).
fn socket_inode(port: u16) -> Option<String> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let local = format!(":{port:04X}");
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        fields
            .get(1)
            .filter(|a| a.ends_with(&local))
            .and_then(|_| fields.get(9))
            .map(|s| s.to_string())
    })
}
