//! The generic, declarative mapping of a polled page (SEED 004), used when
//! the element's `map-poll` answers `unsupported`: records found in the
//! JSON answer, `idField` → `objectId`, the configured dates → `CREATED` or
//! `UPDATED`, records not updated since the window start skipped, and the
//! next page found from a `Link: <…>; rel="next"` header or a full page.

use serde_json::Value;
use time::format_description::well_known::{Iso8601, Rfc3339};
use time::OffsetDateTime;

use crate::accept::{EventType, NewEvent};
use crate::instance::resources::{DateField, Resource};

/// The time span one poll reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Records updated after this are new (the checkpoint less `pollDelay`).
    pub since: OffsetDateTime,
    /// When the poll started; the next window starts here.
    pub until: OffsetDateTime,
}

/// What the mapping made of one page.
#[derive(Clone, Debug, PartialEq)]
pub struct MappedPage {
    /// Events of the records kept.
    pub events: Vec<NewEvent>,
    /// How many records the page held.
    pub records: usize,
}

/// Maps one page of records; the error says why the answer is unusable.
pub fn map_page(resource: &Resource, body: &[u8], window: Window) -> Result<MappedPage, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("the answer is not JSON: {e}"))?;
    let records = records(resource, &value)?;
    let mut events = Vec::new();
    for (i, record) in records.iter().enumerate() {
        let object_id = lookup(record, &resource.id_field)
            .and_then(id_text)
            .ok_or_else(|| format!("record {i} has no `{}`", resource.id_field))?;
        let date_of = |field: &Option<DateField>| -> Result<Option<OffsetDateTime>, String> {
            match field {
                Some(f) => read_date(record, f).map_err(|e| format!("record {i}: {e}")),
                None => Ok(None),
            }
        };
        let updated = date_of(&resource.updated)?;
        let created = date_of(&resource.created)?;
        if let Some(updated) = updated {
            if resource.filter_by_updated_date && updated <= window.since {
                continue;
            }
            if resource.filter_by_current_date && updated > window.until {
                continue;
            }
        }
        let event_type = match (created, updated) {
            (Some(c), Some(u)) if c >= u - resource.created_tolerance => EventType::Created,
            (Some(c), None) if c > window.since => EventType::Created,
            _ => EventType::Updated,
        };
        events.push(NewEvent {
            event_type,
            object_type: resource.name.clone(),
            object_id,
            date: updated.or(created).unwrap_or(window.until),
            raw: serde_json::value::to_raw_value(record).map_err(|e| e.to_string())?,
        });
    }
    Ok(MappedPage {
        events,
        records: records.len(),
    })
}

/// The records of an answer: the array itself, the array at
/// `recordsField`, or the one array (or the array named like the resource)
/// inside an object.
fn records<'a>(resource: &Resource, value: &'a Value) -> Result<&'a Vec<Value>, String> {
    if let Some(path) = &resource.records_field {
        return lookup(value, path)
            .and_then(Value::as_array)
            .ok_or_else(|| format!("the answer has no array at `{path}`"));
    }
    match value {
        Value::Array(records) => Ok(records),
        Value::Object(object) => {
            if let Some(Value::Array(records)) = object.get(&resource.name) {
                return Ok(records);
            }
            let mut arrays = object.values().filter_map(Value::as_array);
            match (arrays.next(), arrays.next()) {
                (Some(records), None) => Ok(records),
                _ => Err("the answer holds no single array of records; set `recordsField`".into()),
            }
        }
        _ => Err("the answer is neither an array nor an object".into()),
    }
}

/// The value at a dotted path (`_info.lastUpdated`; numbers index arrays).
pub fn lookup<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(value, |v, key| match v {
        Value::Object(o) => o.get(key),
        Value::Array(a) => key.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    })
}

/// A record id as text: strings as they are, numbers written out.
fn id_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A record's date: by its pattern, else RFC 3339 / ISO 8601 text; numbers
/// are epoch milliseconds. A missing or null field is `None`.
fn read_date(record: &Value, field: &DateField) -> Result<Option<OffsetDateTime>, String> {
    match lookup(record, &field.path) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            let ms = n
                .as_i64()
                .ok_or_else(|| format!("`{}` = {n} is not epoch milliseconds", field.path))?;
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
                .map(Some)
                .map_err(|e| format!("`{}`: {e}", field.path))
        }
        Some(Value::String(text)) => {
            let parsed = match &field.pattern {
                Some(pattern) => pattern.parse(text, &field.zone),
                None => OffsetDateTime::parse(text, &Rfc3339)
                    .or_else(|_| OffsetDateTime::parse(text, &Iso8601::DEFAULT))
                    .map_err(|e| format!("{text:?} is not an RFC 3339 date: {e}")),
            };
            parsed
                .map(Some)
                .map_err(|e| format!("`{}`: {e}", field.path))
        }
        Some(other) => Err(format!("`{}` = {other} is not a date", field.path)),
    }
}

/// The target of a `Link` header's `rel="next"`, if any.
pub fn link_next(header: &str) -> Option<&str> {
    let mut rest = header;
    while let Some(open) = rest.find('<') {
        let close = open + rest[open..].find('>')?;
        let target = &rest[open + 1..close];
        let after = &rest[close + 1..];
        let params = &after[..after.find('<').unwrap_or(after.len())];
        let is_next = params.split(';').any(|p| {
            let p = p.trim().trim_end_matches(',').trim();
            p.strip_prefix("rel=").is_some_and(|rel| {
                rel.trim_matches('"')
                    .split_ascii_whitespace()
                    .any(|r| r.eq_ignore_ascii_case("next"))
            })
        });
        if is_next {
            return Some(target);
        }
        rest = after;
    }
    None
}

#[cfg(test)]
#[path = "mapping_tests.rs"]
mod tests;
