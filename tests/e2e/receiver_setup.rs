//! Setting up a receiver through the real binary: extra delivery headers
//! (`event.notification.headers`) reach the receiver on every notification
//! while their values stay secret in the API, and a test notification sent
//! on request arrives signed, marked as a test, and is neither stored nor
//! retried, the answer saying what the receiver said.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::elements_signature;
use crate::support::host::{HostOptions, TestHost};
use crate::support::receiver::{Answer, Receiver};

const HEADERS: &str = "event.notification.headers";

async fn host() -> TestHost {
    TestHost::start(HostOptions {
        allow_private: Some("127.0.0.0/8".into()),
        ..HostOptions::default()
    })
    .await
}

/// Asks for a test notification to instance `id`.
async fn send_test(host: &TestHost, id: i64) -> (StatusCode, serde_json::Value) {
    host.api(
        Method::POST,
        &format!("/instances/{id}/test-notification"),
        None,
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_test_notification_arrives_signed_with_the_extra_headers_and_is_not_stored() {
    let receiver = Receiver::start().await;
    let host = host().await;
    let created = host
        .create_instance(json!({
            "element": {"key": "probe"},
            "name": "receiver setup",
            "configuration": {
                "event.notification.enabled": true,
                "event.notification.callback.url": receiver.url(),
                "event.notification.signature.key": "test-key",
                HEADERS: {"Authorization": "Bearer s3cret-token", "X-Tenant": "acme"},
            }
        }))
        .await;
    let id = created["id"].as_i64().unwrap();
    // The header names are shown, their values never.
    assert_eq!(
        created["configuration"][HEADERS],
        json!({"Authorization": "********", "X-Tenant": "********"})
    );
    let (_, shown) = host
        .api(Method::GET, &format!("/instances/{id}"), None)
        .await;
    assert!(!shown.to_string().contains("s3cret-token"), "{shown}");

    receiver.script([Answer::Body(202, b"queued by the receiver".to_vec())]);
    let (status, answer) = send_test(&host, id).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["delivered"], true);
    assert_eq!(answer["statusCode"], 202);
    assert_eq!(answer["responseBody"], "queued by the receiver");
    assert_eq!(answer["url"], receiver.url());
    let got = receiver.received();
    assert_eq!(got.len(), 1);
    let test = &got[0];
    let body = test.json();
    assert_eq!(body["message"]["test"], true);
    assert_eq!(body["message"]["eventId"], answer["eventId"]);
    assert_eq!(body["message"]["events"][0]["objectType"], "plugboard.test");
    assert_eq!(
        test.header("webhook-id"),
        answer["eventId"].as_str().unwrap()
    );
    assert_eq!(
        test.header("elements-webhook-signature"),
        elements_signature("test-key", &test.body)
    );
    assert_eq!(test.header("authorization"), "Bearer s3cret-token");
    assert_eq!(test.header("x-tenant"), "acme");
    // Not an event: nothing in the log.
    assert!(host.events(id).await.is_empty());

    // A real notification carries the headers too.
    host.probe_event(id, "obj-1").await;
    crate::support::wait_until(
        "the delivery",
        std::time::Duration::from_secs(10),
        || async { (receiver.received().len() == 2).then_some(()) },
    )
    .await;
    let real = &receiver.received()[1];
    assert_eq!(real.header("authorization"), "Bearer s3cret-token");
    assert!(real.json()["message"].get("test").is_none());

    // A refusing receiver: reported, not retried.
    receiver.script([Answer::Body(401, b"bad signature".to_vec())]);
    let (status, answer) = send_test(&host, id).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["delivered"], false);
    assert_eq!(answer["statusCode"], 401);
    assert_eq!(answer["error"], "receiver answered 401");
    assert_eq!(answer["responseBody"], "bad signature");
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(
        receiver.received().len(),
        3,
        "a test notification is not retried"
    );
    assert_eq!(host.events(id).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_headers_and_a_missing_callback_are_refused_by_name() {
    let host = host().await;
    for (headers, says) in [
        (
            json!({"Webhook-Signature": "v1,forged"}),
            "set by plugboard",
        ),
        (
            json!({"X-Key": "hidden-value\nInjected: 1"}),
            "not allowed in a header",
        ),
        (json!("not an object"), "expected an object"),
    ] {
        let (status, err) = host
            .api(
                Method::POST,
                "/instances",
                Some(json!({"element": {"key": "probe"}, "configuration": {HEADERS: headers}})),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
        assert_eq!(err["field"], format!("configuration.{HEADERS}"), "{err}");
        assert!(err["message"].as_str().unwrap().contains(says), "{err}");
        assert!(!err.to_string().contains("hidden-value"), "{err}");
    }

    let id = host
        .create_instance(json!({"element": {"key": "probe"}, "configuration": {}}))
        .await["id"]
        .as_i64()
        .unwrap();
    let (status, err) = send_test(&host, id).await;
    assert_eq!(status, StatusCode::CONFLICT, "{err}");
    assert_eq!(err["code"], "no_callback_url");
    let (status, _) = host
        .api(Method::POST, "/instances/999999/test-notification", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
