//! The inbound log end to end: a webhook that fails in a broken plugin is
//! listed as failed and, once a fixed plugin is dropped into the plugin
//! folder, reprocessing turns it into signed notifications a receiver gets;
//! rejected (401, 400, 404, 409) and duplicate requests are listed with
//! their reasons and without secret header values; a flood of rejected
//! requests is capped and counted while good webhooks keep being accepted;
//! the log's routes answer only with the management credentials.

use std::time::Duration;

use base64::Engine as _;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::delivery::python_verifies;
use crate::support::host::{webhook_path, HostOptions, TestHost};
use crate::support::receiver::Receiver;
use crate::support::{plugin_bytes, wait_until, write_atomic};

const KEY: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

async fn probe_instance(host: &TestHost, callback: &str) -> i64 {
    host.create_instance(
        json!({"element": {"key": "probe"}, "name": "probe-1", "configuration": {
            "event.notification.enabled": true,
            "event.notification.callback.url": callback,
            "event.notification.signature.key": KEY,
        }}),
    )
    .await["id"]
        .as_i64()
        .unwrap()
}

/// The instance's inbound log (one page of up to 500), after `query`.
async fn inbound(host: &TestHost, id: i64, query: &str) -> Value {
    let (status, page) = host
        .api(
            Method::GET,
            &format!("/instances/{id}/inbound?pageSize=500{query}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page
}

async fn plugin_hash(host: &TestHost, key: &str) -> Value {
    let (_, plugins) = host.api(Method::GET, "/plugins", None).await;
    plugins
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["key"] == key)
        .map(|p| p["contentHash"].clone())
        .unwrap_or(Value::Null)
}

/// Waits until the plugin serving `probe` is another file than the one
/// whose content hash was `before`.
async fn wait_for_new_probe(host: &TestHost, before: &Value) {
    wait_until("the new probe to load", Duration::from_secs(60), || async {
        let now = plugin_hash(host, "probe").await;
        (now != *before && !now.is_null()).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_webhook_is_reprocessed_into_signed_notifications_after_a_fix() {
    let host = TestHost::start(HostOptions {
        allow_private: Some("127.0.0.0/8".into()),
        ..HostOptions::default()
    })
    .await;
    // A broken release of the probe: every webhook traps.
    let probe_file = host.plugins.path().join("probe.wasm");
    let before = plugin_hash(&host, "probe").await;
    write_atomic(&probe_file, &plugin_bytes("probe-broken"));
    wait_for_new_probe(&host, &before).await;
    let receiver = Receiver::start().await;
    let id = probe_instance(&host, &receiver.url()).await;
    let path = webhook_path("probe", id);
    let headers = [
        ("x-probe-id", "77".to_string()),
        ("authorization", "Bearer secret-bearer-1234".to_string()),
    ];
    let (status, answer) = host
        .webhook(&path, &headers, br#"{"ticket":77}"#.to_vec())
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{answer}");

    // Listed as failed, with the plugin's error and the secret redacted.
    let page = inbound(&host, id, "").await;
    let entries = page["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{page}");
    let failed = &entries[0];
    assert_eq!(failed["outcome"], "failed");
    assert_eq!(failed["reprocessable"], true);
    assert!(failed["reason"]
        .as_str()
        .unwrap()
        .contains("probe trap requested"));
    assert!(!page.to_string().contains("secret-bearer-1234"), "{page}");
    let receipt_id = failed["id"].as_str().unwrap().to_string();
    let (_, one) = host
        .api(
            Method::GET,
            &format!("/instances/inbound/{receipt_id}"),
            None,
        )
        .await;
    assert_eq!(one["body"], r#"{"ticket":77}"#);
    assert!(!one.to_string().contains("secret-bearer-1234"));

    // Reprocessed while the plugin is still broken: still failed.
    let reprocess_one = format!("/instances/inbound/{receipt_id}/reprocess");
    let (status, result) = host.api(Method::POST, &reprocess_one, None).await;
    assert_eq!(status, StatusCode::OK, "{result}");
    assert_eq!(result["outcome"], "failed", "{result}");
    assert!(result["error"]
        .as_str()
        .unwrap()
        .contains("probe trap requested"));
    assert!(receiver.received().is_empty());

    // A fixed plugin is dropped in; reprocessing the instance's failed
    // receipts stores its events and delivers them, signed.
    let broken = plugin_hash(&host, "probe").await;
    write_atomic(&probe_file, &plugin_bytes("probe"));
    wait_for_new_probe(&host, &broken).await;
    let (status, summary) = host
        .api(
            Method::POST,
            &format!("/instances/{id}/inbound/reprocess"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{summary}");
    assert_eq!(summary["reprocessed"], 1, "{summary}");
    assert_eq!(summary["accepted"], 1, "{summary}");
    let result = &summary["receipts"][0];
    assert_eq!(result["receiptId"], receipt_id.as_str());
    assert_eq!(result["outcome"], "accepted");
    let event_id = result["eventIds"][0].as_str().unwrap().to_string();

    let got = wait_until("the delivery", Duration::from_secs(20), || async {
        let got = receiver.received();
        (!got.is_empty()).then_some(got)
    })
    .await;
    assert_eq!(got.len(), 1);
    assert!(python_verifies(&got[0], KEY), "the notification is signed");
    let body = got[0].json();
    assert_eq!(body["message"]["eventId"], event_id.as_str(), "{body}");
    assert_eq!(body["message"]["events"][0]["objectId"], "77", "{body}");

    // The entry is accepted now and links to its event; once is enough.
    let page = inbound(&host, id, "").await;
    let entry = &page["entries"][0];
    assert_eq!(entry["outcome"], "accepted", "{page}");
    assert_eq!(entry["eventIds"], json!([event_id]));
    assert_eq!(entry["reprocessable"], false);
    let (status, again) = host.api(Method::POST, &reprocess_one, None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{again}");
    assert_eq!(again["code"], "not_failed");
    let (_, summary) = host
        .api(
            Method::POST,
            &format!("/instances/{id}/inbound/reprocess"),
            None,
        )
        .await;
    assert_eq!(summary["reprocessed"], 0, "{summary}");
    assert_eq!(host.events(id).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn rejected_and_duplicate_requests_are_listed_with_reasons_and_no_secrets() {
    let host = TestHost::start(HostOptions {
        allow_private: Some("127.0.0.0/8".into()),
        ..HostOptions::default()
    })
    .await;
    let id = probe_instance(&host, "http://127.0.0.1:9/x").await;
    let path = webhook_path("probe", id);
    let secrets = [
        ("authorization", "Bearer sekrit-auth-1"),
        ("cookie", "session=sekrit-cookie-2"),
        ("x-hub-signature-256", "sha256=sekrit-sig-3"),
        ("x-api-token", "sekrit-token-4"),
    ];
    let with = |action: &str| {
        let mut h: Vec<(&str, String)> = secrets.iter().map(|(n, v)| (*n, v.to_string())).collect();
        h.push(("x-probe-action", action.to_string()));
        h
    };
    let (status, _) = host
        .webhook(&path, &with("unauthorized"), b"{\"signed\":false}".to_vec())
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let not_utf8 = vec![0xff, 0xfe, b'{', 0x00];
    let (status, _) = host.webhook(&path, &with("bad"), not_utf8.clone()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // The instance is a probe's: under another element's key it is unknown.
    let (status, _) = host
        .webhook(
            &webhook_path("connectwise", id),
            &with("accept"),
            b"{}".to_vec(),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A receipt's id is made when it is written, a logged request's from
    // when it arrived: between the two sources the listing's order is
    // exact to the millisecond, so the receipt's request is sent in a
    // millisecond of its own.
    let own_millisecond = || tokio::time::sleep(Duration::from_millis(2));
    own_millisecond().await;
    // The same vendor message twice: the second is a duplicate.
    let message = [("x-probe-message-id", "msg-1".to_string())];
    let (status, first) = host.webhook(&path, &message, b"{}".to_vec()).await;
    assert_eq!(status, StatusCode::OK);
    own_millisecond().await;
    let (status, repeat) = host.webhook(&path, &message, b"{}".to_vec()).await;
    assert_eq!(
        (status, &repeat["duplicate"]),
        (StatusCode::OK, &json!(true))
    );
    // Events off: refused before the body is read.
    let (status, _) = host
        .api(
            Method::PUT,
            &format!("/instances/{id}/events/enabled"),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = host.webhook(&path, &with("accept"), b"{}".to_vec()).await;
    assert_eq!(status, StatusCode::CONFLICT);

    // Rejections are written in the background: wait for all six entries.
    let page = wait_until("six inbound entries", Duration::from_secs(20), || async {
        let page = inbound(&host, id, "").await;
        (page["entries"].as_array().unwrap().len() == 6).then_some(page)
    })
    .await;
    let text = page.to_string();
    assert!(
        !text.contains("sekrit"),
        "secrets must not be listed: {text}"
    );
    let shape: Vec<(String, Value)> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["outcome"].as_str().unwrap().to_string(),
                e["status"].clone(),
            )
        })
        .collect();
    let expected = [
        ("rejected", 409),
        ("duplicate", 200),
        ("accepted", 200),
        ("rejected", 404),
        ("rejected", 400),
        ("rejected", 401),
    ];
    assert_eq!(
        shape,
        expected
            .iter()
            .map(|(o, s)| (o.to_string(), json!(s)))
            .collect::<Vec<_>>()
    );
    let entries = page["entries"].as_array().unwrap();
    assert_eq!(entries[0]["code"], "events_disabled");
    assert!(
        entries[0].get("bodyBytes").is_none(),
        "not read: {}",
        entries[0]
    );
    assert_eq!(entries[1]["duplicateOf"], first["receiptId"]);
    let unknown = entries[3]["reason"].as_str().unwrap();
    assert!(
        unknown.contains(&format!("no connectwise instance {id}")),
        "{unknown}"
    );
    assert!(entries[4]["reason"]
        .as_str()
        .unwrap()
        .contains("probe rejects this"));
    assert_eq!(entries[5]["code"], "unauthorized");
    let shown: Vec<(&str, &str)> = entries[5]["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["name"].as_str().unwrap(), h["value"].as_str().unwrap()))
        .collect();
    for (name, _) in secrets {
        assert!(shown.contains(&(name, "[redacted]")), "{name}: {shown:?}");
    }
    assert!(shown.contains(&("x-probe-action", "unauthorized")));

    // One entry, its body byte-exact (not UTF-8: base64 only).
    let bad_id = entries[4]["id"].as_str().unwrap();
    let (status, bad) = host
        .api(Method::GET, &format!("/instances/inbound/{bad_id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{bad}");
    assert!(bad.get("body").is_none());
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(bad["bodyBase64"].as_str().unwrap())
        .unwrap();
    assert_eq!(bytes, not_utf8);
    assert!(!bad.to_string().contains("sekrit"));

    // Filters: by status, by outcome, overall by instance; bad ones named.
    let only_401 = inbound(&host, id, "&status=401").await;
    assert_eq!(only_401["entries"].as_array().unwrap().len(), 1);
    let rejected = inbound(&host, id, "&outcome=rejected").await;
    assert_eq!(rejected["entries"].as_array().unwrap().len(), 4);
    let (status, all) = host
        .api(
            Method::GET,
            &format!("/instances/inbound?instanceId={id}&pageSize=2"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{all}");
    assert_eq!(all["entries"].as_array().unwrap().len(), 2);
    let next = all["nextPage"].as_str().unwrap();
    let (_, rest) = host
        .api(
            Method::GET,
            &format!("/instances/inbound?instanceId={id}&nextPage={next}"),
            None,
        )
        .await;
    assert_eq!(rest["entries"].as_array().unwrap().len(), 4);
    let (status, err) = host
        .api(Method::GET, "/instances/inbound?outcome=lost", None)
        .await;
    assert_eq!(
        (status, err["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("outcome"))
    );
    let anonymous = reqwest::get(format!("{}/instances/{id}/inbound", host.base))
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_rejected_requests_is_capped_and_counted() {
    let host = TestHost::start(HostOptions {
        allow_private: Some("127.0.0.0/8".into()),
        inbound_log: Some(plugboard::ingress::InboundLogConfig {
            max_per_instance: 20,
            ..plugboard::ingress::InboundLogConfig::default()
        }),
        ..HostOptions::default()
    })
    .await;
    let id = probe_instance(&host, "http://127.0.0.1:9/x").await;
    let path = webhook_path("probe", id);
    let refused = [("x-probe-action", "unauthorized".to_string())];
    let flood = (0..150).map(|_| host.webhook(&path, &refused, b"{}".to_vec()));
    let good = async {
        let (status, answer) = host
            .webhook(&path, &[("x-probe-id", "1".to_string())], b"{}".to_vec())
            .await;
        assert_eq!(
            status,
            StatusCode::OK,
            "a good webhook is accepted: {answer}"
        );
    };
    let (answers, ()) = tokio::join!(futures_util::future::join_all(flood), good);
    assert!(answers.iter().all(|(s, _)| *s == StatusCode::UNAUTHORIZED));

    // Every one is either stored (20, the cap) or counted as dropped.
    let page = wait_until(
        "the flood accounted for",
        Duration::from_secs(30),
        || async {
            let page = inbound(&host, id, "&outcome=rejected").await;
            let stored = page["entries"].as_array().unwrap().len() as u64;
            let dropped = page["dropped"][0]["dropped"].as_u64().unwrap_or(0);
            (stored + dropped == 150).then_some(page)
        },
    )
    .await;
    assert_eq!(page["entries"].as_array().unwrap().len(), 20);
    assert_eq!(page["dropped"][0]["instanceId"], id);
    assert_eq!(page["dropped"][0]["dropped"], 130);
    assert_eq!(
        inbound(&host, id, "&outcome=accepted").await["entries"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let metrics = reqwest::get(format!("{}/metrics", host.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("plugboard_inbound_log_dropped_total{")
                && l.contains("reason=\"cap\"")),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_inbound_log_needs_the_management_credentials() {
    let host = TestHost::start(HostOptions::default()).await;
    let id = probe_instance(&host, "https://receiver.example/hook").await;
    let client = reqwest::Client::new();
    for (method, path) in [
        (Method::GET, "/instances/inbound".to_string()),
        (Method::GET, format!("/instances/{id}/inbound")),
        (Method::GET, "/instances/inbound/some-entry".to_string()),
        (
            Method::POST,
            "/instances/inbound/some-receipt/reprocess".to_string(),
        ),
        (Method::POST, format!("/instances/{id}/inbound/reprocess")),
    ] {
        for auth in [None, Some("User wrong, Organization wrong")] {
            let mut request = client.request(method.clone(), format!("{}{path}", host.base));
            if let Some(value) = auth {
                request = request.header("authorization", value);
            }
            let status = request.send().await.unwrap().status();
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} with {auth:?}"
            );
        }
    }
    // With them, the same routes answer.
    let (status, _) = host
        .api(Method::GET, &format!("/instances/{id}/inbound"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
}
