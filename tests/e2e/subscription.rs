//! Subscribing at the vendor: a host with a public URL registers a
//! ConnectWise instance's inbound URL with a fake ConnectWise callbacks API
//! (HTTPS on loopback, the real protocol) when the instance is created,
//! removes and re-adds the callbacks as events are switched off and on or
//! the configuration changes, removes them on deletion, and refuses to
//! create an instance the vendor refuses.

use base64::Engine as _;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::connectwise_callbacks::ConnectWiseCallbacks;
use crate::support::host::{HostOptions, TestHost};
use crate::support::tls::TestCa;

const PUBLIC_URL: &str = "https://hooks.example.com/plugboard";

/// A host trusting the test CA, allowed to reach the fake on loopback,
/// with `public_url`.
async fn host_for(cw: &ConnectWiseCallbacks, ca: &TestCa, public_url: Option<&str>) -> TestHost {
    TestHost::start(HostOptions {
        allow_private: Some("127.0.0.0/8, ::1".into()),
        ca_file: Some(ca.ca_file.clone()),
        fetch_ports: vec![cw.addr.port()],
        public_url: public_url.map(str::to_owned),
        ..HostOptions::default()
    })
    .await
}

/// A ConnectWise instance of the fake with events on in webhooks mode.
fn instance(cw: &ConnectWiseCallbacks) -> Value {
    let mut configuration = cw.credentials();
    let extra = json!({
        "event.notification.enabled": "true",
        "event.vendor.type": "webhooks",
        "event.notification.callback.url": "https://app.example.com/hooks",
        "event.notification.signature.key": "callback-secret",
    });
    for (k, v) in extra.as_object().unwrap() {
        configuration[k] = v.clone();
    }
    json!({"element": {"key": "connectwise"}, "name": "ACME", "configuration": configuration})
}

/// The inbound URL of ConnectWise instance `id` behind [`PUBLIC_URL`].
fn inbound_url(id: i64) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(id.to_string());
    format!("{PUBLIC_URL}/events/connectwise/{encoded}")
}

