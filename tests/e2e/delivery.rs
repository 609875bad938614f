//! Delivery end to end: notifications reach a real loopback receiver,
//! signed (checked by an independent Python implementation), retried on
//! failure, timeouts and throttling, paused on 410, dead-lettered after the
//! schedule, and redelivered with the same eventId.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use plugboard::delivery::{DeliveryConfig, RetrySchedule};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::host::{HostOptions, TestHost};
use crate::support::receiver::{Answer, Received, Receiver};
use crate::support::{repo_root, wait_until};

/// Fast retries for tests: 4 attempts, 300 ms apart, no jitter.
fn fast_delivery() -> DeliveryConfig {
    DeliveryConfig {
        request_timeout: Duration::from_millis(500),
        schedule: RetrySchedule {
            delays: vec![
                Duration::ZERO,
                Duration::from_millis(300),
                Duration::from_millis(300),
                Duration::from_millis(300),
            ],
            jitter: 0.0,
            min_backoff_on_throttle: Duration::from_millis(300),
            max_retry_after: Duration::from_secs(5),
        },
        ..DeliveryConfig::default()
    }
}

async fn host() -> TestHost {
    host_with(fast_delivery()).await
}

/// A host delivering to loopback with these delivery settings.
async fn host_with(delivery: DeliveryConfig) -> TestHost {
    TestHost::start(HostOptions {
        allow_private: Some("127.0.0.0/8".into()),
        delivery: Some(delivery),
        ..HostOptions::default()
    })
    .await
}

async fn probe_instance(host: &TestHost, receiver: &Receiver, extra: Value) -> i64 {
    let mut config = json!({
        "event.notification.enabled": true,
        "event.notification.callback.url": receiver.url(),
        "event.notification.signature.key": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    });
    config
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    host.create_instance(json!({"element": {"key": "probe"}, "name": "probe-1", "tags": ["t"], "configuration": config}))
        .await["id"]
        .as_i64()
        .unwrap()
}

async fn wait_received(receiver: &Receiver, n: usize) -> Vec<Received> {
    wait_until(
        &format!("{n} deliveries"),
        Duration::from_secs(20),
        || async {
            let got = receiver.received();
            (got.len() >= n).then_some(got)
        },
    )
    .await
}

async fn wait_status(host: &TestHost, event_id: &str, status: &str) -> Value {
    wait_until(
        &format!("{event_id} to be {status}"),
        Duration::from_secs(20),
        || async {
            let e = host.event(event_id).await;
            (e["status"] == status).then_some(e)
        },
    )
    .await
}

pub(crate) fn python_verifies(r: &Received, key: &str) -> bool {
    let headers: serde_json::Map<String, Value> = r
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                Value::String(v.to_str().unwrap().to_string()),
            )
        })
        .collect();
    let input = json!({
        "body_b64": base64::engine::general_purpose::STANDARD.encode(&r.body),
        "headers": headers,
        "key": key,
    });
    let mut child = Command::new("python3")
        .arg(repo_root().join("tests/e2e/verify_signature.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 is needed for the independent signature check");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    out.status.success() && text.trim() == "ok"
}

