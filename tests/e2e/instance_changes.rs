//! Changing instances through the instance service: versions as `ETag`,
//! `If-Match` (412 when stale), concurrent changes that all land, changes
//! seen at once by ingress, keys nothing reads named in warnings, and the
//! input the API refuses (another element, oversized names and tag lists,
//! events of an instance that does not exist, non-canonical webhook ids).

use reqwest::header::{ETAG, IF_MATCH};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::instances_api::{cw, probe_host};
use crate::support::host::{webhook_path, HostOptions, TestHost};

/// A PATCH with an optional `If-Match`; status, `ETag` and body.
async fn patch(
    host: &TestHost,
    id: i64,
    if_match: Option<&str>,
    body: Value,
) -> (StatusCode, Option<String>, Value) {
    let mut req = reqwest::Client::new()
        .patch(format!("{}/instances/{id}", host.base))
        .header("authorization", &host.auth)
        .json(&body);
    if let Some(tag) = if_match {
        req = req.header(IF_MATCH, tag);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let etag = resp
        .headers()
        .get(ETAG)
        .map(|v| v.to_str().unwrap().to_string());
    (status, etag, resp.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn versions_are_etags_and_if_match_refuses_a_stale_change() {
    let host = TestHost::start(HostOptions::default()).await;
    let created = host.create_instance(cw(json!({}))).await;
    let id = created["id"].as_i64().unwrap();
    assert_eq!(created["version"], 1, "{created}");
    let resp = reqwest::Client::new()
        .get(format!("{}/instances/{id}", host.base))
        .header("authorization", &host.auth)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()[ETAG], "\"1\"");

    let (status, etag, body) = patch(&host, id, Some("\"1\""), json!({"name": "first"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (etag.as_deref(), &body["version"]),
        (Some("\"2\""), &json!(2))
    );

    // Someone read version 1; the instance is at 2 now.
    let (status, _, body) = patch(&host, id, Some("\"1\""), json!({"name": "lost"})).await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{body}");
    assert_eq!(body["code"], "precondition_failed", "{body}");
    let (_, read) = host
        .api(Method::GET, &format!("/instances/{id}"), None)
        .await;
    assert_eq!(read["name"], "first", "the stale change was not written");

    let (status, _, body) = patch(&host, id, Some("soon"), json!({"name": "x"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["field"], "If-Match", "{body}");
    let (status, etag, _) = patch(&host, id, Some("*"), json!({"name": "any"})).await;
    assert_eq!((status, etag.as_deref()), (StatusCode::OK, Some("\"3\"")));
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_changes_of_different_keys_all_land() {
    let host = std::sync::Arc::new(TestHost::start(HostOptions::default()).await);
    let created = host.create_instance(cw(json!({}))).await;
    let id = created["id"].as_i64().unwrap();
    let keys = [
        "helpdesk.connectwise.client.id",
        "helpdesk.connectwise.wsdl.path",
        "connectwise.webhook.verify.signature",
        "filter.response.nulls",
        "helpdesk.connectwise.public.key",
        "helpdesk.connectwise.private.key",
        "event.notification.format",
        "event.vendor.type",
    ];
    let values = [
        "client",
        "/v2017_2/apis/2.0/",
        "true",
        "true",
        "pub",
        "priv",
        "cloudevents",
        "webhooks",
    ];
    let tasks: Vec<_> = keys
        .iter()
        .zip(values)
        .map(|(key, value)| {
            let host = host.clone();
            let body = json!({"configuration": {*key: value}});
            tokio::spawn(async move { patch(&host, id, None, body).await })
        })
        .collect();
    for task in tasks {
        let (status, _, body) = task.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (_, read) = host
        .api(Method::GET, &format!("/instances/{id}"), None)
        .await;
    for key in keys {
        assert!(
            read["configuration"].get(key).is_some(),
            "{key} was lost: {read}"
        );
    }
    assert_eq!(read["version"], 1 + keys.len(), "{read}");
}

#[tokio::test(flavor = "multi_thread")]
async fn ingress_sees_a_change_as_soon_as_it_is_answered() {
    let (_receiver, host, created) = probe_host().await;
    let id = created["id"].as_i64().unwrap();
    let path = webhook_path("probe", id);
    let switch = format!("/instances/{id}/events/enabled");
    for round in 0..5 {
        let (status, answer) = host.webhook(&path, &[], b"{}".to_vec()).await;
        assert_eq!(status, StatusCode::OK, "round {round}: {answer}");
        let (_, off) = host
            .api(Method::PUT, &switch, Some(json!({"enabled": false})))
            .await;
        assert_eq!(off["eventsEnabled"], false);
        assert_eq!(
            off["configuration"]["event.notification.enabled"], false,
            "one source of truth: {off}"
        );
        let (status, answer) = host.webhook(&path, &[], b"{}".to_vec()).await;
        assert_eq!(status, StatusCode::CONFLICT, "round {round}: {answer}");
        let (_, on) = host
            .api(Method::PUT, &switch, Some(json!({"enabled": true})))
            .await;
        assert_eq!(on["eventsEnabled"], true);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_nothing_reads_are_kept_but_named_with_the_closest_known_key() {
    let host = TestHost::start(HostOptions::default()).await;
    let created = host
        .create_instance(cw(json!({
            "event.notification.enabeld": true,
            "helpdesk.connectwise.compnay": "acme",
        })))
        .await;
    let warnings = created["warnings"].as_array().expect("warnings").clone();
    let named: Vec<(&str, &str)> = warnings
        .iter()
        .map(|w| {
            (
                w["field"].as_str().unwrap(),
                w["suggestion"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        named,
        [
            (
                "configuration.event.notification.enabeld",
                "event.notification.enabled"
            ),
            (
                "configuration.helpdesk.connectwise.compnay",
                "helpdesk.connectwise.company"
            ),
        ],
        "{created}"
    );
    assert!(warnings[0]["message"]
        .as_str()
        .unwrap()
        .contains("did you mean event.notification.enabled?"));
    assert_eq!(
        created["configuration"]["event.notification.enabeld"], true,
        "kept"
    );

    // A change names only the keys it sets.
    let id = created["id"].as_i64().unwrap();
    let (status, _, changed) = patch(
        &host,
        id,
        None,
        json!({"configuration": {"event.vendor.typ": "polling", "event.vendor.type": "webhooks"}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(
        changed["warnings"].as_array().map(Vec::len),
        Some(1),
        "{changed}"
    );
    assert_eq!(changed["warnings"][0]["suggestion"], "event.vendor.type");
    let (_, _, clean) = patch(&host, id, None, json!({"name": "n"})).await;
    assert!(clean.get("warnings").is_none(), "{clean}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_connectwise_seed_request_and_its_documented_keys_get_no_warning() {
    let host = TestHost::start(HostOptions::default()).await;
    // The seed's example request, as documented.
    let seed = json!({
        "element": {"key": "connectwisecrmrest"},
        "configuration": {
            "helpdesk.connectwise.username": "xxxxxxxx",
            "helpdesk.connectwise.password": "xxxxxxxxxxxxxx",
            "helpdesk.connectwise.server.url": "http://api-cloudelements.connectwisedev.com",
            "helpdesk.connectwise.company": "cloudelements",
            "event.notification.enabled": true,
            "event.notification.callback.url": "https://mycoolapp.com/events",
            "event.notification.signature.key": "xxxxxxxxxxxxxxxxxxxxxxxxx"
        },
        "tags": ["Docs"],
        "name": "API Instance"
    });
    let created = host.create_instance(seed).await;
    assert!(created.get("warnings").is_none(), "{created}");
    // Every other key of the seed's parameter table.
    let table = cw(json!({
        "company": "cloudelements",
        "public.key": "user",
        "private.key": "password",
        "helpdesk.connectwise.wsdl.path": "/v2017_2/apis/2.0/",
        "filter.response.nulls": true,
    }));
    let created = host.create_instance(table).await;
    assert!(created.get("warnings").is_none(), "{created}");
    assert_eq!(
        created["configuration"]["private.key"], "********",
        "secret"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_element_names_and_tags_are_bounded() {
    let host = TestHost::start(HostOptions::default()).await;
    let created = host.create_instance(cw(json!({}))).await;
    let id = created["id"].as_i64().unwrap();
    let (status, _, answer) = patch(
        &host,
        id,
        None,
        json!({"element": {"key": "probe"}, "name": "x"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["field"], "element.key", "{answer}");
    let (status, _, answer) =
        patch(&host, id, None, json!({"element": {"key": "connectwise"}})).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the same element is no change: {answer}"
    );

    let long_name = "n".repeat(201);
    let many_tags: Vec<String> = (0..51).map(|i| format!("t{i}")).collect();
    let long_tag = vec!["ok".to_string(), "t".repeat(101)];
    for (change, field) in [
        (json!({"name": long_name}), "name"),
        (json!({"tags": many_tags}), "tags"),
        (json!({"tags": long_tag}), "tags[1]"),
    ] {
        let (status, _, answer) = patch(&host, id, None, change.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{change} -> {answer}");
        assert_eq!(answer["field"], field, "{answer}");
        let mut create = cw(json!({}));
        create
            .as_object_mut()
            .unwrap()
            .extend(change.as_object().unwrap().clone());
        let (status, answer) = host.api(Method::POST, "/instances", Some(create)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert_eq!(answer["field"], field, "{answer}");
    }
    let (status, _, _) = patch(
        &host,
        id,
        None,
        json!({"name": "n".repeat(200), "tags": vec!["t".repeat(100); 50]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "at the bounds");
}

#[tokio::test(flavor = "multi_thread")]
async fn events_of_an_instance_that_does_not_exist_are_a_404() {
    let host = TestHost::start(HostOptions::default()).await;
    for path in ["/instances/0/events", "/instances/999/events"] {
        let (status, answer) = host.api(Method::GET, path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {answer}");
    }
    let (status, answer) = host
        .api(Method::POST, "/instances/0/events/redeliver", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    let created = host.create_instance(cw(json!({}))).await;
    let id = created["id"].as_i64().unwrap();
    assert_eq!(host.events(id).await.len(), 0);
    host.api(Method::DELETE, &format!("/instances/{id}"), None)
        .await;
    let (status, _) = host
        .api(Method::GET, &format!("/instances/{id}/events"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread")]
async fn webhook_ids_are_decoded_strictly() {
    let (_receiver, host, created) = probe_host().await;
    assert_eq!(created["id"], 1);
    // " 1", "1\n", "01", "+1": not the text of an id.
    for encoded in ["IDE=", "MQo=", "MDE=", "KzE="] {
        let (status, answer) = host
            .webhook(&format!("/events/probe/{encoded}"), &[], b"{}".to_vec())
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{encoded}: {answer}");
    }
    for encoded in ["MQ==", "MQ"] {
        let (status, answer) = host
            .webhook(&format!("/events/probe/{encoded}"), &[], b"{}".to_vec())
            .await;
        assert_eq!(status, StatusCode::OK, "{encoded}: {answer}");
    }
}
