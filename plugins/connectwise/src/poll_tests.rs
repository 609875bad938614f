//! Unit tests of REST polling.

use serde_json::json;

use super::*;
use crate::config::{CLIENT_ID, COMPANY, PRIVATE_KEY, PUBLIC_KEY, PUBLIC_KEY_ALIAS};
use crate::testing::FakeHost;

fn config(extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut pairs = vec![
        (SERVER_URL, "api-na.myconnectwise.net/"),
        (COMPANY, "acme"),
        (PUBLIC_KEY, "pub"),
        (PRIVATE_KEY, "priv"),
    ];
    pairs.extend_from_slice(extra);
    pairs
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn poll(resource: &str, resource_config: &str, page: u32) -> PollContext {
    PollContext {
        resource_name: resource.to_owned(),
        resource_config: resource_config.to_owned(),
        since: "2024-01-01T00:00:00.250Z".to_owned(),
        until: "2024-01-01T00:15:00Z".to_owned(),
        page,
    }
}

/// The host's draft request for a page, with the filled URL template.
fn draft(url: &str) -> HttpRequest {
    HttpRequest {
        method: "GET".to_owned(),
        url: url.to_owned(),
        query: String::new(),
        headers: Vec::new(),
        body: Vec::new(),
    }
}

fn header<'a>(request: &'a HttpRequest, name: &str) -> Option<&'a str> {
    request
        .headers
        .iter()
        .find(|h| h.name == name)
        .map(|h| h.value.as_str())
}

fn ok(body: &str) -> HttpResponse {
    HttpResponse {
        status: 200,
        headers: Vec::new(),
        body: body.as_bytes().to_vec(),
    }
}

fn bad_request<T: std::fmt::Debug>(result: Result<T, ElementError>) -> String {
    match result {
        Err(ElementError::BadRequest(message)) => message,
        other => panic!("expected bad-request, got {other:?}"),
    }
}

#[test]
fn prepares_an_authenticated_page_request() {
    let pairs = config(&[(CLIENT_ID, "client-123")]);
    let request = prepare(
        &FakeHost::default(),
        Settings::new(&pairs),
        &poll("tickets", "", 1),
        &draft(""),
    )
    .unwrap();
    assert_eq!(request.method, "GET");
    assert_eq!(
        request.url,
        "https://api-na.myconnectwise.net/v4_6_release/apis/3.0/service/tickets\
         ?conditions=lastUpdated%3E%5B2024-01-01T00%3A00%3A00Z%5D&page=1&pageSize=100\
         &orderBy=_info%2FlastUpdated%20asc"
    );
    // base64("acme+pub:priv")
    assert_eq!(
        header(&request, "Authorization"),
        Some("Basic YWNtZStwdWI6cHJpdg==")
    );
    assert_eq!(header(&request, "clientId"), Some("client-123"));
    assert_eq!(header(&request, "Accept"), Some("application/json"));
}

#[test]
fn resource_config_sets_url_and_page_size() {
    let pairs = config(&[(PUBLIC_KEY, ""), (PUBLIC_KEY_ALIAS, "user")]);
    let context = poll(
        "projects",
        r#"{"url":"/project/projects?fields=id","pageSize":"5000"}"#,
        3,
    );
    let request = prepare(
        &FakeHost::default(),
        Settings::new(&pairs),
        &context,
        &draft(""),
    )
    .unwrap();
    assert!(request.url.starts_with(
        "https://api-na.myconnectwise.net/v4_6_release/apis/3.0/project/projects?fields=id&conditions="
    ), "{}", request.url);
    assert!(
        request.url.contains("&page=3&pageSize=1000&"),
        "{}",
        request.url
    );
    assert!(header(&request, "clientId").is_none());
}

#[test]
fn missing_credentials_are_named() {
    for key in [COMPANY, PUBLIC_KEY, PRIVATE_KEY, SERVER_URL] {
        let pairs: Vec<_> = config(&[]).into_iter().filter(|(k, _)| k != key).collect();
        let message = bad_request(prepare(
            &FakeHost::default(),
            Settings::new(&pairs),
            &poll("tickets", "", 1),
            &draft(""),
        ));
        assert!(message.contains(key), "{message}");
    }
}

#[test]
fn bad_poll_inputs_are_bad_requests() {
    let pairs = config(&[]);
    let settings = Settings::new(&pairs);
    let host = FakeHost::default();
    let mut context = poll("tickets", "", 1);
    context.since = "last tuesday".to_owned();
    assert!(bad_request(prepare(&host, settings, &context, &draft(""))).contains("RFC 3339"));
    for resource_config in [
        "[1]",
        "{",
        r#"{"pageSize":0}"#,
        r#"{"createdCheckTolerance":"-1"}"#,
    ] {
        bad_request(prepare(
            &host,
            settings,
            &poll("tickets", resource_config, 1),
            &draft(""),
        ));
    }
    assert!(bad_request(prepare(
        &host,
        settings,
        &poll("projects", "{}", 1),
        &draft("")
    ))
    .contains("`projects`"));
}

