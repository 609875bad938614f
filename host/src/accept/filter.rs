//! Per-instance event filters: which accepted events an instance is
//! notified of, by object type (`event.objects`, Cloud Elements'
//! convention) and by event type (`event.types`).
//!
//! A filter never drops anything: the accept step splits a webhook's (or
//! poll page's) events into the kept ones, sent as usual, and the filtered
//! ones, stored in notifications of their own that are marked filtered —
//! settled at once, never claimed, shown as `FILTERED` in the event log and
//! sent only if redelivered. So a notification is either wholly kept or
//! wholly filtered.

use std::collections::BTreeSet;

use super::event::{EventType, NewEvent};

/// Which events an instance is notified of; the default keeps every event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Only events about objects of these types (exact, case-sensitive
    /// match); `None` for every type.
    pub object_types: Option<BTreeSet<String>>,
    /// Only events of these types; `None` for every type.
    pub event_types: Option<BTreeSet<EventType>>,
}

impl EventFilter {
    /// Whether `event` is notified.
    pub fn keeps(&self, event: &NewEvent) -> bool {
        self.object_types
            .as_ref()
            .is_none_or(|types| types.contains(&event.object_type))
            && self
                .event_types
                .as_ref()
                .is_none_or(|types| types.contains(&event.event_type))
    }

    /// Whether every event is kept.
    pub fn keeps_all(&self) -> bool {
        self.object_types.is_none() && self.event_types.is_none()
    }

    /// `events` split into the kept and the filtered ones, each in order.
    pub fn split(&self, events: Vec<NewEvent>) -> (Vec<NewEvent>, Vec<NewEvent>) {
        if self.keeps_all() {
            return (events, Vec::new());
        }
        events.into_iter().partition(|e| self.keeps(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(object_type: &str, event_type: EventType) -> NewEvent {
        NewEvent {
            event_type,
            object_type: object_type.into(),
            object_id: "1".into(),
            date: time::macros::datetime!(2024-05-01 12:00 UTC),
            raw: serde_json::value::to_raw_value(&serde_json::json!({})).unwrap(),
        }
    }

    #[test]
    fn keeps_everything_by_default() {
        let f = EventFilter::default();
        assert!(f.keeps_all());
        assert!(f.keeps(&event("ticket", EventType::Deleted)));
    }

    #[test]
    fn both_conditions_must_hold() {
        let f = EventFilter {
            object_types: Some(BTreeSet::from(["ticket".to_string()])),
            event_types: Some(BTreeSet::from([EventType::Created])),
        };
        assert!(f.keeps(&event("ticket", EventType::Created)));
        assert!(!f.keeps(&event("ticket", EventType::Updated)));
        assert!(!f.keeps(&event("contact", EventType::Created)));
        let (kept, filtered) = f.split(vec![
            event("contact", EventType::Created),
            event("ticket", EventType::Created),
        ]);
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].object_type, "ticket");
        assert_eq!(filtered[0].object_type, "contact");
    }
}