#[tokio::test(flavor = "multi_thread")]
async fn notifications_arrive_signed_and_verify_independently() {
    let receiver = Receiver::start().await;
    let host = host().await;
    let key = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let id = probe_instance(&host, &receiver, json!({})).await;
    let event_id = host.probe_event(id, "obj-1").await;
    let got = wait_received(&receiver, 1).await;
    let r = &got[0];
    assert!(
        python_verifies(r, key),
        "signature must verify: {:?}",
        r.headers
    );
    assert!(
        !python_verifies(r, "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        "a wrong key must not verify"
    );
    assert_eq!(r.header("webhook-id"), event_id);
    assert_eq!(r.header("content-type"), "application/json");
    let message = &r.json()["message"];
    assert_eq!(message["eventId"], event_id);
    assert_eq!(message["instanceId"], id);
    assert_eq!(message["elementKey"], "probe");
    assert_eq!(message["instanceName"], "probe-1");
    assert_eq!(message["events"][0]["objectId"], "obj-1");
    assert_eq!(message["events"][0]["eventType"], "CREATED");
    assert_eq!(message["raw"], json!({"n": 1}));
    let logged = wait_status(&host, &event_id, "NOTIFIED").await;
    assert_eq!(logged["attemptLog"].as_array().unwrap().len(), 1);
    assert_eq!(logged["attemptLog"][0]["statusCode"], 200);
}

/// Deliveries keep their connections to a receiver: a second burst as
/// wide as the per-host limit finds the first burst's connections idle
/// and opens (almost) none. A pool keeping fewer idle connections than
/// the limit closed the rest after each burst and opened them again.
#[tokio::test(flavor = "multi_thread")]
async fn a_second_burst_of_deliveries_reuses_the_first_bursts_connections() {
    use std::collections::HashSet;
    let receiver = Receiver::start().await;
    // Each answer takes a while, so a burst holds many connections at once.
    receiver.always(Answer::Stall(Duration::from_millis(100)));
    let host = host_with(DeliveryConfig {
        per_host: 40,
        ..fast_delivery()
    })
    .await;
    let id = probe_instance(&host, &receiver, json!({})).await;
    let burst = |wave: usize| {
        let host = &host;
        futures_util::future::join_all(
            (0..80)
                .map(move |n| async move { host.probe_event(id, &format!("w{wave}-{n}")).await }),
        )
    };
    // Every delivery of the first burst answered: its connections are idle.
    for event in burst(1).await {
        wait_status(&host, &event, "NOTIFIED").await;
    }
    let first: HashSet<_> = receiver.received().iter().map(|r| r.peer).collect();
    burst(2).await;
    let got = wait_received(&receiver, 160).await;
    let opened: HashSet<_> = got[80..]
        .iter()
        .map(|r| r.peer)
        .filter(|p| !first.contains(p))
        .collect();
    assert!(
        first.len() > 20,
        "the first burst should use more connections at once than the 16 the pool used to keep idle; it used {}",
        first.len()
    );
    assert!(
        opened.len() * 4 <= first.len(),
        "the second burst opened {} new connections beside the first burst's {}",
        opened.len(),
        first.len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_are_retried_until_delivered() {
    let receiver = Receiver::start().await;
    receiver.script([
        Answer::Status(500, None),
        Answer::Stall(Duration::from_millis(1500)), // longer than the 500 ms request timeout
        Answer::Status(302, None),                  // redirects are failures, never followed
    ]);
    let host = host().await;
    let id = probe_instance(&host, &receiver, json!({})).await;
    let event_id = host.probe_event(id, "obj-2").await;
    let logged = wait_status(&host, &event_id, "NOTIFIED").await;
    let attempts = logged["attemptLog"].as_array().unwrap();
    let codes: Vec<Value> = attempts.iter().map(|a| a["statusCode"].clone()).collect();
    assert_eq!(
        codes,
        [json!(500), Value::Null, json!(302), json!(200)],
        "{logged}"
    );
    assert!(attempts[1]["error"].as_str().unwrap().contains("timed out"));
    let got = receiver.received();
    assert!(
        got.iter().all(|r| r.header("webhook-id") == event_id),
        "same eventId on every attempt"
    );
    assert!(
        got.iter().all(|r| r.body == got[0].body),
        "same bytes on every attempt"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn each_attempt_keeps_the_first_bytes_of_the_receivers_answer() {
    let receiver = Receiver::start().await;
    let refusal = format!(
        "{{\"error\":\"bad signature\",\"detail\":\"{}\"}}",
        "é".repeat(2000)
    );
    receiver.script([
        Answer::Body(400, refusal.clone().into_bytes()),
        Answer::Body(503, vec![0xff, 0xfe, 0x00, 0x01]),
        Answer::Body(200, b"thanks".to_vec()),
    ]);
    let host = host_with(DeliveryConfig {
        response_body_bytes: 100,
        ..fast_delivery()
    })
    .await;
    let id = probe_instance(&host, &receiver, json!({})).await;
    let event_id = host.probe_event(id, "obj-answer").await;
    let logged = wait_status(&host, &event_id, "NOTIFIED").await;
    let attempts = logged["attemptLog"].as_array().unwrap();
    assert_eq!(attempts.len(), 3, "{logged}");
    // 100 bytes would split a two-byte character: the text stops before it.
    let kept = attempts[0]["responseBody"].as_str().unwrap();
    assert!(refusal.starts_with(kept), "{kept}");
    assert_eq!(kept.len(), 99, "{kept}");
    assert_eq!(attempts[0]["statusCode"], 400);
    assert_eq!(attempts[1]["responseBodyBase64"], "//4AAQ==", "{logged}");
    assert!(attempts[1].get("responseBody").is_none());
    assert_eq!(attempts[2]["responseBody"], "thanks");
    for a in attempts {
        assert!(a["latencyMs"].is_u64(), "{a}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn throttled_deliveries_wait_for_retry_after() {
    let receiver = Receiver::start().await;
    receiver.script([Answer::Status(429, Some(2))]);
    let host = host().await;
    let id = probe_instance(&host, &receiver, json!({})).await;
    let event_id = host.probe_event(id, "obj-3").await;
    wait_status(&host, &event_id, "NOTIFIED").await;
    let got = receiver.received();
    assert_eq!(got.len(), 2);
    let waited = got[1].at - got[0].at;
    assert!(
        waited >= Duration::from_millis(1900),
        "Retry-After: 2 honoured, waited {waited:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn gone_pauses_delivery_until_events_are_switched_on_again() {
    let receiver = Receiver::start().await;
    receiver.script([Answer::Status(410, None)]);
    let host = host().await;
    let id = probe_instance(&host, &receiver, json!({})).await;
    let first = host.probe_event(id, "a").await;
    wait_received(&receiver, 1).await;
    let paused = wait_until("delivery to pause", Duration::from_secs(10), || async {
        let (_, inst) = host
            .api(Method::GET, &format!("/instances/{id}"), None)
            .await;
        inst["deliveryPaused"].as_str().map(str::to_string)
    })
    .await;
    assert!(paused.contains("410"), "{paused}");
    let second = host.probe_event(id, "b").await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(receiver.received().len(), 1, "nothing is sent while paused");

    let (status, _) = host
        .api(
            Method::PUT,
            &format!("/instances/{id}/events/enabled"),
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    wait_status(&host, &first, "NOTIFIED").await;
    wait_status(&host, &second, "NOTIFIED").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dead_lettered_after_the_schedule_then_redelivered_with_the_same_id() {
    let receiver = Receiver::start().await;
    receiver.always(Answer::Status(500, None));
    let host = host().await;
    let id = probe_instance(&host, &receiver, json!({})).await;
    let event_id = host.probe_event(id, "dead-1").await;
    let dead = wait_status(&host, &event_id, "FAILED").await;
    assert_eq!(
        attempt_counts(&dead),
        (4, 4, 4, 4),
        "every scheduled attempt was made, all in the first cycle: {dead}"
    );
    let (_, failed) = host
        .api(
            Method::GET,
            &format!("/instances/{id}/events?status=FAILED"),
            None,
        )
        .await;
    assert_eq!(failed["events"].as_array().unwrap().len(), 1);

    receiver.always(Answer::Status(200, None));
    let (status, _) = host
        .api(
            Method::POST,
            &format!("/instances/{id}/events/redeliver"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let redelivered = wait_status(&host, &event_id, "NOTIFIED").await;
    let last = receiver.received().pop().unwrap();
    assert_eq!(last.header("webhook-id"), event_id);
    assert_eq!(
        attempt_counts(&redelivered),
        (1, 1, 5, 5),
        "the new cycle's one attempt, five in all: {redelivered}"
    );

    // One event can be replayed on demand, even after it was delivered.
    let (status, _) = host
        .api(
            Method::POST,
            &format!("/instances/events/{event_id}/redeliver"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    wait_received(&receiver, 6).await;
    let replayed = wait_status(&host, &event_id, "NOTIFIED").await;
    assert_eq!(receiver.received()[5].header("webhook-id"), event_id);
    assert_eq!(attempt_counts(&replayed), (1, 1, 6, 6), "{replayed}");
    let (_, listed) = host
        .api(Method::GET, &format!("/instances/{id}/events"), None)
        .await;
    let entry = &listed["events"][0];
    assert_eq!(
        (
            entry["cycleAttempts"].as_u64(),
            entry["totalAttempts"].as_u64()
        ),
        (Some(1), Some(6)),
        "the listing counts the same: {entry}"
    );
}

/// An event-log entry's `(attempts, cycleAttempts, totalAttempts, attemptLog length)`.
fn attempt_counts(entry: &Value) -> (u64, u64, u64, usize) {
    (
        entry["attempts"].as_u64().unwrap(),
        entry["cycleAttempts"].as_u64().unwrap(),
        entry["totalAttempts"].as_u64().unwrap(),
        entry["attemptLog"].as_array().unwrap().len(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rotated_key_keeps_signing_through_its_grace_period() {
    let receiver = Receiver::start().await;
    let host = host().await;
    let id = probe_instance(
        &host,
        &receiver,
        json!({"event.notification.signature.key": "old-key"}),
    )
    .await;
    let (status, _) = host
        .api(
            Method::PATCH,
            &format!("/instances/{id}"),
            Some(json!({"configuration": {"event.notification.signature.key": "new-key"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    host.probe_event(id, "rot").await;
    let r = &wait_received(&receiver, 1).await[0];
    assert!(python_verifies(r, "new-key"));
    assert!(
        python_verifies(r, "old-key"),
        "the old key still signs during the grace period"
    );
    assert_eq!(r.header("webhook-signature").split(' ').count(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn cloudevents_format_is_structured_json() {
    let receiver = Receiver::start().await;
    let host = host().await;
    let id = probe_instance(
        &host,
        &receiver,
        json!({"event.notification.format": "cloudevents"}),
    )
    .await;
    let event_id = host.probe_event(id, "ce-1").await;
    let r = &wait_received(&receiver, 1).await[0];
    assert_eq!(r.header("content-type"), "application/cloudevents+json");
    let ce = r.json();
    assert_eq!(
        (ce["specversion"].as_str(), ce["id"].as_str()),
        (Some("1.0"), Some(event_id.as_str()))
    );
    assert_eq!(ce["subject"], "probe/ce-1");
    assert_eq!(ce["data"]["events"][0]["objectId"], "ce-1");
}

#[tokio::test(flavor = "multi_thread")]
async fn callbacks_to_private_addresses_need_the_operator_allow_list() {
    // Such a callback URL is refused when the instance is saved (see
    // instances_api); one saved while the operator allowed loopback is
    // still refused at delivery once the allow-list no longer has it.
    let receiver = Receiver::start().await;
    let mut host = host().await;
    let id = probe_instance(&host, &receiver, json!({})).await;
    host.restart_with(HostOptions {
        delivery: Some(fast_delivery()),
        ..HostOptions::default()
    })
    .await;
    let event_id = host.probe_event(id, "ssrf").await;
    let logged = wait_until("a refused attempt", Duration::from_secs(10), || async {
        let e = host.event(&event_id).await;
        let attempted = e["attemptLog"].as_array().is_some_and(|a| !a.is_empty());
        attempted.then_some(e)
    })
    .await;
    assert!(
        logged["attemptLog"][0]["error"]
            .as_str()
            .unwrap()
            .contains("PLUGBOARD_OUTBOUND_ALLOW_PRIVATE"),
        "{logged}"
    );
    assert!(receiver.received().is_empty());
}
