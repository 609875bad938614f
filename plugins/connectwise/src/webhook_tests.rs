//! Unit tests of callback verification and mapping.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::*;
use crate::testing::{hmac, FakeHost};

const KEY_URL: &str =
    "https://api-na.myconnectwise.net/v4_6_release/system/callbackkey/index.rails?id=7";
const SIGNING_KEY: &str = "s3cr3t-signing-key";

/// A ticket callback as ConnectWise sends it, `Entity` as a JSON string.
fn callback() -> Value {
    let entity = json!({
        "id": 4711,
        "summary": "Printer on fire",
        "_info": {"lastUpdated": "2024-05-01T12:00:00Z", "dateEntered": "2024-05-01T11:00:00Z"}
    });
    json!({
        "MessageId": "5c0ad1b4-0e5e-4bcf-9b4f-8d1e5f3b2a10",
        "FromUrl": "https://api-na.myconnectwise.net",
        "CompanyId": "acme",
        "MemberId": "admin1",
        "Action": "added",
        "Type": "Ticket",
        "ID": 4711,
        "ProductInstanceId": "",
        "PartnerId": "",
        "CallbackObjectRecId": 12,
        "Entity": entity.to_string(),
        "Metadata": {"key_url": KEY_URL}
    })
}

/// The signature ConnectWise would put on `body`.
fn sign(body: &[u8]) -> String {
    let key = Sha256::digest(SIGNING_KEY.as_bytes());
    STANDARD.encode(hmac(&key, body))
}

fn key_host() -> FakeHost {
    FakeHost::default().answer(
        KEY_URL,
        200,
        &json!({"signing_key": SIGNING_KEY}).to_string(),
    )
}

fn request(body: &[u8], signature: Option<&str>) -> HttpRequest {
    HttpRequest {
        method: "POST".to_owned(),
        url: "/events/connectwise/MjA5MzE=".to_owned(),
        query: String::new(),
        headers: signature
            .map(|value| Header {
                name: SIGNATURE_HEADER.to_owned(),
                value: value.to_owned(),
            })
            .into_iter()
            .collect(),
        body: body.to_vec(),
    }
}

fn config(verify: Option<&str>) -> Vec<(String, String)> {
    verify
        .map(|value| (VERIFY_SIGNATURE.to_owned(), value.to_owned()))
        .into_iter()
        .collect()
}

fn run(
    host: &FakeHost,
    body: &[u8],
    signature: Option<&str>,
) -> Result<WebhookEvents, ElementError> {
    handle(
        host,
        Settings::new(&config(None)),
        &request(body, signature),
    )
}

fn unauthorized(result: Result<WebhookEvents, ElementError>) -> String {
    match result {
        Err(ElementError::Unauthorized(message)) => message,
        other => panic!("expected unauthorized, got {other:?}"),
    }
}

fn bad_request(result: Result<WebhookEvents, ElementError>) -> String {
    match result {
        Err(ElementError::BadRequest(message)) => message,
        other => panic!("expected bad-request, got {other:?}"),
    }
}

#[test]
fn signed_callback_becomes_one_event() {
    let host = key_host();
    let body = callback().to_string().into_bytes();
    let events = run(&host, &body, Some(&sign(&body))).unwrap();

    assert_eq!(*host.fetched.borrow(), [KEY_URL]);
    assert_eq!(
        events.message_id.as_deref(),
        Some("5c0ad1b4-0e5e-4bcf-9b4f-8d1e5f3b2a10")
    );
    let [event] = events.events.as_slice() else {
        panic!("expected one event")
    };
    assert_eq!(event.event_type, EventType::Created);
    assert_eq!(event.object_type, "ticket");
    assert_eq!(event.object_id, "4711");
    assert_eq!(event.date, "2024-05-01T12:00:00Z");
    let raw: Value = serde_json::from_str(&event.raw).unwrap();
    assert_eq!(raw["summary"], "Printer on fire");

    let webhook_raw: Value = serde_json::from_str(events.raw.as_deref().unwrap()).unwrap();
    assert_eq!(webhook_raw["Entity"]["id"], 4711);
    assert_eq!(webhook_raw["CompanyId"], "acme");
}

#[test]
fn unsigned_request_is_rejected_before_anything_else() {
    let host = key_host();
    let message = unauthorized(run(&host, b"not even json", None));
    assert!(message.contains(SIGNATURE_HEADER), "{message}");
    assert!(host.fetched.borrow().is_empty());
}

#[test]
fn malformed_body_is_a_bad_request() {
    let host = key_host();
    let message = bad_request(run(&host, b"{\"Action\":", Some("AAAA")));
    assert!(
        message.starts_with("callback body is not valid JSON"),
        "{message}"
    );
    assert!(bad_request(run(&host, b"[1]", Some("AAAA"))).contains("JSON object"));
    assert!(host.fetched.borrow().is_empty());
}

