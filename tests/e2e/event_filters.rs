//! Per-instance event filters through the real binary: an event the
//! instance's `event.objects` leaves out is stored and shown FILTERED but
//! never sent; after a PATCH that includes it the next one is delivered; a
//! redelivery of the filtered one delivers it; bad filter values are a 400
//! naming the key.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::host::{HostOptions, TestHost};
use crate::support::receiver::{Answer, Receiver};
use crate::support::wait_until;

async fn delivered(receiver: &Receiver, id: &str) {
    wait_until(
        &format!("{id} received"),
        Duration::from_secs(20),
        || async { (!receiver.received_with("webhook-id", id).is_empty()).then_some(()) },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_filtered_event_is_logged_not_sent_until_included_or_redelivered() {
    let receiver = Receiver::start().await;
    receiver.always(Answer::Status(200, None));
    let host = TestHost::start(HostOptions {
        allow_private: Some("127.0.0.0/8".into()),
        ..HostOptions::default()
    })
    .await;
    let created = host
        .create_instance(json!({
            "element": {"key": "probe"},
            "name": "filtered",
            "configuration": {
                "event.notification.enabled": true,
                "event.notification.callback.url": receiver.url(),
                "event.notification.signature.key": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                "event.objects": "ticket",
                "event.types": "CREATED,UPDATED",
            }
        }))
        .await;
    let id = created["id"].as_i64().unwrap();

    // Another object type: stored, FILTERED, not sent.
    let filtered = host.probe_event(id, "order-1").await;
    let entry = host.event(&filtered).await;
    assert_eq!(entry["status"], "FILTERED", "{entry}");
    assert_eq!(entry["events"][0]["objectId"], "order-1", "{entry}");
    let (status, page) = host
        .api(
            Method::GET,
            &format!("/instances/{id}/events?status=FILTERED"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["events"].as_array().unwrap().len(), 1, "{page}");
    assert_eq!(page["events"][0]["eventId"], filtered.as_str());

    // Include it: the change reaches delivery, the next one is sent.
    let (status, patched) = host
        .api(
            Method::PATCH,
            &format!("/instances/{id}"),
            Some(json!({"configuration": {"event.objects": "ticket, probe"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    let kept = host.probe_event(id, "order-2").await;
    delivered(&receiver, &kept).await;
    assert_eq!(host.event(&kept).await["status"], "NOTIFIED");
    // The filtered one, stored earlier, was never sent meanwhile.
    assert_eq!(receiver.received().len(), 1, "only the included event");
    assert_eq!(host.event(&filtered).await["status"], "FILTERED");

    // A redelivery of the filtered one delivers it.
    let (status, answer) = host
        .api(
            Method::POST,
            &format!("/instances/events/{filtered}/redeliver"),
            None,
        )
        .await;
    assert_eq!(status.as_u16() / 100, 2, "{answer}");
    delivered(&receiver, &filtered).await;
    let received = receiver.received_with("webhook-id", &filtered);
    assert_eq!(
        received[0].json()["message"]["events"][0]["objectId"],
        "order-1"
    );
    wait_until("redelivered NOTIFIED", Duration::from_secs(20), || async {
        (host.event(&filtered).await["status"] == "NOTIFIED").then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_filter_is_a_400_naming_the_key() {
    let host = TestHost::start(HostOptions::default()).await;
    let (status, error) = host
        .api(
            Method::POST,
            "/instances",
            Some(json!({
                "element": {"key": "probe"},
                "name": "bad",
                "configuration": {"event.types": "CREATED,MOVED"}
            })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert_eq!(error["field"], "configuration.event.types", "{error}");
    assert!(
        error["message"].as_str().unwrap().contains("MOVED"),
        "{error}"
    );

    let id = host
        .create_instance(json!({"element": {"key": "probe"}, "name": "ok", "configuration": {}}))
        .await["id"]
        .as_i64()
        .unwrap();
    for (config, field) in [
        (json!({"event.types": "moved"}), "configuration.event.types"),
        (json!({"event.objects": 7}), "configuration.event.objects"),
    ] {
        let (status, error) = host
            .api(
                Method::PATCH,
                &format!("/instances/{id}"),
                Some(json!({ "configuration": config })),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{config}: {error}");
        assert_eq!(error["field"], Value::from(field), "{config}: {error}");
    }
}
