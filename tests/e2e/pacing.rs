//! Pacing and fair shares with the real binary: an instance's
//! `event.notification.rate_limit` holds at the receiver (judged by its
//! own arrival times), retries included; a receiver that takes 5 s per
//! request, with hundreds of its notifications due, delays no other
//! instance's deliveries; claims waiting on a saturated host are handed
//! back unattempted.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::process::{create_instance, get_json, probe_webhook, Binary, Process, AUTH};
use crate::support::receiver::{Answer, Received, Receiver};
use crate::support::scrape::{scrape, sum};
use crate::support::{plugin_bytes, wait_until};

/// The binary with the probe element, delivering to loopback, ready; `env`
/// adds settings. Its folders live as long as the returned pair.
async fn start(env: &[(&str, &str)]) -> (Process, [tempfile::TempDir; 2]) {
    let (plugins, data) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    std::fs::write(plugins.path().join("probe.wasm"), plugin_bytes("probe")).unwrap();
    let mut binary = Binary::serve(plugins.path(), data.path())
        .env("PLUGBOARD_OUTBOUND_ALLOW_PRIVATE", "127.0.0.0/8");
    for (k, v) in env {
        binary = binary.env(k, v);
    }
    let process = binary.spawn();
    process.wait_ready().await;
    (process, [plugins, data])
}

/// A probe instance delivering to `callback`, with `extra` configuration.
async fn instance(base: &str, callback: &str, extra: Value) -> i64 {
    let mut configuration = json!({
        "event.notification.enabled": true,
        "event.notification.callback.url": callback,
    });
    for (k, v) in extra.as_object().unwrap() {
        configuration[k] = v.clone();
    }
    create_instance(
        base,
        json!({"element": {"key": "probe"}, "configuration": configuration}),
    )
    .await
}

/// Sends `n` webhooks to instance `id`, `parallel` at a time.
async fn webhooks(base: &str, id: i64, n: usize, parallel: usize) {
    let mut running = tokio::task::JoinSet::new();
    for _ in 0..n {
        if running.len() >= parallel {
            assert_eq!(running.join_next().await.unwrap().unwrap(), StatusCode::OK);
        }
        let base = base.to_string();
        running.spawn(async move { probe_webhook(&base, id).await });
    }
    while let Some(status) = running.join_next().await {
        assert_eq!(status.unwrap(), StatusCode::OK);
    }
}

/// Waits for `n` requests at `receiver`; returns them and the distinct
/// notification ids among them.
async fn requests(receiver: &Receiver, n: usize) -> (Vec<Received>, Vec<String>) {
    let got = wait_until(
        &format!("{n} requests at the receiver"),
        Duration::from_secs(60),
        || async {
            let got = receiver.received();
            (got.len() >= n).then_some(got)
        },
    )
    .await;
    let mut ids: Vec<String> = got
        .iter()
        .map(|r| r.header("webhook-id").to_string())
        .collect();
    ids.sort();
    ids.dedup();
    (got, ids)
}

