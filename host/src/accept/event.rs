//! Accepted events: what a plugin made of a vendor payload (or the generic
//! poll mapping of a page), one per changed object, checked and typed. The
//! accept step turns them into notification bodies; the store keeps them
//! only inside the notifications that carry them (the event log is the
//! notifications), never as rows of their own.

use std::fmt;

use serde::Serialize;
use serde_json::value::RawValue;
use time::OffsetDateTime;

/// The normalized kind of change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
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

/// One accepted event, to be carried by the notifications built from it.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_serialize_as_their_spelling() {
        for t in [
            EventType::Created,
            EventType::Updated,
            EventType::Deleted,
            EventType::Unknown,
        ] {
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
    }
}
