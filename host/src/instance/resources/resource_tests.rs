//! Unit tests of resource configuration parsing.

use serde_json::json;
use time::macros::datetime;

use super::*;

fn parse(config: Value) -> Result<Vec<Resource>, ConfigError> {
    parse_all(config.as_object().unwrap())
}

#[test]
fn reads_the_seed_example() {
    let resources = parse(json!({
        "event.poller.configuration": {
            "contacts": {
                "url": "/hubs/crm/contacts?where=lastUpdated>'${gmtDate:yyyy-MM-dd'T'HH:mm:ss'Z'}'",
                "idField": "id",
                "datesConfiguration": {
                    "updatedDateField": "_info.lastUpdated",
                    "updatedDateFormat": "yyyy-MM-dd'T'HH:mm:ss'Z'",
                    "updatedDateTimezone": "GMT",
                    "createdDateField": "_info.lastUpdated",
                    "createdDateFormat": "yyyy-MM-dd'T'HH:mm:ss'Z'",
                    "createdDateTimezone": "GMT"
                }
            }
        }
    }))
    .unwrap();
    assert_eq!(resources.len(), 1);
    let contacts = &resources[0];
    assert_eq!(contacts.name, "contacts");
    assert_eq!(contacts.id_field, "id");
    assert!(contacts.filter_by_updated_date && !contacts.filter_by_current_date);
    assert_eq!(contacts.updated.as_ref().unwrap().path, "_info.lastUpdated");
    let url = contacts
        .url
        .as_ref()
        .unwrap()
        .fill(datetime!(2024-01-02 03:04:05 UTC), &contacts.zone);
    assert_eq!(
        url,
        "/hubs/crm/contacts?where=lastUpdated>'2024-01-02T03:04:05Z'"
    );
}

#[test]
fn accepts_strings_for_numbers_flags_and_the_whole_object() {
    let resources = parse(json!({
        "event.poller.configuration": json!({
            "tickets": {"url": "/t", "pageSize": "50", "pollDelay": "30",
                        "createdCheckTolerance": 2, "filterByUpdatedDate": "false",
                        "timezone": "Europe/Paris"}
        }).to_string()
    }))
    .unwrap();
    let t = &resources[0];
    assert_eq!(t.page_size, Some(50));
    assert_eq!(t.poll_delay, Duration::seconds(30));
    assert_eq!(t.created_tolerance, Duration::seconds(2));
    assert!(!t.filter_by_updated_date);
    assert!(t.config_json.contains("\"pageSize\":\"50\""));
}

#[test]
fn legacy_lines_become_resources_and_the_object_wins() {
    let resources = parse(json!({
        "event.poller.urls": "tickets|/service/tickets|/data/items|_info.lastUpdated|yyyy-MM-dd'T'HH:mm:ss'Z'|GMT|_info.dateEntered|yyyy-MM-dd'T'HH:mm:ss'Z'|GMT\n\ncompanies|/company/companies\n",
        "event.poller.configuration": {"companies": {"url": "/company/companies?x=1"}}
    }))
    .unwrap();
    let names: Vec<&str> = resources.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["tickets", "companies"]);
    let tickets = &resources[0];
    assert_eq!(tickets.records_field.as_deref(), Some("data.items"));
    assert_eq!(tickets.created.as_ref().unwrap().path, "_info.dateEntered");
    assert!(resources[1].config_json.contains("x=1"));
}

#[test]
fn names_the_field_at_fault() {
    let cases = [
        (
            json!({"event.poller.configuration": {"tickets": {"url": "/t?since=${since}"}}}),
            "configuration.event.poller.configuration.tickets.url",
        ),
        (
            json!({"event.poller.configuration": {"tickets": {"url": "/t?d=${gmtDate:yyyy-MM-dd z}"}}}),
            "configuration.event.poller.configuration.tickets.url",
        ),
        (
            json!({"event.poller.configuration": {"tickets": {"datesConfiguration": {
                "updatedDateField": "u", "updatedDateFormat": "HH:mm"}}}}),
            "configuration.event.poller.configuration.tickets.datesConfiguration.updatedDateFormat",
        ),
        (
            json!({"event.poller.configuration": {"tickets": {"datesConfiguration": {
                "updatedDateField": "u", "updatedDateTimezone": "Moon/Base"}}}}),
            "configuration.event.poller.configuration.tickets.datesConfiguration.updatedDateTimezone",
        ),
        (
            json!({"event.poller.configuration": {"tickets": {"pageSize": 0}}}),
            "configuration.event.poller.configuration.tickets.pageSize",
        ),
        (
            json!({"event.poller.configuration": {"tickets": {"pollDelay": "-1"}}}),
            "configuration.event.poller.configuration.tickets.pollDelay",
        ),
        (
            json!({"event.poller.configuration": {"tickets": "/t"}}),
            "configuration.event.poller.configuration.tickets",
        ),
        (
            json!({"event.poller.urls": "tickets"}),
            "configuration.event.poller.urls",
        ),
    ];
    for (config, field) in cases {
        let err = parse(config.clone()).expect_err(&config.to_string());
        assert_eq!(err.field, field, "{config}: {}", err.message);
    }
}

#[test]
fn nothing_configured_is_no_resources() {
    assert!(parse(json!({})).unwrap().is_empty());
    assert!(parse(json!({"event.poller.configuration": ""}))
        .unwrap()
        .is_empty());
}
