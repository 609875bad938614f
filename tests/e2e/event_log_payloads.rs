//! Whatever a vendor can send, the event log reads back: every accepted
//! webhook is listed, shown and redelivered, its notification shown byte
//! for byte as the receiver got it, its raw data byte for byte as the
//! vendor sent it (a JSON text is kept as that text, lone surrogate escapes
//! and numbers beyond any machine type included), and its receipt stored
//! byte for byte.
//!
//! A property test drives hostile payloads (lone surrogates, escaped NUL,
//! invalid UTF-8, deep nesting, huge numbers, arbitrary bytes) through the
//! probe element: accept → store → every read route → redeliver, against
//! a host on loopback with its real store and a receiver. It runs 64 cases
//! unless `PROPTEST_CASES` asks for more. A second test sends a lone
//! surrogate through the signed GitHub element, across a restart, and runs
//! the console's event page script (under Node, `render_event.js`) on one.

use std::time::Duration;

use hmac::{Hmac, Mac};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use sha2::Sha256;

use crate::support::host::{webhook_path, HostOptions, TestHost};
use crate::support::receiver::{Received, Receiver};
use crate::support::wait_until;

/// Cases the property test runs unless `PROPTEST_CASES` says otherwise.
const DEFAULT_CASES: u32 = 64;

/// A host with an instance of `element` delivering to a receiver.
struct Rig {
    host: TestHost,
    receiver: Receiver,
    id: i64,
    element: &'static str,
}

impl Rig {
    async fn start(element: &'static str, configuration: Value) -> Self {
        let receiver = Receiver::start().await;
        let host = TestHost::start(HostOptions {
            allow_private: Some("127.0.0.0/8".into()),
            plugins: if element == "probe" {
                Vec::new()
            } else {
                vec![element]
            },
            ..HostOptions::default()
        })
        .await;
        let mut config = json!({
            "event.notification.enabled": true,
            "event.notification.callback.url": receiver.url(),
        });
        config
            .as_object_mut()
            .unwrap()
            .extend(configuration.as_object().unwrap().clone());
        let id = host
            .create_instance(json!({"element": {"key": element}, "configuration": config}))
            .await["id"]
            .as_i64()
            .unwrap();
        Self {
            host,
            receiver,
            id,
            element,
        }
    }

    /// Waits until notification `event_id` has been delivered `n` times.
    async fn delivered(&self, event_id: &str, n: usize) -> Vec<Received> {
        wait_until(
            &format!("delivery {n} of {event_id}"),
            Duration::from_secs(20),
            || async {
                let got = self.receiver.received_with("webhook-id", event_id);
                (got.len() >= n).then_some(got)
            },
        )
        .await
    }

    /// GET `path`: its status and exact body bytes.
    async fn get(&self, path: &str) -> (StatusCode, Vec<u8>) {
        let resp = reqwest::Client::new()
            .get(format!("{}{path}", self.host.base))
            .header("authorization", &self.host.auth)
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .unwrap();
        (resp.status(), resp.bytes().await.unwrap().to_vec())
    }
}

/// What `GET /instances/events/{eventId}` answers, the notification as text.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Detail {
    event_id: String,
    receipt_id: String,
    events: Vec<Value>,
    notification: Box<RawValue>,
}

/// The notification's `message.raw`, as text.
#[derive(Deserialize)]
struct Notification {
    message: RawOf,
}

#[derive(Deserialize)]
struct RawOf {
    raw: Box<RawValue>,
}

/// `ensure!`-style check that names what failed.
fn check(ok: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(what())
    }
}

/// What the notification's `raw` must be for a body: the body's JSON text
/// as it is, else the body as a JSON string (bytes that are not UTF-8
/// replaced, as a JSON string cannot carry them; the receipt keeps them).
fn expected_raw(body: &[u8]) -> Result<String, String> {
    match std::str::from_utf8(body)
        .ok()
        .and_then(|t| RawValue::from_string(t.to_owned()).ok())
    {
        Some(raw) => Ok(raw.get().to_owned()),
        None => serde_json::to_string(&String::from_utf8_lossy(body)).map_err(|e| e.to_string()),
    }
}

