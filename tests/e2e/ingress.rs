//! The seed scenario end to end: a ConnectWise instance is created through
//! the API, a fake ConnectWise posts signed callbacks over loopback, and
//! plugboard verifies, normalizes and durably stores them — or rejects them
//! with the right status and stores nothing.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::connectwise::FakeConnectWise;
use crate::support::host::{webhook_path, HostOptions, TestHost};
use crate::support::tls::TestCa;

/// A host that trusts the test CA and may reach the loopback key server.
pub(crate) async fn host_for(cw: &FakeConnectWise, ca: &TestCa, allow_loopback: bool) -> TestHost {
    TestHost::start(HostOptions {
        allow_private: allow_loopback.then(|| "127.0.0.0/8, ::1".to_string()),
        ca_file: Some(ca.ca_file.clone()),
        fetch_ports: vec![cw.addr.port()],
        max_body_bytes: Some(64 * 1024),
        ..HostOptions::default()
    })
    .await
}

pub(crate) fn cw_instance(cw: &FakeConnectWise) -> Value {
    json!({
        "element": {"key": "connectwise"},
        "name": "ACME helpdesk",
        "tags": ["acme", "helpdesk"],
        "configuration": {
            "helpdesk.connectwise.server.url": cw.server_url(),
            "helpdesk.connectwise.company": "acme",
            "helpdesk.connectwise.public.key": "public-123",
            "helpdesk.connectwise.private.key": "private-456",
            "event.notification.enabled": "true",
            "event.vendor.type": "webhooks",
            "event.notification.callback.url": "https://app.example.com/plugboard",
            "event.notification.signature.key": "callback-secret"
        }
    })
}

/// A fake ConnectWise, a host (allowed to reach loopback or not) and an
/// instance of it, with the CA they trust, kept alive with them.
async fn connectwise_instance(allow_loopback: bool) -> (TestCa, FakeConnectWise, TestHost, i64) {
    let ca = TestCa::new();
    let cw = FakeConnectWise::start(&ca).await;
    let host = host_for(&cw, &ca, allow_loopback).await;
    let id = host.create_instance(cw_instance(&cw)).await["id"]
        .as_i64()
        .unwrap();
    (ca, cw, host, id)
}

