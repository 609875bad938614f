//! Accepting what a plugin found, the one step webhooks and polls share:
//! the plugin's normalized events are checked and converted into
//! [`NewEvent`]s ([`normalize`](mod@normalize)), and the notifications about them are built — body bytes,
//! `eventId`, split by the source's limit — as the receipt's outcome, so the
//! store writes the receipt and its notifications in one transaction.
//! The instance's event filter ([`filter`]) splits the events first: the
//! filtered ones go into notifications of their own, stored as filtered.
//!
//! Data path: [`crate::ingress`] (webhook → plugin) and [`crate::poller`]
//! (timer → plugin) call down into this module, then hand the receipt to
//! [`crate::store`]; [`crate::delivery`] later sends the stored bytes as they
//! are. Nothing here does I/O.

mod event;
pub mod filter;
mod normalize;
pub mod notification;

use serde::Serialize;
use serde_json::value::RawValue;
use time::OffsetDateTime;

use crate::runtime::NormalizedEvent;
use crate::store::{NewNotification, NotificationSource, ReceiptStatus};

pub use event::{EventType, NewEvent};
pub use filter::EventFilter;
pub use normalize::normalize;
pub use notification::{Format, InstanceInfo, Source};

/// The instance accepted events are for, and the shape its notifications take.
pub struct Recipient<'a> {
    /// Who the notifications are about.
    pub instance: InstanceInfo<'a>,
    /// The instance's notification body format.
    pub format: Format,
    /// Which events the instance is notified of.
    pub filter: &'a EventFilter,
    /// Whether the instance delivers in order per object: then each
    /// notification is about one object, and carries its ordering key.
    pub ordered: bool,
}

/// What an inbound webhook's plugin returned, accepted: its events
/// normalized (dates missing → `received_at`), each notification carrying
/// `raw` — the plugin's raw value, else the body as JSON, else the body as a
/// JSON string. An event the plugin got wrong (date, raw) fails the whole
/// webhook with a message naming it. Events the recipient's filter leaves
/// out are in notifications of their own, marked filtered.
pub fn webhook(
    recipient: &Recipient<'_>,
    events: Vec<NormalizedEvent>,
    plugin_raw: Option<&str>,
    body: &[u8],
    received_at: OffsetDateTime,
) -> Result<ReceiptStatus, String> {
    let events = normalize(events, plugin_raw, received_at)?;
    let raw = raw_json(plugin_raw, body);
    let (kept, filtered) = recipient.filter.split(events);
    let mut all: Vec<NewNotification> = per_object(recipient, kept)
        .iter()
        .flat_map(|events| notifications(recipient, Source::Webhook, events, &raw, false))
        .collect();
    all.extend(notifications(
        recipient,
        Source::Webhook,
        &filtered,
        &raw,
        true,
    ));
    // The raw value is kept in the notifications that carry it.
    Ok(ReceiptStatus::Accepted { notifications: all })
}

/// One poll page's events (normalized, already filtered to the poll window)
/// accepted: notifications of at most [`Source::Polling`]'s limit, each
/// carrying `raw` = `{"<resource>": [records]}` with the records of its own
/// events only, so splitting a large page repeats nothing. Events the
/// recipient's filter leaves out are in notifications of their own, marked
/// filtered.
pub fn poll_page(
    recipient: &Recipient<'_>,
    resource: &str,
    events: Vec<NewEvent>,
) -> ReceiptStatus {
    let (kept, filtered) = recipient.filter.split(events);
    let mut all: Vec<NewNotification> = per_object(recipient, kept)
        .iter()
        .flat_map(|events| page_notifications(recipient, resource, events, false))
        .collect();
    all.extend(page_notifications(recipient, resource, &filtered, true));
    ReceiptStatus::Accepted { notifications: all }
}

/// A poll page's notifications for `events`, each carrying its own records.
fn page_notifications(
    recipient: &Recipient<'_>,
    resource: &str,
    events: &[NewEvent],
    filtered: bool,
) -> Vec<NewNotification> {
    events
        .chunks(Source::Polling.max_events())
        .flat_map(|chunk| {
            let records: Vec<&RawValue> = chunk.iter().map(|e| &*e.raw).collect();
            // `{"<resource>": [records…]}`, the records copied as they are.
            let raw = std::collections::BTreeMap::from([(resource, records)]);
            notifications(recipient, Source::Polling, chunk, &raw, filtered)
        })
        .collect()
}

/// The events as they are in one group, or, for an ordered recipient, in
/// one group per object (type and id), each in the order given, the groups
/// in the order of their objects' first events: a notification is then
/// about one object, so an object waiting for a failing notification holds
/// back no other object's events.
fn per_object(recipient: &Recipient<'_>, events: Vec<NewEvent>) -> Vec<Vec<NewEvent>> {
    if !recipient.ordered {
        return vec![events];
    }
    let mut groups: Vec<Vec<NewEvent>> = Vec::new();
    let mut index = std::collections::HashMap::new();
    for event in events {
        let key = (event.object_type.clone(), event.object_id.clone());
        let at = *index.entry(key).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[at].push(event);
    }
    groups
}

/// The ordering key of a notification about one object: its type and id as
/// a JSON array, which no two different objects share.
fn order_key(event: &NewEvent) -> String {
    serde_json::to_string(&[&event.object_type, &event.object_id]).expect("two strings serialize")
}

