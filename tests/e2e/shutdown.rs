//! Graceful shutdown of the real binary under load: SIGTERM stops new
//! connections, lets the request in flight finish and the deliveries in
//! flight complete, and loses nothing that was acknowledged; a delivery
//! still running at the deadline is abandoned and sent again after a
//! restart.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::support::connectwise::FakeConnectWise;
use crate::support::host::webhook_path;
use crate::support::process::{Binary, AUTH};
use crate::support::receiver::{Answer, Receiver};
use crate::support::tls::TestCa;
use crate::support::{plugin_bytes, wait_until};

/// A sidecar set-up that survives restarts: folders, vendor, receiver.
struct Setup {
    plugins: tempfile::TempDir,
    data: tempfile::TempDir,
    ca: TestCa,
    cw: Arc<FakeConnectWise>,
    receiver: Receiver,
    port: u16,
}

impl Setup {
    async fn new() -> Self {
        let ca = TestCa::new();
        let cw = Arc::new(FakeConnectWise::start(&ca).await);
        let plugins = tempfile::tempdir().unwrap();
        std::fs::write(
            plugins.path().join("connectwise.wasm"),
            plugin_bytes("connectwise"),
        )
        .unwrap();
        Self {
            plugins,
            data: tempfile::tempdir().unwrap(),
            ca,
            cw,
            receiver: Receiver::start().await,
            port: crate::support::process::free_port(),
        }
    }

