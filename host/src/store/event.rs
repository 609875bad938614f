//! Normalized events: what a plugin made of a vendor payload, one per
//! changed object, as kept in the event log.
//!
//! Event ids are UUIDv7 strings generated when the event is stored, so they
//! sort by the time plugboard recorded them; the event log pages by id.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;
use time::OffsetDateTime;

use super::error::StoreError;
use super::timestamp::serialize_rfc3339;

/// Events per page when a query does not say.
pub const DEFAULT_EVENT_PAGE: u32 = 100;

/// The normalized kind of change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum EventType {
    /// The object was created.
    Created,
    /// The object was changed.
    Updated,
    /// The object was deleted.
    Deleted,
    /// The vendor's action could not be mapped.
    Unknown,
}

impl EventType {
    /// The stored and rendered spelling: `CREATED`, `UPDATED`, `DELETED` or `UNKNOWN`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Created => "CREATED",
            EventType::Updated => "UPDATED",
            EventType::Deleted => "DELETED",
            EventType::Unknown => "UNKNOWN",
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventType {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "CREATED" => Ok(EventType::Created),
            "UPDATED" => Ok(EventType::Updated),
            "DELETED" => Ok(EventType::Deleted),
            "UNKNOWN" => Ok(EventType::Unknown),
            other => Err(StoreError::Corrupt(format!("unknown event type {other:?}"))),
        }
    }
}

/// One event to store with its receipt.
#[derive(Clone, Debug)]
pub struct NewEvent {
    /// What happened.
    pub event_type: EventType,
    /// The vendor's object type, e.g. `ticket`.
    pub object_type: String,
    /// The vendor's id of the object.
    pub object_id: String,
    /// When it happened, as the vendor said (or the time of receipt).
    pub date: OffsetDateTime,
    /// The vendor's data for this object, as checked JSON text: it is
    /// stored and sent as it is, never parsed into a tree on the way.
    pub raw: Box<RawValue>,
}

impl PartialEq for NewEvent {
    fn eq(&self, other: &Self) -> bool {
        self.event_type == other.event_type
            && self.object_type == other.object_type
            && self.object_id == other.object_id
            && self.date == other.date
            && self.raw.get() == other.raw.get()
    }
}

/// An event as kept in the event log.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StoredEvent {
    /// The event id (UUIDv7).
    pub id: String,
    /// The receipt the event came from.
    pub receipt_id: String,
    /// The instance the event belongs to.
    pub instance_id: i64,
    /// The element that produced it.
    pub element_key: String,
    /// What happened.
    pub event_type: EventType,
    /// The vendor's object type.
    pub object_type: String,
    /// The vendor's object id.
    pub object_id: String,
    /// When it happened, per the vendor.
    #[serde(serialize_with = "serialize_rfc3339")]
    pub date: OffsetDateTime,
    /// The vendor's data for this object.
    pub raw: Value,
    /// When plugboard stored the event (the time encoded in its id).
    #[serde(serialize_with = "serialize_rfc3339")]
    pub created_at: OffsetDateTime,
}

/// Which page of the event log to read. Results come newest first.
#[derive(Clone, Debug, PartialEq)]
pub struct EventQuery {
    /// Only this instance's events; `None` for all instances.
    pub instance_id: Option<i64>,
    /// Cursor: the id of the last event of the previous page. Only events
    /// older than it (those listed after it) are returned.
    pub after: Option<String>,
    /// At most this many events.
    pub limit: u32,
    /// Only events stored at or after this time.
    pub since: Option<OffsetDateTime>,
    /// Only events stored at or before this time.
    pub until: Option<OffsetDateTime>,
}

impl Default for EventQuery {
    fn default() -> Self {
        Self {
            instance_id: None,
            after: None,
            limit: DEFAULT_EVENT_PAGE,
            since: None,
            until: None,
        }
    }
}

impl EventQuery {
    /// The first page of one instance's events.
    pub fn for_instance(instance_id: i64) -> Self {
        Self {
            instance_id: Some(instance_id),
            ..Self::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_round_trip_through_their_spelling() {
        for t in [
            EventType::Created,
            EventType::Updated,
            EventType::Deleted,
            EventType::Unknown,
        ] {
            assert_eq!(t.as_str().parse::<EventType>().unwrap(), t);
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
        assert!("created".parse::<EventType>().is_err());
    }

    #[test]
    fn default_query_reads_a_first_page_of_everything() {
        let q = EventQuery::default();
        assert_eq!(q.limit, DEFAULT_EVENT_PAGE);
        assert!(q.instance_id.is_none() && q.after.is_none());
        assert_eq!(EventQuery::for_instance(3).instance_id, Some(3));
    }
}
