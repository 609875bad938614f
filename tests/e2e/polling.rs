//! Polling end to end: the ConnectWise element polls a fake ConnectWise
//! REST API on loopback (Basic auth, `conditions`, `page`/`pageSize`), the
//! events reach a receiver as notifications, and the poller's status,
//! checkpoints, backoff and crash safety behave as documented.

use std::collections::HashSet;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

mod crash;
mod defaults;

use crate::support::connectwise_rest::{record, rfc3339, ConnectWiseRest, Fault};
use crate::support::host::{HostOptions, TestHost};
use crate::support::receiver::Receiver;
use crate::support::wait_until;

const DEADLINE: Duration = Duration::from_secs(30);
/// Minutes between polls when a test polls by hand: long enough that the
/// scheduler never fires during the test.
const BY_HAND: &str = "100000";

async fn host() -> TestHost {
    TestHost::start(HostOptions {
        allow_private: Some("127.0.0.0/8".into()),
        poller: Some(plugboard::poller::PollerConfig {
            min_interval: Duration::ZERO,
            ..Default::default()
        }),
        ..HostOptions::default()
    })
    .await
}

/// A ConnectWise polling instance body.
fn instance(cw: &ConnectWiseRest, receiver: &Receiver, minutes: &str, resources: Value) -> Value {
    let mut configuration = cw.credentials();
    let extra = json!({
        "event.notification.enabled": "true",
        "event.vendor.type": "polling",
        "event.notification.callback.url": receiver.url(),
        "event.poller.refresh_interval": minutes,
        "event.poller.configuration": resources,
    });
    configuration
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    json!({"element": {"key": "connectwise"}, "name": "acme", "configuration": configuration})
}

/// Creates the instance; returns its id and when it was last changed (the
/// start of its first poll window).
async fn create(host: &TestHost, body: Value) -> (i64, OffsetDateTime) {
    let created = host.create_instance(body).await;
    let since = OffsetDateTime::parse(created["updatedDate"].as_str().unwrap(), &Rfc3339).unwrap();
    (created["id"].as_i64().unwrap(), since)
}

/// A whole second safely after `t` (ConnectWise dates have whole seconds):
/// a record stamped then is inside a window starting at `t`, even if a
/// scheduled poll closes a window before the test adds the record.
fn after(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(0).unwrap() + Duration::from_secs(2)
}

/// Waits until the clock has passed `t`, so a poll starting now covers it.
async fn wait_past(t: OffsetDateTime) {
    wait_until("the clock to pass a record's date", DEADLINE, || async {
        (OffsetDateTime::now_utc() > t).then_some(())
    })
    .await
}