#[test]
fn records_become_events() {
    let pairs = config(&[]);
    let body = json!([
        {"id": 1, "_info": {"lastUpdated": "2024-01-02T10:00:00Z", "dateEntered": "2024-01-02T10:00:00Z"}},
        {"id": 2, "_info": {"lastUpdated": "2024-01-02T10:00:05Z", "dateEntered": "2024-01-02T10:00:00Z"}},
        {"id": 3, "dateEntered": "2024-01-02T10:00:02Z", "_info": {"lastUpdated": "2024-01-02T10:00:00Z"}},
        {"id": "4"}
    ])
    .to_string();
    let page = map(
        &FakeHost::default(),
        Settings::new(&pairs),
        &poll("companies", r#"{"createdCheckTolerance": 2}"#, 1),
        &ok(&body),
    )
    .unwrap();
    let summary: Vec<_> = page
        .events
        .iter()
        .map(|e| (e.event_type, e.object_id.as_str(), e.date.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            (EventType::Created, "1", "2024-01-02T10:00:00Z"),
            (EventType::Updated, "2", "2024-01-02T10:00:05Z"),
            (EventType::Created, "3", "2024-01-02T10:00:00Z"),
            (EventType::Updated, "4", ""),
        ]
    );
    assert!(page.events.iter().all(|e| e.object_type == "company"));
    let raw: Value = serde_json::from_str(&page.events[0].raw).unwrap();
    assert_eq!(raw["id"], 1);
    assert!(page.next.is_none());
}

#[test]
fn a_full_page_asks_for_the_next() {
    let pairs = config(&[]);
    let body = json!([{"id": 1}, {"id": 2}]).to_string();
    let page = map(
        &FakeHost::default(),
        Settings::new(&pairs),
        &poll("tickets", r#"{"pageSize": 2}"#, 4),
        &ok(&body),
    )
    .unwrap();
    let next = page.next.expect("a full page has a next page");
    assert!(next.url.contains("&page=5&pageSize=2&"), "{}", next.url);
    assert_eq!(
        header(&next, "Authorization"),
        Some("Basic YWNtZStwdWI6cHJpdg==")
    );
    assert!(page.events.iter().all(|e| e.object_type == "ticket"));
}

#[test]
fn vendor_errors_and_odd_bodies_are_reported() {
    let pairs = config(&[]);
    let settings = Settings::new(&pairs);
    let host = FakeHost::default();
    let context = poll("tickets", "", 1);
    let mut failed = ok("[]");
    failed.status = 503;
    assert!(matches!(
        map(&host, settings, &context, &failed),
        Err(ElementError::Internal(message)) if message == "vendor answered 503"
    ));
    assert_eq!(
        bad_request(map(&host, settings, &context, &ok("{}"))),
        "expected a JSON array"
    );
    assert!(bad_request(map(&host, settings, &context, &ok("<html>")))
        .starts_with("expected a JSON array"));
    assert_eq!(
        bad_request(map(&host, settings, &context, &ok(r#"[{"name":"x"}]"#))),
        "record 0 has no `id`"
    );
    let empty = map(&host, settings, &context, &ok("[]")).unwrap();
    assert!(empty.events.is_empty() && empty.next.is_none());
}

#[test]
fn templated_urls_come_filled_from_the_draft_and_keep_their_conditions() {
    let pairs = config(&[]);
    let context = poll(
        "tickets",
        r#"{"url":"/service/tickets?conditions=lastUpdated>[${gmtDate:yyyy-MM-dd'T'HH:mm:ss'Z'}]"}"#,
        2,
    );
    let filled = draft("/service/tickets?conditions=lastUpdated>[2024-01-01T00:00:00Z]");
    let request = prepare(
        &FakeHost::default(),
        Settings::new(&pairs),
        &context,
        &filled,
    )
    .unwrap();
    assert_eq!(
        request.url,
        "https://api-na.myconnectwise.net/v4_6_release/apis/3.0/service/tickets\
         ?conditions=lastUpdated>[2024-01-01T00:00:00Z]&page=2&pageSize=100\
         &orderBy=_info%2FlastUpdated%20asc"
    );
}

#[test]
fn declarative_resources_are_left_to_the_host() {
    let pairs = config(&[]);
    let host = FakeHost::default();
    for resource_config in [
        r#"{"datesConfiguration":{"updatedDateField":"_info.lastUpdated"}}"#,
        r#"{"url":"/service/tickets?x=${epoch}"}"#,
    ] {
        let context = poll("tickets", resource_config, 1);
        let answer = map(&host, Settings::new(&pairs), &context, &ok("[]"));
        assert!(
            matches!(answer, Err(ElementError::Unsupported(_))),
            "{resource_config}: {answer:?}"
        );
    }
}
