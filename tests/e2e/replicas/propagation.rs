//! Management changes made on one replica take effect on the others
//! within a second (LISTEN/NOTIFY), also after the replicas' database
//! connections were ended from the server side.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::process::AUTH;
use crate::support::receiver::Receiver;
use crate::support::replicas::Replicas;

/// How soon a change must be seen by every replica.
const PROPAGATION: Duration = Duration::from_secs(1);

/// Switches events of instance `id` on or off through replica `i`.
async fn switch_events(replicas: &Replicas, i: usize, id: i64, enabled: bool) {
    let r = reqwest::Client::new()
        .put(format!(
            "{}/instances/{id}/events/enabled",
            replicas.base(i)
        ))
        .header("authorization", AUTH)
        .json(&json!({"enabled": enabled}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

/// Sends callbacks to replica `i` until one is answered `status`; how long
/// that took (panics after 10 s).
async fn time_until_answered(
    replicas: &Replicas,
    i: usize,
    path: &str,
    status: u16,
    round: &str,
) -> Duration {
    let client = reqwest::Client::new();
    let start = Instant::now();
    let mut n = 0;
    loop {
        n += 1;
        let answered = replicas
            .send_callback(&client, i, path, &format!("{round}-{n}"))
            .await;
        if answered.as_ref().map(|a| a.0) == Some(status) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{} never answered {status}: {answered:?}",
            Replicas::replica_id(i)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn events_switched_off_on_one_replica_are_refused_by_another_within_a_second() {
    let receiver = Receiver::start().await;
    let replicas = Replicas::start(3, &["connectwise"], &[]).await;
    let (id, path) = replicas.connectwise_instance(0, &receiver.url()).await;
    let client = reqwest::Client::new();
    for round in 0..3 {
        // Every replica has the instance cached and takes its webhooks.
        for i in 0..3 {
            let (status, answer) = replicas
                .send_callback(&client, i, &path, &format!("warm-{round}-{i}"))
                .await
                .unwrap();
            assert_eq!(status, 200, "{answer}");
        }
        if round == 2 {
            // Every connection of every replica (LISTEN included) is ended;
            // the replicas reconnect and listen again.
            let db = replicas.sql().await;
            db.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = current_database() AND pid <> pg_backend_pid()",
                &[],
            )
            .await
            .unwrap();
            for i in 0..3 {
                replicas.wait_ready(i).await;
            }
            // Time to reconnect (the listening connection too).
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        switch_events(&replicas, 0, id, false).await;
        let off = time_until_answered(&replicas, 2, &path, 409, &format!("off-{round}")).await;
        assert!(
            off < PROPAGATION,
            "round {round}: replica-3 answered 409 after {off:?}"
        );
        switch_events(&replicas, 0, id, true).await;
        let on = time_until_answered(&replicas, 2, &path, 200, &format!("on-{round}")).await;
        assert!(
            on < PROPAGATION,
            "round {round}: replica-3 answered 200 after {on:?}"
        );
    }
}