async fn signed_post(
    host: &TestHost,
    cw: &FakeConnectWise,
    path: &str,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let sig = cw.sign(&body);
    host.webhook(path, &[("x-content-signature", sig)], body)
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn signed_callbacks_are_verified_normalized_and_stored() {
    let ca = TestCa::new();
    let cw = FakeConnectWise::start(&ca).await;
    let host = host_for(&cw, &ca, true).await;
    assert_webhook_flow(&host, &cw).await;
}

/// The seed scenario on `host`, whatever build of the ConnectWise element
/// serves it: an instance is created, signed callbacks of three kinds (by
/// instance path and by `Element-Instances` header) are accepted and stored
/// as the right normalized events, with their notifications.
pub(crate) async fn assert_webhook_flow(host: &TestHost, cw: &FakeConnectWise) {
    let created = host.create_instance(cw_instance(cw)).await;
    let id = created["id"].as_i64().unwrap();
    assert!(
        created["token"].as_str().is_some_and(|t| t.len() >= 32),
        "{created}"
    );
    assert_eq!(created["element"]["key"], "connectwise");
    assert_eq!(created["tags"], json!(["acme", "helpdesk"]));
    let config = &created["configuration"];
    assert_eq!(config["helpdesk.connectwise.private.key"], "********");
    assert_eq!(config["event.notification.signature.key"], "********");
    assert_eq!(config["helpdesk.connectwise.company"], "acme");
    assert!(!created.to_string().contains("private-456"));

    let cases = [
        ("added", "ticket", 101, "CREATED"),
        ("updated", "company", 202, "UPDATED"),
        ("deleted", "contact", 303, "DELETED"),
    ];
    for (n, (action, kind, object_id, _)) in cases.iter().enumerate() {
        let body = cw.callback(&format!("msg-{n}"), action, kind, *object_id, &cw.key_url());
        let (status, answer) = if n % 2 == 0 {
            signed_post(host, cw, &webhook_path("connectwise", id), body).await
        } else {
            let sig = cw.sign(&body);
            host.webhook(
                "/events/connectwise",
                &[
                    ("x-content-signature", sig),
                    ("element-instances", id.to_string()),
                ],
                body,
            )
            .await
        };
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["eventIds"].as_array().unwrap().len(), 1, "{answer}");
    }
    assert_eq!(
        cw.key_fetches(),
        1,
        "the signing key is fetched once and cached"
    );

    let mut events = host.events(id).await;
    events.reverse(); // oldest first
    assert_eq!(events.len(), 3);
    for (entry, (_, kind, object_id, event_type)) in events.iter().zip(cases) {
        assert_eq!(entry["instanceId"], id);
        assert_eq!(entry["elementKey"], "connectwise");
        let event = &entry["events"][0];
        assert_eq!(event["eventType"], event_type);
        assert_eq!(event["objectType"], kind);
        assert_eq!(event["objectId"], object_id.to_string());
        assert_eq!(event["elementKey"], "connectwise");
        assert_eq!(event["date"], "2024-05-01T12:34:56Z");
        let (status, one) = host
            .api(
                Method::GET,
                &format!("/instances/events/{}", entry["eventId"].as_str().unwrap()),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let message = &one["notification"]["message"];
        assert_eq!(message["eventId"], entry["eventId"]);
        assert_eq!(message["instanceName"], "ACME helpdesk");
        assert_eq!(message["instanceTags"], json!(["acme", "helpdesk"]));
        // The raw body rides along, with ConnectWise's Entity decoded.
        assert_eq!(message["raw"]["Entity"]["id"], object_id);
        assert_eq!(message["raw"]["Type"], kind);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_webhooks_are_rejected_and_nothing_is_stored() {
    let (_ca, cw, host, id) = connectwise_instance(true).await;
    let path = webhook_path("connectwise", id);

    // Missing signature: refused before any key fetch.
    let body = cw.callback("m-1", "added", "ticket", 1, &cw.key_url());
    let (status, answer) = host.webhook(&path, &[], body.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    assert_eq!(cw.key_fetches(), 0);

    // Tampered body: signature of the original, different bytes.
    let sig = cw.sign(&body);
    let tampered = String::from_utf8(body.clone())
        .unwrap()
        .replace("\"ID\":1", "\"ID\":2")
        .into_bytes();
    assert_ne!(tampered, body);
    let (status, answer) = host
        .webhook(&path, &[("x-content-signature", sig)], tampered)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("does not match"),
        "{answer}"
    );

    // Key URL on a host that is neither a ConnectWise cloud host nor the instance's server.
    let foreign = cw.callback(
        "m-2",
        "added",
        "ticket",
        1,
        "https://attacker.example.net/key",
    );
    let (status, answer) = signed_post(&host, &cw, &path, foreign).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("not in the element's allowed hosts"),
        "{answer}"
    );

    // Malformed JSON (signed, so only the payload is wrong).
    let (status, answer) = signed_post(&host, &cw, &path, b"{not json".to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");

    // Oversized body: 413 before the plugin sees it.
    let big = vec![b' '; 65 * 1024];
    let (status, _) = signed_post(&host, &cw, &path, big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    // Unknown instance, unknown element, undecodable instance id.
    let ok_body = cw.callback("m-3", "added", "ticket", 1, &cw.key_url());
    let (status, _) = signed_post(
        &host,
        &cw,
        &webhook_path("connectwise", id + 1000),
        ok_body.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = signed_post(
        &host,
        &cw,
        &webhook_path("nosuchelement", id),
        ok_body.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = signed_post(&host, &cw, "/events/connectwise/!!!", ok_body.clone()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Events disabled: a documented 409, nothing stored.
    let (status, _) = host
        .api(
            Method::PUT,
            &format!("/instances/{id}/events/enabled"),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, answer) = signed_post(&host, &cw, &path, ok_body).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(answer["code"], "events_disabled");

    assert!(host.events(id).await.is_empty(), "nothing may be stored");
}

#[tokio::test(flavor = "multi_thread")]
async fn key_url_resolving_to_a_private_address_is_refused() {
    // Default outbound policy: no private addresses allowed.
    let (_ca, cw, host, id) = connectwise_instance(false).await;
    let body = cw.callback("m-1", "added", "ticket", 1, &cw.key_url());
    let (status, answer) = signed_post(&host, &cw, &webhook_path("connectwise", id), body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    let message = answer["message"].as_str().unwrap();
    assert!(message.contains("of localhost is private"), "{message}");
    assert_eq!(cw.key_fetches(), 0, "no connection was made");
    assert!(host.events(id).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn signing_keys_come_only_from_exact_cloud_hosts_or_the_configured_server() {
    let (_ca, cw, host, id) = connectwise_instance(true).await;
    let path = webhook_path("connectwise", id);
    // Subdomains of ConnectWise's domains that are not its documented cloud
    // API hosts, nor this instance's server, never serve a signing key.
    for (n, key_host) in [
        "evil.myconnectwise.net",
        "x.api-na.myconnectwise.net",
        "myconnectwise.net",
        "staging.connectwisedev.com",
        "api-cloudelements.connectwisedev.com",
        "api-na.myconnectwise.net.attacker.example",
    ]
    .into_iter()
    .enumerate()
    {
        let key_url =
            format!("https://{key_host}/v4_6_release/system/callbackkey/index.rails?id=1");
        let body = cw.callback(&format!("m-{n}"), "added", "ticket", 1, &key_url);
        let (status, answer) = signed_post(&host, &cw, &path, body).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{key_host}: {answer}");
        let message = answer["message"].as_str().unwrap();
        assert!(
            message.contains("not in the element's allowed hosts"),
            "{key_host}: {message}"
        );
    }
    assert_eq!(cw.key_fetches(), 0);
    // The instance's own configured server does.
    let body = cw.callback("m-own", "added", "ticket", 1, &cw.key_url());
    let (status, answer) = signed_post(&host, &cw, &path, body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(cw.key_fetches(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_repeated_message_id_is_stored_once() {
    let ca = TestCa::new();
    let cw = FakeConnectWise::start(&ca).await;
    let host = host_for(&cw, &ca, true).await;
    let id = host.create_instance(cw_instance(&cw)).await["id"]
        .as_i64()
        .unwrap();
    let body = cw.callback("same-message", "updated", "ticket", 7, &cw.key_url());
    let path = webhook_path("connectwise", id);
    let (s1, a1) = signed_post(&host, &cw, &path, body.clone()).await;
    let (s2, a2) = signed_post(&host, &cw, &path, body).await;
    assert_eq!((s1, s2), (StatusCode::OK, StatusCode::OK));
    assert_eq!(a1["duplicate"], false);
    assert_eq!(a2["duplicate"], true);
    assert_eq!(a1["receiptId"], a2["receiptId"]);
    assert_eq!(host.events(id).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn instances_and_events_survive_a_restart() {
    let ca = TestCa::new();
    let cw = FakeConnectWise::start(&ca).await;
    let mut host = host_for(&cw, &ca, true).await;
    let id = host.create_instance(cw_instance(&cw)).await["id"]
        .as_i64()
        .unwrap();
    let body = cw.callback("m-1", "added", "ticket", 9, &cw.key_url());
    let (status, _) = signed_post(&host, &cw, &webhook_path("connectwise", id), body).await;
    assert_eq!(status, StatusCode::OK);

    host.restart().await;
    let (status, instance) = host
        .api(Method::GET, &format!("/instances/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{instance}");
    assert_eq!(instance["name"], "ACME helpdesk");
    assert!(
        instance.get("token").is_none(),
        "the token is shown only at creation"
    );
    let events = host.events(id).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["events"][0]["objectId"], "9");
    // And the restarted host keeps accepting.
    let body = cw.callback("m-2", "updated", "ticket", 9, &cw.key_url());
    let (status, _) = signed_post(&host, &cw, &webhook_path("connectwise", id), body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(host.events(id).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_plugin_keeps_the_raw_receipt_and_answers_5xx() {
    let host = TestHost::start(HostOptions {
        allow_private: Some("127.0.0.0/8".into()),
        call_timeout_ms: Some(200),
        ..HostOptions::default()
    })
    .await;
    let id = host
        .create_instance(json!({"element": {"key": "probe"}, "configuration": {
            "event.notification.enabled": true, "event.notification.callback.url": "http://127.0.0.1:9/x"}}))
        .await["id"]
        .as_i64()
        .unwrap();
    let path = webhook_path("probe", id);
    for (action, status) in [
        ("trap", StatusCode::INTERNAL_SERVER_ERROR),
        ("loop", StatusCode::SERVICE_UNAVAILABLE),
    ] {
        let (got, answer) = host
            .webhook(
                &path,
                &[("x-probe-action", action.to_string())],
                b"{\"a\":1}".to_vec(),
            )
            .await;
        assert_eq!(got, status, "{action}: {answer}");
    }
    // Kept in the database for reprocessing, read as an operator would.
    let failed = failed_receipts(&host, id);
    assert_eq!(failed.len(), 2);
    assert!(failed.iter().all(|(body, _)| body == b"{\"a\":1}"));
    assert!(failed.iter().any(|(_, e)| e.contains("CPU deadline")));
    let (got, _) = host.webhook(&path, &[], b"{\"a\":2}".to_vec()).await;
    assert_eq!(got, StatusCode::OK, "the plugin keeps serving");
    assert_eq!(host.events(id).await.len(), 1);
}

/// The failed receipts of an instance (body and error), read straight from
/// the store's database: the SQLite file, or the PostgreSQL database with
/// `psql` when the tests run on PostgreSQL.
fn failed_receipts(host: &TestHost, id: i64) -> Vec<(Vec<u8>, String)> {
    if let Some(url) = crate::support::test_database(host.data.path()) {
        let name = url
            .trim_start_matches("postgres:///")
            .split('?')
            .next()
            .unwrap();
        // Both columns as one-line base64: an error may span lines (a
        // guest's panic message does).
        let text = throwaway_postgres::shared().psql(
            name,
            &format!(
                "SELECT translate(encode(body, 'base64'), E'\\n', ''), \
                 translate(encode(convert_to(error, 'UTF8'), 'base64'), E'\\n', '') \
                 FROM receipts WHERE instance_id = {id} AND status = 'failed'"
            ),
        );
        let decode = |text: &str| {
            base64::Engine::decode(&base64::engine::general_purpose::STANDARD, text.trim()).unwrap()
        };
        return text
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| {
                let (body, error) = line.split_once('|').unwrap();
                (decode(body), String::from_utf8(decode(error)).unwrap())
            })
            .collect();
    }
    let db = rusqlite::Connection::open_with_flags(
        host.data.path().join("plugboard.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let mut query = db
        .prepare("SELECT body, error FROM receipts WHERE instance_id = ?1 AND status = 'failed'")
        .unwrap();
    let rows = query
        .query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    rows
}

/// An element sees the headers the vendor sent: the `x-request-id`
/// plugboard adds to a request without one is answered and logged, but not
/// handed to the element (or kept in the receipt as if the vendor had sent
/// it); a vendor's own request id is.
#[tokio::test(flavor = "multi_thread")]
async fn an_element_sees_a_request_id_only_when_the_vendor_sent_one() {
    let (_receiver, host, created) = crate::instances_api::probe_host().await;
    let id = created["id"].as_i64().unwrap();
    for sent in [None, Some("vendor-req-7")] {
        let mut headers = vec![("x-probe-action", "remember".to_string())];
        headers.extend(sent.map(|id| ("x-request-id", id.to_string())));
        let response = host
            .post_webhook(&webhook_path("probe", id), &headers, b"{}".to_vec())
            .await;
        assert_eq!(response.status(), StatusCode::OK, "{sent:?}");
        let answered = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let answer: Value = response.json().await.unwrap();
        let event = host.event(answer["eventIds"][0].as_str().unwrap()).await;
        let seen: Vec<&str> = event["notification"]["message"]["raw"]["headers"]
            .as_array()
            .unwrap_or_else(|| panic!("{event}"))
            .iter()
            .map(|name| name.as_str().unwrap())
            .collect();
        assert!(seen.contains(&"x-probe-action"), "{seen:?}");
        match sent {
            None => {
                assert!(!seen.contains(&"x-request-id"), "{seen:?}");
                let made = uuid::Uuid::parse_str(&answered).unwrap();
                assert_eq!(made.get_version_num(), 7, "{answered}");
            }
            Some(sent) => {
                assert!(seen.contains(&"x-request-id"), "{seen:?}");
                assert_eq!(answered, sent);
            }
        }
    }
}
