//! The instances API: authentication, validation that names the field,
//! the seeds' string forms, updates and deletion.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::host::{HostOptions, TestHost};

fn cw(config: Value) -> Value {
    let mut base = json!({
        "helpdesk.connectwise.server.url": "https://api-na.myconnectwise.net",
        "helpdesk.connectwise.company": "acme",
    });
    base.as_object_mut()
        .unwrap()
        .extend(config.as_object().unwrap().clone());
    json!({"element": {"key": "connectwise"}, "configuration": base})
}

#[tokio::test(flavor = "multi_thread")]
async fn management_calls_need_credentials() {
    let host = TestHost::start(HostOptions::default()).await;
    let client = reqwest::Client::new();
    for auth in [
        None,
        Some("User test-user-secret, Organization wrong"),
        Some("Bearer x"),
    ] {
        let mut req = client.get(format!("{}/instances", host.base));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        assert_eq!(req.send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    }
    let health = client
        .get(format!("{}/healthz", host.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let (status, plugins) = host.api(Method::GET, "/plugins", None).await;
    assert_eq!(status, StatusCode::OK);
    let keys: Vec<&str> = plugins
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["key"].as_str())
        .collect();
    assert_eq!(keys, ["connectwise", "probe"]);
    let cw = &plugins[0];
    assert!(
        cw["contentHash"].as_str().unwrap().len() == 64
            && cw["loadedAt"].is_string()
            && cw["lastError"].is_null()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_instances_get_a_400_naming_the_field() {
    let host = TestHost::start(HostOptions::default()).await;
    let cases = [
        (
            json!({"element": {"key": "nosuch"}, "configuration": {}}),
            "element.key",
        ),
        (json!({"configuration": {}}), "element.key"),
        (
            json!({"element": {"key": "connectwise"}, "configuration": {"helpdesk.connectwise.company": "acme"}}),
            "configuration.helpdesk.connectwise.server.url",
        ),
        (
            cw(json!({"event.notification.enabled": "true"})),
            "configuration.event.notification.callback.url",
        ),
        (
            cw(
                json!({"event.notification.enabled": true, "event.notification.callback.url": "ftp://x/y"}),
            ),
            "configuration.event.notification.callback.url",
        ),
        (
            cw(json!({"event.poller.refresh_interval": "0"})),
            "configuration.event.poller.refresh_interval",
        ),
        (
            cw(json!({"event.poller.refresh_interval": "often"})),
            "configuration.event.poller.refresh_interval",
        ),
        (
            cw(json!({"event.poller.configuration": "{\"tickets\": "})),
            "configuration.event.poller.configuration",
        ),
        (
            json!({"element": {"key": "probe"}, "configuration": {"event.notification.enabled": true,
            "event.vendor.type": "polling", "event.poller.refresh_interval": 1,
            "event.notification.callback.url": "https://a.example/x"}}),
            "configuration.event.vendor.type",
        ),
    ];
    for (body, field) in cases {
        let (status, answer) = host
            .api(Method::POST, "/instances", Some(body.clone()))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} -> {answer}");
        assert_eq!(answer["field"], field, "{body} -> {answer}");
    }
    let (status, answer) = host.api(Method::POST, "/instances", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    let (_, list) = host.api(Method::GET, "/instances", None).await;
    assert_eq!(list, json!([]), "nothing was created");
}

#[tokio::test(flavor = "multi_thread")]
async fn instances_accept_the_seed_forms_and_can_be_changed_and_deleted() {
    let host = TestHost::start(HostOptions::default()).await;
    let created = host
        .create_instance(cw(json!({
            "event.notification.enabled": "true",
            "event.vendor.type": "polling",
            "event.notification.callback.url": "https://app.example.com/hook",
            "event.poller.refresh_interval": "15",
            "event.poller.configuration": "{\"tickets\":{\"url\":\"/service/tickets\",\"idField\":\"id\"}}"
        })))
        .await;
    let id = created["id"].as_i64().unwrap();
    assert_eq!(created["eventsEnabled"], true);
    // The long element key of the seed's table is an alias.
    let alias = host.create_instance(json!({"element": {"key": "connectwisecrmrest"}, "configuration": {
        "helpdesk.connectwise.server.url": "https://x.myconnectwise.net", "helpdesk.connectwise.company": "b"}})).await;
    assert_eq!(alias["element"]["key"], "connectwise");

    let (status, patched) = host
        .api(
            Method::PATCH,
            &format!("/instances/{id}"),
            Some(json!({"name": "renamed", "tags": ["x"],
            "configuration": {"event.poller.refresh_interval": 5}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(
        (
            patched["name"].as_str(),
            patched["configuration"]["event.poller.refresh_interval"].as_i64()
        ),
        (Some("renamed"), Some(5))
    );
    let (status, bad) = host
        .api(
            Method::PATCH,
            &format!("/instances/{id}"),
            Some(json!({"configuration": {"event.notification.callback.url": null}})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    let (status, off) = host
        .api(
            Method::PUT,
            &format!("/instances/{id}/events/enabled"),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(off["eventsEnabled"], false);

    let (status, _) = host
        .api(Method::DELETE, &format!("/instances/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = host
        .api(Method::GET, &format!("/instances/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = host
        .api(Method::DELETE, &format!("/instances/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