/// One `(type, url)` registration per default record type.
fn default_registrations(url: &str) -> Vec<(String, String)> {
    ["ticket", "company", "contact"]
        .iter()
        .map(|t| ((*t).to_owned(), url.to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn callbacks_follow_the_instance_from_creation_to_deletion() {
    let ca = TestCa::new();
    let cw = ConnectWiseCallbacks::start(&ca).await;
    let host = host_for(&cw, &ca, Some(PUBLIC_URL)).await;

    let created = host.create_instance(instance(&cw)).await;
    let id = created["id"].as_i64().unwrap();
    let url = inbound_url(id);
    assert_eq!(created["webhook"]["url"], url, "{created}");
    assert_eq!(created["subscription"]["status"], "subscribed", "{created}");
    assert_eq!(created["subscription"]["callbackUrl"], url);
    assert_eq!(cw.registered(), default_registrations(&url));
    for entry in cw.entries() {
        assert_eq!(entry["objectId"], 1);
        assert_eq!(entry["level"], "owner");
    }
    let (status, read) = host
        .api(Method::GET, &format!("/instances/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read["subscription"]["status"], "subscribed");
    let (_, listed) = host.api(Method::GET, "/instances", None).await;
    assert_eq!(
        listed[0]["subscription"]["status"], "subscribed",
        "{listed}"
    );

    // Events off: the callbacks go; on: they come back.
    let path = format!("/instances/{id}/events/enabled");
    let switch = |on: bool| host.api(Method::PUT, &path, Some(json!({"enabled": on})));
    let (status, off) = switch(false).await;
    assert_eq!(status, StatusCode::OK, "{off}");
    assert_eq!(off["subscription"]["status"], "not_subscribed", "{off}");
    assert!(cw.entries().is_empty(), "{:?}", cw.entries());
    let (status, on) = switch(true).await;
    assert_eq!(status, StatusCode::OK, "{on}");
    assert_eq!(on["subscription"]["status"], "subscribed", "{on}");
    assert_eq!(cw.registered(), default_registrations(&url));

    // A configuration change the element reads: old callbacks out, new in.
    let before: Vec<Value> = cw.entries().iter().map(|e| e["id"].clone()).collect();
    let (status, patched) = host
        .api(
            Method::PATCH,
            &format!("/instances/{id}"),
            Some(json!({"configuration": {"connectwise.callback.types": "ticket"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["subscription"]["status"], "subscribed", "{patched}");
    assert_eq!(cw.registered(), [("ticket".to_owned(), url.clone())]);
    let deleted: Vec<Value> = cw.deletes().iter().map(|d| json!(d)).collect();
    for old in &before {
        assert!(deleted.contains(old), "{old} not deleted: {deleted:?}");
    }

    // Running it again replaces the registration without a duplicate.
    let (status, again) = host
        .api(Method::POST, &format!("/instances/{id}/subscription"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["status"], "subscribed");
    assert_eq!(cw.registered(), [("ticket".to_owned(), url.clone())]);

    // Deleting removes it.
    let (status, gone) = host
        .api(Method::DELETE, &format!("/instances/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{gone}");
    assert_eq!(gone, json!({"unsubscribed": true}));
    assert!(cw.entries().is_empty(), "{:?}", cw.entries());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_vendor_refusal_answers_a_clear_error_and_leaves_no_instance() {
    let ca = TestCa::new();
    let cw = ConnectWiseCallbacks::start(&ca).await;
    let host = host_for(&cw, &ca, Some(PUBLIC_URL)).await;
    cw.refuse_registrations(true);

    let (status, refused) = host
        .api(Method::POST, "/instances", Some(instance(&cw)))
        .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{refused}");
    assert_eq!(refused["code"], "vendor_subscription_failed");
    let message = refused["message"].as_str().unwrap();
    for expected in [
        "no instance was created",
        "status 400",
        "InvalidObject: callbackEntry object is invalid",
        "is not reachable",
    ] {
        assert!(message.contains(expected), "{expected}: {message}");
    }
    let (_, listed) = host.api(Method::GET, "/instances", None).await;
    assert_eq!(listed, json!([]));
    assert!(cw.entries().is_empty());

    // The vendor accepts again: a re-created instance is subscribed.
    cw.refuse_registrations(false);
    let created = host.create_instance(instance(&cw)).await;
    assert_eq!(created["subscription"]["status"], "subscribed", "{created}");
    assert_eq!(cw.entries().len(), 3);

    // A refusal on a change: the change stands, the subscription is failed.
    let id = created["id"].as_i64().unwrap();
    let path = format!("/instances/{id}/events/enabled");
    let switch = |on: bool| host.api(Method::PUT, &path, Some(json!({"enabled": on})));
    assert_eq!(switch(false).await.0, StatusCode::OK);
    cw.refuse_registrations(true);
    let (status, on) = switch(true).await;
    assert_eq!(status, StatusCode::OK, "{on}");
    assert_eq!(on["eventsEnabled"], true);
    assert_eq!(on["subscription"]["status"], "failed", "{on}");
    assert!(
        on["subscription"]["message"]
            .as_str()
            .unwrap()
            .contains("status 400"),
        "{on}"
    );
    assert!(cw.entries().is_empty());
    let resubscribe = format!("/instances/{id}/subscription");
    let (status, again) = host.api(Method::POST, &resubscribe, None).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{again}");
    assert_eq!(again["code"], "vendor_subscription_failed");
    cw.refuse_registrations(false);
    let (status, again) = host.api(Method::POST, &resubscribe, None).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["status"], "subscribed");
    assert_eq!(cw.registered(), default_registrations(&inbound_url(id)));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_unsubscription_still_deletes_and_names_what_was_left() {
    let ca = TestCa::new();
    let cw = ConnectWiseCallbacks::start(&ca).await;
    let host = host_for(&cw, &ca, Some(PUBLIC_URL)).await;
    let id = host.create_instance(instance(&cw)).await["id"]
        .as_i64()
        .unwrap();
    let ids: Vec<i64> = cw
        .entries()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    cw.fail_removals(true);

    let (status, gone) = host
        .api(Method::DELETE, &format!("/instances/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{gone}");
    assert_eq!(gone["unsubscribed"], false, "{gone}");
    let left = gone["leftAtVendor"].as_str().unwrap();
    for id in ids {
        assert!(
            left.contains(&format!("callback {id} with status 500")),
            "{left}"
        );
    }
    let (status, _) = host
        .api(Method::GET, &format!("/instances/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(cw.entries().len(), 3, "still registered at the vendor");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_public_url_or_support_nothing_is_registered() {
    let ca = TestCa::new();
    let cw = ConnectWiseCallbacks::start(&ca).await;
    let host = host_for(&cw, &ca, None).await;
    let created = host.create_instance(instance(&cw)).await;
    let id = created["id"].as_i64().unwrap();
    assert_eq!(created["webhook"]["url"], Value::Null);
    assert_eq!(created["subscription"]["status"], "not_subscribed");
    assert!(created["subscription"]["message"]
        .as_str()
        .unwrap()
        .contains("public_url"));
    assert!(cw.entries().is_empty());
    let (status, answer) = host
        .api(Method::POST, &format!("/instances/{id}/subscription"), None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(answer["code"], "subscription_not_possible");
    assert!(answer["message"]
        .as_str()
        .unwrap()
        .contains("PLUGBOARD_PUBLIC_URL"));

    // An element without subscription keeps working, shown as unsupported.
    let host = host_for(&cw, &ca, Some(PUBLIC_URL)).await;
    let probe = host
        .create_instance(json!({"element": {"key": "probe"}, "configuration": {
            "event.notification.enabled": "true",
            "event.vendor.type": "webhooks",
            "event.notification.callback.url": "https://app.example.com/hooks",
        }}))
        .await;
    assert_eq!(probe["subscription"]["status"], "unsupported", "{probe}");
    let (status, answer) = host
        .api(
            Method::POST,
            &format!("/instances/{}/subscription", probe["id"]),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert!(cw.entries().is_empty());
}
