//! Secrets stay secret: with debug logging in JSON, a scenario that uses
//! every kind of secret (management credentials, notification signature
//! keys old and new, the vendor's private key, the vendor's signing key and
//! the instance token) must not leave any of them in the log or in an API
//! response (the token only in the answer that creates the instance). And an
//! element, untrusted code, is given its own configuration keys but never
//! plugboard's `event.*` settings, which hold the notification signature key
//! and the secret values of `event.notification.headers`.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::connectwise::FakeConnectWise;
use crate::support::host::webhook_path;
use crate::support::process::{Binary, AUTH};
use crate::support::receiver::Receiver;
use crate::support::tls::TestCa;
use crate::support::{elements_signature, plugin_bytes, wait_until};

const SIGNATURE_KEY: &str = "sig-key-secret-5e1d9c";
const ROTATED_KEY: &str = "sig-key-rotated-secret-0b7a44";
const PRIVATE_KEY: &str = "cw-private-key-secret-83f2e6";
const PUBLIC_KEY: &str = "cw-public-member-4410";

#[tokio::test(flavor = "multi_thread")]
async fn no_secret_appears_in_logs_or_api_responses() {
    let ca = TestCa::new();
    let cw = FakeConnectWise::start(&ca).await;
    let receiver = Receiver::start().await;
    let (plugins, data) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    std::fs::write(
        plugins.path().join("connectwise.wasm"),
        plugin_bytes("connectwise"),
    )
    .unwrap();
    let process = Binary::serve(plugins.path(), data.path())
        .env("RUST_LOG", "debug")
        .env("PLUGBOARD_LOG_FORMAT", "json")
        .env("PLUGBOARD_OUTBOUND_ALLOW_PRIVATE", "127.0.0.0/8")
        .env("PLUGBOARD_OUTBOUND_CA_FILE", &ca.ca_file)
        .env("PLUGBOARD_PLUGIN_FETCH_PORTS", cw.addr.port().to_string())
        .spawn();
    process.wait_ready().await;
    let (base, client) = (process.base(), reqwest::Client::new());
    let mut responses = Vec::<String>::new();

    let created: Value = client
        .post(format!("{base}/instances"))
        .header("authorization", AUTH)
        .json(
            &json!({"element": {"key": "connectwise"}, "name": "secret test", "configuration": {
            "helpdesk.connectwise.server.url": cw.server_url(),
            "helpdesk.connectwise.company": "acme",
            "helpdesk.connectwise.username": PUBLIC_KEY,
            "helpdesk.connectwise.password": PRIVATE_KEY,
            "event.notification.enabled": true,
            "event.notification.callback.url": receiver.url(),
            "event.notification.signature.key": SIGNATURE_KEY}}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_i64().unwrap();
    let token = created["token"].as_str().unwrap().to_string();
    let path = format!("{base}{}", webhook_path("connectwise", id));

    let body = cw.callback("secret-1", "added", "ticket", 7, &cw.key_url());
    let signed = client
        .post(&path)
        .header("x-content-signature", cw.sign(&body))
        .body(body.clone());
    let accepted = signed.send().await.unwrap();
    assert_eq!(accepted.status(), 200);
    responses.push(accepted.text().await.unwrap());
    let forged = client
        .post(&path)
        .header("x-content-signature", "AAAA")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
    responses.push(forged.text().await.unwrap());
    let wrong_auth = client
        .get(format!("{base}/instances"))
        .header("authorization", "User x, Organization y");
    responses.push(wrong_auth.send().await.unwrap().text().await.unwrap());

    let patch = json!({"configuration": {"event.notification.signature.key": ROTATED_KEY}});
    let patched = client
        .patch(format!("{base}/instances/{id}"))
        .header("authorization", AUTH)
        .json(&patch);
    responses.push(patched.send().await.unwrap().text().await.unwrap());
    let body = cw.callback("secret-2", "updated", "ticket", 7, &cw.key_url());
    let second = client
        .post(&path)
        .header("x-content-signature", cw.sign(&body))
        .body(body);
    assert_eq!(second.send().await.unwrap().status(), 200);
    wait_until(
        "both notifications to be delivered",
        Duration::from_secs(30),
        || async { (receiver.received().len() >= 2).then_some(()) },
    )
    .await;

    for route in [
        "/instances".to_string(),
        format!("/instances/{id}"),
        "/instances/events".to_string(),
        format!("/instances/{id}/events"),
        "/plugins".to_string(),
        "/readyz".to_string(),
        "/metrics".to_string(),
    ] {
        let got = client
            .get(format!("{base}{route}"))
            .header("authorization", AUTH)
            .send()
            .await
            .unwrap();
        assert!(got.status().is_success(), "{route}");
        responses.push(got.text().await.unwrap());
    }
    let shown: Value = serde_json::from_str(&responses[responses.len() - 6]).unwrap();
    assert_eq!(
        shown["configuration"]["helpdesk.connectwise.password"],
        "********"
    );

    let log = process.log();
    assert!(log.contains("\"request_id\""), "request spans are logged");
    assert!(
        log.contains("\"event_id\""),
        "delivery spans carry event ids"
    );
    let secrets = [
        ("management user secret", "proc-user-secret-7f3a"),
        ("management organization secret", "proc-org-secret-91c2"),
        ("signature key", SIGNATURE_KEY),
        ("rotated signature key", ROTATED_KEY),
        ("vendor private key", PRIVATE_KEY),
        ("vendor signing key", cw.signing_key.as_str()),
        ("instance token", token.as_str()),
    ];
    for (what, secret) in secrets {
        assert!(!log.contains(secret), "the {what} is in the log");
        for r in &responses {
            assert!(!r.contains(secret), "the {what} is in an API response: {r}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_element_is_given_its_own_configuration_never_plugboards_settings() {
    const HEADER_SECRET: &str = "Bearer header-secret-6c0d2a";
    let (receiver, host, created) = crate::instances_api::probe_host_with(json!({
        "event.notification.signature.key": SIGNATURE_KEY,
        "event.notification.headers": {"Authorization": HEADER_SECRET},
        "probe.note": "declared",
        "probe.extra": 7}))
    .await;
    let id = created["id"].as_i64().unwrap();
    let (status, answer) = host
        .webhook(
            &webhook_path("probe", id),
            &[("x-probe-action", "remember".to_string())],
            b"{}".to_vec(),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{answer}");
    let event = host.event(answer["eventIds"][0].as_str().unwrap()).await;
    let raw = &event["notification"]["message"]["raw"];
    let mut keys: Vec<&str> = raw["keys"]
        .as_array()
        .unwrap_or_else(|| panic!("{event}"))
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    keys.sort_unstable();
    // Declared or not, the element's keys reach it; plugboard's do not.
    assert_eq!(keys, ["probe.extra", "probe.note"], "{event}");
    assert_eq!(raw["note"], "declared");

    // plugboard itself still uses them: the notification is signed with
    // the key and carries the header.
    let delivered = wait_until("the notification", Duration::from_secs(30), || async {
        receiver.received().into_iter().next()
    })
    .await;
    assert_eq!(delivered.header("authorization"), HEADER_SECRET);
    assert_eq!(
        delivered.header("elements-webhook-signature"),
        elements_signature(SIGNATURE_KEY, &delivered.body)
    );
}