/// The outbox rows for `events`, each body built once; `filtered` marks
/// them as left out by the instance's filter. For an ordered recipient the
/// events are about one object (see [`per_object`]) and the rows carry its
/// ordering key.
fn notifications<R: Serialize + ?Sized>(
    recipient: &Recipient<'_>,
    source: Source,
    events: &[NewEvent],
    raw: &R,
    filtered: bool,
) -> Vec<NewNotification> {
    let format = recipient.format;
    let key = events
        .first()
        .filter(|_| recipient.ordered && !filtered)
        .map(order_key);
    notification::prepare(&recipient.instance, source, format, events, raw)
        .into_iter()
        .map(|n| NewNotification {
            id: n.id,
            source: match source {
                Source::Webhook => NotificationSource::Webhook,
                Source::Polling => NotificationSource::Polling,
            },
            content_type: format.content_type().to_string(),
            body: n.body.into(),
            event_count: n.event_count as u32,
            events: n.events,
            filtered,
            order_key: key.clone(),
        })
        .collect()
}

/// The raw value notifications carry: the plugin's, else the body as JSON,
/// else the body as a JSON string. Kept as JSON text (checked, not parsed
/// into a tree): it is only copied into notification bodies.
fn raw_json(plugin_raw: Option<&str>, body: &[u8]) -> Box<RawValue> {
    plugin_raw
        .and_then(|r| RawValue::from_string(r.to_owned()).ok())
        .or_else(|| {
            std::str::from_utf8(body)
                .ok()
                .and_then(|b| RawValue::from_string(b.to_owned()).ok())
        })
        .unwrap_or_else(|| {
            let text = serde_json::Value::String(String::from_utf8_lossy(body).into_owned());
            RawValue::from_string(text.to_string()).expect("a JSON string is JSON")
        })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn event(object_type: &str, id: usize) -> NewEvent {
        NewEvent {
            event_type: EventType::Updated,
            object_type: object_type.into(),
            object_id: id.to_string(),
            date: time::macros::datetime!(2024-05-01 12:00 UTC),
            raw: serde_json::value::to_raw_value(&serde_json::json!({"id": id})).unwrap(),
        }
    }

    /// Instance 7's recipient with `filter`, ordered or not.
    fn recipient(filter: &EventFilter, ordered: bool) -> Recipient<'_> {
        Recipient {
            instance: InstanceInfo {
                id: 7,
                name: "acme",
                tags: &[],
                element_key: "connectwise",
            },
            format: Format::CloudElements,
            filter,
            ordered,
        }
    }

    #[test]
    fn filtered_events_go_into_notifications_of_their_own() {
        let filter = EventFilter {
            object_types: Some(BTreeSet::from(["ticket".to_string()])),
            event_types: None,
        };
        let recipient = recipient(&filter, false);
        // 12 tickets and 3 contacts, interleaved: 10 + 2 kept, 3 filtered.
        let events = (0..15)
            .map(|i| event(if i % 5 == 4 { "contact" } else { "ticket" }, i))
            .collect();
        let ReceiptStatus::Accepted { notifications } = poll_page(&recipient, "items", events)
        else {
            panic!("a page is accepted");
        };
        let shape: Vec<(u32, bool)> = notifications
            .iter()
            .map(|n| (n.event_count, n.filtered))
            .collect();
        assert_eq!(shape, [(10, false), (2, false), (3, true)]);
        let filtered = &notifications[2];
        assert!(filtered.events.iter().all(|e| e.object_type == "contact"));
        let body: serde_json::Value = serde_json::from_slice(&filtered.body).unwrap();
        assert_eq!(body["message"]["raw"]["items"].as_array().unwrap().len(), 3);
    }

    #[test]
    fn ordered_recipients_get_one_object_per_notification_with_its_key() {
        let filter = EventFilter::default();
        let recipient = recipient(&filter, true);
        // Ticket 1 twice, contact 1 (same id, other type), ticket 2.
        let objects = [("ticket", 1), ("contact", 1), ("ticket", 1), ("ticket", 2)];
        let ReceiptStatus::Accepted { notifications } = webhook_events(&recipient, &objects) else {
            panic!("a webhook is accepted");
        };
        let shape: Vec<(u32, Option<&str>)> = notifications
            .iter()
            .map(|n| (n.event_count, n.order_key.as_deref()))
            .collect();
        assert_eq!(
            shape,
            [
                (2, Some(r#"["ticket","1"]"#)),
                (1, Some(r#"["contact","1"]"#)),
                (1, Some(r#"["ticket","2"]"#)),
            ]
        );

        let unordered = super::tests::recipient(&filter, false);
        let objects = [("ticket", 1), ("ticket", 2)];
        let ReceiptStatus::Accepted { notifications } = webhook_events(&unordered, &objects) else {
            panic!("a webhook is accepted");
        };
        assert_eq!(notifications.len(), 1);
        assert_eq!(notifications[0].order_key, None);
    }

    /// A webhook's events as a plugin returns them: `(object type, id)`.
    fn webhook_events(recipient: &Recipient<'_>, objects: &[(&str, u32)]) -> ReceiptStatus {
        let events = objects
            .iter()
            .map(|(object_type, id)| crate::runtime::NormalizedEvent {
                event_type: crate::runtime::EventType::Updated,
                object_type: (*object_type).into(),
                object_id: id.to_string(),
                date: "2024-05-01T12:00:00Z".into(),
                raw: "{}".into(),
            })
            .collect();
        webhook(recipient, events, None, b"{}", OffsetDateTime::now_utc()).unwrap()
    }
}