#[test]
fn missing_key_url_is_a_bad_request() {
    let mut payload = callback();
    payload.as_object_mut().unwrap().remove("Metadata");
    let body = payload.to_string().into_bytes();
    let message = bad_request(run(&key_host(), &body, Some(&sign(&body))));
    assert_eq!(message, "Metadata.key_url is missing");
}

#[test]
fn key_fetch_failures_are_unauthorized() {
    let body = callback().to_string().into_bytes();
    let signature = sign(&body);
    let cases = [
        (
            FakeHost::default().fail(KEY_URL, FetchError::Denied("host not allowed".to_owned())),
            "signing key could not be fetched: denied: host not allowed",
        ),
        (
            FakeHost::default().fail(KEY_URL, FetchError::Timeout),
            "signing key could not be fetched: timeout",
        ),
        (
            FakeHost::default().answer(KEY_URL, 404, "{}"),
            "signing key could not be fetched: key URL answered 404",
        ),
        (
            FakeHost::default().answer(KEY_URL, 200, r#"{"other":"x"}"#),
            "signing key could not be fetched: key URL answer has no signing_key",
        ),
    ];
    for (host, expected) in cases {
        assert_eq!(unauthorized(run(&host, &body, Some(&signature))), expected);
    }
}

#[test]
fn tampered_body_does_not_match() {
    let host = key_host();
    let body = callback().to_string().into_bytes();
    let signature = sign(&body);
    let mut tampered = callback();
    tampered["ID"] = json!(4712);
    let tampered = tampered.to_string().into_bytes();
    assert_eq!(
        unauthorized(run(&host, &tampered, Some(&signature))),
        "x-content-signature does not match"
    );
    assert!(unauthorized(run(&host, &body, Some("***"))).contains("not base64"));
}

#[test]
fn verification_off_accepts_unsigned_and_warns() {
    let host = FakeHost::default();
    let body = callback().to_string().into_bytes();
    let events = handle(
        &host,
        Settings::new(&config(Some("false"))),
        &request(&body, None),
    )
    .unwrap();
    assert_eq!(events.events.len(), 1);
    assert!(host.fetched.borrow().is_empty());
    let logs = host.logs.borrow();
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].0, LogLevel::Warn);
}

fn map(payload: Value) -> Result<WebhookEvents, ElementError> {
    let text = payload.to_string();
    let parsed: super::Payload<'_> =
        serde_json::from_str(&text).expect("payload must be an object");
    map_callback(&parsed)
}

#[test]
fn actions_map_case_insensitively() {
    for (action, expected) in [
        ("ADDED", EventType::Created),
        ("Updated", EventType::Updated),
        ("deleted", EventType::Deleted),
        ("merged", EventType::Unknown),
    ] {
        let mut payload = callback();
        payload["Action"] = json!(action);
        assert_eq!(map(payload).unwrap().events[0].event_type, expected);
    }
}

#[test]
fn missing_or_empty_entity_is_null() {
    let mut payload = callback();
    payload["Entity"] = json!("");
    payload["ID"] = json!("T-9");
    let events = map(payload).unwrap();
    assert_eq!(events.events[0].raw, "null");
    assert_eq!(events.events[0].date, "");
    assert_eq!(events.events[0].object_id, "T-9");

    let mut payload = callback();
    payload.as_object_mut().unwrap().remove("Entity");
    let events = map(payload).unwrap();
    assert_eq!(events.events[0].raw, "null");
    let raw: Value = serde_json::from_str(events.raw.as_deref().unwrap()).unwrap();
    assert!(raw.get("Entity").is_none());
}

#[test]
fn entity_that_is_not_json_is_a_bad_request() {
    let mut payload = callback();
    payload["Entity"] = json!("{not json");
    assert!(bad_request(map(payload)).starts_with("Entity is not valid JSON"));
    let mut payload = callback();
    payload["Entity"] = json!([1, 2]);
    assert_eq!(
        map(payload).unwrap().events[0].raw,
        "[1,2]",
        "a non-string Entity is taken as is"
    );
}

#[test]
fn unparseable_last_updated_leaves_the_date_empty() {
    let mut payload = callback();
    payload["Entity"] = json!(json!({"_info": {"lastUpdated": "yesterday"}}).to_string());
    assert_eq!(map(payload).unwrap().events[0].date, "");
}

#[test]
fn required_fields_are_named() {
    for field in ["Action", "Type", "ID"] {
        let mut payload = callback();
        payload.as_object_mut().unwrap().remove(field);
        assert_eq!(bad_request(map(payload)), format!("{field} is missing"));
    }
    let mut payload = callback();
    payload["ID"] = json!({"nested": 1});
    assert!(bad_request(map(payload)).starts_with("ID must be"));
    let mut payload = callback();
    payload["Action"] = json!(3);
    assert_eq!(
        bad_request(map(payload)),
        "Action must be a non-empty string"
    );
}
