//! One contract, four languages: the Rust ConnectWise element, the
//! JavaScript GitHub element, the Python Shopify element and the C Linear
//! element — each built from source by `plugins/build.sh` — take the same
//! path through a running host: a signed webhook is verified and its
//! normalized events are stored; the same body under a wrong signature is
//! refused with 401 and stores nothing. And a project from `plugboard plugins
//! new`, in each language, builds unchanged and is picked up by a running
//! host through hot reload.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::support::connectwise::FakeConnectWise;
use crate::support::host::{webhook_path, HostOptions, TestHost};
use crate::support::receiver::Receiver;
use crate::support::tls::TestCa;
use crate::support::{repo_root, wait_until, write_atomic};

/// A normalized event as the event log shows it: type, object type, object id.
type Expected<'a> = (&'a str, &'a str, &'a str);

fn hmac_sha256(key: &[u8], body: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Creates a webhook instance of `element` with `configuration` added.
async fn create_instance(host: &TestHost, element: &str, configuration: Value) -> i64 {
    let mut config = json!({
        "event.notification.enabled": "true",
        "event.vendor.type": "webhooks",
        "event.notification.callback.url": "https://app.example.com/plugboard",
    });
    config
        .as_object_mut()
        .unwrap()
        .extend(configuration.as_object().unwrap().clone());
    let body = json!({"element": {"key": element}, "name": element, "configuration": config});
    host.create_instance(body).await["id"].as_i64().unwrap()
}

/// The shape every element must show: `body` under `signed` headers is
/// stored as exactly the `expected` events; under `forged` headers it is
/// refused with 401 and nothing more is stored.
async fn assert_verifies_and_maps(
    host: &TestHost,
    element: &str,
    id: i64,
    body: Vec<u8>,
    signed: &[(&str, String)],
    forged: &[(&str, String)],
    expected: &[Expected<'_>],
) {
    let path = webhook_path(element, id);
    let (status, answer) = host.webhook(&path, forged, body.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{element}: {answer}");
    assert!(
        host.events(id).await.is_empty(),
        "{element}: forged delivery stored"
    );

    let (status, answer) = host.webhook(&path, signed, body).await;
    assert_eq!(status, StatusCode::OK, "{element}: {answer}");
    let stored: Vec<(String, String, String)> = host
        .events(id)
        .await
        .iter()
        .flat_map(|entry| entry["events"].as_array().unwrap().clone())
        .map(|e| {
            assert_eq!(e["elementKey"], element);
            let text = |k: &str| e[k].as_str().unwrap().to_string();
            (text("eventType"), text("objectType"), text("objectId"))
        })
        .collect();
    let expected: Vec<_> = expected
        .iter()
        .map(|(t, o, i)| (t.to_string(), o.to_string(), i.to_string()))
        .collect();
    assert_eq!(stored, expected, "{element}");
}

#[tokio::test(flavor = "multi_thread")]
async fn rust_element_verifies_and_maps_webhooks() {
    let ca = TestCa::new();
    let cw = FakeConnectWise::start(&ca).await;
    let host = TestHost::start(HostOptions {
        allow_private: Some("127.0.0.0/8".into()),
        ca_file: Some(ca.ca_file.clone()),
        fetch_ports: vec![cw.addr.port()],
        ..HostOptions::default()
    })
    .await;
    let id = create_instance(
        &host,
        "connectwise",
        json!({
            "helpdesk.connectwise.server.url": cw.server_url(),
            "helpdesk.connectwise.company": "acme",
        }),
    )
    .await;
    let body = cw.callback("msg-1", "added", "ticket", 4711, &cw.key_url());
    let signed = [("x-content-signature", cw.sign(&body))];
    let forged = [("x-content-signature", base64(&hmac_sha256(b"wrong", &body)))];
    let expected = [("CREATED", "ticket", "4711")];
    assert_verifies_and_maps(&host, "connectwise", id, body, &signed, &forged, &expected).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn javascript_element_verifies_and_maps_webhooks() {
    let host = TestHost::start(HostOptions {
        plugins: vec!["github"],
        ..HostOptions::default()
    })
    .await;
    let secret = "gh-webhook-secret";
    let id = create_instance(&host, "github", json!({"github.webhook.secret": secret})).await;
    let sign = |body: &[u8], key: &str| {
        format!("sha256={}", hex::encode(hmac_sha256(key.as_bytes(), body)))
    };
    let delivery = |event: &str, body: &[u8], key: &str| {
        vec![
            ("x-github-event", event.to_string()),
            ("x-github-delivery", format!("delivery-{event}")),
            ("x-hub-signature-256", sign(body, key)),
        ]
    };

    // A ping is answered by the plugin and stores nothing.
    let ping = br#"{"zen":"Design for failure.","hook_id":1}"#.to_vec();
    let (status, answer) = host
        .webhook(
            &webhook_path("github", id),
            &delivery("ping", &ping, secret),
            ping,
        )
        .await;
    assert_eq!((status, answer), (StatusCode::OK, json!({"ok": true})));

    let body = serde_json::to_vec(&json!({
        "action": "opened",
        "issue": {"id": 1296269, "number": 1347, "title": "Found a bug", "updated_at": "2024-05-01T12:34:56Z"},
        "repository": {"full_name": "octocat/Hello-World"}
    }))
    .unwrap();
    let signed = delivery("issues", &body, secret);
    let forged = delivery("issues", &body, "not-the-secret");
    let expected = [("CREATED", "issue", "1296269")];
    assert_verifies_and_maps(&host, "github", id, body, &signed, &forged, &expected).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn python_element_verifies_and_maps_webhooks() {
    let host = TestHost::start(HostOptions {
        plugins: vec!["shopify"],
        ..HostOptions::default()
    })
    .await;
    let secret = "shpss_test_secret";
    let id = create_instance(&host, "shopify", json!({"shopify.webhook.secret": secret})).await;
    let body = serde_json::to_vec(&json!({
        "id": 820982911946154508_u64, "title": "IPod Nano - 8GB",
        "updated_at": "2024-05-01T08:00:00-04:00"
    }))
    .unwrap();
    let delivery = |key: &str| {
        vec![
            ("x-shopify-topic", "products/update".to_string()),
            (
                "x-shopify-webhook-id",
                "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043".to_string(),
            ),
            (
                "x-shopify-hmac-sha256",
                base64(&hmac_sha256(key.as_bytes(), &body)),
            ),
        ]
    };
    let expected = [("UPDATED", "product", "820982911946154508")];
    let (signed, forged) = (delivery(secret), delivery("not-the-secret"));
    assert_verifies_and_maps(
        &host,
        "shopify",
        id,
        body.clone(),
        &signed,
        &forged,
        &expected,
    )
    .await;

    // Malformed JSON under a good signature is the plugin's bad-request.
    let bad = b"{not json".to_vec();
    let headers = [
        ("x-shopify-topic", "orders/create".to_string()),
        (
            "x-shopify-hmac-sha256",
            base64(&hmac_sha256(secret.as_bytes(), &bad)),
        ),
    ];
    let (status, answer) = host
        .webhook(&webhook_path("shopify", id), &headers, bad)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
}

#[tokio::test(flavor = "multi_thread")]
async fn c_element_verifies_and_maps_webhooks() {
    let host = TestHost::start(HostOptions {
        plugins: vec!["linear"],
        ..HostOptions::default()
    })
    .await;
    let secret = "lin_wh_test_secret";
    let id = create_instance(&host, "linear", json!({"linear.webhook.secret": secret})).await;
    let issue = json!({
        "id": "2174add1-f7c8-44e3-bbf3-2d60b5ea8bc9",
        "title": "Crash on \"save\" \u{e9}t\u{e9} \u{1f600}",
        "priority": 2,
        "labelIds": []
    });
    let body_at = |sent: Duration| {
        serde_json::to_vec(&json!({
            "action": "update",
            "type": "Issue",
            "createdAt": "2026-11-27T05:30:00.000Z",
            "data": issue,
            "url": "https://linear.app/acme/issue/ENG-42",
            "webhookTimestamp": sent.as_millis() as u64,
            "webhookId": "000042e3-d123-4980-b49f-8e140eef9329"
        }))
        .unwrap()
    };
    let delivery = |body: &[u8], key: &str| {
        vec![
            (
                "linear-delivery",
                "234d1a4e-b617-4388-90fe-adc3633d6b72".to_string(),
            ),
            ("linear-event", "Issue".to_string()),
            (
                "linear-signature",
                hex::encode(hmac_sha256(key.as_bytes(), body)),
            ),
        ]
    };
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let body = body_at(now);
    let (signed, forged) = (delivery(&body, secret), delivery(&body, "not-the-secret"));
    let expected = [("UPDATED", "Issue", "2174add1-f7c8-44e3-bbf3-2d60b5ea8bc9")];
    assert_verifies_and_maps(&host, "linear", id, body, &signed, &forged, &expected).await;
    let entry = &host.events(id).await[0];
    assert_eq!(
        entry["events"][0]["date"], "2026-11-27T05:30:00Z",
        "{entry}"
    );
    let detail = host.event(entry["eventId"].as_str().unwrap()).await;
    assert_eq!(
        detail["notification"]["message"]["raw"]["data"], issue,
        "{detail}"
    );

    // Offline, `plugins run` shows the event's own raw data: the issue, its
    // text decoded and re-encoded intact, and the delivery id.
    let dir = tempfile::tempdir().unwrap();
    let mut request = b"POST /events/linear/1\n".to_vec();
    for (name, value) in &signed {
        request.extend_from_slice(format!("{name}: {value}\n").as_bytes());
    }
    request.extend_from_slice(b"\n");
    request.extend_from_slice(&body_at(now));
    std::fs::write(dir.path().join("signed.http"), &request).unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        json!({"linear.webhook.secret": secret, "linear.webhook.max-age-seconds": "0"}).to_string(),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_plugboard"))
        .args(["plugins", "run"])
        .arg(repo_root().join("plugins/dist/linear.wasm"))
        .arg("--request")
        .arg(dir.path().join("signed.http"))
        .arg("--config")
        .arg(dir.path().join("config.json"))
        .output()
        .unwrap();
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&out.stderr));
    });
    assert_eq!(shown["events"][0]["raw"], issue, "{shown}");
    assert_eq!(
        shown["messageId"], "234d1a4e-b617-4388-90fe-adc3633d6b72",
        "{shown}"
    );

    // A replay: signed, but sent an hour ago by the host's clock.
    let old = body_at(now - Duration::from_secs(3600));
    let (status, answer) = host
        .webhook(&webhook_path("linear", id), &delivery(&old, secret), old)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    assert!(
        answer
            .to_string()
            .contains("webhookTimestamp is 3600 s from the host's clock"),
        "{answer}"
    );
    // Malformed JSON under a good signature names what is wrong and where.
    let bad = b"{\"action\": \"update\", \"data\": {\"id\": 1,}}".to_vec();
    let (status, answer) = host
        .webhook(&webhook_path("linear", id), &delivery(&bad, secret), bad)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        answer
            .to_string()
            .contains("body is not JSON: expected a member name at byte 38"),
        "{answer}"
    );
    assert_eq!(host.events(id).await.len(), 1);
}