async fn poll_now(host: &TestHost, id: i64) -> Value {
    let (status, body) = host
        .api(Method::POST, &format!("/instances/{id}/poller"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn status(host: &TestHost, id: i64) -> Value {
    let (status, body) = host
        .api(Method::GET, &format!("/instances/{id}/poller"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn resource<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resource"] == name)
        .unwrap()
}

/// `(eventType, objectType, objectId, date)` of every event delivered so far.
fn delivered(receiver: &Receiver) -> Vec<(String, String, String, String)> {
    receiver
        .received()
        .iter()
        .flat_map(|r| {
            r.json()["message"]["events"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or_default().to_string();
            (s("eventType"), s("objectType"), s("objectId"), s("date"))
        })
        .collect()
}

async fn wait_delivered(
    receiver: &Receiver,
    count: usize,
) -> Vec<(String, String, String, String)> {
    wait_until("notifications to reach the receiver", DEADLINE, || async {
        let got = delivered(receiver);
        (got.len() >= count).then_some(got)
    })
    .await
}

#[tokio::test]
async fn connectwise_pages_by_date_and_tells_created_from_updated() {
    let (cw, receiver, host) = (
        ConnectWiseRest::start().await,
        Receiver::start().await,
        host().await,
    );
    let resources = json!({"tickets": {"pageSize": 10}});
    let (id, since) = create(&host, instance(&cw, &receiver, BY_HAND, resources)).await;
    let t1 = after(since);
    let day = Duration::from_secs(86_400);
    for n in 1..=25u64 {
        let entered = if n % 2 == 1 { t1 } else { t1 - day };
        cw.add("tickets", record(n, entered, t1));
    }
    wait_past(t1).await;

    let after_first = poll_now(&host, id).await;
    let tickets = resource(&after_first, "tickets");
    assert_eq!(tickets["lastError"], Value::Null, "{after_first}");
    assert_eq!(
        (tickets["eventsFound"].as_u64(), tickets["pages"].as_u64()),
        (Some(25), Some(3))
    );
    let seen = cw.seen("tickets");
    assert!(seen.iter().all(|s| s.authorized), "{seen:?}");
    let pages: Vec<(u32, u32)> = seen.iter().map(|s| (s.page, s.page_size)).collect();
    assert_eq!(pages, [(1, 10), (2, 10), (3, 10)]);
    let window_start = format!("lastUpdated>[{}]", rfc3339(since));
    assert!(
        seen.iter()
            .all(|s| s.conditions.as_deref() == Some(window_start.as_str())),
        "{seen:?}"
    );

    let events = wait_delivered(&receiver, 25).await;
    assert_eq!(receiver.received().len(), 3, "10 + 10 + 5 events");
    for (kind, object_type, object_id, date) in &events {
        let n: u64 = object_id.parse().unwrap();
        let expected = if n % 2 == 1 { "CREATED" } else { "UPDATED" };
        assert_eq!((kind.as_str(), object_type.as_str()), (expected, "ticket"));
        assert_eq!(date, &rfc3339(t1));
    }

    // The next poll starts where the first ended and finds only what changed since.
    let checkpoint = tickets["checkpoint"].as_str().unwrap();
    let checkpoint = OffsetDateTime::parse(checkpoint, &Rfc3339).unwrap();
    let t2 = after(checkpoint);
    cw.add("tickets", record(26, t1 - day, t2));
    wait_past(t2).await;
    let after_second = poll_now(&host, id).await;
    assert_eq!(
        resource(&after_second, "tickets")["eventsFound"],
        1,
        "{after_second}"
    );
    let last = cw.seen("tickets").pop().unwrap();
    assert_eq!(
        last.conditions,
        Some(format!("lastUpdated>[{}]", rfc3339(checkpoint)))
    );
    let events = wait_delivered(&receiver, 26).await;
    assert!(events.contains(&("UPDATED".into(), "ticket".into(), "26".into(), rfc3339(t2))));
}

#[tokio::test]
async fn generic_mapping_reads_local_dates_and_skips_records_older_than_the_window() {
    let (cw, receiver, host) = (
        ConnectWiseRest::start().await,
        Receiver::start().await,
        host().await,
    );
    cw.ignore_conditions(); // an API that cannot filter: the host must skip old records
    let resources = json!({"contacts": {
        "url": "/company/contacts?conditions=lastUpdated>[${gmtDate:yyyy-MM-dd'T'HH:mm:ss'Z'}]",
        "idField": "id",
        "datesConfiguration": {
            "updatedDateField": "lastModifiedLocal",
            "updatedDateFormat": "MM/dd/yyyy hh:mm:ss a",
            "updatedDateTimezone": "America/New_York",
            "createdDateField": "_info.dateEntered",
            "createdDateFormat": "yyyy-MM-dd'T'HH:mm:ss'Z'",
            "createdDateTimezone": "GMT"
        }
    }});
    let (id, since) = create(&host, instance(&cw, &receiver, BY_HAND, resources)).await;
    let t1 = after(since);
    let new_york = tzdb::tz_by_name("America/New_York").unwrap();
    let local = |t: OffsetDateTime| {
        let offset = new_york.find_local_time_type(t.unix_timestamp()).unwrap();
        let offset = time::UtcOffset::from_whole_seconds(offset.ut_offset()).unwrap();
        t.to_offset(offset)
            .format(time::macros::format_description!(
                "[month]/[day]/[year] [hour repr:12]:[minute]:[second] [period]"
            ))
            .unwrap()
    };
    let contact = |n: u64, entered: OffsetDateTime, updated: OffsetDateTime| {
        let mut r = record(n, entered, updated);
        r["lastModifiedLocal"] = json!(local(updated));
        r
    };
    let hour = Duration::from_secs(3600);
    cw.add("contacts", contact(1, t1, t1));
    cw.add("contacts", contact(2, t1 - 24 * hour, t1));
    cw.add("contacts", contact(3, t1 - 48 * hour, since - hour));
    wait_past(t1).await;

    let polled = poll_now(&host, id).await;
    let contacts = resource(&polled, "contacts");
    assert_eq!(contacts["lastError"], Value::Null, "{polled}");
    assert_eq!(contacts["eventsFound"], 2, "{polled}");
    let seen = cw.seen("contacts");
    assert_eq!(
        seen[0].conditions,
        Some(format!("lastUpdated>[{}]", rfc3339(since)))
    );
    assert!(seen[0].authorized);

    let mut events = wait_delivered(&receiver, 2).await;
    events.sort();
    assert_eq!(
        events,
        [
            ("CREATED".into(), "contacts".into(), "1".into(), rfc3339(t1)),
            ("UPDATED".into(), "contacts".into(), "2".into(), rfc3339(t1)),
        ]
    );

    // The vendor serves the same records again; all are older than the
    // checkpoint now, so the next poll stores nothing.
    let checkpoint = contacts["checkpoint"].as_str().unwrap();
    let checkpoint = OffsetDateTime::parse(checkpoint, &Rfc3339).unwrap();
    let again = poll_now(&host, id).await;
    assert_eq!(resource(&again, "contacts")["eventsFound"], 0, "{again}");
    let seen = cw.seen("contacts");
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[1].conditions,
        Some(format!("lastUpdated>[{}]", rfc3339(checkpoint)))
    );
    assert_eq!(delivered(&receiver).len(), 2);
}

#[tokio::test]
async fn vendor_errors_back_off_and_retry_after_is_honoured() {
    let (cw, receiver, host) = (
        ConnectWiseRest::start().await,
        Receiver::start().await,
        host().await,
    );
    cw.fail_next("tickets", Fault::Status(500, None));
    cw.fail_next("tickets", Fault::Status(500, None));
    cw.fail_next("tickets", Fault::Status(429, Some(2)));
    let resources = json!({"tickets": {}});
    let (id, since) = create(&host, instance(&cw, &receiver, "0.005", resources)).await;
    let t1 = after(since);
    cw.add("tickets", record(7, t1, t1));

    let throttled = wait_until("three failures in a row", DEADLINE, || async {
        let s = status(&host, id).await;
        let t = resource(&s, "tickets").clone();
        (t["consecutiveFailures"] == 3).then_some(t)
    })
    .await;
    assert_eq!(
        throttled["lastError"],
        "vendor answered 429 (Retry-After 2 s)"
    );
    let last_run = OffsetDateTime::parse(throttled["lastRun"].as_str().unwrap(), &Rfc3339).unwrap();
    let retry_at = OffsetDateTime::parse(throttled["retryAt"].as_str().unwrap(), &Rfc3339).unwrap();
    assert!(retry_at - last_run >= Duration::from_secs(2), "{throttled}");

    let events = wait_delivered(&receiver, 1).await;
    assert_eq!(events[0].2, "7");
    let recovered = status(&host, id).await;
    let tickets = resource(&recovered, "tickets");
    assert_eq!(
        (
            tickets["consecutiveFailures"].as_u64(),
            &tickets["lastError"]
        ),
        (Some(0), &Value::Null)
    );
    let seen = cw.seen("tickets");
    let gap = |a: usize, b: usize| seen[b].at - seen[a].at;
    // Every failure waits at least an interval more than the one before, and
    // the 429's Retry-After holds the next request back for its 2 seconds.
    assert!(gap(1, 2) > gap(0, 1), "{seen:?}");
    assert!(gap(2, 3) >= Duration::from_secs(2), "{seen:?}");
}

#[tokio::test]
async fn a_malformed_answer_is_the_resources_error_while_the_rest_keeps_polling() {
    let (cw, receiver, host) = (
        ConnectWiseRest::start().await,
        Receiver::start().await,
        host().await,
    );
    cw.fail_always("tickets", Fault::Malformed);
    let both = json!({"tickets": {}, "companies": {}});
    let (a, since) = create(&host, instance(&cw, &receiver, "0.005", both)).await;
    let (b, _) = create(
        &host,
        instance(&cw, &receiver, "0.005", json!({"contacts": {}})),
    )
    .await;
    let t1 = after(since);
    cw.add("companies", record(11, t1, t1));
    cw.add("contacts", record(21, t1, t1));

    let events = wait_delivered(&receiver, 2).await;
    let objects: HashSet<(String, String)> =
        events.iter().map(|e| (e.1.clone(), e.2.clone())).collect();
    assert!(
        objects.contains(&("company".into(), "11".into())),
        "{events:?}"
    );
    assert!(
        objects.contains(&("contact".into(), "21".into())),
        "{events:?}"
    );
    let broken = wait_until("the malformed answer to be recorded", DEADLINE, || async {
        let s = status(&host, a).await;
        let tickets = resource(&s, "tickets").clone();
        tickets["lastError"].is_string().then_some((s, tickets))
    })
    .await;
    let error = broken.1["lastError"].as_str().unwrap();
    assert!(error.contains("expected a JSON array"), "{error}");
    assert_eq!(resource(&broken.0, "companies")["lastError"], Value::Null);
    assert!(
        broken.1["checkpoint"].is_null(),
        "the broken resource's window is kept"
    );
    assert_eq!(
        resource(&status(&host, b).await, "contacts")["lastError"],
        Value::Null
    );
}

#[tokio::test]
async fn bad_poll_configurations_are_refused_when_saved() {
    let (cw, receiver, host) = (
        ConnectWiseRest::start().await,
        Receiver::start().await,
        host().await,
    );
    let bad = json!({"tickets": {"url": "/service/tickets?since=${lastPoll}"}});
    let (code, body) = host
        .api(
            Method::POST,
            "/instances",
            Some(instance(&cw, &receiver, "5", bad)),
        )
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        body["field"],
        "configuration.event.poller.configuration.tickets.url"
    );
    let (id, _) = create(&host, instance(&cw, &receiver, "5", json!({"tickets": {}}))).await;
    let zone = json!({"configuration": {"event.poller.configuration": {"tickets": {
        "datesConfiguration": {"updatedDateField": "u", "updatedDateTimezone": "Mars/Olympus"}}}}});
    let (code, body) = host
        .api(Method::PATCH, &format!("/instances/{id}"), Some(zone))
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        body["field"],
        "configuration.event.poller.configuration.tickets.datesConfiguration.updatedDateTimezone"
    );
    let off = json!({"configuration": {"event.vendor.type": "webhooks"}});
    let (code, _) = host
        .api(Method::PATCH, &format!("/instances/{id}"), Some(off))
        .await;
    assert_eq!(code, StatusCode::OK);
    wait_until("polling to stop", DEADLINE, || async {
        let (code, _) = host
            .api(Method::GET, &format!("/instances/{id}/poller"), None)
            .await;
        (code == StatusCode::NOT_FOUND).then_some(())
    })
    .await;
}