/// Sends `body` as a webhook with `headers`, then checks it through every
/// read route and a redelivery; returns the notification's event id.
async fn round_trip(rig: &Rig, headers: &[(&str, String)], body: &[u8]) -> Result<String, String> {
    let path = webhook_path(rig.element, rig.id);
    let (status, answer) = rig.host.webhook(&path, headers, body.to_vec()).await;
    check(status == StatusCode::OK, || {
        format!("webhook answered {status}: {answer}")
    })?;
    let event_id = answer["eventIds"][0]
        .as_str()
        .ok_or_else(|| format!("no event stored: {answer}"))?
        .to_owned();
    let first = rig.delivered(&event_id, 1).await.remove(0).body;

    // Listed, overall and for the instance.
    for list in [
        format!("/instances/{}/events?pageSize=20", rig.id),
        "/instances/events?pageSize=20".to_owned(),
    ] {
        let (status, page) = rig.get(&list).await;
        check(status == StatusCode::OK, || {
            format!(
                "{list} answered {status}: {}",
                String::from_utf8_lossy(&page)
            )
        })?;
        let page: Value = serde_json::from_slice(&page).map_err(|e| format!("{list}: {e}"))?;
        let listed = page["events"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["eventId"] == event_id.as_str())
            .ok_or_else(|| format!("{list} does not list {event_id}"))?;
        check(
            listed["events"].as_array().is_some_and(|e| !e.is_empty()),
            || format!("{list}: no normalized events in {listed}"),
        )?;
    }

    // Shown, by either route, byte for byte as delivered.
    let mut receipt_id = String::new();
    for one in [
        format!("/instances/events/{event_id}"),
        format!("/instances/{}/events/{event_id}", rig.id),
    ] {
        let (status, text) = rig.get(&one).await;
        check(status == StatusCode::OK, || {
            format!(
                "{one} answered {status}: {}",
                String::from_utf8_lossy(&text)
            )
        })?;
        let detail: Detail = serde_json::from_slice(&text).map_err(|e| format!("{one}: {e}"))?;
        check(
            detail.event_id == event_id && !detail.events.is_empty(),
            || format!("{one}: wrong entry"),
        )?;
        check(detail.notification.get().as_bytes() == &first[..], || {
            format!("{one}: the notification shown differs from the one delivered")
        })?;
        let shown: Notification = serde_json::from_str(detail.notification.get())
            .map_err(|e| format!("{one}: notification: {e}"))?;
        let want = expected_raw(body)?;
        check(shown.message.raw.get() == want, || {
            format!(
                "{one}: raw {:?}, expected {want:?}",
                shown.message.raw.get()
            )
        })?;
        receipt_id = detail.receipt_id;
    }

    // The receipt keeps the vendor's bytes as they came.
    let db = rusqlite::Connection::open_with_flags(
        rig.host.data.path().join("plugboard.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .map_err(|e| e.to_string())?;
    let kept: Vec<u8> = db
        .query_row(
            "SELECT body FROM receipts WHERE id = ?1",
            [&receipt_id],
            |r| r.get(0),
        )
        .map_err(|e| format!("receipt {receipt_id}: {e}"))?;
    check(kept == body, || {
        format!("receipt {receipt_id} is not the body sent")
    })?;

    // Redelivered: the same bytes again.
    let (status, answer) = rig
        .host
        .api(
            Method::POST,
            &format!("/instances/events/{event_id}/redeliver"),
            None,
        )
        .await;
    check(status == StatusCode::OK && answer["scheduled"] == 1, || {
        format!("redeliver answered {status}: {answer}")
    })?;
    let again = rig.delivered(&event_id, 2).await;
    check(again.iter().all(|r| r.body == first), || {
        format!("{event_id} was redelivered with other bytes")
    })?;
    Ok(event_id)
}

/// A JSON string literal with hostile escapes: lone and reversed
/// surrogates, escaped NUL and control characters, raw non-ASCII.
fn string_literal() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        (0xd800u32..0xe000).prop_map(|u| format!("\\u{u:04x}")),
        Just("\\u0000".to_owned()),
        Just("\\udc00\\ud800".to_owned()),
        Just("\\ud83d\\ude00".to_owned()),
        (0u32..0x20).prop_map(|u| format!("\\u{u:04X}")),
        Just("\\\"\\\\\\/\\b\\f\\n\\r\\t".to_owned()),
        any::<char>()
            .prop_filter("needs escaping", |c| *c != '"' && *c != '\\' && *c >= ' ')
            .prop_map(String::from),
        "[a-z]{0,6}",
    ];
    prop::collection::vec(piece, 0..6).prop_map(|p| format!("\"{}\"", p.concat()))
}

