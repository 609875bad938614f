//! Building notification bodies (SPEC §3) from accepted events, once, at
//! the moment they are accepted: the bytes stored in the outbox are the
//! bytes signed and sent on every attempt, so `eventId` and body are stable
//! across retries and replays.
//!
//! Cloud Elements' shape (default):
//! `{"message":{"eventId","instanceId","instance_id","elementKey","instanceName",
//! "instanceTags","events":[{"eventType","objectType","objectId","date","elementKey"}],"raw"}}`.
//! At most 20 events per notification for webhooks and 10 for polling; more
//! are split into several notifications, each repeating `raw`.
//! With `event.notification.format = cloudevents` the same content goes out as
//! a CloudEvents 1.0 structured-mode JSON event.
//!
//! A [`test`](fn@test) notification has the same shape, marked `"test": true` in its
//! message (and CloudEvents type `io.plugboard.test`), with one event about
//! the object type `plugboard.test`: it checks a receiver's setup and
//! signature verification and describes no vendor activity.

use serde::Serialize;
use time::format_description::well_known::Rfc3339;

use super::event::NewEvent;
use crate::store::EventKey;

/// Where the events came from; it sets how many go into one notification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// An inbound webhook: up to 20 events per notification.
    Webhook,
    /// A poll: up to 10 events per notification.
    Polling,
}

impl Source {
    /// Most events in one notification.
    pub fn max_events(self) -> usize {
        match self {
            Source::Webhook => 20,
            Source::Polling => 10,
        }
    }
}

/// The body format an instance wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Format {
    /// Cloud Elements' `{"message": …}` envelope.
    #[default]
    CloudElements,
    /// CloudEvents 1.0, structured mode (`application/cloudevents+json`).
    CloudEvents,
}

impl Format {
    /// The `Content-Type` of bodies in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::CloudElements => "application/json",
            Format::CloudEvents => "application/cloudevents+json",
        }
    }
}

/// Who the notification is about.
pub struct InstanceInfo<'a> {
    /// Instance id.
    pub id: i64,
    /// Instance name.
    pub name: &'a str,
    /// Instance tags.
    pub tags: &'a [String],
    /// Element key.
    pub element_key: &'a str,
}

/// A notification ready for the outbox.
#[derive(Clone, Debug, PartialEq)]
pub struct PreparedNotification {
    /// The notification's `eventId` (UUIDv7: unique, time-ordered).
    pub id: String,
    /// The exact bytes to sign and send.
    pub body: Vec<u8>,
    /// How many events it carries.
    pub event_count: usize,
    /// What its events are about, for searching the event log.
    pub events: Vec<EventKey>,
}

/// One event as listed in a notification.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EventEntry<'a> {
    event_type: &'a str,
    object_type: &'a str,
    object_id: &'a str,
    date: String,
    element_key: &'a str,
}

/// Cloud Elements' `message`. Serialized straight from borrowed parts: the
/// raw value goes out as the JSON text it is, never re-parsed into a tree.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Message<'a, R: ?Sized> {
    event_id: &'a str,
    instance_id: i64,
    #[serde(rename = "instance_id")]
    instance_id_snake: i64,
    element_key: &'a str,
    instance_name: &'a str,
    instance_tags: &'a [String],
    events: Vec<EventEntry<'a>>,
    raw: &'a R,
    /// Only on test notifications.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    test: bool,
}

/// `{"message": …}`.
#[derive(Serialize)]
struct Envelope<'a, R: ?Sized> {
    message: Message<'a, R>,
}

/// A CloudEvents 1.0 event in structured mode, carrying the message as `data`.
#[derive(Serialize)]
struct CloudEvent<'a, R: ?Sized> {
    specversion: &'static str,
    id: &'a str,
    source: String,
    #[serde(rename = "type")]
    kind: &'static str,
    datacontenttype: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    subject: Option<String>,
    data: Message<'a, R>,
}

fn rfc3339(date: time::OffsetDateTime) -> String {
    date.format(&Rfc3339).unwrap_or_default()
}

/// Splits `events` into notifications for `instance` (none when there are no events).
pub fn prepare<R: Serialize + ?Sized>(
    instance: &InstanceInfo<'_>,
    source: Source,
    format: Format,
    events: &[NewEvent],
    raw: &R,
) -> Vec<PreparedNotification> {
    build(instance, source, format, events, raw, false)
}

/// Object type of the one event of a test notification.
pub const TEST_OBJECT_TYPE: &str = "plugboard.test";

/// A test notification for `instance`, dated `now`.
pub fn test(
    instance: &InstanceInfo<'_>,
    format: Format,
    now: time::OffsetDateTime,
) -> PreparedNotification {
    let raw = serde_json::json!({
        "test": true,
        "description": "A test notification sent from plugboard to check this receiver's \
                        setup and signature verification. It describes no vendor activity.",
    });
    let event = NewEvent {
        event_type: super::EventType::Updated,
        object_type: TEST_OBJECT_TYPE.into(),
        object_id: "test".into(),
        date: now,
        raw: serde_json::value::to_raw_value(&raw).expect("a JSON value serializes"),
    };
    build(instance, Source::Webhook, format, &[event], &raw, true)
        .pop()
        .expect("one event makes one notification")
}

