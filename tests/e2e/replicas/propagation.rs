//! Management changes made on one replica take effect on the others
//! within a second (LISTEN/NOTIFY): events switched off and on (also after
//! the replicas' database connections were ended from the server side), a
//! rotated signing key with a new callback URL (the other replica's
//! deliveries go to the new URL, signed with the new key first), and a
//! deleted instance (the other replica answers its webhooks 404).

use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

use crate::support::process::AUTH;
use crate::support::receiver::{Received, Receiver};
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

/// The signature key `connectwise_instance` gives the instance.
const FIRST_KEY: &str = "replicas-secret";

/// The key the test rotates to (a Standard Webhooks `whsec_` secret).
const ROTATED_KEY: &str = "whsec_c2Vjb25kLWtleS1vZi10aGUtcHJvcGFnYXRpb24tdGVzdA==";

/// Standard Webhooks' `v1,<base64 HMAC-SHA256(secret, "{id}.{ts}.{body}")>`
/// of a received delivery under `key` (a `whsec_` key signs with its
/// base64-decoded bytes), computed here, independently of the host.
fn standard_signature(key: &str, r: &Received) -> String {
    let secret = match key.strip_prefix("whsec_") {
        Some(b64) => STANDARD.decode(b64).unwrap(),
        None => key.as_bytes().to_vec(),
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(&secret).unwrap();
    mac.update(
        format!(
            "{}.{}.",
            r.header("webhook-id"),
            r.header("webhook-timestamp")
        )
        .as_bytes(),
    );
    mac.update(&r.body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// Sends one callback through replica `i`; the eventId it was accepted as.
async fn accepted(replicas: &Replicas, i: usize, path: &str, message_id: &str) -> String {
    let (status, answer) = replicas
        .send_callback(&reqwest::Client::new(), i, path, message_id)
        .await
        .expect("the replica answers");
    assert_eq!(status, 200, "{answer}");
    answer["eventIds"][0].as_str().unwrap().to_string()
}

/// The one delivery of `event_id` that reached either receiver, and
/// whether it reached `new` (waits up to 20 s; panics on a second copy).
async fn delivery_of(old: &Receiver, new: &Receiver, event_id: &str) -> (bool, Received) {
    crate::support::wait_until(
        &format!("{event_id} to be delivered"),
        Duration::from_secs(20),
        || async {
            let (o, n) = (
                old.received_with("webhook-id", event_id),
                new.received_with("webhook-id", event_id),
            );
            assert!(o.len() + n.len() <= 1, "{event_id} delivered twice");
            n.into_iter()
                .map(|r| (true, r))
                .chain(o.into_iter().map(|r| (false, r)))
                .next()
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_rotation_callback_change_and_delete_on_one_replica_reach_another_within_a_second() {
    let (old, new) = (Receiver::start().await, Receiver::start().await);
    let replicas = Replicas::start(2, &["connectwise"], &[]).await;
    let (id, path) = replicas.connectwise_instance(0, &old.url()).await;

    // Replica B (index 1) takes a webhook: it now holds the instance cached.
    let warm = accepted(&replicas, 1, &path, "warm").await;
    let (to_new, first) = delivery_of(&old, &new, &warm).await;
    assert!(!to_new);
    assert_eq!(
        first.header("webhook-signature"),
        standard_signature(FIRST_KEY, &first),
        "before the rotation only the first key signs"
    );

    // Through A: a rotated signing key and a new callback URL, one PATCH.
    let answer = reqwest::Client::new()
        .patch(format!("{}/instances/{id}", replicas.base(0)))
        .header("authorization", AUTH)
        .json(&json!({"configuration": {
            "event.notification.signature.key": ROTATED_KEY,
            "event.notification.callback.url": new.url()}}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200, "{}", answer.text().await.unwrap());
    let changed = Instant::now();
    // A is frozen from now on, so B alone claims and delivers what follows.
    replicas.pause(0);
    let mut sent = Vec::new();
    while changed.elapsed() < PROPAGATION + Duration::from_millis(500) {
        let at = changed.elapsed();
        sent.push((
            at,
            accepted(&replicas, 1, &path, &format!("after-{at:?}")).await,
        ));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut latest_old = None;
    let mut checked_late = 0;
    for (at, event_id) in &sent {
        let (to_new, r) = delivery_of(&old, &new, event_id).await;
        if *at >= PROPAGATION {
            assert!(
                to_new,
                "{event_id}, accepted by B {at:?} after the change, went to the old URL"
            );
            checked_late += 1;
        }
        let signatures = r.header("webhook-signature");
        if to_new {
            // Newest first; the replaced key keeps signing through its
            // grace period (`key_grace_secs`, a day by default).
            assert_eq!(
                signatures,
                format!(
                    "{} {}",
                    standard_signature(ROTATED_KEY, &r),
                    standard_signature(FIRST_KEY, &r)
                ),
                "{event_id} (sent {at:?} after the change) reached the new URL"
            );
        } else {
            assert_eq!(
                signatures,
                standard_signature(FIRST_KEY, &r),
                "{event_id} reached the old URL: the old key alone signs it"
            );
            latest_old = Some(*at);
        }
    }
    assert!(checked_late >= 5, "only {checked_late} webhooks after 1 s");
    eprintln!(
        "{} webhooks through B after the change; the last one delivered the old way \
         was sent {latest_old:?} after it",
        sent.len()
    );

    // Deleted through A: B answers webhooks for it as for any unknown
    // instance (404) within a second.
    replicas.resume(0);
    let answer = reqwest::Client::new()
        .delete(format!("{}/instances/{id}", replicas.base(0)))
        .header("authorization", AUTH)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let gone = time_until_answered(&replicas, 1, &path, 404, "deleted").await;
    assert!(gone < PROPAGATION, "B answered 404 after {gone:?}");
}
