//! The instances API: authentication, validation that names the field,
//! the seeds' string forms, updates and deletion, the webhook address every
//! answer carries, and callback URLs the outbound policy would refuse.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::host::{webhook_path, HostOptions, TestHost};
use crate::support::receiver::Receiver;

/// A ConnectWise instance body: the two required keys plus `config`.
pub(crate) fn cw(config: Value) -> Value {
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

/// A host that may deliver to loopback, with one probe instance (events on,
/// delivering to the receiver returned): the receiver, the host and the
/// instance as created.
pub(crate) async fn probe_host() -> (Receiver, TestHost, Value) {
    probe_host_with(json!({})).await
}

/// [`probe_host`] with the probe instance's configuration extended by the
/// keys of `more` (a JSON object).
pub(crate) async fn probe_host_with(more: Value) -> (Receiver, TestHost, Value) {
    let receiver = Receiver::start().await;
    let host = TestHost::start(HostOptions {
        allow_private: Some("127.0.0.0/8".into()),
        ..HostOptions::default()
    })
    .await;
    let mut configuration = json!({
        "event.notification.enabled": true,
        "event.notification.callback.url": receiver.url()});
    for (key, value) in more.as_object().expect("an object of settings") {
        configuration[key] = value.clone();
    }
    let created = host
        .create_instance(json!({"element": {"key": "probe"}, "configuration": configuration}))
        .await;
    (receiver, host, created)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_instance_answer_carries_its_working_webhook_address() {
    let (_receiver, host, created) = probe_host().await;
    let id = created["id"].as_i64().unwrap();
    let expected = json!({
        "url": null,
        "path": webhook_path("probe", id),
        "headerPath": "/events/probe",
        "headers": {"Element-Instances": id.to_string()},
    });
    assert_eq!(created["webhook"], expected, "{created}");
    let (_, read) = host
        .api(Method::GET, &format!("/instances/{id}"), None)
        .await;
    assert_eq!(read["webhook"], expected, "{read}");
    let (_, listed) = host.api(Method::GET, "/instances", None).await;
    assert_eq!(listed[0]["webhook"], expected, "{listed}");

    // Both forms reach the instance, as given.
    let by_path = created["webhook"]["path"].as_str().unwrap();
    let (status, answer) = host.webhook(by_path, &[], b"{}".to_vec()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let by_header = created["webhook"]["headerPath"].as_str().unwrap();
    let header = ("Element-Instances", id.to_string());
    let (status, answer) = host.webhook(by_header, &[header], b"{}".to_vec()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(host.events(id).await.len(), 2);
}

/// The callback URLs the outbound policy refuses without resolving them.
const REFUSED_CALLBACKS: &[&str] = &[
    "http://127.0.0.1:9000/hook",
    "http://[::1]:9000/hook",
    "http://10.0.0.5/hook",
    "http://169.254.169.254/latest/meta-data",
    "http://localhost:9000/hook",
];

const CALLBACK_FIELD: &str = "configuration.event.notification.callback.url";

fn probe_with_callback(url: &str) -> Value {
    json!({"element": {"key": "probe"}, "configuration": {
        "event.notification.enabled": true, "event.notification.callback.url": url}})
}

fn assert_refused_callback(status: StatusCode, answer: &Value, url: &str) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{url} -> {answer}");
    assert_eq!(answer["field"], CALLBACK_FIELD, "{url} -> {answer}");
    let message = answer["message"].as_str().unwrap();
    assert!(
        message.contains("PLUGBOARD_OUTBOUND_ALLOW_PRIVATE"),
        "{url} -> {message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn callbacks_the_outbound_policy_refuses_are_a_400_on_create_and_patch() {
    let host = TestHost::start(HostOptions::default()).await;
    for url in REFUSED_CALLBACKS {
        let (status, answer) = host
            .api(Method::POST, "/instances", Some(probe_with_callback(url)))
            .await;
        assert_refused_callback(status, &answer, url);
    }
    let (_, list) = host.api(Method::GET, "/instances", None).await;
    assert_eq!(list, json!([]), "nothing was created");

    // Host names are judged when a delivery resolves them.
    let public = "https://app.example.com/hook";
    let created = host.create_instance(probe_with_callback(public)).await;
    let path = format!("/instances/{}", created["id"]);
    for url in REFUSED_CALLBACKS {
        let change = json!({"configuration": {"event.notification.callback.url": url}});
        let (status, answer) = host.api(Method::PATCH, &path, Some(change)).await;
        assert_refused_callback(status, &answer, url);
    }
    let (_, unchanged) = host.api(Method::GET, &path, None).await;
    assert_eq!(
        unchanged["configuration"]["event.notification.callback.url"],
        public
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn callbacks_the_operator_allows_are_accepted() {
    let host = TestHost::start(HostOptions {
        allow_private: Some("127.0.0.0/8, ::1".into()),
        ..HostOptions::default()
    })
    .await;
    for url in [
        "http://127.0.0.1:9000/hook",
        "http://[::1]:9000/hook",
        "http://localhost:9000/hook",
    ] {
        host.create_instance(probe_with_callback(url)).await;
    }
    let created = host
        .create_instance(probe_with_callback("https://app.example.com/hook"))
        .await;
    let path = format!("/instances/{}", created["id"]);
    let change =
        json!({"configuration": {"event.notification.callback.url": "http://127.0.0.1:1/x"}});
    let (status, answer) = host.api(Method::PATCH, &path, Some(change)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    // What the list does not name stays refused.
    let (status, answer) = host
        .api(
            Method::POST,
            "/instances",
            Some(probe_with_callback("http://10.0.0.5/hook")),
        )
        .await;
    assert_refused_callback(status, &answer, "http://10.0.0.5/hook");
}