    fn binary(&self, shutdown_secs: u64) -> Binary {
        Binary::serve(self.plugins.path(), self.data.path())
            .port(self.port)
            .env("PLUGBOARD_OUTBOUND_ALLOW_PRIVATE", "127.0.0.0/8")
            .env("PLUGBOARD_OUTBOUND_CA_FILE", &self.ca.ca_file)
            .env(
                "PLUGBOARD_PLUGIN_FETCH_PORTS",
                self.cw.addr.port().to_string(),
            )
            .env("PLUGBOARD_SHUTDOWN_TIMEOUT_SECS", shutdown_secs.to_string())
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn instance(&self) -> String {
        let created: Value = reqwest::Client::new()
            .post(format!("{}/instances", self.base()))
            .header("authorization", AUTH)
            .json(
                &json!({"element": {"key": "connectwise"}, "configuration": {
                "helpdesk.connectwise.server.url": self.cw.server_url(),
                "helpdesk.connectwise.company": "acme",
                "event.notification.enabled": true,
                "event.notification.callback.url": self.receiver.url(),
                "event.notification.signature.key": "shutdown-secret"}}),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = created["id"].as_i64();
        webhook_path(
            "connectwise",
            id.unwrap_or_else(|| panic!("instance not created: {created}")),
        )
    }

    /// A signed callback body and its signature.
    fn callback(&self, message_id: &str, n: u64) -> (Vec<u8>, String) {
        let body = self
            .cw
            .callback(message_id, "updated", "ticket", n, &self.cw.key_url());
        let signature = self.cw.sign(&body);
        (body, signature)
    }

    /// How many times the receiver got each event id.
    fn deliveries(&self) -> HashMap<String, usize> {
        let mut seen = HashMap::new();
        for r in self.receiver.received() {
            *seen.entry(r.header("webhook-id").to_string()).or_default() += 1;
        }
        seen
    }
}

/// Sends the first half of a signed webhook over a raw connection; returns
/// the connection and the rest of the body. The request asks for `100
/// Continue` and waits for it before sending any body, so the host has
/// accepted the connection and its handler is reading the request (a
/// connection still in the listen backlog would be reset when the listener
/// closes, which is not what this test is about).
async fn slow_request(setup: &Setup, path: &str) -> (tokio::net::TcpStream, Vec<u8>) {
    let (body, signature) = setup.callback("slow-request", 999);
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", setup.port))
        .await
        .unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
         x-content-signature: {signature}\r\ncontent-length: {}\r\nconnection: close\r\n\
         expect: 100-continue\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut interim = Vec::new();
    let mut byte = [0u8; 1];
    while !interim.ends_with(b"\r\n\r\n") {
        tokio::time::timeout(Duration::from_secs(30), stream.read_exact(&mut byte))
            .await
            .expect("no 100 Continue within 30 s")
            .unwrap();
        interim.push(byte[0]);
    }
    assert!(
        interim.starts_with(b"HTTP/1.1 100"),
        "{}",
        String::from_utf8_lossy(&interim)
    );
    stream.write_all(&body[..body.len() / 2]).await.unwrap();
    (stream, body[body.len() / 2..].to_vec())
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_under_load_finishes_in_flight_work_and_loses_nothing() {
    let setup = Setup::new().await;
    setup
        .receiver
        .always(Answer::Stall(Duration::from_millis(300)));
    let mut process = setup.binary(20).spawn();
    process.wait_ready().await;
    let path = setup.instance().await;

    let acknowledged = Arc::new(Mutex::new(HashSet::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let setup = Arc::new(setup);
    let mut writers = Vec::new();
    for w in 0..3 {
        let (setup, acknowledged, stop, url) = (
            setup.clone(),
            acknowledged.clone(),
            stop.clone(),
            format!("{}{path}", setup.base()),
        );
        writers.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            for n in 0.. {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let (body, signature) = setup.callback(&format!("load-{w}-{n}"), n);
                let sent = client
                    .post(&url)
                    .header("x-content-signature", signature)
                    .body(body)
                    .send()
                    .await;
                let Ok(response) = sent else { return }; // the listener is closed
                if response.status() != 200 {
                    return; // cut off by the shutdown: not acknowledged, the vendor retries
                }
                let answer: Value = response.json().await.unwrap();
                let mut ack = acknowledged.lock().unwrap();
                ack.extend(
                    answer["eventIds"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|v| v.as_str().unwrap().to_string()),
                );
            }
        }));
    }
    wait_until(
        "load to be acknowledged and delivering",
        Duration::from_secs(60),
        || async {
            (acknowledged.lock().unwrap().len() >= 30 && !setup.receiver.received().is_empty())
                .then_some(())
        },
    )
    .await;
    let (mut slow, rest) = slow_request(&setup, &path).await;

    process.terminate();
    wait_until(
        "new connections to be refused",
        Duration::from_secs(30),
        || async {
            tokio::net::TcpStream::connect(("127.0.0.1", setup.port))
                .await
                .err()
                .map(|_| ())
        },
    )
    .await;
    stop.store(true, Ordering::SeqCst);
    slow.write_all(&rest).await.unwrap();
    let mut answer = String::new();
    slow.read_to_string(&mut answer).await.unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "the request in flight completes: {answer}"
    );
    let slow_ids: Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    for w in writers {
        w.await.unwrap();
    }
    assert!(
        process.exited(Duration::from_secs(60)).await.success(),
        "{}",
        process.log()
    );
    assert!(!process.log().contains("abandoned"), "{}", process.log());

    let mut owed = acknowledged.lock().unwrap().clone();
    owed.extend(
        slow_ids["eventIds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string()),
    );
    let mut process = setup.binary(20).spawn();
    process.wait_ready().await;
    wait_until(
        "every acknowledged event to be delivered",
        Duration::from_secs(60),
        || async {
            let seen = setup.deliveries();
            owed.iter().all(|id| seen.contains_key(id)).then_some(())
        },
    )
    .await;
    let twice: Vec<_> = setup
        .deliveries()
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .collect();
    assert!(
        twice.is_empty(),
        "deliveries in flight finished before exit, none resent: {twice:?}"
    );
    process.terminate();
    assert!(process.exited(Duration::from_secs(60)).await.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delivery_still_running_at_the_deadline_is_abandoned_and_sent_again() {
    let setup = Setup::new().await;
    setup
        .receiver
        .always(Answer::Stall(Duration::from_secs(120)));
    let mut process = setup.binary(1).spawn();
    process.wait_ready().await;
    let path = setup.instance().await;
    let (body, signature) = setup.callback("stuck-1", 1);
    let answer: Value = reqwest::Client::new()
        .post(format!("{}{path}", setup.base()))
        .header("x-content-signature", signature)
        .body(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let event_id = answer["eventIds"][0].as_str().unwrap().to_string();
    wait_until(
        "the delivery to be in flight",
        Duration::from_secs(30),
        || async { setup.deliveries().contains_key(&event_id).then_some(()) },
    )
    .await;

    process.terminate();
    assert!(
        process.exited(Duration::from_secs(30)).await.success(),
        "{}",
        process.log()
    );
    assert!(process.log().contains("abandoned"), "{}", process.log());

    setup.receiver.always(Answer::Status(200, None));
    let process = setup.binary(1).spawn();
    process.wait_ready().await;
    let event = wait_until(
        "the abandoned delivery to be sent again",
        Duration::from_secs(60),
        || async {
            let event: Value = reqwest::Client::new()
                .get(format!("{}/instances/events/{event_id}", setup.base()))
                .header("authorization", AUTH)
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            (event.to_string().contains("abandoned at shutdown")
                && setup.deliveries()[&event_id] == 2)
                .then_some(event)
        },
    )
    .await;
    assert!(event.to_string().contains("delivered"), "{event}");
}
