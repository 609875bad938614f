//! Turning a plugin's normalized events into events to store: dates parsed
//! (empty means the time of receipt), raw data parsed as JSON. A plugin
//! that returns an unparsable date or raw value has failed, and the receipt
//! is stored as `failed` rather than half-right.

use serde_json::value::RawValue;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::event::{EventType, NewEvent};
use crate::runtime::{self, NormalizedEvent};

/// Converts every event, or says which one is malformed and how.
pub fn normalize(
    events: Vec<NormalizedEvent>,
    receipt_raw: Option<&str>,
    received_at: OffsetDateTime,
) -> Result<Vec<NewEvent>, String> {
    if let Some(raw) = receipt_raw {
        serde_json::from_str::<serde::de::IgnoredAny>(raw)
            .map_err(|e| format!("the receipt's raw value is not JSON: {e}"))?;
    }
    events
        .into_iter()
        .enumerate()
        .map(|(i, e)| {
            let date = if e.date.is_empty() {
                received_at
            } else {
                OffsetDateTime::parse(&e.date, &Rfc3339)
                    .map_err(|err| format!("event {i}: date {:?} is not RFC 3339: {err}", e.date))?
            };
            let raw = if e.raw.is_empty() {
                RawValue::NULL.to_owned()
            } else {
                RawValue::from_string(e.raw)
                    .map_err(|err| format!("event {i}: raw is not JSON: {err}"))?
            };
            Ok(NewEvent {
                event_type: match e.event_type {
                    runtime::EventType::Created => EventType::Created,
                    runtime::EventType::Updated => EventType::Updated,
                    runtime::EventType::Deleted => EventType::Deleted,
                    runtime::EventType::Unknown => EventType::Unknown,
                },
                object_type: e.object_type,
                object_id: e.object_id,
                date,
                raw,
            })
        })
        .collect()
}