fn build<R: Serialize + ?Sized>(
    instance: &InstanceInfo<'_>,
    source: Source,
    format: Format,
    events: &[NewEvent],
    raw: &R,
    test: bool,
) -> Vec<PreparedNotification> {
    events
        .chunks(source.max_events())
        .map(|chunk| {
            let id = uuid::Uuid::now_v7().to_string();
            let message = Message {
                event_id: &id,
                instance_id: instance.id,
                instance_id_snake: instance.id,
                element_key: instance.element_key,
                instance_name: instance.name,
                instance_tags: instance.tags,
                events: chunk
                    .iter()
                    .map(|e| EventEntry {
                        event_type: e.event_type.as_str(),
                        object_type: &e.object_type,
                        object_id: &e.object_id,
                        date: rfc3339(e.date),
                        element_key: instance.element_key,
                    })
                    .collect(),
                raw,
                test,
            };
            let body = match format {
                Format::CloudElements => serde_json::to_vec(&Envelope { message }),
                Format::CloudEvents => serde_json::to_vec(&CloudEvent {
                    specversion: "1.0",
                    id: &id,
                    source: format!(
                        "plugboard/elements/{}/instances/{}",
                        instance.element_key, instance.id
                    ),
                    kind: if test {
                        "io.plugboard.test"
                    } else {
                        "io.plugboard.element.events"
                    },
                    datacontenttype: "application/json",
                    time: chunk.first().map(|e| rfc3339(e.date)),
                    subject: match chunk {
                        [only] => Some(format!("{}/{}", only.object_type, only.object_id)),
                        _ => None,
                    },
                    data: message,
                }),
            };
            PreparedNotification {
                id,
                body: body.expect("notification parts serialize"),
                event_count: chunk.len(),
                events: chunk
                    .iter()
                    .map(|e| EventKey {
                        event_type: e.event_type.as_str().to_owned(),
                        object_type: e.object_type.clone(),
                        object_id: e.object_id.clone(),
                    })
                    .collect(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::event::EventType;
    use super::*;
    use serde_json::{json, Value};

    fn events(n: usize) -> Vec<NewEvent> {
        (0..n)
            .map(|i| NewEvent {
                event_type: EventType::Updated,
                object_type: "ticket".into(),
                object_id: i.to_string(),
                date: time::macros::datetime!(2024-05-01 12:00 UTC),
                raw: serde_json::value::to_raw_value(&json!({"id": i})).unwrap(),
            })
            .collect()
    }

    fn info() -> InstanceInfo<'static> {
        InstanceInfo {
            id: 7,
            name: "acme",
            tags: &[],
            element_key: "connectwise",
        }
    }

    #[test]
    fn splits_at_twenty_for_webhooks_and_ten_for_polling() {
        let raw = json!({"r": 1});
        let w = prepare(
            &info(),
            Source::Webhook,
            Format::CloudElements,
            &events(45),
            &raw,
        );
        assert_eq!(
            w.iter().map(|n| n.event_count).collect::<Vec<_>>(),
            [20, 20, 5]
        );
        let p = prepare(
            &info(),
            Source::Polling,
            Format::CloudElements,
            &events(25),
            &raw,
        );
        assert_eq!(
            p.iter().map(|n| n.event_count).collect::<Vec<_>>(),
            [10, 10, 5]
        );
        let ids: std::collections::HashSet<_> = w.iter().map(|n| n.id.clone()).collect();
        assert_eq!(ids.len(), 3, "every notification has its own eventId");
        for n in &w {
            let v: Value = serde_json::from_slice(&n.body).unwrap();
            assert_eq!(v["message"]["raw"], raw, "each repeats the raw body");
            assert_eq!(v["message"]["eventId"], n.id);
            assert_eq!(v["message"]["instanceId"], 7);
            assert_eq!(v["message"]["events"][0]["date"], "2024-05-01T12:00:00Z");
            assert_eq!(v["message"]["events"][0]["eventType"], "UPDATED");
        }
        assert!(prepare(&info(), Source::Webhook, Format::CloudElements, &[], &raw).is_empty());
    }

    #[test]
    fn cloudevents_structured_mode() {
        let n = &prepare(
            &info(),
            Source::Webhook,
            Format::CloudEvents,
            &events(1),
            &json!(null),
        )[0];
        let v: Value = serde_json::from_slice(&n.body).unwrap();
        assert_eq!(v["specversion"], "1.0");
        assert_eq!(v["id"], n.id);
        assert_eq!(v["subject"], "ticket/0");
        assert_eq!(v["source"], "plugboard/elements/connectwise/instances/7");
        assert_eq!(v["data"]["events"][0]["objectId"], "0");
        assert_eq!(
            Format::CloudEvents.content_type(),
            "application/cloudevents+json"
        );
    }

    #[test]
    fn a_test_notification_is_marked_as_one() {
        let now = time::macros::datetime!(2026-11-27 10:00 UTC);
        let n = test(&info(), Format::CloudElements, now);
        let v: Value = serde_json::from_slice(&n.body).unwrap();
        assert_eq!(v["message"]["test"], true);
        assert_eq!(v["message"]["eventId"], n.id);
        assert_eq!(v["message"]["events"][0]["objectType"], TEST_OBJECT_TYPE);
        assert_eq!(v["message"]["events"][0]["date"], "2026-11-27T10:00:00Z");
        assert_eq!(v["message"]["raw"]["test"], true);
        let ce: Value =
            serde_json::from_slice(&test(&info(), Format::CloudEvents, now).body).unwrap();
        assert_eq!(ce["type"], "io.plugboard.test");
        assert_eq!(ce["data"]["test"], true);
        // Real notifications carry no such field.
        let real = &prepare(
            &info(),
            Source::Webhook,
            Format::CloudElements,
            &events(1),
            &json!({}),
        )[0];
        let v: Value = serde_json::from_slice(&real.body).unwrap();
        assert!(v["message"].get("test").is_none());
    }
}