/// Runs a command to completion, panicking with its output if it fails.
async fn run(what: &str, command: &mut tokio::process::Command) {
    let out = command.output().await.unwrap();
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Scaffolds element `name` in `language` under `root`, builds it with its
/// own `build.sh`, runs its own `test.sh` (the sample requests through
/// `plugins run`) and `plugins check`, and returns the built component.
async fn scaffold_and_build(root: &Path, language: &str, name: &str) -> Vec<u8> {
    let dir = root.join(name);
    run(
        &format!("plugboard plugins new --lang {language}"),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_plugboard"))
            .args(["plugins", "new", "--lang", language, name, "--dir"])
            .arg(&dir),
    )
    .await;
    // Shares the guests' target folder, so std (built from source on the
    // Debian route) and common crates are compiled once.
    run(
        &format!("{name}/build.sh"),
        tokio::process::Command::new("bash")
            .arg(dir.join("build.sh"))
            .env("CARGO_TARGET_DIR", repo_root().join("plugins/target")),
    )
    .await;
    // Its own test: the sample requests through `plugins run`, as created.
    run(
        &format!("{name}/test.sh"),
        tokio::process::Command::new("bash")
            .arg(dir.join("test.sh"))
            .env("PLUGBOARD", env!("CARGO_BIN_EXE_plugboard")),
    )
    .await;
    let component = dir.join("dist").join(format!("{name}.wasm"));
    run(
        &format!("plugboard plugins check {name}"),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_plugboard"))
            .args(["plugins", "check"])
            .arg(&component),
    )
    .await;
    std::fs::read(component).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn scaffolded_elements_build_and_hot_reload_in_every_language() {
    scaffolds_build_and_hot_reload(&[
        ("rust", "scaffold-rust"),
        ("js", "scaffold-js"),
        ("python", "scaffold-python"),
    ])
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scaffolded_c_element_builds_and_hot_reloads() {
    scaffolds_build_and_hot_reload(&[("c", "scaffold-c")]).await;
}

/// Scaffolds, builds and tests each (language, name) in `names`, puts the
/// components into a running host's plugin folder, waits until each is
/// loaded, and checks that its signed sample webhook becomes its event,
/// delivered to the instance's receiver.
async fn scaffolds_build_and_hot_reload(names: &[(&str, &str)]) {
    let receiver = Receiver::start().await;
    let host = TestHost::start(HostOptions {
        allow_private: Some("127.0.0.0/8".into()),
        ..HostOptions::default()
    })
    .await;
    let root = tempfile::tempdir().unwrap();
    for (language, name) in names {
        let wasm = scaffold_and_build(root.path(), language, name).await;
        write_atomic(&host.plugins.path().join(format!("{name}.wasm")), &wasm);
    }

    let listed = wait_until(
        "the scaffolded plugins to load",
        Duration::from_secs(120),
        || async {
            let (_, plugins) = host.api(Method::GET, "/plugins", None).await;
            let loaded = |name: &str| {
                plugins
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|p| p["key"] == name && p["lastError"].is_null())
            };
            names
                .iter()
                .all(|(_, name)| loaded(name))
                .then_some(plugins)
        },
    )
    .await;

    // Each works as created: its signed sample webhook becomes one event.
    for (_, name) in names {
        assert!(listed.to_string().contains(name));
        let secret = "s3cret";
        let id = create_instance(
            &host,
            name,
            json!({
                format!("{name}.webhook.secret"): secret,
                "event.notification.callback.url": receiver.url(),
            }),
        )
        .await;
        let body = br#"{"id": "42", "type": "ticket", "action": "created"}"#.to_vec();
        let signed = [(
            "x-signature",
            base64(&hmac_sha256(secret.as_bytes(), &body)),
        )];
        let forged = [("x-signature", base64(&hmac_sha256(b"other", &body)))];
        let expected = [("CREATED", "ticket", "42")];
        assert_verifies_and_maps(&host, name, id, body, &signed, &forged, &expected).await;
        let delivered = wait_until(
            "the sample webhook's notification to be delivered",
            Duration::from_secs(30),
            || async {
                receiver.received().into_iter().find(|r| {
                    let message = &r.json()["message"];
                    message["elementKey"] == *name && message["instanceId"] == id
                })
            },
        )
        .await;
        let event = &delivered.json()["message"]["events"][0];
        assert_eq!(
            (&event["eventType"], &event["objectId"]),
            (&json!("CREATED"), &json!("42")),
            "{name}: {event}"
        );
    }
}
