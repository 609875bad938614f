use serde_json::{json, Value};

use super::*;
use crate::config::{CLIENT_ID, COMPANY, PRIVATE_KEY, PUBLIC_KEY};
use crate::testing::FakeHost;

const CALLBACKS: &str = "https://api-na.myconnectwise.net/v4_6_release/apis/3.0/system/callbacks";
const INBOUND: &str = "https://hooks.example.com/events/connectwise/MQ==";

fn config(extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut pairs = vec![
        (SERVER_URL, "api-na.myconnectwise.net"),
        (COMPANY, "acme"),
        (PUBLIC_KEY, "pub"),
        (PRIVATE_KEY, "priv"),
        (CLIENT_ID, "client-1"),
    ];
    pairs.extend_from_slice(extra);
    pairs
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn body(request: &HttpRequest) -> Value {
    serde_json::from_slice(&request.body).unwrap()
}

fn header<'a>(request: &'a HttpRequest, name: &str) -> Option<&'a str> {
    request
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}

/// A host on which ConnectWise answers the POSTs with ids 41, 42, 43 in turn.
fn accepting() -> FakeHost {
    FakeHost::default()
        .answer_send("POST", CALLBACKS, 201, r#"{"id": 41}"#)
        .answer_send("POST", CALLBACKS, 201, r#"{"id": 42}"#)
        .answer_send("POST", CALLBACKS, 201, r#"{"id": 43}"#)
}

#[test]
fn registers_one_callback_per_default_type_and_remembers_the_ids() {
    let host = accepting();
    let config = config(&[]);
    let remembered = subscribe(&host, Settings::new(&config), INBOUND, None).unwrap();
    let remembered: Value = serde_json::from_str(&remembered).unwrap();
    assert_eq!(
        remembered,
        json!({"callbacks": [
            {"type": "ticket", "id": 41},
            {"type": "company", "id": 42},
            {"type": "contact", "id": 43},
        ]})
    );
    let sent = host.sent.borrow();
    assert_eq!(sent.len(), 3);
    for (request, kind) in sent.iter().zip(DEFAULT_TYPES) {
        assert_eq!(
            (request.method.as_str(), request.url.as_str()),
            ("POST", CALLBACKS)
        );
        let entry = body(request);
        assert_eq!(entry["url"], INBOUND);
        assert_eq!(entry["type"], kind);
        assert_eq!(entry["objectId"], 1);
        assert_eq!(entry["level"], "owner");
        assert!(entry["description"].as_str().unwrap().chars().count() <= 100);
        // base64("acme+pub:priv")
        assert_eq!(
            header(request, "authorization"),
            Some("Basic YWNtZStwdWI6cHJpdg==")
        );
        assert_eq!(header(request, "clientId"), Some("client-1"));
        assert_eq!(header(request, "content-type"), Some("application/json"));
    }
}

#[test]
fn the_types_and_level_are_configurable() {
    let host = accepting();
    let config = config(&[
        (CALLBACK_TYPES, " Ticket , project,"),
        (CALLBACK_LEVEL, "board"),
    ]);
    subscribe(&host, Settings::new(&config), INBOUND, None).unwrap();
    let kinds: Vec<Value> = host
        .sent
        .borrow()
        .iter()
        .map(|r| body(r)["type"].clone())
        .collect();
    assert_eq!(kinds, [json!("ticket"), json!("project")]);
    assert!(host
        .sent
        .borrow()
        .iter()
        .all(|r| body(r)["level"] == "board"));

    let config = self::config(&[(CALLBACK_TYPES, " , ")]);
    let err = subscribe(&FakeHost::default(), Settings::new(&config), INBOUND, None);
    assert!(matches!(err, Err(ElementError::BadRequest(m)) if m.contains(CALLBACK_TYPES)));
}

#[test]
fn a_refusal_names_status_and_message_and_leaves_nothing_registered() {
    let refusal = r#"{"code": "InvalidObject", "message": "callbackEntry object is invalid",
        "errors": [{"code": "Required", "message": "The url field is invalid.",
        "resource": "callbackEntry", "field": "url"}]}"#;
    let host = FakeHost::default()
        .answer_send("POST", CALLBACKS, 201, r#"{"id": 41}"#)
        .answer_send("POST", CALLBACKS, 400, refusal)
        .answer_send("DELETE", &format!("{CALLBACKS}/41"), 204, "");
    let config = config(&[]);
    let err = subscribe(&host, Settings::new(&config), INBOUND, None).unwrap_err();
    let ElementError::BadRequest(message) = err else {
        panic!("expected bad-request, got {err:?}");
    };
    assert_eq!(
        message,
        "ConnectWise refused the company callback with status 400: InvalidObject: \
         callbackEntry object is invalid (url: The url field is invalid.)"
    );
    let sent: Vec<String> = host
        .sent
        .borrow()
        .iter()
        .map(|r| format!("{} {}", r.method, r.url))
        .collect();
    assert_eq!(
        sent,
        [
            format!("POST {CALLBACKS}"),
            format!("POST {CALLBACKS}"),
            format!("DELETE {CALLBACKS}/41"),
        ]
    );
}

#[test]
fn wrong_credentials_are_unauthorized() {
    let host = FakeHost::default().answer_send(
        "POST",
        CALLBACKS,
        401,
        r#"{"code": "Unauthorized", "message": "Invalid credentials"}"#,
    );
    let config = config(&[]);
    let err = subscribe(&host, Settings::new(&config), INBOUND, None).unwrap_err();
    assert!(
        matches!(&err, ElementError::Unauthorized(m) if m.contains("status 401") && m.contains("Invalid credentials")),
        "{err:?}"
    );
}

#[test]
fn unsubscribe_deletes_every_remembered_callback_and_tolerates_gone_ones() {
    let host = FakeHost::default()
        .answer_send("DELETE", &format!("{CALLBACKS}/41"), 204, "")
        .answer_send(
            "DELETE",
            &format!("{CALLBACKS}/42"),
            404,
            r#"{"code": "NotFound"}"#,
        );
    let config = config(&[]);
    let remembered =
        r#"{"callbacks": [{"type": "ticket", "id": 41}, {"type": "company", "id": 42}]}"#;
    unsubscribe(&host, Settings::new(&config), remembered).unwrap();
    assert_eq!(host.sent.borrow().len(), 2);
}

#[test]
fn unsubscribe_goes_on_past_failures_and_names_what_is_left() {
    let host = FakeHost::default()
        .answer_send(
            "DELETE",
            &format!("{CALLBACKS}/41"),
            500,
            r#"{"message": "down"}"#,
        )
        .answer_send("DELETE", &format!("{CALLBACKS}/42"), 204, "");
    let config = config(&[]);
    let remembered = r#"{"callbacks": [{"type": "ticket", "id": 41},
        {"type": "company", "id": 42}, {"type": "contact", "id": 43}]}"#;
    let err = unsubscribe(&host, Settings::new(&config), remembered).unwrap_err();
    let ElementError::Internal(message) = err else {
        panic!("expected internal, got {err:?}");
    };
    assert!(
        message.contains("ticket callback 41 with status 500: down"),
        "{message}"
    );
    assert!(message.contains("contact callback 43"), "{message}");
    assert!(!message.contains("42"), "{message}");
    assert_eq!(host.sent.borrow().len(), 3);
}

#[test]
fn subscribing_again_first_removes_the_previous_callbacks() {
    let host = accepting().answer_send("DELETE", &format!("{CALLBACKS}/7"), 204, "");
    let config = config(&[(CALLBACK_TYPES, "ticket")]);
    let previous = r#"{"callbacks": [{"type": "ticket", "id": 7}]}"#;
    let remembered = subscribe(&host, Settings::new(&config), INBOUND, Some(previous)).unwrap();
    assert_eq!(remembered, r#"{"callbacks":[{"type":"ticket","id":41}]}"#);
    let methods: Vec<String> = host
        .sent
        .borrow()
        .iter()
        .map(|r| r.method.clone())
        .collect();
    assert_eq!(methods, ["DELETE", "POST"]);
}

#[test]
fn missing_credentials_are_named() {
    let config = vec![(SERVER_URL.to_owned(), "api-na.myconnectwise.net".to_owned())];
    let err = subscribe(&FakeHost::default(), Settings::new(&config), INBOUND, None);
    assert!(matches!(err, Err(ElementError::BadRequest(m)) if m.contains(COMPANY)));
}
