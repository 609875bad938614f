//! Searching the event log and redelivering what a search finds, through
//! the real binary: filters by object, event type, element, instance,
//! status and time, cursor paging, a 400 naming each bad parameter, and a
//! bulk redelivery reaching a real receiver.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::host::{HostOptions, TestHost};
use crate::support::receiver::{Answer, Receiver};
use crate::support::wait_until;

async fn host() -> TestHost {
    TestHost::start(HostOptions {
        allow_private: Some("127.0.0.0/8".into()),
        delivery: Some(plugboard::delivery::DeliveryConfig {
            schedule: plugboard::delivery::RetrySchedule {
                delays: vec![Duration::ZERO],
                jitter: 0.0,
                ..plugboard::delivery::RetrySchedule::default()
            },
            ..plugboard::delivery::DeliveryConfig::default()
        }),
        ..HostOptions::default()
    })
    .await
}

async fn probe(host: &TestHost, receiver: &Receiver, name: &str) -> i64 {
    host.create_instance(json!({
        "element": {"key": "probe"},
        "name": name,
        "configuration": {
            "event.notification.enabled": true,
            "event.notification.callback.url": receiver.url(),
            "event.notification.signature.key": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        }
    }))
    .await["id"]
        .as_i64()
        .unwrap()
}

/// Every eventId the search finds, following the cursor two at a time.
async fn search(host: &TestHost, query: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut cursor = String::new();
    loop {
        let (status, page) = host
            .api(
                Method::GET,
                &format!("/instances/events?pageSize=2&{query}{cursor}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{query}: {page}");
        let events = page["events"].as_array().unwrap();
        found.extend(
            events
                .iter()
                .map(|e| e["eventId"].as_str().unwrap().to_string()),
        );
        match page["nextPage"].as_str() {
            Some(next) => cursor = format!("&nextPage={next}"),
            None => return found,
        }
    }
}

async fn wait_status(host: &TestHost, ids: &[String], status: &str) {
    for id in ids {
        wait_until(
            &format!("{id} {status}"),
            Duration::from_secs(20),
            || async { (host.event(id).await["status"] == status).then_some(()) },
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_event_log_is_searched_and_a_search_redelivered() {
    let receiver = Receiver::start().await;
    // Everything fails once (one attempt only): dead-lettered at once.
    receiver.always(Answer::Status(500, None));
    let host = host().await;
    let a = probe(&host, &receiver, "a").await;
    let b = probe(&host, &receiver, "b").await;
    let before = time::OffsetDateTime::now_utc();
    let a1 = host.probe_event(a, "order-1").await;
    let a2 = host.probe_event(a, "order-2").await;
    let a3 = host.probe_event(a, "order-1").await;
    let b1 = host.probe_event(b, "order-1").await;
    wait_status(
        &host,
        &[a1.clone(), a2.clone(), a3.clone(), b1.clone()],
        "FAILED",
    )
    .await;

    assert_eq!(
        search(&host, "objectId=order-1").await,
        [b1.clone(), a3.clone(), a1.clone()]
    );
    assert_eq!(
        search(&host, &format!("objectId=order-1&instanceId={a}")).await,
        [a3.clone(), a1.clone()]
    );
    assert_eq!(
        search(
            &host,
            "objectType=probe&eventType=created&status=FAILED&elementKey=probe"
        )
        .await
        .len(),
        4
    );
    assert!(search(&host, "eventType=DELETED").await.is_empty());
    assert!(search(&host, "elementKey=github").await.is_empty());
    let from = before
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    assert_eq!(
        search(&host, &format!("from={from}&objectId=order-2")).await,
        std::slice::from_ref(&a2)
    );
    assert!(search(&host, &format!("to={from}")).await.is_empty());
    let (status, of_b) = host
        .api(
            Method::GET,
            &format!("/instances/{b}/events?objectId=order-1"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(of_b["events"].as_array().unwrap().len(), 1);

    for (query, field) in [
        ("eventType=MOVED", "eventType"),
        ("objectId=", "objectId"),
        ("from=yesterday", "from"),
        ("status=LOST", "status"),
        ("instanceId=x", "instanceId"),
        ("objectName=x", "objectName"),
    ] {
        let (status, error) = host
            .api(Method::GET, &format!("/instances/events?{query}"), None)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {error}");
        assert_eq!(error["field"], field, "{query}: {error}");
    }

    // Redelivery by search: what is dead-lettered of object order-1 on
    // instance a, now to a receiver that accepts.
    receiver.always(Answer::Status(200, None));
    let (status, answer) = host
        .api(
            Method::POST,
            &format!("/instances/events/redeliver?status=FAILED&objectId=order-1&instanceId={a}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer, json!({"scheduled": 2}));
    wait_status(&host, &[a1.clone(), a3.clone()], "NOTIFIED").await;
    for id in [&a1, &a3] {
        assert_eq!(
            receiver.received_with("webhook-id", id).len(),
            2,
            "{id}: again, same id"
        );
    }
    for id in [&a2, &b1] {
        assert_eq!(
            host.event(id).await["status"],
            "FAILED",
            "{id} did not match"
        );
    }

    let (status, error) = host
        .api(Method::POST, "/instances/events/redeliver", None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert!(
        error["message"].as_str().unwrap().contains("at least one"),
        "{error}"
    );
    let (status, error) = host
        .api(
            Method::POST,
            "/instances/events/redeliver?status=FAILED&pageSize=5",
            None,
        )
        .await;
    assert_eq!(
        (status, &error["field"]),
        (StatusCode::BAD_REQUEST, &Value::from("pageSize"))
    );
    let (status, _) = host
        .api(
            Method::POST,
            "/instances/events/redeliver?instanceId=9999",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let unauthenticated = reqwest::Client::new()
        .post(format!(
            "{}/instances/events/redeliver?status=FAILED",
            host.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);
}
