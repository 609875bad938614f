//! Unit tests of the generic mapping.

use serde_json::json;
use time::macros::datetime;

use super::*;
use crate::instance::resources::parse_all;

fn resource(config: Value) -> Resource {
    let all = json!({"event.poller.configuration": {"tickets": config}});
    parse_all(all.as_object().unwrap()).unwrap().remove(0)
}

const WINDOW: Window = Window {
    since: datetime!(2024-05-01 12:00 UTC),
    until: datetime!(2024-05-01 13:00 UTC),
};

fn cw_dates() -> Value {
    json!({"idField": "id", "datesConfiguration": {
        "updatedDateField": "_info.lastUpdated", "updatedDateFormat": "yyyy-MM-dd'T'HH:mm:ss'Z'",
        "createdDateField": "_info.dateEntered", "createdDateFormat": "yyyy-MM-dd'T'HH:mm:ss'Z'"}})
}

fn record(id: u32, entered: &str, updated: &str) -> Value {
    json!({"id": id, "_info": {"dateEntered": entered, "lastUpdated": updated}})
}

#[test]
fn tells_created_from_updated_and_skips_old_records() {
    let body = json!([
        record(1, "2024-05-01T12:30:00Z", "2024-05-01T12:30:00Z"),
        record(2, "2024-04-01T09:00:00Z", "2024-05-01T12:31:00Z"),
        record(3, "2024-04-01T09:00:00Z", "2024-05-01T12:00:00Z"),
        record(4, "2024-04-01T09:00:00Z", "2024-04-30T12:00:00Z"),
    ]);
    let page = map_page(&resource(cw_dates()), body.to_string().as_bytes(), WINDOW).unwrap();
    assert_eq!(page.records, 4);
    let got: Vec<(EventType, &str)> = page
        .events
        .iter()
        .map(|e| (e.event_type, e.object_id.as_str()))
        .collect();
    assert_eq!(got, [(EventType::Created, "1"), (EventType::Updated, "2")]);
    assert_eq!(page.events[1].date, datetime!(2024-05-01 12:31 UTC));
    assert_eq!(page.events[0].object_type, "tickets");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(page.events[0].raw.get()).unwrap()["_info"]
            ["dateEntered"],
        "2024-05-01T12:30:00Z"
    );
}

#[test]
fn tolerance_and_filters_are_honoured() {
    let mut config = cw_dates();
    config["createdCheckTolerance"] = json!(5);
    config["filterByCurrentDate"] = json!(true);
    let body = json!([
        record(1, "2024-05-01T12:30:00Z", "2024-05-01T12:30:04Z"),
        record(2, "2024-05-01T12:30:00Z", "2024-05-01T13:00:01Z"),
    ]);
    let page = map_page(
        &resource(config.clone()),
        body.to_string().as_bytes(),
        WINDOW,
    )
    .unwrap();
    assert_eq!(page.events.len(), 1);
    assert_eq!(page.events[0].event_type, EventType::Created);
    config["filterByUpdatedDate"] = json!(false);
    config["filterByCurrentDate"] = json!(false);
    let old = json!([record(3, "2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z")]);
    let page = map_page(&resource(config), old.to_string().as_bytes(), WINDOW).unwrap();
    assert_eq!(page.events.len(), 1);
}

#[test]
fn reads_dates_in_the_configured_zone() {
    let config = json!({"idField": "key", "datesConfiguration": {
        "updatedDateField": "modified", "updatedDateFormat": "MM/dd/yyyy HH:mm:ss",
        "updatedDateTimezone": "America/New_York"}});
    // 08:30 in New York in May is 12:30 UTC: inside the window.
    let body = json!({"items": [{"key": "a", "modified": "05/01/2024 08:30:00"},
                                {"key": "b", "modified": "05/01/2024 07:59:59"}]});
    let page = map_page(&resource(config), body.to_string().as_bytes(), WINDOW).unwrap();
    assert_eq!(page.events.len(), 1);
    assert_eq!(page.events[0].object_id, "a");
    assert_eq!(page.events[0].date, datetime!(2024-05-01 12:30 UTC));
}

#[test]
fn finds_records_and_refuses_unusable_answers() {
    let r = resource(json!({"recordsField": "data.rows"}));
    let body = json!({"data": {"rows": [{"id": "x"}]}, "other": []});
    let page = map_page(&r, body.to_string().as_bytes(), WINDOW).unwrap();
    assert_eq!(page.events[0].event_type, EventType::Updated);
    assert_eq!(page.events[0].date, WINDOW.until);
    let plain = resource(json!({}));
    for (body, why) in [
        ("{not json", "not JSON"),
        ("{\"a\": [], \"b\": []}", "no single array"),
        ("[{\"name\": 1}]", "no `id`"),
        ("42", "neither"),
    ] {
        let err = map_page(&plain, body.as_bytes(), WINDOW).unwrap_err();
        assert!(err.contains(why), "{body}: {err}");
    }
    let dated = resource(cw_dates());
    let bad = json!([record(1, "yesterday", "2024-05-01T12:30:00Z")]);
    let err = map_page(&dated, bad.to_string().as_bytes(), WINDOW).unwrap_err();
    assert!(err.contains("record 0"), "{err}");
}

#[test]
fn link_headers_name_the_next_page() {
    let header = r#"<https://x/api?page=3&a=1,2>; rel="next", <https://x/api?page=9>; rel="last""#;
    assert_eq!(link_next(header), Some("https://x/api?page=3&a=1,2"));
    assert_eq!(
        link_next(r#"<https://x/p2>; rel="prev next""#),
        Some("https://x/p2")
    );
    assert_eq!(link_next(r#"<https://x/last>; rel="last""#), None);
    assert_eq!(link_next(""), None);
}