/// The most arrivals within any one second.
fn busiest_second(mut arrivals: Vec<Instant>) -> usize {
    arrivals.sort();
    (0..arrivals.len())
        .map(|i| {
            arrivals[i..]
                .iter()
                .take_while(|t| **t < arrivals[i] + Duration::from_secs(1))
                .count()
        })
        .max()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rate_limit_holds_at_the_receiver_for_deliveries_and_retries() {
    let receiver = Receiver::start().await;
    // The first ten requests fail: their retries (0.3 s later) are paced too.
    receiver.script((0..10).map(|_| Answer::Status(500, None)));
    let (process, _folders) = start(&[("PLUGBOARD_DELIVERY_SCHEDULE", "0,0.3,0.3")]).await;
    let base = process.base();

    // A rate limit that is not a positive number is refused, naming the key.
    let refused = reqwest::Client::new()
        .post(format!("{base}/instances"))
        .header("authorization", AUTH)
        .json(&json!({"element": {"key": "probe"}, "configuration": {
            "event.notification.enabled": true,
            "event.notification.callback.url": receiver.url(),
            "event.notification.rate_limit": "0"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let answer: Value = refused.json().await.unwrap();
    assert_eq!(
        answer["field"], "configuration.event.notification.rate_limit",
        "{answer}"
    );

    let id = instance(
        &base,
        &receiver.url(),
        json!({"event.notification.rate_limit": "5"}),
    )
    .await;
    let shown = get_json(&format!("{base}/instances/{id}")).await.unwrap();
    assert_eq!(
        shown["configuration"]["event.notification.rate_limit"], "5",
        "{shown}"
    );

    webhooks(&base, id, 30, 8).await;
    let (got, ids) = requests(&receiver, 40).await;
    assert_eq!(ids.len(), 30, "every notification arrived");
    assert_eq!(got.len(), 40, "30 deliveries and 10 retries, nothing more");

    // 5 per second with a burst of one: no second holds more than 6, and
    // the 40 requests took at least 39 intervals of 200 ms (less jitter).
    let arrivals: Vec<Instant> = got.iter().map(|r| r.at).collect();
    let busiest = busiest_second(arrivals.clone());
    assert!(busiest <= 6, "{busiest} requests within one second");
    let span = *arrivals.iter().max().unwrap() - *arrivals.iter().min().unwrap();
    assert!(
        span >= Duration::from_millis(7_500),
        "40 requests in {span:?}"
    );

    let samples = scrape(&format!("{base}/metrics")).await;
    assert!(sum(&samples, "plugboard_delivery_held_back_by_rate_total", &[]) >= 1.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_receiver_does_not_delay_other_instances() {
    let slow = Receiver::start().await;
    slow.always(Answer::Stall(Duration::from_secs(5)));
    let healthy = Receiver::start().await;
    let (process, _folders) = start(&[]).await;
    let base = process.base();
    let slow_id = instance(&base, &slow.url(), json!({})).await;
    let healthy_id = instance(&base, &healthy.url(), json!({})).await;

    // More of the slow one's notifications due than the whole claim budget
    // (512), and its receiver saturated.
    webhooks(&base, slow_id, 600, 16).await;
    wait_until(
        "the slow receiver saturated",
        Duration::from_secs(30),
        || async { (slow.received().len() >= 64).then_some(()) },
    )
    .await;
    let saturated = Instant::now();

    webhooks(&base, healthy_id, 20, 4).await;
    let accepted = Instant::now();
    let arrived = wait_until(
        "the healthy instance's 20 notifications",
        Duration::from_secs(30),
        || async {
            let got = healthy.received();
            (got.len() >= 20).then(|| got.iter().map(|r| r.at).max().unwrap())
        },
    )
    .await;
    let latency = arrived.saturating_duration_since(accepted);
    assert!(
        latency <= Duration::from_secs(2),
        "the healthy instance's last notification came {latency:?} after its webhooks"
    );
    // The slow one still held its share, and no more: at most the
    // per-instance cap (64) of its requests at once.
    assert!(
        saturated.elapsed() < Duration::from_secs(5),
        "measured while the slow receiver was still stalled"
    );
    let first = slow.received().iter().map(|r| r.at).min().unwrap();
    let at_once = slow
        .received()
        .iter()
        .filter(|r| r.at < first + Duration::from_millis(4_500))
        .count();
    assert!(
        at_once <= 64,
        "{at_once} requests to the slow receiver at once"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn claims_waiting_on_a_saturated_host_are_handed_back_unattempted() {
    // Two slots for the receiver's host, each request taking 2 s: of ten
    // notifications claimed at once, eight wait, and after 1 s go back.
    let receiver = Receiver::start().await;
    receiver.always(Answer::Stall(Duration::from_secs(2)));
    let (process, _folders) = start(&[("PLUGBOARD_DELIVERY_PER_HOST", "2")]).await;
    let base = process.base();
    let id = instance(&base, &receiver.url(), json!({})).await;
    webhooks(&base, id, 10, 4).await;

    let (_, ids) = requests(&receiver, 10).await;
    assert_eq!(ids.len(), 10, "each once: handed back is not sent");
    let samples = scrape(&format!("{base}/metrics")).await;
    assert!(sum(&samples, "plugboard_delivery_handed_back_total", &[]) >= 1.0);
    // A hand-back is no attempt: each was attempted once, and delivered.
    for event in &ids {
        let shown = wait_until("the attempt recorded", Duration::from_secs(10), || async {
            let e = get_json(&format!("{base}/instances/events/{event}")).await?;
            (e["status"] == "NOTIFIED").then_some(e)
        })
        .await;
        assert_eq!(shown["cycleAttempts"], 1, "{shown}");
    }
}
