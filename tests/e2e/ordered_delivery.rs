//! Ordered delivery through the real binary: with
//! `event.notification.ordered`, a receiver that fails the first
//! notification about object A three times gets A's later notifications
//! only after it, in the order they were accepted, while object B's flow
//! meanwhile.

use std::time::Duration;

use plugboard::delivery::{DeliveryConfig, RetrySchedule};
use serde_json::json;

use crate::support::host::{HostOptions, TestHost};
use crate::support::receiver::{Answer, Received, Receiver};
use crate::support::wait_until;

/// Retries 1 s apart, no jitter: long enough that B's notifications, sent
/// at once, arrive while A's first is still failing.
fn slow_retries() -> DeliveryConfig {
    DeliveryConfig {
        request_timeout: Duration::from_millis(2000),
        schedule: RetrySchedule {
            delays: vec![
                Duration::ZERO,
                Duration::from_secs(1),
                Duration::from_secs(1),
                Duration::from_secs(1),
                Duration::from_secs(1),
            ],
            jitter: 0.0,
            min_backoff_on_throttle: Duration::from_secs(1),
            max_retry_after: Duration::from_secs(5),
        },
        ..DeliveryConfig::default()
    }
}

/// The object a delivered probe notification is about.
fn object_of(r: &Received) -> String {
    r.json()["message"]["events"][0]["objectId"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_notification_holds_back_only_later_ones_of_its_object() {
    let receiver = Receiver::start().await;
    // The first three requests about object A fail; everything else is 200.
    receiver.script_for_body(
        r#""objectId":"obj-a""#,
        [
            Answer::Status(500, None),
            Answer::Status(500, None),
            Answer::Status(503, None),
        ],
    );
    let host = TestHost::start(HostOptions {
        allow_private: Some("127.0.0.0/8".into()),
        delivery: Some(slow_retries()),
        ..HostOptions::default()
    })
    .await;
    let id = host
        .create_instance(json!({
            "element": {"key": "probe"},
            "name": "ordered",
            "configuration": {
                "event.notification.enabled": true,
                "event.notification.callback.url": receiver.url(),
                "event.notification.ordered": "true",
            }
        }))
        .await["id"]
        .as_i64()
        .unwrap();

    let mut a = Vec::new();
    let mut b = Vec::new();
    for _ in 0..3 {
        a.push(host.probe_event(id, "obj-a").await);
        b.push(host.probe_event(id, "obj-b").await);
    }
    // While A's first is retried (3 s of retries), its last one waits and
    // the log says so.
    let waiting = host.event(&a[2]).await;
    assert_eq!(waiting["status"], "RECEIVED", "{waiting}");
    assert_eq!(waiting["held"], "waiting", "{waiting}");
    assert!(waiting["nextAttemptDate"].is_null(), "{waiting}");

    wait_until(
        "every notification delivered",
        Duration::from_secs(30),
        || async {
            let got = receiver.received();
            let ok = |ids: &[String]| {
                ids.iter()
                    .all(|id| got.iter().any(|r| r.header("webhook-id") == id))
            };
            (ok(&a) && ok(&b) && got.len() >= 9).then_some(())
        },
    )
    .await;
    let got = receiver.received();

    // A: the first one three times (failed), then once more (200), then the
    // later ones, each once, in the order they were accepted — nothing of A
    // went while the one before it was unsettled.
    let a_requests: Vec<&str> = got
        .iter()
        .filter(|r| object_of(r) == "obj-a")
        .map(|r| r.header("webhook-id"))
        .collect();
    let expected: Vec<&str> = [&a[0], &a[0], &a[0], &a[0], &a[1], &a[2]]
        .iter()
        .map(|s| s.as_str())
        .collect();
    assert_eq!(a_requests, expected);

    // B: every one delivered before A's first finally succeeded.
    let a_first_success = got
        .iter()
        .filter(|r| r.header("webhook-id") == a[0])
        .nth(3)
        .unwrap()
        .at;
    for id in &b {
        let arrived = got
            .iter()
            .find(|r| r.header("webhook-id") == id)
            .unwrap()
            .at;
        assert!(arrived < a_first_success, "B's {id} waited for A's retries");
    }
    let b_order: Vec<&str> = got
        .iter()
        .filter(|r| object_of(r) == "obj-b")
        .map(|r| r.header("webhook-id"))
        .collect();
    assert_eq!(b_order.len(), 3, "each of B's once: {b_order:?}");

    // The event log shows every one delivered (the last attempts are
    // recorded just after the receiver answered).
    for id in a.iter().chain(&b) {
        wait_until(
            "the delivery to be recorded",
            Duration::from_secs(10),
            || async { (host.event(id).await["status"] == "NOTIFIED").then_some(()) },
        )
        .await;
    }
}
