//! Two real `plugboard serve` replicas on one real PostgreSQL database:
//! the poll partitions split between them, `GET /replicas` answers the
//! same on both, metrics carry each replica's id and the outbox depth is
//! reported once, and a replica shutting down hands its partitions over.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use plugboard::cluster::partition_of;
use serde_json::Value;
use tokio_postgres::AsyncMessage;

use crate::support::process::{probe_instance, Binary, Process, AUTH};
use crate::support::{plugin_bytes, wait_until};

fn replica(plugins: &Path, data: &Path, url: &str, id: &str) -> Process {
    Binary::serve(plugins, data)
        .env("PLUGBOARD_DATABASE_URL", url)
        .env("PLUGBOARD_REPLICA_ID", id)
        .env("PLUGBOARD_HEARTBEAT_SECS", "0.3")
        .env("PLUGBOARD_LEASE_SECS", "1.5")
        .env("PLUGBOARD_OUTBOUND_ALLOW_PRIVATE", "127.0.0.0/8")
        .spawn()
}

async fn replicas(base: &str) -> Value {
    let answer = reqwest::Client::new()
        .get(format!("{base}/replicas"))
        .header("authorization", AUTH)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    answer.json().await.unwrap()
}

async fn metrics(base: &str) -> String {
    reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The payloads of notifications on `channel`, from a listening connection
/// (kept open while the receiver lives).
async fn listen(url: &str, channel: &str) -> tokio::sync::mpsc::UnboundedReceiver<String> {
    let (client, mut connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let open = tx.clone();
    tokio::spawn(async move {
        while let Some(Ok(message)) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
            if let AsyncMessage::Notification(n) = message {
                let _ = tx.send(n.payload().to_string());
            }
        }
    });
    client
        .batch_execute(&format!("LISTEN {channel}"))
        .await
        .unwrap();
    tokio::spawn(async move {
        open.closed().await;
        drop(client);
    });
    rx
}

/// The partitions each listed replica holds, by id.
fn holdings(view: &Value) -> Vec<(String, BTreeSet<u64>)> {
    view["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let parts = r["partitions"].as_array().unwrap();
            let parts = parts.iter().map(|p| p.as_u64().unwrap()).collect();
            (r["id"].as_str().unwrap().to_string(), parts)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_split_the_partitions_and_hand_them_over_on_shutdown() {
    let url = tokio::task::spawn_blocking(|| throwaway_postgres::shared().create_database())
        .await
        .unwrap();
    let (data_a, data_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // One small plugin is enough to be ready; each replica compiles it.
    let plugins = tempfile::tempdir().unwrap();
    std::fs::write(plugins.path().join("probe.wasm"), plugin_bytes("probe")).unwrap();
    let a = replica(plugins.path(), data_a.path(), &url, "replica-a");
    let mut b = replica(plugins.path(), data_b.path(), &url, "replica-b");
    a.wait_ready().await;
    b.wait_ready().await;

    let split = wait_until(
        "the partitions to split 128/128",
        Duration::from_secs(20),
        || async {
            let view = replicas(&a.base()).await;
            let held = holdings(&view);
            let even = held.len() == 2 && held.iter().all(|(_, p)| p.len() == 128);
            even.then_some(view)
        },
    )
    .await;
    assert_eq!(split["partitionCount"], 256);
    let held = holdings(&split);
    assert_eq!(held[0].0, "replica-a");
    assert_eq!(held[1].0, "replica-b");
    assert!(
        held[0].1.is_disjoint(&held[1].1),
        "no partition owned twice"
    );
    let list = split["replicas"].as_array().unwrap();
    assert_eq!(list[0]["self"], true);
    assert_eq!(list[1]["self"], false);
    let maintenance: Vec<&Value> = list
        .iter()
        .filter(|r| r["singletons"] == serde_json::json!(["maintenance"]))
        .collect();
    assert_eq!(
        maintenance.len(),
        1,
        "one replica runs maintenance: {split}"
    );
    for r in list {
        assert!(r["startedAt"].as_str().unwrap().ends_with('Z'));
        assert!(r["lastSeen"].as_str().is_some());
    }

    // The other replica sees the same split, with itself marked.
    let from_b = replicas(&b.base()).await;
    assert_eq!(holdings(&from_b), held);
    assert_eq!(from_b["replicas"][1]["self"], true);

    // Every sample carries the replica; the outbox depth comes from one.
    let (ma, mb) = (metrics(&a.base()).await, metrics(&b.base()).await);
    assert!(
        ma.contains("plugboard_partitions_held{replica=\"replica-a\"} 128"),
        "{ma}"
    );
    assert!(
        mb.contains("plugboard_partitions_held{replica=\"replica-b\"} 128"),
        "{mb}"
    );
    assert!(ma.contains("plugboard_poll_pages_fenced_total{replica=\"replica-a\"} 0"));
    let reporting = [&ma, &mb]
        .iter()
        .filter(|m| m.contains("plugboard_outbox_pending{"))
        .count();
    assert_eq!(reporting, 1, "the outbox depth is reported by one replica");

    // Run now on the replica that does not poll the instance: handed to
    // the owner with a NOTIFY on plugboard_poll_run.
    let mut notices = listen(&url, "plugboard_poll_run").await;
    let id = probe_instance(&a.base(), "http://127.0.0.1:9/unused").await;
    let owner = held
        .iter()
        .find(|(_, parts)| parts.contains(&u64::from(partition_of(id))))
        .map(|(owner, _)| owner.clone())
        .unwrap();
    let other = if owner == "replica-a" { &b } else { &a };
    let answer = reqwest::Client::new()
        .post(format!("{}/instances/{id}/poller", other.base()))
        .header("authorization", AUTH)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 202);
    let handed: Value = answer.json().await.unwrap();
    assert_eq!(handed["instanceId"], id);
    assert_eq!(handed["replica"], owner.as_str());
    assert_eq!(handed["partition"], u64::from(partition_of(id)));
    let notice = tokio::time::timeout(Duration::from_secs(5), notices.recv())
        .await
        .expect("the NOTIFY arrives")
        .unwrap();
    assert_eq!(notice, id.to_string());

    // b shuts down cleanly: a holds everything at once, without waiting
    // for b's leases to expire.
    b.terminate();
    assert!(b.exited(Duration::from_secs(30)).await.success());
    wait_until(
        "replica-a to hold every partition",
        Duration::from_secs(10),
        || async {
            let held = holdings(&replicas(&a.base()).await);
            (held.len() == 1 && held[0].1.len() == 256).then_some(())
        },
    )
    .await;
    let alone = replicas(&a.base()).await;
    assert_eq!(
        alone["replicas"][0]["singletons"],
        serde_json::json!(["maintenance"])
    );
    assert!(b.log().contains("leases released"), "{}", b.log());
}