/// A JSON number beyond what machines hold, or at its edges.
fn number_literal() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("1e400".to_owned()),
        Just("-1E-400".to_owned()),
        Just("-0".to_owned()),
        Just("18446744073709551616".to_owned()),
        "-?[1-9][0-9]{30,400}",
        "-?[1-9][0-9]{0,5}\\.[0-9]{1,40}[eE][+-]?[0-9]{3,6}",
        any::<i64>().prop_map(|n| n.to_string()),
    ]
}

/// JSON texts built from hostile leaves, nested a few levels.
fn json_text() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        string_literal(),
        number_literal(),
        Just("true".to_owned()),
        Just("null".to_owned()),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec((string_literal(), inner), 0..6).prop_map(|kv| {
                let members: Vec<String> =
                    kv.into_iter().map(|(k, v)| format!("{k}:{v}")).collect();
                format!("{{{}}}", members.join(","))
            }),
        ]
    })
}

/// Every kind of body a vendor might send.
fn payload() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => json_text().prop_map(String::into_bytes),
        1 => (1usize..5000, any::<bool>()).prop_map(|(depth, arrays)| {
            let (open, close) = if arrays { ("[", "]") } else { ("{\"a\":", "}") };
            format!("{}1{}", open.repeat(depth), close.repeat(depth)).into_bytes()
        }),
        1 => prop::collection::vec(any::<u8>(), 0..512),
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(|bytes| {
            let mut body = b"{\"a\":\"".to_vec();
            body.extend(bytes);
            body.extend(b"\"}");
            body
        }),
        1 => (json_text(), "[ \t\r\n]{0,3}", "[ \t\r\n]{0,3}")
            .prop_map(|(j, a, b)| format!("{a}{j}{b}").into_bytes()),
    ]
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(DEFAULT_CASES)
}

#[test]
fn every_payload_reads_back_through_every_route() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let rig = rt.block_on(Rig::start("probe", json!({})));
    let mut runner = TestRunner::new(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let started = std::time::Instant::now();
    let result = runner.run(&payload(), |body| {
        rt.block_on(round_trip(&rig, &[], &body))
            .map(|_| ())
            .map_err(TestCaseError::fail)
    });
    eprintln!(
        "{} cases in {:.1} s",
        cases(),
        started.elapsed().as_secs_f64()
    );
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lone_surrogate_through_signed_github_reads_back_after_a_restart() {
    let secret = "gh-webhook-secret";
    let mut rig = Rig::start("github", json!({"github.webhook.secret": secret})).await;
    let body = br#"{"action":"opened","issue":{"id":1296269,"number":1347,"title":"\ud800 and \udfff\ud800","body":"\u0000","updated_at":"2024-05-01T12:34:56Z"},"repository":{"full_name":"octocat/Hello-World","size":1e400}}"#;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    let headers = [
        ("x-github-event", "issues".to_owned()),
        ("x-github-delivery", "delivery-surrogate".to_owned()),
        (
            "x-hub-signature-256",
            format!("sha256={}", hex::encode(mac.finalize().into_bytes())),
        ),
    ];
    let event_id = round_trip(&rig, &headers, body).await.unwrap();
    rig.host.restart().await;
    let (status, text) = rig.get(&format!("/instances/events/{event_id}")).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&text));
    let (status, _) = rig.get(&format!("/instances/{}/events", rig.id)).await;
    assert_eq!(status, StatusCode::OK);
    // And the probe, the element the report came through; the console's
    // event page renders it.
    let probe = Rig::start("probe", json!({})).await;
    let event_id = round_trip(&probe, &[], br#"{"a":"\ud800","n":1e400}"#)
        .await
        .unwrap();
    let (status, detail) = probe.get(&format!("/instances/events/{event_id}")).await;
    assert_eq!(status, StatusCode::OK);
    let shown = console_raw(&detail);
    assert!(shown.contains(r#""a": "\ud800""#), "{shown}");
}

/// What the console's event page shows as the raw payload of the API's
/// answer `detail`, by running the page's own script under Node.
fn console_raw(detail: &[u8]) -> String {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let script = crate::support::repo_root().join("tests/e2e/render_event.js");
    let mut node = Command::new("node")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the console check runs the page script under node");
    node.stdin.take().unwrap().write_all(detail).unwrap();
    let out = node.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the event page failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
